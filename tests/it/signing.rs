//! Keyless signing: the provenance statement signed with a Fulcio certificate for the job's OIDC
//! identity, logged in Rekor and/or timestamped, packaged as a Sigstore bundle v0.3, attached as a
//! referrer and uploaded to GitHub's attestation store — all against the stand-ins in
//! tests/common/sigstore, reached through the client trust config a user would pass.

use crate::common;

use std::collections::BTreeMap;

use common::github_fake::{Answer, FORBIDDEN, FakeGithub};
use common::sigstore::{self, Job, Sigstore};
use common::*;
use serde_json::{Value, json};

const REPO: &str = "acme/multiply";
const BUNDLE: &str = "application/vnd.dev.sigstore.bundle.v0.3+json";

/// The runner's environment for a tag push of examples/multiply to `registry`, in a job with
/// `id-token: write` against `sigstore`'s stand-ins, with `inputs` besides.
fn signing_env(
    ws: &Workspace,
    registry: &Registry,
    sigstore: &Sigstore,
    inputs: &[(&str, &str)],
) -> BTreeMap<String, String> {
    let image = format!("{}/{REPO}", registry.host());
    let config = sigstore.trust_config().display().to_string();
    let all = [
        &[
            ("insecure", "true"),
            ("sigstore-trust-config", config.as_str()),
        ][..],
        inputs,
    ]
    .concat();
    let mut env = ws.multiply_env(&image, &all);
    env.extend(sigstore.oidc_env());
    // Debug logging on: the token must not show there either.
    env.insert("RUNNER_DEBUG".into(), "1".into());
    env
}

fn json_of(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes).unwrap()
}

/// The referrers the fallback tag of `digest` lists.
fn referrers(registry: &Registry, digest: &str) -> Vec<Value> {
    let tag = format!("sha256-{}", &digest["sha256:".len()..]);
    let (bytes, _) = registry
        .manifest(REPO, &tag)
        .unwrap_or_else(|| panic!("no fallback tag {tag}"));
    json_of(&bytes)["manifests"].as_array().unwrap().clone()
}

/// The bundle attached under `bundle_digest` (a referrer manifest), written to a file.
fn pushed_bundle(
    registry: &Registry,
    ws: &Workspace,
    bundle_digest: &str,
) -> (Value, std::path::PathBuf) {
    let (bytes, _) = registry.manifest(REPO, bundle_digest).unwrap();
    let manifest = json_of(&bytes);
    let layers = manifest["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 1, "{manifest}");
    let bundle = registry.blob(REPO, layers[0]["digest"].as_str().unwrap());
    let path = ws.write("pushed.sigstore.json", &bundle);
    (manifest, path)
}

/// sigstore-python verifies `bundle` for the release workflow of acme/multiply at COMMIT.
fn python_verify(
    sigstore: &Sigstore,
    bundle: &std::path::Path,
    subject: &str,
) -> std::process::Output {
    sigstore::python_sigstore(
        sigstore,
        &[
            "verify",
            "github",
            "--cert-identity",
            &sigstore.identity(),
            "--repository",
            REPO,
            "--sha",
            COMMIT,
            "--ref",
            "refs/tags/v1.2.3",
            "--trigger",
            "push",
            "--bundle",
            bundle.to_str().unwrap(),
            subject,
        ],
    )
}

/// One tag-triggered push in a job with `id-token: write` attaches a keylessly signed SLSA
/// provenance bundle, as cosign attaches one, that sigstore-python accepts for the workflow's
/// identity (Fulcio certificate with its SCT, Rekor inclusion proof and SET, timestamp), for the
/// pushed manifest's digest and for the `.wasm`; the token never shows in the log.
#[test]
fn a_tag_push_signs_keylessly_and_an_independent_verifier_accepts_it() {
    let registry = Registry::start();
    let sigstore = Sigstore::public_good(Job::tag_push(REPO, "v1.2.3", COMMIT));
    let ws = Workspace::new();
    let run = ws.run_action(&signing_env(&ws, &registry, &sigstore, &[]));
    assert!(run.success(), "{run:?}");
    let out = ws.outputs();
    let digest = out["digest"].clone();
    let bundle_digest = out["bundle-digest"].clone();
    assert!(bundle_digest.starts_with("sha256:"), "{out:?}");
    assert_eq!(
        sigstore.tokens.audiences.lock().unwrap().as_slice(),
        ["sigstore"]
    );

    // Listed alone, with cosign's artifact type and annotations: the bundle carries the
    // statement, and no unsigned copy of it goes beside (one referrer per claim).
    let listed = referrers(&registry, &digest);
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(out["provenance-digest"], bundle_digest);
    let entry = listed
        .iter()
        .find(|e| e["digest"] == bundle_digest.as_str())
        .expect("the bundle referrer is listed");
    assert_eq!(entry["artifactType"], BUNDLE);
    assert_eq!(
        entry["annotations"]["dev.sigstore.bundle.content"],
        "dsse-envelope"
    );
    assert_eq!(
        entry["annotations"]["dev.sigstore.bundle.predicateType"],
        "https://slsa.dev/provenance/v1"
    );
    assert!(
        listed
            .iter()
            .any(|e| e["digest"] == out["provenance-digest"].as_str())
    );

    let (manifest, bundle_path) = pushed_bundle(&registry, &ws, &bundle_digest);
    assert_eq!(manifest["artifactType"], BUNDLE);
    assert_eq!(manifest["layers"][0]["mediaType"], BUNDLE);
    assert_eq!(
        manifest["config"],
        json!({"mediaType": "application/vnd.oci.empty.v1+json", "digest": "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a", "size": 2})
    );
    assert_eq!(manifest["subject"]["digest"], digest.as_str());
    let bundle = json_of(&std::fs::read(&bundle_path).unwrap());
    assert_eq!(bundle["mediaType"], BUNDLE);
    let material = &bundle["verificationMaterial"];
    assert_eq!(
        material["tlogEntries"][0]["kindVersion"],
        json!({"kind": "dsse", "version": "0.0.1"})
    );
    assert_eq!(
        material["timestampVerificationData"]["rfc3161Timestamps"]
            .as_array()
            .map(Vec::len),
        Some(1)
    );
    assert_eq!(
        sigstore
            .rekor
            .as_ref()
            .unwrap()
            .entries
            .lock()
            .unwrap()
            .len(),
        1
    );

    // The statement, in the envelope.
    use base64::Engine as _;
    let statement = base64::engine::general_purpose::STANDARD
        .decode(bundle["dsseEnvelope"]["payload"].as_str().unwrap())
        .unwrap();
    assert_eq!(
        json_of(&statement)["subject"][0]["digest"]["sha256"],
        &digest["sha256:".len()..]
    );

    // An independent verifier accepts it for the manifest digest and for the .wasm.
    let verified = python_verify(&sigstore, &bundle_path, &digest);
    assert!(
        verified.status.success(),
        "{}",
        String::from_utf8_lossy(&verified.stderr)
    );
    let wasm = ws.root().join("multiply.wasm");
    let verified = python_verify(&sigstore, &bundle_path, wasm.to_str().unwrap());
    assert!(
        verified.status.success(),
        "{}",
        String::from_utf8_lossy(&verified.stderr)
    );
    // ... and not for another workflow's identity.
    let other = sigstore::python_sigstore(
        &sigstore,
        &[
            "verify",
            "github",
            "--repository",
            "acme/other",
            "--bundle",
            bundle_path.to_str().unwrap(),
            &digest,
        ],
    );
    assert!(!other.status.success());

    let summary = ws.summary();
    assert!(
        summary.contains(&format!("keyless, Sigstore: `{}`", sigstore.identity())),
        "{summary}"
    );
    let secrets = sigstore.secrets();
    for secret in &secrets {
        assert!(leaks::masked(&run, secret), "not masked: {run:?}");
    }
    leaks::assert_no_secrets(
        &run,
        &ws,
        &secrets.iter().map(String::as_str).collect::<Vec<_>>(),
    );
}

/// An OIDC token from the stand-in endpoint, fetched as the runner's API is asked.
fn token(sigstore: &Sigstore) -> String {
    let url = format!("{}&audience=sigstore", sigstore.tokens.request_url);
    let answer: serde_json::Value = reqwest::blocking::Client::new()
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

/// The stand-ins answer what a Sigstore client asks and their answers verify: sigstore-python
/// signs an attestation through them (Fulcio, a Rekor v1 `dsse` entry) and verifies the bundle
/// against the trust config, as the GitHub workflow's identity.
#[test]
fn stand_ins_serve_an_independent_client() {
    let sigstore =
        Sigstore::public_good_without_tsa(Job::tag_push("acme/multiply", "v1.2.3", COMMIT));
    let ws = Workspace::new();
    let artifact = ws.write("multiply.wasm", b"\0asm\x01\0\0\0");
    let predicate = ws.write("predicate.json", br#"{"buildDefinition":{"buildType":"https://actions.github.io/buildtypes/workflow/v1","externalParameters":{}},"runDetails":{"builder":{"id":"https://github.com/actions/runner"}}}"#);
    let bundle = ws.root().join("multiply.wasm.sigstore.json");
    let jwt = token(&sigstore);
    let sign = sigstore::python_sigstore(
        &sigstore,
        &[
            "attest",
            "--identity-token",
            &jwt,
            "--predicate-type",
            "https://slsa.dev/provenance/v1",
            "--predicate",
            predicate.to_str().unwrap(),
            "--bundle",
            bundle.to_str().unwrap(),
            artifact.to_str().unwrap(),
        ],
    );
    assert!(
        sign.status.success(),
        "{}",
        String::from_utf8_lossy(&sign.stderr)
    );
    let verify = sigstore::python_sigstore(
        &sigstore,
        &[
            "verify",
            "github",
            "-v",
            "--cert-identity",
            &sigstore.identity(),
            "--repository",
            "acme/multiply",
            "--sha",
            COMMIT,
            "--ref",
            "refs/tags/v1.2.3",
            "--bundle",
            bundle.to_str().unwrap(),
            artifact.to_str().unwrap(),
        ],
    );
    let log = String::from_utf8_lossy(&verify.stderr);
    assert!(verify.status.success(), "{log}");
    // A timestamp that does not verify is skipped with this debug line, not refused.
    assert!(!log.contains("Unable to verify Timestamp"), "{log}");
    assert!(
        log.contains("successfully verified inclusion proof"),
        "{log}"
    );
    let other = sigstore::python_sigstore(
        &sigstore,
        &[
            "verify",
            "github",
            "--repository",
            "acme/other",
            "--bundle",
            bundle.to_str().unwrap(),
            artifact.to_str().unwrap(),
        ],
    );
    assert!(
        !other.status.success(),
        "another repository's identity must not verify"
    );
}

/// A job without `id-token: write` still pushes, unsigned, and a notice names the permission.
#[test]
fn without_the_permission_the_push_is_unsigned_with_a_notice() {
    let registry = Registry::start();
    let sigstore = Sigstore::public_good(Job::tag_push(REPO, "v1.2.3", COMMIT));
    let ws = Workspace::new();
    let mut env = signing_env(&ws, &registry, &sigstore, &[]);
    env.remove("ACTIONS_ID_TOKEN_REQUEST_URL");
    env.remove("ACTIONS_ID_TOKEN_REQUEST_TOKEN");
    let run = ws.run_action(&env);
    assert!(run.success(), "{run:?}");
    let notice = run
        .stdout
        .lines()
        .find(|l| l.starts_with("::notice title=Provenance not signed::"))
        .unwrap_or_else(|| panic!("no notice: {run:?}"));
    assert!(notice.contains("permissions: id-token: write"), "{notice}");
    let out = ws.outputs();
    assert_eq!(out["bundle-digest"], "");
    assert_eq!(referrers(&registry, &out["digest"]).len(), 1);
    assert!(sigstore.fulcio.issued.lock().unwrap().is_empty());
}

/// `sign: true` without the permission is an error before anything is pushed; `sign: false`
/// with it does not sign.
#[test]
fn sign_true_needs_the_permission_and_sign_false_turns_signing_off() {
    let registry = Registry::start();
    let sigstore = Sigstore::public_good(Job::tag_push(REPO, "v1.2.3", COMMIT));
    let ws = Workspace::new();
    let mut env = signing_env(&ws, &registry, &sigstore, &[("sign", "true")]);
    env.remove("ACTIONS_ID_TOKEN_REQUEST_URL");
    let run = ws.run_action(&env);
    assert!(!run.success(), "{run:?}");
    let errors = run.error_lines();
    assert_eq!(errors.len(), 1, "{run:?}");
    assert!(errors[0].contains("input `sign`"), "{}", errors[0]);
    assert!(
        errors[0].contains("permissions: id-token: write"),
        "{}",
        errors[0]
    );
    assert!(registry.image_tags(REPO).is_empty());
    assert_eq!(registry.upload_count(), 0);

    let ws = Workspace::new();
    let run = ws.run_action(&signing_env(
        &ws,
        &registry,
        &sigstore,
        &[("sign", "false")],
    ));
    assert!(run.success(), "{run:?}");
    assert_eq!(ws.outputs()["bundle-digest"], "");
    assert!(
        sigstore.tokens.issued.lock().unwrap().is_empty(),
        "no token was asked for"
    );
}

/// With `attestations: write` the bundle is stored in the repository's attestations and the
/// outputs name it; a refusal is a warning and the push and its signed referrer stand.
#[test]
fn the_bundle_goes_to_github_attestations_and_a_refusal_is_a_warning() {
    let registry = Registry::start();
    let sigstore = Sigstore::public_good_without_tsa(Job::tag_push(REPO, "v1.2.3", COMMIT));
    for (status, body) in [
        (201, r#"{"id": 4242}"#.to_owned()),
        (403, FORBIDDEN.to_owned()),
    ] {
        let github = FakeGithub::start(Answer::Routes(vec![(
            "POST /api/v3/repos/acme/multiply/attestations",
            status,
            body,
        )]));
        let ws = Workspace::new();
        let mut env = signing_env(
            &ws,
            &registry,
            &sigstore,
            &[("github-token", "ghs_attestationtoken")],
        );
        env.insert("GITHUB_API_URL".into(), github.api_url());
        let run = ws.run_action(&env);
        assert!(run.success(), "{run:?}");
        let out = ws.outputs();
        assert!(out["bundle-digest"].starts_with("sha256:"), "{out:?}");
        let posted = github
            .requests()
            .into_iter()
            .filter(|r| {
                r.line
                    .starts_with("POST /api/v3/repos/acme/multiply/attestations ")
            })
            .count();
        assert_eq!(posted, 1, "{:?}", github.requests());
        if status == 201 {
            assert_eq!(out["attestation-id"], "4242");
            assert_eq!(
                out["attestation-url"],
                "https://github.com/acme/multiply/attestations/4242"
            );
            assert!(
                ws.summary().contains("/attestations/4242"),
                "{}",
                ws.summary()
            );
        } else {
            assert_eq!(out["attestation-id"], "");
            assert_eq!(out["attestation-url"], "");
            let warning = run
                .stdout
                .lines()
                .find(|l| l.starts_with("::warning") && l.contains("attestations"))
                .unwrap_or_else(|| panic!("no warning: {run:?}"));
            assert!(warning.contains("attestations: write"), "{warning}");
        }
        leaks::assert_no_secrets(&run, &ws, &["ghs_attestationtoken"]);
    }
}

/// GitHub's instance's shape (private repositories): no transparency log, the signing time
/// comes from the timestamp authority; the product follows the signing config it is given.
#[test]
fn an_instance_without_a_log_timestamps_instead() {
    let registry = Registry::start();
    let sigstore = Sigstore::github(Job::tag_push(REPO, "v1.2.3", COMMIT));
    let ws = Workspace::new();
    let run = ws.run_action(&signing_env(&ws, &registry, &sigstore, &[]));
    assert!(run.success(), "{run:?}");
    let (_, path) = pushed_bundle(&registry, &ws, &ws.outputs()["bundle-digest"]);
    let bundle = json_of(&std::fs::read(path).unwrap());
    let material = &bundle["verificationMaterial"];
    assert_eq!(material["tlogEntries"], json!([]));
    assert_eq!(
        material["timestampVerificationData"]["rfc3161Timestamps"]
            .as_array()
            .map(Vec::len),
        Some(1)
    );
    assert!(material["certificate"]["rawBytes"].is_string());
    assert_eq!(sigstore.fulcio.issued.lock().unwrap().len(), 1);
}

/// With `signing-key` (and no keyless signing), the key's DSSE envelope is attached as a
/// Sigstore bundle too: the same envelope, the public key named by its hint.
#[test]
fn the_signing_key_envelope_is_attached_as_a_bundle() {
    let registry = Registry::start();
    let sigstore = Sigstore::public_good_without_tsa(Job::tag_push(REPO, "v1.2.3", COMMIT));
    let ws = Workspace::new();
    let (key, _) = common::raw::p256_key(&ws.root(), "key");
    let spki = std::process::Command::new("openssl")
        .args(["pkey", "-pubout", "-outform", "DER", "-in"])
        .arg(&key)
        .output()
        .unwrap()
        .stdout;
    let run = ws.run_action(&signing_env(
        &ws,
        &registry,
        &sigstore,
        &[("sign", "false"), ("signing-key", "key.key.pem")],
    ));
    assert!(run.success(), "{run:?}");
    let out = ws.outputs();
    let (manifest, path) = pushed_bundle(&registry, &ws, &out["bundle-digest"]);
    assert_eq!(manifest["artifactType"], BUNDLE);
    let bundle = json_of(&std::fs::read(path).unwrap());
    use base64::Engine as _;
    use sha2::Digest as _;
    assert_eq!(
        bundle["verificationMaterial"]["publicKey"]["hint"],
        base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(&spki))
    );
    // The envelope is the one the statement referrer carries.
    let (statement_referrer, _) = registry.manifest(REPO, &out["provenance-digest"]).unwrap();
    let layer = json_of(&statement_referrer)["layers"][0]["digest"]
        .as_str()
        .unwrap()
        .to_owned();
    let envelope = json_of(&registry.blob(REPO, &layer));
    assert_eq!(bundle["dsseEnvelope"]["payload"], envelope["payload"]);
    assert_eq!(
        bundle["dsseEnvelope"]["signatures"][0]["sig"],
        envelope["signatures"][0]["sig"]
    );
    assert_eq!(referrers(&registry, &out["digest"]).len(), 2);
}

/// A Sigstore service that cannot sign stops the push before any tag moves, with one error
/// naming the service.
#[test]
fn a_fulcio_that_cannot_be_reached_stops_the_push_before_any_tag() {
    let registry = Registry::start();
    let sigstore = Sigstore::public_good(Job::tag_push(REPO, "v1.2.3", COMMIT));
    let mut config = sigstore.client_trust_config();
    let dead = format!("http://127.0.0.1:{}", free_port());
    config["signingConfig"]["caUrls"][0]["url"] = json!(dead);
    let path = sigstore.write("dead-fulcio.json", &config);
    let ws = Workspace::new();
    let run = ws.run_action(&signing_env(
        &ws,
        &registry,
        &sigstore,
        &[("sigstore-trust-config", path.to_str().unwrap())],
    ));
    assert!(!run.success(), "{run:?}");
    let errors = run.error_lines();
    assert_eq!(errors.len(), 1, "{run:?}");
    assert!(
        errors[0].contains(&format!("keyless signing: Fulcio at {dead}")),
        "{}",
        errors[0]
    );
    assert!(registry.image_tags(REPO).is_empty(), "no tag moved");
    let secrets = sigstore.secrets();
    leaks::assert_no_secrets(
        &run,
        &ws,
        &secrets.iter().map(String::as_str).collect::<Vec<_>>(),
    );
}

#[test]
fn verify_accepts_what_a_keyless_push_signed_and_refuses_another_workflow() {
    let registry = Registry::start();
    let sigstore = Sigstore::public_good(Job::tag_push(REPO, "v1.2.3", COMMIT));
    let ws = Workspace::new();
    let run = ws.run_action(&signing_env(&ws, &registry, &sigstore, &[]));
    assert!(run.success(), "{run:?}");
    let digest = ws.outputs()["digest"].clone();

    // The deploy job: the same trust config, the release's source and commit.
    let image = format!("{}/{REPO}@{digest}", registry.host());
    let config = sigstore.trust_config().display().to_string();
    let source = format!("https://github.com/{REPO}");
    let verify = |extra: &[(&str, &str)]| {
        let mut inputs = vec![
            ("command", "verify"),
            ("image", image.as_str()),
            ("insecure", "true"),
            ("sigstore-trust-config", config.as_str()),
            ("expect-source", source.as_str()),
            ("expect-revision", COMMIT),
        ];
        inputs.extend_from_slice(extra);
        ws.run_action(&ws.action_env(&inputs))
    };
    let verified = verify(&[]);
    assert!(verified.success(), "{verified:?}");
    let summary = ws.summary();
    let report = &summary[summary.rfind("### Wasm OCI artifact verif").unwrap()..];
    for check in [
        "certificate identity",
        "certificate issuer",
        "certificate source",
        "certificate revision",
        "certificate chain",
        "certificate SCT",
        "transparency log",
        "provenance signature",
        "provenance subject",
    ] {
        assert!(
            report
                .lines()
                .any(|l| l.starts_with(&format!("| {check} |")) && l.contains("| ✅ pass |")),
            "{check} not passed:\n{report}"
        );
    }

    // A policy that names another repository's workflow refuses the same bundle.
    let refused = verify(&[(
        "certificate-identity-regexp",
        "^https://github.com/acme/other/",
    )]);
    assert!(!refused.success(), "{refused:?}");
    let summary = ws.summary();
    let report = &summary[summary.rfind("### Wasm OCI artifact verif").unwrap()..];
    assert!(
        report
            .lines()
            .any(|l| l.starts_with("| certificate identity |") && l.contains("| ❌ FAIL |")),
        "{report}"
    );
}

/// A trust config naming Fulcio in plain HTTP: with the registry over HTTPS and no `insecure`,
/// the push stops before anything is sent, naming the URL and the fix; no OIDC token is minted
/// and Fulcio hears nothing.
#[test]
fn a_plain_http_fulcio_gets_no_token_without_insecure() {
    let ws = Workspace::new();
    let cert = common::tls::server_cert(ws.dir.path(), "sigstore-ca");
    let ca = cert.ca.clone();
    let registry = Registry::start_with_options(
        Auth::None,
        RegistryOptions {
            tls: Some(cert),
            ..Default::default()
        },
    );
    let sigstore = Sigstore::public_good(Job::tag_push(REPO, "v1.2.3", COMMIT));
    let config = sigstore.trust_config().display().to_string();
    let mut env = ws.multiply_env(
        &format!("{}/{REPO}", registry.host()),
        &[
            ("ca-file", ca.to_str().unwrap()),
            ("sigstore-trust-config", config.as_str()),
        ],
    );
    env.extend(sigstore.oidc_env());
    let run = ws.run_action(&env);
    assert!(!run.success(), "{run:?}");
    let errors = run.error_lines();
    assert_eq!(errors.len(), 1, "{run:?}");
    assert!(
        errors[0].contains("sigstore-trust-config")
            && errors[0].contains(&format!("Fulcio at `{}`", sigstore.fulcio.url))
            && errors[0].contains("not HTTPS")
            && errors[0].contains("insecure: true"),
        "{run:?}"
    );
    assert!(sigstore.tokens.issued.lock().unwrap().is_empty(), "{run:?}");
    assert!(sigstore.fulcio.issued.lock().unwrap().is_empty());
    assert!(registry.tags(REPO).is_empty(), "nothing was pushed");
}
