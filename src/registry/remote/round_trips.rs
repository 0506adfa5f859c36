//! Requests that spare a push round trips on a distant registry.
//!
//! - The referrers API asked alone, without reading the fallback tag when there is none: a push
//!   asks it beside its uploads, and reads the fallback tag later, just before writing it.

use oci_client::RegistryOperation::Pull;
use reqwest::header::ACCEPT;
use reqwest::{Method, StatusCode};

use super::Remote;
use crate::error::{Error, Result};
use crate::reference::Digest;

/// The largest referrers listing read from the referrers API: some 40,000 descriptors.
const REFERRERS_MAX: u64 = 16 << 20;

impl Remote {
    /// The digests the registry's referrers API lists for `subject`; `None` when it has no
    /// referrers API (404; some registries answer 400 or 405).
    pub(super) async fn referrers_api_listing(
        &self,
        subject: &Digest,
    ) -> Result<Option<Vec<Digest>>> {
        let what = format!("the referrers of {subject}");
        let url = self.api_url(&format!("referrers/{subject}"));
        let listed = self
            .policy
            .run(&what, || async {
                let request = self
                    .authorized(Pull, Method::GET, url.clone())
                    .header(ACCEPT, crate::artifact::INDEX_MEDIA_TYPE);
                let response = self.send(request).await?;
                match response.status() {
                    StatusCode::OK => Ok(Some(self.body(response, REFERRERS_MAX, &what).await?)),
                    StatusCode::NOT_FOUND
                    | StatusCode::BAD_REQUEST
                    | StatusCode::METHOD_NOT_ALLOWED => Ok(None),
                    _ => Err(self.refusal(response, Pull, &what).await),
                }
            })
            .await?;
        let Some(bytes) = listed else {
            tracing::debug!("no referrers API; the fallback tag lists the referrers of {subject}");
            return Ok(None);
        };
        let entries = crate::registry::index_entries(&bytes).map_err(|reason| Error::Registry {
            registry: self.image.registry().to_owned(),
            operation: what,
            reason,
        })?;
        Ok(Some(entries.into_iter().map(|d| d.digest).collect()))
    }
}
