//! A manifest's `PUT`, and the digest the registry reports for it: taken from its answer
//! (`Docker-Content-Digest`, else the `Location` it names), else asked for with a `HEAD`. A
//! refusal's body is read with a cap ([`super::wire::error_text`]): a registry can send an
//! endless one.

use reqwest::header::{ACCEPT, CONTENT_TYPE, LOCATION};
use reqwest::{Method, StatusCode};

use super::Remote;
use crate::artifact::Blob;
use crate::error::{Error, Result};
use crate::reference::Digest;
use crate::registry::ManifestRef;
use crate::registry::retry::Retry;

impl Remote {
    /// `PUT /v2/<repository>/manifests/<reference>`; the digest the registry reports, when
    /// its answer names one. A `BLOB_UNKNOWN` refusal is tried again: the registry has not
    /// caught up with the blobs yet.
    pub(super) async fn send_manifest(
        &self,
        manifest: &Blob,
        reference: &ManifestRef,
    ) -> Result<Option<Digest>> {
        let what = format!("the manifest upload for {reference}");
        let name = match reference {
            ManifestRef::Digest(d) => d.to_string(),
            ManifestRef::Tag(t) => t.to_string(),
        };
        let url = self.api_url(&format!("manifests/{name}"));
        self.retrying(&what, async |attempt| {
                let request = self
                    .authorized(Method::PUT, url.clone())
                    .header(CONTENT_TYPE, manifest.media_type.as_str())
                    .body(manifest.bytes.clone());
                let response = self.send(attempt, request).await?;
                if response.status() != StatusCode::CREATED {
                    let mut failure = self.refusal(response, &what).await;
                    if failure.retry.is_none()
                        && matches!(&failure.error, Error::Registry { reason, .. } if reason.contains("BLOB_UNKNOWN"))
                    {
                        failure.retry = Some(Retry {
                            reason: "the registry does not see the uploaded blobs yet (BLOB_UNKNOWN)"
                                .to_owned(),
                            after: None,
                        });
                    }
                    return Err(failure);
                }
                let header = |name| {
                    response
                        .headers()
                        .get(name)
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_owned)
                };
                Ok(header("docker-content-digest")
                    .and_then(|d| d.parse().ok())
                    .or_else(|| {
                        header(LOCATION.as_str())?
                            .rsplit('/')
                            .next()?
                            .parse()
                            .ok()
                    }))
            })
            .await
    }

    /// The digest the registry holds `reference` under, from a `HEAD` of the manifest
    /// (`Docker-Content-Digest`): for a registry whose answer to the `PUT` named none.
    pub(super) async fn manifest_digest(
        &self,
        reference: &ManifestRef,
        media_type: &str,
    ) -> Result<Digest> {
        let what = format!("the digest check for {reference}");
        let name = match reference {
            ManifestRef::Digest(d) => d.to_string(),
            ManifestRef::Tag(t) => t.to_string(),
        };
        let url = self.api_url(&format!("manifests/{name}"));
        self.retrying(&what, async |attempt| {
            let request = self
                .authorized(Method::HEAD, url.clone())
                .header(ACCEPT, media_type);
            let response = self.send(attempt, request).await?;
            if response.status() != StatusCode::OK {
                return Err(self.refusal(response, &what).await);
            }
            let header = response
                .headers()
                .get("docker-content-digest")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned();
            header.parse().map_err(|e: String| {
                crate::registry::retry::Failure::from(Error::Registry {
                    registry: self.image.registry().to_owned(),
                    operation: what.clone(),
                    reason: if header.is_empty() {
                        "its answer names no digest (Docker-Content-Digest)".to_owned()
                    } else {
                        e
                    },
                })
            })
        })
        .await
    }
}
