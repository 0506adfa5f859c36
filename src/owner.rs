//! Who owns what the run writes. A container action starts as root in a workspace that belongs
//! to the runner's user (uid 1001 on GitHub's hosted runners); what it wrote there as root
//! (cargo's `target/`, a cargo home kept in the workspace for the cache, an OCI layout, a pulled
//! `.wasm`, created `0600` as a temporary file first) would be left unusable for the job's later
//! steps, which run as that user and could neither read it nor delete the workspace. So when this
//! process is root and a folder it works in belongs to another user, cargo and rustc run as that
//! user (its group, no supplementary groups), and what this process writes there is given to it.

use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;

use crate::error::{Error, Result};

/// A user and group other than root.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Owner {
    /// The user id.
    pub uid: u32,
    /// The group id.
    pub gid: u32,
}

impl Owner {
    /// The owner of `dir` when this process is root and the owner is not; `None` (nothing to
    /// change) otherwise.
    pub fn of(dir: &Path) -> Result<Option<Owner>> {
        if !rustix::process::geteuid().is_root() {
            return Ok(None);
        }
        let meta = std::fs::metadata(dir).map_err(|e| Error::io("read", dir, e))?;
        Ok(Owner::from_ids(meta.uid(), meta.gid()))
    }

    fn from_ids(uid: u32, gid: u32) -> Option<Owner> {
        (uid != 0).then_some(Owner { uid, gid })
    }

    /// Makes `cmd` run as `owner`, if any (std drops the supplementary groups).
    pub fn apply(owner: Option<Owner>, cmd: &mut Command) -> &mut Command {
        if let Some(owner) = owner {
            cmd.uid(owner.uid).gid(owner.gid);
        }
        cmd
    }
}

/// Gives `path`, just written by this process, to the owner of the folder it is in (see
/// [`Owner::of`]); nothing changes when this process is not root or that owner is root.
pub fn hand_over(path: &Path) -> Result<()> {
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    if let Some(owner) = Owner::of(parent)? {
        std::os::unix::fs::lchown(path, Some(owner.uid), Some(owner.gid))
            .map_err(|e| Error::io("change the owner of", path, e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_root_owned_folder_keeps_root() {
        assert_eq!(Owner::from_ids(0, 0), None);
        assert_eq!(
            Owner::from_ids(1001, 118),
            Some(Owner {
                uid: 1001,
                gid: 118
            })
        );
    }
}
