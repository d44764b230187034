//! How netlab recognises what it made: an interface alias naming the lab on every link
//! it creates (and on `lo` of every namespace it creates), an interface group derived
//! from the lab's name (set in the creating request itself, so a link whose alias
//! was not yet set when an apply was killed is still recognised), and a route
//! protocol number of its own.

use crate::model::LabName;

/// The protocol netlab's routes and static neighbour entries carry (`proto 77` in
/// `ip route` and `ip neigh`).
pub const PROTOCOL: u8 = 77;

pub fn mark(lab: &LabName) -> String {
    format!("netlab:{lab}")
}

/// The lab named by a mark, if the alias is a netlab mark at all.
pub fn lab_of(alias: &str) -> Option<&str> {
    alias.strip_prefix("netlab:")
}

/// A namespace named like one of the lab's nodes that the lab did not make.
#[derive(Debug, thiserror::Error)]
#[error("namespace {namespace} {owner}: refusing to run in it")]
pub struct NotOurs {
    namespace: String,
    owner: String,
}

/// Whether a namespace whose `lo` has `alias` is the lab's.
pub fn check_namespace(lab: &LabName, namespace: &str, alias: Option<&str>) -> Result<(), NotOurs> {
    if alias == Some(mark(lab).as_str()) {
        return Ok(());
    }
    let owner = match alias.and_then(lab_of) {
        Some(other) => format!("belongs to lab {other}, not to lab {lab}"),
        None => format!("was not created by netlab (lab {lab})"),
    };
    Err(NotOurs { namespace: namespace.to_string(), owner })
}

/// FNV-1a of the name, kept away from small numbers people use for groups by hand and
/// below 2^31, which is as far as iproute2 reads (`ip link show group N`). Two labs
/// may share a group; the group is never trusted alone (see `apply`).
pub fn group(lab: &LabName) -> u32 {
    let mut hash: u32 = 0x811c_9dc5;
    for byte in lab.as_str().bytes() {
        hash ^= u32::from(byte);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    (hash & 0x3fff_ffff) | 0x4000_0000
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marks_name_the_lab() {
        let lab: LabName = "bridge".parse().unwrap();
        assert_eq!(mark(&lab), "netlab:bridge");
        assert_eq!(lab_of(&mark(&lab)), Some("bridge"));
        assert!((0x4000_0000..0x8000_0000).contains(&group(&lab)));
        assert_ne!(group(&lab), group(&"veth-pair".parse().unwrap()));
    }
}
