//! A real client of the CNI plugins: podman 4.3.1 (Debian) with its CNI backend, on
//! simulated nodes inside the sandbox (see tests/support/podman.rs). Each scenario runs
//! twice: on Debian's reference plugins (bridge + host-local), the baseline that proves
//! the set-up, and on netlab-cni; both with the reference portmap chained. Offline: the
//! image is imported from busybox-static, and all traffic stays between the namespaces
//! of the test's sandbox. Every process a test starts is killed when it ends.

mod support;

use serde_json::json;
use support::podman::*;
use support::{cni_binary, eventually, text, Sandbox};

/// Two simulated nodes on one link: node1 runs podman, node2 is "another node".
const LAB: &str = "name: podman-nodes
nodes:
  node1:
    interfaces:
      eth0: {addresses: [192.168.105.2/24]}
  node2:
    interfaces:
      eth0: {addresses: [192.168.105.3/24]}
links:
  - endpoints: [node1:eth0, node2:eth0]
";
const NODE1_ADDRESS: &str = "192.168.105.2";

/// The network's name in podman (and in its conflist).
const NET: &str = "podnet";

#[derive(Clone, Copy)]
enum Plugins {
    /// Debian's reference bridge + host-local (the baseline).
    Reference,
    /// netlab-cni, on the subnet of a subnet file written by hand.
    NetlabCni,
}

impl Plugins {
    /// Write the node's network config (and, for netlab-cni, its subnet file).
    fn configure(self, node: &PodmanNode) {
        match self {
            Plugins::Reference => node.cni_conflist(NET, &[reference_bridge("cni-ref", "10.88.7.0/24"), portmap()]),
            Plugins::NetlabCni => {
                cni_binary(); // fails loudly when the plugin is not built
                node.write_file("/run/flannel/subnet.env", &subnet_env("10.244.0.0/16", "10.244.1.1/24", 1450, false));
                node.cni_conflist(
                    NET,
                    &[netlab_cni(json!({"subnetFile": "/run/flannel/subnet.env", "dataDir": NETLAB_DATA})), portmap()],
                );
            }
        }
    }

    /// The containers' subnet, as the start of their addresses.
    fn prefix(self) -> &'static str {
        match self {
            Plugins::Reference => "10.88.7.",
            Plugins::NetlabCni => "10.244.1.",
        }
    }

    /// Where the address allocator keeps its allocations.
    fn data_dir(self) -> &'static str {
        match self {
            Plugins::Reference => "/var/lib/cni/networks/podnet",
            Plugins::NetlabCni => NETLAB_DATA,
        }
    }

    /// Files of the data folder that are bookkeeping, not allocations: the locks, and
    /// the cursor where the next search starts, which keeps the last address given out
    /// (host-local's `last_reserved_ip.0`, netlab-cni's `last`).
    fn bookkeeping(self, file: &str) -> bool {
        match self {
            Plugins::Reference => file == "lock" || file.starts_with("last_reserved_ip"),
            Plugins::NetlabCni => file == "lock" || file == "last",
        }
    }
}

const NETLAB_DATA: &str = "/var/lib/cni/netlab";

fn sandbox_with_lab() -> Sandbox {
    let sandbox = Sandbox::new();
    let lab = sandbox.file("podman-nodes.yaml", LAB);
    sandbox.netlab_ok(&["apply", &lab]);
    sandbox
}

/// Whether any allocation of the data folder (its file names and contents, bookkeeping
/// left out) names `needle`: a container's id, or an address (a whole word, so that
/// 10.88.7.2 is not found in 10.88.7.23).
fn allocations_name(node: &PodmanNode, plugins: Plugins, needle: &str) -> bool {
    let names = |s: &str| match needle.parse::<std::net::Ipv4Addr>() {
        Ok(_) => s.split(|c: char| !(c.is_ascii_digit() || c == '.')).any(|word| word == needle),
        Err(_) => s.contains(needle),
    };
    allocations(node, plugins).iter().any(|(file, contents)| names(file) || names(contents))
}

fn allocations(node: &PodmanNode, plugins: Plugins) -> Vec<(String, String)> {
    node.files_under(plugins.data_dir())
        .into_iter()
        .filter(|(file, _)| !plugins.bookkeeping(file.rsplit('/').next().unwrap()))
        .collect()
}

fn veths(node: &PodmanNode) -> usize {
    node.links().lines().filter(|l| l.contains("veth")).count()
}

fn two_containers_ping(plugins: Plugins) {
    let sandbox = sandbox_with_lab();
    let node = PodmanNode::new(&sandbox, "node1");
    plugins.configure(&node);
    let networks = node.podman_ok(&["network", "ls", "--format", "{{.Name}}"]);
    assert!(networks.lines().any(|n| n == NET), "podman does not see the network: {networks}");

    node.run_detached("c1", NET, &[], &["sleep", "600"]);
    node.run_detached("c2", NET, &[], &["sleep", "600"]);
    let (ip1, ip2) = (node.container_ip("c1", NET), node.container_ip("c2", NET));
    assert!(ip1.starts_with(plugins.prefix()) && ip2.starts_with(plugins.prefix()) && ip1 != ip2, "{ip1} {ip2}");
    assert!(node.ping_from("c1", &ip2), "c1 ({ip1}) -> c2 ({ip2}): no answer\n{}", node.links());
    assert!(node.ping_from("c2", &ip1), "c2 ({ip2}) -> c1 ({ip1}): no answer");
    if let Plugins::NetlabCni = plugins {
        // The MTU comes from the subnet file.
        let mtu = node.podman_ok(&["exec", "c1", "cat", "/sys/class/net/eth0/mtu"]);
        assert_eq!(mtu, "1450");
    }

    // Every process of the node goes with it: the holder, conmon and the containers'
    // processes (two each at least: conmon and sleep).
    let processes = node.processes();
    assert!(processes.len() >= 5, "{processes:?}");
    drop(node);
    // Gone, or dead and waiting to be reaped: the holder's parent (unshare) is killed
    // with it, so the holder is left for the machine's init to reap.
    let gone = |pid: &u32| match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat.rsplit_once(')').is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
        Err(_) => true,
    };
    assert!(eventually(5.0, || processes.iter().all(gone)), "left running: {processes:?}");
}

fn port_mapping_from_another_node(plugins: Plugins) {
    let sandbox = sandbox_with_lab();
    let node = PodmanNode::new(&sandbox, "node1");
    plugins.configure(&node);
    let serve = "mkdir -p /www && echo served-by-web > /www/index.html && exec httpd -f -p 80 -h /www";
    node.run_detached("web", NET, &["-p", "8080:80"], &["sh", "-c", serve]);
    let ip = node.container_ip("web", NET);
    assert!(ip.starts_with(plugins.prefix()), "{ip}");

    // From node2's namespace, to node1's address: portmap's DNAT in node1, forwarded to
    // the container over the bridge. (busybox-static's wget crashes here, in its static
    // glibc: a bare HTTP request through nc instead.)
    let request = format!("printf 'GET / HTTP/1.0\\r\\n\\r\\n' | /bin/busybox nc -w 2 {NODE1_ADDRESS} 8080");
    let fetch = || sandbox.run("ip", &["netns", "exec", "node2", "sh", "-c", &request]);
    let mut last = None;
    let served = eventually(10.0, || {
        let output = fetch();
        let response = text(&output.stdout);
        let ok = response.starts_with("HTTP/1.1 200") && response.lines().last() == Some("served-by-web");
        last = Some(output);
        ok
    });
    let last = last.unwrap();
    assert!(
        served,
        "{NODE1_ADDRESS}:8080 from node2: {}{}\nnode1 forwarding: {}\nnat: {}",
        text(&last.stdout),
        text(&last.stderr),
        node.exec_ok("cat", &["/proc/sys/net/ipv4/ip_forward"]).trim(),
        text(&node.exec("iptables-save", &["-t", "nat"]).stdout)
    );
}

fn restart_and_rm_leave_no_allocation(plugins: Plugins) {
    let sandbox = sandbox_with_lab();
    let node = PodmanNode::new(&sandbox, "node1");
    plugins.configure(&node);
    let id1 = node.run_detached("c1", NET, &[], &["sleep", "600"]);
    let id2 = node.run_detached("c2", NET, &[], &["sleep", "600"]);
    let (before1, ip2) = (node.container_ip("c1", NET), node.container_ip("c2", NET));
    for (id, ip) in [(&id1, &before1), (&id2, &ip2)] {
        assert!(
            allocations_name(&node, plugins, ip) || allocations_name(&node, plugins, id),
            "no allocation names {ip} or {id}: {:?}",
            allocations(&node, plugins)
        );
    }
    assert_eq!(veths(&node), 2, "{}", node.links());

    // Restart (sleep as pid 1 ignores SIGTERM: -t 0 kills it at once): the container is
    // attached again (DEL then ADD) and still reaches c2; its old address, if it got
    // another, is released.
    node.podman_ok(&["restart", "-t", "0", "c1"]);
    let after1 = node.container_ip("c1", NET);
    assert!(node.ping_from("c1", &ip2), "c1 ({after1}) after restart -> c2 ({ip2}): no answer");
    assert!(node.ping_from("c2", &after1), "c2 -> c1 ({after1}) after restart: no answer");
    if after1 != before1 {
        assert!(
            !allocations_name(&node, plugins, &before1),
            "{before1} still allocated: {:?}",
            allocations(&node, plugins)
        );
    }
    assert!(
        allocations_name(&node, plugins, &after1) || allocations_name(&node, plugins, &id1),
        "c1 has no allocation after restart: {:?}",
        allocations(&node, plugins)
    );
    assert_eq!(veths(&node), 2, "{}", node.links());

    // Removed: nothing of either container is left, in the allocator or as a link.
    node.podman_ok(&["rm", "-f", "-t", "0", "c1", "c2"]);
    for needle in [&id1, &id2, &after1, &ip2] {
        assert!(
            !allocations_name(&node, plugins, needle),
            "{needle} still allocated: {:?}",
            allocations(&node, plugins)
        );
    }
    assert_eq!(allocations(&node, plugins), Vec::<(String, String)>::new());
    assert_eq!(veths(&node), 0, "{}", node.links());
    assert_eq!(node.podman_ok(&["ps", "-a", "--format", "{{.Names}}"]), "");
}

#[test]
fn reference_plugins_two_containers_ping() {
    two_containers_ping(Plugins::Reference);
}

#[test]
fn reference_plugins_port_mapping_from_another_node() {
    port_mapping_from_another_node(Plugins::Reference);
}

#[test]
fn reference_plugins_restart_and_rm_leave_no_allocation() {
    restart_and_rm_leave_no_allocation(Plugins::Reference);
}

#[test]
fn netlab_cni_two_containers_ping() {
    two_containers_ping(Plugins::NetlabCni);
}

#[test]
fn netlab_cni_port_mapping_from_another_node() {
    port_mapping_from_another_node(Plugins::NetlabCni);
}

#[test]
fn netlab_cni_restart_and_rm_leave_no_allocation() {
    restart_and_rm_leave_no_allocation(Plugins::NetlabCni);
}
