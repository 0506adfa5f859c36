//! A Kubernetes node for the tests: containerd from Debian's package, started privately (its own
//! root, state, socket and config), with runwasi's wasmtime shim as the `wasmtime` runtime
//! handler, driven through the CRI as kubelet drives it: PullImage, RunPodSandbox,
//! CreateContainer, StartContainer, then the container's log read as kubelet's log reader does.
//!
//! `.ci/run` unpacks containerd 1.6.20 (bookworm) and 1.7 (trixie) under [`NODE_DIR`] and builds
//! the shim there (tests/kubernetes/shim). A missing containerd, shim, runc or musl-gcc fails the
//! test with what to run. The node needs root (mounts, namespaces), as CI runs.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use hyper_util::rt::TokioIo;
use k8s_cri::v1::image_service_client::ImageServiceClient;
use k8s_cri::v1::runtime_service_client::RuntimeServiceClient;
use k8s_cri::v1::{
    ContainerConfig, ContainerMetadata, ContainerState, ContainerStatusRequest,
    CreateContainerRequest, ImageSpec, LinuxPodSandboxConfig, LinuxSandboxSecurityContext,
    NamespaceMode, NamespaceOption, PodSandboxConfig, PodSandboxMetadata, PullImageRequest,
    RemovePodSandboxRequest, RunPodSandboxRequest, StartContainerRequest, StopPodSandboxRequest,
};
use serde_json::json;
use tonic::transport::{Channel, Endpoint, Uri};

use super::raw::push_raw;
use super::{Registry, sha256, which};

/// Where `.ci/run` puts containerd's unpacked packages and the shim.
pub const NODE_DIR: &str = "/usr/local/lib/wasm-oci-node";

/// The runtime handler pods ask for; the shim is `containerd-shim-wasmtime-v1`.
pub const HANDLER: &str = "wasmtime";

/// Which of Debian's containerd packages runs the node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Containerd {
    /// 1.6.20, Debian bookworm's: cannot unpack the CNCF artifact.
    V1_6,
    /// 1.7, Debian trixie's.
    V1_7,
}

impl Containerd {
    fn dir(self) -> PathBuf {
        Path::new(NODE_DIR).join(match self {
            Containerd::V1_6 => "containerd-1.6",
            Containerd::V1_7 => "containerd-1.7",
        })
    }

    /// The version `containerd --version` must print.
    fn version_prefix(self) -> &'static str {
        match self {
            Containerd::V1_6 => " 1.6.20",
            Containerd::V1_7 => " 1.7.",
        }
    }
}

/// A running containerd with the CRI plugin; stopped, with its pods, on drop.
pub struct Node {
    child: Child,
    dir: tempfile::TempDir,
    runtime: tokio::runtime::Runtime,
    channel: Channel,
    pods: Vec<String>,
}

/// What a pod's container did: its log lines (the text after the CRI's timestamp, stream and
/// tag) and its exit code.
#[derive(Debug)]
pub struct Ran {
    pub lines: Vec<String>,
    pub exit_code: i32,
}

impl Node {
    /// Starts containerd `version` pulling from `registry` over plain HTTP, its sandbox image a
    /// static pause binary pushed there.
    pub fn start(version: Containerd, registry: &Registry) -> Node {
        assert!(
            rustix::process::geteuid().is_root(),
            "the Kubernetes node needs root (mounts, namespaces, cgroups): run the tests as root, as CI does"
        );
        let containerd = version.dir().join("usr/bin/containerd");
        assert!(
            containerd.is_file(),
            "containerd is not unpacked at {}: run `bash .ci/run --install-only`",
            containerd.display()
        );
        let printed = Command::new(&containerd).arg("--version").output().unwrap();
        let printed = String::from_utf8_lossy(&printed.stdout).into_owned();
        assert!(
            printed.contains(version.version_prefix()),
            "{} is not containerd{}: {printed}",
            containerd.display(),
            version.version_prefix()
        );
        let shim_dir = Path::new(NODE_DIR).join("bin");
        assert!(
            shim_dir.join("containerd-shim-wasmtime-v1").is_file(),
            "the wasmtime shim is not built at {}: run `bash .ci/run --install-only`",
            shim_dir.display()
        );
        assert!(
            which("runc").is_some(),
            "runc is not installed: run `bash .ci/run --install-only`"
        );
        let sandbox_image = pause_image(registry);
        let dir = tempfile::Builder::new().prefix("node").tempdir().unwrap();
        let root = dir.path();
        let hosts = root.join("certs.d").join(registry.host());
        std::fs::create_dir_all(&hosts).unwrap();
        std::fs::write(
            hosts.join("hosts.toml"),
            format!(
                "server = \"http://{host}\"\n\n[host.\"http://{host}\"]\n  capabilities = [\"pull\", \"resolve\"]\n",
                host = registry.host()
            ),
        )
        .unwrap();
        let socket = root.join("containerd.sock");
        let cri = "plugins.\"io.containerd.grpc.v1.cri\"";
        let config = format!(
            r#"version = 2
root = "{root}/root"
state = "{root}/state"

[grpc]
  address = "{socket}"

[{cri}]
  sandbox_image = "{sandbox_image}"
  restrict_oom_score_adj = true
  disable_apparmor = true

[{cri}.containerd]
  snapshotter = "overlayfs"
  default_runtime_name = "runc"

[{cri}.containerd.runtimes.runc]
  runtime_type = "io.containerd.runc.v2"

[{cri}.containerd.runtimes.{HANDLER}]
  runtime_type = "io.containerd.{HANDLER}.v1"

[{cri}.registry]
  config_path = "{root}/certs.d"
"#,
            root = root.display(),
            socket = socket.display(),
        );
        std::fs::write(root.join("config.toml"), config).unwrap();
        let log = std::fs::File::create(root.join("containerd.log")).unwrap();
        let path =
            std::env::join_paths([shim_dir, version.dir().join("usr/bin")].into_iter().chain(
                std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()),
            ))
            .unwrap();
        let child = Command::new(&containerd)
            .arg("--config")
            .arg(root.join("config.toml"))
            .env("PATH", path)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("containerd starts");
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let mut child = child;
        let channel = match connect(&runtime, &mut child, &socket) {
            Ok(channel) => channel,
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                let log = std::fs::read_to_string(root.join("containerd.log")).unwrap_or_default();
                panic!("{e}; containerd's log:\n{log}");
            }
        };
        Node {
            child,
            dir,
            runtime,
            channel,
            pods: Vec::new(),
        }
    }

    /// containerd's own log.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("containerd.log")).unwrap_or_default()
    }

    /// PullImage, as kubelet calls it before a pod starts: the error's message when it fails.
    pub fn pull(&self, image: &str) -> Result<String, String> {
        let mut images = ImageServiceClient::new(self.channel.clone());
        let request = PullImageRequest {
            image: Some(ImageSpec {
                image: image.to_owned(),
                ..Default::default()
            }),
            ..Default::default()
        };
        self.runtime
            .block_on(images.pull_image(request))
            .map(|r| r.into_inner().image_ref)
            .map_err(|status| status.message().to_owned())
    }

    /// A pod with one container of `image`, `command` as its pod spec's `command:` (none: the
    /// image's entrypoint), on the `wasmtime` handler and the node's network (no CNI here):
    /// RunPodSandbox, PullImage, CreateContainer, StartContainer, then its log once it exited.
    /// The error's message when a call fails.
    pub fn run_pod(&mut self, name: &str, image: &str, command: &[&str]) -> Result<Ran, String> {
        let logs = self.dir.path().join("pods").join(name);
        std::fs::create_dir_all(&logs).unwrap();
        let sandbox_config = PodSandboxConfig {
            metadata: Some(PodSandboxMetadata {
                name: name.to_owned(),
                uid: format!("uid-{name}"),
                namespace: "default".to_owned(),
                attempt: 0,
            }),
            hostname: name.to_owned(),
            log_directory: logs.display().to_string(),
            linux: Some(LinuxPodSandboxConfig {
                security_context: Some(LinuxSandboxSecurityContext {
                    namespace_options: Some(NamespaceOption {
                        network: NamespaceMode::Node as i32,
                        pid: NamespaceMode::Pod as i32,
                        ipc: NamespaceMode::Pod as i32,
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        };
        let mut runtime = RuntimeServiceClient::new(self.channel.clone());
        let pod = self
            .runtime
            .block_on(runtime.run_pod_sandbox(RunPodSandboxRequest {
                config: Some(sandbox_config.clone()),
                runtime_handler: HANDLER.to_owned(),
            }))
            .map_err(|s| format!("RunPodSandbox: {}", s.message()))?
            .into_inner()
            .pod_sandbox_id;
        self.pods.push(pod.clone());
        self.pull(image).map_err(|e| format!("PullImage: {e}"))?;
        let container = self
            .runtime
            .block_on(runtime.create_container(CreateContainerRequest {
                pod_sandbox_id: pod.clone(),
                config: Some(ContainerConfig {
                    metadata: Some(ContainerMetadata {
                        name: "app".to_owned(),
                        attempt: 0,
                    }),
                    image: Some(ImageSpec {
                        image: image.to_owned(),
                        ..Default::default()
                    }),
                    command: command.iter().map(|c| c.to_string()).collect(),
                    log_path: "app.log".to_owned(),
                    ..Default::default()
                }),
                sandbox_config: Some(sandbox_config),
            }))
            .map_err(|s| format!("CreateContainer: {}", s.message()))?
            .into_inner()
            .container_id;
        self.runtime
            .block_on(runtime.start_container(StartContainerRequest {
                container_id: container.clone(),
            }))
            .map_err(|s| format!("StartContainer: {}", s.message()))?;
        let deadline = Instant::now() + Duration::from_secs(60);
        let exit_code = loop {
            let status = self
                .runtime
                .block_on(runtime.container_status(ContainerStatusRequest {
                    container_id: container.clone(),
                    verbose: false,
                }))
                .map_err(|s| format!("ContainerStatus: {}", s.message()))?
                .into_inner()
                .status
                .expect("a container status");
            if status.state == ContainerState::ContainerExited as i32 {
                break status.exit_code;
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "the container did not exit within a minute; containerd's log:\n{}",
                    self.log()
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        let log = std::fs::read_to_string(logs.join("app.log")).unwrap_or_default();
        Ok(Ran {
            lines: log.lines().map(cri_log_text).collect(),
            exit_code,
        })
    }
}

/// Waits for containerd's socket, then connects the CRI client to it.
fn connect(
    runtime: &tokio::runtime::Runtime,
    child: &mut Child,
    socket: &Path,
) -> Result<Channel, String> {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !socket.exists() {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!("containerd exited ({status})"));
        }
        if Instant::now() > deadline {
            return Err("containerd did not open its socket within 30s".to_owned());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let socket = socket.to_owned();
    let connector = tower::service_fn(move |_: Uri| {
        let socket = socket.clone();
        async move {
            let stream = tokio::net::UnixStream::connect(socket).await?;
            Ok::<_, std::io::Error>(TokioIo::new(stream))
        }
    });
    runtime
        .block_on(Endpoint::from_static("http://[::]").connect_with_connector(connector))
        .map_err(|e| format!("the CRI client cannot connect to containerd's socket: {e}"))
}

/// The text of one CRI log line: `<RFC 3339 time> <stream> <P|F> <text>`.
fn cri_log_text(line: &str) -> String {
    line.splitn(4, ' ').nth(3).unwrap_or_default().to_owned()
}

impl Drop for Node {
    fn drop(&mut self) {
        // The pods first, so their shims exit and unmount; then containerd.
        let mut runtime = RuntimeServiceClient::new(self.channel.clone());
        for pod in std::mem::take(&mut self.pods) {
            let _ = self
                .runtime
                .block_on(runtime.stop_pod_sandbox(StopPodSandboxRequest {
                    pod_sandbox_id: pod.clone(),
                }));
            let _ = self
                .runtime
                .block_on(runtime.remove_pod_sandbox(RemovePodSandboxRequest {
                    pod_sandbox_id: pod,
                }));
        }
        // SIGTERM: containerd unmounts its snapshots' roots as it stops.
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The sandbox ("pause") image: a static binary that waits for its signal, built once with
/// musl-gcc, pushed to `registry` as a one-layer image for this machine's platform. Returns
/// its reference by digest.
fn pause_image(registry: &Registry) -> String {
    let binary = pause_binary();
    let mut layer = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_size(binary.len() as u64);
    header.set_mode(0o755);
    header.set_mtime(0);
    header.set_cksum();
    layer.append_data(&mut header, "pause", binary).unwrap();
    let layer = layer.into_inner().unwrap();
    let architecture = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    };
    let config = serde_json::to_vec(&json!({
        "architecture": architecture,
        "os": "linux",
        "config": {"Entrypoint": ["/pause"]},
        "rootfs": {"type": "layers", "diff_ids": [sha256(&layer)]},
    }))
    .unwrap();
    let digest = push_raw(
        registry,
        "node/pause",
        "3",
        ("application/vnd.oci.image.config.v1+json", &config),
        &[(&layer, "application/vnd.oci.image.layer.v1.tar", None)],
        json!({}),
    );
    format!("{}/node/pause@{digest}", registry.host())
}

fn pause_binary() -> &'static [u8] {
    static BINARY: OnceLock<Vec<u8>> = OnceLock::new();
    BINARY.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let source = dir.path().join("pause.c");
        std::fs::write(
            &source,
            "#include <signal.h>\n#include <unistd.h>\n\
             static void stop(int sig) { (void)sig; _exit(0); }\n\
             int main(void) { signal(SIGTERM, stop); signal(SIGINT, stop); for (;;) pause(); }\n",
        )
        .unwrap();
        let binary = dir.path().join("pause");
        let status = Command::new("musl-gcc")
            .args(["-static", "-Os", "-o"])
            .arg(&binary)
            .arg(&source)
            .status()
            .expect("musl-gcc (musl-tools) is installed: run `bash .ci/run --install-only`");
        assert!(status.success(), "musl-gcc builds the pause binary");
        std::fs::read(binary).unwrap()
    })
}
