//! A run of the binary that cannot hang the test run: killed, and the test failed, past its
//! time limit. For tests of what must end on its own (a transfer that trickles or stalls).

use std::time::Duration;

use super::{BIN, Run, Workspace};

/// Runs the CLI with `args` and `env`, killed (and the test failed) if it runs past `limit`.
pub fn run_within(ws: &Workspace, args: &[&str], env: &[(&str, &str)], limit: Duration) -> Run {
    let mut child = std::process::Command::new(BIN)
        .args(args)
        .current_dir(ws.root())
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", ws.dir.path().join("home"))
        .envs(env.iter().copied())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + limit;
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let output = child.wait_with_output().unwrap();
            panic!(
                "still running after {limit:?}: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let output = child.wait_with_output().unwrap();
    Run {
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        output,
    }
}
