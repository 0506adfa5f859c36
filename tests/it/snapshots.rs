//! Snapshots of what users read: `--help`, the manifest and config JSON, the step summary. A
//! change to any of them shows up as a reviewed diff.

use crate::common;

use common::*;

/// What `wasm-oci ARGS --help` prints, at a fixed width.
fn help(args: &[&str]) -> String {
    let out = std::process::Command::new(BIN)
        .args(args)
        .arg("--help")
        .env("COLUMNS", "100")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn top_level_and_action_help() {
    insta::assert_snapshot!("help", help(&[]));
    insta::assert_snapshot!("action_help", help(&["action"]));
}

#[test]
fn push_help() {
    insta::assert_snapshot!(help(&["push"]));
}

#[test]
fn pull_verify_and_inspect_help() {
    for command in ["pull", "verify", "inspect"] {
        insta::assert_snapshot!(format!("{command}_help"), help(&[command]));
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
fn pull_summary_of_the_sample_module() {
    let ws = Workspace::new();
    let push = ws.run_action(&ws.multiply_env("oci:out", &[("tags", "1.2.3")]));
    assert!(push.success(), "{push:?}");
    std::fs::remove_file(ws.summary_file()).unwrap();
    let pull = ws.run_action(&ws.action_env(&[
        ("command", "pull"),
        ("image", "oci:out:1.2.3"),
        ("output", "pulled.wasm"),
    ]));
    assert!(pull.success(), "{pull:?}");
    let settings = {
        let mut s = insta::Settings::clone_current();
        s.add_filter(r"sha256:[0-9a-f]{64}", "sha256:[digest]");
        s.add_filter(r"\| \d+ bytes \|", "| [size] bytes |");
        s
    };
    settings.bind(|| insta::assert_snapshot!("pull_summary", ws.summary()));
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
