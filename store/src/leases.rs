//! The flannel keyspace, in flannel's layout and field names, under its prefix
//! (`/coreos.com/network` by default): the cluster network's `config`
//! (`{"Network","SubnetLen","SubnetMin","SubnetMax","Backend":{"Type","VNI","Port"}}`)
//! and one `subnets/<network>-<length>` key per node's lease
//! (`{"PublicIP","BackendType","BackendData":{"VNI","VtepMAC"}}`). Values are parsed
//! and checked here, once.

use std::fmt;
use std::net::Ipv4Addr;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::key::{KeyPath, Value};

pub use netns::mac::Mac;

/// flannel's key prefix, the default for this keyspace on etcd.
pub const DEFAULT_PREFIX: &str = "/coreos.com/network";
/// The folder of the leases.
pub const SUBNETS: &str = "subnets";
/// The Linux kernel's VXLAN port, flannel's default.
pub const DEFAULT_PORT: u16 = 8472;

/// An IPv4 subnet whose address is its network address (host bits zero).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Subnet {
    network: Ipv4Addr,
    length: u8,
}

impl Subnet {
    pub fn new(address: Ipv4Addr, length: u8) -> std::result::Result<Subnet, String> {
        if length > 32 {
            return Err(format!("{address}/{length}: a prefix length is at most 32"));
        }
        let subnet = Subnet { network: Ipv4Addr::from(u32::from(address) & mask(length)), length };
        if subnet.network != address {
            return Err(format!("{address}/{length}: host bits set (the network is {subnet})"));
        }
        Ok(subnet)
    }

    pub fn network(&self) -> Ipv4Addr {
        self.network
    }

    pub fn length(&self) -> u8 {
        self.length
    }

    /// The `n`th address in it (0: the network address).
    pub fn nth(&self, n: u32) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.network).wrapping_add(n))
    }

    pub fn contains(&self, address: Ipv4Addr) -> bool {
        u32::from(address) & mask(self.length) == u32::from(self.network)
    }

    /// Whether `other` lies wholly inside this one.
    pub fn covers(&self, other: &Subnet) -> bool {
        other.length >= self.length && self.contains(other.network)
    }

    /// The key of this subnet's lease.
    pub fn key(&self) -> KeyPath {
        KeyPath::join(SUBNETS, &format!("{}-{}", self.network, self.length)).expect("an address is a valid segment")
    }

    /// The subnet a lease key names, if it names one.
    pub fn of_key(key: &KeyPath) -> Option<Subnet> {
        if key.folder() != Some(SUBNETS) {
            return None;
        }
        let (network, length) = key.name().split_once('-')?;
        Subnet::new(network.parse().ok()?, length.parse().ok()?).ok()
    }
}

fn mask(length: u8) -> u32 {
    u32::MAX.checked_shl(32 - u32::from(length)).unwrap_or(0)
}

impl fmt::Display for Subnet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.length)
    }
}

impl std::str::FromStr for Subnet {
    type Err = String;
    fn from_str(text: &str) -> std::result::Result<Subnet, String> {
        let (address, length) = text.split_once('/').ok_or_else(|| format!("`{text}`: expected ADDRESS/LENGTH"))?;
        let address = address.parse().map_err(|_| format!("`{text}`: `{address}` is not an IPv4 address"))?;
        let length = length.parse().map_err(|_| format!("`{text}`: `{length}` is not a prefix length"))?;
        Subnet::new(address, length)
    }
}

/// The cluster network's configuration, checked: every node leases a subnet of
/// `subnet_len` between `subnet_min` and `subnet_max` inside `network`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NetworkConfig {
    pub network: Subnet,
    pub subnet_len: u8,
    pub subnet_min: Ipv4Addr,
    pub subnet_max: Ipv4Addr,
    pub vni: u32,
    pub port: u16,
}

/// The JSON flannel writes and reads at `config`.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(rename = "Network")]
    network: String,
    #[serde(rename = "SubnetLen", default, skip_serializing_if = "Option::is_none")]
    subnet_len: Option<u8>,
    #[serde(rename = "SubnetMin", default, skip_serializing_if = "Option::is_none")]
    subnet_min: Option<Ipv4Addr>,
    #[serde(rename = "SubnetMax", default, skip_serializing_if = "Option::is_none")]
    subnet_max: Option<Ipv4Addr>,
    #[serde(rename = "Backend", default, skip_serializing_if = "Option::is_none")]
    backend: Option<RawBackend>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBackend {
    #[serde(rename = "Type")]
    kind: String,
    #[serde(rename = "VNI", default, skip_serializing_if = "Option::is_none")]
    vni: Option<u32>,
    #[serde(rename = "Port", default, skip_serializing_if = "Option::is_none")]
    port: Option<u16>,
}

impl NetworkConfig {
    /// The configuration of `network`, with flannel's defaults for what is not given:
    /// subnets of /24 (or one bit longer than a network of /24 and longer), the first
    /// and the last subnet left out, VNI 1, port 8472.
    pub fn new(
        network: Subnet,
        subnet_len: Option<u8>,
        vni: Option<u32>,
        port: Option<u16>,
    ) -> std::result::Result<NetworkConfig, String> {
        let raw = RawConfig {
            network: network.to_string(),
            subnet_len,
            subnet_min: None,
            subnet_max: None,
            backend: Some(RawBackend { kind: "vxlan".into(), vni, port }),
        };
        NetworkConfig::check(raw)
    }

    fn check(raw: RawConfig) -> std::result::Result<NetworkConfig, String> {
        let network: Subnet = raw.network.parse()?;
        let subnet_len = raw.subnet_len.unwrap_or(if network.length < 24 { 24 } else { network.length + 1 });
        if subnet_len <= network.length || subnet_len > 30 {
            return Err(format!(
                "SubnetLen {subnet_len} does not fit {network}: it must be longer than {} and at most 30",
                network.length
            ));
        }
        let size = 1u32 << (32 - subnet_len);
        let count = 1u32 << (subnet_len - network.length);
        let subnet_min = raw.subnet_min.unwrap_or(network.nth(size));
        let subnet_max = raw.subnet_max.unwrap_or(network.nth(size * (count - 1)));
        for (name, at) in [("SubnetMin", subnet_min), ("SubnetMax", subnet_max)] {
            if !network.contains(at) || u32::from(at) % size != 0 {
                return Err(format!("{name} {at} is not a /{subnet_len} subnet of {network}"));
            }
        }
        if u32::from(subnet_min) > u32::from(subnet_max) {
            return Err(format!("SubnetMin {subnet_min} is above SubnetMax {subnet_max}"));
        }
        let backend = raw.backend.unwrap_or(RawBackend { kind: "vxlan".into(), vni: None, port: None });
        if backend.kind != "vxlan" {
            return Err(format!("backend type `{}`: only vxlan is served", backend.kind.escape_debug()));
        }
        let vni = backend.vni.unwrap_or(1);
        if vni >= 1 << 24 {
            return Err(format!("VNI {vni} is over 16777215"));
        }
        let port = backend.port.unwrap_or(DEFAULT_PORT);
        if port == 0 {
            return Err("port 0: the kernel would pick 8472 instead".into());
        }
        Ok(NetworkConfig { network, subnet_len, subnet_min, subnet_max, vni, port })
    }

    /// The configuration a `config` value holds.
    pub fn parse(value: &Value) -> Result<NetworkConfig> {
        let invalid = |why: String| Error::Invalid { key: "config".into(), why };
        let raw: RawConfig = serde_json::from_str(value.as_str()).map_err(|e| invalid(e.to_string()))?;
        NetworkConfig::check(raw).map_err(invalid)
    }

    /// The value to store at `config`.
    pub fn to_value(&self) -> Value {
        let raw = RawConfig {
            network: self.network.to_string(),
            subnet_len: Some(self.subnet_len),
            subnet_min: Some(self.subnet_min),
            subnet_max: Some(self.subnet_max),
            backend: Some(RawBackend { kind: "vxlan".into(), vni: Some(self.vni), port: Some(self.port) }),
        };
        let text = serde_json::to_string(&raw).expect("plain fields serialize");
        Value::new(&config_key(), text).expect("a config is short")
    }

    /// Every subnet a node may lease, in order.
    pub fn subnets(&self) -> impl Iterator<Item = Subnet> + '_ {
        let size = 1u32 << (32 - self.subnet_len);
        (u32::from(self.subnet_min)..=u32::from(self.subnet_max))
            .step_by(size as usize)
            .map(move |start| Subnet { network: Ipv4Addr::from(start), length: self.subnet_len })
    }

    /// Whether `subnet` is one a node may lease.
    pub fn offers(&self, subnet: &Subnet) -> bool {
        subnet.length == self.subnet_len
            && (u32::from(self.subnet_min)..=u32::from(self.subnet_max)).contains(&u32::from(subnet.network))
    }
}

/// The key of the cluster network's configuration.
pub fn config_key() -> KeyPath {
    KeyPath::new("config").expect("a plain name")
}

/// What a node's lease says about it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LeaseAttrs {
    pub public_ip: Ipv4Addr,
    pub vni: u32,
    pub vtep_mac: Mac,
}

#[derive(Serialize, Deserialize)]
struct RawLease {
    #[serde(rename = "PublicIP")]
    public_ip: Ipv4Addr,
    #[serde(rename = "BackendType")]
    backend_type: String,
    #[serde(rename = "BackendData")]
    backend_data: RawBackendData,
}

#[derive(Serialize, Deserialize)]
struct RawBackendData {
    #[serde(rename = "VNI")]
    vni: u32,
    #[serde(rename = "VtepMAC")]
    vtep_mac: Mac,
}

impl LeaseAttrs {
    pub fn parse(key: &KeyPath, value: &Value) -> Result<LeaseAttrs> {
        let invalid = |why: String| Error::Invalid { key: key.to_string(), why };
        let raw: RawLease = serde_json::from_str(value.as_str()).map_err(|e| invalid(e.to_string()))?;
        if raw.backend_type != "vxlan" {
            return Err(invalid(format!("backend type `{}`: only vxlan is served", raw.backend_type.escape_debug())));
        }
        Ok(LeaseAttrs { public_ip: raw.public_ip, vni: raw.backend_data.vni, vtep_mac: raw.backend_data.vtep_mac })
    }

    pub fn to_value(&self, key: &KeyPath) -> Value {
        let raw = RawLease {
            public_ip: self.public_ip,
            backend_type: "vxlan".into(),
            backend_data: RawBackendData { vni: self.vni, vtep_mac: self.vtep_mac },
        };
        Value::new(key, serde_json::to_string(&raw).expect("plain fields serialize")).expect("a lease is short")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subnet(text: &str) -> Subnet {
        text.parse().unwrap()
    }

    #[test]
    fn lease_keys_round_trip() {
        let key = subnet("10.244.5.0/24").key();
        assert_eq!(key.as_str(), "subnets/10.244.5.0-24");
        assert_eq!(Subnet::of_key(&key), Some(subnet("10.244.5.0/24")));
        for bad in
            ["subnets/10.244.5.0-33", "subnets/10.244.5-24", "subnets/10.244.5.1-24", "arp/10.244.5.0-24", "config"]
        {
            assert_eq!(Subnet::of_key(&KeyPath::new(bad).unwrap()), None, "{bad}");
        }
    }

    #[test]
    fn flannel_defaults_and_its_json() {
        let config = NetworkConfig::new(subnet("10.244.0.0/16"), None, None, None).unwrap();
        assert_eq!((config.subnet_len, config.vni, config.port), (24, 1, 8472));
        assert_eq!(
            (config.subnet_min, config.subnet_max),
            ("10.244.1.0".parse().unwrap(), "10.244.255.0".parse().unwrap())
        );
        assert_eq!(config.subnets().count(), 255);
        assert!(config.offers(&subnet("10.244.5.0/24")) && !config.offers(&subnet("10.244.0.0/24")));
        // What flannel's own tools write parses, and ours reads back the same.
        let theirs = r#"{"Network":"10.244.0.0/16","Backend":{"Type":"vxlan"}}"#;
        let parsed = NetworkConfig::parse(&Value::new(&config_key(), theirs).unwrap()).unwrap();
        assert_eq!(parsed, config);
        assert_eq!(NetworkConfig::parse(&config.to_value()).unwrap(), config);
    }

    #[test]
    fn configurations_that_cannot_work_are_refused() {
        for (network, len, vni, port) in [
            ("10.244.0.0/16", Some(16), None, None),
            ("10.244.0.0/16", Some(31), None, None),
            ("10.244.0.0/16", None, Some(1 << 24), None),
            ("10.244.0.0/16", None, None, Some(0)),
        ] {
            assert!(NetworkConfig::new(subnet(network), len, vni, port).is_err(), "{network} {len:?} {vni:?} {port:?}");
        }
        assert!("10.244.0.1/16".parse::<Subnet>().is_err(), "host bits set");
        for bad in [
            r#"{"Network":"10.244.0.0/16","Backend":{"Type":"udp"}}"#,
            r#"{"Network":"x"}"#,
            r#"{"Netwrk":"10.0.0.0/8"}"#,
        ] {
            assert!(NetworkConfig::parse(&Value::new(&config_key(), bad).unwrap()).is_err(), "{bad}");
        }
    }

    #[test]
    fn leases_in_flannels_words() {
        let key = subnet("10.244.5.0/24").key();
        let attrs = LeaseAttrs {
            public_ip: "192.168.104.2".parse().unwrap(),
            vni: 1,
            vtep_mac: "0e:00:00:00:00:02".parse().unwrap(),
        };
        let value = attrs.to_value(&key);
        assert_eq!(
            value.as_str(),
            r#"{"PublicIP":"192.168.104.2","BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"0e:00:00:00:00:02"}}"#
        );
        assert_eq!(LeaseAttrs::parse(&key, &value).unwrap(), attrs);
        let garbage = Value::new(&key, "{}").unwrap();
        assert!(matches!(LeaseAttrs::parse(&key, &garbage), Err(Error::Invalid { .. })));
    }
}
