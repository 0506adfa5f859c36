//! `format: image`: the module as an OCI container image, as `docker buildx build --platform
//! wasi/wasm` writes `FROM scratch` plus `COPY app.wasm /`, for the containerd versions that
//! cannot unpack the CNCF artifact (before 1.6.25 and 1.7.7) and for runtimes that read only
//! images. The config is an OCI image config (`architecture: wasm`, `os: wasip1` or `wasip2`,
//! the module as `Entrypoint`, `rootfs.diff_ids`); the one layer is a gzip-compressed tar
//! holding the module at its root; the manifest is a plain manifest, never an index (an index
//! fails platform matching on a linux node).
//!
//! The layer is reproducible: the module is the only entry, owned by 0:0, mode 0755, its mtime
//! the artifact's `created` time, and the gzip header carries no time and no name. The read
//! side takes the module back out of the layer, bounded and validated, byte for byte what was
//! pushed.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::Digest as _;

use super::{
    ARCHITECTURE, Artifact, ArtifactInputs, Blob, Descriptor, Format, MANIFEST_MEDIA_TYPE,
    Manifest, TITLE,
};
use crate::error::{Error, Result};
use crate::reference::Digest;
use crate::registry::download::{Download, Downloaded, file_permissions, parent_dir};
use crate::registry::{Gate, ReadTarget, WriteTarget};
use crate::wasm::{Validation, WasmFile};

/// The OCI image config media type.
pub const CONFIG_MEDIA_TYPE: &str = "application/vnd.oci.image.config.v1+json";
/// The OCI gzip-compressed tar layer media type.
pub const LAYER_MEDIA_TYPE: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
/// Docker's media type for the same layer, which older builders write.
const DOCKER_LAYER_MEDIA_TYPE: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";

/// The largest module taken out of a layer: Wasm's own limit (sizes are 32-bit), so a layer
/// whose entry claims more, or a gzip bomb, stops there.
const MAX_MODULE: u64 = u32::MAX as u64;
/// The most entries read before the module: a layer of many empty entries stops there.
const MAX_ENTRIES: usize = 16;
/// The chunk the module is read in.
const CHUNK: usize = 64 << 10;

/// Whether a layer of this media type is an image layer the module is taken out of.
pub fn is_layer(media_type: &str) -> bool {
    media_type == LAYER_MEDIA_TYPE || media_type == DOCKER_LAYER_MEDIA_TYPE
}

/// The image config, as buildx writes it for a `FROM scratch` image of one module.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageConfig {
    /// When the image was made (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    /// Who made it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    /// Always `wasm`.
    pub architecture: String,
    /// `wasip1` for a module, `wasip2` for a component.
    pub os: String,
    /// What a container of the image runs.
    #[serde(default)]
    pub config: ContainerConfig,
    /// The uncompressed layers' digests.
    pub rootfs: RootFs,
}

/// The part of an image config a container starts from.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerConfig {
    /// The module's path in the image: `/<name>.wasm`.
    #[serde(rename = "Entrypoint", default, skip_serializing_if = "Vec::is_empty")]
    pub entrypoint: Vec<String>,
}

/// An image config's `rootfs`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RootFs {
    /// Always `layers`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The digest of each layer's uncompressed tar, in order.
    #[serde(with = "super::digest_list_serde")]
    pub diff_ids: Vec<Digest>,
}

/// The image's one layer, written to a temporary file.
#[derive(Debug)]
pub struct ImageLayer {
    file: tempfile::NamedTempFile,
    /// The compressed layer's descriptor, titled with the module's file name.
    pub descriptor: Descriptor,
    /// The digest of the uncompressed tar (the config's `rootfs.diff_ids`).
    pub diff_id: Digest,
    /// The module's file name, the tar's one entry.
    pub name: String,
}

impl ImageLayer {
    /// Writes the layer holding the module `wasm` under its file name, its mtime `mtime`
    /// (seconds since the epoch), into a temporary file. A module that is no longer what was
    /// hashed and validated is [`Error::FileChanged`].
    pub fn create(wasm: &WasmFile, mtime: u64) -> Result<Self> {
        let path = &wasm.path;
        let name = wasm.file_name();
        let module = std::fs::File::open(path).map_err(|e| Error::io("read", path, e))?;
        let tmp = tempfile::NamedTempFile::new().map_err(|e| Error::io("create", path, e))?;
        let written = |e| Error::io("write", tmp.path(), e);
        let file = tmp.reopen().map_err(written)?;
        let gzip =
            flate2::GzBuilder::new().write(Hashing::new(file), flate2::Compression::default());
        let mut tar = tar::Builder::new(Hashing::new(gzip));
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Regular);
        header.set_size(wasm.size);
        header.set_mode(0o755);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(mtime);
        let mut module = Hashing::new(module.take(wasm.size));
        tar.append_data(&mut header, &name, &mut module)
            .map_err(|e| Error::io("read", path, e))?;
        let (_, module_digest, module_size) = module.into_parts();
        if module_digest != wasm.digest || module_size != wasm.size {
            return Err(Error::FileChanged { path: path.clone() });
        }
        let (gzip, diff_id, _) = tar.into_inner().map_err(written)?.into_parts();
        let (file, digest, size) = gzip.finish().map_err(written)?.into_parts();
        file.sync_all().map_err(written)?;
        Ok(ImageLayer {
            file: tmp,
            descriptor: Descriptor {
                media_type: LAYER_MEDIA_TYPE.to_owned(),
                digest,
                size,
                artifact_type: None,
                annotations: BTreeMap::from([(TITLE.to_owned(), name.clone())]),
            },
            diff_id,
            name,
        })
    }

    /// The file the compressed layer is in.
    pub fn path(&self) -> &Path {
        self.file.path()
    }
}

/// The image layer of `wasm` when `format` is the image form, its entry's mtime `created`.
pub async fn layer_for(
    format: Format,
    wasm: &WasmFile,
    created: &chrono::DateTime<chrono::Utc>,
) -> Result<Option<ImageLayer>> {
    if format != Format::Image {
        return Ok(None);
    }
    let wasm = wasm.clone();
    let mtime = u64::try_from(created.timestamp()).unwrap_or(0);
    tokio::task::spawn_blocking(move || ImageLayer::create(&wasm, mtime))
        .await
        .expect("writing the image layer does not panic")
        .map(Some)
}

/// Builds the image's config and manifest for `wasm`, whose layer is `layer`.
pub fn build(wasm: &WasmFile, layer: &ImageLayer, inputs: ArtifactInputs<'_>) -> Artifact {
    let config = ImageConfig {
        created: Some(inputs.created.to_owned()),
        author: inputs.author.map(str::to_owned),
        architecture: ARCHITECTURE.to_owned(),
        os: wasm.kind.os().to_owned(),
        config: ContainerConfig {
            entrypoint: vec![format!("/{}", layer.name)],
        },
        rootfs: RootFs {
            kind: "layers".to_owned(),
            diff_ids: vec![layer.diff_id.clone()],
        },
    };
    let config = Blob::new(
        CONFIG_MEDIA_TYPE,
        serde_json::to_vec(&config).expect("a config always serializes"),
    );
    let manifest = Manifest {
        schema_version: 2,
        media_type: Some(MANIFEST_MEDIA_TYPE.to_owned()),
        artifact_type: None,
        config: config.descriptor(),
        layers: vec![layer.descriptor.clone()],
        subject: None,
        annotations: inputs.annotations,
    };
    Artifact {
        config,
        layer: layer.descriptor.clone(),
        manifest: Blob::new(MANIFEST_MEDIA_TYPE, manifest.to_bytes()),
        annotations: manifest.annotations,
    }
}

/// Whether an image config says what the module taken out of its layer is: `architecture:
/// wasm` and the module's `os`. What it found, or why it does not match.
pub fn check_config(config: &[u8], wasm: &WasmFile) -> std::result::Result<String, String> {
    let config: ImageConfig = serde_json::from_slice(config)
        .map_err(|e| format!("the config is not a valid OCI image config: {e}"))?;
    let os = wasm.kind.os();
    if config.architecture != ARCHITECTURE || config.os != os {
        return Err(format!(
            "the image config says `{}/{}` but the module in its layer is `{os}/{ARCHITECTURE}`",
            config.os, config.architecture
        ));
    }
    Ok(format!("an image of a `{os}` module, as its config says"))
}

/// Stores the layer unless the target has it; true when it was uploaded. Its commit waits for
/// `gate`.
pub async fn upload<T: WriteTarget>(target: &T, layer: &ImageLayer, gate: &Gate) -> Result<bool> {
    let digest = &layer.descriptor.digest;
    if target.has_blob(digest).await? {
        tracing::info!("layer {digest} is already stored; not uploading it again");
        return Ok(false);
    }
    tracing::info!(
        "uploading image layer {digest} ({} bytes)",
        layer.descriptor.size
    );
    target
        .put_blob_file(&layer.descriptor, layer.path(), gate)
        .await?;
    crate::registry::confirm_stored(target, digest).await?;
    Ok(true)
}

/// Downloads the image layer `layer` next to `dest` through its digest check, and takes the
/// module out of it into a temporary file next to `dest`, validated on the way: what
/// [`crate::registry::download::fetch_validating`] gives for a `.wasm` layer.
pub async fn fetch_module<T: ReadTarget>(
    target: &T,
    layer: &Descriptor,
    dest: &Path,
) -> Result<Downloaded> {
    let mut download = Download::create(dest)?;
    target.get_blob_into(layer, &mut download).await?;
    let layer = layer.clone();
    let dest = dest.to_owned();
    tokio::task::spawn_blocking(move || {
        let compressed = download.finish(&layer)?;
        unpack(compressed.path(), &layer.digest, &dest)
    })
    .await
    .expect("unpacking a layer does not panic")
}

/// The digest and size of the module in the image layer `layer`, taken out into a temporary
/// directory and validated (what `inspect` reports for the image form).
pub async fn module_of<T: ReadTarget>(target: &T, layer: &Descriptor) -> Result<(Digest, u64)> {
    let staging = tempfile::tempdir().map_err(|e| Error::io("create", std::env::temp_dir(), e))?;
    let mut downloaded = fetch_module(target, layer, &staging.path().join("module.wasm")).await?;
    if let Some(validated) = downloaded.validated.take() {
        validated?;
    }
    Ok(downloaded.content())
}

/// Takes the one `.wasm` file at the root of the gzip-compressed tar at `compressed` into a
/// temporary file next to `dest`, hashing and validating it as it is written.
fn unpack(compressed: &Path, digest: &Digest, dest: &Path) -> Result<Downloaded> {
    let what = PathBuf::from(format!("layer {digest}"));
    let refuse = |reason: String| Error::InvalidWasm {
        path: what.clone(),
        reason,
    };
    let unreadable = |e: std::io::Error| refuse(format!("it is not a gzip-compressed tar: {e}"));
    let file = std::fs::File::open(compressed).map_err(|e| Error::io("read", compressed, e))?;
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(file));
    let mut module = None;
    for (n, entry) in archive.entries().map_err(unreadable)?.enumerate() {
        if n >= MAX_ENTRIES {
            return Err(refuse(format!(
                "an image layer holds one `.wasm` file; this one has more than {MAX_ENTRIES} entries"
            )));
        }
        let mut entry = entry.map_err(unreadable)?;
        let path = entry.path().map_err(unreadable)?.into_owned();
        let name = root_file_name(&path);
        let kind = entry.header().entry_type();
        if kind.is_dir() && name.is_none() {
            continue;
        }
        match (kind.is_file(), name, &module) {
            (true, Some(name), None) if name.ends_with(".wasm") => {
                module = Some(extract(&mut entry, &what, dest)?);
            }
            _ => {
                return Err(refuse(format!(
                    "an image layer holds one `.wasm` file at its root, and nothing else; this one also holds {:?}",
                    path.display().to_string()
                )));
            }
        }
    }
    module.ok_or_else(|| refuse("the image layer holds no `.wasm` file at its root".to_owned()))
}

/// The file name of a path at the archive's root (`app.wasm`, `./app.wasm`, `/app.wasm`);
/// `None` for the root itself and for anything deeper.
fn root_file_name(path: &Path) -> Option<String> {
    let mut parts = path.components().filter(|c| {
        !matches!(
            c,
            std::path::Component::CurDir | std::path::Component::RootDir
        )
    });
    match (parts.next(), parts.next()) {
        (Some(std::path::Component::Normal(name)), None) => {
            Some(name.to_string_lossy().into_owned())
        }
        _ => None,
    }
}

/// Copies one entry's bytes (at most [`MAX_MODULE`]) into a temporary file next to `dest`,
/// hashing and validating them.
fn extract(entry: &mut impl Read, what: &Path, dest: &Path) -> Result<Downloaded> {
    let mut tmp = tempfile::Builder::new()
        .prefix(".wasm-oci-download-")
        .permissions(file_permissions())
        .tempfile_in(parent_dir(dest))
        .map_err(|e| Error::io("create", dest, e))?;
    let mut validation = Validation::start(what.to_owned());
    let mut hasher = sha2::Sha256::new();
    let mut size = 0u64;
    let mut bounded = entry.take(MAX_MODULE + 1);
    let mut buffer = vec![0; CHUNK];
    loop {
        let n = bounded.read(&mut buffer).map_err(|e| Error::InvalidWasm {
            path: what.to_owned(),
            reason: format!("the image layer cannot be read: {e}"),
        })?;
        if n == 0 {
            break;
        }
        size += n as u64;
        if size > MAX_MODULE {
            return Err(Error::InvalidWasm {
                path: what.to_owned(),
                reason: format!("the module in the image layer is over {MAX_MODULE} bytes"),
            });
        }
        let chunk = bytes::Bytes::copy_from_slice(&buffer[..n]);
        hasher.update(&chunk);
        tmp.write_all(&chunk)
            .map_err(|e| Error::io("write", dest, e))?;
        validation.feed(chunk);
    }
    Ok(Downloaded::new(
        tmp,
        dest.to_owned(),
        Some(validation.finish()),
        (Digest::from_hasher(hasher), size),
    ))
}

/// A writer (or reader) that hashes and counts the bytes going through it.
struct Hashing<T> {
    inner: T,
    hasher: sha2::Sha256,
    size: u64,
}

impl<T> Hashing<T> {
    fn new(inner: T) -> Self {
        Hashing {
            inner,
            hasher: sha2::Sha256::new(),
            size: 0,
        }
    }

    fn into_parts(self) -> (T, Digest, u64) {
        (self.inner, Digest::from_hasher(self.hasher), self.size)
    }
}

impl<W: Write> Write for Hashing<W> {
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

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.size += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;
    use crate::wasm::WasmKind;

    /// The smallest valid module, with a data segment so its bytes are not all header.
    const MODULE: &[u8] = b"\0asm\x01\0\0\0\x05\x03\x01\0\x01\x0b\x07\x01\0\x41\0\x0b\x01\x5a";

    fn module_file(dir: &Path, bytes: &[u8]) -> WasmFile {
        let path = dir.join("hello.wasm");
        std::fs::write(&path, bytes).unwrap();
        WasmFile {
            path,
            digest: Digest::of(bytes),
            size: bytes.len() as u64,
            kind: WasmKind::Module,
            component: None,
        }
    }

    /// A gzip-compressed tar of `entries` (path, type, bytes), as another tool might write one.
    fn layer_of(entries: &[(&str, tar::EntryType, &[u8])]) -> Vec<u8> {
        let gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        let mut tar = tar::Builder::new(gzip);
        for (path, kind, bytes) in entries {
            let mut header = tar::Header::new_gnu();
            header.set_entry_type(*kind);
            header.set_size(bytes.len() as u64);
            header.set_mode(0o755);
            // `append_data` refuses `..`; a hostile layer writes the name as it likes.
            header.as_gnu_mut().unwrap().name[..path.len()].copy_from_slice(path.as_bytes());
            header.set_cksum();
            tar.append(&header, *bytes).unwrap();
        }
        tar.into_inner().unwrap().finish().unwrap()
    }

    fn unpack_bytes(layer: &[u8]) -> Result<(Vec<u8>, Digest)> {
        let dir = tempfile::tempdir().unwrap();
        let compressed = dir.path().join("layer.tar.gz");
        std::fs::write(&compressed, layer).unwrap();
        let dest = dir.path().join("out.wasm");
        let mut taken = unpack(&compressed, &Digest::of(layer), &dest)?;
        taken.validated.take().unwrap()?;
        let digest = taken.content().0;
        taken.persist()?;
        Ok((std::fs::read(dest).unwrap(), digest))
    }

    #[test]
    fn the_layer_is_the_module_alone_at_the_root_and_reproducible() {
        let dir = tempfile::tempdir().unwrap();
        let wasm = module_file(dir.path(), MODULE);
        let one = ImageLayer::create(&wasm, 1_700_000_000).unwrap();
        let two = ImageLayer::create(&wasm, 1_700_000_000).unwrap();
        let bytes = std::fs::read(one.path()).unwrap();
        assert_eq!(one.descriptor.digest, two.descriptor.digest);
        assert_eq!(one.descriptor.digest, Digest::of(&bytes));
        assert_eq!(one.descriptor.size, bytes.len() as u64);
        assert_eq!(one.descriptor.media_type, LAYER_MEDIA_TYPE);
        assert_eq!(one.descriptor.annotations[TITLE], "hello.wasm");
        // gzip: no modification time, no file name (FLG 0), OS unknown.
        assert_eq!(&bytes[..10], b"\x1f\x8b\x08\0\0\0\0\0\0\xff");

        let mut tar = Vec::new();
        flate2::read::GzDecoder::new(&bytes[..])
            .read_to_end(&mut tar)
            .unwrap();
        assert_eq!(one.diff_id, Digest::of(&tar));
        let mut archive = tar::Archive::new(&tar[..]);
        let mut entries = archive.entries().unwrap();
        let mut entry = entries.next().unwrap().unwrap();
        let header = entry.header().clone();
        assert_eq!(entry.path().unwrap().to_str(), Some("hello.wasm"));
        assert_eq!(header.mode().unwrap(), 0o755);
        assert_eq!((header.uid().unwrap(), header.gid().unwrap()), (0, 0));
        assert_eq!(header.mtime().unwrap(), 1_700_000_000);
        let mut content = Vec::new();
        entry.read_to_end(&mut content).unwrap();
        assert_eq!(content, MODULE);
        drop(entry);
        assert!(entries.next().is_none());

        let later = ImageLayer::create(&wasm, 1_700_000_001).unwrap();
        assert_ne!(later.descriptor.digest, one.descriptor.digest);
    }

    #[test]
    fn a_module_rewritten_since_it_was_hashed_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let wasm = module_file(dir.path(), MODULE);
        std::fs::write(&wasm.path, b"\0asm\x01\0\0\0").unwrap();
        let err = ImageLayer::create(&wasm, 0).unwrap_err();
        assert!(matches!(err, Error::FileChanged { .. }), "{err}");
    }

    #[test]
    fn the_config_and_manifest_are_buildx_s_form() {
        let dir = tempfile::tempdir().unwrap();
        let wasm = module_file(dir.path(), MODULE);
        let layer = ImageLayer::create(&wasm, 0).unwrap();
        let artifact = build(
            &wasm,
            &layer,
            ArtifactInputs {
                format: Format::Image,
                created: "2024-01-01T00:00:00Z",
                author: Some("org"),
                annotations: BTreeMap::from([("a".into(), "1".into())]),
            },
        );
        assert_eq!(
            String::from_utf8(artifact.config.bytes.clone()).unwrap(),
            format!(
                r#"{{"created":"2024-01-01T00:00:00Z","author":"org","architecture":"wasm","os":"wasip1","config":{{"Entrypoint":["/hello.wasm"]}},"rootfs":{{"type":"layers","diff_ids":["{}"]}}}}"#,
                layer.diff_id
            )
        );
        let manifest: serde_json::Value = serde_json::from_slice(&artifact.manifest.bytes).unwrap();
        assert_eq!(manifest["mediaType"], MANIFEST_MEDIA_TYPE);
        assert_eq!(manifest["config"]["mediaType"], CONFIG_MEDIA_TYPE);
        assert_eq!(manifest["layers"].as_array().unwrap().len(), 1);
        assert_eq!(manifest["layers"][0]["mediaType"], LAYER_MEDIA_TYPE);
        assert_eq!(
            manifest["layers"][0]["digest"],
            layer.descriptor.digest.to_string()
        );
        assert_eq!(artifact.layer, layer.descriptor);
        assert_eq!(
            check_config(&artifact.config.bytes, &wasm),
            Ok("an image of a `wasip1` module, as its config says".to_owned())
        );
        let component = WasmFile {
            kind: WasmKind::Component,
            ..wasm
        };
        let refused = check_config(&artifact.config.bytes, &component).unwrap_err();
        assert!(refused.contains("`wasip1/wasm`"), "{refused}");
    }

    #[test]
    fn the_module_comes_back_out_byte_for_byte() {
        let dir = tempfile::tempdir().unwrap();
        let wasm = module_file(dir.path(), MODULE);
        let layer = ImageLayer::create(&wasm, 0).unwrap();
        let (bytes, digest) = unpack_bytes(&std::fs::read(layer.path()).unwrap()).unwrap();
        assert_eq!(bytes, MODULE);
        assert_eq!(digest, Digest::of(MODULE));
        // buildx's layers may name the entry `./app.wasm` and list the root directory.
        let buildx = layer_of(&[
            ("./", tar::EntryType::Directory, b""),
            ("./app.wasm", tar::EntryType::Regular, MODULE),
        ]);
        assert_eq!(unpack_bytes(&buildx).unwrap().0, MODULE);
    }

    #[test]
    fn a_layer_that_is_not_one_module_at_the_root_is_refused() {
        let other = b"#!/bin/sh\n" as &[u8];
        for (entries, says) in [
            (
                vec![
                    ("app.wasm", tar::EntryType::Regular, MODULE),
                    ("etc/passwd", tar::EntryType::Regular, other),
                ],
                "also holds \"etc/passwd\"",
            ),
            (
                vec![("../app.wasm", tar::EntryType::Regular, MODULE)],
                "also holds \"../app.wasm\"",
            ),
            (
                vec![("dir/app.wasm", tar::EntryType::Regular, MODULE)],
                "also holds \"dir/app.wasm\"",
            ),
            (
                vec![("app.wasm", tar::EntryType::Symlink, b"" as &[u8])],
                "also holds \"app.wasm\"",
            ),
            (
                vec![("run.sh", tar::EntryType::Regular, other)],
                "also holds \"run.sh\"",
            ),
            (vec![], "holds no `.wasm` file"),
        ] {
            let err = unpack_bytes(&layer_of(&entries)).unwrap_err().to_string();
            assert!(err.contains(says), "{err}");
            assert!(err.starts_with("`layer sha256:"), "{err}");
        }
        let many: Vec<_> = (0..MAX_ENTRIES + 1)
            .map(|_| ("./", tar::EntryType::Directory, b"" as &[u8]))
            .collect();
        let err = unpack_bytes(&layer_of(&many)).unwrap_err().to_string();
        assert!(err.contains("more than 16 entries"), "{err}");
        let err = unpack_bytes(b"not gzip").unwrap_err().to_string();
        assert!(err.contains("not a gzip-compressed tar"), "{err}");
        let invalid = layer_of(&[("app.wasm", tar::EntryType::Regular, b"\0asm\x02")]);
        let err = unpack_bytes(&invalid).unwrap_err();
        assert!(matches!(err, Error::InvalidWasm { .. }), "{err}");
    }
}
