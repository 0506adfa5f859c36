//! One artifact, several registries: each named repository gets the same bytes, the same
//! manifest digest and the same provenance, through the one delivery ([`super::deliver`]) run
//! for each in turn. The file is hashed and validated once and the provenance made (and
//! signed) once; each registry is sent the file from disk. Every registry is logged in to
//! before anything is sent, so a refused credential stops the push with nothing stored
//! anywhere. A registry that fails later does not stop the others: the outcome says which got
//! the artifact, and a registry never has a tag moved before it holds everything.

use std::sync::Arc;

use futures_util::FutureExt;
use tracing::{info, warn};

use super::PushRequest;
use super::report::Reached;
use super::{Delivered, Facts, Work, deliver};
use crate::context::{Env, GithubContext};
use crate::error::{Error, Result};
use crate::input;
use crate::provenance::tags;
use crate::reference::{ImageName, Tag};
use crate::registry::remote::{Access, Connection, Remote};

/// Each registry repository, with the tags it gets.
pub(super) type Tagged = Vec<(ImageName, Vec<Tag>)>;

/// Each registry repository with its tags (derived from the git ref where none are named), and
/// every tag once: what the artifact is described from. A layout gets the tags named, else the
/// derived ones.
pub(super) fn tags(request: &PushRequest, ctx: &GithubContext) -> Result<(Tagged, Vec<Tag>)> {
    let needs_derived =
        request.tags.is_empty() || request.targets.iter().any(|t| t.tags.is_empty());
    let derived = match needs_derived {
        true => tags::from_git_ref(ctx).map_err(|e| Error::input(input::TAGS, e))?,
        false => Vec::new(),
    };
    let targets: Tagged = request
        .targets
        .iter()
        .map(|t| {
            let tags = match t.tags.is_empty() {
                true => derived.clone(),
                false => t.tags.clone(),
            };
            (t.image.clone(), tags)
        })
        .collect();
    let mut all: Vec<Tag> = Vec::new();
    let named = match request.tags.is_empty() {
        true => derived.iter(),
        false => request.tags.iter(),
    };
    for tag in named.chain(targets.iter().flat_map(|(_, tags)| tags.iter())) {
        if !all.contains(tag) {
            all.push(tag.clone());
        }
    }
    Ok((targets, all))
}

/// How to reach `image`'s registry: the `username` and `password` inputs go only to the first
/// image's registry (a password is never sent to another host); the others take their
/// credentials from the docker config, or, for ghcr.io, the `github-token`.
fn connection(
    request: &PushRequest,
    env: &Env,
    image: &ImageName,
    first: &ImageName,
) -> Connection {
    let given = &request.connection.given;
    let inputs_apply = image.registry() == first.registry();
    if !inputs_apply && given.has_user() {
        info!(
            "the `username` and `password` inputs are for {}; {} takes its credentials from the docker config (or, for ghcr.io, the `github-token`)",
            first.registry(),
            image.registry()
        );
    }
    Connection {
        given: if inputs_apply {
            given.clone()
        } else {
            given.token_only()
        },
        env: env.clone(),
        ..request.connection.clone()
    }
}

/// Delivers the artifact to every registry of `targets`, one after another. Returns what the
/// first registry that got it stored, and which registries got it. An error with the file or
/// its provenance, or a refused login, fails the push at once; a registry failing after that is
/// recorded and the next one is served.
pub(super) async fn deliver_all(
    env: &Env,
    work: Work,
    facts: &Facts<'_>,
    targets: &[(ImageName, Vec<Tag>)],
) -> Result<(Delivered, Vec<Reached>)> {
    let request = facts.request;
    let first = &targets.first().expect("a registry push names an image").0;
    let remotes = targets
        .iter()
        .map(|(image, _)| Remote::new(image.clone(), &connection(request, env, image, first)))
        .collect::<Result<Vec<_>>>()?;
    // One registry: a session without credentials sends no probe. Several: every one is
    // asked before any is sent the artifact.
    let logins = futures_util::future::join_all(remotes.iter().map(|r| match remotes.len() {
        1 => r.login_lazily(Access::Write).boxed(),
        _ => r.login(Access::Write).boxed(),
    }))
    .await;
    if let Some(refused) = logins.into_iter().find_map(std::result::Result::err) {
        // A bad file is the error to report, whatever else failed.
        work.validating.await.expect("validation does not panic")?;
        if targets.len() > 1 {
            warn!(
                "nothing was pushed: every registry is logged in to before any is sent the artifact"
            );
        }
        return Err(refused);
    }
    if let ([remote], [(image, tags)]) = (remotes.as_slice(), targets) {
        let delivered = deliver(remote, work, &Facts { tags, ..*facts }).await?;
        let reached = Reached {
            image: image.clone(),
            error: None,
        };
        return Ok((delivered, vec![reached]));
    }

    let Work {
        phase,
        path,
        hashed,
        validating,
        stamp,
        build,
    } = work;
    let validation = validating
        .map(|joined| joined.expect("validation does not panic").map_err(Arc::new))
        .boxed()
        .shared();
    let mut phase = Some(phase);
    let mut first_delivered = None;
    let mut reached = Vec::new();
    for ((image, tags), remote) in targets.iter().zip(&remotes) {
        let phase = phase.take().unwrap_or_else(|| {
            let name = format!("Upload to {image}");
            tracing::info_span!("phase", name = name.as_str())
        });
        let shared = validation.clone();
        let work = Work {
            phase,
            path: path.clone(),
            hashed: hashed.clone(),
            validating: tokio::spawn(async move { shared.await.map_err(Error::Shared) }),
            stamp: stamp.clone(),
            build: build.clone(),
        };
        info!("pushing to {image} with tags {}", list(tags));
        match deliver(remote, work, &Facts { tags, ..*facts }).await {
            Ok(delivered) => {
                info!("{image} holds the artifact");
                first_delivered.get_or_insert(delivered);
                reached.push(Reached {
                    image: image.clone(),
                    error: None,
                });
            }
            Err(e) => {
                // What is wrong with the file or its provenance is wrong for every registry.
                if let Some(Err(e)) = validation.peek() {
                    return Err(Error::Shared(e.clone()));
                }
                if let Some(Err(e)) = hashed.peek() {
                    return Err(Error::Shared(e.clone()));
                }
                if let Some(Err(e)) = facts.provenance.get() {
                    return Err(Error::Shared(e.clone()));
                }
                if matches!(e, Error::FileChanged { .. }) {
                    return Err(e);
                }
                let cause = crate::error::error_chain(&e);
                warn!("{image} did not get the artifact: {cause}");
                reached.push(Reached {
                    image: image.clone(),
                    error: Some(cause),
                });
            }
        }
    }
    match first_delivered {
        Some(delivered) => Ok((delivered, reached)),
        None => Err(Error::NotEverywhere {
            failed: super::report::failures(&reached),
            held: "no registry holds it".to_owned(),
        }),
    }
}

fn list(tags: &[Tag]) -> String {
    tags.iter().map(Tag::as_str).collect::<Vec<_>>().join(", ")
}
