//! The validated topology: desired state per namespace, ready to be planned.
//! Every value here has been checked; a `Topology` cannot describe an invalid lab.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr, SocketAddrV4};

use ipnetwork::{IpNetwork, Ipv4Network};
use serde::{Deserialize, Serialize};

use super::names::{IfName, LabName, Place, SysctlKey};
use super::shaping::Shaping;
use netlab_store::{StoreUrl, Tls};
use netns::mac::Mac;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Topology {
    pub name: LabName,
    /// Every node's namespace, and the host's (possibly empty).
    pub namespaces: BTreeMap<Place, NamespaceSpec>,
    pub checks: Vec<Check>,
    /// Rendered "file:line:column: warning: ..." lines: the file is valid, but
    /// something in it will probably not work as meant.
    #[serde(skip)]
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NamespaceSpec {
    pub links: BTreeMap<IfName, LinkSpec>,
    pub routes: BTreeSet<RouteSpec>,
    pub sysctls: BTreeMap<SysctlKey, String>,
    #[serde(default, skip_serializing_if = "NatSpec::is_empty")]
    pub nat: NatSpec,
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub neighbours: BTreeSet<NeighbourSpec>,
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub fdb: BTreeSet<FdbSpec>,
    /// Devices the file names here without declaring them: devices netlab does not
    /// create (the host's own cards, in the host only). Never changed, moved or deleted;
    /// their facts (addresses, MTU) are checked at plan time (see `plan::existing`).
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub existing: BTreeSet<IfName>,
    /// The flannel-like mode's node daemon netlab runs here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<NodeDaemonSpec>,
}

/// `vxlan-agent node --store STORE --public-ip IP [--ip-masq]` in a namespace.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct NodeDaemonSpec {
    pub store: StoreUrl,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store_tls: Option<Tls>,
    pub public_ip: std::net::Ipv4Addr,
    #[serde(default)]
    pub ip_masq: bool,
}

/// A static neighbour entry: `ip neigh replace IP lladdr MAC dev DEV nud permanent`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct NeighbourSpec {
    pub dev: IfName,
    pub ip: IpAddr,
    pub mac: Mac,
}

/// A static FDB entry of a VXLAN device: `bridge fdb replace MAC dev DEV self permanent dst DST`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct FdbSpec {
    pub dev: IfName,
    pub mac: Mac,
    pub dst: IpAddr,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct VxlanSpec {
    pub vni: u32,
    pub port: u16,
    /// Where its UDP socket and lower device are.
    pub underlay: Place,
    pub dev: IfName,
    pub local: IpAddr,
    /// The remote VTEP (point to point) or the multicast group.
    pub group: Option<IpAddr>,
    pub learning: bool,
    pub proxy: bool,
    pub l2miss: bool,
    pub l3miss: bool,
    /// `None`: the kernel's default.
    pub ttl: Option<u8>,
    /// Where the overlay's endpoints are published for the vxlan-agents. Not a
    /// property of the device: changing it never remakes the device.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store: Option<StoreUrl>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store_tls: Option<Tls>,
    /// The vxlan-agent netlab runs for the device (only with a store); `None`: none
    /// (`agent: false`, or no store). Not a property of the device either.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<AgentMode>,
}

/// How a vxlan-agent fills the device: `vxlan-agent run --mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AgentMode {
    /// Every remote endpoint installed before traffic needs it.
    Proactive,
    /// Only the kernel's misses answered, as the tutorial's agent does.
    Miss,
}

impl AgentMode {
    pub fn name(self) -> &'static str {
        match self {
            AgentMode::Proactive => "proactive",
            AgentMode::Miss => "miss",
        }
    }
}

impl NamespaceSpec {
    /// Whether the file enables IPv4 forwarding here.
    pub fn forwards_ipv4(&self) -> bool {
        let enabled = |key: &str| self.sysctls.iter().any(|(k, v)| k.as_str() == key && v == "1");
        enabled("net.ipv4.ip_forward") || enabled("net.ipv4.conf.all.forwarding")
    }

    /// Whether traffic is forwarded here: the file enables IPv4 forwarding, or a bridge
    /// forwards between its ports (and, with br_netfilter, through iptables' FORWARD).
    pub fn forwards(&self) -> bool {
        self.forwards_ipv4() || self.links.values().any(|l| l.kind == LinkKind::Bridge)
    }
}

/// Source NAT and published ports of a namespace, as one nftables table.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NatSpec {
    pub masquerade: Vec<Masquerade>,
    pub publish: Vec<Publish>,
}

impl NatSpec {
    pub fn is_empty(&self) -> bool {
        self.masquerade.is_empty() && self.publish.is_empty()
    }
}

/// Rewrite the source of packets from `from` to the address they leave by.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Masquerade {
    pub from: Ipv4Network,
    pub out: Option<IfName>,
    pub to: Option<Ipv4Network>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    Tcp,
    Udp,
}

impl Protocol {
    pub fn name(&self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
        }
    }
}

/// A published port: connections to `on` are sent to `to`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Publish {
    pub protocol: Protocol,
    pub on: SocketAddrV4,
    pub to: SocketAddrV4,
    /// The local subnet `to` is on: clients there reach it through `on` only if their
    /// source is rewritten too (hairpin NAT), or the reply would bypass the translation.
    pub hairpin: Option<Ipv4Network>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkSpec {
    pub kind: LinkKind,
    pub mtu: Option<u32>,
    pub mac: Option<Mac>,
    pub up: bool,
    /// The bridge, in the same namespace, this link is a port of.
    pub master: Option<IfName>,
    pub addresses: BTreeSet<IpNetwork>,
    pub ipv6_autoconf: bool,
    /// The root qdisc the lab puts on it (`None`: the kernel's default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shaping: Option<Shaping>,
}

impl LinkSpec {
    /// A link of `kind` with every setting at its default: up, nothing else set.
    pub fn new(kind: LinkKind) -> Self {
        LinkSpec {
            kind,
            mtu: None,
            mac: None,
            up: true,
            master: None,
            addresses: BTreeSet::new(),
            ipv6_autoconf: false,
            shaping: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", tag = "type")]
pub enum LinkKind {
    /// `lo` of a node's namespace: it comes with the namespace.
    Loopback,
    Bridge,
    Veth {
        peer: Endpoint,
    },
    /// Boxed: the spec of a VXLAN device is large, and every link of a lab holds a kind
    /// (a 100,000-node lab took 200 MB more with it inline).
    Vxlan(Box<VxlanSpec>),
}

impl LinkKind {
    pub fn name(&self) -> &'static str {
        match self {
            LinkKind::Loopback => "loopback",
            LinkKind::Bridge => "bridge",
            LinkKind::Veth { .. } => "veth",
            LinkKind::Vxlan(_) => "vxlan",
        }
    }
}

/// An interface in a namespace.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Endpoint {
    pub place: Place,
    pub name: IfName,
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.place.qualify(&self.name))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct RouteSpec {
    pub to: IpNetwork,
    pub via: Option<IpAddr>,
    pub dev: Option<IfName>,
}

impl std::fmt::Display for RouteSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.to.prefix() == 0 {
            f.write_str("default")?;
        } else {
            write!(f, "{}", self.to)?;
        }
        if let Some(via) = self.via {
            write!(f, " via {via}")?;
        }
        if let Some(dev) = &self.dev {
            write!(f, " dev {dev}")?;
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", tag = "check")]
pub enum Check {
    /// `to_label` is what the file said (a node or an address).
    Ping {
        from: Place,
        to: IpAddr,
        to_label: String,
    },
    Tcp {
        from: Place,
        to: SocketAddr,
        listen: Option<(Place, SocketAddr)>,
    },
    Udp {
        from: Place,
        to: SocketAddr,
        listen: (Place, SocketAddr),
    },
    Fdb {
        bridge: Endpoint,
        learned: Vec<Endpoint>,
    },
    /// A ping from `from` to `to` that must cross `vxlan` (of VNI `vni`) and its lower
    /// device `lower`: both count the packets.
    Overlay {
        from: Place,
        to: IpAddr,
        vxlan: Endpoint,
        vni: u32,
        lower: Endpoint,
    },
    /// Each of `nodes` pings every address of every other, per family.
    Pingall {
        nodes: Vec<Pinged>,
    },
}

/// A node of a `pingall` and the addresses others ping it on (no loopback, no
/// link-local: those are not the lab's to reach).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pinged {
    pub node: Place,
    pub addresses: Vec<IpAddr>,
}

impl std::fmt::Display for Check {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Check::Ping { from, to, to_label } if to_label != &to.to_string() => {
                write!(f, "ping from {from} to {to_label} ({to})")
            }
            Check::Ping { from, to, .. } => write!(f, "ping from {from} to {to}"),
            Check::Tcp { from, to, .. } => write!(f, "tcp from {from} to {to}"),
            Check::Udp { from, to, .. } => write!(f, "udp from {from} to {to}"),
            Check::Overlay { from, to, vxlan, vni, .. } => {
                write!(f, "ping from {from} to {to} through {vxlan} (vni {vni})")
            }
            Check::Pingall { nodes } => {
                let names: Vec<String> = nodes.iter().map(|n| n.node.to_string()).collect();
                write!(f, "pingall {}", names.join(" "))
            }
            Check::Fdb { bridge, learned } => {
                let names: Vec<String> = learned.iter().map(ToString::to_string).collect();
                write!(f, "fdb of {bridge} has learned {}", names.join(", "))
            }
        }
    }
}

/// An interface the lab attaches to an overlay that has a store: `apply` publishes
/// its addresses and MAC there, behind the overlay's VTEP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    pub store: StoreUrl,
    pub tls: Option<Tls>,
    pub interface: Endpoint,
    /// Its addresses, without link-local ones.
    pub ips: Vec<IpAddr>,
    /// `None`: the kernel chooses; read back after apply.
    pub mac: Option<Mac>,
    pub vtep: IpAddr,
}

impl Topology {
    /// Every interface whose veth peer is a port of a bridge that also holds a VXLAN
    /// device with a store.
    pub fn attachments(&self) -> Vec<Attachment> {
        let mut attachments = Vec::new();
        for spec in self.namespaces.values() {
            for link in spec.links.values() {
                let (LinkKind::Vxlan(vxlan), Some(bridge)) = (&link.kind, &link.master) else { continue };
                let Some(store) = &vxlan.store else { continue };
                for port in spec.links.values().filter(|port| port.master.as_ref() == Some(bridge)) {
                    let LinkKind::Veth { peer } = &port.kind else { continue };
                    let Some(end) = self.namespaces.get(&peer.place).and_then(|ns| ns.links.get(&peer.name)) else {
                        continue;
                    };
                    let ips = end
                        .addresses
                        .iter()
                        .map(|a| a.ip())
                        .filter(|ip| !matches!(ip, IpAddr::V6(v6) if v6.is_unicast_link_local()))
                        .collect();
                    attachments.push(Attachment {
                        store: store.clone(),
                        tls: vxlan.store_tls.clone(),
                        interface: peer.clone(),
                        ips,
                        mac: end.mac,
                        vtep: vxlan.local,
                    });
                }
            }
        }
        attachments
    }

    /// Nodes only, in order: the namespaces this lab creates.
    pub fn nodes(&self) -> impl Iterator<Item = &Place> {
        self.namespaces.keys().filter(|place| **place != Place::Host)
    }
}
