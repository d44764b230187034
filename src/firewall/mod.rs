//! The edge of the lab's firewall: runs `nft` and `iptables` inside a namespace, reads
//! their listings into the pure types of `plan::firewall`, and proves each object the
//! lab's before changing it (the nft table's comment, the iptables rule's comment,
//! each exactly the lab's mark). What the rules are is decided in `plan::firewall`.

pub mod iptables;
pub mod nft;

use std::path::PathBuf;

use crate::model::Place;

#[derive(Debug, thiserror::Error)]
pub enum FirewallError {
    #[error("{0} not found: install the {1} package")]
    Missing(&'static str, &'static str),
    /// The program ran and failed: its arguments and what it said.
    #[error("{program} {args} in {place}: {stderr}")]
    Failed { program: &'static str, args: String, place: Place, stderr: String },
    /// It could not be run there (the namespace, the process).
    #[error("run {program} in {place}")]
    Run {
        program: &'static str,
        place: Place,
        #[source]
        source: netns::Error,
    },
    #[error("nft table ip {name} in {place} exists and was not created by netlab")]
    Foreign { name: String, place: Place },
    #[error("read nft's listing of table {name} in {place}: {reason}")]
    Listing { name: String, place: Place, reason: String },
    #[error("build the nftables batch for {place}: {reason}")]
    Batch { place: Place, reason: String },
}

pub type Result<T, E = FirewallError> = std::result::Result<T, E>;

/// A program in PATH or the sbin directories (root's tools live there).
pub fn program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"].map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}
