//! Pull end to end: the real binary against the real CNCF registry, reading our artifacts and
//! what other tools push (wkg, oras, wasm-to-oci), from a registry and from an OCI layout; and
//! a download cut short, which must leave nothing behind.

use crate::common;

use common::fakes::*;
use common::raw::*;
use common::*;
use serde_json::Value;

fn push_multiply(ws: &Workspace, registry: &Registry, repo: &str, tag: &str) -> String {
    let image = format!("{}/{repo}", registry.host());
    let run = ws.run_action(&ws.multiply_env(&image, &[("insecure", "true"), ("tags", tag)]));
    assert!(run.success(), "{run:?}");
    ws.outputs()["digest"].clone()
}

#[test]
fn release_then_deploy_pulls_exactly_the_digest() {
    let registry = Registry::start();
    let release = Workspace::new();
    let digest = push_multiply(&release, &registry, "acme/multiply", "1.2.3");

    let deploy = Workspace::new();
    let image = format!("{}/acme/multiply@{digest}", registry.host());
    let run = deploy.run_action(&deploy.action_env(&[
        ("command", "pull"),
        ("image", &image),
        ("insecure", "true"),
        ("output", "bin/app.wasm"),
    ]));
    assert!(run.success(), "{run:?}");
    assert!(run.error_lines().is_empty(), "{run:?}");
    let out = deploy.outputs();
    let wasm = std::fs::read(multiply_wasm()).unwrap();
    let written = deploy.root().join("bin/app.wasm");
    assert_eq!(std::fs::read(&written).unwrap(), wasm);
    assert_eq!(out["path"], "bin/app.wasm");
    assert_eq!(out["digest"], digest);
    assert_eq!(out["wasm-digest"], sha256(&wasm));
    assert_eq!(out["ref"], image);
    assert!(deploy.summary().contains(&digest), "{}", deploy.summary());
    let entries: Vec<_> = std::fs::read_dir(deploy.root().join("bin"))
        .unwrap()
        .collect();
    assert_eq!(entries.len(), 1, "no temporary files left");
}

#[test]
fn wasm_to_oci_cli_form_writes_the_title_into_the_current_folder() {
    let registry = Registry::start();
    let ws = Workspace::new();
    push_multiply(&ws, &registry, "acme/cli", "v1");
    std::fs::remove_file(ws.root().join("multiply.wasm")).unwrap();
    let reference = format!("{}/acme/cli:v1", registry.host());
    let run = ws.run_cli(&["pull", &reference, "--insecure"], &[]);
    assert!(run.success(), "{run:?}");
    assert_eq!(run.stdout.trim(), "multiply.wasm");
    assert!(
        run.stderr.contains("tags move"),
        "a tag pull warns: {run:?}"
    );
    assert_eq!(
        std::fs::read(ws.root().join("multiply.wasm")).unwrap(),
        std::fs::read(multiply_wasm()).unwrap()
    );

    let run = ws.run_cli(
        &["pull", &reference, "--insecure", "-o", "renamed.wasm"],
        &[],
    );
    assert!(run.success(), "{run:?}");
    assert!(ws.root().join("renamed.wasm").is_file());
}

#[test]
fn reads_what_other_tools_push() {
    let registry = Registry::start();
    let ws = Workspace::new();
    let module = std::fs::read(multiply_wasm()).unwrap();
    let component = component_wasm();
    push_wkg_style(&registry, "tools/wkg", "1.0.0", &component, "wasip2");
    push_oras_style(&registry, "tools/oras", "new", &module, "calc.wasm", true);
    push_oras_style(
        &registry,
        "tools/oras",
        "old",
        &module,
        "calc-old.wasm",
        false,
    );
    push_legacy_style(&registry, "tools/legacy", "v1", &module);

    let pull = |reference: &str| {
        let image = format!("{}/{reference}", registry.host());
        ws.run_cli(&["pull", &image, "--insecure", "-o", "out/"], &[])
    };
    for (reference, file, bytes) in [
        ("tools/wkg:1.0.0", "wkg.wasm", &component),
        ("tools/oras:new", "calc.wasm", &module),
        ("tools/oras:old", "calc-old.wasm", &module),
        ("tools/legacy:v1", "module.wasm", &module),
    ] {
        let run = pull(reference);
        assert!(run.success(), "{reference}: {run:?}");
        assert_eq!(
            &std::fs::read(ws.root().join("out").join(file)).unwrap(),
            bytes,
            "{reference}"
        );
    }

    let inspect = ws.run_cli(
        &[
            "inspect",
            &format!("{}/tools/oras:new", registry.host()),
            "--insecure",
        ],
        &[],
    );
    assert!(inspect.success(), "{inspect:?}");
    let doc: Value = serde_json::from_str(&inspect.stdout).unwrap();
    assert_eq!(doc["format"], "oras");
    assert_eq!(doc["config"]["mediaType"], EMPTY_CONFIG);
    assert_eq!(doc["artifactType"], "application/vnd.unknown.artifact.v1");
    assert_eq!(doc["layers"][0]["title"], "calc.wasm");
    assert_eq!(doc["wasm-digest"], sha256(&module));
    let inspect = ws.run_cli(
        &[
            "inspect",
            &format!("{}/tools/wkg:1.0.0", registry.host()),
            "--insecure",
        ],
        &[],
    );
    let doc: Value = serde_json::from_str(&inspect.stdout).unwrap();
    assert_eq!(doc["format"], "cncf");
    assert_eq!(doc["os"], "wasip2");
}

#[test]
fn several_candidate_layers_are_refused_unless_one_is_chosen() {
    let registry = Registry::start();
    let ws = Workspace::new();
    let module = std::fs::read(multiply_wasm()).unwrap();
    let component = component_wasm();
    push_raw(
        &registry,
        "tools/multi",
        "v1",
        (EMPTY_CONFIG, b"{}"),
        &[
            (&module, "application/wasm", Some("a.wasm")),
            (&component, "application/wasm", Some("b.wasm")),
        ],
        serde_json::json!({}),
    );
    let image = format!("{}/tools/multi:v1", registry.host());
    let run = ws.run_action(&ws.action_env(&[
        ("command", "pull"),
        ("image", &image),
        ("insecure", "true"),
    ]));
    assert!(!run.success(), "{run:?}");
    let error = run.error_lines().join("\n");
    assert!(error.contains("title=Unsupported artifact"), "{run:?}");
    assert!(
        error.contains("`a.wasm`") && error.contains("`b.wasm`") && error.contains("`layer`"),
        "{run:?}"
    );
    assert!(!ws.root().join("a.wasm").exists() && !ws.root().join("b.wasm").exists());

    let run = ws.run_action(&ws.action_env(&[
        ("command", "pull"),
        ("image", &image),
        ("insecure", "true"),
        ("layer", "b.wasm"),
    ]));
    assert!(run.success(), "{run:?}");
    assert_eq!(std::fs::read(ws.root().join("b.wasm")).unwrap(), component);
}

#[test]
fn pulls_from_an_oci_layout() {
    let ws = Workspace::new();
    std::fs::copy(multiply_wasm(), ws.root().join("m.wasm")).unwrap();
    let push = ws.run_cli(
        &["push", "m.wasm", "oci:layout", "--tags", "0.1.0"],
        &[("SOURCE_DATE_EPOCH", "0")],
    );
    assert!(push.success(), "{push:?}");
    let digest = push.stdout.trim().to_owned();

    let by_tag = ws.run_cli(&["pull", "oci:layout:0.1.0", "-o", "by-tag.wasm"], &[]);
    assert!(by_tag.success(), "{by_tag:?}");
    let by_digest = ws.run_cli(
        &[
            "pull",
            &format!("oci:layout@{digest}"),
            "-o",
            "by-digest.wasm",
        ],
        &[],
    );
    assert!(by_digest.success(), "{by_digest:?}");
    let wasm = std::fs::read(multiply_wasm()).unwrap();
    assert_eq!(std::fs::read(ws.root().join("by-tag.wasm")).unwrap(), wasm);
    assert_eq!(
        std::fs::read(ws.root().join("by-digest.wasm")).unwrap(),
        wasm
    );

    let missing = ws.run_cli(&["pull", "oci:layout:9.9.9"], &[]);
    assert!(!missing.success());
    assert!(
        missing.stderr.contains("no manifest `oci:layout:9.9.9`"),
        "{missing:?}"
    );
}

#[test]
fn a_download_cut_short_leaves_no_file() {
    let ws = Workspace::new();
    let wasm = std::fs::read(multiply_wasm()).unwrap();
    let config = br#"{"architecture":"wasm","os":"wasip1","layerDigests":[]}"#.to_vec();
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": descriptor("application/vnd.wasm.config.v0+json", &config),
        "layers": [descriptor("application/wasm", &wasm)],
    }))
    .unwrap();
    let digest = sha256(&manifest);
    let host = truncating_server("acme/app", manifest, config, wasm.clone());
    std::fs::create_dir_all(ws.root().join("dist")).unwrap();
    let image = format!("{host}/acme/app@{digest}");
    let run = ws.run_action(&ws.action_env(&[
        ("command", "pull"),
        ("image", &image),
        ("insecure", "true"),
        ("output", "dist/app.wasm"),
    ]));
    assert!(!run.success(), "{run:?}");
    let error = run.error_lines().join("\n");
    assert!(error.contains("cut short"), "{run:?}");
    assert!(
        error.contains(&format!("of {} bytes", wasm.len())),
        "{run:?}"
    );
    assert_eq!(
        std::fs::read_dir(ws.root().join("dist")).unwrap().count(),
        0,
        "nothing at `output`, no temporary left"
    );
    assert!(!ws.outputs().contains_key("path"));
}

#[test]
fn a_pull_killed_midway_leaves_nothing_at_output() {
    let ws = Workspace::new();
    let wasm = std::fs::read(multiply_wasm()).unwrap();
    let config = br#"{"architecture":"wasm","os":"wasip1","layerDigests":[]}"#.to_vec();
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": descriptor("application/vnd.wasm.config.v0+json", &config),
        "layers": [descriptor("application/wasm", &wasm)],
    }))
    .unwrap();
    let digest = sha256(&manifest);
    let host = stalling_server("acme/app", manifest, config, wasm.clone());
    let mut child = std::process::Command::new(BIN)
        .args([
            "pull",
            &format!("{host}/acme/app@{digest}"),
            "--insecure",
            "-o",
            "app.wasm",
        ])
        .current_dir(ws.root())
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", ws.dir.path().join("home"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();

    // Wait until part of the layer is on disk, somewhere out of the way, then kill the pull.
    let started = std::time::Instant::now();
    let partial = loop {
        let found = walk(&ws.root())
            .into_iter()
            .find(|(path, size)| *size > 0 && path.file_name().unwrap() != "app.wasm");
        if let Some(found) = found {
            break found;
        }
        assert!(
            started.elapsed().as_secs() < 20,
            "the download never started"
        );
        assert!(child.try_wait().unwrap().is_none(), "the pull ended early");
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    assert!(partial.1 < wasm.len() as u64, "{partial:?}");
    assert!(
        !ws.root().join("app.wasm").exists(),
        "nothing at `output` while downloading"
    );
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        !ws.root().join("app.wasm").exists(),
        "nothing at `output` after the kill"
    );
}

/// Every file under `dir`, with its size.
fn walk(dir: &std::path::Path) -> Vec<(std::path::PathBuf, u64)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else if let Ok(meta) = entry.metadata() {
            out.push((path, meta.len()));
        }
    }
    out
}

#[test]
fn a_layer_that_is_not_wasm_is_refused_and_not_written() {
    let registry = Registry::start();
    let ws = Workspace::new();
    push_raw(
        &registry,
        "tools/notes",
        "v1",
        (EMPTY_CONFIG, b"{}"),
        &[(b"just some notes\n", "text/plain", Some("notes.txt"))],
        serde_json::json!({}),
    );
    let image = format!("{}/tools/notes:v1", registry.host());
    let run = ws.run_cli(&["pull", &image, "--insecure"], &[]);
    assert!(!run.success(), "{run:?}");
    assert!(run.stderr.contains("is not valid WebAssembly"), "{run:?}");
    assert!(run.stderr.contains("magic bytes"), "{run:?}");
    assert_eq!(std::fs::read_dir(ws.root()).unwrap().count(), 0, "{run:?}");
}

#[test]
fn wasm_to_oci_form_uses_the_docker_login_credentials() {
    let registry = Registry::with_htpasswd("bot", "correct-horse-battery");
    let ws = Workspace::new();
    std::fs::copy(multiply_wasm(), ws.root().join("multiply.wasm")).unwrap();
    let image = format!("{}/acme/multiply", registry.host());
    let push = ws.run_action(&ws.action_env(&[
        ("image", &image),
        ("path", "multiply.wasm"),
        ("insecure", "true"),
        ("tags", "v1"),
        ("username", "bot"),
        ("password", "correct-horse-battery"),
    ]));
    assert!(push.success(), "{push:?}");
    std::fs::remove_file(ws.root().join("multiply.wasm")).unwrap();

    // What `docker login` leaves behind.
    use base64::Engine as _;
    let auth = base64::engine::general_purpose::STANDARD.encode("bot:correct-horse-battery");
    let docker = ws.dir.path().join("home/.docker");
    std::fs::create_dir_all(&docker).unwrap();
    std::fs::write(
        docker.join("config.json"),
        serde_json::json!({"auths": {registry.host(): {"auth": auth}}}).to_string(),
    )
    .unwrap();
    let run = ws.run_cli(&["pull", &format!("{image}:v1"), "--insecure"], &[]);
    assert!(run.success(), "{run:?}");
    assert_eq!(
        std::fs::read(ws.root().join("multiply.wasm")).unwrap(),
        std::fs::read(multiply_wasm()).unwrap()
    );
    assert!(!run.all().contains("correct-horse-battery"), "{run:?}");
}
