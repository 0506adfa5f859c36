//! Verify reads Sigstore bundle referrers from the real registry, in the shape GitHub's
//! `actions/attest-build-provenance` (with `push-to-registry`) and cosign v3 attach them: a
//! manifest with `artifactType: application/vnd.dev.sigstore.bundle.v0.3+json`, the empty config,
//! the bundle as its one layer, annotations `dev.sigstore.bundle.content` and
//! `dev.sigstore.bundle.predicateType`. The bundles are real attestations of GitHub's action
//! (tests/fixtures/sigstore), checked against the embedded trusted roots; they are about another
//! artifact, so the statement's subject is what must fail, by name, after every other check held.

use crate::common;

use serde_json::json;

use common::raw::*;
use common::*;

const BUNDLE: &str = "application/vnd.dev.sigstore.bundle.v0.3+json";
const SLSA_PROVENANCE: &str = "https://slsa.dev/provenance/v1";

/// attest-build-provenance in malancas/attest-demo, signed by GitHub's reusable attestation
/// workflow through the public-good instance (Fulcio, CT log, Rekor).
const PUBLIC_GOOD: &[u8] =
    include_bytes!("../fixtures/sigstore/public-good-attest-build-provenance.sigstore.json");
const PUBLIC_GOOD_REPOSITORY: &str = "malancas/attest-demo";
const PUBLIC_GOOD_COMMIT: &str = "95baf27389e83e6a5c48f42e190d48d7abcea19e";
const PUBLIC_GOOD_WORKFLOW: &str = "^https://github.com/github/artifact-attestations-workflows/";

/// attest-build-provenance in the private actions/attest-demo: GitHub's Fulcio and TSA.
const GITHUB: &[u8] =
    include_bytes!("../fixtures/sigstore/github-attest-build-provenance.sigstore.json");
const GITHUB_REPOSITORY: &str = "actions/attest-demo";
const GITHUB_COMMIT: &str = "a6c23b9806c593664f68637c8f9d45dfcf98b2db";

/// Attaches `bundle` to the manifest `subject` as attest-build-provenance does (the manifest
/// by digest, then the fallback tag's index, for a registry without the referrers API).
fn attach_bundle(registry: &Registry, repo: &str, subject: &str, bundle: &[u8]) -> String {
    let (subject_bytes, _) = registry
        .manifest(repo, subject)
        .expect("the subject exists");
    registry.put_blob(repo, b"{}");
    registry.put_blob(repo, bundle);
    let annotations = json!({
        "dev.sigstore.bundle.content": "dsse-envelope",
        "dev.sigstore.bundle.predicateType": SLSA_PROVENANCE,
        "org.opencontainers.image.created": "2024-05-24T19:14:25.000Z",
    });
    let referrer = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": BUNDLE,
        "config": {"mediaType": EMPTY_CONFIG, "digest": sha256(b"{}"), "size": 2},
        "layers": [descriptor(BUNDLE, bundle)],
        "subject": descriptor(OCI_MANIFEST, &subject_bytes),
        "annotations": annotations,
    }))
    .unwrap();
    let digest = registry.put_manifest(repo, &sha256(&referrer), &referrer, OCI_MANIFEST);

    let tag = subject.replace(':', "-");
    let mut index = match registry.manifest(repo, &tag) {
        Some((bytes, _)) => serde_json::from_slice(&bytes).unwrap(),
        None => json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []}),
    };
    let mut entry = descriptor(OCI_MANIFEST, &referrer);
    entry["artifactType"] = json!(BUNDLE);
    entry["annotations"] = annotations;
    index["manifests"].as_array_mut().unwrap().push(entry);
    registry.put_manifest(repo, &tag, &serde_json::to_vec(&index).unwrap(), OCI_INDEX);
    digest
}

/// Pushes the module through the action as a release of `repository` at `commit` (so its
/// source and revision annotations name them), with the default unsigned provenance. Returns
/// the image reference by digest.
fn release_as(registry: &Registry, ws: &Workspace, repository: &str, commit: &str) -> String {
    let image = format!("{}/acme/multiply", registry.host());
    let mut env = ws.multiply_env(&image, &[("insecure", "true"), ("tags", "1.0.0")]);
    env.insert("GITHUB_REPOSITORY".into(), repository.into());
    env.insert("GITHUB_SHA".into(), commit.into());
    let run = ws.run_action(&env);
    assert!(run.success(), "{run:?}");
    format!("{image}@{}", ws.outputs()["digest"])
}

fn verify(ws: &Workspace, image: &str, inputs: &[(&str, &str)]) -> Run {
    let mut all = vec![
        ("command", "verify"),
        ("image", image),
        ("insecure", "true"),
    ];
    all.extend_from_slice(inputs);
    ws.run_action(&ws.action_env(&all))
}

/// The summary row of check `name`: its result cell.
fn result_of(summary: &str, name: &str) -> String {
    let rows: Vec<&str> = summary
        .lines()
        .filter(|l| l.starts_with(&format!("| {name} |")))
        .collect();
    assert_eq!(rows.len(), 1, "one `{name}` row in:\n{summary}");
    rows[0].split('|').nth(2).unwrap().trim().to_owned()
}

/// The names of the checks the summary shows as failed.
fn failed_rows(summary: &str) -> Vec<String> {
    summary
        .lines()
        .filter(|l| l.contains("| ❌ FAIL |"))
        .map(|l| l.split('|').nth(1).unwrap().trim().to_owned())
        .collect()
}

/// The one `::error` line, which names the failed checks.
fn failed_checks(run: &Run) -> String {
    assert!(!run.success(), "verify must fail: {run:?}");
    let lines = run.error_lines();
    assert_eq!(lines.len(), 1, "{run:?}");
    lines[0].to_owned()
}

#[test]
fn an_attest_build_provenance_bundle_is_checked_up_to_its_subject() {
    let registry = Registry::start();
    let ws = Workspace::new();
    let image = release_as(&registry, &ws, PUBLIC_GOOD_REPOSITORY, PUBLIC_GOOD_COMMIT);
    let digest = image.rsplit('@').next().unwrap().to_owned();
    attach_bundle(&registry, "acme/multiply", &digest, PUBLIC_GOOD);

    let run = verify(
        &ws,
        &image,
        &[
            (
                "expect-source",
                &format!("https://github.com/{PUBLIC_GOOD_REPOSITORY}"),
            ),
            ("expect-revision", PUBLIC_GOOD_COMMIT),
            ("certificate-identity-regexp", PUBLIC_GOOD_WORKFLOW),
        ],
    );
    let error = failed_checks(&run);
    // The bundle is the provenance checked, not the unsigned statement beside it; every step of
    // it holds against the embedded public-good root, and its statement is about another file.
    assert!(
        error.contains("provenance subject: the statement is about sha256:49a3aa60"),
        "{error}"
    );
    let summary = ws.summary();
    assert_eq!(
        failed_rows(&summary),
        ["provenance subject", "signature"],
        "{summary}"
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
        "provenance statement",
    ] {
        assert!(
            result_of(&summary, name).contains("pass"),
            "{name}:\n{summary}"
        );
    }
    assert!(
        summary.contains("the Sigstore public-good root"),
        "{summary}"
    );
}

#[test]
fn a_private_repositorys_attestation_is_checked_against_githubs_root() {
    let registry = Registry::start();
    let ws = Workspace::new();
    let image = release_as(&registry, &ws, GITHUB_REPOSITORY, GITHUB_COMMIT);
    let digest = image.rsplit('@').next().unwrap().to_owned();
    attach_bundle(&registry, "acme/multiply", &digest, GITHUB);

    // The defaults: a workflow of the expected source, GitHub Actions' issuer, and the
    // certificate's source repository and commit.
    let run = verify(
        &ws,
        &image,
        &[
            (
                "expect-source",
                &format!("https://github.com/{GITHUB_REPOSITORY}"),
            ),
            ("expect-revision", GITHUB_COMMIT),
        ],
    );
    let error = failed_checks(&run);
    assert!(
        error.contains("provenance subject: the statement is about sha256:ae57936d"),
        "{error}"
    );
    let summary = ws.summary();
    assert_eq!(
        failed_rows(&summary),
        ["provenance subject", "signature"],
        "{summary}"
    );
    for name in [
        "certificate identity",
        "signing time",
        "certificate chain",
        "provenance signature",
    ] {
        assert!(
            result_of(&summary, name).contains("pass"),
            "{name}:\n{summary}"
        );
    }
    assert!(
        result_of(&summary, "transparency log").contains("skip"),
        "{summary}"
    );
    assert!(summary.contains("GitHub's root"), "{summary}");
}

#[test]
fn another_repositorys_workflow_or_issuer_is_named() {
    let registry = Registry::start();
    let ws = Workspace::new();
    let image = release_as(&registry, &ws, PUBLIC_GOOD_REPOSITORY, PUBLIC_GOOD_COMMIT);
    let digest = image.rsplit('@').next().unwrap().to_owned();
    attach_bundle(&registry, "acme/multiply", &digest, PUBLIC_GOOD);
    let source = format!("https://github.com/{PUBLIC_GOOD_REPOSITORY}");

    // By default the SAN must be a workflow of the expected repository; GitHub's reusable
    // attestation workflow is another repository's.
    let run = verify(
        &ws,
        &image,
        &[
            ("expect-source", &source),
            ("expect-revision", PUBLIC_GOOD_COMMIT),
        ],
    );
    let error = failed_checks(&run);
    assert!(
        error.contains(&format!(
            "certificate identity: expected a workflow of `{source}`"
        )),
        "{error}"
    );
    assert!(error.contains("artifact-attestations-workflows"), "{error}");

    let run = verify(
        &ws,
        &image,
        &[
            ("expect-source", &source),
            ("expect-revision", PUBLIC_GOOD_COMMIT),
            ("certificate-identity-regexp", PUBLIC_GOOD_WORKFLOW),
            ("certificate-oidc-issuer", "https://accounts.google.com"),
        ],
    );
    let error = failed_checks(&run);
    assert!(
        error.contains("certificate issuer: expected `https://accounts.google.com`, found `https://token.actions.githubusercontent.com`"),
        "{error}"
    );
}

#[test]
fn a_bad_trust_config_or_regexp_is_an_input_error() {
    let ws = Workspace::new();
    ws.write("root.json", br#"{"mediaType": "application/json"}"#);
    for (input, value, says) in [
        (
            "sigstore-trust-config",
            "root.json",
            "neither a trusted root nor a client trust config",
        ),
        ("sigstore-trust-config", "missing.json", "cannot read"),
        (
            "certificate-identity-regexp",
            "(",
            "not a regular expression",
        ),
    ] {
        let run = verify(
            &ws,
            "127.0.0.1:9/acme/multiply@sha256:0000000000000000000000000000000000000000000000000000000000000000",
            &[(input, value)],
        );
        assert!(!run.success(), "{run:?}");
        let lines = run.error_lines();
        assert_eq!(lines.len(), 1, "{run:?}");
        assert!(lines[0].contains(&format!("input `{input}`")), "{run:?}");
        assert!(lines[0].contains(says), "{run:?}");
    }
}

/// A bundle holding a DSSE envelope signed with `key` (openssl) and public-key verification
/// material: what `signing-key` attaches and `cosign attest --key` users verify.
fn key_signed_bundle(statement: &[u8], key: &std::path::Path) -> Vec<u8> {
    let envelope: serde_json::Value =
        serde_json::from_slice(&dsse_envelope(statement, key)).unwrap();
    serde_json::to_vec(&json!({
        "mediaType": BUNDLE,
        "verificationMaterial": {"publicKey": {"hint": ""}, "tlogEntries": []},
        "dsseEnvelope": envelope,
    }))
    .unwrap()
}

#[test]
fn a_bundle_signed_with_a_key_is_checked_with_public_key() {
    let registry = Registry::start();
    let ws = Workspace::new();
    let image = release_as(&registry, &ws, "acme/multiply", COMMIT);
    let digest = image.rsplit('@').next().unwrap().to_owned();
    let keys = tempfile::tempdir().unwrap();
    let (signing, public) = p256_key(keys.path(), "release");
    let source = "https://github.com/acme/multiply";
    let statement = statement(&digest, source, COMMIT);
    attach_bundle(
        &registry,
        "acme/multiply",
        &digest,
        &key_signed_bundle(&statement, &signing),
    );
    let expect = [("expect-source", source), ("expect-revision", COMMIT)];

    // Neither logged nor timestamped, as `signing-key` attaches it: its envelope is checked as
    // a DSSE envelope referrer is. Without the key, nothing checks the signature: refused, in
    // one line that names what was found and what to do.
    let run = verify(&ws, &image, &expect);
    let error = failed_checks(&run);
    assert!(
        error.contains("provenance signature: found a statement signed with a key"),
        "{error}"
    );
    assert!(error.contains("`public-key`"), "{error}");
    assert!(error.contains("require-signature: false"), "{error}");
    assert_eq!(
        failed_rows(&ws.summary()),
        ["provenance signature", "signature"]
    );

    // With the key, the signature must verify.
    let run = verify(
        &ws,
        &image,
        &[&expect[..], &[("public-key", &public)]].concat(),
    );
    assert!(run.success(), "{run:?}");
    let summary = ws.summary();
    let summary = &summary[summary.rfind("### Wasm OCI artifact verif").unwrap()..];
    assert!(
        result_of(summary, "sigstore bundle").contains("pass"),
        "{summary}"
    );
    assert!(
        result_of(summary, "provenance signature").contains("pass"),
        "{summary}"
    );

    // Another key's public half refuses it.
    let (_, other) = p256_key(keys.path(), "other");
    let run = verify(
        &ws,
        &image,
        &[&expect[..], &[("public-key", &other)]].concat(),
    );
    let error = failed_checks(&run);
    assert!(error.contains("provenance signature"), "{error}");
}
