//! An OCI image layout directory (`oci-layout`, `index.json`, `blobs/sha256/<hex>`), per the
//! OCI image-layout spec: the destination that needs no server, readable by skopeo, oras and
//! crane. Every file is written to a temporary name and renamed, so a reader never sees half a
//! blob or half an index. No part of a layout (its directory, `blobs/`, `blobs/sha256/`,
//! `index.json`, `oci-layout`, a blob) is followed through a symbolic link: a link planted in a
//! checkout would make the action, as root, write or read elsewhere.

use std::fs::File;
use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::Digest as _;

use super::{Gate, ManifestRef, ReadTarget, WriteTarget};

/// Blobs are read in blocks of this size when they are copied out of the layout.
const READ_BLOCK: usize = 1 << 20;
use crate::artifact::{Blob, Descriptor, INDEX_MEDIA_TYPE};
use crate::error::{Error, Result};
use crate::reference::Digest;

/// The annotation that names a manifest's tag inside `index.json`.
pub const REF_NAME: &str = "org.opencontainers.image.ref.name";
const LAYOUT_FILE: &str = r#"{"imageLayoutVersion":"1.0.0"}"#;

/// An OCI image layout directory.
#[derive(Debug, Clone)]
pub struct Layout {
    root: PathBuf,
}

/// The layout's `index.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Index {
    /// Always 2.
    pub schema_version: u32,
    /// Always the OCI index media type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    /// The manifests, each tagged by a `ref.name` annotation.
    #[serde(default)]
    pub manifests: Vec<Descriptor>,
}

impl Layout {
    /// Opens (creating when absent) the layout at `root`. Made under the layout's lock, so
    /// writers racing to create it each find a layout.
    pub fn create(root: &Path) -> Result<Self> {
        let layout = Layout {
            root: root.to_owned(),
        };
        layout.refuse_links()?;
        std::fs::create_dir_all(root).map_err(|e| Error::io("create", root, e))?;
        layout.locked(|| {
            layout.refuse_links()?;
            let marker = root.join("oci-layout");
            if marker.exists() {
                let mut text = String::new();
                open_nofollow(&marker)
                    .and_then(|mut f| f.read_to_string(&mut text))
                    .map_err(|e| Error::io("read", &marker, e))?;
                if !text.contains("imageLayoutVersion") {
                    return Err(layout.error("`oci-layout` is not an OCI layout marker"));
                }
            } else if std::fs::read_dir(root)
                .map_err(|e| Error::io("read", root, e))?
                .next()
                .is_some()
            {
                return Err(layout.error(
                    "the directory exists, is not empty and is not an OCI layout; choose another directory",
                ));
            }
            std::fs::create_dir_all(layout.blob_dir())
                .map_err(|e| Error::io("create", root, e))?;
            layout.refuse_links()?;
            for dir in [root.to_owned(), root.join("blobs"), layout.blob_dir()] {
                crate::owner::hand_over(&dir)?;
            }
            if !marker.exists() {
                write_atomic(&marker, LAYOUT_FILE.as_bytes())?;
            }
            if !layout.index_path().exists() {
                layout.write_index(&Index {
                    schema_version: 2,
                    media_type: Some(INDEX_MEDIA_TYPE.to_owned()),
                    manifests: Vec::new(),
                })?;
            }
            Ok(())
        })?;
        Ok(layout)
    }

    /// Opens the existing layout at `root` for reading; refuses a directory that is not one.
    pub fn open(root: &Path) -> Result<Self> {
        let layout = Layout {
            root: root.to_owned(),
        };
        layout.refuse_links()?;
        if !root.join("oci-layout").is_file() || !layout.index_path().is_file() {
            return Err(layout.error(
                "not an OCI image layout (no `oci-layout` and `index.json`); check the directory",
            ));
        }
        Ok(layout)
    }

    /// The layout's directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The path of the blob with `digest`.
    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.blob_dir().join(digest.hex())
    }

    /// Reads `index.json`.
    pub fn read_index(&self) -> Result<Index> {
        let path = self.index_path();
        let text = read_nofollow(&path).map_err(|e| Error::io("read", &path, e))?;
        serde_json::from_slice(&text)
            .map_err(|e| self.error(format!("index.json is not valid: {e}")))
    }

    /// Refuses a layout whose directory, `blobs/`, `blobs/sha256/`, `index.json` or
    /// `oci-layout` is a symbolic link. Checked on opening and before each write.
    fn refuse_links(&self) -> Result<()> {
        let parts = [
            self.root.clone(),
            self.root.join("blobs"),
            self.blob_dir(),
            self.index_path(),
            self.root.join("oci-layout"),
        ];
        for part in parts {
            if part.symlink_metadata().is_ok_and(|m| m.is_symlink()) {
                return Err(self.error(format!(
                    "`{}` is a symbolic link; a layout's directories and files must be real ones, so remove the link or choose another directory",
                    part.display()
                )));
            }
        }
        Ok(())
    }

    fn blob_dir(&self) -> PathBuf {
        self.root.join("blobs").join("sha256")
    }

    fn index_path(&self) -> PathBuf {
        self.root.join("index.json")
    }

    fn write_index(&self, index: &Index) -> Result<()> {
        let bytes = serde_json::to_vec(index).expect("an index always serializes");
        write_atomic(&self.index_path(), &bytes)
    }

    /// Runs `f` holding the layout's lock: an advisory lock on its directory, which every
    /// writer of `index.json` takes (released when the directory is closed).
    fn locked<T>(&self, f: impl FnOnce() -> Result<T>) -> Result<T> {
        let dir = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(nofollow() | rustix::fs::OFlags::DIRECTORY.bits() as i32)
            .open(&self.root)
            .map_err(|e| Error::io("lock", &self.root, e))?;
        let mut lock = fd_lock::RwLock::new(dir);
        let _held = lock.write().map_err(|e| Error::io("lock", &self.root, e))?;
        f()
    }

    fn error(&self, reason: impl Into<String>) -> Error {
        Error::Layout {
            path: self.root.clone(),
            reason: reason.into(),
        }
    }
}

fn nofollow() -> i32 {
    rustix::fs::OFlags::NOFOLLOW.bits() as i32
}

/// Opens `path` for reading, refusing a symbolic link.
fn open_nofollow(path: &Path) -> std::io::Result<File> {
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nofollow())
        .open(path)
}

/// Reads `path` whole, refusing a symbolic link.
fn read_nofollow(path: &Path) -> std::io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    open_nofollow(path)?.read_to_end(&mut bytes)?;
    Ok(bytes)
}

fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::Builder::new()
        .permissions(super::download::file_permissions())
        .tempfile_in(dir)
        .map_err(|e| Error::io("write", path, e))?;
    tmp.write_all(bytes)
        .map_err(|e| Error::io("write", path, e))?;
    tmp.persist(path)
        .map_err(|e| Error::io("write", path, e.error))?;
    crate::owner::hand_over(path)
}

impl WriteTarget for Layout {
    fn asks_for_free(&self) -> bool {
        true
    }

    async fn has_blob(&self, digest: &Digest) -> Result<bool> {
        // A link is no blob: it is replaced, never taken for one.
        Ok(self
            .blob_path(digest)
            .symlink_metadata()
            .is_ok_and(|m| m.is_file()))
    }

    async fn put_blob(&self, blob: &Blob) -> Result<()> {
        self.refuse_links()?;
        write_atomic(&self.blob_path(&blob.digest), &blob.bytes)
    }

    async fn put_blob_file(&self, descriptor: &Descriptor, path: &Path, gate: &Gate) -> Result<()> {
        self.refuse_links()?;
        let target = self.blob_path(&descriptor.digest);
        let mut source = std::fs::File::open(path).map_err(|e| Error::io("read", path, e))?;
        let mut tmp = tempfile::Builder::new()
            .permissions(super::download::file_permissions())
            .tempfile_in(self.blob_dir())
            .map_err(|e| Error::io("write", &target, e))?;
        let mut hashing = HashingWriter {
            inner: tmp.as_file_mut(),
            hasher: sha2::Sha256::new(),
            size: 0,
        };
        std::io::copy(&mut source, &mut hashing).map_err(|e| Error::io("write", &target, e))?;
        let (size, digest) = (hashing.size, Digest::from_hasher(hashing.hasher));
        if digest != descriptor.digest || size != descriptor.size {
            return Err(Error::DigestMismatch {
                what: format!("`{}` (it changed while being copied)", path.display()),
                expected: descriptor.digest.to_string(),
                actual: digest.to_string(),
            });
        }
        if !gate.opened().await {
            return Err(Error::HeldBack {
                digest: descriptor.digest.clone(),
            });
        }
        tmp.persist(&target)
            .map_err(|e| Error::io("write", &target, e.error))?;
        crate::owner::hand_over(&target)
    }

    async fn put_manifest(&self, manifest: &Blob, reference: &ManifestRef) -> Result<Digest> {
        self.refuse_links()?;
        if !self.blob_path(&manifest.digest).is_file() {
            write_atomic(&self.blob_path(&manifest.digest), &manifest.bytes)?;
        }
        if let ManifestRef::Tag(tag) = reference {
            // Read, changed and written under the lock: a concurrent push keeps its tags.
            self.locked(|| {
                self.refuse_links()?;
                let mut index = self.read_index()?;
                index.manifests.retain(|m| {
                    m.annotations.get(REF_NAME).map(String::as_str) != Some(tag.as_str())
                });
                let mut descriptor = manifest.descriptor();
                descriptor
                    .annotations
                    .insert(REF_NAME.to_owned(), tag.to_string());
                index.manifests.push(descriptor);
                self.write_index(&index)
            })?;
        }
        Ok(manifest.digest.clone())
    }
}

impl ReadTarget for Layout {
    async fn get_manifest(&self, reference: &ManifestRef) -> Result<Option<Blob>> {
        let (digest, media_type) =
            match reference {
                ManifestRef::Digest(d) => (d.clone(), None),
                ManifestRef::Tag(tag) => {
                    let index = self.read_index()?;
                    match index.manifests.iter().find(|m| {
                        m.annotations.get(REF_NAME).map(String::as_str) == Some(tag.as_str())
                    }) {
                        Some(m) => (m.digest.clone(), Some(m.media_type.clone())),
                        None => return Ok(None),
                    }
                }
            };
        let path = self.blob_path(&digest);
        let bytes = match read_nofollow(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io("read", &path, e)),
        };
        let media_type = media_type
            .or_else(|| super::declared_media_type(&bytes))
            .unwrap_or_else(|| crate::artifact::MANIFEST_MEDIA_TYPE.to_owned());
        let blob = Blob::new(media_type, bytes);
        if blob.digest != digest {
            return Err(Error::DigestMismatch {
                what: format!("manifest {} in `{}`", digest, self.root.display()),
                expected: digest.to_string(),
                actual: blob.digest.to_string(),
            });
        }
        Ok(Some(blob))
    }

    async fn get_blob(&self, descriptor: &Descriptor) -> Result<Vec<u8>> {
        let path = self.blob_path(&descriptor.digest);
        let bytes = read_nofollow(&path).map_err(|e| Error::io("read", &path, e))?;
        super::check_blob(descriptor, &bytes)?;
        Ok(bytes)
    }

    async fn get_blob_into(
        &self,
        descriptor: &Descriptor,
        download: &mut super::download::Download,
    ) -> Result<()> {
        let path = self.blob_path(&descriptor.digest);
        let mut source = open_nofollow(&path).map_err(|e| Error::io("read", &path, e))?;
        loop {
            let mut block = vec![0u8; READ_BLOCK];
            let n = source
                .read(&mut block)
                .map_err(|e| Error::io("read", &path, e))?;
            if n == 0 {
                return Ok(());
            }
            block.truncate(n);
            download.write(block.into()).await?;
        }
    }

    async fn referrers(&self, subject: &Digest) -> Result<Vec<Descriptor>> {
        let tag = super::fallback_tag(subject);
        let mut found = match self.get_manifest(&ManifestRef::Tag(tag.clone())).await? {
            Some(index) => super::index_entries(&index.bytes)
                .map_err(|e| self.error(format!("the referrers index `{tag}` is {e}")))?,
            None => Vec::new(),
        };
        // Tools that write layouts directly (oras) list referrers in index.json itself.
        for entry in self.read_index()?.manifests {
            if entry.artifact_type.is_none() || found.iter().any(|f| f.digest == entry.digest) {
                continue;
            }
            let Ok(bytes) = read_nofollow(&self.blob_path(&entry.digest)) else {
                continue;
            };
            let names_subject = serde_json::from_slice::<crate::artifact::Manifest>(&bytes)
                .ok()
                .and_then(|m| m.subject)
                .is_some_and(|s| &s.digest == subject);
            if names_subject {
                found.push(entry);
            }
        }
        Ok(found)
    }
}

struct HashingWriter<W> {
    inner: W,
    hasher: sha2::Sha256,
    size: u64,
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.size += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::artifact::MANIFEST_MEDIA_TYPE;

    #[tokio::test]
    async fn retagging_replaces_the_index_entry() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::create(&dir.path().join("out")).unwrap();
        let one = Blob::new(MANIFEST_MEDIA_TYPE, b"{\"a\":1}".to_vec());
        let two = Blob::new(MANIFEST_MEDIA_TYPE, b"{\"a\":2}".to_vec());
        let tag = ManifestRef::Tag("v1".parse().unwrap());
        layout.put_manifest(&one, &tag).await.unwrap();
        layout.put_manifest(&two, &tag).await.unwrap();
        layout
            .put_manifest(&one, &ManifestRef::Tag("other".parse().unwrap()))
            .await
            .unwrap();
        let index = layout.read_index().unwrap();
        assert_eq!(index.manifests.len(), 2);
        let v1 = index
            .manifests
            .iter()
            .find(|m| m.annotations[REF_NAME] == "v1")
            .unwrap();
        assert_eq!(v1.digest, two.digest);
    }

    #[test]
    fn refuses_a_foreign_non_empty_directory() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("notes.txt"), b"x").unwrap();
        let err = Layout::create(dir.path()).unwrap_err().to_string();
        assert!(err.contains("not an OCI layout"), "{err}");
    }
}
