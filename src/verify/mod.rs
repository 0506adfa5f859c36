//! The verify use case: prove that `image@sha256:...` is exactly what was released. Each check
//! is recorded (name, result, detail) for the step summary; any failure fails the step with
//! the check's name and what it found. Checks: the manifest, config and layer digests, the
//! layer as valid Wasm whose kind matches the config, expected annotations, and a provenance
//! referrer for this digest from the expected repository and commit, signed when a key is given
//! (`provenance`), or a Sigstore bundle checked against a trusted root and an identity policy
//! (`sigstore`). The report and its summary are in `report`.

mod identity;
mod provenance;
mod report;
mod sbom;
mod sigstore;

use std::collections::BTreeMap;
use std::path::PathBuf;

use tracing::{info, warn};

pub use self::report::{Check, Outcome, VerifyReport};
pub use self::sigstore::{GITHUB_ACTIONS_ISSUER, IdentityPolicy, TrustRoot};
use crate::artifact::{Manifest, WasmConfig};
use crate::context::Env;
use crate::error::{Error, Result};
use crate::input;
use crate::inputs::Inputs;
use crate::phase;
use crate::provenance::annotations::{REVISION, SOURCE};
use crate::provenance::dsse;
use crate::provenance::levels::UserAnnotations;
use crate::reference::{Digest, ImageRef};
use crate::registry::download::fetch_validating;
use crate::registry::{ManifestRef, ReadTarget};
use crate::request::ReadRequest;
use crate::resolve::{self, Source};
use crate::wasm::WasmFile;
use crate::wasm::policy::AllowedImports;

/// Everything a verify needs.
#[derive(Debug, Clone)]
pub struct VerifyRequest {
    /// What to verify and from where.
    pub read: ReadRequest,
    /// The repository URL the source annotation and the provenance must name.
    pub expect_source: Option<String>,
    /// The commit the revision annotation and the provenance must name.
    pub expect_revision: Option<String>,
    /// Annotations that must have exactly these values.
    pub annotations: BTreeMap<String, String>,
    /// The PEM public key the provenance must be signed with.
    pub public_key: Option<String>,
    /// Whether a CycloneDX SBOM referrer must be attached.
    pub require_sbom: bool,
    /// Whether the provenance must carry a signature that verifies: `require-signature`, or
    /// implied by `public-key` or an identity policy, which are never given for nothing.
    pub require_signature: bool,
    /// The repository whose GitHub Actions workflows may sign keylessly when no
    /// `certificate-identity` says who: `expect-source`, else (in action mode) the deploy job's
    /// own repository, as `gh attestation verify --repo` would.
    pub signer: Option<String>,
    /// Who may have signed a keyless Sigstore bundle.
    pub identity: IdentityPolicy,
    /// The trusted roots Sigstore bundles are checked against.
    pub trust_roots: Vec<TrustRoot>,
    /// The interfaces the component may import.
    pub allowed_imports: Option<AllowedImports>,
}

impl VerifyRequest {
    /// Parses `inputs` and the settings of `env`; `public-key` is PEM text or a path to a PEM
    /// file. `job_repository` is the running job's repository URL (action mode), the signer
    /// when nothing else names one.
    pub fn from_inputs(inputs: &Inputs, env: &Env, job_repository: Option<String>) -> Result<Self> {
        let read = ReadRequest::from_inputs(inputs, env)?;
        let public_key = match inputs.get(input::PUBLIC_KEY) {
            None => None,
            Some(text) if text.contains("-----BEGIN") => Some(text.to_owned()),
            Some(path) => Some(crate::files::read_input_text(
                input::PUBLIC_KEY,
                &read.working_directory.join(path),
                inputs.confinement.as_ref(),
            )?),
        };
        if let Some(key) = &public_key {
            dsse::check_public_key(key)
                .map_err(|e| Error::input(input::PUBLIC_KEY, e.to_string()))?;
        }
        let identity = IdentityPolicy {
            identity: inputs.get(input::CERTIFICATE_IDENTITY).map(str::to_owned),
            identity_regexp: inputs
                .get(input::CERTIFICATE_IDENTITY_REGEXP)
                .map(sigstore::identity_regexp_input)
                .transpose()?,
            issuer: inputs
                .get(input::CERTIFICATE_OIDC_ISSUER)
                .map(str::to_owned),
        };
        let expect_source = inputs.get(input::EXPECT_SOURCE).map(str::to_owned);
        let named_identity = identity.identity.is_some() || identity.identity_regexp.is_some();
        let signer = match (&expect_source, named_identity) {
            (Some(source), _) => Some(source.clone()),
            (None, false) => job_repository,
            (None, true) => None,
        };
        let require_signature = inputs.flag(input::REQUIRE_SIGNATURE)?
            || public_key.is_some()
            || named_identity
            || identity.issuer.is_some();
        if require_signature && public_key.is_none() && !named_identity && signer.is_none() {
            return Err(Error::input(
                input::REQUIRE_SIGNATURE,
                "a signature is required, but nothing names the signer: give `expect-source` (a GitHub Actions workflow of that repository), `certificate-identity` or `certificate-identity-regexp` (keyless), or `public-key` (a key); or `require-signature: false` to accept unsigned provenance",
            ));
        }
        let trust_roots = match inputs.get(input::SIGSTORE_TRUST_CONFIG) {
            Some(value) => vec![sigstore::trust_root_input(value, &read.working_directory)?],
            None => TrustRoot::embedded(),
        };
        Ok(VerifyRequest {
            identity,
            trust_roots,
            expect_source,
            expect_revision: inputs.get(input::EXPECT_REVISION).map(str::to_owned),
            annotations: UserAnnotations::parse(inputs.get(input::ANNOTATIONS).unwrap_or_default())
                .map_err(|e| Error::input(input::ANNOTATIONS, e))?
                .expected(),
            public_key,
            require_sbom: inputs.flag(input::REQUIRE_SBOM)?,
            require_signature,
            signer,
            allowed_imports: crate::request::allowed_imports(inputs)?,
            read,
        })
    }
}

/// Runs every check that can run and returns the report; only trouble reaching the artifact
/// at all is an error. Call [`VerifyReport::into_result`] to fail on a failed check.
pub async fn verify(request: &VerifyRequest) -> Result<VerifyReport> {
    let image = &request.read.image;
    let source = Source::open(&image.location, &request.read.connection).await?;
    let mut report = VerifyReport {
        image: image.clone(),
        digest: None,
        checks: Vec::new(),
    };
    let _phase = phase("Verify");

    // The manifest: its bytes must hash to the digest asked for.
    let fetched = match resolve::fetch_manifest(&source, image).await {
        Ok(f) => f,
        Err(e @ Error::DigestMismatch { .. }) => {
            report.checks.push(Check::fail(
                "manifest digest",
                crate::error::error_chain(&e),
            ));
            return Ok(report);
        }
        Err(e) => return Err(e),
    };
    let digest = fetched.digest.clone();
    report.digest = Some(digest.clone());
    match (&image.digest, &image.tag) {
        (Some(_), _) => report.checks.push(Check::pass(
            "manifest digest",
            format!("the manifest bytes hash to {digest}"),
        )),
        (None, Some(tag)) => {
            warn!(
                "`{image}` is a tag, and tags move: verified {digest}; deploy {} instead",
                image.pinned(&digest)
            );
            report.checks.push(Check::skip(
                "manifest digest",
                format!("tag `{tag}` resolved to {digest}; tags move, pin `@{digest}`"),
            ));
        }
        (None, None) => unreachable!("a reference has a tag or a digest"),
    }
    let manifest = &fetched.manifest;

    // What the provenance must say: a referrer for this digest, from the expected repository
    // and commit.
    let want_source = request
        .expect_source
        .clone()
        .or_else(|| manifest.annotations.get(SOURCE).cloned());
    let want_revision = request
        .expect_revision
        .clone()
        .or_else(|| manifest.annotations.get(REVISION).cloned());
    let expectations = provenance::Expectations {
        subject: &digest,
        source: want_source.as_deref(),
        revision: want_revision.as_deref(),
        public_key: request.public_key.as_deref(),
        identity: &request.identity,
        roots: &request.trust_roots,
        require_signature: request.require_signature,
        signer: request.signer.as_deref(),
    };

    // Every read the checks need goes out at once: the tag, the config, the layer, the
    // referrers. Their checks are reported in this order.
    let tag = async {
        match (&image.digest, &image.tag) {
            (Some(expected), Some(tag)) => Some(check_tag(&source, tag, expected).await),
            _ => None,
        }
    };
    let mut layer_checks = Vec::new();
    let layer = check_layer(
        &source,
        image,
        manifest,
        request.read.layer.as_deref(),
        &mut layer_checks,
    );
    // The referrers are listed once, for the provenance and the SBOM alike.
    let referred = async {
        let listing = source.referrers(&digest).await;
        let sbom = async {
            match request.require_sbom {
                true => sbom::check_sbom(&source, &expectations, &listing).await,
                false => Vec::new(),
            }
        };
        tokio::join!(
            provenance::check_provenance(&source, &expectations, &listing),
            sbom
        )
    };
    let (tag, config, wasm, (provenance, sbom)) =
        tokio::join!(tag, source.get_blob(&manifest.config), layer, referred);
    report.checks.extend(tag);

    // The config and the layer: each must hash to what the manifest says.
    report.checks.push(match &config {
        Ok(_) => Check::pass(
            "config digest",
            format!(
                "{} ({})",
                manifest.config.digest, manifest.config.media_type
            ),
        ),
        Err(e) => Check::fail("config digest", crate::error::error_chain(e)),
    });
    report.checks.extend(layer_checks);

    // The Wasm's kind must match what the config says.
    if let (Ok(config), Some(wasm)) = (&config, &wasm) {
        report.checks.push(check_kind(manifest, config, wasm));
    }

    // The capability gate: the imports the config records, within `allowed-imports`.
    if let Some(allowed) = &request.allowed_imports {
        report.checks.push(check_imports(
            allowed,
            manifest,
            config.as_deref().ok(),
            wasm.as_ref(),
        ));
    }

    // The annotations the caller expects.
    let mut expected = request.annotations.clone();
    if let Some(source_url) = &request.expect_source {
        expected.insert(SOURCE.to_owned(), source_url.clone());
    }
    if let Some(revision) = &request.expect_revision {
        expected.insert(REVISION.to_owned(), revision.clone());
    }
    for (key, value) in &expected {
        let name = format!("annotation {key}");
        report.checks.push(match manifest.annotations.get(key) {
            Some(found) if found == value => Check::pass(name, format!("`{found}`")),
            Some(found) => Check::fail(name, format!("expected `{value}`, found `{found}`")),
            None => Check::fail(
                name,
                format!("expected `{value}`, found no such annotation"),
            ),
        });
    }

    report.checks.extend(provenance);
    report.checks.extend(sbom);

    for c in &report.checks {
        match c.outcome {
            Outcome::Fail => warn!("{}: FAIL: {}", c.name, c.detail),
            _ => info!("{}: {}", c.name, c.detail),
        }
    }
    Ok(report)
}

async fn check_tag<T: ReadTarget>(
    source: &T,
    tag: &crate::reference::Tag,
    expected: &Digest,
) -> Check {
    let name = format!("tag {tag}");
    match source.get_manifest(&ManifestRef::Tag(tag.clone())).await {
        Ok(Some(blob)) if &blob.digest == expected => {
            Check::pass(name, format!("still points to {expected}"))
        }
        Ok(Some(blob)) => Check::fail(
            name,
            format!("moved: now points to {}, not {expected}", blob.digest),
        ),
        Ok(None) => Check::fail(name, "no longer exists".to_owned()),
        Err(e) => Check::fail(name, crate::error::error_chain(&e)),
    }
}

/// Downloads the layer into a temporary directory through the digest check and validates it.
async fn check_layer<T: ReadTarget>(
    source: &T,
    image: &ImageRef,
    manifest: &Manifest,
    wanted: Option<&str>,
    checks: &mut Vec<Check>,
) -> Option<WasmFile> {
    let layer = match resolve::choose_layer(image, manifest, wanted) {
        Ok(layer) => layer,
        Err(e) => {
            checks.push(Check::fail("layer", crate::error::error_chain(&e)));
            return None;
        }
    };
    let staging = match tempfile::tempdir() {
        Ok(dir) => dir,
        Err(e) => {
            checks.push(Check::fail(
                "layer digest",
                format!("cannot create a temporary directory: {e}"),
            ));
            return None;
        }
    };
    let (validated, content) =
        match fetch_validating(source, &layer, &staging.path().join("layer")).await {
            Ok(downloaded) => {
                // The layer's, or for an image the module's taken out of its layer.
                let content = downloaded.content();
                let validated = downloaded
                    .validated
                    .expect("a validating download has a verdict");
                (validated, content)
            }
            Err(e) => {
                checks.push(Check::fail("layer digest", crate::error::error_chain(&e)));
                return None;
            }
        };
    checks.push(Check::pass(
        "layer digest",
        format!(
            "{} ({} bytes, {})",
            layer.digest, layer.size, layer.media_type
        ),
    ));
    match validated {
        Ok(validated) => {
            let what = match validated.kind {
                crate::wasm::WasmKind::Module => "core module",
                crate::wasm::WasmKind::Component => "component",
            };
            checks.push(Check::pass(
                "wasm",
                format!("a valid {what} (`{}`)", validated.kind.os()),
            ));
            Some(WasmFile::new(
                PathBuf::from(resolve::file_name_for(image, &layer)),
                content,
                validated,
            ))
        }
        Err(Error::InvalidWasm { reason, .. }) => {
            checks.push(Check::fail(
                "wasm",
                format!("layer {} is not valid WebAssembly: {reason}", layer.digest),
            ));
            None
        }
        Err(e) => {
            checks.push(Check::fail("wasm", crate::error::error_chain(&e)));
            None
        }
    }
}

/// Every import must match `allowed-imports`. The imports are the ones the pulled config
/// records (the kind check holds them to the binary); a config that records none (the legacy
/// format) leaves the validated layer's own. A core module's imports are not component
/// interfaces, so the policy cannot hold for one.
fn check_imports(
    allowed: &AllowedImports,
    manifest: &Manifest,
    config: Option<&[u8]>,
    wasm: Option<&WasmFile>,
) -> Check {
    let name = "allowed imports";
    let recorded = config
        .filter(|_| manifest.config.media_type == crate::artifact::CNCF_CONFIG_MEDIA_TYPE)
        .and_then(|c| serde_json::from_slice::<WasmConfig>(c).ok());
    let (imports, from) = match (&recorded, wasm) {
        (Some(c), _) if c.component.is_some() => (
            c.component.as_ref().map(|c| c.imports.clone()),
            "the config",
        ),
        (Some(c), _) if c.os == crate::wasm::WasmKind::Module.os() => (None, "the config"),
        (_, Some(w)) => (w.component.as_ref().map(|c| c.imports.clone()), "the layer"),
        (_, None) => {
            return Check::fail(
                name,
                "neither the config nor the layer tells the imports".to_owned(),
            );
        }
    };
    let Some(imports) = imports else {
        return Check::fail(
            name,
            format!(
                "{from} says a core module, whose imports are not component interfaces; only a component can meet allowed-imports"
            ),
        );
    };
    let outside = allowed.outside(&imports);
    if outside.is_empty() {
        Check::pass(
            name,
            format!(
                "{} imports in {from}, each within {}",
                imports.len(),
                allowed
                    .patterns()
                    .iter()
                    .map(|p| format!("`{p}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )
    } else {
        Check::fail(name, allowed.refusal(&outside))
    }
}

/// The config's `os`, `layerDigests` and component interfaces must match the binary.
fn check_kind(manifest: &Manifest, config: &[u8], wasm: &WasmFile) -> Check {
    let name = "kind";
    if manifest.config.media_type == crate::artifact::image::CONFIG_MEDIA_TYPE {
        return match crate::artifact::image::check_config(config, wasm) {
            Ok(found) => Check::pass(name, found),
            Err(reason) => Check::fail(name, reason),
        };
    }
    if manifest.config.media_type != crate::artifact::CNCF_CONFIG_MEDIA_TYPE {
        return Check::skip(
            name,
            format!(
                "a `{}` config records no kind; the layer is `{}`",
                manifest.config.media_type,
                wasm.kind.os()
            ),
        );
    }
    let config: WasmConfig = match serde_json::from_slice(config) {
        Ok(c) => c,
        Err(e) => return Check::fail(name, format!("the config is not a valid Wasm config: {e}")),
    };
    if config.os != wasm.kind.os() {
        return Check::fail(
            name,
            format!(
                "the config says `os: {}` but the layer is `{}`",
                config.os,
                wasm.kind.os()
            ),
        );
    }
    if !config.layer_digests.is_empty() && !config.layer_digests.contains(&wasm.digest) {
        return Check::fail(
            name,
            format!(
                "the config's layerDigests do not list the layer {}",
                wasm.digest
            ),
        );
    }
    match (&config.component, &wasm.component) {
        (Some(recorded), Some(actual)) => {
            let sorted = |v: &[String]| {
                let mut v = v.to_vec();
                v.sort();
                v
            };
            if sorted(&recorded.exports) != sorted(&actual.exports) {
                return Check::fail(
                    name,
                    format!(
                        "the config lists exports {:?}, the component has {:?}",
                        recorded.exports, actual.exports
                    ),
                );
            }
            if sorted(&recorded.imports) != sorted(&actual.imports) {
                return Check::fail(
                    name,
                    format!(
                        "the config lists imports {:?}, the component has {:?}",
                        recorded.imports, actual.imports
                    ),
                );
            }
            Check::pass(
                name,
                format!("`{}`, exports and imports match the config", config.os),
            )
        }
        (Some(_), None) => Check::fail(
            name,
            "the config describes a component, the layer is a core module".to_owned(),
        ),
        (None, _) => Check::pass(name, format!("`{}` as the config says", config.os)),
    }
}
