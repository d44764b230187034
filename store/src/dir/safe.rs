//! File operations of the folder store that are safe against whatever another user
//! of a shared folder plants in it. Every operation works relative to an open
//! folder (the `*at` calls), never follows a symlink (O_NOFOLLOW; a symlinked key
//! or folder is refused), reads only regular files, opened non-blocking (a FIFO
//! cannot hang us) and only up to a bound, and writes through temporary files made
//! exclusively under unpredictable names, so nobody can aim our writes elsewhere.
//!
//! std's `fs` has no `openat`, `renameat2` or `linkat` on a folder handle: hence nix.

use std::io::Read as _;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::AtFlags;
use nix::fcntl::{openat, renameat2, OFlag, RenameFlags};
use nix::sys::stat::{fstat, fstatat, mkdirat, FileStat, Mode, SFlag};
use nix::unistd::{linkat, unlinkat, UnlinkatFlags};

use crate::error::{Error, Refusal, Result};

/// An open folder of the store.
pub struct Folder {
    fd: OwnedFd,
    path: PathBuf,
}

/// What a read found.
pub enum Contents {
    Bytes(Vec<u8>),
    Missing,
}

impl Folder {
    /// The store's root. The administrator names it, so a symlink in the path to it is
    /// followed; everything below it is not.
    pub fn root(path: &Path) -> Result<Folder> {
        std::fs::create_dir_all(path).map_err(|e| Error::io("create", path, &e))?;
        Folder::existing_root(path)?.ok_or_else(|| Error::Io {
            step: "open",
            path: path.to_path_buf(),
            errno: libc::ENOENT,
        })
    }

    /// The store's root if it exists.
    pub fn existing_root(path: &Path) -> Result<Option<Folder>> {
        let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
        match nix::fcntl::open(path, flags, Mode::empty()) {
            // SAFETY: `open` returned a new descriptor that nothing else owns.
            Ok(fd) => Ok(Some(Folder { fd: unsafe { OwnedFd::from_raw_fd(fd) }, path: path.to_path_buf() })),
            Err(Errno::ENOENT) => Ok(None),
            Err(e) => Err(Error::nix("open", path, e)),
        }
    }

    /// A folder below this one (`arp`, `fdb`, `subnets`), made if missing when
    /// `create`; `None` when missing otherwise. A symlink or a file there is refused.
    pub fn folder(&self, name: &str, create: bool) -> Result<Option<Folder>> {
        let path = self.path.join(name);
        let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        let opened = match openat(Some(self.raw()), name, flags, Mode::empty()) {
            Err(Errno::ENOENT) if create => {
                match mkdirat(Some(self.raw()), name, Mode::from_bits_truncate(0o755)) {
                    Ok(()) | Err(Errno::EEXIST) => {}
                    Err(e) => return Err(Error::nix("create", path, e)),
                }
                openat(Some(self.raw()), name, flags, Mode::empty())
            }
            other => other,
        };
        match opened {
            // SAFETY: `openat` returned a new descriptor that nothing else owns.
            Ok(fd) => Ok(Some(Folder { fd: unsafe { OwnedFd::from_raw_fd(fd) }, path })),
            Err(Errno::ENOENT) => Ok(None),
            Err(Errno::ELOOP) => Err(Error::Refused { path, what: Refusal::SymlinkNotFolder }),
            // With O_DIRECTORY the kernel answers a symlink with ENOTDIR too: look.
            Err(Errno::ENOTDIR) => {
                let link = fstatat(Some(self.raw()), name, AtFlags::AT_SYMLINK_NOFOLLOW)
                    .is_ok_and(|stat| stat.st_mode & SFlag::S_IFMT.bits() == SFlag::S_IFLNK.bits());
                let what = if link { Refusal::SymlinkNotFolder } else { Refusal::NotFolder };
                Err(Error::Refused { path, what })
            }
            Err(e) => Err(Error::nix("open", path, e)),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn raw(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// The contents of file `name`, at most `limit` bytes; a longer file gives
    /// `limit + 1` bytes so the caller can tell. Refuses anything but a regular file.
    pub fn read(&self, name: &str, limit: usize) -> Result<Contents> {
        let path = self.path.join(name);
        // Look before opening: opening a device can have effects of its own.
        match fstatat(Some(self.raw()), name, AtFlags::AT_SYMLINK_NOFOLLOW) {
            Ok(stat) => regular(&path, &stat)?,
            Err(Errno::ENOENT) => return Ok(Contents::Missing),
            Err(e) => return Err(Error::nix("read", path, e)),
        }
        let flags = OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK | OFlag::O_NOCTTY | OFlag::O_CLOEXEC;
        let fd = match openat(Some(self.raw()), name, flags, Mode::empty()) {
            Ok(fd) => fd,
            Err(Errno::ENOENT) => return Ok(Contents::Missing),
            // Someone else's private file in a shared folder: theirs, not a key for us.
            Err(Errno::EACCES | Errno::EPERM) => return Err(Error::Refused { path, what: Refusal::Unreadable }),
            Err(e) => return Err(Error::nix("read", path, e)),
        };
        // SAFETY: `openat` returned a new descriptor that nothing else owns.
        let file = std::fs::File::from(unsafe { OwnedFd::from_raw_fd(fd) });
        // Swapped between the look and the open: look again at what was opened.
        regular(&path, &fstat(file.as_raw_fd()).map_err(|e| Error::nix("read", &path, e))?)?;
        let mut bytes = Vec::with_capacity(64);
        file.take(limit as u64 + 1).read_to_end(&mut bytes).map_err(|e| Error::io("read", &path, &e))?;
        Ok(Contents::Bytes(bytes))
    }

    /// Replace file `name` with `bytes` atomically: a reader sees the old content or
    /// the new, never half of it.
    pub fn write(&self, name: &str, bytes: &[u8]) -> Result<()> {
        let temporary = self.temporary(name, "tmp", bytes)?;
        renameat2(Some(self.raw()), temporary.as_str(), Some(self.raw()), name, RenameFlags::empty()).map_err(|e| {
            let _ = unlinkat(Some(self.raw()), temporary.as_str(), UnlinkatFlags::NoRemoveDir);
            Error::nix("write", self.path.join(name), e)
        })
    }

    /// Write file `name` only if nothing is there (not even a dangling symlink);
    /// true when written. Atomic: of two writers, exactly one succeeds.
    pub fn create(&self, name: &str, bytes: &[u8]) -> Result<bool> {
        let temporary = self.temporary(name, "new", bytes)?;
        let placed = self.place_exclusive(&temporary, name);
        // Placed or not, the temporary name is ours to clear (gone already if renamed).
        let _ = unlinkat(Some(self.raw()), temporary.as_str(), UnlinkatFlags::NoRemoveDir);
        placed.map_err(|e| Error::nix("create", self.path.join(name), e))
    }

    /// Give file `from` the name `to` unless `to` exists; false when it does.
    /// RENAME_NOREPLACE where the file system has it; link(2) (just as exclusive)
    /// where it has not; a look then a rename where it has neither (some shared
    /// folders), the one case with a window between the two.
    fn place_exclusive(&self, from: &str, to: &str) -> std::result::Result<bool, Errno> {
        let dir = Some(self.raw());
        let unsupported = |e: &Errno| matches!(e, Errno::EINVAL | Errno::ENOSYS | Errno::EOPNOTSUPP | Errno::EPERM);
        let placed = match renameat2(dir, from, dir, to, RenameFlags::RENAME_NOREPLACE) {
            Err(e) if unsupported(&e) => match linkat(dir, from, dir, to, AtFlags::empty()) {
                Err(e) if unsupported(&e) => match fstatat(dir, to, AtFlags::AT_SYMLINK_NOFOLLOW) {
                    Ok(_) => Err(Errno::EEXIST),
                    Err(Errno::ENOENT) => nix::fcntl::renameat(dir, from, dir, to),
                    Err(e) => Err(e),
                },
                linked => linked,
            },
            renamed => renamed,
        };
        match placed {
            Ok(()) => Ok(true),
            Err(Errno::EEXIST) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Move file `name` out of the way under a private name, so that what it held can
    /// be looked at without anyone changing it meanwhile; `None` if it is not there.
    pub fn take(&self, name: &str) -> Result<Option<Taken<'_>>> {
        let private = format!(".{name}.{}.del", random_suffix()?);
        // The private name is unpredictable and fresh: a plain rename cannot replace
        // anything.
        match nix::fcntl::renameat(Some(self.raw()), name, Some(self.raw()), private.as_str()) {
            Ok(()) => Ok(Some(Taken { folder: self, name: name.to_string(), private })),
            Err(Errno::ENOENT) => Ok(None),
            Err(e) => Err(Error::nix("remove", self.path.join(name), e)),
        }
    }

    /// The names in the folder that could be keys (hidden names are our temporary
    /// files; names that are not UTF-8 are nobody's keys).
    pub fn names(&self) -> Result<Vec<String>> {
        let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
        let dir = nix::dir::Dir::openat(Some(self.raw()), ".", flags, Mode::empty())
            .map_err(|e| Error::nix("list", &self.path, e))?;
        let mut names = Vec::new();
        for entry in dir {
            let entry = entry.map_err(|e| Error::nix("list", &self.path, e))?;
            if let Ok(name) = entry.file_name().to_str() {
                if !name.starts_with('.') {
                    names.push(name.to_string());
                }
            }
        }
        Ok(names)
    }

    /// A new file under a private, unpredictable name holding `bytes`.
    fn temporary(&self, name: &str, kind: &str, bytes: &[u8]) -> Result<String> {
        use std::io::Write;
        let temporary = format!(".{name}.{}.{kind}", random_suffix()?);
        let flags = OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        let fd = openat(Some(self.raw()), temporary.as_str(), flags, Mode::from_bits_truncate(0o644))
            .map_err(|e| Error::nix("write", self.path.join(&temporary), e))?;
        // SAFETY: `openat` returned a new descriptor that nothing else owns.
        let mut file = std::fs::File::from(unsafe { OwnedFd::from_raw_fd(fd) });
        file.write_all(bytes).map_err(|e| {
            let _ = unlinkat(Some(self.raw()), temporary.as_str(), UnlinkatFlags::NoRemoveDir);
            Error::io("write", self.path.join(name), &e)
        })?;
        Ok(temporary)
    }
}

/// A file moved aside by `Folder::take`.
pub struct Taken<'a> {
    folder: &'a Folder,
    name: String,
    private: String,
}

impl Taken<'_> {
    pub fn read(&self, limit: usize) -> Result<Contents> {
        self.folder.read(&self.private, limit)
    }

    /// Delete it for good.
    pub fn discard(self) -> Result<()> {
        unlinkat(Some(self.folder.raw()), self.private.as_str(), UnlinkatFlags::NoRemoveDir)
            .map_err(|e| Error::nix("remove", self.folder.path.join(&self.name), e))
    }

    /// Put it back where it was, unless someone has written the key meanwhile (then
    /// theirs is newer and ours goes).
    pub fn restore(self) -> Result<()> {
        match self.folder.place_exclusive(&self.private, &self.name) {
            // Linked rather than renamed on some file systems: the private name goes.
            Ok(true) => {
                let _ = unlinkat(Some(self.folder.raw()), self.private.as_str(), UnlinkatFlags::NoRemoveDir);
                Ok(())
            }
            Ok(false) => self.discard(),
            // Kept under its private name rather than lost; the error names it.
            Err(e) => Err(Error::nix("restore", self.folder.path.join(&self.private), e)),
        }
    }
}

fn regular(path: &Path, stat: &FileStat) -> Result<()> {
    let kind = SFlag::from_bits_truncate(stat.st_mode & SFlag::S_IFMT.bits());
    let what = match kind {
        SFlag::S_IFREG => return Ok(()),
        SFlag::S_IFLNK => Refusal::Symlink,
        SFlag::S_IFIFO => Refusal::Fifo,
        SFlag::S_IFDIR => Refusal::Folder,
        SFlag::S_IFCHR | SFlag::S_IFBLK => Refusal::Device,
        SFlag::S_IFSOCK => Refusal::Socket,
        _ => Refusal::Special,
    };
    Err(Error::Refused { path: path.to_path_buf(), what })
}

/// 16 hex digits from the kernel's random source: a name nobody can plant ahead.
fn random_suffix() -> Result<String> {
    let mut bytes = [0u8; 8];
    getrandom::getrandom(&mut bytes).map_err(|e| {
        Error::io("random name", "getrandom", &std::io::Error::from_raw_os_error(e.raw_os_error().unwrap_or(libc::EIO)))
    })?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}
