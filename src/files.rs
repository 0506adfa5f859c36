//! Files and directories the inputs name. A key, a trust config, a CA file or a docker config
//! is read only when it is a regular file of at most [`MAX_INPUT_FILE`] bytes, opened without
//! blocking (a FIFO or `/dev/zero` is refused, not waited on or read forever). In action mode
//! keys must lie inside the workspace or `RUNNER_TEMP`, and layouts inside the workspace: a pull
//! request cannot point the action, which runs as root, at files elsewhere on the runner.

use std::fs::{File, OpenOptions};
use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Component, Path, PathBuf};

use crate::context::Env;
use crate::error::{Error, Result};
use crate::input::Input;

/// The largest file an input may name (a key, a trust config, a CA bundle, a docker config).
pub const MAX_INPUT_FILE: u64 = 1 << 20;

/// Where files named by inputs may lie in action mode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Confinement {
    /// The workspace (`GITHUB_WORKSPACE`, else the working directory).
    pub workspace: PathBuf,
    /// `RUNNER_TEMP`, where a job writes files it makes (a key from a secret).
    pub runner_temp: Option<PathBuf>,
}

impl Confinement {
    /// The confinement of a run in action mode, from the runner's variables.
    pub fn from_action_env(env: &Env) -> Self {
        let dir = |name: &str| {
            env.get(name)
                .map(|v| v.trim())
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        };
        Confinement {
            workspace: dir("GITHUB_WORKSPACE").unwrap_or_else(|| PathBuf::from(".")),
            runner_temp: dir("RUNNER_TEMP"),
        }
    }

    /// Whether `path` (symbolic links resolved, so far as it exists) lies inside the workspace,
    /// or inside `RUNNER_TEMP` too when `temp` is set.
    fn holds(&self, path: &Path, temp: bool) -> bool {
        let Some(resolved) = resolve(path) else {
            return false;
        };
        std::iter::once(&self.workspace)
            .chain(self.runner_temp.iter().filter(|_| temp))
            .filter_map(|root| resolve(root))
            .any(|root| resolved.starts_with(root))
    }
}

/// `path` made absolute with its existing part's symbolic links resolved and the rest appended;
/// `None` when a part that does not exist yet climbs with `..`.
fn resolve(path: &Path) -> Option<PathBuf> {
    let absolute = std::path::absolute(path).ok()?;
    let mut existing = absolute.as_path();
    let mut rest = Vec::new();
    loop {
        if let Ok(found) = existing.canonicalize() {
            let mut resolved = found;
            for part in rest.iter().rev() {
                match part {
                    Component::Normal(name) => resolved.push(name),
                    Component::CurDir => {}
                    _ => return None,
                }
            }
            return Some(resolved);
        }
        if existing.symlink_metadata().is_ok() {
            // A link to nowhere (or one that cannot be followed) may point anywhere.
            return None;
        }
        rest.push(existing.components().next_back()?);
        existing = existing.parent()?;
    }
}

/// Refuses, in action mode, a layout directory (`input` names it) outside the workspace.
pub fn check_layout_dir(input: Input, dir: &Path, confinement: Option<&Confinement>) -> Result<()> {
    match confinement {
        Some(c) if !dir.as_os_str().is_empty() && !c.holds(dir, false) => Err(Error::input(
            input,
            format!(
                "the OCI layout `{}` is outside the workspace; give a directory inside it",
                dir.display()
            ),
        )),
        _ => Ok(()),
    }
}

/// Reads the file at `path`, named by the input `input`: a regular file of at most
/// [`MAX_INPUT_FILE`] bytes, opened without blocking. With a confinement (action mode) it must
/// lie inside the workspace or `RUNNER_TEMP`, and a path outside them gets the same error
/// whether or not something is there.
pub fn read_input_file(
    input: Input,
    path: &Path,
    confinement: Option<&Confinement>,
) -> Result<Vec<u8>> {
    let bad = |reason: String| Error::input(input, reason);
    let shown = path.display();
    if let Some(c) = confinement
        && !c.holds(path, true)
    {
        return Err(bad(format!(
            "no file at `{shown}` inside the workspace or RUNNER_TEMP; put the file there"
        )));
    }
    let file = open_nonblocking(path)
        .map_err(|e| bad(format!("cannot read `{shown}`: {}", io_reason(&e))))?;
    read_regular(file, path).map_err(bad)
}

/// Opens `path` for reading without blocking: a FIFO with no writer opens at once (and is then
/// refused by [`read_regular`]) instead of waiting for one.
pub fn open_nonblocking(path: &Path) -> std::io::Result<File> {
    OpenOptions::new()
        .read(true)
        .custom_flags(rustix::fs::OFlags::NONBLOCK.bits() as i32)
        .open(path)
}

/// Reads an open file when it is a regular one of at most [`MAX_INPUT_FILE`] bytes.
pub fn read_regular(file: File, path: &Path) -> std::result::Result<Vec<u8>, String> {
    let shown = path.display();
    let meta = file
        .metadata()
        .map_err(|e| format!("cannot read `{shown}`: {}", io_reason(&e)))?;
    if !meta.is_file() {
        return Err(format!(
            "`{shown}` is not a regular file; give the path of a file"
        ));
    }
    let too_big = || format!("`{shown}` is larger than 1 MiB, the most a file input may hold");
    if meta.len() > MAX_INPUT_FILE {
        return Err(too_big());
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.take(MAX_INPUT_FILE + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read `{shown}`: {}", io_reason(&e)))?;
    if bytes.len() as u64 > MAX_INPUT_FILE {
        return Err(too_big());
    }
    Ok(bytes)
}

/// An I/O error's reason without the "(os error N)" tail.
fn io_reason(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such file".to_owned(),
        std::io::ErrorKind::PermissionDenied => "permission denied".to_owned(),
        _ => e.to_string(),
    }
}

/// Reads `path` as UTF-8 text with [`read_input_file`].
pub fn read_input_text(
    input: Input,
    path: &Path,
    confinement: Option<&Confinement>,
) -> Result<String> {
    String::from_utf8(read_input_file(input, path, confinement)?)
        .map_err(|_| Error::input(input, format!("`{}` is not UTF-8 text", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_layout_outside_the_workspace_is_refused() {
        let ws = tempfile::tempdir().unwrap();
        let c = Confinement {
            workspace: ws.path().to_owned(),
            runner_temp: None,
        };
        assert!(
            check_layout_dir(
                crate::input::DRY_RUN_LAYOUT,
                &ws.path().join("lay"),
                Some(&c)
            )
            .is_ok()
        );
        for outside in [ws.path().join("../outside/lay"), PathBuf::from("/tmp/lay")] {
            let err =
                check_layout_dir(crate::input::DRY_RUN_LAYOUT, &outside, Some(&c)).unwrap_err();
            assert!(err.to_string().contains("outside the workspace"), "{err}");
        }
        assert!(
            check_layout_dir(crate::input::DRY_RUN_LAYOUT, Path::new("/tmp/lay"), None).is_ok()
        );
    }

    #[test]
    fn special_and_large_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let big = dir.path().join("big");
        std::fs::write(&big, vec![b'x'; MAX_INPUT_FILE as usize + 1]).unwrap();
        let err = read_input_file(crate::input::PUBLIC_KEY, &big, None).unwrap_err();
        assert!(err.to_string().contains("larger than 1 MiB"), "{err}");
        let err =
            read_input_file(crate::input::PUBLIC_KEY, Path::new("/dev/zero"), None).unwrap_err();
        assert!(err.to_string().contains("not a regular file"), "{err}");
    }
}
