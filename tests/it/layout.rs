//! The destination that needs no server: an OCI image layout directory, read back by skopeo.

use crate::common;

use common::*;
use serde_json::Value;

fn skopeo_raw(reference: &str) -> Vec<u8> {
    let skopeo = which("skopeo").expect("skopeo is installed (`.ci/run` installs it)");
    let out = std::process::Command::new(skopeo)
        .args(["inspect", "--raw", reference])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

#[test]
fn cli_quick_start_writes_a_layout_skopeo_reads() {
    let ws = Workspace::new();
    std::fs::copy(multiply_wasm(), ws.root().join("multiply.wasm")).unwrap();
    let run = ws.run_cli(
        &["push", "multiply.wasm", "oci:out", "--tags", "0.1.0"],
        &[("SOURCE_DATE_EPOCH", "0")],
    );
    assert!(run.success(), "{run:?}");
    let digest = run.stdout.trim().to_owned();

    let out = ws.root().join("out");
    assert_eq!(
        std::fs::read_to_string(out.join("oci-layout")).unwrap(),
        r#"{"imageLayoutVersion":"1.0.0"}"#
    );
    let index: Value =
        serde_json::from_slice(&std::fs::read(out.join("index.json")).unwrap()).unwrap();
    assert_eq!(index["schemaVersion"], 2);
    assert_eq!(index["manifests"][0]["digest"], digest.as_str());
    assert_eq!(
        index["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"],
        "0.1.0"
    );

    let raw = skopeo_raw(&format!("oci:{}:0.1.0", out.display()));
    assert_eq!(sha256(&raw), digest);
    let manifest: Value = serde_json::from_slice(&raw).unwrap();
    let layer = manifest["layers"][0]["digest"].as_str().unwrap();
    let wasm = std::fs::read(multiply_wasm()).unwrap();
    assert_eq!(
        std::fs::read(out.join("blobs/sha256").join(&layer[7..])).unwrap(),
        wasm
    );
    // Every blob the manifest names is in the layout and hashes to its name.
    for blob in std::fs::read_dir(out.join("blobs/sha256")).unwrap() {
        let blob = blob.unwrap();
        let bytes = std::fs::read(blob.path()).unwrap();
        assert_eq!(sha256(&bytes)[7..], *blob.file_name().to_str().unwrap());
    }
}

#[test]
fn a_second_tag_joins_the_index_and_the_same_input_gives_the_same_digest() {
    let ws = Workspace::new();
    std::fs::copy(multiply_wasm(), ws.root().join("m.wasm")).unwrap();
    let env = [("SOURCE_DATE_EPOCH", "1700000000")];
    let one = ws.run_cli(&["push", "m.wasm", "oci:out:a"], &env);
    let two = ws.run_cli(
        &[
            "push", "--path", "m.wasm", "--image", "oci:out", "--tags", "a,b",
        ],
        &env,
    );
    assert!(one.success() && two.success(), "{one:?}{two:?}");
    assert_eq!(one.stdout, two.stdout);
    let out = ws.root().join("out");
    assert_eq!(
        skopeo_raw(&format!("oci:{}:a", out.display())),
        skopeo_raw(&format!("oci:{}:b", out.display()))
    );
}

#[test]
fn dry_run_contacts_no_registry() {
    let ws = Workspace::new();
    std::fs::copy(multiply_wasm(), ws.root().join("m.wasm")).unwrap();
    // Nothing listens on this port: a dry run must not try.
    let image = format!("127.0.0.1:{}/acme/dry", free_port());
    let run = ws.run_action(&ws.action_env(&[
        ("image", &image),
        ("path", "m.wasm"),
        ("tags", "v1"),
        ("dry-run", "true"),
    ]));
    assert!(run.success(), "{run:?}");
    let out = ws.outputs();
    assert!(out["digest"].starts_with("sha256:"));
    assert_eq!(out["image"], image);
    assert!(ws.summary().contains("dry run"), "{}", ws.summary());
}
