//! Docker's identity tokens: an identity token (from `docker login` with some registries' SSO,
//! `az acr login`, or a credential helper answering the user `<token>`) is an OAuth2 refresh
//! token. oci-client cannot send one, so it is exchanged here, at the realm the registry's
//! `WWW-Authenticate: Bearer` challenge names, for an access token scoped to the repository.

use super::errors::envelope_detail;
use super::{Failure, Remote, retryable_status};
use crate::error::Error;
use crate::secret::Secret;

impl Remote {
    /// Docker's identity-token flow: the token is an OAuth2 refresh token, posted to the realm
    /// the registry's `WWW-Authenticate: Bearer` challenge names, for an access token scoped to
    /// this repository.
    pub(super) async fn exchange_identity_token(
        &self,
        refresh: &Secret,
    ) -> Result<Secret, Failure> {
        let registry = self.image.registry();
        let url = format!("{}://{registry}/v2/", self.scheme);
        let challenge = self
            .http
            .get(&url)
            .send()
            .await
            .map_err(|e| self.transport_failure(&e))?;
        let header = challenge
            .headers()
            .get(reqwest::header::WWW_AUTHENTICATE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let service = self.token_service(&header)?.ok_or_else(|| {
            Failure::from(Error::Credentials {
                source_name: format!("the identity token from {}", self.resolved.source),
                reason: format!(
                    "cannot be used: registry {registry} asks for no bearer token (WWW-Authenticate: `{header}`)"
                ),
            })
        })?;
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
            .http
            .post(service.realm.clone())
            .form(&form)
            .send()
            .await
            .map_err(|e| self.transport_failure(&e))?;
        let status = response.status();
        if !status.is_success() {
            let retry = retryable_status(status.as_u16());
            let body = super::http::error_text(response).await;
            let error =
                if status.as_u16() == 401 || status.as_u16() == 403 || status.as_u16() == 400 {
                    self.unauthorized(status.as_u16(), envelope_detail(&body).unwrap_or_default())
                } else {
                    Error::Registry {
                        registry: registry.to_owned(),
                        operation: "the identity token exchange".to_owned(),
                        reason: format!("HTTP {status}"),
                    }
                };
            return Err(Failure { error, retry });
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

/// `realm="…",service="…",scope="…"` of a `Bearer` challenge.
pub(super) fn parse_bearer_challenge(header: &str) -> Option<Vec<(String, String)>> {
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
