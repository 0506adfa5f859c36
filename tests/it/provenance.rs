//! Provenance end to end against the real CNCF registry (no referrers API): the referrer is
//! found through the fallback tag by our reader and by skopeo, a second referrer does not evict
//! the first, signatures check with openssl, and the digest does not depend on the clock.

use crate::common;

use std::path::Path;
use std::process::Command;

use common::*;
use serde_json::Value;

const REPO: &str = "acme/multiply";

fn push(ws: &Workspace, registry: &Registry, extra: &[(&str, &str)]) -> Run {
    let image = format!("{}/{REPO}", registry.host());
    let inputs = [&[("insecure", "true")][..], extra].concat();
    let mut env = ws.multiply_env(&image, &inputs);
    // Debug logging on: secrets must not show there either.
    env.insert("RUNNER_DEBUG".into(), "1".into());
    ws.run_action(&env)
}

fn json(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes).unwrap()
}

/// The fallback index for `digest`, read over the registry API.
fn fallback_index(registry: &Registry, digest: &str) -> Value {
    let tag = format!("sha256-{}", &digest["sha256:".len()..]);
    let (bytes, content_type) = registry
        .manifest(REPO, &tag)
        .unwrap_or_else(|| panic!("no fallback tag {tag}"));
    assert_eq!(content_type, OCI_INDEX);
    json(&bytes)
}

/// Whether `secret` shows anywhere but on `::add-mask::` lines.
fn leaks(run: &Run, secret: &str) -> bool {
    run.all()
        .lines()
        .any(|l| l.contains(secret) && !l.starts_with("::add-mask::"))
}

fn openssl(args: &[&str], dir: &Path) -> std::process::Output {
    let out = Command::new(which("openssl").expect("openssl is installed (`.ci/run`)"))
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

#[test]
fn a_tag_push_attaches_provenance_found_through_the_fallback_tag() {
    let registry = Registry::start();
    let ws = Workspace::new();
    let run = push(&ws, &registry, &[]);
    assert!(run.success(), "{run:?}");
    assert!(
        run.stdout
            .contains("::group::Manifest, tags and provenance"),
        "{run:?}"
    );
    let out = ws.outputs();
    let digest = out["digest"].clone();
    let provenance = out["provenance-digest"].clone();
    assert!(
        provenance.starts_with("sha256:") && provenance != digest,
        "{out:?}"
    );

    // Every tag from the ref in one run, plus the fallback tag.
    assert_eq!(
        registry.image_tags(REPO),
        ["1", "1.2", "1.2.3", "latest", "sha-0123456"]
    );

    // The fallback index lists the referrer with its artifact type and annotations.
    let index = fallback_index(&registry, &digest);
    assert_eq!(index["schemaVersion"], 2);
    assert_eq!(index["mediaType"], OCI_INDEX);
    let entries = index["manifests"].as_array().unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0]["digest"], provenance.as_str());
    assert_eq!(entries[0]["mediaType"], OCI_MANIFEST);
    assert_eq!(entries[0]["artifactType"], "application/vnd.in-toto+json");
    assert_eq!(
        entries[0]["annotations"]["in-toto.io/predicate-type"],
        "https://slsa.dev/provenance/v1"
    );

    // The referrer manifest: empty config, one statement layer, subject = the pushed manifest.
    let (referrer_bytes, _) = registry.manifest(REPO, &provenance).unwrap();
    assert_eq!(sha256(&referrer_bytes), provenance);
    assert_eq!(entries[0]["size"], referrer_bytes.len());
    let referrer = json(&referrer_bytes);
    let (pushed, _) = registry.manifest(REPO, &digest).unwrap();
    assert_eq!(referrer["mediaType"], OCI_MANIFEST);
    assert_eq!(referrer["artifactType"], "application/vnd.in-toto+json");
    assert_eq!(
        referrer["config"],
        serde_json::json!({
            "mediaType": "application/vnd.oci.empty.v1+json",
            "digest": "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a",
            "size": 2,
        })
    );
    assert_eq!(
        registry.blob(REPO, referrer["config"]["digest"].as_str().unwrap()),
        b"{}"
    );
    assert_eq!(
        referrer["subject"],
        serde_json::json!({"mediaType": OCI_MANIFEST, "digest": digest, "size": pushed.len()})
    );
    assert_eq!(
        referrer["annotations"]["org.opencontainers.image.created"],
        "2023-11-14T22:13:20Z"
    );
    let layers = referrer["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 1);
    assert_eq!(layers[0]["mediaType"], "application/vnd.in-toto+json");

    // The statement: subjects are the pushed manifest and the .wasm; GitHub's workflow shape.
    let statement = json(&registry.blob(REPO, layers[0]["digest"].as_str().unwrap()));
    let wasm = std::fs::read(multiply_wasm()).unwrap();
    assert_eq!(statement["_type"], "https://in-toto.io/Statement/v1");
    assert_eq!(statement["predicateType"], "https://slsa.dev/provenance/v1");
    assert_eq!(
        statement["subject"],
        serde_json::json!([
            {"name": format!("{}/{REPO}", registry.host()), "digest": {"sha256": &digest[7..]}},
            {"name": "multiply.wasm", "digest": {"sha256": &sha256(&wasm)[7..]}},
        ])
    );
    let predicate = &statement["predicate"];
    assert_eq!(
        predicate["buildDefinition"]["buildType"],
        "https://actions.github.io/buildtypes/workflow/v1"
    );
    assert_eq!(
        predicate["buildDefinition"]["externalParameters"]["workflow"],
        serde_json::json!({
            "ref": "refs/tags/v1.2.3",
            "repository": "https://github.com/acme/multiply",
            "path": ".github/workflows/release.yml",
        })
    );
    assert_eq!(
        predicate["buildDefinition"]["internalParameters"]["github"]["event_name"],
        "push"
    );
    assert_eq!(
        predicate["buildDefinition"]["resolvedDependencies"][0],
        serde_json::json!({
            "uri": "git+https://github.com/acme/multiply@refs/tags/v1.2.3",
            "digest": {"gitCommit": "0123456789abcdef0123456789abcdef01234567"},
        })
    );
    assert_eq!(
        predicate["runDetails"]["builder"]["id"],
        "https://github.com/acme/multiply/.github/workflows/release.yml@refs/tags/v1.2.3"
    );
    assert_eq!(
        predicate["runDetails"]["metadata"]["invocationId"],
        "https://github.com/acme/multiply/actions/runs/42/attempts/1"
    );

    // A third-party client lists and reads the referrer through the fallback tag.
    let skopeo = which("skopeo").expect("skopeo is installed (`.ci/run`)");
    let raw = Command::new(&skopeo)
        .args(["inspect", "--raw", "--tls-verify=false"])
        .arg(format!(
            "docker://{}/{REPO}:sha256-{}",
            registry.host(),
            &digest[7..]
        ))
        .output()
        .unwrap();
    assert!(
        raw.status.success(),
        "{}",
        String::from_utf8_lossy(&raw.stderr)
    );
    assert_eq!(
        json(&raw.stdout)["manifests"][0]["digest"],
        provenance.as_str()
    );
    let raw = Command::new(&skopeo)
        .args(["inspect", "--raw", "--tls-verify=false"])
        .arg(format!("docker://{}/{REPO}@{provenance}", registry.host()))
        .output()
        .unwrap();
    assert!(
        raw.status.success(),
        "{}",
        String::from_utf8_lossy(&raw.stderr)
    );
    assert_eq!(json(&raw.stdout)["subject"]["digest"], digest.as_str());

    // Outputs and summary carry it.
    assert_eq!(
        json(out["metadata"].as_bytes())["provenance-digest"],
        provenance.as_str()
    );
    assert!(ws.summary().contains(&provenance), "{}", ws.summary());

    // The same run again: same digests, nothing new listed.
    let ws2 = Workspace::new();
    let again = push(&ws2, &registry, &[]);
    assert!(again.success(), "{again:?}");
    assert_eq!(ws2.outputs()["digest"], digest);
    assert_eq!(ws2.outputs()["provenance-digest"], provenance);
    assert_eq!(
        fallback_index(&registry, &digest)["manifests"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

#[test]
fn a_signed_referrer_joins_the_unsigned_one_and_verifies_with_openssl() {
    let registry = Registry::start();
    let ws = Workspace::new();
    let keys = ws.dir.path();
    openssl(
        &[
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-out",
            "ec.pem",
        ],
        keys,
    );
    openssl(
        &["pkey", "-in", "ec.pem", "-pubout", "-out", "ec.pub"],
        keys,
    );
    let pem = std::fs::read_to_string(keys.join("ec.pem")).unwrap();

    let first = push(&ws, &registry, &[]);
    assert!(first.success(), "{first:?}");
    let digest = ws.outputs()["digest"].clone();
    let unsigned = ws.outputs()["provenance-digest"].clone();

    let ws2 = Workspace::new();
    let second = push(&ws2, &registry, &[("signing-key", &pem)]);
    assert!(second.success(), "{second:?}");
    assert_eq!(
        ws2.outputs()["digest"],
        digest,
        "signing does not change the artifact"
    );
    let signed = ws2.outputs()["provenance-digest"].clone();
    assert_ne!(signed, unsigned);

    // Both are listed, the first one kept; the signed envelope also as a Sigstore bundle.
    let bundle = ws2.outputs()["bundle-digest"].clone();
    let index = fallback_index(&registry, &digest);
    let listed: Vec<&str> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["digest"].as_str().unwrap())
        .collect();
    assert_eq!(
        listed,
        [unsigned.as_str(), signed.as_str(), bundle.as_str()]
    );

    // The key never shows except in its mask lines, debug logging included.
    assert!(second.stdout.contains("::debug::"), "{second:?}");
    for line in pem.lines().filter(|l| !l.starts_with("-----")) {
        assert!(!leaks(&second, line), "key line leaked: {second:?}");
        assert!(
            second.stdout.contains(&format!("::add-mask::{line}\n")),
            "key line not masked: {second:?}"
        );
    }

    // The layer is a DSSE envelope whose signature openssl accepts over the PAE.
    let referrer = json(&registry.manifest(REPO, &signed).unwrap().0);
    assert_eq!(
        referrer["layers"][0]["mediaType"],
        "application/vnd.dsse.envelope.v1+json"
    );
    let envelope_bytes = registry.blob(REPO, referrer["layers"][0]["digest"].as_str().unwrap());
    let envelope = json(&envelope_bytes);
    assert_eq!(envelope["payloadType"], "application/vnd.in-toto+json");
    assert_eq!(envelope["signatures"][0]["keyid"], "");
    let b64 = |s: &Value| -> Vec<u8> {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD
            .decode(s.as_str().unwrap())
            .unwrap()
    };
    let payload = b64(&envelope["payload"]);
    let statement = json(&payload);
    assert_eq!(statement["subject"][0]["digest"]["sha256"], &digest[7..]);
    let mut pae = format!("DSSEv1 28 application/vnd.in-toto+json {} ", payload.len()).into_bytes();
    pae.extend_from_slice(&payload);
    std::fs::write(keys.join("pae"), &pae).unwrap();
    std::fs::write(keys.join("sig"), b64(&envelope["signatures"][0]["sig"])).unwrap();
    openssl(
        &[
            "dgst",
            "-sha256",
            "-verify",
            "ec.pub",
            "-signature",
            "sig",
            "pae",
        ],
        keys,
    );

    // Our own checker agrees, and refuses another key.
    let public = std::fs::read_to_string(keys.join("ec.pub")).unwrap();
    assert_eq!(
        wasm_oci::provenance::dsse::verify_dsse(&envelope_bytes, &public).unwrap(),
        payload
    );
    openssl(
        &["genpkey", "-algorithm", "ed25519", "-out", "other.pem"],
        keys,
    );
    openssl(
        &["pkey", "-in", "other.pem", "-pubout", "-out", "other.pub"],
        keys,
    );
    let other = std::fs::read_to_string(keys.join("other.pub")).unwrap();
    assert!(wasm_oci::provenance::dsse::verify_dsse(&envelope_bytes, &other).is_err());
}

#[test]
fn an_ed25519_key_file_signs_and_openssl_verifies() {
    let ws = Workspace::new();
    openssl(
        &["genpkey", "-algorithm", "ed25519", "-out", "signing.pem"],
        &ws.root(),
    );
    openssl(
        &[
            "pkey",
            "-in",
            "signing.pem",
            "-pubout",
            "-out",
            "signing.pub",
        ],
        &ws.root(),
    );
    std::fs::copy(multiply_wasm(), ws.root().join("multiply.wasm")).unwrap();
    let run = ws.run_action(&ws.action_env(&[
        ("image", "oci:out"),
        ("path", "multiply.wasm"),
        ("signing-key", "signing.pem"),
    ]));
    assert!(run.success(), "{run:?}");
    // The file's key lines are masked too.
    let pem = std::fs::read_to_string(ws.root().join("signing.pem")).unwrap();
    let body = pem.lines().nth(1).unwrap();
    assert!(
        run.stdout.contains(&format!("::add-mask::{body}\n")),
        "{run:?}"
    );
    assert!(!leaks(&run, body), "{run:?}");

    // The layout has the same fallback tag in index.json.
    let out = ws.outputs();
    let layout = ws.root().join("out");
    let index = json(&std::fs::read(layout.join("index.json")).unwrap());
    let fallback = format!("sha256-{}", &out["digest"][7..]);
    let entry = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["annotations"]["org.opencontainers.image.ref.name"] == fallback.as_str())
        .unwrap_or_else(|| panic!("no {fallback} in {index}"));
    let blob = |d: &str| std::fs::read(layout.join("blobs/sha256").join(&d[7..])).unwrap();
    let referrers = json(&blob(entry["digest"].as_str().unwrap()));
    assert_eq!(
        referrers["manifests"][0]["digest"],
        out["provenance-digest"].as_str()
    );
    let referrer = json(&blob(&out["provenance-digest"]));
    let envelope = json(&blob(referrer["layers"][0]["digest"].as_str().unwrap()));

    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD;
    let payload = b64.decode(envelope["payload"].as_str().unwrap()).unwrap();
    let mut pae = format!("DSSEv1 28 application/vnd.in-toto+json {} ", payload.len()).into_bytes();
    pae.extend_from_slice(&payload);
    std::fs::write(ws.root().join("pae"), &pae).unwrap();
    std::fs::write(
        ws.root().join("sig"),
        b64.decode(envelope["signatures"][0]["sig"].as_str().unwrap())
            .unwrap(),
    )
    .unwrap();
    openssl(
        &[
            "pkeyutl",
            "-verify",
            "-pubin",
            "-inkey",
            "signing.pub",
            "-rawin",
            "-in",
            "pae",
            "-sigfile",
            "sig",
        ],
        &ws.root(),
    );
}

#[test]
fn a_bad_signing_key_stops_before_anything_is_pushed() {
    let registry = Registry::start();
    let ws = Workspace::new();
    let run = push(
        &ws,
        &registry,
        &[(
            "signing-key",
            "-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n-----END PRIVATE KEY-----",
        )],
    );
    assert!(!run.success(), "{run:?}");
    let errors = run.error_lines();
    assert_eq!(errors.len(), 1, "{run:?}");
    assert!(errors[0].contains("input `signing-key`"), "{run:?}");
    assert!(run.stdout.contains("::add-mask::bm90IGEga2V5\n"), "{run:?}");
    assert!(!leaks(&run, "bm90IGEga2V5"), "{run:?}");
    assert!(registry.tags(REPO).is_empty());
}

#[test]
fn provenance_false_attaches_nothing() {
    let registry = Registry::start();
    let ws = Workspace::new();
    let run = push(
        &ws,
        &registry,
        &[("tags", "plain"), ("provenance", "false")],
    );
    assert!(run.success(), "{run:?}");
    assert_eq!(registry.tags(REPO), ["plain"]);
    assert_eq!(ws.outputs()["provenance-digest"], "");
}
