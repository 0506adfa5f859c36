//! A long transfer says how it goes: a download that takes longer than the interval (10 s)
//! logs a line with the bytes, the share and the rate, in the action's log and on the CLI's
//! stderr when that is not a terminal. The registry is an in-process fake that paces the
//! layer over 12 s, which no real registry can be made to do.

use crate::common;

use std::time::Duration;

use common::fakes::pacing_server;
use common::raw::descriptor;
use common::*;

/// The example module as a plain CNCF artifact: manifest, config, layer.
fn artifact() -> (Vec<u8>, Vec<u8>, Vec<u8>) {
    let wasm = std::fs::read(multiply_wasm()).unwrap();
    let config = br#"{"architecture":"wasm","os":"wasip1","layerDigests":[]}"#.to_vec();
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": descriptor("application/vnd.wasm.config.v0+json", &config),
        "layers": [descriptor("application/wasm", &wasm)],
    }))
    .unwrap();
    (manifest, config, wasm)
}

/// The progress lines in `text`: `download of app.wasm: X of Y, N percent, R/s`.
fn progress_lines(text: &str) -> Vec<&str> {
    text.lines()
        .filter(|l| l.contains("download of app.wasm: "))
        .collect()
}

fn check_line(line: &str, size: usize) {
    let total = if size < 1024 {
        format!("{size} B")
    } else {
        format!("{:.1} KiB", size as f64 / 1024.0)
    };
    assert!(line.contains(&format!(" of {total}, ")), "{line}");
    let percent: u32 = line
        .split_once(&format!(" of {total}, "))
        .and_then(|(_, rest)| rest.split_once(" percent, "))
        .map(|(p, _)| p.parse().unwrap())
        .unwrap_or_else(|| panic!("no percent in {line}"));
    // At 10 s of 12 the paced layer is most of the way, not done.
    assert!((50..100).contains(&percent), "{line}");
    assert!(line.ends_with("/s"), "{line}");
}

#[test]
fn a_slow_pull_logs_its_progress_in_the_action_log() {
    let (manifest, config, wasm) = artifact();
    let digest = sha256(&manifest);
    let host = pacing_server(
        "acme/app",
        manifest,
        config,
        wasm.clone(),
        Duration::from_secs(12),
    );
    let ws = Workspace::new();
    let image = format!("{host}/acme/app@{digest}");
    let run = ws.run_action(&ws.action_env(&[
        ("command", "pull"),
        ("image", &image),
        ("insecure", "true"),
        ("output", "app.wasm"),
    ]));
    assert!(run.success(), "{run:?}");
    let lines = progress_lines(&run.stdout);
    assert_eq!(lines.len(), 1, "one line at 10 s: {run:?}");
    assert!(
        !lines[0].starts_with("::"),
        "a plain log line: {}",
        lines[0]
    );
    check_line(lines[0], wasm.len());
    assert_eq!(std::fs::read(ws.root().join("app.wasm")).unwrap(), wasm);
}

#[test]
fn a_slow_pull_logs_its_progress_on_the_clis_stderr() {
    let (manifest, config, wasm) = artifact();
    let digest = sha256(&manifest);
    let host = pacing_server(
        "acme/app",
        manifest,
        config,
        wasm.clone(),
        Duration::from_secs(12),
    );
    let ws = Workspace::new();
    let image = format!("{host}/acme/app@{digest}");
    let run = ws.run_cli(&["pull", &image, "--insecure", "-o", "app.wasm"], &[]);
    assert!(run.success(), "{run:?}");
    assert_eq!(run.stdout.trim(), "app.wasm", "stdout has the result only");
    let lines = progress_lines(&run.stderr);
    assert_eq!(lines.len(), 1, "{run:?}");
    check_line(lines[0], wasm.len());
}

#[test]
fn a_quick_pull_logs_no_progress() {
    let (manifest, config, wasm) = artifact();
    let digest = sha256(&manifest);
    let host = pacing_server(
        "acme/app",
        manifest,
        config,
        wasm,
        Duration::from_millis(200),
    );
    let ws = Workspace::new();
    let image = format!("{host}/acme/app@{digest}");
    let run = ws.run_cli(&["pull", &image, "--insecure", "-o", "app.wasm"], &[]);
    assert!(run.success(), "{run:?}");
    assert_eq!(progress_lines(&run.stderr), Vec::<&str>::new());
}
