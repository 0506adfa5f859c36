//! The `wasm-oci` binary: parses the front door, runs the core, owns the exit code and prints
//! the error once. `wasm-oci action` is the container's entrypoint; the rest is the CLI.

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;
use wasm_oci::action::{self, log, runner};
use wasm_oci::cli::{Cli, Command};
use wasm_oci::context::{Env, non_utf8_vars, process_env};
use wasm_oci::inputs::{Inputs, refuse_non_utf8};
use wasm_oci::push::PushRequest;

fn main() -> ExitCode {
    let cli = Cli::try_parse().unwrap_or_else(|e| {
        // clap says only "invalid UTF-8 was detected": name the variable when one is to blame.
        let var = non_utf8_vars()
            .into_iter()
            .find(|v| v.starts_with("WASM_OCI_"));
        match var {
            Some(var) if e.kind() == clap::error::ErrorKind::InvalidUtf8 => {
                #[allow(clippy::print_stderr)]
                {
                    eprintln!("error: the value of `{var}` is not UTF-8 text; give it as UTF-8");
                }
                std::process::exit(2)
            }
            _ => e.exit(),
        }
    });
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
            let request =
                wasm_oci::pull::PullRequest::from_inputs(&cli_inputs(args.into_inputs())?, &env)?;
            let outcome = runtime.block_on(wasm_oci::pull::pull(&request))?;
            Ok(outcome.wasm.path.display().to_string())
        }),
        Command::Verify(args) => run_read(&env, || {
            let request = wasm_oci::verify::VerifyRequest::from_inputs(
                &cli_inputs(args.into_inputs())?,
                &env,
                None,
            )?;
            let report = runtime.block_on(wasm_oci::verify::verify(&request))?;
            let report = report.into_result()?;
            Ok(report.digest.map(|d| d.to_string()).unwrap_or_default())
        }),
        Command::Inspect(args) => run_read(&env, || {
            let request = wasm_oci::request::ReadRequest::from_inputs(
                &cli_inputs(args.into_inputs())?,
                &env,
            )?;
            let document = runtime.block_on(wasm_oci::inspect::inspect(&request))?;
            Ok(serde_json::to_string_pretty(&document).expect("JSON values serialize"))
        }),
    }
}

/// The CLI's inputs, their secrets registered first: an error that repeats one (a password
/// also written into the image reference) is then redacted.
fn cli_inputs(inputs: wasm_oci::Result<Inputs>) -> wasm_oci::Result<Inputs> {
    let inputs = inputs?;
    for secret in inputs.secrets() {
        wasm_oci::secret::register(secret);
    }
    Ok(inputs)
}

/// Runs a CLI command whose result is one text for stdout; errors go to stderr once.
#[allow(clippy::print_stdout, clippy::print_stderr)]
fn run_read(env: &Env, command: impl FnOnce() -> wasm_oci::Result<String>) -> ExitCode {
    log::init(log::Mode::Cli, env);
    match refuse_non_utf8(&non_utf8_vars(), false).and_then(|()| command()) {
        Ok(result) => {
            println!("{result}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{}", cli_error(&e));
            ExitCode::FAILURE
        }
    }
}

/// The CLI's one error line: the chain, secrets redacted, nothing the runner would read as a
/// workflow command when the CLI runs in a `run:` step.
fn cli_error(e: &wasm_oci::Error) -> String {
    let chain = wasm_oci::secret::redact(&wasm_oci::error::error_chain(e)).into_owned();
    runner::defuse(&format!("error: {chain}"))
}

#[allow(clippy::print_stdout)]
fn run_action(runtime: &tokio::runtime::Runtime, env: &Env) -> ExitCode {
    let inputs = Inputs::from_action_env(env);
    // Masks go out before any other line, so nothing after can leak a secret.
    action::mask_secrets(&inputs, &mut std::io::stdout().lock());
    log::init(log::Mode::Action, env);
    let result = refuse_non_utf8(&non_utf8_vars(), true)
        .and_then(|()| runtime.block_on(action::run(&inputs, env)));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let message = wasm_oci::error::error_chain(&e);
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
    let result = refuse_non_utf8(&non_utf8_vars(), false).and_then(|()| {
        let inputs = cli_inputs(args.into_inputs())?;
        let request = PushRequest::from_inputs(&inputs, env)?;
        let outcome = runtime.block_on(wasm_oci::push::push(&request, env))?;
        outcome.complete()?;
        Ok(outcome)
    });
    match result {
        Ok(outcome) => {
            println!("{}", outcome.digest);
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{}", cli_error(&e));
            ExitCode::FAILURE
        }
    }
}
