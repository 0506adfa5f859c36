//! oci-client's errors in our terms: [`map_oci_error`] maps them (the one place that knows
//! their shapes), [`classify`] decides which are worth another attempt.

use oci_client::errors::{OciDistributionError, OciEnvelope, OciErrorCode};

use super::Op;
use crate::error::Error;
use crate::registry::retry::Retry;

/// Whether an HTTP status is worth another attempt.
pub(super) fn retryable_status(code: u16) -> Option<Retry> {
    matches!(code, 408 | 429 | 500..=599).then(|| Retry {
        reason: format!("HTTP {code}"),
        after: None,
    })
}

/// Whether a failure is worth another attempt: connection errors, 408, 429, 5xx, and a
/// `BLOB_UNKNOWN` answer to a manifest put (the registry has not caught up with the blobs).
pub(super) fn classify(e: &OciDistributionError, op: Op) -> Option<Retry> {
    let by_codes = |codes: &[&OciErrorCode]| -> Option<Retry> {
        for code in codes {
            match code {
                OciErrorCode::Toomanyrequests => {
                    return Some(Retry {
                        reason: "HTTP 429 TOOMANYREQUESTS".to_owned(),
                        after: None,
                    });
                }
                OciErrorCode::BlobUnknown | OciErrorCode::ManifestBlobUnknown
                    if op == Op::PutManifest =>
                {
                    return Some(Retry {
                        reason: "the registry does not see the uploaded blobs yet (BLOB_UNKNOWN)"
                            .to_owned(),
                        after: None,
                    });
                }
                _ => {}
            }
        }
        None
    };
    match e {
        OciDistributionError::RequestError(re) => match re.status() {
            Some(status) => retryable_status(status.as_u16()),
            None if re.is_builder() || is_tls(re) => None,
            None => Some(Retry {
                reason: transport_reason(re),
                after: None,
            }),
        },
        OciDistributionError::ServerError { code, message, .. } => {
            retryable_status(*code).or_else(|| {
                let envelope: OciEnvelope = serde_json::from_str(message).ok()?;
                by_codes(&envelope.errors.iter().map(|e| &e.code).collect::<Vec<_>>())
            })
        }
        OciDistributionError::RegistryError { envelope, .. } => {
            by_codes(&envelope.errors.iter().map(|e| &e.code).collect::<Vec<_>>())
        }
        // oci-client keeps only the token endpoint's body: a gateway's error page is worth
        // another attempt, a refusal (a JSON error) is not.
        OciDistributionError::AuthenticationFailure(body) => {
            let text = body.to_ascii_lowercase();
            let busy = [
                "bad gateway",
                "service unavailable",
                "gateway timeout",
                "too many requests",
                "internal server error",
            ];
            busy.iter().any(|w| text.contains(w)).then(|| Retry {
                reason: format!("the token endpoint answered `{}`", one_line(body)),
                after: None,
            })
        }
        _ => None,
    }
}

/// What an error message needs to know besides the error.
pub(super) struct ErrorContext<'a> {
    pub(super) registry: &'a str,
    pub(super) user: Option<&'a str>,
    pub(super) credential_source: &'a str,
    pub(super) operation: &'a str,
    /// Whether the session is for pushing: a refusal then names push access, else pull access.
    pub(super) push: bool,
}

/// Maps oci-client's errors to ours: the one place that knows their shapes.
pub fn map_oci_error(
    e: OciDistributionError,
    registry: &str,
    user: Option<&str>,
    operation: &str,
) -> Error {
    let source = if user.is_some() {
        "the given credentials"
    } else {
        "no credentials (anonymous)"
    };
    map_error(
        e,
        &ErrorContext {
            registry,
            user,
            credential_source: source,
            operation,
            push: false,
        },
    )
}

pub(super) fn map_error(e: OciDistributionError, cx: &ErrorContext<'_>) -> Error {
    let registry = cx.registry.to_owned();
    let unauthorized = |status: u16, detail: String| Error::Unauthorized {
        registry: cx.registry.to_owned(),
        user: cx.user.map(str::to_owned),
        status,
        detail,
        credential_source: cx.credential_source.to_owned(),
        push: cx.push,
    };
    let refused = |reason: String| Error::Registry {
        registry: cx.registry.to_owned(),
        operation: cx.operation.to_owned(),
        reason,
    };
    match e {
        OciDistributionError::UnauthorizedError { .. } => unauthorized(401, String::new()),
        OciDistributionError::AuthenticationFailure(reason) => {
            // The token endpoint's answer: an OCI envelope, a JSON `details`, or text.
            let detail = envelope_detail(&reason).unwrap_or_else(|| one_line(&reason));
            unauthorized(
                if reason.contains("403") || detail.contains("DENIED") {
                    403
                } else {
                    401
                },
                detail,
            )
        }
        OciDistributionError::DigestError(oci_client::errors::DigestError::VerificationError {
            expected,
            actual,
        }) => Error::DigestMismatch {
            what: cx.operation.to_owned(),
            expected,
            actual,
        },
        OciDistributionError::RegistryError { envelope, .. } => {
            let detail = describe_envelope(&envelope);
            if envelope
                .errors
                .iter()
                .any(|e| e.code == OciErrorCode::Unauthorized)
            {
                return unauthorized(401, detail);
            }
            if envelope
                .errors
                .iter()
                .any(|e| e.code == OciErrorCode::Denied)
            {
                return unauthorized(403, detail);
            }
            refused(detail)
        }
        OciDistributionError::ServerError { code, message, .. } => {
            let detail = envelope_detail(&message);
            if code == 401 || code == 403 {
                return unauthorized(code, detail.unwrap_or_default());
            }
            refused(match detail {
                Some(d) => format!("HTTP {code} {d}"),
                None if message.trim().is_empty() => format!("HTTP {code}"),
                None => format!("HTTP {code}: {}", one_line(&message)),
            })
        }
        OciDistributionError::RequestError(e) => {
            if let Some(status) = e.status() {
                if status.as_u16() == 401 || status.as_u16() == 403 {
                    return unauthorized(status.as_u16(), String::new());
                }
                return refused(format!("HTTP {status}"));
            }
            transport_error(&e, &registry)
        }
        other => refused(other.to_string()),
    }
}

/// `CODE: message; CODE: message` from an OCI error envelope in `text`, if it is one.
pub(super) fn envelope_detail(text: &str) -> Option<String> {
    let envelope: OciEnvelope = serde_json::from_str(text.trim()).ok()?;
    (!envelope.errors.is_empty()).then(|| describe_envelope(&envelope))
}

fn describe_envelope(envelope: &OciEnvelope) -> String {
    envelope
        .errors
        .iter()
        .map(|e| {
            let code = serde_json::to_value(&e.code)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_else(|| format!("{:?}", e.code));
            format!("{code}: {}", e.message)
        })
        .collect::<Vec<_>>()
        .join("; ")
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_is_retried() {
        let server = |code: u16, message: &str| OciDistributionError::ServerError {
            code,
            url: "http://r/v2/".into(),
            message: message.into(),
        };
        for code in [408, 429, 500, 502, 503, 504] {
            assert!(classify(&server(code, ""), Op::Other).is_some(), "{code}");
        }
        for code in [400, 401, 403, 404, 405] {
            assert!(classify(&server(code, ""), Op::Other).is_none(), "{code}");
        }
        let blob_unknown = server(
            400,
            r#"{"errors":[{"code":"MANIFEST_BLOB_UNKNOWN","message":"blob unknown to registry"}]}"#,
        );
        assert!(classify(&blob_unknown, Op::PutManifest).is_some());
        assert!(classify(&blob_unknown, Op::Other).is_none());
        let gateway =
            OciDistributionError::AuthenticationFailure("<html>502 Bad Gateway</html>".into());
        assert!(classify(&gateway, Op::Other).is_some());
        let refused = OciDistributionError::AuthenticationFailure(
            r#"{"errors":[{"code":"UNAUTHORIZED","message":"bad credentials"}]}"#.into(),
        );
        assert!(classify(&refused, Op::Other).is_none());
    }

    #[test]
    fn registry_error_codes_are_kept() {
        let e = map_oci_error(
            OciDistributionError::ServerError {
                code: 400,
                url: "http://r/v2/".into(),
                message: r#"{"errors":[{"code":"MANIFEST_INVALID","message":"manifest invalid"}]}"#
                    .into(),
            },
            "r.example",
            None,
            "the manifest upload",
        );
        assert_eq!(
            e.to_string(),
            "registry r.example refused the manifest upload: HTTP 400 MANIFEST_INVALID: manifest invalid"
        );
    }
}
