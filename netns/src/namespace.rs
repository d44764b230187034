//! Named network namespaces, kept where iproute2 keeps them (/run/netns/NAME) so that
//! `ip netns exec RED ...` works on what netlab creates.
//!
//! We create them without forking: a short-lived thread unshares its network
//! namespace and bind-mounts it onto the name. `rtnetlink::NetworkNamespace::add`
//! forks from a multi-threaded process and blocks, so it is not used.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::os::fd::OwnedFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::{unshare, CloneFlags};

use crate::{Error, Result};

pub const NETNS_DIR: &str = "/run/netns";

/// The namespace an object lives in: the one netlab runs in ("host"), or a named one.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Netns {
    Host,
    Named(String),
    /// A namespace bound anywhere (a CNI runtime's `CNI_NETNS`, `/proc/PID/ns/net`).
    Path(PathBuf),
}

impl Netns {
    pub fn path(&self) -> PathBuf {
        match self {
            // /proc/self is the thread-group leader, which never leaves the host.
            Netns::Host => PathBuf::from("/proc/self/ns/net"),
            Netns::Named(name) => Path::new(NETNS_DIR).join(name),
            Netns::Path(path) => path.clone(),
        }
    }

    /// A handle on the namespace, for setns and IFLA_NET_NS_FD.
    pub fn open(&self) -> Result<OwnedFd> {
        File::open(self.path()).map(OwnedFd::from).map_err(|e| Error::io(format!("open namespace {self}"), e))
    }
}

impl fmt::Display for Netns {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Netns::Host => f.write_str("host"),
            Netns::Named(name) => f.write_str(name),
            Netns::Path(path) => write!(f, "{}", path.display()),
        }
    }
}

/// What is at /run/netns/NAME.
#[derive(Debug, PartialEq, Eq)]
pub enum Presence {
    Missing,
    /// A mounted network namespace.
    Mounted,
    /// A file without a namespace on it: a creation that was killed half-way.
    Stale,
}

pub fn presence(name: &str) -> Presence {
    let path = Path::new(NETNS_DIR).join(name);
    match File::open(&path) {
        Err(_) => Presence::Missing,
        Ok(file) => match nix::sys::statfs::fstatfs(&file) {
            Ok(fs) if fs.filesystem_type() == nix::sys::statfs::NSFS_MAGIC => Presence::Mounted,
            _ => Presence::Stale,
        },
    }
}

/// The names under /run/netns, sorted.
pub fn list() -> Result<Vec<String>> {
    let entries = match std::fs::read_dir(NETNS_DIR) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io(format!("list {NETNS_DIR}"), e)),
    };
    let mut names: Vec<String> = entries.filter_map(|e| e.ok()?.file_name().into_string().ok()).collect();
    names.sort();
    Ok(names)
}

/// Make /run/netns a shared mount point, as iproute2 does, so that namespaces mounted
/// on it are seen from other mount namespaces too.
pub fn prepare_dir() -> Result<()> {
    std::fs::create_dir_all(NETNS_DIR).map_err(|e| Error::io(format!("create {NETNS_DIR}"), e))?;
    let shared = || mount(None::<&str>, NETNS_DIR, None::<&str>, MsFlags::MS_SHARED | MsFlags::MS_REC, None::<&str>);
    match shared() {
        Ok(()) => Ok(()),
        Err(nix::Error::EINVAL) => {
            mount(Some(NETNS_DIR), NETNS_DIR, None::<&str>, MsFlags::MS_BIND | MsFlags::MS_REC, None::<&str>)
                .map_err(|e| Error::nix(format!("bind {NETNS_DIR}"), e))?;
            shared().map_err(|e| Error::nix(format!("share {NETNS_DIR}"), e))
        }
        Err(e) => Err(Error::nix(format!("share {NETNS_DIR}"), e)),
    }
}

/// Create the named namespace and move the calling thread into it: call only on a
/// thread you own (never a runtime worker). Creating many one after another on one
/// thread costs a fraction of a millisecond each.
pub fn create_and_enter(name: &str) -> Result<()> {
    let step = || format!("create namespace {name}");
    let path = Path::new(NETNS_DIR).join(name);
    if presence(name) == Presence::Stale {
        // Left by a killed run between creating the file and mounting onto it.
        std::fs::remove_file(&path).map_err(|e| Error::io(step(), e))?;
    }
    OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .mode(0o444)
        .open(&path)
        .map_err(|e| Error::io(step(), e))?;
    let made = unshare(CloneFlags::CLONE_NEWNET)
        .and_then(|()| mount(Some("/proc/thread-self/ns/net"), &path, None::<&str>, MsFlags::MS_BIND, None::<&str>));
    if let Err(e) = made {
        let _ = std::fs::remove_file(&path);
        return Err(Error::nix(step(), e));
    }
    Ok(())
}

/// Remove the name. The kernel frees the namespace, and every link in it, once the
/// last process and socket inside have let go of it.
pub fn delete(name: &str) -> Result<()> {
    let path = Path::new(NETNS_DIR).join(name);
    match umount2(&path, MntFlags::MNT_DETACH) {
        Ok(()) | Err(nix::Error::EINVAL) | Err(nix::Error::ENOENT) => {}
        Err(e) => return Err(Error::nix(format!("delete namespace {name}"), e)),
    }
    match std::fs::remove_file(&path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io(format!("delete namespace {name}"), e)),
    }
}

/// Move the calling thread into `ns`. Only for threads we own: never a runtime worker.
pub fn enter(ns: &Netns) -> Result<()> {
    let fd = ns.open()?;
    nix::sched::setns(&fd, CloneFlags::CLONE_NEWNET).map_err(|e| Error::nix(format!("enter namespace {ns}"), e))?;
    Ok(())
}
