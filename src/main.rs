//! The `wasm-oci` binary: parses the front door, runs the core, owns the exit code and prints
//! the error once. `wasm-oci action` is the container's entrypoint; the rest is the CLI.

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;
use wasm_oci::action::{self, log, runner};
use wasm_oci::cli::{Cli, Command};
use wasm_oci::context::{Env, process_env};
use wasm_oci::request::{Inputs, PushRequest};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let env = process_env();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("the async runtime starts");
    match cli.command {
        Command::Action => run_action(&runtime, &env),
        Command::Push(args) => run_cli(&runtime, &env, *args),
        Command::Pull(args) => run_read(&env, || {
            let request = wasm_oci::pull::PullRequest::from_inputs(&args.into_inputs()?)?;
            let outcome = runtime.block_on(wasm_oci::pull::pull(&request, &env))?;
            Ok(outcome.wasm.path.display().to_string())
        }),
        Command::Verify(args) => run_read(&env, || {
            let request = wasm_oci::verify::VerifyRequest::from_inputs(&args.into_inputs()?)?;
            let report = runtime.block_on(wasm_oci::verify::verify(&request, &env))?;
            let report = report.into_result()?;
            Ok(report.digest.map(|d| d.to_string()).unwrap_or_default())
        }),
        Command::Inspect(args) => run_read(&env, || {
            let request = wasm_oci::resolve::ReadRequest::from_inputs(&args.into_inputs()?)?;
            let document = runtime.block_on(wasm_oci::inspect::inspect(&request, &env))?;
            Ok(serde_json::to_string_pretty(&document).expect("JSON values serialize"))
        }),
    }
}

/// Runs a CLI command whose result is one text for stdout; errors go to stderr once.
#[allow(clippy::print_stdout, clippy::print_stderr)]
fn run_read(env: &Env, command: impl FnOnce() -> wasm_oci::Result<String>) -> ExitCode {
    log::init(log::Mode::Cli, env);
    match command() {
        Ok(result) => {
            println!("{result}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {}", action::error_chain(&e));
            ExitCode::FAILURE
        }
    }
}

#[allow(clippy::print_stdout)]
fn run_action(runtime: &tokio::runtime::Runtime, env: &Env) -> ExitCode {
    let inputs = Inputs::from_action_env(env);
    // Masks go out before any other line, so nothing after can leak a secret.
    action::mask_secrets(&inputs, &mut std::io::stdout().lock());
    log::init(log::Mode::Action, env);
    match runtime.block_on(action::run(&inputs, env)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let message = action::error_chain(&e);
            let line = runner::error_line(e.title(), &wasm_oci::secret::redact(&message));
            let _ = writeln!(std::io::stdout().lock(), "{line}");
            ExitCode::FAILURE
        }
    }
}

#[allow(clippy::print_stdout, clippy::print_stderr)]
fn run_cli(
    runtime: &tokio::runtime::Runtime,
    env: &Env,
    args: wasm_oci::cli::PushArgs,
) -> ExitCode {
    log::init(log::Mode::Cli, env);
    let result = args.into_inputs().and_then(|inputs| {
        let request = PushRequest::from_inputs(&inputs)?;
        runtime.block_on(wasm_oci::push::push(&request, env))
    });
    match result {
        Ok(outcome) => {
            println!("{}", outcome.digest);
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!(
                "error: {}",
                wasm_oci::secret::redact(&action::error_chain(&e))
            );
            ExitCode::FAILURE
        }
    }
}
