//! The artifact's description: when it was created, the repository's metadata from the GitHub
//! API, the module's own metadata sections, the user's annotations, and from them the config and
//! manifest. Also the `allowed-imports` gate, which reads what validation found.

use std::path::PathBuf;

use chrono::{DateTime, Utc};
use tracing::{info, warn};

use super::{Facts, PushRequest};
use crate::artifact::image::ImageLayer;
use crate::artifact::{self, Artifact, ArtifactInputs};
use crate::context::{Clock, Env, GithubContext};
use crate::error::{Error, Result};
use crate::github::{self, RepoMetadata};
use crate::input;
use crate::provenance::annotations;
use crate::reference::Tag;
use crate::wasm::metadata::EmbeddedMetadata;
use crate::wasm::{Validated, WasmFile};

/// When the artifact is said to be created: `SOURCE_DATE_EPOCH`, else the commit time (event
/// payload, `git`, or the GitHub API), else (and only then) the clock, with a warning that the
/// digest will not repeat.
pub(super) async fn created(
    request: &PushRequest,
    env: &Env,
    ctx: &GithubContext,
    clock: &dyn Clock,
) -> Result<DateTime<Utc>> {
    if let Some(t) = ctx
        .created()
        .map_err(|e| Error::input(input::SOURCE_DATE_EPOCH, e))?
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
pub(super) async fn repository_metadata(
    request: &PushRequest,
    ctx: &GithubContext,
) -> RepoMetadata {
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
pub(super) fn describe(
    facts: &Facts<'_>,
    wasm: &WasmFile,
    embedded: &EmbeddedMetadata,
    image_layer: Option<&ImageLayer>,
) -> Artifact {
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
        .request
        .annotations
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
    let inputs = ArtifactInputs {
        format: facts.request.format,
        created: &annotations::rfc3339(facts.created),
        author: facts.ctx.repository_owner.as_deref(),
        annotations: manifest_annotations,
    };
    match image_layer {
        Some(layer) => artifact::image::build(wasm, layer, inputs),
        None => artifact::build(wasm, inputs),
    }
}

/// The capability gate: every import of the component must match `allowed-imports`. A core
/// module's imports are not component interfaces, so the policy cannot hold for one.
pub(super) fn check_imports(
    allowed: &crate::wasm::policy::AllowedImports,
    path: &std::path::Path,
    validated: &Validated,
) -> Result<()> {
    let refuse = |reason: String| {
        Err(Error::input(
            input::ALLOWED_IMPORTS,
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
pub(super) async fn read_embedded(path: PathBuf) -> EmbeddedMetadata {
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
