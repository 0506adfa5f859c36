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
    let staging = tempfile::tempdir().map_err(|e| Error::io("create", &std::env::temp_dir(), e))?;
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
