//! Push's own logic in process, against an OCI layout on disk that records each write: the
//! order of the writes (every blob before the manifest, the manifest before its tags, the
//! referrers' listing after the subject) and the re-push guess (a layer of a size already under
//! a tag is hashed first and not sent again). The layout says it streams uploads, as a registry
//! does, so the guess is asked as it is of a registry.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use super::*;
use crate::context::{Env, GithubContext};
use crate::github::RepoMetadata;
use crate::inputs::Inputs;
use crate::push::{PushRequest, hash_file, spawn_blocking_named};
use crate::registry::download::Download;
use crate::registry::layout::{Layout, REF_NAME};
use crate::registry::{Gate, ReadTarget};

/// A layout that records what is stored, in order: `blob <digest>`, `manifest @<digest>`,
/// `manifest :<tag>`.
struct Recording {
    layout: Layout,
    writes: Mutex<Vec<String>>,
}

impl Recording {
    fn new(dir: &Path) -> Self {
        Recording {
            layout: Layout::create(dir).unwrap(),
            writes: Mutex::new(Vec::new()),
        }
    }

    fn record(&self, write: String) {
        self.writes.lock().unwrap().push(write);
    }

    fn writes(&self) -> Vec<String> {
        self.writes.lock().unwrap().clone()
    }

    /// Where `write` is in the order of writes; it must be there.
    fn at(&self, write: &str) -> usize {
        let writes = self.writes();
        writes
            .iter()
            .position(|w| w == write)
            .unwrap_or_else(|| panic!("no `{write}` among {writes:#?}"))
    }
}

impl ReadTarget for Recording {
    async fn get_manifest(&self, reference: &ManifestRef) -> Result<Option<Blob>> {
        self.layout.get_manifest(reference).await
    }

    async fn get_blob(&self, descriptor: &crate::artifact::Descriptor) -> Result<Vec<u8>> {
        self.layout.get_blob(descriptor).await
    }

    async fn listed_referrers(&self, subject: &Digest) -> Result<Option<Vec<Digest>>> {
        self.layout.listed_referrers(subject).await
    }

    async fn get_blob_into(
        &self,
        descriptor: &crate::artifact::Descriptor,
        download: &mut Download,
    ) -> Result<()> {
        self.layout.get_blob_into(descriptor, download).await
    }

    async fn referrers(&self, subject: &Digest) -> Result<Vec<crate::artifact::Descriptor>> {
        self.layout.referrers(subject).await
    }
}

impl WriteTarget for Recording {
    async fn has_blob(&self, digest: &Digest) -> Result<bool> {
        self.layout.has_blob(digest).await
    }

    async fn put_blob(&self, blob: &Blob) -> Result<()> {
        self.layout.put_blob(blob).await?;
        self.record(format!("blob {}", blob.digest));
        Ok(())
    }

    async fn put_blob_file(
        &self,
        descriptor: &crate::artifact::Descriptor,
        path: &Path,
        gate: &Gate,
    ) -> Result<()> {
        self.layout.put_blob_file(descriptor, path, gate).await?;
        self.record(format!("blob {}", descriptor.digest));
        Ok(())
    }

    fn uploads_while_hashing(&self) -> bool {
        true
    }

    fn asks_for_free(&self) -> bool {
        self.layout.asks_for_free()
    }

    async fn put_blob_file_hashing(
        &self,
        media_type: &str,
        path: &Path,
        size: u64,
        gate: &Gate,
        hashed: Hashed,
    ) -> Result<Digest> {
        let digest = self
            .layout
            .put_blob_file_hashing(media_type, path, size, gate, hashed)
            .await?;
        self.record(format!("blob {digest} streamed"));
        Ok(digest)
    }

    async fn tags(&self) -> Result<Vec<Tag>> {
        Ok(self
            .layout
            .read_index()?
            .manifests
            .iter()
            .filter_map(|m| m.annotations.get(REF_NAME)?.parse().ok())
            .collect())
    }

    async fn put_manifest(&self, manifest: &Blob, reference: &ManifestRef) -> Result<Digest> {
        let digest = self.layout.put_manifest(manifest, reference).await?;
        self.record(format!("manifest {reference}"));
        Ok(digest)
    }
}

/// A valid module of about `data_len` bytes: one data segment of them.
fn module(data_len: usize, byte: u8) -> Vec<u8> {
    fn leb(mut n: usize) -> Vec<u8> {
        let mut out = Vec::new();
        loop {
            let low = (n & 0x7f) as u8;
            n >>= 7;
            if n == 0 {
                out.push(low);
                return out;
            }
            out.push(low | 0x80);
        }
    }
    let segment = [
        &[1u8, 0, 0x41, 0, 0x0b][..],
        &leb(data_len),
        &vec![byte; data_len],
    ]
    .concat();
    [
        &b"\0asm\x01\0\0\0"[..],
        &[5, 4, 1, 0, 0xff, 0x01][..],
        &[11][..],
        &leb(segment.len()),
        &segment,
    ]
    .concat()
}

/// What one push stored, and the writes it made.
struct Pushed {
    delivered: Delivered,
    writes: Vec<String>,
    target: Recording,
}

/// Delivers the file at `path` to the layout at `dir` under `tag`, as the push use case does
/// (with the provenance, unsigned).
async fn push(dir: &Path, path: &Path, tag: &str) -> Pushed {
    let env: Env = [
        ("INPUT_IMAGE", format!("oci:{}", dir.display())),
        ("INPUT_PATH", path.display().to_string()),
        ("INPUT_TAGS", tag.to_owned()),
        // The job's workspace, which in action mode holds the layout.
        (
            "GITHUB_WORKSPACE",
            dir.parent().unwrap().display().to_string(),
        ),
        ("GITHUB_REPOSITORY", "acme/multiply".to_owned()),
        (
            "GITHUB_SHA",
            "0123456789abcdef0123456789abcdef01234567".to_owned(),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let request = PushRequest::from_inputs(&Inputs::from_action_env(&env), &env).unwrap();
    let ctx = GithubContext::from_env(&env);
    let path = PathBuf::from(path);
    let work = Work {
        phase: tracing::Span::none(),
        hashed: hash_file(path.clone()),
        validating: spawn_blocking_named(path.clone(), wasm::validate_file),
        stamp: Stamp::of(&path).unwrap(),
        path,
        build: None,
    };
    let created = chrono::DateTime::from_timestamp(1_700_000_000, 0).unwrap();
    let (provenance, sbom) = (tokio::sync::OnceCell::new(), tokio::sync::OnceCell::new());
    let facts = Facts {
        request: &request,
        ctx: &ctx,
        tags: &request.tags,
        all_tags: &request.tags,
        created: &created,
        repo: &RepoMetadata::default(),
        keyless: None,
        provenance: &provenance,
        sbom: &sbom,
    };
    let target = Recording::new(dir);
    let delivered = deliver(&target, work, &facts).await.unwrap();
    let writes = target.writes();
    Pushed {
        delivered,
        writes,
        target,
    }
}

#[tokio::test]
async fn every_blob_is_stored_before_the_manifest_and_the_manifest_before_its_tags() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("big.wasm");
    std::fs::write(&file, module(300 << 10, 1)).unwrap();
    let pushed = push(&dir.path().join("out"), &file, "v1").await;
    let (target, artifact) = (&pushed.target, &pushed.delivered.artifact);
    let manifest = target.at(&format!("manifest @{}", artifact.manifest.digest));
    let layer = target.at(&format!("blob {} streamed", pushed.delivered.wasm.digest));
    let config = target.at(&format!("blob {}", artifact.config.digest));
    assert!(
        layer < manifest && config < manifest,
        "{:#?}",
        pushed.writes
    );
    assert!(manifest < target.at("manifest :v1"), "{:#?}", pushed.writes);
    // The provenance: its blobs, then its manifest; its listing in the fallback tag only once
    // the subject and its tags are stored (a layout asks nothing of a round trip).
    let referrer = pushed.delivered.provenance.clone().expect("a provenance");
    let referrer = target.at(&format!("manifest @{referrer}"));
    let fallback = format!(
        "manifest :{}",
        crate::registry::fallback_tag(&artifact.manifest.digest)
    );
    assert!(
        target.at(&fallback) > referrer.max(target.at("manifest :v1")),
        "{:#?}",
        pushed.writes
    );
}

#[tokio::test]
async fn a_layer_of_a_size_already_under_a_tag_is_hashed_first_and_not_sent_again() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let file = dir.path().join("big.wasm");
    std::fs::write(&file, module(300 << 10, 1)).unwrap();
    let first = push(&out, &file, "v1").await;
    let digest = &first.delivered.wasm.digest;
    assert!(first.writes.contains(&format!("blob {digest} streamed")));

    // The same file again: a layer of its size is under `v1`, so the push waits for the hash,
    // finds the layer stored, and sends nothing of it.
    let again = push(&out, &file, "v2").await;
    assert!(
        !again
            .writes
            .iter()
            .any(|w| w.starts_with(&format!("blob {digest}"))),
        "{:#?}",
        again.writes
    );
    assert_eq!(again.delivered.reused.first(), Some(digest));
    assert!(again.writes.contains(&"manifest :v2".to_owned()));

    // The guess itself: a layer of that size under the tags pushed, or the repository's last
    // tags, is likely stored; another size is not.
    let size = first.delivered.wasm.size;
    let v1: Tag = "v1".parse().unwrap();
    assert!(size_seen(&again.target, std::slice::from_ref(&v1), size).await);
    assert!(
        size_seen(&again.target, &[], size).await,
        "a recent tag holds it"
    );
    assert!(!size_seen(&again.target, &[v1], size + 1).await);

    // A new file of another size streams while it is hashed.
    std::fs::write(&file, module(400 << 10, 2)).unwrap();
    let other = push(&out, &file, "v3").await;
    let digest = &other.delivered.wasm.digest;
    assert!(
        other.writes.contains(&format!("blob {digest} streamed")),
        "{:#?}",
        other.writes
    );
    assert_eq!(other.delivered.uploaded.first(), Some(digest));
}
