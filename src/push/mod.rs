//! The push use case: locate or build the file, validate it, describe it, upload it, tag it,
//! then attach the provenance and the SBOM. No tag moves until the manifest and every blob it
//! references are stored and their digests checked. Each part is a file of this folder:
//! [`request`] what the user asked, [`describe`] the artifact's config and manifest,
//! [`upload`] the order of writes to one target (blobs, manifest, tags, referrers, and the guess
//! whether this is a re-push), [`provenance`] the provenance, its signatures, the SBOM
//! ([`sbom`]) and the GitHub attestation, [`fanout`] several registries, [`ghcr`] the check of a
//! ghcr.io package after the push, and [`report`] what the push reports.

use std::path::PathBuf;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use tracing::info;

use crate::artifact::Artifact;
use crate::build::{self, BuildRecord};
use crate::context::{Clock, Env, GithubContext, SystemClock};
use crate::error::{Error, Result};
use crate::github::RepoMetadata;
use crate::locate::locate;
use crate::phase;
use crate::reference::{Destination, Digest, Tag};
use crate::registry::Hashed;
use crate::registry::layout::Layout;
use crate::sigstore::Keyless;
use crate::wasm::metadata::EmbeddedMetadata;
use crate::wasm::{self, Validated, WasmFile};
use tokio::task::JoinHandle;

mod describe;
mod fanout;
pub mod ghcr;
mod provenance;
pub mod report;
pub mod request;
pub mod sbom;
mod upload;

use self::describe::{check_imports, created, repository_metadata};
use self::provenance::{Provenance, store_attestation};
pub use self::report::PushOutcome;
use self::report::Signing;
pub use self::request::{PushRequest, WasmSource};
use self::sbom::Sbom;
use self::upload::{Stamp, deliver};

/// Runs a push.
pub async fn push(request: &PushRequest, env: &Env) -> Result<PushOutcome> {
    push_with_clock(request, env, &SystemClock).await
}

/// Runs a push, taking "now" from `clock`, which is read only when neither
/// `SOURCE_DATE_EPOCH` nor a commit time is known.
///
/// The file is hashed and validated on threads of their own while the registry is reached;
/// once the hash is known the layer uploads, still while validation runs, and is committed
/// only when validation passed. So a push costs about what sending the bytes costs.
pub async fn push_with_clock(
    request: &PushRequest,
    env: &Env,
    clock: &dyn Clock,
) -> Result<PushOutcome> {
    let ctx = GithubContext::from_env(env);
    // Whether keyless signing can happen is known before anything is built or pushed.
    let keyless = crate::sigstore::plan(
        request.sign,
        request.provenance,
        request.dry_run,
        request.sigstore_trust_config.as_ref(),
        request.connection.insecure,
        env,
        &ctx,
    )?;

    let (path, build) = obtain(request, env).await?;
    // What is plainly not Wasm fails here, before anything else starts.
    wasm::check_header(&path)?;
    // Taken before the file is first read: any rewrite after it shows at the end.
    let stamp = Stamp::of(&path)?;
    let phase = phase("Validate and upload");
    let hashed = hash_file(path.clone());
    let mut validating = spawn_blocking_named(path.clone(), wasm::validate_file);
    if let Some(allowed) = &request.allowed_imports {
        // The policy holds before any byte is sent: validation (which reads the imports)
        // ends first.
        let validated = validating.await.expect("validation does not panic")?;
        check_imports(allowed, &path, &validated)?;
        validating = tokio::spawn(async move { Ok(validated) });
    }
    let work = Work {
        phase,
        hashed,
        validating,
        stamp,
        path,
        build,
    };
    // Each registry's tags (those derived from the git ref where none are named), and all of them.
    let (targets, tags) = fanout::tags(request, &ctx)?;
    let created = created(request, env, &ctx, clock).await?;
    let repo = repository_metadata(request, &ctx).await;
    let signed = tokio::sync::OnceCell::new();
    let sbom_signed = tokio::sync::OnceCell::new();
    let facts = Facts {
        request,
        ctx: &ctx,
        tags: &tags,
        all_tags: &tags,
        created: &created,
        repo: &repo,
        keyless: keyless.as_ref(),
        provenance: &signed,
        sbom: &sbom_signed,
    };

    let mut registries = Vec::new();
    let delivered = match &request.destination {
        Destination::Registry(_) if !request.dry_run => {
            let (delivered, reached) = fanout::deliver_all(env, work, &facts, &targets).await?;
            registries = reached;
            delivered
        }
        Destination::Registry(image) => {
            let dir = &request.dry_run_layout;
            info!(
                "dry run: writing to the OCI layout {} instead of {image}",
                dir.display()
            );
            deliver(&Layout::create(dir)?, work, &facts).await?
        }
        Destination::Layout(dir) => deliver(&Layout::create(dir)?, work, &facts).await?,
    };
    let artifact = delivered.artifact;
    let mut signing = delivered.signing;
    if let Some(bundle) = &delivered.keyless_bundle {
        signing.attestation = store_attestation(request, &ctx, bundle).await;
    }
    ghcr::check_packages(request.connection.given.github_token(), &ctx, &registries).await;
    Ok(PushOutcome {
        destination: request.destination.clone(),
        digest: artifact.manifest.digest,
        tags,
        wasm: delivered.wasm,
        format: request.format,
        config_digest: artifact.config.digest,
        annotations: artifact.annotations,
        embedded: delivered.embedded,
        uploaded: delivered.uploaded,
        reused: delivered.reused,
        dry_run: request.dry_run,
        layout: match &request.destination {
            Destination::Layout(dir) => Some(dir.clone()),
            Destination::Registry(_) if request.dry_run => Some(request.dry_run_layout.clone()),
            Destination::Registry(_) => None,
        },
        provenance: delivered.provenance,
        sbom: delivered.sbom,
        build: delivered.build,
        signing,
        registries,
    })
}

/// The file being pushed, with its hashing and validation under way.
struct Work {
    /// The log group of this step, closed when the layer is stored.
    phase: tracing::Span,
    path: PathBuf,
    hashed: Hashed,
    validating: JoinHandle<Result<Validated>>,
    /// The file as it was before it was read.
    stamp: Stamp,
    build: Option<BuildRecord>,
}

/// What the artifact is described from, besides the file.
#[derive(Clone, Copy)]
struct Facts<'a> {
    request: &'a PushRequest,
    ctx: &'a GithubContext,
    /// The tags of the registry being delivered to.
    tags: &'a [Tag],
    /// Every registry's tags: the artifact, the same everywhere, is described from them.
    all_tags: &'a [Tag],
    created: &'a DateTime<Utc>,
    repo: &'a RepoMetadata,
    /// Keyless signing's services and token endpoint, when the provenance is signed keylessly.
    keyless: Option<&'a Keyless>,
    /// The provenance, made (and signed) once for every registry.
    provenance: &'a tokio::sync::OnceCell<std::result::Result<Provenance, Arc<Error>>>,
    /// The SBOM, made (and signed) once for every registry, as the provenance is.
    sbom: &'a tokio::sync::OnceCell<std::result::Result<Option<Sbom>, Arc<Error>>>,
}

/// What a push stored.
struct Delivered {
    artifact: Artifact,
    wasm: WasmFile,
    /// What the module's metadata sections say.
    embedded: EmbeddedMetadata,
    build: Option<BuildRecord>,
    uploaded: Vec<Digest>,
    reused: Vec<Digest>,
    provenance: Option<Digest>,
    sbom: Option<Digest>,
    signing: Signing,
    /// The keyless bundle's JSON, for GitHub's attestation store.
    keyless_bundle: Option<Vec<u8>>,
}

/// Hashes the file on a thread of its own; the upload and the description both wait on it.
fn hash_file(path: PathBuf) -> Hashed {
    use futures_util::FutureExt;
    spawn_blocking_named(path, wasm::digest_file)
        .map(|joined| joined.expect("hashing does not panic").map_err(Arc::new))
        .boxed()
        .shared()
}

fn spawn_blocking_named<T: Send + 'static>(
    path: PathBuf,
    f: fn(&std::path::Path) -> Result<T>,
) -> JoinHandle<Result<T>> {
    tokio::task::spawn_blocking(move || f(&path))
}

/// The `.wasm` to push: located on disk, or built by cargo (with the record of the build).
async fn obtain(request: &PushRequest, env: &Env) -> Result<(PathBuf, Option<BuildRecord>)> {
    match &request.source {
        WasmSource::Path(pattern) => Ok((locate(&request.working_directory, pattern)?, None)),
        WasmSource::Build(spec) => {
            let span = phase("Build");
            let (spec, env) = (spec.clone(), env.clone());
            let built =
                tokio::task::spawn_blocking(move || span.in_scope(|| build::build(&spec, &env)))
                    .await
                    .expect("the build does not panic")?;
            Ok((built.wasm, Some(built.record)))
        }
    }
}
