//! Names that become file names or kernel names, checked once: the container ID and
//! the network name (the spec's rule: an alphanumeric, then alphanumerics, `_`, `.`
//! or `-`; so never `/`, `..` or NUL), the attachment they make with the interface
//! name, and the host end of its veth, derived from both.

use std::fmt;
use std::str::FromStr;

use netns::name::LinkName;

/// Longer IDs are refused: the attachment's file name must fit in 255 bytes.
pub const MAX_ID: usize = 200;

/// A container ID or a network name: `[A-Za-z0-9][A-Za-z0-9_.-]*`, at most `MAX_ID`
/// bytes. Safe as a file name.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Identifier(String);

impl FromStr for Identifier {
    type Err = String;

    fn from_str(text: &str) -> Result<Identifier, String> {
        let mut chars = text.chars();
        let problem = match chars.next() {
            None => Some("is empty"),
            Some(first) if !first.is_ascii_alphanumeric() => Some("must start with a letter or digit"),
            _ if text.len() > MAX_ID => Some("is longer than 200 bytes"),
            _ if !chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')) => {
                Some("may only hold letters, digits, `_`, `.` and `-`")
            }
            _ => None,
        };
        match problem {
            Some(why) => Err(format!("`{}` {why}", text.escape_debug())),
            None => Ok(Identifier(text.to_string())),
        }
    }
}

impl Identifier {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Identifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The spec's primary key of an attachment within a network: container and interface.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AttachmentId {
    pub container: Identifier,
    pub ifname: LinkName,
}

impl AttachmentId {
    /// `CONTAINER:IFNAME`: a file name (neither part holds `/`, and `:` is in
    /// neither, so it reads back unambiguously).
    pub fn file_name(&self) -> String {
        format!("{}:{}", self.container, self.ifname)
    }

    pub fn from_file_name(name: &str) -> Option<AttachmentId> {
        let (container, ifname) = name.split_once(':')?;
        Some(AttachmentId { container: container.parse().ok()?, ifname: ifname.parse().ok()? })
    }

    /// The host end of the attachment's veth: `veth` and 11 hex digits (44 bits) of a
    /// hash of container and interface, so DEL finds it without any state.
    pub fn host_veth(&self) -> LinkName {
        let hash = fnv1a(&[self.container.as_str().as_bytes(), &[0], self.ifname.as_str().as_bytes()]);
        format!("veth{:011x}", hash >> 20).parse().expect("15 hex characters make an interface name")
    }
}

impl fmt::Display for AttachmentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "container {} interface {}", self.container, self.ifname)
    }
}

/// FNV-1a, 64 bits: stable across Rust releases (std's hasher is not promised to be).
pub(crate) fn fnv1a(parts: &[&[u8]]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in parts.iter().flat_map(|part| part.iter()) {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(container: &str, ifname: &str) -> AttachmentId {
        AttachmentId { container: container.parse().unwrap(), ifname: ifname.parse().unwrap() }
    }

    #[test]
    fn identifiers_that_are_safe_file_names() {
        for good in ["a", "3f6940ab5ab4", "pod_1.net-2", "x".repeat(200).as_str()] {
            assert!(good.parse::<Identifier>().is_ok(), "{good}");
        }
        for bad in ["", "..", ".hidden", "-x", "a/b", "../etc", "a\0b", "a b", "a:b", "x".repeat(201).as_str()] {
            assert!(bad.parse::<Identifier>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn attachment_file_names_read_back() {
        let attachment = id("c1.x-y", "eth0");
        assert_eq!(attachment.file_name(), "c1.x-y:eth0");
        assert_eq!(AttachmentId::from_file_name("c1.x-y:eth0"), Some(attachment));
        assert_eq!(AttachmentId::from_file_name("c1"), None);
        assert_eq!(AttachmentId::from_file_name("../x:eth0"), None);
    }

    #[test]
    fn host_veth_names_are_stable_short_and_distinct() {
        let name = id("c1", "eth0").host_veth();
        assert_eq!(name.as_str().len(), 15);
        assert!(name.as_str().starts_with("veth"));
        assert_eq!(name, id("c1", "eth0").host_veth());
        assert_ne!(name, id("c1", "eth1").host_veth());
        assert_ne!(name, id("c2", "eth0").host_veth());
        // The separator keeps ("ab", "c") and ("a", "bc") apart.
        assert_ne!(id("ab", "c").host_veth(), id("a", "bc").host_veth());
        assert_eq!(id("c1", "eth0").host_veth().as_str(), format!("veth{:011x}", fnv1a(&[b"c1", &[0], b"eth0"]) >> 20));
    }
}
