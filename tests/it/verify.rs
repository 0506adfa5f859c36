//! Verify end to end, as a two-job workflow runs it: the release job pushes through the action
//! with a `signing-key`, which attaches signed provenance; the deploy job verifies
//! `image@digest` from the release's `digest` output, then pulls it. Tampered provenance is
//! written by raw registry calls in the producer's exact format. Each tampering case must fail
//! verify with a message that names what was wrong.

use crate::common;

use std::path::PathBuf;

use common::fakes::*;
use common::raw::*;
use common::*;

const SOURCE: &str = "https://github.com/acme/multiply";

/// The release job: push through the action, the provenance signed with `key`. Returns the
/// digest.
fn release(registry: &Registry, ws: &Workspace, key: &std::path::Path, tag: &str) -> String {
    std::fs::copy(key, ws.root().join("signing.pem")).unwrap();
    push(registry, ws, tag, &[("signing-key", "signing.pem")])
}

/// A push through the action with `extra` inputs. Returns the digest.
fn push(registry: &Registry, ws: &Workspace, tag: &str, extra: &[(&str, &str)]) -> String {
    let image = format!("{}/acme/multiply", registry.host());
    let inputs = [&[("insecure", "true"), ("tags", tag)][..], extra].concat();
    let run = ws.run_action(&ws.multiply_env(&image, &inputs));
    assert!(run.success(), "{run:?}");
    ws.outputs()["digest"].clone()
}

struct Keys {
    _dir: tempfile::TempDir,
    signing: PathBuf,
    public: String,
    other_signing: PathBuf,
}

fn keys() -> Keys {
    let dir = tempfile::tempdir().unwrap();
    let (signing, public) = p256_key(dir.path(), "release");
    let (other_signing, _) = p256_key(dir.path(), "attacker");
    Keys {
        _dir: dir,
        signing,
        public,
        other_signing,
    }
}

/// The deploy job's verify step.
fn verify(ws: &Workspace, image: &str, public_key: &str, extra: &[(&str, &str)]) -> Run {
    let mut inputs = vec![
        ("command", "verify"),
        ("image", image),
        ("insecure", "true"),
        ("expect-source", SOURCE),
        ("expect-revision", COMMIT),
        ("public-key", public_key),
    ];
    inputs.extend_from_slice(extra);
    ws.run_action(&ws.action_env(&inputs))
}

fn failure(run: &Run) -> String {
    assert!(!run.success(), "verify must fail: {run:?}");
    let lines = run.error_lines();
    assert_eq!(lines.len(), 1, "{run:?}");
    assert!(
        lines[0].starts_with("::error title=Verification failed::"),
        "{run:?}"
    );
    lines[0].to_owned()
}

#[test]
fn two_job_workflow_release_then_verify_and_pull_the_digest() {
    let registry = Registry::start();
    let keys = keys();
    let digest = release(&registry, &Workspace::new(), &keys.signing, "1.2.3");

    // needs.release.outputs.digest
    let deploy = Workspace::new();
    deploy.write("keys/release.pub.pem", keys.public.as_bytes());
    let image = format!("{}/acme/multiply@{digest}", registry.host());
    let run = verify(
        &deploy,
        &image,
        "keys/release.pub.pem",
        &[("annotations", "org.opencontainers.image.version=1.2.3")],
    );
    assert!(run.success(), "{run:?}");
    assert!(run.error_lines().is_empty(), "{run:?}");
    let out = deploy.outputs();
    assert_eq!(out["digest"], digest);
    assert_eq!(out["verified"], "true");
    let summary = deploy.summary();
    assert!(summary.contains("| check | result | detail |"), "{summary}");
    for check in [
        "manifest digest",
        "config digest",
        "layer digest",
        "wasm",
        "kind",
        "annotation org.opencontainers.image.source",
        "annotation org.opencontainers.image.revision",
        "annotation org.opencontainers.image.version",
        "provenance",
        "provenance signature",
        "provenance statement",
        "provenance subject",
        "provenance source",
        "provenance revision",
    ] {
        assert!(
            summary.contains(&format!("| {check} | ✅ pass |")),
            "{check}:\n{summary}"
        );
    }

    let settings = {
        let mut s = insta::Settings::clone_current();
        s.add_filter(r"sha256:[0-9a-f]{64}", "sha256:[digest]");
        s.add_filter(r"127\.0\.0\.1:\d+", "[registry]");
        s.add_filter(r"\(\d+ bytes", "([size] bytes");
        s
    };
    settings.bind(|| insta::assert_snapshot!("verify_summary", summary));

    let pull = deploy.run_action(&deploy.action_env(&[
        ("command", "pull"),
        ("image", &image),
        ("insecure", "true"),
        ("output", "app.wasm"),
    ]));
    assert!(pull.success(), "{pull:?}");
    assert_eq!(deploy.outputs()["digest"], digest);
    assert_eq!(
        std::fs::read(deploy.root().join("app.wasm")).unwrap(),
        std::fs::read(multiply_wasm()).unwrap()
    );

    // The CLI: the digest alone on stdout, the key as PEM text.
    let cli = deploy.run_cli(
        &[
            "verify",
            &image,
            "--insecure",
            "--expect-source",
            SOURCE,
            "--public-key",
            &keys.public,
        ],
        &[],
    );
    assert!(cli.success(), "{cli:?}");
    assert_eq!(cli.stdout.trim(), digest);
}

#[test]
fn a_tag_is_resolved_with_a_warning() {
    let registry = Registry::start();
    let keys = keys();
    let digest = release(&registry, &Workspace::new(), &keys.signing, "1.2.3");
    let ws = Workspace::new();
    let run = verify(
        &ws,
        &format!("{}/acme/multiply:1.2.3", registry.host()),
        &keys.public,
        &[],
    );
    assert!(run.success(), "{run:?}");
    assert!(
        run.stdout.contains("::warning::") && run.stdout.contains("tags move"),
        "{run:?}"
    );
    assert!(run.stdout.contains(&digest), "{run:?}");
    assert_eq!(ws.outputs()["digest"], digest);
}

#[test]
fn the_tag_moved_to_another_manifest() {
    let registry = Registry::start();
    let keys = keys();
    let digest = release(&registry, &Workspace::new(), &keys.signing, "1.2.3");
    let other = push_wkg_style(
        &registry,
        "acme/multiply",
        "1.2.3",
        &component_wasm(),
        "wasip2",
    );
    let ws = Workspace::new();
    let run = verify(
        &ws,
        &format!("{}/acme/multiply:1.2.3@{digest}", registry.host()),
        &keys.public,
        &[],
    );
    let error = failure(&run);
    assert!(
        error.contains(&format!("tag 1.2.3: moved: now points to {other}")),
        "{error}"
    );
    assert!(
        ws.summary().contains("| tag 1.2.3 | ❌ FAIL |"),
        "{}",
        ws.summary()
    );
    assert!(!ws.outputs().contains_key("verified"));
}

#[test]
fn a_layer_replaced_in_the_registry_storage() {
    let registry = Registry::start();
    let keys = keys();
    let digest = release(&registry, &Workspace::new(), &keys.signing, "1.2.3");
    let layer = sha256(&std::fs::read(multiply_wasm()).unwrap());
    registry.corrupt_blob(&layer);
    let ws = Workspace::new();
    let image = format!("{}/acme/multiply@{digest}", registry.host());
    let error = failure(&verify(&ws, &image, &keys.public, &[]));
    assert!(error.contains("layer digest: digest mismatch"), "{error}");
    assert!(error.contains(&layer), "{error}");

    // Pull refuses it too, and leaves no file.
    let pull = ws.run_action(&ws.action_env(&[
        ("command", "pull"),
        ("image", &image),
        ("insecure", "true"),
        ("output", "app.wasm"),
    ]));
    assert!(!pull.success(), "{pull:?}");
    assert!(
        pull.error_lines()[0].contains("digest mismatch"),
        "{pull:?}"
    );
    assert!(!ws.root().join("app.wasm").exists());
}

#[test]
fn a_config_replaced_in_the_registry_storage() {
    let registry = Registry::start();
    let keys = keys();
    let digest = release(&registry, &Workspace::new(), &keys.signing, "1.2.3");
    let (bytes, _) = registry.manifest("acme/multiply", &digest).unwrap();
    let manifest: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    let config = manifest["config"]["digest"].as_str().unwrap().to_owned();
    registry.corrupt_blob(&config);
    let ws = Workspace::new();
    let image = format!("{}/acme/multiply@{digest}", registry.host());
    let error = failure(&verify(&ws, &image, &keys.public, &[]));
    assert!(error.contains("config digest: digest mismatch"), "{error}");
    assert!(error.contains(&config), "{error}");
    assert!(
        !error.contains("layer digest"),
        "the layer is intact: {error}"
    );
}

#[test]
fn an_annotation_changed() {
    let registry = Registry::start();
    let keys = keys();
    let digest = release(&registry, &Workspace::new(), &keys.signing, "1.2.3");
    let ws = Workspace::new();
    let image = format!("{}/acme/multiply@{digest}", registry.host());
    let error = failure(&verify(
        &ws,
        &image,
        &keys.public,
        &[("annotations", "org.opencontainers.image.version=2.0.0")],
    ));
    assert!(
        error.contains(
            "annotation org.opencontainers.image.version: expected `2.0.0`, found `1.2.3`"
        ),
        "{error}"
    );

    // A copy of the manifest with its source annotation changed is a new digest, with no
    // provenance of its own.
    let (bytes, _) = registry.manifest("acme/multiply", &digest).unwrap();
    let mut manifest: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    manifest["annotations"]["org.opencontainers.image.source"] =
        "https://github.com/evil/multiply".into();
    let forged = registry.put_manifest(
        "acme/multiply",
        "1.2.3",
        &serde_json::to_vec(&manifest).unwrap(),
        OCI_MANIFEST,
    );
    let ws = Workspace::new();
    let error = failure(&verify(
        &ws,
        &format!("{}/acme/multiply@{forged}", registry.host()),
        &keys.public,
        &[],
    ));
    assert!(
        error.contains("annotation org.opencontainers.image.source: expected `https://github.com/acme/multiply`, found `https://github.com/evil/multiply`"),
        "{error}"
    );
    assert!(error.contains(&format!("provenance: no provenance referrer (artifactType `application/vnd.dev.sigstore.bundle.v0.3+json`, `application/vnd.in-toto+json`) names {forged}")), "{error}");
}

#[test]
fn a_provenance_statement_for_a_different_digest() {
    let registry = Registry::start();
    let keys = keys();
    // The push attaches no provenance; a forged one is attached by hand.
    let digest = push(
        &registry,
        &Workspace::new(),
        "1.2.3",
        &[("provenance", "false")],
    );
    let elsewhere = sha256(b"another artifact");
    let statement = statement(&elsewhere, SOURCE, COMMIT);
    attach_referrer(
        &registry,
        "acme/multiply",
        &digest,
        (&dsse_envelope(&statement, &keys.signing), DSSE),
    );

    let deploy = Workspace::new();
    let error = failure(&verify(
        &deploy,
        &format!("{}/acme/multiply@{digest}", registry.host()),
        &keys.public,
        &[],
    ));
    assert!(
        error.contains(&format!(
            "provenance subject: the statement is about {elsewhere}, not {digest}"
        )),
        "{error}"
    );
}

#[test]
fn provenance_from_another_repository_or_commit() {
    let registry = Registry::start();
    let keys = keys();
    // The push attaches no provenance; a forged one is attached by hand.
    let digest = push(
        &registry,
        &Workspace::new(),
        "1.2.3",
        &[("provenance", "false")],
    );
    let statement = statement(
        &digest,
        "https://github.com/evil/multiply",
        "ffffffffffffffffffffffffffffffffffffffff",
    );
    attach_referrer(&registry, "acme/multiply", &digest, (&statement, IN_TOTO));

    let deploy = Workspace::new();
    let image = format!("{}/acme/multiply@{digest}", registry.host());
    // Unsigned: with a key, that alone fails; without one, the repository and commit still do.
    let error = failure(&verify(&deploy, &image, &keys.public, &[]));
    assert!(
        error.contains("provenance signature: the statement is not signed"),
        "{error}"
    );
    let run = deploy.run_action(&deploy.action_env(&[
        ("command", "verify"),
        ("image", &image),
        ("insecure", "true"),
        ("expect-source", SOURCE),
        ("expect-revision", COMMIT),
        // Unsigned on purpose: the statement's own claims are what is checked here.
        ("require-signature", "false"),
    ]));
    let error = failure(&run);
    assert!(error.contains("provenance source: expected `https://github.com/acme/multiply`, the statement names `https://github.com/evil/multiply`"), "{error}");
    assert!(
        error.contains(&format!("provenance revision: expected commit `{COMMIT}`")),
        "{error}"
    );
}

#[test]
fn a_signature_by_another_key() {
    let registry = Registry::start();
    let keys = keys();
    let digest = release(&registry, &Workspace::new(), &keys.other_signing, "1.2.3");
    let ws = Workspace::new();
    let error = failure(&verify(
        &ws,
        &format!("{}/acme/multiply@{digest}", registry.host()),
        &keys.public,
        &[],
    ));
    assert!(
        error.contains(
            "provenance signature: no signature in the envelope verifies with the given public key"
        ),
        "{error}"
    );
}

#[test]
fn a_truncated_download() {
    let ws = Workspace::new();
    let wasm = std::fs::read(multiply_wasm()).unwrap();
    let config = serde_json::to_vec(&serde_json::json!({"architecture": "wasm", "os": "wasip1", "layerDigests": [sha256(&wasm)]})).unwrap();
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": descriptor("application/vnd.wasm.config.v0+json", &config),
        "layers": [descriptor("application/wasm", &wasm)],
    }))
    .unwrap();
    let digest = sha256(&manifest);
    let host = truncating_server("acme/app", manifest, config, wasm.clone());
    let keys = keys();
    let error = failure(&verify(
        &ws,
        &format!("{host}/acme/app@{digest}"),
        &keys.public,
        &[],
    ));
    assert!(
        error.contains("layer digest: the download of blob"),
        "{error}"
    );
    assert!(
        error.contains(&format!(
            "was cut short: {} of {} bytes arrived",
            wasm.len() / 2,
            wasm.len()
        )),
        "{error}"
    );
}

#[test]
fn a_bad_public_key_is_an_input_error() {
    let ws = Workspace::new();
    let image = format!("127.0.0.1:9/acme/app@{}", sha256(b"x"));
    let run = verify(
        &ws,
        &image,
        "-----BEGIN PUBLIC KEY-----\nnope\n-----END PUBLIC KEY-----",
        &[],
    );
    assert!(!run.success());
    assert!(
        run.error_lines()[0].contains("input `public-key`"),
        "{run:?}"
    );
    let run = verify(&ws, "127.0.0.1:9/acme/app", "keys/none.pem", &[]);
    assert!(
        run.error_lines()[0].contains("input `image`") && run.error_lines()[0].contains("@sha256:"),
        "{run:?}"
    );
}

#[test]
fn manifest_bytes_that_do_not_hash_to_the_digest() {
    let ws = Workspace::new();
    let wasm = std::fs::read(multiply_wasm()).unwrap();
    let config = b"{}".to_vec();
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": descriptor("application/vnd.wasm.config.v0+json", &config),
        "layers": [descriptor("application/wasm", &wasm)],
    }))
    .unwrap();
    // The server answers every manifest request with these bytes, whatever digest is asked.
    let host = truncating_server("acme/app", manifest.clone(), config, wasm);
    let asked = sha256(b"the released manifest");
    let keys = keys();
    let error = failure(&verify(
        &ws,
        &format!("{host}/acme/app@{asked}"),
        &keys.public,
        &[],
    ));
    assert!(
        error.contains("manifest digest: digest mismatch"),
        "{error}"
    );
    assert!(error.contains(&sha256(&manifest)), "{error}");
}

#[test]
fn pull_and_verify_with_credentials_never_print_the_password() {
    let registry = Registry::with_htpasswd("bot", "correct-horse-battery");
    let image = format!("{}/acme/multiply", registry.host());
    let auth = [("username", "bot"), ("password", "correct-horse-battery")];
    let keys = keys();
    let ws = Workspace::new();
    std::fs::copy(&keys.signing, ws.root().join("signing.pem")).unwrap();
    let mut inputs = auth.to_vec();
    inputs.push(("signing-key", "signing.pem"));
    let digest = push(&registry, &ws, "1.2.3", &inputs);

    let deploy = Workspace::new();
    let pinned = format!("{image}@{digest}");
    let run = verify(&deploy, &pinned, &keys.public, &auth);
    assert!(run.success(), "{run:?}");
    assert!(
        run.all()
            .lines()
            .filter(|l| l.contains("correct-horse-battery"))
            .all(|l| l.starts_with("::add-mask::")),
        "only the mask lines: {run:?}"
    );
    let mut pull = vec![
        ("command", "pull"),
        ("image", pinned.as_str()),
        ("insecure", "true"),
    ];
    pull.extend_from_slice(&auth);
    let run = deploy.run_action(&deploy.action_env(&pull));
    assert!(run.success(), "{run:?}");
    assert!(
        run.all()
            .lines()
            .filter(|l| l.contains("correct-horse-battery"))
            .all(|l| l.starts_with("::add-mask::")),
        "only the mask lines: {run:?}"
    );

    let anonymous = deploy.run_action(&deploy.action_env(&[
        ("command", "pull"),
        ("image", &pinned),
        ("insecure", "true"),
    ]));
    assert!(!anonymous.success(), "{anonymous:?}");
    assert!(
        anonymous.error_lines()[0].contains("title=Registry authentication failed"),
        "{anonymous:?}"
    );
}

#[test]
fn a_config_that_lies_about_the_kind() {
    let registry = Registry::start();
    let keys = keys();
    // A component whose config says it is a wasip1 module.
    let digest = push_wkg_style(
        &registry,
        "acme/multiply",
        "1.2.3",
        &component_wasm(),
        "wasip1",
    );
    attach_signed_provenance(&registry, "acme/multiply", &digest, &keys.signing);
    let ws = Workspace::new();
    let image = format!("{}/acme/multiply@{digest}", registry.host());
    let run = ws.run_action(&ws.action_env(&[
        ("command", "verify"),
        ("image", &image),
        ("insecure", "true"),
        ("public-key", &keys.public),
        ("expect-source", SOURCE),
        ("expect-revision", COMMIT),
    ]));
    let error = failure(&run);
    assert!(
        error.contains("kind: the config says `os: wasip1` but the layer is `wasip2`"),
        "{error}"
    );
    // Everything else about it holds, and the summary says so.
    assert!(
        ws.summary().contains("| provenance signature | ✅ pass |"),
        "{}",
        ws.summary()
    );

    let inspect = ws.run_cli(&["inspect", &image, "--insecure"], &[]);
    assert!(inspect.success(), "{inspect:?}");
    let doc: serde_json::Value = serde_json::from_str(&inspect.stdout).unwrap();
    assert_eq!(doc["digest"], digest);
    assert_eq!(doc["referrers"][0]["artifactType"], IN_TOTO);
}

#[test]
fn verifies_an_artifact_in_an_oci_layout() {
    let ws = Workspace::new();
    std::fs::copy(multiply_wasm(), ws.root().join("m.wasm")).unwrap();
    let keys = keys();
    std::fs::copy(&keys.signing, ws.root().join("signing.pem")).unwrap();
    // The CLI in another CI: the push signs the provenance it writes into the layout.
    let context = [
        ("SOURCE_DATE_EPOCH", "0"),
        ("GITHUB_SERVER_URL", "https://github.com"),
        ("GITHUB_REPOSITORY", "acme/multiply"),
        ("GITHUB_SHA", COMMIT),
        (
            "GITHUB_WORKFLOW_REF",
            "acme/multiply/.github/workflows/release.yml@refs/tags/v1.2.3",
        ),
    ];
    let push = ws.run_cli(
        &[
            "push",
            "m.wasm",
            "oci:layout",
            "--tags",
            "1.2.3",
            "--signing-key",
            "signing.pem",
        ],
        &context,
    );
    assert!(push.success(), "{push:?}");
    let digest = push.stdout.trim().to_owned();

    let image = format!("oci:layout@{digest}");
    let run = ws.run_cli(
        &[
            "verify",
            &image,
            "--expect-source",
            SOURCE,
            "--expect-revision",
            COMMIT,
            "--public-key",
            &keys.public,
        ],
        &[],
    );
    assert!(run.success(), "{run:?}");
    assert_eq!(run.stdout.trim(), digest);
    assert!(
        run.stderr
            .contains("provenance signature: the DSSE signature verifies"),
        "{run:?}"
    );

    // A statement about this digest signed by another key is refused.
    let (other, _) = p256_key(ws.dir.path(), "other");
    let envelope = dsse_envelope(&statement(&digest, SOURCE, COMMIT), &other);
    let layout = ws.root().join("layout");
    let fresh = ws.dir.path().join("fresh");
    std::fs::create_dir_all(&fresh).unwrap();
    let copy = std::process::Command::new("cp")
        .arg("-r")
        .arg(&layout)
        .arg(&fresh)
        .status()
        .unwrap();
    assert!(copy.success());
    // In the copy, the referrers index lists only the forged referrer.
    let copied = fresh.join("layout");
    let index_json = copied.join("index.json");
    let mut top: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&index_json).unwrap()).unwrap();
    let fallback = digest.replace(':', "-");
    top["manifests"]
        .as_array_mut()
        .unwrap()
        .retain(|m| m["annotations"]["org.opencontainers.image.ref.name"] != fallback.as_str());
    std::fs::write(&index_json, serde_json::to_vec(&top).unwrap()).unwrap();
    attach_referrer_in_layout(&copied, &digest, (&envelope, DSSE));
    let run = ws.run_cli(
        &[
            "verify",
            &format!("oci:{}@{digest}", copied.display()),
            "--public-key",
            &keys.public,
        ],
        &[],
    );
    assert!(!run.success(), "{run:?}");
    assert!(
        run.stderr
            .contains("provenance signature: no signature in the envelope verifies"),
        "{run:?}"
    );
}

#[test]
fn a_registry_that_refuses_the_referrers_api_still_has_the_fallback_tag() {
    let registry = Registry::start();
    let keys = keys();
    let digest = release(&registry, &Workspace::new(), &keys.signing, "1.2.3");
    let (proxy, refused) = referrers_refusing_proxy(registry.host());
    let ws = Workspace::new();
    let run = verify(
        &ws,
        &format!("{proxy}/acme/multiply@{digest}"),
        &keys.public,
        &[],
    );
    assert!(run.success(), "{run:?}");
    assert_eq!(ws.outputs()["verified"], "true");
    assert!(
        refused.load(std::sync::atomic::Ordering::SeqCst) >= 1,
        "the API was tried first"
    );
}
