//! Snapshots of what users read: `--help`, the manifest and config JSON, the step summary. A
//! change to any of them shows up as a reviewed diff.

mod common;

use common::*;

#[test]
fn push_help() {
    let out = std::process::Command::new(BIN)
        .args(["push", "--help"])
        .env("COLUMNS", "100")
        .output()
        .unwrap();
    insta::assert_snapshot!(String::from_utf8_lossy(&out.stdout));
}

#[test]
fn pull_verify_and_inspect_help() {
    for command in ["pull", "verify", "inspect"] {
        let out = std::process::Command::new(BIN)
            .args([command, "--help"])
            .env("COLUMNS", "100")
            .output()
            .unwrap();
        insta::assert_snapshot!(
            format!("{command}_help"),
            String::from_utf8_lossy(&out.stdout)
        );
    }
}

#[test]
fn manifest_config_and_summary_of_the_sample_module() {
    let ws = Workspace::new();
    std::fs::copy(multiply_wasm(), ws.root().join("multiply.wasm")).unwrap();
    let run = ws.run_action(&ws.action_env(&[
        ("image", "oci:out"),
        ("path", "multiply.wasm"),
        ("tags", "1.2.3"),
    ]));
    assert!(run.success(), "{run:?}");
    let digest = &ws.outputs()["digest"];
    let out = ws.root().join("out/blobs/sha256");
    // The bytes as stored: field order and compactness are part of the digest.
    let manifest = std::fs::read_to_string(out.join(&digest[7..])).unwrap();
    let parsed: serde_json::Value = serde_json::from_str(&manifest).unwrap();
    let config_digest = parsed["config"]["digest"].as_str().unwrap();
    let config = std::fs::read_to_string(out.join(&config_digest[7..])).unwrap();
    // The module's own bytes depend on the compiler version: redact what follows from them.
    let settings = {
        let mut s = insta::Settings::clone_current();
        s.add_filter(r"sha256:[0-9a-f]{64}", "sha256:[digest]");
        s.add_filter(r#""size":\d+"#, r#""size":"[size]""#);
        s.add_filter(r"\| \d+ bytes \|", "| [size] bytes |");
        s
    };
    settings.bind(|| {
        insta::assert_snapshot!("manifest", manifest);
        insta::assert_snapshot!("config", config);
        insta::assert_snapshot!("summary", ws.summary());
    });
}

#[test]
fn provenance_referrer_and_statement_of_the_sample_module() {
    let ws = Workspace::new();
    std::fs::copy(multiply_wasm(), ws.root().join("multiply.wasm")).unwrap();
    let run = ws.run_action(&ws.action_env(&[
        ("image", "oci:out"),
        ("path", "multiply.wasm"),
        ("tags", "1.2.3"),
    ]));
    assert!(run.success(), "{run:?}");
    let blobs = ws.root().join("out/blobs/sha256");
    let provenance = &ws.outputs()["provenance-digest"];
    let referrer = std::fs::read_to_string(blobs.join(&provenance[7..])).unwrap();
    let parsed: serde_json::Value = serde_json::from_str(&referrer).unwrap();
    let layer = parsed["layers"][0]["digest"].as_str().unwrap();
    let statement: serde_json::Value =
        serde_json::from_slice(&std::fs::read(blobs.join(&layer[7..])).unwrap()).unwrap();
    let settings = {
        let mut s = insta::Settings::clone_current();
        s.add_filter(r"sha256:[0-9a-f]{64}", "sha256:[digest]");
        s.add_filter(r#""sha256": "[0-9a-f]{64}""#, r#""sha256": "[hex]""#);
        s.add_filter(r#""size":\d+"#, r#""size":"[size]""#);
        s
    };
    settings.bind(|| {
        // The referrer's bytes as stored; the statement pretty-printed for reading.
        insta::assert_snapshot!("referrer", referrer);
        insta::assert_snapshot!(
            "statement",
            serde_json::to_string_pretty(&statement).unwrap()
        );
    });
}
