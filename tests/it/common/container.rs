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
    IMAGE.get_or_init(|| build_image("Dockerfile", &["--target", "slim"], SLIM_IMAGE));
    SLIM_IMAGE
}

/// The tag the tests give the sub-actions' image.
pub const SUB_ACTION_IMAGE: &str = "localhost/wasm-oci-action-test:sub-action";

/// `podman build` of slim.Dockerfile as the runner builds a sub-action's `runs.image` (its last
/// stage, no `--target`), with the host-built binary.
pub fn sub_action_image() -> &'static str {
    static IMAGE: OnceLock<()> = OnceLock::new();
    IMAGE.get_or_init(|| build_image("slim.Dockerfile", &[], SUB_ACTION_IMAGE));
    SUB_ACTION_IMAGE
}

/// The tag the tests give the default image.
pub const DEFAULT_IMAGE: &str = "localhost/wasm-oci-action-test:default";

/// The stand-in for the Dockerfile's pinned rust image, built by scripts/rust-image.sh (Debian
/// bookworm by debootstrap, the host's toolchain in the official image's layout). The script
/// keeps the image under a tag and returns at once when it exists; `.ci/run` builds it first.
pub fn rust_image() -> &'static str {
    static TAG: OnceLock<String> = OnceLock::new();
    TAG.get_or_init(|| {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let output = Command::new("bash")
            .arg(root.join("scripts/rust-image.sh"))
            .stdin(Stdio::null())
            .output()
            .expect("bash runs");
        assert!(
            output.status.success(),
            "scripts/rust-image.sh failed (it needs debootstrap and podman; `.ci/run` installs them):\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let stdout = String::from_utf8_lossy(&output.stdout);
        stdout.lines().last().expect("the script prints the tag").to_owned()
    })
}

/// `podman build` of the Dockerfile's default stage (`toolchain`, what `uses:` runs) on the
/// stand-in rust image, with the host-built binary.
pub fn default_image() -> &'static str {
    static IMAGE: OnceLock<()> = OnceLock::new();
    IMAGE.get_or_init(|| {
        // The stand-in replaces the Dockerfile's `rust` stage (the pinned base image) by name.
        let base = format!("rust=container-image://{}", rust_image());
        build_image("Dockerfile", &["--build-context", &base], DEFAULT_IMAGE)
    });
    DEFAULT_IMAGE
}

/// `podman build` of the repository's `dockerfile` with `args`, the static binary passed in as
/// the `bin` build context (the stage that compiles it is skipped), tagged `tag`.
fn build_image(dockerfile: &str, args: &[&str], tag: &str) {
    let podman = which("podman").expect("podman is installed (`.ci/run` does)");
    let context = tempfile::tempdir().unwrap();
    std::fs::copy(static_binary(), context.path().join("wasm-oci")).unwrap();
    std::fs::create_dir_all(context.path().join("etc/ssl/certs")).unwrap();
    // The empty /tmp the compile stage makes: scratch has none.
    let tmp = context.path().join("tmp");
    std::fs::create_dir(&tmp).unwrap();
    std::fs::set_permissions(&tmp, std::os::unix::fs::PermissionsExt::from_mode(0o1777)).unwrap();
    std::fs::copy(
        "/etc/ssl/certs/ca-certificates.crt",
        context.path().join("etc/ssl/certs/ca-certificates.crt"),
    )
    .expect("ca-certificates is installed");
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let output = Command::new(podman)
        .args([
            "--runtime",
            "runc",
            "build",
            "--pull=never",
            "--network=none",
        ])
        .args([
            "--ulimit",
            "nofile=20000:20000",
            "--ulimit",
            "nproc=32768:32768",
        ])
        .args(args)
        .args(["--tag", tag, "--build-context"])
        .arg(format!("bin={}", context.path().display()))
        .arg("--file")
        .arg(root.join(dockerfile))
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

/// The runner's user on GitHub's hosted runners: it owns the workspace and the `_temp` folders.
pub const RUNNER_UID: u32 = 1001;
/// The runner's user's group.
pub const RUNNER_GID: u32 = 1001;

/// One job on a hosted runner: the runner's work folder, `_work/<repo>/<repo>` (the workspace)
/// and `_work/_temp` with `_github_home`, `_github_workflow` (the event payload) and
/// `_runner_file_commands`, all owned by [`RUNNER_UID`]. Its steps run with
/// [`Job::run_container_step`], as actions/runner's `ContainerActionHandler` runs a Docker action.
pub struct Job {
    dir: tempfile::TempDir,
    /// The job's `env:` (and what earlier steps wrote to `GITHUB_ENV`), passed to every step.
    pub env: BTreeMap<String, String>,
    /// `permissions: id-token: write`: the runner then passes `ACTIONS_ID_TOKEN_REQUEST_URL` and
    /// `_TOKEN`.
    pub id_token: Option<(String, String)>,
    /// The network the step's container joins (the runner's job network stands in as the host's).
    pub network: Network,
    steps: std::cell::Cell<u32>,
}

/// What a container step left: what it printed, and its file commands read back as the runner
/// reads them.
pub struct StepRun {
    pub run: Run,
    pub outputs: BTreeMap<String, String>,
    pub env: BTreeMap<String, String>,
    pub summary: String,
}

impl Job {
    /// A job triggered by pushing the tag `v1.2.3` of `acme/multiply` at [`COMMIT`](super::COMMIT),
    /// with the push event's payload on disk.
    pub fn tag_push() -> Job {
        let job = Job {
            dir: tempfile::tempdir().unwrap(),
            env: BTreeMap::new(),
            id_token: None,
            network: Network::Host,
            steps: std::cell::Cell::new(0),
        };
        for dir in [
            job.workspace(),
            job.temp().join("_github_home"),
            job.temp().join("_github_workflow"),
            job.temp().join("_runner_file_commands"),
        ] {
            std::fs::create_dir_all(dir).unwrap();
        }
        let event = serde_json::json!({
            "ref": "refs/tags/v1.2.3",
            "before": "0000000000000000000000000000000000000000",
            "after": super::COMMIT,
            "created": true,
            "deleted": false,
            "forced": false,
            "base_ref": "refs/heads/main",
            "head_commit": {
                "id": super::COMMIT,
                "tree_id": "4b825dc642cb6eb9a060e54bf8d69288fbee4904",
                "message": "Release 1.2.3",
                "timestamp": "2024-05-01T12:00:00+02:00",
                "author": {"name": "Octo Cat", "email": "octocat@github.com", "username": "octocat"},
            },
            "repository": {
                "id": 123456,
                "name": "multiply",
                "full_name": "acme/multiply",
                "html_url": "https://github.com/acme/multiply",
                "default_branch": "main",
                "owner": {"login": "acme", "id": 654321},
            },
            "pusher": {"name": "octocat", "email": "octocat@github.com"},
            "sender": {"login": "octocat", "id": 583231},
        });
        std::fs::write(
            job.temp().join("_github_workflow/event.json"),
            serde_json::to_vec_pretty(&event).unwrap(),
        )
        .unwrap();
        job.chown_to_runner();
        job
    }

    /// `_work/acme-multiply/multiply`: `GITHUB_WORKSPACE` on the host.
    pub fn workspace(&self) -> PathBuf {
        self.dir.path().join("_work/multiply/multiply")
    }

    fn temp(&self) -> PathBuf {
        self.dir.path().join("_work/_temp")
    }

    /// Copies `src` (without `target/`) into the workspace, as `actions/checkout` leaves it: owned
    /// by the runner's user.
    pub fn checkout(&self, src: &Path) {
        super::copy_tree(src, &self.workspace());
        self.chown_to_runner();
    }

    /// Gives everything in the job's folder to the runner's user.
    pub fn chown_to_runner(&self) {
        chown_tree(&self.dir.path().join("_work"), RUNNER_UID, RUNNER_GID);
    }

    /// The host-to-container path mappings, most specific first, as the runner adds them.
    fn mappings(&self) -> Vec<(PathBuf, &'static str)> {
        vec![
            (self.workspace(), "/github/workspace"),
            (
                self.temp().join("_runner_file_commands"),
                "/github/file_commands",
            ),
            (self.temp().join("_github_workflow"), "/github/workflow"),
            (self.temp().join("_github_home"), "/github/home"),
            (self.temp(), "/github/runner_temp"),
        ]
    }

    /// `TranslateToContainerPath`: a value that is, or starts with, a mapped host folder is
    /// rewritten to the container's path; any other value passes as it is.
    fn translate(&self, value: &str) -> String {
        for (host, guest) in self.mappings() {
            let host = host.display().to_string();
            if value == host {
                return guest.to_owned();
            }
            if let Some(rest) = value.strip_prefix(&format!("{host}/")) {
                return format!("{guest}/{rest}");
            }
        }
        value.to_owned()
    }

    /// Runs `image` as a step `uses: ./` (this action.yml) with `with:` = `inputs`; see
    /// [`Job::run_action_step`].
    pub fn run_container_step(&self, image: &str, inputs: &[(&str, &str)]) -> StepRun {
        self.run_action_step("", image, inputs)
    }

    /// Runs `image` as a step `uses: ./{dir}` (that folder's action.yml, `""` the root's) with
    /// `with:` = `inputs`: `docker run` as `DockerCommandManager.DockerRun` builds it
    /// (`--workdir /github/workspace --rm`, every variable with `-e`, action.yml's `runs.env`
    /// where the step has no such variable, `GITHUB_ACTIONS=true`, `CI=true`, the five mounts,
    /// no `--entrypoint` since action.yml names none, `args` from action.yml), then reads the
    /// file commands back.
    pub fn run_action_step(&self, dir: &str, image: &str, inputs: &[(&str, &str)]) -> StepRun {
        let step = self.steps.get() + 1;
        self.steps.set(step);
        let commands = self.temp().join("_runner_file_commands");
        let file = |prefix: &str| {
            let path = commands.join(format!("{prefix}{step:08x}-0000-4000-8000-{step:012x}"));
            std::fs::write(&path, "").unwrap();
            std::os::unix::fs::chown(&path, Some(RUNNER_UID), Some(RUNNER_GID)).unwrap();
            path
        };
        let (output, summary, env_file, path_file, state_file) = (
            file("set_output_"),
            file("step_summary_"),
            file("set_env_"),
            file("add_path_"),
            file("save_state_"),
        );

        let manifest = action_manifest(dir);
        let mut env: BTreeMap<String, String> = BTreeMap::new();
        // AddInputsToEnvironment: every declared input, `with:` over action.yml's default.
        let token = "ghs_runnerIssuedJobToken0123456789abcdef";
        for (name, spec) in manifest["inputs"].as_mapping().unwrap() {
            let name = name.as_str().unwrap();
            let default = spec["default"].as_str().unwrap_or("");
            let default = if default.contains("${{ github.token }}") {
                default.replace("${{ github.token }}", token)
            } else {
                default.to_owned()
            };
            let value = inputs
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
                .unwrap_or(default);
            env.insert(
                format!("INPUT_{}", name.replace(' ', "_").to_uppercase()),
                value,
            );
        }
        for (given, _) in inputs {
            assert!(
                manifest["inputs"].get(*given).is_some(),
                "action.yml declares no input `{given}`"
            );
        }
        env.extend(self.env.clone());
        let root = self.dir.path();
        let host = |p: &Path| p.display().to_string();
        for (k, v) in [
            ("GITHUB_ACTION", "__self".to_owned()),
            ("GITHUB_ACTOR", "octocat".into()),
            ("GITHUB_ACTOR_ID", "583231".into()),
            ("GITHUB_API_URL", "http://127.0.0.1:9/".into()),
            ("GITHUB_BASE_REF", String::new()),
            ("GITHUB_ENV", host(&env_file)),
            ("GITHUB_EVENT_NAME", "push".into()),
            (
                "GITHUB_EVENT_PATH",
                host(&self.temp().join("_github_workflow/event.json")),
            ),
            ("GITHUB_GRAPHQL_URL", "http://127.0.0.1:9/graphql".into()),
            ("GITHUB_HEAD_REF", String::new()),
            ("GITHUB_JOB", "release".into()),
            ("GITHUB_OUTPUT", host(&output)),
            ("GITHUB_PATH", host(&path_file)),
            ("GITHUB_REF", "refs/tags/v1.2.3".into()),
            ("GITHUB_REF_NAME", "v1.2.3".into()),
            ("GITHUB_REF_PROTECTED", "false".into()),
            ("GITHUB_REF_TYPE", "tag".into()),
            ("GITHUB_REPOSITORY", "acme/multiply".into()),
            ("GITHUB_REPOSITORY_ID", "123456".into()),
            ("GITHUB_REPOSITORY_OWNER", "acme".into()),
            ("GITHUB_REPOSITORY_OWNER_ID", "654321".into()),
            ("GITHUB_RETENTION_DAYS", "90".into()),
            ("GITHUB_RUN_ATTEMPT", "1".into()),
            ("GITHUB_RUN_ID", "42".into()),
            ("GITHUB_RUN_NUMBER", "7".into()),
            ("GITHUB_SERVER_URL", "https://github.com".into()),
            ("GITHUB_SHA", super::COMMIT.into()),
            ("GITHUB_STATE", host(&state_file)),
            ("GITHUB_STEP_SUMMARY", host(&summary)),
            ("GITHUB_TRIGGERING_ACTOR", "octocat".into()),
            ("GITHUB_WORKFLOW", "release".into()),
            (
                "GITHUB_WORKFLOW_REF",
                "acme/multiply/.github/workflows/release.yml@refs/tags/v1.2.3".into(),
            ),
            ("GITHUB_WORKFLOW_SHA", super::COMMIT.into()),
            ("GITHUB_WORKSPACE", host(&self.workspace())),
            ("RUNNER_ARCH", "X64".into()),
            ("RUNNER_ENVIRONMENT", "github-hosted".into()),
            ("RUNNER_NAME", "GitHub Actions 1000000001".into()),
            ("RUNNER_OS", "Linux".into()),
            ("RUNNER_TEMP", host(&self.temp())),
            ("RUNNER_TOOL_CACHE", "/opt/hostedtoolcache".into()),
            ("RUNNER_WORKSPACE", host(&root.join("_work/multiply"))),
            ("HOME", host(&self.temp().join("_github_home"))),
            ("ACTIONS_RUNTIME_URL", "http://127.0.0.1:9/runtime/".into()),
            (
                "ACTIONS_RUNTIME_TOKEN",
                "runtime-token-not-for-the-action".into(),
            ),
            ("ACTIONS_RESULTS_URL", "http://127.0.0.1:9/results/".into()),
            ("ACTIONS_CACHE_URL", "http://127.0.0.1:9/cache/".into()),
        ] {
            env.insert(k.to_owned(), v);
        }
        // ContainerActionHandler: `runs.env`, evaluated, where the step has no such variable.
        if let Some(runs_env) = manifest["runs"]["env"].as_mapping() {
            for (k, v) in runs_env {
                env.entry(k.as_str().unwrap().to_owned())
                    .or_insert_with(|| v.as_str().unwrap().to_owned());
            }
        }
        if let Some((url, token)) = &self.id_token {
            env.insert("ACTIONS_ID_TOKEN_REQUEST_URL".into(), url.clone());
            env.insert("ACTIONS_ID_TOKEN_REQUEST_TOKEN".into(), token.clone());
        }

        let volume = |host: PathBuf, guest: &str| format!("{}:{guest}", host.display());
        let mut cmd = Command::new("podman");
        cmd.args(["--runtime", "runc", "run"])
            .args([
                "--ulimit",
                "nofile=20000:20000",
                "--ulimit",
                "nproc=32768:32768",
            ])
            .args(["--workdir", "/github/workspace", "--rm"]);
        // `-e NAME` with the value in podman's own environment, as the runner passes secrets.
        cmd.env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default());
        for (k, v) in &env {
            cmd.arg("-e").arg(k).env(k, self.translate(v));
        }
        cmd.args(["-e", "GITHUB_ACTIONS=true"]);
        if !env.contains_key("CI") {
            cmd.args(["-e", "CI=true"]);
        }
        cmd.arg(match self.network {
            Network::None => "--network=none",
            Network::Host => "--network=host",
        });
        for (host, guest) in self.mappings().into_iter().rev() {
            cmd.arg("-v").arg(volume(host, guest));
        }
        cmd.arg(image);
        for arg in manifest["runs"]["args"].as_sequence().unwrap() {
            cmd.arg(arg.as_str().unwrap());
        }
        let out = cmd.stdin(Stdio::null()).output().expect("podman runs");
        let run = Run {
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            output: out,
        };
        let read = |p: &Path| std::fs::read_to_string(p).unwrap();
        StepRun {
            outputs: read_file_command(&read(&output)),
            env: read_file_command(&read(&env_file)),
            summary: read(&summary),
            run,
        }
    }

    /// Runs `script` with `sh` as the runner's user in a container from `image` with the workspace
    /// mounted at `/github/workspace`: a later `run:` step of the job.
    pub fn run_as_runner_user(&self, image: &str, script: &str) -> Run {
        let output = Command::new("podman")
            .args(["--runtime", "runc", "run", "--rm", "--network=none"])
            .args([
                "--ulimit",
                "nofile=20000:20000",
                "--ulimit",
                "nproc=32768:32768",
            ])
            .arg("--user")
            .arg(format!("{RUNNER_UID}:{RUNNER_GID}"))
            .arg("-v")
            .arg(format!("{}:/github/workspace", self.workspace().display()))
            .args([
                "--workdir",
                "/github/workspace",
                "--entrypoint",
                "sh",
                image,
                "-c",
            ])
            .arg(script)
            .stdin(Stdio::null())
            .output()
            .expect("podman runs");
        Run {
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
            output,
        }
    }
}

/// The action.yml in `dir` of this repository (`""`: the root's).
fn action_manifest(dir: &str) -> serde_norway::Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(dir)
        .join("action.yml");
    serde_norway::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// A file command (`GITHUB_OUTPUT`, `GITHUB_ENV`) read as the runner's `EnvFileKeyValuePairs`
/// reads it: `NAME=VALUE` lines, and `NAME<<DELIMITER` up to a line that is exactly the
/// delimiter; a missing delimiter fails, as it fails the runner's step.
pub fn read_file_command(text: &str) -> BTreeMap<String, String> {
    let mut pairs = BTreeMap::new();
    let mut lines = text.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
    while let Some(line) = lines.next() {
        if line.is_empty() {
            continue;
        }
        let equals = line.find('=');
        let heredoc = line.find("<<");
        match (equals, heredoc) {
            (Some(e), h) if h.is_none_or(|h| e < h) => {
                pairs.insert(line[..e].to_owned(), line[e + 1..].to_owned());
            }
            (_, Some(h)) => {
                let (name, delimiter) = (&line[..h], &line[h + 2..]);
                assert!(
                    !name.is_empty() && !delimiter.is_empty(),
                    "invalid file command line `{line}`"
                );
                let mut value = Vec::new();
                loop {
                    let next = lines
                        .next()
                        .unwrap_or_else(|| panic!("matching delimiter not found `{delimiter}`"));
                    if next == delimiter {
                        break;
                    }
                    value.push(next);
                }
                pairs.insert(name.to_owned(), value.join("\n"));
            }
            _ => panic!("invalid file command line `{line}`"),
        }
    }
    pairs
}

/// `chown -R uid:gid dir`, symlinks themselves rather than what they point to.
pub fn chown_tree(dir: &Path, uid: u32, gid: u32) {
    std::os::unix::fs::lchown(dir, Some(uid), Some(gid)).unwrap();
    if dir.is_dir() && !dir.is_symlink() {
        for entry in std::fs::read_dir(dir).unwrap() {
            chown_tree(&entry.unwrap().path(), uid, gid);
        }
    }
}
