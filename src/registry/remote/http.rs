//! Requests made with the bare HTTP client rather than through oci-client: the layer's
//! streamed upload (`upload.rs`), and the reads a pull makes (`read.rs`), which then need not
//! wait for oci-client's client to be built. They carry the credentials [`Remote::login`]
//! settled, and their refusals are read here in the terms oci-client's are read in
//! `errors.rs`.

use std::time::Duration;

use oci_client::RegistryOperation;
use reqwest::header::{AUTHORIZATION, LOCATION};
use reqwest::{Method, RequestBuilder, Response, StatusCode, Url};

use super::errors::{envelope_detail, one_line, retryable_status};
use super::{Credential, Failure, Remote};
use crate::error::Error;
use crate::registry::retry::Retry;

/// The most of an error answer's body that is read: enough for an OCI error envelope or the
/// first lines of a gateway's page, never an endless stream.
pub(super) const ERROR_BODY_MAX: usize = 64 << 10;

/// The start of `response`'s body as text, at most [`ERROR_BODY_MAX`] bytes of it: an error
/// answer is read for its words, and the rest is left unread.
pub(super) async fn error_text(response: Response) -> String {
    use futures_util::StreamExt;
    let mut bytes = Vec::new();
    let mut stream = response.bytes_stream();
    while let Some(Ok(chunk)) = stream.next().await {
        let room = ERROR_BODY_MAX - bytes.len();
        bytes.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if bytes.len() == ERROR_BODY_MAX {
            break;
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

/// The `Retry-After` of a response, in seconds (the form registries send).
pub(super) fn retry_after(response: &Response) -> Option<Duration> {
    let value = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?;
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}

impl Remote {
    /// `<registry>/v2/<repository>/<rest>`.
    pub(super) fn api_url(&self, rest: &str) -> Url {
        self.registry_url()
            .join(&format!("v2/{}/{rest}", self.image.repository()))
            .expect("a repository path is a valid URL path")
    }

    /// The registry's base URL.
    pub(super) fn registry_url(&self) -> Url {
        Url::parse(&format!("{}://{}/", self.scheme, self.image.registry()))
            .expect("a registry name is a valid URL host")
    }

    /// A request to `url` for `operation`, with the credentials only when it goes to the
    /// registry itself (an upload location or a blob may be elsewhere, such as storage) and not
    /// in the clear when the registry is reached over HTTPS.
    pub(super) fn authorized(
        &self,
        operation: RegistryOperation,
        method: Method,
        url: Url,
    ) -> RequestBuilder {
        self.authorized_on(&self.http, operation, method, url)
    }

    /// [`Remote::authorized`], made with `client`.
    pub(super) fn authorized_on(
        &self,
        client: &reqwest::Client,
        operation: RegistryOperation,
        method: Method,
        url: Url,
    ) -> RequestBuilder {
        let registry = self.registry_url();
        let same_registry = url.host_str() == registry.host_str()
            && url.port_or_known_default() == registry.port_or_known_default()
            && (registry.scheme() == "http" || url.scheme() == "https");
        let request = client.request(method, url);
        if !same_registry {
            return request;
        }
        let token = self.token(operation);
        match (token, &self.resolved.credential) {
            (Some(token), _) => request.header(AUTHORIZATION, format!("Bearer {}", token.expose())),
            (None, Credential::Basic { username, password }) => {
                request.basic_auth(username, Some(password.expose()))
            }
            (None, _) => request,
        }
    }

    /// Sends `request`; a failure to reach the registry is a transport failure.
    pub(super) async fn send(
        &self,
        request: RequestBuilder,
    ) -> std::result::Result<Response, Failure> {
        request.send().await.map_err(|e| self.transport_failure(&e))
    }

    /// The `Location` of a response that should be `expected`, resolved against `base`.
    pub(super) async fn location(
        &self,
        response: Response,
        expected: StatusCode,
        base: &Url,
        operation: &str,
    ) -> std::result::Result<Url, Failure> {
        if response.status() != expected {
            return Err(self
                .refusal(response, RegistryOperation::Push, operation)
                .await);
        }
        let location = response
            .headers()
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| base.join(v).ok());
        location.ok_or_else(|| {
            Failure::from(Error::Registry {
                registry: self.image.registry().to_owned(),
                operation: operation.to_owned(),
                reason: format!("HTTP {} without a Location header", expected.as_u16()),
            })
        })
    }

    /// What a refused request for `access` means: credentials refused (a lost token is asked
    /// for again), or an error worth another attempt (with the registry's `Retry-After`), or
    /// one that is not.
    pub(super) async fn refusal(
        &self,
        response: Response,
        access: RegistryOperation,
        operation: &str,
    ) -> Failure {
        let status = response.status().as_u16();
        let after = retry_after(&response);
        let body = error_text(response).await;
        let detail = envelope_detail(&body);
        if status == 401 || status == 403 {
            let retry = (status == 401 && self.verified.load(std::sync::atomic::Ordering::SeqCst))
                .then(|| Retry {
                    reason:
                        "HTTP 401 after the registry accepted the credentials; authenticating again"
                            .to_owned(),
                    after: None,
                });
            if retry.is_some() {
                self.renew_token(access).await;
            }
            return Failure {
                error: self.unauthorized(status, detail.unwrap_or_default()),
                retry,
            };
        }
        Failure {
            error: Error::Registry {
                registry: self.image.registry().to_owned(),
                operation: operation.to_owned(),
                reason: match detail {
                    Some(d) => format!("HTTP {status} {d}"),
                    None if body.trim().is_empty() => format!("HTTP {status}"),
                    None => format!("HTTP {status}: {}", one_line(&body)),
                },
            },
            retry: retryable_status(status).map(|r| Retry { after, ..r }),
        }
    }
}
