//! Verify of keyless Sigstore bundles made through the Sigstore stand-ins (tests/common/sigstore:
//! the runner's OIDC token, Fulcio with GitHub's extensions and an SCT, a Rekor v1 log), the
//! product reaching them only through `sigstore-trust-config`, as a private deployment would.
//! The bundles are made by an independent signer (sigstore-python's `attest` over the manifest
//! bytes, so the statement's subject is the manifest digest) and attached to artifacts in the
//! real registry in the shape GitHub's attest-build-provenance uses. One honest bundle passes
//! every check; each tampered variant fails, and the failure names its check.

use crate::common;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use serde_json::{Value, json};
use x509_cert::der::{Decode as _, Encode as _};

use common::raw::*;
use common::sigstore::{self, Job, Sigstore};
use common::*;

const BUNDLE: &str = "application/vnd.dev.sigstore.bundle.v0.3+json";
const SLSA_PROVENANCE: &str = "https://slsa.dev/provenance/v1";
pub(crate) const REPO: &str = "acme/multiply";
pub(crate) const SOURCE: &str = "https://github.com/acme/multiply";

fn b64() -> base64::engine::GeneralPurpose {
    base64::engine::general_purpose::STANDARD
}

/// An OIDC token from the stand-in endpoint, asked for as the runner's API is.
fn token(sigstore: &Sigstore) -> String {
    let url = format!("{}&audience=sigstore", sigstore.tokens.request_url);
    let answer: Value = reqwest::blocking::Client::new()
        .get(url)
        .header(
            "Authorization",
            format!("bearer {}", sigstore.tokens.request_token),
        )
        .send()
        .unwrap()
        .json()
        .unwrap();
    answer["value"].as_str().unwrap().to_owned()
}

/// GitHub's workflow provenance predicate for `repository` at `commit`.
fn predicate(repository: &str, commit: &str) -> Value {
    json!({
        "buildDefinition": {
            "buildType": "https://actions.github.io/buildtypes/workflow/v1",
            "externalParameters": {"workflow": {
                "ref": "refs/tags/v1.2.3",
                "repository": repository,
                "path": ".github/workflows/release.yml",
            }},
            "resolvedDependencies": [{
                "uri": format!("git+{repository}@refs/tags/v1.2.3"),
                "digest": {"gitCommit": commit},
            }],
        },
        "runDetails": {
            "builder": {"id": "https://github.com/actions/runner/github-hosted"},
            "metadata": {"invocationId": format!("{repository}/actions/runs/4242/attempts/1")},
        },
    })
}

/// A keyless SLSA provenance bundle about the manifest `manifest` (its bytes), signed through
/// the stand-ins by sigstore-python with the job's token.
pub(crate) fn attest(sigstore: &Sigstore, ws: &Workspace, manifest: &[u8]) -> Value {
    attest_from(sigstore, ws, manifest, SOURCE)
}

/// [`attest`] of a statement that names `source` as the repository built.
pub(crate) fn attest_from(
    sigstore: &Sigstore,
    ws: &Workspace,
    manifest: &[u8],
    source: &str,
) -> Value {
    let name = format!("manifest-{}.json", &sha256(manifest)[7..19]);
    let artifact = ws.write(&name, manifest);
    let predicate = ws.write(
        "predicate.json",
        &serde_json::to_vec(&predicate(source, COMMIT)).unwrap(),
    );
    let bundle = ws.root().join(format!("{name}.sigstore.json"));
    let out = sigstore::python_sigstore(
        sigstore,
        &[
            "attest",
            "--identity-token",
            &token(sigstore),
            "--predicate-type",
            SLSA_PROVENANCE,
            "--predicate",
            predicate.to_str().unwrap(),
            "--bundle",
            bundle.to_str().unwrap(),
            artifact.to_str().unwrap(),
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&std::fs::read(bundle).unwrap()).unwrap()
}

/// Attaches `bundle` to the manifest `subject` as attest-build-provenance does: a referrer with
/// the bundle's artifact type, the empty config, the bundle as its one layer, and the fallback
/// tag's index for a registry without the referrers API.
pub(crate) fn attach_bundle(registry: &Registry, subject: &str, bundle: &Value) {
    let bundle = serde_json::to_vec(bundle).unwrap();
    let (subject_bytes, _) = registry
        .manifest(REPO, subject)
        .expect("the subject exists");
    registry.put_blob(REPO, b"{}");
    registry.put_blob(REPO, &bundle);
    let annotations = json!({
        "dev.sigstore.bundle.content": "dsse-envelope",
        "dev.sigstore.bundle.predicateType": SLSA_PROVENANCE,
    });
    let referrer = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": BUNDLE,
        "config": {"mediaType": EMPTY_CONFIG, "digest": sha256(b"{}"), "size": 2},
        "layers": [descriptor(BUNDLE, &bundle)],
        "subject": descriptor(OCI_MANIFEST, &subject_bytes),
        "annotations": annotations,
    }))
    .unwrap();
    registry.put_manifest(REPO, &sha256(&referrer), &referrer, OCI_MANIFEST);
    let tag = subject.replace(':', "-");
    let mut index = match registry.manifest(REPO, &tag) {
        Some((bytes, _)) => serde_json::from_slice(&bytes).unwrap(),
        None => json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []}),
    };
    let mut entry = descriptor(OCI_MANIFEST, &referrer);
    entry["artifactType"] = json!(BUNDLE);
    entry["annotations"] = annotations;
    index["manifests"].as_array_mut().unwrap().push(entry);
    registry.put_manifest(REPO, &tag, &serde_json::to_vec(&index).unwrap(), OCI_INDEX);
}

/// A release pushed through the action (its default, unsigned provenance beside), told apart
/// from others by `n`. Returns the digest and the manifest bytes.
pub(crate) fn release(registry: &Registry, ws: &Workspace, n: u32) -> (String, Vec<u8>) {
    release_by(registry, ws, n, REPO)
}

/// [`release`] by a job of the repository `by` (its source annotation names it).
pub(crate) fn release_by(
    registry: &Registry,
    ws: &Workspace,
    n: u32,
    by: &str,
) -> (String, Vec<u8>) {
    let image = format!("{}/{REPO}", registry.host());
    let note = format!("org.example.release={n}");
    let mut env = ws.multiply_env(
        &image,
        &[
            ("insecure", "true"),
            ("tags", &format!("1.0.{n}")),
            ("annotations", &note),
        ],
    );
    env.insert("GITHUB_REPOSITORY".into(), by.into());
    env.insert(
        "GITHUB_REPOSITORY_OWNER".into(),
        by.split('/').next().unwrap().into(),
    );
    let run = ws.run_action(&env);
    assert!(run.success(), "{run:?}");
    let digest = ws.outputs()["digest"].clone();
    let (bytes, _) = registry.manifest(REPO, &digest).unwrap();
    (digest, bytes)
}

/// The deploy job's verify step with the stand-ins' trust config (a file in the workspace).
pub(crate) fn verify(
    registry: &Registry,
    ws: &Workspace,
    trust_config: &Value,
    digest: &str,
    extra: &[(&str, &str)],
) -> Run {
    ws.write(
        "trust-config.json",
        &serde_json::to_vec(trust_config).unwrap(),
    );
    let image = format!("{}/{REPO}@{digest}", registry.host());
    let mut inputs = vec![
        ("command", "verify"),
        ("image", image.as_str()),
        ("insecure", "true"),
        ("sigstore-trust-config", "trust-config.json"),
        ("expect-source", SOURCE),
        ("expect-revision", COMMIT),
    ];
    inputs.extend_from_slice(extra);
    ws.run_action(&ws.action_env(&inputs))
}

/// The names of the checks the step summary shows as failed.
pub(crate) fn failed(ws: &Workspace, run: &Run) -> Vec<String> {
    assert!(!run.success(), "verify must fail: {run:?}");
    assert_eq!(run.error_lines().len(), 1, "{run:?}");
    verify_summary(ws)
        .lines()
        .filter(|l| l.contains("| ❌ FAIL |"))
        .map(|l| l.split('|').nth(1).unwrap().trim().to_owned())
        .collect()
}

/// The last verify's step summary.
pub(crate) fn verify_summary(ws: &Workspace) -> String {
    let summary = ws.summary();
    let start = summary
        .rfind("### Wasm OCI artifact verif")
        .expect("a verify summary");
    summary[start..].to_owned()
}

pub(crate) fn trust_config(sigstore: &Sigstore) -> Value {
    sigstore.client_trust_config()
}

struct Setup {
    sigstore: Sigstore,
    registry: Registry,
    ws: Workspace,
}

fn setup() -> Setup {
    Setup {
        sigstore: Sigstore::public_good_without_tsa(Job::tag_push(REPO, "v1.2.3", COMMIT)),
        registry: Registry::start(),
        ws: Workspace::new(),
    }
}

#[test]
fn a_keyless_bundle_passes_every_named_check() {
    let s = setup();
    let (digest, manifest) = release(&s.registry, &s.ws, 1);
    attach_bundle(&s.registry, &digest, &attest(&s.sigstore, &s.ws, &manifest));
    let run = verify(&s.registry, &s.ws, &trust_config(&s.sigstore), &digest, &[]);
    assert!(run.success(), "{run:?}");
    let summary = verify_summary(&s.ws);
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
        "provenance statement",
        "provenance subject",
        "provenance source",
        "provenance revision",
    ] {
        let row = summary
            .lines()
            .find(|l| l.starts_with(&format!("| {name} |")))
            .unwrap_or_else(|| panic!("no `{name}` row:\n{summary}"));
        assert!(row.contains("✅ pass"), "{row}\n{summary}");
    }
    assert_eq!(s.ws.outputs()["verified"], "true");
}

#[test]
fn another_repositorys_workflow_fails_the_identity() {
    // The same stand-ins, but the token (and so the certificate) is another repository's.
    let s = Setup {
        sigstore: Sigstore::public_good_without_tsa(Job::tag_push(
            "evil/multiply",
            "v1.2.3",
            COMMIT,
        )),
        registry: Registry::start(),
        ws: Workspace::new(),
    };
    let (digest, manifest) = release(&s.registry, &s.ws, 1);
    attach_bundle(&s.registry, &digest, &attest(&s.sigstore, &s.ws, &manifest));
    let run = verify(&s.registry, &s.ws, &trust_config(&s.sigstore), &digest, &[]);
    assert_eq!(
        failed(&s.ws, &run),
        ["certificate identity", "certificate source", "signature"]
    );
    assert!(
        run.all().contains(&format!(
            "certificate identity: expected a workflow of `{SOURCE}`"
        )),
        "{run:?}"
    );
}

#[test]
fn another_issuer_fails_the_issuer() {
    let s = setup();
    let (digest, manifest) = release(&s.registry, &s.ws, 1);
    attach_bundle(&s.registry, &digest, &attest(&s.sigstore, &s.ws, &manifest));
    let run = verify(
        &s.registry,
        &s.ws,
        &trust_config(&s.sigstore),
        &digest,
        &[("certificate-oidc-issuer", "https://accounts.google.com")],
    );
    assert_eq!(failed(&s.ws, &run), ["certificate issuer", "signature"]);
}

#[test]
fn a_certificate_from_an_untrusted_ca_fails_the_chain() {
    let s = setup();
    let (digest, manifest) = release(&s.registry, &s.ws, 1);
    attach_bundle(&s.registry, &digest, &attest(&s.sigstore, &s.ws, &manifest));
    // The trust config names the same log, but another Fulcio CA.
    let other = sigstore::fulcio::Ca::new("other-fulcio.sigstore.test");
    let mut config = trust_config(&s.sigstore);
    config["trustedRoot"]["certificateAuthorities"][0]["certChain"]["certificates"] =
        json!([{"rawBytes": b64().encode(&other.der)}]);
    let run = verify(&s.registry, &s.ws, &config, &digest, &[]);
    assert_eq!(failed(&s.ws, &run), ["certificate chain", "signature"]);
}

#[test]
fn a_signature_over_other_bytes_fails_the_signature() {
    let s = setup();
    let (digest, manifest) = release(&s.registry, &s.ws, 1);
    let mut bundle = attest(&s.sigstore, &s.ws, &manifest);
    let payload = b64()
        .decode(bundle["dsseEnvelope"]["payload"].as_str().unwrap())
        .unwrap();
    let other = String::from_utf8(payload)
        .unwrap()
        .replace("refs/tags/v1.2.3", "refs/tags/v6.6.6");
    bundle["dsseEnvelope"]["payload"] = json!(b64().encode(other));
    attach_bundle(&s.registry, &digest, &bundle);
    let run = verify(&s.registry, &s.ws, &trust_config(&s.sigstore), &digest, &[]);
    assert_eq!(failed(&s.ws, &run), ["provenance signature", "signature"]);
}

#[test]
fn a_log_entry_for_another_artifact_fails_the_log_entry() {
    let s = setup();
    let (digest, manifest) = release(&s.registry, &s.ws, 1);
    let (_, other_manifest) = release(&s.registry, &s.ws, 2);
    let mut bundle = attest(&s.sigstore, &s.ws, &manifest);
    let other = attest(&s.sigstore, &s.ws, &other_manifest);
    // A genuine entry of the same log, with its SET and inclusion proof, for the other bundle.
    bundle["verificationMaterial"]["tlogEntries"] =
        other["verificationMaterial"]["tlogEntries"].clone();
    attach_bundle(&s.registry, &digest, &bundle);
    let run = verify(&s.registry, &s.ws, &trust_config(&s.sigstore), &digest, &[]);
    assert_eq!(failed(&s.ws, &run), ["log entry", "signature"]);
}

#[test]
fn a_statement_about_another_digest_fails_the_subject() {
    let s = setup();
    let (digest, _) = release(&s.registry, &s.ws, 1);
    let (_, other_manifest) = release(&s.registry, &s.ws, 2);
    // A genuine bundle of the same workflow, about the other release.
    attach_bundle(
        &s.registry,
        &digest,
        &attest(&s.sigstore, &s.ws, &other_manifest),
    );
    let run = verify(&s.registry, &s.ws, &trust_config(&s.sigstore), &digest, &[]);
    assert_eq!(failed(&s.ws, &run), ["provenance subject", "signature"]);
    assert!(
        run.all().contains(&format!(
            "provenance subject: the statement is about {}",
            sha256(&other_manifest)
        )),
        "{run:?}"
    );
}

#[test]
fn a_certificate_that_expired_before_its_timestamp_fails_the_signing_time() {
    let s = setup();
    let (digest, manifest) = release(&s.registry, &s.ws, 1);
    let mut bundle = attest(&s.sigstore, &s.ws, &manifest);
    // The same key and claims, certified by the trusted CA (with an SCT) for ten minutes that
    // ended a day before the log's integrated time.
    let raw = bundle["verificationMaterial"]["certificate"]["rawBytes"]
        .as_str()
        .unwrap();
    let leaf = x509_cert::Certificate::from_der(&b64().decode(raw).unwrap()).unwrap();
    let claims: Vec<_> = leaf
        .tbs_certificate
        .extensions
        .iter()
        .flatten()
        .filter(|e| e.extn_id.to_string().starts_with("1.3.6.1.4.1.57264."))
        .cloned()
        .collect();
    let day_ago =
        SystemTime::now().duration_since(UNIX_EPOCH).unwrap() - Duration::from_secs(86_400);
    let expired = s.sigstore.fulcio.ca.issue(
        &leaf.tbs_certificate.subject_public_key_info,
        &s.sigstore.identity(),
        claims,
        day_ago,
        Some(&s.sigstore.fulcio.ct_log),
    );
    bundle["verificationMaterial"]["certificate"]["rawBytes"] =
        json!(b64().encode(expired.to_der().unwrap()));
    attach_bundle(&s.registry, &digest, &bundle);
    let run = verify(&s.registry, &s.ws, &trust_config(&s.sigstore), &digest, &[]);
    assert_eq!(failed(&s.ws, &run), ["signing time", "signature"]);
}

/// A bundle as `signing-key` makes one: a DSSE envelope signed with `key` (openssl), public-key
/// verification material, and an RFC 3161 timestamp of the signature from the stand-in TSA (the
/// request made by `openssl ts`).
fn key_signed_bundle(
    sigstore: &Sigstore,
    ws: &Workspace,
    statement: &[u8],
    key: &std::path::Path,
) -> Value {
    let envelope: Value = serde_json::from_slice(&dsse_envelope(statement, key)).unwrap();
    let signature = b64()
        .decode(envelope["signatures"][0]["sig"].as_str().unwrap())
        .unwrap();
    let sig_file = ws.write("signature.bin", &signature);
    let query = ws.root().join("request.tsq");
    let out = std::process::Command::new("openssl")
        .args(["ts", "-query", "-sha256", "-cert", "-data"])
        .arg(&sig_file)
        .arg("-out")
        .arg(&query)
        .output()
        .expect("openssl is installed");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let tsa = sigstore.tsa.as_ref().expect("a timestamp authority");
    let response = reqwest::blocking::Client::new()
        .post(tsa.timestamp_url())
        .header("Content-Type", "application/timestamp-query")
        .body(std::fs::read(&query).unwrap())
        .send()
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let token = response.bytes().unwrap();
    json!({
        "mediaType": BUNDLE,
        "verificationMaterial": {
            "publicKey": {"hint": ""},
            "tlogEntries": [],
            "timestampVerificationData": {"rfc3161Timestamps": [{"signedTimestamp": b64().encode(&token)}]},
        },
        "dsseEnvelope": envelope,
    })
}

#[test]
fn a_bundle_signed_with_a_key_and_timestamped_verifies_with_public_key() {
    let s = Setup {
        sigstore: Sigstore::public_good(Job::tag_push(REPO, "v1.2.3", COMMIT)),
        registry: Registry::start(),
        ws: Workspace::new(),
    };
    let (digest, _) = release(&s.registry, &s.ws, 1);
    let keys = tempfile::tempdir().unwrap();
    let (signing, public) = p256_key(keys.path(), "release");
    let (_, other_public) = p256_key(keys.path(), "other");
    let statement = statement(&digest, SOURCE, COMMIT);
    let bundle = key_signed_bundle(&s.sigstore, &s.ws, &statement, &signing);
    attach_bundle(&s.registry, &digest, &bundle);
    let config = trust_config(&s.sigstore);

    let run = verify(
        &s.registry,
        &s.ws,
        &config,
        &digest,
        &[("public-key", &public)],
    );
    assert!(run.success(), "{run:?}");
    let summary = verify_summary(&s.ws);
    for (name, result) in [
        ("sigstore bundle", "✅ pass"),
        ("signing time", "✅ pass"),
        ("transparency log", "➖ skip"),
        ("provenance signature", "✅ pass"),
        ("provenance subject", "✅ pass"),
    ] {
        let row = summary
            .lines()
            .find(|l| l.starts_with(&format!("| {name} |")))
            .unwrap_or_else(|| panic!("no `{name}` row:\n{summary}"));
        assert!(row.contains(result), "{row}\n{summary}");
    }

    let run = verify(
        &s.registry,
        &s.ws,
        &config,
        &digest,
        &[("public-key", &other_public)],
    );
    assert_eq!(failed(&s.ws, &run), ["provenance signature", "signature"]);
}

/// The deploy job's verify step as `verify` runs it, without `expect-source` or
/// `expect-revision`: the job's own repository (`acme/multiply`) is then the signer.
pub(crate) fn verify_as_deploy(
    registry: &Registry,
    ws: &Workspace,
    trust_config: &Value,
    digest: &str,
    extra: &[(&str, &str)],
) -> Run {
    ws.write(
        "trust-config.json",
        &serde_json::to_vec(trust_config).unwrap(),
    );
    let image = format!("{}/{REPO}@{digest}", registry.host());
    let mut inputs = vec![
        ("command", "verify"),
        ("image", image.as_str()),
        ("insecure", "true"),
        ("sigstore-trust-config", "trust-config.json"),
    ];
    inputs.extend_from_slice(extra);
    ws.run_action(&ws.action_env(&inputs))
}

#[test]
fn an_unsigned_statement_is_refused_whatever_names_the_signer() {
    let s = setup();
    let (digest, _) = release(&s.registry, &s.ws, 1);
    let config = trust_config(&s.sigstore);
    let identity = format!("{SOURCE}/.github/workflows/release.yml@refs/tags/v1.2.3");
    for extra in [&[("certificate-identity", identity.as_str())][..], &[][..]] {
        let run = verify(&s.registry, &s.ws, &config, &digest, extra);
        assert_eq!(
            failed(&s.ws, &run),
            ["provenance signature", "signature"],
            "{extra:?}"
        );
        let error = &run.error_lines()[0];
        assert!(
            error.contains("provenance signature: found only an unsigned in-toto statement"),
            "{error}"
        );
        for todo in [
            "`permissions: id-token: write`",
            "`public-key`",
            "`require-signature: false`",
        ] {
            assert!(error.contains(todo), "{todo}: {error}");
        }
        assert!(!s.ws.outputs().contains_key("verified"), "{run:?}");
    }
    // Told to, verify accepts it knowingly; the skipped signature is shown as skipped.
    let run = verify(
        &s.registry,
        &s.ws,
        &config,
        &digest,
        &[("require-signature", "false")],
    );
    assert!(run.success(), "{run:?}");
    assert_eq!(s.ws.outputs()["verified"], "true");
    assert!(
        verify_summary(&s.ws).contains("| provenance signature | ➖ skip |"),
        "{}",
        verify_summary(&s.ws)
    );
    // An identity policy still requires its signature.
    let run = verify(
        &s.registry,
        &s.ws,
        &config,
        &digest,
        &[
            ("require-signature", "false"),
            ("certificate-identity", identity.as_str()),
        ],
    );
    assert_eq!(failed(&s.ws, &run), ["provenance signature", "signature"]);
}

#[test]
fn in_action_mode_the_signer_defaults_to_the_deploy_jobs_repository() {
    let s = setup();
    let (digest, manifest) = release(&s.registry, &s.ws, 1);
    attach_bundle(&s.registry, &digest, &attest(&s.sigstore, &s.ws, &manifest));
    let run = verify_as_deploy(&s.registry, &s.ws, &trust_config(&s.sigstore), &digest, &[]);
    assert!(run.success(), "{run:?}");
    assert!(
        verify_summary(&s.ws).contains(&format!(
            "| certificate identity | ✅ pass | `{SOURCE}/.github/workflows/"
        )),
        "{}",
        verify_summary(&s.ws)
    );
}

#[test]
fn an_artifact_built_and_signed_by_another_repository_is_refused_by_default() {
    // Everything about it names evil/multiply, consistently: its source annotation, its
    // statement and its certificate. The deploy job is acme/multiply's.
    let s = Setup {
        sigstore: Sigstore::public_good_without_tsa(Job::tag_push(
            "evil/multiply",
            "v1.2.3",
            COMMIT,
        )),
        registry: Registry::start(),
        ws: Workspace::new(),
    };
    let (digest, manifest) = release_by(&s.registry, &s.ws, 1, "evil/multiply");
    let bundle = attest_from(
        &s.sigstore,
        &s.ws,
        &manifest,
        "https://github.com/evil/multiply",
    );
    attach_bundle(&s.registry, &digest, &bundle);
    let run = verify_as_deploy(&s.registry, &s.ws, &trust_config(&s.sigstore), &digest, &[]);
    assert_eq!(
        failed(&s.ws, &run),
        ["certificate identity", "certificate source", "signature"]
    );
    assert!(
        run.all().contains(&format!(
            "certificate identity: expected a workflow of `{SOURCE}`"
        )),
        "{run:?}"
    );
}

#[test]
fn an_unsigned_statement_beside_a_bundle_is_no_evidence() {
    // The bundle is acme's, but its statement says another repository was built; the
    // unsigned statement beside it (the release's own) names the right one.
    let s = setup();
    let (digest, manifest) = release(&s.registry, &s.ws, 1);
    let bundle = attest_from(
        &s.sigstore,
        &s.ws,
        &manifest,
        "https://github.com/acme/other",
    );
    attach_bundle(&s.registry, &digest, &bundle);
    let run = verify(&s.registry, &s.ws, &trust_config(&s.sigstore), &digest, &[]);
    assert_eq!(failed(&s.ws, &run), ["provenance source", "signature"]);
}

#[test]
fn the_cli_needs_the_signer_named() {
    let s = setup();
    let (digest, _) = release(&s.registry, &s.ws, 1);
    let image = format!("{}/{REPO}@{digest}", s.registry.host());
    let run = s.ws.run_cli(&["verify", &image, "--insecure"], &[]);
    assert!(!run.success(), "{run:?}");
    let stderr = run.stderr.trim();
    assert_eq!(
        stderr.lines().count(),
        1,
        "one line, before anything is read: {stderr}"
    );
    assert!(
        stderr.contains(
            "input `require-signature`: a signature is required, but nothing names the signer"
        ),
        "{stderr}"
    );
    assert!(stderr.contains("`expect-source`"), "{stderr}");
    // Unsigned provenance accepted knowingly: verified.
    let run = s.ws.run_cli(
        &["verify", &image, "--insecure", "--require-signature=false"],
        &[],
    );
    assert!(run.success(), "{run:?}");
}
