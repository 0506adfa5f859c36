//! The writes of one push to one target, in their order: the layer (streamed while it is
//! hashed, or hashed first when the registry likely has it: the re-push guess), the config, the
//! manifest, the tags; and beside them the referrers' blobs and manifests and their listing.

use tracing::{info, warn};

use super::describe::{describe, read_embedded};
use super::provenance::{provenance_once, sbom_once};
use super::report::Signing;
use super::sbom::Sbom;
use super::{Delivered, Facts, Provenance, Work, phase};
use crate::artifact::{self, Artifact, Blob, Format};
use crate::build::BuildRecord;
use crate::error::{Error, Result};
use crate::provenance::referrer::Referrer;
use crate::reference::{Digest, Tag};
use crate::registry::referrers;
use crate::registry::{
    Gate, Hashed, ManifestRef, WriteTarget, confirm_stored, hash_done, put_manifest_checked,
    store_blob,
};
use crate::wasm::{self, WasmFile};

/// Uploads the layer as soon as it is hashed, while validation ends. Once validation has
/// passed and the provenance is made, the push goes two ways at once:
/// - the subject: the config beside the layer, then the manifest, then the tags;
/// - the referrers (provenance, signatures, SBOM): their blobs, their manifests, then their
///   listing in the referrers fallback tag, read back as [`referrers::publish`] does.
///
/// A referrer needs only its own blobs (OCI lets it be stored before its subject), so the
/// referrers' manifests are stored while a large layer still uploads; their listing waits for
/// the subject's manifest, so a push that fails lists nothing. Each step goes only after
/// everything it refers to is stored, and requests that do not wait on each other go out at
/// once: a push costs a few round trips, not one per request.
pub(super) async fn deliver<T: WriteTarget>(
    target: &T,
    work: Work,
    facts: &Facts<'_>,
) -> Result<Delivered> {
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
        let image_layer =
            artifact::image::layer_for(facts.request.format, &wasm, facts.created).await?;
        let artifact = describe(facts, &wasm, &embedded, image_layer.as_ref());
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
        // The image form's layer is the module in a tar, stored here; the file itself is not.
        let image_uploaded = match &image_layer {
            Some(layer) => Some(artifact::image::upload(target, layer, &gate).await?),
            None => None,
        };
        let sbom = sbom.and_then(|s| s.referrers().next().map(|r| r.manifest.digest.clone()));
        Ok::<_, Error>((
            wasm,
            embedded,
            artifact,
            provenance,
            sbom,
            config_uploaded,
            image_uploaded,
        ))
    };
    let subject = async {
        let file_layer = async {
            match facts.request.format {
                Format::Image => Ok(false),
                _ => upload_layer(target, facts, &path, hashed.clone(), &gate).await,
            }
        };
        let (layer_uploaded, described) = tokio::join!(file_layer, described);
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
        let (wasm, embedded, artifact, provenance, sbom, config_uploaded, image_uploaded) =
            described?;
        let layer_uploaded = match image_uploaded {
            Some(uploaded) => uploaded,
            None => layer_uploaded?,
        };
        let (mut uploaded, mut reused) = (Vec::new(), Vec::new());
        for (digest, was_uploaded) in [
            (&artifact.layer.digest, layer_uploaded),
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
    let (stored, api) = tokio::join!(stored, referrers::referrers_api(target, subject));
    stored?;
    let referrers: Vec<&Referrer> = referrers.iter().collect();
    let listing = referrers::store_all(target, &referrers, subject, api?).await?;
    if listing_allowed.await.is_err() {
        // The subject's side failed, and says why.
        return Ok(());
    }
    referrers::publish(target, &listing).await
}

/// What tells that a file was rewritten: its size, modification time and inode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Stamp {
    len: u64,
    modified: Option<std::time::SystemTime>,
    inode: u64,
}

impl Stamp {
    pub(super) fn of(path: &std::path::Path) -> Result<Self> {
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

#[cfg(test)]
#[path = "upload_tests.rs"]
mod tests;
