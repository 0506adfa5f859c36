//! The push use case: locate, validate, describe, upload, tag, then attach the provenance. No
//! tag moves until the manifest and every blob it references are stored and their digests
//! checked.

use std::path::PathBuf;

use chrono::{DateTime, Utc};
use tracing::{info, warn};

use crate::artifact::{self, Artifact, ArtifactInputs};
use crate::build::{self, BuildRecord};
use crate::context::{Clock, Env, GithubContext, SystemClock};
use crate::error::{Error, Result};
use crate::github::{self, RepoMetadata};
use crate::locate::locate;
use crate::provenance::dsse::{self, SigningKey};
use crate::provenance::referrer::{self, Payload, Referrer};
use crate::provenance::slsa::{self, BuildProvenance};
use crate::provenance::{annotations, tags};
use crate::reference::{Destination, Digest, Tag};
use crate::registry::layout::Layout;
use crate::registry::remote::{Connection, Remote};
use crate::registry::{ManifestRef, Target, confirm_stored, put_manifest_checked};
use crate::report::PushOutcome;
use crate::request::{PushRequest, WasmSource};
use crate::wasm::{self, WasmFile};

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
pub async fn push_with_clock(
    request: &PushRequest,
    env: &Env,
    clock: &dyn Clock,
) -> Result<PushOutcome> {
    let ctx = GithubContext::from_env(env);

    let (path, build) = obtain(request, env).await?;
    let wasm = {
        let _phase = phase("Validate");
        let wasm = tokio::task::spawn_blocking(move || wasm::inspect(&path))
            .await
            .expect("validation does not panic")?;
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
        wasm
    };

    let (artifact, tags, referrer) = {
        let _phase = phase("Describe");
        let tags = if request.tags.is_empty() {
            tags::from_git_ref(&ctx).map_err(|e| Error::input("tags", e))?
        } else {
            request.tags.clone()
        };
        let created = created(request, &ctx, clock).await?;
        let repo = repository_metadata(request, &ctx).await;
        let artifact = describe(request, &ctx, &wasm, &tags, &created, &repo);
        info!(
            "manifest {} with tags {}",
            artifact.manifest.digest,
            tags.iter().map(Tag::as_str).collect::<Vec<_>>().join(", ")
        );
        // Build mode hands its record of the build here; a located file has none.
        let built: Option<&dyn BuildProvenance> = build.as_ref().map(|b| b as _);
        let referrer = request
            .provenance
            .then(|| provenance(request, &ctx, &wasm, &artifact, &created, built))
            .transpose()?;
        (artifact, tags, referrer)
    };

    let (uploaded, reused, provenance_digest) = match &request.destination {
        Destination::Registry(image) if !request.dry_run => {
            let remote = Remote::new(
                image.clone(),
                &Connection {
                    insecure: request.insecure,
                    ca_file: request.ca_file.clone(),
                    credentials: request.credentials.clone(),
                    username: request.username.clone(),
                    github_token: request.github_token.clone(),
                    env: env.clone(),
                },
            )?;
            remote.login().await?;
            deliver(&remote, &artifact, &wasm, &tags, referrer.as_ref()).await?
        }
        Destination::Registry(image) => {
            let dir = std::env::temp_dir().join(format!(
                "wasm-oci-dry-run-{}",
                image.repository().replace('/', "-")
            ));
            info!(
                "dry run: writing to the OCI layout {} instead of {image}",
                dir.display()
            );
            deliver(
                &Layout::create(&dir)?,
                &artifact,
                &wasm,
                &tags,
                referrer.as_ref(),
            )
            .await?
        }
        Destination::Layout(dir) => {
            deliver(
                &Layout::create(dir)?,
                &artifact,
                &wasm,
                &tags,
                referrer.as_ref(),
            )
            .await?
        }
    };

    Ok(PushOutcome {
        destination: request.destination.clone(),
        digest: artifact.manifest.digest.clone(),
        tags,
        wasm,
        format: request.format,
        config_digest: artifact.config.digest.clone(),
        annotations: artifact.annotations.clone(),
        uploaded,
        reused,
        dry_run: request.dry_run,
        provenance: provenance_digest,
        build,
    })
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
    ctx: &GithubContext,
    clock: &dyn Clock,
) -> Result<DateTime<Utc>> {
    if let Some(t) = ctx
        .created(&request.working_directory)
        .map_err(|e| Error::input("SOURCE_DATE_EPOCH", e))?
    {
        return Ok(t);
    }
    if let (Some(token), Some(repository), Some(sha)) =
        (&request.github_token, &ctx.repository, &ctx.sha)
    {
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
    let (Some(token), Some(repository)) = (&request.github_token, &ctx.repository) else {
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

/// Builds the artifact's config and manifest from the request and the context.
fn describe(
    request: &PushRequest,
    ctx: &GithubContext,
    wasm: &WasmFile,
    tags: &[Tag],
    created: &DateTime<Utc>,
    repo: &RepoMetadata,
) -> Artifact {
    let version = tags
        .iter()
        .find(|t| t.as_str() != "latest" && !t.as_str().starts_with("sha-"))
        .or(tags.first())
        .map(Tag::as_str);
    let file_stem = wasm
        .path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let title = ctx
        .repository_name()
        .map(str::to_owned)
        .unwrap_or(file_stem);
    let manifest_annotations = annotations::manifest_annotations(
        ctx,
        created,
        version,
        &title,
        repo,
        &request.annotations,
    );
    artifact::build(
        wasm,
        ArtifactInputs {
            format: request.format,
            created: &annotations::rfc3339(created),
            author: ctx.repository_owner.as_deref(),
            annotations: manifest_annotations,
        },
    )
}

/// The provenance referrer of the artifact's manifest, signed when a key is given.
fn provenance(
    request: &PushRequest,
    ctx: &GithubContext,
    wasm: &WasmFile,
    artifact: &Artifact,
    created: &DateTime<Utc>,
    build: Option<&dyn BuildProvenance>,
) -> Result<Referrer> {
    let image = request.destination.to_string();
    let statement = slsa::statement(
        ctx,
        &slsa::Subjects {
            image: &image,
            manifest: &artifact.manifest.digest,
            wasm_name: &wasm.file_name(),
            wasm: &wasm.digest,
        },
        build,
    )
    .to_bytes();
    let payload = match &request.signing_key {
        Some(pem) => {
            let key =
                SigningKey::from_pem(pem.expose()).map_err(|e| Error::input("signing-key", e))?;
            info!("signing the provenance with the {} key", key.algorithm());
            Payload::Envelope(dsse::sign(&statement, &key))
        }
        None => Payload::Statement(statement),
    };
    Ok(Referrer::new(
        artifact.manifest.descriptor(),
        payload,
        &annotations::rfc3339(created),
    ))
}

/// Uploads and tags the artifact, then attaches its provenance.
async fn deliver<T: Target>(
    target: &T,
    artifact: &Artifact,
    wasm: &WasmFile,
    tags: &[Tag],
    referrer: Option<&Referrer>,
) -> Result<(Vec<Digest>, Vec<Digest>, Option<Digest>)> {
    let (uploaded, reused) = upload(target, artifact, wasm, tags).await?;
    let Some(referrer) = referrer else {
        return Ok((uploaded, reused, None));
    };
    let _phase = phase("Provenance");
    referrer::attach(target, referrer, &artifact.manifest.digest).await?;
    Ok((uploaded, reused, Some(referrer.manifest.digest.clone())))
}

/// Uploads blobs the target lacks, confirms all are stored, puts the manifest by digest, checks
/// the digest the target reports, and only then puts each tag.
async fn upload<T: Target>(
    target: &T,
    artifact: &Artifact,
    wasm: &WasmFile,
    tags: &[Tag],
) -> Result<(Vec<Digest>, Vec<Digest>)> {
    let _phase = phase("Upload");
    let mut uploaded = Vec::new();
    let mut reused = Vec::new();

    if target.has_blob(&artifact.layer.digest).await? {
        info!(
            "layer {} is already stored; not uploading it again",
            artifact.layer.digest
        );
        reused.push(artifact.layer.digest.clone());
    } else {
        info!(
            "uploading layer {} ({} bytes)",
            artifact.layer.digest, artifact.layer.size
        );
        target.put_blob_file(&artifact.layer, &wasm.path).await?;
        confirm_stored(target, &artifact.layer.digest).await?;
        uploaded.push(artifact.layer.digest.clone());
    }
    if target.has_blob(&artifact.config.digest).await? {
        info!("config {} is already stored", artifact.config.digest);
        reused.push(artifact.config.digest.clone());
    } else {
        info!("uploading config {}", artifact.config.digest);
        target.put_blob(&artifact.config).await?;
        confirm_stored(target, &artifact.config.digest).await?;
        uploaded.push(artifact.config.digest.clone());
    }

    let local = &artifact.manifest.digest;
    put_manifest_checked(
        target,
        &artifact.manifest,
        &ManifestRef::Digest(local.clone()),
        "the manifest",
    )
    .await?;
    info!("manifest {local} stored");
    drop(_phase);

    let _phase = phase("Tag");
    for tag in tags {
        put_manifest_checked(
            target,
            &artifact.manifest,
            &ManifestRef::Tag(tag.clone()),
            &format!("tag `{tag}`"),
        )
        .await?;
        info!("tagged {tag}");
    }
    Ok((uploaded, reused))
}
