//! The SBOM: in build mode, a CycloneDX 1.5 document of the crates linked into the `.wasm`
//! (the graph `build` walked), attached beside the provenance as a second referrer of the
//! pushed manifest, `artifactType: application/vnd.cyclonedx+json`. Signed as the provenance is:
//! with `signing-key` the layer is a DSSE envelope of an in-toto statement whose predicate is the
//! document (predicate type `https://cyclonedx.org/bom`), with a Sigstore bundle of it beside;
//! keylessly, a Sigstore bundle referrer of that statement. The document names no clock: the
//! same build of the same artifact gives the same bytes.

use cyclonedx_bom::models::component::Classification;
use cyclonedx_bom::models::dependency::{Dependencies, Dependency};
use cyclonedx_bom::models::external_reference::{
    ExternalReference, ExternalReferenceType, ExternalReferences,
};
use cyclonedx_bom::models::license::{LicenseChoice, Licenses};
use cyclonedx_bom::models::tool::Tools;
use cyclonedx_bom::prelude::*;
use serde_json::json;
use sha2::{Digest as _, Sha256};
use tracing::{debug, info};

use crate::artifact::{Blob, Descriptor};
use crate::build::{BuildRecord, CrateSource, Linked, LinkedCrate};
use crate::error::{Error, Result};
use crate::input;
use crate::provenance::dsse::{self, SigningKey};
use crate::provenance::referrer::Referrer;
use crate::provenance::slsa::{STATEMENT_TYPE, Subject, Subjects};
use crate::reference::Digest;
use crate::secret::Secret;
use crate::sigstore::Keyless;

/// The SBOM referrer's `artifactType` and predicate type, named where referrers are made.
pub use crate::provenance::referrer::{
    SBOM_ARTIFACT_TYPE as ARTIFACT_TYPE, SBOM_PREDICATE_TYPE as PREDICATE_TYPE,
};

/// The SBOM's referrers: the document (or its envelope), and the Sigstore bundles signing it.
#[derive(Debug, Clone)]
pub struct Sbom {
    /// The `application/vnd.cyclonedx+json` referrer.
    pub referrer: Referrer,
    /// The Sigstore bundle referrers of its statement (keyless, and the key's).
    pub bundles: Vec<Referrer>,
}

impl Sbom {
    /// Every referrer to store: signed, the bundles carry the document, and no unsigned copy
    /// of it goes beside them (one referrer per claim, as the provenance's).
    pub fn referrers(&self) -> impl Iterator<Item = &Referrer> {
        let unsigned = self.referrer.layer.media_type == ARTIFACT_TYPE;
        let document = (!unsigned || self.bundles.is_empty()).then_some(&self.referrer);
        document.into_iter().chain(&self.bundles)
    }
}

/// What the SBOM is about and how it is signed.
pub struct Context<'a> {
    /// The pushed manifest (the referrers' subject).
    pub subject: Descriptor,
    /// The image, manifest, and `.wasm` the statement names.
    pub subjects: Subjects<'a>,
    /// The artifact's `created` (RFC 3339).
    pub created: &'a str,
    /// Keyless signing, when the provenance is signed keylessly.
    pub keyless: Option<&'a Keyless>,
    /// The PEM private key that signs the provenance, and so the SBOM too.
    pub signing_key: Option<&'a Secret>,
}

/// The SBOM of a build, when the build is known; `None` in file mode.
pub async fn for_push(build: Option<&BuildRecord>, context: Context<'_>) -> Result<Option<Sbom>> {
    let Some(linked) = build.and_then(|b| b.linked.as_ref()) else {
        debug!(
            "no SBOM: the .wasm was located on disk, so the crates linked into it are not known"
        );
        return Ok(None);
    };
    let document = document(linked, context.subjects.manifest, context.created)?;
    let statement = statement(&document, &context.subjects);
    let mut bundles = Vec::new();
    if let Some(keyless) = context.keyless {
        let token = keyless.token.request().await?;
        let signed = crate::sigstore::keyless::sign(&statement, &keyless.services, &token).await?;
        bundles.push(Referrer::bundle_of(
            context.subject.clone(),
            signed.bundle,
            PREDICATE_TYPE,
            context.created,
        ));
    }
    let layer = match context.signing_key {
        Some(pem) => {
            let key = SigningKey::from_pem(pem.expose())
                .map_err(|e| Error::input(input::SIGNING_KEY, e))?;
            let envelope = dsse::sign(&statement, &key);
            bundles.push(Referrer::bundle_of(
                context.subject.clone(),
                crate::sigstore::bundle::key_bundle(&envelope, &key.public_key_der())?,
                PREDICATE_TYPE,
                context.created,
            ));
            Blob::new(dsse::ENVELOPE_MEDIA_TYPE, envelope)
        }
        None => Blob::new(ARTIFACT_TYPE, document),
    };
    let referrer = Referrer::sbom(context.subject, layer, context.created);
    info!(
        "SBOM {} (CycloneDX 1.5, {} crates){}",
        referrer.manifest.digest,
        linked.crates.len(),
        if bundles.is_empty() { "" } else { ", signed" }
    );
    Ok(Some(Sbom { referrer, bundles }))
}

/// The in-toto statement whose predicate is `document`, about the provenance's subjects.
pub fn statement(document: &[u8], subjects: &Subjects<'_>) -> Vec<u8> {
    let predicate: serde_json::Value =
        serde_json::from_slice(document).expect("the document is JSON written here");
    let statement = json!({
        "_type": STATEMENT_TYPE,
        "subject": [
            Subject::sha256(subjects.image, subjects.manifest),
            Subject::sha256(subjects.wasm_name, subjects.wasm),
        ],
        "predicateType": PREDICATE_TYPE,
        "predicate": predicate,
    });
    serde_json::to_vec(&statement).expect("a statement always serializes")
}

/// The CycloneDX 1.5 JSON document of `linked`: the built package as `metadata.component`, each
/// linked crate as a library component (name, version, purl, license, source), and the
/// dependency graph. Its serial number is derived from `subject`, so it repeats with the
/// artifact; `created` is its timestamp.
pub fn document(linked: &Linked, subject: &Digest, created: &str) -> Result<Vec<u8>> {
    let bad = |what: &str, e: &dyn std::fmt::Display| {
        Error::Provenance(format!("cannot write the SBOM's {what}: {e}"))
    };
    let mut refs: Vec<(String, String)> = Vec::new();
    let mut component = |c: &LinkedCrate, kind: Classification| -> Result<Component> {
        let purl = purl(c).map_err(|e| bad("package URL", &e))?;
        let mut bom_ref = purl.to_string();
        if refs.iter().any(|(_, r)| *r == bom_ref) {
            bom_ref = format!("{bom_ref}#{}", refs.len());
        }
        refs.push((c.id.clone(), bom_ref.clone()));
        let mut component = Component::new(kind, &c.name, &c.version, Some(bom_ref));
        component.purl = Some(purl);
        component.licenses = c.license.as_deref().map(|l| {
            Licenses(vec![match SpdxExpression::parse_lax(l.to_owned()) {
                Ok(expression) => LicenseChoice::Expression(expression),
                Err(_) => LicenseChoice::license(l),
            }])
        });
        component.external_references = source_reference(c).map(|r| ExternalReferences(vec![r]));
        Ok(component)
    };
    let root = component(&linked.root, Classification::Application)?;
    let components = linked
        .crates
        .iter()
        .map(|c| component(c, Classification::Library))
        .collect::<Result<Vec<_>>>()?;
    let bom_ref = |id: &str| {
        refs.iter()
            .find(|(i, _)| i == id)
            .map(|(_, r)| r.clone())
            .expect("every crate of the graph has a component")
    };
    let dependencies = std::iter::once(&linked.root)
        .chain(&linked.crates)
        .map(|c| Dependency {
            dependency_ref: bom_ref(&c.id),
            dependencies: c.depends_on.iter().map(|d| bom_ref(d)).collect(),
        })
        .collect();

    let tool = Component::new(
        Classification::Application,
        "wasm-oci",
        env!("CARGO_PKG_VERSION"),
        None,
    );
    let bom = Bom {
        version: 1,
        serial_number: Some(serial_number(subject)),
        spec_version: SpecVersion::V1_5,
        metadata: Some(Metadata {
            timestamp: Some(
                DateTime::try_from(created.to_owned()).map_err(|e| bad("timestamp", &e))?,
            ),
            tools: Some(Tools::Object {
                services: None,
                components: Some(Components(vec![tool])),
            }),
            component: Some(root),
            ..Metadata::default()
        }),
        components: Some(Components(components)),
        dependencies: Some(Dependencies(dependencies)),
        ..Bom::default()
    };
    let checked = bom.validate_version(SpecVersion::V1_5);
    if !checked.passed() {
        return Err(bad("content", &format!("{checked:?}")));
    }
    let mut out = Vec::new();
    bom.output_as_json_v1_5(&mut out)
        .map_err(|e| bad("JSON", &e))?;
    Ok(out)
}

/// `pkg:cargo/name@version`; a crate from git also names its repository and commit
/// (`vcs_url`), so it is not taken for the crates.io crate of that name and version.
fn purl(c: &LinkedCrate) -> std::result::Result<Purl, String> {
    let base = Purl::new("cargo", &c.name, &c.version).map_err(|e| e.to_string())?;
    Ok(match &c.source {
        CrateSource::Git { url, commit } => {
            let vcs = match commit {
                Some(commit) => format!("git+{url}@{commit}"),
                None => format!("git+{url}"),
            };
            format!("{base}?vcs_url={}", percent_encode(&vcs))
                .parse()
                .expect("any text is a Purl")
        }
        _ => base,
    })
}

/// Percent-encodes a purl qualifier value (everything but unreserved characters, `:` and `/`).
fn percent_encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b':' | b'/' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Where the crate came from: its crates.io page, its git repository at the commit, or the
/// registry's index; nothing for a local path.
fn source_reference(c: &LinkedCrate) -> Option<ExternalReference> {
    let (kind, url) = match &c.source {
        CrateSource::CratesIo => (
            ExternalReferenceType::Distribution,
            format!("https://crates.io/crates/{}/{}", c.name, c.version),
        ),
        CrateSource::Git { url, commit } => (
            ExternalReferenceType::Vcs,
            match commit {
                Some(commit) => format!("git+{url}#{commit}"),
                None => format!("git+{url}"),
            },
        ),
        CrateSource::Registry(index) => (ExternalReferenceType::Distribution, index.clone()),
        CrateSource::Local => return None,
    };
    Some(ExternalReference::new(kind, Uri::new(&url)))
}

/// A `urn:uuid:` from the artifact's digest: one per artifact, the same for each build of it.
fn serial_number(subject: &Digest) -> UrnUuid {
    let hash = Sha256::digest(format!("cyclonedx sbom of {subject}").as_bytes());
    let mut b: [u8; 16] = hash[..16].try_into().expect("16 bytes");
    // RFC 9562 version 8 (custom), variant 10.
    b[6] = (b[6] & 0x0f) | 0x80;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    UrnUuid::new(format!(
        "urn:uuid:{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    ))
    .expect("8-4-4-4-12 hex digits")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn krate(name: &str, source: CrateSource, deps: &[&str]) -> LinkedCrate {
        LinkedCrate {
            name: name.into(),
            version: "1.0.0".into(),
            license: Some("MIT/Apache-2.0".into()),
            source,
            id: name.into(),
            depends_on: deps.iter().map(|d| (*d).to_owned()).collect(),
        }
    }

    #[test]
    fn the_document_lists_each_crate_with_purl_license_source_and_graph() {
        let linked = Linked {
            root: krate("app", CrateSource::Local, &["serde", "forked"]),
            crates: vec![
                krate(
                    "forked",
                    CrateSource::Git {
                        url: "https://github.com/acme/forked".into(),
                        commit: Some("abc123".into()),
                    },
                    &[],
                ),
                krate("serde", CrateSource::CratesIo, &[]),
            ],
        };
        let subject = Digest::of(b"manifest");
        let bytes = document(&linked, &subject, "2024-01-01T00:00:00Z").unwrap();
        assert_eq!(
            bytes,
            document(&linked, &subject, "2024-01-01T00:00:00Z").unwrap(),
            "the same artifact gives the same document"
        );
        let doc: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(doc["bomFormat"], "CycloneDX");
        assert_eq!(doc["specVersion"], "1.5");
        assert_eq!(doc["metadata"]["timestamp"], "2024-01-01T00:00:00Z");
        assert_eq!(doc["metadata"]["component"]["name"], "app");
        assert_eq!(doc["metadata"]["component"]["type"], "application");
        let serde = &doc["components"][1];
        assert_eq!(serde["purl"], "pkg:cargo/serde@1.0.0");
        assert_eq!(serde["licenses"][0]["expression"], "MIT OR Apache-2.0");
        assert_eq!(
            serde["externalReferences"][0]["url"],
            "https://crates.io/crates/serde/1.0.0"
        );
        let forked = &doc["components"][0];
        assert_eq!(
            forked["purl"],
            "pkg:cargo/forked@1.0.0?vcs_url=git%2Bhttps://github.com/acme/forked%40abc123"
        );
        assert_eq!(forked["externalReferences"][0]["type"], "vcs");
        let app = doc["dependencies"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["ref"] == "pkg:cargo/app@1.0.0")
            .unwrap();
        assert_eq!(app["dependsOn"].as_array().unwrap().len(), 2);
        let serial = doc["serialNumber"].as_str().unwrap();
        assert!(serial.starts_with("urn:uuid:"), "{serial}");
        let other = document(&linked, &Digest::of(b"other"), "2024-01-01T00:00:00Z").unwrap();
        let other: Value = serde_json::from_slice(&other).unwrap();
        assert_ne!(other["serialNumber"], doc["serialNumber"]);
    }

    #[test]
    fn the_statement_carries_the_document_as_its_cyclonedx_predicate() {
        let (manifest, wasm) = (Digest::of(b"m"), Digest::of(b"w"));
        let subjects = Subjects {
            image: "registry.example/app",
            manifest: &manifest,
            wasm_name: "app.wasm",
            wasm: &wasm,
        };
        let statement: Value =
            serde_json::from_slice(&statement(br#"{"bomFormat":"CycloneDX"}"#, &subjects)).unwrap();
        assert_eq!(statement["_type"], STATEMENT_TYPE);
        assert_eq!(statement["predicateType"], PREDICATE_TYPE);
        assert_eq!(statement["predicate"]["bomFormat"], "CycloneDX");
        assert_eq!(statement["subject"][0]["digest"]["sha256"], manifest.hex());
    }
}
