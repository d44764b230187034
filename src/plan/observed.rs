//! What the kernel has, as far as one lab is concerned: the input `plan` compares the
//! file against. Filled in by `observe`; plain data so plans can be tested without root.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use ipnetwork::IpNetwork;

use super::firewall::{Backend, Forward, ObservedTable};
use crate::model::{FdbSpec, IfName, Mac, NeighbourSpec, Place, RouteSpec, SysctlKey};

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Observed {
    pub namespaces: BTreeMap<Place, ObservedNamespace>,
    /// vxlan-agent processes running where the lab's agents run.
    pub agents: Vec<super::agents::ObservedAgent>,
    /// Root qdiscs someone attached to the lab's links (the kernel's defaults are not
    /// listed), in the owned namespaces where the lab shapes or shaped a link. Kept
    /// apart from `NamespaceState`, which most labs would carry empty.
    pub qdiscs: BTreeMap<Place, BTreeMap<IfName, ObservedQdisc>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ObservedNamespace {
    Missing,
    /// Half made by a run of this lab that was killed while creating it: a name under
    /// /run/netns with no namespace on it, or a namespace whose `lo` has no mark yet
    /// (the mark is the last step of creation, before anything is put inside).
    Stale,
    /// There, but not this lab's: the reason names who it belongs to.
    Foreign(String),
    /// This lab's (the host counts as one: only its links marked for this lab are listed).
    Owned(NamespaceState),
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NamespaceState {
    /// Links this lab made.
    pub links: BTreeMap<IfName, ObservedLink>,
    /// Names of the other links there: never touched, and a clash with one is an error.
    pub foreign_links: BTreeSet<String>,
    /// Routes of netlab's protocol, with `dev` filled in.
    pub routes: BTreeSet<RouteSpec>,
    /// Current values of the sysctls the lab sets or set (`None`: no such key).
    pub sysctls: BTreeMap<SysctlKey, Option<String>>,
    /// The nftables table of the lab's name, and whose it is.
    pub nat_table: ObservedTable,
    /// Static neighbour entries the lab made (protocol 77) on its links.
    pub neighbours: BTreeSet<NeighbourSpec>,
    /// Permanent FDB entries with a destination on the lab's VXLAN devices.
    pub fdb: BTreeSet<FdbSpec>,
    /// iptables' FORWARD chain of each variant present, where the lab forwards
    /// (empty: not looked at, or no iptables installed).
    pub forward: BTreeMap<Backend, Forward>,
    /// The devices the file names here but netlab does not create, as they are (a name
    /// the kernel does not have is absent). Only ever read, never changed.
    pub existing: BTreeMap<IfName, ObservedExisting>,
}

/// A root qdisc: its kind, and its parameters for the kinds netlab sets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObservedQdisc {
    pub kind: String,
    pub qdisc: Option<netns::qdisc::Qdisc>,
}

/// What the checks of an existing device need: its MTU and addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObservedExisting {
    pub mtu: u32,
    pub addresses: BTreeSet<IpNetwork>,
    /// It carries this lab's mark: the lab made it, and would delete it.
    pub ours: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObservedLink {
    pub kind: ObservedKind,
    pub index: u32,
    /// Carries this lab's ownership mark (a half-made link may not yet).
    pub marked: bool,
    pub mtu: u32,
    pub mac: Option<Mac>,
    pub up: bool,
    pub master: Option<IfName>,
    pub addresses: BTreeSet<IpNetwork>,
    pub ipv6_autoconf: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ObservedKind {
    Loopback,
    Bridge,
    Veth { peer_index: Option<u32> },
    Vxlan(ObservedVxlan),
    Other(String),
}

/// A VXLAN device's parameters as the kernel reports them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ObservedVxlan {
    pub vni: u32,
    pub port: u16,
    pub local: Option<IpAddr>,
    /// The remote VTEP or multicast group.
    pub group: Option<IpAddr>,
    pub learning: bool,
    pub proxy: bool,
    pub l2miss: bool,
    pub l3miss: bool,
    /// 0: inherit.
    pub ttl: u8,
}
