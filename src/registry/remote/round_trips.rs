//! Requests that spare a push round trips on a distant registry.
//!
//! - A small blob in one request: `POST /v2/<name>/blobs/uploads/?digest=<digest>` whose body
//!   is the blob (the distribution spec's single-request monolithic upload). A registry that does
//!   not take it answers `202` with an upload session, as for any `POST`, and the same bytes
//!   then go in that session's `PUT ?digest=`: two requests, as before.
//! - The referrers API asked alone, without reading the fallback tag when there is none: a push
//!   asks it beside its uploads, and reads the fallback tag later, just before writing it.

use reqwest::header::{CONTENT_LENGTH, CONTENT_TYPE};
use reqwest::{Method, StatusCode};

use super::wire::Attempt;
use super::{Failure, Remote};
use crate::error::{Error, Result};
use crate::reference::Digest;

/// The header in which a registry names the digest of what it stored.
const CONTENT_DIGEST: &str = "docker-content-digest";

impl Remote {
    /// Stores `bytes` as the blob `digest`: in one `POST` where the registry takes it, else in
    /// the session it opened. The registry checks the digest; one it reports is checked here.
    pub(super) async fn post_blob(
        &self,
        attempt: Attempt,
        digest: &Digest,
        bytes: &bytes::Bytes,
        operation: &str,
    ) -> std::result::Result<(), Failure> {
        let mut url = self.api_url("blobs/uploads/");
        url.query_pairs_mut()
            .append_pair("digest", &digest.to_string());
        let send = |method: Method, url: reqwest::Url| {
            self.send(
                attempt,
                self.authorized(method, url)
                    .header(CONTENT_TYPE, "application/octet-stream")
                    .header(CONTENT_LENGTH, bytes.len())
                    .body(bytes.clone()),
            )
        };
        let response = send(Method::POST, url.clone()).await?;
        let response = match response.status() {
            StatusCode::CREATED => response,
            // An upload session: the bytes go in its PUT.
            StatusCode::ACCEPTED => {
                let mut session = self
                    .location(response, StatusCode::ACCEPTED, &url, operation)
                    .await?;
                tracing::debug!("the registry opened an upload session; sending the blob there");
                session
                    .query_pairs_mut()
                    .append_pair("digest", &digest.to_string());
                send(Method::PUT, session).await?
            }
            _ => return Err(self.refusal(response, operation).await),
        };
        if response.status() != StatusCode::CREATED {
            return Err(self.refusal(response, operation).await);
        }
        let reported = response
            .headers()
            .get(CONTENT_DIGEST)
            .and_then(|v| v.to_str().ok());
        match reported {
            Some(reported) if reported != digest.to_string() => {
                Err(Failure::from(Error::DigestMismatch {
                    what: format!("blob {digest}"),
                    expected: digest.to_string(),
                    actual: reported.to_owned(),
                }))
            }
            _ => Ok(()),
        }
    }
}

impl Remote {
    /// The digests the registry's referrers API lists for `subject`; `None` when it has no
    /// referrers API.
    pub(super) async fn referrers_api_listing(
        &self,
        subject: &Digest,
    ) -> Result<Option<Vec<Digest>>> {
        let Some(entries) = self.referrers_api_entries(subject).await? else {
            tracing::debug!("no referrers API; the fallback tag lists the referrers of {subject}");
            return Ok(None);
        };
        Ok(Some(entries.into_iter().map(|d| d.digest).collect()))
    }
}
