//! The edge of the lab's firewall: runs `nft` and `iptables` inside a namespace, reads
//! their listings into the pure types of `plan::firewall`, and proves each object the
//! lab's before changing it (the nft table's comment, the iptables rule's comment,
//! each exactly the lab's mark). What the rules are is decided in `plan::firewall`.

pub mod iptables;
pub mod nft;

use std::path::PathBuf;

/// A program in PATH or the sbin directories (root's tools live there).
pub fn program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"].map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}
