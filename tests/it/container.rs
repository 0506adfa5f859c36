//! The container contract, for real: the Dockerfile's slim image, built with podman and run as
//! GitHub's runner runs a Docker container action, pushes and writes its outputs; and the
//! sub-actions (`push/`, `verify/`, `pull/`) on the image slim.Dockerfile builds.

use crate::common;

use std::process::Command;

use common::container::{Job, Network, inspect_image, slim_image, sub_action_image};
use common::*;

fn skopeo_raw(reference: &str) -> Vec<u8> {
    let output = Command::new("skopeo")
        .args(["inspect", "--raw", reference])
        .output()
        .expect("skopeo is installed");
    assert!(
        output.status.success(),
        "skopeo: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

#[test]
fn the_image_follows_githubs_rules_for_action_images() {
    let config = inspect_image(slim_image());
    let config = &config["Config"];
    assert_eq!(config["Entrypoint"], serde_json::json!(["/wasm-oci"]));
    assert!(config["WorkingDir"].as_str().unwrap_or("").is_empty() || config["WorkingDir"] == "/");
    assert!(
        config["User"].as_str().unwrap_or("").is_empty(),
        "runs as root"
    );
}

#[test]
fn the_image_pushes_to_a_layout_in_the_workspace_without_network() {
    let image = slim_image();
    let ws = Workspace::new();
    std::fs::copy(multiply_wasm(), ws.root().join("multiply.wasm")).unwrap();
    let env = ws.container_env(&[("image", "oci:out"), ("path", "multiply.wasm")]);
    let run = ws.run_container(image, &env, Network::None);
    assert!(run.success(), "{run:?}");
    assert!(run.error_lines().is_empty(), "{run:?}");
    assert!(
        run.stdout.contains("::group::Validate and upload"),
        "{run:?}"
    );

    // Outputs, parsed as the runner parses them, agree with the layout skopeo reads.
    let out = ws.outputs();
    assert_eq!(out["tags"], "1.2.3,1.2,1,latest,sha-0123456");
    let layout = ws.root().join("out");
    for tag in ["1.2.3", "latest", "sha-0123456"] {
        let raw = skopeo_raw(&format!("oci:{}:{tag}", layout.display()));
        assert_eq!(sha256(&raw), out["digest"], "tag {tag}");
    }
    let manifest: serde_json::Value =
        serde_json::from_slice(&skopeo_raw(&format!("oci:{}:1.2.3", layout.display()))).unwrap();
    let wasm = std::fs::read(multiply_wasm()).unwrap();
    assert_eq!(manifest["layers"][0]["digest"], sha256(&wasm));
    assert_eq!(out["wasm-digest"], sha256(&wasm));
    assert!(
        ws.summary().contains("Wasm OCI artifact pushed"),
        "{}",
        ws.summary()
    );
}

#[test]
fn the_image_pushes_to_the_registry_on_the_host_network() {
    let image = slim_image();
    let registry = Registry::start();
    let ws = Workspace::new();
    std::fs::copy(multiply_wasm(), ws.root().join("multiply.wasm")).unwrap();
    let target = format!("{}/acme/multiply", registry.host());
    let env = ws.container_env(&[
        ("image", &target),
        ("path", "multiply.wasm"),
        ("insecure", "true"),
        ("tags", "1.0.0"),
    ]);
    let run = ws.run_container(image, &env, Network::Host);
    assert!(run.success(), "{run:?}");
    let out = ws.outputs();
    let (manifest, _) = registry
        .manifest("acme/multiply", "1.0.0")
        .expect("tag pushed");
    assert_eq!(sha256(&manifest), out["digest"]);
    assert_eq!(out["ref"], format!("{target}@{}", out["digest"]));
}

#[test]
fn the_image_fails_with_an_annotation_and_no_outputs() {
    let image = slim_image();
    let ws = Workspace::new();
    let env = ws.container_env(&[("image", "oci:out"), ("path", "missing.wasm")]);
    let run = ws.run_container(image, &env, Network::None);
    assert!(!run.success(), "{run:?}");
    assert_eq!(run.output.status.code(), Some(1));
    let errors = run.error_lines();
    assert_eq!(errors.len(), 1, "{run:?}");
    assert!(
        errors[0].starts_with("::error title=Wasm file not found::no file at `missing.wasm`"),
        "{}",
        errors[0]
    );
    assert!(ws.outputs().is_empty());
}

/// A release job pushes a `.wasm` built earlier with `push/`, a deploy job verifies and pulls it
/// by digest with `verify/` and `pull/`: each step as the runner runs that folder's action.yml
/// (its defaults, its `runs.env` and `args`) on the image built from slim.Dockerfile.
#[test]
fn the_sub_actions_push_a_located_wasm_then_verify_and_pull_it_by_digest() {
    let image = sub_action_image();
    let registry = Registry::start();
    let target = format!("{}/acme/multiply", registry.host());
    let release = Job::tag_push();
    std::fs::copy(multiply_wasm(), release.workspace().join("multiply.wasm")).unwrap();
    let keys = tempfile::tempdir().unwrap();
    let (private, public) = common::raw::p256_key(keys.path(), "release");
    let private = std::fs::read_to_string(private).unwrap();
    release.chown_to_runner();

    let push = release.run_action_step(
        "push",
        image,
        &[
            ("image", &target),
            ("path", "multiply.wasm"),
            ("insecure", "true"),
            ("signing-key", &private),
        ],
    );
    assert!(push.run.success(), "{:?}", push.run);
    let digest = &push.outputs["digest"];
    let (manifest, _) = registry
        .manifest("acme/multiply", "1.2.3")
        .expect("tag pushed");
    assert_eq!(&sha256(&manifest), digest);
    assert_eq!(push.outputs["tags"], "1.2.3,1.2,1,latest,sha-0123456");
    assert!(!push.outputs["provenance-digest"].is_empty());
    assert!(
        !push.outputs["bundle-digest"].is_empty(),
        "signed by the key"
    );
    assert_eq!(
        push.outputs["sbom-digest"], "",
        "a located .wasm has no SBOM"
    );

    let deploy = Job::tag_push();
    let pinned = format!("{target}@{digest}");
    let verify = deploy.run_action_step(
        "verify",
        image,
        &[
            ("image", &pinned),
            ("insecure", "true"),
            ("public-key", &public),
        ],
    );
    assert!(verify.run.success(), "{:?}", verify.run);
    assert_eq!(verify.outputs["verified"], "true");
    assert_eq!(&verify.outputs["digest"], digest);
    assert!(
        verify.summary.contains("provenance signature"),
        "{}",
        verify.summary
    );

    let pull = deploy.run_action_step(
        "pull",
        image,
        &[
            ("image", &pinned),
            ("insecure", "true"),
            ("output", "app.wasm"),
        ],
    );
    assert!(pull.run.success(), "{:?}", pull.run);
    assert_eq!(pull.outputs["path"], "app.wasm");
    assert_eq!(
        std::fs::read(deploy.workspace().join("app.wasm")).unwrap(),
        std::fs::read(multiply_wasm()).unwrap()
    );

    // `push/` only locates: without `path` it says so, and builds nothing (the workspace has a
    // Cargo.toml that the root action would build).
    let job = Job::tag_push();
    job.checkout(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/multiply"));
    let push = job.run_action_step("push", image, &[("image", &target), ("insecure", "true")]);
    assert!(!push.run.success(), "{:?}", push.run);
    let errors = push.run.error_lines();
    assert_eq!(errors.len(), 1, "{:?}", push.run);
    assert!(
        errors[0].contains("input `path`: is required"),
        "{}",
        errors[0]
    );
}
