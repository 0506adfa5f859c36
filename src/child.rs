//! The programs the action starts (cargo and what it runs, rustc, git): each gets its `Command`
//! here, with an environment that holds no credential, so a build script, a proc macro or a git
//! hook of the code being built never reads what the action was given to publish with.
//!
//! Left out: the action's inputs (`INPUT_*`) and the CLI's flags (`WASM_OCI_*`), the runner's
//! tokens and service URLs (with `ACTIONS_ID_TOKEN_REQUEST_*` a dependency mints the job's OIDC
//! token and signs as the release workflow), `GITHUB_TOKEN`, `DOCKER_CONFIG`, the runner's file
//! commands (`GITHUB_OUTPUT`, `GITHUB_ENV`, ...), and any variable whose value holds a secret the
//! action masks. Everything else (a workflow's own `env:`) stays.

use std::ffi::OsStr;
use std::path::Path;
use std::process::{Command, Stdio};

use chrono::{DateTime, Utc};

use crate::context::Env;

/// Variables that carry credentials or reach the runner's services.
const WITHHELD: &[&str] = &[
    "GITHUB_TOKEN",
    "ACTIONS_ID_TOKEN_REQUEST_TOKEN",
    "ACTIONS_ID_TOKEN_REQUEST_URL",
    "ACTIONS_RUNTIME_TOKEN",
    "ACTIONS_RUNTIME_URL",
    "ACTIONS_CACHE_URL",
    "ACTIONS_RESULTS_URL",
    "DOCKER_CONFIG",
    // The runner's file commands: what the build wrote there would be read as the action's
    // outputs, environment or summary. Leaving the paths out does not keep a build from the
    // files (they belong to the runner's user, whom cargo runs as); `build::leftovers` ends what
    // the build left running, so nothing writes to them after cargo.
    "GITHUB_OUTPUT",
    "GITHUB_ENV",
    "GITHUB_PATH",
    "GITHUB_STATE",
    "GITHUB_STEP_SUMMARY",
];

/// Prefixes of variables that are the action's inputs or the CLI's flags.
const WITHHELD_PREFIXES: &[&str] = &["INPUT_", "WASM_OCI_"];

/// Whether a child process may see the variable `name` set to `value`.
fn passes(name: &str, value: &str) -> bool {
    !WITHHELD.contains(&name)
        && !WITHHELD_PREFIXES.iter().any(|p| name.starts_with(p))
        && !crate::secret::appears_in(value)
}

/// The environment of a child process: `env` less every credential (see the module header).
pub fn env(env: &Env) -> Env {
    env.iter()
        .filter(|(k, v)| passes(k, v))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// `program`, to run with [`env`] of `env` and no stdin.
pub fn command(program: impl AsRef<OsStr>, env: &Env) -> Command {
    let mut cmd = Command::new(program);
    isolate(&mut cmd, env);
    cmd
}

/// Gives `cmd` (made elsewhere, e.g. by `cargo_metadata`) [`env`] of `env` and no stdin.
pub fn isolate<'c>(cmd: &'c mut Command, env: &Env) -> &'c mut Command {
    cmd.env_clear().envs(self::env(env)).stdin(Stdio::null())
}

/// The committer time of `rev` (or HEAD) in `workdir`, when `git` and a repository are at hand.
pub fn git_commit_time(workdir: &Path, rev: Option<&str>, env: &Env) -> Option<DateTime<Utc>> {
    let output = command("git", env)
        .args(["-c", "safe.directory=*", "log", "-1", "--format=%ct"])
        .arg(rev.unwrap_or("HEAD"))
        .arg("--")
        .current_dir(workdir)
        .stderr(Stdio::null())
        .output()
        .ok()?;
    if !output.status.success() {
        return None;
    }
    let secs: i64 = String::from_utf8_lossy(&output.stdout)
        .trim()
        .parse()
        .ok()?;
    DateTime::from_timestamp(secs, 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_stay_out_and_the_rest_goes_in() {
        crate::secret::register("masked-value-1234");
        let env: Env = [
            ("INPUT_PASSWORD", "x"),
            ("WASM_OCI_PASSWORD", "y"),
            ("GITHUB_TOKEN", "ghs_1"),
            ("ACTIONS_ID_TOKEN_REQUEST_URL", "https://token"),
            ("DOCKER_CONFIG", "/home/me/.docker"),
            ("GITHUB_OUTPUT", "/github/file_commands/set_output_1"),
            ("COPY_OF_SECRET", "prefix-masked-value-1234"),
            ("MY_SETTING", "kept"),
            ("PATH", "/bin"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        let names: Vec<String> = self::env(&env).into_keys().collect();
        assert_eq!(names, ["MY_SETTING", "PATH"]);
    }
}
