//! What can go wrong with a store, one variant per failed step, so callers match on
//! the kind (a compacted watch is listed again, a refused file is skipped) instead of
//! reading messages.

use std::path::PathBuf;

pub type Result<T> = std::result::Result<T, Error>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file operation of the folder store failed.
    #[error("{step} {}: {}", path.display(), netns::errno_text(*errno))]
    Io { step: &'static str, path: PathBuf, errno: i32 },

    /// A folder entry that is not a plain file or folder of its own: never followed,
    /// never read (a symlink, a FIFO, a device...).
    #[error("{}: {what}; refused", path.display())]
    Refused { path: PathBuf, what: Refusal },

    /// A value longer than a store holds; the first bytes are shown.
    #[error("{key}: value of {size} bytes or more is over the limit of {limit} (starts `{start}`); refused")]
    TooLarge { key: String, size: usize, limit: usize, start: String },

    /// A key or value that the keyspace cannot use.
    #[error("{key}: {why}")]
    Invalid { key: String, why: String },

    /// No etcd member could be reached.
    #[error("connect to etcd {endpoint}: {source}")]
    Connect { endpoint: String, source: etcd_client::Error },

    /// A request to etcd failed.
    #[error("{step}{}{key} (etcd {endpoint}): {source}", if key.is_empty() { "" } else { " " })]
    Etcd { step: &'static str, key: String, endpoint: String, source: etcd_client::Error },

    /// The revision a watch was to start from was compacted away: list again.
    #[error("watch {prefix}: revision {revision} compacted (now {compacted}); listing again")]
    Compacted { prefix: String, revision: i64, compacted: i64 },

    /// A watch stopped for another reason (cancelled, stream ended, folder removed).
    #[error("watch {what}: {why}")]
    WatchEnded { what: String, why: String },

    /// A lease that is gone (expired, revoked): its keys are gone with it.
    #[error("lease {0:x} expired")]
    LeaseExpired(i64),

    /// The TLS files for etcd are unusable.
    #[error("etcd tls: {0}")]
    Tls(String),

    /// A store URL that does not parse.
    #[error("store `{text}`: {why}")]
    Url { text: String, why: String },
}

/// What a refused folder entry is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    Symlink,
    /// A symlink where a folder was expected.
    SymlinkNotFolder,
    NotFolder,
    Folder,
    Fifo,
    Device,
    Socket,
    /// Some other kind of file.
    Special,
    /// A file the store's user may not read (another user's private file).
    Unreadable,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Refusal::Symlink => "a symbolic link",
            Refusal::SymlinkNotFolder => "a symbolic link, not a folder",
            Refusal::NotFolder => "not a folder",
            Refusal::Folder => "a folder",
            Refusal::Fifo => "a FIFO",
            Refusal::Device => "a device",
            Refusal::Socket => "a socket",
            Refusal::Special => "not a regular file",
            Refusal::Unreadable => "not readable",
        })
    }
}

impl Error {
    pub(crate) fn io(step: &'static str, path: impl Into<PathBuf>, error: &std::io::Error) -> Error {
        let path = path.into();
        match error.raw_os_error() {
            // O_NOFOLLOW on a symlink.
            Some(libc::ELOOP) => Error::Refused { path, what: Refusal::Symlink },
            code => Error::Io { step, path, errno: code.unwrap_or(libc::EIO) },
        }
    }

    pub(crate) fn nix(step: &'static str, path: impl Into<PathBuf>, errno: nix::errno::Errno) -> Error {
        Error::io(step, path, &std::io::Error::from_raw_os_error(errno as i32))
    }

    /// True for errors that come from the content rather than from the store being
    /// unreachable: the follower skips the key instead of starting over.
    pub fn is_content(&self) -> bool {
        matches!(self, Error::Refused { .. } | Error::TooLarge { .. } | Error::Invalid { .. })
    }
}
