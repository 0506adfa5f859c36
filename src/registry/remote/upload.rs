//! A blob sent while its digest is still being computed: an upload session (`POST`), the whole
//! file in one `PATCH`, and the `PUT ?digest=` that commits it once the hash is done (the OCI
//! distribution spec's chunked upload, in one chunk). The file is read once for sending; the
//! hash runs beside it and only the commit waits for it.
//!
//! Made here with the bare HTTP client because oci-client cannot: its streamed push needs the
//! digest before the first byte, and its chunked push buffers 4 MiB chunks, sends them one
//! request at a time and hashes every byte again on the async runtime. The credentials are the
//! ones [`Remote::login`] settled: basic, or the bearer token it was issued.

use std::path::Path;
use std::time::Duration;

use futures_util::{StreamExt, TryStreamExt};
use reqwest::header::{AUTHORIZATION, CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE, LOCATION};
use reqwest::{Method, RequestBuilder, Response, StatusCode, Url};
use tokio_util::io::ReaderStream;

use super::errors::{envelope_detail, retryable_status};
use super::{Credential, Failure, Remote, UPLOAD_BLOCK};
use crate::error::{Error, Result};
use crate::reference::Digest;
use crate::registry::retry::Retry;
use crate::registry::{Gate, Hashed};

/// The slowest transfer an upload is given time for, beyond the usual timeout, before it
/// counts as stalled: a request's whole time is bounded, not each read.
const SLOWEST_BYTES_PER_SECOND: u64 = 256 << 10;

impl Remote {
    /// Streams the file at `path` to a new upload session while `hashed` is computed, and
    /// commits it under that digest once `gate` opens. Each attempt starts a new session.
    pub(super) async fn put_blob_streamed(
        &self,
        path: &Path,
        size: u64,
        gate: &Gate,
        hashed: Hashed,
    ) -> Result<Digest> {
        let operation = format!("the upload of {}", path.display());
        self.policy
            .run(&operation, || async {
                let session = self.upload_session(&operation).await?;
                let location = match self
                    .upload_patch(&session, path, size, gate, &operation)
                    .await
                {
                    Err(_) if gate.is_closed() => {
                        let digest = hashed.clone().await.map_err(Error::Shared)?.0;
                        return Err(Failure::from(Error::HeldBack { digest }));
                    }
                    other => other?,
                };
                let digest = hashed.clone().await.map_err(Error::Shared)?.0;
                self.upload_commit(&location, &digest, &operation).await?;
                Ok(digest)
            })
            .await
    }

    /// `POST /v2/<repository>/blobs/uploads/`: where the bytes go.
    async fn upload_session(&self, operation: &str) -> std::result::Result<Url, Failure> {
        let url = self
            .registry_url()
            .join(&format!("v2/{}/blobs/uploads/", self.image.repository()))
            .expect("a repository path is a valid URL path");
        let response = self
            .send(
                self.authorized(Method::POST, url.clone())
                    .header(CONTENT_LENGTH, 0),
            )
            .await?;
        self.location(response, StatusCode::ACCEPTED, &url, operation)
            .await
    }

    /// The file in one `PATCH` to `session`; its last block waits for `gate`. Returns where
    /// the commit goes.
    async fn upload_patch(
        &self,
        session: &Url,
        path: &Path,
        size: u64,
        gate: &Gate,
        operation: &str,
    ) -> std::result::Result<Url, Failure> {
        let file = tokio::fs::File::open(path)
            .await
            .map_err(|e| Failure::from(Error::io("read", path, e)))?;
        let mut sent = 0u64;
        let held = gate.clone();
        let body = ReaderStream::with_capacity(file, UPLOAD_BLOCK).then(move |block| {
            let gate = held.clone();
            let last = block.as_ref().is_ok_and(|b| {
                sent += b.len() as u64;
                sent >= size
            });
            async move {
                if gate.is_closed() || (last && !gate.opened().await) {
                    return Err(std::io::Error::other(
                        "upload held back: the file failed validation",
                    ));
                }
                block
            }
        });
        let request = self
            .authorized(Method::PATCH, session.clone())
            .header(CONTENT_TYPE, "application/octet-stream")
            .header(CONTENT_LENGTH, size)
            .header(CONTENT_RANGE, format!("0-{}", size.saturating_sub(1)))
            .timeout(
                self.policy.read_timeout + Duration::from_secs(size / SLOWEST_BYTES_PER_SECOND),
            )
            .body(reqwest::Body::wrap_stream(body.into_stream()));
        let response = self.send(request).await?;
        self.location(response, StatusCode::ACCEPTED, session, operation)
            .await
    }

    /// `PUT <location>&digest=<digest>`: the registry checks the digest and stores the blob.
    async fn upload_commit(
        &self,
        location: &Url,
        digest: &Digest,
        operation: &str,
    ) -> std::result::Result<(), Failure> {
        let mut url = location.clone();
        url.query_pairs_mut()
            .append_pair("digest", &digest.to_string());
        let response = self
            .send(
                self.authorized(Method::PUT, url.clone())
                    .header(CONTENT_LENGTH, 0),
            )
            .await?;
        if response.status() == StatusCode::CREATED {
            return Ok(());
        }
        Err(self.refusal(response, operation).await)
    }

    /// The registry's base URL.
    fn registry_url(&self) -> Url {
        Url::parse(&format!("{}://{}/", self.scheme, self.image.registry()))
            .expect("a registry name is a valid URL host")
    }

    /// A request to `url`, with the credentials only when it goes to the registry itself (an
    /// upload location may point elsewhere, such as storage) and not in the clear when the
    /// registry is reached over HTTPS.
    fn authorized(&self, method: Method, url: Url) -> RequestBuilder {
        let registry = self.registry_url();
        let same_registry = url.host_str() == registry.host_str()
            && url.port_or_known_default() == registry.port_or_known_default()
            && (registry.scheme() == "http" || url.scheme() == "https");
        let request = self.http.request(method, url);
        if !same_registry {
            return request;
        }
        let token = self.push_token.lock().expect("push token").clone();
        match (token, &self.resolved.credential) {
            (Some(token), _) => request.header(AUTHORIZATION, format!("Bearer {}", token.expose())),
            (None, Credential::Basic { username, password }) => {
                request.basic_auth(username, Some(password.expose()))
            }
            (None, _) => request,
        }
    }

    async fn send(&self, request: RequestBuilder) -> std::result::Result<Response, Failure> {
        request.send().await.map_err(|e| self.transport_failure(&e))
    }

    /// The `Location` of a response that should be `expected`, resolved against `base`.
    async fn location(
        &self,
        response: Response,
        expected: StatusCode,
        base: &Url,
        operation: &str,
    ) -> std::result::Result<Url, Failure> {
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

    /// What a refused upload request means: credentials refused, or an error worth another
    /// attempt (with the registry's `Retry-After`), or one that is not.
    async fn refusal(&self, response: Response, operation: &str) -> Failure {
        let status = response.status().as_u16();
        let after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let body = response.text().await.unwrap_or_default();
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
                self.renew_push_token().await;
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
                    None => format!("HTTP {status}"),
                },
            },
            retry: retryable_status(status).map(|r| Retry { after, ..r }),
        }
    }
}
