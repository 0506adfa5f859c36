//! The read side of a remote registry: a blob streamed to a file through a digest check, and
//! the referrers of a manifest (the referrers API, else the fallback tag `sha256-<hex>`).

use reqwest::header::ACCEPT;
use reqwest::{Method, StatusCode};

use super::wire::Attempt;
use super::{Failure, Remote};
use crate::artifact::Descriptor;
use crate::error::{Error, Result};
use crate::reference::{Digest, Tag};
use crate::registry::download::Download;
use crate::registry::{ManifestRef, ReadTarget};

/// The manifest types a read accepts: OCI and Docker, images and indexes.
const MANIFEST_ACCEPT: [&str; 4] = [
    crate::artifact::MANIFEST_MEDIA_TYPE,
    crate::artifact::INDEX_MEDIA_TYPE,
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
];

/// The largest manifest read: the distribution spec lets registries refuse those over 4 MiB.
const MANIFEST_MAX: u64 = 4 << 20;

/// The largest small blob read into memory (a config, a provenance statement or envelope).
const SMALL_BLOB_MAX: u64 = 16 << 20;

/// The largest tag list page read.
const TAGS_MAX: u64 = 16 << 20;

/// The largest referrers listing read from the referrers API: some 40,000 descriptors.
const REFERRERS_MAX: u64 = 16 << 20;

/// The most tag list pages read. Registries that page the list give 100 to 1,000 tags a page.
const TAG_PAGES: usize = 50;

impl Remote {
    /// Streams a blob into `download`, which hashes it once, with one plain `GET` (a registry
    /// may redirect it to storage, which gets no credentials). A body that stalls or trickles
    /// below the floor ([`super::pace`]) is cut, and the download starts over under the retry
    /// policy; one cut short or too long is reported.
    pub(super) async fn stream_blob_into(
        &self,
        descriptor: &Descriptor,
        download: &mut Download,
    ) -> Result<()> {
        let what = format!("blob {}", descriptor.digest);
        let url = self.api_url(&format!("blobs/{}", descriptor.digest));
        let mut tries = self.tries(&what);
        loop {
            match self
                .stream_blob_once(tries.attempt(), descriptor, &url, download)
                .await
            {
                Ok(()) => return Ok(()),
                Err(failure) => {
                    tries.after(failure).await?;
                    download.restart()?;
                }
            }
        }
    }

    /// One attempt of [`Remote::stream_blob_into`].
    async fn stream_blob_once(
        &self,
        attempt: Attempt,
        descriptor: &Descriptor,
        url: &reqwest::Url,
        download: &mut Download,
    ) -> std::result::Result<(), Failure> {
        use futures_util::StreamExt;
        let what = format!("blob {}", descriptor.digest);
        let response = self.get_ok(attempt, url, &what).await?;
        let meter = super::pace::Meter::default();
        let receiving = async {
            let mut stream = response.bytes_stream();
            while let Some(chunk) = stream.next().await {
                let chunk =
                    chunk.map_err(|e| self.download_error(descriptor, download.received(), &e))?;
                meter.add(chunk.len());
                if download.received() + chunk.len() as u64 > descriptor.size {
                    return Err(Failure::from(Error::DigestMismatch {
                        what: what.clone(),
                        expected: format!("{} bytes", descriptor.size),
                        actual: format!("more than {} bytes", descriptor.size),
                    }));
                }
                download.write(chunk).await?;
            }
            Ok(())
        };
        match super::pace::watched(&meter, self.policy.read_timeout, receiving).await {
            Ok(received) => received?,
            // Nothing at all in a window: the read timeout's own stall, whichever saw it first.
            Err(slow) if slow.moved == 0 => {
                return Err(self.stalled(descriptor, download.received()));
            }
            Err(slow) => {
                return Err(self.too_slow(
                    format!(
                        "the download of blob {} was too slow: {} of {} bytes arrived",
                        descriptor.digest,
                        download.received(),
                        descriptor.size
                    ),
                    slow,
                ));
            }
        }
        if download.received() != descriptor.size {
            return Err(Failure::from(Error::Incomplete {
                what,
                expected: descriptor.size,
                received: download.received(),
            }));
        }
        Ok(())
    }

    /// A blob download that stalled after `received` bytes: tried again.
    fn stalled(&self, descriptor: &Descriptor, received: u64) -> Failure {
        Failure {
            error: Error::Unreachable {
                registry: self.image.registry().to_owned(),
                reason: format!(
                    "the download of blob {} stalled: nothing arrived for {}s after {received} of {} bytes (`WASM_OCI_HTTP_TIMEOUT`)",
                    descriptor.digest,
                    self.policy.read_timeout.as_secs_f64(),
                    descriptor.size
                ),
            },
            retry: Some(crate::registry::retry::Retry {
                reason: "stalled".to_owned(),
                after: None,
            }),
        }
    }

    /// A transfer cut for going below the floor: the registry is named, and it is tried again.
    pub(super) fn too_slow(&self, what: String, slow: super::pace::TooSlow) -> Failure {
        Failure {
            error: Error::Unreachable {
                registry: self.image.registry().to_owned(),
                reason: format!("{what}, {}", slow.describe()),
            },
            retry: Some(crate::registry::retry::Retry {
                reason: "too slow".to_owned(),
                after: None,
            }),
        }
    }

    /// Whether the repository holds the blob `digest`: `HEAD` answered 200 or 404.
    pub(super) async fn blob_exists(&self, digest: &Digest) -> Result<bool> {
        let what = format!("the check for blob {digest}");
        let url = self.api_url(&format!("blobs/{digest}"));
        self.retrying(&what, async |attempt| {
            let response = self
                .send(attempt, self.authorized(Method::HEAD, url.clone()))
                .await?;
            match response.status() {
                StatusCode::OK => Ok(true),
                StatusCode::NOT_FOUND => Ok(false),
                _ => Err(self.refusal(response, &what).await),
            }
        })
        .await
    }

    /// A small blob's bytes (at most `descriptor.size` of them are kept), refused when the
    /// descriptor claims more than [`SMALL_BLOB_MAX`]: it is held in memory.
    pub(super) async fn fetch_blob(&self, descriptor: &Descriptor) -> Result<Vec<u8>> {
        let what = format!("blob {}", descriptor.digest);
        if descriptor.size > SMALL_BLOB_MAX {
            return Err(Error::Registry {
                registry: self.image.registry().to_owned(),
                operation: what,
                reason: format!(
                    "it is listed as {} bytes, more than the {SMALL_BLOB_MAX} a config or a statement may have",
                    descriptor.size
                ),
            });
        }
        let url = self.api_url(&format!("blobs/{}", descriptor.digest));
        self.retrying(&what, async |attempt| {
            let response = self.get_ok(attempt, &url, &what).await?;
            self.body(response, descriptor.size, &what).await
        })
        .await
    }

    /// The bytes of the manifest (or index) under `reference`, `None` when there is none.
    pub(super) async fn fetch_manifest(&self, reference: &ManifestRef) -> Result<Option<Vec<u8>>> {
        let what = format!("the manifest {reference}");
        let name = match reference {
            ManifestRef::Digest(d) => d.to_string(),
            ManifestRef::Tag(t) => t.to_string(),
        };
        let url = self.api_url(&format!("manifests/{name}"));
        let accept = MANIFEST_ACCEPT.join(", ");
        let fetched = self
            .fetch_document(&url, Some(&accept), MANIFEST_MAX, &what)
            .await?;
        Ok(fetched.map(|(_, bytes)| bytes))
    }

    /// A small document at `url` (at most `max` bytes) with the headers it came with, `None`
    /// when the registry has none there (404).
    async fn fetch_document(
        &self,
        url: &reqwest::Url,
        accept: Option<&str>,
        max: u64,
        what: &str,
    ) -> Result<Option<(reqwest::header::HeaderMap, Vec<u8>)>> {
        self.retrying(what, async |attempt| {
            let mut request = self.authorized(Method::GET, url.clone());
            if let Some(accept) = accept {
                request = request.header(ACCEPT, accept);
            }
            let response = self.send(attempt, request).await?;
            match response.status() {
                StatusCode::OK => {
                    let headers = response.headers().clone();
                    let bytes = self.body(response, max, what).await?;
                    Ok(Some((headers, bytes)))
                }
                StatusCode::NOT_FOUND => Ok(None),
                _ => Err(self.refusal(response, what).await),
            }
        })
        .await
    }

    /// The repository's tags, as `GET /v2/<repository>/tags/list` lists them, following the
    /// registry's pages (`Link: <…>; rel="next"`) up to [`TAG_PAGES`].
    pub(super) async fn fetch_tags(&self) -> Result<Vec<Tag>> {
        let mut url = self.api_url("tags/list");
        let mut tags = Vec::new();
        for _ in 0..TAG_PAGES {
            let (page, next) = self.fetch_tag_page(&url).await?;
            tags.extend(page.iter().filter_map(|t| t.parse().ok()));
            // Pages stay on the registry (credentials go nowhere else), and move on.
            match next.and_then(|next| url.join(&next).ok()) {
                Some(next) if next.origin() == url.origin() && next != url => url = next,
                _ => break,
            }
        }
        Ok(tags)
    }

    /// One page of the tag list at `url`, and the link to the next one.
    async fn fetch_tag_page(&self, url: &reqwest::Url) -> Result<(Vec<String>, Option<String>)> {
        #[derive(serde::Deserialize)]
        struct Listed {
            #[serde(default)]
            tags: Option<Vec<String>>,
        }
        let what = "the tag listing";
        // A repository not created yet has no tags.
        let Some((headers, bytes)) = self.fetch_document(url, None, TAGS_MAX, what).await? else {
            return Ok((Vec::new(), None));
        };
        let listed: Listed = serde_json::from_slice(&bytes).map_err(|e| Error::Registry {
            registry: self.image.registry().to_owned(),
            operation: what.to_owned(),
            reason: format!("not a tag list: {e}"),
        })?;
        Ok((listed.tags.unwrap_or_default(), next_link(&headers)))
    }

    /// `GET url`, which must answer 200.
    async fn get_ok(
        &self,
        attempt: Attempt,
        url: &reqwest::Url,
        what: &str,
    ) -> std::result::Result<reqwest::Response, Failure> {
        let response = self
            .send(attempt, self.authorized(Method::GET, url.clone()))
            .await?;
        if response.status() != StatusCode::OK {
            return Err(self.refusal(response, what).await);
        }
        Ok(response)
    }

    /// A response's body, refused beyond `max` bytes (a small document, never a stream).
    pub(super) async fn body(
        &self,
        response: reqwest::Response,
        max: u64,
        what: &str,
    ) -> std::result::Result<Vec<u8>, Failure> {
        use futures_util::StreamExt;
        let mut bytes = Vec::new();
        let mut stream = response.bytes_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| self.transport_failure(&e))?;
            if (bytes.len() + chunk.len()) as u64 > max {
                return Err(Failure::from(Error::Registry {
                    registry: self.image.registry().to_owned(),
                    operation: what.to_owned(),
                    reason: format!("the answer is larger than {max} bytes"),
                }));
            }
            bytes.extend_from_slice(&chunk);
        }
        Ok(bytes)
    }

    /// The referrers of `subject`: the referrers API, else the fallback tag's index. Both are
    /// read with a cap ([`REFERRERS_MAX`], [`MANIFEST_MAX`]): a listing is held in memory.
    pub(super) async fn list_referrers(&self, subject: &Digest) -> Result<Vec<Descriptor>> {
        // The fallback tag is read beside the question, not after it: one round trip, and a
        // read answered 404 where the registry has the API.
        let tag = crate::registry::fallback_tag(subject);
        let reference = ManifestRef::Tag(tag.clone());
        let (listed, fallback) = tokio::join!(
            self.referrers_api_entries(subject),
            self.get_manifest(&reference)
        );
        if let Some(listed) = listed? {
            return Ok(listed);
        }
        tracing::debug!("no referrers API; the fallback tag `{tag}` lists them");
        let Some(index) = fallback? else {
            return Ok(Vec::new());
        };
        crate::registry::index_entries(&index.bytes).map_err(|reason| Error::Registry {
            registry: self.image.registry().to_owned(),
            operation: format!("the referrers index `{tag}`"),
            reason,
        })
    }

    /// What the registry's referrers API lists for `subject`, read with a cap
    /// ([`REFERRERS_MAX`]); `None` when it has no referrers API (404; some registries answer
    /// 400 or 405).
    pub(super) async fn referrers_api_entries(
        &self,
        subject: &Digest,
    ) -> Result<Option<Vec<Descriptor>>> {
        let what = format!("the referrers of {subject}");
        let url = self.api_url(&format!("referrers/{subject}"));
        let listed = self
            .retrying(&what, async |attempt| {
                let request = self
                    .authorized(Method::GET, url.clone())
                    .header(ACCEPT, crate::artifact::INDEX_MEDIA_TYPE);
                let response = self.send(attempt, request).await?;
                match response.status() {
                    StatusCode::OK => Ok(Some(self.body(response, REFERRERS_MAX, &what).await?)),
                    StatusCode::NOT_FOUND
                    | StatusCode::BAD_REQUEST
                    | StatusCode::METHOD_NOT_ALLOWED => Ok(None),
                    _ => Err(self.refusal(response, &what).await),
                }
            })
            .await?;
        let Some(bytes) = listed else {
            return Ok(None);
        };
        crate::registry::index_entries(&bytes)
            .map(Some)
            .map_err(|reason| Error::Registry {
                registry: self.image.registry().to_owned(),
                operation: what,
                reason,
            })
    }

    /// Names what stopped a blob download: a stall (tried again), a body cut short, or the
    /// registry lost.
    fn download_error(
        &self,
        descriptor: &Descriptor,
        received: u64,
        e: &reqwest::Error,
    ) -> Failure {
        if e.is_timeout() {
            return self.stalled(descriptor, received);
        }
        if received < descriptor.size {
            return Failure::from(Error::Incomplete {
                what: format!("blob {}", descriptor.digest),
                expected: descriptor.size,
                received,
            });
        }
        Failure::from(Error::Unreachable {
            registry: self.image.registry().to_owned(),
            reason: e.to_string(),
        })
    }
}

/// The target of a `Link` header's `rel="next"` (RFC 8288), as the distribution spec pages a
/// tag list: `</v2/<name>/tags/list?last=<tag>&n=<n>>; rel="next"`.
fn next_link(headers: &reqwest::header::HeaderMap) -> Option<String> {
    headers
        .get_all(reqwest::header::LINK)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .find_map(|link| {
            let (target, params) = link.trim().strip_prefix('<')?.split_once('>')?;
            params
                .split(';')
                .filter_map(|p| p.trim().strip_prefix("rel="))
                .any(|rel| {
                    rel.trim_matches('"')
                        .split_whitespace()
                        .any(|r| r == "next")
                })
                .then(|| target.to_owned())
        })
}

#[cfg(test)]
mod tests {
    use super::next_link;
    use reqwest::header::{HeaderMap, HeaderValue, LINK};

    fn links(values: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append(LINK, HeaderValue::from_str(value).unwrap());
        }
        headers
    }

    #[test]
    fn the_next_page_is_the_link_marked_next() {
        let page = "/v2/acme/app/tags/list?last=v1.2&n=100";
        assert_eq!(
            next_link(&links(&[&format!("<{page}>; rel=\"next\"")])).as_deref(),
            Some(page)
        );
        assert_eq!(
            next_link(&links(&[&format!(
                "</first>; rel=\"first\", <{page}>; rel=next"
            )]))
            .as_deref(),
            Some(page)
        );
        assert_eq!(
            next_link(&links(&[
                "</prev>; rel=\"prev\"",
                &format!("<{page}>; rel=\"prev next\"")
            ]))
            .as_deref(),
            Some(page)
        );
    }

    #[test]
    fn a_last_page_has_no_next() {
        assert_eq!(next_link(&HeaderMap::new()), None);
        assert_eq!(next_link(&links(&["</prev>; rel=\"prev\""])), None);
        assert_eq!(next_link(&links(&["not a link"])), None);
    }
}
