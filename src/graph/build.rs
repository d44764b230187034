//! Topology -> picture: which boxes, which edges, which simulated host each box is on.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::IpAddr;

use super::{BoxKind, Edge, EdgeKind, Group, Picture, Vertex};
use crate::model::{Endpoint, IfName, LinkKind, LinkSpec, NamespaceSpec, Place, Topology, VxlanSpec};

pub fn picture(topology: &Topology) -> Picture {
    let groups = simulated_hosts(topology);
    let group_index: BTreeMap<&Place, usize> = groups
        .iter()
        .enumerate()
        .flat_map(|(index, (_, members))| members.iter().map(move |place| (place, index)))
        .collect();
    let mut picture = Picture {
        lab: topology.name.to_string(),
        groups: groups
            .iter()
            .map(|(root, _)| Group {
                id: format!("host/{root}"),
                root: namespace_id(root),
                label: match root {
                    Place::Host => "host (this machine)".to_string(),
                    Place::Node(node) => format!("{node} (simulated host)"),
                },
            })
            .collect(),
        vertices: Vec::new(),
        edges: Vec::new(),
    };
    for (place, spec) in &topology.namespaces {
        let group = group_index.get(place).copied();
        // Every lab has a host entry; one the file leaves empty would be a lone box.
        if *place == Place::Host && group.is_none() && is_empty(spec) {
            continue;
        }
        add_namespace(&mut picture, topology, place, spec, group);
    }
    add_tunnels(&mut picture, topology);
    picture
}

fn is_empty(spec: &NamespaceSpec) -> bool {
    spec.links.is_empty()
        && spec.routes.is_empty()
        && spec.sysctls.is_empty()
        && spec.nat.is_empty()
        && spec.existing.is_empty()
        && spec.neighbours.is_empty()
        && spec.fdb.is_empty()
}

pub fn namespace_id(place: &Place) -> String {
    format!("ns/{place}")
}

pub fn device_id(place: &Place, name: &IfName) -> String {
    format!("dev/{place}/{name}")
}

/// The box a veth end is drawn on: its bridge when it is a port, else its namespace.
fn attach_id(place: &Place, link: &LinkSpec) -> String {
    match &link.master {
        Some(bridge) => device_id(place, bridge),
        None => namespace_id(place),
    }
}

/// NODE:IFNAME, and host:IFNAME in the host too: on a picture, every end says where it is.
fn qualified(place: &Place, name: &IfName) -> String {
    format!("{place}:{name}")
}

fn addresses(link: &LinkSpec) -> String {
    link.addresses.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
}

fn with_addresses(name: &str, link: &LinkSpec) -> String {
    let addresses = addresses(link);
    if addresses.is_empty() {
        name.to_string()
    } else {
        format!("{name} {addresses}")
    }
}

fn add_namespace(
    picture: &mut Picture,
    topology: &Topology,
    place: &Place,
    spec: &NamespaceSpec,
    group: Option<usize>,
) {
    let mut lines = vec![place.to_string()];
    if *place == Place::Host {
        lines[0] = "host".to_string();
    }
    if let Some(lo) = spec.links.iter().find(|(_, l)| l.kind == LinkKind::Loopback && !l.addresses.is_empty()) {
        lines.push(with_addresses(lo.0.as_str(), lo.1));
    }
    if spec.forwards_ipv4() {
        lines.push("ip_forward on".to_string());
    }
    for route in &spec.routes {
        lines.push(format!("route {route}"));
    }
    for masquerade in &spec.nat.masquerade {
        let mut line = format!("masquerade {}", masquerade.from);
        if let Some(out) = &masquerade.out {
            line.push_str(&format!(" out {out}"));
        }
        if let Some(to) = &masquerade.to {
            line.push_str(&format!(" to {to}"));
        }
        lines.push(line);
    }
    for publish in &spec.nat.publish {
        lines.push(format!("publish {} {} -> {}", publish.protocol.name(), publish.on, publish.to));
    }
    let kind = if *place == Place::Host { BoxKind::Host } else { BoxKind::Namespace };
    let ns = namespace_id(place);
    picture.vertices.push(Vertex { id: ns.clone(), kind, lines, group });

    for (name, link) in &spec.links {
        let id = device_id(place, name);
        match &link.kind {
            LinkKind::Loopback => {}
            LinkKind::Bridge => {
                let mut lines = vec![format!("{name} (bridge)"), format!("in {place}")];
                lines.extend(link.addresses.iter().map(ToString::to_string));
                picture.vertices.push(Vertex { id: id.clone(), kind: BoxKind::Bridge, lines, group });
                picture.edges.push(contains(&ns, &id));
            }
            LinkKind::Vxlan(vxlan) => {
                add_vxlan(picture, topology, place, name, link, vxlan, group);
                let holder = attach_id(place, link);
                picture.edges.push(contains(&holder, &id));
            }
            LinkKind::Veth { peer } => {
                let here = Endpoint { place: place.clone(), name: name.clone() };
                // Each pair once: from the end that sorts first.
                if here > *peer {
                    continue;
                }
                let Some(far) = topology.namespaces.get(&peer.place).and_then(|ns| ns.links.get(&peer.name)) else {
                    continue;
                };
                picture.edges.push(Edge {
                    from: attach_id(place, link),
                    to: attach_id(&peer.place, far),
                    kind: EdgeKind::Veth,
                    lines: vec![
                        with_addresses(&qualified(place, name), link),
                        with_addresses(&qualified(&peer.place, &peer.name), far),
                    ],
                });
            }
        }
    }
    for name in &spec.existing {
        let id = device_id(place, name);
        let lines = vec![format!("{name} (existing device)"), format!("in {place}")];
        picture.vertices.push(Vertex { id: id.clone(), kind: BoxKind::Existing, lines, group });
        picture.edges.push(contains(&ns, &id));
    }
}

fn contains(holder: &str, device: &str) -> Edge {
    Edge { from: holder.to_string(), to: device.to_string(), kind: EdgeKind::Contains, lines: Vec::new() }
}

fn add_vxlan(
    picture: &mut Picture,
    topology: &Topology,
    place: &Place,
    name: &IfName,
    link: &LinkSpec,
    vxlan: &VxlanSpec,
    group: Option<usize>,
) {
    let id = device_id(place, name);
    let mut lines =
        vec![format!("{name} (vxlan)"), format!("in {place}"), format!("VNI {} port {}", vxlan.vni, vxlan.port)];
    lines.push(format!("local {}", vxlan.local));
    lines.extend(link.addresses.iter().map(ToString::to_string));
    let flags: Vec<&str> =
        [(vxlan.learning, "learning"), (vxlan.proxy, "proxy"), (vxlan.l2miss, "l2miss"), (vxlan.l3miss, "l3miss")]
            .into_iter()
            .filter_map(|(on, flag)| on.then_some(flag))
            .collect();
    if !flags.is_empty() {
        lines.push(flags.join(" "));
    }
    picture.vertices.push(Vertex { id: id.clone(), kind: BoxKind::Vxlan, lines, group });

    // The lower device: an existing one has its own box, a declared one is drawn on its
    // namespace (a veth end of the underlay) or its bridge.
    let underlay = topology.namespaces.get(&vxlan.underlay);
    let lower = match underlay.and_then(|ns| ns.links.get(&vxlan.dev)) {
        Some(lower) if lower.kind == LinkKind::Bridge => device_id(&vxlan.underlay, &vxlan.dev),
        Some(lower) => attach_id(&vxlan.underlay, lower),
        None => device_id(&vxlan.underlay, &vxlan.dev),
    };
    let over = format!("over {}", qualified(&vxlan.underlay, &vxlan.dev));
    picture.edges.push(Edge { from: id.clone(), to: lower, kind: EdgeKind::Underlay, lines: vec![over] });

    if let Some(store) = &vxlan.store {
        let store_id = format!("store/{store}");
        if !picture.vertices.iter().any(|v| v.id == store_id) {
            let lines = vec!["store".to_string(), store.to_string()];
            picture.vertices.push(Vertex { id: store_id.clone(), kind: BoxKind::Store, lines, group: None });
        }
        picture.edges.push(Edge {
            from: id,
            to: store_id,
            kind: EdgeKind::Publishes,
            lines: vec!["endpoints".to_string()],
        });
    }
}

/// Edges from each VXLAN device to the VTEPs it sends to: its `remote`/`group` and the
/// destinations of its static FDB entries. A VTEP that is another device of the lab is
/// joined to it (once per pair); any other becomes a box of its own.
fn add_tunnels(picture: &mut Picture, topology: &Topology) {
    let mut by_local: BTreeMap<(u32, IpAddr), String> = BTreeMap::new();
    for (place, spec) in &topology.namespaces {
        for (name, link) in &spec.links {
            if let LinkKind::Vxlan(vxlan) = &link.kind {
                by_local.insert((vxlan.vni, vxlan.local), device_id(place, name));
            }
        }
    }
    let mut joined: BTreeSet<(String, String)> = BTreeSet::new();
    for (place, spec) in &topology.namespaces {
        for (name, link) in &spec.links {
            let LinkKind::Vxlan(vxlan) = &link.kind else { continue };
            let id = device_id(place, name);
            let mut vteps: BTreeSet<IpAddr> = spec.fdb.iter().filter(|f| f.dev == *name).map(|f| f.dst).collect();
            vteps.extend(vxlan.group);
            for vtep in vteps {
                let (to, line) = match by_local.get(&(vxlan.vni, vtep)) {
                    Some(other) if *other != id => (other.clone(), format!("VNI {} udp/{}", vxlan.vni, vxlan.port)),
                    _ => {
                        let what = if vtep.is_multicast() { "multicast group" } else { "remote VTEP" };
                        let remote = format!("vtep/{vtep}");
                        if !picture.vertices.iter().any(|v| v.id == remote) {
                            picture.vertices.push(Vertex {
                                id: remote.clone(),
                                kind: BoxKind::RemoteVtep,
                                lines: vec![what.to_string(), vtep.to_string()],
                                group: None,
                            });
                        }
                        (remote, format!("VNI {} udp/{} to {vtep}", vxlan.vni, vxlan.port))
                    }
                };
                let pair = if id < to { (id.clone(), to.clone()) } else { (to.clone(), id.clone()) };
                if joined.insert(pair) {
                    picture.edges.push(Edge { from: id.clone(), to, kind: EdgeKind::Tunnel, lines: vec![line] });
                }
            }
        }
    }
}

/// The simulated hosts: each namespace some VXLAN device of another namespace names as
/// its underlay, with the namespaces whose devices ride on it and those reached from
/// them by veth (their containers), without passing through another host.
fn simulated_hosts(topology: &Topology) -> Vec<(Place, BTreeSet<Place>)> {
    let mut riders: BTreeMap<Place, BTreeSet<Place>> = BTreeMap::new();
    for (place, spec) in &topology.namespaces {
        for link in spec.links.values() {
            if let LinkKind::Vxlan(vxlan) = &link.kind {
                if vxlan.underlay != *place {
                    riders.entry(vxlan.underlay.clone()).or_default().insert(place.clone());
                }
            }
        }
    }
    let mut taken: BTreeSet<Place> = riders.keys().cloned().collect();
    let mut hosts = Vec::new();
    for (root, on_it) in &riders {
        let mut members = BTreeSet::from([root.clone()]);
        let mut queue: VecDeque<Place> = on_it.iter().filter(|p| taken.insert((*p).clone())).cloned().collect();
        while let Some(place) = queue.pop_front() {
            let Some(spec) = topology.namespaces.get(&place) else { continue };
            for link in spec.links.values() {
                if let LinkKind::Veth { peer } = &link.kind {
                    if taken.insert(peer.place.clone()) {
                        queue.push_back(peer.place.clone());
                    }
                }
            }
            members.insert(place);
        }
        hosts.push((root.clone(), members));
    }
    hosts
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lab(yaml: &str) -> Picture {
        picture(&crate::model::parse("t.yaml", yaml).expect("valid"))
    }

    const OVERLAY: &str = "name: t
nodes:
  h1: {interfaces: {eth0: {addresses: [10.0.0.1/24]}}}
  h2: {interfaces: {eth0: {addresses: [10.0.0.2/24]}}}
  ov1:
    bridges: {br0: {}}
    vxlans: {vx: {vni: 7, underlay: h1, dev: eth0, local: 10.0.0.1, remote: 10.0.0.2, bridge: br0}}
    interfaces: {p1: {bridge: br0}}
  ov2:
    bridges: {br0: {}}
    vxlans: {vx: {vni: 7, underlay: h2, dev: eth0, local: 10.0.0.2, remote: 10.0.0.1, bridge: br0}}
    interfaces: {p2: {bridge: br0}}
  c1: {interfaces: {eth0: {addresses: [11.0.0.2/24]}}}
  c2: {interfaces: {eth0: {addresses: [11.0.0.3/24]}}}
links:
  - endpoints: [h1:eth0, h2:eth0]
  - endpoints: [c1:eth0, ov1:p1]
  - endpoints: [c2:eth0, ov2:p2]
";

    #[test]
    fn simulated_hosts_group_their_overlay_and_containers() {
        let picture = lab(OVERLAY);
        let group_of = |id: &str| {
            let vertex = picture.vertices.iter().find(|v| v.id == id).expect(id);
            vertex.group.map(|g| picture.groups[g].label.clone())
        };
        for id in ["ns/h1", "ns/ov1", "ns/c1", "dev/ov1/br0", "dev/ov1/vx"] {
            assert_eq!(group_of(id).as_deref(), Some("h1 (simulated host)"), "{id}");
        }
        for id in ["ns/h2", "ns/ov2", "ns/c2"] {
            assert_eq!(group_of(id).as_deref(), Some("h2 (simulated host)"), "{id}");
        }
    }

    #[test]
    fn a_veth_pair_is_one_edge_between_bridge_and_namespace_with_both_ends() {
        let picture = lab(OVERLAY);
        let veths: Vec<&Edge> = picture.edges.iter().filter(|e| e.kind == EdgeKind::Veth).collect();
        assert_eq!(veths.len(), 3);
        let c1 = veths.iter().find(|e| e.from == "ns/c1").expect("c1's veth");
        assert_eq!(c1.to, "dev/ov1/br0");
        assert_eq!(c1.lines, ["c1:eth0 11.0.0.2/24", "ov1:p1"]);
    }

    #[test]
    fn vxlan_devices_of_the_lab_are_joined_once_and_ride_on_their_underlay() {
        let picture = lab(OVERLAY);
        let tunnels: Vec<&Edge> = picture.edges.iter().filter(|e| e.kind == EdgeKind::Tunnel).collect();
        assert_eq!(tunnels.len(), 1, "{tunnels:?}");
        assert_eq!(tunnels[0].lines, ["VNI 7 udp/4789"]);
        let underlay = picture.edges.iter().find(|e| e.kind == EdgeKind::Underlay && e.from == "dev/ov1/vx");
        assert_eq!(underlay.map(|e| e.to.as_str()), Some("ns/h1"));
        let vx = picture.vertices.iter().find(|v| v.id == "dev/ov1/vx").expect("vx");
        assert!(vx.lines.contains(&"VNI 7 port 4789".to_string()), "{:?}", vx.lines);
    }

    #[test]
    fn nat_and_remote_vteps_and_existing_devices_are_shown() {
        let picture = lab("name: t
host:
  vxlans: {vx: {vni: 9, dev: eth1, local: 192.0.2.1, remote: 192.0.2.9}}
  interfaces: {out: {addresses: [198.51.100.1/24]}}
  sysctls: {net.ipv4.ip_forward: 1}
  nat:
    masquerade: [{from: 11.0.0.0/24, out: out}]
    publish: [{protocol: tcp, on: '198.51.100.1:8080', to: '11.0.0.2:80'}]
nodes:
  X: {interfaces: {e: {addresses: [198.51.100.2/24]}}}
links:
  - endpoints: [X:e, host:out]
");
        let host = picture.vertices.iter().find(|v| v.id == "ns/host").expect("host");
        assert!(host.lines.contains(&"masquerade 11.0.0.0/24 out out".to_string()), "{:?}", host.lines);
        assert!(host.lines.contains(&"publish tcp 198.51.100.1:8080 -> 11.0.0.2:80".to_string()));
        assert!(picture.vertices.iter().any(|v| v.id == "vtep/192.0.2.9" && v.kind == BoxKind::RemoteVtep));
        assert!(picture.vertices.iter().any(|v| v.id == "dev/host/eth1" && v.kind == BoxKind::Existing));
        assert!(picture.edges.iter().any(|e| e.kind == EdgeKind::Underlay && e.to == "dev/host/eth1"));
    }
}
