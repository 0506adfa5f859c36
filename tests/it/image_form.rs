//! `format: image` end to end against the real registry: the module pushed as an OCI container
//! image (buildx's `FROM scratch` + `COPY app.wasm /` form), read back by the test's own
//! registry reader and by `skopeo`, reproducible, and read by `verify`, `pull` and `inspect`,
//! which take the module out of its layer byte for byte.

use std::io::Read;

use crate::common;

use common::raw::p256_key;
use common::*;
use serde_json::Value;

const LAYER: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
const CONFIG: &str = "application/vnd.oci.image.config.v1+json";

/// Pushes examples/multiply in the image form with `extra` inputs; returns the `digest` output.
fn push_image(registry: &Registry, ws: &Workspace, repo: &str, extra: &[(&str, &str)]) -> String {
    let image = format!("{}/{repo}", registry.host());
    let inputs = [&[("insecure", "true"), ("format", "image")][..], extra].concat();
    let run = ws.run_action(&ws.multiply_env(&image, &inputs));
    assert!(run.success(), "{run:?}");
    ws.outputs()["digest"].clone()
}

/// One entry of a tar: path, mode, uid, gid, mtime, bytes.
type Entry = (String, u32, u64, u64, u64, Vec<u8>);

/// The uncompressed tar of a gzip-compressed one, and its entries.
fn entries(layer: &[u8]) -> (Vec<u8>, Vec<Entry>) {
    let mut tar = Vec::new();
    flate2::read::GzDecoder::new(layer)
        .read_to_end(&mut tar)
        .unwrap();
    let mut archive = tar::Archive::new(&tar[..]);
    let entries = archive
        .entries()
        .unwrap()
        .map(|e| {
            let mut e = e.unwrap();
            let h = e.header().clone();
            let mut bytes = Vec::new();
            e.read_to_end(&mut bytes).unwrap();
            (
                e.path().unwrap().display().to_string(),
                h.mode().unwrap(),
                h.uid().unwrap(),
                h.gid().unwrap(),
                h.mtime().unwrap(),
                bytes,
            )
        })
        .collect();
    (tar, entries)
}

#[test]
fn the_image_form_is_one_gzip_layer_holding_the_module_at_its_root() {
    let registry = Registry::start();
    let ws = Workspace::new();
    let digest = push_image(&registry, &ws, "acme/multiply", &[("tags", "1.2.3")]);
    let (bytes, media_type) = registry.manifest("acme/multiply", &digest).unwrap();
    assert_eq!(media_type, OCI_MANIFEST, "a plain manifest, never an index");
    assert_eq!(sha256(&bytes), digest);
    let manifest: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(manifest["config"]["mediaType"], CONFIG);
    let layers = manifest["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 1);
    assert_eq!(layers[0]["mediaType"], LAYER);
    let layer = registry.blob("acme/multiply", layers[0]["digest"].as_str().unwrap());
    let module = std::fs::read(multiply_wasm()).unwrap();
    let (tar, entries) = entries(&layer);
    // SOURCE_DATE_EPOCH is the entry's time; root owns it; it runs.
    assert_eq!(
        entries,
        [(
            "multiply.wasm".to_owned(),
            0o755,
            0,
            0,
            1_700_000_000,
            module
        )]
    );
    let config: Value = serde_json::from_slice(&registry.blob(
        "acme/multiply",
        manifest["config"]["digest"].as_str().unwrap(),
    ))
    .unwrap();
    assert_eq!(config["architecture"], "wasm");
    assert_eq!(config["os"], "wasip1");
    assert_eq!(
        config["config"]["Entrypoint"],
        serde_json::json!(["/multiply.wasm"])
    );
    assert_eq!(config["rootfs"]["type"], "layers");
    assert_eq!(
        config["rootfs"]["diff_ids"],
        serde_json::json!([sha256(&tar)])
    );
    assert_eq!(config["created"], "2023-11-14T22:13:20Z");
    assert_eq!(
        ws.outputs()["wasm-digest"],
        sha256(&std::fs::read(multiply_wasm()).unwrap())
    );
    // The tag names the same manifest, and a second tool reads it as an image.
    let (tagged, _) = registry.manifest("acme/multiply", "1.2.3").unwrap();
    assert_eq!(tagged, bytes);
    let skopeo = std::process::Command::new(
        which("skopeo").expect("skopeo is installed (`.ci/run` installs it)"),
    )
    .args(["inspect", "--tls-verify=false", "--config"])
    .arg(format!(
        "docker://{}/acme/multiply@{digest}",
        registry.host()
    ))
    .output()
    .unwrap();
    assert!(
        skopeo.status.success(),
        "{}",
        String::from_utf8_lossy(&skopeo.stderr)
    );
    let seen: Value = serde_json::from_slice(&skopeo.stdout).unwrap();
    assert_eq!(seen["os"], "wasip1");
    assert_eq!(
        seen["config"]["Entrypoint"],
        serde_json::json!(["/multiply.wasm"])
    );
}

#[test]
fn the_image_form_has_the_same_digest_from_two_runs_and_another_from_the_cncf_form() {
    let registry = Registry::start();
    let one = push_image(&registry, &Workspace::new(), "acme/one", &[]);
    let two = push_image(&registry, &Workspace::new(), "acme/two", &[]);
    assert_eq!(one, two);
    let ws = Workspace::new();
    let image = format!("{}/acme/three", registry.host());
    let run = ws.run_action(&ws.multiply_env(&image, &[("insecure", "true")]));
    assert!(run.success(), "{run:?}");
    assert_ne!(ws.outputs()["digest"], one);
}

#[test]
fn a_component_is_a_wasip2_image() {
    let registry = Registry::start();
    let ws = Workspace::new();
    ws.write("app.wasm", &component_wasm());
    let image = format!("{}/acme/component", registry.host());
    let run = ws.run_action(&ws.action_env(&[
        ("image", &image),
        ("path", "app.wasm"),
        ("insecure", "true"),
        ("format", "image"),
    ]));
    assert!(run.success(), "{run:?}");
    let digest = ws.outputs()["digest"].clone();
    let (bytes, _) = registry.manifest("acme/component", &digest).unwrap();
    let manifest: Value = serde_json::from_slice(&bytes).unwrap();
    let config: Value = serde_json::from_slice(&registry.blob(
        "acme/component",
        manifest["config"]["digest"].as_str().unwrap(),
    ))
    .unwrap();
    assert_eq!(config["os"], "wasip2");
    assert_eq!(
        config["config"]["Entrypoint"],
        serde_json::json!(["/app.wasm"])
    );
}

#[test]
fn release_in_the_image_form_then_verify_pull_and_inspect_the_digest() {
    let registry = Registry::start();
    let keys = tempfile::tempdir().unwrap();
    let (signing, public) = p256_key(keys.path(), "release");
    let release = Workspace::new();
    std::fs::copy(&signing, release.root().join("signing.pem")).unwrap();
    let digest = push_image(
        &registry,
        &release,
        "acme/multiply",
        &[("tags", "1.2.3"), ("signing-key", "signing.pem")],
    );
    let module = std::fs::read(multiply_wasm()).unwrap();
    let image = format!("{}/acme/multiply@{digest}", registry.host());

    let deploy = Workspace::new();
    deploy.write("keys/release.pub.pem", public.as_bytes());
    let run = deploy.run_action(&deploy.action_env(&[
        ("command", "verify"),
        ("image", &image),
        ("insecure", "true"),
        ("expect-source", "https://github.com/acme/multiply"),
        ("expect-revision", COMMIT),
        ("public-key", "keys/release.pub.pem"),
    ]));
    assert!(run.success(), "{run:?}");
    let summary = deploy.summary();
    for check in [
        "layer digest",
        "wasm",
        "kind",
        "provenance signature",
        "provenance subject",
    ] {
        assert!(
            summary.contains(&format!("| {check} | ✅ pass |")),
            "{check}:\n{summary}"
        );
    }

    let run = deploy.run_action(&deploy.action_env(&[
        ("command", "pull"),
        ("image", &image),
        ("insecure", "true"),
        ("output", "bin/"),
    ]));
    assert!(run.success(), "{run:?}");
    let out = deploy.outputs();
    assert_eq!(out["path"], "bin/multiply.wasm");
    assert_eq!(
        std::fs::read(deploy.root().join("bin/multiply.wasm")).unwrap(),
        module
    );
    assert_eq!(out["wasm-digest"], sha256(&module));
    assert_eq!(out["size"], module.len().to_string());
    let metadata: Value = serde_json::from_str(&out["metadata"]).unwrap();
    assert_eq!(metadata["format"], "image");
    let entries: Vec<_> = std::fs::read_dir(deploy.root().join("bin"))
        .unwrap()
        .collect();
    assert_eq!(entries.len(), 1, "no temporary files left");

    let run = deploy.run_cli(&["inspect", &image, "--insecure"], &[]);
    assert!(run.success(), "{run:?}");
    let inspected: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(inspected["format"], "image");
    assert_eq!(inspected["os"], "wasip1");
    assert_eq!(inspected["architecture"], "wasm");
    assert_eq!(inspected["wasm-digest"], sha256(&module));
    assert_eq!(inspected["size"], module.len());
}

#[test]
fn an_image_whose_layer_holds_more_than_the_module_is_refused_by_pull() {
    let registry = Registry::start();
    let module = std::fs::read(multiply_wasm()).unwrap();
    let mut tar = tar::Builder::new(Vec::new());
    for (name, bytes) in [("app.wasm", &module[..]), ("run.sh", b"#!/bin/sh\n")] {
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o755);
        header.set_cksum();
        tar.append_data(&mut header, name, bytes).unwrap();
    }
    let tar = tar.into_inner().unwrap();
    let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut gzip, &tar).unwrap();
    let layer = gzip.finish().unwrap();
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": "wasm", "os": "wasip1",
        "config": {"Entrypoint": ["/app.wasm"]},
        "rootfs": {"type": "layers", "diff_ids": [sha256(&tar)]},
    }))
    .unwrap();
    let digest = common::raw::push_raw(
        &registry,
        "acme/extra",
        "1",
        (CONFIG, &config),
        &[(&layer, LAYER, None)],
        serde_json::json!({}),
    );
    let ws = Workspace::new();
    let image = format!("{}/acme/extra@{digest}", registry.host());
    let run = ws.run_cli(&["pull", &image, "--insecure", "--output", "app.wasm"], &[]);
    assert!(!run.success(), "{run:?}");
    assert!(run.stderr.contains("also holds \"run.sh\""), "{run:?}");
    assert!(!ws.root().join("app.wasm").exists());
    let leftovers: Vec<_> = std::fs::read_dir(ws.root()).unwrap().collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn the_image_form_goes_into_an_oci_layout_and_pulls_back_out_of_it() {
    let ws = Workspace::new();
    std::fs::copy(multiply_wasm(), ws.root().join("multiply.wasm")).unwrap();
    let env = [("SOURCE_DATE_EPOCH", "0")];
    let run = ws.run_cli(
        &["push", "multiply.wasm", "oci:out:1", "--format", "image"],
        &env,
    );
    assert!(run.success(), "{run:?}");
    let digest = run.stdout.trim().to_owned();
    let again = ws.run_cli(
        &["push", "multiply.wasm", "oci:again:1", "--format", "image"],
        &env,
    );
    assert_eq!(again.stdout.trim(), digest, "{again:?}");
    let manifest: Value = serde_json::from_slice(
        &std::fs::read(ws.root().join("out/blobs/sha256").join(&digest[7..])).unwrap(),
    )
    .unwrap();
    assert_eq!(manifest["layers"][0]["mediaType"], LAYER);
    let pulled = ws.run_cli(
        &[
            "pull",
            &format!("oci:out@{digest}"),
            "--output",
            "pulled.wasm",
        ],
        &[],
    );
    assert!(pulled.success(), "{pulled:?}");
    assert_eq!(
        std::fs::read(ws.root().join("pulled.wasm")).unwrap(),
        std::fs::read(multiply_wasm()).unwrap()
    );
}

#[test]
fn several_registries_get_the_same_image_digest() {
    let (one, two) = (Registry::start(), Registry::start());
    let ws = Workspace::new();
    let images = format!("{}/acme/app\n{}/acme/app", one.host(), two.host());
    let run =
        ws.run_action(&ws.multiply_env(&images, &[("insecure", "true"), ("format", "image")]));
    assert!(run.success(), "{run:?}");
    let digest = ws.outputs()["digest"].clone();
    for registry in [&one, &two] {
        let (bytes, media_type) = registry.manifest("acme/app", &digest).unwrap();
        assert_eq!(media_type, OCI_MANIFEST);
        let manifest: Value = serde_json::from_slice(&bytes).unwrap();
        let layer = manifest["layers"][0]["digest"].as_str().unwrap();
        assert_eq!(registry.blob_status("acme/app", layer), 200);
    }
}
