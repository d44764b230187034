//! Helpers of the flannel-mode tests (tests/node.rs): the flannel-3 lab in the sandbox,
//! `vxlan-agent node` daemons on its nodes (node1..node3 on 192.168.104.2..4), the
//! entries they install, the subnet files they write, and containers on the nodes.
//!
//! Containers are network namespaces `ctN` of the sandbox attached to a node's subnet by
//! the netlab-cni plugin's ADD (`attach`), run inside the node's namespace.
//!
//! Build the binaries first (cargo builds another package's binaries only for that
//! package's tests): `cargo build --release -p vxlan-agent -p netlab-cni`.

#![allow(dead_code)]

use std::io::Write;
use std::process::Stdio;

use super::{agent_binary, cni_binary, eventually, text, topology, Process, Sandbox};

/// The folder store of the lab (the tmpfs /run/netlab of the sandbox).
pub const DIR_STORE: &str = "dir:/run/netlab/stores/flannel-3";
/// The same folder, for files written by hand.
pub const STORE_FOLDER: &str = "/run/netlab/stores/flannel-3";
/// etcd in the sandbox's own namespace (192.168.104.1 on the underlay, see
/// `lab_with_host`), flannel's default prefix.
pub const ETCD_STORE: &str = "etcd://192.168.104.1:2379";
pub const NETWORK: &str = "10.244.0.0/16";
/// The sandbox's own address on the underlay (`lab_with_host`).
pub const HOST_IP: &str = "192.168.104.1";

/// Node `n` (1..=3): its namespace.
pub fn node(n: u8) -> String {
    format!("node{n}")
}

/// Node `n`'s address on the underlay.
pub fn public_ip(n: u8) -> String {
    format!("192.168.104.{}", n + 1)
}

/// Node `n`'s subnet file (the tmpfs /run/netlab of the sandbox).
pub fn subnet_file(n: u8) -> String {
    format!("/run/netlab/node{n}.env")
}

/// The VTEP MAC a node makes its device with: 0e:<vni>:<public ip octets>.
pub fn vtep_mac(n: u8, vni: u32) -> String {
    format!("0e:{:02x}:c0:a8:68:{:02x}", vni as u8, n + 1)
}

/// flannel-3 as it is.
pub fn lab(sandbox: &Sandbox) {
    sandbox.netlab_ok(&["apply", &topology("flannel-3.yaml")]);
}

/// flannel-3 with its underlay reaching the sandbox's own namespace (192.168.104.1 on
/// lab0, a port of the switch's br0): etcd listens there, and it is the "outside" of
/// the cluster for --ip-masq (it has no route to the cluster network).
pub fn lab_with_host(sandbox: &Sandbox) {
    let source = std::fs::read_to_string(topology("flannel-3.yaml")).unwrap();
    let mut edited = source.clone();
    for (from, to) in [
        ("\nnodes:\n", "\nhost:\n  interfaces:\n    lab0: {addresses: [192.168.104.1/24]}\nnodes:\n"),
        ("      n1: {bridge: br0}\n", "      h0: {bridge: br0}\n      n1: {bridge: br0}\n"),
        ("\nlinks:\n", "\nlinks:\n  - endpoints: [host:lab0, lan:h0]\n"),
    ] {
        assert_eq!(edited.matches(from).count(), 1, "flannel-3.yaml changed shape: {from:?} not found once");
        edited = edited.replacen(from, to, 1);
    }
    let file = sandbox.file("flannel-3-host.yaml", &edited);
    sandbox.netlab_ok(&["apply", &file]);
}

/// `vxlan-agent network set --store STORE --network 10.244.0.0/16 EXTRA...`.
pub fn set_network(sandbox: &Sandbox, store: &str, extra: &[&str]) {
    let mut args = vec!["network", "set", "--store", store, "--network", NETWORK];
    args.extend_from_slice(extra);
    sandbox.ok(&agent_binary(), &args);
}

/// `vxlan-agent network show`: its `lease ...` lines, sorted as text.
pub fn leases(sandbox: &Sandbox, store: &str) -> Vec<String> {
    let mut leases: Vec<String> = sandbox
        .ok(&agent_binary(), &["network", "show", "--store", store])
        .lines()
        .filter(|l| l.starts_with("lease "))
        .map(str::to_string)
        .collect();
    leases.sort();
    leases
}

/// The daemon of node `n` with short timers (--ttl 3 --resync 1 --poll 1) unless
/// `extra` names them.
pub fn daemon(sandbox: &Sandbox, n: u8, store: &str, extra: &[&str]) -> Process {
    let (ip, file) = (public_ip(n), subnet_file(n));
    let mut args = vec!["node", "--store", store, "--public-ip", &ip, "--subnet-file", &file];
    for (flag, default) in [("--ttl", "3"), ("--resync", "1"), ("--poll", "1")] {
        if !extra.contains(&flag) {
            args.extend([flag, default]);
        }
    }
    args.extend_from_slice(extra);
    sandbox.spawn(&node(n), &agent_binary(), &args)
}

pub fn daemons(sandbox: &Sandbox, store: &str, extra: &[&str]) -> Vec<Process> {
    (1..=3).map(|n| daemon(sandbox, n, store, extra)).collect()
}

/// All the daemons' logs, for assertion messages.
pub fn logs(daemons: &[&Process]) -> String {
    daemons.iter().map(|d| format!("--- {}\n{}", d.log.display(), d.output())).collect()
}

/// A subnet file as written by the daemon.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SubnetEnv {
    pub network: String,
    /// `10.244.X.0/24`.
    pub subnet: String,
    /// `10.244.X.0`: the subnet's network address (the VTEP address of its node).
    pub base: String,
    /// `10.244.X.1`: FLANNEL_SUBNET's address, the containers' gateway.
    pub gateway: String,
    pub length: u8,
    pub mtu: u32,
    pub ip_masq: bool,
}

impl SubnetEnv {
    /// The complete file in flannel's format (exactly the four lines, each ending in a
    /// newline), or `None`.
    pub fn parse(text: &str) -> Option<SubnetEnv> {
        if !text.ends_with('\n') {
            return None;
        }
        let lines: Vec<&str> = text.lines().collect();
        let [network, subnet, mtu, masq] = lines.as_slice() else { return None };
        let network = network.strip_prefix("FLANNEL_NETWORK=")?;
        let (gateway, length) = subnet.strip_prefix("FLANNEL_SUBNET=")?.split_once('/')?;
        let gateway: std::net::Ipv4Addr = gateway.parse().ok()?;
        let length: u8 = length.parse().ok().filter(|l| (1..=30).contains(l))?;
        let base = std::net::Ipv4Addr::from(u32::from(gateway) & (u32::MAX << (32 - length)));
        if u32::from(gateway) != u32::from(base) + 1 {
            return None;
        }
        let (network_address, network_length) = network.split_once('/')?;
        network_address.parse::<std::net::Ipv4Addr>().ok()?;
        network_length.parse::<u8>().ok().filter(|l| *l <= length)?;
        Some(SubnetEnv {
            network: network.to_string(),
            subnet: format!("{base}/{length}"),
            base: base.to_string(),
            gateway: gateway.to_string(),
            length,
            mtu: mtu.strip_prefix("FLANNEL_MTU=")?.parse().ok()?,
            ip_masq: masq.strip_prefix("FLANNEL_IPMASQ=")?.parse().ok()?,
        })
    }
}

/// Node `n`'s subnet file's text, if it exists.
pub fn subnet_text(sandbox: &Sandbox, n: u8) -> Option<String> {
    let output = sandbox.run("cat", &[&subnet_file(n)]);
    output.status.success().then(|| text(&output.stdout))
}

/// Node `n`'s subnet file, if it exists; a file that does not parse fails the test.
pub fn subnet_env(sandbox: &Sandbox, n: u8) -> Option<SubnetEnv> {
    let text = subnet_text(sandbox, n)?;
    Some(SubnetEnv::parse(&text).unwrap_or_else(|| panic!("node{n}'s subnet file does not parse: {text:?}")))
}

/// The three subnet files, once all exist.
pub fn subnet_envs(sandbox: &Sandbox) -> Option<Vec<SubnetEnv>> {
    (1..=3).map(|n| subnet_env(sandbox, n)).collect()
}

fn lines(output: &str, prefix: &str) -> Vec<String> {
    output.lines().filter(|l| !l.trim().is_empty()).map(|l| format!("{prefix} {}", words(l))).collect()
}

fn words(line: &str) -> String {
    line.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Everything on node `n`'s device `device`: its routes (main table), neighbours and
/// FDB entries, one normalised line each, sorted.
pub fn entries(sandbox: &Sandbox, n: u8, device: &str) -> Vec<String> {
    let ns = node(n);
    let routes = sandbox.run("ip", &["-n", &ns, "route", "show", "dev", device]);
    let neighbours = sandbox.run("ip", &["-n", &ns, "neigh", "show", "dev", device]);
    let fdb = sandbox.run("bridge", &["-n", &ns, "fdb", "show", "dev", device]);
    let mut all = lines(&text(&routes.stdout), "route");
    all.extend(lines(&text(&neighbours.stdout), "neigh"));
    all.extend(lines(&text(&fdb.stdout), "fdb"));
    all.sort();
    all
}

/// The entries a node's device holds for another node's lease (subnet `env`, node `n`).
pub fn entries_for(env: &SubnetEnv, n: u8, vni: u32) -> Vec<String> {
    let (base, mac) = (&env.base, vtep_mac(n, vni));
    vec![
        format!("route {} via {base} proto 78 onlink", env.subnet),
        format!("neigh {base} lladdr {mac} PERMANENT proto 78"),
        format!("fdb {mac} dst {} self extern_learn permanent", public_ip(n)),
    ]
}

/// What node `n`'s device should hold: exactly the entries of the other nodes' leases
/// (`envs`: the three subnet files, node1 first).
pub fn expected(envs: &[SubnetEnv], n: u8, vni: u32) -> Vec<String> {
    let mut all: Vec<String> =
        (1..=3u8).filter(|m| *m != n).flat_map(|m| entries_for(&envs[usize::from(m) - 1], m, vni)).collect();
    all.sort();
    all
}

/// Whether every node has a subnet file, the three subnets differ, and every node's
/// device `flannel.<vni>` holds exactly the two other nodes' entries.
pub fn converged(sandbox: &Sandbox, vni: u32) -> bool {
    let Some(envs) = subnet_envs(sandbox) else { return false };
    let distinct: std::collections::BTreeSet<&String> = envs.iter().map(|e| &e.subnet).collect();
    distinct.len() == 3 && (1..=3).all(|n| entries(sandbox, n, &format!("flannel.{vni}")) == expected(&envs, n, vni))
}

/// The state of the three nodes, for assertion messages.
pub fn describe(sandbox: &Sandbox, vni: u32) -> String {
    (1..=3)
        .map(|n| {
            format!(
                "node{n}: file {:?}\n  entries {:?}\n",
                subnet_text(sandbox, n),
                entries(sandbox, n, &format!("flannel.{vni}"))
            )
        })
        .collect()
}

/// Wait for the three daemons to converge on VNI `vni`; fails the test with their logs.
pub fn wait_converged(sandbox: &Sandbox, vni: u32, daemons: &[&Process]) -> Vec<SubnetEnv> {
    assert!(
        eventually(30.0, || converged(sandbox, vni)),
        "the nodes did not converge:\n{}{}",
        describe(sandbox, vni),
        logs(daemons)
    );
    subnet_envs(sandbox).unwrap()
}

/// Attach container `ct` (a namespace of the sandbox, made here) to node `n`'s subnet
/// with the netlab-cni plugin's ADD, run inside the node as a runtime runs it (the
/// CNI_* environment, the network config on stdin; the node's subnet file, its own
/// data folder, no masquerading by the plugin). Returns the container's address.
pub fn attach(sandbox: &Sandbox, n: u8, ct: &str) -> String {
    sandbox.ok("ip", &["netns", "add", ct]);
    let conf = serde_json::json!({
        "cniVersion": "1.0.0",
        "name": "flannel-3",
        "type": "netlab-cni",
        "subnetFile": subnet_file(n),
        "dataDir": format!("/run/netlab/cni-node{n}"),
        "ipMasq": false,
    });
    let netns = format!("/run/netns/{ct}");
    let mut command = sandbox.command("ip");
    command
        .args(["netns", "exec", &node(n), &cni_binary()])
        .envs([
            ("CNI_COMMAND", "ADD"),
            ("CNI_CONTAINERID", ct),
            ("CNI_NETNS", &netns),
            ("CNI_IFNAME", "eth0"),
            ("CNI_PATH", "/usr/lib/cni"),
        ])
        .env_remove("CNI_ARGS")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().expect("run netlab-cni in the sandbox");
    // The plugin may exit before reading (an environment error): its answer says why.
    let _ = child.stdin.take().unwrap().write_all(conf.to_string().as_bytes());
    let output = child.wait_with_output().unwrap();
    let said = format!("{}{}", text(&output.stdout), text(&output.stderr));
    assert!(output.status.success(), "netlab-cni ADD {ct} on node{n}: {said}");
    let result: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap_or_else(|e| panic!("{e}: {said}"));
    let address = result["ips"][0]["address"].as_str().unwrap_or_else(|| panic!("no address in {said}"));
    address.split('/').next().unwrap().to_string()
}

/// One container per node (`ct1` on node1, ...): their addresses.
pub fn containers(sandbox: &Sandbox) -> Vec<String> {
    (1..=3).map(|n| attach(sandbox, n, &format!("ct{n}"))).collect()
}

/// One ping from container (or node) namespace `from` to `to`: whether it answered.
pub fn ping(sandbox: &Sandbox, from: &str, to: &str) -> bool {
    sandbox.run("ip", &["netns", "exec", from, "ping", "-c1", "-W2", to]).status.success()
}

/// Every container pings every other (within `seconds` each): the pairs that did not.
pub fn failed_pings(sandbox: &Sandbox, addresses: &[String], seconds: f64) -> Vec<String> {
    let mut failed = Vec::new();
    for (i, _) in addresses.iter().enumerate() {
        for (j, to) in addresses.iter().enumerate() {
            let from = format!("ct{}", i + 1);
            if i != j && !eventually(seconds, || ping(sandbox, &from, to)) {
                failed.push(format!("{from} -> ct{} ({to})", j + 1));
            }
        }
    }
    failed
}

/// A process of the sandbox to look through: `/proc/<pid>/root` shows the sandbox's
/// own mounts (its /run/netlab tmpfs), so a test thread can read the files there
/// directly, without a process per read.
pub struct View {
    process: Process,
}

impl View {
    pub fn new(sandbox: &Sandbox) -> View {
        let process = sandbox.spawn("", "sleep", &["600"]);
        // nsenter enters the namespaces, then execs sleep.
        let ours = std::fs::read_link("/proc/self/ns/mnt").unwrap();
        let entered = || std::fs::read_link(format!("/proc/{}/ns/mnt", process.pid())).is_ok_and(|ns| ns != ours);
        assert!(eventually(10.0, entered), "the viewing process never entered the sandbox");
        View { process }
    }

    /// `path` (absolute, as the sandbox sees it) seen from outside.
    pub fn path(&self, path: &str) -> std::path::PathBuf {
        std::path::PathBuf::from(format!("/proc/{}/root{path}", self.process.pid()))
    }
}

/// `ip monitor route neigh` on a node: every change of its routes, neighbours and FDB
/// entries as the kernel announces it, from the moment `new` returns.
pub struct Monitor {
    process: Process,
}

impl Monitor {
    pub fn new(sandbox: &Sandbox, n: u8) -> Monitor {
        let process = sandbox.spawn(&node(n), "ip", &["monitor", "route", "neigh"]);
        // Listening once a change made for the purpose shows (a neighbour on eth0 that
        // nothing else uses).
        let marker = ["neigh", "add", "192.168.104.250", "lladdr", "02:00:00:00:00:fa", "dev", "eth0"];
        let listening = || {
            let _ = sandbox.run("ip", &[&["-n", &node(n)][..], &marker].concat());
            let _ = sandbox.run("ip", &["-n", &node(n), "neigh", "del", "192.168.104.250", "dev", "eth0"]);
            process.output().contains("192.168.104.250")
        };
        assert!(eventually(10.0, listening), "ip monitor on node{n}: {}", process.output());
        Monitor { process }
    }

    pub fn output(&self) -> String {
        self.process.output()
    }

    /// The removals announced (`Deleted ...` lines), but the marker's.
    pub fn deleted(&self) -> Vec<String> {
        self.output()
            .lines()
            .filter(|l| l.starts_with("Deleted ") && !l.contains("192.168.104.250"))
            .map(str::to_string)
            .collect()
    }
}
