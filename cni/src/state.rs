//! The allocator's state on disk, under `dataDir/<network>/`:
//! - `addresses/<ip>`: one file per allocated address, holding its owner's container
//!   ID and interface name (made with O_EXCL: two ADDs can never own one address);
//! - `attachments/<container>:<ifname>`: the record of what ADD did (`record`);
//! - `last`: the last address handed out, where the next search starts;
//! - `lock`: flock'ed while allocations change (a `Lock` is the proof of holding it).
//!
//! Nothing here follows a symbolic link: directories are checked with lstat, files
//! are opened with O_NOFOLLOW, and directory entries that are not plain files are
//! ignored.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::net::Ipv4Addr;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};

use crate::error::{IO_FAILURE, NO_FREE_ADDRESS};
use crate::names::{AttachmentId, Identifier};
use crate::record::Record;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{step} {}: {}", path.display(), crate::error::io_text(source))]
    Io { step: &'static str, path: PathBuf, source: std::io::Error },
    #[error("{} is not a plain directory (a symbolic link?): refusing to use it", path.display())]
    NotADirectory { path: PathBuf },
    #[error("record {}: {why}", path.display())]
    Corrupt { path: PathBuf, why: String },
    #[error("no free address in {subnet}: all {capacity} are allocated")]
    Exhausted { subnet: String, capacity: u32 },
}

impl Error {
    pub fn code(&self) -> u32 {
        match self {
            Error::Exhausted { .. } => NO_FREE_ADDRESS,
            _ => IO_FAILURE,
        }
    }
}

type Result<T, E = Error> = std::result::Result<T, E>;

fn io<'a>(step: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> Error + 'a {
    move |source| Error::Io { step, path: path.to_path_buf(), source }
}

pub struct State {
    dir: PathBuf,
    addresses: PathBuf,
    attachments: PathBuf,
}

/// Held while allocations change; released when dropped.
pub struct Lock {
    _file: Flock<File>,
}

impl State {
    /// The network's folder, made if missing. Each level is made (or found) and then
    /// checked with lstat before anything is made inside it.
    pub fn open(data_dir: &Path, network: &Identifier) -> Result<State> {
        std::fs::create_dir_all(data_dir).map_err(io("create", data_dir))?;
        let dir = data_dir.join(network.as_str());
        let state = State { addresses: dir.join("addresses"), attachments: dir.join("attachments"), dir };
        for path in [&state.dir, &state.addresses, &state.attachments] {
            match std::fs::create_dir(path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(io("create", path)(e)),
            }
            if !std::fs::symlink_metadata(path).map_err(io("inspect", path))?.file_type().is_dir() {
                return Err(Error::NotADirectory { path: path.clone() });
            }
        }
        Ok(state)
    }

    pub fn lock(&self) -> Result<Lock> {
        let path = self.dir.join("lock");
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&path)
            .map_err(io("open", &path))?;
        let file = Flock::lock(file, FlockArg::LockExclusive).map_err(|(_, errno)| Error::Io {
            step: "lock",
            path,
            source: std::io::Error::from_raw_os_error(errno as i32),
        })?;
        Ok(Lock { _file: file })
    }

    fn record_path(&self, id: &AttachmentId) -> PathBuf {
        self.attachments.join(id.file_name())
    }

    /// The attachment's record; `None` when there is none.
    pub fn record(&self, id: &AttachmentId) -> Result<Option<Record>> {
        let path = self.record_path(id);
        let Some(bytes) = read(&path)? else { return Ok(None) };
        let record = Record::from_json(&bytes).map_err(|why| Error::Corrupt { path: path.clone(), why })?;
        if record.id != *id {
            return Err(Error::Corrupt { path, why: format!("it records {}", record.id) });
        }
        Ok(Some(record))
    }

    /// Every attachment that has a record file (readable or not).
    pub fn recorded(&self) -> Result<Vec<AttachmentId>> {
        Ok(plain_files(&self.attachments)?.iter().filter_map(|name| AttachmentId::from_file_name(name)).collect())
    }

    /// Save a record (atomically: written aside, then renamed over the old one).
    pub fn save(&self, _: &Lock, record: &Record) -> Result<()> {
        let path = self.record_path(&record.id);
        let aside = self.attachments.join(format!(".{}.new", record.id.file_name()));
        write(&aside, &record.to_json(), false)?;
        std::fs::rename(&aside, &path).map_err(io("rename", &path))
    }

    pub fn forget(&self, _: &Lock, id: &AttachmentId) -> Result<()> {
        remove(&self.record_path(id))
    }

    /// The allocated addresses and their owners (`None`: an unreadable owner file).
    pub fn allocations(&self) -> Result<BTreeMap<Ipv4Addr, Option<AttachmentId>>> {
        let mut allocations = BTreeMap::new();
        for name in plain_files(&self.addresses)? {
            if let Ok(address) = name.parse() {
                allocations.insert(address, self.owner(address)?);
            }
        }
        Ok(allocations)
    }

    /// The allocated addresses, without reading their owners (ADD's fast path).
    pub fn allocated(&self) -> Result<std::collections::BTreeSet<Ipv4Addr>> {
        Ok(plain_files(&self.addresses)?.iter().filter_map(|name| name.parse().ok()).collect())
    }

    /// Who holds `address`; `None` when nobody does or the owner file is unreadable.
    pub fn owner(&self, address: Ipv4Addr) -> Result<Option<AttachmentId>> {
        let Some(bytes) = read(&self.addresses.join(address.to_string()))? else { return Ok(None) };
        let text = String::from_utf8_lossy(&bytes);
        let mut lines = text.lines();
        let mut field = || lines.next().map(str::to_string);
        let (container, ifname) = (field(), field());
        Ok(container.zip(ifname).and_then(|(container, ifname)| {
            Some(AttachmentId { container: container.parse().ok()?, ifname: ifname.parse().ok()? })
        }))
    }

    /// Take `address` for `id`; `false` when it is taken already.
    pub fn claim(&self, _: &Lock, address: Ipv4Addr, id: &AttachmentId) -> Result<bool> {
        let path = self.addresses.join(address.to_string());
        match write(&path, format!("{}\n{}\n", id.container, id.ifname).as_bytes(), true) {
            Ok(()) => Ok(true),
            Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Give `address` back, if `id` holds it (a DEL never frees someone else's).
    pub fn release(&self, _: &Lock, address: Ipv4Addr, id: &AttachmentId) -> Result<bool> {
        if self.owner(address)?.as_ref() != Some(id) {
            return Ok(false);
        }
        remove(&self.addresses.join(address.to_string()))?;
        Ok(true)
    }

    /// Give `address` back whoever holds it (GC of an unreadable owner file).
    pub fn release_any(&self, _: &Lock, address: Ipv4Addr) -> Result<()> {
        remove(&self.addresses.join(address.to_string()))
    }

    pub fn last(&self) -> Result<Option<Ipv4Addr>> {
        Ok(read(&self.dir.join("last"))?.and_then(|bytes| String::from_utf8_lossy(&bytes).trim().parse().ok()))
    }

    pub fn set_last(&self, _: &Lock, address: Ipv4Addr) -> Result<()> {
        write(&self.dir.join("last"), format!("{address}\n").as_bytes(), false)
    }
}

/// A file's bytes, never through a symbolic link; `None` when it does not exist.
fn read(path: &Path) -> Result<Option<Vec<u8>>> {
    let file = OpenOptions::new().read(true).custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK).open(path);
    let mut file = match file {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io("read", path)(e)),
    };
    if !file.metadata().map_err(io("read", path))?.is_file() {
        return Err(Error::Corrupt { path: path.to_path_buf(), why: "not a regular file".to_string() });
    }
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes).map_err(io("read", path))?;
    Ok(Some(bytes))
}

/// Write a whole file; `exclusive`: fail if it exists.
fn write(path: &Path, bytes: &[u8], exclusive: bool) -> Result<()> {
    let mut options = OpenOptions::new();
    options.write(true).mode(0o600).custom_flags(libc::O_NOFOLLOW);
    if exclusive {
        options.create_new(true);
    } else {
        options.create(true).truncate(true);
    }
    let mut file = options.open(path).map_err(io("write", path))?;
    file.write_all(bytes).map_err(io("write", path))
}

fn remove(path: &Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io("remove", path)(e)),
    }
}

/// The names of the plain files of a folder (not links, not folders, not `.`-files).
fn plain_files(dir: &Path) -> Result<Vec<String>> {
    let mut names = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io("list", dir))? {
        let entry = entry.map_err(io("list", dir))?;
        let plain = entry.file_type().map_err(io("list", dir))?.is_file();
        match entry.file_name().into_string() {
            Ok(name) if plain && !name.starts_with('.') => names.push(name),
            _ => {}
        }
    }
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("netlab-cni-state-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn claims_are_exclusive_and_releases_check_the_owner() {
        let dir = temp_dir("claims");
        let state = State::open(&dir, &"net".parse().unwrap()).unwrap();
        let lock = state.lock().unwrap();
        let record = crate::record::sample();
        let other = AttachmentId { container: "c2".parse().unwrap(), ifname: "eth0".parse().unwrap() };
        let address: Ipv4Addr = "10.244.1.2".parse().unwrap();
        assert!(state.claim(&lock, address, &record.id).unwrap());
        assert!(!state.claim(&lock, address, &other).unwrap());
        assert_eq!(state.owner(address).unwrap(), Some(record.id.clone()));
        assert!(!state.release(&lock, address, &other).unwrap());
        state.save(&lock, &record).unwrap();
        assert_eq!(state.record(&record.id).unwrap(), Some(record.clone()));
        assert_eq!(state.recorded().unwrap(), vec![record.id.clone()]);
        assert_eq!(state.allocated().unwrap().len(), 1);
        assert!(state.release(&lock, address, &record.id).unwrap());
        state.forget(&lock, &record.id).unwrap();
        assert_eq!(state.record(&record.id).unwrap(), None);
        state.set_last(&lock, address).unwrap();
        assert_eq!(state.last().unwrap(), Some(address));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn symbolic_links_are_not_followed() {
        let dir = temp_dir("links");
        let state = State::open(&dir, &"net".parse().unwrap()).unwrap();
        let id = crate::record::sample().id;
        std::os::unix::fs::symlink("/etc/hostname", state.attachments.join(id.file_name())).unwrap();
        assert!(state.record(&id).is_err());
        assert!(state.recorded().unwrap().is_empty());
        let elsewhere = temp_dir("links-target");
        std::fs::create_dir_all(&elsewhere).unwrap();
        std::os::unix::fs::symlink(&elsewhere, dir.join("linked")).unwrap();
        assert!(matches!(State::open(&dir, &"linked".parse().unwrap()), Err(Error::NotADirectory { .. })));
        assert_eq!(std::fs::read_dir(&elsewhere).unwrap().count(), 0, "nothing made through the link");
        std::fs::remove_dir_all(&dir).unwrap();
        std::fs::remove_dir_all(&elsewhere).unwrap();
    }
}
