//! Validation of topology files, without root: every invalid file reports each error
//! at its line and column, with the offending text.

use netlab::model::{parse, LinkKind, Place};

fn errors(yaml: &str) -> Vec<String> {
    match parse("lab.yaml", yaml) {
        Ok(_) => panic!("expected errors for:\n{yaml}"),
        Err(diagnostics) => {
            diagnostics.items.iter().map(|d| format!("{}:{}: {}", d.line, d.column, d.message)).collect()
        }
    }
}

/// An overlay: h's eth0 is the underlay of ov's vxlan device; ct sits on its bridge.
const BASE_MTU: &str = "name: x\nnodes:\n  h:\n    interfaces:\n      eth0: {addresses: [10.0.0.1/24]}\n  peer: {}\n  ov:\n    bridges:\n      br0: {}\n    vxlans:\n      vx: {vni: 42, underlay: h, dev: eth0, local: 10.0.0.1, bridge: br0}\n    interfaces:\n      p: {bridge: br0}\n  ct:\n    interfaces:\n      eth0: {mtu: 1500}\nlinks:\n  - endpoints: [h:eth0, peer:eth0]\n  - endpoints: [ct:eth0, ov:p]\n";
const BASE_NODEV: &str = "name: x\nnodes:\n  h:\n    interfaces:\n      eth0: {addresses: [10.0.0.1/24]}\n  peer: {}\n  ov:\n    bridges:\n      br0: {}\n    vxlans:\n      vx: {vni: 42, underlay: h, dev: eth9, local: 10.0.0.1, bridge: br0}\n    interfaces:\n      p: {bridge: br0}\n  ct:\n    interfaces:\n      eth0: {}\nlinks:\n  - endpoints: [h:eth0, peer:eth0]\n  - endpoints: [ct:eth0, ov:p]\n";
const BASE_NOVTEP: &str = "name: x\nnodes:\n  h:\n    interfaces:\n      eth0: {addresses: [10.0.0.1/24]}\n  peer: {}\n  ov:\n    bridges:\n      br0: {}\n    vxlans:\n      vx: {vni: 42, underlay: h, dev: eth0, local: 10.0.0.9, bridge: br0}\n    interfaces:\n      p: {bridge: br0}\n  ct:\n    interfaces:\n      eth0: {}\nlinks:\n  - endpoints: [h:eth0, peer:eth0]\n  - endpoints: [ct:eth0, ov:p]\n";
const BASE_BIGMTU: &str = "name: x\nnodes:\n  h:\n    interfaces:\n      eth0: {addresses: [10.0.0.1/24]}\n  peer: {}\n  ov:\n    bridges:\n      br0: {}\n    vxlans:\n      vx: {vni: 42, underlay: h, dev: eth0, local: 10.0.0.1, bridge: br0, mtu: 1480}\n    interfaces:\n      p: {bridge: br0}\n  ct:\n    interfaces:\n      eth0: {}\nlinks:\n  - endpoints: [h:eth0, peer:eth0]\n  - endpoints: [ct:eth0, ov:p]\n";
const BASE_CLASH: &str = "name: x\nnodes:\n  h:\n    interfaces:\n      eth0: {addresses: [10.0.0.1/24]}\n  peer: {}\n  ov:\n    bridges:\n      br0: {}\n    vxlans:\n      vx: {vni: 42, underlay: h, dev: eth0, local: 10.0.0.1, bridge: br0}\n      vx2: {vni: 42, underlay: h, dev: eth0, local: 10.0.0.1}\n    interfaces:\n      p: {bridge: br0}\n  ct:\n    interfaces:\n      eth0: {}\nlinks:\n  - endpoints: [h:eth0, peer:eth0]\n  - endpoints: [ct:eth0, ov:p]\n";

/// A VXLAN device over an undeclared `eth1` of a node: an error (only the host has
/// existing devices).
const EXISTING_IN_NODE: &str =
    "name: x\nnodes:\n  A: {}\n  ov:\n    vxlans:\n      vx: {vni: 42, underlay: A, dev: eth1, local: 192.168.104.2}\n";
/// Two VXLAN devices over the host's existing eth1 with the same VNI, port and local.
const EXISTING_CLASH: &str = "name: x\nnodes:\n  ov:\n    bridges: {br0: {}}\n    vxlans:\n      vx: {vni: 42, underlay: host, dev: eth1, local: 192.168.104.2, bridge: br0}\n  ov2:\n    vxlans:\n      vx: {vni: 42, underlay: host, dev: eth1, local: 192.168.104.2}\n";

/// (file, expected "line:column: message" fragments, in order)
const BASE_STORE: &str = "name: x\nnodes:\n  h:\n    interfaces:\n      eth0: {addresses: [10.0.0.1/24]}\n  peer: {}\n  ov:\n    bridges:\n      br0: {}\n    vxlans:\n      vx: {vni: 42, underlay: h, dev: eth0, local: 10.0.0.1, bridge: br0, store: 'STORE'}\n    interfaces:\n      p: {bridge: br0}\n  ct:\n    interfaces:\n      eth0: {addresses: [11.0.0.2/24]}\nlinks:\n  - endpoints: [h:eth0, peer:eth0]\n  - endpoints: [ct:eth0, ov:p]\n";

const INVALID: &[(&str, &[&str])] = &[
    ("name: x\nnodes: {A: {}\n", &["2:8: unclosed bracket"]),
    ("name: x\nnodez: {}\n", &["2:1: unknown field `nodez`"]),
    ("name: x\nnodes:\n  A: {interfaces: {e0: {mtuu: 1}}}\n", &["3:25: unknown field `mtuu`"]),
    ("name: x\nnodes:\n  A: {}\n  A: {}\n", &["4:3: duplicate mapping key"]),
    ("name: 'bad name'\n", &["1:7: invalid lab name `bad name`"]),
    ("name: x\nnodes:\n  host: {}\n", &["3:3: `host` names the namespace"]),
    ("name: x\nnodes:\n  a/b: {}\n", &["3:3: invalid node name `a/b`"]),
    (
        "name: x\nnodes:\n  A: {}\nlinks:\n  - endpoints: [A:e0, GREEN:e1]\n",
        &["5:23: unknown node `GREEN` in endpoint `GREEN:e1`"],
    ),
    (
        "name: x\nnodes:\n  A: {}\n  B: {}\nlinks:\n  - endpoints: [A:averyveryverylongname, B:e1]\n",
        &["6:17: interface name `averyveryverylongname` is 21 bytes, the kernel allows at most 15"],
    ),
    ("name: x\nnodes:\n  A: {}\nlinks:\n  - endpoints: [A:e0]\n", &["5:16: a link has exactly 2 endpoints, found 1"]),
    (
        "name: x\nnodes:\n  A: {}\n  B: {}\nlinks:\n  - endpoints: [A:e0, B:e0]\n  - endpoints: [A:e0, B:e1]\n",
        &["7:17: endpoint `A:e0` is used by more than one link"],
    ),
    (
        "name: x\nnodes:\n  A:\n    interfaces:\n      e0: {addresses: [10.0.0.300/24]}\n  B: {}\nlinks:\n  - endpoints: [A:e0, B:e0]\n",
        &["5:24: malformed address `10.0.0.300/24`"],
    ),
    (
        "name: x\nnodes:\n  A:\n    interfaces:\n      e0: {addresses: [10.0.0.1]}\n  B: {}\nlinks:\n  - endpoints: [A:e0, B:e0]\n",
        &["5:24: address `10.0.0.1` needs a prefix length"],
    ),
    (
        "name: x\nnodes:\n  A:\n    interfaces:\n      e0: {addresses: [10.0.0.1/24, 10.0.0.1/24]}\n  B: {}\nlinks:\n  - endpoints: [A:e0, B:e0]\n",
        &["5:37: duplicate address `10.0.0.1/24`"],
    ),
    (
        concat!(
            "name: x\nnodes:\n  A:\n    interfaces:\n      e0: {addresses: [10.0.0.1/24]}\n",
            "      e1: {addresses: [10.0.0.9/16]}\n  B: {}\n  C: {}\n",
            "links:\n  - endpoints: [A:e0, B:e0]\n  - endpoints: [A:e1, C:e0]\n"
        ),
        &["6:24: address `10.0.0.9/16` of `e1` overlaps `10.0.0.1/24` of `e0` in A"],
    ),
    (
        concat!(
            "name: x\nnodes:\n  A:\n    interfaces:\n      e0: {addresses: [10.0.0.1/24]}\n",
            "    routes:\n      - {to: default, via: 10.9.0.1}\n  B: {}\n",
            "links:\n  - endpoints: [A:e0, B:e0]\n"
        ),
        &["7:28: gateway `10.9.0.1` is not on any subnet of A"],
    ),
    (
        "name: x\nnodes:\n  A:\n    routes:\n      - {to: 10.1.0.0/16}\n",
        &["5:14: a route needs `via` or `dev`"],
    ),
    (
        "name: x\nnodes:\n  A:\n    interfaces:\n      e0: {bridge: br9}\n  B: {}\nlinks:\n  - endpoints: [A:e0, B:e0]\n",
        &["5:20: no bridge `br9` in A"],
    ),
    ("name: x\nnodes:\n  A:\n    interfaces:\n      e0: {}\n", &["5:7: interface `A:e0` is not an endpoint of any link"]),
    (
        "name: x\nnodes:\n  A:\n    bridges:\n      br0: {}\n    interfaces:\n      br0: {}\n",
        &["7:7: duplicate interface `br0` in A"],
    ),
    (
        "name: x\nnodes:\n  A:\n    bridges:\n      br0: {}\n  B: {}\nlinks:\n  - endpoints: [A:br0, B:e0]\n",
        &["8:17: endpoint `A:br0` names a bridge, not a veth end"],
    ),
    (
        "name: x\nnodes:\n  A:\n    interfaces:\n      e0: {mac: '01:00:5e:00:00:01'}\n  B: {}\nlinks:\n  - endpoints: [A:e0, B:e0]\n",
        &["5:17: MAC address `01:00:5e:00:00:01` is multicast"],
    ),
    (
        "name: x\nnodes:\n  A:\n    interfaces:\n      e0: {mtu: 10}\n  B: {}\nlinks:\n  - endpoints: [A:e0, B:e0]\n",
        &["5:17: mtu 10 is out of range"],
    ),
    ("name: x\nnodes:\n  A:\n    sysctls:\n      kernel.panic: 1\n", &["5:7: invalid sysctl `kernel.panic`"]),
    ("name: x\nhost:\n  interfaces:\n    lo: {addresses: [10.0.0.1/8]}\n", &["4:5: `lo` of the host is not netlab's"]),
    (
        "name: x\nnodes:\n  A: {}\nchecks:\n  - ping: {from: A, to: nowhere}\n",
        &["5:25: `nowhere` is neither an address nor a node"],
    ),
    ("name: x\nnodes:\n  A: {}\nchecks:\n  - tcp: {from: A, to: 10.0.0.1}\n", &["5:24: `10.0.0.1` is not ADDRESS:PORT"]),
    (
        "name: x\nhost:\n  nat:\n    masquerade:\n      - {from: 'fd00::/64', to: 10.0.0.0/8}\n",
        &["5:16: `fd00::/64` is not an IPv4 prefix (NAT is IPv4 only)"],
    ),
    ("name: x\nhost:\n  nat:\n    masquerade:\n      - {from: 10.0.0.0/8}\n", &["5:16: masquerade needs exactly one of `out`"]),
    ("name: x\nnodes:\n  A: {}\nchecks:\n  - udp: {from: A, to: '10.0.0.1:53'}\n", &["5:24: a udp check needs `listen`"]),
    // The overlay MTU black hole: a container link larger than the overlay carries.
    (BASE_MTU, &["16:7: mtu 1500 of `ct:eth0` is larger than the overlay carries (1450 through `ov:vx`)"]),
    (BASE_NODEV, &["11:39: no lower device `eth9` in h"]),
    (BASE_NOVTEP, &["11:52: VTEP address 10.0.0.9 is not an address of h:eth0"]),
    (BASE_BIGMTU, &["11:80: mtu 1480 is larger than 1450 carries over h:eth0"]),
    (BASE_CLASH, &["12:7: vni 42 on port 4789 from 10.0.0.1 is already `vx`'s in h"]),
    ("name: x\nhost:\n  nat:\n    masquerade:\n      - {from: 10.0.0.0/8, out: eth9}\n", &["5:33: no interface `eth9` in host"]),
    (
        "name: x\nhost:\n  nat:\n    publish:\n      - {on: '192.0.2.1:80', to: '10.0.0.2:80'}\n",
        &["5:14: `192.0.2.1` is not an address of host"],
    ),
    (
        "name: x\nhost:\n  nat:\n    publish:\n      - {protocol: sctp, on: '192.0.2.1:80', to: '10.0.0.2:80'}\n",
        &["5:20: protocol `sctp` is not tcp or udp"],
    ),
    // Existing devices are the host's only: in a namespace netlab creates, an undeclared
    // name stays an error, as lower device and as a route's device.
    (EXISTING_IN_NODE, &["6:39: no lower device `eth1` in A"]),
    ("name: x\nnodes:\n  A:\n    routes:\n      - {to: 10.1.0.0/16, dev: eth1}\n", &["5:32: no interface `eth1` in A"]),
    // A host interface declared (so netlab's own veth end) but linked nowhere says how to
    // name an existing device instead.
    (
        "name: x\nhost:\n  interfaces:\n    eth1: {addresses: [192.168.104.2/24]}\n",
        &["4:5: interface `eth1` is not an endpoint of any link; to use a host device netlab does not create, name it without declaring it"],
    ),
    // What needs no facts of the existing device is still checked at validation.
    (EXISTING_CLASH, &["9:7: vni 42 on port 4789 from 192.168.104.2 is already `vx`'s in host"]),
    // Names the kernel treats specially: a `%` template, `all` and `default` (sysctl
    // folders), `lo` for anything but a node's loopback.
    (
        "name: x\nnodes:\n  A:\n    bridges:\n      br%d: {}\n",
        &["5:7: interface name `br%d` holds `%`, which the kernel takes as a template"],
    ),
    (
        "name: x\nnodes:\n  A: {}\nlinks:\n  - endpoints: [A:e%d, veth%d]\n",
        &[
            "5:17: interface name `e%d` holds `%`",
            "5:24: interface name `veth%d` holds `%`",
        ],
    ),
    ("name: x\nhost:\n  bridges:\n    all: {}\n", &["4:5: interface name `all` is reserved by the kernel"]),
    (
        "name: x\nnodes:\n  A: {}\n  B: {}\nlinks:\n  - endpoints: [A:default, B:e0]\n",
        &["6:17: interface name `default` is reserved by the kernel"],
    ),
    (
        "name: x\nhost:\n  vxlans:\n    default: {vni: 1, dev: eth1, local: 10.0.0.1}\n",
        &["4:5: interface name `default` is reserved by the kernel"],
    ),
    ("name: x\nnodes:\n  A:\n    bridges:\n      lo: {}\n", &["5:7: `lo` is the namespace's loopback"]),
    (
        "name: x\nhost:\n  vxlans:\n    lo: {vni: 1, dev: eth1, local: 10.0.0.1}\n",
        &["4:5: `lo` is the namespace's loopback"],
    ),
    (
        "name: x\nnodes:\n  A: {}\n  B: {}\nlinks:\n  - endpoints: [A:lo, B:e0]\n",
        &["6:17: endpoint `A:lo` names `lo`, not a veth end"],
    ),
    ("name: x\nnodes:\n  B: {}\nlinks:\n  - endpoints: [lo, B:e0]\n", &["5:17: endpoint `lo` names `lo`, not a veth end"]),
    // A VXLAN device over itself, or over the bridge it is a port of.
    (
        "name: x\nhost:\n  vxlans:\n    vx0: {vni: 1, dev: vx0, local: 10.0.0.1}\n",
        &["4:24: vxlan `vx0` cannot be its own lower device"],
    ),
    (
        "name: x\nnodes:\n  A:\n    bridges:\n      br0: {addresses: [10.0.0.1/24]}\n    vxlans:\n      vx: {vni: 1, dev: br0, local: 10.0.0.1, bridge: br0}\n",
        &["7:25: the lower device of vxlan `vx` cannot be `br0`, the bridge it is a port of"],
    ),
    // Port 0: the kernel would pick 8472.
    (
        "name: x\nhost:\n  vxlans:\n    vx0: {vni: 1, port: 0, dev: eth1, local: 10.0.0.1}\n",
        &["4:25: port 0 is not a port: the kernel would use 8472 instead"],
    ),
    // Sysctls of the machine, not of a namespace, in a node.
    (
        "name: x\nnodes:\n  A:\n    sysctls:\n      net.core.netdev_max_backlog: 2000\n      net.core.rmem_max: 1000000\n",
        &[
            "5:7: sysctl `net.core.netdev_max_backlog` is the machine's, not a network namespace's: A cannot set it",
            "6:7: sysctl `net.core.rmem_max` is the machine's",
        ],
    ),
    // Typos in node names get the nearest declared node.
    (
        "name: x\nnodes:\n  GREEN: {}\n  RED: {}\nlinks:\n  - endpoints: [GREN:e0, RED:e0]\nchecks:\n  - ping: {from: RDE, to: 10.0.0.1}\n",
        &[
            "6:17: unknown node `GREN` in endpoint `GREN:e0`, did you mean `GREEN`?",
            "8:18: unknown node `RDE`, did you mean `RED`?",
        ],
    ),
    (
        "name: x\nnodes:\n  under: {}\n  ov:\n    vxlans:\n      vx: {vni: 1, underlay: undr, dev: eth0, local: 10.0.0.1}\n",
        &["6:30: unknown underlay `undr`, did you mean `under`?"],
    ),
    // Typos in interface names get the nearest interface of that namespace.
    (
        "name: x\nnodes:\n  A:\n    interfaces:\n      eth0: {bridge: bro}\n    bridges:\n      br0: {}\n    routes:\n      - {to: 10.1.0.0/16, dev: eht0}\n  B: {}\nlinks:\n  - endpoints: [A:eth0, B:e0]\n",
        &["5:22: no bridge `bro` in A, did you mean `br0`?", "9:32: no interface `eht0` in A, did you mean `eth0`?"],
    ),
    // Tags outside the core schema, merge keys.
    (
        "name: x\nnodes:\n  A:\n    sysctls:\n      net.ipv4.ip_forward: !!binary MQ==\n",
        &["5:28: tags other than YAML's core schema (such as `!!binary`) are not supported"],
    ),
    ("name: !local x\n", &["1:7: tags other than YAML's core schema"]),
    (
        "name: x\nnodes:\n  A: &a\n    sysctls: {net.ipv4.ip_forward: 1}\n  B:\n    <<: *a\n    sysctls: {net.ipv6.conf.all.forwarding: 1}\n",
        &["6:5: merge keys (`<<`) are not supported: write the fields out"],
    ),
];

#[test]
fn each_invalid_file_reports_line_column_and_text() {
    let mut wrong = Vec::new();
    for (yaml, expected) in INVALID {
        let got = errors(yaml);
        let matches = got.len() == expected.len() && got.iter().zip(expected.iter()).all(|(g, w)| g.starts_with(w));
        if !matches {
            wrong.push(format!("for:\n{yaml}want: {expected:?}\ngot:  {got:?}"));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n\n"));
}

#[test]
fn all_errors_of_a_file_are_reported_at_once_in_file_order() {
    let yaml = concat!(
        "name: x\n",
        "nodes:\n",
        "  A:\n",
        "    interfaces:\n",
        "      e0: {addresses: [bad/24]}\n",
        "  B: {}\n",
        "links:\n",
        "  - endpoints: [A:e0, GREEN:e1]\n",
        "  - endpoints: [B:sixteen_bytes___, A:e2]\n",
    );
    let got = errors(yaml);
    // A:e0 is named by a link (whose other end is wrong): no second error for it.
    assert_eq!(
        got,
        [
            "5:24: malformed address `bad/24`",
            "8:23: unknown node `GREEN` in endpoint `GREEN:e1`",
            "9:17: interface name `sixteen_bytes___` is 16 bytes, the kernel allows at most 15",
        ]
    );
}

#[test]
fn rendered_errors_name_the_file_and_show_the_line() {
    let yaml = "name: x\nnodes:\n  A: {}\nlinks:\n  - endpoints: [A:e0, GREEN:e1]\n";
    let rendered = parse("topologies/lab.yaml", yaml).unwrap_err().to_string();
    assert!(rendered.starts_with("topologies/lab.yaml:5:23: unknown node `GREEN`"), "{rendered}");
    assert!(rendered.contains("5 |   - endpoints: [A:e0, GREEN:e1]"), "{rendered}");
    assert!(rendered.contains('^'), "{rendered}");
}

#[test]
fn a_bridge_takes_at_most_1023_ports() {
    let mut yaml = String::from("name: big\nhost:\n  bridges:\n    br0: {}\n  interfaces:\n");
    for i in 0..1024 {
        yaml.push_str(&format!("    p{i}: {{bridge: br0}}\n"));
    }
    yaml.push_str("nodes:\n");
    for i in 0..1024 {
        yaml.push_str(&format!("  n{i}: {{}}\n"));
    }
    yaml.push_str("links:\n");
    for i in 0..1024 {
        yaml.push_str(&format!("  - endpoints: [n{i}:eth0, p{i}]\n"));
    }
    let got = errors(&yaml);
    assert_eq!(got, vec!["4:5: bridge `br0` has 1024 ports; the kernel allows at most 1023".to_string()]);
}

#[test]
fn the_lab_files_are_valid_and_mean_what_the_tutorial_says() {
    let veth = netlab::model::load(std::path::Path::new("topologies/veth-pair.yaml")).unwrap();
    let red = &veth.namespaces[&"RED".parse::<Place>().unwrap()];
    let veth0 = &red.links[&"veth0".parse().unwrap()];
    assert!(matches!(&veth0.kind, LinkKind::Veth { peer } if peer.to_string() == "BLUE:veth1"));
    assert_eq!(veth0.addresses.iter().map(ToString::to_string).collect::<Vec<_>>(), ["11.11.11.2/24"]);

    let bridge = netlab::model::load(std::path::Path::new("topologies/bridge.yaml")).unwrap();
    let host = &bridge.namespaces[&Place::Host];
    assert_eq!(host.links[&"br0".parse().unwrap()].kind, LinkKind::Bridge);
    assert_eq!(host.links[&"reth1".parse().unwrap()].master.as_ref().map(|m| m.to_string()).as_deref(), Some("br0"));
}

#[test]
fn a_store_without_bridge_is_an_error_and_attachments_are_the_bridge_ports_peers() {
    let unbridged = BASE_STORE.replace("STORE", "dir:/srv/store").replace(", bridge: br0, store", ", store");
    assert_eq!(errors(&unbridged), ["11:69: a store needs `bridge`: the endpoints published are the bridge's"]);
    for (store, error) in [
        ("dir:relative/path", "11:82: store `dir:relative/path`: the folder must be an absolute path"),
        ("etcd://host", "11:82: store `etcd://host`: `host` is not HOST:PORT"),
        ("http://x:1", "11:82: store `http://x:1`: expected dir:PATH or etcd://"),
        ("etcd://[::1:2379", "11:82: store `etcd://[::1:2379`: `[::1:2379` is not HOST:PORT"),
        ("etcd://::1:2379", "11:82: store `etcd://::1:2379`: `::1:2379` is not HOST:PORT"),
    ] {
        let got = errors(&BASE_STORE.replace("STORE", store));
        assert!(got.len() == 1 && got[0].starts_with(error), "{store}: {got:?}");
    }
    assert!(netlab::model::parse("x.yaml", &BASE_STORE.replace("STORE", "etcd://10.0.0.1:2379,h2:2379/x")).is_ok());

    let lab = netlab::model::load(std::path::Path::new("topologies/overlay-dynamic.yaml")).unwrap();
    let mut attached: Vec<String> = lab
        .attachments()
        .iter()
        .map(|a| format!("{} {:?} {:?} {} {}", a.interface, a.ips, a.mac.map(|m| m.to_string()), a.vtep, a.store))
        .collect();
    attached.sort();
    assert_eq!(
        attached,
        [
            "ct1:eth0 [11.11.11.2] Some(\"02:42:c0:a8:00:02\") 192.168.104.2 dir:/run/netlab/stores/overlay-dynamic",
            "ct2:eth0 [11.11.11.3] Some(\"02:42:c0:a8:00:03\") 192.168.104.3 dir:/run/netlab/stores/overlay-dynamic",
            "ct3:eth0 [11.11.11.4] Some(\"02:42:c0:a8:00:04\") 192.168.104.2 dir:/run/netlab/stores/overlay-dynamic",
        ]
    );
    assert_eq!(netlab::model::load(std::path::Path::new("topologies/cluster-3.yaml")).unwrap().attachments().len(), 6);
}

#[test]
fn store_tls_is_for_etcd_with_absolute_paths_and_cert_with_key() {
    let with = |store: &str, tls: &str| BASE_STORE.replace("'STORE'", &format!("'{store}', store_tls: {tls}"));
    let etcd = "etcd://10.0.0.1:2379";
    // At the `store_tls` mapping (column 111 after a dir store, 117 after the etcd URL) or its field.
    for (yaml, error) in [
        (with("dir:/srv/store", "{ca: /etc/ca.pem}"), "11:111: `store_tls` needs an etcd store (`store: etcd://...`)"),
        (with(etcd, "{ca: etc/ca.pem}"), "11:122: ca `etc/ca.pem` must be an absolute path"),
        (with(etcd, "{cert: /etc/c.pem}"), "11:117: `cert` and `key` go together: a client certificate needs its key"),
        (with(etcd, "{ca: /etc/ca.pem, secret: x}"), "11:135: unknown field `secret`, expected one of ca, cert, key"),
    ] {
        let got = errors(&yaml);
        assert!(got.len() == 1 && got[0].starts_with(error), "{yaml}\n{got:?}");
    }
    // A bad store has its own error, not a second one about store_tls.
    assert_eq!(errors(&with("etcd://host", "{ca: /etc/ca.pem}")).len(), 1);

    let lab = parse("x.yaml", &with(etcd, "{ca: /etc/ca.pem, cert: /etc/c.pem, key: /etc/c.key}")).unwrap();
    let tls = lab.attachments()[0].tls.clone().unwrap();
    assert_eq!(
        (tls.ca.unwrap(), tls.cert.unwrap(), tls.key.unwrap()),
        ("/etc/ca.pem".into(), "/etc/c.pem".into(), "/etc/c.key".into())
    );
}

/// Mutations of the lab files never panic: they parse or they are reported.
#[test]
fn no_input_panics() {
    let sources: Vec<String> = lab_files().iter().map(|path| std::fs::read_to_string(path).unwrap()).collect();
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let junk = [
        "",
        ":",
        "- ",
        "{",
        "}",
        "[",
        "]",
        "'",
        "\"",
        "&a",
        "*a",
        "!!int",
        "\t",
        "\n",
        "-1",
        "999999999999",
        "::",
        "/",
        "lo",
        "host",
        // Toward the rules on names, ports, MTUs, tags, merge keys and sysctls.
        "%d",
        "br%d",
        "all",
        "default",
        "A:lo",
        "port: 0",
        "mtu: 60",
        "mtu: 0",
        "!!binary MQ==",
        "!local ",
        "!!timestamp ",
        "<<: *a",
        "&a ",
        "net.core.rmem_max",
        "etcd://[::1:2379",
        "mtuu",
        "nodez",
    ];
    for source in &sources {
        let bytes = source.as_bytes();
        for _ in 0..1000 {
            let mut text = source.clone();
            let at = (next() as usize) % bytes.len();
            let at = (0..=at).rev().find(|i| text.is_char_boundary(*i)).unwrap_or(0);
            let end = (at + (next() as usize) % 12).min(text.len());
            let end = (end..=text.len()).find(|i| text.is_char_boundary(*i)).unwrap_or(text.len());
            text.replace_range(at..end, junk[(next() as usize) % junk.len()]);
            let _ = parse("fuzz.yaml", &text).map_err(|d| d.to_string());
        }
    }
}

#[test]
fn nat_without_forwarding_is_a_warning_with_its_location() {
    let yaml = "name: x\nhost:\n  nat:\n    masquerade:\n      - {from: 10.0.0.0/8, to: 192.0.2.0/24}\n";
    let lab = parse("lab.yaml", yaml).unwrap();
    assert_eq!(lab.warnings.len(), 1);
    assert!(
        lab.warnings[0]
            .starts_with("lab.yaml:5:16: warning: host has NAT or published ports but does not enable forwarding"),
        "{:?}",
        lab.warnings
    );
    let forwarding = yaml.replace("  nat:", "  sysctls: {net.ipv4.ip_forward: 1}\n  nat:");
    assert!(parse("lab.yaml", &forwarding).unwrap().warnings.is_empty());
}

#[test]
fn an_overlay_without_mtus_gets_the_right_ones() {
    let lab = parse("lab.yaml", &BASE_MTU.replace("      eth0: {mtu: 1500}", "      eth0: {}")).unwrap();
    let mtu =
        |node: &str, name: &str| lab.namespaces[&node.parse::<Place>().unwrap()].links[&name.parse().unwrap()].mtu;
    assert_eq!(mtu("ov", "vx"), Some(1450));
    assert_eq!(mtu("ov", "p"), Some(1450));
    assert_eq!(mtu("ct", "eth0"), Some(1450), "the far end of a veth on the overlay bridge");
    assert_eq!(mtu("h", "eth0"), None, "the underlay keeps its own");
}

/// The kernel refuses a VXLAN MTU below 68: given so, or left to what a small lower
/// device carries.
#[test]
fn an_overlay_mtu_below_68_is_refused() {
    let small_lower =
        BASE_MTU.replace("eth0: {addresses: [10.0.0.1/24]}", "eth0: {addresses: [10.0.0.1/24], mtu: 100}");
    assert_eq!(
        errors(&small_lower),
        ["11:39: h:eth0 (mtu 100) leaves 50 bytes for the overlay once 50 bytes of encapsulation are taken: the kernel needs at least 68"]
    );
    let small_given = BASE_MTU.replacen("bridge: br0}", "bridge: br0, mtu: 60}", 1);
    assert_eq!(errors(&small_given), ["11:80: mtu 60 is out of range 68..=65535"]);
}

/// Typos in four places of one file: four errors in one run, each at its key, with the
/// nearest allowed field where one is near.
#[test]
fn schema_errors_are_all_reported_at_once_with_suggestions() {
    let yaml = concat!(
        "name: x\n",
        "nodez: {}\n",
        "host:\n",
        "  interfacs: {}\n",
        "  bridges:\n",
        "    br0: {mtuu: 1400}\n",
        "links:\n",
        "  - endpoint: [a, b]\n",
        "checks:\n",
        "  - pign: {from: A, to: B}\n",
        "  - tcp: {from: A, to: '10.0.0.1:80', secret: 1}\n",
    );
    assert_eq!(
        errors(yaml),
        [
            "2:1: unknown field `nodez`, did you mean `nodes`?",
            "4:3: unknown field `interfacs`, did you mean `interfaces`?",
            "6:11: unknown field `mtuu`, did you mean `mtu`?",
            "8:5: unknown field `endpoint`, did you mean `endpoints`?",
            "10:5: unknown field `pign`, did you mean `ping`?",
            "11:39: unknown field `secret`, expected one of from, to, listen, on",
        ]
    );
}

/// Under `host` (the initial namespace) a sysctl of the machine is allowed, with a
/// warning that every namespace shares it.
#[test]
fn a_global_sysctl_of_the_host_is_a_warning() {
    let lab = parse("lab.yaml", "name: x\nhost:\n  sysctls:\n    net.core.netdev_max_backlog: 2000\n").unwrap();
    assert_eq!(
        lab.warnings,
        ["lab.yaml:4:5: warning: sysctl `net.core.netdev_max_backlog` is the machine's, not the host namespace's: its value applies to every namespace"]
    );
    let per_namespace = parse("lab.yaml", "name: x\nnodes:\n  A:\n    sysctls: {net.core.somaxconn: 1024}\n").unwrap();
    assert!(per_namespace.warnings.is_empty());
}

/// Every lab file: topologies/ and its subfolders (the two-VM half-files in vm/).
fn lab_files() -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    let mut folders = vec![std::path::PathBuf::from("topologies")];
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(folder).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                folders.push(path);
            } else if path.extension().is_some_and(|e| e == "yaml") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

#[test]
fn every_lab_file_is_valid() {
    let files = lab_files();
    assert!(files.iter().any(|f| f.starts_with("topologies/vm")), "{files:?}");
    for file in files {
        if let Err(e) = netlab::model::load(&file) {
            panic!("{}: {e}", file.display());
        }
    }
}

/// The two-VM half-files name the VM's own card, eth1, without declaring it: it is
/// accepted without the kernel, recorded as an existing device of the host, and what
/// needs its facts (the VTEP address on it, the overlay's MTU) is left to plan time.
#[test]
fn the_half_files_name_the_vms_card_as_an_existing_device() {
    for (file, overlay, container, local) in [
        ("host1-static.yaml", "ov1", "ct1", "192.168.104.2"),
        ("host2-static.yaml", "ov2", "ct2", "192.168.104.3"),
        ("host1-dynamic.yaml", "ov1", "ct1", "192.168.104.2"),
        ("host2-dynamic.yaml", "ov2", "ct2", "192.168.104.3"),
        ("host1-etcd.yaml", "ov1", "ct1", "192.168.104.2"),
        ("host2-etcd.yaml", "ov2", "ct2", "192.168.104.3"),
    ] {
        let lab = netlab::model::load(&std::path::Path::new("topologies/vm").join(file)).unwrap();
        let host = &lab.namespaces[&Place::Host];
        assert_eq!(host.existing.iter().map(ToString::to_string).collect::<Vec<_>>(), ["eth1"], "{file}");
        assert!(host.links.is_empty(), "{file}: netlab makes nothing in the host");
        let ov = &lab.namespaces[&overlay.parse::<Place>().unwrap()];
        let vxlan1 = &ov.links[&"vxlan1".parse().unwrap()];
        let LinkKind::Vxlan(spec) = &vxlan1.kind else { panic!("{file}: vxlan1 is {:?}", vxlan1.kind) };
        assert_eq!(
            (spec.underlay.clone(), spec.dev.to_string(), spec.local.to_string()),
            (Place::Host, "eth1".into(), local.into())
        );
        assert_eq!(vxlan1.mtu, None, "{file}: the overlay's MTU waits for eth1's");
        let eth0 = &lab.namespaces[&container.parse::<Place>().unwrap()].links[&"eth0".parse().unwrap()];
        assert_eq!(eth0.mtu, None, "{file}");
        assert_eq!(spec.store.is_some(), !file.contains("static"), "{file}");
    }
    // Publication does not depend on the lower device: the VTEP is `local`.
    let lab = netlab::model::load(std::path::Path::new("topologies/vm/host2-etcd.yaml")).unwrap();
    let attached: Vec<String> =
        lab.attachments().iter().map(|a| format!("{} {:?} {} {}", a.interface, a.ips, a.vtep, a.store)).collect();
    assert_eq!(attached, ["ct2:eth0 [11.11.11.3] 192.168.104.3 etcd://192.168.104.2:2379/netlab/vxlan"]);
}

/// A host route through an existing device: accepted, its gateway checked at plan time.
#[test]
fn a_host_route_may_go_through_an_existing_device() {
    let yaml = "name: x\nhost:\n  routes:\n    - {to: 10.0.0.0/8, via: 192.168.104.1, dev: eth1}\n    - {to: 10.9.0.0/16, dev: eth2}\n";
    let lab = parse("lab.yaml", yaml).unwrap();
    let host = &lab.namespaces[&Place::Host];
    assert_eq!(host.existing.iter().map(ToString::to_string).collect::<Vec<_>>(), ["eth1", "eth2"]);
    let routes: Vec<String> = host.routes.iter().map(ToString::to_string).collect();
    assert_eq!(routes, ["10.0.0.0/8 via 192.168.104.1 dev eth1", "10.9.0.0/16 dev eth2"]);
    // Without `dev`, the gateway must still be on a subnet the file declares.
    let errors = errors("name: x\nhost:\n  routes:\n    - {to: 10.0.0.0/8, via: 192.168.104.1}\n");
    assert_eq!(errors, ["4:29: gateway `192.168.104.1` is not on any subnet of host"]);
}

/// A VXLAN device of the host itself (its underlay by default) over an existing card.
#[test]
fn a_vxlan_device_of_the_host_may_sit_on_an_existing_device() {
    let yaml = "name: x\nhost:\n  vxlans:\n    vx0: {vni: 7, dev: eth1, local: 192.168.104.2}\n";
    let lab = parse("lab.yaml", yaml).unwrap();
    let host = &lab.namespaces[&Place::Host];
    assert_eq!(host.existing.iter().map(ToString::to_string).collect::<Vec<_>>(), ["eth1"]);
    assert!(matches!(&host.links[&"vx0".parse().unwrap()].kind, LinkKind::Vxlan(v) if v.underlay == Place::Host));
}

/// `extends:` values that are no lab file: each an error located in the file that
/// names it (or in the base, when the base itself is a bad file), never a panic nor a
/// wait. The part-4 labs, mutated as in `no_input_panics`, load or are reported.
#[test]
fn extends_values_that_are_no_lab_never_panic() {
    let dir = std::env::temp_dir().join(format!("netlab-validate-extends-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("sub")).unwrap();
    let lab = dir.join("lab.yaml");
    let at = format!("{}:2:10: ", lab.display());
    for (value, expected) in [
        ("nope.yaml", format!("{at}extends nope.yaml: read ")),
        ("sub", format!("{at}extends sub: read ")),
        ("/dev/zero", format!("{at}extends /dev/zero: read /dev/zero: larger than 64 MiB")),
        ("lab.yaml", format!("{at}`extends` makes a cycle: ")),
        ("''", format!("{at}`extends` names no file")),
        ("/dev/null", "/dev/null:".to_string()),
        ("[a, b]", format!("{}:2:", lab.display())),
        ("{a: 1}", format!("{}:2:", lab.display())),
    ] {
        std::fs::write(&lab, format!("# a lab\nextends: {value}\n")).unwrap();
        match netlab::model::load(&lab) {
            Ok(_) => panic!("extends: {value} loaded"),
            Err(e) => assert!(e.to_string().starts_with(&expected), "extends: {value}: {e}"),
        }
    }

    for file in lab_files() {
        let name = file.file_name().unwrap();
        std::fs::copy(&file, dir.join(name)).unwrap();
    }
    let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed as usize
    };
    let junk = ["", ":", "- ", "{", "]", "'", "\n", "extends: ", "nat.yaml", "/", "..", "*a", "RED", "name: x\n"];
    for extending in ["gateway.yaml", "nat.yaml", "port-forward.yaml"] {
        let source = std::fs::read_to_string(std::path::Path::new("topologies").join(extending)).unwrap();
        assert!(source.contains("\nextends: "), "{extending}");
        let fuzz = dir.join(format!("fuzz-{extending}"));
        for _ in 0..300 {
            let mut text = source.clone();
            let start = next() % text.len();
            let end = (start + next() % 12).min(text.len());
            text.replace_range(start..end, junk[next() % junk.len()]);
            std::fs::write(&fuzz, &text).unwrap();
            let _ = netlab::model::load(&fuzz).map_err(|e| e.to_string());
        }
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A typo in one link's node does not make the next link's errors false: the end both
/// links use is "used by more than one link", and the other end is linked.
#[test]
fn a_typo_in_a_link_gives_only_true_errors_after_it() {
    let yaml = "name: x\nnodes:\n  RED: {interfaces: {veth0: {}}}\n  BLUE: {interfaces: {veth1: {}}}\n\
                links:\n  - endpoints: [RED:veth0, BLEU:veth1]\n  - endpoints: [RED:veth0, BLUE:veth1]\n";
    assert_eq!(
        errors(yaml),
        [
            "6:28: unknown node `BLEU` in endpoint `BLEU:veth1`, did you mean `BLUE`?",
            "7:17: endpoint `RED:veth0` is used by more than one link",
        ]
    );
}
