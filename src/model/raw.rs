//! The file as written: serde types that keep the location of every value so that
//! validation can point at it. Nothing here is trusted yet.

use indexmap::IndexMap;
use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;
use serde_saphyr::Spanned;

pub type Located<T> = Spanned<T>;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTopology {
    /// A file this one adds to (`extends: bridge.yaml`), relative to this file.
    pub extends: Option<Located<String>>,
    /// Required, unless inherited through `extends`.
    pub name: Option<Located<String>>,
    #[serde(default)]
    pub nodes: IndexMap<Located<String>, Option<RawNode>>,
    /// The namespace netlab runs in.
    #[serde(default)]
    pub host: Option<RawNode>,
    #[serde(default)]
    pub links: Vec<RawLink>,
    #[serde(default)]
    pub checks: Vec<RawCheck>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawNode {
    #[serde(default)]
    pub interfaces: IndexMap<Located<String>, Option<RawInterface>>,
    #[serde(default)]
    pub bridges: IndexMap<Located<String>, Option<RawInterface>>,
    #[serde(default)]
    pub routes: Vec<RawRoute>,
    #[serde(default)]
    pub sysctls: IndexMap<Located<String>, Located<Scalar>>,
    pub nat: Option<RawNat>,
    #[serde(default)]
    pub vxlans: IndexMap<Located<String>, RawVxlan>,
    /// Static ARP/NDP entries.
    #[serde(default)]
    pub neighbours: Vec<RawNeighbour>,
    /// Static FDB entries of VXLAN devices: MAC -> remote VTEP.
    #[serde(default)]
    pub fdb: Vec<RawFdbEntry>,
    /// The flannel-like mode's node daemon (`vxlan-agent node`), run here by netlab.
    pub node: Option<Located<RawNodeDaemon>>,
}

/// `vxlan-agent node` on a simulated host: its store and address on the underlay.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawNodeDaemon {
    /// dir:PATH or etcd://HOST:PORT[,...][/PREFIX] (default prefix /coreos.com/network).
    pub store: Located<String>,
    pub store_tls: Option<Located<RawStoreTls>>,
    /// This host's IPv4 address on the underlay: its VTEP.
    pub public_ip: Located<String>,
    /// Masquerade traffic from this host's subnet leaving the cluster network.
    pub ip_masq: Option<bool>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawVxlan {
    pub vni: Located<u32>,
    /// UDP destination port (default 4789).
    pub port: Option<Located<u16>>,
    /// The namespace of the UDP socket and lower device (default: this one).
    pub underlay: Option<Located<String>>,
    /// The lower device, in the underlay namespace.
    pub dev: Located<String>,
    /// The VTEP address: an address of the lower device.
    pub local: Located<String>,
    pub remote: Option<Located<String>>,
    pub group: Option<Located<String>>,
    pub learning: Option<bool>,
    pub proxy: Option<bool>,
    pub l2miss: Option<bool>,
    pub l3miss: Option<bool>,
    pub ttl: Option<u8>,
    pub mtu: Option<Located<u32>>,
    pub mac: Option<Located<String>>,
    pub up: Option<bool>,
    /// The bridge, in this namespace, the device is a port of.
    pub bridge: Option<Located<String>>,
    /// The overlay's shared store (dir:PATH or etcd://...): netlab publishes the
    /// endpoints attached to the bridge there, for the vxlan-agents.
    pub store: Option<Located<String>>,
    /// Certificates for an etcd store over TLS.
    pub store_tls: Option<Located<RawStoreTls>>,
    /// The vxlan-agent netlab runs for this device: `false` (the user runs their own)
    /// or `{mode: proactive|miss}`; absent with a store: one in the default mode.
    pub agent: Option<Located<RawAgent>>,
}

/// `agent:` as written: a boolean, or the agent's options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RawAgent {
    Enabled(bool),
    Options(RawAgentOptions),
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAgentOptions {
    pub mode: Option<crate::model::AgentMode>,
}

impl<'de> Deserialize<'de> for RawAgent {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct AgentVisitor;
        impl<'de> Visitor<'de> for AgentVisitor {
            type Value = RawAgent;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("`false`, `true` or `{mode: proactive|miss}`")
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<RawAgent, E> {
                Ok(RawAgent::Enabled(v))
            }
            fn visit_map<A: de::MapAccess<'de>>(self, map: A) -> Result<RawAgent, A::Error> {
                RawAgentOptions::deserialize(de::value::MapAccessDeserializer::new(map)).map(RawAgent::Options)
            }
        }
        d.deserialize_any(AgentVisitor)
    }
}

/// PEM files, absolute paths: the CA that signed etcd's certificate, and the client's
/// own certificate and key when etcd asks for one.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStoreTls {
    pub ca: Option<Located<String>>,
    pub cert: Option<Located<String>>,
    pub key: Option<Located<String>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawNeighbour {
    pub ip: Located<String>,
    pub mac: Located<String>,
    pub dev: Located<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawFdbEntry {
    pub mac: Located<String>,
    pub dev: Located<String>,
    pub dst: Located<String>,
}

/// Source NAT and published ports of one namespace (nftables, IPv4).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawNat {
    #[serde(default)]
    pub masquerade: Vec<RawMasquerade>,
    #[serde(default)]
    pub publish: Vec<RawPublish>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMasquerade {
    /// Source prefix.
    pub from: Located<String>,
    /// Leaving through this interface...
    pub out: Option<Located<String>>,
    /// ...or towards this destination prefix.
    pub to: Option<Located<String>>,
}

/// Docker's `-p 8080:80`: connections to `on` go to `to`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPublish {
    /// tcp (default) or udp.
    pub protocol: Option<Located<String>>,
    pub on: Located<String>,
    pub to: Located<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawInterface {
    #[serde(default)]
    pub addresses: Vec<Located<String>>,
    pub mtu: Option<Located<u32>>,
    pub mac: Option<Located<String>>,
    pub up: Option<bool>,
    /// For a veth end: the bridge in the same namespace it is a port of.
    pub bridge: Option<Located<String>>,
    /// Keep IPv6 link-local autoconfiguration on (default: on only where the
    /// interface has IPv6 addresses).
    pub ipv6_autoconf: Option<bool>,
    /// Shaping of what leaves the interface, in tc's units: a rate limit (`10mbit`)...
    pub rate: Option<Located<Scalar>>,
    /// ...with its bucket (`32kb`; default from the rate)...
    pub burst: Option<Located<Scalar>>,
    /// ...and its queue's latency (`50ms`, the default).
    pub latency: Option<Located<Scalar>>,
    /// Impairments (netem): a delay (`20ms`), its jitter, and a loss (`1%`).
    pub delay: Option<Located<Scalar>>,
    pub jitter: Option<Located<Scalar>>,
    pub loss: Option<Located<Scalar>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLink {
    /// Two endpoints, `NODE:IFNAME` or `IFNAME` (`host:IFNAME`) for the host.
    pub endpoints: Located<Vec<Located<String>>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRoute {
    /// A prefix, or `default`.
    pub to: Located<String>,
    pub via: Option<Located<String>>,
    pub dev: Option<Located<String>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "lowercase", deny_unknown_fields)]
pub enum RawCheck {
    Ping(RawPing),
    Tcp(RawTcp),
    /// Like tcp; netlab must open the listener (`listen`), which echoes a datagram.
    Udp(RawTcp),
    Fdb(RawFdbCheck),
    Overlay(RawOverlay),
    /// Every node pings every address of every other.
    Pingall(Located<RawPingAll>),
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPingAll {
    /// Default: every node that has an address.
    pub nodes: Option<Located<Vec<Located<String>>>>,
}

/// A ping through a VXLAN device, proven to have crossed it and its lower device.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawOverlay {
    pub from: Located<String>,
    pub to: Located<String>,
    /// `NODE:DEVICE`
    pub vxlan: Located<String>,
    pub vni: Located<u32>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPing {
    pub from: Located<String>,
    /// An address, or a node (its first IPv4 address).
    pub to: Located<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTcp {
    pub from: Located<String>,
    /// ADDRESS:PORT
    pub to: Located<String>,
    /// A node where netlab opens the listener itself, on `to` unless `on` says where.
    pub listen: Option<Located<String>>,
    pub on: Option<Located<String>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawFdbCheck {
    /// `NODE:BRIDGE` or `BRIDGE` in the host.
    pub bridge: Located<String>,
    /// Endpoints whose MAC addresses the bridge must have learned.
    pub learned: Vec<Located<String>>,
}

/// A YAML scalar taken as text: sysctl values are written as numbers or strings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scalar(pub String);

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct ScalarVisitor;
        impl Visitor<'_> for ScalarVisitor {
            type Value = Scalar;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a number or a string")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Scalar, E> {
                Ok(Scalar(if v { "1" } else { "0" }.to_string()))
            }
        }
        d.deserialize_any(ScalarVisitor)
    }
}
