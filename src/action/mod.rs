//! The GitHub Action front door: `wasm-oci action`, the image's entrypoint. Reads `INPUT_*`
//! and `GITHUB_*` from an env map, runs the same core as the CLI, and reports through the
//! runner's channels (outputs file, step summary, workflow commands).

pub mod log;
pub mod runner;

use std::io::Write;
use std::path::PathBuf;

use crate::context::Env;
use crate::error::{Error, Result};
use crate::input;
use crate::inputs::Inputs;
use crate::push::PushRequest;

/// Prints `::add-mask::` for every secret input. Call before anything else is printed.
/// Secrets found later (docker config, credential helpers, minted tokens) are masked as they
/// are found, through the hook this installs.
pub fn mask_secrets(inputs: &Inputs, out: &mut impl Write) {
    for secret in inputs.secrets() {
        for line in runner::mask_lines(secret) {
            let _ = writeln!(out, "{line}");
        }
        crate::secret::register(secret);
    }
    // A signing key given as a file path: its contents are the secret.
    let working_directory =
        std::path::Path::new(inputs.get(input::WORKING_DIRECTORY).unwrap_or_default());
    if let Some(Ok(key)) = inputs.get(input::SIGNING_KEY).map(|value| {
        crate::push::request::read_signing_key(
            value,
            working_directory,
            inputs.confinement.as_ref(),
        )
    }) {
        for line in runner::mask_lines(key.expose()) {
            let _ = writeln!(out, "{line}");
        }
        crate::secret::register(key.expose());
    }
    crate::secret::set_mask_hook(|secret| {
        let mut out = std::io::stdout().lock();
        for line in runner::mask_lines(secret) {
            let _ = writeln!(out, "{line}");
        }
    });
}

/// Runs the action. On failure, returns the error for the caller to report.
pub async fn run(inputs: &Inputs, env: &Env) -> Result<()> {
    if Inputs::github_token_from_env(env) {
        tracing::info!("github-token: the input is empty; using GITHUB_TOKEN from the environment");
    }
    let command = inputs.get(input::COMMAND).unwrap_or_default();
    match command {
        "push" => {
            let request = PushRequest::from_inputs(inputs, env)?;
            let outcome = crate::push::push(&request, env).await?;
            if let Some(path) = env_path(env, "GITHUB_OUTPUT") {
                runner::write_outputs(&path, &outcome.outputs())
                    .map_err(|e| Error::io("write", &path, e))?;
            }
            if let Some(path) = env_path(env, "GITHUB_STEP_SUMMARY") {
                runner::append_summary(&path, &outcome.summary())
                    .map_err(|e| Error::io("write", &path, e))?;
            }
            // The outputs and the summary name the registries that got it; then the step fails
            // when one did not.
            outcome.complete()?;
            tracing::info!("pushed {}", outcome.reference());
            Ok(())
        }
        "pull" => {
            let request = crate::pull::PullRequest::from_inputs(inputs, env)?;
            let outcome = crate::pull::pull(&request).await?;
            report(env, &outcome.outputs(), &outcome.summary())?;
            tracing::info!(
                "pulled {} to {}",
                outcome.image.pinned(&outcome.digest),
                outcome.wasm.path.display()
            );
            Ok(())
        }
        "verify" => {
            let job_repository = crate::context::GithubContext::from_env(env).repository_url();
            let request = crate::verify::VerifyRequest::from_inputs(inputs, env, job_repository)?;
            let outcome = crate::verify::verify(&request).await?;
            // The summary tells what was checked whether or not it all held; outputs only when it did.
            let outputs = if outcome.verified() {
                outcome.outputs()
            } else {
                Vec::new()
            };
            report(env, &outputs, &outcome.summary())?;
            let outcome = outcome.into_result()?;
            tracing::info!("verified {}", outcome.reference());
            Ok(())
        }
        other => Err(Error::input(
            input::COMMAND,
            format!("`{other}` is not a command; use `push`, `pull` or `verify`"),
        )),
    }
}

/// Writes outputs to `GITHUB_OUTPUT` and Markdown to `GITHUB_STEP_SUMMARY`.
fn report(env: &Env, outputs: &[(&str, String)], summary: &str) -> Result<()> {
    if let Some(path) = env_path(env, "GITHUB_OUTPUT") {
        runner::write_outputs(&path, outputs).map_err(|e| Error::io("write", &path, e))?;
    }
    if let Some(path) = env_path(env, "GITHUB_STEP_SUMMARY") {
        runner::append_summary(&path, summary).map_err(|e| Error::io("write", &path, e))?;
    }
    Ok(())
}

fn env_path(env: &Env, name: &str) -> Option<PathBuf> {
    env.get(name)
        .filter(|v| !v.trim().is_empty())
        .map(PathBuf::from)
}
