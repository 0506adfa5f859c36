//! The digest runs in a pod: the module the action pushed, pulled by a Kubernetes node
//! (containerd's CRI, as kubelet calls it, with runwasi's wasmtime shim) by the `digest` output,
//! prints its line into the container's log. The CNCF artifact on containerd 1.7 with the pod's
//! `command:`; the image form with no `command:` on 1.6.20 and 1.7; and the CNCF artifact
//! refused by 1.6.20, which is why the image form exists.

use crate::common;

use common::node::{Containerd, Node};
use common::*;

/// What the pushed module prints.
const LINE: &str = "hello from the wasm-oci pod";

/// A WASI preview 1 command that writes [`LINE`] to stdout.
fn hello_wasm() -> Vec<u8> {
    let line = format!("{LINE}\n");
    wat::parse_str(format!(
        r#"(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) "{line}")
  (func (export "_start")
    (i32.store (i32.const 0) (i32.const 16))
    (i32.store (i32.const 4) (i32.const {len}))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))))"#,
        line = line.escape_default(),
        len = line.len(),
    ))
    .unwrap()
}

/// Pushes `hello.wasm` with the action in `format` and returns `image@digest` from the
/// `digest` output, as a deploy job would pin it.
fn push_hello(registry: &Registry, repo: &str, format: &str) -> String {
    let ws = Workspace::new();
    ws.write("hello.wasm", &hello_wasm());
    let image = format!("{}/{repo}", registry.host());
    let run = ws.run_action(&ws.action_env(&[
        ("image", &image),
        ("path", "hello.wasm"),
        ("insecure", "true"),
        ("format", format),
    ]));
    assert!(run.success(), "{run:?}");
    format!("{image}@{}", ws.outputs()["digest"])
}

#[test]
fn the_cncf_artifact_runs_in_a_pod_on_containerd_1_7_with_the_module_as_command() {
    let registry = Registry::start();
    let image = push_hello(&registry, "acme/hello", "cncf");
    let mut node = Node::start(Containerd::V1_7, &registry);
    let ran = node
        .run_pod("cncf", &image, &["hello.wasm"])
        .unwrap_or_else(|e| panic!("{e}\ncontainerd's log:\n{}", node.log()));
    assert_eq!(ran.lines, [LINE], "{}", node.log());
    assert_eq!(ran.exit_code, 0);
}

#[test]
fn the_image_form_runs_in_a_pod_with_no_command_on_containerd_1_6_20() {
    let registry = Registry::start();
    let image = push_hello(&registry, "acme/hello", "image");
    let mut node = Node::start(Containerd::V1_6, &registry);
    let ran = node
        .run_pod("image", &image, &[])
        .unwrap_or_else(|e| panic!("{e}\ncontainerd's log:\n{}", node.log()));
    assert_eq!(ran.lines, [LINE], "{}", node.log());
    assert_eq!(ran.exit_code, 0);
}

#[test]
fn the_image_form_runs_in_a_pod_with_no_command_on_containerd_1_7() {
    let registry = Registry::start();
    let image = push_hello(&registry, "acme/hello", "image");
    let mut node = Node::start(Containerd::V1_7, &registry);
    let ran = node
        .run_pod("image", &image, &[])
        .unwrap_or_else(|e| panic!("{e}\ncontainerd's log:\n{}", node.log()));
    assert_eq!(ran.lines, [LINE], "{}", node.log());
    assert_eq!(ran.exit_code, 0);
}

/// Why the image form exists: containerd before 1.6.25 cannot unpack the CNCF artifact.
#[test]
fn containerd_1_6_20_cannot_pull_the_cncf_artifact() {
    let registry = Registry::start();
    let image = push_hello(&registry, "acme/hello", "cncf");
    let node = Node::start(Containerd::V1_6, &registry);
    let refused = node.pull(&image).unwrap_err();
    assert!(
        refused.contains("mismatched image rootfs and manifest layers"),
        "{refused}"
    );
}
