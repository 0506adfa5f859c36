//! Writes to the registry by raw distribution API calls, independent of the code under test:
//! artifacts as other tools push them (wkg, oras, wasm-to-oci), provenance referrers in the
//! exact format the provenance producer writes (statement, DSSE envelope signed with an
//! `openssl` key, referrer manifest, fallback-tag index), and tampering.

use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine as _;
use serde_json::{Value, json};

use super::{Auth, OCI_INDEX, OCI_MANIFEST, Registry, sha256};

pub const EMPTY_CONFIG: &str = "application/vnd.oci.empty.v1+json";
pub const IN_TOTO: &str = "application/vnd.in-toto+json";
pub const DSSE: &str = "application/vnd.dsse.envelope.v1+json";

impl Registry {
    fn request(&self, method: reqwest::Method, url: &str) -> reqwest::blocking::RequestBuilder {
        let url = if url.starts_with("http") {
            url.to_owned()
        } else {
            format!("http://{}{url}", self.host())
        };
        let req = reqwest::blocking::Client::new().request(method, url);
        match &self.auth {
            Auth::Htpasswd { user, password } => req.basic_auth(user, Some(password)),
            Auth::None => req,
        }
    }

    /// Uploads a blob monolithically; returns its digest.
    pub fn put_blob(&self, repo: &str, bytes: &[u8]) -> String {
        let digest = sha256(bytes);
        let resp = self
            .request(reqwest::Method::POST, &format!("/v2/{repo}/blobs/uploads/"))
            .send()
            .unwrap();
        assert_eq!(resp.status().as_u16(), 202, "start upload");
        let location = resp.headers()["location"].to_str().unwrap().to_owned();
        let sep = if location.contains('?') { '&' } else { '?' };
        let resp = self
            .request(
                reqwest::Method::PUT,
                &format!("{location}{sep}digest={digest}"),
            )
            .header("Content-Type", "application/octet-stream")
            .body(bytes.to_vec())
            .send()
            .unwrap();
        assert_eq!(
            resp.status().as_u16(),
            201,
            "finish upload: {:?}",
            resp.text()
        );
        digest
    }

    /// Puts a manifest (or index) under `reference` (a tag or its digest); returns its digest.
    pub fn put_manifest(
        &self,
        repo: &str,
        reference: &str,
        bytes: &[u8],
        media_type: &str,
    ) -> String {
        let resp = self
            .request(
                reqwest::Method::PUT,
                &format!("/v2/{repo}/manifests/{reference}"),
            )
            .header("Content-Type", media_type)
            .body(bytes.to_vec())
            .send()
            .unwrap();
        assert_eq!(
            resp.status().as_u16(),
            201,
            "PUT manifest: {:?}",
            resp.text()
        );
        sha256(bytes)
    }

    /// Where the registry keeps a blob's bytes on disk.
    pub fn blob_file(&self, digest: &str) -> PathBuf {
        let hex = digest.strip_prefix("sha256:").unwrap();
        self.dir
            .path()
            .join("data/docker/registry/v2/blobs/sha256")
            .join(&hex[..2])
            .join(hex)
            .join("data")
    }

    /// Flips bytes of a stored blob in the registry's storage (same size, other content).
    pub fn corrupt_blob(&self, digest: &str) {
        let path = self.blob_file(digest);
        let mut bytes = std::fs::read(&path).unwrap();
        let n = bytes.len();
        for b in &mut bytes[n / 2..] {
            *b ^= 0xff;
        }
        std::fs::write(&path, bytes).unwrap();
    }
}

/// A descriptor as JSON.
pub fn descriptor(media_type: &str, bytes: &[u8]) -> Value {
    json!({"mediaType": media_type, "digest": sha256(bytes), "size": bytes.len()})
}

/// Pushes an artifact made of a config and layers (bytes, media type, title) under `tag`;
/// `extra` is merged into the manifest. Returns the manifest digest.
pub fn push_raw(
    registry: &Registry,
    repo: &str,
    tag: &str,
    config: (&str, &[u8]),
    layers: &[(&[u8], &str, Option<&str>)],
    extra: Value,
) -> String {
    registry.put_blob(repo, config.1);
    let mut layer_descriptors = Vec::new();
    for (bytes, media_type, title) in layers {
        registry.put_blob(repo, bytes);
        let mut d = descriptor(media_type, bytes);
        if let Some(title) = title {
            d["annotations"] = json!({"org.opencontainers.image.title": title});
        }
        layer_descriptors.push(d);
    }
    let mut manifest = json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": descriptor(config.0, config.1),
        "layers": layer_descriptors,
    });
    if let (Some(m), Some(e)) = (manifest.as_object_mut(), extra.as_object()) {
        m.extend(e.clone());
    }
    let bytes = serde_json::to_vec(&manifest).unwrap();
    registry.put_manifest(repo, tag, &bytes, OCI_MANIFEST)
}

/// What wkg pushes: CNCF config, one `application/wasm` layer without a title.
pub fn push_wkg_style(registry: &Registry, repo: &str, tag: &str, wasm: &[u8], os: &str) -> String {
    let config = serde_json::to_vec(&json!({
        "created": "2024-05-01T00:00:00Z",
        "architecture": "wasm",
        "os": os,
        "layerDigests": [sha256(wasm)],
    }))
    .unwrap();
    push_raw(
        registry,
        repo,
        tag,
        ("application/vnd.wasm.config.v0+json", &config),
        &[(wasm, "application/wasm", None)],
        json!({}),
    )
}

/// What `oras push reg/repo:tag file.wasm:application/wasm` pushes (oras 1.x: empty config and
/// an artifactType; older oras: the unknown config type).
pub fn push_oras_style(
    registry: &Registry,
    repo: &str,
    tag: &str,
    wasm: &[u8],
    title: &str,
    modern: bool,
) -> String {
    let (config_type, extra) = if modern {
        (
            EMPTY_CONFIG,
            json!({"artifactType": "application/vnd.unknown.artifact.v1",
            "annotations": {"org.opencontainers.image.created": "2024-05-01T00:00:00Z"}}),
        )
    } else {
        ("application/vnd.unknown.config.v1+json", json!({}))
    };
    push_raw(
        registry,
        repo,
        tag,
        (config_type, b"{}"),
        &[(wasm, "application/wasm", Some(title))],
        extra,
    )
}

/// What wasm-to-oci pushes: its config and layer media types.
pub fn push_legacy_style(registry: &Registry, repo: &str, tag: &str, wasm: &[u8]) -> String {
    push_raw(
        registry,
        repo,
        tag,
        ("application/vnd.wasm.config.v1+json", b"{}"),
        &[(
            wasm,
            "application/vnd.wasm.content.layer.v1+wasm",
            Some("module.wasm"),
        )],
        json!({}),
    )
}

/// An ECDSA P-256 key pair made by `openssl`: (private key path, public key PEM text).
pub fn p256_key(dir: &Path, name: &str) -> (PathBuf, String) {
    let private = dir.join(format!("{name}.key.pem"));
    let public = dir.join(format!("{name}.pub.pem"));
    openssl(
        &[
            "ecparam",
            "-name",
            "prime256v1",
            "-genkey",
            "-noout",
            "-out",
        ],
        &private,
    );
    let out = Command::new("openssl")
        .args(["pkey", "-pubout", "-in"])
        .arg(&private)
        .arg("-out")
        .arg(&public)
        .output()
        .expect("openssl is installed (`.ci/run` installs it)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (private, std::fs::read_to_string(public).unwrap())
}

fn openssl(args: &[&str], path: &Path) {
    let out = Command::new("openssl")
        .args(args)
        .arg(path)
        .output()
        .expect("openssl is installed (`.ci/run` installs it)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// An SLSA v1 provenance statement about `subject` (a manifest digest).
pub fn statement(subject: &str, repository: &str, commit: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": "acme/multiply", "digest": {"sha256": subject.strip_prefix("sha256:").unwrap()}}],
        "predicateType": "https://slsa.dev/provenance/v1",
        "predicate": {
            "buildDefinition": {
                "buildType": "https://actions.github.io/buildtypes/workflow/v1",
                "externalParameters": {"workflow": {
                    "ref": "refs/tags/v1.2.3",
                    "repository": repository,
                    "path": ".github/workflows/release.yml"
                }},
                "resolvedDependencies": [{
                    "uri": format!("git+{repository}@refs/tags/v1.2.3"),
                    "digest": {"gitCommit": commit}
                }]
            },
            "runDetails": {"builder": {"id": "https://github.com/wasm-oci/wasm-oci-action"}, "metadata": {"invocationId": "42"}}
        }
    }))
    .unwrap()
}

/// A DSSE envelope over `payload`, signed with the ECDSA P-256 key at `key` by `openssl`
/// (DER signature over SHA-256 of the PAE).
pub fn dsse_envelope(payload: &[u8], key: &Path) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let mut pae = format!("DSSEv1 {} {IN_TOTO} {} ", IN_TOTO.len(), payload.len()).into_bytes();
    pae.extend_from_slice(payload);
    let pae_file = dir.path().join("pae");
    std::fs::write(&pae_file, &pae).unwrap();
    let sig_file = dir.path().join("sig");
    let out = Command::new("openssl")
        .args(["dgst", "-sha256", "-sign"])
        .arg(key)
        .arg("-out")
        .arg(&sig_file)
        .arg(&pae_file)
        .output()
        .expect("openssl is installed");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let b64 = base64::engine::general_purpose::STANDARD;
    serde_json::to_vec(&json!({
        "payloadType": IN_TOTO,
        "payload": b64.encode(payload),
        "signatures": [{"keyid": "", "sig": b64.encode(std::fs::read(sig_file).unwrap())}]
    }))
    .unwrap()
}

/// Attaches `layer` (a statement or an envelope) as a provenance referrer of the manifest
/// `subject` in `repo`: the referrer manifest by digest, then the fallback tag's index with
/// the new entry added. Returns the referrer's digest.
pub fn attach_referrer(
    registry: &Registry,
    repo: &str,
    subject: &str,
    layer: (&[u8], &str),
) -> String {
    let (subject_bytes, _) = registry
        .manifest(repo, subject)
        .expect("the subject exists");
    registry.put_blob(repo, b"{}");
    registry.put_blob(repo, layer.0);
    let referrer = referrer_manifest(&subject_bytes, layer);
    let digest = sha256(&referrer);
    registry.put_manifest(repo, &digest, &referrer, OCI_MANIFEST);

    let tag = subject.replace(':', "-");
    let index = with_referrer(registry.manifest(repo, &tag).map(|(b, _)| b), &referrer);
    registry.put_manifest(repo, &tag, &index, OCI_INDEX);
    digest
}

/// The referrer manifest for `layer` about the manifest `subject_bytes`.
fn referrer_manifest(subject_bytes: &[u8], layer: (&[u8], &str)) -> Vec<u8> {
    let mut config = descriptor(EMPTY_CONFIG, b"{}");
    config["data"] = json!("e30=");
    serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": IN_TOTO,
        "config": config,
        "layers": [descriptor(layer.1, layer.0)],
        "subject": descriptor(OCI_MANIFEST, subject_bytes),
        "annotations": {"org.opencontainers.image.created": "2023-11-14T22:13:20Z"}
    }))
    .unwrap()
}

/// The fallback tag's index (`existing`, or a new one) with an entry for `referrer` added.
fn with_referrer(existing: Option<Vec<u8>>, referrer: &[u8]) -> Vec<u8> {
    let mut index = match existing {
        Some(bytes) => serde_json::from_slice(&bytes).unwrap(),
        None => json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []}),
    };
    let mut entry = descriptor(OCI_MANIFEST, referrer);
    entry["artifactType"] = json!(IN_TOTO);
    index["manifests"].as_array_mut().unwrap().push(entry);
    serde_json::to_vec(&index).unwrap()
}

/// The same in an OCI image layout directory: blobs under `blobs/sha256`, and the fallback
/// tag's index named in `index.json` by `org.opencontainers.image.ref.name`.
pub fn attach_referrer_in_layout(dir: &Path, subject: &str, layer: (&[u8], &str)) -> String {
    let blobs = dir.join("blobs/sha256");
    let put = |bytes: &[u8]| {
        let digest = sha256(bytes);
        std::fs::write(blobs.join(&digest[7..]), bytes).unwrap();
        digest
    };
    let subject_bytes = std::fs::read(blobs.join(&subject[7..])).unwrap();
    put(b"{}");
    put(layer.0);
    let referrer = referrer_manifest(&subject_bytes, layer);
    let digest = put(&referrer);
    let index = put(&with_referrer(None, &referrer));

    let index_json = dir.join("index.json");
    let mut top: Value = serde_json::from_slice(&std::fs::read(&index_json).unwrap()).unwrap();
    let mut entry = descriptor(OCI_INDEX, &std::fs::read(blobs.join(&index[7..])).unwrap());
    entry["annotations"] = json!({"org.opencontainers.image.ref.name": subject.replace(':', "-")});
    top["manifests"].as_array_mut().unwrap().push(entry);
    std::fs::write(index_json, serde_json::to_vec(&top).unwrap()).unwrap();
    digest
}

/// Attaches a DSSE-signed provenance statement about `subject` (the normal, honest case).
pub fn attach_signed_provenance(
    registry: &Registry,
    repo: &str,
    subject: &str,
    key: &Path,
) -> String {
    let statement = statement(subject, "https://github.com/acme/multiply", super::COMMIT);
    attach_referrer(
        registry,
        repo,
        subject,
        (&dsse_envelope(&statement, key), DSSE),
    )
}
