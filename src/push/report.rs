//! What a finished push reports: the action outputs, the one-line `metadata` JSON and the
//! Markdown step summary. Pure functions of [`PushOutcome`], so both front doors agree.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;

use serde_json::json;

use crate::artifact::Format;
use crate::build::BuildRecord;
use crate::markdown::{code, message, one_line, text};
use crate::reference::{Destination, Digest, ImageName, Tag};
use crate::wasm::WasmFile;
use crate::wasm::metadata::EmbeddedMetadata;

/// The result of a push.
#[derive(Debug, Clone)]
pub struct PushOutcome {
    /// Where it went.
    pub destination: Destination,
    /// The manifest digest, computed here and confirmed by the target.
    pub digest: Digest,
    /// The tags that now point at it.
    pub tags: Vec<Tag>,
    /// The Wasm file pushed.
    pub wasm: WasmFile,
    /// Media types used.
    pub format: Format,
    /// The config blob's digest.
    pub config_digest: Digest,
    /// The manifest annotations.
    pub annotations: BTreeMap<String, String>,
    /// What the module's metadata sections say.
    pub embedded: EmbeddedMetadata,
    /// Blobs sent.
    pub uploaded: Vec<Digest>,
    /// Blobs the target already had.
    pub reused: Vec<Digest>,
    /// Whether this was a dry run into a local layout.
    pub dry_run: bool,
    /// The OCI layout directory written (a dry run's, or `oci:DIR`'s), as given.
    pub layout: Option<PathBuf>,
    /// The provenance referrer manifest's digest, when one was attached.
    pub provenance: Option<Digest>,
    /// The SBOM referrer manifest's digest, when one was attached (build mode).
    pub sbom: Option<Digest>,
    /// What cargo built, in build mode; `None` when the .wasm was located on disk.
    pub build: Option<BuildRecord>,
    /// How the provenance was signed, and where the signature went.
    pub signing: Signing,
    /// Each registry repository pushed to, and whether it got the artifact (none for a layout
    /// or a dry run).
    pub registries: Vec<Reached>,
}

/// Whether one registry repository got the artifact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reached {
    /// The registry and repository.
    pub image: ImageName,
    /// Why it did not get it; `None` when it holds the artifact complete.
    pub error: Option<String>,
}

/// The provenance's Sigstore bundles and the attestation stored in GitHub.
#[derive(Debug, Clone, Default)]
pub struct Signing {
    /// The bundle referrer manifest's digest: the keyless one, else the `signing-key` one.
    pub bundle: Option<Digest>,
    /// Keyless: the certificate's identity, the log index, whether timestamped.
    pub keyless: Option<Keyless>,
    /// The attestation stored in the repository's GitHub attestations: id and page.
    pub attestation: Option<(u64, String)>,
}

/// What a keyless signature rests on.
#[derive(Debug, Clone)]
pub struct Keyless {
    /// The workflow identity in the Fulcio certificate.
    pub identity: String,
    /// The Rekor entry's index, when logged.
    pub log_index: Option<u64>,
    /// Whether an RFC 3161 timestamp is in the bundle.
    pub timestamped: bool,
}

impl PushOutcome {
    /// `image@digest`.
    pub fn reference(&self) -> String {
        format!("{}@{}", self.destination, self.digest)
    }

    /// `registry/repository@digest` of each registry that holds the artifact; an `oci:DIR`
    /// layout's reference; none for a dry run.
    pub fn refs(&self) -> Vec<String> {
        if self.dry_run {
            return Vec::new();
        }
        if let Destination::Layout(_) = self.destination {
            return vec![self.reference()];
        }
        self.registries
            .iter()
            .filter(|r| r.error.is_none())
            .map(|r| format!("{}@{}", r.image, self.digest))
            .collect()
    }

    /// An error when some registry did not get the artifact, naming each and those that hold
    /// it. Checked once the outputs and the summary are written, which say the same.
    pub fn complete(&self) -> crate::Result<()> {
        if self.registries.iter().all(|r| r.error.is_none()) {
            return Ok(());
        }
        let failed = failures(&self.registries);
        let refs = self.refs();
        let held = match refs.as_slice() {
            [] => "no registry holds it".to_owned(),
            held => format!(
                "it is complete in {}; push again to reach the rest",
                held.join(", ")
            ),
        };
        Err(crate::Error::NotEverywhere { failed, held })
    }

    /// The action outputs, in a stable order.
    pub fn outputs(&self) -> Vec<(&'static str, String)> {
        vec![
            ("digest", self.digest.to_string()),
            ("image", self.destination.to_string()),
            ("ref", self.reference()),
            ("refs", self.refs().join("\n")),
            ("tags", self.tag_list()),
            ("wasm-digest", self.wasm.digest.to_string()),
            ("size", self.wasm.size.to_string()),
            (
                "provenance-digest",
                self.provenance
                    .as_ref()
                    .map(Digest::to_string)
                    .unwrap_or_default(),
            ),
            (
                "sbom-digest",
                self.sbom
                    .as_ref()
                    .map(Digest::to_string)
                    .unwrap_or_default(),
            ),
            (
                "bundle-digest",
                self.signing
                    .bundle
                    .as_ref()
                    .map(Digest::to_string)
                    .unwrap_or_default(),
            ),
            (
                "attestation-id",
                self.signing
                    .attestation
                    .as_ref()
                    .map(|(id, _)| id.to_string())
                    .unwrap_or_default(),
            ),
            (
                "attestation-url",
                self.signing
                    .attestation
                    .as_ref()
                    .map(|(_, url)| url.clone())
                    .unwrap_or_default(),
            ),
            ("metadata", self.metadata().to_string()),
            ("layout", self.layout_text()),
            ("annotations", self.annotation_lines()),
        ]
    }

    fn layout_text(&self) -> String {
        self.layout
            .as_ref()
            .map(|dir| dir.display().to_string())
            .unwrap_or_default()
    }

    /// The manifest annotations set, `key=value` one per line: the form the `annotations` input
    /// takes.
    fn annotation_lines(&self) -> String {
        self.annotations
            .iter()
            .map(|(k, v)| format!("{}={}", one_line(k), one_line(v)))
            .collect::<Vec<_>>()
            .join("\n")
    }

    fn tag_list(&self) -> String {
        self.tags
            .iter()
            .map(Tag::as_str)
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Everything as one JSON object.
    pub fn metadata(&self) -> serde_json::Value {
        json!({
            "digest": self.digest.to_string(),
            "image": self.destination.to_string(),
            "ref": self.reference(),
            "refs": self.refs(),
            "tags": self.tags.iter().map(Tag::as_str).collect::<Vec<_>>(),
            "wasm-digest": self.wasm.digest.to_string(),
            "size": self.wasm.size,
            "kind": self.wasm.kind,
            "os": self.wasm.kind.os(),
            "component": self.wasm.component,
            "format": self.format,
            "config-digest": self.config_digest.to_string(),
            "annotations": self.annotations,
            "wasm-metadata": self.embedded,
            "dry-run": self.dry_run,
            "layout": self.layout.as_ref().map(|_| self.layout_text()),
            "provenance-digest": self.provenance.as_ref().map(Digest::to_string),
            "sbom-digest": self.sbom.as_ref().map(Digest::to_string),
            "bundle-digest": self.signing.bundle.as_ref().map(Digest::to_string),
            "attestation-id": self.signing.attestation.as_ref().map(|(id, _)| id),
            "build": self.build,
        })
    }

    /// The Markdown step summary. Every value from outside (names, tags, the module's
    /// metadata, a registry's error) is inert text ([`crate::markdown`]).
    pub fn summary(&self) -> String {
        let mut md = String::new();
        let heading = if self.dry_run {
            "Wasm OCI artifact (dry run, nothing pushed)"
        } else {
            "Wasm OCI artifact pushed"
        };
        let _ = writeln!(md, "### {heading}\n");
        let _ = writeln!(md, "| | |\n|---|---|");
        let row = |md: &mut String, k: &str, v: &str| {
            let _ = writeln!(md, "| {k} | {v} |");
        };
        row(&mut md, "Image", &code(&self.destination.to_string()));
        if self.registries.len() > 1 {
            for r in &self.registries {
                let state = match &r.error {
                    None => "pushed".to_owned(),
                    Some(e) => format!("**not pushed**: {}", message(e)),
                };
                row(
                    &mut md,
                    "Registry",
                    &format!("{}: {state}", code(&r.image.to_string())),
                );
            }
        }
        if self.dry_run {
            row(&mut md, "Written to", &code(&self.layout_text()));
        }
        row(&mut md, "Digest", &code(&self.digest.to_string()));
        row(
            &mut md,
            "Tags",
            &self
                .tags
                .iter()
                .map(|t| code(t.as_str()))
                .collect::<Vec<_>>()
                .join(" "),
        );
        row(&mut md, "File", &code(&self.wasm.file_name()));
        row(&mut md, "Wasm digest", &code(&self.wasm.digest.to_string()));
        row(&mut md, "Size", &format!("{} bytes", self.wasm.size));
        row(
            &mut md,
            "Kind",
            &format!("{:?} ({})", self.wasm.kind, code(self.wasm.kind.os())),
        );
        if let Some(c) = &self.wasm.component {
            if let Some(t) = &c.target {
                row(&mut md, "World", &code(t));
            }
            row(&mut md, "Exports", &code_list(&c.exports));
            row(&mut md, "Imports", &code_list(&c.imports));
        }
        if let Some(b) = &self.build {
            let rustc = b.toolchain.lines().next().unwrap_or_default();
            row(
                &mut md,
                "Built",
                &format!(
                    "{} for {} ({} profile) with {}",
                    code(&b.package),
                    code(&b.target.to_string()),
                    code(&b.profile),
                    text(rustc)
                ),
            );
        }
        row(&mut md, "Format", &text(&self.format.to_string()));
        if let Some(p) = &self.provenance {
            row(
                &mut md,
                "Provenance",
                &format!("{} (SLSA v1, referrer)", code(&p.to_string())),
            );
        }
        if let Some(sbom) = &self.sbom {
            row(
                &mut md,
                "SBOM",
                &format!("{} (CycloneDX 1.5, referrer)", code(&sbom.to_string())),
            );
        }
        if let Some(bundle) = &self.signing.bundle {
            let how = match &self.signing.keyless {
                Some(k) => {
                    let mut proofs = Vec::new();
                    if let Some(i) = k.log_index {
                        proofs.push(format!("Rekor log index {i}"));
                    }
                    if k.timestamped {
                        proofs.push("RFC 3161 timestamp".to_owned());
                    }
                    format!(
                        "keyless, Sigstore: {}; {}",
                        code(&k.identity),
                        proofs.join(", ")
                    )
                }
                None => "with `signing-key`".to_owned(),
            };
            row(
                &mut md,
                "Signature",
                &format!("{} (Sigstore bundle, {how})", code(&bundle.to_string())),
            );
        }
        if let Some((id, url)) = &self.signing.attestation {
            row(
                &mut md,
                "Attestation",
                &crate::markdown::link(&id.to_string(), url),
            );
        }
        row(
            &mut md,
            "Blobs",
            &format!(
                "{} uploaded, {} already present",
                self.uploaded.len(),
                self.reused.len()
            ),
        );
        let _ = write!(md, "\n{}", crate::mermaid::pushed(&self.diagram()));
        md
    }

    /// What the summary's diagram draws: the manifest, its tags, where it went, its referrers.
    fn diagram(&self) -> crate::mermaid::Pushed {
        use crate::provenance::referrer::{ARTIFACT_TYPE, BUNDLE_MEDIA_TYPE, SBOM_ARTIFACT_TYPE};
        let mut registries: Vec<(String, bool)> = (self.registries.iter())
            .map(|r| (r.image.to_string(), r.error.is_none()))
            .collect();
        if registries.is_empty() {
            registries.push((self.destination.to_string(), true));
        }
        let attached = [
            ("provenance", ARTIFACT_TYPE, &self.provenance),
            ("signature", BUNDLE_MEDIA_TYPE, &self.signing.bundle),
            ("SBOM", SBOM_ARTIFACT_TYPE, &self.sbom),
        ];
        crate::mermaid::Pushed {
            digest: self.digest.to_string(),
            tags: self.tags.iter().map(Tag::to_string).collect(),
            registries,
            attached: (attached.into_iter())
                .filter_map(|(what, artifact_type, digest)| {
                    Some(crate::mermaid::Attached {
                        what,
                        artifact_type,
                        digest: digest.as_ref()?.to_string(),
                    })
                })
                .collect(),
        }
    }
}

/// The registries of `reached` that did not get the artifact, each with why.
pub fn failures(reached: &[Reached]) -> String {
    reached
        .iter()
        .filter_map(|r| Some(format!("{} ({})", r.image, r.error.as_deref()?)))
        .collect::<Vec<_>>()
        .join("; ")
}

fn code_list(items: &[String]) -> String {
    if items.is_empty() {
        "none".to_owned()
    } else {
        items
            .iter()
            .map(|i| code(i))
            .collect::<Vec<_>>()
            .join("<br>")
    }
}
