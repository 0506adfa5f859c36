//! A blob sent while its digest is still being computed: an upload session (`POST`), the whole
//! file in one `PATCH`, and the `PUT ?digest=` that commits it once the hash is done (the OCI
//! distribution spec's chunked upload, in one chunk). The file is read once for sending; the
//! hash runs beside it and only the commit waits for it.
//!
//! A library's streamed push needs the digest before the first byte (oci-client's does), or
//! buffers chunks and sends them one request at a time; this one does neither.

use std::path::Path;
use std::time::Duration;

use super::pace::{Meter, watched};
use super::wire::Attempt;
use super::{Failure, Remote};
use crate::error::{Error, Result};
use crate::reference::Digest;
use crate::registry::{Gate, Hashed, hash_done};
use futures_util::TryStreamExt;
use reqwest::header::{CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE};
use reqwest::{Method, StatusCode, Url};
use tracing::debug;

impl Remote {
    /// Streams the file at `path` to a new upload session while `hashed` is computed, and
    /// commits it under that digest once `gate` opens. A failed session or `PATCH` starts a new
    /// session; a failed commit is tried again on its own.
    pub(super) async fn put_blob_streamed(
        &self,
        path: &Path,
        size: u64,
        gate: &Gate,
        hashed: Hashed,
    ) -> Result<Digest> {
        let operation = format!("the upload of {}", path.display());
        let session = self
            .retrying(&operation, async |attempt| {
                let mut session = self.upload_session(attempt, &operation).await?;
                match self
                    .upload_patch(attempt, session.url(), path, size, gate, &operation)
                    .await
                {
                    Ok(location) => {
                        session.moved_to(location);
                        Ok(session)
                    }
                    Err(_) if gate.is_closed() => {
                        session.cancel().await;
                        let digest = hash_done(&hashed).await?.0;
                        Err(Failure::from(Error::HeldBack { digest }))
                    }
                    // Cancelled beside the next attempt.
                    Err(failure) => Err(failure),
                }
            })
            .await?;
        let digest = hash_done(&hashed).await?.0;
        let committing = format!("the commit of blob {digest}");
        let mut tried = false;
        let committed = self
            .retrying(&committing, |attempt| {
                let again = std::mem::replace(&mut tried, true);
                let (location, digest, committing) = (session.url(), &digest, &committing);
                async move {
                    match self
                        .upload_commit(attempt, location, digest, committing)
                        .await
                    {
                        // A commit whose answer was lost leaves no session to commit again.
                        Err(failure) if again && self.blob_stored(attempt, digest).await => {
                            drop(failure);
                            Ok(())
                        }
                        other => other,
                    }
                }
            })
            .await;
        match committed {
            Ok(()) => session.committed(),
            Err(e) => {
                session.cancel().await;
                return Err(e);
            }
        }
        Ok(digest)
    }

    /// Whether the registry answers a `HEAD` for the blob `digest` with 200.
    async fn blob_stored(&self, attempt: Attempt, digest: &Digest) -> bool {
        let url = self.api_url(&format!("blobs/{digest}"));
        self.send(attempt, self.authorized(Method::HEAD, url))
            .await
            .is_ok_and(|r| r.status() == StatusCode::OK)
    }

    /// `POST /v2/<repository>/blobs/uploads/`: where the bytes go.
    async fn upload_session(
        &self,
        attempt: Attempt,
        operation: &str,
    ) -> std::result::Result<Session<'_>, Failure> {
        let url = self.api_url("blobs/uploads/");
        let response = self
            .send(
                attempt,
                self.authorized(Method::POST, url.clone())
                    .header(CONTENT_LENGTH, 0),
            )
            .await?;
        let url = self
            .location(response, StatusCode::ACCEPTED, &url, operation)
            .await?;
        Ok(Session {
            remote: self,
            url: Some(url),
        })
    }

    /// The file in one `PATCH` to `session`; its last block waits for `gate`. Returns where
    /// the commit goes.
    async fn upload_patch(
        &self,
        attempt: Attempt,
        session: &Url,
        path: &Path,
        size: u64,
        gate: &Gate,
        operation: &str,
    ) -> std::result::Result<Url, Failure> {
        let meter = Meter::default();
        let body = super::gated_blocks(path, size, gate, &meter).await?;
        let request = self
            .authorized_on(&self.uploads, Method::PATCH, session.clone())
            .header(CONTENT_TYPE, "application/octet-stream")
            .header(CONTENT_LENGTH, size)
            .header(CONTENT_RANGE, format!("0-{}", size.saturating_sub(1)))
            .body(reqwest::Body::wrap_stream(body.into_stream()));
        let response = self
            .send_watched(attempt, request, &meter, path, size)
            .await?;
        self.location(response, StatusCode::ACCEPTED, session, operation)
            .await
    }

    /// `PUT <location>&digest=<digest>`: the registry checks the digest and stores the blob.
    async fn upload_commit(
        &self,
        attempt: Attempt,
        location: &Url,
        digest: &Digest,
        operation: &str,
    ) -> std::result::Result<(), Failure> {
        let mut url = location.clone();
        url.query_pairs_mut()
            .append_pair("digest", &digest.to_string());
        let response = self
            .send(
                attempt,
                self.authorized(Method::PUT, url.clone())
                    .header(CONTENT_LENGTH, 0),
            )
            .await?;
        if response.status() == StatusCode::CREATED {
            return Ok(());
        }
        Err(self.refusal(response, operation).await)
    }
}

impl Remote {
    /// Sends an upload's request, cut when it goes below the floor ([`super::pace`]): the
    /// body's bytes, and then the answer, are waited for as long as the transfer keeps it up.
    /// The upload client has no read timeout (it would also run while the body is sent).
    async fn send_watched(
        &self,
        attempt: Attempt,
        request: reqwest::RequestBuilder,
        meter: &Meter,
        path: &Path,
        size: u64,
    ) -> std::result::Result<reqwest::Response, Failure> {
        match watched(meter, self.policy.read_timeout, self.send(attempt, request)).await {
            Ok(answered) => answered,
            Err(slow) => Err(self.too_slow(
                format!(
                    "the upload of {} was too slow ({size} bytes)",
                    path.display()
                ),
                slow,
            )),
        }
    }

    /// A blob whose digest is known, in one `PUT ?digest=` to a new upload session (the
    /// distribution spec's monolithic upload): `body` is `size` bytes counted by its meter, sent
    /// with the upload client and cut below the floor. A session whose `PUT` broke off is
    /// cancelled; one the registry answered has ended.
    pub(super) async fn put_blob_whole(
        &self,
        attempt: Attempt,
        digest: &Digest,
        size: u64,
        (body, meter): (reqwest::Body, &Meter),
        operation: &str,
    ) -> std::result::Result<(), Failure> {
        let session = self.upload_session(attempt, operation).await?;
        let mut url = session.url().clone();
        url.query_pairs_mut()
            .append_pair("digest", &digest.to_string());
        let request = self
            .authorized_on(&self.uploads, Method::PUT, url)
            .header(CONTENT_TYPE, "application/octet-stream")
            .header(CONTENT_LENGTH, size)
            .body(body);
        let answered =
            match watched(meter, self.policy.read_timeout, self.send(attempt, request)).await {
                Ok(answered) => answered,
                Err(slow) => Err(self.too_slow(
                    format!("the upload of blob {digest} was too slow ({size} bytes)"),
                    slow,
                )),
            };
        let response = match answered {
            Ok(response) => response,
            Err(failure) => {
                session.cancel().await;
                return Err(failure);
            }
        };
        if response.status() == StatusCode::CREATED {
            session.committed();
            return Ok(());
        }
        // The registry answered the PUT: the session ended there, nothing to cancel.
        session.committed();
        Err(self.refusal(response, operation).await)
    }
}

/// How long a given-up upload session's `DELETE` is waited for.
const CANCEL_WAIT: Duration = Duration::from_secs(2);

/// An upload session the registry keeps until it is committed or cancelled. One given up is
/// cancelled (`DELETE`), so the registry does not hold its bytes until it purges stale
/// sessions (a week, by default): awaited when the upload fails, sent in the background when
/// the upload is dropped (the layer turned out stored while it went) or tried again.
struct Session<'a> {
    remote: &'a Remote,
    /// Where the session is now; `None` once it is committed or cancelled.
    url: Option<Url>,
}

impl Session<'_> {
    fn url(&self) -> &Url {
        self.url.as_ref().expect("a session is used until it ends")
    }

    /// The registry moved the session (each `PATCH` answers with its next `Location`).
    fn moved_to(&mut self, url: Url) {
        self.url = Some(url);
    }

    /// The session ended at the registry (committed, or its last request answered).
    fn committed(mut self) {
        self.url = None;
    }

    /// The session's `DELETE`, once: cancelling is a courtesy. A registry may refuse it right
    /// after an aborted `PATCH`, when the session's state no longer matches what arrived of it
    /// (the CNCF registry does); its purge then removes the session.
    fn cancelling(&mut self) -> Option<impl Future<Output = ()> + Send + 'static> {
        let url = self.url.take()?;
        debug!("cancelling upload session {}", url.path());
        let request = self.remote.authorized(Method::DELETE, url);
        let backoff = self.remote.backoff.clone();
        Some(async move {
            let sent = super::wire::send_under(
                &backoff,
                Attempt::unretried(
                    "cancelling is a courtesy: the registry purges a session left behind",
                ),
                request,
            );
            let _ = tokio::time::timeout(CANCEL_WAIT, sent).await;
        })
    }

    async fn cancel(mut self) {
        if let Some(cancelling) = self.cancelling() {
            cancelling.await;
        }
    }
}

impl Drop for Session<'_> {
    fn drop(&mut self) {
        if let Ok(runtime) = tokio::runtime::Handle::try_current()
            && let Some(cancelling) = self.cancelling()
        {
            runtime.spawn(cancelling);
        }
    }
}
