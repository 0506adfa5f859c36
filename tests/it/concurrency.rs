//! Pushes that meet other writers: a file rewritten while it is pushed is not tagged, pushes
//! into one OCI layout at once keep every tag, and pushes of one artifact with different
//! provenance to the real registry keep every referrer in the fallback index.

use crate::common;

use std::io::{Seek, SeekFrom, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};

use common::proxy::{Fault, FaultProxy};
use common::*;
use serde_json::Value;

/// Overwrites the second half of the file at `path` in place: same size, other bytes.
fn rewrite_second_half(path: &PathBuf) {
    let mut file = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    let len = file.metadata().unwrap().len();
    file.seek(SeekFrom::Start(len / 2)).unwrap();
    file.write_all(&vec![0xff; (len - len / 2) as usize])
        .unwrap();
    file.sync_all().unwrap();
}

#[test]
fn a_file_rewritten_while_it_uploads_is_not_tagged() {
    let registry = Registry::start();
    let ws = Workspace::new();
    let path = ws.write("big.wasm", &module_with_data(16 << 20, &[]));
    // The upload's request is held at the proxy while the file is rewritten, then sent on.
    let rewritten = AtomicBool::new(false);
    let target = path.clone();
    let proxy = FaultProxy::start(registry.port, move |_, method, path| {
        let sends_the_file =
            method == "PATCH" || (method == "PUT" && path.contains("/blobs/uploads/"));
        if sends_the_file && !rewritten.swap(true, Ordering::SeqCst) {
            rewrite_second_half(&target);
        }
        Fault::Pass
    });
    let image = format!("{}/acme/big", proxy.host());
    let mut env = ws.action_env(&[
        ("image", &image),
        ("path", "big.wasm"),
        ("tags", "1.0.0"),
        ("insecure", "true"),
    ]);
    env.insert("WASM_OCI_RETRY_INITIAL_DELAY".into(), "0.05".into());
    let run = ws.run_action(&env);

    assert!(!run.success(), "{run:?}");
    assert!(
        proxy
            .log()
            .iter()
            .any(|l| l.contains("PATCH") || l.contains("PUT")),
        "the upload started: {:?}",
        proxy.log()
    );
    let errors = run.error_lines();
    assert_eq!(errors.len(), 1, "{run:?}");
    assert!(
        errors[0].contains("big.wasm")
            && errors[0].contains("changed while it was pushed; nothing was tagged"),
        "{}",
        errors[0]
    );
    assert!(registry.tags("acme/big").is_empty(), "{run:?}");
    assert!(registry.manifest("acme/big", "1.0.0").is_none());
}

#[test]
fn four_pushes_into_one_new_layout_keep_every_tag() {
    let ws = Workspace::new();
    std::fs::copy(multiply_wasm(), ws.root().join("multiply.wasm")).unwrap();
    // A few rounds, each into a layout directory that does not exist yet.
    for round in 0..3 {
        let layout = format!("oci:out{round}");
        let tags: Vec<String> = (0..4).map(|i| format!("t{i}")).collect();
        let runs: Vec<Run> = std::thread::scope(|s| {
            let pushes: Vec<_> = tags
                .iter()
                .map(|tag| {
                    let (ws, layout) = (&ws, &layout);
                    s.spawn(move || {
                        ws.run_cli(
                            &["push", "multiply.wasm", layout, "--tags", tag],
                            &[("SOURCE_DATE_EPOCH", "0")],
                        )
                    })
                })
                .collect();
            pushes.into_iter().map(|p| p.join().unwrap()).collect()
        });
        for run in &runs {
            assert!(run.success(), "{run:?}");
        }
        let index: Value = serde_json::from_slice(
            &std::fs::read(ws.root().join(format!("out{round}/index.json"))).unwrap(),
        )
        .unwrap();
        let names: Vec<&str> = index["manifests"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|m| m["annotations"]["org.opencontainers.image.ref.name"].as_str())
            .collect();
        for tag in &tags {
            assert!(names.contains(&tag.as_str()), "{tag} lost: {names:?}");
        }
        // Each tag names its own version, so each push made its own manifest, and each
        // manifest's provenance has its fallback tag.
        assert_eq!(
            names.iter().filter(|n| n.starts_with("sha256-")).count(),
            4,
            "{names:?}"
        );
    }
}

#[test]
fn four_pushes_with_different_provenance_keep_every_referrer() {
    let registry = Registry::start();
    let image = format!("{}/acme/multiply", registry.host());
    let workspaces: Vec<Workspace> = (0..4).map(|_| Workspace::new()).collect();
    let runs: Vec<Run> = std::thread::scope(|s| {
        let pushes: Vec<_> = workspaces
            .iter()
            .enumerate()
            .map(|(i, ws)| {
                let image = &image;
                s.spawn(move || {
                    let mut env =
                        ws.multiply_env(image, &[("insecure", "true"), ("tags", "1.0.0")]);
                    // Another run of the workflow: other provenance, the same artifact.
                    env.insert("GITHUB_RUN_ID".into(), format!("{}", 1000 + i));
                    ws.run_action(&env)
                })
            })
            .collect();
        pushes.into_iter().map(|p| p.join().unwrap()).collect()
    });
    for run in &runs {
        assert!(run.success(), "{run:?}");
    }
    let outputs: Vec<_> = workspaces.iter().map(Workspace::outputs).collect();
    let digest = &outputs[0]["digest"];
    assert!(outputs.iter().all(|o| &o["digest"] == digest));
    let mut referrers: Vec<&str> = outputs
        .iter()
        .map(|o| o["provenance-digest"].as_str())
        .collect();
    referrers.sort();
    referrers.dedup();
    assert_eq!(referrers.len(), 4, "four different provenance statements");

    let tag = format!("sha256-{}", &digest["sha256:".len()..]);
    let (bytes, _) = registry.manifest("acme/multiply", &tag).unwrap();
    let index: Value = serde_json::from_slice(&bytes).unwrap();
    let listed: Vec<&str> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["digest"].as_str().unwrap())
        .collect();
    for referrer in &referrers {
        assert!(listed.contains(referrer), "{referrer} lost: {listed:?}");
    }
}
