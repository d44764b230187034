//! Rows from hand-made kernel dumps: no root needed.

use std::collections::BTreeMap;

use netns::address::AddressState;
use netns::link::{LinkState, OperState, Vxlan};
use netns::neighbour::{FdbEntry, NeighbourEntry};
use netns::route::RouteState;

use super::*;
use crate::model::Topology;

const LAB: &str = "name: t
host:
  bridges: {br0: {}}
  interfaces:
    h1: {bridge: br0}
nodes:
  sim:
    interfaces:
      eth0: {addresses: [192.168.1.2/24]}
  ov:
    bridges: {br1: {addresses: [10.0.0.1/24]}}
    vxlans:
      vx: {vni: 7, underlay: sim, dev: eth0, local: 192.168.1.2, bridge: br1}
    interfaces:
      p1: {bridge: br1}
    routes:
      - {to: 10.9.0.0/16, via: 10.0.0.9}
    fdb:
      - {mac: '02:00:00:00:00:09', dev: vx, dst: 192.168.1.9}
  a:
    interfaces:
      eth0: {addresses: [10.0.0.2/24]}
  b:
    interfaces:
      e: {addresses: [10.0.0.3/24]}
  w:
    interfaces:
      eth0: {addresses: [192.168.1.3/24]}
links:
  - endpoints: [a:eth0, ov:p1]
  - endpoints: [b:e, h1]
  - endpoints: [sim:eth0, w:eth0]
";

fn lab() -> Topology {
    crate::model::parse("lab.yaml", LAB).unwrap()
}

fn place(name: &str) -> Place {
    name.parse().unwrap()
}

fn link(index: u32, name: &str, kind: Option<&str>) -> LinkState {
    LinkState {
        index,
        name: name.into(),
        kind: kind.map(String::from),
        alias: Some("netlab:t".into()),
        mtu: 1500,
        mac: Some([2, 0, 0, 0, 0, index as u8]),
        up: true,
        oper_state: Some(OperState::Up),
        ..LinkState::default()
    }
}

fn veth(index: u32, name: &str, peer: u32, netnsid: Option<i32>) -> LinkState {
    LinkState {
        peer_index: Some(peer),
        link_netnsid: netnsid,
        peer_elsewhere: netnsid.is_some(),
        ..link(index, name, Some("veth"))
    }
}

fn lo() -> LinkState {
    LinkState { mac: Some([0; 6]), oper_state: Some(OperState::Unknown), ..link(1, "lo", None) }
}

fn address(index: u32, cidr: &str) -> AddressState {
    AddressState { index, network: cidr.parse().unwrap() }
}

/// Every node's veth to the overlay namespace has index 2 and peer index 3 there, and
/// `a`'s and `b`'s would be confused by index alone: the namespace ids tell them apart.
fn kernel() -> Kernel {
    let mut seen = BTreeMap::new();
    seen.insert(
        Place::Host,
        Seen::Read(Dump {
            links: vec![
                LinkState { alias: None, ..link(1, "lo", None) },
                LinkState { alias: None, ..link(2, "eth9", Some("veth")) },
                link(5, "br0", Some("bridge")),
                // h1's peer, b:e, has index 2 in b, b has id 3 here.
                LinkState { master: Some(5), ..veth(6, "h1", 2, Some(3)) },
            ],
            routes: vec![
                RouteState { destination: "10.0.0.0/8".parse().unwrap(), gateway: None, oif: Some(2), protocol: 4 },
                RouteState { destination: "10.7.0.0/16".parse().unwrap(), gateway: None, oif: Some(6), protocol: 77 },
            ],
            ..Dump::default()
        }),
    );
    seen.insert(
        place("sim"),
        Seen::Read(Dump {
            links: vec![lo(), link(2, "eth0", Some("veth"))],
            addresses: vec![address(2, "192.168.1.2/24")],
            ..Dump::default()
        }),
    );
    let vxlan = Vxlan {
        vni: 7,
        port: 4789,
        local: Some("192.168.1.2".parse().unwrap()),
        lower: Some(2),
        learning: true,
        ..Vxlan::default()
    };
    seen.insert(
        place("ov"),
        Seen::Read(Dump {
            links: vec![
                lo(),
                link(2, "br1", Some("bridge")),
                LinkState { master: Some(2), ..veth(3, "p1", 2, Some(0)) },
                LinkState {
                    master: Some(2),
                    link_netnsid: Some(1),
                    vxlan: Some(vxlan),
                    ..link(4, "vx", Some("vxlan"))
                },
            ],
            routes: vec![RouteState {
                destination: "10.0.0.0/24".parse().unwrap(),
                gateway: None,
                oif: Some(2),
                protocol: 2,
            }],
            neighbours: vec![NeighbourEntry {
                index: 4,
                ip: "10.0.0.8".parse().unwrap(),
                mac: Some([2, 0, 0, 0, 0, 8]),
                permanent: true,
                protocol: 0,
                state: 0x80,
                extern_learned: true,
            }],
            fdb: vec![
                FdbEntry {
                    index: 4,
                    mac: [2, 0, 0, 0, 0, 8],
                    bridge: None,
                    dst: Some("192.168.1.8".parse().unwrap()),
                    permanent: true,
                    own: true,
                    extern_learned: true,
                },
                // The bridge's own entry for its port: not the VXLAN device's table.
                FdbEntry {
                    index: 3,
                    mac: [2, 0, 0, 0, 0, 3],
                    bridge: Some(2),
                    dst: None,
                    permanent: true,
                    own: false,
                    extern_learned: false,
                },
            ],
            ..Dump::default()
        }),
    );
    seen.insert(place("a"), Seen::Read(Dump { links: vec![lo(), veth(2, "eth0", 3, Some(0))], ..Dump::default() }));
    seen.insert(place("b"), Seen::Read(Dump { links: vec![lo(), veth(2, "e", 6, Some(0))], ..Dump::default() }));
    let ids = |pairs: &[(i32, &str)]| pairs.iter().map(|(id, p)| (*id, p.parse().unwrap())).collect();
    let nsids = BTreeMap::from([
        (Place::Host, ids(&[(3, "b")])),
        (place("ov"), ids(&[(0, "a"), (1, "sim")])),
        (place("a"), ids(&[(0, "ov")])),
        (place("b"), ids(&[(0, "host")])),
    ]);
    Kernel { seen, nsids }
}

fn node<'a>(nodes: &'a [NodeView], name: &str) -> &'a NodeView {
    nodes.iter().find(|n| n.place == place(name)).unwrap()
}

fn interface<'a>(node: &'a NodeView, name: &str) -> &'a InterfaceView {
    node.interfaces.iter().find(|i| i.name == name).unwrap()
}

#[test]
fn peers_and_lower_devices_are_placed_by_namespace_id_not_by_index() {
    let lab = lab();
    let nodes = build(&lab.name, &lab.namespaces, &kernel());
    let peer = |n: &str, i: &str| interface(node(&nodes, n), i).peer.as_ref().map(ToString::to_string);
    assert_eq!(peer("a", "eth0").as_deref(), Some("ov:p1"));
    assert_eq!(peer("ov", "p1").as_deref(), Some("a:eth0"));
    assert_eq!(peer("b", "e").as_deref(), Some("host:h1"));
    assert_eq!(peer("host", "h1").as_deref(), Some("b:e"));
    let vx = interface(node(&nodes, "ov"), "vx").vxlan.clone().unwrap();
    assert_eq!((vx.underlay, vx.dev.as_deref(), vx.vni), (Some(place("sim")), Some("eth0"), 7));
    assert_eq!(interface(node(&nodes, "ov"), "p1").master.as_deref(), Some("br1"));
}

#[test]
fn the_namespaces_to_ask_are_those_holding_the_index_pointed_at() {
    let asks = nsids_to_ask(&kernel().seen);
    // a:eth0 points at index 3 elsewhere: only ov has one.
    assert_eq!(asks[&place("a")].iter().map(ToString::to_string).collect::<Vec<_>>(), ["ov"]);
    // ov's p1 points at 2 and vx at 2: every other namespace has an index 2.
    assert_eq!(asks[&place("ov")].len(), 4);
    assert!(!asks.contains_key(&place("sim")), "sim points nowhere else");
}

#[test]
fn the_host_shows_only_what_the_lab_made_or_declares() {
    let lab = lab();
    let nodes = build(&lab.name, &lab.namespaces, &kernel());
    let host = node(&nodes, "host");
    let names: Vec<&str> = host.interfaces.iter().map(|i| i.name.as_str()).collect();
    assert_eq!(names, ["br0", "h1"]);
    let routes: Vec<String> = host.routes.iter().map(|r| r.to.to_string()).collect();
    assert_eq!(routes, ["10.7.0.0/16"], "only the lab's route through its own link");
    assert_eq!(host.role, Role::Host);
    assert_eq!(node(&nodes, "sim").role, Role::SimulatedHost);
    assert_eq!(node(&nodes, "a").role, Role::Node);
}

#[test]
fn what_the_lab_declares_and_the_kernel_lacks_is_missing() {
    let lab = lab();
    let mut kernel = kernel();
    kernel.seen.insert(place("b"), Seen::Missing);
    let nodes = build(&lab.name, &lab.namespaces, &kernel);
    let b = node(&nodes, "b");
    assert_eq!(b.namespace, Presence::Missing);
    assert!(!interface(b, "e").exists && interface(b, "e").declared);
    // a:eth0 is there without its declared address.
    let eth0 = interface(node(&nodes, "a"), "eth0");
    assert!(eth0.exists && eth0.addresses.is_empty());
    assert_eq!(eth0.missing_addresses, ["10.0.0.2/24".parse::<IpNetwork>().unwrap()]);
    assert!(interface(node(&nodes, "sim"), "eth0").missing_addresses.is_empty());
    let ov = node(&nodes, "ov");
    let route = ov.routes.iter().find(|r| r.to.to_string() == "10.9.0.0/16").unwrap();
    assert!(!route.exists && route.declared);
    let declared_fdb = ov.fdb.iter().find(|f| f.mac.to_string() == "02:00:00:00:00:09").unwrap();
    assert!(!declared_fdb.exists);
    // The agent's entry is shown as the kernel has it; the bridge's port entry is not.
    let learned = ov.fdb.iter().find(|f| f.mac.to_string() == "02:00:00:00:00:08").unwrap();
    assert!(learned.exists && learned.permanent && learned.extern_learn && !learned.declared);
    assert_eq!(ov.fdb.len(), 2);
    let neighbour = &ov.neighbours[0];
    assert_eq!((neighbour.state.clone(), neighbour.extern_learn), (vec!["permanent".to_string()], true));
}

#[test]
fn a_namespace_of_another_lab_is_shown_as_foreign_without_its_contents() {
    let lab = lab();
    let mut kernel = kernel();
    let other = Dump { links: vec![LinkState { alias: Some("netlab:other".into()), ..lo() }], ..Dump::default() };
    kernel.seen.insert(place("a"), Seen::Read(other));
    let nodes = build(&lab.name, &lab.namespaces, &kernel);
    let a = node(&nodes, "a");
    assert_eq!((a.namespace, a.detail.as_deref()), (Presence::Foreign, Some("belongs to lab other")));
    assert!(a.interfaces.is_empty());
}

#[test]
fn the_json_holds_structured_values() {
    let lab = lab();
    let nodes = build(&lab.name, &lab.namespaces, &kernel());
    let inspection = Inspection { lab: lab.name.clone(), applied: true, nodes, agents: Vec::new() };
    let json = serde_json::to_value(&inspection).unwrap();
    let sim = json["nodes"].as_array().unwrap().iter().find(|n| n["place"] == "sim").unwrap();
    let eth0 = &sim["interfaces"][0];
    assert_eq!(eth0["addresses"], serde_json::json!(["192.168.1.2/24"]));
    assert_eq!(eth0["mac"], "02:00:00:00:00:02");
    assert_eq!(eth0["mtu"], 1500);
    assert_eq!(eth0["oper_state"], "up");
    let a = json["nodes"].as_array().unwrap().iter().find(|n| n["place"] == "a").unwrap();
    assert_eq!(a["interfaces"][0]["peer"], serde_json::json!({"place": "ov", "name": "p1"}));
    assert_eq!(json["agents"], serde_json::json!([]));
}

#[test]
fn the_table_is_aligned_and_coloured_only_when_asked() {
    let lab = lab();
    let mut kernel = kernel();
    kernel.seen.insert(place("b"), Seen::Missing);
    let nodes = build(&lab.name, &lab.namespaces, &kernel);
    let inspection = Inspection { lab: lab.name.clone(), applied: true, nodes, agents: Vec::new() };
    let plain = render(&inspection, false);
    assert!(plain.iter().all(|l| !l.contains('\u{1b}')));
    let header = plain.iter().position(|l| l.starts_with("a (node)")).unwrap() + 1;
    assert_eq!(
        plain[header],
        "  INTERFACE  KIND      PEER   MASTER  MAC                MTU   STATE  OPER     ADDRESSES"
    );
    assert_eq!(
        plain[header + 1],
        "  eth0       veth      ov:p1  -       02:00:00:00:00:02  1500  up     up       10.0.0.2/24 (missing)"
    );
    assert!(plain.iter().any(|l| l == "b (node): namespace missing"), "{plain:#?}");
    assert!(plain.iter().any(|l| l.starts_with("  e ") && l.contains("missing")), "{plain:#?}");
    let coloured = render(&inspection, true);
    assert!(coloured.iter().any(|l| l.contains("\u{1b}[31mmissing\u{1b}[0m")));
}

#[test]
fn protocols_and_neighbour_states_have_iproute2_names() {
    use super::build::{nud_states, proto_name};
    assert_eq!(
        [proto_name(2), proto_name(4), proto_name(77), proto_name(78), proto_name(186)],
        ["kernel", "static", "netlab", "vxlan-agent", "186"]
    );
    assert_eq!(nud_states(0x80 | 0x40), ["noarp", "permanent"]);
    assert_eq!(nud_states(0x02), ["reachable"]);
    assert!(nud_states(0).is_empty());
}
