//! Logging in before any upload, so refused credentials fail at once and a flaky registry does
//! not pass for a refusing one. oci-client's own probe of `/v2/` ignores the status (a 503
//! there reads as "no auth needed" and the next request then fails with 401), so the probe is
//! made here first, under retries, with the credentials: it says whether they are accepted
//! (basic auth) or which token service to ask (bearer), whose tokens are then asked for here
//! (`token.rs`) and handed to oci-client.

use std::sync::atomic::Ordering;

use oci_client::RegistryOperation;
use oci_client::secrets::RegistryAuth;

use super::errors::{envelope_detail, retryable_status};
use super::http::error_text;
use super::token::TokenService;
use super::{Credential, Failure, Remote};
use crate::error::{Error, Result};
use crate::secret::Secret;

/// What `GET /v2/` said.
#[derive(Debug, Clone)]
enum Challenge {
    /// 200: the credentials (or none) are accepted.
    Accepted,
    /// 401 with `WWW-Authenticate: Bearer`: a token service decides.
    Bearer(TokenService),
}

/// What a login is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Pulling only.
    Read,
    /// Pushing, which also reads (blob checks, the referrers fallback tag).
    Write,
}

impl Remote {
    /// Authenticates for `access`, so bad credentials fail before any transfer, and leaves the
    /// tokens cached for every later request. An identity token is first exchanged for an
    /// access token.
    pub async fn login(&self, access: Access) -> Result<()> {
        if access == Access::Write {
            // Set first, so a refused login names push access.
            self.streams.store(true, Ordering::SeqCst);
        }
        if let Credential::IdentityToken(refresh) = &self.resolved.credential {
            let access = self
                .policy
                .run("the identity token exchange", || {
                    self.exchange_identity_token(refresh)
                })
                .await?;
            *self.auth.lock().expect("auth") = RegistryAuth::Bearer(access.expose().to_owned());
        }
        let challenge = self
            .policy
            .run("the registry's API check (GET /v2/)", || self.probe(true))
            .await?;
        if matches!(challenge, Challenge::Accepted)
            && matches!(self.resolved.credential, Credential::Anonymous)
        {
            // A registry that asks for no credentials at all. oci-client caches only the
            // tokens it is issued, so it would ask GET /v2/ again before every request; an
            // empty bearer token, which such a registry ignores, is cached instead.
            *self.auth.lock().expect("auth") = RegistryAuth::Bearer(String::new());
        }
        let auth = self.registry_auth();
        if let RegistryAuth::Bearer(token) = &auth {
            // The token is settled already (empty for a registry that asks for none): it
            // goes into oci-client's cache once its client is built.
            for operation in [RegistryOperation::Push, RegistryOperation::Pull] {
                self.keep_token(operation, Some(token.clone()));
            }
            if !matches!(self.resolved.credential, Credential::Anonymous) {
                self.verified.store(true, Ordering::SeqCst);
            }
            return Ok(());
        }
        let operations: &[RegistryOperation] = match access {
            Access::Read => &[RegistryOperation::Pull],
            Access::Write => &[RegistryOperation::Push, RegistryOperation::Pull],
        };
        let service = match challenge {
            Challenge::Bearer(service) => Some(service),
            // The registry took the basic credentials, which the bare requests send as they
            // are. oci-client, which a push may still use (a manifest's digest check), probes
            // `/v2/` without them and would follow a bearer challenge there with them, so that
            // challenge is read and checked here.
            Challenge::Accepted if access == Access::Write => {
                match self
                    .policy
                    .run("the registry's API check (GET /v2/)", || self.probe(false))
                    .await?
                {
                    Challenge::Bearer(service) => Some(service),
                    Challenge::Accepted => None,
                }
            }
            Challenge::Accepted => None,
        };
        if let Some(service) = service {
            // The tokens now, under retries; later requests find them cached.
            for &operation in operations {
                let token = self
                    .policy
                    .run("authentication", || self.fetch_token(&service, operation))
                    .await?;
                self.keep_token(operation, token.map(|t| t.expose().to_owned()));
            }
            // oci-client is handed the tokens, never the credentials.
            let first = self.token(operations[0]);
            *self.auth.lock().expect("auth") =
                RegistryAuth::Bearer(first.map(|t| t.expose().to_owned()).unwrap_or_default());
            *self.token_service.lock().expect("token service") = Some(service);
        }
        if !matches!(self.resolved.credential, Credential::Anonymous) {
            self.verified.store(true, Ordering::SeqCst);
        }
        Ok(())
    }

    /// Asks the token service for a new token for `operation` after the registry refused the
    /// one held (it expired), and hands it to oci-client too.
    pub(super) async fn renew_token(&self, operation: RegistryOperation) {
        let Some(service) = self.token_service.lock().expect("token service").clone() else {
            return;
        };
        let Ok(Some(token)) = self.fetch_token(&service, operation).await else {
            return;
        };
        let token = token.expose().to_owned();
        self.keep_token(operation, Some(token.clone()));
        if let Some(Ok(client)) = self.client.built.get() {
            // A bearer token is cached as it is, without a request.
            let _ = client
                .auth(
                    &self.auth_reference(),
                    &RegistryAuth::Bearer(token),
                    operation,
                )
                .await;
        }
    }

    fn keep_token(&self, operation: RegistryOperation, token: Option<String>) {
        let token = token.filter(|t| !t.is_empty()).map(Secret::new);
        let mut tokens = self.tokens.lock().expect("tokens");
        match operation {
            RegistryOperation::Push => tokens.push = token,
            RegistryOperation::Pull => tokens.pull = token,
        }
    }

    /// The bearer token held for `operation`, if one was issued.
    pub(super) fn token(&self, operation: RegistryOperation) -> Option<Secret> {
        let tokens = self.tokens.lock().expect("tokens");
        match operation {
            RegistryOperation::Push => tokens.push.clone(),
            RegistryOperation::Pull => tokens.pull.clone(),
        }
    }

    /// `GET /v2/`, with the basic credentials (if any) when `credentials`.
    async fn probe(&self, credentials: bool) -> std::result::Result<Challenge, Failure> {
        let url = self.registry_url().join("v2/").expect("a valid URL path");
        let mut request = self.http.get(url);
        if let (true, Credential::Basic { username, password }) =
            (credentials, &self.resolved.credential)
        {
            request = request.basic_auth(username, Some(password.expose()));
        }
        let response = request
            .send()
            .await
            .map_err(|e| self.transport_failure(&e))?;
        let status = response.status().as_u16();
        let challenge = response
            .headers()
            .get(reqwest::header::WWW_AUTHENTICATE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        match status {
            200..=299 => Ok(Challenge::Accepted),
            401 => match self.token_service(&challenge)? {
                Some(service) => Ok(Challenge::Bearer(service)),
                // Without credentials, a registry that checks them itself.
                None if !credentials => Ok(Challenge::Accepted),
                None => Err(Failure::from(self.unauthorized(
                    status,
                    envelope_detail(&error_text(response).await).unwrap_or_default(),
                ))),
            },
            403 => Err(Failure::from(self.unauthorized(
                status,
                envelope_detail(&error_text(response).await).unwrap_or_default(),
            ))),
            _ => Err(Failure {
                error: Error::Registry {
                    registry: self.image.registry().to_owned(),
                    operation: "the API check (GET /v2/)".to_owned(),
                    reason: format!("HTTP {status}"),
                },
                retry: retryable_status(status),
            }),
        }
    }
}
