//! Where a store is: `dir:PATH` or `etcd://HOST:PORT[,HOST:PORT...][/PREFIX]`.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum StoreUrl {
    /// A folder holding `arp/` and `fdb/`.
    Dir(PathBuf),
    /// etcd members ("host:port") and the key prefix of this overlay.
    Etcd { endpoints: Vec<String>, prefix: String },
}

/// Keys of an overlay whose URL names no prefix.
pub const DEFAULT_PREFIX: &str = "/netlab/vxlan";

impl FromStr for StoreUrl {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        if let Some(path) = text.strip_prefix("dir:") {
            if path.is_empty() {
                return Err("store `dir:` needs a path, as in dir:/var/lib/overlay".into());
            }
            return Ok(StoreUrl::Dir(PathBuf::from(path)));
        }
        if let Some(rest) = text.strip_prefix("etcd://") {
            let (members, prefix) = match rest.split_once('/') {
                Some((members, prefix)) => (members, format!("/{}", prefix.trim_end_matches('/'))),
                None => (rest, DEFAULT_PREFIX.to_string()),
            };
            if prefix == "/" {
                return Err(format!("store `{text}`: the key prefix cannot be empty"));
            }
            let endpoints: Vec<String> = members.split(',').map(str::to_string).collect();
            for member in &endpoints {
                let valid = member.rsplit_once(':').is_some_and(|(host, port)| {
                    !host.is_empty()
                        && host.chars().all(|c| c.is_ascii_alphanumeric() || ".-[]:".contains(c))
                        && port.parse::<u16>().is_ok_and(|p| p > 0)
                });
                if !valid {
                    return Err(format!("store `{text}`: `{member}` is not HOST:PORT"));
                }
            }
            return Ok(StoreUrl::Etcd { endpoints, prefix });
        }
        Err(format!("store `{text}`: expected dir:PATH or etcd://HOST:PORT[,HOST:PORT...][/PREFIX]"))
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
    type Error = String;
    fn try_from(text: String) -> Result<Self, String> {
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
        assert_eq!("dir:storage".parse(), Ok(StoreUrl::Dir("storage".into())));
        assert_eq!(
            "etcd://192.168.104.1:2379,h2:2379/overlay42".parse(),
            Ok(StoreUrl::Etcd {
                endpoints: vec!["192.168.104.1:2379".into(), "h2:2379".into()],
                prefix: "/overlay42".into()
            })
        );
        let url: StoreUrl = "etcd://127.0.0.1:2379".parse().unwrap();
        assert_eq!(url.to_string(), "etcd://127.0.0.1:2379/netlab/vxlan");
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
        ] {
            assert!(bad.parse::<StoreUrl>().is_err(), "{bad}");
        }
    }
}
