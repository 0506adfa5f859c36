//! The one seam to where artifacts go: a remote registry ([`remote::Remote`]) or an OCI image
//! layout directory on disk ([`layout::Layout`]). The push use case is written once against
//! [`Target`].

pub mod layout;
pub mod remote;

use std::fmt;
use std::path::Path;

use crate::artifact::{Blob, Descriptor};
use crate::error::Result;
use crate::reference::{Digest, Tag};

/// How a manifest is addressed when it is put.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ManifestRef {
    /// By its own digest: uploads the manifest without moving any tag.
    Digest(Digest),
    /// By tag: points the tag at the manifest.
    Tag(Tag),
}

impl fmt::Display for ManifestRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ManifestRef::Digest(d) => write!(f, "@{d}"),
            ManifestRef::Tag(t) => write!(f, ":{t}"),
        }
    }
}

/// A place that stores blobs and manifests.
#[allow(async_fn_in_trait)]
pub trait Target {
    /// Whether a blob with `digest` is already stored.
    async fn has_blob(&self, digest: &Digest) -> Result<bool>;

    /// Stores a small in-memory blob; the target checks its digest.
    async fn put_blob(&self, blob: &Blob) -> Result<()>;

    /// Streams the file at `path` as the blob `descriptor` describes, checking its digest.
    async fn put_blob_file(&self, descriptor: &Descriptor, path: &Path) -> Result<()>;

    /// Stores `manifest` under `reference` and returns the digest the target reports for it.
    async fn put_manifest(&self, manifest: &Blob, reference: &ManifestRef) -> Result<Digest>;
}
