//! One step of a plan. The variants are listed in the order a plan runs them: apply
//! executes runs of the same phase concurrently, and phases one after another.

use std::fmt;

use ipnetwork::IpNetwork;
use serde::{Deserialize, Serialize};

use crate::firewall::ForwardAccept;
use crate::model::{FdbSpec, IfName, Mac, NatSpec, NeighbourSpec, NodeName, Place, RouteSpec, SysctlKey, VxlanSpec};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Change {
    DeleteNatTable {
        place: Place,
    },
    DeleteForwardAccept {
        place: Place,
        accept: ForwardAccept,
    },
    DeleteNeighbour {
        place: Place,
        entry: NeighbourSpec,
    },
    DeleteFdb {
        place: Place,
        entry: FdbSpec,
    },
    DeleteRoute {
        place: Place,
        route: RouteSpec,
    },
    DeleteAddress {
        place: Place,
        link: IfName,
        address: IpNetwork,
    },
    DeleteLink {
        place: Place,
        name: IfName,
        kind: String,
    },
    DeleteNamespace {
        namespace: NodeName,
    },
    CreateNamespace {
        namespace: NodeName,
    },
    CreateBridge {
        place: Place,
        name: IfName,
        settings: LinkSettings,
    },
    CreateVeth {
        a: VethEnd,
        b: VethEnd,
    },
    /// Created with its socket in `vxlan.underlay` and the device in `place`.
    CreateVxlan {
        place: Place,
        name: IfName,
        settings: LinkSettings,
        vxlan: VxlanSpec,
    },
    SetLink {
        place: Place,
        name: IfName,
        update: LinkUpdate,
    },
    AddAddress {
        place: Place,
        link: IfName,
        address: IpNetwork,
    },
    /// Add or replace.
    SetNeighbour {
        place: Place,
        entry: NeighbourSpec,
    },
    /// Add or replace.
    SetFdb {
        place: Place,
        entry: FdbSpec,
    },
    SetSysctl {
        place: Place,
        key: SysctlKey,
        value: String,
        previous: Option<String>,
    },
    AddRoute {
        place: Place,
        route: RouteSpec,
    },
    /// Replace the lab's nftables table in the namespace, whole and atomically.
    SetNatTable {
        place: Place,
        nat: NatSpec,
    },
    AddForwardAccept {
        place: Place,
        accept: ForwardAccept,
    },
}

/// What a new link is created with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkSettings {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mtu: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mac: Option<Mac>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub master: Option<IfName>,
    pub up: bool,
    pub ipv6_autoconf: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VethEnd {
    pub place: Place,
    pub name: IfName,
    #[serde(flatten)]
    pub settings: LinkSettings,
}

/// Changes to an existing link; absent fields stay as they are.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkUpdate {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mtu: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mac: Option<Mac>,
    /// `Some(None)`: leave the bridge.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub master: Option<Option<IfName>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub up: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ipv6_autoconf: Option<bool>,
    /// Put this lab's ownership mark on a link that lacks it (a killed apply's).
    #[serde(skip_serializing_if = "std::ops::Not::not", default)]
    pub mark: bool,
}

impl LinkUpdate {
    pub fn is_empty(&self) -> bool {
        *self == LinkUpdate::default()
    }
}

/// Changes of one phase have no order among themselves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Phase {
    DeleteFirewall,
    DeleteEntries,
    DeleteRoutes,
    DeleteAddresses,
    DeleteLinks,
    DeleteNamespaces,
    CreateNamespaces,
    CreateBridges,
    CreateVeths,
    CreateVxlans,
    SetLinks,
    AddAddresses,
    SetEntries,
    SetSysctls,
    AddRoutes,
    SetFirewall,
}

impl Change {
    pub fn phase(&self) -> Phase {
        match self {
            Change::DeleteNatTable { .. } | Change::DeleteForwardAccept { .. } => Phase::DeleteFirewall,
            Change::DeleteNeighbour { .. } | Change::DeleteFdb { .. } => Phase::DeleteEntries,
            Change::SetNeighbour { .. } | Change::SetFdb { .. } => Phase::SetEntries,
            Change::CreateVxlan { .. } => Phase::CreateVxlans,
            Change::SetNatTable { .. } | Change::AddForwardAccept { .. } => Phase::SetFirewall,
            Change::DeleteNamespace { .. } => Phase::DeleteNamespaces,
            Change::DeleteRoute { .. } => Phase::DeleteRoutes,
            Change::DeleteAddress { .. } => Phase::DeleteAddresses,
            Change::DeleteLink { .. } => Phase::DeleteLinks,
            Change::CreateNamespace { .. } => Phase::CreateNamespaces,
            Change::CreateBridge { .. } => Phase::CreateBridges,
            Change::CreateVeth { .. } => Phase::CreateVeths,
            Change::SetLink { .. } => Phase::SetLinks,
            Change::AddAddress { .. } => Phase::AddAddresses,
            Change::SetSysctl { .. } => Phase::SetSysctls,
            Change::AddRoute { .. } => Phase::AddRoutes,
        }
    }
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Change::DeleteNamespace { namespace } => write!(f, "- namespace {namespace}"),
            Change::DeleteNatTable { place } => write!(f, "- nat table in {place}"),
            Change::DeleteNeighbour { place, entry } => {
                write!(f, "- neighbour {} on {}", entry.ip, place.qualify(&entry.dev))
            }
            Change::DeleteFdb { place, entry } => write!(f, "- fdb {} on {}", entry.mac, place.qualify(&entry.dev)),
            Change::SetNeighbour { place, entry } => {
                write!(f, "~ neighbour {} lladdr {} on {}", entry.ip, entry.mac, place.qualify(&entry.dev))
            }
            Change::SetFdb { place, entry } => {
                write!(f, "~ fdb {} dst {} on {}", entry.mac, entry.dst, place.qualify(&entry.dev))
            }
            Change::CreateVxlan { place, name, settings, vxlan } => write!(
                f,
                "+ vxlan {} vni {} dstport {} local {} dev {}{}",
                place.qualify(name),
                vxlan.vni,
                vxlan.port,
                vxlan.local,
                vxlan.underlay.qualify(&vxlan.dev),
                settings
            ),
            Change::DeleteForwardAccept { place, accept } => write!(f, "- iptables FORWARD rule in {place}: {accept}"),
            Change::SetNatTable { place, nat } => write!(
                f,
                "~ nat table in {place}: {} masquerade, {} published ports",
                nat.masquerade.len(),
                nat.publish.len()
            ),
            Change::AddForwardAccept { place, accept } => write!(f, "+ iptables FORWARD rule in {place}: {accept}"),
            Change::DeleteRoute { place, route } => write!(f, "- route {route} in {place}"),
            Change::DeleteAddress { place, link, address } => {
                write!(f, "- address {address} on {}", place.qualify(link))
            }
            Change::DeleteLink { place, name, kind } => write!(f, "- {kind} {}", place.qualify(name)),
            Change::CreateNamespace { namespace } => write!(f, "+ namespace {namespace}"),
            Change::CreateBridge { place, name, settings } => {
                write!(f, "+ bridge {}{}", place.qualify(name), settings)
            }
            Change::CreateVeth { a, b } => write!(
                f,
                "+ veth {}{} <-> {}{}",
                a.place.qualify(&a.name),
                a.settings,
                b.place.qualify(&b.name),
                b.settings
            ),
            Change::SetLink { place, name, update } => write!(f, "~ link {}:{update}", place.qualify(name)),
            Change::AddAddress { place, link, address } => write!(f, "+ address {address} on {}", place.qualify(link)),
            Change::SetSysctl { place, key, value, previous } => match previous {
                Some(previous) => write!(f, "~ sysctl {key} in {place}: {previous} -> {value}"),
                None => write!(f, "~ sysctl {key} in {place}: {value}"),
            },
            Change::AddRoute { place, route } => write!(f, "+ route {route} in {place}"),
        }
    }
}

impl fmt::Display for LinkSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(mtu) = self.mtu {
            write!(f, " mtu {mtu}")?;
        }
        if let Some(mac) = self.mac {
            write!(f, " mac {mac}")?;
        }
        if let Some(master) = &self.master {
            write!(f, " master {master}")?;
        }
        if !self.up {
            f.write_str(" down")?;
        }
        Ok(())
    }
}

impl fmt::Display for LinkUpdate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(mtu) = self.mtu {
            write!(f, " mtu {mtu}")?;
        }
        if let Some(mac) = self.mac {
            write!(f, " mac {mac}")?;
        }
        match &self.master {
            Some(Some(master)) => write!(f, " master {master}")?,
            Some(None) => f.write_str(" nomaster")?,
            None => {}
        }
        match self.up {
            Some(true) => f.write_str(" up")?,
            Some(false) => f.write_str(" down")?,
            None => {}
        }
        match self.ipv6_autoconf {
            Some(true) => f.write_str(" ipv6-autoconf on")?,
            Some(false) => f.write_str(" ipv6-autoconf off")?,
            None => {}
        }
        if self.mark {
            f.write_str(" (mark as netlab's)")?;
        }
        Ok(())
    }
}
