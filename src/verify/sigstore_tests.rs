//! The bundle checks against real bundles of GitHub's attest-build-provenance (one from a
//! public repository, logged in the public-good instance; one from a private repository,
//! timestamped by GitHub's TSA) and the embedded roots.

use super::*;

#[test]
fn embedded_roots_parse_and_build_verifiers() {
    let roots = TrustRoot::embedded();
    assert_eq!(roots.len(), 2);
    for root in &roots {
        Verifier::new(&root.root).unwrap();
    }
    assert!(roots[0].has_tlogs() && roots[0].has_ct_logs());
    assert!(!roots[1].has_tlogs() && !roots[1].has_ct_logs());
    assert!(!roots[1].root.timestamp_authorities.is_empty());
}

#[test]
fn trust_config_and_plain_root_are_both_accepted() {
    let plain = TrustRoot::from_json("plain", SIGSTORE_PRODUCTION_TRUSTED_ROOT).unwrap();
    assert!(plain.has_tlogs());
    let config = serde_json::json!({
        "mediaType": "application/vnd.dev.sigstore.clienttrustconfig.v0.1+json",
        "trustedRoot": serde_json::from_str::<serde_json::Value>(SIGSTORE_PRODUCTION_TRUSTED_ROOT).unwrap(),
        "signingConfig": {"mediaType": "application/vnd.dev.sigstore.signingconfig.v0.2+json"}
    });
    let wrapped = TrustRoot::from_json("wrapped", &config.to_string()).unwrap();
    assert_eq!(wrapped.root.tlogs.len(), plain.root.tlogs.len());
    let err = TrustRoot::from_json("`x.json`", r#"{"mediaType":"other"}"#).unwrap_err();
    assert!(err.contains("`x.json` is neither"), "{err}");
    let err = TrustRoot::from_json("`x.json`", "nope").unwrap_err();
    assert!(err.contains("`x.json` is not JSON"), "{err}");
}

use crate::verify::report::Outcome;

/// attest-build-provenance in a public repository (malancas/attest-demo), through GitHub's
/// reusable attestation workflow: Fulcio certificate with SCT, a Rekor dsse entry.
const PUBLIC_GOOD: &str =
    include_str!("../../tests/fixtures/sigstore/public-good-attest-build-provenance.sigstore.json");
const PUBLIC_GOOD_SUBJECT: &str =
    "49a3aa6075e0f49f82843e74b5baa614ad2a588e6675612bf108a0a008c5ac25";
const PUBLIC_GOOD_SOURCE: &str = "https://github.com/malancas/attest-demo";
const PUBLIC_GOOD_REVISION: &str = "95baf27389e83e6a5c48f42e190d48d7abcea19e";

/// attest-build-provenance in a private repository (actions/attest-demo): GitHub's Fulcio and
/// TSA, no transparency log.
const GITHUB: &str =
    include_str!("../../tests/fixtures/sigstore/github-attest-build-provenance.sigstore.json");
const GITHUB_SUBJECT: &str = "ae57936def59bc4c75edd3a837d89bcefc6d3a5e31d55a6fa7a71624f92c3c3b";
const GITHUB_SOURCE: &str = "https://github.com/actions/attest-demo";
const GITHUB_REVISION: &str = "a6c23b9806c593664f68637c8f9d45dfcf98b2db";

fn digest(hex: &str) -> Digest {
    format!("sha256:{hex}").parse().unwrap()
}

fn check(
    bundle: &str,
    subject: &str,
    roots: &[TrustRoot],
    policy: &IdentityPolicy,
    source: &str,
    revision: &str,
) -> Checked {
    let identity = Identity {
        policy,
        source: Some(source),
        revision: Some(revision),
    };
    check_bundle(bundle.as_bytes(), &digest(subject), roots, &identity, None)
}

fn outcome(checked: &Checked, name: &str) -> Outcome {
    let found: Vec<&Check> = checked.checks.iter().filter(|c| c.name == name).collect();
    assert_eq!(found.len(), 1, "one `{name}` check in {:?}", checked.checks);
    found[0].outcome
}

fn failed(checked: &Checked) -> Vec<&str> {
    checked
        .checks
        .iter()
        .filter(|c| c.outcome == Outcome::Fail)
        .map(|c| c.name.as_str())
        .collect()
}

/// The reusable workflow's SAN, which is not a workflow of the source repository.
fn reusable_workflow() -> IdentityPolicy {
    IdentityPolicy {
        identity_regexp: Some(
            regex::Regex::new("^https://github.com/github/artifact-attestations-workflows/")
                .unwrap(),
        ),
        ..IdentityPolicy::default()
    }
}

#[test]
fn a_public_good_attestation_passes_every_named_check() {
    let checked = check(
        PUBLIC_GOOD,
        PUBLIC_GOOD_SUBJECT,
        &TrustRoot::embedded(),
        &reusable_workflow(),
        PUBLIC_GOOD_SOURCE,
        PUBLIC_GOOD_REVISION,
    );
    for name in [
        "sigstore bundle",
        "certificate identity",
        "certificate issuer",
        "certificate source",
        "certificate revision",
        "signing time",
        "certificate chain",
        "certificate SCT",
        "transparency log",
        "provenance signature",
        "log entry",
    ] {
        assert_eq!(
            outcome(&checked, name),
            Outcome::Pass,
            "{name}: {:?}",
            checked.checks
        );
    }
    let chain = checked
        .checks
        .iter()
        .find(|c| c.name == "certificate chain")
        .unwrap();
    assert!(chain.detail.contains("public-good"), "{chain:?}");
    assert!(checked.statement.is_some());
    assert!(
        checked.signed,
        "every check passed: signed by the identity asked for"
    );
}

#[test]
fn a_bundle_is_signed_only_by_the_identity_it_was_compared_to() {
    // Verified, but from another repository's workflows: no signature by the signer asked for.
    let other = check(
        PUBLIC_GOOD,
        PUBLIC_GOOD_SUBJECT,
        &TrustRoot::embedded(),
        &IdentityPolicy::default(),
        "https://github.com/evil/app",
        PUBLIC_GOOD_REVISION,
    );
    assert!(!other.signed, "{:?}", other.checks);
    // Compared to no identity at all: verified, yet by anyone.
    let identity = Identity {
        policy: &IdentityPolicy::default(),
        source: None,
        revision: None,
    };
    let anyone = check_bundle(
        PUBLIC_GOOD.as_bytes(),
        &digest(PUBLIC_GOOD_SUBJECT),
        &TrustRoot::embedded(),
        &identity,
        None,
    );
    assert_eq!(failed(&anyone), Vec::<&str>::new(), "{:?}", anyone.checks);
    assert_eq!(outcome(&anyone, "certificate identity"), Outcome::Skip);
    assert!(!anyone.signed, "{:?}", anyone.checks);
}

#[test]
fn a_github_instance_attestation_passes_on_its_timestamp() {
    let checked = check(
        GITHUB,
        GITHUB_SUBJECT,
        &TrustRoot::embedded(),
        &IdentityPolicy::default(),
        GITHUB_SOURCE,
        GITHUB_REVISION,
    );
    assert_eq!(failed(&checked), Vec::<&str>::new(), "{:?}", checked.checks);
    for name in [
        "certificate identity",
        "signing time",
        "certificate chain",
        "provenance signature",
    ] {
        assert_eq!(outcome(&checked, name), Outcome::Pass, "{name}");
    }
    assert_eq!(outcome(&checked, "certificate SCT"), Outcome::Skip);
    assert_eq!(outcome(&checked, "transparency log"), Outcome::Skip);
    let chain = checked
        .checks
        .iter()
        .find(|c| c.name == "certificate chain")
        .unwrap();
    assert!(chain.detail.contains("GitHub"), "{chain:?}");
}

#[test]
fn another_repositorys_workflow_fails_the_identity() {
    // By default the SAN must be a workflow of the expected source; this one is a reusable
    // workflow of another repository.
    let checked = check(
        PUBLIC_GOOD,
        PUBLIC_GOOD_SUBJECT,
        &TrustRoot::embedded(),
        &IdentityPolicy::default(),
        PUBLIC_GOOD_SOURCE,
        PUBLIC_GOOD_REVISION,
    );
    assert_eq!(failed(&checked), ["certificate identity"]);
    let exact = IdentityPolicy {
        identity: Some(format!(
            "{PUBLIC_GOOD_SOURCE}/.github/workflows/release.yml@refs/heads/main"
        )),
        ..IdentityPolicy::default()
    };
    let checked = check(
        PUBLIC_GOOD,
        PUBLIC_GOOD_SUBJECT,
        &TrustRoot::embedded(),
        &exact,
        PUBLIC_GOOD_SOURCE,
        PUBLIC_GOOD_REVISION,
    );
    assert_eq!(failed(&checked), ["certificate identity"]);
}

#[test]
fn another_issuer_source_or_revision_fails_its_check() {
    let other_issuer = IdentityPolicy {
        issuer: Some("https://accounts.google.com".to_owned()),
        ..reusable_workflow()
    };
    let checked = check(
        PUBLIC_GOOD,
        PUBLIC_GOOD_SUBJECT,
        &TrustRoot::embedded(),
        &other_issuer,
        PUBLIC_GOOD_SOURCE,
        PUBLIC_GOOD_REVISION,
    );
    assert_eq!(failed(&checked), ["certificate issuer"]);
    let checked = check(
        PUBLIC_GOOD,
        PUBLIC_GOOD_SUBJECT,
        &TrustRoot::embedded(),
        &reusable_workflow(),
        "https://github.com/evil/attest-demo",
        "0000000000000000000000000000000000000000",
    );
    assert_eq!(
        failed(&checked),
        ["certificate source", "certificate revision"]
    );
}

#[test]
fn a_certificate_from_an_untrusted_ca_fails_the_chain() {
    // The public-good root with GitHub's Fulcio CAs in place of its own: the log still vouches
    // for the signing time, but the certificate chains to none of the CAs.
    let mut root: serde_json::Value =
        serde_json::from_str(SIGSTORE_PRODUCTION_TRUSTED_ROOT).unwrap();
    let github: serde_json::Value = serde_json::from_str(SIGSTORE_GITHUB_TRUSTED_ROOT).unwrap();
    root["certificateAuthorities"] = github["certificateAuthorities"].clone();
    let roots = [TrustRoot::from_json("a root of other CAs", &root.to_string()).unwrap()];
    let checked = check(
        PUBLIC_GOOD,
        PUBLIC_GOOD_SUBJECT,
        &roots,
        &reusable_workflow(),
        PUBLIC_GOOD_SOURCE,
        PUBLIC_GOOD_REVISION,
    );
    assert_eq!(
        failed(&checked),
        ["certificate chain"],
        "{:?}",
        checked.checks
    );
    assert_eq!(outcome(&checked, "signing time"), Outcome::Pass);
    assert_eq!(outcome(&checked, "provenance signature"), Outcome::Skip);
    assert!(checked.statement.is_none());
}

#[test]
fn a_signature_over_other_bytes_fails_the_signature() {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut bundle: serde_json::Value = serde_json::from_str(PUBLIC_GOOD).unwrap();
    let payload = b64
        .decode(bundle["dsseEnvelope"]["payload"].as_str().unwrap())
        .unwrap();
    let other = String::from_utf8(payload)
        .unwrap()
        .replace("refs/heads/main", "refs/heads/evil");
    bundle["dsseEnvelope"]["payload"] = b64.encode(other).into();
    let checked = check(
        &bundle.to_string(),
        PUBLIC_GOOD_SUBJECT,
        &TrustRoot::embedded(),
        &reusable_workflow(),
        PUBLIC_GOOD_SOURCE,
        PUBLIC_GOOD_REVISION,
    );
    assert_eq!(
        failed(&checked),
        ["provenance signature"],
        "{:?}",
        checked.checks
    );
    assert!(checked.statement.is_none());
}

#[test]
fn a_statement_about_another_digest_is_handed_to_the_subject_check() {
    let other = "1111111111111111111111111111111111111111111111111111111111111111";
    let checked = check(
        PUBLIC_GOOD,
        other,
        &TrustRoot::embedded(),
        &reusable_workflow(),
        PUBLIC_GOOD_SOURCE,
        PUBLIC_GOOD_REVISION,
    );
    // Everything up to the signature verified; the statement's subject check names the digest.
    assert_eq!(failed(&checked), Vec::<&str>::new(), "{:?}", checked.checks);
    assert_eq!(outcome(&checked, "provenance signature"), Outcome::Pass);
    let statement = checked.statement.expect("the statement is checked");
    let want = crate::verify::provenance::Expectations {
        subject: &digest(other),
        source: Some(PUBLIC_GOOD_SOURCE),
        revision: Some(PUBLIC_GOOD_REVISION),
        public_key: None,
        identity: &IdentityPolicy::default(),
        roots: &[],
        require_signature: true,
        signer: Some(PUBLIC_GOOD_SOURCE),
    };
    let statement_checks = crate::verify::provenance::check_statement(&statement, &want);
    let failed: Vec<&str> = statement_checks
        .iter()
        .filter(|c| c.outcome == Outcome::Fail)
        .map(|c| c.name.as_str())
        .collect();
    assert_eq!(failed, ["provenance subject"]);
}

#[test]
fn a_keyless_bundle_is_refused_when_a_public_key_is_required() {
    let identity = Identity {
        policy: &IdentityPolicy::default(),
        source: None,
        revision: None,
    };
    let pem = "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE\n-----END PUBLIC KEY-----\n";
    let checked = check_bundle(
        PUBLIC_GOOD.as_bytes(),
        &digest(PUBLIC_GOOD_SUBJECT),
        &TrustRoot::embedded(),
        &identity,
        Some(pem),
    );
    assert_eq!(failed(&checked), ["provenance signature"]);
}
