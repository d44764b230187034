//! Desired state + observed state -> an ordered list of changes. Pure: the same
//! inputs always give the same plan, so plans are golden-tested without root.

pub mod agents;
mod change;
mod existing;
pub mod firewall;
mod kernel;
mod observed;
mod shaping;

use std::collections::{BTreeMap, BTreeSet};

use ipnetwork::IpNetwork;
use serde::Serialize;

pub use change::{Change, Effect, LinkSettings, LinkUpdate, Phase, Resource, VethEnd};
pub use existing::{resolve, ExistingError, ExistingErrors};
pub use observed::{
    NamespaceState, Observed, ObservedExisting, ObservedKind, ObservedLink, ObservedNamespace, ObservedQdisc,
    ObservedVxlan,
};
pub use shaping::{in_kernel_units, qdisc_text};

use crate::model::{Endpoint, IfName, LinkKind, LinkSpec, NamespaceSpec, Place, RouteSpec, SysctlKey};
use firewall::ObservedTable;
use kernel::{kernel_range, kernels_own, link_of};

/// The desired state of every namespace of a lab.
pub type Desired = BTreeMap<Place, NamespaceSpec>;

/// What earlier applies of the lab recorded: knowledge the kernel does not keep.
#[derive(Debug, Default)]
pub struct History {
    /// Everything an earlier apply meant to create (what was applied, and what a
    /// killed apply was applying), for veth peers and the host's routes.
    pub previous: Desired,
    /// Values sysctls had before the lab changed them, restored when dropped.
    pub sysctl_originals: BTreeMap<Place, BTreeMap<SysctlKey, String>>,
    /// What the other labs applied on this host declare there.
    pub others: OtherLabs,
}

/// Host objects several labs may declare: each is released only by the last lab that
/// declares it (see `record`: the original value of a sysctl is kept by every lab
/// that declares it, so the last one restores it).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OtherLabs {
    /// Host sysctls another lab sets: left as they are when this lab drops them.
    pub sysctls: BTreeSet<SysctlKey>,
    /// Host routes another lab declares: never deleted by this lab.
    pub routes: BTreeSet<RouteSpec>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Plan {
    pub changes: Vec<Change>,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }
}

/// Compute the changes that take `observed` to `desired`. Fails, listing every clash,
/// when the lab would have to take over something netlab did not create.
pub fn plan(desired: &Desired, observed: &Observed, history: &History) -> Result<Plan, Vec<String>> {
    let mut planner =
        Planner { desired, observed, history, changes: Vec::new(), conflicts: Vec::new(), doomed: BTreeSet::new() };
    planner.run();
    agents::agent_changes(desired, &observed.agents, history, &mut planner.changes, &mut planner.conflicts);
    if planner.conflicts.is_empty() {
        // Stable: within a phase, the order of iteration (sorted maps) is kept.
        planner.changes.sort_by_key(Change::phase);
        Ok(Plan { changes: planner.changes })
    } else {
        Err(planner.conflicts)
    }
}

struct Planner<'a> {
    desired: &'a Desired,
    observed: &'a Observed,
    history: &'a History,
    changes: Vec<Change>,
    conflicts: Vec<String>,
    /// Owned namespaces the file no longer has.
    doomed: BTreeSet<Place>,
}

const MISSING: ObservedNamespace = ObservedNamespace::Missing;

impl<'a> Planner<'a> {
    fn namespace(&self, place: &Place) -> &'a ObservedNamespace {
        self.observed.namespaces.get(place).unwrap_or(&MISSING)
    }

    fn run(&mut self) {
        for (place, observed) in &self.observed.namespaces {
            if let (Place::Node(node), ObservedNamespace::Owned(_) | ObservedNamespace::Stale) = (place, observed) {
                if !self.desired.contains_key(place) {
                    self.doomed.insert(place.clone());
                    self.changes.push(Change::DeleteNamespace { namespace: node.clone() });
                }
            }
        }
        // The host is always planned: in a destroy, its links are what is left to remove.
        let desired: &'a Desired = self.desired;
        let host_spec = desired.get(&Place::Host).cloned().unwrap_or_default();
        let nodes = desired.iter().filter(|(p, _)| **p != Place::Host);
        let places: Vec<(&Place, &NamespaceSpec)> = std::iter::once((&Place::Host, &host_spec)).chain(nodes).collect();
        let fresh_state = NamespaceState::default();
        for (place, spec) in places {
            let (state, fresh) = match self.namespace(place) {
                ObservedNamespace::Missing | ObservedNamespace::Stale => {
                    if let (Place::Node(node), ObservedNamespace::Stale) = (place, self.namespace(place)) {
                        self.changes.push(Change::DeleteNamespace { namespace: node.clone() });
                    }
                    if let Place::Node(node) = place {
                        self.changes.push(Change::CreateNamespace { namespace: node.clone() });
                    }
                    (&fresh_state, true)
                }
                ObservedNamespace::Foreign(reason) => {
                    self.conflicts.push(format!("namespace {place} {reason}"));
                    continue;
                }
                ObservedNamespace::Owned(state) => (state, false),
            };
            self.namespace_changes(place, spec, state, fresh);
        }
    }

    fn namespace_changes(&mut self, place: &Place, spec: &NamespaceSpec, state: &NamespaceState, fresh: bool) {
        let mut recreated = BTreeSet::new();
        // Bridges first: their ports are re-attached when one is made again.
        for (name, link) in spec.links.iter().filter(|(_, l)| l.kind == LinkKind::Bridge) {
            if self.clashes(place, name, state) {
                continue;
            }
            match state.links.get(name) {
                Some(observed) if observed.kind == ObservedKind::Bridge => {
                    self.update(place, name, link, observed, &recreated)
                }
                observed => {
                    let create =
                        Change::CreateBridge { place: place.clone(), name: name.clone(), settings: settings(link) };
                    self.remake(place, name, link, observed, create, &mut recreated);
                }
            }
        }
        for (name, link) in &spec.links {
            match &link.kind {
                LinkKind::Bridge => {}
                LinkKind::Vxlan(vxlan) => {
                    if self.clashes(place, name, state) {
                        continue;
                    }
                    match state.links.get(name) {
                        Some(observed) if vxlan_matches(&observed.kind, vxlan) => {
                            self.update(place, name, link, observed, &recreated)
                        }
                        observed => {
                            let create = Change::CreateVxlan {
                                place: place.clone(),
                                name: name.clone(),
                                settings: settings(link),
                                vxlan: crate::model::VxlanSpec::clone(vxlan),
                            };
                            self.remake(place, name, link, observed, create, &mut recreated);
                        }
                    }
                }
                LinkKind::Loopback => {
                    // `lo` comes with the namespace, which CreateNamespace brings up and marks.
                    match state.links.get(name) {
                        Some(observed) if !fresh => self.update(place, name, link, observed, &recreated),
                        _ => self.add_addresses(place, name, &link.addresses),
                    }
                }
                LinkKind::Veth { peer } => {
                    if self.clashes(place, name, state) {
                        continue;
                    }
                    let this = Endpoint { place: place.clone(), name: name.clone() };
                    let observed = state.links.get(name);
                    match (observed, self.observed_link(peer)) {
                        (Some(o), Some(p)) if is_pair(o, p) => self.update(place, name, link, o, &recreated),
                        _ => {
                            if let Some(observed) = observed {
                                self.delete_link(place, name, observed);
                            }
                            recreated.insert(name.clone());
                            if creates_pair(&this, peer) {
                                let peer_spec = &self.desired[&peer.place].links[&peer.name];
                                self.changes.push(Change::CreateVeth {
                                    a: VethEnd { place: place.clone(), name: name.clone(), settings: settings(link) },
                                    b: VethEnd {
                                        place: peer.place.clone(),
                                        name: peer.name.clone(),
                                        settings: settings(peer_spec),
                                    },
                                });
                            }
                            self.add_addresses(place, name, &link.addresses);
                        }
                    }
                }
            }
        }
        for (name, observed) in &state.links {
            if !spec.links.contains_key(name)
                && observed.kind != ObservedKind::Loopback
                && !self.goes_with_peer(place, name)
            {
                self.delete_link(place, name, observed);
            }
        }
        self.entry_changes(place, spec, state, &recreated);
        self.shaping_changes(place, spec, &recreated);
        self.route_changes(place, spec, state, &recreated);
        self.sysctl_changes(place, spec, state, fresh, &recreated);
        self.firewall_changes(place, spec, state);
    }

    /// Static entries, keyed by (device, address) and (device, MAC): a changed MAC or
    /// destination is one replacing change. Entries of a device made again went with it.
    fn entry_changes(
        &mut self,
        place: &Place,
        spec: &NamespaceSpec,
        state: &NamespaceState,
        recreated: &BTreeSet<IfName>,
    ) {
        let live = |dev: &IfName| !recreated.contains(dev);
        for entry in &spec.neighbours {
            if !(live(&entry.dev) && state.neighbours.contains(entry)) {
                let creates = !state.neighbours.iter().any(|e| live(&e.dev) && e.dev == entry.dev && e.ip == entry.ip);
                self.changes.push(Change::SetNeighbour { place: place.clone(), entry: entry.clone(), creates });
            }
        }
        for entry in state.neighbours.iter().filter(|e| live(&e.dev)) {
            if !spec.neighbours.iter().any(|d| d.dev == entry.dev && d.ip == entry.ip) {
                self.changes.push(Change::DeleteNeighbour { place: place.clone(), entry: entry.clone() });
            }
        }
        for entry in &spec.fdb {
            if !(live(&entry.dev) && state.fdb.contains(entry)) {
                let creates = !state.fdb.iter().any(|e| live(&e.dev) && e.dev == entry.dev && e.mac == entry.mac);
                self.changes.push(Change::SetFdb { place: place.clone(), entry: entry.clone(), creates });
            }
        }
        for entry in state.fdb.iter().filter(|e| live(&e.dev)) {
            if !spec.fdb.iter().any(|d| d.dev == entry.dev && d.mac == entry.mac) {
                self.changes.push(Change::DeleteFdb { place: place.clone(), entry: entry.clone() });
            }
        }
    }

    fn firewall_changes(&mut self, place: &Place, spec: &NamespaceSpec, state: &NamespaceState) {
        let wanted = (!spec.nat.is_empty()).then(|| firewall::nat_table(&spec.nat));
        match (wanted, &state.nat_table) {
            (Some(_), ObservedTable::Foreign(name)) => {
                self.conflicts.push(format!("nft table ip {name} in {place} exists and was not created by netlab"))
            }
            (Some(wanted), ObservedTable::Owned(have)) if wanted == *have => {}
            (Some(_), have) => {
                let creates = matches!(have, ObservedTable::Absent);
                self.changes.push(Change::SetNatTable { place: place.clone(), nat: spec.nat.clone(), creates })
            }
            (None, ObservedTable::Owned(_)) => self.changes.push(Change::DeleteNatTable { place: place.clone() }),
            // Someone else's table is never deleted.
            (None, ObservedTable::Absent | ObservedTable::Foreign(_)) => {}
        }
        // Only where iptables was looked at: where the lab forwards, now or before.
        for (backend, forward) in &state.forward {
            let wanted = if forward.policy_drop && spec.forwards() {
                firewall::forward_accepts(*backend, &firewall::lab_prefixes(self.desired))
            } else {
                BTreeSet::new()
            };
            for accept in wanted.difference(&forward.accepts) {
                self.changes.push(Change::AddForwardAccept { place: place.clone(), accept: accept.clone() });
            }
            for accept in forward.accepts.difference(&wanted) {
                self.changes.push(Change::DeleteForwardAccept { place: place.clone(), accept: accept.clone() });
            }
        }
    }

    /// Make a link (again): delete what is there under its name, create it, address it.
    fn remake(
        &mut self,
        place: &Place,
        name: &IfName,
        link: &LinkSpec,
        observed: Option<&ObservedLink>,
        create: Change,
        recreated: &mut BTreeSet<IfName>,
    ) {
        if let Some(observed) = observed {
            self.delete_link(place, name, observed);
        }
        recreated.insert(name.clone());
        self.changes.push(create);
        self.add_addresses(place, name, &link.addresses);
    }

    fn clashes(&mut self, place: &Place, name: &IfName, state: &NamespaceState) -> bool {
        let clash = !state.links.contains_key(name) && state.foreign_links.contains(name.as_str());
        if clash {
            self.conflicts.push(format!("link {} exists and was not created by netlab", place.qualify(name)));
        }
        clash
    }

    fn observed_link(&self, end: &Endpoint) -> Option<&'a ObservedLink> {
        match self.namespace(&end.place) {
            ObservedNamespace::Owned(state) => state.links.get(&end.name),
            _ => None,
        }
    }

    /// An unwanted veth end disappears by itself when its peer's namespace is deleted,
    /// or when its peer is deleted by this plan: deleting it too would cost an RCU
    /// grace period for nothing.
    fn goes_with_peer(&self, place: &Place, name: &IfName) -> bool {
        let previous = self.history.previous.get(place).and_then(|ns| ns.links.get(name));
        let Some(LinkKind::Veth { peer }) = previous.map(|l| &l.kind) else { return false };
        if self.doomed.contains(&peer.place) {
            return true;
        }
        let peer_unwanted = !self.desired.get(&peer.place).is_some_and(|ns| ns.links.contains_key(&peer.name));
        let here = Endpoint { place: place.clone(), name: name.clone() };
        peer_unwanted && self.observed_link(peer).is_some() && *peer < here
    }

    fn delete_link(&mut self, place: &Place, name: &IfName, observed: &ObservedLink) {
        let kind = match &observed.kind {
            ObservedKind::Loopback => "loopback".to_string(),
            ObservedKind::Bridge => "bridge".to_string(),
            ObservedKind::Veth { .. } => "veth".to_string(),
            ObservedKind::Vxlan(_) => "vxlan".to_string(),
            ObservedKind::Other(kind) => kind.clone(),
        };
        self.changes.push(Change::DeleteLink { place: place.clone(), name: name.clone(), kind });
    }

    fn update(
        &mut self,
        place: &Place,
        name: &IfName,
        link: &LinkSpec,
        observed: &ObservedLink,
        recreated: &BTreeSet<IfName>,
    ) {
        let bridge_remade = link.master.as_ref().is_some_and(|m| recreated.contains(m));
        let update = LinkUpdate {
            mtu: link.mtu.filter(|mtu| *mtu != observed.mtu),
            mac: link.mac.filter(|mac| Some(*mac) != observed.mac),
            master: (link.master != observed.master || bridge_remade).then(|| link.master.clone()),
            up: (link.up != observed.up).then_some(link.up),
            ipv6_autoconf: match observed.ipv6_autoconf {
                Some(now) if link.kind != LinkKind::Loopback && now != link.ipv6_autoconf => Some(link.ipv6_autoconf),
                _ => None,
            },
            mark: !observed.marked,
        };
        if !update.is_empty() {
            self.changes.push(Change::SetLink { place: place.clone(), name: name.clone(), update });
        }
        for address in link.addresses.difference(&observed.addresses) {
            self.changes.push(Change::AddAddress { place: place.clone(), link: name.clone(), address: *address });
        }
        for address in observed.addresses.difference(&link.addresses) {
            if self.address_is_ours(place, name, address, observed) {
                self.changes.push(Change::DeleteAddress {
                    place: place.clone(),
                    link: name.clone(),
                    address: *address,
                });
            }
        }
    }

    /// An address on the lab's link is the lab's, except one in the ranges the kernel
    /// fills itself (IPv6 link-local, loopback) that the lab never declared there, and
    /// the kernel's own (loopback's, the link-local address of the link's MAC).
    fn address_is_ours(&self, place: &Place, name: &IfName, address: &IpNetwork, observed: &ObservedLink) -> bool {
        if !kernel_range(address) {
            return true;
        }
        let declared = self.history.previous.get(place).and_then(|ns| ns.links.get(name));
        declared.is_some_and(|link| link.addresses.contains(address)) && !kernels_own(address, observed)
    }

    fn add_addresses(&mut self, place: &Place, name: &IfName, addresses: &BTreeSet<IpNetwork>) {
        for address in addresses {
            self.changes.push(Change::AddAddress { place: place.clone(), link: name.clone(), address: *address });
        }
    }

    fn route_changes(
        &mut self,
        place: &Place,
        spec: &NamespaceSpec,
        state: &NamespaceState,
        recreated: &BTreeSet<IfName>,
    ) {
        // Routes through a link that is deleted go with it.
        let live: Vec<&RouteSpec> =
            state.routes.iter().filter(|r| r.dev.as_ref().is_none_or(|dev| !recreated.contains(dev))).collect();
        for route in &spec.routes {
            if !live.iter().any(|observed| route_matches(route, observed)) {
                self.changes.push(Change::AddRoute { place: place.clone(), route: route.clone() });
            }
        }
        // In the host, routes of netlab's protocol may be another lab's: this lab's
        // are those it declared, and it leaves those another lab declares too.
        let previous = self.history.previous.get(place).map(|ns| &ns.routes);
        let shared = |observed: &RouteSpec| {
            *place == Place::Host && self.history.others.routes.iter().any(|r| route_matches(r, observed))
        };
        for observed in live {
            let ours = *place != Place::Host
                || previous.is_some_and(|routes| routes.iter().any(|r| route_matches(r, observed)));
            if ours && !shared(observed) && !spec.routes.iter().any(|r| route_matches(r, observed)) {
                self.changes.push(Change::DeleteRoute { place: place.clone(), route: observed.clone() });
            }
        }
    }

    fn sysctl_changes(
        &mut self,
        place: &Place,
        spec: &NamespaceSpec,
        state: &NamespaceState,
        fresh: bool,
        recreated: &BTreeSet<IfName>,
    ) {
        let remade = |key: &SysctlKey| link_of(key).is_some_and(|dev| recreated.iter().any(|r| r.as_str() == dev));
        // A key of a link made (again) by this plan starts at the kernel's default.
        let current =
            |key: &SysctlKey| if fresh || remade(key) { None } else { state.sysctls.get(key).cloned().flatten() };
        for (key, value) in &spec.sysctls {
            let previous = current(key);
            if previous.as_ref() != Some(value) {
                self.changes.push(Change::SetSysctl {
                    place: place.clone(),
                    key: key.clone(),
                    value: value.clone(),
                    previous,
                });
            }
        }
        if fresh {
            return;
        }
        let Some(originals) = self.history.sysctl_originals.get(place) else { return };
        // The lab's links that go (or are made again): their keys go with them.
        let goes = |key: &SysctlKey| {
            link_of(key).is_some_and(|dev| {
                let ours = state.links.keys().any(|l| l.as_str() == dev)
                    || self.history.previous.get(place).is_some_and(|ns| ns.links.keys().any(|l| l.as_str() == dev));
                let kept = spec.links.keys().any(|l| l.as_str() == dev) && !remade(key);
                ours && !kept
            })
        };
        for (key, original) in originals {
            if spec.sysctls.contains_key(key) || goes(key) {
                continue;
            }
            // Another lab still declares it: that lab restores it when it goes.
            if *place == Place::Host && self.history.others.sysctls.contains(key) {
                continue;
            }
            // A key the kernel no longer has (its link is gone) has nothing to restore.
            let Some(now) = current(key) else { continue };
            if now != *original {
                self.changes.push(Change::SetSysctl {
                    place: place.clone(),
                    key: key.clone(),
                    value: original.clone(),
                    previous: Some(now),
                });
            }
        }
    }
}

fn settings(link: &LinkSpec) -> LinkSettings {
    LinkSettings {
        mtu: link.mtu,
        mac: link.mac,
        master: link.master.clone(),
        up: link.up,
        ipv6_autoconf: link.ipv6_autoconf,
    }
}

/// A VXLAN device's parameters cannot all change in place: if any differs, it is made
/// again.
fn vxlan_matches(observed: &ObservedKind, wanted: &crate::model::VxlanSpec) -> bool {
    let ObservedKind::Vxlan(have) = observed else { return false };
    have.vni == wanted.vni
        && have.port == wanted.port
        && have.local == Some(wanted.local)
        && have.group == wanted.group
        && have.learning == wanted.learning
        && have.proxy == wanted.proxy
        && have.l2miss == wanted.l2miss
        && have.l3miss == wanted.l3miss
        && have.ttl == wanted.ttl.unwrap_or(0)
}

/// Two observed veth ends are each other's peer.
fn is_pair(a: &ObservedLink, b: &ObservedLink) -> bool {
    a.kind == ObservedKind::Veth { peer_index: Some(b.index) }
        && b.kind == ObservedKind::Veth { peer_index: Some(a.index) }
}

/// Which end of a pair the creating request is sent from: the host's end, so that its
/// settings are made before it comes up (see `apply`), otherwise the first by name.
fn creates_pair(this: &Endpoint, peer: &Endpoint) -> bool {
    match (&this.place, &peer.place) {
        (Place::Host, Place::Node(_)) => true,
        (Place::Node(_), Place::Host) => false,
        _ => this < peer,
    }
}

/// A desired route without `dev` matches a route through any device.
pub fn route_matches(desired: &RouteSpec, observed: &RouteSpec) -> bool {
    desired.to == observed.to && desired.via == observed.via && (desired.dev.is_none() || desired.dev == observed.dev)
}
