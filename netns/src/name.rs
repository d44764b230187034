//! Names that end up in kernel calls and in paths, checked once: a link name as the
//! kernel takes it (`dev_valid_name`), and a namespace name as iproute2 keeps it
//! (a file in /run/netns).

use std::fmt;
use std::str::FromStr;

/// A network interface name: 1 to 15 bytes, not `.` or `..`, no `/`, `:`, `%` or
/// whitespace (the kernel refuses the first ones, and expands `%d` into a number).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LinkName(String);

impl FromStr for LinkName {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let problem = if text.is_empty() || text.len() > 15 {
            Some("an interface name has 1 to 15 bytes")
        } else if text == "." || text == ".." {
            Some("an interface name cannot be `.` or `..`")
        } else if text.chars().any(|c| c == '/' || c == ':' || c == '%' || c.is_whitespace() || c.is_control()) {
            Some("an interface name holds no `/`, `:`, `%`, whitespace or control characters")
        } else {
            None
        };
        match problem {
            Some(why) => Err(format!("invalid interface name `{}`: {why}", text.escape_debug())),
            None => Ok(LinkName(text.to_string())),
        }
    }
}

/// A named network namespace: a file name in /run/netns (1 to 255 bytes, not `.` or
/// `..`, no `/`, whitespace or control characters).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NamespaceName(String);

impl FromStr for NamespaceName {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let problem = if text.is_empty() || text.len() > 255 {
            Some("a namespace name has 1 to 255 bytes")
        } else if text == "." || text == ".." {
            Some("a namespace name cannot be `.` or `..`")
        } else if text.chars().any(|c| c == '/' || c.is_whitespace() || c.is_control()) {
            Some("a namespace name holds no `/`, whitespace or control characters")
        } else {
            None
        };
        match problem {
            Some(why) => Err(format!("invalid namespace name `{}`: {why}", text.escape_debug())),
            None => Ok(NamespaceName(text.to_string())),
        }
    }
}

macro_rules! text_type {
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
    };
}
text_type!(LinkName);
text_type!(NamespaceName);

impl From<NamespaceName> for crate::Netns {
    fn from(name: NamespaceName) -> crate::Netns {
        crate::Netns::Named(name.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_names_the_kernel_takes() {
        for good in ["vxlan1", "flannel.1", "eth0", "a", "x".repeat(15).as_str()] {
            assert!(good.parse::<LinkName>().is_ok(), "{good}");
        }
        for bad in ["", ".", "..", "x/../../y", "br%d", "a:b", "a b", "x".repeat(16).as_str(), "a\n"] {
            assert!(bad.parse::<LinkName>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn namespace_names_that_are_plain_file_names() {
        for good in ["ov1", "RED", "cni-1234-abcd"] {
            assert!(good.parse::<NamespaceName>().is_ok(), "{good}");
        }
        for bad in ["", ".", "..", "a/b", "../etc", "a b"] {
            assert!(bad.parse::<NamespaceName>().is_err(), "{bad:?}");
        }
    }
}
