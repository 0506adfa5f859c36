//! The SBOM check (`require-sbom`): a CycloneDX referrer of the artifact's digest
//! (`artifactType: application/vnd.cyclonedx+json`), whose document is CycloneDX; signed into a
//! DSSE envelope, its statement must be about this digest, and with `public-key` the envelope
//! must verify, as the provenance's must; signed keylessly, the Sigstore bundle of its statement
//! is checked as the provenance's bundle is (trusted root, identity), its checks named `sbom ...`.

use serde_json::Value;

use super::provenance::Expectations;
use super::report::{Check, Outcome};
use super::sigstore;
use crate::artifact::{Descriptor, Manifest};
use crate::provenance::dsse::{self, ENVELOPE_MEDIA_TYPE};
use crate::provenance::referrer::{
    SBOM_ARTIFACT_TYPE as ARTIFACT_TYPE, SBOM_PREDICATE_TYPE as PREDICATE_TYPE,
};
use crate::reference::Digest;
use crate::registry::{ManifestRef, ReadTarget};

const NAME: &str = "sbom";

/// Checks the SBOM referrers of `want.subject` among those `listing` holds, the newest first
/// (at most [`MOST_CHECKED`](super::provenance::MOST_CHECKED)): the first that passes wins, else
/// the newest one's findings are reported. One more referrer, which anyone who can push can
/// attach, never hides the release's own.
pub(super) async fn check_sbom<T: ReadTarget>(
    source: &T,
    want: &Expectations<'_>,
    listing: &crate::error::Result<Vec<Descriptor>>,
) -> Vec<Check> {
    let subject = want.subject;
    let referrers = match listing {
        Ok(r) => r,
        Err(e) => return vec![Check::fail(NAME, crate::error::error_chain(e))],
    };
    // Signed keylessly, the bundle carries the document: it is what is checked, whether or not
    // the document is also attached unsigned.
    let bundles = match want.public_key {
        None => bundles_of_sbom(referrers),
        Some(_) => Vec::new(),
    };
    let keyless = !bundles.is_empty();
    let candidates: Vec<&Descriptor> = if keyless {
        bundles
    } else {
        referrers
            .iter()
            .rev()
            .filter(|r| r.artifact_type.as_deref() == Some(ARTIFACT_TYPE))
            .collect()
    };
    if candidates.is_empty() {
        return vec![Check::fail(
            NAME,
            format!(
                "no SBOM referrer (artifactType `{ARTIFACT_TYPE}`) names {subject}; push it in build mode with `sbom: true`"
            ),
        )];
    }
    let mut newest = None;
    for referrer in candidates.into_iter().take(super::provenance::MOST_CHECKED) {
        let checks = if keyless {
            match check_keyless(source, referrer, want).await {
                Ok((mut checks, document)) => {
                    checks.push(cyclonedx(&document, &referrer.digest));
                    checks
                }
                Err(checks) => checks,
            }
        } else {
            check_referrer(source, referrer, want).await
        };
        if checks.iter().all(|c| c.outcome != Outcome::Fail) {
            return checks;
        }
        newest.get_or_insert(checks);
    }
    newest.expect("at least one candidate")
}

/// Checks one SBOM referrer (`artifactType: application/vnd.cyclonedx+json`): its document, or
/// its DSSE envelope with `public-key`.
async fn check_referrer<T: ReadTarget>(
    source: &T,
    referrer: &Descriptor,
    want: &Expectations<'_>,
) -> Vec<Check> {
    let (subject, public_key) = (want.subject, want.public_key);
    let digest = &referrer.digest;
    let manifest = match source
        .get_manifest(&ManifestRef::Digest(digest.clone()))
        .await
    {
        Ok(Some(blob)) => match serde_json::from_slice::<Manifest>(&blob.bytes) {
            Ok(m) => m,
            Err(e) => {
                return vec![Check::fail(
                    NAME,
                    format!("SBOM referrer {digest} is not an image manifest: {e}"),
                )];
            }
        },
        Ok(None) => {
            return vec![Check::fail(
                NAME,
                format!("SBOM referrer {digest} is listed but missing"),
            )];
        }
        Err(e) => return vec![Check::fail(NAME, crate::error::error_chain(&e))],
    };
    if manifest.subject.as_ref().map(|s| &s.digest) != Some(subject) {
        return vec![Check::fail(
            NAME,
            format!("SBOM referrer {digest} does not name {subject} as its subject"),
        )];
    }
    let Some(layer) = manifest.layers.first() else {
        return vec![Check::fail(
            NAME,
            format!("SBOM referrer {digest} has no layer"),
        )];
    };
    let bytes = match source.get_blob(layer).await {
        Ok(b) => b,
        Err(e) => return vec![Check::fail(NAME, crate::error::error_chain(&e))],
    };
    let mut checks = Vec::new();
    let document = match (layer.media_type.as_str(), public_key) {
        (ENVELOPE_MEDIA_TYPE, key) => {
            let payload = match key {
                Some(key) => match dsse::verify_dsse(&bytes, key) {
                    Ok(payload) => {
                        checks.push(Check::pass(
                            "sbom signature",
                            "the DSSE signature verifies with `public-key`",
                        ));
                        payload
                    }
                    Err(e) => {
                        checks.push(Check::fail("sbom signature", e.to_string()));
                        return checks;
                    }
                },
                None if want.require_signature => {
                    checks.push(Check::fail(
                        "sbom signature",
                        format!(
                            "SBOM referrer {digest} is signed with a key, but no `public-key` was given to check it; {}",
                            super::provenance::SIGN_IT
                        ),
                    ));
                    return checks;
                }
                None => match unverified_payload(&bytes) {
                    Some(payload) => {
                        checks.push(Check::skip(
                            "sbom signature",
                            "signed, but no `public-key` was given to check it",
                        ));
                        payload
                    }
                    None => {
                        checks.push(Check::fail(
                            NAME,
                            format!("SBOM referrer {digest}'s layer is not a DSSE envelope"),
                        ));
                        return checks;
                    }
                },
            };
            match statement_document(&payload, subject) {
                Ok(document) => document,
                Err(reason) => {
                    checks.push(Check::fail(
                        NAME,
                        format!("SBOM referrer {digest}: {reason}"),
                    ));
                    return checks;
                }
            }
        }
        (ARTIFACT_TYPE, Some(_)) => {
            checks.push(Check::fail(
                "sbom signature",
                format!("SBOM referrer {digest} is not signed (a plain CycloneDX document)"),
            ));
            return checks;
        }
        (ARTIFACT_TYPE, None) if want.require_signature => {
            checks.push(Check::fail(
                "sbom signature",
                format!(
                    "found only an unsigned CycloneDX document (SBOM referrer {digest}), which anyone who can push to the repository can attach; {}",
                    super::provenance::SIGN_IT
                ),
            ));
            return checks;
        }
        (ARTIFACT_TYPE, None) => match serde_json::from_slice::<Value>(&bytes) {
            Ok(document) => document,
            Err(e) => {
                checks.push(Check::fail(
                    NAME,
                    format!("SBOM referrer {digest}'s document is not JSON: {e}"),
                ));
                return checks;
            }
        },
        (other, _) => {
            checks.push(Check::fail(
                NAME,
                format!("SBOM referrer {digest}'s layer is `{other}`, not CycloneDX JSON or a DSSE envelope"),
            ));
            return checks;
        }
    };
    checks.push(cyclonedx(&document, digest));
    checks
}

/// The document must be CycloneDX.
fn cyclonedx(document: &Value, digest: &Digest) -> Check {
    match document["bomFormat"].as_str() {
        Some("CycloneDX") => Check::pass(
            NAME,
            format!(
                "referrer {digest}: CycloneDX {}, {} components",
                document["specVersion"].as_str().unwrap_or("?"),
                document["components"].as_array().map_or(0, Vec::len)
            ),
        ),
        _ => Check::fail(
            NAME,
            format!("SBOM referrer {digest} does not hold a CycloneDX document"),
        ),
    }
}

/// The Sigstore bundle referrers that say they sign a CycloneDX statement, the newest first.
fn bundles_of_sbom(referrers: &[Descriptor]) -> Vec<&Descriptor> {
    referrers
        .iter()
        .rev()
        .filter(|r| {
            r.artifact_type.as_deref() == Some(sigstore::BUNDLE_MEDIA_TYPE)
                && r.annotations
                    .get(sigstore::PREDICATE_TYPE_ANNOTATION)
                    .map(String::as_str)
                    == Some(PREDICATE_TYPE)
        })
        .collect()
}

/// Checks the SBOM's Sigstore bundle as the provenance's is checked; its document when it holds.
async fn check_keyless<T: ReadTarget>(
    source: &T,
    referrer: &crate::artifact::Descriptor,
    want: &Expectations<'_>,
) -> Result<(Vec<Check>, Value), Vec<Check>> {
    let fail = |detail: String| vec![Check::fail("sbom bundle", detail)];
    let digest = &referrer.digest;
    let manifest = match source
        .get_manifest(&ManifestRef::Digest(digest.clone()))
        .await
    {
        Ok(Some(blob)) => serde_json::from_slice::<Manifest>(&blob.bytes)
            .map_err(|e| fail(format!("referrer {digest} is not an image manifest: {e}")))?,
        Ok(None) => return Err(fail(format!("referrer {digest} is listed but missing"))),
        Err(e) => return Err(fail(crate::error::error_chain(&e))),
    };
    if manifest.subject.as_ref().map(|s| &s.digest) != Some(want.subject) {
        return Err(fail(format!(
            "referrer {digest} does not name {} as its subject",
            want.subject
        )));
    }
    let Some(layer) = manifest.layers.first() else {
        return Err(fail(format!("referrer {digest} has no layer")));
    };
    let bytes = source
        .get_blob(layer)
        .await
        .map_err(|e| fail(crate::error::error_chain(&e)))?;
    let identity = want.keyless_identity();
    let checked = sigstore::check_bundle(&bytes, want.subject, want.roots, &identity, None);
    let signed = checked.signed;
    let mut checks: Vec<Check> = checked
        .checks
        .into_iter()
        .map(|c| Check {
            name: format!(
                "sbom {}",
                c.name.strip_prefix("provenance ").unwrap_or(&c.name)
            ),
            ..c
        })
        .collect();
    if want.require_signature && !signed && checks.iter().all(|c| c.outcome != Outcome::Fail) {
        checks.push(Check::fail(
            "sbom signature",
            format!(
                "the SBOM's bundle {digest} is not signed by the identity the provenance's must be; {}",
                super::provenance::SIGN_IT
            ),
        ));
    }
    let failed = checks.iter().any(|c| c.outcome == Outcome::Fail);
    match checked.statement {
        Some(statement) if !failed => match statement_document(&statement, want.subject) {
            Ok(document) => Ok((checks, document)),
            Err(reason) => {
                let mut checks = checks;
                checks.push(Check::fail(
                    "sbom bundle",
                    format!("referrer {digest}: {reason}"),
                ));
                Err(checks)
            }
        },
        _ => Err(checks),
    }
}

/// The envelope's payload, unchecked.
fn unverified_payload(envelope: &[u8]) -> Option<Vec<u8>> {
    use base64::Engine as _;
    let envelope: dsse::Envelope = serde_json::from_slice(envelope).ok()?;
    base64::engine::general_purpose::STANDARD
        .decode(&envelope.payload)
        .ok()
}

/// The CycloneDX document inside an in-toto statement about `subject`.
fn statement_document(payload: &[u8], subject: &Digest) -> Result<Value, String> {
    let statement: Value =
        serde_json::from_slice(payload).map_err(|e| format!("the statement is not JSON: {e}"))?;
    if statement["predicateType"] != PREDICATE_TYPE {
        return Err(format!(
            "the statement's predicate type is not `{PREDICATE_TYPE}`"
        ));
    }
    let about = statement["subject"].as_array().is_some_and(|subjects| {
        subjects
            .iter()
            .any(|s| s["digest"]["sha256"].as_str() == Some(subject.hex()))
    });
    if !about {
        return Err(format!("the statement is not about {subject}"));
    }
    Ok(statement["predicate"].clone())
}
