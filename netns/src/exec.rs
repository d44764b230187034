//! Become a program inside a named network namespace, as `ip netns exec` does: a
//! mount namespace of its own in which /sys describes the network namespace and the
//! files of /etc/netns/NAME cover those of /etc, then execvp, so the program takes
//! over the calling process (its signals, its exit status).
//!
//! For a process with one thread (unshare and setns act on the calling thread only,
//! and the program must inherit them).

use std::ffi::{CString, OsString};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::{unshare, CloneFlags};

use crate::{Error, Result};

/// Where iproute2 looks for the files that replace /etc's inside a namespace.
pub const ETC_NETNS_DIR: &str = "/etc/netns";

/// A file of /etc/netns/NAME that could not cover its namesake in /etc.
#[derive(Debug)]
pub struct Uncovered {
    pub source: PathBuf,
    pub target: PathBuf,
    pub error: Error,
}

/// Give the calling thread a mount namespace of its own, with a /sys of the network
/// namespace it is in and /etc/netns/`name`/* bound over /etc/*. Mounts made here
/// never propagate back to the caller's mount namespace. Returns the files of
/// /etc/netns/`name` that could not be bound (iproute2 warns and goes on, as the
/// caller may).
pub fn isolate_mounts(name: &str) -> Result<Vec<Uncovered>> {
    unshare(CloneFlags::CLONE_NEWNS).map_err(|e| Error::nix("unshare the mount namespace", e))?;
    mount(None::<&str>, "/", None::<&str>, MsFlags::MS_SLAVE | MsFlags::MS_REC, None::<&str>)
        .map_err(|e| Error::nix("make / a slave mount", e))?;
    remount_sys(name)?;
    Ok(cover_etc(name))
}

/// sysfs shows the network namespace of whoever mounts it: mount it again from here.
fn remount_sys(name: &str) -> Result<()> {
    let mut flags = MsFlags::empty();
    if umount2("/sys", MntFlags::MNT_DETACH).is_err() {
        // Nothing to unmount, or it cannot be: mount over it. A read-only /sys cannot be
        // covered by a writable one.
        if nix::sys::statvfs::statvfs("/sys").is_ok_and(|fs| fs.flags().contains(nix::sys::statvfs::FsFlags::ST_RDONLY))
        {
            flags |= MsFlags::MS_RDONLY;
        }
    }
    mount(Some(name), "/sys", Some("sysfs"), flags, None::<&str>).map_err(|e| Error::nix("mount /sys", e))
}

fn cover_etc(name: &str) -> Vec<Uncovered> {
    let folder = Path::new(ETC_NETNS_DIR).join(name);
    let Ok(entries) = std::fs::read_dir(&folder) else { return Vec::new() };
    let mut uncovered = Vec::new();
    for entry in entries.flatten() {
        let source = entry.path();
        let target = Path::new("/etc").join(entry.file_name());
        if let Err(e) = mount(Some(source.as_path()), target.as_path(), None::<&str>, MsFlags::MS_BIND, None::<&str>) {
            let error = Error::nix(format!("bind {} over {}", source.display(), target.display()), e);
            uncovered.push(Uncovered { source, target, error });
        }
    }
    uncovered
}

/// Replace the calling process with `command` (searched in PATH as a shell does).
/// Returns only when that fails: the errno, ENOENT when no such program was found.
pub fn exec(command: &[OsString]) -> nix::Error {
    let Some(arguments) = command.iter().map(|a| CString::new(a.as_bytes()).ok()).collect::<Option<Vec<_>>>() else {
        return nix::Error::EINVAL;
    };
    let Some(program) = arguments.first() else { return nix::Error::ENOENT };
    // Rust starts programs with SIGPIPE ignored, and an ignored signal stays ignored
    // across exec: give the program the default a shell would.
    // SAFETY: resetting a disposition to the default installs no handler.
    unsafe {
        let _ = nix::sys::signal::signal(nix::sys::signal::Signal::SIGPIPE, nix::sys::signal::SigHandler::SigDfl);
    }
    match nix::unistd::execvp(program.as_c_str(), &arguments) {
        Err(e) => e,
        Ok(never) => match never {},
    }
}
