//! The flannel-like mode end to end with a real client: on the flannel-3 lab (node1..node3
//! on the underlay 192.168.104.2-4/24), each simulated node is a podman node (see
//! tests/support/podman.rs) running `vxlan-agent node` inside its holder, so the daemon's
//! subnet file (/run/flannel/subnet.env) is the node's own and is what netlab-cni reads
//! by default; podman 4.3.1 with its CNI backend runs busybox containers on netlab-cni
//! (portmap chained). One test per store backend (etcd in the sandbox's own namespace,
//! a folder under the sandbox's folder in /tmp, which every holder sees: their /run is a
//! tmpfs of their own). Offline, traffic only between the sandbox's namespaces; every
//! process a test starts (daemons, pings, etcd, the nodes and their containers) is
//! killed by pid when it ends, pass or fail.

mod support;

use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::{Child, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use nix::unistd::Pid;
use serde_json::{json, Value};
use support::flannel::{lab, lab_with_host, leases, set_network, SubnetEnv, ETCD_STORE, NETWORK};
use support::overlay::etcd;
use support::podman::{netlab_cni, portmap, PodmanNode};
use support::{agent_binary, cni_binary, text, Sandbox};

/// The network's name in podman (its conflist) and in netlab-cni's data folder.
const NET: &str = "flannel-3";
/// netlab-cni's allocations for NET in a node (its default dataDir).
const DATA_DIR: &str = "/var/lib/cni/netlab/flannel-3";
/// The daemon's default subnet file: netlab-cni's default too.
const SUBNET_FILE: &str = "/run/flannel/subnet.env";
/// The daemon's default status file (in the node's own /run).
const STATUS_FILE: &str = "/run/vxlan-agent/node/status.json";
/// FLANNEL_MTU: the underlay's 1500 less VXLAN's 50.
const MTU: u32 = 1450;

/// Node `n`'s (1..=3) address on the underlay.
fn public_ip(n: usize) -> String {
    format!("192.168.104.{}", n + 1)
}

/// Wait up to `seconds` for `condition`, checking every 100 ms (each check runs
/// processes in three nodes: a slower pace leaves the two cores to the daemons).
fn until(seconds: f64, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs_f64(seconds);
    loop {
        if condition() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A program started in a podman node. `PodmanNode::command` is nsenter, which forks to
/// enter the node's pid namespace: the program is nsenter's child, signalled by its own
/// pid. Dropping this kills the program and then nsenter, by pid, pass or fail.
struct NodeProcess {
    nsenter: Option<Child>,
    /// The program, in the test's pid namespace.
    pid: i32,
    log: PathBuf,
}

impl NodeProcess {
    fn start(node: &PodmanNode, log: PathBuf, program: &str, args: &[&str]) -> NodeProcess {
        let file = std::fs::File::create(&log).unwrap();
        let nsenter = node
            .command(program)
            .args(args)
            .stdout(file.try_clone().unwrap())
            .stderr(file)
            .stdin(Stdio::null())
            .spawn()
            .expect("nsenter into the podman node");
        let id = nsenter.id();
        let mut process = NodeProcess { nsenter: Some(nsenter), pid: 0, log };
        let children = format!("/proc/{id}/task/{id}/children");
        let mut pid = 0;
        let forked = until(10.0, || {
            pid = std::fs::read_to_string(&children)
                .ok()
                .and_then(|c| c.split_whitespace().next().and_then(|p| p.parse().ok()))
                .unwrap_or(0);
            pid != 0
        });
        assert!(forked, "{program} {args:?} did not start in {}: {}", node.name, process.output());
        process.pid = pid;
        process
    }

    /// Whether the program may still run (nsenter, its parent, has not ended: until
    /// then the pid is the program's, alive or a zombie nsenter has not reaped).
    fn running(&mut self) -> bool {
        self.nsenter.as_mut().is_some_and(|n| n.try_wait().unwrap().is_none())
    }

    /// Send `signal` to the program and wait for it (nsenter passes its end on).
    fn stop(&mut self, signal: Signal) -> ExitStatus {
        assert!(self.running(), "already ended: {}", self.output());
        nix::sys::signal::kill(Pid::from_raw(self.pid), signal).unwrap();
        self.wait()
    }

    fn wait(&mut self) -> ExitStatus {
        self.nsenter.take().expect("running").wait().unwrap()
    }

    /// The program's pid as its node sees it (the last of NSpid).
    fn pid_in_node(&self) -> Option<u32> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid)).ok()?;
        status.lines().find_map(|l| l.strip_prefix("NSpid:"))?.split_whitespace().last()?.parse().ok()
    }

    fn output(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        if self.running() {
            let _ = nix::sys::signal::kill(Pid::from_raw(self.pid), Signal::SIGKILL);
        }
        if let Some(mut nsenter) = self.nsenter.take() {
            let _ = nsenter.kill();
            let _ = nsenter.wait();
        }
    }
}

/// Three podman nodes, each with its node daemon and the conflist
/// `[netlab-cni with defaults, portmap]`.
struct Cluster<'a> {
    /// First, so the daemons are killed before their nodes go.
    daemons: Vec<Option<NodeProcess>>,
    nodes: Vec<PodmanNode<'a>>,
    sandbox: &'a Sandbox,
    store: String,
    /// Each node's daemon options (--ttl...).
    options: Vec<Vec<String>>,
    started: usize,
}

impl<'a> Cluster<'a> {
    /// On a lab already applied and a network already set in `store`.
    fn new(sandbox: &'a Sandbox, store: &str, options: [&[&str]; 3]) -> Cluster<'a> {
        cni_binary(); // fails loudly when the plugin is not built
        let nodes: Vec<PodmanNode> = (1..=3).map(|n| PodmanNode::new(sandbox, &format!("node{n}"))).collect();
        for node in &nodes {
            node.cni_conflist(NET, &[netlab_cni(json!({})), portmap()]);
        }
        let mut cluster = Cluster {
            daemons: Vec::new(),
            nodes,
            sandbox,
            store: store.to_string(),
            options: options.iter().map(|o| o.iter().map(|s| s.to_string()).collect()).collect(),
            started: 0,
        };
        for n in 1..=3 {
            let daemon = cluster.start_daemon(n);
            cluster.daemons.push(Some(daemon));
        }
        cluster
    }

    fn node(&self, n: usize) -> &PodmanNode<'a> {
        &self.nodes[n - 1]
    }

    /// `vxlan-agent node --store STORE --public-ip IP OPTIONS...` in node `n`, with the
    /// default subnet and status files (the node's own /run).
    fn start_daemon(&mut self, n: usize) -> NodeProcess {
        self.started += 1;
        let log = self.sandbox.dir.join(format!("daemon-node{n}-{}.log", self.started));
        let ip = public_ip(n);
        let mut args = vec!["node", "--store", &self.store, "--public-ip", &ip];
        args.extend(self.options[n - 1].iter().map(String::as_str));
        NodeProcess::start(self.node(n), log, &agent_binary(), &args)
    }

    fn daemon(&mut self, n: usize) -> &mut NodeProcess {
        self.daemons[n - 1].as_mut().expect("node's daemon running")
    }

    fn subnet_text(&self, n: usize) -> Option<String> {
        self.node(n).read_file(SUBNET_FILE)
    }

    fn subnet_env(&self, n: usize) -> Option<SubnetEnv> {
        let text = self.subnet_text(n)?;
        Some(SubnetEnv::parse(&text).unwrap_or_else(|| panic!("node{n}'s subnet file does not parse: {text:?}")))
    }

    fn subnet_envs(&self) -> Option<Vec<SubnetEnv>> {
        (1..=3).map(|n| self.subnet_env(n)).collect()
    }

    fn routes(&self, n: usize) -> String {
        self.node(n).exec_ok("ip", &["route", "show"])
    }

    /// The names of node `n`'s links.
    fn link_names(&self, n: usize) -> Vec<String> {
        self.node(n)
            .links()
            .lines()
            .filter_map(|l| l.split(": ").nth(1))
            .map(|name| name.split('@').next().unwrap().to_string())
            .collect()
    }

    /// Whether every node holds a subnet file, the three subnets differ, and every node
    /// has exactly the flannel.<vni> of the VXLAN devices, with a route to each other
    /// node's subnet through it.
    fn converged(&self, vni: u32) -> Option<Vec<SubnetEnv>> {
        let envs = self.subnet_envs()?;
        let distinct: BTreeSet<&String> = envs.iter().map(|e| &e.subnet).collect();
        if distinct.len() != 3 {
            return None;
        }
        let device = format!("flannel.{vni}");
        for n in 1..=3 {
            let flannels: Vec<String> = self.link_names(n).into_iter().filter(|l| l.starts_with("flannel.")).collect();
            if flannels != [device.clone()] {
                return None;
            }
            let routes = self.routes(n);
            for (m, env) in (1..=3).zip(&envs) {
                let wanted = format!("{} via {} dev {device} ", env.subnet, env.base);
                if m != n && !routes.lines().any(|l| l.starts_with(&wanted)) {
                    return None;
                }
            }
        }
        Some(envs)
    }

    fn wait_converged(&self, vni: u32) -> Vec<SubnetEnv> {
        let mut envs = None;
        let done = until(45.0, || {
            envs = self.converged(vni);
            envs.is_some()
        });
        assert!(done, "the nodes did not converge on VNI {vni}:\n{}", self.describe());
        envs.unwrap()
    }

    /// The nodes' subnet files, VXLAN devices and routes, and the daemons' logs.
    fn describe(&self) -> String {
        let mut all = String::new();
        for n in 1..=3 {
            let flannels: Vec<String> = self.link_names(n).into_iter().filter(|l| l.starts_with("flannel.")).collect();
            all += &format!(
                "node{n}: subnet file {:?}\n  devices {flannels:?}\n  routes:\n{}",
                self.subnet_text(n),
                self.routes(n)
            );
        }
        for daemon in self.daemons.iter().flatten() {
            all += &format!("--- {}\n{}", daemon.log.display(), daemon.output());
        }
        all
    }

    /// The container's pid as its node sees it.
    fn container_pid(&self, n: usize, container: &str) -> String {
        self.node(n).podman_ok(&["inspect", "--format", "{{.State.Pid}}", container])
    }

    /// iputils' ping (the machine's: busybox's has no -M) in a container's network
    /// namespace.
    fn ping_in_container(&self, n: usize, container: &str, args: &[&str]) -> std::process::Output {
        let pid = self.container_pid(n, container);
        let mut all = vec!["--target", &pid, "--net", "--", "ping"];
        all.extend_from_slice(args);
        self.node(n).exec("nsenter", &all)
    }

    /// Container `cN` on node N (1..=3), sleeping; their addresses, each checked to be of
    /// its node's subnet, with the MTU of the subnet file.
    fn containers(&self, envs: &[SubnetEnv]) -> Vec<String> {
        (1..=3)
            .map(|n| {
                let name = format!("c{n}");
                self.node(n).run_detached(&name, NET, &[], &["sleep", "600"]);
                let ip = self.node(n).container_ip(&name, NET);
                let env = &envs[n - 1];
                assert!(in_subnet(&ip, env), "{name} on node{n} got {ip}, not of the node's subnet {}", env.subnet);
                let mtu = self.node(n).podman_ok(&["exec", &name, "cat", "/sys/class/net/eth0/mtu"]);
                assert_eq!(mtu, MTU.to_string(), "{name}'s MTU");
                ip
            })
            .collect()
    }

    /// Every container `cN` pings every other (10 s each to answer): the pairs that did not.
    fn failed_pings(&self, addresses: &[String]) -> Vec<String> {
        let mut failed = Vec::new();
        for from in 1..=3 {
            for to in (1..=3).filter(|to| *to != from) {
                let (container, address) = (format!("c{from}"), &addresses[to - 1]);
                if !until(10.0, || self.node(from).ping_from(&container, address)) {
                    failed.push(format!("c{from} (node{from}) -> c{to} ({address})"));
                }
            }
        }
        failed
    }

    /// netlab-cni's allocations in node `n`: the files under its data folder for NET
    /// (addresses/<IP>, attachments/<ID>), bookkeeping (lock, last) left out.
    fn allocations(&self, n: usize) -> Vec<String> {
        self.node(n)
            .files_under(DATA_DIR)
            .into_iter()
            .map(|(file, _)| file)
            .filter(|file| file != "lock" && file != "last")
            .collect()
    }

    fn veths(&self, n: usize) -> usize {
        self.link_names(n).iter().filter(|l| l.starts_with("veth")).count()
    }
}

/// Whether `ip` is an address of `env`'s subnet.
fn in_subnet(ip: &str, env: &SubnetEnv) -> bool {
    let (Ok(ip), Ok(base)) = (ip.parse::<Ipv4Addr>(), env.base.parse::<Ipv4Addr>()) else { return false };
    let mask = u32::MAX << (32 - u32::from(env.length));
    u32::from(ip) & mask == u32::from(base)
}

/// The node daemon's status file (JSON), if it is there.
fn status(node: &PodmanNode) -> Option<Value> {
    serde_json::from_str(&node.read_file(STATUS_FILE)?).ok()
}

/// What a ping stopped by SIGINT printed: the echoes it sent (its summary) and the
/// sequence numbers answered.
fn ping_record(output: &str) -> (Option<u32>, Vec<u32>) {
    let sent = output
        .lines()
        .find(|l| l.contains("packets transmitted"))
        .and_then(|l| l.split_whitespace().next()?.parse().ok());
    let answered = output
        .lines()
        .filter(|l| l.contains(" bytes from "))
        .filter_map(|l| l.split_whitespace().find_map(|w| w.strip_prefix("icmp_seq="))?.parse().ok())
        .collect();
    (sent, answered)
}

/// flannel-3 on etcd: three leases and their routes; a container per node (addresses of
/// the node's subnet, MTU 1450) reaches the two others; the path's MTU is 1450 (a DF
/// ping of 1422 bytes to another node passes, 1423 is refused); a port published with
/// `-p 8080:80` on node1 answers from node2's namespace at node1's address; a VNI
/// change is applied by every node (flannel.2 only, same subnets) and the containers
/// reach each other again; `podman restart` and `podman rm` leave no allocation behind.
#[test]
fn podman_on_etcd_containers_reach_each_other_across_nodes() {
    let sandbox = Sandbox::new();
    let _etcd = etcd(&sandbox);
    lab_with_host(&sandbox);
    set_network(&sandbox, ETCD_STORE, &[]);
    let cluster = Cluster::new(&sandbox, ETCD_STORE, [&[], &[], &[]]);
    let envs = cluster.wait_converged(1);
    for (n, env) in (1..=3).zip(&envs) {
        assert_eq!((env.network.as_str(), env.length, env.mtu, env.ip_masq), (NETWORK, 24, MTU, false), "node{n}");
    }
    let addresses = cluster.containers(&envs);
    let failed = cluster.failed_pings(&addresses);
    assert!(failed.is_empty(), "no answer: {failed:?}\n{}", cluster.describe());

    // Don't fragment: 1422 bytes of data + 28 of headers fill the 1450 of the
    // container's eth0 and of flannel.1 (1500 on the underlay with VXLAN's 50); one
    // byte more is refused with the MTU named.
    let fits = cluster.ping_in_container(1, "c1", &["-c1", "-W2", "-M", "do", "-s", "1422", &addresses[1]]);
    assert!(fits.status.success(), "DF ping of 1422 bytes c1 -> c2: {}{}", text(&fits.stdout), text(&fits.stderr));
    let over = cluster.ping_in_container(1, "c1", &["-c1", "-W2", "-M", "do", "-s", "1423", &addresses[1]]);
    let said = format!("{}{}", text(&over.stdout), text(&over.stderr));
    assert!(!over.status.success() && said.contains(&format!("mtu={MTU}")), "DF ping of 1423 bytes c1 -> c2: {said}");

    // A published port on node1, from node2's namespace to node1's address: portmap's
    // DNAT (chained after netlab-cni) to the container on node1's bridge. (A bare HTTP
    // request through nc: busybox-static's wget crashes here.)
    let node1 = cluster.node(1);
    let serve = "mkdir -p /www && echo served-by-web > /www/index.html && exec httpd -f -p 80 -h /www";
    node1.run_detached("web", NET, &["-p", "8080:80"], &["sh", "-c", serve]);
    let web_ip = node1.container_ip("web", NET);
    assert!(in_subnet(&web_ip, &envs[0]), "web got {web_ip}");
    let request = format!("printf 'GET / HTTP/1.0\\r\\n\\r\\n' | /bin/busybox nc -w 2 {} 8080", public_ip(1));
    let mut response = String::new();
    let served = until(15.0, || {
        let output = sandbox.run("ip", &["netns", "exec", "node2", "sh", "-c", &request]);
        response = format!("{}{}", text(&output.stdout), text(&output.stderr));
        response.starts_with("HTTP/1.1 200") && response.lines().last() == Some("served-by-web")
    });
    assert!(
        served,
        "{}:8080 from node2: {response}\nnode1's nat table:\n{}",
        public_ip(1),
        text(&node1.exec("iptables-save", &["-t", "nat"]).stdout)
    );

    // A second network config: VNI 2. Every node moves to flannel.2 (flannel.1 gone)
    // on the same subnet, and the containers, untouched, reach each other again.
    set_network(&sandbox, ETCD_STORE, &["--vni", "2"]);
    let after = cluster.wait_converged(2);
    assert_eq!(after, envs, "the subnets changed with the VNI");
    let failed = cluster.failed_pings(&addresses);
    assert!(failed.is_empty(), "no answer after the VNI change: {failed:?}\n{}", cluster.describe());

    // podman restart: DEL then ADD. c1 is attached again (reached from node2), its
    // allocation is the only one beside web's, and an old address it left is released.
    assert_eq!(cluster.allocations(1).len(), 4, "c1 and web: {:?}", cluster.allocations(1));
    node1.podman_ok(&["restart", "-t", "0", "c1"]);
    let c1 = node1.container_ip("c1", NET);
    assert!(in_subnet(&c1, &envs[0]), "c1 got {c1} after restart");
    let reached = until(10.0, || cluster.node(2).ping_from("c2", &c1));
    assert!(reached, "c2 -> c1 ({c1}) after c1's restart: no answer\n{}", cluster.describe());
    let allocations = cluster.allocations(1);
    let mut wanted: Vec<String> = [&c1, &web_ip].iter().map(|ip| format!("addresses/{ip}")).collect();
    wanted.sort();
    let addresses_held: Vec<&String> = allocations.iter().filter(|f| f.starts_with("addresses/")).collect();
    assert_eq!(
        addresses_held,
        wanted.iter().collect::<Vec<_>>(),
        "after c1's restart (was {}): {allocations:?}",
        addresses[0]
    );
    assert_eq!(allocations.iter().filter(|f| f.starts_with("attachments/")).count(), 2, "{allocations:?}");
    assert_eq!(cluster.veths(1), 2);

    // podman rm -f on every node: no allocation, no veth, no container left.
    for n in 1..=3 {
        let node = cluster.node(n);
        let names = node.podman_ok(&["ps", "-a", "--format", "{{.Names}}"]);
        let mut args = vec!["rm", "-f", "-t", "0"];
        args.extend(names.lines());
        node.podman_ok(&args);
        assert_eq!(cluster.allocations(n), Vec::<String>::new(), "node{n} after rm");
        assert_eq!(cluster.veths(n), 0, "node{n}: {}", node.links());
        assert_eq!(node.podman_ok(&["ps", "-a", "--format", "{{.Names}}"]), "", "node{n}");
    }
}

/// flannel-3 on a folder store: containers on different nodes reach each other; node2's
/// daemon stopped (SIGTERM) and started again keeps its subnet (the same subnet file),
/// and c1 -> c2 answers before, while no daemon runs on node2, and after, with no echo
/// lost by a ping running across the restart; node3's daemon killed (SIGKILL, TTL 2 s):
/// its lease expires and node1 and node2 drop their routes to its subnet, while still
/// reaching each other.
#[test]
fn podman_on_a_folder_store_survives_a_daemon_restart_and_forgets_a_dead_node() {
    let sandbox = Sandbox::new();
    lab(&sandbox);
    // Under the sandbox's folder in /tmp: the holders' own /run hides the sandbox's.
    let store = format!("dir:{}", sandbox.dir.join("store").display());
    set_network(&sandbox, &store, &[]);
    // node2's TTL is long enough for its restart whatever the load of the machine
    // (flannel's own is 24 h); node3's is short, to see it expire.
    let short: &[&str] = &["--ttl", "2", "--resync", "1", "--poll", "1"];
    let long: &[&str] = &["--ttl", "20", "--resync", "1", "--poll", "1"];
    let mut cluster = Cluster::new(&sandbox, &store, [short, long, short]);
    let envs = cluster.wait_converged(1);
    let addresses = cluster.containers(&envs);
    let failed = cluster.failed_pings(&addresses);
    assert!(failed.is_empty(), "no answer: {failed:?}\n{}", cluster.describe());
    let leases_before = leases(&sandbox, &store);
    assert_eq!(leases_before.len(), 3, "{leases_before:?}");

    // A ping from c1's namespace to c2 running across the restart, every 50 ms until
    // SIGINT (at most 120 s).
    let c1_pid = cluster.container_pid(1, "c1");
    let mut pinger = NodeProcess::start(
        cluster.node(1),
        sandbox.dir.join("ping-across-restart.log"),
        "nsenter",
        &["--target", &c1_pid, "--net", "--", "ping", "-n", "-i", "0.05", "-w", "120", &addresses[1]],
    );
    assert!(until(10.0, || pinger.output().contains("icmp_seq=3 ")), "{}", pinger.output());

    let subnet2 = cluster.subnet_text(2).unwrap();
    let stopped = cluster.daemon(2).stop(Signal::SIGTERM);
    cluster.daemons[1] = None;
    assert!(stopped.success(), "node2's daemon on SIGTERM: {stopped}");
    // No daemon on node2: its subnet file, its route on node1 and the traffic stay.
    assert_eq!(cluster.subnet_text(2).as_ref(), Some(&subnet2), "node2's subnet file after SIGTERM");
    let route2 = format!("{} via {} dev flannel.1 ", envs[1].subnet, envs[1].base);
    assert!(cluster.routes(1).lines().any(|l| l.starts_with(&route2)), "node1 lost its route to node2's subnet");
    assert!(cluster.node(1).ping_from("c1", &addresses[1]), "c1 -> c2 with node2's daemon stopped: no answer");

    let restarted = cluster.start_daemon(2);
    let pid = restarted.pid_in_node();
    cluster.daemons[1] = Some(restarted);
    let serving = until(20.0, || {
        status(cluster.node(2)).is_some_and(|s| {
            pid.is_some_and(|pid| s["pid"] == pid)
                && s["subnet"] == envs[1].subnet.as_str()
                && s["routes"] == 2
                && s["problem"].is_null()
        })
    });
    assert!(serving, "node2's daemon after restart: {:?}\n{}", status(cluster.node(2)), cluster.describe());
    assert_eq!(cluster.subnet_text(2).as_ref(), Some(&subnet2), "node2's subnet file after the restart");
    assert_eq!(cluster.wait_converged(1), envs);
    assert_eq!(leases(&sandbox, &store), leases_before);
    for (from, to) in [(1, 2), (2, 1), (3, 2)] {
        let reached = cluster.node(from).ping_from(&format!("c{from}"), &addresses[to - 1]);
        assert!(reached, "c{from} -> c{to} after node2's daemon restarted: no answer\n{}", cluster.describe());
    }
    // Every echo answered but, at most, the one still on its way when it was stopped.
    let ended = pinger.stop(Signal::SIGINT);
    let output = pinger.output();
    let (sent, answered) = ping_record(&output);
    let sent = sent.unwrap_or_else(|| panic!("the ping across the restart ({ended}) printed no summary: {output}"));
    let contiguous: Vec<u32> = (1..=answered.len() as u32).collect();
    assert!(
        answered == contiguous && answered.len() as u32 + 1 >= sent,
        "echoes lost across the restart ({sent} sent):\n{output}"
    );

    // node3's daemon killed: its lease expires (TTL 2 s), the others drop its route.
    let killed = cluster.daemon(3).stop(Signal::SIGKILL);
    cluster.daemons[2] = None;
    assert!(!killed.success(), "{killed}");
    let subnet3 = format!("{} ", envs[2].subnet);
    let forgotten = until(30.0, || {
        [1, 2].iter().all(|n| !cluster.routes(*n).lines().any(|l| l.starts_with(&subnet3) && l.contains("flannel.")))
    });
    assert!(forgotten, "node1 and node2 still route to node3's {}:\n{}", envs[2].subnet, cluster.describe());
    let left = leases(&sandbox, &store);
    assert!(left.len() == 2 && !left.iter().any(|l| l.contains(&subnet3)), "{left:?}");
    for (from, to) in [(1, 2), (2, 1)] {
        let reached = cluster.node(from).ping_from(&format!("c{from}"), &addresses[to - 1]);
        assert!(reached, "c{from} -> c{to} after node3 died: no answer\n{}", cluster.describe());
    }
}
