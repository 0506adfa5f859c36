//! A registry's answers in our terms: the one place that reads a refusal (status, OCI error
//! envelope, `Retry-After`), names a transport failure, and decides which of them are worth
//! another attempt.

use reqwest::Response;

use super::wire::{error_text, retry_after};
use super::{Failure, Remote};
use crate::error::Error;
use crate::registry::retry::Retry;

/// An OCI error envelope: `{"errors": [{"code": "...", "message": "..."}]}`. Codes are kept as
/// sent: registries add their own.
#[derive(Debug, serde::Deserialize)]
struct Envelope {
    errors: Vec<EnvelopeError>,
}

#[derive(Debug, serde::Deserialize)]
struct EnvelopeError {
    code: String,
    #[serde(default)]
    message: String,
}

/// Whether an HTTP status is worth another attempt.
pub(super) fn retryable_status(code: u16) -> Option<Retry> {
    matches!(code, 408 | 429 | 500..=599).then(|| Retry {
        reason: format!("HTTP {code}"),
        after: None,
    })
}

/// `CODE: message; CODE: message` from an OCI error envelope in `text`, if it is one.
pub(super) fn envelope_detail(text: &str) -> Option<String> {
    let envelope: Envelope = serde_json::from_str(text.trim()).ok()?;
    (!envelope.errors.is_empty()).then(|| {
        envelope
            .errors
            .iter()
            .map(|e| format!("{}: {}", e.code, e.message))
            .collect::<Vec<_>>()
            .join("; ")
    })
}

/// The first line of a registry's text answer, shortened: error pages can be long HTML.
pub(super) fn one_line(text: &str) -> String {
    let line = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("");
    if line.chars().count() > 200 {
        format!("{}…", line.chars().take(200).collect::<String>())
    } else {
        line.to_owned()
    }
}

/// A refusal that is not about credentials: the registry's words, and whether (and when) it is
/// worth another attempt.
fn refused(registry: &str, operation: &str, status: u16, body: &str) -> Error {
    Error::Registry {
        registry: registry.to_owned(),
        operation: operation.to_owned(),
        reason: match envelope_detail(body) {
            Some(d) => format!("HTTP {status} {d}"),
            None if body.trim().is_empty() => format!("HTTP {status}"),
            None => format!("HTTP {status}: {}", one_line(body)),
        },
    }
}

/// A transport failure: a TLS problem gets its own error (with the `ca-file` hint), the rest
/// say why the registry could not be reached.
pub(super) fn transport_error(e: &reqwest::Error, registry: &str) -> Error {
    let reason = transport_reason(e);
    if is_tls(e) {
        if reason.contains("corrupt message") || reason.contains("InvalidContentType") {
            return Error::Unreachable {
                registry: registry.to_owned(),
                reason: "it does not speak TLS; for a plain-HTTP registry set `insecure: true`"
                    .to_owned(),
            };
        }
        return Error::Tls {
            registry: registry.to_owned(),
            reason,
        };
    }
    Error::Unreachable {
        registry: registry.to_owned(),
        reason,
    }
}

/// Whether the transport failed in the TLS handshake.
fn is_tls(e: &reqwest::Error) -> bool {
    let reason = transport_reason(e);
    [
        "certificate",
        "UnknownIssuer",
        "corrupt message",
        "InvalidContentType",
        "tls handshake",
        "NotValidForName",
    ]
    .iter()
    .any(|m| reason.contains(m))
}

/// The innermost cause of a transport error, which is what names the problem
/// ("connection refused", "invalid peer certificate").
pub(super) fn transport_reason(e: &reqwest::Error) -> String {
    let mut source: &dyn std::error::Error = e;
    while let Some(next) = source.source() {
        source = next;
    }
    let inner = source.to_string();
    if e.is_timeout() {
        "the connection timed out".to_owned()
    } else if inner.is_empty() {
        e.to_string()
    } else {
        inner
    }
}

impl Remote {
    /// The credentials refused (`status` 401 or 403), named with the user and where the
    /// credentials came from.
    pub(super) fn unauthorized(&self, status: u16, detail: String) -> Error {
        Error::Unauthorized {
            registry: self.image.registry().to_owned(),
            user: self.resolved.username().map(str::to_owned),
            status,
            detail,
            credential_source: self.resolved.source.clone(),
            push: self.pushing(),
        }
    }

    /// A request that never got an answer: a TLS failure is final, the rest are retried.
    pub(super) fn transport_failure(&self, e: &reqwest::Error) -> Failure {
        let error = transport_error(e, self.image.registry());
        let retry = match &error {
            Error::Tls { .. } => None,
            _ => Some(Retry {
                reason: transport_reason(e),
                after: None,
            }),
        };
        Failure { error, retry }
    }

    /// What a refused request means: credentials refused (a lost or expired token is asked for
    /// again, and the request retried), or an error worth another attempt (after the
    /// registry's `Retry-After`), or one that is not.
    pub(super) async fn refusal(&self, response: Response, operation: &str) -> Failure {
        let status = response.status().as_u16();
        let after = retry_after(&response);
        let challenge = super::wire::challenge(&response).map(str::to_owned);
        let body = error_text(response).await;
        if status == 401 || status == 403 {
            let retry = (status == 401 && self.authenticate_again(challenge.as_deref()).await)
                .then(|| Retry {
                    reason:
                        "HTTP 401 after the registry accepted the credentials; authenticating again"
                            .to_owned(),
                    after: None,
                });
            return Failure {
                error: self.unauthorized(status, envelope_detail(&body).unwrap_or_default()),
                retry,
            };
        }
        Failure {
            error: refused(self.image.registry(), operation, status, &body),
            retry: retryable_status(status).map(|r| Retry { after, ..r }),
        }
    }

    /// A token service's refusal (400, 401 or 403 name the credentials refused; a gateway's
    /// error is worth another attempt).
    pub(super) async fn token_refusal(&self, response: Response, operation: &str) -> Failure {
        let status = response.status().as_u16();
        let after = retry_after(&response);
        let body = error_text(response).await;
        if matches!(status, 400 | 401 | 403) {
            let detail = envelope_detail(&body).unwrap_or_else(|| one_line(&body));
            let code = if status == 403 || detail.contains("DENIED") {
                403
            } else {
                401
            };
            return Failure::from(self.unauthorized(code, detail));
        }
        Failure {
            error: Error::Registry {
                registry: self.image.registry().to_owned(),
                operation: operation.to_owned(),
                reason: format!("the token service answered HTTP {status}"),
            },
            retry: retryable_status(status).map(|_| Retry {
                reason: format!("the token service answered `{}`", one_line(&body)),
                after,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_is_retried() {
        for code in [408, 429, 500, 502, 503, 504] {
            assert!(retryable_status(code).is_some(), "{code}");
        }
        for code in [400, 401, 403, 404, 405] {
            assert!(retryable_status(code).is_none(), "{code}");
        }
    }

    #[test]
    fn registry_error_codes_are_kept() {
        let e = refused(
            "r.example",
            "the manifest upload",
            400,
            r#"{"errors":[{"code":"MANIFEST_INVALID","message":"manifest invalid"}]}"#,
        );
        assert_eq!(
            e.to_string(),
            "registry r.example refused the manifest upload: HTTP 400 MANIFEST_INVALID: manifest invalid"
        );
        // A registry's own code, and an envelope without messages.
        assert_eq!(
            envelope_detail(r#"{"errors":[{"code":"ARTIFACT_LOCKED"}]}"#).as_deref(),
            Some("ARTIFACT_LOCKED: ")
        );
        let page = refused("r.example", "x", 502, "<html>\n<h1>502 Bad Gateway</h1>");
        assert!(page.to_string().ends_with("HTTP 502: <html>"), "{page}");
    }
}
