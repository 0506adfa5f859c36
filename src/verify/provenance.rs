//! The provenance checks: a referrer of the artifact's digest (referrers API or fallback tag)
//! whose in-toto statement, plain or in a DSSE envelope, is SLSA provenance about this digest,
//! from the expected repository and commit; with a public key, the envelope must verify.
//! Sigstore bundle referrers (ours, cosign's, GitHub's attest-build-provenance) are checked by
//! `sigstore` first; where one exists, unsigned statements are not accepted in its place.

use super::report::{Check, Outcome};
use super::sigstore::{self, IdentityPolicy, TrustRoot, same_repository};
use crate::artifact::{Descriptor, Manifest};
use crate::provenance::dsse::{self, ENVELOPE_MEDIA_TYPE as DSSE_MEDIA_TYPE};
use crate::provenance::referrer::{
    ARTIFACT_TYPE as IN_TOTO_ARTIFACT_TYPE, STATEMENT_MEDIA_TYPE as IN_TOTO_MEDIA_TYPE,
};
use crate::provenance::slsa::{PREDICATE_TYPE as SLSA_PROVENANCE_V1, STATEMENT_TYPE, Statement};
use crate::reference::Digest;
use crate::registry::{ManifestRef, ReadTarget};

/// What the provenance must say.
pub(super) struct Expectations<'a> {
    pub(super) subject: &'a Digest,
    pub(super) source: Option<&'a str>,
    pub(super) revision: Option<&'a str>,
    pub(super) public_key: Option<&'a str>,
    pub(super) identity: &'a IdentityPolicy,
    pub(super) roots: &'a [TrustRoot],
    /// Whether only a signature that verifies makes a statement evidence.
    pub(super) require_signature: bool,
    /// The repository whose workflows may sign keylessly when no identity is named.
    pub(super) signer: Option<&'a str>,
}

impl<'a> Expectations<'a> {
    /// The identity a keyless bundle is held to: the policy, with the workflows of the signer's
    /// repository (or, when a signature is not required, of the artifact's source) when it names none.
    /// The artifact's source annotation is written by whoever pushed it: when a signature is
    /// required, it never says whose signature counts.
    pub(super) fn keyless_identity(&self) -> sigstore::Identity<'a> {
        sigstore::Identity {
            policy: self.identity,
            source: match self.require_signature {
                true => self.signer,
                false => self.signer.or(self.source),
            },
            revision: self.revision,
        }
    }

    /// Who the signature must come from, for a refusal.
    fn signer_named(&self) -> String {
        match (
            self.public_key,
            &self.identity.identity,
            &self.identity.identity_regexp,
            self.signer,
        ) {
            (Some(_), ..) => "`public-key`".to_owned(),
            (None, Some(exact), ..) => format!("`{exact}`"),
            (None, None, Some(re), _) => format!("an identity matching `{re}`"),
            (None, None, None, Some(repo)) => format!("a GitHub Actions workflow of `{repo}`"),
            (None, None, None, None) => "any identity".to_owned(),
        }
    }
}

/// What to do when no signature verifies, for every refusal alike.
pub(super) const SIGN_IT: &str = "sign it in the release job (keyless: `permissions: id-token: write`; or `signing-key` there and `public-key` here), or accept unsigned provenance with `require-signature: false`";

/// One referrer's checks, and whether a signature by the identity or key asked for verified.
struct Verdict {
    checks: Vec<Check>,
    signed: bool,
}

impl Verdict {
    fn passed(&self, want: &Expectations<'_>) -> bool {
        (self.signed || !want.require_signature)
            && self.checks.iter().all(|c| c.outcome != Outcome::Fail)
    }
}

/// The artifact types of the referrers verify checks, in one place: the listing is filtered
/// on them before anything is fetched, and each has its arm in [`check_referrer`].
pub(super) const CHECKED_ARTIFACT_TYPES: &[&str] =
    &[sigstore::BUNDLE_MEDIA_TYPE, IN_TOTO_ARTIFACT_TYPE];

/// The most referrers of the checked types that are fetched: the newest this many (the
/// fallback index lists them oldest first). A subject re-pushed daily for a month has this
/// many; thousands are a flood, not a history.
pub(super) const MOST_CHECKED: usize = 32;

/// How many referrers are fetched at once.
const IN_FLIGHT: usize = 8;

/// Finds the provenance referrers of the subject among those `listing` holds and checks the
/// newest [`MOST_CHECKED`] of them, [`IN_FLIGHT`] at a time; the newest that passes everything
/// wins, else the newest one's findings are reported (with a word on those left unchecked).
pub(super) async fn check_provenance<T: ReadTarget>(
    source: &T,
    want: &Expectations<'_>,
    listing: &crate::error::Result<Vec<Descriptor>>,
) -> Vec<Check> {
    use futures_util::StreamExt;
    let referrers = match listing {
        Ok(r) => r,
        Err(e) => return vec![Check::fail("provenance", crate::error::error_chain(e))],
    };
    let mut candidates: Vec<&Descriptor> = referrers
        .iter()
        .filter(|r| r.artifact_type.as_deref() == Some(sigstore::BUNDLE_MEDIA_TYPE))
        // The SBOM's bundles sign another statement.
        .filter(|r| {
            r.annotations
                .get(sigstore::PREDICATE_TYPE_ANNOTATION)
                .map(String::as_str)
                != Some(crate::provenance::referrer::SBOM_PREDICATE_TYPE)
        })
        .collect();
    // A signed bundle, where one exists, is what must pass: an unsigned statement beside it
    // is not taken in its place.
    if candidates.is_empty() {
        candidates = referrers
            .iter()
            .filter(|r| r.artifact_type.as_deref() == Some(IN_TOTO_ARTIFACT_TYPE))
            .collect();
    }
    let types = CHECKED_ARTIFACT_TYPES
        .iter()
        .map(|t| format!("`{t}`"))
        .collect::<Vec<_>>()
        .join(", ");
    if candidates.is_empty() {
        return vec![Check::fail(
            "provenance",
            format!(
                "no provenance referrer (artifactType {types}) names {} as its subject{}",
                want.subject,
                if want.require_signature {
                    format!("; push it with `provenance: true` and {SIGN_IT}")
                } else {
                    String::new()
                }
            ),
        )];
    }
    let listed = candidates.len();
    // The newest first; among them, bundles that say they hold SLSA provenance before the rest
    // (statements, which carry no such annotation, keep their order).
    let mut newest_first: Vec<&Descriptor> =
        candidates.into_iter().rev().take(MOST_CHECKED).collect();
    newest_first.sort_by_key(|r| {
        r.annotations
            .get(sigstore::PREDICATE_TYPE_ANNOTATION)
            .is_none_or(|p| p != SLSA_PROVENANCE_V1)
    });
    let mut checked = futures_util::stream::iter(newest_first)
        .map(|candidate| check_referrer(source, candidate, want))
        .buffered(IN_FLIGHT);
    let mut newest = None;
    while let Some(verdict) = checked.next().await {
        if verdict.passed(want) {
            return verdict.checks;
        }
        newest.get_or_insert(verdict.checks);
    }
    let mut checks = newest.expect("at least one candidate");
    if want.require_signature {
        checks.push(Check::fail(
            "signature",
            format!(
                "no provenance of {} carries a signature by {} that verifies; {SIGN_IT}",
                want.subject,
                want.signer_named()
            ),
        ));
    }
    if listed > MOST_CHECKED {
        checks.push(Check::fail(
            "provenance",
            format!(
                "{listed} referrers of type {types} name {}, more than the {MOST_CHECKED} newest that were checked, and none of those passed",
                want.subject
            ),
        ));
    }
    checks
}

async fn check_referrer<T: ReadTarget>(
    source: &T,
    referrer: &Descriptor,
    want: &Expectations<'_>,
) -> Verdict {
    let mut checks = Vec::new();
    let fail = |mut checks: Vec<Check>, name: &str, detail: String| {
        checks.push(Check::fail(name, detail));
        Verdict {
            checks,
            signed: false,
        }
    };
    let manifest = match source
        .get_manifest(&ManifestRef::Digest(referrer.digest.clone()))
        .await
    {
        Ok(Some(blob)) => match serde_json::from_slice::<Manifest>(&blob.bytes) {
            Ok(m) => m,
            Err(e) => {
                return fail(
                    checks,
                    "provenance",
                    format!("referrer {} is not an image manifest: {e}", referrer.digest),
                );
            }
        },
        Ok(None) => {
            return fail(
                checks,
                "provenance",
                format!("referrer {} is listed but missing", referrer.digest),
            );
        }
        Err(e) => return fail(checks, "provenance", crate::error::error_chain(&e)),
    };
    match &manifest.subject {
        Some(s) if &s.digest == want.subject => {}
        Some(s) => {
            return fail(
                checks,
                "provenance subject",
                format!(
                    "referrer {} names subject {}, not {}",
                    referrer.digest, s.digest, want.subject
                ),
            );
        }
        None => {
            return fail(
                checks,
                "provenance subject",
                format!("referrer {} has no subject", referrer.digest),
            );
        }
    }
    let bundle_layer = manifest
        .layers
        .iter()
        .find(|l| sigstore::is_bundle_media_type(&l.media_type));
    let Some(layer) = bundle_layer.or(manifest.layers.first()) else {
        return fail(
            checks,
            "provenance",
            format!("referrer {} has no layer", referrer.digest),
        );
    };
    let bytes = match source.get_blob(layer).await {
        Ok(b) => b,
        Err(e) => return fail(checks, "provenance", crate::error::error_chain(&e)),
    };
    checks.push(Check::pass(
        "provenance",
        format!("referrer {} ({})", referrer.digest, layer.media_type),
    ));

    let (media_type, bytes) = match sigstore::unlogged_key_envelope(&layer.media_type, &bytes) {
        Some(envelope) => {
            checks.push(Check::pass(
                "sigstore bundle",
                "signed with a key, neither logged nor timestamped: its DSSE envelope is checked as one",
            ));
            (DSSE_MEDIA_TYPE, envelope)
        }
        None => (layer.media_type.as_str(), bytes),
    };

    // The statement, from the envelope (its signature checked when a key is given) or as is.
    let mut signed = false;
    let statement = match (media_type, want.public_key) {
        (media_type, key) if sigstore::is_bundle_media_type(media_type) => {
            let identity = want.keyless_identity();
            let checked = sigstore::check_bundle(&bytes, want.subject, want.roots, &identity, key);
            signed = checked.signed;
            checks.extend(checked.checks);
            match checked.statement {
                Some(statement) => statement,
                None => {
                    return Verdict {
                        checks,
                        signed: false,
                    };
                }
            }
        }
        (DSSE_MEDIA_TYPE, Some(key)) => match dsse::verify_dsse(&bytes, key) {
            Ok(payload) => {
                checks.push(Check::pass(
                    "provenance signature",
                    "the DSSE signature verifies with `public-key`",
                ));
                signed = true;
                payload
            }
            Err(e) => return fail(checks, "provenance signature", e.to_string()),
        },
        (DSSE_MEDIA_TYPE, None) if want.require_signature => {
            return fail(
                checks,
                "provenance signature",
                format!(
                    "found a statement signed with a key (referrer {}), but no `public-key` to check it: with {} named, it is no evidence",
                    referrer.digest,
                    want.signer_named()
                ),
            );
        }
        (DSSE_MEDIA_TYPE, None) => match unverified_payload(&bytes) {
            Ok(payload) => {
                checks.push(Check::skip(
                    "provenance signature",
                    "signed, but no `public-key` was given to check it",
                ));
                payload
            }
            Err(e) => return fail(checks, "provenance signature", e.to_string()),
        },
        (IN_TOTO_MEDIA_TYPE, Some(_)) => {
            return fail(
                checks,
                "provenance signature",
                "the statement is not signed (a plain in-toto statement, not a DSSE envelope)"
                    .to_owned(),
            );
        }
        (IN_TOTO_MEDIA_TYPE, None) if want.require_signature => {
            return fail(
                checks,
                "provenance signature",
                format!(
                    "found only an unsigned in-toto statement (referrer {}), which anyone who can push to the repository can attach",
                    referrer.digest
                ),
            );
        }
        (IN_TOTO_MEDIA_TYPE, None) => {
            checks.push(Check::skip(
                "provenance signature",
                "unsigned statement; give `public-key` to require a signature",
            ));
            bytes
        }
        (other, _) => {
            return fail(
                checks,
                "provenance",
                format!(
                    "referrer layer has media type `{other}`, not a statement or a DSSE envelope"
                ),
            );
        }
    };
    checks.extend(check_statement(&statement, want));
    Verdict { checks, signed }
}

/// The statement inside an envelope, read without a key to check the signature with.
fn unverified_payload(envelope: &[u8]) -> Result<Vec<u8>, String> {
    use base64::Engine as _;
    let envelope: dsse::Envelope = serde_json::from_slice(envelope)
        .map_err(|e| format!("the provenance is not a DSSE envelope: {e}"))?;
    base64::engine::general_purpose::STANDARD
        .decode(&envelope.payload)
        .map_err(|e| format!("the envelope's payload is not base64: {e}"))
}

/// The statement's type, subject, repository and commit.
pub(super) fn check_statement(bytes: &[u8], want: &Expectations<'_>) -> Vec<Check> {
    let statement: Statement = match serde_json::from_slice(bytes) {
        Ok(v) => v,
        Err(e) if e.is_data() => {
            return vec![Check::fail(
                "provenance statement",
                format!("not an in-toto statement: {e}"),
            )];
        }
        Err(e) => {
            return vec![Check::fail(
                "provenance statement",
                format!("not JSON: {e}"),
            )];
        }
    };
    let mut checks = Vec::new();
    let kind = (
        statement.statement_type.as_str(),
        statement.predicate_type.as_str(),
    );
    checks.push(match kind {
        (STATEMENT_TYPE, SLSA_PROVENANCE_V1) => {
            Check::pass("provenance statement", "in-toto v1, SLSA provenance v1")
        }
        (t, p) => Check::fail(
            "provenance statement",
            format!(
                "expected an in-toto v1 statement with SLSA provenance v1, found `{}` / `{}`",
                if t.is_empty() { "?" } else { t },
                if p.is_empty() { "?" } else { p }
            ),
        ),
    });
    let subjects: Vec<&str> = statement
        .subject
        .iter()
        .filter_map(|s| s.digest.get("sha256").map(String::as_str))
        .collect();
    checks.push(if subjects.contains(&want.subject.hex()) {
        Check::pass(
            "provenance subject",
            format!("the statement is about {}", want.subject),
        )
    } else {
        Check::fail(
            "provenance subject",
            format!(
                "the statement is about {}, not {}",
                if subjects.is_empty() {
                    "nothing".to_owned()
                } else {
                    subjects
                        .iter()
                        .map(|h| format!("sha256:{h}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                },
                want.subject
            ),
        )
    });
    let build = &statement.predicate.build_definition;
    let repository = build
        .external_parameters
        .workflow
        .as_ref()
        .map(|w| w.repository.as_str())
        .filter(|r| !r.is_empty());
    checks.push(match (want.source, repository) {
        (None, found) => Check::skip("provenance source", format!("nothing to compare: no `expect-source` and no source annotation; the statement names `{}`", found.unwrap_or("nothing"))),
        (Some(w), Some(found)) if same_repository(w, found) => Check::pass("provenance source", format!("`{found}`")),
        (Some(w), found) => Check::fail("provenance source", format!("expected `{w}`, the statement names `{}`", found.unwrap_or("no repository (externalParameters.workflow.repository)"))),
    });
    let commits: Vec<&str> = build
        .resolved_dependencies
        .iter()
        .filter_map(|d| d.digest.get("gitCommit").map(String::as_str))
        .collect();
    checks.push(match want.revision {
        None => Check::skip(
            "provenance revision",
            "nothing to compare: no `expect-revision` and no revision annotation",
        ),
        Some(w) if commits.iter().any(|c| c.eq_ignore_ascii_case(w)) => {
            Check::pass("provenance revision", format!("`{w}`"))
        }
        Some(w) => Check::fail(
            "provenance revision",
            format!(
                "expected commit `{w}`, the statement names {}",
                if commits.is_empty() {
                    "no commit".to_owned()
                } else {
                    commits
                        .iter()
                        .map(|c| format!("`{c}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                }
            ),
        ),
    });
    checks
}

#[cfg(test)]
mod tests {
    use super::*;

    fn statement(subject_hex: &str, repo: &str, commit: &str) -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({
            "_type": STATEMENT_TYPE,
            "subject": [{"name": "x", "digest": {"sha256": subject_hex}}],
            "predicateType": SLSA_PROVENANCE_V1,
            "predicate": {"buildDefinition": {
                "externalParameters": {"workflow": {"repository": repo}},
                "resolvedDependencies": [{"uri": "git+x", "digest": {"gitCommit": commit}}]
            }}
        }))
        .unwrap()
    }

    #[test]
    fn statement_checks_name_what_differs() {
        let digest = Digest::of(b"m");
        let want = Expectations {
            subject: &digest,
            source: Some("https://github.com/acme/app"),
            revision: Some("abc"),
            public_key: None,
            identity: &IdentityPolicy::default(),
            roots: &[],
            require_signature: false,
            signer: None,
        };
        let ok = check_statement(
            &statement(digest.hex(), "https://github.com/acme/app.git", "abc"),
            &want,
        );
        assert!(ok.iter().all(|c| c.outcome == Outcome::Pass), "{ok:?}");
        let other = Digest::of(b"other");
        let bad = check_statement(
            &statement(other.hex(), "https://github.com/evil/app", "def"),
            &want,
        );
        let failed: Vec<&str> = bad
            .iter()
            .filter(|c| c.outcome == Outcome::Fail)
            .map(|c| c.name.as_str())
            .collect();
        assert_eq!(
            failed,
            [
                "provenance subject",
                "provenance source",
                "provenance revision"
            ]
        );
        assert!(bad[1].detail.contains(&other.to_string()), "{bad:?}");
    }

    #[test]
    fn a_statement_that_is_not_slsa_provenance_is_named_as_such() {
        let digest = Digest::of(b"m");
        let want = Expectations {
            subject: &digest,
            source: None,
            revision: None,
            public_key: None,
            identity: &IdentityPolicy::default(),
            roots: &[],
            require_signature: false,
            signer: None,
        };
        let detail = |bytes: &[u8]| check_statement(bytes, &want)[0].detail.clone();
        assert!(detail(b"{not json").starts_with("not JSON"));
        assert!(
            detail(br#"{"_type": "x", "subject": "everything"}"#)
                .starts_with("not an in-toto statement: invalid type"),
        );
        let spdx = br#"{"_type": "https://in-toto.io/Statement/v1", "predicateType": "https://spdx.dev/Document", "predicate": {"spdxVersion": "SPDX-2.3"}}"#;
        assert_eq!(
            detail(spdx),
            "expected an in-toto v1 statement with SLSA provenance v1, found `https://in-toto.io/Statement/v1` / `https://spdx.dev/Document`"
        );
    }
}
