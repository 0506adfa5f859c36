//! A request on the wire, below the auth layer: where it goes (the registry's URLs), how it is
//! sent ([`send_under`]: its turn under the registry's shared [`Backoff`], a bound on requests
//! in flight and the pause a 429 or 503 imposes on all of them), and what is read of an answer
//! besides its body (`Retry-After`, `WWW-Authenticate`, the start of an error's text). Both
//! the auth layer (`login.rs`) and the requests with credentials (`http.rs`) send through it.

use std::time::Duration;

use reqwest::{RequestBuilder, Response, Url};

use super::{Failure, Remote};
use crate::error::Error;
use crate::registry::retry::{Attempts, Backoff};

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

/// One try of an operation under the retry policy: every way of sending a request takes one,
/// and only [`Remote::retrying`] makes one. So a new request is retried unless its code says
/// otherwise, with [`Attempt::unretried`].
#[derive(Debug, Clone, Copy)]
pub(super) struct Attempt(());

impl Attempt {
    /// A request sent once, outside the retry policy, on purpose: `why` says why.
    pub(super) fn unretried(why: &'static str) -> Self {
        let _ = why;
        Attempt(())
    }
}

/// The tries of one operation ([`Remote::tries`]).
pub(super) struct Tries<'a>(Attempts<'a>);

impl Tries<'_> {
    /// The next try.
    pub(super) fn attempt(&self) -> Attempt {
        Attempt(())
    }

    /// After a failed try: waits out the backoff, or gives up with the error.
    pub(super) async fn after(&mut self, failure: Failure) -> Result<(), Error> {
        self.0.after(failure).await
    }
}

/// Sends `request` once `backoff` admits it, and tells `backoff` when the registry asks for a
/// pause, before the request's place is given up.
pub(super) async fn send_under(
    backoff: &Backoff,
    _: Attempt,
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

    /// Runs `op` under the retry policy ([`crate::registry::retry::Policy::run`]), each try with its [`Attempt`]: the
    /// one way an operation's requests are sent.
    pub(super) async fn retrying<T, F, Fut>(&self, what: &str, mut op: F) -> Result<T, Error>
    where
        F: FnMut(Attempt) -> Fut,
        Fut: Future<Output = Result<T, Failure>>,
    {
        self.policy.run(what, || op(Attempt(()))).await
    }

    /// The tries of one operation, for a caller that keeps state between them (a download
    /// started again into the same file): [`Remote::retrying`]'s loop, written out.
    pub(super) fn tries<'a>(&'a self, what: &'a str) -> Tries<'a> {
        Tries(self.policy.attempts(what))
    }

    /// Sends `request` under the registry's shared backoff; a failure to reach the registry is
    /// a transport failure.
    pub(super) async fn send_plain(
        &self,
        attempt: Attempt,
        request: RequestBuilder,
    ) -> Result<Response, Failure> {
        send_under(&self.backoff, attempt, request)
            .await
            .map_err(|e| self.transport_failure(&e))
    }
}
