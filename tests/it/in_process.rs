//! The use cases called in process, against an OCI image layout on disk: push, pull, verify and
//! inspect through the library's own entry points, with the inputs a user would give. No
//! registry process and no child process, so these run in milliseconds and a failure points at
//! the use case rather than at the transport.

use std::collections::BTreeMap;
use std::path::Path;

use wasm_oci::context::Env;
use wasm_oci::inputs::Inputs;
use wasm_oci::push::PushRequest;
use wasm_oci::request::ReadRequest;
use wasm_oci::verify::VerifyRequest;
use wasm_oci::{Error, inspect, pull, push, verify};

use crate::common::{self, COMMIT, module_with_data, sha256};

/// The environment of a job: the inputs as the runner passes them, and a git context.
fn job_env(dir: &Path, inputs: &[(&str, &str)]) -> Env {
    let mut env: Env = BTreeMap::new();
    env.insert("INPUT_WORKING-DIRECTORY".into(), dir.display().to_string());
    env.insert("GITHUB_WORKSPACE".into(), dir.display().to_string());
    for (name, value) in inputs {
        // A layout is found from the process's directory, which tests share: `oci:out` is
        // made absolute, inside `dir`.
        let value = match value.strip_prefix("oci:") {
            Some(layout) => format!("oci:{}/{layout}", dir.display()),
            None => (*value).to_owned(),
        };
        env.insert(format!("INPUT_{}", name.to_uppercase()), value);
    }
    for (name, value) in [
        ("GITHUB_ACTIONS", "true"),
        ("GITHUB_SERVER_URL", "https://github.com"),
        // Nothing listens there: the repository's metadata is not read.
        ("GITHUB_API_URL", "http://127.0.0.1:9/"),
        ("GITHUB_REPOSITORY", "acme/multiply"),
        ("GITHUB_SHA", COMMIT),
        ("GITHUB_REF", "refs/tags/v1.2.3"),
        ("GITHUB_RUN_ID", "42"),
        ("GITHUB_RUN_ATTEMPT", "1"),
        (
            "GITHUB_WORKFLOW_REF",
            "acme/multiply/.github/workflows/release.yml@refs/tags/v1.2.3",
        ),
        ("SOURCE_DATE_EPOCH", "1700000000"),
    ] {
        env.insert(name.into(), value.into());
    }
    env
}

fn run<T>(future: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(future)
}

fn push_layout(
    dir: &Path,
    inputs: &[(&str, &str)],
) -> wasm_oci::Result<wasm_oci::push::PushOutcome> {
    let env = job_env(dir, inputs);
    let request = PushRequest::from_inputs(&Inputs::from_action_env(&env), &env)?;
    run(push::push(&request, &env))
}

/// A pushed module comes back byte for byte under the digest the push reported, and its
/// provenance verifies against the commit and repository it was pushed from.
#[test]
fn a_module_pushed_to_a_layout_pulls_and_verifies_by_its_digest() {
    let dir = tempfile::tempdir().unwrap();
    let wasm = module_with_data(4 << 10, &[]);
    std::fs::write(dir.path().join("m.wasm"), &wasm).unwrap();
    let pushed = push_layout(
        dir.path(),
        &[("path", "m.wasm"), ("image", "oci:out"), ("tags", "v1")],
    )
    .unwrap();
    assert_eq!(pushed.wasm.digest.to_string(), sha256(&wasm));
    assert_eq!(pushed.tags.len(), 1);

    let pinned = format!("oci:out@{}", pushed.digest);
    let read = [("image", pinned.as_str()), ("output", "pulled.wasm")];
    let env = job_env(dir.path(), &read);
    let request = pull::PullRequest::from_inputs(&Inputs::from_action_env(&env), &env).unwrap();
    let pulled = run(pull::pull(&request)).unwrap();
    assert_eq!(pulled.digest, pushed.digest);
    assert_eq!(std::fs::read(&pulled.wasm.path).unwrap(), wasm);

    let checks = [
        ("image", pinned.as_str()),
        ("expect-source", "https://github.com/acme/multiply"),
        ("expect-revision", COMMIT),
    ];
    let verify_with = |checks: &[(&str, &str)]| {
        // The push had no OIDC token: its provenance is unsigned, accepted here knowingly.
        let mut checks = checks.to_vec();
        checks.push(("require-signature", "false"));
        let env = job_env(dir.path(), &checks);
        let request =
            VerifyRequest::from_inputs(&Inputs::from_action_env(&env), &env, None).unwrap();
        run(verify::verify(&request)).unwrap()
    };
    let report = verify_with(&checks);
    assert!(report.verified(), "{}", report.summary());
    assert_eq!(report.digest.as_ref(), Some(&pushed.digest));

    let other = "f".repeat(40);
    let report = verify_with(&[checks[0], checks[1], ("expect-revision", &other)]);
    assert!(!report.verified(), "{}", report.summary());
    let refused = report.into_result().unwrap_err();
    assert!(refused.to_string().contains("revision"), "{refused}");
}

/// A file that is not valid Wasm fails the push with the file named, and the layout gains no
/// tag and no manifest.
#[test]
fn an_invalid_module_leaves_the_layout_without_a_tag() {
    let dir = tempfile::tempdir().unwrap();
    let good = module_with_data(64, &[]);
    std::fs::write(dir.path().join("good.wasm"), &good).unwrap();
    push_layout(
        dir.path(),
        &[("path", "good.wasm"), ("image", "oci:out"), ("tags", "v1")],
    )
    .unwrap();
    let index = || std::fs::read(dir.path().join("out/index.json")).unwrap();
    let before = index();

    // A trailing byte that starts no section: the header passes, validation does not.
    std::fs::write(dir.path().join("bad.wasm"), module_with_data(64, &[0xff])).unwrap();
    let failed = push_layout(
        dir.path(),
        &[
            ("path", "bad.wasm"),
            ("image", "oci:out"),
            ("tags", "v1,v2"),
        ],
    )
    .unwrap_err();
    assert!(failed.to_string().contains("bad.wasm"), "{failed}");
    assert_eq!(index(), before, "no tag moved");
}

/// The same file pushed twice gives the same digest, and the second push writes no blob.
#[test]
fn a_re_push_gives_the_same_digest_and_writes_nothing_new() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("m.wasm"), module_with_data(1 << 20, &[])).unwrap();
    let inputs = [("path", "m.wasm"), ("image", "oci:out"), ("tags", "v1")];
    let first = push_layout(dir.path(), &inputs).unwrap();
    let blobs = std::fs::read_dir(dir.path().join("out/blobs/sha256"))
        .unwrap()
        .count();
    let second = push_layout(dir.path(), &inputs).unwrap();
    assert_eq!(first.digest, second.digest);
    assert!(second.uploaded.is_empty(), "{:?}", second.uploaded);
    assert_eq!(
        std::fs::read_dir(dir.path().join("out/blobs/sha256"))
            .unwrap()
            .count(),
        blobs
    );
}

/// A blob altered in the layout after the push is refused by pull with its digest named, and
/// no file is left at the output path.
#[test]
fn a_layer_altered_in_the_layout_is_refused_by_pull() {
    let dir = tempfile::tempdir().unwrap();
    let wasm = module_with_data(4 << 10, &[]);
    std::fs::write(dir.path().join("m.wasm"), &wasm).unwrap();
    let pushed = push_layout(
        dir.path(),
        &[("path", "m.wasm"), ("image", "oci:out"), ("tags", "v1")],
    )
    .unwrap();
    let layer = dir
        .path()
        .join("out/blobs/sha256")
        .join(&pushed.wasm.digest.to_string()["sha256:".len()..]);
    let mut altered = wasm.clone();
    *altered.last_mut().unwrap() ^= 1;
    std::fs::write(&layer, &altered).unwrap();

    let pinned = format!("oci:out@{}", pushed.digest);
    let env = job_env(
        dir.path(),
        &[("image", pinned.as_str()), ("output", "pulled.wasm")],
    );
    let request = pull::PullRequest::from_inputs(&Inputs::from_action_env(&env), &env).unwrap();
    let refused = run(pull::pull(&request)).unwrap_err();
    assert!(
        refused
            .to_string()
            .contains(&pushed.wasm.digest.to_string()),
        "{refused}"
    );
    assert!(
        matches!(refused, Error::DigestMismatch { .. }),
        "{refused:?}"
    );
    assert!(!dir.path().join("pulled.wasm").exists());
}

/// Inspect reads the pushed artifact's manifest, config and provenance from the layout.
#[test]
fn inspect_shows_the_layer_and_the_provenance_referrer() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("c.wasm"), common::component_wasm()).unwrap();
    let pushed = push_layout(
        dir.path(),
        &[("path", "c.wasm"), ("image", "oci:out"), ("tags", "v1")],
    )
    .unwrap();
    let env = job_env(dir.path(), &[("image", "oci:out:v1")]);
    let request = ReadRequest::from_inputs(&Inputs::from_action_env(&env), &env).unwrap();
    let shown = run(inspect::inspect(&request)).unwrap();
    let text = shown.to_string();
    assert!(text.contains(&pushed.digest.to_string()), "{text}");
    assert!(text.contains("wasi:random/random@0.2.0"), "{text}");
    assert!(text.contains("application/vnd.in-toto+json"), "{text}");
}
