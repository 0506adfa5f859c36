//! Test harness shared by the integration tests: the real CNCF registry (Debian's
//! `docker-registry`) started per test on a free loopback port, the `wasm-oci` binary driven as
//! the runner drives it, and a small independent registry reader.
//!
//! A missing `docker-registry` fails the test: `.ci/run` installs it.

#![allow(dead_code, unreachable_pub)]

pub mod container;
pub mod deadline;
pub mod github_fake;
pub mod leaks;
pub mod node;
pub mod proxy;
pub mod sigstore;
pub mod tls;
pub mod token;

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

pub mod fakes;
pub mod leb;
pub mod raw;
pub mod storage;

pub const BIN: &str = env!("CARGO_BIN_EXE_wasm-oci");

/// A valid core module whose bulk is one data segment of `data_len` bytes, followed by `tail`
/// (which may make it invalid): large files that validate fast.
pub fn module_with_data(data_len: usize, tail: &[u8]) -> Vec<u8> {
    use leb::leb;
    let segment = [
        &[1u8, 0, 0x41, 0, 0x0b][..],
        &leb(data_len),
        &vec![0x5a; data_len],
    ]
    .concat();
    [
        &b"\0asm\x01\0\0\0"[..],
        &[5, 4, 1, 0, 0xff, 0x01][..],
        &[11][..],
        &leb(segment.len()),
        &segment,
        tail,
    ]
    .concat()
}
/// The commit `Workspace::action_env` gives as `GITHUB_SHA`.
pub const COMMIT: &str = "0123456789abcdef0123456789abcdef01234567";
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// How the registry checks clients.
#[derive(Debug, Clone)]
pub enum Auth {
    None,
    /// htpasswd with a bcrypt entry.
    Htpasswd {
        user: String,
        password: String,
    },
}

/// What else a registry is started with: TLS from a test CA, or token auth.
#[derive(Default)]
pub struct RegistryOptions {
    /// Serve HTTPS with this certificate and key.
    pub tls: Option<tls::ServerCert>,
    /// Token auth through this issuer (replaces `auth`).
    pub token: Option<std::sync::Arc<token::TokenIssuer>>,
    /// Answer blob reads with a redirect to object storage that serves the registry's files.
    pub redirect: bool,
}

/// A running `docker-registry`, stopped on drop.
pub struct Registry {
    child: Child,
    pub port: u16,
    pub dir: tempfile::TempDir,
    pub auth: Auth,
    /// `https` with `tls`, else `http`.
    pub scheme: &'static str,
    /// The CA that signed the registry's certificate, for readers.
    pub ca_pem: Option<Vec<u8>>,
    /// The token issuer, for readers to get a token.
    pub token: Option<std::sync::Arc<token::TokenIssuer>>,
    /// Where blob reads are redirected to, with `redirect`.
    pub storage: Option<storage::ObjectStorage>,
}

impl Registry {
    pub fn start() -> Self {
        Self::start_with(Auth::None)
    }

    pub fn with_htpasswd(user: &str, password: &str) -> Self {
        Self::start_with(Auth::Htpasswd {
            user: user.to_owned(),
            password: password.to_owned(),
        })
    }

    pub fn start_with(auth: Auth) -> Self {
        Self::start_with_options(auth, RegistryOptions::default())
    }

    pub fn start_with_options(auth: Auth, options: RegistryOptions) -> Self {
        let binary = which("docker-registry").unwrap_or_else(|| {
            panic!(
                "docker-registry is not installed: run `apt-get install docker-registry apache2-utils` (`.ci/run` does)"
            )
        });
        let dir = tempfile::tempdir().unwrap();
        let auth_yaml = match &auth {
            Auth::None => String::new(),
            Auth::Htpasswd { user, password } => {
                let file = dir.path().join("htpasswd");
                let status = Command::new("htpasswd")
                    .args(["-Bbc"])
                    .arg(&file)
                    .args([user, password])
                    .stderr(Stdio::null())
                    .status()
                    .expect("htpasswd (apache2-utils) is installed");
                assert!(status.success());
                format!(
                    "auth:\n  htpasswd:\n    realm: test\n    path: {}\n",
                    file.display()
                )
            }
        };
        let data = dir.path().join("data");
        let log_path = dir.path().join("registry.log");
        let auth_yaml = match &options.token {
            Some(issuer) => issuer.registry_yaml(),
            None => auth_yaml,
        };
        let tls_yaml = options
            .tls
            .as_ref()
            .map(|t| {
                format!(
                    "  tls:\n    certificate: {}\n    key: {}\n",
                    t.cert.display(),
                    t.key.display()
                )
            })
            .unwrap_or_default();
        let storage = options
            .redirect
            .then(|| storage::ObjectStorage::start(data.clone()));
        let redirect_yaml = storage
            .as_ref()
            .map(|s| {
                format!(
                    "middleware:\n  storage:\n    - name: redirect\n      options:\n        baseurl: {}\n",
                    s.url()
                )
            })
            .unwrap_or_default();
        for _attempt in 0..5 {
            let port = free_port();
            let config = dir.path().join("config.yml");
            std::fs::write(
                &config,
                format!(
                    "version: 0.1\nlog:\n  level: info\n  accesslog:\n    disabled: false\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n  secret: test-secret\n{tls_yaml}{auth_yaml}{redirect_yaml}",
                    data.display()
                ),
            )
            .unwrap();
            let log = std::fs::File::create(&log_path).unwrap();
            let mut child = Command::new(&binary)
                .arg("serve")
                .arg(&config)
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .spawn()
                .expect("docker-registry starts");
            let scheme = if options.tls.is_some() {
                "https"
            } else {
                "http"
            };
            let ca_pem = options.tls.as_ref().map(|t| t.ca_pem.clone());
            if wait_ready(&mut child, scheme, port, ca_pem.as_deref()) {
                return Registry {
                    child,
                    port,
                    dir,
                    auth,
                    scheme,
                    ca_pem,
                    token: options.token.clone(),
                    storage,
                };
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!(
            "docker-registry did not start; its log:\n{}",
            std::fs::read_to_string(&log_path).unwrap_or_default()
        );
    }

    /// `127.0.0.1:PORT`
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The registry's own log (access log included).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }

    /// Whether the registry's log has a line containing `needle`, waiting a moment for it: the
    /// access log is written just after the response.
    pub fn logged(&self, needle: &str) -> bool {
        let deadline = Instant::now() + Duration::from_secs(2);
        loop {
            if self.log().contains(needle) {
                return true;
            }
            if Instant::now() > deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// How many blob upload sessions the registry has seen so far.
    pub fn upload_count(&self) -> usize {
        // An upload session opened (202); a refused one (401) stores nothing.
        self.log()
            .lines()
            .filter(|l| l.contains("\"POST /v2/") && l.contains("/blobs/uploads/"))
            .filter(|l| l.contains("\" 202 "))
            .count()
    }

    /// How many `PATCH`es to upload sessions in `repo` the registry has seen so far: each
    /// carries a layer streamed before its digest was known.
    pub fn patch_count(&self, repo: &str) -> usize {
        let request = format!("\"PATCH /v2/{repo}/blobs/uploads/");
        self.log().lines().filter(|l| l.contains(&request)).count()
    }

    /// An HTTP client that trusts the registry's CA, if it has one.
    pub fn client(&self) -> reqwest::blocking::Client {
        let mut builder = reqwest::blocking::Client::builder();
        if let Some(pem) = &self.ca_pem {
            builder = builder.add_root_certificate(reqwest::Certificate::from_pem(pem).unwrap());
        }
        builder.build().unwrap()
    }

    fn get(&self, path: &str, accept: &str) -> reqwest::blocking::Response {
        let mut req = self
            .client()
            .get(format!("{}://{}{path}", self.scheme, self.host()))
            .header("Accept", accept);
        if let Auth::Htpasswd { user, password } = &self.auth {
            req = req.basic_auth(user, Some(password));
        }
        if let Some(issuer) = &self.token {
            // /v2/<repo>/{manifests,blobs,tags}/...
            let rest = path.trim_start_matches("/v2/");
            let repo = ["/manifests/", "/blobs/", "/tags/"]
                .iter()
                .find_map(|m| rest.find(m).map(|i| &rest[..i]))
                .unwrap_or(rest);
            req = req.bearer_auth(issuer.mint("reader", repo, &["pull"]));
        }
        req.send().unwrap()
    }

    /// The raw manifest bytes and content type for `reference` (tag or digest), if any.
    pub fn manifest(&self, repo: &str, reference: &str) -> Option<(Vec<u8>, String)> {
        let resp = self.get(
            &format!("/v2/{repo}/manifests/{reference}"),
            &format!("{OCI_MANIFEST}, {OCI_INDEX}"),
        );
        if resp.status().as_u16() == 404 {
            return None;
        }
        assert!(
            resp.status().is_success(),
            "GET manifest: {}",
            resp.status()
        );
        let content_type = resp
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        Some((resp.bytes().unwrap().to_vec(), content_type))
    }

    /// A blob's bytes.
    /// The HTTP status of a HEAD for a blob: 200 when stored, 404 when not.
    pub fn blob_status(&self, repo: &str, digest: &str) -> u16 {
        self.client()
            .head(format!(
                "{}://{}/v2/{repo}/blobs/{digest}",
                self.scheme,
                self.host()
            ))
            .send()
            .unwrap()
            .status()
            .as_u16()
    }

    pub fn blob(&self, repo: &str, digest: &str) -> Vec<u8> {
        let resp = self.get(&format!("/v2/{repo}/blobs/{digest}"), "*/*");
        assert!(
            resp.status().is_success(),
            "GET blob {digest}: {}",
            resp.status()
        );
        resp.bytes().unwrap().to_vec()
    }

    /// The repository's tags without the OCI referrers fallback tags (`sha256-<hex>`).
    pub fn image_tags(&self, repo: &str) -> Vec<String> {
        let mut tags: Vec<String> = self
            .tags(repo)
            .into_iter()
            .filter(|t| !t.starts_with("sha256-"))
            .collect();
        tags.sort();
        tags
    }

    /// The repository's tags (empty when the repository does not exist).
    pub fn tags(&self, repo: &str) -> Vec<String> {
        let resp = self.get(&format!("/v2/{repo}/tags/list"), "application/json");
        if resp.status().as_u16() == 404 {
            return Vec::new();
        }
        let v: serde_json::Value = resp.json().unwrap();
        v["tags"]
            .as_array()
            .map(|a| a.iter().map(|t| t.as_str().unwrap().to_owned()).collect())
            .unwrap_or_default()
    }
}

/// Waits until the registry answers `/v2/` (200, or 401 with auth), or gives up after 15 s.
fn wait_ready(child: &mut Child, scheme: &str, port: u16, ca_pem: Option<&[u8]>) -> bool {
    let mut builder = reqwest::blocking::Client::builder();
    if let Some(pem) = ca_pem {
        builder = builder.add_root_certificate(reqwest::Certificate::from_pem(pem).unwrap());
    }
    let client = builder.build().unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return false;
        }
        if let Ok(resp) = client
            .get(format!("{scheme}://127.0.0.1:{port}/v2/"))
            .send()
            && matches!(resp.status().as_u16(), 200 | 401)
        {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join(name))
            .find(|p| p.is_file())
    })
}

pub fn sha256(bytes: &[u8]) -> String {
    use sha2::Digest;
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(bytes)))
}

/// A workspace like the runner's `/github/workspace`, with output and summary files.
pub struct Workspace {
    pub dir: tempfile::TempDir,
}

impl Workspace {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("ws")).unwrap();
        std::fs::create_dir_all(dir.path().join("home")).unwrap();
        std::fs::create_dir_all(dir.path().join("file_commands")).unwrap();
        Workspace { dir }
    }

    pub fn root(&self) -> PathBuf {
        self.dir.path().join("ws")
    }

    pub fn write(&self, rel: &str, bytes: &[u8]) -> PathBuf {
        let path = self.root().join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, bytes).unwrap();
        path
    }

    pub fn output_file(&self) -> PathBuf {
        self.dir.path().join("file_commands/output")
    }

    pub fn summary_file(&self) -> PathBuf {
        self.dir.path().join("file_commands/summary")
    }

    /// Outputs written so far, parsed as the runner parses them.
    pub fn outputs(&self) -> BTreeMap<String, String> {
        let text = std::fs::read_to_string(self.output_file()).unwrap_or_default();
        wasm_oci::action::runner::parse_outputs(&text)
            .into_iter()
            .collect()
    }

    pub fn summary(&self) -> String {
        std::fs::read_to_string(self.summary_file()).unwrap_or_default()
    }

    /// The environment the runner gives a container action: every declared input (empty when
    /// omitted), the GitHub context, and the file commands.
    pub fn action_env(&self, inputs: &[(&str, &str)]) -> BTreeMap<String, String> {
        let mut env = BTreeMap::new();
        for input in wasm_oci::input::ALL {
            env.insert(input.action_var(), String::new());
        }
        for (name, value) in inputs {
            env.insert(format!("INPUT_{}", name.to_uppercase()), value.to_string());
        }
        for (k, v) in [
            ("GITHUB_ACTIONS", "true"),
            ("CI", "true"),
            ("GITHUB_SERVER_URL", "https://github.com"),
            ("GITHUB_API_URL", "http://127.0.0.1:9/"),
            ("GITHUB_REPOSITORY", "acme/multiply"),
            ("GITHUB_REPOSITORY_OWNER", "acme"),
            ("GITHUB_SHA", "0123456789abcdef0123456789abcdef01234567"),
            ("GITHUB_REF", "refs/tags/v1.2.3"),
            ("GITHUB_REF_NAME", "v1.2.3"),
            ("GITHUB_REF_TYPE", "tag"),
            ("GITHUB_RUN_ID", "42"),
            ("GITHUB_RUN_ATTEMPT", "1"),
            ("GITHUB_ACTOR", "octocat"),
            ("GITHUB_EVENT_NAME", "push"),
            (
                "GITHUB_WORKFLOW_REF",
                "acme/multiply/.github/workflows/release.yml@refs/tags/v1.2.3",
            ),
            ("SOURCE_DATE_EPOCH", "1700000000"),
        ] {
            env.insert(k.to_owned(), v.to_owned());
        }
        env.insert("GITHUB_WORKSPACE".into(), self.root().display().to_string());
        env.insert(
            "HOME".into(),
            self.dir.path().join("home").display().to_string(),
        );
        env.insert(
            "GITHUB_OUTPUT".into(),
            self.output_file().display().to_string(),
        );
        env.insert(
            "GITHUB_STEP_SUMMARY".into(),
            self.summary_file().display().to_string(),
        );
        env
    }

    /// Copies examples/multiply's module into the workspace as `multiply.wasm` and returns the
    /// runner's environment for pushing it to `image`, with `inputs` besides.
    pub fn multiply_env(&self, image: &str, inputs: &[(&str, &str)]) -> BTreeMap<String, String> {
        std::fs::copy(multiply_wasm(), self.root().join("multiply.wasm")).unwrap();
        let mut all = vec![("image", image), ("path", "multiply.wasm")];
        all.extend_from_slice(inputs);
        self.action_env(&all)
    }

    /// Runs `wasm-oci action` as the runner would: only these variables, cwd = the workspace.
    pub fn run_action(&self, env: &BTreeMap<String, String>) -> Run {
        run(Command::new(BIN).arg("action"), &self.root(), env)
    }

    /// Runs the CLI with `args` and `env`, cwd = the workspace.
    pub fn run_cli(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        let env: BTreeMap<String, String> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .chain([(
                "HOME".to_owned(),
                self.dir.path().join("home").display().to_string(),
            )])
            .collect();
        run(Command::new(BIN).args(args), &self.root(), &env)
    }
}

/// What a run of the binary printed.
pub struct Run {
    pub output: Output,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn success(&self) -> bool {
        self.output.status.success()
    }

    /// The `::error` lines on stdout.
    pub fn error_lines(&self) -> Vec<&str> {
        self.stdout
            .lines()
            .filter(|l| l.starts_with("::error"))
            .collect()
    }

    pub fn all(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }
}

impl std::fmt::Debug for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
            self.output.status.code(),
            self.stdout,
            self.stderr
        )
    }
}

fn run(cmd: &mut Command, cwd: &Path, env: &BTreeMap<String, String>) -> Run {
    cmd.current_dir(cwd)
        .env_clear()
        .envs(env)
        .stdin(Stdio::null());
    if !env.contains_key("PATH") {
        cmd.env("PATH", std::env::var("PATH").unwrap_or_default());
    }
    let output = cmd.output().expect("wasm-oci runs");
    Run {
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        output,
    }
}

/// `examples/multiply` built for wasm32-wasip1 (once per test binary).
pub fn multiply_wasm() -> &'static Path {
    static WASM: OnceLock<PathBuf> = OnceLock::new();
    WASM.get_or_init(|| {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let target_dir = root.join("target/examples");
        let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .args([
                "build",
                "--release",
                "--target",
                "wasm32-wasip1",
                "--manifest-path",
            ])
            .arg(root.join("examples/multiply/Cargo.toml"))
            .arg("--target-dir")
            .arg(&target_dir)
            .status()
            .expect("cargo runs");
        assert!(
            status.success(),
            "building examples/multiply failed: run `rustup target add wasm32-wasip1`"
        );
        target_dir.join("wasm32-wasip1/release/multiply.wasm")
    })
}

/// A small component exporting an interface and importing one, written as text.
pub fn component_wasm() -> Vec<u8> {
    wat::parse_str(
        r#"(component
            (import "wasi:random/random@0.2.0" (instance
                (export "get-random-u64" (func (result u64)))))
            (core module $m (func (export "run") (result i32) i32.const 0))
            (core instance $i (instantiate $m))
            (func $run (result (result)) (canon lift (core func $i "run")))
            (instance $inst (export "run" (func $run)))
            (export "wasi:cli/run@0.2.0" (instance $inst))
        )"#,
    )
    .unwrap()
}

/// What a build-mode run needs to find the host's Rust toolchain when the env is cleared: the
/// rustup and cargo homes (the test's HOME is a temp dir).
pub fn toolchain_env() -> Vec<(String, String)> {
    let home = std::env::var("HOME").unwrap_or_else(|_| "/root".into());
    let mut env = Vec::new();
    for (var, default) in [("RUSTUP_HOME", ".rustup"), ("CARGO_HOME", ".cargo")] {
        let value = std::env::var(var).unwrap_or_else(|_| format!("{home}/{default}"));
        env.push((var.to_owned(), value));
    }
    if let Ok(toolchain) = std::env::var("RUSTUP_TOOLCHAIN") {
        env.push(("RUSTUP_TOOLCHAIN".to_owned(), toolchain));
    }
    env
}

/// Copies the directory tree `src` to `dst`, leaving out `target/`.
pub fn copy_tree(src: &Path, dst: &Path) {
    std::fs::create_dir_all(dst).unwrap();
    for entry in std::fs::read_dir(src).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name();
        if name == "target" {
            continue;
        }
        let to = dst.join(&name);
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &to);
        } else {
            std::fs::copy(entry.path(), &to).unwrap();
        }
    }
}

/// `examples/NAME` of this repository.
pub fn example_dir(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples")
        .join(name)
}
