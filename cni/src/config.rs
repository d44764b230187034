//! The network configuration on standard input, decoded (code 6 when it is not JSON of
//! the right shape), its version checked (code 1) and its values validated (code 7).
//! Keys of other conventions (`runtimeConfig`, `args`, `capabilities`, `dns`) are
//! accepted and ignored; `prevResult` is kept for chaining and CHECK.

use std::path::PathBuf;

use netns::name::LinkName;
use serde::Deserialize;
use serde_json::Value;

use crate::error::{DECODE_FAILURE, INCOMPATIBLE_VERSION, INVALID_CONFIG};
use crate::names::Identifier;
use crate::version::Version;

pub const DEFAULT_SUBNET_FILE: &str = "/run/flannel/subnet.env";
pub const DEFAULT_BRIDGE: &str = "cni0";
pub const DEFAULT_DATA_DIR: &str = "/var/lib/cni/netlab";
pub const TYPE: &str = "netlab-cni";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("decode network config: {0}")]
    Decode(String),
    #[error("incompatible CNI version {asked}")]
    Version { asked: String },
    #[error("config version {version} has no {command} (CHECK needs 0.4.0, STATUS and GC 1.1.0)")]
    CommandVersion { version: &'static str, command: &'static str },
    #[error("invalid network config: {0}")]
    Invalid(String),
}

impl Error {
    pub fn code(&self) -> u32 {
        match self {
            Error::Decode(_) => DECODE_FAILURE,
            Error::Version { .. } | Error::CommandVersion { .. } => INCOMPATIBLE_VERSION,
            Error::Invalid(_) => INVALID_CONFIG,
        }
    }
}

/// A network configuration, validated.
#[derive(Clone, Debug, PartialEq)]
pub struct NetConf {
    pub version: Version,
    pub name: Identifier,
    pub subnet_file: PathBuf,
    pub bridge: LinkName,
    /// A default route via the gateway in the container (the cluster route is always there).
    pub is_gateway: bool,
    pub ip_masq: bool,
    /// `None`: the subnet file's FLANNEL_MTU.
    pub mtu: Option<u32>,
    pub data_dir: PathBuf,
    pub prev_result: Option<Value>,
    /// GC: the attachments still valid (`None`: no list given, so none is).
    pub valid_attachments: Option<Vec<GcAttachment>>,
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct GcAttachment {
    #[serde(rename = "containerID")]
    pub container_id: String,
    pub ifname: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawConfig {
    name: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
    subnet_file: Option<PathBuf>,
    bridge: Option<String>,
    is_gateway: Option<bool>,
    ip_masq: Option<bool>,
    mtu: Option<u32>,
    data_dir: Option<PathBuf>,
    prev_result: Option<Value>,
    #[serde(rename = "cni.dev/valid-attachments")]
    valid_attachments: Option<Vec<GcAttachment>>,
    #[serde(rename = "cni.dev/attachments")]
    attachments: Option<Vec<GcAttachment>>,
}

/// The version the input asks for, as far as it can be read: for the error reply.
pub fn version_of(input: &[u8]) -> Option<Version> {
    let value: Value = serde_json::from_slice(input).ok()?;
    Version::parse(value.get("cniVersion")?.as_str()?)
}

pub fn parse(input: &[u8]) -> Result<NetConf, Error> {
    let value: Value = serde_json::from_slice(input).map_err(|e| Error::Decode(e.to_string()))?;
    if !value.is_object() {
        return Err(Error::Decode("expected a JSON object".to_string()));
    }
    let version = match value.get("cniVersion") {
        None => return Err(Error::Version { asked: "(none given)".to_string() }),
        Some(Value::String(text)) => Version::parse(text).ok_or_else(|| Error::Version { asked: text.clone() })?,
        Some(other) => return Err(Error::Decode(format!("cniVersion: expected a string, found {other}"))),
    };
    let raw: RawConfig = serde_json::from_value(value).map_err(|e| Error::Decode(e.to_string()))?;
    let invalid = |text: String| Error::Invalid(text);
    let name = raw.name.ok_or_else(|| invalid("missing network name".to_string()))?;
    let name = name.parse().map_err(|why| invalid(format!("network name {why}")))?;
    if let Some(kind) = raw.kind.filter(|kind| kind != TYPE) {
        return Err(invalid(format!("type is `{kind}`, this plugin is `{TYPE}`")));
    }
    let bridge =
        raw.bridge.as_deref().unwrap_or(DEFAULT_BRIDGE).parse().map_err(|why| invalid(format!("bridge: {why}")))?;
    let absolute = |key: &str, path: Option<PathBuf>, default: &str| match path {
        Some(path) if !path.is_absolute() => {
            Err(invalid(format!("{key} `{}` is not an absolute path", path.display())))
        }
        Some(path) => Ok(path),
        None => Ok(PathBuf::from(default)),
    };
    let subnet_file = absolute("subnetFile", raw.subnet_file, DEFAULT_SUBNET_FILE)?;
    let data_dir = absolute("dataDir", raw.data_dir, DEFAULT_DATA_DIR)?;
    if let Some(mtu) = raw.mtu.filter(|mtu| !(68..=65535).contains(mtu)) {
        return Err(invalid(format!("mtu {mtu} is outside 68..65535")));
    }
    if let Some(prev) = raw.prev_result.as_ref().filter(|prev| !prev.is_object()) {
        return Err(invalid(format!("prevResult: expected an object, found {prev}")));
    }
    Ok(NetConf {
        version,
        name,
        subnet_file,
        bridge,
        is_gateway: raw.is_gateway.unwrap_or(true),
        ip_masq: raw.ip_masq.unwrap_or(false),
        mtu: raw.mtu,
        data_dir,
        prev_result: raw.prev_result,
        valid_attachments: raw.valid_attachments.or(raw.attachments),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_json(value: Value) -> Result<NetConf, Error> {
        parse(value.to_string().as_bytes())
    }

    #[test]
    fn defaults() {
        let conf =
            parse_json(serde_json::json!({"cniVersion": "1.0.0", "name": "cbr0", "type": "netlab-cni"})).unwrap();
        assert_eq!(conf.version, Version::V1_0_0);
        assert_eq!(conf.subnet_file, PathBuf::from("/run/flannel/subnet.env"));
        assert_eq!(conf.bridge.as_str(), "cni0");
        assert!(conf.is_gateway && !conf.ip_masq);
        assert_eq!(conf.mtu, None);
        assert_eq!(conf.data_dir, PathBuf::from("/var/lib/cni/netlab"));
        assert_eq!(conf.valid_attachments, None);
    }

    #[test]
    fn every_key_and_both_gc_lists() {
        let conf = parse_json(serde_json::json!({
            "cniVersion": "1.1.0", "name": "n", "type": "netlab-cni", "subnetFile": "/s", "bridge": "br1",
            "isGateway": false, "ipMasq": true, "mtu": 1400, "dataDir": "/d", "runtimeConfig": {"portMappings": []},
            "args": {"x": 1}, "prevResult": {"cniVersion": "1.1.0"},
            "cni.dev/attachments": [{"containerID": "c", "ifname": "eth0"}],
        }))
        .unwrap();
        assert_eq!((conf.bridge.as_str(), conf.is_gateway, conf.ip_masq, conf.mtu), ("br1", false, true, Some(1400)));
        assert_eq!(conf.valid_attachments.unwrap()[0].container_id, "c");
        let conf = parse_json(serde_json::json!({"cniVersion": "1.1.0", "name": "n",
            "cni.dev/valid-attachments": []}))
        .unwrap();
        assert_eq!(conf.valid_attachments, Some(vec![]));
    }

    #[test]
    fn codes_of_bad_input() {
        let code = |input: &str| parse(input.as_bytes()).unwrap_err().code();
        assert_eq!(code("{not json"), 6);
        assert_eq!(code("[1]"), 6);
        assert_eq!(code(r#"{"cniVersion": "1.0.0", "name": "n", "mtu": "big"}"#), 6);
        assert_eq!(code(r#"{"cniVersion": "0.2.0", "name": "n"}"#), 1);
        assert_eq!(code(r#"{"name": "n"}"#), 1);
        assert_eq!(code(r#"{"cniVersion": "1.0.0"}"#), 7);
        assert_eq!(code(r#"{"cniVersion": "1.0.0", "name": "../x"}"#), 7);
        assert_eq!(code(r#"{"cniVersion": "1.0.0", "name": "n", "bridge": "a-very-long-bridge-name"}"#), 7);
        assert_eq!(code(r#"{"cniVersion": "1.0.0", "name": "n", "mtu": 20}"#), 7);
        assert_eq!(code(r#"{"cniVersion": "1.0.0", "name": "n", "dataDir": "rel"}"#), 7);
        assert_eq!(code(r#"{"cniVersion": "1.0.0", "name": "n", "type": "bridge"}"#), 7);
        assert_eq!(version_of(br#"{"cniVersion": "0.4.0"}"#), Some(Version::V0_4_0));
        assert_eq!(version_of(b"nope"), None);
    }
}
