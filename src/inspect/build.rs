//! Rows from what was read: per namespace of the lab, its interfaces, routes, and the
//! neighbour and FDB entries of its VXLAN devices (and any the lab declares), each
//! marked as declared or not; what the lab declares and the kernel lacks is a row
//! with `exists: false`.

use std::collections::{BTreeSet, HashMap};

use netns::link::LinkState;

use super::peers::other_end;
use super::{
    EndpointView, FdbView, InterfaceView, Kernel, NeighbourView, NodeView, Presence, Role, RouteView, Seen, VxlanView,
};
use crate::model::{LabName, LinkKind, Mac, NamespaceSpec, Place};
use crate::observe::Dump;
use crate::ownership;
use crate::plan::Desired;

/// The lab's namespaces as the kernel has them. `declared`: the file's namespaces (or
/// the record's); the host is shown when the lab declares something there or the
/// kernel has a link marked as the lab's there.
pub fn build(lab: &LabName, declared: &Desired, kernel: &Kernel) -> Vec<NodeView> {
    let empty = NamespaceSpec::default();
    let mut places: BTreeSet<&Place> = declared.keys().collect();
    places.insert(&Place::Host);
    let mark = ownership::mark(lab);
    let mut nodes = Vec::new();
    for place in places {
        let spec = declared.get(place).unwrap_or(&empty);
        let mut node = NodeView {
            place: place.clone(),
            role: role(place, declared),
            namespace: Presence::Present,
            detail: None,
            interfaces: Vec::new(),
            routes: Vec::new(),
            neighbours: Vec::new(),
            fdb: Vec::new(),
        };
        match kernel.seen.get(place) {
            Some(Seen::Read(dump)) => match owner(place, dump, &mark) {
                Ok(()) => fill(&mut node, spec, dump, kernel, &mark),
                Err(detail) => {
                    node.namespace = Presence::Foreign;
                    node.detail = Some(detail);
                }
            },
            Some(Seen::Unreadable(reason)) => {
                node.namespace = Presence::Unreadable;
                node.detail = Some(reason.clone());
            }
            Some(Seen::Stale) => node.namespace = Presence::Stale,
            Some(Seen::Missing) | None => node.namespace = Presence::Missing,
        }
        if node.namespace != Presence::Present && node.namespace != Presence::Foreign {
            add_missing(&mut node, spec);
        }
        let shown = *place != Place::Host || node.interfaces.iter().any(|i| i.exists) || *spec != empty;
        if shown {
            nodes.push(node);
        }
    }
    nodes
}

fn role(place: &Place, declared: &Desired) -> Role {
    if *place == Place::Host {
        return Role::Host;
    }
    let carries_others = declared.iter().any(|(other, spec)| {
        other != place && spec.links.values().any(|l| matches!(&l.kind, LinkKind::Vxlan(v) if v.underlay == *place))
    });
    if carries_others {
        Role::SimulatedHost
    } else {
        Role::Node
    }
}

/// A node's namespace is the lab's when its `lo` carries the lab's mark.
fn owner(place: &Place, dump: &Dump, mark: &str) -> Result<(), String> {
    if *place == Place::Host {
        return Ok(());
    }
    let alias = dump.links.iter().find(|l| l.name == "lo").and_then(|l| l.alias.as_deref());
    match alias {
        Some(alias) if alias == mark => Ok(()),
        Some(alias) => match ownership::lab_of(alias) {
            Some(other) => Err(format!("belongs to lab {other}")),
            None => Err("was not created by netlab".into()),
        },
        None => Err("was not created by netlab".into()),
    }
}

fn fill(node: &mut NodeView, spec: &NamespaceSpec, dump: &Dump, kernel: &Kernel, mark: &str) {
    let place = node.place.clone();
    let host = place == Place::Host;
    let names: HashMap<u32, &str> = dump.links.iter().map(|l| (l.index, l.name.as_str())).collect();
    let declared_link = |name: &str| spec.links.keys().any(|n| n.as_str() == name);
    let existing = |name: &str| spec.existing.iter().any(|n| n.as_str() == name);
    // In the host, only what the lab made or names; in a node, everything.
    let shown: Vec<&LinkState> = dump
        .links
        .iter()
        .filter(|l| !host || l.alias.as_deref() == Some(mark) || declared_link(&l.name) || existing(&l.name))
        .collect();
    let shown_index: BTreeSet<u32> = shown.iter().map(|l| l.index).collect();
    for link in &shown {
        let mut addresses: Vec<_> =
            dump.addresses.iter().filter(|a| a.index == link.index).map(|a| a.network).collect();
        addresses.sort();
        let missing_addresses = spec
            .links
            .iter()
            .find(|(name, _)| name.as_str() == link.name)
            .map(|(_, declared)| declared.addresses.iter().filter(|a| !addresses.contains(a)).copied().collect())
            .unwrap_or_default();
        let end = other_end(kernel, &place, link);
        let (peer, vxlan) = match link.kind.as_deref() {
            Some("veth") => (end.map(|(p, l)| EndpointView { place: p.clone(), name: l.name.clone() }), None),
            Some("vxlan") => (None, link.vxlan.as_ref().map(|v| vxlan_view(v, end))),
            _ => (None, None),
        };
        node.interfaces.push(InterfaceView {
            name: link.name.clone(),
            kind: kind(link),
            exists: true,
            declared: declared_link(&link.name) || (!host && link.name == "lo"),
            existing: existing(&link.name),
            index: Some(link.index),
            peer,
            master: link.master.and_then(|m| names.get(&m)).map(|n| n.to_string()),
            mac: link.mac.map(Mac::from_octets),
            mtu: Some(link.mtu),
            up: Some(link.up),
            oper_state: link.oper_state.map(|s| s.to_string().to_lowercase()),
            addresses,
            missing_addresses,
            vxlan,
        });
    }
    node.interfaces.sort_by(|a, b| a.name.cmp(&b.name));

    let dev_of = |index: Option<u32>| index.and_then(|i| names.get(&i)).map(|n| n.to_string());
    for route in &dump.routes {
        let dev = dev_of(route.oif);
        let declared = spec.routes.iter().any(|r| {
            r.to == route.destination
                && r.via == route.gateway
                && r.dev.as_ref().is_none_or(|d| Some(d.as_str()) == dev.as_deref())
        });
        let ours = route.protocol == ownership::PROTOCOL && route.oif.is_some_and(|i| shown_index.contains(&i));
        if host && !declared && !ours {
            continue;
        }
        let proto = Some(proto_name(route.protocol));
        node.routes.push(RouteView { to: route.destination, via: route.gateway, dev, proto, exists: true, declared });
    }

    let vxlans: BTreeSet<u32> = shown.iter().filter(|l| l.kind.as_deref() == Some("vxlan")).map(|l| l.index).collect();
    for entry in &dump.neighbours {
        let dev = dev_of(Some(entry.index)).unwrap_or_default();
        let mac = entry.mac.map(Mac::from_octets);
        let declared = spec.neighbours.iter().any(|n| n.dev.as_str() == dev && n.ip == entry.ip && Some(n.mac) == mac);
        let ours = entry.protocol == ownership::PROTOCOL && shown_index.contains(&entry.index);
        if !vxlans.contains(&entry.index) && !declared && !ours {
            continue;
        }
        node.neighbours.push(NeighbourView {
            dev,
            ip: entry.ip,
            mac,
            state: nud_states(entry.state),
            permanent: entry.permanent,
            extern_learn: entry.extern_learned,
            proto: (entry.protocol != 0).then(|| proto_name(entry.protocol)),
            exists: true,
            declared,
        });
    }
    for entry in &dump.fdb {
        let dev = dev_of(Some(entry.index)).unwrap_or_default();
        let mac = Mac::from_octets(entry.mac);
        let declared =
            spec.fdb.iter().any(|f| f.dev.as_str() == dev && f.mac == mac && Some(f.dst) == entry.dst) && entry.own;
        let on_vxlan = entry.own && vxlans.contains(&entry.index);
        if !on_vxlan && !declared {
            continue;
        }
        node.fdb.push(FdbView {
            dev,
            mac,
            dst: entry.dst,
            permanent: entry.permanent,
            extern_learn: entry.extern_learned,
            exists: true,
            declared,
        });
    }
    add_missing(node, spec);
}

/// What the lab declares here and no row shows: rows with `exists: false`.
fn add_missing(node: &mut NodeView, spec: &NamespaceSpec) {
    let present = |rows: &[InterfaceView], name: &str| rows.iter().any(|i| i.name == name && i.exists);
    let mut missing = Vec::new();
    let declared = spec.links.iter().map(|(name, link)| (name, link.kind.name(), false));
    let existing = spec.existing.iter().map(|name| (name, "device", true));
    for (name, kind, existing) in declared.chain(existing) {
        if present(&node.interfaces, name.as_str()) {
            continue;
        }
        missing.push(InterfaceView {
            name: name.to_string(),
            kind: kind.to_string(),
            exists: false,
            declared: !existing,
            existing,
            index: None,
            peer: None,
            master: None,
            mac: None,
            mtu: None,
            up: None,
            oper_state: None,
            addresses: Vec::new(),
            missing_addresses: Vec::new(),
            vxlan: None,
        });
    }
    node.interfaces.extend(missing);
    for route in &spec.routes {
        let matched = node.routes.iter().any(|r| {
            r.declared
                && r.to == route.to
                && r.via == route.via
                && route.dev.as_ref().is_none_or(|d| r.dev.as_deref() == Some(d.as_str()))
        });
        if !matched {
            node.routes.push(RouteView {
                to: route.to,
                via: route.via,
                dev: route.dev.as_ref().map(|d| d.to_string()),
                proto: None,
                exists: false,
                declared: true,
            });
        }
    }
    for entry in &spec.neighbours {
        let matched = node
            .neighbours
            .iter()
            .any(|n| n.declared && n.dev == entry.dev.as_str() && n.ip == entry.ip && n.mac == Some(entry.mac));
        if !matched {
            node.neighbours.push(NeighbourView {
                dev: entry.dev.to_string(),
                ip: entry.ip,
                mac: Some(entry.mac),
                state: Vec::new(),
                permanent: false,
                extern_learn: false,
                proto: None,
                exists: false,
                declared: true,
            });
        }
    }
    for entry in &spec.fdb {
        let matched = node
            .fdb
            .iter()
            .any(|f| f.declared && f.dev == entry.dev.as_str() && f.mac == entry.mac && f.dst == Some(entry.dst));
        if !matched {
            node.fdb.push(FdbView {
                dev: entry.dev.to_string(),
                mac: entry.mac,
                dst: Some(entry.dst),
                permanent: false,
                extern_learn: false,
                exists: false,
                declared: true,
            });
        }
    }
}

fn kind(link: &LinkState) -> String {
    match link.kind.as_deref() {
        Some(kind) => kind.to_string(),
        None if link.name == "lo" => "loopback".into(),
        None => "device".into(),
    }
}

fn vxlan_view(v: &netns::link::Vxlan, lower: Option<(&Place, &LinkState)>) -> VxlanView {
    VxlanView {
        vni: v.vni,
        port: v.port,
        underlay: lower.map(|(place, _)| place.clone()),
        dev: lower.map(|(_, link)| link.name.clone()),
        local: v.local,
        group: v.group,
        learning: v.learning,
        proxy: v.proxy,
        l2miss: v.l2miss,
        l3miss: v.l3miss,
        ttl: (v.ttl != 0).then_some(v.ttl),
    }
}

/// Route protocols by the names iproute2 gives them (/etc/iproute2/rt_protos), and
/// netlab's own.
pub(super) fn proto_name(protocol: u8) -> String {
    match protocol {
        0 => "unspec".into(),
        1 => "redirect".into(),
        2 => "kernel".into(),
        3 => "boot".into(),
        4 => "static".into(),
        ownership::PROTOCOL => "netlab".into(),
        // vxlan-agent's (its neighbour entries and the node daemon's routes).
        78 => "vxlan-agent".into(),
        other => other.to_string(),
    }
}

/// The NUD state bits of a neighbour entry, by iproute2's names.
pub(super) fn nud_states(bits: u16) -> Vec<String> {
    const NAMES: [(u16, &str); 8] = [
        (0x01, "incomplete"),
        (0x02, "reachable"),
        (0x04, "stale"),
        (0x08, "delay"),
        (0x10, "probe"),
        (0x20, "failed"),
        (0x40, "noarp"),
        (0x80, "permanent"),
    ];
    NAMES.iter().filter(|(bit, _)| bits & bit != 0).map(|(_, name)| name.to_string()).collect()
}
