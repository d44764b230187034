//! One step of a plan. The variants are listed in the order a plan runs them: apply
//! executes runs of the same phase concurrently, and phases one after another.

use std::fmt;

use ipnetwork::IpNetwork;
use serde::{Deserialize, Serialize};

use super::agents::{AgentKey, AgentProcess, AgentSpec};
use super::firewall::ForwardAccept;
use crate::model::{
    FdbSpec, IfName, Mac, NatSpec, NeighbourSpec, NodeName, Place, RouteSpec, Shaping, SysctlKey, VxlanSpec,
};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Change {
    /// Stop the lab's vxlan-agent of a device the file no longer gives one.
    StopAgent {
        key: AgentKey,
        running: Vec<AgentProcess>,
    },
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
    /// Add or replace (`creates`: there is no entry for the address yet).
    SetNeighbour {
        place: Place,
        entry: NeighbourSpec,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        creates: bool,
    },
    /// Add or replace (`creates`: there is no entry for the MAC yet).
    SetFdb {
        place: Place,
        entry: FdbSpec,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        creates: bool,
    },
    /// `tc qdisc replace dev LINK root ...`: made, or changed in place (`now` says what
    /// the link has instead).
    SetShaping {
        place: Place,
        link: IfName,
        shaping: Shaping,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        now: Option<String>,
    },
    /// Back to the kernel's default qdisc.
    DeleteShaping {
        place: Place,
        link: IfName,
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
    /// Replace the lab's nftables table in the namespace, whole and atomically
    /// (`creates`: the lab has none there yet).
    SetNatTable {
        place: Place,
        nat: NatSpec,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        creates: bool,
    },
    AddForwardAccept {
        place: Place,
        accept: ForwardAccept,
    },
    /// Run a vxlan-agent for the device, under the lab's supervisor.
    StartAgent {
        agent: AgentSpec,
    },
    /// The agent runs with other arguments than the file's: stop it, start it anew.
    RestartAgent {
        agent: AgentSpec,
        running: Vec<AgentProcess>,
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
    /// First: an agent is stopped before its device or namespace goes.
    StopAgents,
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
    Shaping,
    SetSysctls,
    AddRoutes,
    SetFirewall,
    /// Last: an agent starts once its device, namespace and store are in place.
    StartAgents,
}

/// What creation is ordered by: a change that needs one waits for the change that
/// provides it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Resource {
    Namespace(Place),
    Link(Place, IfName),
}

/// Everything about a kind of change but how it is done (that is `apply`'s) is stated
/// here: its phase, its effect (`effect`, with the text below), the connections it
/// uses, what it provides and needs, and the namespace it belongs to.
impl Change {
    pub fn phase(&self) -> Phase {
        match self {
            Change::StopAgent { .. } => Phase::StopAgents,
            Change::StartAgent { .. } | Change::RestartAgent { .. } => Phase::StartAgents,
            Change::DeleteNatTable { .. } | Change::DeleteForwardAccept { .. } => Phase::DeleteFirewall,
            Change::DeleteNeighbour { .. } | Change::DeleteFdb { .. } => Phase::DeleteEntries,
            Change::SetNeighbour { .. } | Change::SetFdb { .. } => Phase::SetEntries,
            Change::SetShaping { .. } | Change::DeleteShaping { .. } => Phase::Shaping,
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

/// What a change does to its object: `+`, `~` or `-` in a plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Effect {
    Create,
    Change,
    Delete,
}

impl Effect {
    pub fn sign(self) -> char {
        match self {
            Effect::Create => '+',
            Effect::Change => '~',
            Effect::Delete => '-',
        }
    }
}

impl Change {
    pub fn effect(&self) -> Effect {
        match self {
            Change::StopAgent { .. }
            | Change::DeleteNatTable { .. }
            | Change::DeleteForwardAccept { .. }
            | Change::DeleteNeighbour { .. }
            | Change::DeleteFdb { .. }
            | Change::DeleteRoute { .. }
            | Change::DeleteAddress { .. }
            | Change::DeleteLink { .. }
            | Change::DeleteNamespace { .. }
            | Change::DeleteShaping { .. } => Effect::Delete,
            Change::SetShaping { now: None, .. } => Effect::Create,
            Change::SetShaping { now: Some(_), .. } => Effect::Change,
            Change::CreateNamespace { .. }
            | Change::CreateBridge { .. }
            | Change::CreateVeth { .. }
            | Change::CreateVxlan { .. }
            | Change::AddAddress { .. }
            | Change::AddRoute { .. }
            | Change::AddForwardAccept { .. }
            | Change::StartAgent { .. }
            | Change::SetNeighbour { creates: true, .. }
            | Change::SetFdb { creates: true, .. }
            | Change::SetNatTable { creates: true, .. } => Effect::Create,
            Change::RestartAgent { .. }
            | Change::SetLink { .. }
            | Change::SetNeighbour { .. }
            | Change::SetFdb { .. }
            | Change::SetSysctl { .. }
            | Change::SetNatTable { .. } => Effect::Change,
        }
    }

    /// The object the change is about and what it sets, as the plan prints it after
    /// the sign.
    pub fn object(&self) -> String {
        Object(self).to_string()
    }
}

impl Change {
    /// The namespaces whose netlink connection the change uses; none for those that
    /// run on a thread or a program inside the namespace.
    pub fn connections(&self) -> Vec<&Place> {
        match self {
            Change::CreateNamespace { .. }
            | Change::DeleteNamespace { .. }
            | Change::SetSysctl { .. }
            | Change::DeleteNatTable { .. }
            | Change::DeleteForwardAccept { .. }
            | Change::SetNatTable { .. }
            | Change::AddForwardAccept { .. }
            | Change::StopAgent { .. }
            | Change::StartAgent { .. }
            | Change::RestartAgent { .. } => Vec::new(),
            Change::CreateVeth { a, b } => vec![&a.place, &b.place],
            Change::CreateVxlan { place, vxlan, .. } => vec![place, &vxlan.underlay],
            Change::DeleteNeighbour { place, .. }
            | Change::DeleteFdb { place, .. }
            | Change::SetNeighbour { place, .. }
            | Change::SetFdb { place, .. }
            | Change::DeleteRoute { place, .. }
            | Change::DeleteAddress { place, .. }
            | Change::DeleteLink { place, .. }
            | Change::CreateBridge { place, .. }
            | Change::SetLink { place, .. }
            | Change::AddAddress { place, .. }
            | Change::SetShaping { place, .. }
            | Change::DeleteShaping { place, .. }
            | Change::AddRoute { place, .. } => vec![place],
        }
    }

    pub fn provides(&self) -> Vec<Resource> {
        match self {
            Change::CreateNamespace { namespace } => vec![Resource::Namespace(Place::Node(namespace.clone()))],
            Change::CreateBridge { place, name, .. } | Change::CreateVxlan { place, name, .. } => {
                vec![Resource::Link(place.clone(), name.clone())]
            }
            Change::CreateVeth { a, b } => {
                vec![Resource::Link(a.place.clone(), a.name.clone()), Resource::Link(b.place.clone(), b.name.clone())]
            }
            _ => Vec::new(),
        }
    }

    pub fn needs(&self) -> Vec<Resource> {
        let namespace = |place: &Place| Resource::Namespace(place.clone());
        let link = |place: &Place, name: &IfName| Resource::Link(place.clone(), name.clone());
        match self {
            Change::CreateBridge { place, .. } => vec![namespace(place)],
            Change::CreateVeth { a, b } => {
                let mut needs = vec![namespace(&a.place), namespace(&b.place)];
                needs.extend(a.settings.master.iter().map(|m| link(&a.place, m)));
                needs.extend(b.settings.master.iter().map(|m| link(&b.place, m)));
                needs
            }
            Change::CreateVxlan { place, settings, vxlan, .. } => {
                let mut needs = vec![namespace(place), namespace(&vxlan.underlay), link(&vxlan.underlay, &vxlan.dev)];
                needs.extend(settings.master.iter().map(|m| link(place, m)));
                needs
            }
            Change::SetLink { place, update, .. } => {
                let mut needs = vec![namespace(place)];
                if let Some(Some(master)) = &update.master {
                    needs.push(link(place, master));
                }
                needs
            }
            Change::AddAddress { place, link: name, .. } | Change::SetShaping { place, link: name, .. } => {
                vec![namespace(place), link(place, name)]
            }
            _ => Vec::new(),
        }
    }

    /// The namespace a change belongs to, for ordering: the later of its namespaces.
    pub fn home(&self) -> Place {
        match self {
            Change::CreateNamespace { namespace } | Change::DeleteNamespace { namespace } => {
                Place::Node(namespace.clone())
            }
            Change::CreateVeth { a, b } => a.place.clone().max(b.place.clone()),
            Change::StopAgent { key, .. } => key.place.clone(),
            Change::StartAgent { agent } | Change::RestartAgent { agent, .. } => agent.place.clone(),
            Change::CreateBridge { place, .. }
            | Change::SetLink { place, .. }
            | Change::AddAddress { place, .. }
            | Change::DeleteRoute { place, .. }
            | Change::DeleteAddress { place, .. }
            | Change::DeleteLink { place, .. }
            | Change::SetSysctl { place, .. }
            | Change::AddRoute { place, .. }
            | Change::CreateVxlan { place, .. }
            | Change::DeleteNeighbour { place, .. }
            | Change::DeleteFdb { place, .. }
            | Change::SetNeighbour { place, .. }
            | Change::SetFdb { place, .. }
            | Change::SetShaping { place, .. }
            | Change::DeleteShaping { place, .. }
            | Change::DeleteNatTable { place }
            | Change::DeleteForwardAccept { place, .. }
            | Change::SetNatTable { place, .. }
            | Change::AddForwardAccept { place, .. } => place.clone(),
        }
    }
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.effect().sign(), Object(self))
    }
}

struct Object<'a>(&'a Change);

impl fmt::Display for Object<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Change::StopAgent { key, running } => write!(f, "agent of {key} (pid {})", pids(running)),
            Change::StartAgent { agent } => write!(f, "agent of {}", AgentText(agent)),
            Change::RestartAgent { agent, running } => {
                write!(f, "agent of {} (replaces pid {})", AgentText(agent), pids(running))
            }
            Change::DeleteNamespace { namespace } => write!(f, "namespace {namespace}"),
            Change::DeleteNatTable { place } => write!(f, "nat table in {place}"),
            Change::DeleteNeighbour { place, entry } => {
                write!(f, "neighbour {} on {}", entry.ip, place.qualify(&entry.dev))
            }
            Change::DeleteFdb { place, entry } => write!(f, "fdb {} on {}", entry.mac, place.qualify(&entry.dev)),
            Change::SetNeighbour { place, entry, .. } => {
                write!(f, "neighbour {} lladdr {} on {}", entry.ip, entry.mac, place.qualify(&entry.dev))
            }
            Change::SetFdb { place, entry, .. } => {
                write!(f, "fdb {} dst {} on {}", entry.mac, entry.dst, place.qualify(&entry.dev))
            }
            Change::CreateVxlan { place, name, settings, vxlan } => write!(
                f,
                "vxlan {} vni {} dstport {} local {} dev {}{}",
                place.qualify(name),
                vxlan.vni,
                vxlan.port,
                vxlan.local,
                vxlan.underlay.qualify(&vxlan.dev),
                settings
            ),
            Change::DeleteForwardAccept { place, accept } => write!(f, "iptables FORWARD rule in {place}: {accept}"),
            Change::SetNatTable { place, nat, .. } => write!(
                f,
                "nat table in {place}: {} masquerade, {} published ports",
                nat.masquerade.len(),
                nat.publish.len()
            ),
            Change::AddForwardAccept { place, accept } => write!(f, "iptables FORWARD rule in {place}: {accept}"),
            Change::DeleteRoute { place, route } => write!(f, "route {route} in {place}"),
            Change::DeleteAddress { place, link, address } => {
                write!(f, "address {address} on {}", place.qualify(link))
            }
            Change::DeleteLink { place, name, kind } => write!(f, "{kind} {}", place.qualify(name)),
            Change::CreateNamespace { namespace } => write!(f, "namespace {namespace}"),
            Change::CreateBridge { place, name, settings } => {
                write!(f, "bridge {}{}", place.qualify(name), settings)
            }
            Change::CreateVeth { a, b } => write!(
                f,
                "veth {}{} <-> {}{}",
                a.place.qualify(&a.name),
                a.settings,
                b.place.qualify(&b.name),
                b.settings
            ),
            Change::SetLink { place, name, update } => write!(f, "link {}:{update}", place.qualify(name)),
            Change::AddAddress { place, link, address } => write!(f, "address {address} on {}", place.qualify(link)),
            Change::SetSysctl { place, key, value, previous } => match previous {
                Some(previous) => write!(f, "sysctl {key} in {place}: {previous} -> {value}"),
                None => write!(f, "sysctl {key} in {place}: {value}"),
            },
            Change::AddRoute { place, route } => write!(f, "route {route} in {place}"),
            Change::SetShaping { place, link, shaping, .. } => {
                write!(f, "shaping on {}: {shaping}", place.qualify(link))
            }
            Change::DeleteShaping { place, link } => write!(f, "shaping on {}", place.qualify(link)),
        }
    }
}

/// "ov1:vxlan1 in host1, proactive, store dir:/run/...".
struct AgentText<'a>(&'a AgentSpec);

impl fmt::Display for AgentText<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let agent = self.0;
        write!(f, "{} in {}, {}, store {}", agent.key(), agent.underlay, agent.kind(), agent.store)
    }
}

fn pids(running: &[AgentProcess]) -> String {
    running.iter().map(|p| p.pid.to_string()).collect::<Vec<_>>().join(", ")
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
