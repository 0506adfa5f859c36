//! The read side of a remote registry: a blob streamed to a file through a digest check, and
//! the referrers of a manifest (the referrers API, else the fallback tag `sha256-<hex>`).

use oci_client::client::BlobResponse;

use super::Remote;
use crate::artifact::Descriptor;
use crate::error::{Error, Result};
use crate::reference::Digest;
use crate::registry::download::Download;
use crate::registry::{ManifestRef, Target};

impl Remote {
    /// Streams a blob into `download`, which hashes it once. The blob is asked for as a range
    /// from byte 0: that is the whole blob, without oci-client's verifying stream, which hashes
    /// every byte a second (and, when the registry sends `Docker-Content-Digest`, a third) time.
    /// A registry that ignores the range answers 200 and the stream verifies itself.
    pub(super) async fn stream_blob_into(
        &self,
        descriptor: &Descriptor,
        download: &mut Download,
    ) -> Result<()> {
        use futures_util::StreamExt;
        let what = format!("blob {}", descriptor.digest);
        let reference = self.blob_reference(&descriptor.digest);
        let layer = oci_client::manifest::OciDescriptor {
            digest: descriptor.digest.to_string(),
            size: i64::try_from(descriptor.size).unwrap_or(i64::MAX),
            media_type: descriptor.media_type.clone(),
            ..Default::default()
        };
        // Retried until the body starts; a body that stops midway is reported, not resumed.
        let response = self
            .retrying(&what, super::Op::Other, || {
                self.client
                    .pull_blob_stream_partial(&reference, &layer, 0, None)
            })
            .await?;
        let mut stream = match response {
            BlobResponse::Full(stream) | BlobResponse::Partial(stream) => stream,
        };
        while let Some(chunk) = stream.next().await {
            let chunk = match chunk {
                Ok(chunk) => chunk,
                Err(e) => return Err(self.download_error(descriptor, download.received(), e)),
            };
            if download.received() + chunk.len() as u64 > descriptor.size {
                return Err(Error::DigestMismatch {
                    what,
                    expected: format!("{} bytes", descriptor.size),
                    actual: format!("more than {} bytes", descriptor.size),
                });
            }
            download.write(chunk).await?;
        }
        if download.received() != descriptor.size {
            return Err(Error::Incomplete {
                what,
                expected: descriptor.size,
                received: download.received(),
            });
        }
        Ok(())
    }

    /// The referrers of `subject`: the referrers API, else the fallback tag's index.
    pub(super) async fn list_referrers(&self, subject: &Digest) -> Result<Vec<Descriptor>> {
        // The referrers API first; oci-client falls back to the tag on a 404. Registries that
        // answer other errors for an endpoint they lack (400, 405) get the fallback tag here.
        let reference = self.image.with_digest(subject);
        let operation = format!("the referrers of {subject}");
        let index = match self
            .retrying(&operation, super::Op::Other, || {
                self.client.pull_referrers(&reference, None)
            })
            .await
        {
            Ok(index) => index,
            Err(e) => match e {
                e @ (Error::Unauthorized { .. } | Error::Unreachable { .. }) => return Err(e),
                e => {
                    tracing::debug!("referrers API: {e}; reading the fallback tag");
                    let tag = crate::provenance::referrer::fallback_tag(subject);
                    return match self.get_manifest(&ManifestRef::Tag(tag.clone())).await? {
                        Some(index) => {
                            crate::registry::index_entries(&index.bytes).map_err(|reason| {
                                Error::Registry {
                                    registry: self.image.registry().to_owned(),
                                    operation: format!("the referrers index `{tag}`"),
                                    reason,
                                }
                            })
                        }
                        None => Ok(Vec::new()),
                    };
                }
            },
        };
        Ok(index
            .manifests
            .into_iter()
            .filter_map(|entry| {
                Some(Descriptor {
                    media_type: entry.media_type,
                    digest: entry.digest.parse().ok()?,
                    size: u64::try_from(entry.size).ok()?,
                    artifact_type: entry.artifact_type,
                    annotations: entry.annotations.unwrap_or_default(),
                })
            })
            .collect())
    }

    /// Names what stopped a blob download: a digest that differs, or a body cut short.
    fn download_error(&self, descriptor: &Descriptor, received: u64, e: std::io::Error) -> Error {
        let what = format!("blob {}", descriptor.digest);
        if let Some(oci_client::errors::DigestError::VerificationError { actual, .. }) = e
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<oci_client::errors::DigestError>())
        {
            return Error::DigestMismatch {
                what,
                expected: descriptor.digest.to_string(),
                actual: actual.clone(),
            };
        }
        if received < descriptor.size {
            return Error::Incomplete {
                what,
                expected: descriptor.size,
                received,
            };
        }
        Error::Unreachable {
            registry: self.image.registry().to_owned(),
            reason: e.to_string(),
        }
    }
}
