//! The CNI spec versions this plugin speaks, what each one allows, and the VERSION
//! reply.

use serde_json::{json, Value};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Version {
    V0_3_1,
    V0_4_0,
    V1_0_0,
    V1_1_0,
}

pub const SUPPORTED: [Version; 4] = [Version::V0_3_1, Version::V0_4_0, Version::V1_0_0, Version::V1_1_0];

impl Version {
    pub const LATEST: Version = Version::V1_1_0;

    pub fn parse(text: &str) -> Option<Version> {
        SUPPORTED.into_iter().find(|v| v.as_str() == text)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Version::V0_3_1 => "0.3.1",
            Version::V0_4_0 => "0.4.0",
            Version::V1_0_0 => "1.0.0",
            Version::V1_1_0 => "1.1.0",
        }
    }

    /// CHECK came with 0.4.0.
    pub fn has_check(self) -> bool {
        self >= Version::V0_4_0
    }

    /// STATUS and GC came with 1.1.0.
    pub fn has_status_and_gc(self) -> bool {
        self >= Version::V1_1_0
    }

    /// Before 1.0.0, every entry of `ips` names its family (`"version": "4"`).
    pub fn ips_carry_family(self) -> bool {
        self < Version::V1_0_0
    }

    /// 1.1.0 added `mtu` to interfaces.
    pub fn interfaces_carry_mtu(self) -> bool {
        self >= Version::V1_1_0
    }
}

/// The reply to VERSION.
pub fn reply() -> Value {
    json!({
        "cniVersion": Version::LATEST.as_str(),
        "supportedVersions": SUPPORTED.iter().map(|v| v.as_str()).collect::<Vec<_>>(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_and_what_they_allow() {
        assert_eq!(Version::parse("0.4.0"), Some(Version::V0_4_0));
        for unsupported in ["0.1.0", "0.2.0", "0.3.0", "1.2.0", "", "1.0"] {
            assert_eq!(Version::parse(unsupported), None, "{unsupported}");
        }
        assert!(!Version::V0_3_1.has_check() && Version::V0_4_0.has_check());
        assert!(!Version::V1_0_0.has_status_and_gc() && Version::V1_1_0.has_status_and_gc());
        assert!(Version::V0_4_0.ips_carry_family() && !Version::V1_0_0.ips_carry_family());
        assert_eq!(
            reply().to_string(),
            r#"{"cniVersion":"1.1.0","supportedVersions":["0.3.1","0.4.0","1.0.0","1.1.0"]}"#
        );
    }
}
