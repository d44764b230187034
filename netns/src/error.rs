//! One error type for every kernel primitive: the failed step, the object, and the
//! kernel's reason in lowercase ("create veth RED:veth0: file exists").

use std::fmt;

#[derive(Debug, thiserror::Error)]
#[error("{step}: {reason}")]
pub struct Error {
    step: String,
    reason: Reason,
}

/// Why a step failed, keeping the errno where the kernel gave one so callers can
/// match on it instead of on text.
#[derive(Debug)]
pub enum Reason {
    Errno(i32),
    Other(String),
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::Errno(code) => f.write_str(&errno_text(*code)),
            Reason::Other(text) => f.write_str(text),
        }
    }
}

impl Error {
    pub fn errno(step: impl Into<String>, code: i32) -> Self {
        Error { step: step.into(), reason: Reason::Errno(code.abs()) }
    }

    pub fn other(step: impl Into<String>, reason: impl fmt::Display) -> Self {
        Error { step: step.into(), reason: Reason::Other(reason.to_string()) }
    }

    pub fn io(step: impl Into<String>, err: std::io::Error) -> Self {
        match err.raw_os_error() {
            Some(code) => Self::errno(step, code),
            None => Self::other(step, err),
        }
    }

    pub fn nix(step: impl Into<String>, err: nix::Error) -> Self {
        Self::errno(step, err as i32)
    }

    pub fn netlink(step: impl Into<String>, err: rtnetlink::Error) -> Self {
        match &err {
            rtnetlink::Error::NetlinkError(msg) => match msg.code {
                Some(code) => Self::errno(step, code.get()),
                None => Self::other(step, "unexpected acknowledgement"),
            },
            other => Self::other(step, other.to_string().to_lowercase()),
        }
    }

    /// The errno the kernel answered with, if this failure came from the kernel.
    pub fn code(&self) -> Option<i32> {
        match self.reason {
            Reason::Errno(code) => Some(code),
            Reason::Other(_) => None,
        }
    }

    pub fn is_not_found(&self) -> bool {
        matches!(self.code(), Some(libc::ENODEV) | Some(libc::ENOENT) | Some(libc::ESRCH))
    }
}

/// The kernel's text for an errno, lowercase: "File exists" -> "file exists", without
/// the "(os error 17)" suffix that std adds.
pub fn errno_text(code: i32) -> String {
    let text = std::io::Error::from_raw_os_error(code).to_string();
    let text = match text.find(" (os error") {
        Some(cut) => &text[..cut],
        None => &text,
    };
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => format!("errno {code}"),
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errno_reads_like_the_kernel_in_lowercase() {
        let err = Error::errno("create veth RED:veth0", -libc::EEXIST);
        assert_eq!(err.to_string(), "create veth RED:veth0: file exists");
        assert_eq!(err.code(), Some(libc::EEXIST));
    }
}
