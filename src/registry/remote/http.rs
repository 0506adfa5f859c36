//! The one way a request reaches a registry: [`Remote::authorized`] puts the credentials the
//! auth layer (`login.rs`) settled on it, only when it goes to the registry itself;
//! [`Remote::send`] waits its turn under the registry's shared [`Backoff`] (a bound on requests
//! in flight, and the pause a 429 or 503 imposes on all of them), sends it, and names a
//! failure to reach the registry. Redirects are followed by the HTTP client, which drops the
//! `Authorization` header when one leaves the registry's host.

use std::time::Duration;

use reqwest::header::{AUTHORIZATION, HeaderValue, LOCATION};
use reqwest::{Method, RequestBuilder, Response, StatusCode, Url};

use super::{Failure, Remote};
use crate::error::Error;
use crate::registry::retry::Backoff;

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

/// The `WWW-Authenticate` challenge of a response, if it names one readably.
pub(super) fn challenge(response: &Response) -> Option<&str> {
    response
        .headers()
        .get(reqwest::header::WWW_AUTHENTICATE)
        .and_then(|v| v.to_str().ok())
}

/// Sends `request` once `backoff` admits it, and tells `backoff` when the registry asks for a
/// pause, before the request's place is given up.
pub(super) async fn send_under(
    backoff: &Backoff,
    request: RequestBuilder,
) -> Result<Response, reqwest::Error> {
    let admitted = backoff.admit().await;
    let response = request.send().await?;
    backoff.slow_down(response.status().as_u16(), retry_after(&response));
    drop(admitted);
    Ok(response)
}

impl Remote {
    /// `<registry>/v2/<repository>/<rest>`.
    pub(super) fn api_url(&self, rest: &str) -> Url {
        self.registry_url()
            .join(&format!("v2/{}/{rest}", self.image.repository()))
            .expect("a repository path is a valid URL path")
    }

    /// `<registry>/v2/`, the API's root: what the login probe asks.
    pub(super) fn api_root(&self) -> Url {
        self.registry_url().join("v2/").expect("a valid URL path")
    }

    /// The registry's base URL.
    pub(super) fn registry_url(&self) -> Url {
        Url::parse(&format!("{}://{}/", self.scheme, self.image.registry()))
            .expect("a registry name is a valid URL host")
    }

    /// A request to `url`, with the credentials only when it goes to the registry itself (an
    /// upload location or a blob may be elsewhere, such as storage) and not in the clear when
    /// the registry is reached over HTTPS.
    pub(super) fn authorized(&self, method: Method, url: Url) -> RequestBuilder {
        self.authorized_on(&self.http, method, url)
    }

    /// [`Remote::authorized`], made with `client`.
    pub(super) fn authorized_on(
        &self,
        client: &reqwest::Client,
        method: Method,
        url: Url,
    ) -> RequestBuilder {
        let same_registry = self.is_registry(&url);
        let request = client.request(method, url);
        if !same_registry {
            return request;
        }
        match self.credentials() {
            super::login::Presented::Bearer(token) => {
                request.header(AUTHORIZATION, format!("Bearer {}", token.expose()))
            }
            super::login::Presented::Basic(username, password) => {
                request.basic_auth(username, Some(password.expose()))
            }
            super::login::Presented::None => request,
        }
    }

    /// Whether `url` is the registry itself, where credentials may go: its host and port,
    /// and not plain HTTP when the registry is reached over HTTPS.
    fn is_registry(&self, url: &Url) -> bool {
        let registry = self.registry_url();
        url.host_str() == registry.host_str()
            && url.port_or_known_default() == registry.port_or_known_default()
            && (registry.scheme() == "http" || url.scheme() == "https")
    }

    /// Sends a request to the registry's API under its shared backoff ([`Remote::send_plain`]).
    /// In a session that sent no probe, a request sent without a token and answered 401 is
    /// sent once more, with the token the challenge led to ([`Remote::answer_challenge`]).
    pub(super) async fn send(&self, request: RequestBuilder) -> Result<Response, Failure> {
        let again = self
            .awaits_challenge()
            .then(|| request.try_clone())
            .flatten();
        let response = self.send_plain(request).await?;
        let Some(again) = again.filter(|_| response.status() == StatusCode::UNAUTHORIZED) else {
            return Ok(response);
        };
        let asked = challenge(&response).unwrap_or_default().to_owned();
        if !self.answer_challenge(&asked).await? {
            return Ok(response);
        }
        // Read to its end, so its connection serves the next request.
        error_text(response).await;
        let (client, built) = again.build_split();
        let mut built = built.map_err(|e| self.transport_failure(&e))?;
        if self.is_registry(built.url())
            && let super::login::Presented::Bearer(token) = self.credentials()
        {
            let mut value =
                HeaderValue::from_str(&format!("Bearer {}", token.expose())).map_err(|_| {
                    Failure::from(Error::Registry {
                        registry: self.image.registry().to_owned(),
                        operation: "authentication".to_owned(),
                        reason: "the token service issued a token that is not a header value"
                            .to_owned(),
                    })
                })?;
            value.set_sensitive(true);
            built.headers_mut().insert(AUTHORIZATION, value);
        }
        self.send_plain(RequestBuilder::from_parts(client, built))
            .await
    }

    /// Sends `request` under the registry's shared backoff; a failure to reach the registry is
    /// a transport failure.
    pub(super) async fn send_plain(&self, request: RequestBuilder) -> Result<Response, Failure> {
        send_under(&self.backoff, request)
            .await
            .map_err(|e| self.transport_failure(&e))
    }

    /// The `Location` of a response that should be `expected`, resolved against `base`.
    pub(super) async fn location(
        &self,
        response: Response,
        expected: StatusCode,
        base: &Url,
        operation: &str,
    ) -> Result<Url, Failure> {
        if response.status() != expected {
            return Err(self.refusal(response, operation).await);
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
}
