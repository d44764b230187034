//! Names that end up in kernel calls and paths, validated once into types that cannot
//! hold a bad value.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Implements Display, FromStr-based serde and `as_str` for a validated string newtype.
macro_rules! string_type {
    ($name:ident) => {
        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.0)
            }
        }
        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                String::deserialize(d)?.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

fn portable(text: &str) -> bool {
    text.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

/// A lab's name: part of ownership marks ("netlab:NAME") and of file names.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LabName(String);
string_type!(LabName);

impl FromStr for LabName {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if s.is_empty() || s.len() > 48 || !portable(s) || s.starts_with('.') {
            return Err(format!(
                "invalid lab name `{s}`: use 1 to 48 letters, digits, `_`, `-` or `.`, not starting with `.`"
            ));
        }
        Ok(LabName(s.to_string()))
    }
}

/// A node: the name of its network namespace under /run/netns.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NodeName(String);
string_type!(NodeName);

pub const HOST: &str = "host";

impl FromStr for NodeName {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if s == HOST {
            return Err("`host` names the namespace netlab runs in; a node cannot use it".into());
        }
        if s.is_empty() || s.len() > 64 || !portable(s) || s.starts_with('.') {
            return Err(format!(
                "invalid node name `{s}`: use 1 to 64 letters, digits, `_`, `-` or `.`, not starting with `.`"
            ));
        }
        Ok(NodeName(s.to_string()))
    }
}

/// An interface name as the kernel accepts it: 1 to 15 bytes, no `/`, `:` or space,
/// not `.` or `..`. We also keep to printable ASCII, and refuse what the kernel treats
/// specially: `%` (a name template: `br%d` makes `br0`, a device the file never names)
/// and `all` and `default` (the names of the per-protocol sysctl folders
/// `net.ipv4.conf.all`, so no device can take them).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct IfName(String);
string_type!(IfName);

pub const IFNAMSIZ: usize = 16;

impl FromStr for IfName {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if s.len() >= IFNAMSIZ {
            return Err(format!("interface name `{s}` is {} bytes, the kernel allows at most 15", s.len()));
        }
        let bad_byte = |b: u8| !b.is_ascii_graphic() || matches!(b, b'/' | b':');
        if s.is_empty() || s == "." || s == ".." || s.bytes().any(bad_byte) {
            return Err(format!("invalid interface name `{s}`"));
        }
        if s.contains('%') {
            return Err(format!(
                "interface name `{s}` holds `%`, which the kernel takes as a template (`br%d` becomes `br0`)"
            ));
        }
        if s == "all" || s == "default" {
            return Err(format!("interface name `{s}` is reserved by the kernel (net.ipv4.conf.{s})"));
        }
        Ok(IfName(s.to_string()))
    }
}

impl IfName {
    pub fn is_loopback(&self) -> bool {
        self.0 == "lo"
    }
}

/// Where an object lives: the namespace netlab runs in, or a node's namespace.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Place {
    Host,
    Node(NodeName),
}

impl Place {
    pub fn node(&self) -> Option<&NodeName> {
        match self {
            Place::Host => None,
            Place::Node(node) => Some(node),
        }
    }

    /// "RED:veth0", or "veth0" for the host: how objects are named in messages.
    pub fn qualify(&self, name: impl fmt::Display) -> String {
        match self {
            Place::Host => format!("{name}"),
            Place::Node(node) => format!("{node}:{name}"),
        }
    }
}

impl fmt::Display for Place {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Place::Host => f.write_str(HOST),
            Place::Node(node) => f.write_str(node.as_str()),
        }
    }
}

impl FromStr for Place {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if s == HOST {
            Ok(Place::Host)
        } else {
            s.parse().map(Place::Node)
        }
    }
}

impl Serialize for Place {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Place {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?.parse().map_err(serde::de::Error::custom)
    }
}

/// A per-namespace sysctl key under `net.` such as `net.ipv4.ip_forward`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SysctlKey(String);
string_type!(SysctlKey);

impl FromStr for SysctlKey {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let parts_ok = s.split('.').all(|part| {
            !part.is_empty() && part.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-'))
        });
        if !s.starts_with("net.") || !parts_ok {
            return Err(format!(
                "invalid sysctl `{s}`: only per-namespace keys under `net.` made of letters, digits, `_` and `-` are allowed"
            ));
        }
        Ok(SysctlKey(s.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interface_names_follow_the_kernel() {
        assert!("veth0".parse::<IfName>().is_ok());
        assert!("exactly15bytes_".parse::<IfName>().is_ok());
        assert!("sixteen_bytes___".parse::<IfName>().unwrap_err().contains("16 bytes"));
        for bad in ["", ".", "..", "a/b", "a:b", "a b", "é", "br%d", "%", "all", "default"] {
            assert!(bad.parse::<IfName>().is_err(), "{bad}");
        }
    }

    #[test]
    fn node_names_are_safe_paths() {
        assert!("RED".parse::<NodeName>().is_ok());
        for bad in ["", "host", "..", ".hidden", "a/b", "a b"] {
            assert!(bad.parse::<NodeName>().is_err(), "{bad}");
        }
    }

    #[test]
    fn places_round_trip() {
        assert_eq!("host".parse::<Place>().unwrap(), Place::Host);
        assert_eq!("RED".parse::<Place>().unwrap().to_string(), "RED");
        assert_eq!(Place::Host.qualify("br0"), "br0");
    }

    #[test]
    fn sysctl_keys_stay_under_net() {
        assert!("net.ipv4.ip_forward".parse::<SysctlKey>().is_ok());
        assert!("net.ipv4.conf.veth-0.forwarding".parse::<SysctlKey>().is_ok());
        for bad in ["kernel.panic", "net..x", "net.ipv4/x", "net"] {
            assert!(bad.parse::<SysctlKey>().is_err(), "{bad}");
        }
    }
}
