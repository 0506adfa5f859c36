//! A manifest's `PUT`, made with the bare HTTP client: oci-client reads a refusal's whole
//! body into memory, and a registry can send an endless one. Here it is read with a cap
//! ([`super::http::error_text`]), and the digest the registry reports is taken from its
//! answer (`Docker-Content-Digest`, else the `Location` it names).

use oci_client::RegistryOperation::Push;
use reqwest::header::{CONTENT_TYPE, LOCATION};
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
        self.policy
            .run(&what, || async {
                let request = self
                    .authorized(Push, Method::PUT, url.clone())
                    .header(CONTENT_TYPE, manifest.media_type.as_str())
                    .body(manifest.bytes.clone());
                let response = self.send(request).await?;
                if response.status() != StatusCode::CREATED {
                    let mut failure = self.refusal(response, Push, &what).await;
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
}
