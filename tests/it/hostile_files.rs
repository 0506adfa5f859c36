//! Files named by inputs are read bounded and without blocking: `/dev/zero` or a FIFO as a key,
//! a trust config, a CA file or a docker config fails at once with one clear error, instead of
//! growing the process without end or waiting forever. In action mode a key outside the
//! workspace and `RUNNER_TEMP` is refused with the same error whether or not it exists.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common;

use common::*;

/// How long a refusal may take; reading `/dev/zero` or waiting on a FIFO takes forever.
const PROMPTLY: Duration = Duration::from_secs(30);

/// Runs the binary with `args` in `cwd` with only `env`, killed (and the test failed) when it
/// has not finished [`PROMPTLY`].
fn run_promptly(args: &[&str], cwd: &Path, env: &BTreeMap<String, String>) -> Run {
    let mut child = Command::new(BIN)
        .args(args)
        .current_dir(cwd)
        .env_clear()
        .envs(env)
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > PROMPTLY {
            child.kill().unwrap();
            let _ = child.wait();
            panic!("`wasm-oci {}` still ran after {PROMPTLY:?}", args.join(" "));
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

fn mkfifo(path: &Path) {
    let status = Command::new("mkfifo").arg(path).status().unwrap();
    assert!(status.success());
}

fn cli_env(ws: &Workspace, pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    let mut env: BTreeMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    env.insert(
        "HOME".into(),
        ws.dir.path().join("home").display().to_string(),
    );
    env.insert("SOURCE_DATE_EPOCH".into(), "0".into());
    env
}

#[test]
fn dev_zero_and_a_fifo_as_file_inputs_fail_at_once() {
    let ws = Workspace::new();
    std::fs::copy(multiply_wasm(), ws.root().join("m.wasm")).unwrap();
    let fifo = ws.root().join("fifo");
    mkfifo(&fifo);
    let fifo = fifo.display().to_string();
    for special in ["/dev/zero", fifo.as_str()] {
        let cases: [(&str, Vec<&str>); 4] = [
            (
                "signing-key",
                vec!["push", "m.wasm", "oci:out", "--signing-key", special],
            ),
            (
                "sigstore-trust-config",
                vec![
                    "push",
                    "m.wasm",
                    "oci:out",
                    "--sigstore-trust-config",
                    special,
                ],
            ),
            (
                "public-key",
                vec!["verify", "oci:out:v1", "--public-key", special],
            ),
            (
                "ca-file",
                vec![
                    "push",
                    "m.wasm",
                    "127.0.0.1:9/acme/app:v1",
                    "--ca-file",
                    special,
                ],
            ),
        ];
        for (input, args) in cases {
            let run = run_promptly(&args, &ws.root(), &cli_env(&ws, &[]));
            assert!(!run.success(), "{input} {special}: {run:?}");
            let lines: Vec<&str> = run.stderr.lines().filter(|l| !l.is_empty()).collect();
            assert_eq!(lines.len(), 1, "{input} {special}: {run:?}");
            assert!(lines[0].contains(input), "{input} {special}: {run:?}");
        }
    }
    assert!(
        !ws.root().join("out").exists(),
        "a refused push wrote a layout"
    );
}

#[test]
fn a_fifo_as_the_docker_config_fails_at_once() {
    let ws = Workspace::new();
    std::fs::copy(multiply_wasm(), ws.root().join("m.wasm")).unwrap();
    let config = ws.dir.path().join("docker");
    std::fs::create_dir_all(&config).unwrap();
    mkfifo(&config.join("config.json"));
    let image = format!("127.0.0.1:{}/acme/app:v1", free_port());
    let env = cli_env(&ws, &[("DOCKER_CONFIG", config.to_str().unwrap())]);
    let run = run_promptly(&["push", "m.wasm", &image, "--insecure"], &ws.root(), &env);
    assert!(!run.success(), "{run:?}");
    assert!(run.stderr.contains("docker config"), "{run:?}");
    assert!(run.stderr.contains("not a regular file"), "{run:?}");
}

#[test]
fn a_key_outside_the_workspace_gets_one_error_whether_or_not_it_exists() {
    let ws = Workspace::new();
    let outside = ws.dir.path().join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    // A file outside: its existence must not show in the error.
    std::fs::write(outside.join("key.pem"), b"a key on the runner").unwrap();
    let error = |input: &str, file: &str| {
        let path = outside.join(file).display().to_string();
        let (command, image) = match input {
            "public-key" => ("verify", "oci:out:v1"),
            _ => ("push", "oci:out"),
        };
        std::fs::copy(multiply_wasm(), ws.root().join("m.wasm")).unwrap();
        let env = ws.action_env(&[
            ("command", command),
            ("image", image),
            ("path", "m.wasm"),
            (input, &path),
        ]);
        let run = run_promptly(&["action"], &ws.root(), &env);
        assert!(!run.success(), "{run:?}");
        let errors = run.error_lines();
        assert_eq!(errors.len(), 1, "{run:?}");
        errors[0].replace(file, "FILE")
    };
    for input in ["public-key", "signing-key"] {
        let there = error(input, "key.pem");
        let absent = error(input, "absent.pem");
        assert_eq!(there, absent, "{input}");
        assert!(there.contains(input), "{there}");
        assert!(there.contains("workspace"), "{there}");
    }
}
