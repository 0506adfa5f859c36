//! The action's container image, built and run as GitHub's runner runs it.
//!
//! Base images cannot be pulled here, so [`slim_image`] builds the static musl binary on the host
//! and hands it to the Dockerfile's `slim` stage with `--build-context bin=DIR` (the stage that
//! compiles it in a release build is skipped). [`run_action`] then runs the image the way the
//! runner does: `--workdir /github/workspace`, the workspace, `/github/home`,
//! `/github/workflow` and `/github/file_commands` mounted, every variable passed with `-e`.
//! A missing podman or runc fails the test: `.ci/run` installs them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use super::{Run, Workspace, which};

/// The tag the tests give the slim image.
pub const SLIM_IMAGE: &str = "localhost/wasm-oci-action-test:slim";

/// The static musl `wasm-oci`, built once per test binary (release, as the image ships it).
pub fn static_binary() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let target = format!("{}-unknown-linux-musl", std::env::consts::ARCH);
        // Its own target dir: `cargo test` holds the lock on the default one.
        let target_dir = root.join("target/container");
        let output = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .args(["build", "--locked", "--release", "--bin", "wasm-oci", "--target", &target])
            .arg("--manifest-path")
            .arg(root.join("Cargo.toml"))
            .arg("--target-dir")
            .arg(&target_dir)
            .stdin(Stdio::null())
            .output()
            .expect("cargo runs");
        assert!(
            output.status.success(),
            "building the static binary failed (run `rustup target add {target}` and `apt-get install musl-tools`; `.ci/run` does):\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        target_dir.join(target).join("release/wasm-oci")
    })
}

/// `podman build --target slim` of the repository's Dockerfile with the host-built binary.
pub fn slim_image() -> &'static str {
    static IMAGE: OnceLock<()> = OnceLock::new();
    IMAGE.get_or_init(|| {
        let podman = which("podman").expect("podman is installed (`.ci/run` does)");
        let context = tempfile::tempdir().unwrap();
        std::fs::copy(static_binary(), context.path().join("wasm-oci")).unwrap();
        std::fs::create_dir_all(context.path().join("etc/ssl/certs")).unwrap();
        std::fs::copy(
            "/etc/ssl/certs/ca-certificates.crt",
            context.path().join("etc/ssl/certs/ca-certificates.crt"),
        )
        .expect("ca-certificates is installed");
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let output = Command::new(podman)
            .args([
                "build",
                "--target",
                "slim",
                "--tag",
                SLIM_IMAGE,
                "--build-context",
            ])
            .arg(format!("bin={}", context.path().display()))
            .arg("--file")
            .arg(root.join("Dockerfile"))
            .arg(context.path())
            .stdin(Stdio::null())
            .output()
            .expect("podman runs");
        assert!(
            output.status.success(),
            "podman build failed:\n{}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    });
    SLIM_IMAGE
}

/// The image's configuration, as `podman image inspect` reports it.
pub fn inspect_image(image: &str) -> serde_json::Value {
    let output = Command::new("podman")
        .args(["image", "inspect", image])
        .output()
        .expect("podman runs");
    assert!(output.status.success());
    let list: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    list[0].clone()
}

/// Which network the container gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Network {
    /// `--network none`: no network at all.
    None,
    /// `--network host`: the host's loopback, where the tests' registry listens.
    Host,
}

impl Workspace {
    /// The runner's env for a container: [`Workspace::action_env`] with the paths the container
    /// sees (`/github/...`).
    pub fn container_env(&self, inputs: &[(&str, &str)]) -> BTreeMap<String, String> {
        let mut env = self.action_env(inputs);
        for (k, v) in [
            ("GITHUB_WORKSPACE", "/github/workspace"),
            ("HOME", "/github/home"),
            ("GITHUB_OUTPUT", "/github/file_commands/output"),
            ("GITHUB_STEP_SUMMARY", "/github/file_commands/summary"),
            ("GITHUB_EVENT_PATH", "/github/workflow/event.json"),
            ("RUNNER_TEMP", "/home/runner/work/_temp"),
        ] {
            env.insert(k.to_owned(), v.to_owned());
        }
        env
    }

    /// Runs `image` with the argument `action`, as the runner runs a Docker container action.
    pub fn run_container(
        &self,
        image: &str,
        env: &BTreeMap<String, String>,
        network: Network,
    ) -> Run {
        let workflow = self.dir.path().join("workflow");
        std::fs::create_dir_all(&workflow).unwrap();
        std::fs::write(workflow.join("event.json"), "{}").unwrap();
        let mount = |host: PathBuf, guest: &str| format!("{}:{guest}", host.display());
        let mut cmd = Command::new("podman");
        cmd.args(["--runtime", "runc", "run", "--rm"])
            .arg(match network {
                Network::None => "--network=none",
                Network::Host => "--network=host",
            })
            .args([
                "--ulimit",
                "nofile=20000:20000",
                "--ulimit",
                "nproc=32768:32768",
            ])
            .args(["--workdir", "/github/workspace"])
            .args(["-v", &mount(self.root(), "/github/workspace")])
            .args(["-v", &mount(self.dir.path().join("home"), "/github/home")])
            .args(["-v", &mount(workflow, "/github/workflow")])
            .args([
                "-v",
                &mount(
                    self.dir.path().join("file_commands"),
                    "/github/file_commands",
                ),
            ]);
        for (k, v) in env {
            cmd.arg("-e").arg(format!("{k}={v}"));
        }
        cmd.arg(image).arg("action").stdin(Stdio::null());
        let output = cmd.output().expect("podman runs");
        Run {
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
            output,
        }
    }
}
