//! Where a store is: `dir:PATH` or `etcd://HOST:PORT[,HOST:PORT...][/PREFIX]`, and
//! the TLS files for etcd.

use std::fmt;
use std::net::Ipv6Addr;
use std::path::PathBuf;
use std::str::FromStr;

use crate::error::Error;

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum StoreUrl {
    /// A folder holding the keys as files.
    Dir(PathBuf),
    /// etcd members ("host:port") and the key prefix of this store.
    Etcd { endpoints: Vec<String>, prefix: String },
}

/// Keys of an overlay whose URL names no prefix.
pub const DEFAULT_PREFIX: &str = "/netlab/vxlan";

/// Files for TLS to etcd (PEM). Read when the store is opened, so a renewed
/// certificate is used by the next connection of a new process.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub struct Tls {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<PathBuf>,
}

impl StoreUrl {
    /// The same store with another default prefix (the flannel keyspace lives
    /// under its own); a prefix written in the URL wins.
    pub fn parse_with_default(text: &str, default_prefix: &str) -> Result<StoreUrl, Error> {
        let fail = |why: &str| Error::Url { text: text.to_string(), why: why.to_string() };
        if let Some(path) = text.strip_prefix("dir:") {
            if path.is_empty() {
                return Err(fail("`dir:` needs a path, as in dir:/var/lib/overlay"));
            }
            return Ok(StoreUrl::Dir(PathBuf::from(path)));
        }
        let Some(rest) = text.strip_prefix("etcd://") else {
            return Err(fail("expected dir:PATH or etcd://HOST:PORT[,HOST:PORT...][/PREFIX]"));
        };
        let (members, prefix) = match rest.split_once('/') {
            Some((members, prefix)) => (members, format!("/{}", prefix.trim_end_matches('/'))),
            None => (rest, default_prefix.to_string()),
        };
        if prefix == "/" {
            return Err(fail("the key prefix cannot be empty"));
        }
        if prefix.chars().any(|c| c.is_whitespace() || c.is_control()) || prefix.contains("//") {
            return Err(fail("the key prefix holds whitespace, control characters or an empty segment"));
        }
        let endpoints: Vec<String> = members.split(',').map(str::to_string).collect();
        for member in &endpoints {
            if !is_host_port(member) {
                return Err(fail(&format!("`{member}` is not HOST:PORT (an IPv6 address goes in brackets)")));
            }
        }
        Ok(StoreUrl::Etcd { endpoints, prefix })
    }
}

/// `host:port`, `1.2.3.4:port` or `[v6]:port`, with a port from 1 to 65535.
fn is_host_port(member: &str) -> bool {
    let Some((host, port)) = member.rsplit_once(':') else { return false };
    if !port.parse::<u16>().is_ok_and(|p| p > 0) {
        return false;
    }
    if let Some(inner) = host.strip_prefix('[') {
        return inner.strip_suffix(']').is_some_and(|v6| v6.parse::<Ipv6Addr>().is_ok());
    }
    // A name or an IPv4 address: labels of letters, digits and hyphens.
    !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
}

impl FromStr for StoreUrl {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self, Error> {
        StoreUrl::parse_with_default(text, DEFAULT_PREFIX)
    }
}

impl fmt::Display for StoreUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreUrl::Dir(path) => write!(f, "dir:{}", path.display()),
            StoreUrl::Etcd { endpoints, prefix } => write!(f, "etcd://{}{prefix}", endpoints.join(",")),
        }
    }
}

impl TryFrom<String> for StoreUrl {
    type Error = Error;
    fn try_from(text: String) -> Result<Self, Error> {
        text.parse()
    }
}

impl From<StoreUrl> for String {
    fn from(url: StoreUrl) -> String {
        url.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_both_kinds() {
        assert_eq!("dir:storage".parse::<StoreUrl>().unwrap(), StoreUrl::Dir("storage".into()));
        assert_eq!(
            "etcd://192.168.104.1:2379,h2:2379,[::1]:2379/overlay42".parse::<StoreUrl>().unwrap(),
            StoreUrl::Etcd {
                endpoints: vec!["192.168.104.1:2379".into(), "h2:2379".into(), "[::1]:2379".into()],
                prefix: "/overlay42".into()
            }
        );
        let url: StoreUrl = "etcd://127.0.0.1:2379".parse().unwrap();
        assert_eq!(url.to_string(), "etcd://127.0.0.1:2379/netlab/vxlan");
        let url = StoreUrl::parse_with_default("etcd://127.0.0.1:2379", "/coreos.com/network").unwrap();
        assert_eq!(url.to_string(), "etcd://127.0.0.1:2379/coreos.com/network");
    }

    #[test]
    fn refuses_what_is_not_a_store() {
        for bad in [
            "dir:",
            "etcd://",
            "etcd://host",
            "etcd://host:0",
            "etcd://h:2379,/x",
            "etcd://h;rm:1",
            "http://x:1",
            "etcd://h:1/",
            "etcd://[::1:2379",
            "etcd://::1:2379",
            "etcd://[zz]:1",
            "etcd://-h:1",
            "etcd://h:1/a b",
            "etcd://h:1/a//b",
        ] {
            let error = bad.parse::<StoreUrl>().unwrap_err();
            assert!(matches!(error, Error::Url { .. }), "{bad}: {error}");
        }
    }
}
