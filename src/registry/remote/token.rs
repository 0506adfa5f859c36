//! Bearer tokens: the token service a registry's `WWW-Authenticate: Bearer` challenge names is
//! checked before any credential goes there. A realm in plain HTTP gets nothing unless the
//! registry itself is reached in plain HTTP (`insecure`); a realm on another host is named in a
//! warning.

use reqwest::{StatusCode, Url};

use super::wire::Attempt;
use super::{Access, Credential, Failure, Remote};
use crate::error::Error;
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
        if !std::mem::replace(&mut self.auth().realm_named, true) {
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

    /// A token for `access` to this repository from `service`, asked with the basic
    /// credentials (or none); `None` when the service issued an empty one. A token for pushing
    /// also allows pulling, so one token serves every request of a session.
    pub(super) async fn fetch_token(
        &self,
        attempt: Attempt,
        service: &TokenService,
        access: Access,
    ) -> Result<Option<Secret>, Failure> {
        let actions = match access {
            Access::Read => "pull",
            Access::Write => "pull,push",
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
        let response = self.send_plain(attempt, request).await?;
        if response.status() != StatusCode::OK {
            return Err(self.token_refusal(response, "authentication").await);
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
