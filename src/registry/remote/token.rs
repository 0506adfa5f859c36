//! Bearer tokens, asked for here rather than by oci-client: the token service a registry's
//! `WWW-Authenticate: Bearer` challenge names is checked before any credential goes there. A
//! realm in plain HTTP gets nothing unless the registry itself is reached in plain HTTP
//! (`insecure`); a realm on another host is named in a warning. oci-client is then handed the
//! tokens, so it never follows a challenge with the credentials itself.

use oci_client::RegistryOperation;
use reqwest::{StatusCode, Url};

use super::errors::{envelope_detail, one_line, retryable_status};
use super::http::{error_text, retry_after};
use super::identity::parse_bearer_challenge;
use super::{Credential, Failure, Remote};
use crate::error::Error;
use crate::registry::retry::Retry;
use crate::secret::Secret;

/// The largest token answer read: a JSON object holding a JWT or two.
pub(super) const TOKEN_ANSWER_MAX: u64 = 1 << 20;

/// Where a registry sends its clients for tokens, checked.
#[derive(Debug, Clone)]
pub(super) struct TokenService {
    /// The realm: the token endpoint's URL.
    pub(super) realm: Url,
    /// The `service` parameter of the challenge, passed back as it came.
    pub(super) service: Option<String>,
}

impl Remote {
    /// The token service a `WWW-Authenticate` value names; `None` when it is no bearer
    /// challenge. A plain-HTTP realm for a registry reached over HTTPS is refused, so no
    /// credential ever crosses the network in the clear (without credentials it is only warned
    /// about); a realm on another host is warned about.
    pub(super) fn token_service(&self, header: &str) -> Result<Option<TokenService>, Error> {
        let Some(params) = parse_bearer_challenge(header) else {
            return Ok(None);
        };
        let param = |name: &str| {
            params
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        };
        let registry = self.registry_url();
        let named = param("realm").unwrap_or_default();
        let realm = registry
            .join(&named)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some())
            .ok_or_else(|| Error::Registry {
                registry: self.image.registry().to_owned(),
                operation: "authentication".to_owned(),
                reason: format!("its challenge names no usable token realm (`{named}`)"),
            })?;
        let anonymous = matches!(self.resolved.credential, Credential::Anonymous);
        let plain = realm.scheme() == "http" && registry.scheme() == "https";
        if plain && !anonymous {
            return Err(Error::PlainHttpRealm {
                registry: self.image.registry().to_owned(),
                realm: realm.to_string(),
            });
        }
        // Said once, however many times the challenge is read.
        if !self
            .realm_named
            .swap(true, std::sync::atomic::Ordering::SeqCst)
        {
            if plain {
                tracing::warn!(
                    "registry {} hands out tokens at `{realm}`, in plain HTTP; no credentials are sent there (anonymous)",
                    self.image.registry()
                );
            } else if realm.host_str() != registry.host_str() {
                tracing::warn!(
                    "registry {} sends its clients to another host for tokens: {}; the credentials go there",
                    registry.host_str().unwrap_or_default(),
                    realm.host_str().unwrap_or_default()
                );
            }
        }
        Ok(Some(TokenService {
            realm,
            service: param("service"),
        }))
    }

    /// A token for `operation` on this repository from `service`, asked with the basic
    /// credentials (or none); `None` when the service issued an empty one.
    pub(super) async fn fetch_token(
        &self,
        service: &TokenService,
        operation: RegistryOperation,
    ) -> Result<Option<Secret>, Failure> {
        let actions = match operation {
            RegistryOperation::Pull => "pull",
            RegistryOperation::Push => "pull,push",
        };
        let mut url = service.realm.clone();
        url.query_pairs_mut().append_pair(
            "scope",
            &format!("repository:{}:{actions}", self.image.repository()),
        );
        if let Some(name) = &service.service {
            url.query_pairs_mut().append_pair("service", name);
        }
        let mut request = self.http.get(url);
        if let Credential::Basic { username, password } = &self.resolved.credential {
            request = request.basic_auth(username, Some(password.expose()));
        }
        let response = self.send(request).await?;
        let status = response.status();
        if status != StatusCode::OK {
            let after = retry_after(&response);
            let body = error_text(response).await;
            if matches!(status.as_u16(), 400 | 401 | 403) {
                let detail = envelope_detail(&body).unwrap_or_else(|| one_line(&body));
                let code = if status.as_u16() == 403 || detail.contains("DENIED") {
                    403
                } else {
                    401
                };
                return Err(Failure::from(self.unauthorized(code, detail)));
            }
            return Err(Failure {
                error: Error::Registry {
                    registry: self.image.registry().to_owned(),
                    operation: "authentication".to_owned(),
                    reason: format!("the token service answered HTTP {status}"),
                },
                retry: retryable_status(status.as_u16()).map(|_| Retry {
                    reason: format!("the token service answered `{}`", one_line(&body)),
                    after,
                }),
            });
        }
        #[derive(serde::Deserialize)]
        struct TokenAnswer {
            token: Option<String>,
            access_token: Option<String>,
        }
        let bytes = self
            .body(response, TOKEN_ANSWER_MAX, "the token request")
            .await?;
        let answer: TokenAnswer = serde_json::from_slice(&bytes).map_err(|e| {
            Failure::from(Error::Registry {
                registry: self.image.registry().to_owned(),
                operation: "authentication".to_owned(),
                reason: format!("the token service answered no token: {e}"),
            })
        })?;
        Ok(answer
            .token
            .or(answer.access_token)
            .filter(|t| !t.is_empty())
            .map(Secret::new))
    }
}
