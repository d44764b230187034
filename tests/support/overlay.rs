//! Helpers of the overlay tests: vxlan-agents inside the simulated hosts, the entries
//! they install, etcd inside the sandbox.

#![allow(dead_code)]

use super::{agent_binary, eventually, topology, Certificates, Process, Sandbox};

/// A copy of a lab of topologies/ whose VXLAN devices say `agent: false`: the tests
/// that run vxlan-agent themselves (with their own options) keep netlab from running
/// one too. Its path.
pub fn own_agents(sandbox: &Sandbox, name: &str) -> String {
    let source = std::fs::read_to_string(topology(name)).unwrap();
    sandbox.file(&format!("own-agents-{}", name.replace('/', "-")), &without_agents(&source))
}

/// `agent: false` after every `store:` of a lab's text.
pub fn without_agents(source: &str) -> String {
    let mut out = String::new();
    let mut rest = source;
    while let Some(at) = rest.find("store: '") {
        let end = at + "store: '".len() + rest[at + "store: '".len()..].find('\'').unwrap() + 1;
        out.push_str(&rest[..end]);
        out.push_str(", agent: false");
        rest = &rest[end..];
    }
    out.push_str(rest);
    assert!(out.contains("agent: false"), "no store in the lab");
    out
}

pub const DIR_STORE: &str = "dir:/run/netlab/stores/overlay-dynamic";

pub fn agent(sandbox: &Sandbox, host: &str, overlay: &str, store: &str, extra: &[&str]) -> Process {
    let mut args = vec!["run", "--netns", overlay, "--device", "vxlan1", "--store", store, "--resync", "2"];
    args.extend_from_slice(extra);
    sandbox.spawn(host, &agent_binary(), &args)
}

/// The agent's entries on an overlay's vxlan1: neighbours (proto 78) and FDB entries
/// (extern_learn), one line each.
pub fn entries(sandbox: &Sandbox, overlay: &str) -> Vec<String> {
    let neighbours = sandbox.run("ip", &["-n", overlay, "neigh", "show", "dev", "vxlan1"]);
    let fdb = sandbox.run("ip", &["netns", "exec", overlay, "bridge", "fdb", "show", "dev", "vxlan1"]);
    let mut lines: Vec<String> = super::text(&neighbours.stdout)
        .lines()
        .filter(|l| l.contains("proto 78"))
        .map(|l| format!("neigh {}", l.split_whitespace().take(3).collect::<Vec<_>>().join(" ")))
        .collect();
    lines.extend(
        super::text(&fdb.stdout)
            .lines()
            .filter(|l| l.contains("extern_learn"))
            .map(|l| format!("fdb {}", l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))),
    );
    lines.sort();
    lines
}

pub fn ping(sandbox: &Sandbox, from: &str, to: &str) -> bool {
    sandbox.run("ip", &["netns", "exec", from, "ping", "-c1", "-W2", to]).status.success()
}

/// Member `i` (1..=3) of a three-member etcd cluster on 127.0.0.`i`, in the sandbox's
/// own namespace.
pub fn etcd_member(sandbox: &Sandbox, i: u8) -> Process {
    let client = format!("http://127.0.0.{i}:2379");
    let peer = format!("http://127.0.0.{i}:2380");
    let cluster = "m1=http://127.0.0.1:2380,m2=http://127.0.0.2:2380,m3=http://127.0.0.3:2380";
    spawn_etcd(sandbox, &format!("m{i}"), [&client, &client], &peer, cluster, &[])
}

/// An etcd member: client URLs to listen on and to advertise, its peer URL, the
/// cluster's members (`NAME=PEER,...`) and extra options. Its data lives in the sandbox.
pub fn spawn_etcd(
    sandbox: &Sandbox,
    name: &str,
    [listen, advertise]: [&str; 2],
    peer: &str,
    cluster: &str,
    extra: &[&str],
) -> Process {
    let data = sandbox.dir.join(format!("etcd-{name}"));
    let mut args = vec![
        "--name",
        name,
        "--data-dir",
        data.to_str().unwrap(),
        "--listen-client-urls",
        listen,
        "--advertise-client-urls",
        advertise,
        "--listen-peer-urls",
        peer,
        "--initial-advertise-peer-urls",
        peer,
        "--initial-cluster",
        cluster,
    ];
    args.extend_from_slice(extra);
    sandbox.spawn("", "etcd", &args)
}

/// cluster-3 with its underlay reaching the test's own namespace (the "machine" the
/// simulated hosts run on), where etcd listens on 192.168.104.1.
pub fn cluster_with_etcd(sandbox: &Sandbox) -> String {
    let source = without_agents(&std::fs::read_to_string(topology("cluster-3.yaml")).unwrap());
    let edited = source
        .replace("nodes:\n", "host:\n  interfaces:\n    lab0: {addresses: [192.168.104.1/24]}\nnodes:\n")
        .replace("      h1: {bridge: br0}\n", "      h0: {bridge: br0}\n      h1: {bridge: br0}\n")
        .replace("links:\n", "links:\n  - endpoints: [host:lab0, lan:h0]\n")
        .replace("dir:/run/netlab/stores/cluster-3", ETCD_STORE);
    sandbox.file("cluster-3-etcd.yaml", &edited)
}

pub const ETCD_STORE: &str = "etcd://192.168.104.1:2379/cluster-3";

/// etcd in the sandbox's own namespace, listening on every address there (the
/// underlay's 192.168.104.1 included, once the lab makes it).
pub fn etcd(sandbox: &Sandbox) -> Process {
    etcd_with(sandbox, None)
}

/// etcd as above; with certificates it serves TLS only and asks every client for a
/// certificate signed by the test's CA.
pub fn etcd_with(sandbox: &Sandbox, tls: Option<&Certificates>) -> Process {
    let scheme = if tls.is_some() { "https" } else { "http" };
    let listen = format!("{scheme}://0.0.0.0:2379");
    let advertise = format!("{scheme}://192.168.104.1:2379");
    let tls_options = match tls {
        Some(tls) => vec![
            "--cert-file",
            &tls.server_cert,
            "--key-file",
            &tls.server_key,
            "--trusted-ca-file",
            &tls.ca,
            "--client-cert-auth",
        ],
        None => vec![],
    };
    let peer = "http://127.0.0.1:2380";
    let process = spawn_etcd(sandbox, "test", [&listen, &advertise], peer, "test=http://127.0.0.1:2380", &tls_options);
    assert!(eventually(20.0, || process.output().contains("ready to serve client requests")), "{}", process.output());
    process
}

pub fn cluster_agents(sandbox: &Sandbox, store: &str) -> Vec<Process> {
    (1..=3).map(|i| agent(sandbox, &format!("host{i}"), &format!("ov{i}"), store, &[])).collect()
}

/// Each host's agent installs the four containers of the two other hosts.
pub fn converged(sandbox: &Sandbox) -> bool {
    (1..=3).all(|i| entries(sandbox, &format!("ov{i}")).len() == 8)
}
