//! The action's default image (the Dockerfile's last stage, `toolchain`, what
//! `uses: org/wasm-oci-action@v1` runs), built on a stand-in for the pinned rust image and run as
//! GitHub's runner runs a Docker container action: as root, in a workspace that belongs to the
//! runner's user (uid 1001), `HOME=/github/home`, the file commands read back as the runner reads
//! them. A tag push releases the example crate in build mode; a deploy job verifies and pulls the
//! digest it wrote, and the module runs.

use crate::common;

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Command;

use common::container::{Job, Network, RUNNER_UID, default_image, inspect_image, rust_image};
use common::proxy::{Fault, FaultProxy};
use common::*;

/// Runs `multiply(args)` of the module at `wasm` under wasmtime (its Python embedding, installed
/// by `.ci/run`) and returns what it printed.
fn wasmtime_invoke(wasm: &Path, args: &[&str]) -> String {
    let output = Command::new("python3")
        .arg("-c")
        .arg(
            "import sys, wasmtime\n\
             store = wasmtime.Store()\n\
             module = wasmtime.Module.from_file(store.engine, sys.argv[1])\n\
             instance = wasmtime.Instance(store, module, [])\n\
             print(instance.exports(store)['multiply'](store, *map(int, sys.argv[2:])))\n",
        )
        .arg(wasm)
        .args(args)
        .output()
        .expect("python3 runs");
    assert!(
        output.status.success(),
        "wasmtime failed (`pip install wasmtime`; `.ci/run` does): {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap().trim().to_owned()
}

/// Every file and folder under `dir` that does not belong to the runner's user.
fn not_the_runners(dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let meta = std::fs::symlink_metadata(&path).unwrap();
        if meta.uid() != RUNNER_UID {
            found.push(format!("{} (uid {})", path.display(), meta.uid()));
        }
        if meta.is_dir() {
            found.extend(not_the_runners(&path));
        }
    }
    found
}

/// A later `run:` step of the job, as the runner's user: it reads `wasm` and deletes everything in
/// the workspace.
fn later_step_reads_and_cleans(job: &Job, wasm: &str) {
    let run = job.run_as_runner_user(
        rust_image(),
        &format!("test -s {wasm} && cat {wasm} >/dev/null && find . -mindepth 1 -delete && test -z \"$(ls -A)\""),
    );
    assert!(
        run.success(),
        "the runner's user cannot use the workspace: {run:?}"
    );
}

#[test]
fn the_default_image_is_the_toolchain_stage_on_the_rust_image() {
    let config = inspect_image(default_image());
    let config = &config["Config"];
    assert_eq!(
        config["Entrypoint"],
        serde_json::json!(["/usr/local/bin/wasm-oci"])
    );
    assert_eq!(config["Cmd"], serde_json::json!(["action"]));
    assert!(
        config["User"].as_str().unwrap_or("").is_empty(),
        "runs as root"
    );
    let env: Vec<&str> = config["Env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    for var in [
        "RUSTUP_HOME=/usr/local/rustup",
        "CARGO_HOME=/usr/local/cargo",
    ] {
        assert!(env.contains(&var), "{env:?}");
    }
    assert!(
        env.iter()
            .any(|v| v.starts_with("PATH=/usr/local/cargo/bin:")),
        "{env:?}"
    );
}

#[test]
fn a_tag_push_releases_in_one_container_and_a_deploy_job_runs_the_pulled_module() {
    let image = default_image();
    let registry = Registry::start();
    let target = format!("{}/acme/multiply", registry.host());

    // The release job: checkout, then the action in build mode (no `path`).
    let release = Job::tag_push();
    release.checkout(&example_dir("multiply"));
    let step = release.run_container_step(image, &[("image", &target), ("insecure", "true")]);
    assert!(step.run.success(), "{:?}", step.run);
    assert!(step.run.error_lines().is_empty(), "{:?}", step.run);
    let out = &step.outputs;
    assert_eq!(out["tags"], "1.2.3,1.2,1,latest,sha-0123456");
    assert_eq!(
        registry.image_tags("acme/multiply"),
        ["1", "1.2", "1.2.3", "latest", "sha-0123456"]
    );
    let (manifest, _) = registry.manifest("acme/multiply", "1.2.3").unwrap();
    assert_eq!(sha256(&manifest), out["digest"]);
    assert_eq!(out["ref"], format!("{target}@{}", out["digest"]));
    let manifest: serde_json::Value = serde_json::from_slice(&manifest).unwrap();
    let annotations = &manifest["annotations"];
    assert_eq!(annotations["org.opencontainers.image.revision"], COMMIT);
    assert_eq!(
        annotations["org.opencontainers.image.source"],
        "https://github.com/acme/multiply"
    );
    // No SOURCE_DATE_EPOCH and no git in the image: the time comes from the event payload.
    assert_eq!(
        annotations["org.opencontainers.image.created"],
        "2024-05-01T10:00:00Z"
    );
    let provenance = out["provenance-digest"].clone();
    assert!(provenance.starts_with("sha256:"), "{out:?}");
    let fallback = format!("sha256-{}", &out["digest"]["sha256:".len()..]);
    assert!(registry.manifest("acme/multiply", &fallback).is_some());
    assert!(
        step.summary.contains("Wasm OCI artifact pushed"),
        "{}",
        step.summary
    );

    // What cargo left belongs to the runner's user, and a later step can use it.
    let built = release
        .workspace()
        .join("target/wasm32-wasip1/release/multiply.wasm");
    assert_eq!(sha256(&std::fs::read(&built).unwrap()), out["wasm-digest"]);
    assert_eq!(not_the_runners(&release.workspace()), Vec::<String>::new());
    later_step_reads_and_cleans(&release, "target/wasm32-wasip1/release/multiply.wasm");

    // The deploy job: verify, then pull the digest the release job handed over.
    let mut deploy = Job::tag_push();
    deploy.network = Network::Host;
    let reference = out["ref"].clone();
    let verify = deploy.run_container_step(
        image,
        &[
            ("command", "verify"),
            ("image", &reference),
            ("insecure", "true"),
            ("expect-source", "https://github.com/acme/multiply"),
            ("expect-revision", COMMIT),
            // The release job above has no `id-token: write` (what this test holds is the
            // image and the runner's mounts, not Sigstore): its provenance is unsigned, accepted
            // knowingly. Keyless signing and its refusals are verify_keyless's and signing's.
            ("require-signature", "false"),
        ],
    );
    assert!(verify.run.success(), "{:?}", verify.run);
    assert_eq!(verify.outputs["verified"], "true");
    assert_eq!(verify.outputs["digest"], out["digest"]);
    let pull = deploy.run_container_step(
        image,
        &[
            ("command", "pull"),
            ("image", &reference),
            ("insecure", "true"),
            ("output", "multiply.wasm"),
        ],
    );
    assert!(pull.run.success(), "{:?}", pull.run);
    let pulled = deploy.workspace().join("multiply.wasm");
    assert_eq!(sha256(&std::fs::read(&pulled).unwrap()), out["wasm-digest"]);
    assert_eq!(wasmtime_invoke(&pulled, &["4", "4", "4"]), "64");
    later_step_reads_and_cleans(&deploy, "multiply.wasm");
}

#[test]
fn a_compile_error_is_annotated_on_its_line_from_inside_the_container() {
    let mut job = Job::tag_push();
    job.network = Network::None;
    job.checkout(&example_dir("multiply"));
    std::fs::write(
        job.workspace().join("src/lib.rs"),
        "//! Does not compile.\n\npub fn answer() -> u32 {\n    \"forty-two\"\n}\n",
    )
    .unwrap();
    job.chown_to_runner();
    let step = job.run_container_step(default_image(), &[("image", "oci:out")]);
    assert!(!step.run.success(), "{:?}", step.run);
    let annotation = step
        .run
        .error_lines()
        .into_iter()
        .find(|l| l.contains("file="))
        .unwrap_or_else(|| panic!("no located annotation: {:?}", step.run))
        .to_owned();
    assert!(
        annotation.starts_with("::error file=src/lib.rs,line=4,col=5,"),
        "{annotation}"
    );
    assert!(step.outputs.is_empty(), "{:?}", step.outputs);
    assert_eq!(not_the_runners(&job.workspace()), Vec::<String>::new());
}

/// examples/multiply with one dependency from crates.io, `itoa`, pinned.
fn checkout_with_a_dependency(job: &Job) {
    job.checkout(&example_dir("multiply"));
    let manifest = job.workspace().join("Cargo.toml");
    let text = std::fs::read_to_string(&manifest)
        .unwrap()
        .replace("[lib]", "[dependencies]\nitoa = \"=1.0.15\"\n\n[lib]");
    std::fs::write(&manifest, text).unwrap();
    job.chown_to_runner();
}

/// The README's recipe: `CARGO_HOME: ${{ github.workspace }}/.cargo-home` in the job's env and
/// actions/cache on its registry index and cache.
fn cargo_home_in_the_workspace(job: &mut Job) {
    let home = job.workspace().join(".cargo-home");
    job.env
        .insert("CARGO_HOME".into(), home.display().to_string());
}

#[test]
fn cargo_downloads_cached_in_the_workspace_let_the_next_job_build_offline() {
    let registry = Registry::start();
    let target = format!("{}/acme/multiply", registry.host());
    let inputs = [("image", target.as_str()), ("insecure", "true")];
    // First job: the cache is empty, crates.io is reachable.
    let mut first = Job::tag_push();
    checkout_with_a_dependency(&first);
    cargo_home_in_the_workspace(&mut first);
    // This machine's trust store, for a network whose TLS proxy the image's bundle does not
    // know: the job's env tells cargo, as a self-hosted runner's workflow would.
    let trust = first.workspace().join("trust.pem");
    std::fs::copy("/etc/ssl/certs/ca-certificates.crt", &trust).unwrap();
    first.chown_to_runner();
    first
        .env
        .insert("CARGO_HTTP_CAINFO".into(), trust.display().to_string());
    let step = first.run_container_step(default_image(), &inputs);
    assert!(step.run.success(), "{:?}", step.run);
    let cached = first
        .workspace()
        .join(".cargo-home/registry/cache")
        .read_dir()
        .expect("cargo's downloads are in the workspace's cargo home")
        .map(|e| e.unwrap().path().join("itoa-1.0.15.crate"))
        .find(|p| p.is_file());
    assert!(cached.is_some(), "itoa was not downloaded into .cargo-home");
    assert_eq!(not_the_runners(&first.workspace()), Vec::<String>::new());

    // actions/cache saves the paths of the recipe; the next job restores them into a fresh
    // checkout (with the Cargo.lock the first build wrote, as a repository commits it).
    let restore = |job: &Job| {
        for part in ["registry/index", "registry/cache"] {
            copy_tree(
                &first.workspace().join(".cargo-home").join(part),
                &job.workspace().join(".cargo-home").join(part),
            );
        }
    };
    let lock = std::fs::read(first.workspace().join("Cargo.lock")).unwrap();

    // Without the cache and without network the build fails: the cache is what it needs.
    let mut uncached = Job::tag_push();
    checkout_with_a_dependency(&uncached);
    std::fs::write(uncached.workspace().join("Cargo.lock"), &lock).unwrap();
    uncached.chown_to_runner();
    cargo_home_in_the_workspace(&mut uncached);
    uncached.network = Network::None;
    // (The registry is unreachable too, but cargo comes first.)
    let step = uncached.run_container_step(default_image(), &inputs);
    assert!(!step.run.success(), "{:?}", step.run);

    let mut second = Job::tag_push();
    checkout_with_a_dependency(&second);
    std::fs::write(second.workspace().join("Cargo.lock"), &lock).unwrap();
    restore(&second);
    second.chown_to_runner();
    cargo_home_in_the_workspace(&mut second);

    let step = second.run_container_step(default_image(), &inputs);
    assert!(step.run.success(), "{:?}", step.run);
    assert!(
        registry
            .manifest("acme/multiply", &step.outputs["digest"])
            .is_some()
    );
    later_step_reads_and_cleans(&second, "target/wasm32-wasip1/release/multiply.wasm");
}

/// A build script that leaves a process behind (detached with `setsid`, as an attacker's would):
/// it appends a line to `orphan.log` in the workspace every 50 ms, for as long as it lives (with
/// the `sleep` it waits in, one or two processes).
const ORPHAN_BUILD_SCRIPT: &str = r#"fn main() {
    std::process::Command::new("sh")
        .arg("-c")
        .arg("setsid sh -c 'while :; do echo alive >> orphan.log; sleep 0.05; done' </dev/null >/dev/null 2>&1 &")
        .status()
        .unwrap();
}
"#;

#[test]
fn a_process_a_build_script_leaves_running_is_ended_before_the_push() {
    let registry = Registry::start();
    let job = Job::tag_push();
    job.checkout(&example_dir("multiply"));
    std::fs::write(job.workspace().join("build.rs"), ORPHAN_BUILD_SCRIPT).unwrap();
    job.chown_to_runner();
    // The registry's first answer is 429 `Retry-After: 1`: the push takes a second longer. What
    // the orphan had written when the push began is kept, to compare with what it wrote at all.
    let log = job.workspace().join("orphan.log");
    let at_push: std::sync::Arc<std::sync::Mutex<Option<String>>> = Default::default();
    let seen = at_push.clone();
    let proxy = FaultProxy::start(registry.port, move |n, _, _| {
        if n > 0 {
            return Fault::Pass;
        }
        *seen.lock().unwrap() = Some(std::fs::read_to_string(&log).unwrap_or_default());
        Fault::Throttle
    });
    let target = format!("{}/acme/multiply", proxy.host());
    let step = job.run_container_step(default_image(), &[("image", &target), ("insecure", "true")]);
    assert!(step.run.success(), "{:?}", step.run);
    let at_push = at_push
        .lock()
        .unwrap()
        .clone()
        .expect("the push reached the registry");
    assert!(
        at_push.contains("alive"),
        "the orphan never ran: {:?}",
        step.run
    );
    // Nothing written while the push waited for the registry: the orphan was gone.
    let after = std::fs::read_to_string(job.workspace().join("orphan.log")).unwrap();
    assert_eq!(
        after.len(),
        at_push.len(),
        "the orphan ran on during the push"
    );
    assert!(
        step.run.stdout.lines().any(|l| l.starts_with("::warning")
            && l.contains("the build left")
            && l.contains("running as uid 1001")),
        "{:?}",
        step.run
    );
    assert!(
        registry
            .manifest("acme/multiply", &step.outputs["digest"])
            .is_some()
    );
}
