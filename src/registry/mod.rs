//! The one seam to where artifacts go: a remote registry ([`remote::Remote`]) or an OCI image
//! layout directory on disk ([`layout::Layout`]). Each is written once against two traits:
//! [`ReadTarget`], what pull, verify and inspect read, and [`WriteTarget`], what push writes.

pub mod auth;
pub mod download;
pub mod layout;
pub mod progress;
pub mod referrers;
pub mod remote;
pub mod retry;

use std::path::Path;
use std::sync::Arc;

use crate::artifact::{Blob, Descriptor};
use crate::error::{Error, Result};
pub use crate::reference::ManifestRef;
use crate::reference::{Digest, Tag};

/// A file's digest and size, computed on a thread of its own, for every task that waits on it.
pub type Hashed = futures_util::future::Shared<
    futures_util::future::BoxFuture<'static, std::result::Result<(Digest, u64), Arc<Error>>>,
>;

/// The digest and size `hashed` yields once the hash is done, or the error that ended it.
pub async fn hash_done(hashed: &Hashed) -> Result<(Digest, u64)> {
    hashed.clone().await.map_err(Error::Shared)
}

/// The OCI 1.1 referrers fallback tag for `subject`: `sha256-<hex>`.
pub fn fallback_tag(subject: &Digest) -> Tag {
    format!("sha256-{}", subject.hex())
        .parse()
        .expect("sha256- and 64 hex digits is a valid tag")
}

/// A place artifacts are read from: what pull, verify and inspect need.
#[allow(async_fn_in_trait)]
pub trait ReadTarget {
    /// The manifest (or index) stored under `reference`, `None` when there is none. Its
    /// `digest` is computed from the bytes received; when `reference` is a digest, a mismatch
    /// is an error.
    async fn get_manifest(&self, reference: &ManifestRef) -> Result<Option<Blob>>;

    /// A small blob's bytes (configs, statements), checked against `descriptor`.
    async fn get_blob(&self, descriptor: &Descriptor) -> Result<Vec<u8>>;

    /// The digests of the manifests that refer to `subject`, as a client listing them would
    /// find them (the referrers API, else the fallback tag); `None` when the target cannot say,
    /// and then a writer maintains the fallback tag itself.
    async fn listed_referrers(&self, subject: &Digest) -> Result<Option<Vec<Digest>>> {
        let _ = subject;
        Ok(None)
    }

    /// The digests the target's referrers API lists for `subject`, `None` when it has no such
    /// API (then the fallback tag lists referrers, and the caller maintains it): asked alone,
    /// without reading the fallback tag. By default, what [`ReadTarget::listed_referrers`] says.
    async fn referrers_api(&self, subject: &Digest) -> Result<Option<Vec<Digest>>> {
        self.listed_referrers(subject).await
    }

    /// Streams the blob `descriptor` describes into `download`, which hashes (and may validate)
    /// the bytes on their way to disk; the caller finishes it, which checks the digest.
    async fn get_blob_into(
        &self,
        descriptor: &Descriptor,
        download: &mut download::Download,
    ) -> Result<()>;

    /// The manifests whose `subject` is `subject` (OCI 1.1 referrers): from the referrers API
    /// where the target has one, else from the fallback tag `sha256-<hex>`'s index.
    async fn referrers(&self, subject: &Digest) -> Result<Vec<Descriptor>>;
}

/// A place that stores blobs and manifests: what push writes, and what it asks before writing.
#[allow(async_fn_in_trait)]
pub trait WriteTarget: ReadTarget {
    /// Whether a blob with `digest` is already stored.
    async fn has_blob(&self, digest: &Digest) -> Result<bool>;

    /// Stores a small in-memory blob; the target checks its digest.
    async fn put_blob(&self, blob: &Blob) -> Result<()>;

    /// Streams the file at `path` as the blob `descriptor` describes, checking its digest. The
    /// blob is committed (its last bytes sent, or renamed into place) only once `gate` opens;
    /// when it closes instead, nothing is stored.
    async fn put_blob_file(&self, descriptor: &Descriptor, path: &Path, gate: &Gate) -> Result<()>;

    /// Whether [`WriteTarget::put_blob_file_hashing`] sends the file while its digest is still
    /// being computed; when not, a caller does better to hash first and ask
    /// [`WriteTarget::has_blob`].
    fn uploads_while_hashing(&self) -> bool {
        false
    }

    /// Whether [`WriteTarget::has_blob`] costs nothing (a file on disk, not a round trip), so a
    /// small blob is worth asking about before it is stored.
    fn asks_for_free(&self) -> bool {
        false
    }

    /// Streams the file at `path` (`size` bytes, of `media_type`) as a new blob before its
    /// digest is known, and commits it under the digest `hashed` yields, once `gate` opens;
    /// when the gate closes, nothing is stored. Returns that digest. Targets that cannot send
    /// first wait for the digest and store the file as [`WriteTarget::put_blob_file`] does.
    async fn put_blob_file_hashing(
        &self,
        media_type: &str,
        path: &Path,
        size: u64,
        gate: &Gate,
        hashed: Hashed,
    ) -> Result<Digest> {
        let digest = hash_done(&hashed).await?.0;
        let descriptor = Descriptor {
            media_type: media_type.to_owned(),
            digest: digest.clone(),
            size,
            artifact_type: None,
            annotations: Default::default(),
        };
        self.put_blob_file(&descriptor, path, gate).await?;
        Ok(digest)
    }

    /// The repository's tags, as far as the target lists them (none when it cannot): a layer of
    /// the same size under a recent tag is likely stored already.
    async fn tags(&self) -> Result<Vec<Tag>> {
        Ok(Vec::new())
    }

    /// Stores `manifest` under `reference` and returns the digest the target reports for it.
    async fn put_manifest(&self, manifest: &Blob, reference: &ManifestRef) -> Result<Digest>;
}

/// Holds an upload back from its commit until its bytes are known to be valid, so the upload can
/// run while validation still reads the same file. See [`gate`].
#[derive(Debug, Clone)]
pub struct Gate(tokio::sync::watch::Receiver<Option<bool>>);

/// Opens or closes the [`Gate`]s made with it; dropping it unsettled closes them.
#[derive(Debug)]
pub struct GateKeeper(tokio::sync::watch::Sender<Option<bool>>);

/// A gate and its keeper.
pub fn gate() -> (GateKeeper, Gate) {
    let (tx, rx) = tokio::sync::watch::channel(None);
    (GateKeeper(tx), Gate(rx))
}

impl Gate {
    /// A gate with nothing to wait for.
    pub fn open() -> Self {
        let (keeper, gate) = gate();
        keeper.settle(true);
        gate
    }

    /// Whether the gate has closed (false while it is unsettled).
    pub fn is_closed(&self) -> bool {
        match *self.0.borrow() {
            Some(open) => !open,
            // Unsettled: closed only if its keeper is gone.
            None => self.0.has_changed().is_err(),
        }
    }

    /// Waits until the gate is settled; true when it opened.
    pub async fn opened(&self) -> bool {
        let mut rx = self.0.clone();
        // A keeper dropped unsettled ends the wait with an error: closed.
        matches!(
            rx.wait_for(Option::is_some).await.as_deref(),
            Ok(Some(true))
        )
    }
}

impl GateKeeper {
    /// Opens (`true`) or closes the gates.
    pub fn settle(self, open: bool) {
        let _ = self.0.send(Some(open));
    }
}

/// The descriptors listed in an image index's bytes (`manifests`).
pub fn index_entries(bytes: &[u8]) -> Result<Vec<Descriptor>, String> {
    #[derive(serde::Deserialize)]
    struct Index {
        #[serde(default)]
        manifests: Vec<Descriptor>,
    }
    serde_json::from_slice::<Index>(bytes)
        .map(|i| i.manifests)
        .map_err(|e| format!("not a valid image index: {e}"))
}

/// Fails unless `digest` is stored: the check after an upload, before anything refers to it.
pub async fn confirm_stored<T: WriteTarget>(target: &T, digest: &Digest) -> Result<()> {
    if target.has_blob(digest).await? {
        return Ok(());
    }
    Err(crate::error::Error::DigestMismatch {
        what: format!("blob {digest} (not found after upload)"),
        expected: digest.to_string(),
        actual: "nothing".to_owned(),
    })
}

/// Stores a small blob; true when it was sent. A registry gets it in one request without being
/// asked first whether it has it: asking costs the round trip that sending does, and the
/// registry checks the digest. A target that answers for free ([`WriteTarget::asks_for_free`])
/// is asked, so what it holds is not written again.
pub async fn store_blob<T: WriteTarget>(target: &T, blob: &Blob) -> Result<bool> {
    if target.asks_for_free() && target.has_blob(&blob.digest).await? {
        return Ok(false);
    }
    target.put_blob(blob).await?;
    Ok(true)
}

/// Puts `manifest` under `reference` and checks the digest the target reports against the one
/// computed here; `what` names it in the error.
pub async fn put_manifest_checked<T: WriteTarget>(
    target: &T,
    manifest: &Blob,
    reference: &ManifestRef,
    what: &str,
) -> Result<()> {
    let reported = target.put_manifest(manifest, reference).await?;
    if reported == manifest.digest {
        return Ok(());
    }
    Err(crate::error::Error::DigestMismatch {
        what: what.to_owned(),
        expected: manifest.digest.to_string(),
        actual: reported.to_string(),
    })
}

/// The `mediaType` a manifest or index declares in its JSON, if any.
pub fn declared_media_type(bytes: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Probe {
        #[serde(rename = "mediaType")]
        media_type: Option<String>,
    }
    serde_json::from_slice::<Probe>(bytes).ok()?.media_type
}

/// Checks bytes received for `descriptor` against its digest and size.
pub fn check_blob(descriptor: &Descriptor, bytes: &[u8]) -> Result<()> {
    let actual = Digest::of(bytes);
    if actual != descriptor.digest || bytes.len() as u64 != descriptor.size {
        return Err(crate::error::Error::DigestMismatch {
            what: format!("blob {}", descriptor.digest),
            expected: format!("{} ({} bytes)", descriptor.digest, descriptor.size),
            actual: format!("{actual} ({} bytes)", bytes.len()),
        });
    }
    Ok(())
}

/// Checks a manifest fetched by digest against that digest.
pub fn check_manifest(reference: &ManifestRef, manifest: &Blob) -> Result<()> {
    if let ManifestRef::Digest(expected) = reference
        && expected != &manifest.digest
    {
        return Err(crate::error::Error::DigestMismatch {
            what: format!("manifest {expected}"),
            expected: expected.to_string(),
            actual: manifest.digest.to_string(),
        });
    }
    Ok(())
}
