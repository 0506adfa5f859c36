//! The container contract, for real: the Dockerfile's slim image, built with podman and run as
//! GitHub's runner runs a Docker container action, pushes and writes its outputs.

use crate::common;

use std::process::Command;

use common::container::{Network, inspect_image, slim_image};
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
