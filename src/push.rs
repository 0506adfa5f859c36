//! The push use case: locate, validate, describe, upload, then tag. No tag moves until the
//! manifest and every blob it references are stored and their digests checked.

use std::path::PathBuf;

use chrono::Utc;
use tracing::{info, warn};

use crate::artifact::{self, Artifact, ArtifactInputs};
use crate::build::{self, BuildRecord};
use crate::context::{Env, GithubContext};
use crate::error::{Error, Result};
use crate::locate::locate;
use crate::provenance::{annotations, tags};
use crate::reference::{Destination, Digest, Tag};
use crate::registry::layout::Layout;
use crate::registry::remote::{Connection, Remote};
use crate::registry::{ManifestRef, Target};
use crate::report::PushOutcome;
use crate::request::{PushRequest, WasmSource};
use crate::wasm::{self, WasmFile};

/// A span that the action front door shows as a collapsible `::group::`.
pub fn phase(name: &'static str) -> tracing::Span {
    tracing::info_span!("phase", name)
}

/// Runs a push.
pub async fn push(request: &PushRequest, env: &Env) -> Result<PushOutcome> {
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

    let (artifact, tags) = {
        let _phase = phase("Describe");
        let tags = if request.tags.is_empty() {
            tags::from_git_ref(&ctx).map_err(|e| Error::input("tags", e))?
        } else {
            request.tags.clone()
        };
        let artifact = describe(request, &ctx, &wasm, &tags)?;
        info!(
            "manifest {} with tags {}",
            artifact.manifest.digest,
            tags.iter().map(Tag::as_str).collect::<Vec<_>>().join(", ")
        );
        (artifact, tags)
    };

    let (uploaded, reused) = match &request.destination {
        Destination::Registry(image) if !request.dry_run => {
            let remote = Remote::new(
                image.clone(),
                &Connection {
                    insecure: request.insecure,
                    ca_file: request.ca_file.clone(),
                    credentials: request.credentials.clone(),
                },
            )?;
            remote.login().await?;
            upload(&remote, &artifact, &wasm, &tags).await?
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
            upload(&Layout::create(&dir)?, &artifact, &wasm, &tags).await?
        }
        Destination::Layout(dir) => upload(&Layout::create(dir)?, &artifact, &wasm, &tags).await?,
    };

    Ok(PushOutcome {
        destination: request.destination.clone(),
        digest: artifact.manifest.digest.clone(),
        tags,
        wasm,
        format: request.format,
        config_digest: artifact.config.digest.clone(),
        annotations: serde_json::from_slice::<artifact::Manifest>(&artifact.manifest.bytes)
            .map(|m| m.annotations)
            .unwrap_or_default(),
        uploaded,
        reused,
        dry_run: request.dry_run,
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

/// Builds the artifact's config and manifest from the request and the context.
fn describe(
    request: &PushRequest,
    ctx: &GithubContext,
    wasm: &WasmFile,
    tags: &[Tag],
) -> Result<Artifact> {
    let created = match ctx
        .created(&request.working_directory)
        .map_err(|e| Error::input("SOURCE_DATE_EPOCH", e))?
    {
        Some(t) => t,
        None => {
            warn!(
                "no SOURCE_DATE_EPOCH, commit time or git repository: `created` is now, so the digest will differ between runs"
            );
            Utc::now()
        }
    };
    let created = annotations::rfc3339(&created);
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
    let created_at = chrono::DateTime::parse_from_rfc3339(&created)
        .expect("we formatted it")
        .with_timezone(&Utc);
    let manifest_annotations =
        annotations::manifest_annotations(ctx, &created_at, version, &title, &request.annotations);
    Ok(artifact::build(
        wasm,
        ArtifactInputs {
            format: request.format,
            created: &created,
            author: ctx.repository_owner.as_deref(),
            annotations: manifest_annotations,
        },
    ))
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
        uploaded.push(artifact.layer.digest.clone());
    }
    if target.has_blob(&artifact.config.digest).await? {
        info!("config {} is already stored", artifact.config.digest);
        reused.push(artifact.config.digest.clone());
    } else {
        info!("uploading config {}", artifact.config.digest);
        target.put_blob(&artifact.config).await?;
        uploaded.push(artifact.config.digest.clone());
    }
    for digest in [&artifact.layer.digest, &artifact.config.digest] {
        if !target.has_blob(digest).await? {
            return Err(Error::DigestMismatch {
                what: format!("blob {digest} (not found after upload)"),
                expected: digest.to_string(),
                actual: "nothing".to_owned(),
            });
        }
    }

    let local = &artifact.manifest.digest;
    let reported = target
        .put_manifest(&artifact.manifest, &ManifestRef::Digest(local.clone()))
        .await?;
    check_digest("the manifest", local, &reported)?;
    info!("manifest {local} stored");
    drop(_phase);

    let _phase = phase("Tag");
    for tag in tags {
        let reported = target
            .put_manifest(&artifact.manifest, &ManifestRef::Tag(tag.clone()))
            .await?;
        check_digest(&format!("tag `{tag}`"), local, &reported)?;
        info!("tagged {tag}");
    }
    Ok((uploaded, reused))
}

fn check_digest(what: &str, expected: &Digest, reported: &Digest) -> Result<()> {
    if expected == reported {
        Ok(())
    } else {
        Err(Error::DigestMismatch {
            what: what.to_owned(),
            expected: expected.to_string(),
            actual: reported.to_string(),
        })
    }
}
