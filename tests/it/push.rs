//! Push end to end: the real binary, driven as the runner drives it, against the real CNCF
//! registry; the artifact is read back over the registry API and by skopeo.

use crate::common;

use common::*;
use serde_json::Value;

fn push_multiply(ws: &Workspace, registry: &Registry, extra: &[(&str, &str)]) -> Run {
    let image = format!("{}/acme/multiply", registry.host());
    let inputs = [&[("insecure", "true")][..], extra].concat();
    ws.run_action(&ws.multiply_env(&image, &inputs))
}

/// The action pushing the file at `path` (in `ws`) to `image` under `tags`.
fn push_file(ws: &Workspace, image: &str, path: &str, tags: &str, extra: &[(&str, &str)]) -> Run {
    let inputs = [
        &[
            ("image", image),
            ("path", path),
            ("tags", tags),
            ("insecure", "true"),
        ][..],
        extra,
    ]
    .concat();
    ws.run_action(&ws.action_env(&inputs))
}

#[test]
fn action_push_round_trips_through_the_registry() {
    let registry = Registry::start();
    let ws = Workspace::new();
    let run = push_multiply(
        &ws,
        &registry,
        &[
            ("tags", "1.2.3, latest"),
            ("annotations", "com.example.team=runtime"),
        ],
    );
    assert!(run.success(), "{run:?}");
    assert!(run.error_lines().is_empty(), "{run:?}");
    assert!(run.stdout.contains("::group::Validate"), "{run:?}");
    assert!(run.stdout.contains("::endgroup::"), "{run:?}");

    let out = ws.outputs();
    let digest = &out["digest"];
    let wasm = std::fs::read(multiply_wasm()).unwrap();

    // The registry serves exactly the manifest whose digest we output, under every tag.
    let (manifest_bytes, content_type) = registry.manifest("acme/multiply", "1.2.3").unwrap();
    assert_eq!(content_type, OCI_MANIFEST);
    assert_eq!(&sha256(&manifest_bytes), digest);
    assert_eq!(
        registry.manifest("acme/multiply", "latest").unwrap().0,
        manifest_bytes
    );
    assert_eq!(
        registry.manifest("acme/multiply", digest).unwrap().0,
        manifest_bytes
    );
    assert_eq!(registry.image_tags("acme/multiply"), ["1.2.3", "latest"]);

    let manifest: Value = serde_json::from_slice(&manifest_bytes).unwrap();
    assert_eq!(manifest["schemaVersion"], 2);
    assert_eq!(manifest["mediaType"], OCI_MANIFEST);
    assert_eq!(
        manifest["config"]["mediaType"],
        "application/vnd.wasm.config.v0+json"
    );
    let layers = manifest["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 1);
    assert_eq!(layers[0]["mediaType"], "application/wasm");
    assert_eq!(layers[0]["digest"], sha256(&wasm));
    assert_eq!(layers[0]["size"], wasm.len());
    assert_eq!(
        layers[0]["annotations"]["org.opencontainers.image.title"],
        "multiply.wasm"
    );

    let annotations = &manifest["annotations"];
    assert_eq!(
        annotations["org.opencontainers.image.created"],
        "2023-11-14T22:13:20Z"
    );
    assert_eq!(
        annotations["org.opencontainers.image.source"],
        "https://github.com/acme/multiply"
    );
    assert_eq!(
        annotations["org.opencontainers.image.revision"],
        "0123456789abcdef0123456789abcdef01234567"
    );
    assert_eq!(annotations["org.opencontainers.image.version"], "1.2.3");
    assert_eq!(annotations["org.opencontainers.image.title"], "multiply");
    assert_eq!(annotations["com.example.team"], "runtime");

    // The layer is the file, byte for byte; the config describes a wasip1 module.
    assert_eq!(registry.blob("acme/multiply", &sha256(&wasm)), wasm);
    let config_digest = manifest["config"]["digest"].as_str().unwrap();
    let config: Value =
        serde_json::from_slice(&registry.blob("acme/multiply", config_digest)).unwrap();
    assert_eq!(config["architecture"], "wasm");
    assert_eq!(config["os"], "wasip1");
    assert_eq!(config["created"], "2023-11-14T22:13:20Z");
    assert_eq!(config["layerDigests"][0], sha256(&wasm));
    assert!(config.get("component").is_none());

    // Outputs agree with the registry.
    assert_eq!(out["image"], format!("{}/acme/multiply", registry.host()));
    assert_eq!(
        out["ref"],
        format!("{}/acme/multiply@{digest}", registry.host())
    );
    assert_eq!(out["tags"], "1.2.3,latest");
    assert_eq!(out["wasm-digest"], sha256(&wasm));
    assert_eq!(out["size"], wasm.len().to_string());
    let metadata: Value = serde_json::from_str(&out["metadata"]).unwrap();
    assert_eq!(&metadata["digest"], digest.as_str());
    assert!(!out["metadata"].contains('\n'));
    let summary = ws.summary();
    assert!(summary.contains(digest.as_str()), "{summary}");
    assert!(summary.contains("| Tags |"), "{summary}");
}

/// A small module's blobs go up in one request each, unasked: asking whether the registry has
/// one costs the round trip that sending it does. A re-push gives the same digest and streams
/// nothing (large layers are asked about first: see the tests below).
#[test]
fn pushing_twice_gives_the_same_digest_and_sends_small_blobs_unasked() {
    let registry = Registry::start();
    let ws = Workspace::new();
    let first = push_multiply(&ws, &registry, &[("tags", "v1"), ("provenance", "false")]);
    assert!(first.success(), "{first:?}");
    let uploads = registry.upload_count();
    assert_eq!(uploads, 2, "layer and config uploaded once each");
    let log = registry.log();
    assert!(!log.contains("\"HEAD /v2/"), "no blob asked about:\n{log}");
    let digest = ws.outputs()["digest"].clone();

    let ws2 = Workspace::new();
    let second = push_multiply(&ws2, &registry, &[("tags", "v1"), ("provenance", "false")]);
    assert!(second.success(), "{second:?}");
    assert_eq!(ws2.outputs()["digest"], digest);
    assert_eq!(
        registry.upload_count(),
        uploads + 2,
        "each small blob sent again in one upload"
    );

    let ws3 = Workspace::new();
    let third = push_multiply(&ws3, &registry, &[("tags", "v2"), ("provenance", "false")]);
    assert!(third.success(), "{third:?}");
    assert_eq!(registry.upload_count(), uploads + 4);
    assert!(
        !registry.log().contains("\"PATCH "),
        "nothing streamed:\n{}",
        registry.log()
    );
    for (tag, ws) in [("v1", &ws), ("v2", &ws3)] {
        assert_eq!(
            sha256(&registry.manifest("acme/multiply", tag).unwrap().0),
            ws.outputs()["digest"]
        );
    }
}

#[test]
fn a_new_layer_goes_out_while_it_is_hashed() {
    let registry = Registry::start();
    let ws = Workspace::new();
    // Large enough that the registry says it has no such layer before the hash is done.
    let wasm = module_with_data(32 << 20, &[]);
    ws.write("big.wasm", &wasm);
    let image = format!("{}/acme/big", registry.host());
    let run = push_file(&ws, &image, "big.wasm", "v1", &[]);
    assert!(run.success(), "{run:?}");
    assert!(run.stdout.contains("while hashing it"), "{run:?}");
    assert_eq!(
        registry.patch_count("acme/big"),
        1,
        "the layer in one PATCH:\n{}",
        registry.log()
    );
    assert_eq!(registry.blob("acme/big", &sha256(&wasm)), wasm);
    let (manifest, _) = registry.manifest("acme/big", "v1").unwrap();
    assert_eq!(sha256(&manifest), ws.outputs()["digest"]);
}

/// Registries that page their tag list (ECR, GHCR, Harbor) are read to the last page: a
/// re-push under a new tag finds the layer under a tag listed late and sends none of it. (The
/// CNCF registry here lists every tag at once, so the proxy in front of it pages the listing.)
#[test]
fn a_re_push_reads_every_page_of_the_tag_list() {
    use common::proxy::{Fault, FaultProxy};

    let registry = Registry::start();
    let ws = Workspace::new();
    let wasm = module_with_data(16 << 20, &[]);
    ws.write("m.wasm", &wasm);
    ws.write("other.wasm", &module_with_data(1 << 10, &[]));
    let push = |host: &str, path: &str, tags: &str| {
        let image = format!("{host}/acme/paged");
        push_file(&ws, &image, path, tags, &[("provenance", "false")])
    };
    let first = push(&registry.host(), "m.wasm", "zz-release");
    assert!(first.success(), "{first:?}");
    // Ten tags listed before it, on an artifact with a layer of another size.
    let others = push(
        &registry.host(),
        "other.wasm",
        "a0,a1,a2,a3,a4,a5,a6,a7,a8,a9",
    );
    assert!(others.success(), "{others:?}");
    let layer_hex = sha256(&wasm)["sha256:".len()..].to_owned();
    let layer_uploads = |registry: &Registry| {
        registry
            .log()
            .lines()
            .filter(|l| l.contains("/blobs/uploads/") && l.contains(&layer_hex))
            .count()
    };
    let (patches, uploads) = (registry.patch_count("acme/paged"), layer_uploads(&registry));
    assert!(uploads > 0, "the first push named its layer in an upload");

    let mut tags = registry.tags("acme/paged");
    tags.sort();
    assert_eq!(tags.len(), 11);
    let paging = FaultProxy::start(registry.port, move |_, _, path| {
        let Some(query) = path.strip_prefix("/v2/acme/paged/tags/list") else {
            return Fault::Pass;
        };
        let last = query
            .strip_prefix("?last=")
            .map(|q| q.split('&').next().unwrap());
        let start = last.map_or(0, |last| tags.iter().position(|t| t == last).unwrap() + 1);
        let page = &tags[start..tags.len().min(start + 2)];
        let link = match page.last() {
            Some(last) if start + 2 < tags.len() => {
                format!("Link: </v2/acme/paged/tags/list?last={last}&n=2>; rel=\"next\"\r\n")
            }
            _ => String::new(),
        };
        let body = serde_json::json!({ "name": "acme/paged", "tags": page }).to_string();
        Fault::AnswerWith(200, link, body)
    });
    let again = push(&paging.host(), "m.wasm", "b-new");
    assert!(again.success(), "{again:?}");
    assert!(
        again.stdout.contains("already stored; not uploading"),
        "{again:?}"
    );
    let pages = paging
        .log()
        .iter()
        .filter(|l| l.contains("/tags/list"))
        .count();
    // All six pages, unless the hash ended first (it takes far longer than a few small requests).
    assert!(pages > 1, "the listing was followed: {:?}", paging.log());
    assert_eq!(registry.patch_count("acme/paged"), patches);
    // The layer is not sent again (the config, small, is sent unasked): no upload names it.
    assert_eq!(layer_uploads(&registry), uploads, "{}", registry.log());
}

/// A layer the registry turns out to hold (no tag lists it, so it went out while hashed) stops
/// its upload, and the session is cancelled rather than left for the registry to purge.
#[test]
fn a_layer_found_stored_while_it_goes_cancels_its_upload_session() {
    use common::proxy::{Fault, FaultProxy};

    let registry = Registry::start();
    let ws = Workspace::new();
    let wasm = module_with_data(32 << 20, &[]);
    ws.write("big.wasm", &wasm);
    registry.put_blob("acme/kept", &wasm);
    // The upload's answer is held back, as a slow link's would be, so the question whether the
    // registry holds the layer is answered first however fast loopback sends the bytes.
    let slow = FaultProxy::start(registry.port, |_, method, _| match method {
        "PATCH" => Fault::Stall,
        _ => Fault::Pass,
    });
    let image = format!("{}/acme/kept", slow.host());
    let run = push_file(&ws, &image, "big.wasm", "v1", &[]);
    assert!(run.success(), "{run:?}");
    assert!(run.stdout.contains("its upload stopped"), "{run:?}");
    assert!(
        registry.logged("\"DELETE /v2/acme/kept/blobs/uploads/"),
        "the session is cancelled:\n{}",
        registry.log()
    );
    let (manifest, _) = registry.manifest("acme/kept", "v1").unwrap();
    assert_eq!(sha256(&manifest), ws.outputs()["digest"]);
}

#[test]
fn default_tags_come_from_the_git_ref() {
    let registry = Registry::start();
    let ws = Workspace::new();
    let run = push_multiply(&ws, &registry, &[]);
    assert!(run.success(), "{run:?}");
    let digest = &ws.outputs()["digest"];
    let mut tags = registry.tags("acme/multiply");
    tags.sort();
    let fallback = format!("sha256-{}", &digest["sha256:".len()..]);
    assert_eq!(
        tags,
        [
            "1",
            "1.2",
            "1.2.3",
            "latest",
            "sha-0123456",
            fallback.as_str()
        ]
    );
}

#[test]
fn legacy_format_uses_wasm_to_oci_media_types() {
    let registry = Registry::start();
    let ws = Workspace::new();
    let run = push_multiply(
        &ws,
        &registry,
        &[("tags", "legacy"), ("format", "wasm-to-oci")],
    );
    assert!(run.success(), "{run:?}");
    let (bytes, _) = registry.manifest("acme/multiply", "legacy").unwrap();
    let manifest: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(
        manifest["config"]["mediaType"],
        "application/vnd.wasm.config.v1+json"
    );
    assert_eq!(
        manifest["layers"][0]["mediaType"],
        "application/vnd.wasm.content.layer.v1+wasm"
    );
}

#[test]
fn a_component_records_its_interfaces() {
    let registry = Registry::start();
    let ws = Workspace::new();
    ws.write("dist/app.wasm", &component_wasm());
    let image = format!("{}/acme/component", registry.host());
    let run = push_file(&ws, &image, "dist/*.wasm", "c1", &[]);
    assert!(run.success(), "{run:?}");
    let (bytes, _) = registry.manifest("acme/component", "c1").unwrap();
    let manifest: Value = serde_json::from_slice(&bytes).unwrap();
    let config: Value = serde_json::from_slice(&registry.blob(
        "acme/component",
        manifest["config"]["digest"].as_str().unwrap(),
    ))
    .unwrap();
    assert_eq!(config["os"], "wasip2");
    assert_eq!(
        config["component"]["exports"],
        serde_json::json!(["wasi:cli/run@0.2.0"])
    );
    assert_eq!(
        config["component"]["imports"],
        serde_json::json!(["wasi:random/random@0.2.0"])
    );
    assert_eq!(config["component"]["target"], "wasi:cli/command@0.2.0");
}

#[test]
fn basic_credentials_against_htpasswd() {
    let registry = Registry::with_htpasswd("bot", "correct-horse-battery");
    let ws = Workspace::new();
    let run = push_multiply(
        &ws,
        &registry,
        &[
            ("tags", "auth"),
            ("username", "bot"),
            ("password", "correct-horse-battery"),
        ],
    );
    assert!(run.success(), "{run:?}");
    assert!(
        run.stdout
            .starts_with("::add-mask::correct-horse-battery\n"),
        "{run:?}"
    );
    assert_eq!(registry.image_tags("acme/multiply"), ["auth"]);
    assert!(
        run.all()
            .lines()
            .filter(|l| l.contains("correct-horse-battery"))
            .all(|l| l.starts_with("::add-mask::")),
        "only the mask lines"
    );
}

#[test]
fn standard_clients_read_the_pushed_artifact() {
    let registry = Registry::start();
    let ws = Workspace::new();
    let run = push_multiply(&ws, &registry, &[("tags", "1.0.0")]);
    assert!(run.success(), "{run:?}");
    let digest = ws.outputs()["digest"].clone();
    let skopeo = which("skopeo").expect("skopeo is installed (`.ci/run` installs it)");
    let raw = std::process::Command::new(&skopeo)
        .args(["inspect", "--raw", "--tls-verify=false"])
        .arg(format!("docker://{}/acme/multiply:1.0.0", registry.host()))
        .output()
        .unwrap();
    assert!(
        raw.status.success(),
        "{}",
        String::from_utf8_lossy(&raw.stderr)
    );
    assert_eq!(sha256(&raw.stdout), digest);

    // skopeo copies it into an OCI layout; the layer there is our file, byte for byte.
    let dest = ws.dir.path().join("copied");
    let copy = std::process::Command::new(&skopeo)
        .args(["copy", "--src-tls-verify=false", "--preserve-digests"])
        .arg(format!("docker://{}/acme/multiply:1.0.0", registry.host()))
        .arg(format!("oci:{}:1.0.0", dest.display()))
        .output()
        .unwrap();
    assert!(
        copy.status.success(),
        "{}",
        String::from_utf8_lossy(&copy.stderr)
    );
    let wasm = std::fs::read(multiply_wasm()).unwrap();
    let layer = std::fs::read(dest.join("blobs/sha256").join(&sha256(&wasm)[7..])).unwrap();
    assert_eq!(layer, wasm);
}

#[test]
fn cli_prints_only_the_digest_on_stdout() {
    let registry = Registry::start();
    let ws = Workspace::new();
    std::fs::copy(multiply_wasm(), ws.root().join("m.wasm")).unwrap();
    let reference = format!("{}/acme/cli:v9", registry.host());
    let run = ws.run_cli(
        &["push", "m.wasm", &reference, "--insecure"],
        &[("SOURCE_DATE_EPOCH", "0")],
    );
    assert!(run.success(), "{run:?}");
    let stdout = run.stdout.trim();
    assert!(
        stdout.starts_with("sha256:") && stdout.len() == 71,
        "{run:?}"
    );
    let (bytes, _) = registry.manifest("acme/cli", "v9").unwrap();
    assert_eq!(sha256(&bytes), stdout);
    assert!(run.stderr.contains("valid core module"), "{run:?}");
}

#[test]
fn flags_bind_to_env_vars() {
    let registry = Registry::start();
    let ws = Workspace::new();
    std::fs::copy(multiply_wasm(), ws.root().join("m.wasm")).unwrap();
    let image = format!("{}/acme/env", registry.host());
    let run = ws.run_cli(
        &["push"],
        &[
            ("WASM_OCI_IMAGE", &image),
            ("WASM_OCI_PATH", "m.wasm"),
            ("WASM_OCI_TAGS", "from-env"),
            ("WASM_OCI_INSECURE", "true"),
            ("SOURCE_DATE_EPOCH", "0"),
        ],
    );
    assert!(run.success(), "{run:?}");
    assert_eq!(registry.image_tags("acme/env"), ["from-env"]);
}

#[test]
fn a_module_found_invalid_before_its_upload_is_never_sent() {
    let registry = Registry::start();
    let ws = Workspace::new();
    // 24 MiB of data, then a section id that does not exist: the data is passed over, so
    // validation ends long before the upload would, and it fails.
    let bytes = module_with_data(24 << 20, &[0x7f, 0x00]);
    let path = ws.write("late.wasm", &bytes);
    let image = format!("{}/acme/late:1", registry.host());
    let run = ws.run_cli(&["push", path.to_str().unwrap(), &image, "--insecure"], &[]);
    assert!(!run.success(), "{run:?}");
    assert!(run.stderr.contains("late.wasm"), "{run:?}");
    assert!(run.stderr.contains("section"), "{run:?}");
    assert_eq!(registry.upload_count(), 0, "{}", registry.log());
    assert!(registry.image_tags("acme/late").is_empty());

    // The same data with a valid end is stored, and its layer is the file.
    let good = module_with_data(24 << 20, &[]);
    let path = ws.write("good.wasm", &good);
    let run = ws.run_cli(&["push", path.to_str().unwrap(), &image, "--insecure"], &[]);
    assert!(run.success(), "{run:?}");
    assert_eq!(registry.blob("acme/late", &sha256(&good)), good);
}

/// An upload whose gate closes (validation failed while it ran) is never committed; one whose
/// gate opens is stored whole.
#[test]
fn a_layer_upload_commits_only_when_its_gate_opens() {
    use wasm_oci::registry::remote::{Connection, Remote};
    use wasm_oci::registry::{Gate, WriteTarget, gate};

    let registry = Registry::start();
    let ws = Workspace::new();
    let bytes = module_with_data(16 << 20, &[]);
    let path = ws.write("m.wasm", &bytes);
    let digest: wasm_oci::reference::Digest = sha256(&bytes).parse().unwrap();
    let layer = wasm_oci::artifact::layer(
        wasm_oci::artifact::Format::Cncf,
        &digest,
        bytes.len() as u64,
        "m.wasm".to_owned(),
    );
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let remote = Remote::new(
        format!("{}/acme/gated", registry.host()).parse().unwrap(),
        &Connection {
            insecure: true,
            ..Default::default()
        },
    )
    .unwrap();
    runtime
        .block_on(remote.login(wasm_oci::registry::remote::Access::Write))
        .unwrap();
    let head = || {
        registry
            .client()
            .head(format!(
                "http://{}/v2/acme/gated/blobs/{digest}",
                registry.host()
            ))
            .send()
            .unwrap()
            .status()
    };

    let (keeper, closed) = gate();
    let result = runtime.block_on(async {
        let upload = remote.put_blob_file(&layer, &path, &closed);
        let close = async {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            keeper.settle(false);
        };
        tokio::join!(upload, close).0
    });
    assert!(
        matches!(result, Err(wasm_oci::Error::HeldBack { .. })),
        "{result:?}"
    );
    assert!(registry.upload_count() >= 1, "{}", registry.log());
    assert_eq!(head(), 404);

    runtime
        .block_on(remote.put_blob_file(&layer, &path, &Gate::open()))
        .unwrap();
    assert_eq!(registry.blob("acme/gated", &digest.to_string()), bytes);
}

/// The file's digest as the push's hashing thread hands it over: after `delay`, so the upload
/// is under way before it is known.
fn hashed_after(
    digest: &wasm_oci::reference::Digest,
    size: u64,
    delay: std::time::Duration,
) -> wasm_oci::registry::Hashed {
    use futures_util::FutureExt;
    let digest = digest.clone();
    async move {
        tokio::time::sleep(delay).await;
        Ok((digest, size))
    }
    .boxed()
    .shared()
}

#[test]
fn a_layer_sent_while_hashed_commits_under_its_digest_only_when_its_gate_opens() {
    use wasm_oci::registry::remote::{Access, Connection, Remote};
    use wasm_oci::registry::{Gate, WriteTarget, gate};

    let registry = Registry::start();
    let ws = Workspace::new();
    let bytes = module_with_data(16 << 20, &[]);
    let size = bytes.len() as u64;
    let path = ws.write("m.wasm", &bytes);
    let digest: wasm_oci::reference::Digest = sha256(&bytes).parse().unwrap();
    let media_type = wasm_oci::artifact::Format::Cncf.layer_media_type();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    // Each attempt has a repository of its own: how far the held-back PATCH got before its
    // gate closed (and so whether the registry logged it) is a race, the valid one is not.
    let remote = |repository: &str| {
        let remote = Remote::new(
            format!("{}/{repository}", registry.host()).parse().unwrap(),
            &Connection {
                insecure: true,
                ..Default::default()
            },
        )
        .unwrap();
        runtime.block_on(remote.login(Access::Write)).unwrap();
        assert!(remote.uploads_while_hashing());
        remote
    };
    let later = std::time::Duration::from_millis(50);

    // Validation fails while the bytes go: nothing is stored.
    let (keeper, closed) = gate();
    let held = remote("acme/held");
    let result = runtime.block_on(async {
        let upload = held.put_blob_file_hashing(
            media_type,
            &path,
            size,
            &closed,
            hashed_after(&digest, size, later),
        );
        let close = async {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            keeper.settle(false);
        };
        tokio::join!(upload, close).0
    });
    assert!(
        matches!(&result, Err(wasm_oci::Error::HeldBack { digest: d }) if d == &digest),
        "{result:?}"
    );
    assert_eq!(registry.blob_status("acme/held", &digest.to_string()), 404);
    assert!(
        registry.logged("\"DELETE /v2/acme/held/blobs/uploads/"),
        "the session is cancelled:\n{}",
        registry.log()
    );

    // Valid: one PATCH carries the file, sent before the digest was known; the PUT commits it.
    let stored = runtime
        .block_on(remote("acme/streamed").put_blob_file_hashing(
            media_type,
            &path,
            size,
            &Gate::open(),
            hashed_after(&digest, size, later),
        ))
        .unwrap();
    assert_eq!(stored, digest);
    assert_eq!(registry.blob("acme/streamed", &digest.to_string()), bytes);
    assert_eq!(
        registry.patch_count("acme/streamed"),
        1,
        "one PATCH carries the file:\n{}",
        registry.log()
    );
}
