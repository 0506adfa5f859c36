//! Secret hygiene checks: runs with every log turned up (`RUNNER_DEBUG=1`, `RUST_LOG=trace`)
//! and a grep of everything the run left behind for the secrets.

use std::collections::BTreeMap;

use super::{Run, Workspace};

/// `env` with debug and trace logging on, as a user chasing a problem would run.
pub fn loud(mut env: BTreeMap<String, String>) -> BTreeMap<String, String> {
    env.insert("RUNNER_DEBUG".into(), "1".into());
    env.insert("RUST_LOG".into(), "trace".into());
    env
}

/// Fails if any secret appears in stdout, stderr, the outputs file or the step summary,
/// other than in the `::add-mask::` lines that tell the runner to hide it.
pub fn assert_no_secrets(run: &Run, ws: &Workspace, secrets: &[&str]) {
    let outputs = std::fs::read_to_string(ws.output_file()).unwrap_or_default();
    let summary = ws.summary();
    let stdout: String = run
        .stdout
        .lines()
        .filter(|l| !l.starts_with("::add-mask::"))
        .collect::<Vec<_>>()
        .join("\n");
    for secret in secrets {
        for (name, text) in [
            ("stdout", &stdout),
            ("stderr", &run.stderr),
            ("outputs", &outputs),
            ("summary", &summary),
        ] {
            assert!(
                !text.contains(secret),
                "secret `{secret}` leaked into {name}:\n{}",
                text.lines()
                    .filter(|l| l.contains(secret))
                    .collect::<Vec<_>>()
                    .join("\n")
            );
        }
    }
}

/// Whether `secret` was masked with `::add-mask::` before any other line mentioning anything
/// else was printed... or at least before the first line that is not a mask.
pub fn masked_early(run: &Run, secret: &str) -> bool {
    run.stdout
        .lines()
        .take_while(|l| l.starts_with("::add-mask::"))
        .any(|l| l == format!("::add-mask::{secret}"))
}

/// Whether `secret` was masked at all.
pub fn masked(run: &Run, secret: &str) -> bool {
    run.stdout
        .lines()
        .any(|l| l == format!("::add-mask::{secret}"))
}
