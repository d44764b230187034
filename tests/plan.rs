//! Golden plans, without root: the plan is a pure function of the file, what the
//! kernel has, and what earlier applies recorded.

use std::collections::HashMap;
use std::path::Path;

use netlab::model::{parse, Endpoint, LinkKind, Place, Topology};
use netlab::plan::agents::{desired_agents, ObservedAgent};
use netlab::plan::{
    plan, resolve, Desired, History, NamespaceState, Observed, ObservedExisting, ObservedKind, ObservedLink,
    ObservedNamespace, ObservedVxlan, Plan,
};
use netlab::status::{status, State};

fn load(name: &str) -> Topology {
    netlab::model::load(&Path::new("topologies").join(name)).unwrap()
}

fn lines(plan: &Plan) -> Vec<String> {
    plan.changes.iter().map(ToString::to_string).collect()
}

/// The kernel state a perfect apply of `desired` leaves: every link marked, veth
/// ends pointing at each other, routes and sysctls in place.
fn applied(desired: &Desired) -> Observed {
    let mut indexes: HashMap<Endpoint, u32> = HashMap::new();
    for (place, spec) in desired {
        for (i, name) in spec.links.keys().enumerate() {
            indexes.insert(Endpoint { place: place.clone(), name: name.clone() }, 10 + i as u32);
        }
    }
    let mut observed = Observed::default();
    for (place, spec) in desired {
        let mut state = NamespaceState::default();
        for (name, link) in &spec.links {
            let kind = match &link.kind {
                LinkKind::Loopback => ObservedKind::Loopback,
                LinkKind::Bridge => ObservedKind::Bridge,
                LinkKind::Veth { peer } => ObservedKind::Veth { peer_index: Some(indexes[peer]) },
                LinkKind::Vxlan(vxlan) => ObservedKind::Vxlan(ObservedVxlan {
                    vni: vxlan.vni,
                    port: vxlan.port,
                    local: Some(vxlan.local),
                    group: vxlan.group,
                    learning: vxlan.learning,
                    proxy: vxlan.proxy,
                    l2miss: vxlan.l2miss,
                    l3miss: vxlan.l3miss,
                    ttl: vxlan.ttl.unwrap_or(0),
                }),
            };
            let here = Endpoint { place: place.clone(), name: name.clone() };
            state.links.insert(
                name.clone(),
                ObservedLink {
                    kind,
                    index: indexes[&here],
                    marked: true,
                    mtu: link.mtu.unwrap_or(1500),
                    mac: link.mac,
                    up: link.up,
                    master: link.master.clone(),
                    addresses: link.addresses.clone(),
                    ipv6_autoconf: Some(link.ipv6_autoconf),
                },
            );
        }
        state.routes = spec.routes.clone();
        state.neighbours = spec.neighbours.clone();
        state.fdb = spec.fdb.clone();
        state.sysctls = spec.sysctls.iter().map(|(k, v)| (k.clone(), Some(v.clone()))).collect();
        observed.namespaces.insert(place.clone(), ObservedNamespace::Owned(state));
    }
    // Each agent the file asks for, running as asked.
    for (i, agent) in desired_agents(desired).into_iter().enumerate() {
        observed.agents.push(ObservedAgent {
            key: agent.key(),
            underlay: agent.underlay.clone(),
            args: agent.args(),
            pid: 100 + i as u32,
            started: 7,
        });
    }
    observed
}

fn history_of(desired: &Desired) -> History {
    History { previous: desired.clone(), ..History::default() }
}

#[test]
fn an_empty_kernel_gets_everything_in_phase_order() {
    let lab = load("bridge.yaml");
    let plan = plan(&lab.namespaces, &Observed::default(), &History::default()).unwrap();
    assert_eq!(
        lines(&plan),
        [
            "+ namespace BLUE",
            "+ namespace RED",
            "+ bridge br0",
            "+ veth beth1 master br0 <-> BLUE:beth0",
            "+ veth reth1 master br0 <-> RED:reth0",
            "+ address 11.11.11.3/24 on BLUE:beth0",
            "+ address 11.11.11.2/24 on RED:reth0",
        ]
    );
}

#[test]
fn the_json_plan_lists_changes() {
    let lab = load("veth-pair.yaml");
    let plan = plan(&lab.namespaces, &Observed::default(), &History::default()).unwrap();
    let json = serde_json::to_value(&plan).unwrap();
    let changes = json["changes"].as_array().unwrap();
    assert_eq!(changes.len(), 5);
    assert_eq!(changes[0]["action"], "create_namespace");
    assert_eq!(changes[0]["namespace"], "BLUE");
    assert_eq!(changes[2]["action"], "create_veth");
    assert_eq!(changes[2]["a"]["place"], "BLUE");
    assert_eq!(changes[2]["b"]["name"], "veth0");
}

#[test]
fn an_unchanged_lab_plans_nothing() {
    for file in ["veth-pair.yaml", "bridge.yaml", "gateway.yaml", "overlay-static.yaml", "cluster-3.yaml"] {
        let lab = load(file);
        let plan = plan(&lab.namespaces, &applied(&lab.namespaces), &history_of(&lab.namespaces)).unwrap();
        assert_eq!(lines(&plan), Vec::<String>::new(), "{file}");
        assert!(status(&lab.namespaces, &plan).iter().all(|o| o.state == State::Ok));
    }
}

#[test]
fn an_edited_file_plans_only_the_difference() {
    let before = load("veth-pair.yaml");
    let source = std::fs::read_to_string("topologies/veth-pair.yaml").unwrap();
    let edited = source
        .replace("veth0:\n        addresses: [11.11.11.2/24]", "veth0:\n        addresses: [11.11.11.4/24]\n        mtu: 1400")
        .replace("  BLUE:\n", "  BLUE:\n    sysctls:\n      net.ipv4.ip_forward: 1\n    routes:\n      - {to: 10.8.0.0/16, via: 11.11.11.2}\n");
    let after = parse("edited.yaml", &edited).unwrap();
    let mut observed = applied(&before.namespaces);
    if let Some(ObservedNamespace::Owned(blue)) = observed.namespaces.get_mut(&"BLUE".parse().unwrap()) {
        blue.sysctls.insert("net.ipv4.ip_forward".parse().unwrap(), Some("0".into()));
    }
    let plan = plan(&after.namespaces, &observed, &history_of(&before.namespaces)).unwrap();
    assert_eq!(
        lines(&plan),
        [
            "- address 11.11.11.2/24 on RED:veth0",
            "~ link RED:veth0: mtu 1400",
            "+ address 11.11.11.4/24 on RED:veth0",
            "~ sysctl net.ipv4.ip_forward in BLUE: 0 -> 1",
            "+ route 10.8.0.0/16 via 11.11.11.2 in BLUE",
        ]
    );
}

#[test]
fn a_node_removed_from_the_file_is_deleted_with_its_links() {
    let before = load("bridge.yaml");
    let source = std::fs::read_to_string("topologies/bridge.yaml").unwrap();
    let edited = source
        .replace("    beth1: {bridge: br0}\n", "")
        .replace("  BLUE:\n    interfaces:\n      beth0:\n        addresses: [11.11.11.3/24]\n", "")
        .replace("  - endpoints: [BLUE:beth0, host:beth1]\n", "")
        .replace("  - ping: {from: RED, to: 11.11.11.3}\n  - ping: {from: BLUE, to: 11.11.11.2}\n", "")
        .replace(", BLUE:beth0]", "]");
    let after = parse("edited.yaml", &edited).unwrap();
    let plan = plan(&after.namespaces, &applied(&before.namespaces), &history_of(&before.namespaces)).unwrap();
    // beth1 goes with BLUE: no per-link delete (each costs an RCU grace period).
    assert_eq!(lines(&plan), ["- namespace BLUE"]);
}

#[test]
fn destroy_deletes_namespaces_and_host_links_only_once() {
    let lab = load("bridge.yaml");
    let plan = plan(&Desired::new(), &applied(&lab.namespaces), &history_of(&lab.namespaces)).unwrap();
    // Host links first (one kernel batch with the veths in the namespaces), then the
    // namespaces; the host ends of their veths are not deleted one by one.
    assert_eq!(lines(&plan), ["- bridge br0", "- namespace BLUE", "- namespace RED"]);
}

#[test]
fn a_foreign_namespace_or_link_is_a_conflict_not_a_takeover() {
    let lab = load("bridge.yaml");
    let mut observed = Observed::default();
    observed
        .namespaces
        .insert("RED".parse().unwrap(), ObservedNamespace::Foreign("exists and was not created by netlab".into()));
    let mut host = NamespaceState::default();
    host.foreign_links.insert("br0".into());
    observed.namespaces.insert(Place::Host, ObservedNamespace::Owned(host));
    let conflicts = plan(&lab.namespaces, &observed, &History::default()).unwrap_err();
    assert_eq!(
        conflicts,
        ["link br0 exists and was not created by netlab", "namespace RED exists and was not created by netlab"]
    );
}

#[test]
fn drift_shows_in_status_and_the_plan_repairs_it() {
    let lab = load("veth-pair.yaml");
    let mut observed = applied(&lab.namespaces);
    let red: Place = "RED".parse().unwrap();
    if let Some(ObservedNamespace::Owned(state)) = observed.namespaces.get_mut(&red) {
        let veth0 = state.links.get_mut(&"veth0".parse().unwrap()).unwrap();
        veth0.addresses.clear();
        veth0.up = false;
    }
    let plan = plan(&lab.namespaces, &observed, &history_of(&lab.namespaces)).unwrap();
    assert_eq!(lines(&plan), ["~ link RED:veth0: up", "+ address 11.11.11.2/24 on RED:veth0"]);
    let report = status(&lab.namespaces, &plan);
    let drifted: Vec<(&str, State)> =
        report.iter().filter(|o| o.state != State::Ok).map(|o| (o.object.as_str(), o.state)).collect();
    assert_eq!(drifted, [("veth RED:veth0", State::Differs), ("address 11.11.11.2/24 on RED:veth0", State::Missing)]);
}

#[test]
fn a_veth_whose_peer_was_replaced_is_made_again() {
    let lab = load("veth-pair.yaml");
    let mut observed = applied(&lab.namespaces);
    let blue: Place = "BLUE".parse().unwrap();
    if let Some(ObservedNamespace::Owned(state)) = observed.namespaces.get_mut(&blue) {
        state.links.get_mut(&"veth1".parse().unwrap()).unwrap().index = 99;
    }
    let plan = plan(&lab.namespaces, &observed, &history_of(&lab.namespaces)).unwrap();
    assert_eq!(
        lines(&plan),
        [
            "- veth BLUE:veth1",
            "- veth RED:veth0",
            "+ veth BLUE:veth1 <-> RED:veth0",
            "+ address 11.11.11.3/24 on BLUE:veth1",
            "+ address 11.11.11.2/24 on RED:veth0",
        ]
    );
}

#[test]
fn a_half_made_namespace_is_made_again_and_destroy_removes_it() {
    let lab = load("veth-pair.yaml");
    let mut observed = Observed::default();
    observed.namespaces.insert("RED".parse().unwrap(), ObservedNamespace::Stale);
    let history = History { previous: lab.namespaces.clone(), ..History::default() };
    let apply = plan(&lab.namespaces, &observed, &history).unwrap();
    assert_eq!(
        lines(&apply)[..3],
        ["- namespace RED".to_string(), "+ namespace BLUE".to_string(), "+ namespace RED".to_string()]
    );
    let destroy = plan(&Desired::new(), &observed, &history).unwrap();
    assert_eq!(lines(&destroy), ["- namespace RED"]);
}

#[test]
fn forward_accepts_only_where_the_policy_drops_and_the_nat_table_only_when_it_differs() {
    use netlab::plan::firewall::{nat_table, Backend, Forward, ObservedTable};
    let lab = load("nat.yaml");
    let mut observed = applied(&lab.namespaces);
    if let Some(ObservedNamespace::Owned(host)) = observed.namespaces.get_mut(&Place::Host) {
        host.nat_table = ObservedTable::Owned(nat_table(&lab.namespaces[&Place::Host].nat));
        host.forward.insert(Backend::Nft, Forward { policy_drop: false, accepts: Default::default() });
    }
    let history = history_of(&lab.namespaces);
    assert_eq!(lines(&plan(&lab.namespaces, &observed, &history).unwrap()), Vec::<String>::new());

    if let Some(ObservedNamespace::Owned(host)) = observed.namespaces.get_mut(&Place::Host) {
        host.forward.insert(Backend::Nft, Forward { policy_drop: true, accepts: Default::default() });
        let ObservedTable::Owned(table) = &mut host.nat_table else { panic!("owned") };
        table.get_mut("postrouting").unwrap().rules.clear();
    }
    assert_eq!(
        lines(&plan(&lab.namespaces, &observed, &history).unwrap()),
        [
            "~ nat table in host: 1 masquerade, 0 published ports",
            "+ iptables FORWARD rule in host: accept forwarding from 11.11.11.0/24",
            "+ iptables FORWARD rule in host: accept forwarding from 198.51.100.0/24",
            "+ iptables FORWARD rule in host: accept forwarding to 11.11.11.0/24",
            "+ iptables FORWARD rule in host: accept forwarding to 198.51.100.0/24",
        ]
    );
}

/// The host as a VM with its own card: `eth1` (not netlab's) with `mtu` and `addresses`.
fn with_card(mut observed: Observed, mtu: u32, addresses: &[&str]) -> Observed {
    let card = ObservedExisting { mtu, addresses: addresses.iter().map(|a| a.parse().unwrap()).collect(), ours: false };
    let host = observed.namespaces.entry(Place::Host).or_insert_with(|| ObservedNamespace::Owned(Default::default()));
    if let ObservedNamespace::Owned(state) = host {
        state.foreign_links.insert("eth1".into());
        state.existing.insert("eth1".parse().unwrap(), card);
    }
    observed
}

fn resolve_errors(desired: &Desired, observed: &Observed) -> Vec<String> {
    resolve(desired, observed).unwrap_err().0.iter().map(ToString::to_string).collect()
}

/// host1's half of part 6 on a VM whose eth1 has 192.168.104.2/24: the overlay takes
/// eth1's MTU less 50, the VXLAN device is made over eth1, and nothing else touches it;
/// once applied, nothing changes and status is all ok.
#[test]
fn a_half_file_plans_its_overlay_over_the_existing_card() {
    let lab = load("vm/host1-static.yaml");
    let observed = with_card(Observed::default(), 1500, &["192.168.104.2/24"]);
    let desired = resolve(&lab.namespaces, &observed).unwrap();
    let first = plan(&desired, &observed, &History::default()).unwrap();
    assert_eq!(
        lines(&first),
        [
            "+ namespace ct1",
            "+ namespace ov1",
            "+ bridge ov1:br0",
            "+ veth ct1:eth0 mtu 1450 mac 02:42:c0:a8:00:02 <-> ov1:veth-ct1 mtu 1450 master br0",
            "+ vxlan ov1:vxlan1 vni 42 dstport 4789 local 192.168.104.2 dev eth1 mtu 1450 master br0",
            "+ address 11.11.11.2/24 on ct1:eth0",
            "+ address 11.11.11.1/24 on ov1:br0",
            "+ neighbour 11.11.11.3 lladdr 02:42:c0:a8:00:03 on ov1:vxlan1",
            "+ fdb 02:42:c0:a8:00:03 dst 192.168.104.3 on ov1:vxlan1",
        ]
    );
    assert!(!lines(&first).iter().any(|l| l.contains(" eth1") && !l.contains("dev eth1")), "eth1 is never changed");

    let history = history_of(&desired);
    let observed = with_card(applied(&desired), 1500, &["192.168.104.2/24"]);
    let again = plan(&resolve(&lab.namespaces, &observed).unwrap(), &observed, &history).unwrap();
    assert_eq!(lines(&again), Vec::<String>::new());
    let report = status(&desired, &again);
    assert!(report.iter().all(|o| o.state == State::Ok), "{report:?}");
    assert!(report.iter().any(|o| o.object == "existing device eth1 in host"), "{report:?}");

    // Destroy removes the lab's namespaces and never names eth1.
    let destroy = plan(&Desired::new(), &observed, &history).unwrap();
    assert_eq!(lines(&destroy), ["- namespace ct1", "- namespace ov1"]);
}

/// The overlay follows the card: a jumbo-frame card over IPv6 gives 9000 - 70, spread
/// over the bridge and the container's far end; a card whose MTU changed later is
/// followed by the next plan (the device and the ports are set, not made again).
#[test]
fn the_overlay_mtu_follows_the_existing_cards() {
    let source = std::fs::read_to_string("topologies/vm/host1-static.yaml").unwrap();
    let v6 = source.replace("local: 192.168.104.2", "local: 'fd00::2'").replace("dst: 192.168.104.3", "dst: 'fd00::3'");
    let lab = parse("v6.yaml", &v6).unwrap();
    let observed = with_card(Observed::default(), 9000, &["fd00::2/64"]);
    let desired = resolve(&lab.namespaces, &observed).unwrap();
    let mtu = |node: &str, name: &str| desired[&node.parse::<Place>().unwrap()].links[&name.parse().unwrap()].mtu;
    assert_eq!([mtu("ov1", "vxlan1"), mtu("ov1", "veth-ct1"), mtu("ct1", "eth0")], [Some(8930); 3]);
    assert_eq!(mtu("ov1", "br0"), None, "the bridge follows its ports");

    let lab = load("vm/host1-static.yaml");
    let before = resolve(&lab.namespaces, &with_card(Observed::default(), 1500, &["192.168.104.2/24"])).unwrap();
    let observed = with_card(applied(&before), 1400, &["192.168.104.2/24"]);
    let after = resolve(&lab.namespaces, &observed).unwrap();
    assert_eq!(
        lines(&plan(&after, &observed, &history_of(&before)).unwrap()),
        ["~ link ct1:eth0: mtu 1350", "~ link ov1:veth-ct1: mtu 1350", "~ link ov1:vxlan1: mtu 1350"]
    );
}

/// What validation could not check fails at plan time, every problem at once, naming
/// the existing device: it is missing, the VTEP address is not its, an MTU the file
/// sets is larger than it carries, a route's gateway is off its subnets, or it is a
/// link this lab made.
#[test]
fn plan_time_errors_name_the_existing_device() {
    let lab = load("vm/host1-static.yaml");
    assert_eq!(resolve_errors(&lab.namespaces, &Observed::default()), ["existing device `eth1` in host: no such link"]);

    let elsewhere = with_card(Observed::default(), 1500, &["192.168.104.9/24"]);
    assert_eq!(
        resolve_errors(&lab.namespaces, &elsewhere),
        ["VTEP address 192.168.104.2 of `ov1:vxlan1` is not an address of existing device `eth1` in host (it has 192.168.104.9/24)"]
    );
    let bare = with_card(Observed::default(), 1500, &[]);
    assert!(resolve_errors(&lab.namespaces, &bare)[0].ends_with("(it has no address)"));

    let source = std::fs::read_to_string("topologies/vm/host1-static.yaml").unwrap();
    let sized = source
        .replace("learning: true, bridge: br0}", "learning: true, bridge: br0, mtu: 1450}")
        .replace("mac: '02:42:c0:a8:00:02'}", "mac: '02:42:c0:a8:00:02', mtu: 1500}");
    let sized = parse("sized.yaml", &sized).unwrap();
    let tiny = with_card(Observed::default(), 117, &["192.168.104.2/24"]);
    assert_eq!(
        resolve_errors(&lab.namespaces, &tiny),
        ["existing device `eth1` in host has mtu 117: less 50 of encapsulation it leaves 67 for `ov1:vxlan1`, below the minimum 68"]
    );
    let small = with_card(Observed::default(), 1400, &["192.168.104.2/24"]);
    assert_eq!(
        resolve_errors(&sized.namespaces, &small),
        ["mtu 1450 of `ov1:vxlan1` is larger than 1350 carries over existing device `eth1` in host (its mtu 1400 less 50)"]
    );
    let fits = with_card(Observed::default(), 1500, &["192.168.104.2/24"]);
    assert_eq!(
        resolve_errors(&sized.namespaces, &fits),
        ["mtu 1500 of `ct1:eth0` is larger than the overlay carries (1450 through `ov1:vxlan1` over existing device `eth1` in host): packets would be lost"]
    );

    let routed =
        parse("routed.yaml", "name: x\nhost:\n  routes:\n    - {to: 10.0.0.0/8, via: 10.1.0.1, dev: eth1}\n").unwrap();
    assert_eq!(
        resolve_errors(&routed.namespaces, &fits),
        ["gateway 10.1.0.1 of route `10.0.0.0/8 via 10.1.0.1 dev eth1` in host is not on any subnet of existing device `eth1` (it has 192.168.104.2/24)"]
    );
    let on_subnet = with_card(Observed::default(), 1500, &["10.1.0.2/16"]);
    assert!(resolve(&routed.namespaces, &on_subnet).is_ok());

    let mut ours = fits.clone();
    if let Some(ObservedNamespace::Owned(host)) = ours.namespaces.get_mut(&Place::Host) {
        host.existing.get_mut(&"eth1".parse().unwrap()).unwrap().ours = true;
    }
    assert!(resolve_errors(&lab.namespaces, &ours)[0]
        .starts_with("existing device `eth1` in host: it is a link this lab made"));

    // All at once, as one error; a single one without a heading.
    let elsewhere_and_small = with_card(Observed::default(), 1400, &["192.168.104.9/24"]);
    let all = resolve(&sized.namespaces, &elsewhere_and_small).unwrap_err();
    assert_eq!(all.0.len(), 2, "{all}");
    assert!(all.to_string().starts_with("existing devices do not fit the file:\n  VTEP address"), "{all}");
    assert_eq!(resolve(&sized.namespaces, &small).unwrap_err().to_string().lines().count(), 1);
}

/// nat.yaml applied, with its host sysctl's original value recorded.
fn nat_applied_with_original() -> (Topology, Observed, History) {
    let lab = load("nat.yaml");
    let mut observed = applied(&lab.namespaces);
    if let Some(ObservedNamespace::Owned(host)) = observed.namespaces.get_mut(&Place::Host) {
        let table = netlab::plan::firewall::nat_table(&lab.namespaces[&Place::Host].nat);
        host.nat_table = netlab::plan::firewall::ObservedTable::Owned(table);
    }
    let mut history = history_of(&lab.namespaces);
    let originals = history.sysctl_originals.entry(Place::Host).or_default();
    originals.insert("net.ipv4.ip_forward".parse().unwrap(), "0".into());
    (lab, observed, history)
}

#[test]
fn host_sysctls_and_routes_another_lab_declares_stay_when_this_lab_goes() {
    let (_, observed, mut history) = nat_applied_with_original();
    let alone = lines(&plan(&Desired::new(), &observed, &history).unwrap());
    assert!(alone.contains(&"~ sysctl net.ipv4.ip_forward in host: 1 -> 0".to_string()), "{alone:?}");
    assert!(alone.contains(&"- route 203.0.113.0/24 via 198.51.100.2 in host".to_string()), "{alone:?}");

    history.others.sysctls.insert("net.ipv4.ip_forward".parse().unwrap());
    history.others.routes.insert(netlab::model::RouteSpec {
        to: "203.0.113.0/24".parse().unwrap(),
        via: Some("198.51.100.2".parse().unwrap()),
        dev: None,
    });
    let shared = lines(&plan(&Desired::new(), &observed, &history).unwrap());
    assert!(!shared.iter().any(|l| l.contains("sysctl") || l.contains("route")), "{shared:?}");
}

#[test]
fn a_sysctl_of_a_link_that_goes_is_not_restored() {
    let (lab, mut observed, mut history) = nat_applied_with_original();
    let key: netlab::model::SysctlKey = "net.ipv4.conf.vext.proxy_arp".parse().unwrap();
    history.sysctl_originals.get_mut(&Place::Host).unwrap().insert(key.clone(), "0".into());
    if let Some(ObservedNamespace::Owned(host)) = observed.namespaces.get_mut(&Place::Host) {
        host.sysctls.insert(key.clone(), Some("1".into()));
    }
    // Destroy: vext goes, and its key with it.
    let destroy = lines(&plan(&Desired::new(), &observed, &history).unwrap());
    assert!(!destroy.iter().any(|l| l.contains("proxy_arp")), "{destroy:?}");
    // Kept in the file but the key dropped: restored.
    let kept = lines(&plan(&lab.namespaces, &observed, &history).unwrap());
    assert_eq!(kept, ["~ sysctl net.ipv4.conf.vext.proxy_arp in host: 1 -> 0"]);
    // Gone from the kernel already: nothing to restore.
    if let Some(ObservedNamespace::Owned(host)) = observed.namespaces.get_mut(&Place::Host) {
        host.sysctls.insert(key, None);
    }
    assert_eq!(lines(&plan(&lab.namespaces, &observed, &history).unwrap()), Vec::<String>::new());
}

#[test]
fn declared_loopback_and_link_local_addresses_go_when_dropped_the_kernels_stay() {
    let source = "name: l\nnodes:\n  A:\n    interfaces:\n      lo: {addresses: [127.0.0.2/8]}\n      e: {addresses: [10.0.0.1/24, 'fe80::1/64'], mac: '02:00:00:00:00:01'}\n  B: {}\nlinks:\n  - endpoints: [A:e, B:e]\n";
    let before = parse("before.yaml", source).unwrap();
    let after = parse("after.yaml", &source.replace("[127.0.0.2/8]", "[]").replace(", 'fe80::1/64'", "")).unwrap();
    let mut observed = applied(&before.namespaces);
    let a: Place = "A".parse().unwrap();
    if let Some(ObservedNamespace::Owned(state)) = observed.namespaces.get_mut(&a) {
        let lo = state.links.get_mut(&"lo".parse().unwrap()).unwrap();
        lo.addresses.extend(["127.0.0.1/8", "::1/128"].map(|a| a.parse::<ipnetwork::IpNetwork>().unwrap()));
        let e = state.links.get_mut(&"e".parse().unwrap()).unwrap();
        e.addresses.insert("fe80::ff:fe00:1/64".parse().unwrap());
        e.ipv6_autoconf = None;
    }
    assert_eq!(
        lines(&plan(&after.namespaces, &observed, &history_of(&before.namespaces)).unwrap()),
        ["- address fe80::1/64 on A:e", "- address 127.0.0.2/8 on A:lo"]
    );
    // Never declared: the lab does not know them, they stay.
    assert_eq!(lines(&plan(&after.namespaces, &observed, &History::default()).unwrap()), Vec::<String>::new());
}

#[test]
fn a_foreign_nat_table_is_a_conflict_and_destroy_leaves_it() {
    use netlab::plan::firewall::ObservedTable;
    let lab = load("nat.yaml");
    let mut observed = applied(&lab.namespaces);
    if let Some(ObservedNamespace::Owned(host)) = observed.namespaces.get_mut(&Place::Host) {
        host.nat_table = ObservedTable::Foreign("netlab-nat".into());
    }
    let history = history_of(&lab.namespaces);
    assert_eq!(
        plan(&lab.namespaces, &observed, &history).unwrap_err(),
        ["nft table ip netlab-nat in host exists and was not created by netlab"]
    );
    let destroy = lines(&plan(&Desired::new(), &observed, &history).unwrap());
    assert!(!destroy.iter().any(|l| l.contains("nat table")), "{destroy:?}");
}

/// The dynamic overlay gets one agent per VXLAN device with a store, last, in the
/// underlay's namespace; an agent running as the file says is left alone; another
/// mode restarts it; `agent: false` stops the lab's; a device without an agent gets
/// none, and someone else's agent is never stopped.
#[test]
fn agents_are_started_restarted_and_stopped_as_the_file_says() {
    let lab = load("overlay-dynamic.yaml");
    let fresh = plan(&lab.namespaces, &Observed::default(), &History::default()).unwrap();
    let agents: Vec<String> = lines(&fresh).into_iter().filter(|l| l.contains("agent")).collect();
    assert_eq!(
        agents,
        [
            "+ agent of ov1:vxlan1 in host1, proactive, store dir:/run/netlab/stores/overlay-dynamic",
            "+ agent of ov2:vxlan1 in host2, proactive, store dir:/run/netlab/stores/overlay-dynamic",
        ]
    );
    assert!(lines(&fresh).last().unwrap().contains("agent of ov2:vxlan1"), "agents start last");
    let json = serde_json::to_value(fresh.changes.last().unwrap()).unwrap();
    assert_eq!(json["action"], "start_agent");
    assert_eq!(json["agent"]["underlay"], "host2");
    assert_eq!(json["agent"]["mode"], "proactive");

    let running = applied(&lab.namespaces);
    let history = history_of(&lab.namespaces);
    assert!(plan(&lab.namespaces, &running, &history).unwrap().is_empty());

    let source = std::fs::read_to_string("topologies/overlay-dynamic.yaml").unwrap();
    let edited = |from: &str, to: &str| {
        let text = source.replacen(from, to, 1);
        assert_ne!(text, source);
        parse("overlay-dynamic.yaml", &text).unwrap()
    };
    let miss = edited(
        "store: 'dir:/run/netlab/stores/overlay-dynamic'}",
        "store: 'dir:/run/netlab/stores/overlay-dynamic', agent: {mode: miss}}",
    );
    let restart = plan(&miss.namespaces, &running, &history).unwrap();
    assert_eq!(
        lines(&restart),
        ["~ agent of ov1:vxlan1 in host1, miss, store dir:/run/netlab/stores/overlay-dynamic (replaces pid 100)"]
    );
    assert_eq!(serde_json::to_value(&restart.changes[0]).unwrap()["action"], "restart_agent");

    let own = edited(
        "store: 'dir:/run/netlab/stores/overlay-dynamic'}",
        "store: 'dir:/run/netlab/stores/overlay-dynamic', agent: false}",
    );
    let stop = plan(&own.namespaces, &running, &history).unwrap();
    assert_eq!(lines(&stop), ["- agent of ov1:vxlan1 (pid 100)"]);
    assert_eq!(serde_json::to_value(&stop.changes[0]).unwrap()["action"], "stop_agent");
    // Once the file has said `agent: false`, the agent running there is the user's.
    assert!(plan(&own.namespaces, &running, &history_of(&own.namespaces)).unwrap().is_empty());
    let theirs = plan(&miss.namespaces, &running, &history_of(&own.namespaces)).unwrap_err();
    assert!(theirs[0].contains("a vxlan-agent netlab did not start (pid 100) serves ov1:vxlan1"), "{theirs:?}");

    // destroy stops every agent of the lab, before anything else.
    let destroy = plan(&Desired::new(), &running, &history).unwrap();
    assert_eq!(lines(&destroy)[..2], ["- agent of ov1:vxlan1 (pid 100)", "- agent of ov2:vxlan1 (pid 101)"]);

    // overlay-static has no store: no agent.
    let static_lab = load("overlay-static.yaml");
    let plan_static = plan(&static_lab.namespaces, &Observed::default(), &History::default()).unwrap();
    assert!(!lines(&plan_static).iter().any(|l| l.contains("agent")));
}
