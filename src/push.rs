//! The push use case: locate, validate, describe, upload, tag, then attach the provenance. No
//! tag moves until the manifest and every blob it references are stored and their digests
//! checked.

use std::path::PathBuf;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use tracing::{info, warn};

use crate::artifact::{self, Artifact, ArtifactInputs, Blob};
use crate::build::{self, BuildRecord};
use crate::context::{Clock, Env, GithubContext, SystemClock};
use crate::error::{Error, Result};
use crate::github::{self, RepoMetadata};
use crate::locate::locate;
use crate::provenance::annotations;
use crate::provenance::dsse::{self, SigningKey};
use crate::provenance::levels::UserAnnotations;
use crate::provenance::referrer::{self, Payload, Referrer};
use crate::provenance::slsa::{self, BuildDetails};
use crate::reference::{Destination, Digest, Tag};
use crate::registry::layout::Layout;
use crate::registry::{
    Gate, Hashed, ManifestRef, WriteTarget, confirm_stored, hash_done, put_manifest_checked,
    store_blob,
};
use crate::report::{Keyless as KeylessOutcome, PushOutcome, Signing};
use crate::request::{PushRequest, WasmSource};
use crate::sbom::Sbom;
use crate::sigstore::Keyless;
use crate::wasm::metadata::EmbeddedMetadata;
use crate::wasm::{self, Validated, WasmFile};
use tokio::task::JoinHandle;

mod fanout;

/// A span that the action front door shows as a collapsible `::group::`.
pub fn phase(name: &'static str) -> tracing::Span {
    tracing::info_span!("phase", name)
}

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
    let user_annotations = user_annotations(request, env)?;
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
        user_annotations: &user_annotations,
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
    crate::ghcr::check_packages(request, &ctx, &registries).await;
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

/// Stores the keyless bundle in the repository's GitHub attestations, when the push went to a
/// registry and a token and repository are known; a refusal (no `attestations: write`) is a
/// warning and the push stands.
async fn store_attestation(
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

/// What tells that a file was rewritten: its size, modification time and inode.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Stamp {
    len: u64,
    modified: Option<std::time::SystemTime>,
    inode: u64,
}

impl Stamp {
    fn of(path: &std::path::Path) -> Result<Self> {
        let meta = std::fs::metadata(path).map_err(|e| Error::io("read", path, e))?;
        #[cfg(unix)]
        let inode = std::os::unix::fs::MetadataExt::ino(&meta);
        #[cfg(not(unix))]
        let inode = 0;
        Ok(Stamp {
            len: meta.len(),
            modified: meta.modified().ok(),
            inode,
        })
    }
}

/// Whether the file at `path` changed since `stamp` was taken, or since it was hashed: when
/// the registry refused the upload's digest (`DIGEST_INVALID`), the file is hashed again, in
/// case it was rewritten with its size and time kept.
fn changed(
    path: &std::path::Path,
    stamp: &Stamp,
    hashed: Option<&Digest>,
    upload: Option<&Error>,
) -> bool {
    if Stamp::of(path).ok().as_ref() != Some(stamp) {
        return true;
    }
    let refused_digest = upload.is_some_and(|e| e.to_string().contains("DIGEST_INVALID"));
    match hashed {
        Some(digest) if refused_digest => {
            wasm::digest_file(path).map_or(true, |(now, _)| &now != digest)
        }
        _ => false,
    }
}

/// What the artifact is described from, besides the file.
#[derive(Clone, Copy)]
struct Facts<'a> {
    request: &'a PushRequest,
    /// The `annotations` input, or metadata-action's environment variables when it is empty.
    user_annotations: &'a UserAnnotations,
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

/// When the artifact is said to be created: `SOURCE_DATE_EPOCH`, else the commit time (event
/// payload, `git`, or the GitHub API), else (and only then) the clock, with a warning that the
/// digest will not repeat.
async fn created(
    request: &PushRequest,
    env: &Env,
    ctx: &GithubContext,
    clock: &dyn Clock,
) -> Result<DateTime<Utc>> {
    if let Some(t) = ctx
        .created()
        .map_err(|e| Error::input("SOURCE_DATE_EPOCH", e))?
    {
        return Ok(t);
    }
    if let Some(t) =
        crate::child::git_commit_time(&request.working_directory, ctx.sha.as_deref(), env)
    {
        return Ok(t);
    }
    if let (Some(token), Some(repository), Some(sha)) = (
        request.connection.given.github_token(),
        &ctx.repository,
        &ctx.sha,
    ) {
        let api = ctx.api_url.as_deref().unwrap_or("https://api.github.com");
        match github::commit_time(api, repository, sha, token, github::TIMEOUT).await {
            Ok(Some(t)) => {
                info!("`created` is the time of commit {sha}, from the GitHub API");
                return Ok(t);
            }
            Ok(None) => {}
            Err(e) => warn!("cannot read commit {sha} from the GitHub API at {api}: {e}"),
        }
    }
    warn!(
        "no SOURCE_DATE_EPOCH or commit time (event payload, git, GitHub API): `created` is now, so the digest will differ between runs"
    );
    Ok(clock.now())
}

/// The repository's description, license and URL from the GitHub API, when a token is given;
/// any failure is a warning and leaves them out.
async fn repository_metadata(request: &PushRequest, ctx: &GithubContext) -> RepoMetadata {
    let (Some(token), Some(repository)) =
        (request.connection.given.github_token(), &ctx.repository)
    else {
        return RepoMetadata::default();
    };
    let api = ctx.api_url.as_deref().unwrap_or("https://api.github.com");
    match github::repository_metadata(api, repository, token, github::TIMEOUT).await {
        Ok(meta) => {
            info!("read {repository}'s description, license and URL from {api}");
            meta
        }
        Err(e) => {
            warn!(
                "cannot read repository {repository} from the GitHub API at {api}: {e}; the description, licenses and url annotations are left out"
            );
            RepoMetadata::default()
        }
    }
}

/// Builds the artifact's config and manifest from the request, the context and what the
/// module's metadata sections say.
fn describe(facts: &Facts<'_>, wasm: &WasmFile, embedded: &EmbeddedMetadata) -> Artifact {
    let version = facts
        .all_tags
        .iter()
        .find(|t| t.as_str() != "latest" && !t.as_str().starts_with("sha-"))
        .or(facts.all_tags.first())
        .map(Tag::as_str);
    // A version is the tags given, or a git tag's; a branch or pull request name is none, so
    // the module's own `version` section comes before it.
    let from_git_tag = facts
        .ctx
        .git_ref
        .as_deref()
        .is_some_and(|r| r.starts_with("refs/tags/"));
    let version = match version {
        Some(_) if facts.request.tags.is_empty() && !from_git_tag && embedded.version.is_some() => {
            None
        }
        v => v,
    };
    let placed = facts
        .user_annotations
        .place(wasm.kind.os(), artifact::ARCHITECTURE);
    for notice in &placed.notices {
        info!(target: crate::NOTICE, "{notice}");
    }
    let file_stem = wasm
        .path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let title = facts
        .ctx
        .repository_name()
        .map(str::to_owned)
        .unwrap_or(file_stem);
    let manifest_annotations = annotations::manifest_annotations(
        facts.ctx,
        facts.created,
        version,
        &title,
        facts.repo,
        embedded,
        &placed.manifest,
    );
    artifact::build(
        wasm,
        ArtifactInputs {
            format: facts.request.format,
            created: &annotations::rfc3339(facts.created),
            author: facts.ctx.repository_owner.as_deref(),
            annotations: manifest_annotations,
        },
    )
}

/// The `annotations` input; when it is empty, what docker/metadata-action exported for later
/// steps (`DOCKER_METADATA_OUTPUT_ANNOTATIONS`, else `DOCKER_METADATA_OUTPUT_JSON`).
fn user_annotations(request: &PushRequest, env: &Env) -> Result<UserAnnotations> {
    if !request.annotations.is_empty() {
        return Ok(request.annotations.clone());
    }
    match UserAnnotations::from_env(env).map_err(|e| Error::input("annotations", e))? {
        Some((annotations, var)) => {
            info!("annotations: the input is empty; using {var} from docker/metadata-action");
            Ok(annotations)
        }
        None => Ok(UserAnnotations::default()),
    }
}

/// The capability gate: every import of the component must match `allowed-imports`. A core
/// module's imports are not component interfaces, so the policy cannot hold for one.
fn check_imports(
    allowed: &crate::wasm::policy::AllowedImports,
    path: &std::path::Path,
    validated: &Validated,
) -> Result<()> {
    let refuse = |reason: String| {
        Err(Error::input(
            "allowed-imports",
            format!("{}: {reason}", path.display()),
        ))
    };
    let Some(component) = &validated.component else {
        return refuse(
            "is a core module, whose imports are not component interfaces; drop `allowed-imports` or push a component".to_owned(),
        );
    };
    let outside = allowed.outside(&component.imports);
    if !outside.is_empty() {
        return refuse(allowed.refusal(&outside));
    }
    info!(
        "{} imports only what allowed-imports allows ({} imports)",
        path.display(),
        component.imports.len()
    );
    Ok(())
}

/// The module's metadata sections; a section `wasm-metadata` cannot read (a `licenses` that is
/// no SPDX expression, a `source` that is no URL) is a warning, and none are used.
async fn read_embedded(path: PathBuf) -> EmbeddedMetadata {
    let read = tokio::task::spawn_blocking(move || {
        let read = EmbeddedMetadata::read(&path);
        (path, read)
    })
    .await
    .expect("reading metadata does not panic");
    match read {
        (_, Ok(embedded)) => {
            if !embedded.is_empty() {
                info!(
                    "metadata sections: {}",
                    serde_json::to_string(&embedded).unwrap_or_default()
                );
            }
            embedded
        }
        (path, Err(e)) => {
            warn!(
                "cannot read the metadata sections of {}: {e}; no annotations are taken from them",
                path.display()
            );
            EmbeddedMetadata::default()
        }
    }
}

/// The provenance of the artifact's manifest: the statement's referrer (a DSSE envelope when a
/// key is given), and the Sigstore bundle referrers (keyless, and the key's envelope).
#[derive(Clone)]
struct Provenance {
    referrer: Referrer,
    bundles: Vec<Referrer>,
    signing: Signing,
    keyless_bundle: Option<Vec<u8>>,
}

impl Provenance {
    /// One referrer per claim: signed, the bundles carry the statement, and no unsigned copy
    /// of it goes beside them (a verify takes none as evidence, and each referrer counts
    /// against a policy engine's limit on a subject's referrers).
    fn referrers(&self) -> Vec<&Referrer> {
        let unsigned = self.referrer.layer.media_type == referrer::STATEMENT_MEDIA_TYPE;
        let statement = (!unsigned || self.bundles.is_empty()).then_some(&self.referrer);
        statement.into_iter().chain(self.bundles.iter()).collect()
    }
}

/// The provenance, made by the first registry's delivery and taken as it is by the others: one
/// statement, one signature, attached in each.
async fn provenance_once(
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
            let key =
                SigningKey::from_pem(pem.expose()).map_err(|e| Error::input("signing-key", e))?;
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
async fn sbom_once(
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
    let (image, wasm_name) = (facts.request.destination.to_string(), wasm.file_name());
    let context = crate::sbom::Context {
        subject: artifact.manifest.descriptor(),
        subjects: slsa::Subjects {
            image: &image,
            manifest: &artifact.manifest.digest,
            wasm_name: &wasm_name,
            wasm: &wasm.digest,
        },
        created: &annotations::rfc3339(facts.created),
        keyless: facts.keyless,
    };
    crate::sbom::for_push(facts.request, build, context).await
}

/// Uploads the layer as soon as it is hashed, while validation ends. Once validation has
/// passed and the provenance is made, the push goes two ways at once:
/// - the subject: the config beside the layer, then the manifest, then the tags;
/// - the referrers (provenance, signatures, SBOM): their blobs, their manifests, then their
///   listing in the referrers fallback tag, read back as [`referrer::publish`] does.
///
/// A referrer needs only its own blobs (OCI lets it be stored before its subject), so the
/// referrers' manifests are stored while a large layer still uploads; their listing waits for
/// the subject's manifest, so a push that fails lists nothing. Each step goes only after
/// everything it refers to is stored, and requests that do not wait on each other go out at
/// once: a push costs a few round trips, not one per request.
async fn deliver<T: WriteTarget>(target: &T, work: Work, facts: &Facts<'_>) -> Result<Delivered> {
    let Work {
        phase: validate_phase,
        path,
        hashed,
        validating,
        stamp,
        build,
    } = work;

    let (keeper, gate) = crate::registry::gate();
    // The referrers, handed to their side of the push once the provenance is made; a push that
    // fails before then hands nothing over, and that side has nothing to do.
    let (hand_over, handed) = tokio::sync::oneshot::channel::<(Vec<Referrer>, Digest)>();
    // The fallback tag moves only once the subject is stored: a push that fails before then
    // lists nothing. A target where nothing costs a round trip (a layout) loses nothing by
    // waiting for the tags too, and its index then lists the artifact before its referrers.
    let (may_list, listing_allowed) = tokio::sync::oneshot::channel::<()>();
    let described = async {
        let validated = validating.await.expect("validation does not panic")?;
        keeper.settle(true);
        let (digest, size) = hash_done(&hashed).await?;
        let wasm = WasmFile::new(path.clone(), (digest, size), validated);
        info!(
            "{} is a valid {} ({} bytes, {})",
            wasm.path.display(),
            match wasm.kind {
                wasm::WasmKind::Module => "core module",
                wasm::WasmKind::Component => "component",
            },
            wasm.size,
            wasm.digest
        );
        let embedded = read_embedded(path.clone()).await;
        let artifact = describe(facts, &wasm, &embedded);
        info!(
            "manifest {} with tags {}",
            artifact.manifest.digest,
            facts
                .tags
                .iter()
                .map(Tag::as_str)
                .collect::<Vec<_>>()
                .join(", ")
        );
        // Build mode hands its record of the build here; a located file has none.
        let built = build.as_ref().map(BuildRecord::provenance);
        let provenance = match facts.request.provenance {
            true => Some(provenance_once(facts, &wasm, &artifact, built).await?),
            false => None,
        };
        let sbom = sbom_once(facts, &wasm, &artifact, build.as_ref()).await?;
        let referrers: Vec<Referrer> = provenance
            .iter()
            .flat_map(Provenance::referrers)
            .chain(sbom.iter().flat_map(Sbom::referrers))
            .cloned()
            .collect();
        // The receiving side is only gone when the push already failed.
        let _ = hand_over.send((referrers, artifact.manifest.digest.clone()));
        let config_uploaded = store_blob(target, &artifact.config).await?;
        let sbom = sbom.and_then(|s| s.referrers().next().map(|r| r.manifest.digest.clone()));
        Ok::<_, Error>((wasm, embedded, artifact, provenance, sbom, config_uploaded))
    };
    let subject = async {
        let (layer_uploaded, described) = tokio::join!(
            upload_layer(target, facts, &path, hashed.clone(), &gate),
            described
        );
        // Validation, the hash and the upload each read the file (validation passes over large
        // payloads unread), and the registry checks the upload against the hash. A file
        // rewritten since the push began is the error to report: what was validated may not be
        // what the registry holds. Nothing is tagged.
        let digest = hash_done(&hashed).await.ok().map(|(digest, _)| digest);
        if changed(
            &path,
            &stamp,
            digest.as_ref(),
            layer_uploaded.as_ref().err(),
        ) {
            return Err(Error::FileChanged { path: path.clone() });
        }
        // A bad file is the error to report, whatever else failed.
        let (wasm, embedded, artifact, provenance, sbom, config_uploaded) = described?;
        let layer_uploaded = layer_uploaded?;
        let layer = artifact::layer(
            facts.request.format,
            &wasm.digest,
            wasm.size,
            wasm::file_name(&path),
        );
        let (mut uploaded, mut reused) = (Vec::new(), Vec::new());
        for (digest, was_uploaded) in [
            (&layer.digest, layer_uploaded),
            // Sent to a registry unasked, in one request, as asking whether it is there would be.
            (&artifact.config.digest, config_uploaded),
        ] {
            if was_uploaded {
                uploaded.push(digest.clone());
            } else {
                reused.push(digest.clone());
            }
        }
        drop(validate_phase);
        let _phase = phase("Manifest, tags and provenance");
        // The tags refer only to what is stored.
        put_manifest(target, &artifact).await?;
        let tags = put_tags(target, &artifact, facts.tags);
        if target.asks_for_free() {
            tags.await?;
            let _ = may_list.send(());
        } else {
            let _ = may_list.send(());
            tags.await?;
        }
        let (provenance, signing, keyless_bundle) = match provenance {
            Some(p) => (
                p.referrers().first().map(|r| r.manifest.digest.clone()),
                p.signing,
                p.keyless_bundle,
            ),
            None => (None, Signing::default(), None),
        };
        Ok(Delivered {
            artifact,
            wasm,
            embedded,
            build: build.clone(),
            uploaded,
            reused,
            provenance,
            sbom,
            signing,
            keyless_bundle,
        })
    };
    let referred = async {
        let Ok((referrers, subject)) = handed.await else {
            return Ok(());
        };
        attach(target, &referrers, &subject, listing_allowed).await
    };
    // Either side failing stops the other: no tag moves, no listing is written, once the push
    // has failed.
    let (delivered, ()) = tokio::try_join!(subject, referred)?;
    Ok(delivered)
}

/// The referrers' side of a push: their blobs, and beside them the one question whose answer
/// they do not change (whether the registry lists referrers itself); then their manifests,
/// with the fallback tag read beside them; then, where the registry does not list them and
/// once `listing_allowed` says the subject is stored, the fallback tag written and read back.
async fn attach<T: WriteTarget>(
    target: &T,
    referrers: &[Referrer],
    subject: &Digest,
    listing_allowed: tokio::sync::oneshot::Receiver<()>,
) -> Result<()> {
    if referrers.is_empty() {
        return Ok(());
    }
    let mut blobs: Vec<&Blob> = Vec::new();
    for referrer in referrers {
        for blob in [&referrer.config, &referrer.layer] {
            if !blobs.iter().any(|b| b.digest == blob.digest) {
                blobs.push(blob);
            }
        }
    }
    let stored =
        futures_util::future::try_join_all(blobs.into_iter().map(|blob| store_blob(target, blob)));
    let (stored, api) = tokio::join!(stored, referrer::referrers_api(target, subject));
    stored?;
    let referrers: Vec<&Referrer> = referrers.iter().collect();
    let listing = referrer::store_all(target, &referrers, subject, api?).await?;
    if listing_allowed.await.is_err() {
        // The subject's side failed, and says why.
        return Ok(());
    }
    referrer::publish(target, &listing).await
}

/// How long the layer's upload waits for validation to end before it starts anyway.
const UPLOAD_GRACE: std::time::Duration = std::time::Duration::from_millis(250);

/// The largest layer sent in one request without asking first whether the target has it: below
/// this, sending it again takes about the round trip the question would.
const SMALL_LAYER: u64 = 256 << 10;

/// The most tags whose manifests are read to tell a re-push from a new push.
const TAGS_COMPARED: usize = 8;

/// Uploads the layer unless the target has it (a small one is sent without asking); true when
/// it was uploaded. Its commit waits for `gate`.
///
/// A new file streams out while it is still being hashed, so the upload costs what sending the
/// bytes costs; the digest only commits it. But an unchanged file must send nothing, and only
/// its digest can tell the registry has it. So unless the registry plainly does not hold a
/// layer of this size (none of the manifests under the tags pushed, `latest`, or the
/// repository's last tags lists one), the upload waits for the hash and asks first. If the
/// hash ends before that question is answered, it is asked anyway.
async fn upload_layer<T: WriteTarget>(
    target: &T,
    facts: &Facts<'_>,
    path: &std::path::Path,
    hashed: Hashed,
    gate: &Gate,
) -> Result<bool> {
    let size = std::fs::metadata(path)
        .map_err(|e| Error::io("read", path, e))?
        .len();
    if size <= SMALL_LAYER {
        return upload_small(target, facts, path, &hashed, gate).await;
    }
    let media_type = facts.request.format.layer_media_type();
    let stream = target.uploads_while_hashing() && {
        tokio::select! {
            biased;
            _ = hashed.clone() => false,
            seen = size_seen(target, facts.tags, size) => !seen,
        }
    };
    if !stream {
        return upload_hashed(target, facts, path, size, &hashed, gate).await;
    }
    // Sent while hashing; when the digest shows the registry had it after all, the upload
    // stops and nothing is committed.
    info!("uploading layer ({size} bytes) while hashing it");
    let upload = async {
        grace(gate, &hashed).await?;
        target
            .put_blob_file_hashing(media_type, path, size, gate, hashed.clone())
            .await
    };
    let stored = async {
        let digest = hash_done(&hashed).await?.0;
        target.has_blob(&digest).await
    };
    tokio::pin!(upload, stored);
    let uploaded = tokio::select! {
        uploaded = &mut upload => uploaded,
        found = &mut stored => match found {
            Ok(true) => {
                let digest = hash_done(&hashed).await?.0;
                info!("layer {digest} is already stored; its upload stopped");
                return Ok(false);
            }
            // Not there, or not known: the upload decides.
            _ => upload.await,
        },
    };
    let digest = match uploaded {
        Ok(digest) => digest,
        // A registry that refuses an upload in one PATCH takes it in one PUT.
        Err(e @ Error::Registry { .. }) => {
            warn!("{e}; uploading the layer in one request instead");
            return upload_hashed(target, facts, path, size, &hashed, gate).await;
        }
        Err(e) => return Err(e),
    };
    info!("uploaded layer {digest}");
    confirm_stored(target, &digest).await?;
    Ok(true)
}

/// A small layer in one request, once validation passed, without asking first whether the
/// target has it: asking costs the round trip that sending does. The target checks its digest;
/// bytes that are not what was hashed were rewritten meanwhile.
async fn upload_small<T: WriteTarget>(
    target: &T,
    facts: &Facts<'_>,
    path: &std::path::Path,
    hashed: &Hashed,
    gate: &Gate,
) -> Result<bool> {
    let digest = hash_done(hashed).await?.0;
    if !gate.opened().await {
        return Err(Error::HeldBack { digest });
    }
    let bytes = std::fs::read(path).map_err(|e| Error::io("read", path, e))?;
    let blob = Blob::new(facts.request.format.layer_media_type(), bytes);
    if blob.digest != digest {
        return Err(Error::FileChanged {
            path: path.to_owned(),
        });
    }
    info!(
        "uploading layer {digest} ({} bytes) in one request",
        blob.bytes.len()
    );
    target.put_blob(&blob).await?;
    Ok(true)
}

/// Hashes first, then uploads the layer unless the target has it; true when it was uploaded.
async fn upload_hashed<T: WriteTarget>(
    target: &T,
    facts: &Facts<'_>,
    path: &std::path::Path,
    size: u64,
    hashed: &Hashed,
    gate: &Gate,
) -> Result<bool> {
    let digest = hash_done(hashed).await?.0;
    if target.has_blob(&digest).await? {
        info!("layer {digest} is already stored; not uploading it again");
        return Ok(false);
    }
    grace(gate, hashed).await?;
    info!("uploading layer {digest} ({size} bytes)");
    let layer = artifact::layer(facts.request.format, &digest, size, wasm::file_name(path));
    target.put_blob_file(&layer, path, gate).await?;
    confirm_stored(target, &digest).await?;
    Ok(true)
}

/// Waits up to [`UPLOAD_GRACE`] for validation: most files are validated by then (a data
/// segment is passed over, not read), and an invalid one then fails before any byte is sent.
/// Only a long validation (many function bodies) runs on while the upload goes, and then it
/// holds back the commit.
async fn grace(gate: &Gate, hashed: &Hashed) -> Result<()> {
    if tokio::time::timeout(UPLOAD_GRACE, gate.opened()).await == Ok(false) {
        let digest = hash_done(hashed).await?.0;
        return Err(Error::HeldBack { digest });
    }
    Ok(())
}

/// Whether the registry holds a layer of `size` bytes under the tags pushed, `latest`, or the
/// repository's last few tags: then the push is likely a re-push. Any failure to tell counts
/// as seen, which costs only the wait for the hash.
async fn size_seen<T: WriteTarget>(target: &T, pushed: &[Tag], size: u64) -> bool {
    let Ok(listed) = target.tags().await else {
        return true;
    };
    let mut candidates: Vec<Tag> = Vec::new();
    for tag in pushed
        .iter()
        .chain(listed.iter().filter(|t| t.as_str() == "latest"))
    {
        if listed.contains(tag) && !candidates.contains(tag) {
            candidates.push(tag.clone());
        }
    }
    let others: Vec<Tag> = listed
        .iter()
        .rev()
        .filter(|t| !t.as_str().starts_with("sha256-") && !candidates.contains(t))
        .take(TAGS_COMPARED.saturating_sub(candidates.len()))
        .cloned()
        .collect();
    candidates.extend(others);
    let manifests = futures_util::future::join_all(
        candidates
            .into_iter()
            .map(|tag| async move { target.get_manifest(&ManifestRef::Tag(tag)).await }),
    )
    .await;
    manifests.into_iter().any(|manifest| match manifest {
        Ok(Some(blob)) => serde_json::from_slice::<artifact::Manifest>(&blob.bytes)
            .map_or(true, |m| m.layers.iter().any(|l| l.size == size)),
        Ok(None) => false,
        Err(_) => true,
    })
}

/// Puts the manifest by digest and checks the digest the target reports: the tags follow.
async fn put_manifest<T: WriteTarget>(target: &T, artifact: &Artifact) -> Result<()> {
    let local = &artifact.manifest.digest;
    put_manifest_checked(
        target,
        &artifact.manifest,
        &ManifestRef::Digest(local.clone()),
        "the manifest",
    )
    .await?;
    info!("manifest {local} stored");
    Ok(())
}

/// Puts every tag at once, once the manifest is stored by digest.
async fn put_tags<T: WriteTarget>(target: &T, artifact: &Artifact, tags: &[Tag]) -> Result<()> {
    futures_util::future::try_join_all(tags.iter().map(|tag| async move {
        put_manifest_checked(
            target,
            &artifact.manifest,
            &ManifestRef::Tag(tag.clone()),
            &format!("tag `{tag}`"),
        )
        .await?;
        info!("tagged {tag}");
        Ok::<_, Error>(())
    }))
    .await?;
    Ok(())
}
