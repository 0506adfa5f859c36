//! What a push attaches to the artifact: the SLSA provenance statement, signed with the key or
//! keylessly (Sigstore), the SBOM signed as the provenance is, each made once for every
//! registry; and the keyless bundle stored in the repository's GitHub attestations.

use std::sync::Arc;

use tracing::{info, warn};

use super::report::{Keyless as KeylessOutcome, Signing};
use super::sbom::Sbom;
use super::{Facts, PushRequest};
use crate::artifact::Artifact;
use crate::build::BuildRecord;
use crate::context::GithubContext;
use crate::error::{Error, Result};
use crate::github;
use crate::input;
use crate::provenance::annotations;
use crate::provenance::dsse::{self, SigningKey};
use crate::provenance::referrer::{Payload, Referrer, STATEMENT_MEDIA_TYPE};
use crate::provenance::slsa::{self, BuildDetails};
use crate::reference::Destination;
use crate::wasm::WasmFile;

/// The provenance of the artifact's manifest: the statement's referrer (a DSSE envelope when a
/// key is given), and the Sigstore bundle referrers (keyless, and the key's envelope).
#[derive(Clone)]
pub(super) struct Provenance {
    pub(super) referrer: Referrer,
    pub(super) bundles: Vec<Referrer>,
    pub(super) signing: Signing,
    pub(super) keyless_bundle: Option<Vec<u8>>,
}

impl Provenance {
    /// One referrer per claim: signed, the bundles carry the statement, and no unsigned copy
    /// of it goes beside them (a verify takes none as evidence, and each referrer counts
    /// against a policy engine's limit on a subject's referrers).
    pub(super) fn referrers(&self) -> Vec<&Referrer> {
        let unsigned = self.referrer.layer.media_type == STATEMENT_MEDIA_TYPE;
        let statement = (!unsigned || self.bundles.is_empty()).then_some(&self.referrer);
        statement.into_iter().chain(self.bundles.iter()).collect()
    }
}

/// The provenance, made by the first registry's delivery and taken as it is by the others: one
/// statement, one signature, attached in each.
pub(super) async fn provenance_once(
    facts: &Facts<'_>,
    wasm: &WasmFile,
    artifact: &Artifact,
    build: Option<BuildDetails>,
) -> Result<Provenance> {
    facts
        .provenance
        .get_or_init(|| async move {
            provenance(facts, wasm, artifact, build)
                .await
                .map_err(Arc::new)
        })
        .await
        .clone()
        .map_err(Error::Shared)
}

/// Makes the provenance: the statement, signed with the key when one is given, and signed
/// keylessly when the job can (the OIDC token is asked for only now, just before Fulcio).
async fn provenance(
    facts: &Facts<'_>,
    wasm: &WasmFile,
    artifact: &Artifact,
    build: Option<BuildDetails>,
) -> Result<Provenance> {
    let image = facts.request.destination.to_string();
    let statement = slsa::statement(
        facts.ctx,
        &slsa::Subjects {
            image: &image,
            manifest: &artifact.manifest.digest,
            wasm_name: &wasm.file_name(),
            wasm: &wasm.digest,
        },
        build,
    )
    .to_bytes();
    let created = annotations::rfc3339(facts.created);
    let subject = artifact.manifest.descriptor();
    let mut bundles = Vec::new();
    let mut signing = Signing::default();
    let mut keyless_bundle = None;
    if let Some(keyless) = facts.keyless {
        let token = keyless.token.request().await?;
        let signed = crate::sigstore::keyless::sign(&statement, &keyless.services, &token).await?;
        let bundle = Referrer::bundle(subject.clone(), signed.bundle.clone(), &created);
        signing.bundle = Some(bundle.manifest.digest.clone());
        signing.keyless = Some(KeylessOutcome {
            identity: signed.identity,
            log_index: signed.log_index,
            timestamped: signed.timestamped,
        });
        keyless_bundle = Some(signed.bundle);
        bundles.push(bundle);
    }
    let payload = match &facts.request.signing_key {
        Some(pem) => {
            let key = SigningKey::from_pem(pem.expose())
                .map_err(|e| Error::input(input::SIGNING_KEY, e))?;
            info!("signing the provenance with the {} key", key.algorithm());
            let envelope = dsse::sign(&statement, &key);
            let bundle = Referrer::bundle(
                subject.clone(),
                crate::sigstore::bundle::key_bundle(&envelope, &key.public_key_der())?,
                &created,
            );
            signing.bundle.get_or_insert(bundle.manifest.digest.clone());
            bundles.push(bundle);
            Payload::Envelope(envelope)
        }
        None => Payload::Statement(statement),
    };
    Ok(Provenance {
        referrer: Referrer::new(subject, payload, &created),
        bundles,
        signing,
        keyless_bundle,
    })
}

/// The SBOM, made by the first registry's delivery and taken as it is by the others.
pub(super) async fn sbom_once(
    facts: &Facts<'_>,
    wasm: &WasmFile,
    artifact: &Artifact,
    build: Option<&BuildRecord>,
) -> Result<Option<Sbom>> {
    facts
        .sbom
        .get_or_init(|| async { sbom(facts, wasm, artifact, build).await.map_err(Arc::new) })
        .await
        .clone()
        .map_err(Error::Shared)
}

/// The SBOM of a build, signed as the provenance is; none in file mode or with `sbom: false`.
async fn sbom(
    facts: &Facts<'_>,
    wasm: &WasmFile,
    artifact: &Artifact,
    build: Option<&BuildRecord>,
) -> Result<Option<Sbom>> {
    // A located file reaches `for_push`, which says at debug level why it has no SBOM; a build
    // told `sbom: false` stops here.
    if build.is_some() && !facts.request.sbom {
        return Ok(None);
    }
    let (image, wasm_name) = (facts.request.destination.to_string(), wasm.file_name());
    let context = super::sbom::Context {
        subject: artifact.manifest.descriptor(),
        subjects: slsa::Subjects {
            image: &image,
            manifest: &artifact.manifest.digest,
            wasm_name: &wasm_name,
            wasm: &wasm.digest,
        },
        created: &annotations::rfc3339(facts.created),
        keyless: facts.keyless,
        signing_key: facts.request.signing_key.as_ref(),
    };
    super::sbom::for_push(build, context).await
}

/// Stores the keyless bundle in the repository's GitHub attestations, when the push went to a
/// registry and a token and repository are known; a refusal (no `attestations: write`) is a
/// warning and the push stands.
pub(super) async fn store_attestation(
    request: &PushRequest,
    ctx: &GithubContext,
    bundle: &[u8],
) -> Option<(u64, String)> {
    let Destination::Registry(_) = &request.destination else {
        return None;
    };
    let (Some(token), Some(repository)) =
        (request.connection.given.github_token(), &ctx.repository)
    else {
        return None;
    };
    let api = ctx.api_url.as_deref().unwrap_or("https://api.github.com");
    match github::upload_attestation(api, repository, token, bundle, github::TIMEOUT).await {
        Ok(id) => {
            let server = ctx.server_url.as_deref().unwrap_or("https://github.com");
            let url = format!(
                "{}/{repository}/attestations/{id}",
                server.trim_end_matches('/')
            );
            info!("attestation {id} stored in {repository}'s attestations: {url}");
            Some((id, url))
        }
        Err(e) => {
            warn!(
                "cannot store the signed provenance in {repository}'s GitHub attestations at {api}: {e}; give the job `permissions: attestations: write` to store it there (the push and its signed referrer stand)"
            );
            None
        }
    }
}
