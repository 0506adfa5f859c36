//! The one way a request reaches a registry's API: [`Remote::authorized`] puts the credentials
//! the auth layer (`login.rs`) settled on it, only when it goes to the registry itself;
//! [`Remote::send`] sends it under the registry's shared backoff (`wire.rs`) and, in a session
//! that sent no probe, answers the first 401's challenge. Redirects are followed by the HTTP
//! client, which drops the `Authorization` header when one leaves the registry's host.

use reqwest::header::{AUTHORIZATION, HeaderValue, LOCATION};
use reqwest::{Method, RequestBuilder, Response, StatusCode, Url};

use super::login::Presented;
use super::wire::{Attempt, challenge, error_text};
use super::{Failure, Remote};
use crate::error::Error;

impl Remote {
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
            Presented::Bearer(token) => {
                request.header(AUTHORIZATION, format!("Bearer {}", token.expose()))
            }
            Presented::Basic(username, password) => {
                request.basic_auth(username, Some(password.expose()))
            }
            Presented::None => request,
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
    pub(super) async fn send(
        &self,
        attempt: Attempt,
        request: RequestBuilder,
    ) -> Result<Response, Failure> {
        let again = self
            .awaits_challenge()
            .then(|| request.try_clone())
            .flatten();
        let response = self.send_plain(attempt, request).await?;
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
            && let Presented::Bearer(token) = self.credentials()
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
        self.send_plain(attempt, RequestBuilder::from_parts(client, built))
            .await
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
