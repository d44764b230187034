//! Run a program inside a namespace, as `ip netns exec` does for the network: the
//! child enters the namespace between fork and exec. Arguments go straight to execve,
//! never through a shell.

use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::Command;

use crate::namespace::Netns;
use crate::Result;

/// A command that will run in `ns`. The namespace is opened now, so a missing one is
/// reported here rather than by the child.
pub fn command_in(ns: &Netns, program: &str) -> Result<Command> {
    let fd: OwnedFd = ns.open()?;
    let mut command = Command::new(program);
    // SAFETY: between fork and exec only async-signal-safe calls are allowed; setns
    // is a plain system call. `fd` is moved into the closure and stays open until the
    // Command is dropped.
    unsafe {
        command.pre_exec(move || {
            if libc::setns(fd.as_raw_fd(), libc::CLONE_NEWNET) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    Ok(command)
}
