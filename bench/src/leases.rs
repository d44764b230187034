//! The flannel-like mode's figures (`bench/run leases`):
//! - 50 simulated nodes join through etcd, each running `vxlan-agent node`: from the
//!   last join (its lease seen by a watcher of etcd) to every node routing to every
//!   other, per node (p50/p99).
//! - One node following 1,000 remote leases: from its start to all 3,000 entries
//!   (route, neighbour, FDB entry per lease) in the kernel, its peak memory and
//!   overruns; beside it, the same entries by `ip -batch` and `bridge -batch`, the
//!   kernel's floor.
//!
//! Routes are counted from the kernel's own notifications, by a watcher subscribed in
//! each node's namespace, so the daemons are measured from outside.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::process::Command;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use netlab_store::leases::{LeaseAttrs, NetworkConfig, Subnet};
use netlab_store::{AnyStore, Change, Store, StoreUrl};
use netns::packet_core::NetlinkPayload;
use netns::packet_route::RouteNetlinkMessage;
use netns::{Netlink, Netns};
use serde_json::{json, Value};

use crate::overlay::{spawn, wait, Daemon, Tools};
use crate::scale::peak_rss_mb;

const STORE: &str = "etcd://192.168.104.1:2379";
const PROTOCOL: u8 = 78;

/// `nodes` hosts on one switch, and this namespace on it as 192.168.104.1 (etcd).
fn topology(nodes: u32) -> String {
    let mut text = String::from(
        "name: leases\nhost:\n  interfaces:\n    lab0: {addresses: [192.168.104.1/24]}\nnodes:\n  lan:\n    bridges:\n      br0: {}\n    interfaces:\n      h0: {bridge: br0}\n",
    );
    for i in 1..=nodes {
        text.push_str(&format!("      h{i}: {{bridge: br0}}\n"));
    }
    for i in 1..=nodes {
        text.push_str(&format!("  n{i}:\n    interfaces:\n      eth0: {{addresses: [{}/24]}}\n", address(i)));
    }
    text.push_str("links:\n  - endpoints: [host:lab0, lan:h0]\n");
    for i in 1..=nodes {
        text.push_str(&format!("  - endpoints: [n{i}:eth0, lan:h{i}]\n"));
    }
    text
}

fn address(node: u32) -> Ipv4Addr {
    Ipv4Addr::new(192, 168, 104, 1 + node as u8)
}

fn set_network(tools: &Tools, network: &str) -> Result<()> {
    let output =
        Command::new(&tools.agent).args(["network", "set", "--store", STORE, "--network", network]).output()?;
    if !output.status.success() {
        bail!("network set: {}", String::from_utf8_lossy(&output.stderr));
    }
    Ok(())
}

fn node_daemon(tools: &Tools, node: u32) -> Result<Daemon> {
    let ns = format!("n{node}");
    let subnet_file = tools.work.join(format!("{ns}.env"));
    let status_file = tools.work.join(format!("{ns}.status.json"));
    let args = [
        "node",
        "--store",
        STORE,
        "--public-ip",
        &address(node).to_string(),
        "--subnet-file",
        subnet_file.to_str().expect("utf-8 path"),
        "--status-file",
        status_file.to_str().expect("utf-8 path"),
    ];
    spawn(Some(&ns), &tools.agent, &args, &tools.work.join(format!("node-{ns}.log")))
}

/// Waits, in namespace `ns`, until the daemon's routes number `wanted`; the moment
/// it saw them, from the kernel's notifications.
fn route_watcher(ns: String, wanted: usize, limit: Duration) -> Result<mpsc::Receiver<Result<Instant>>> {
    const RTNLGRP_IPV4_ROUTE: u32 = 7;
    let (ready, is_ready) = mpsc::channel();
    let (done, result) = mpsc::channel();
    std::thread::spawn(move || {
        let outcome = netns::thread::in_one(Netns::Named(ns.clone()), move |_| {
            let socket = Netlink::open_events_here(&[RTNLGRP_IPV4_ROUTE], 8 << 20)?;
            let _ = ready.send(());
            let mut routes = BTreeSet::new();
            let mut buffer = vec![0u8; 64 * 1024];
            let deadline = Instant::now() + limit;
            while routes.len() < wanted {
                if Instant::now() > deadline {
                    return Err(netns::Error::other("watch routes", format!("{} of {wanted} routes", routes.len())));
                }
                let mut poll = libc::pollfd { fd: socket.as_raw_fd(), events: libc::POLLIN, revents: 0 };
                // SAFETY: one pollfd, owned here.
                unsafe { libc::poll(&mut poll, 1, 100) };
                while let Ok(length) = socket.recv(&mut &mut buffer[..], 0) {
                    for message in netns::blocking::split(&buffer[..length], "read routes").unwrap_or_default() {
                        match message.payload {
                            NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewRoute(route))
                                if u8::from(route.header.protocol) == PROTOCOL =>
                            {
                                routes.insert(format!("{:?}", route.attributes));
                            }
                            NetlinkPayload::InnerMessage(RouteNetlinkMessage::DelRoute(route))
                                if u8::from(route.header.protocol) == PROTOCOL =>
                            {
                                routes.remove(&format!("{:?}", route.attributes));
                            }
                            _ => {}
                        }
                    }
                }
            }
            Ok(Instant::now())
        });
        let _ = done.send(outcome.map_err(|e| anyhow::anyhow!("{ns}: {e}")));
    });
    is_ready.recv_timeout(Duration::from_secs(10)).context("route watcher did not start")?;
    Ok(result)
}

fn percentile(values: &mut [f64], q: f64) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(((values.len().max(1) - 1) as f64 * q).round() as usize).copied().unwrap_or(f64::NAN)
}

/// The moment the `count`-th lease appeared in the store, as a watcher of etcd saw it.
fn last_join(count: usize, runtime: &tokio::runtime::Runtime) -> Result<mpsc::Receiver<Instant>> {
    let client = AnyStore::open(
        &StoreUrl::parse_with_default(STORE, netlab_store::leases::DEFAULT_PREFIX)?,
        None,
        Duration::ZERO,
    )?;
    let (done, result) = mpsc::channel();
    let (changes, mut incoming) = tokio::sync::mpsc::channel(1024);
    runtime.spawn(async move { netlab_store::follow(&client, &[netlab_store::leases::SUBNETS], changes).await });
    runtime.spawn(async move {
        let mut seen = BTreeSet::new();
        while let Some(change) = incoming.recv().await {
            if let Change::Put(key, _) = change {
                seen.insert(key);
                if seen.len() == count {
                    let _ = done.send(Instant::now());
                    return;
                }
            }
        }
    });
    Ok(result)
}

fn join(tools: &Tools, nodes: u32, runtime: &tokio::runtime::Runtime) -> Result<Value> {
    let watchers: Vec<_> = (1..=nodes)
        .map(|i| route_watcher(format!("n{i}"), nodes as usize - 1, Duration::from_secs(60)))
        .collect::<Result<_>>()?;
    let joined = last_join(nodes as usize, runtime)?;
    let started = Instant::now();
    let daemons: Vec<Daemon> = (1..=nodes).map(|i| node_daemon(tools, i)).collect::<Result<_>>()?;
    let last = joined.recv_timeout(Duration::from_secs(60)).context("not every node took a lease")?;
    let mut after_ms = Vec::new();
    for watcher in watchers {
        let routed = watcher.recv_timeout(Duration::from_secs(70)).context("route watcher")??;
        after_ms.push(routed.saturating_duration_since(last).as_secs_f64() * 1000.0);
    }
    let overruns = overruns(tools, nodes);
    drop(daemons);
    Ok(json!({
        "nodes": nodes,
        "all_joined_after_s": last.duration_since(started).as_secs_f64(),
        "routed_after_last_join_p50_ms": percentile(&mut after_ms, 0.5),
        "routed_after_last_join_p99_ms": percentile(&mut after_ms, 0.99),
        "overruns": overruns,
    }))
}

fn overruns(tools: &Tools, nodes: u32) -> u64 {
    (1..=nodes)
        .filter_map(|i| std::fs::read_to_string(tools.work.join(format!("n{i}.status.json"))).ok())
        .filter_map(|text| serde_json::from_str::<Value>(&text).ok())
        .filter_map(|status| status["counters"]["overruns"].as_u64())
        .sum()
}

/// Remote lease `n`: subnet 10.(n/256+1).(n%256).0/24 of 10.0.0.0/8, a VTEP outside
/// the lab (never sent to: no traffic flows in this case).
fn remote(n: u32) -> (Subnet, LeaseAttrs) {
    let subnet = Subnet::new(Ipv4Addr::new(10, (n / 256 + 1) as u8, (n % 256) as u8, 0), 24).expect("a /24");
    let public_ip = Ipv4Addr::from(0xc612_0000 + n); // 198.18.0.0/15, the benchmarking range
    (
        subnet,
        LeaseAttrs {
            public_ip,
            vni: 1,
            vtep_mac: format!("0e:01:00:00:{:02x}:{:02x}", n >> 8, n & 255).parse().expect("mac"),
        },
    )
}

/// The same 3,000 entries by `ip -batch` and `bridge -batch` on a VXLAN device of n2.
fn ip_batch(leases: u32) -> Result<f64> {
    let ip = |args: &[&str]| Command::new("ip").args(["-n", "n2"]).args(args).status();
    ip(&[
        "link",
        "add",
        "vxb",
        "type",
        "vxlan",
        "id",
        "99",
        "dstport",
        "8472",
        "local",
        "192.168.104.3",
        "nolearning",
    ])?;
    ip(&["link", "set", "vxb", "up"])?;
    let (mut routing, mut fdb) = (String::new(), String::new());
    for n in 0..leases {
        let (subnet, lease) = remote(n);
        let gateway = subnet.network();
        routing.push_str(&format!("neigh replace {gateway} lladdr {} dev vxb nud permanent\n", lease.vtep_mac));
        routing.push_str(&format!("route replace {subnet} via {gateway} dev vxb onlink\n"));
        fdb.push_str(&format!("fdb replace {} dev vxb self permanent dst {}\n", lease.vtep_mac, lease.public_ip));
    }
    crate::scale::batches("n2", [("ip", routing), ("bridge", fdb)])
}

fn follow_many(tools: &Tools, leases: u32, runtime: &tokio::runtime::Runtime) -> Result<Value> {
    let client = AnyStore::open(
        &StoreUrl::parse_with_default(STORE, netlab_store::leases::DEFAULT_PREFIX)?,
        None,
        Duration::ZERO,
    )?;
    let entries: Vec<_> = (0..leases)
        .map(|n| {
            let (subnet, lease) = remote(n);
            (subnet.key(), lease.to_value(&subnet.key()))
        })
        .collect();
    runtime.block_on(client.put_many(&entries))?;
    let watcher = route_watcher("n1".into(), leases as usize, Duration::from_secs(120))?;
    let started = Instant::now();
    let daemon = node_daemon(tools, 1)?;
    let routed = watcher.recv_timeout(Duration::from_secs(130)).context("route watcher")??;
    let converge_s = routed.duration_since(started).as_secs_f64();
    // Neighbours and FDB entries go before the routes that use them: all there now.
    let installed = netns::thread::in_one(Netns::Named("n1".into()), |_| {
        let socket = Netlink::open_socket_here()?;
        let routes = netns::blocking::routes(&socket)?.iter().filter(|r| r.protocol == PROTOCOL).count();
        let neighbours = netns::blocking::neighbours(&socket)?.iter().filter(|n| n.protocol == PROTOCOL).count();
        let fdb = netns::blocking::fdb(&socket)?.iter().filter(|f| f.extern_learned).count();
        Ok(routes + neighbours + fdb)
    })?;
    wait(Duration::from_secs(5), || Ok(tools.work.join("n1.status.json").exists()))?;
    let rss = peak_rss_mb(daemon.0.id());
    let overruns = overruns(tools, 1);
    drop(daemon);
    let batch_s = ip_batch(leases)?;
    Ok(json!({
        "leases": leases,
        "converge_s": converge_s,
        "ip_batch_s": batch_s,
        "lost": (3 * leases as usize).saturating_sub(installed),
        "peak_rss_mb": rss,
        "overruns": overruns,
    }))
}

pub fn leases(tools: &Tools, nodes: u32, remote_leases: u32) -> Result<Value> {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build()?;
    let file: PathBuf = tools.work.join("leases.yaml");
    std::fs::write(&file, topology(nodes))?;
    tools.netlab("apply", &file)?;
    let outcome = (|| {
        let _etcd = tools.etcd()?;
        set_network(tools, "10.244.0.0/16")?;
        let joined = join(tools, nodes, &runtime)?;
        drop(_etcd);
        let _etcd = tools.etcd()?;
        let network: Subnet = "10.0.0.0/8".parse().map_err(anyhow::Error::msg)?;
        let config = NetworkConfig::new(network, Some(24), None, None).map_err(anyhow::Error::msg)?;
        runtime.block_on(
            AnyStore::open(
                &StoreUrl::parse_with_default(STORE, netlab_store::leases::DEFAULT_PREFIX)?,
                None,
                Duration::ZERO,
            )?
            .put(&netlab_store::leases::config_key(), &config.to_value(), None),
        )?;
        let many = follow_many(tools, remote_leases, &runtime)?;
        Ok::<_, anyhow::Error>((joined, many))
    })();
    tools.netlab("destroy", &file)?;
    let (joined, many) = outcome?;
    print(&joined, &many);
    Ok(json!({"case": "leases", "join": joined, "follow": many}))
}

fn print(joined: &Value, many: &Value) {
    let f = |v: &Value, k: &str| v[k].as_f64().unwrap_or(f64::NAN);
    let p99 = f(joined, "routed_after_last_join_p99_ms");
    println!("leases: {} nodes join through etcd (vxlan-agent node each)", joined["nodes"]);
    println!("  every node routed to every other, after the last join: p50 {:.1} ms  p99 {p99:.1} ms  (target p99 <= 200 ms: {})",
        f(joined, "routed_after_last_join_p50_ms"), if p99 <= 200.0 { "met" } else { "NOT met" });
    println!("  all joined {:.2} s after the start; overruns {}", f(joined, "all_joined_after_s"), joined["overruns"]);
    let converge = f(many, "converge_s");
    let rss = f(many, "peak_rss_mb");
    println!("one node following {} remote leases:", many["leases"]);
    println!(
        "  converged in {converge:.3} s (target <= 1 s: {}); ip/bridge -batch of the same entries {:.3} s",
        if converge <= 1.0 { "met" } else { "NOT met" },
        f(many, "ip_batch_s")
    );
    println!(
        "  peak RSS {rss:.1} MB (target <= 30 MB: {}); overruns {}; entries lost {}",
        if rss <= 30.0 { "met" } else { "NOT met" },
        many["overruns"],
        many["lost"]
    );
}
