//! Docker's identity tokens: an identity token (from `docker login` with some registries' SSO,
//! `az acr login`, or a credential helper answering the user `<token>`) is an OAuth2 refresh
//! token, exchanged at the realm the registry's `WWW-Authenticate: Bearer` challenge names for
//! an access token scoped to the repository.

use super::token::TokenService;
use super::{Failure, Remote};
use crate::error::Error;
use crate::secret::Secret;

impl Remote {
    /// Docker's identity-token flow: the token is an OAuth2 refresh token, posted to the
    /// `service` login found, for an access token scoped to this repository.
    pub(super) async fn exchange_identity_token(
        &self,
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
            .send(self.http.post(service.realm.clone()).form(&form))
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

/// The parameters (`realm="…",service="…",scope="…"`, names lower-cased) of a
/// `WWW-Authenticate: Bearer` challenge; `None` when it is not one or names no realm.
pub fn parse_bearer_challenge(header: &str) -> Option<Vec<(String, String)>> {
    let rest = header
        .trim()
        .strip_prefix("Bearer ")
        .or_else(|| header.trim().strip_prefix("bearer "))?;
    let mut params = Vec::new();
    let mut chars = rest.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| *c == ',' || c.is_whitespace()) {
            chars.next();
        }
        let key: String = chars.by_ref().take_while(|c| *c != '=').collect();
        if key.is_empty() {
            break;
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => value.extend(chars.next()),
                    '"' => break,
                    c => value.push(c),
                }
            }
        } else {
            value = chars.by_ref().take_while(|c| *c != ',').collect();
        }
        params.push((key.trim().to_ascii_lowercase(), value.trim().to_owned()));
    }
    params.iter().any(|(k, _)| k == "realm").then_some(params)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_challenges_parse() {
        let p = parse_bearer_challenge(
            r#"Bearer realm="https://ghcr.io/token",service="ghcr.io",scope="repository:a/b:pull""#,
        )
        .unwrap();
        assert_eq!(p[0], ("realm".into(), "https://ghcr.io/token".into()));
        assert_eq!(p[1], ("service".into(), "ghcr.io".into()));
        assert_eq!(p[2].1, "repository:a/b:pull");
        assert!(parse_bearer_challenge(r#"Basic realm="x""#).is_none());
    }
}
