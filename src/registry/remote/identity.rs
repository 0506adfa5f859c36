//! Docker's identity tokens: an identity token (from `docker login` with some registries' SSO,
//! `az acr login`, or a credential helper answering the user `<token>`) is an OAuth2 refresh
//! token, exchanged at the realm the registry's `WWW-Authenticate: Bearer` challenge names for
//! an access token scoped to the repository.

use super::token::TokenService;
use super::wire::Attempt;
use super::{Failure, Remote};
use crate::error::Error;
use crate::secret::Secret;

impl Remote {
    /// Docker's identity-token flow: the token is an OAuth2 refresh token, posted to the
    /// `service` login found, for an access token scoped to this repository.
    pub(super) async fn exchange_identity_token(
        &self,
        attempt: Attempt,
        service: &TokenService,
        refresh: &Secret,
    ) -> Result<Secret, Failure> {
        let registry = self.image.registry();
        let scope = format!("repository:{}:pull,push", self.image.repository());
        let mut form = vec![
            ("grant_type", "refresh_token".to_owned()),
            ("refresh_token", refresh.expose().to_owned()),
            ("client_id", "wasm-oci".to_owned()),
            ("scope", scope),
        ];
        if let Some(name) = &service.service {
            form.push(("service", name.clone()));
        }
        let response = self
            .send_plain(attempt, self.http.post(service.realm.clone()).form(&form))
            .await?;
        if !response.status().is_success() {
            return Err(self
                .token_refusal(response, "the identity token exchange")
                .await);
        }
        #[derive(serde::Deserialize)]
        struct TokenAnswer {
            access_token: Option<String>,
            token: Option<String>,
        }
        let bytes = self
            .body(
                response,
                super::token::TOKEN_ANSWER_MAX,
                "the identity token exchange",
            )
            .await?;
        let answer: TokenAnswer = serde_json::from_slice(&bytes).unwrap_or(TokenAnswer {
            access_token: None,
            token: None,
        });
        answer
            .access_token
            .or(answer.token)
            .map(Secret::new)
            .ok_or_else(|| {
                Failure::from(Error::Registry {
                    registry: registry.to_owned(),
                    operation: "the identity token exchange".to_owned(),
                    reason: "the token endpoint answered without an access token".to_owned(),
                })
            })
    }
}
