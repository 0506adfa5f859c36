//! The SBOM in build mode: a CycloneDX document of exactly the crates linked into the `.wasm`,
//! attached beside the provenance as an `application/vnd.cyclonedx+json` referrer (listed in
//! the fallback tag on the CNCF registry), checked against the CycloneDX 1.5 JSON schema by
//! check-jsonschema, signed as the provenance is, listed by `inspect` and required by `verify`.

use crate::common;

use std::collections::BTreeMap;
use std::path::Path;

use common::sigstore::{self, Job, Sigstore};
use common::*;
use serde_json::Value;

const SBOM: &str = "application/vnd.cyclonedx+json";
const BUNDLE: &str = "application/vnd.dev.sigstore.bundle.v0.3+json";
const DSSE: &str = "application/vnd.dsse.envelope.v1+json";
const CYCLONEDX_PREDICATE: &str = "https://cyclonedx.org/bom";

fn json_of(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes).unwrap()
}

/// The runner's env for the action plus the host toolchain.
fn build_env(ws: &Workspace, inputs: &[(&str, &str)]) -> BTreeMap<String, String> {
    let mut env = ws.action_env(inputs);
    env.extend(toolchain_env());
    env
}

/// The referrers the fallback tag of `digest` lists in `repo`.
fn referrers(registry: &Registry, repo: &str, digest: &str) -> Vec<Value> {
    let tag = format!("sha256-{}", &digest["sha256:".len()..]);
    let (bytes, _) = registry
        .manifest(repo, &tag)
        .unwrap_or_else(|| panic!("no fallback tag {tag}"));
    json_of(&bytes)["manifests"].as_array().unwrap().clone()
}

/// The referrer manifest `digest` and its one layer's bytes.
fn referrer(registry: &Registry, repo: &str, digest: &str) -> (Value, Vec<u8>) {
    let (bytes, _) = registry.manifest(repo, digest).unwrap();
    let manifest = json_of(&bytes);
    let layers = manifest["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 1, "{manifest}");
    let layer = registry.blob(repo, layers[0]["digest"].as_str().unwrap());
    (manifest, layer)
}

fn write_crate(root: &Path, name: &str, manifest_tail: &str, lib: &str) {
    std::fs::create_dir_all(root.join(name).join("src")).unwrap();
    std::fs::write(
        root.join(name).join("Cargo.toml"),
        format!(
            "[package]\nname = \"{name}\"\nversion = \"0.1.0\"\nedition = \"2021\"\nlicense = \"MIT\"\n{manifest_tail}\n"
        ),
    )
    .unwrap();
    std::fs::write(root.join(name).join("src/lib.rs"), lib).unwrap();
}

fn git(dir: &Path, args: &[&str]) {
    let status = std::process::Command::new("git")
        .args(["-c", "user.name=t", "-c", "user.email=t@example.com"])
        .args(args)
        .current_dir(dir)
        .status()
        .expect("git is installed");
    assert!(status.success(), "git {args:?}");
}

/// A crate `app` (a cdylib) whose dependencies are of every kind: linked (`linked`, which links
/// `deep`; `gitdep` from a git repository; `optional`, behind the feature `extra`), and not
/// linked (`macros`, a proc macro; `nativeonly`, for non-Wasm targets only; `devonly`, a
/// dev-dependency; `buildonly`, a build-dependency; `unused`, optional and off).
fn write_app(root: &Path) {
    let f = "pub fn f() {}\n";
    write_crate(root, "deep", "", f);
    write_crate(
        root,
        "linked",
        "[dependencies]\ndeep = { path = \"../deep\" }",
        "pub fn f() { deep::f() }\n",
    );
    for name in ["optional", "unused", "nativeonly", "devonly", "buildonly"] {
        write_crate(root, name, "", f);
    }
    write_crate(
        root,
        "macros",
        "[lib]\nproc-macro = true",
        "extern crate proc_macro;\n#[proc_macro]\npub fn noop(i: proc_macro::TokenStream) -> proc_macro::TokenStream { i }\n",
    );
    write_crate(root, "gitdep", "", f);
    let repo = root.join("gitdep");
    git(&repo, &["init", "-q"]);
    git(&repo, &["add", "-A"]);
    git(&repo, &["commit", "-qm", "gitdep"]);
    let app = format!(
        r#"[package]
name = "app"
version = "0.2.0"
edition = "2021"
license = "MIT/Apache-2.0"

[workspace]

[lib]
crate-type = ["cdylib"]

[features]
extra = ["dep:optional"]
more = ["dep:unused"]

[dependencies]
linked = {{ path = "../linked" }}
macros = {{ path = "../macros" }}
gitdep = {{ git = "file://{}" }}
optional = {{ path = "../optional", optional = true }}
unused = {{ path = "../unused", optional = true }}

[target.'cfg(not(target_family = "wasm"))'.dependencies]
nativeonly = {{ path = "../nativeonly" }}

[dev-dependencies]
devonly = {{ path = "../devonly" }}

[build-dependencies]
buildonly = {{ path = "../buildonly" }}
"#,
        repo.display()
    );
    std::fs::create_dir_all(root.join("app/src")).unwrap();
    std::fs::write(root.join("app/Cargo.toml"), app).unwrap();
    std::fs::write(
        root.join("app/src/lib.rs"),
        "macros::noop!();\n#[unsafe(no_mangle)]\npub extern \"C\" fn run() { linked::f(); gitdep::f(); optional::f(); }\n",
    )
    .unwrap();
    std::fs::write(root.join("app/build.rs"), "fn main() { buildonly::f(); }\n").unwrap();
}

/// check-jsonschema's verdict on `document` against the CycloneDX 1.5 JSON schema (vendored in
/// tests/fixtures/cyclonedx with the SPDX and JSF schemas it refers to).
fn schema_check(ws: &Workspace, document: &[u8]) -> std::process::Output {
    let schema = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/cyclonedx/bom-1.5.SNAPSHOT.schema.json");
    let path = ws.write("sbom.cdx.json", document);
    std::process::Command::new("check-jsonschema")
        .arg("--base-uri")
        .arg(format!("file://{}", schema.display()))
        .arg("--schemafile")
        .arg(&schema)
        .arg(&path)
        .output()
        .expect("check-jsonschema is installed (bash .ci/run --install-only)")
}

/// The components are exactly the crates linked into the `.wasm` for its target and features:
/// normal dependencies, transitive ones, a git one and an optional one the feature turns on;
/// not the proc macro, the dev-, build- and non-Wasm dependencies, nor the optional one left
/// off. Each carries its purl, license and source, the graph is recorded, the document passes
/// the CycloneDX schema, and `inspect` and `verify` with `require-sbom` find it.
#[test]
fn build_mode_sbom_lists_exactly_the_crates_linked_into_the_wasm() {
    let registry = Registry::start();
    let ws = Workspace::new();
    write_app(&ws.root());
    let image = format!("{}/acme/app", registry.host());
    let inputs = [
        ("image", image.as_str()),
        ("working-directory", "app"),
        ("features", "extra"),
        ("insecure", "true"),
        ("tags", "1.0.0"),
    ];
    let run = ws.run_action(&build_env(&ws, &inputs));
    assert!(run.success(), "{run:?}");
    let out = ws.outputs();
    let (digest, sbom_digest) = (out["digest"].clone(), out["sbom-digest"].clone());
    assert!(sbom_digest.starts_with("sha256:"), "{out:?}");
    // The same build of the same artifact gives the same SBOM.
    let again = ws.run_action(&build_env(&ws, &inputs));
    assert!(again.success(), "{again:?}");
    assert_eq!(ws.outputs()["sbom-digest"], sbom_digest);
    let metadata: Value = serde_json::from_str(&out["metadata"]).unwrap();
    assert_eq!(metadata["sbom-digest"], sbom_digest.as_str());
    assert!(
        ws.summary().contains(&format!("| SBOM | `{sbom_digest}`")),
        "{}",
        ws.summary()
    );

    // A second referrer beside the provenance, listed in the fallback tag.
    let listed = referrers(&registry, "acme/app", &digest);
    let types: Vec<&str> = listed
        .iter()
        .map(|r| r["artifactType"].as_str().unwrap())
        .collect();
    assert_eq!(types, ["application/vnd.in-toto+json", SBOM], "{listed:?}");
    assert_eq!(listed[1]["digest"], sbom_digest.as_str());
    let (manifest, document) = referrer(&registry, "acme/app", &sbom_digest);
    assert_eq!(manifest["artifactType"], SBOM);
    assert_eq!(manifest["subject"]["digest"], digest.as_str());
    assert_eq!(manifest["layers"][0]["mediaType"], SBOM);

    let doc = json_of(&document);
    assert_eq!(doc["bomFormat"], "CycloneDX");
    assert_eq!(doc["specVersion"], "1.5");
    assert_eq!(doc["metadata"]["component"]["name"], "app");
    assert_eq!(doc["metadata"]["component"]["version"], "0.2.0");
    assert_eq!(
        doc["metadata"]["component"]["licenses"][0]["expression"],
        "MIT OR Apache-2.0"
    );
    let components = doc["components"].as_array().unwrap();
    let names: Vec<&str> = components
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["deep", "gitdep", "linked", "optional"], "{doc}");
    let component = |name: &str| components.iter().find(|c| c["name"] == name).unwrap();
    assert_eq!(component("linked")["purl"], "pkg:cargo/linked@0.1.0");
    assert_eq!(component("linked")["version"], "0.1.0");
    assert_eq!(component("linked")["licenses"][0]["expression"], "MIT");
    let gitdep = component("gitdep");
    let commit = String::from_utf8(
        std::process::Command::new("git")
            .args(["rev-parse", "HEAD"])
            .current_dir(ws.root().join("gitdep"))
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    let commit = commit.trim();
    assert!(
        gitdep["purl"]
            .as_str()
            .unwrap()
            .starts_with("pkg:cargo/gitdep@0.1.0?vcs_url=git%2Bfile:///"),
        "{gitdep}"
    );
    assert_eq!(gitdep["externalReferences"][0]["type"], "vcs");
    assert_eq!(
        gitdep["externalReferences"][0]["url"],
        format!("git+file://{}#{commit}", ws.root().join("gitdep").display())
    );
    let depends_on = |r: &str| -> Vec<String> {
        doc["dependencies"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["ref"] == r)
            .unwrap_or_else(|| panic!("no dependency entry {r}"))["dependsOn"]
            .as_array()
            .map(|a| a.iter().map(|d| d.as_str().unwrap().to_owned()).collect())
            .unwrap_or_default()
    };
    assert_eq!(
        depends_on("pkg:cargo/linked@0.1.0"),
        ["pkg:cargo/deep@0.1.0"]
    );
    assert_eq!(depends_on("pkg:cargo/app@0.2.0").len(), 3);

    // An independent check of the document: the CycloneDX 1.5 JSON schema.
    let checked = schema_check(&ws, &document);
    assert!(checked.status.success(), "{checked:?}");
    // The check can fail: a license that is not a license is refused.
    let mut broken = doc.clone();
    broken["components"][0]["licenses"] = serde_json::json!([{ "expression": 1 }]);
    let refused = schema_check(&ws, &serde_json::to_vec(&broken).unwrap());
    assert!(!refused.status.success(), "{refused:?}");

    let pinned = format!("{image}@{digest}");
    let inspected = ws.run_cli(&["inspect", &pinned, "--insecure"], &[]);
    assert!(inspected.success(), "{inspected:?}");
    assert_eq!(
        json_of(inspected.stdout.as_bytes())["sbom"],
        sbom_digest.as_str()
    );
    let verified = ws.run_cli(
        &[
            "verify",
            &pinned,
            "--insecure",
            "--require-sbom",
            // Pushed without an OIDC token or a key: unsigned, accepted knowingly.
            "--require-signature=false",
        ],
        &[],
    );
    assert!(verified.success(), "{verified:?}");
    assert!(
        verified.all().contains(&format!(
            "referrer {sbom_digest}: CycloneDX 1.5, 4 components"
        )),
        "{verified:?}"
    );
    // With a signature required, the unsigned SBOM is no evidence either.
    let refused = ws.run_cli(
        &[
            "verify",
            &pinned,
            "--insecure",
            "--require-sbom",
            "--expect-source",
            "https://github.com/acme/multiply",
        ],
        &[],
    );
    assert!(!refused.success(), "{refused:?}");
    assert!(
        refused.stderr.contains(&format!(
            "sbom signature: found only an unsigned CycloneDX document (SBOM referrer {sbom_digest})"
        )),
        "{refused:?}"
    );
}

/// A located `.wasm` has no known dependency graph: no SBOM (said at debug level), an empty
/// `sbom-digest`, and `verify` with `require-sbom` fails with one line naming the digest.
#[test]
fn a_located_wasm_gets_no_sbom_and_require_sbom_names_the_digest() {
    let registry = Registry::start();
    let ws = Workspace::new();
    let image = format!("{}/acme/multiply", registry.host());
    let mut env = ws.multiply_env(&image, &[("insecure", "true")]);
    env.insert("RUNNER_DEBUG".into(), "1".into());
    let run = ws.run_action(&env);
    assert!(run.success(), "{run:?}");
    assert!(run.stdout.contains("::debug::no SBOM"), "{run:?}");
    let out = ws.outputs();
    assert_eq!(out["sbom-digest"], "");
    let digest = out["digest"].clone();
    assert_eq!(referrers(&registry, "acme/multiply", &digest).len(), 1);

    let pinned = format!("{image}@{digest}");
    let verify = |require: &str| {
        ws.run_action(&ws.action_env(&[
            ("command", "verify"),
            ("image", &pinned),
            ("insecure", "true"),
            ("require-sbom", require),
            // Pushed without an OIDC token or a key: unsigned, accepted knowingly.
            ("require-signature", "false"),
        ]))
    };
    assert!(verify("false").success());
    let refused = verify("true");
    assert!(!refused.success(), "{refused:?}");
    let errors = refused.error_lines();
    assert_eq!(errors.len(), 1, "{refused:?}");
    assert!(
        errors[0].contains("no SBOM referrer") && errors[0].contains(&digest),
        "{errors:?}"
    );
}

/// `sbom: false` attaches none in build mode.
#[test]
fn sbom_false_attaches_none() {
    let registry = Registry::start();
    let ws = Workspace::new();
    copy_tree(&example_dir("multiply"), &ws.root().join("multiply"));
    let image = format!("{}/acme/multiply", registry.host());
    let run = ws.run_action(&build_env(
        &ws,
        &[
            ("image", &image),
            ("working-directory", "multiply"),
            ("insecure", "true"),
            ("sbom", "false"),
        ],
    ));
    assert!(run.success(), "{run:?}");
    let out = ws.outputs();
    assert_eq!(out["sbom-digest"], "");
    let listed = referrers(&registry, "acme/multiply", &out["digest"]);
    assert!(
        listed.iter().all(|r| r["artifactType"] != SBOM),
        "{listed:?}"
    );
}

/// With `signing-key` the SBOM is signed as the provenance is: its layer a DSSE envelope of an
/// in-toto statement with the CycloneDX predicate about the pushed manifest, and a Sigstore
/// bundle of it beside; `verify` with `public-key` and `require-sbom` checks its signature, the
/// provenance check still picks the provenance's bundle, and another key is refused.
#[test]
fn a_signing_key_signs_the_sbom_as_it_signs_the_provenance() {
    let registry = Registry::start();
    let ws = Workspace::new();
    copy_tree(&example_dir("multiply"), &ws.root().join("multiply"));
    let (key, public) = common::raw::p256_key(&ws.root(), "key");
    let (_, other) = common::raw::p256_key(&ws.root(), "other");
    // A second registry gets the same signed SBOM: made once (an ECDSA signature differs each
    // time it is made), listed alike in both.
    let second = Registry::start();
    let image = format!("{}/acme/multiply", registry.host());
    let images = format!("{image}\n{}/acme/multiply", second.host());
    let run = ws.run_action(&build_env(
        &ws,
        &[
            ("image", &images),
            ("working-directory", "multiply"),
            ("insecure", "true"),
            ("signing-key", key.to_str().unwrap()),
        ],
    ));
    assert!(run.success(), "{run:?}");
    let out = ws.outputs();
    let digest = out["digest"].clone();
    let (manifest, layer) = referrer(&registry, "acme/multiply", &out["sbom-digest"]);
    assert_eq!(
        referrer(&second, "acme/multiply", &out["sbom-digest"]),
        (manifest.clone(), layer.clone())
    );
    assert_eq!(
        referrers(&second, "acme/multiply", &digest),
        referrers(&registry, "acme/multiply", &digest)
    );
    assert_eq!(manifest["artifactType"], SBOM);
    assert_eq!(manifest["layers"][0]["mediaType"], DSSE);
    assert_eq!(
        manifest["annotations"]["in-toto.io/predicate-type"],
        CYCLONEDX_PREDICATE
    );
    let envelope = json_of(&layer);
    use base64::Engine as _;
    let statement = json_of(
        &base64::engine::general_purpose::STANDARD
            .decode(envelope["payload"].as_str().unwrap())
            .unwrap(),
    );
    assert_eq!(statement["predicateType"], CYCLONEDX_PREDICATE);
    assert_eq!(
        statement["subject"][0]["digest"]["sha256"],
        &digest["sha256:".len()..]
    );
    assert_eq!(statement["predicate"]["bomFormat"], "CycloneDX");
    assert_eq!(
        statement["predicate"]["metadata"]["component"]["name"],
        "multiply"
    );

    let listed = referrers(&registry, "acme/multiply", &digest);
    let sbom_bundles: Vec<&Value> = listed
        .iter()
        .filter(|r| {
            r["artifactType"] == BUNDLE
                && r["annotations"]["dev.sigstore.bundle.predicateType"] == CYCLONEDX_PREDICATE
        })
        .collect();
    assert_eq!(sbom_bundles.len(), 1, "{listed:?}");
    assert_eq!(
        listed.len(),
        4,
        "statement, its bundle, SBOM, its bundle: {listed:?}"
    );

    let pinned = format!("{image}@{digest}");
    let verify = |key: &str| {
        ws.run_action(&ws.action_env(&[
            ("command", "verify"),
            ("image", &pinned),
            ("insecure", "true"),
            ("require-sbom", "true"),
            ("public-key", key),
        ]))
    };
    let verified = verify(&public);
    assert!(verified.success(), "{verified:?}");
    assert!(ws.summary().contains("sbom signature"), "{}", ws.summary());
    let refused = verify(&other);
    assert!(!refused.success(), "{refused:?}");
    assert!(refused.all().contains("sbom signature"), "{refused:?}");
}

/// Keyless: the SBOM's statement gets a Sigstore bundle of its own (a Fulcio certificate for the
/// workflow, logged and timestamped), which sigstore-python accepts for the workflow's identity
/// and the pushed `.wasm`, and `verify` with `require-sbom` checks as it checks the provenance's
/// (refused for another workflow); the provenance's bundle stays the `bundle-digest` output.
#[test]
fn keyless_signing_signs_the_sbom_and_sigstore_python_and_verify_accept_it() {
    let registry = Registry::start();
    let sigstore = Sigstore::public_good(Job::tag_push("acme/multiply", "v1.2.3", COMMIT));
    let ws = Workspace::new();
    copy_tree(&example_dir("multiply"), &ws.root().join("multiply"));
    let image = format!("{}/acme/multiply", registry.host());
    let config = sigstore.trust_config().display().to_string();
    let mut env = build_env(
        &ws,
        &[
            ("image", &image),
            ("working-directory", "multiply"),
            ("insecure", "true"),
            ("sigstore-trust-config", &config),
        ],
    );
    env.extend(sigstore.oidc_env());
    let run = ws.run_action(&env);
    assert!(run.success(), "{run:?}");
    let out = ws.outputs();
    let listed = referrers(&registry, "acme/multiply", &out["digest"]);
    let sbom_bundle = listed
        .iter()
        .find(|r| {
            r["artifactType"] == BUNDLE
                && r["annotations"]["dev.sigstore.bundle.predicateType"] == CYCLONEDX_PREDICATE
        })
        .unwrap_or_else(|| panic!("no SBOM bundle among {listed:?}"));
    assert_ne!(sbom_bundle["digest"], out["bundle-digest"].as_str());
    // One referrer per claim: the provenance's bundle and the SBOM's, no unsigned copies.
    assert_eq!(listed.len(), 2, "{listed:?}");
    assert_eq!(out["sbom-digest"], sbom_bundle["digest"].as_str().unwrap());
    let (_, bundle) = referrer(
        &registry,
        "acme/multiply",
        sbom_bundle["digest"].as_str().unwrap(),
    );
    let bundle_path = ws.write("sbom.sigstore.json", &bundle);
    let wasm = ws
        .root()
        .join("multiply/target/wasm32-wasip1/release/multiply.wasm");
    let checked = sigstore::python_sigstore(
        &sigstore,
        &[
            "verify",
            "github",
            "--cert-identity",
            &sigstore.identity(),
            "--repository",
            "acme/multiply",
            "--sha",
            COMMIT,
            "--ref",
            "refs/tags/v1.2.3",
            "--trigger",
            "push",
            "--bundle",
            bundle_path.to_str().unwrap(),
            wasm.to_str().unwrap(),
        ],
    );
    assert!(checked.status.success(), "{checked:?}");
    let statement = json_of(&bundle)["dsseEnvelope"]["payload"].clone();
    use base64::Engine as _;
    let statement = json_of(
        &base64::engine::general_purpose::STANDARD
            .decode(statement.as_str().unwrap())
            .unwrap(),
    );
    assert_eq!(statement["predicateType"], CYCLONEDX_PREDICATE);

    // verify checks that bundle as it checks the provenance's: trusted root, identity.
    let pinned = format!("{image}@{}", out["digest"]);
    let verify = |extra: &[(&str, &str)]| {
        let mut inputs = vec![
            ("command", "verify"),
            ("image", pinned.as_str()),
            ("insecure", "true"),
            ("sigstore-trust-config", config.as_str()),
            ("require-sbom", "true"),
        ];
        inputs.extend_from_slice(extra);
        ws.run_action(&ws.action_env(&inputs))
    };
    let verified = verify(&[]);
    assert!(verified.success(), "{verified:?}");
    let summary = ws.summary();
    for check in [
        "sbom certificate identity",
        "sbom certificate chain",
        "sbom signature",
    ] {
        assert!(summary.contains(check), "{check}: {summary}");
    }
    let refused = verify(&[(
        "certificate-identity",
        "https://github.com/acme/other/.github/workflows/release.yml@refs/tags/v1.2.3",
    )]);
    assert!(!refused.success(), "{refused:?}");
    assert!(refused.all().contains("sbom "), "{refused:?}");
}
