//! Build mode: runs cargo for one package and one Wasm target, takes the `.wasm` from cargo's own
//! `compiler-artifact` messages (never guessed from `target/` paths), turns compiler diagnostics
//! into located log events, and records what was built for the provenance.
//!
//! Cargo runs with `--message-format=json`: with `json-render-diagnostics` cargo prints compiler
//! diagnostics as text and leaves them out of the JSON, so their file and line would be lost.

mod diagnostics;
mod leftovers;
mod linked;
mod provenance;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use cargo_metadata::{Message, Metadata, MetadataCommand, Package, TargetKind};
use serde::Serialize;
use tracing::{debug, info};

use crate::child;
use crate::context::Env;
use crate::error::{Error, Result};
use crate::input;
use crate::owner::Owner;
use crate::reference::Digest;

pub use diagnostics::Diagnostics;
pub use linked::{CrateSource, Linked, LinkedCrate, walk};

/// What to build, parsed from the build-mode inputs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildSpec {
    /// Where cargo runs (the crate or workspace root).
    pub working_directory: PathBuf,
    /// The workspace member to build; required when several have a cdylib or bin target.
    pub package: Option<String>,
    /// The Rust target triple (`wasm32-wasip1`, `wasm32-wasip2`, `wasm32-unknown-unknown`).
    pub target: String,
    /// The cargo profile (`release`, `dev`, or a custom one).
    pub profile: String,
    /// Features to enable.
    pub features: Vec<String>,
    /// Further arguments for `cargo build`, already split.
    pub cargo_args: Vec<String>,
    /// List the crates linked into the `.wasm`, for the SBOM.
    pub sbom: bool,
}

/// What was built and with what: read by the provenance and shown in the `metadata` output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct BuildRecord {
    /// `rustc -vV` of the toolchain cargo used (version, `commit-hash:`, `host:`, LLVM).
    pub toolchain: String,
    /// The target triple.
    pub target: String,
    /// The cargo profile.
    pub profile: String,
    /// The package's features as cargo resolved them for the artifact (defaults included).
    pub features: Vec<String>,
    /// The package built.
    pub package: String,
    /// sha256 of the workspace's `Cargo.lock` after the build, if there is one.
    #[serde(serialize_with = "digest_text")]
    pub cargo_lock_digest: Option<Digest>,
    /// The crates linked into the `.wasm`, when an SBOM is asked for.
    #[serde(skip)]
    pub linked: Option<Linked>,
}

fn digest_text<S: serde::Serializer>(digest: &Option<Digest>, s: S) -> Result<S::Ok, S::Error> {
    match digest {
        Some(d) => s.collect_str(d),
        None => s.serialize_none(),
    }
}

/// A finished build: the `.wasm` cargo produced and the record of it.
#[derive(Debug, Clone)]
pub struct Built {
    /// The `.wasm` file, as cargo named it in its `compiler-artifact` message.
    pub wasm: PathBuf,
    /// What was built.
    pub record: BuildRecord,
}

/// Builds `spec` with cargo. Blocking: call it from a blocking task.
///
/// `env` is the environment cargo runs with, less every credential ([`child::env`]), so build
/// scripts and proc macros never see what the action publishes or signs with.
pub fn build(spec: &BuildSpec, env: &Env) -> Result<Built> {
    let workdir = &spec.working_directory;
    // Root in a folder another user owns (a container action in the runner's workspace): cargo
    // runs as that user, so what it writes stays theirs.
    let owner = Owner::of(workdir)?;
    if let Some(owner) = owner {
        info!(
            "running cargo as uid {} (gid {}), the owner of `{}`",
            owner.uid,
            owner.gid,
            workdir.display()
        );
    }
    let built = build_as(spec, env, owner);
    // Whether cargo succeeded or not, nothing it started runs on beside what comes next.
    leftovers::end(owner)?;
    built
}

/// [`build`], with the toolchain run as `owner`.
fn build_as(spec: &BuildSpec, env: &Env, owner: Option<Owner>) -> Result<Built> {
    let workdir = &spec.working_directory;
    let metadata = metadata(workdir, env, owner)?;
    let package = select_package(&metadata, spec.package.as_deref(), workdir)?;
    info!(
        "building package `{}` for {} ({} profile)",
        package.name, spec.target, spec.profile
    );

    let toolchain = rustc(workdir, env, owner, &["-vV"])?;
    ensure_target_installed(workdir, env, owner, &spec.target)?;

    let mut cmd = child::command("cargo", env);
    Owner::apply(owner, &mut cmd)
        .current_dir(workdir)
        .args([
            "build",
            "--message-format=json",
            "--target",
            &spec.target,
            "--profile",
            &spec.profile,
        ])
        .arg("--package")
        .arg(package.name.as_str());
    if !spec.features.is_empty() {
        cmd.arg("--features").arg(spec.features.join(","));
    }
    cmd.args(&spec.cargo_args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    debug!("running {cmd:?}");
    let mut child = cmd.spawn().map_err(|e| {
        Error::Build(format!(
            "cannot run cargo: {e}; is a Rust toolchain on PATH?"
        ))
    })?;

    // Cargo's own lines (progress, its errors) go to the log as they come; the last error is kept.
    let stderr = child.stderr.take().expect("stderr is piped");
    let stderr_thread = std::thread::spawn(move || {
        let mut last_error = None;
        for line in BufReader::new(stderr)
            .lines()
            .map_while(std::io::Result::ok)
        {
            if line.trim_start().starts_with("error") {
                last_error = Some(line.trim().to_owned());
            }
            info!("{line}");
        }
        last_error
    });

    let mut diagnostics = Diagnostics::new(metadata.workspace_root.as_std_path(), env);
    let mut wasm_files: Vec<PathBuf> = Vec::new();
    let mut features = Vec::new();
    let stdout = BufReader::new(child.stdout.take().expect("stdout is piped"));
    for message in Message::parse_stream(stdout) {
        match message {
            Ok(Message::CompilerArtifact(artifact)) if artifact.package_id == package.id => {
                if !artifact.target.kind.iter().any(is_wasm_kind) {
                    continue;
                }
                features = artifact.features.clone();
                for file in artifact
                    .filenames
                    .iter()
                    .chain(artifact.executable.as_ref())
                {
                    let file = file.clone().into_std_path_buf();
                    if file.extension().is_some_and(|e| e == "wasm") && !wasm_files.contains(&file)
                    {
                        wasm_files.push(file);
                    }
                }
            }
            Ok(Message::CompilerMessage(message)) => diagnostics.report(&message.message),
            Ok(Message::TextLine(line)) if !line.trim().is_empty() => info!("{line}"),
            Ok(_) => {}
            Err(e) => debug!("unreadable cargo message: {e}"),
        }
    }
    let status = child
        .wait()
        .map_err(|e| Error::Build(format!("cargo did not finish: {e}")))?;
    let last_error = stderr_thread.join().unwrap_or_default();

    if diagnostics.target_missing() {
        return Err(Error::TargetMissing(spec.target.clone()));
    }
    if !status.success() {
        return Err(Error::Build(match (diagnostics.errors(), last_error) {
            (0, Some(line)) => format!(
                "cargo could not build `{}`: {}",
                package.name,
                strip_error(&line)
            ),
            (0, None) => format!("cargo could not build `{}` ({status})", package.name),
            (n, _) => format!(
                "cargo could not build `{}` for {}: {n} compiler error{} (shown above)",
                package.name,
                spec.target,
                if n == 1 { "" } else { "s" }
            ),
        }));
    }

    let wasm = match wasm_files.len() {
        1 => wasm_files.remove(0),
        0 => {
            return Err(Error::Build(format!(
                "cargo built `{}` for {} but produced no .wasm file; give the library `crate-type = [\"cdylib\"]` or add a binary",
                package.name, spec.target
            )));
        }
        _ => {
            let names: Vec<String> = wasm_files
                .iter()
                .map(|p| {
                    p.file_name()
                        .unwrap_or_default()
                        .to_string_lossy()
                        .into_owned()
                })
                .collect();
            return Err(Error::Build(format!(
                "cargo built several .wasm files for `{}` ({}); choose one with `cargo-args: --bin NAME` or `--lib`",
                package.name,
                names.join(", ")
            )));
        }
    };
    info!("cargo produced {}", wasm.display());

    let lock = metadata.workspace_root.as_std_path().join("Cargo.lock");
    let cargo_lock_digest = match std::fs::read(&lock) {
        Ok(bytes) => Some(Digest::of(&bytes)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(Error::io("read", lock, e)),
    };
    let linked = match spec.sbom {
        true => Some(linked::linked_crates(spec, env, owner, package, &features)?),
        false => None,
    };
    features.sort();
    Ok(Built {
        wasm,
        record: BuildRecord {
            toolchain: toolchain.trim().to_owned(),
            target: spec.target.clone(),
            profile: spec.profile.clone(),
            features,
            package: package.name.to_string(),
            cargo_lock_digest,
            linked,
        },
    })
}

/// `cargo metadata --no-deps` of the workspace around `workdir`.
fn metadata(workdir: &Path, env: &Env, owner: Option<Owner>) -> Result<Metadata> {
    let mut cmd = MetadataCommand::new()
        .cargo_path("cargo")
        .current_dir(workdir)
        .no_deps()
        .cargo_command();
    let stdout = run_tool(
        Owner::apply(owner, &mut cmd),
        env,
        "cargo",
        &format!("`cargo metadata` failed in `{}`", workdir.display()),
    )?;
    MetadataCommand::parse(stdout)
        .map_err(|e| Error::Build(format!("cannot read `cargo metadata` output: {e}")))
}

/// A library built as `cdylib` or a binary: the targets that become a `.wasm`.
fn is_wasm_kind(kind: &TargetKind) -> bool {
    matches!(kind, TargetKind::CDyLib | TargetKind::Bin)
}

fn has_wasm_target(package: &Package) -> bool {
    package
        .targets
        .iter()
        .any(|t| t.kind.iter().any(is_wasm_kind))
}

/// The package to build: the one named, or the only member with a cdylib or bin target among
/// those `cargo build` would build here.
fn select_package<'m>(
    metadata: &'m Metadata,
    wanted: Option<&str>,
    workdir: &Path,
) -> Result<&'m Package> {
    let members: Vec<&Package> = metadata.workspace_packages();
    if let Some(name) = wanted {
        return members
            .into_iter()
            .find(|p| p.name.as_str() == name)
            .ok_or_else(|| {
                let names: Vec<String> = metadata
                    .workspace_packages()
                    .iter()
                    .map(|p| format!("`{}`", p.name))
                    .collect();
                Error::input(
                    input::PACKAGE,
                    format!(
                        "no package `{name}` in the workspace at `{}`; its members are {}",
                        workdir.display(),
                        names.join(", ")
                    ),
                )
            });
    }
    let in_scope: Vec<&Package> = if metadata.workspace_default_members.is_available() {
        metadata.workspace_default_packages()
    } else {
        members
    };
    let candidates: Vec<&Package> = in_scope
        .into_iter()
        .filter(|p| has_wasm_target(p))
        .collect();
    match candidates.as_slice() {
        [one] => Ok(one),
        [] => Err(Error::Build(format!(
            "no package in `{}` has a cdylib or bin target to build; give the library `crate-type = [\"cdylib\"]`, or set `path` to a .wasm file",
            workdir.display()
        ))),
        many => {
            let names: Vec<String> = many.iter().map(|p| format!("`{}`", p.name)).collect();
            Err(Error::input(
                input::PACKAGE,
                format!(
                    "the workspace at `{}` has several packages to build ({}); choose one with `package`",
                    workdir.display(),
                    names.join(", ")
                ),
            ))
        }
    }
}

/// Fails with the `rustup target add` hint when the toolchain in `workdir` lacks `target`.
fn ensure_target_installed(
    workdir: &Path,
    env: &Env,
    owner: Option<Owner>,
    target: &str,
) -> Result<()> {
    let sysroot = rustc(workdir, env, owner, &["--print", "sysroot"])?;
    let lib = Path::new(sysroot.trim())
        .join("lib/rustlib")
        .join(target)
        .join("lib");
    if lib.is_dir() {
        Ok(())
    } else {
        Err(Error::TargetMissing(target.to_owned()))
    }
}

/// Runs `rustc ARGS` in `workdir` (so a `rust-toolchain.toml` there applies) and returns stdout.
fn rustc(workdir: &Path, env: &Env, owner: Option<Owner>, args: &[&str]) -> Result<String> {
    let rustc = env.get("RUSTC").map(String::as_str).unwrap_or("rustc");
    run_tool(
        Owner::apply(owner, &mut child::command(rustc, env))
            .args(args)
            .current_dir(workdir),
        env,
        &format!("`{rustc}`"),
        &format!("`{rustc} {}` failed", args.join(" ")),
    )
}

/// Runs a toolchain command with the build's environment and no stdin; returns its stdout, or
/// an error naming `tool` (cannot start) or `failure` with the first error line of its stderr.
fn run_tool(cmd: &mut Command, env: &Env, tool: &str, failure: &str) -> Result<String> {
    let output = child::isolate(cmd, env).output().map_err(|e| {
        Error::Build(format!(
            "cannot run {tool}: {e}; is a Rust toolchain on PATH?"
        ))
    })?;
    if !output.status.success() {
        return Err(Error::Build(format!(
            "{failure}: {}",
            one_line(&String::from_utf8_lossy(&output.stderr))
        )));
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

fn one_line(text: &str) -> String {
    text.lines()
        .map(str::trim)
        .find(|l| l.starts_with("error"))
        .or_else(|| text.lines().map(str::trim).find(|l| !l.is_empty()))
        .map(strip_error)
        .unwrap_or_default()
        .to_owned()
}

fn strip_error(line: &str) -> &str {
    line.trim()
        .strip_prefix("error:")
        .map(str::trim)
        .unwrap_or(line.trim())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_serializes_with_digest_text() {
        let record = BuildRecord {
            toolchain: "rustc 1.91.0".into(),
            target: "wasm32-wasip1".into(),
            profile: "release".into(),
            features: vec!["default".into()],
            package: "multiply".into(),
            cargo_lock_digest: Some(Digest::of(b"lock")),
            linked: None,
        };
        let json = serde_json::to_value(&record).unwrap();
        assert_eq!(json["cargo-lock-digest"], Digest::of(b"lock").to_string());
        assert_eq!(json["package"], "multiply");
    }
}
