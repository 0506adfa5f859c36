//! What a build leaves running. A build script or proc macro runs as the workspace's owner (see
//! [`crate::owner`]) and may start a process that outlives cargo (a double fork, `setsid`). Left
//! alone, it would run for the rest of the push beside this root process: racing the layout's
//! symlink checks, or writing to the runner's file-command files (`GITHUB_OUTPUT`: a forged
//! `digest` for the deploy job). Those files belong to the runner's user, which on hosted
//! runners is the workspace's owner, so no permission can keep the build from them; ending
//! every process of that user once cargo is done is what does.
//!
//! The processes are ended with `kill(-1, SIGKILL)` from a thread that has become the owner: it
//! reaches every process of that user (and no other) at once, so none can fork away between a
//! listing and the kill. Every process of that user means every one in the PID namespace, so
//! this is done only when this process is PID 1: the init of its own namespace, which a
//! container action's entrypoint is, where every process is one this process started. Root
//! anywhere else (`sudo wasm-oci push` in a user's own checkout) is never PID 1, and killing
//! that user's processes there would end their desktop session: nothing is ended, and the
//! build's code was the user's own to run anyway.

use rustix::process::{Pid, Signal, Uid};
use tracing::{debug, warn};

use crate::error::{Error, Result};
use crate::owner::Owner;

/// Ends every process left running as `owner` (the user cargo ran as, if not this process's),
/// when this process is the init of its PID namespace; warns with how many there were.
pub(super) fn end(owner: Option<Owner>) -> Result<()> {
    let Some(owner) = owner else {
        return Ok(());
    };
    if rustix::process::getpid() != Pid::INIT {
        debug!(
            "not PID 1: processes the build left running as uid {} are not ended",
            owner.uid
        );
        return Ok(());
    }
    let left = running_as(owner.uid);
    std::thread::spawn(move || -> std::io::Result<()> {
        // The raw `setuid` changes this thread alone (the other threads stay root), and drops
        // its capabilities: from here it may signal only the owner's processes.
        rustix::thread::set_thread_uid(Uid::from_raw(owner.uid))?;
        match rustix::process::kill_process_group(Pid::INIT, Signal::KILL) {
            Ok(()) | Err(rustix::io::Errno::SRCH) => Ok(()),
            Err(e) => Err(e.into()),
        }
    })
    .join()
    .map_err(|_| Error::Build("ending the processes the build left running failed".into()))?
    .map_err(|e| {
        Error::Build(format!(
            "cannot end the processes the build left running as uid {}: {e}",
            owner.uid
        ))
    })?;
    if left > 0 {
        warn!(
            "the build left {left} process{} running as uid {} after cargo finished (a build script or proc macro started {}); ended before the push",
            if left == 1 { "" } else { "es" },
            owner.uid,
            if left == 1 { "it" } else { "them" },
        );
    }
    Ok(())
}

/// How many live processes (zombies left out) have `uid` as their real user id.
fn running_as(uid: u32) -> usize {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return 0;
    };
    entries
        .filter_map(|e| e.ok())
        .filter(|e| {
            e.file_name()
                .to_str()
                .is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit()))
        })
        .filter_map(|e| std::fs::read_to_string(e.path().join("status")).ok())
        .filter(|status| is_live_and_owned_by(status, uid))
        .count()
}

/// Whether `/proc/PID/status` text tells of a process that is not a zombie and whose real user
/// id is `uid`.
fn is_live_and_owned_by(status: &str, uid: u32) -> bool {
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .map(str::trim_start)
    };
    let zombie = field("State:").is_some_and(|s| s.starts_with('Z'));
    let real_uid = field("Uid:").and_then(|s| s.split_whitespace().next()?.parse::<u32>().ok());
    !zombie && real_uid == Some(uid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_live_processes_of_the_user_count() {
        let status = |state: &str, uids: &str| {
            format!(
                "Name:\tsh\nState:\t{state}\nTgid:\t7\nPid:\t7\nUid:\t{uids}\nGid:\t1001\t1001\t1001\t1001\n"
            )
        };
        assert!(is_live_and_owned_by(
            &status("S (sleeping)", "1001\t1001\t1001\t1001"),
            1001
        ));
        assert!(!is_live_and_owned_by(
            &status("Z (zombie)", "1001\t1001\t1001\t1001"),
            1001
        ));
        assert!(!is_live_and_owned_by(
            &status("R (running)", "0\t1001\t1001\t1001"),
            1001
        ));
        assert!(!is_live_and_owned_by(
            &status("S (sleeping)", "10010\t0\t0\t0"),
            1001
        ));
    }
}
