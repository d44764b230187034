//! The agent's failures, one variant per kind, each with its exit code.

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Store(#[from] netlab_store::Error),

    /// The kernel side failed in a way a resync cannot mend (sockets, signals).
    #[error("{0}")]
    Kernel(String),

    /// Another agent serves the same device.
    #[error("another vxlan-agent{} already serves {what} (lock {lock}); stop it first", pid.map(|p| format!(" (pid {p})")).unwrap_or_default())]
    Locked { what: String, pid: Option<u32>, lock: String },

    /// A status or lock file could not be written or read.
    #[error("{step} {path}: {reason}")]
    File { step: &'static str, path: String, reason: String },
}

impl Error {
    pub fn file(step: &'static str, path: &std::path::Path, error: std::io::Error) -> Error {
        Error::File {
            step,
            path: path.display().to_string(),
            reason: netns::Error::io("", error).to_string().trim_start_matches(": ").to_string(),
        }
    }

    /// 2: what was given cannot work (a store URL, values); 1: anything else.
    pub fn exit_code(&self) -> u8 {
        use netlab_store::Error as Store;
        match self {
            Error::Store(Store::Url { .. } | Store::Invalid { .. } | Store::Tls(_)) => 2,
            _ => 1,
        }
    }
}
