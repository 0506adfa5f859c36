//! Sigstore bundles (`application/vnd.dev.sigstore.bundle.v0.3+json`), as this tool, cosign and
//! GitHub's attest-build-provenance attach them: the bundle is checked against a trusted root by
//! sigstore-verify (certificate chain to the Fulcio CA, its SCT, the log's inclusion proof or the
//! signed timestamp inside the certificate's validity, the DSSE signature, the log entry being
//! this bundle's), and the certificate against an identity policy in cosign's vocabulary
//! (identity exact or regexp, OIDC issuer) and Fulcio's GitHub extensions. Each step is one named
//! check. The public-good and GitHub roots ship in the binary; `sigstore-trust-config` replaces
//! them with a trusted root or client trust config file.

use std::fmt;

use sigstore_verify::crypto::{CertificateInfo, parse_certificate_info};
use sigstore_verify::trust_root::{SIGSTORE_GITHUB_TRUSTED_ROOT, SIGSTORE_PRODUCTION_TRUSTED_ROOT};
use sigstore_verify::types::bundle::VerificationMaterialContent;
use sigstore_verify::types::{Bundle, DerPublicKey, Sha256Hash, SignatureContent};
use sigstore_verify::{
    CertificateError, Error as SigstoreError, PublicKeyVerificationPolicy, TransparencyLogError,
    VerificationPolicy, VerificationResult, Verifier,
};

pub(super) use super::identity::Identity;
use super::identity::identity_checks;
pub use super::identity::{GITHUB_ACTIONS_ISSUER, IdentityPolicy};
pub(super) use super::identity::{identity_regexp_input, same_repository};
use super::report::{Check, Outcome};
use crate::error::{Error, Result};
use crate::input;
use crate::reference::Digest;

/// The artifact type of a Sigstore bundle referrer, and the annotation cosign and GitHub set on
/// it to name the statement's predicate.
pub(super) use crate::provenance::referrer::{
    BUNDLE_MEDIA_TYPE, BUNDLE_PREDICATE_TYPE_ANNOTATION as PREDICATE_TYPE_ANNOTATION,
};

const TRUSTED_ROOT_MEDIA_TYPE_PREFIX: &str = "application/vnd.dev.sigstore.trustedroot";
const CLIENT_TRUST_CONFIG_MEDIA_TYPE_PREFIX: &str =
    "application/vnd.dev.sigstore.clienttrustconfig";

/// Whether `media_type` is a Sigstore bundle (v0.3, or the older `+json;version=0.x` forms).
pub(super) fn is_bundle_media_type(media_type: &str) -> bool {
    media_type == BUNDLE_MEDIA_TYPE
        || media_type.starts_with("application/vnd.dev.sigstore.bundle+json")
}

/// The DSSE envelope (as JSON) of a bundle signed with a key that has neither a log entry nor a
/// timestamp, what `signing-key` attaches; `None` for any other bundle. Sigstore's verifiers take
/// no such bundle (they need a log entry or a timestamp for the signing time), so its envelope
/// is checked as a DSSE envelope referrer is, with `public-key`.
pub(super) fn unlogged_key_envelope(media_type: &str, bytes: &[u8]) -> Option<Vec<u8>> {
    if !is_bundle_media_type(media_type) {
        return None;
    }
    let bundle: serde_json::Value = serde_json::from_slice(bytes).ok()?;
    let material = bundle.get("verificationMaterial")?;
    material.get("publicKey")?;
    let none = |v: Option<&serde_json::Value>| {
        v.and_then(serde_json::Value::as_array)
            .is_none_or(|a| a.is_empty())
    };
    let timestamps = material
        .get("timestampVerificationData")
        .and_then(|t| t.get("rfc3161Timestamps"));
    if !none(material.get("tlogEntries")) || !none(timestamps) {
        return None;
    }
    serde_json::to_vec(bundle.get("dsseEnvelope")?).ok()
}

/// One trusted root and the name the report gives it.
#[derive(Debug, Clone)]
pub struct TrustRoot {
    /// Where it came from, as the report names it.
    pub name: String,
    root: sigstore_verify::trust_root::TrustedRoot,
}

impl TrustRoot {
    /// The roots that ship with the binary: Sigstore's public-good instance and GitHub's
    /// (private repositories' attestations, timestamped by GitHub's TSA, without a public log).
    pub fn embedded() -> Vec<TrustRoot> {
        [
            (
                "the Sigstore public-good root",
                SIGSTORE_PRODUCTION_TRUSTED_ROOT,
            ),
            ("GitHub's root", SIGSTORE_GITHUB_TRUSTED_ROOT),
        ]
        .into_iter()
        .map(|(name, json)| TrustRoot {
            name: name.to_owned(),
            root: sigstore_verify::trust_root::TrustedRoot::from_json(json)
                .expect("the embedded trusted roots parse"),
        })
        .collect()
    }

    /// A trusted root file (`application/vnd.dev.sigstore.trustedroot+json`) or a client trust
    /// config (`application/vnd.dev.sigstore.clienttrustconfig.v0.1+json`, its `trustedRoot`),
    /// as JSON text; `name` says where it came from. Its keys and certificates must be usable.
    pub fn from_json(name: &str, text: &str) -> std::result::Result<TrustRoot, String> {
        let value: serde_json::Value =
            serde_json::from_str(text).map_err(|e| format!("{name} is not JSON: {e}"))?;
        let media_type = value["mediaType"].as_str().unwrap_or_default();
        let root = if value.get("trustedRoot").is_some()
            || media_type.starts_with(CLIENT_TRUST_CONFIG_MEDIA_TYPE_PREFIX)
        {
            value["trustedRoot"].to_string()
        } else if value.get("certificateAuthorities").is_some()
            || value.get("tlogs").is_some()
            || media_type.starts_with(TRUSTED_ROOT_MEDIA_TYPE_PREFIX)
        {
            text.to_owned()
        } else {
            return Err(format!(
                "{name} is neither a trusted root nor a client trust config (mediaType `{media_type}`)"
            ));
        };
        let root = sigstore_verify::trust_root::TrustedRoot::from_json(&root)
            .map_err(|e| format!("{name} holds no usable trusted root: {e}"))?;
        Verifier::new(&root).map_err(|e| format!("{name} holds no usable trusted root: {e}"))?;
        Ok(TrustRoot {
            name: name.to_owned(),
            root,
        })
    }

    fn has_ct_logs(&self) -> bool {
        !self.root.ctlogs.is_empty()
    }

    fn has_tlogs(&self) -> bool {
        !self.root.tlogs.is_empty()
    }

    /// Why `step` does not apply under this root (a keyless bundle's SCT or log), if it does not.
    fn skips(&self, step: Step) -> Option<String> {
        match step {
            Step::Sct if !self.has_ct_logs() => Some(format!(
                "{} names no certificate transparency log",
                self.name
            )),
            Step::Log if !self.has_tlogs() => Some(format!(
                "{} names no transparency log; the signed timestamp stands in",
                self.name
            )),
            _ => None,
        }
    }
}

/// What the signature was made with, for the report.
enum Signer {
    Certificate(Box<CertificateInfo>),
    Key,
}

/// The library's steps, in the order it runs them; each is a named check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Step {
    Bundle,
    SigningTime,
    Chain,
    Sct,
    Log,
    Signature,
    Subject,
    LogEntry,
}

impl Step {
    const ALL: [Step; 8] = [
        Step::Bundle,
        Step::SigningTime,
        Step::Chain,
        Step::Sct,
        Step::Log,
        Step::Signature,
        Step::Subject,
        Step::LogEntry,
    ];

    fn name(self) -> &'static str {
        match self {
            Step::Bundle => "sigstore bundle",
            Step::SigningTime => "signing time",
            Step::Chain => "certificate chain",
            Step::Sct => "certificate SCT",
            Step::Log => "transparency log",
            Step::Signature => "provenance signature",
            Step::Subject => "provenance subject",
            Step::LogEntry => "log entry",
        }
    }

    /// The step that raised `error`, and whether every earlier step is known to have passed.
    fn of(error: &SigstoreError) -> (Step, bool) {
        match error {
            SigstoreError::Timestamp(_) => (Step::SigningTime, false),
            SigstoreError::Certificate(CertificateError::Expired { .. })
            | SigstoreError::Certificate(CertificateError::NotYetValid { .. })
            | SigstoreError::TransparencyLog(TransparencyLogError::IntegratedTime(_)) => {
                (Step::SigningTime, false)
            }
            // webpki checks the leaf's validity at the signing time while it builds the path.
            SigstoreError::Certificate(CertificateError::ChainInvalid(detail))
                if detail.contains("Expired") || detail.contains("NotValidYet") =>
            {
                (Step::SigningTime, false)
            }
            SigstoreError::Certificate(CertificateError::Sct(_)) => (Step::Sct, true),
            SigstoreError::Certificate(_) => (Step::Chain, true),
            SigstoreError::TransparencyLog(TransparencyLogError::EntryMismatch(_)) => {
                (Step::LogEntry, true)
            }
            SigstoreError::TransparencyLog(_) => (Step::Log, false),
            SigstoreError::SignatureInvalid(_) => (Step::Signature, true),
            SigstoreError::ArtifactMismatch(_) | SigstoreError::UnsupportedArtifact(_) => {
                (Step::Subject, true)
            }
            SigstoreError::Bundle(_)
            | SigstoreError::InvalidBundle(_)
            | SigstoreError::UnsupportedBundle(_)
            | SigstoreError::Types(_) => (Step::Bundle, false),
            _ => (Step::SigningTime, false),
        }
    }
}

/// The outcome of checking one bundle: the checks, and the statement it carries when the bundle
/// verified (or verified but for its subject, which the statement checks then name).
pub(super) struct Checked {
    pub(super) checks: Vec<Check>,
    pub(super) statement: Option<Vec<u8>>,
    /// Whether the signature verified and came from the identity or key asked for.
    pub(super) signed: bool,
}

/// Checks the bundle `bytes` for the manifest `subject` against `roots` and, for a keyless
/// bundle, `identity`; with `public_key` the bundle must be signed with that key.
pub(super) fn check_bundle(
    bytes: &[u8],
    subject: &Digest,
    roots: &[TrustRoot],
    identity: &Identity<'_>,
    public_key: Option<&str>,
) -> Checked {
    let mut checks = Vec::new();
    let failed = |mut checks: Vec<Check>, name: &str, detail: String| {
        checks.push(Check::fail(name, detail));
        Checked {
            checks,
            statement: None,
            signed: false,
        }
    };
    let bundle = match std::str::from_utf8(bytes)
        .map_err(|e| e.to_string())
        .and_then(|text| Bundle::from_json(text).map_err(|e| e.to_string()))
    {
        Ok(b) => b,
        Err(e) => {
            return failed(
                checks,
                "sigstore bundle",
                format!("not a Sigstore bundle: {e}"),
            );
        }
    };
    let SignatureContent::DsseEnvelope(envelope) = &bundle.content else {
        return failed(
            checks,
            "provenance statement",
            "the bundle signs a message, not an in-toto statement (a signature, not an attestation)"
                .to_owned(),
        );
    };
    let payload = envelope.payload.as_bytes().to_vec();
    let signer = match &bundle.verification_material.content {
        VerificationMaterialContent::PublicKey(_) => Signer::Key,
        _ => match bundle.signing_certificate().map(parse_certificate_info) {
            Some(Ok(info)) => Signer::Certificate(Box::new(info)),
            Some(Err(e)) => {
                return failed(
                    checks,
                    "certificate chain",
                    format!("the signing certificate does not parse: {e}"),
                );
            }
            None => {
                return failed(
                    checks,
                    "sigstore bundle",
                    "no signing certificate".to_owned(),
                );
            }
        },
    };
    let logged = !bundle.verification_material.tlog_entries.is_empty();
    let described = format!(
        "{}, {}{}",
        bundle.media_type(),
        match &signer {
            Signer::Certificate(_) => "keyless (a Fulcio certificate)",
            Signer::Key => "signed with a key",
        },
        if logged { ", logged" } else { "" }
    );

    let artifact = match Sha256Hash::from_hex(subject.hex()) {
        Ok(hash) => hash,
        Err(e) => return failed(checks, "provenance subject", e.to_string()),
    };
    let (result, root) = match (&signer, public_key) {
        (Signer::Key, None) => {
            return failed(
                checks,
                "provenance signature",
                "the bundle is signed with a key; give `public-key` to check it".to_owned(),
            );
        }
        (Signer::Certificate(_), Some(_)) => {
            return failed(
                checks,
                "provenance signature",
                "`public-key` was given, but the bundle is signed keylessly (a certificate)"
                    .to_owned(),
            );
        }
        (Signer::Key, Some(pem)) => {
            let key = match DerPublicKey::from_pem(pem) {
                Ok(k) => k,
                Err(e) => return failed(checks, "provenance signature", e.to_string()),
            };
            // A key-signed bundle need not be logged; an entry it has must verify.
            let mut policy = PublicKeyVerificationPolicy::new(key);
            if !logged {
                policy = policy.skip_tlog_unsafe();
            }
            best_of(roots, |_, verifier| {
                verifier.verify(artifact, &bundle, &policy)
            })
        }
        (Signer::Certificate(_), None) => best_of(roots, |root, verifier| {
            let mut policy = VerificationPolicy::any_identity();
            if !root.has_ct_logs() {
                policy = policy.skip_sct();
            }
            if !root.has_tlogs() {
                policy = policy.skip_tlog_unsafe();
            }
            verifier.verify(artifact, &bundle, &policy)
        }),
    };

    checks.push(match &result {
        Err(e) if Step::of(e).0 == Step::Bundle => Check::fail("sigstore bundle", e.to_string()),
        _ => Check::pass("sigstore bundle", described),
    });
    // A keyless signature is from the identity asked for when its identity was compared to
    // one (not skipped for want of one) and nothing about it failed.
    let mut from_identity = true;
    if let Signer::Certificate(info) = &signer {
        let found = identity_checks(info, identity);
        from_identity = found.iter().all(|c| {
            c.outcome != Outcome::Fail
                && (c.name != "certificate identity" || c.outcome == Outcome::Pass)
        });
        checks.extend(found);
    }
    let keyless = matches!(signer, Signer::Certificate(_));
    let verified = match result {
        Ok(verified) => verified,
        Err(e) => {
            let (step, earlier_passed) = Step::of(&e);
            let root_name = root.map_or("no trusted root", |r| r.name.as_str());
            for s in Step::ALL {
                if !keyless && matches!(s, Step::Chain | Step::Sct) {
                    continue;
                }
                if s == Step::Bundle || (s == Step::Subject && step != Step::Subject) {
                    // The bundle's own check is above; the statement's subject is named by the
                    // statement checks.
                    continue;
                }
                if s == step {
                    if step != Step::Subject && step != Step::Bundle {
                        checks.push(Check::fail(s.name(), format!("{e} ({root_name})")));
                    }
                } else if let Some(reason) = root.and_then(|r| r.skips(s)) {
                    checks.push(Check::skip(s.name(), reason));
                } else if s < step && earlier_passed {
                    checks.push(Check::pass(s.name(), format!("verified ({root_name})")));
                } else {
                    checks.push(Check::skip(
                        s.name(),
                        format!("not checked: `{}` failed", step.name()),
                    ));
                }
            }
            return Checked {
                checks,
                statement: (step == Step::Subject).then_some(payload),
                signed: false,
            };
        }
    };
    let root = root.expect("a verified bundle has its root");
    let steps = passed_steps(&verified, root, &signer, logged);
    let signed = from_identity && steps.iter().all(|c| c.outcome != Outcome::Fail);
    checks.extend(steps);
    Checked {
        checks,
        statement: Some(payload),
        signed,
    }
}

/// Verifies against each root; the first that accepts wins, else the one that got furthest.
fn best_of(
    roots: &[TrustRoot],
    verify: impl Fn(&TrustRoot, &Verifier) -> sigstore_verify::Result<VerificationResult>,
) -> (
    sigstore_verify::Result<VerificationResult>,
    Option<&TrustRoot>,
) {
    let mut best: Option<(sigstore_verify::Error, &TrustRoot)> = None;
    for root in roots {
        let outcome = Verifier::new(&root.root).and_then(|verifier| verify(root, &verifier));
        match outcome {
            Ok(result) => return (Ok(result), Some(root)),
            Err(e) => {
                let further = best
                    .as_ref()
                    .is_none_or(|(b, _)| Step::of(&e).0 > Step::of(b).0);
                if further {
                    best = Some((e, root));
                }
            }
        }
    }
    match best {
        Some((e, root)) => (Err(e), Some(root)),
        None => (
            Err(SigstoreError::InvalidTrustRoot(
                "no trusted root is configured".to_owned(),
            )),
            None,
        ),
    }
}

/// The library's steps, all passed, each with what it established.
fn passed_steps(
    result: &VerificationResult,
    root: &TrustRoot,
    signer: &Signer,
    logged: bool,
) -> Vec<Check> {
    let mut checks = Vec::new();
    let times = result
        .verified_timestamps()
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    match signer {
        Signer::Certificate(info) => {
            checks.push(Check::pass(
                Step::SigningTime.name(),
                format!(
                    "{times} (log or timestamp authority), inside the certificate's validity {} to {}",
                    info.not_before, info.not_after
                ),
            ));
            checks.push(Check::pass(
                Step::Chain.name(),
                format!("chains to a Fulcio CA of {}", root.name),
            ));
            checks.push(match root.skips(Step::Sct) {
                Some(reason) => Check::skip(Step::Sct.name(), reason),
                None if result.sct_verified() => {
                    Check::pass(Step::Sct.name(), format!("a CT log of {}", root.name))
                }
                None => Check::fail(Step::Sct.name(), "not verified"),
            });
        }
        Signer::Key => {
            checks.push(if times.is_empty() {
                Check::skip(
                    Step::SigningTime.name(),
                    "signed with a key: no certificate whose validity a time must fall in",
                )
            } else {
                Check::pass(Step::SigningTime.name(), times)
            });
        }
    }
    checks.push(match root.skips(Step::Log) {
        Some(reason) => Check::skip(Step::Log.name(), reason),
        None if !logged => Check::skip(Step::Log.name(), "the bundle holds no log entry"),
        None if result.tlog_verified() => Check::pass(
            Step::Log.name(),
            match result.integrated_time() {
                Some(t) => format!(
                    "inclusion proof and checkpoint of {}, integrated {t}",
                    root.name
                ),
                None => format!("inclusion proof and checkpoint of {}", root.name),
            },
        ),
        None => Check::fail(Step::Log.name(), "not verified"),
    });
    checks.push(Check::pass(
        Step::Signature.name(),
        match signer {
            Signer::Certificate(_) => "the DSSE signature verifies with the certificate's key",
            Signer::Key => "the DSSE signature verifies with `public-key`",
        },
    ));
    checks.push(Check::pass(
        Step::LogEntry.name(),
        "every log entry and timestamp is this bundle's",
    ));
    checks
}

impl fmt::Display for TrustRoot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}

/// Reads `sigstore-trust-config`: JSON text, or the path of a file in `dir`.
pub(super) fn trust_root_input(value: &str, dir: &std::path::Path) -> Result<TrustRoot> {
    let input = input::SIGSTORE_TRUST_CONFIG;
    let (name, text) = if value.trim_start().starts_with('{') {
        ("the given trust config".to_owned(), value.to_owned())
    } else {
        let path = dir.join(value);
        let text = crate::files::read_input_text(input, &path, None)?;
        (format!("`{}`", path.display()), text)
    };
    TrustRoot::from_json(&name, &text).map_err(|e| Error::input(input, e))
}

#[cfg(test)]
#[path = "sigstore_tests.rs"]
mod tests;
