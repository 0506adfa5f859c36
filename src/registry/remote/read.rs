//! The read side of a remote registry: a blob streamed to a file through a digest check, and
//! the referrers of a manifest (the referrers API, else the fallback tag `sha256-<hex>`).

use std::path::Path;

use super::Remote;
use crate::artifact::Descriptor;
use crate::error::{Error, Result};
use crate::reference::Digest;
use crate::registry::{ManifestRef, Target};

impl Remote {
    /// Streams a blob into `dest` through oci-client's verifying stream (the one hash of
    /// these bytes); `dest` appears only when the digest and the size matched.
    pub(super) async fn stream_blob_to_file(
        &self,
        descriptor: &Descriptor,
        dest: &Path,
    ) -> Result<()> {
        use futures_util::StreamExt;
        use std::io::Write;
        let what = format!("blob {}", descriptor.digest);
        let reference = self.blob_reference(&descriptor.digest);
        let digest_text = descriptor.digest.to_string();
        // Retried until the body starts; a body that stops midway is reported, not resumed.
        let mut stream = self
            .retrying(&what, super::Op::Other, || {
                self.client
                    .pull_blob_stream(&reference, digest_text.as_str())
            })
            .await?;
        let mut download = crate::registry::download::Download::create(dest)?;
        let mut received = 0u64;
        // oci-client's stream hashes each chunk on its way through and, at the end, fails
        // when the digest differs: the one hash of these bytes.
        while let Some(chunk) = stream.next().await {
            let chunk = match chunk {
                Ok(chunk) => chunk,
                Err(e) => return Err(self.download_error(descriptor, received, e)),
            };
            received += chunk.len() as u64;
            if received > descriptor.size {
                return Err(Error::DigestMismatch {
                    what,
                    expected: format!("{} bytes", descriptor.size),
                    actual: format!("more than {} bytes", descriptor.size),
                });
            }
            download
                .file()
                .write_all(&chunk)
                .map_err(|e| Error::io("write", download.dest(), e))?;
        }
        if received != descriptor.size {
            return Err(Error::Incomplete {
                what,
                expected: descriptor.size,
                received,
            });
        }
        download.persist()
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
