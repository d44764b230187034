//! The flannel-like node daemon, `vxlan-agent node`, on the flannel-3 lab: three
//! simulated hosts node1..node3 on the underlay 192.168.104.0/24, each leasing a subnet
//! of 10.244.0.0/16, writing its subnet file and routing to the others' subnets over
//! its VXLAN device; containers on different nodes reach each other through it.
//! Each test in its own sandbox; every daemon, etcd and ping is killed when it ends,
//! and no traffic leaves the sandbox. Containers are attached by the netlab-cni plugin.
//!
//! Build the daemon and the plugin first (cargo builds another package's binaries only
//! for that package's tests):
//! `cargo build --release -p vxlan-agent -p netlab-cni && cargo test --release --test node`.

mod support;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use nix::sys::signal::Signal;
use support::flannel::*;
use support::overlay::etcd;
use support::{eventually, text, Process, Sandbox};

/// Sets the flag when dropped: a helper thread of a scope stops even when the test
/// fails (a panic in the scope's body would otherwise wait for it forever).
struct StopOnDrop<'a>(&'a AtomicBool);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// Whether a process of the test has ended (a zombie not reaped yet: its exit status
/// is still there for `Process::stop`).
fn exited(process: &Process) -> bool {
    let stat = std::fs::read_to_string(format!("/proc/{}/stat", process.pid())).unwrap_or_default();
    // pid (comm) STATE ...: comm may hold spaces, the state follows the last ')'.
    stat.rsplit_once(')').and_then(|(_, rest)| rest.split_whitespace().next()).is_none_or(|state| state == "Z")
}

/// `N packets transmitted, M received` of a finished ping.
fn ping_summary(output: &str) -> Option<(u32, u32)> {
    let line = output.lines().find(|l| l.contains("packets transmitted"))?;
    let mut numbers = line.split(',').map(|part| part.split_whitespace().next().and_then(|n| n.parse().ok()));
    Some((numbers.next()??, numbers.next()??))
}

/// A node's lease as `network show` prints it.
fn lease_line(env: &SubnetEnv, n: u8, vni: u32) -> String {
    format!("lease {} public-ip {} vni {vni} vtep-mac {}", env.subnet, public_ip(n), vtep_mac(n, vni))
}

fn sorted(mut lines: Vec<String>) -> Vec<String> {
    lines.sort();
    lines
}

/// Three daemons on a folder store: distinct leases in flannel's format, subnet files,
/// each node's flannel.1 as specified with exactly the two other nodes' neighbour, FDB
/// entry and onlink route; containers on every node reach every other, and the path's
/// MTU is 1450 (a DF ping of 1422 bytes passes, 1423 is refused).
#[test]
fn three_nodes_converge_on_a_folder_store_and_their_containers_reach_each_other() {
    let sandbox = Sandbox::new();
    lab(&sandbox);
    set_network(&sandbox, DIR_STORE, &[]);
    let daemons = daemons(&sandbox, DIR_STORE, &[]);
    let all: Vec<&Process> = daemons.iter().collect();
    let envs = wait_converged(&sandbox, 1, &all);

    for (n, env) in (1..=3u8).zip(&envs) {
        assert_eq!(
            (env.network.as_str(), env.length, env.mtu, env.ip_masq),
            (NETWORK, 24, 1450, false),
            "node{n}: {env:?}"
        );
        assert!(env.subnet.starts_with("10.244.") && env.subnet != "10.244.0.0/24", "node{n}: {env:?}");
        // The device: flannel's VXLAN parameters, marked as the daemon's, MTU 1450, the
        // subnet's .0 as its only IPv4 address.
        let details = sandbox.ok("ip", &["-n", &node(n), "-d", "link", "show", "flannel.1"]);
        let ip = public_ip(n);
        for wanted in [
            " mtu 1450 ",
            &format!("link/ether {} ", vtep_mac(n, 1)),
            &format!("vxlan id 1 local {ip} dev eth0 "),
            " dstport 8472 ",
            " nolearning ",
            "alias netlab:vxlan-agent-node",
        ] {
            assert!(details.contains(wanted), "node{n}: no `{wanted}` in\n{details}");
        }
        let addresses = sandbox.ok("ip", &["-n", &node(n), "-4", "-o", "addr", "show", "dev", "flannel.1"]);
        let inet = addresses.split_whitespace().skip_while(|w| *w != "inet").nth(1);
        assert_eq!(inet, Some(format!("{}/32", env.base).as_str()), "node{n}: {addresses}");
        assert_eq!(addresses.lines().count(), 1, "node{n}: {addresses}");

        // The lease file: the expiry line, then flannel's JSON.
        let file = format!("{STORE_FOLDER}/subnets/{}-24", env.base);
        let content = sandbox.ok("cat", &[&file]);
        let (expiry, json) = content.split_once('\n').unwrap_or_else(|| panic!("{file}: {content:?}"));
        let (millis, lease) = expiry
            .strip_prefix("#expires=")
            .and_then(|rest| rest.split_once(" lease="))
            .unwrap_or_else(|| panic!("{file}: expiry line {expiry:?}"));
        let millis: u128 = millis.parse().unwrap_or_else(|_| panic!("{file}: {expiry:?}"));
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis();
        assert!(millis > now && millis <= now + 3_000 + 1_000, "{file}: expires {millis}, now {now} (ttl 3 s)");
        assert!(!lease.is_empty() && lease.chars().all(|c| c.is_ascii_hexdigit()), "{file}: {expiry:?}");
        let value: serde_json::Value = serde_json::from_str(json.trim()).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(
            value,
            serde_json::json!({"PublicIP": ip, "BackendType": "vxlan",
                "BackendData": {"VNI": 1, "VtepMAC": vtep_mac(n, 1)}}),
            "{file}"
        );
    }
    assert_eq!(
        leases(&sandbox, DIR_STORE),
        sorted((1..=3u8).zip(&envs).map(|(n, env)| lease_line(env, n, 1)).collect()),
        "network show"
    );

    let addresses = containers(&sandbox);
    let failed = failed_pings(&sandbox, &addresses, 10.0);
    assert!(failed.is_empty(), "no answer: {failed:?}\n{}", logs(&all));

    // The path MTU: 1422 bytes of ICMP data + 28 of headers = 1450 pass with DF set,
    // one byte more is refused; from a container and from the node itself (through
    // flannel.1 directly).
    for from in ["ct1", "node1"] {
        let df = |size: &str| {
            sandbox.run("ip", &["netns", "exec", from, "ping", "-M", "do", "-s", size, "-c1", "-W2", &addresses[1]])
        };
        let fits = df("1422");
        assert!(fits.status.success(), "{from}: {}{}", text(&fits.stdout), text(&fits.stderr));
        let too_big = df("1423");
        let said = format!("{}{}", text(&too_big.stdout), text(&too_big.stderr));
        assert!(!too_big.status.success() && said.contains("mtu=1450"), "{from}: {said}");
    }
}

/// The same on etcd (flannel's prefix), then --ip-masq on node1: a container there
/// reaches the sandbox's own namespace (which has no route back to 10.244.0.0/16) only
/// once masqueraded, through the daemon's own nftables table.
#[test]
fn three_nodes_on_etcd_and_ip_masq_takes_containers_outside() {
    let sandbox = Sandbox::new();
    let _etcd = etcd(&sandbox);
    lab_with_host(&sandbox);
    set_network(&sandbox, ETCD_STORE, &[]);
    let mut daemons = daemons(&sandbox, ETCD_STORE, &[]);
    let envs = wait_converged(&sandbox, 1, &daemons.iter().collect::<Vec<_>>());
    assert_eq!(
        leases(&sandbox, ETCD_STORE),
        sorted((1..=3u8).zip(&envs).map(|(n, env)| lease_line(env, n, 1)).collect()),
    );
    let addresses = containers(&sandbox);
    let failed = failed_pings(&sandbox, &addresses, 10.0);
    assert!(failed.is_empty(), "no answer: {failed:?}\n{}", logs(&daemons.iter().collect::<Vec<_>>()));

    // Outside the cluster network: the node reaches it, its container does not (no
    // route back to the container).
    assert!(ping(&sandbox, "node1", HOST_IP), "the underlay does not reach the sandbox's namespace");
    assert!(!ping(&sandbox, "ct1", HOST_IP), "a container reached {HOST_IP} without masquerading");

    // node1's daemon again, with --ip-masq.
    let status = daemons[0].stop(Signal::SIGTERM);
    assert!(status.success(), "{status}: {}", daemons[0].output());
    daemons[0] = daemon(&sandbox, 1, ETCD_STORE, &["--ip-masq"]);
    let masq = || subnet_env(&sandbox, 1).is_some_and(|env| env.ip_masq);
    assert!(eventually(20.0, masq), "{:?}\n{}", subnet_text(&sandbox, 1), daemons[0].output());
    // The same subnet, and the file stays (a daemon that drops its new lease removes it).
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(2) {
        let env = subnet_env(&sandbox, 1);
        let wanted = Some(SubnetEnv { ip_masq: true, ..envs[0].clone() });
        assert_eq!(env, wanted, "node1's subnet file after its restart:\n{}", daemons[0].output());
    }
    let table = sandbox.run("ip", &["netns", "exec", "node1", "nft", "list", "table", "ip", "netlab-node"]);
    let rules = text(&table.stdout);
    assert!(table.status.success(), "no table ip netlab-node on node1: {}", text(&table.stderr));
    assert!(rules.contains("masquerade") && rules.contains(&envs[0].subnet), "{rules}");
    assert!(eventually(10.0, || ping(&sandbox, "ct1", HOST_IP)), "not masqueraded:\n{rules}\n{}", daemons[0].output());
    // The other nodes do not masquerade.
    assert!(!ping(&sandbox, "ct2", HOST_IP), "node2 masquerades without --ip-masq");
    assert!(!sandbox
        .run("ip", &["netns", "exec", "node2", "nft", "list", "table", "ip", "netlab-node"])
        .status
        .success());
    // And traffic inside the cluster network still flows.
    assert!(failed_pings(&sandbox, &addresses, 10.0).is_empty());
}

/// A node whose daemon dies (SIGKILL, TTL 2 s) loses its lease, and the other nodes
/// remove exactly its entries.
#[test]
fn a_killed_node_loses_its_lease_and_the_others_their_routes_to_it() {
    let sandbox = Sandbox::new();
    lab(&sandbox);
    set_network(&sandbox, DIR_STORE, &[]);
    let mut daemons = daemons(&sandbox, DIR_STORE, &["--ttl", "2"]);
    let envs = wait_converged(&sandbox, 1, &daemons.iter().collect::<Vec<_>>());
    daemons[2].stop(Signal::SIGKILL);
    let node3_gone = || {
        entries(&sandbox, 1, "flannel.1") == sorted(entries_for(&envs[1], 2, 1))
            && entries(&sandbox, 2, "flannel.1") == sorted(entries_for(&envs[0], 1, 1))
    };
    assert!(
        eventually(30.0, node3_gone),
        "node3's entries stay:\n{}{}",
        describe(&sandbox, 1),
        logs(&daemons[..2].iter().collect::<Vec<_>>())
    );
    assert_eq!(leases(&sandbox, DIR_STORE), sorted(vec![lease_line(&envs[0], 1, 1), lease_line(&envs[1], 2, 1)]));
    // node3's subnet is free again: no route to it anywhere.
    for n in [1, 2] {
        let route = sandbox.ok("ip", &["-n", &node(n), "route", "show", &envs[2].subnet]);
        assert!(route.trim().is_empty(), "node{n}: {route}");
    }
}

/// SIGTERM keeps lease, routes and subnet file; the daemon started again within the
/// TTL takes the same subnet. node1 never removes an entry of the restarted node2 (as
/// the kernel reports every change to `ip monitor`), and a container ping from node1
/// to node2 answers before, during and after the restart.
#[test]
fn a_daemon_restarted_within_its_ttl_keeps_its_subnet_and_traffic_flows_throughout() {
    let sandbox = Sandbox::new();
    lab(&sandbox);
    set_network(&sandbox, DIR_STORE, &[]);
    let options = ["--ttl", "10"];
    let mut daemons = daemons(&sandbox, DIR_STORE, &options);
    let envs = wait_converged(&sandbox, 1, &daemons.iter().collect::<Vec<_>>());
    let addresses = containers(&sandbox);
    assert!(eventually(10.0, || ping(&sandbox, "ct1", &addresses[1])), "ct1 -> ct2 before the restart");
    let lease2 = lease_line(&envs[1], 2, 1);

    let monitor = Monitor::new(&sandbox, 1);
    let mut pinger = sandbox.spawn("ct1", "ping", &["-c", "150", "-i", "0.1", "-W", "1", &addresses[1]]);
    let replies = || pinger.output().lines().filter(|l| l.contains(" bytes from ")).count();
    // Before: the ping answers.
    assert!(eventually(10.0, || replies() >= 10), "{}", pinger.output());
    // Three restarts: node1 follows the store on its own schedule, so one restart may
    // pass a problem by.
    for restart in 1..=3 {
        let status = daemons[1].stop(Signal::SIGTERM);
        assert!(status.success(), "{status}: {}", daemons[1].output());
        // Stopped, it left everything in place.
        assert_eq!(subnet_env(&sandbox, 2).as_ref(), Some(&envs[1]), "subnet file after SIGTERM {restart}");
        assert!(leases(&sandbox, DIR_STORE).contains(&lease2), "node2's lease after SIGTERM {restart}");
        assert_eq!(entries(&sandbox, 2, "flannel.1"), expected(&envs, 2, 1), "node2's entries, SIGTERM {restart}");
        // During: pings answer while node2 has no daemon.
        let stopped = replies();
        assert!(eventually(10.0, || replies() >= stopped + 10), "{}", pinger.output());
        daemons[1] = daemon(&sandbox, 2, DIR_STORE, &options);
        let leased = format!("leased {}", envs[1].subnet);
        assert!(eventually(10.0, || daemons[1].output().contains(&leased)), "{}", daemons[1].output());
        // After: the same subnet file, and the ping answers.
        assert_eq!(subnet_env(&sandbox, 2).as_ref(), Some(&envs[1]), "subnet file after restart {restart}");
        let restarted = replies();
        assert!(eventually(10.0, || replies() >= restarted + 10), "{}", pinger.output());
    }
    assert!(eventually(20.0, || exited(&pinger)), "{}", pinger.output());
    let output = pinger.output();
    let status = pinger.stop(Signal::SIGKILL);
    assert_eq!(ping_summary(&output), Some((150, 150)), "{status}: lost pings across the restarts:\n{output}");
    assert!(leases(&sandbox, DIR_STORE).contains(&lease2), "{:?}", leases(&sandbox, DIR_STORE));
    assert!(converged(&sandbox, 1), "{}", describe(&sandbox, 1));
    let node2_mac = vtep_mac(2, 1);
    let removed: Vec<String> = monitor
        .deleted()
        .into_iter()
        .filter(|l| l.contains(&format!("{} ", envs[1].base)) || l.contains(&node2_mac))
        .collect();
    assert!(
        removed.is_empty(),
        "node1 removed node2's entries while node2's daemon restarted:\n{}\n--- node1's kernel events\n{}{}",
        removed.join("\n"),
        monitor.output(),
        logs(&[&daemons[0], &daemons[1]])
    );
}

/// etcd killed: the routes stay over more than two resync periods (and past the TTL),
/// traffic flows, the daemons say they retry; etcd back on the same data: every node
/// still holds its subnet (the same leases, renewed past another TTL) and pings pass.
#[test]
fn routes_stay_while_etcd_is_down_and_every_node_keeps_its_subnet_when_it_is_back() {
    let sandbox = Sandbox::new();
    let mut store = etcd(&sandbox);
    lab_with_host(&sandbox);
    set_network(&sandbox, ETCD_STORE, &[]);
    let daemons = daemons(&sandbox, ETCD_STORE, &[]);
    let all: Vec<&Process> = daemons.iter().collect();
    let envs = wait_converged(&sandbox, 1, &all);
    let addresses = containers(&sandbox);
    assert!(failed_pings(&sandbox, &addresses, 10.0).is_empty(), "{}", logs(&all));
    let wanted_leases = sorted((1..=3u8).zip(&envs).map(|(n, env)| lease_line(env, n, 1)).collect());

    store.stop(Signal::SIGKILL);
    // --resync 1 and --ttl 3: watched for 4.5 s, nothing moves.
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs_f64(4.5) {
        assert!(converged(&sandbox, 1), "etcd down {:?}:\n{}{}", start.elapsed(), describe(&sandbox, 1), logs(&all));
    }
    assert_eq!(subnet_envs(&sandbox).as_ref(), Some(&envs), "subnet files while etcd is down");
    let failed = failed_pings(&sandbox, &addresses, 5.0);
    assert!(failed.is_empty(), "no answer while etcd is down: {failed:?}");
    let retrying = || daemons.iter().all(|d| d.output().contains("retrying"));
    assert!(eventually(10.0, retrying), "{}", logs(&all));

    let _store = etcd(&sandbox);
    let back = || leases(&sandbox, ETCD_STORE) == wanted_leases;
    assert!(eventually(20.0, back), "{:?}\n{}", leases(&sandbox, ETCD_STORE), logs(&all));
    // The leases are renewed again: they outlive another two TTLs.
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(7) {
        assert_eq!(leases(&sandbox, ETCD_STORE), wanted_leases, "after {:?}\n{}", start.elapsed(), logs(&all));
        assert_eq!(subnet_envs(&sandbox).as_ref(), Some(&envs), "subnet files after etcd is back");
    }
    assert!(converged(&sandbox, 1), "{}", describe(&sandbox, 1));
    let failed = failed_pings(&sandbox, &addresses, 10.0);
    assert!(failed.is_empty(), "no answer after etcd is back: {failed:?}\n{}", logs(&all));
}

/// `network set --vni 2`: every node moves to flannel.2 (flannel.1 gone), announces
/// VNI 2 and its new VTEP MAC on the same subnet, routes via flannel.2, and containers
/// keep reaching each other.
#[test]
fn a_vni_change_moves_every_node_to_the_new_device() {
    let sandbox = Sandbox::new();
    lab(&sandbox);
    set_network(&sandbox, DIR_STORE, &[]);
    let daemons = daemons(&sandbox, DIR_STORE, &[]);
    let all: Vec<&Process> = daemons.iter().collect();
    let envs = wait_converged(&sandbox, 1, &all);
    let addresses = containers(&sandbox);
    assert!(failed_pings(&sandbox, &addresses, 10.0).is_empty(), "{}", logs(&all));

    set_network(&sandbox, DIR_STORE, &["--vni", "2"]);
    let no_flannel1 =
        || (1..=3).all(|n| !sandbox.run("ip", &["-n", &node(n), "link", "show", "flannel.1"]).status.success());
    assert!(eventually(30.0, || converged(&sandbox, 2) && no_flannel1()), "{}{}", describe(&sandbox, 2), logs(&all));
    assert_eq!(subnet_envs(&sandbox).as_ref(), Some(&envs), "the subnets changed with the VNI");
    assert_eq!(
        leases(&sandbox, DIR_STORE),
        sorted((1..=3u8).zip(&envs).map(|(n, env)| lease_line(env, n, 2)).collect())
    );
    for n in 1..=3u8 {
        let details = sandbox.ok("ip", &["-n", &node(n), "-d", "link", "show", "flannel.2"]);
        for wanted in [
            &format!("link/ether {} ", vtep_mac(n, 2)),
            &format!("vxlan id 2 local {} dev eth0 ", public_ip(n)),
            "alias netlab:vxlan-agent-node",
            " mtu 1450 ",
        ] {
            assert!(details.contains(wanted), "node{n}: no `{wanted}` in\n{details}");
        }
        // The daemon's routes are all on flannel.2.
        let ours = sandbox.ok("ip", &["-n", &node(n), "route", "show", "proto", "78"]);
        assert_eq!(ours.lines().filter(|l| l.contains(" dev flannel.2 ")).count(), 2, "node{n}: {ours}");
        assert_eq!(ours.lines().count(), 2, "node{n}: {ours}");
    }
    let failed = failed_pings(&sandbox, &addresses, 10.0);
    assert!(failed.is_empty(), "no answer after the VNI change: {failed:?}\n{}", logs(&all));
}

/// A lease of subnet `base`/24 written by hand into the folder store, atomically (a
/// temporary file of the same tmpfs renamed over the key).
fn write_fake_lease(sandbox: &Sandbox, base: &str, mac: &str) {
    let json =
        format!(r#"{{"PublicIP":"192.168.104.99","BackendType":"vxlan","BackendData":{{"VNI":1,"VtepMAC":"{mac}"}}}}"#);
    let script = format!(
        "printf '%s\\n' '{json}' > /run/netlab/.fake-lease && mv /run/netlab/.fake-lease {STORE_FOLDER}/subnets/{base}-24"
    );
    sandbox.ok("sh", &["-c", &script]);
}

fn fake_entries(base: &str, mac: &str) -> Vec<String> {
    vec![
        format!("route {base}/24 via {base} proto 78 onlink"),
        format!("neigh {base} lladdr {mac} PERMANENT proto 78"),
        format!("fdb {mac} dst 192.168.104.99 self extern_learn permanent"),
    ]
}

/// The kernel follows the store: a lease written by hand appears, its new VTEP MAC
/// replaces the old neighbour and FDB entry, its deletion removes all three. Entries
/// made by hand (a route elsewhere, a route, neighbour and FDB entry on flannel.1) are
/// never touched; the daemon's own entries removed by hand come back at a resync.
#[test]
fn the_kernel_follows_the_store_and_only_the_daemons_own_entries_are_touched() {
    let sandbox = Sandbox::new();
    lab(&sandbox);
    set_network(&sandbox, DIR_STORE, &[]);
    let daemon1 = daemon(&sandbox, 1, DIR_STORE, &[]);
    let daemon2 = daemon(&sandbox, 2, DIR_STORE, &[]);
    let both = [&daemon1, &daemon2];
    let leased = || subnet_env(&sandbox, 1).is_some() && subnet_env(&sandbox, 2).is_some();
    assert!(eventually(20.0, leased), "{}", logs(&both));
    let (env1, env2) = (subnet_env(&sandbox, 1).unwrap(), subnet_env(&sandbox, 2).unwrap());
    let own = sorted(entries_for(&env2, 2, 1));
    let node1 = || entries(&sandbox, 1, "flannel.1");
    assert!(eventually(20.0, || node1() == own), "{:?}\n{}", node1(), logs(&both));
    // Subnets of the network no node took (the nodes' are random): 10.244.250.0 for
    // the lease by hand, the next ones for entries by hand.
    let mut free = [250u8, 251, 252, 253, 249, 248, 247, 246]
        .into_iter()
        .map(|x| format!("10.244.{x}.0"))
        .filter(|base| *base != env1.base && *base != env2.base);
    let (fake, neighbour, elsewhere, on_device) =
        (free.next().unwrap(), free.next().unwrap(), free.next().unwrap(), free.next().unwrap());

    write_fake_lease(&sandbox, &fake, "0e:00:00:00:00:99");
    let with_fake = |mac: &str| sorted([own.clone(), fake_entries(&fake, mac)].concat());
    assert!(eventually(15.0, || node1() == with_fake("0e:00:00:00:00:99")), "{:?}\n{}", node1(), logs(&both));
    // A new VTEP MAC: neighbour and FDB entry follow, the old FDB entry goes.
    write_fake_lease(&sandbox, &fake, "0e:00:00:00:00:98");
    assert!(eventually(15.0, || node1() == with_fake("0e:00:00:00:00:98")), "{:?}\n{}", node1(), logs(&both));
    sandbox.ok("rm", &[&format!("{STORE_FOLDER}/subnets/{fake}-24")]);
    assert!(eventually(15.0, || node1() == own), "{:?}\n{}", node1(), logs(&both));

    // Entries of others, by hand: a route to another place, and on flannel.1 a route,
    // a neighbour and an FDB entry.
    let ip = |args: &[&str]| sandbox.ok("ip", &[&["-n", "node1"][..], args].concat());
    ip(&["route", "add", &format!("{elsewhere}/24"), "via", "192.168.104.3", "dev", "eth0"]);
    ip(&["route", "add", &format!("{on_device}/24"), "via", &on_device, "dev", "flannel.1", "onlink"]);
    ip(&["neigh", "add", &neighbour, "lladdr", "0e:00:00:00:00:51", "dev", "flannel.1", "nud", "permanent"]);
    let fdb = ["fdb", "add", "0e:00:00:00:00:51", "dev", "flannel.1", "dst", "192.168.104.51", "self", "permanent"];
    sandbox.ok("bridge", &[&["-n", "node1"][..], &fdb].concat());
    let route_elsewhere = || ip(&["route", "show", &format!("{elsewhere}/24")]);
    let elsewhere_before = route_elsewhere();
    assert!(elsewhere_before.contains("via 192.168.104.3 dev eth0"), "{elsewhere_before}");
    let by_hand = node1();
    assert_eq!(by_hand.len(), own.len() + 3, "{by_hand:?}");

    // The daemon's own route and neighbour removed by hand: each back at a resync
    // (--resync 1), the entries by hand still there.
    ip(&["route", "del", &env2.subnet]);
    assert!(eventually(10.0, || node1() == by_hand), "{:?}\n{}", node1(), daemon1.output());
    ip(&["neigh", "del", &env2.base, "dev", "flannel.1"]);
    assert!(eventually(10.0, || node1() == by_hand), "{:?}\n{}", node1(), daemon1.output());
    assert_eq!(route_elsewhere(), elsewhere_before);
}

/// A link named flannel.1 that the daemon did not make (a VXLAN device made by hand
/// before it starts): the daemon refuses to touch it, and serves no subnet file.
#[test]
fn a_device_of_the_same_name_made_by_hand_is_refused() {
    let sandbox = Sandbox::new();
    lab(&sandbox);
    set_network(&sandbox, DIR_STORE, &[]);
    let ip = |args: &[&str]| sandbox.ok("ip", &[&["-n", "node1"][..], args].concat());
    ip(&["link", "add", "flannel.1", "type", "vxlan", "id", "1", "dev", "eth0", "dstport", "8472"]);
    let made = || (ip(&["-d", "link", "show", "flannel.1"]), ip(&["addr", "show", "flannel.1"]));
    let before = made();
    let mut daemon1 = daemon(&sandbox, 1, DIR_STORE, &[]);
    assert!(eventually(15.0, || daemon1.output().contains("refused")), "{}", daemon1.output());
    // Watched over three resync periods.
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(3) {
        assert_eq!(made(), before, "flannel.1 made by hand was changed\n{}", daemon1.output());
    }
    assert_eq!(ip(&["route", "show", "dev", "flannel.1"]), "", "routes on flannel.1 made by hand");
    assert_eq!(subnet_text(&sandbox, 1), None, "a subnet file without a device to serve it");
    if exited(&daemon1) {
        let status = daemon1.stop(Signal::SIGKILL);
        assert!(!status.success(), "the daemon exited 0:\n{}", daemon1.output());
    }
}

/// A reader in a tight loop sees the subnet file either missing or complete (four
/// lines, each key and value whole) through the daemon's start, a restart that
/// rewrites it (--ip-masq), a VNI change and a subnet length change.
#[test]
fn the_subnet_file_is_never_seen_half_written() {
    let sandbox = Sandbox::new();
    lab(&sandbox);
    set_network(&sandbox, DIR_STORE, &[]);
    let view = View::new(&sandbox);
    let path = view.path(&subnet_file(1));
    let stop = AtomicBool::new(false);
    #[derive(Default, Debug)]
    struct Seen {
        missing: u64,
        complete: u64,
        contents: BTreeSet<String>,
        bad: Vec<String>,
    }
    let seen = Mutex::new(Seen::default());
    // Each version of the file the reader saw complete, at least once.
    let read = |content: Option<String>| content.is_some_and(|c| seen.lock().unwrap().contents.contains(&c));
    std::thread::scope(|scope| {
        scope.spawn(|| {
            while !stop.load(Ordering::Relaxed) {
                let result = std::fs::read_to_string(&path);
                let mut seen = seen.lock().unwrap();
                match result {
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => seen.missing += 1,
                    Err(e) => seen.bad.push(format!("read error: {e}")),
                    Ok(content) if SubnetEnv::parse(&content).is_some() => {
                        seen.complete += 1;
                        seen.contents.insert(content);
                    }
                    Ok(content) => seen.bad.push(content),
                }
            }
        });
        let _stop = StopOnDrop(&stop);
        // The reader sees the file missing before the daemon starts.
        assert!(eventually(10.0, || seen.lock().unwrap().missing > 0), "{}", path.display());
        let mut daemon1 = daemon(&sandbox, 1, DIR_STORE, &[]);
        assert!(eventually(20.0, || subnet_env(&sandbox, 1).is_some()), "{}", daemon1.output());
        let first = subnet_env(&sandbox, 1).unwrap();
        assert!(eventually(10.0, || read(subnet_text(&sandbox, 1))), "{:?}", seen.lock().unwrap());
        // A restart that writes it again (FLANNEL_IPMASQ=true).
        daemon1.stop(Signal::SIGTERM);
        daemon1 = daemon(&sandbox, 1, DIR_STORE, &["--ip-masq"]);
        let masq = || subnet_env(&sandbox, 1) == Some(SubnetEnv { ip_masq: true, ..first.clone() });
        assert!(eventually(20.0, masq), "{:?}\n{}", subnet_text(&sandbox, 1), daemon1.output());
        assert!(eventually(10.0, || read(subnet_text(&sandbox, 1))), "{:?}", seen.lock().unwrap());
        // A VNI change (a new lease; the file's content stays), then a subnet length
        // change (a new subnet, the file written again).
        set_network(&sandbox, DIR_STORE, &["--vni", "2"]);
        let vni2 = || leases(&sandbox, DIR_STORE).iter().any(|l| l.contains("public-ip 192.168.104.2 vni 2 "));
        assert!(eventually(20.0, vni2), "{:?}\n{}", leases(&sandbox, DIR_STORE), daemon1.output());
        assert!(eventually(10.0, || subnet_env(&sandbox, 1).is_some()), "{}", daemon1.output());
        set_network(&sandbox, DIR_STORE, &["--vni", "2", "--subnet-len", "25"]);
        let shorter = || subnet_env(&sandbox, 1).is_some_and(|env| env.length == 25);
        assert!(eventually(20.0, shorter), "{:?}\n{}", subnet_text(&sandbox, 1), daemon1.output());
        assert!(eventually(10.0, || read(subnet_text(&sandbox, 1))), "{:?}", seen.lock().unwrap());
    });
    let seen = seen.into_inner().unwrap();
    assert!(seen.bad.is_empty(), "{} incomplete reads, the first: {:?}", seen.bad.len(), seen.bad.first());
    assert_eq!(seen.contents.len(), 3, "{:?}", seen.contents);
    assert!(seen.complete > 100, "{} complete reads, {} missing", seen.complete, seen.missing);
}

/// Before `network set` the daemon waits (no lease, no subnet file, no device); once
/// the network is configured it leases a subnet and writes the file.
#[test]
fn a_daemon_waits_for_the_network_to_be_configured() {
    let sandbox = Sandbox::new();
    lab(&sandbox);
    let mut daemon1 = daemon(&sandbox, 1, DIR_STORE, &[]);
    assert!(eventually(15.0, || daemon1.output().contains("waiting")), "{}", daemon1.output());
    assert!(daemon1.running(), "{}", daemon1.output());
    assert_eq!(subnet_text(&sandbox, 1), None);
    assert!(!sandbox.run("ip", &["-n", "node1", "link", "show", "flannel.1"]).status.success());
    assert_eq!(leases(&sandbox, DIR_STORE), Vec::<String>::new());

    set_network(&sandbox, DIR_STORE, &[]);
    assert!(eventually(20.0, || subnet_env(&sandbox, 1).is_some()), "{}", daemon1.output());
    let env = subnet_env(&sandbox, 1).unwrap();
    assert_eq!((env.network.as_str(), env.mtu), (NETWORK, 1450));
    assert_eq!(leases(&sandbox, DIR_STORE), vec![lease_line(&env, 1, 1)]);
    let address = sandbox.ok("ip", &["-n", "node1", "-4", "-o", "addr", "show", "dev", "flannel.1"]);
    assert!(address.contains(&format!("inet {}/32 ", env.base)), "{address}");
}
