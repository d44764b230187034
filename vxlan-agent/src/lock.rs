//! One agent per namespace and device: a second one would remove the first one's
//! entries at every resync. An exclusive lock on a file beside the status file
//! (released by the kernel when the process ends, however it ends).

use std::io::{Read, Seek, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use crate::error::Error;

pub struct Lock {
    _file: std::fs::File,
}

impl Lock {
    /// `what`: the namespace and device, for the message.
    pub fn take(path: &Path, what: &str) -> Result<Lock, Error> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| Error::file("create", dir, e))?;
        }
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(|e| Error::file("open", path, e))?;
        // SAFETY: flock on a descriptor this function owns.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            let error = std::io::Error::last_os_error();
            if error.raw_os_error() == Some(libc::EWOULDBLOCK) {
                let mut text = String::new();
                let _ = file.read_to_string(&mut text);
                let pid = text.trim().parse().ok();
                return Err(Error::Locked { what: what.to_string(), pid, lock: path.display().to_string() });
            }
            return Err(Error::file("lock", path, error));
        }
        // Ours now: say who holds it.
        let _ = file.set_len(0);
        let _ = file.rewind();
        let _ = writeln!(file, "{}", std::process::id());
        Ok(Lock { _file: file })
    }

    pub fn path(status_dir: &Path, netns: Option<&str>, device: &str) -> PathBuf {
        status_dir.join(format!("{}.lock", crate::status::Status::base_name(netns, device)))
    }
}
