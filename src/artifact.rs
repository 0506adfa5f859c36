//! The Wasm OCI artifact: config and manifest, in the CNCF TAG Runtime layout (default) or the
//! legacy wasm-to-oci media types. Both JSON documents are serialized deterministically (fixed
//! field order, sorted annotation keys, no whitespace) so the same inputs give the same digest.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::reference::Digest;
use crate::wasm::{ComponentInfo, WasmFile};

pub mod image;

/// OCI image manifest media type.
/// The config's `architecture`: a Wasm artifact's platform is `<os>/wasm`.
pub const ARCHITECTURE: &str = "wasm";
/// The OCI image manifest media type.
pub const MANIFEST_MEDIA_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";
/// OCI image index media type.
pub const INDEX_MEDIA_TYPE: &str = "application/vnd.oci.image.index.v1+json";
/// CNCF Wasm config media type.
pub const CNCF_CONFIG_MEDIA_TYPE: &str = "application/vnd.wasm.config.v0+json";
/// CNCF Wasm layer media type.
pub const CNCF_LAYER_MEDIA_TYPE: &str = "application/wasm";
/// Legacy wasm-to-oci config media type.
pub const LEGACY_CONFIG_MEDIA_TYPE: &str = "application/vnd.wasm.config.v1+json";
/// Legacy wasm-to-oci layer media type.
pub const LEGACY_LAYER_MEDIA_TYPE: &str = "application/vnd.wasm.content.layer.v1+wasm";
/// `org.opencontainers.image.title`: the layer's file name.
pub const TITLE: &str = "org.opencontainers.image.title";

/// Which media types the artifact uses.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Format {
    /// CNCF TAG Runtime Wasm OCI artifact (config `vnd.wasm.config.v0`, layer `application/wasm`).
    #[default]
    #[serde(rename = "cncf")]
    Cncf,
    /// wasm-to-oci's media types, for older consumers.
    #[serde(rename = "wasm-to-oci")]
    WasmToOci,
    /// An OCI container image of the module ([`image`]), for containerd before 1.6.25 and
    /// 1.7.7 and for runtimes that read only images.
    #[serde(rename = "image")]
    Image,
}

impl Format {
    /// The config blob's media type.
    pub fn config_media_type(self) -> &'static str {
        match self {
            Format::Cncf => CNCF_CONFIG_MEDIA_TYPE,
            Format::WasmToOci => LEGACY_CONFIG_MEDIA_TYPE,
            Format::Image => image::CONFIG_MEDIA_TYPE,
        }
    }

    /// The layer's media type.
    pub fn layer_media_type(self) -> &'static str {
        match self {
            Format::Cncf => CNCF_LAYER_MEDIA_TYPE,
            Format::WasmToOci => LEGACY_LAYER_MEDIA_TYPE,
            Format::Image => image::LAYER_MEDIA_TYPE,
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Format::Cncf => "cncf",
            Format::WasmToOci => "wasm-to-oci",
            Format::Image => "image",
        })
    }
}

impl FromStr for Format {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "cncf" => Ok(Format::Cncf),
            "wasm-to-oci" => Ok(Format::WasmToOci),
            "image" => Ok(Format::Image),
            other => Err(format!(
                "format `{other}` is not known; use `cncf`, `wasm-to-oci` or `image`"
            )),
        }
    }
}

/// An OCI content descriptor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    /// The content's media type.
    pub media_type: String,
    /// The content's digest.
    #[serde(with = "digest_serde")]
    pub digest: Digest,
    /// The content's size in bytes.
    pub size: u64,
    /// The artifact type (on manifests listed in an index).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    /// Annotations.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// An OCI image manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    /// Always 2.
    pub schema_version: u32,
    /// Always [`MANIFEST_MEDIA_TYPE`].
    #[serde(default)]
    pub media_type: Option<String>,
    /// The artifact type, for artifacts whose config does not say it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    /// The config blob.
    pub config: Descriptor,
    /// The layers.
    pub layers: Vec<Descriptor>,
    /// The manifest this one refers to (OCI 1.1 referrers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<Descriptor>,
    /// Annotations.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

impl Manifest {
    /// The deterministic JSON bytes of this manifest.
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a manifest always serializes")
    }
}

/// The CNCF Wasm config document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WasmConfig {
    /// When the artifact was made (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    /// Who made it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    /// Always `wasm`.
    pub architecture: String,
    /// `wasip1` for a module, `wasip2` for a component.
    pub os: String,
    /// The layer digests, in order.
    #[serde(with = "digest_list_serde")]
    pub layer_digests: Vec<Digest>,
    /// A component's interfaces.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub component: Option<ComponentInfo>,
}

/// A small blob held in memory (configs, manifests).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blob {
    /// Its media type.
    pub media_type: String,
    /// Its bytes.
    pub bytes: Vec<u8>,
    /// The digest of `bytes`.
    pub digest: Digest,
}

impl Blob {
    /// A blob of `bytes`, with its digest computed.
    pub fn new(media_type: impl Into<String>, bytes: Vec<u8>) -> Self {
        Blob {
            media_type: media_type.into(),
            digest: Digest::of(&bytes),
            bytes,
        }
    }

    /// Its descriptor.
    pub fn descriptor(&self) -> Descriptor {
        Descriptor {
            media_type: self.media_type.clone(),
            digest: self.digest.clone(),
            size: self.bytes.len() as u64,
            artifact_type: None,
            annotations: BTreeMap::new(),
        }
    }
}

/// Everything to push: the config, the layer's descriptor (its bytes stay on disk) and the manifest.
#[derive(Debug, Clone)]
pub struct Artifact {
    /// The config blob.
    pub config: Blob,
    /// The layer's descriptor.
    pub layer: Descriptor,
    /// The manifest, as the bytes to upload.
    pub manifest: Blob,
    /// The manifest's annotations, as serialized into it.
    pub annotations: BTreeMap<String, String>,
}

/// What goes into the artifact besides the Wasm file.
#[derive(Debug, Clone)]
pub struct ArtifactInputs<'a> {
    /// Media types to use.
    pub format: Format,
    /// `created`, RFC 3339.
    pub created: &'a str,
    /// `author`, if known.
    pub author: Option<&'a str>,
    /// Manifest annotations (already merged).
    pub annotations: BTreeMap<String, String>,
}

/// The layer descriptor of a `.wasm` with this digest and size, titled by its file name: known
/// as soon as the file is hashed, before validation ends.
pub fn layer(format: Format, digest: &Digest, size: u64, title: String) -> Descriptor {
    Descriptor {
        media_type: format.layer_media_type().to_owned(),
        digest: digest.clone(),
        size,
        artifact_type: None,
        annotations: BTreeMap::from([(TITLE.to_owned(), title)]),
    }
}

/// Builds the config and manifest for `wasm` in a form whose layer is the file itself (`cncf`,
/// `wasm-to-oci`); the image form, whose layer is made from the file, is [`image::build`].
pub fn build(wasm: &WasmFile, inputs: ArtifactInputs<'_>) -> Artifact {
    let config_bytes = match inputs.format {
        Format::Cncf => serde_json::to_vec(&WasmConfig {
            created: Some(inputs.created.to_owned()),
            author: inputs.author.map(str::to_owned),
            architecture: ARCHITECTURE.to_owned(),
            os: wasm.kind.os().to_owned(),
            layer_digests: vec![wasm.digest.clone()],
            component: wasm.component.clone(),
        })
        .expect("a config always serializes"),
        // wasm-to-oci writes an empty JSON object; its consumers read nothing from it.
        Format::WasmToOci => b"{}".to_vec(),
        // The image form's config names its layer, which image::build is given.
        Format::Image => unreachable!("the image form is built by artifact::image::build"),
    };
    let config = Blob::new(inputs.format.config_media_type(), config_bytes);
    let layer = layer(inputs.format, &wasm.digest, wasm.size, wasm.file_name());
    let manifest = Manifest {
        schema_version: 2,
        media_type: Some(MANIFEST_MEDIA_TYPE.to_owned()),
        artifact_type: None,
        config: config.descriptor(),
        layers: vec![layer.clone()],
        subject: None,
        annotations: inputs.annotations,
    };
    Artifact {
        config,
        layer,
        manifest: Blob::new(MANIFEST_MEDIA_TYPE, manifest.to_bytes()),
        annotations: manifest.annotations,
    }
}

pub(crate) mod digest_serde {
    use super::Digest;
    use serde::{Deserialize, Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(d: &Digest, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(d)
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Digest, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

mod digest_list_serde {
    use super::Digest;
    use serde::{Deserialize, Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(d: &[Digest], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(d.iter().map(|d| d.to_string()))
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Digest>, D::Error> {
        let v = Vec::<String>::deserialize(d)?;
        v.iter()
            .map(|s| s.parse().map_err(serde::de::Error::custom))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wasm::WasmKind;

    fn module() -> WasmFile {
        WasmFile {
            path: "dist/app.wasm".into(),
            digest: Digest::of(b"\0asm\x01\0\0\0"),
            size: 8,
            kind: WasmKind::Module,
            component: None,
        }
    }

    fn inputs(format: Format) -> ArtifactInputs<'static> {
        ArtifactInputs {
            format,
            created: "2024-01-01T00:00:00Z",
            author: Some("org"),
            annotations: BTreeMap::from([("b".into(), "2".into()), ("a".into(), "1".into())]),
        }
    }

    #[test]
    fn cncf_manifest_is_exactly_this() {
        let a = build(&module(), inputs(Format::Cncf));
        let config = String::from_utf8(a.config.bytes.clone()).unwrap();
        assert_eq!(
            config,
            format!(
                r#"{{"created":"2024-01-01T00:00:00Z","author":"org","architecture":"wasm","os":"wasip1","layerDigests":["{}"]}}"#,
                module().digest
            )
        );
        let manifest: serde_json::Value = serde_json::from_slice(&a.manifest.bytes).unwrap();
        assert_eq!(manifest["mediaType"], MANIFEST_MEDIA_TYPE);
        assert_eq!(manifest["config"]["mediaType"], CNCF_CONFIG_MEDIA_TYPE);
        assert_eq!(manifest["layers"][0]["mediaType"], "application/wasm");
        assert_eq!(
            manifest["layers"][0]["annotations"]["org.opencontainers.image.title"],
            "app.wasm"
        );
        // Keys sorted, no whitespace: byte-stable.
        let text = String::from_utf8(a.manifest.bytes.clone()).unwrap();
        assert!(
            text.ends_with(r#""annotations":{"a":"1","b":"2"}}"#),
            "{text}"
        );
        assert!(!text.contains(' '));
        assert_eq!(a.manifest.digest, Digest::of(&a.manifest.bytes));
    }

    #[test]
    fn same_inputs_same_digest() {
        let one = build(&module(), inputs(Format::Cncf));
        let two = build(&module(), inputs(Format::Cncf));
        assert_eq!(one.manifest.digest, two.manifest.digest);
        let legacy = build(&module(), inputs(Format::WasmToOci));
        assert_ne!(one.manifest.digest, legacy.manifest.digest);
        assert_eq!(legacy.config.bytes, b"{}");
        assert_eq!(legacy.layer.media_type, LEGACY_LAYER_MEDIA_TYPE);
    }
}
