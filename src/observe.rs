//! Read what the kernel has for one lab: the namespaces it names, the links, addresses
//! and routes in them, and the sysctls it sets. One thread visits each namespace once
//! and reads everything there.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use netns::address::AddressState;
use netns::link::LinkState;
use netns::namespace::Presence;
use netns::route::RouteState;
use netns::{blocking, Netlink};

use crate::kernel_place::KernelPlace;
use crate::model::{
    FdbSpec, IfName, LabName, Mac, NamespaceSpec, NeighbourSpec, NodeName, Place, RouteSpec, SysctlKey,
};
use crate::ownership;
use crate::plan::firewall::ObservedTable;
use crate::plan::{
    Desired, NamespaceState, Observed, ObservedExisting, ObservedKind, ObservedLink, ObservedNamespace, ObservedQdisc,
    ObservedVxlan,
};

#[derive(Debug, thiserror::Error)]
pub enum ObserveError {
    #[error("observe namespace {place}")]
    Namespace {
        place: Place,
        #[source]
        source: netns::Error,
    },
    #[error("observe the namespaces")]
    Visit(#[source] netns::Error),
    #[error("list the namespaces")]
    List(#[source] netns::Error),
    #[error(transparent)]
    Firewall(#[from] crate::firewall::FirewallError),
    #[error("observe: a reading thread failed")]
    Thread(#[from] tokio::task::JoinError),
}

type Result<T, E = ObserveError> = std::result::Result<T, E>;

/// What to look at: the namespaces of the file and of the record.
pub struct Scope {
    pub places: BTreeSet<Place>,
    /// Where the lab has (or had) NAT: its nftables table is read there.
    pub nat: BTreeSet<Place>,
    /// Where the lab forwards (or did): iptables' FORWARD chain is read there.
    pub forwarding: BTreeSet<Place>,
    /// Where the lab has (or had) static neighbour or FDB entries.
    pub entries: BTreeSet<Place>,
    /// Namespaces and host links an interrupted run may have left without their mark.
    pub adoptable: Desired,
    pub sysctls: BTreeMap<Place, BTreeSet<SysctlKey>>,
    /// Devices the file names but netlab does not create: their facts are read.
    pub existing: BTreeMap<Place, BTreeSet<IfName>>,
    /// Where the lab shapes (or shaped) a link: root qdiscs are read there.
    pub shaping: BTreeSet<Place>,
}

impl Scope {
    pub fn new(desired: &Desired, previous: &Desired, pending: Option<&Desired>) -> Scope {
        let mut places: BTreeSet<Place> = desired.keys().chain(previous.keys()).cloned().collect();
        places.insert(Place::Host);
        let mut sysctls: BTreeMap<Place, BTreeSet<SysctlKey>> = BTreeMap::new();
        for (place, spec) in desired.iter().chain(previous.iter()) {
            sysctls.entry(place.clone()).or_default().extend(spec.sysctls.keys().cloned());
        }
        let both = || desired.iter().chain(previous.iter());
        let nat = both().filter(|(_, spec)| !spec.nat.is_empty()).map(|(p, _)| p.clone()).collect();
        let forwarding = both().filter(|(_, spec)| spec.forwards()).map(|(p, _)| p.clone()).collect();
        let entries = both()
            .filter(|(_, spec)| !spec.neighbours.is_empty() || !spec.fdb.is_empty())
            .map(|(p, _)| p.clone())
            .collect();
        let existing = desired
            .iter()
            .filter(|(_, spec)| !spec.existing.is_empty())
            .map(|(place, spec)| (place.clone(), spec.existing.clone()))
            .collect();
        let shaping = both()
            .filter(|(_, spec)| spec.links.values().any(|link| link.shaping.is_some()))
            .map(|(p, _)| p.clone())
            .collect();
        Scope {
            places,
            nat,
            forwarding,
            entries,
            adoptable: pending.cloned().unwrap_or_default(),
            sysctls,
            existing,
            shaping,
        }
    }

    /// Where a destroy without a usable record looks for the lab's firewall: the host
    /// (the nodes' tables and rules go with their namespaces).
    pub fn with_host_firewall(mut self) -> Scope {
        self.nat.insert(Place::Host);
        self.forwarding.insert(Place::Host);
        self
    }

    pub fn with_originals(mut self, originals: &BTreeMap<Place, BTreeMap<SysctlKey, String>>) -> Scope {
        for (place, keys) in originals {
            self.sysctls.entry(place.clone()).or_default().extend(keys.keys().cloned());
        }
        self
    }
}

/// What the kernel marks as the lab's, for a destroy whose record is missing or corrupt:
/// the namespaces whose `lo` carries the lab's mark, and the host routes of netlab's
/// protocol through host links that carry it. (The marked host links, the marked nft
/// table and the commented iptables rules are found by `observe` itself.) Host
/// routes through devices netlab did not make cannot be told apart from other labs'
/// and stay; so do the values of host sysctls the lab changed, which only the
/// record knew.
pub async fn discover(lab: &LabName) -> Result<Desired> {
    let nodes: Vec<NodeName> = netns::namespace::list()
        .map_err(ObserveError::List)?
        .into_iter()
        .filter_map(|name| name.parse::<NodeName>().ok())
        .filter(|node| netns::namespace::presence(node.as_str()) == Presence::Mounted)
        .collect();
    let places: Vec<Place> = std::iter::once(Place::Host).chain(nodes.into_iter().map(Place::Node)).collect();
    let namespaces: Vec<netns::Netns> = places.iter().map(KernelPlace::to_netns).collect();
    let visits = tokio::task::spawn_blocking(move || {
        netns::thread::in_each(namespaces, |ns| {
            let socket = Netlink::open_socket_here()?;
            let routes = if *ns == netns::Netns::Host { blocking::routes(&socket)? } else { Vec::new() };
            Ok((blocking::links(&socket)?, routes))
        })
    })
    .await?
    .map_err(ObserveError::Visit)?;
    let mark = ownership::mark(lab);
    let mut found = Desired::new();
    for (place, visit) in places.into_iter().zip(visits) {
        // A namespace that vanished or cannot be entered is not the lab's to judge.
        let Ok((links, routes)) = visit else { continue };
        let marked: HashMap<u32, &str> = links
            .iter()
            .filter(|l| l.alias.as_deref() == Some(mark.as_str()))
            .map(|l| (l.index, l.name.as_str()))
            .collect();
        match &place {
            Place::Node(_) => {
                if marked.values().any(|name| *name == "lo") {
                    found.insert(place, NamespaceSpec::default());
                }
            }
            Place::Host => {
                let host = found.entry(Place::Host).or_default();
                for route in routes.iter().filter(|r| r.protocol == ownership::PROTOCOL) {
                    let Some(dev) = route.oif.and_then(|i| marked.get(&i)?.parse::<IfName>().ok()) else { continue };
                    host.routes.insert(RouteSpec { to: route.destination, via: route.gateway, dev: Some(dev) });
                }
            }
        }
    }
    Ok(found)
}

struct Visit {
    sysctls: BTreeMap<SysctlKey, Option<String>>,
    dump: Dump,
    qdiscs: Vec<netns::qdisc::RootQdisc>,
}

pub async fn observe(lab: &LabName, scope: &Scope) -> Result<Observed> {
    let mut observed = Observed::default();
    let mut visit: Vec<Place> = vec![Place::Host];
    for place in &scope.places {
        let Place::Node(node) = place else { continue };
        match netns::namespace::presence(node.as_str()) {
            Presence::Missing => {
                observed.namespaces.insert(place.clone(), ObservedNamespace::Missing);
            }
            Presence::Stale if scope.adoptable.contains_key(place) => {
                observed.namespaces.insert(place.clone(), ObservedNamespace::Stale);
            }
            Presence::Stale => {
                let reason = "exists in /run/netns without a namespace on it and was not created by netlab";
                observed.namespaces.insert(place.clone(), ObservedNamespace::Foreign(reason.into()));
            }
            Presence::Mounted => visit.push(place.clone()),
        }
    }

    let keys: Vec<Vec<SysctlKey>> =
        visit.iter().map(|p| scope.sysctls.get(p).map(|k| k.iter().cloned().collect()).unwrap_or_default()).collect();
    let namespaces: Vec<netns::Netns> = visit.iter().map(KernelPlace::to_netns).collect();
    let keys_by_ns: HashMap<netns::Netns, Vec<SysctlKey>> = namespaces.iter().cloned().zip(keys).collect();
    let with_entries: BTreeSet<netns::Netns> = scope.entries.iter().map(KernelPlace::to_netns).collect();
    let with_qdiscs: BTreeSet<netns::Netns> = scope.shaping.iter().map(KernelPlace::to_netns).collect();
    // One thread visits each namespace once and reads everything there itself (see
    // netns::blocking for why not rtnetlink).
    let visits = tokio::task::spawn_blocking(move || {
        netns::thread::in_each(namespaces, move |ns| {
            let socket = Netlink::open_socket_here()?;
            let entries = with_entries.contains(ns);
            let dump = Dump {
                links: blocking::links(&socket)?,
                addresses: blocking::addresses(&socket)?,
                routes: blocking::routes(&socket)?,
                neighbours: if entries { blocking::neighbours(&socket)? } else { Vec::new() },
                fdb: if entries { blocking::fdb(&socket)? } else { Vec::new() },
            };
            let mut sysctls = BTreeMap::new();
            for key in keys_by_ns.get(ns).into_iter().flatten() {
                sysctls.insert(key.clone(), netns::sysctl::read(key.as_str())?);
            }
            let qdiscs = if with_qdiscs.contains(ns) { netns::qdisc::root_qdiscs(&socket)? } else { Vec::new() };
            Ok(Visit { sysctls, dump, qdiscs })
        })
    })
    .await?
    .map_err(ObserveError::Visit)?;

    let mark = ownership::mark(lab);
    let group = ownership::group(lab);
    for (place, visit) in visit.into_iter().zip(visits) {
        let Visit { sysctls, dump, qdiscs } =
            visit.map_err(|source| ObserveError::Namespace { place: place.clone(), source })?;
        match namespace_owner(&place, &dump, &mark, scope.adoptable.contains_key(&place)) {
            Owner::Lab => {
                let adoptable = scope.adoptable.get(&place);
                let existing = scope.existing.get(&place);
                let state = dump.into_state(&place, &mark, group, adoptable, existing, sysctls);
                let qdiscs = lab_qdiscs(&state, qdiscs);
                if !qdiscs.is_empty() {
                    observed.qdiscs.insert(place.clone(), qdiscs);
                }
                observed.namespaces.insert(place.clone(), ObservedNamespace::Owned(state));
            }
            Owner::HalfMade => {
                observed.namespaces.insert(place, ObservedNamespace::Stale);
            }
            Owner::Other(reason) => {
                observed.namespaces.insert(place, ObservedNamespace::Foreign(reason));
            }
        }
    }
    read_firewall(lab, scope, &mut observed).await?;
    Ok(observed)
}

/// The lab's nftables table and iptables FORWARD accepts, where they matter.
async fn read_firewall(lab: &LabName, scope: &Scope, observed: &mut Observed) -> Result<()> {
    for (place, namespace) in observed.namespaces.iter_mut() {
        let ObservedNamespace::Owned(state) = namespace else { continue };
        let (place, lab) = (place.clone(), lab.clone());
        let (read_nat, read_forward) = (scope.nat.contains(&place), scope.forwarding.contains(&place));
        if !read_nat && !read_forward {
            continue;
        }
        let (nat_table, forward) = tokio::task::spawn_blocking(move || -> Result<_> {
            let nat_table = if read_nat { crate::firewall::nft::read(&place, &lab)? } else { ObservedTable::Absent };
            let forward =
                if read_forward { crate::firewall::iptables::read(&place, &lab)? } else { Default::default() };
            Ok((nat_table, forward))
        })
        .await??;
        state.nat_table = nat_table;
        state.forward = forward;
    }
    Ok(())
}

enum Owner {
    Lab,
    /// Unmarked, and the record says a killed run of this lab was creating it.
    HalfMade,
    Other(String),
}

/// A node's namespace is the lab's when its `lo` carries the lab's mark.
fn namespace_owner(place: &Place, dump: &Dump, mark: &str, adoptable: bool) -> Owner {
    if *place == Place::Host {
        return Owner::Lab;
    }
    let alias = dump.links.iter().find(|l| l.name == "lo").and_then(|l| l.alias.as_deref());
    match alias {
        Some(alias) if alias == mark => Owner::Lab,
        None if adoptable => Owner::HalfMade,
        Some(alias) => match ownership::lab_of(alias) {
            Some(other) => Owner::Other(format!("belongs to lab {other}")),
            None => Owner::Other("exists and was not created by netlab".into()),
        },
        None => Owner::Other("exists and was not created by netlab".into()),
    }
}

/// Everything netlink reports in one namespace (the main routing table).
#[derive(Debug, Clone, Default)]
pub struct Dump {
    pub links: Vec<LinkState>,
    pub addresses: Vec<AddressState>,
    pub routes: Vec<RouteState>,
    pub neighbours: Vec<netns::neighbour::NeighbourEntry>,
    pub fdb: Vec<netns::neighbour::FdbEntry>,
}

/// Read everything in each namespace, unfiltered, for `inspect`: one result per place,
/// in order (a namespace that cannot be entered or read is an error of its own).
/// Neighbour and FDB entries are read where `entries` says or a VXLAN device is: the
/// kernel walks every namespace's neighbours to dump one's, so reading them in each
/// of a thousand namespaces costs a thousand times a thousand.
pub async fn dump_each(places: Vec<Place>, entries: BTreeSet<Place>) -> Result<Vec<Result<Dump, netns::Error>>> {
    let namespaces: Vec<netns::Netns> = places.iter().map(KernelPlace::to_netns).collect();
    let entries: BTreeSet<netns::Netns> = entries.iter().map(KernelPlace::to_netns).collect();
    let dumps = tokio::task::spawn_blocking(move || {
        netns::thread::in_each(namespaces, move |ns| {
            let socket = Netlink::open_socket_here()?;
            let links = blocking::links(&socket)?;
            let with_entries = entries.contains(ns) || links.iter().any(|l| l.kind.as_deref() == Some("vxlan"));
            Ok(Dump {
                addresses: blocking::addresses(&socket)?,
                routes: blocking::routes(&socket)?,
                neighbours: if with_entries { blocking::neighbours(&socket)? } else { Vec::new() },
                fdb: if with_entries { blocking::fdb(&socket)? } else { Vec::new() },
                links,
            })
        })
    })
    .await?
    .map_err(ObserveError::Visit)?;
    Ok(dumps)
}

/// For each namespace asked about, the ids it gives the other namespaces asked for
/// (those an IFLA_LINK_NETNSID may point at): id -> namespace. Read only; a namespace
/// that gives one no id, or cannot be entered, is left out.
pub async fn nsids(asked: BTreeMap<Place, BTreeSet<Place>>) -> Result<BTreeMap<Place, BTreeMap<i32, Place>>> {
    let asked: Vec<(Place, Vec<Place>)> =
        asked.into_iter().map(|(p, others)| (p, others.into_iter().collect())).collect();
    let namespaces: Vec<netns::Netns> = asked.iter().map(|(place, _)| place.to_netns()).collect();
    let others: HashMap<netns::Netns, Vec<Place>> =
        asked.iter().map(|(place, others)| (place.to_netns(), others.clone())).collect();
    let found = tokio::task::spawn_blocking(move || {
        netns::thread::in_each(namespaces, move |ns| {
            let socket = Netlink::open_socket_here()?;
            let mut ids = BTreeMap::new();
            for other in others.get(ns).into_iter().flatten() {
                let Ok(fd) = other.to_netns().open() else { continue };
                if let Some(id) = blocking::nsid(&socket, &fd)? {
                    ids.insert(id, other.clone());
                }
            }
            Ok(ids)
        })
    })
    .await?
    .map_err(ObserveError::Visit)?;
    Ok(asked.into_iter().zip(found).filter_map(|((place, _), ids)| Some((place, ids.ok()?))).collect())
}

impl Dump {
    fn into_state(
        self,
        place: &Place,
        mark: &str,
        group: u32,
        adoptable: Option<&crate::model::NamespaceSpec>,
        existing: Option<&BTreeSet<IfName>>,
        sysctls: BTreeMap<SysctlKey, Option<String>>,
    ) -> NamespaceState {
        let names: HashMap<u32, &str> = self.links.iter().map(|l| (l.index, l.name.as_str())).collect();
        let mut addresses: HashMap<u32, BTreeSet<ipnetwork::IpNetwork>> = HashMap::new();
        for address in &self.addresses {
            addresses.entry(address.index).or_default().insert(address.network);
        }
        let mut state = NamespaceState { sysctls, ..NamespaceState::default() };
        // Devices the file names but netlab does not create: read, never owned.
        for link in &self.links {
            let Some(name) = existing.and_then(|names| names.iter().find(|n| n.as_str() == link.name)) else {
                continue;
            };
            let facts = ObservedExisting {
                mtu: link.mtu,
                addresses: addresses.get(&link.index).cloned().unwrap_or_default(),
                ours: link.alias.as_deref() == Some(mark),
            };
            state.existing.insert(name.clone(), facts);
        }
        for link in &self.links {
            let marked = link.alias.as_deref() == Some(mark);
            let loopback = *place != Place::Host && link.name == "lo";
            // A link made by an interrupted run: our group, no alias yet, a name the
            // record says that run was creating.
            let half_made = link.alias.is_none()
                && link.group == group
                && adoptable.is_some_and(|spec| spec.links.keys().any(|n| n.as_str() == link.name));
            let name = link.name.parse::<IfName>();
            match name {
                Ok(name) if marked || loopback || half_made => {
                    let kind = match link.kind.as_deref() {
                        _ if loopback => ObservedKind::Loopback,
                        Some("bridge") => ObservedKind::Bridge,
                        Some("veth") => ObservedKind::Veth { peer_index: link.peer_index },
                        Some("vxlan") => ObservedKind::Vxlan(vxlan(link.vxlan.as_ref())),
                        other => ObservedKind::Other(other.unwrap_or("device").to_string()),
                    };
                    let observed = ObservedLink {
                        kind,
                        index: link.index,
                        marked,
                        mtu: link.mtu,
                        mac: link.mac.map(Mac::from_octets),
                        up: link.up,
                        master: link.master.and_then(|i| names.get(&i)?.parse().ok()),
                        addresses: addresses.remove(&link.index).unwrap_or_default(),
                        ipv6_autoconf: link.ipv6_autoconf,
                    };
                    state.links.insert(name, observed);
                }
                _ => {
                    state.foreign_links.insert(link.name.clone());
                }
            }
        }
        // Entries on the lab's own links: neighbours it marked, and the permanent
        // entries with a destination on its VXLAN devices (learned ones are not, nor
        // those a control plane such as the vxlan-agent flagged as externally learned).
        let ours = |index: u32| -> Option<&IfName> {
            let name = names.get(&index)?;
            state.links.keys().find(|n| n.as_str() == *name)
        };
        let mut neighbours = BTreeSet::new();
        for entry in &self.neighbours {
            if entry.protocol != ownership::PROTOCOL || !entry.permanent {
                continue;
            }
            if let (Some(dev), Some(mac)) = (ours(entry.index), entry.mac) {
                neighbours.insert(NeighbourSpec { dev: dev.clone(), ip: entry.ip, mac: Mac::from_octets(mac) });
            }
        }
        let mut fdb = BTreeSet::new();
        for entry in &self.fdb {
            let (Some(dev), Some(dst)) = (ours(entry.index), entry.dst) else { continue };
            let on_vxlan = matches!(state.links.get(dev).map(|l| &l.kind), Some(ObservedKind::Vxlan(_)));
            if on_vxlan && entry.own && entry.permanent && !entry.extern_learned && entry.mac != [0; 6] {
                fdb.insert(FdbSpec { dev: dev.clone(), mac: Mac::from_octets(entry.mac), dst });
            }
        }
        state.neighbours = neighbours;
        state.fdb = fdb;
        for route in &self.routes {
            if route.protocol != ownership::PROTOCOL {
                continue;
            }
            let dev = route.oif.and_then(|i| names.get(&i)?.parse().ok());
            state.routes.insert(RouteSpec { to: route.destination, via: route.gateway, dev });
        }
        state
    }
}

/// The root qdiscs on the lab's own links, by name; others' links are never looked at.
fn lab_qdiscs(state: &NamespaceState, qdiscs: Vec<netns::qdisc::RootQdisc>) -> BTreeMap<IfName, ObservedQdisc> {
    let names: HashMap<u32, &IfName> = state.links.iter().map(|(name, link)| (link.index, name)).collect();
    qdiscs
        .into_iter()
        .filter_map(|root| {
            let name = names.get(&root.index)?;
            Some(((*name).clone(), ObservedQdisc { kind: root.kind, qdisc: root.qdisc }))
        })
        .collect()
}

fn vxlan(reported: Option<&netns::link::Vxlan>) -> ObservedVxlan {
    let Some(v) = reported else { return ObservedVxlan::default() };
    ObservedVxlan {
        vni: v.vni,
        port: v.port,
        local: v.local,
        group: v.group,
        learning: v.learning,
        proxy: v.proxy,
        l2miss: v.l2miss,
        l3miss: v.l3miss,
        ttl: v.ttl,
    }
}
