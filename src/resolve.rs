//! The read side that pull, verify and inspect share: open where the artifact is (a registry
//! or an OCI layout), fetch its manifest, tell which tool's format it is, and choose the one
//! layer that is the Wasm file. Reads every format in use: the CNCF layout (ours, wkg's),
//! wasm-to-oci's media types, what `oras push file.wasm:application/wasm` writes, and
//! single-layer artifacts of other tools.

use crate::artifact::{self, Blob, Descriptor, Manifest};
use crate::error::{Error, Result};

use crate::reference::{Destination, Digest, ImageRef};
use crate::registry::download::Download;
use crate::registry::layout::Layout;
use crate::registry::remote::{Access, Connection, Remote};
use crate::registry::{ManifestRef, ReadTarget};

/// Layer media types that are a Wasm binary, whichever tool wrote them.
pub const WASM_LAYER_MEDIA_TYPES: &[&str] = &[
    artifact::CNCF_LAYER_MEDIA_TYPE,
    artifact::LEGACY_LAYER_MEDIA_TYPE,
    "application/vnd.module.wasm.content.layer.v1+wasm",
    "application/vnd.bytecodealliance.wasm.component.layer.v0+wasm",
];

/// `org.opencontainers.image.title`, the file name a layer carries.
const TITLE: &str = crate::provenance::annotations::TITLE;

/// Where an artifact is read from: the registry or a layout on disk, behind one [`ReadTarget`].
#[derive(Debug)]
pub enum Source {
    /// A remote registry repository.
    Remote(Box<Remote>),
    /// An OCI image layout directory.
    Layout(Layout),
}

impl Source {
    /// Opens `location` for reading, logged in to a registry (so refused credentials fail
    /// first).
    pub async fn open(location: &Destination, connection: &Connection) -> Result<Self> {
        match location {
            Destination::Registry(image) => {
                let remote = Remote::new(image.clone(), connection)?;
                remote.login_lazily(Access::Read).await?;
                Ok(Source::Remote(Box::new(remote)))
            }
            Destination::Layout(dir) => Ok(Source::Layout(Layout::open(dir)?)),
        }
    }
}

impl ReadTarget for Source {
    async fn get_manifest(&self, reference: &ManifestRef) -> Result<Option<Blob>> {
        match self {
            Source::Remote(t) => t.get_manifest(reference).await,
            Source::Layout(t) => t.get_manifest(reference).await,
        }
    }

    async fn get_blob(&self, descriptor: &Descriptor) -> Result<Vec<u8>> {
        match self {
            Source::Remote(t) => t.get_blob(descriptor).await,
            Source::Layout(t) => t.get_blob(descriptor).await,
        }
    }

    async fn listed_referrers(&self, subject: &Digest) -> Result<Option<Vec<Digest>>> {
        match self {
            Source::Remote(t) => t.listed_referrers(subject).await,
            Source::Layout(t) => t.listed_referrers(subject).await,
        }
    }

    async fn get_blob_into(&self, descriptor: &Descriptor, download: &mut Download) -> Result<()> {
        match self {
            Source::Remote(t) => t.get_blob_into(descriptor, download).await,
            Source::Layout(t) => t.get_blob_into(descriptor, download).await,
        }
    }

    async fn referrers(&self, subject: &Digest) -> Result<Vec<Descriptor>> {
        match self {
            Source::Remote(t) => t.referrers(subject).await,
            Source::Layout(t) => t.referrers(subject).await,
        }
    }
}

/// A manifest fetched and parsed, with the digest of the bytes received.
#[derive(Debug, Clone)]
pub struct Fetched {
    /// The manifest's digest, computed from the bytes.
    pub digest: Digest,
    /// The bytes.
    pub blob: Blob,
    /// The parsed manifest.
    pub manifest: Manifest,
}

/// Fetches the manifest `image` names (by digest when it has one), checked against that digest.
pub async fn fetch_manifest<T: ReadTarget>(target: &T, image: &ImageRef) -> Result<Fetched> {
    let reference = image.manifest_ref();
    let blob = target
        .get_manifest(&reference)
        .await?
        .ok_or_else(|| Error::NotFound {
            reference: image.to_string(),
        })?;
    parse_manifest(image, blob)
}

/// Parses fetched manifest bytes; an index or anything else is refused with what to do.
pub fn parse_manifest(image: &ImageRef, blob: Blob) -> Result<Fetched> {
    if blob.media_type == artifact::INDEX_MEDIA_TYPE || blob.media_type.contains("manifest.list") {
        return Err(Error::Artifact {
            reference: image.to_string(),
            reason:
                "is an image index, not a single artifact; give the digest of one of its manifests"
                    .to_owned(),
        });
    }
    let manifest: Manifest = serde_json::from_slice(&blob.bytes).map_err(|e| Error::Artifact {
        reference: image.to_string(),
        reason: format!("the manifest is not a valid OCI image manifest: {e}"),
    })?;
    Ok(Fetched {
        digest: blob.digest.clone(),
        blob,
        manifest,
    })
}

/// Which tool's layout an artifact follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ArtifactFormat {
    /// CNCF TAG Runtime Wasm OCI artifact (config `vnd.wasm.config.v0`): ours, wkg's.
    Cncf,
    /// wasm-to-oci's media types.
    WasmToOci,
    /// An OCI container image of the module (`format: image`, buildx's `FROM scratch` form).
    Image,
    /// A generic OCI artifact with a Wasm layer (oras and the like).
    Oras,
    /// Anything else.
    Other,
}

impl ArtifactFormat {
    /// Tells the format from the manifest's media types.
    pub fn of(manifest: &Manifest) -> Self {
        let has_wasm_layer = manifest
            .layers
            .iter()
            .any(|l| WASM_LAYER_MEDIA_TYPES.contains(&l.media_type.as_str()));
        match manifest.config.media_type.as_str() {
            artifact::CNCF_CONFIG_MEDIA_TYPE => ArtifactFormat::Cncf,
            artifact::LEGACY_CONFIG_MEDIA_TYPE => ArtifactFormat::WasmToOci,
            artifact::image::CONFIG_MEDIA_TYPE
                if manifest.layers.len() == 1
                    && artifact::image::is_layer(&manifest.layers[0].media_type) =>
            {
                ArtifactFormat::Image
            }
            _ if has_wasm_layer => ArtifactFormat::Oras,
            _ => ArtifactFormat::Other,
        }
    }
}

/// A layer's title (`org.opencontainers.image.title`), if it has one.
pub fn layer_title(layer: &Descriptor) -> Option<&str> {
    layer.annotations.get(TITLE).map(String::as_str)
}

/// The layer that is the Wasm file: the one chosen by title or digest when `wanted` is given,
/// else the only layer with a Wasm media type, else the only layer titled `*.wasm`, else the
/// only layer. Several candidates are refused with the list.
pub fn choose_layer(
    image: &ImageRef,
    manifest: &Manifest,
    wanted: Option<&str>,
) -> Result<Descriptor> {
    let describe = |layers: &[&Descriptor]| {
        layers
            .iter()
            .map(|l| match layer_title(l) {
                Some(t) => format!("`{t}` ({}, {})", l.digest, l.media_type),
                None => format!("{} ({})", l.digest, l.media_type),
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    let all: Vec<&Descriptor> = manifest.layers.iter().collect();
    let error = |reason: String| Error::Artifact {
        reference: image.to_string(),
        reason,
    };
    if let Some(wanted) = wanted {
        return all
            .iter()
            .find(|l| layer_title(l) == Some(wanted) || l.digest.to_string() == wanted)
            .map(|l| (*l).clone())
            .ok_or_else(|| {
                error(format!(
                    "has no layer titled or with digest `{wanted}`; its layers are {}",
                    describe(&all)
                ))
            });
    }
    if all.is_empty() {
        return Err(error("has no layers".to_owned()));
    }
    let by_type: Vec<&Descriptor> = all
        .iter()
        .copied()
        .filter(|l| WASM_LAYER_MEDIA_TYPES.contains(&l.media_type.as_str()))
        .collect();
    let by_title: Vec<&Descriptor> = all
        .iter()
        .copied()
        .filter(|l| layer_title(l).is_some_and(|t| t.ends_with(".wasm")))
        .collect();
    let candidates = [by_type, by_title, all.clone()]
        .into_iter()
        .find(|c| !c.is_empty())
        .expect("`all` is not empty");
    match candidates.as_slice() {
        [one] => Ok((*one).clone()),
        several => Err(error(format!(
            "has {} layers that could be the Wasm file: {}; choose one with `layer` (a title or a digest)",
            several.len(),
            describe(several)
        ))),
    }
}

/// The file name to write a layer under: its title when that is a plain file name, else
/// `<repository>.wasm`.
///
/// The title comes from the registry, so it is used only when it is a plain file name
/// ([`is_plain_file_name`]); any other title falls back to the name an untitled layer gets, with
/// a warning. Falling back rather than refusing keeps a valid artifact pullable (its bytes are
/// checked by digest; the title is only a name), and the repository's name, unlike one made from
/// the digest, stays the same from one release to the next for the step that uses the file.
pub fn file_name_for(image: &ImageRef, layer: &Descriptor) -> String {
    let from_title = layer_title(layer).and_then(|title| {
        if is_plain_file_name(title) {
            return Some(title.to_owned());
        }
        tracing::warn!(
            "the layer's title {title:?} is not a plain file name; it is written under the repository's name instead"
        );
        None
    });
    from_title.unwrap_or_else(|| {
        let base = match &image.location {
            Destination::Registry(name) => name
                .repository()
                .rsplit('/')
                .next()
                .unwrap_or("module")
                .to_owned(),
            Destination::Layout(dir) => dir
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| "module".to_owned()),
        };
        format!("{base}.wasm")
    })
}

/// Whether a layer's title can be a file name as it is: one path component of the POSIX
/// portable file name characters (letters, digits, `.`, `_`, `-`), at most 255 bytes, not
/// hidden and not an option (no leading `.` or `-`). Nothing else can climb out of the
/// destination, carry a line break into the log or the `path` output, or run as shell code when
/// a later step puts `path` in its script.
pub fn is_plain_file_name(title: &str) -> bool {
    !title.is_empty()
        && title.len() <= 255
        && !title.starts_with(['.', '-'])
        && title
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn layer(media_type: &str, title: Option<&str>, byte: u8) -> Descriptor {
        Descriptor {
            media_type: media_type.to_owned(),
            digest: Digest::of(&[byte]),
            size: 1,
            artifact_type: None,
            annotations: title
                .map(|t| BTreeMap::from([(TITLE.to_owned(), t.to_owned())]))
                .unwrap_or_default(),
        }
    }

    fn manifest(config: &str, layers: Vec<Descriptor>) -> Manifest {
        Manifest {
            schema_version: 2,
            media_type: Some(artifact::MANIFEST_MEDIA_TYPE.to_owned()),
            artifact_type: None,
            config: layer(config, None, 0),
            layers,
            subject: None,
            annotations: BTreeMap::new(),
        }
    }

    fn image() -> ImageRef {
        "localhost:5000/org/app:v1".parse().unwrap()
    }

    #[test]
    fn chooses_the_wasm_layer_of_each_format() {
        let oras = manifest(
            "application/vnd.oci.empty.v1+json",
            vec![layer("application/wasm", Some("app.wasm"), 1)],
        );
        assert_eq!(ArtifactFormat::of(&oras), ArtifactFormat::Oras);
        assert_eq!(
            choose_layer(&image(), &oras, None).unwrap().digest,
            Digest::of(&[1])
        );

        // oras without a media type: a tar-typed layer whose title is a .wasm, next to a README.
        let untyped = manifest(
            "application/vnd.unknown.config.v1+json",
            vec![
                layer(
                    "application/vnd.oci.image.layer.v1.tar",
                    Some("README.md"),
                    2,
                ),
                layer(
                    "application/vnd.oci.image.layer.v1.tar",
                    Some("app.wasm"),
                    3,
                ),
            ],
        );
        assert_eq!(
            choose_layer(&image(), &untyped, None).unwrap().digest,
            Digest::of(&[3])
        );
        assert_eq!(ArtifactFormat::of(&untyped), ArtifactFormat::Other);

        let legacy = manifest(
            artifact::LEGACY_CONFIG_MEDIA_TYPE,
            vec![layer(artifact::LEGACY_LAYER_MEDIA_TYPE, None, 4)],
        );
        assert_eq!(ArtifactFormat::of(&legacy), ArtifactFormat::WasmToOci);
        assert_eq!(
            file_name_for(&image(), &choose_layer(&image(), &legacy, None).unwrap()),
            "app.wasm"
        );
    }

    #[test]
    fn several_candidates_are_listed_unless_one_is_chosen() {
        let two = manifest(
            artifact::CNCF_CONFIG_MEDIA_TYPE,
            vec![
                layer("application/wasm", Some("a.wasm"), 1),
                layer("application/wasm", Some("b.wasm"), 2),
            ],
        );
        let err = choose_layer(&image(), &two, None).unwrap_err().to_string();
        assert!(
            err.contains("2 layers") && err.contains("`a.wasm`") && err.contains("`b.wasm`"),
            "{err}"
        );
        assert!(err.contains("`layer`"), "{err}");
        assert_eq!(
            choose_layer(&image(), &two, Some("b.wasm")).unwrap().digest,
            Digest::of(&[2])
        );
        let by_digest = Digest::of(&[1]).to_string();
        assert_eq!(
            choose_layer(&image(), &two, Some(&by_digest))
                .unwrap()
                .digest,
            Digest::of(&[1])
        );
        assert!(choose_layer(&image(), &two, Some("c.wasm")).is_err());
    }

    #[test]
    fn titles_cannot_escape_the_destination() {
        let evil = layer("application/wasm", Some("../../etc/app.wasm"), 1);
        assert_eq!(file_name_for(&image(), &evil), "app.wasm");
        let hidden = layer("application/wasm", Some(".."), 1);
        assert_eq!(file_name_for(&image(), &hidden), "app.wasm");
        for title in [
            "x\n::error title=INJECTED::boom\nfoo.wasm",
            "a\rb.wasm",
            "dist/app.wasm",
            "dir\\app.wasm",
            "",
            ".hidden.wasm",
            "-rf.wasm",
            "$(id).wasm",
            "a b.wasm",
            "tab\t.wasm",
        ] {
            let l = layer("application/wasm", Some(title), 1);
            assert_eq!(file_name_for(&image(), &l), "app.wasm", "{title:?}");
        }
        let plain = layer("application/wasm", Some("calc_v1.2-rc.wasm"), 1);
        assert_eq!(file_name_for(&image(), &plain), "calc_v1.2-rc.wasm");
    }
}
