//! The OCI 1.1 referrers listing, written to either target: a referrer's manifest is stored by
//! digest with its `subject`; where the registry has no referrers API (the CNCF registry 2.8,
//! ghcr.io) and in OCI layouts, it is also listed in the fallback tag `sha256-<hex of subject>`,
//! an image index merged with the referrers already there, never dropping one. [`store_all`]
//! stores and works out the listing, [`publish`] writes the fallback tag once the subject is
//! stored and reads it back until it settles. Push lists its provenance and SBOM through it.

use std::time::{Duration, Instant};

use serde_json::Value;
use tracing::{debug, info};

use super::{ManifestRef, WriteTarget, fallback_tag, put_manifest_checked};
use crate::artifact::{Blob, Descriptor, INDEX_MEDIA_TYPE};
use crate::error::{Error, Result};
use crate::reference::{Digest, Tag};

/// What the listing needs of a referrer: its manifest, and its entry in an index.
pub trait Listable: Sync {
    /// The referrer's manifest.
    fn manifest(&self) -> &Blob;
    /// Its descriptor as an index lists it (with `artifactType` and annotations).
    fn index_entry(&self) -> Descriptor;
    /// Its `artifactType`, for the log.
    fn artifact_type(&self) -> &str;
}

/// What makes the referrer findable once its subject is stored: nothing when the registry
/// (its referrers API, or the fallback tag) already lists it, else its entry in the fallback
/// tag's index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Listing {
    /// The registry's referrers API (or the fallback tag) already lists it.
    Listed,
    /// The fallback tag `tag` is to list `entries` beside what it lists.
    FallbackTag {
        /// The tag, `sha256-<subject hex>`.
        tag: Tag,
        /// The referrers' entries in the index.
        entries: Vec<Descriptor>,
        /// The index the tag pointed at when it was read, just before: the first write
        /// merges into it.
        existing: Option<Blob>,
        /// When that read was sent.
        read_at: Instant,
        /// How long that read took: a round trip to the registry.
        round_trip: Duration,
    },
}

/// Whether the registry lists referrers itself: the digests its referrers API lists for
/// `subject`, `None` when it has no such API (then the fallback tag lists them). Asked once,
/// before anything is stored, beside the blobs' uploads: the answer does not depend on them.
pub async fn referrers_api<T: WriteTarget>(
    target: &T,
    subject: &Digest,
) -> Result<Option<Vec<Digest>>> {
    target.referrers_api(subject).await
}

/// Stores `referrer`'s manifest by digest (its blobs must be stored), checks the digest the
/// target reports, and works out how clients will find it among the referrers of `subject`.
/// Moves no tag: [`publish`] does, once the subject is stored.
pub async fn store<T: WriteTarget, R: Listable>(
    target: &T,
    referrer: &R,
    subject: &Digest,
) -> Result<Listing> {
    let api = referrers_api(target, subject).await?;
    store_all(target, &[referrer], subject, api).await
}

/// [`store`] for several referrers of one subject, `api` being what [`referrers_api`] said:
/// the manifests go out together, and where the registry has no referrers API the fallback
/// tag is read at the same time, so one fallback-tag update adds every one not listed yet.
/// A registry with the API is asked again once they are stored: it lists what its manifest
/// `PUT`s named as their subject.
pub async fn store_all<T: WriteTarget, R: Listable>(
    target: &T,
    referrers: &[&R],
    subject: &Digest,
    api: Option<Vec<Digest>>,
) -> Result<Listing> {
    let tag = fallback_tag(subject);
    let reference = ManifestRef::Tag(tag.clone());
    let stored = futures_util::future::try_join_all(referrers.iter().map(|referrer| async {
        let digest = &referrer.manifest().digest;
        put_manifest_checked(
            target,
            referrer.manifest(),
            &ManifestRef::Digest(digest.clone()),
            &format!("the referrer manifest ({})", referrer.artifact_type()),
        )
        .await?;
        info!(
            "referrer {digest} ({}) stored, subject {subject}",
            referrer.artifact_type()
        );
        Ok::<_, Error>(())
    }));
    let mut unlisted: Vec<&R> = referrers.to_vec();
    let read = async {
        let read_at = Instant::now();
        let existing = target.get_manifest(&reference).await?;
        Ok::<_, Error>((existing, read_at, read_at.elapsed()))
    };
    let (existing, read_at, round_trip) = match api {
        None => {
            let (stored, read) = tokio::join!(stored, read);
            stored?;
            read?
        }
        Some(_) => {
            stored.await?;
            if let Some(listed) = target.listed_referrers(subject).await? {
                unlisted.retain(|r| !listed.contains(&r.manifest().digest));
                if unlisted.is_empty() {
                    info!("the registry lists it among the referrers of {subject}");
                    return Ok(Listing::Listed);
                }
            }
            read.await?
        }
    };
    let entries: Vec<Descriptor> = unlisted.iter().map(|r| r.index_entry()).collect();
    Ok(match merge_into_index(existing.as_ref(), &entries, &tag)? {
        Some(_) => Listing::FallbackTag {
            tag,
            entries,
            existing,
            read_at,
            round_trip,
        },
        None => {
            info!("the fallback tag {tag} already lists it");
            Listing::Listed
        }
    })
}

/// How many times [`publish`] writes the fallback index before it gives up.
const PUBLISH_ATTEMPTS: u32 = 8;

/// The margin of the wait before the fallback index is read back, beyond the part of another
/// push's window that its travel does not cover (drawn between one and two times this after
/// a second write). It covers a push that the machine or the registry serves later than this
/// one: four concurrent pushes on a loaded machine lost a referrer with 25 to 50 ms of wait,
/// none with 50 to 100.
const SETTLE_MARGIN: Duration = Duration::from_millis(50);
/// The longest wait before a read-back.
const SETTLE_MAX: Duration = Duration::from_secs(5);

/// A read of the fallback index older than this many of its round trips (and [`STALE_SLACK`])
/// when the write is due is read again first: other pushes may have written since.
const STALE_ROUND_TRIPS: u32 = 2;
pub(crate) const STALE_SLACK: Duration = Duration::from_millis(10);

/// Lists the referrer in the fallback tag, when it needs to be: adds the entry to the index
/// [`store_all`] read, points the tag at the result (its digest checked), then reads it back.
///
/// A registry offers no compare-and-swap on a tag, so another push listing its own referrer
/// at the same time can write an index it read before this one was written, and drop this
/// entry. Three things keep that window small and close it when it shows:
/// - the index is read again just before the write when the read [`store_all`] made is old
///   (a slow machine, a slow registry), so the write merges what other pushes wrote since;
/// - the index is read back late enough to see the write of any push that read before this
///   write landed ([`settle`]), with a random part, so writers fall out of step; an entry
///   missing then is merged and written again, a bounded number of times;
/// - a read-back that lists this entry but shows another push wrote after this one waits and
///   reads once more: this push is done when the index stays as it was across a wait.
pub async fn publish<T: WriteTarget>(target: &T, listing: &Listing) -> Result<()> {
    let Listing::FallbackTag {
        tag,
        entries,
        existing,
        read_at,
        round_trip,
    } = listing
    else {
        return Ok(());
    };
    let reference = ManifestRef::Tag(tag.clone());
    let mut existing = existing.clone();
    let mut read_at = *read_at;
    if read_at.elapsed() > *round_trip * STALE_ROUND_TRIPS + STALE_SLACK {
        read_at = Instant::now();
        existing = target.get_manifest(&reference).await?;
    }
    // The index this push last saw listing its entries, and how long its last write took.
    let mut seen: Option<Digest> = None;
    let mut window = *round_trip;
    let mut writes = 0;
    // Each write is followed by a read-back, and each read-back that saw another push's
    // write by one more: twice the writes bounds the reads.
    for read_back in 0..2 * PUBLISH_ATTEMPTS {
        match merge_into_index(existing.as_ref(), entries, tag)? {
            None => {
                let current = existing.as_ref().map(|index| &index.digest);
                if writes == 0 || seen.as_ref() == current {
                    info!("listed in the referrers fallback tag {tag}");
                    return Ok(());
                }
                // Listed, but another push wrote after this one and may have read before
                // it: its write lands within its own window, so look once more after that.
                seen = current.cloned();
            }
            Some(_) if writes == PUBLISH_ATTEMPTS => break,
            Some(index) => {
                if writes > 0 {
                    info!(
                        "the referrers fallback tag {tag} lost this referrer to another push; listing it again"
                    );
                }
                writes += 1;
                put_manifest_checked(
                    target,
                    &index,
                    &reference,
                    &format!("the referrers index `{tag}`"),
                )
                .await?;
                window = read_at.elapsed();
                seen = Some(index.digest);
            }
        }
        // The first read-back follows the one write; the rest follow writes that met another
        // push's, and fall out of step with it by a random part.
        let margin = match read_back {
            0 => SETTLE_MARGIN,
            _ => SETTLE_MARGIN + SETTLE_MARGIN.mul_f64(rand::random::<f64>()),
        };
        let wait = settle(window, *round_trip, margin);
        // The benchmark reads this line: the settle is the part of a push's time that is
        // waiting, not transfer (scripts/bench.sh).
        debug!(
            "the referrers fallback tag {tag}: settle {:.1} ms before the read-back",
            wait.as_secs_f64() * 1000.0
        );
        tokio::time::sleep(wait).await;
        read_at = Instant::now();
        existing = target.get_manifest(&reference).await?;
    }
    Err(Error::Provenance(format!(
        "the referrers fallback tag `{tag}` still lacked provenance {} after {PUBLISH_ATTEMPTS} writes, each undone by another push; push again",
        entries
            .iter()
            .map(|e| e.digest.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    )))
}

/// How long to wait, after the answer to a write of the index, before reading it back; the
/// write took `window` from the read it merged into to its answer, and a read of the index
/// takes `round_trip`.
///
/// Another push whose read came before this write landed had its own write answered within
/// about the same window of its read; of that window, two round trips are travel, which this
/// push's write answer and read-back take anyway. So the read-back waits for the rest of the
/// window, and a `margin` for a push the machine or the registry serves later than this one.
fn settle(window: Duration, round_trip: Duration, margin: Duration) -> Duration {
    (window.saturating_sub(round_trip * 2) + margin).min(SETTLE_MAX)
}

/// The fallback index with `entries` added to what `existing` lists, keeping every other field
/// and entry; `None` when every one of `entries` is already listed.
pub(crate) fn merge_into_index(
    existing: Option<&Blob>,
    entries: &[Descriptor],
    tag: &Tag,
) -> Result<Option<Blob>> {
    let mut index = match existing {
        None => serde_json::json!({
            "schemaVersion": 2,
            "mediaType": INDEX_MEDIA_TYPE,
            "manifests": [],
        }),
        Some(blob) => {
            let value: Value = serde_json::from_slice(&blob.bytes).unwrap_or(Value::Null);
            let is_index = value.get("manifests").is_some_and(Value::is_array)
                && value
                    .get("mediaType")
                    .and_then(Value::as_str)
                    .is_none_or(|m| m == INDEX_MEDIA_TYPE);
            if !is_index {
                return Err(Error::Provenance(format!(
                    "the referrers fallback tag `{tag}` points at something that is not an OCI image index; remove that tag"
                )));
            }
            value
        }
    };
    let manifests = index["manifests"].as_array_mut().expect("checked above");
    let mut changed = false;
    for entry in entries {
        let digest = entry.digest.to_string();
        if !manifests
            .iter()
            .any(|m| m.get("digest").and_then(Value::as_str) == Some(digest.as_str()))
        {
            manifests.push(serde_json::to_value(entry).expect("a descriptor always serializes"));
            changed = true;
        }
    }
    if !changed {
        return Ok(None);
    }
    Ok(Some(Blob::new(
        INDEX_MEDIA_TYPE,
        serde_json::to_vec(&index).expect("an index always serializes"),
    )))
}
