//! `netlab inspect`: what exists of a lab, as the kernel has it. Pure: the rows are
//! built from what was read (`Kernel`, filled by `observe::dump_each` and
//! `observe::nsids`) and what the lab declares; the command reads and prints.
//! Field names are the plan's JSON's where the same object appears (`place`, `name`,
//! `mtu`, `mac`, `master`, `up`, `addresses`; a route's `to`/`via`/`dev`; a
//! neighbour's `dev`/`ip`/`mac`; an FDB entry's `dev`/`mac`/`dst`; a VXLAN device's
//! `vni`/`port`/`underlay`/`dev`/`local`/`group`/...).

mod build;
mod peers;
mod table;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::net::IpAddr;

use ipnetwork::IpNetwork;
use serde::Serialize;

use crate::model::{LabName, Mac, Place};
use crate::observe::Dump;

pub use build::build;
pub use peers::nsids_to_ask;
pub use table::render;

/// What was read of each namespace the lab declares.
#[derive(Debug, Clone, Default)]
pub struct Kernel {
    pub seen: BTreeMap<Place, Seen>,
    /// In each namespace, the ids it gives the lab's other namespaces (as
    /// IFLA_LINK_NETNSID names them): id -> namespace.
    pub nsids: BTreeMap<Place, BTreeMap<i32, Place>>,
}

#[derive(Debug, Clone)]
pub enum Seen {
    Missing,
    /// A name under /run/netns with no namespace on it.
    Stale,
    /// There, but it could not be entered or read.
    Unreadable(String),
    Read(Dump),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Inspection {
    pub lab: LabName,
    /// False when nothing of the lab is here (no record, none of its namespaces).
    pub applied: bool,
    pub nodes: Vec<NodeView>,
    /// The agents (vxlan-agents, node daemons) netlab runs for the lab, as they run now.
    pub agents: Vec<crate::agents::AgentReport>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// The namespace netlab runs in: only the objects the lab declares are shown.
    Host,
    Node,
    /// A node other nodes' VXLAN devices ride on.
    SimulatedHost,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Presence {
    Present,
    Missing,
    /// A name under /run/netns with no namespace on it (a killed creation).
    Stale,
    /// A namespace of that name the lab did not make (`detail` says whose).
    Foreign,
    /// There, but it could not be read (`detail` says why).
    Unreadable,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NodeView {
    pub place: Place,
    pub role: Role,
    pub namespace: Presence,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    pub interfaces: Vec<InterfaceView>,
    pub routes: Vec<RouteView>,
    pub neighbours: Vec<NeighbourView>,
    pub fdb: Vec<FdbView>,
}

/// An interface as the kernel has it; one the lab declares and the kernel lacks has
/// `exists: false` and only its name and kind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InterfaceView {
    pub name: String,
    /// `veth`, `bridge`, `vxlan`, `loopback`, `dummy`, ... (`device` when the kernel
    /// gives no kind).
    pub kind: String,
    pub exists: bool,
    /// The lab's file (or record) declares it.
    pub declared: bool,
    /// A device of the host that the lab names but does not create.
    pub existing: bool,
    pub index: Option<u32>,
    /// A veth's other end, when it is in one of the lab's namespaces.
    pub peer: Option<EndpointView>,
    pub master: Option<String>,
    pub mac: Option<Mac>,
    pub mtu: Option<u32>,
    /// Administratively up.
    pub up: Option<bool>,
    /// The kernel's operational state, lowercase (`up`, `down`, `lowerlayerdown`,
    /// `unknown`, ...).
    pub oper_state: Option<String>,
    pub addresses: Vec<IpNetwork>,
    /// Addresses the lab declares on it that the kernel lacks.
    pub missing_addresses: Vec<IpNetwork>,
    pub vxlan: Option<VxlanView>,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct EndpointView {
    pub place: Place,
    pub name: String,
}

impl std::fmt::Display for EndpointView {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Always with the namespace, `host:` included: a peer is in another one.
        write!(f, "{}:{}", self.place, self.name)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VxlanView {
    pub vni: u32,
    pub port: u16,
    /// The namespace of its UDP socket and lower device, when it is one of the lab's.
    pub underlay: Option<Place>,
    /// The lower device there.
    pub dev: Option<String>,
    pub local: Option<IpAddr>,
    /// The remote VTEP or multicast group.
    pub group: Option<IpAddr>,
    pub learning: bool,
    pub proxy: bool,
    pub l2miss: bool,
    pub l3miss: bool,
    /// `None`: the kernel's default.
    pub ttl: Option<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RouteView {
    pub to: IpNetwork,
    pub via: Option<IpAddr>,
    pub dev: Option<String>,
    /// `kernel`, `boot`, `static`, `netlab` (77, netlab's own), or the number.
    pub proto: Option<String>,
    pub exists: bool,
    pub declared: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NeighbourView {
    pub dev: String,
    pub ip: IpAddr,
    pub mac: Option<Mac>,
    /// The NUD states, lowercase (`permanent`, `reachable`, `stale`, ...).
    pub state: Vec<String>,
    pub permanent: bool,
    pub extern_learn: bool,
    pub proto: Option<String>,
    pub exists: bool,
    pub declared: bool,
}

/// An entry of a VXLAN device's own forwarding table (`bridge fdb ... self`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FdbView {
    pub dev: String,
    pub mac: Mac,
    pub dst: Option<IpAddr>,
    pub permanent: bool,
    pub extern_learn: bool,
    pub exists: bool,
    pub declared: bool,
}
