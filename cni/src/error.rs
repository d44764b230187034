//! Every way a command fails, each with its CNI error code, and the spec's error JSON
//! (`{"cniVersion","code","msg","details"}`) the binary prints on stdout.
//!
//! Codes 1-99 are the spec's; 100 and above are this plugin's own (the spec leaves
//! them to plugins): 100 the kernel refused a change, 101 no free address, 102 CHECK
//! found the attachment not as ADD left it.

use std::path::PathBuf;

use serde_json::{json, Value};

use crate::version::Version;

pub const INCOMPATIBLE_VERSION: u32 = 1;
pub const INVALID_ENVIRONMENT: u32 = 4;
pub const IO_FAILURE: u32 = 5;
pub const DECODE_FAILURE: u32 = 6;
pub const INVALID_CONFIG: u32 = 7;
pub const TRY_AGAIN_LATER: u32 = 11;
pub const NOT_AVAILABLE: u32 = 50;
pub const KERNEL_FAILURE: u32 = 100;
pub const NO_FREE_ADDRESS: u32 = 101;
pub const CHECK_FAILED: u32 = 102;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Environment(#[from] crate::invocation::Error),
    #[error(transparent)]
    Config(#[from] crate::config::Error),
    #[error(transparent)]
    State(#[from] crate::state::Error),
    #[error(transparent)]
    Kernel(#[from] netns::Error),
    #[error("masquerade traffic of the node's subnet: {0}")]
    Masquerade(String),
    /// ADD before the node daemon wrote a usable subnet file.
    #[error("subnet file {}: {reason}", path.display())]
    SubnetFile { path: PathBuf, reason: String },
    /// STATUS: ADD cannot be served now.
    #[error("not available: {0}")]
    NotAvailable(String),
    #[error("check {attachment}: {problems}")]
    Check { attachment: String, problems: String },
    #[error("read standard input: {0}")]
    Stdin(std::io::Error),
}

impl Error {
    pub fn code(&self) -> u32 {
        match self {
            Error::Environment(_) => INVALID_ENVIRONMENT,
            Error::Config(e) => e.code(),
            Error::State(e) => e.code(),
            Error::Kernel(_) | Error::Masquerade(_) => KERNEL_FAILURE,
            Error::SubnetFile { .. } => TRY_AGAIN_LATER,
            Error::NotAvailable(_) => NOT_AVAILABLE,
            Error::Check { .. } => CHECK_FAILED,
            Error::Stdin(_) => IO_FAILURE,
        }
    }

    /// What the operator can do about it, when there is something to say.
    fn details(&self) -> &'static str {
        match self {
            Error::SubnetFile { .. } | Error::NotAvailable(_) => {
                "the node daemon (vxlan-agent node) writes the subnet file once it holds a lease"
            }
            Error::Config(crate::config::Error::Version { .. }) => {
                "supported versions: 0.3.1, 0.4.0, 1.0.0, 1.1.0 (CHECK from 0.4.0, STATUS and GC from 1.1.0)"
            }
            _ => "",
        }
    }

    /// The spec's error structure, in `version` (the config's when it was readable).
    pub fn to_json(&self, version: Option<Version>) -> Value {
        json!({
            "cniVersion": version.unwrap_or(Version::LATEST).as_str(),
            "code": self.code(),
            "msg": self.to_string(),
            "details": self.details(),
        })
    }
}

/// An I/O error as the kernel words it, in lowercase ("no such file or directory").
pub(crate) fn io_text(error: &std::io::Error) -> String {
    match error.raw_os_error() {
        Some(code) => netns::errno_text(code),
        None => error.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_json_has_the_spec_fields() {
        let error = Error::SubnetFile { path: "/run/flannel/subnet.env".into(), reason: "missing".into() };
        let value = error.to_json(Some(Version::V1_0_0));
        assert_eq!(value["cniVersion"], "1.0.0");
        assert_eq!(value["code"], 11);
        assert_eq!(value["msg"], "subnet file /run/flannel/subnet.env: missing");
        assert!(value["details"].as_str().unwrap().contains("vxlan-agent node"));
        assert_eq!(Error::NotAvailable("x".into()).to_json(None)["cniVersion"], "1.1.0");
    }
}
