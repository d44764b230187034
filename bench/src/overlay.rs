//! The dynamic overlay's figures: cluster-3 with a vxlan-agent per host.
//! - `overlay`: publication to installed on every other host (dir vs etcd), and the
//!   first pings of a fresh pair, proactive vs miss (the tutorial's behaviour).
//! - `agent`: miss notification to entry installed, seen from outside the agent, and a
//!   burst of 20,000 keys: time to converge, entries lost, the agent's peak memory.
//!
//! Times come from the kernel's own notifications, read by a watcher subscribed in
//! each overlay namespace, so the agent is measured from outside.

use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use netns::packet_core::NetlinkPayload;
use netns::packet_route::neighbour::{NeighbourAttribute, NeighbourFlags};
use netns::packet_route::{AddressFamily, RouteNetlinkMessage};
use netns::{Netlink, Netns};
use serde_json::{json, Value};

const CLUSTER: &str = include_str!("../../topologies/cluster-3.yaml");
const DIR_STORE: &str = "dir:/run/netlab/stores/cluster-3";
pub(crate) const ETCD_STORE: &str = "etcd://192.168.104.1:2379/cluster-3";

/// A process killed when dropped.
pub(crate) struct Daemon(pub Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub(crate) fn spawn(ns: Option<&str>, program: &Path, args: &[&str], log: &Path) -> Result<Daemon> {
    let mut command = match ns {
        Some(ns) => {
            let mut c = Command::new("ip");
            c.args(["netns", "exec", ns]).arg(program);
            c
        }
        None => Command::new(program),
    };
    let out = std::fs::File::create(log)?;
    let child = command.args(args).stdin(Stdio::null()).stdout(out.try_clone()?).stderr(out).spawn()?;
    Ok(Daemon(child))
}

/// A kernel change seen by a watcher.
#[derive(Debug, PartialEq, Eq)]
enum Seen {
    Miss(IpAddr),
    Neighbour(IpAddr),
    Fdb([u8; 6]),
}

/// Notifications of one overlay namespace, read with a timeout.
struct Watcher {
    socket: netlink_sys::Socket,
    buffer: Vec<u8>,
}

impl Watcher {
    fn open(ns: &str) -> Result<Watcher> {
        let socket =
            netns::thread::in_one(Netns::Named(ns.to_string()), |_| Netlink::open_events_here(&[3], 64 << 20))?;
        socket.set_non_blocking(false)?;
        let timeout = libc::timeval { tv_sec: 0, tv_usec: 50_000 };
        // SAFETY: setsockopt on our socket with a timeval and its size.
        unsafe {
            libc::setsockopt(
                socket.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVTIMEO,
                (&timeout as *const libc::timeval).cast(),
                std::mem::size_of::<libc::timeval>() as libc::socklen_t,
            );
        }
        Ok(Watcher { socket, buffer: vec![0; 64 * 1024] })
    }

    /// What arrived within 50 ms, each with when it was read.
    fn next(&mut self) -> Result<Vec<(Instant, Seen)>> {
        let length = match self.socket.recv(&mut &mut self.buffer[..], 0) {
            Ok(length) => length,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock || e.kind() == std::io::ErrorKind::TimedOut => {
                return Ok(Vec::new())
            }
            Err(e) => bail!("watch: {e}"),
        };
        let now = Instant::now();
        let mut seen = Vec::new();
        for message in netns::blocking::split(&self.buffer[..length], "watch")? {
            let NetlinkPayload::InnerMessage(inner) = message.payload else { continue };
            let (get, message) = match inner {
                RouteNetlinkMessage::GetNeighbour(m) => (true, m),
                RouteNetlinkMessage::NewNeighbour(m) => (false, m),
                _ => continue,
            };
            let mut ip = None;
            let mut mac = None;
            let mut ours = false;
            for attribute in &message.attributes {
                match attribute {
                    NeighbourAttribute::Destination(address) => ip = netns::neighbour::ip_of(address),
                    NeighbourAttribute::LinkLayerAddress(b) => mac = <[u8; 6]>::try_from(b.as_slice()).ok(),
                    NeighbourAttribute::Protocol(p) => ours = u8::from(*p) == vxlan_agent::PROTOCOL,
                    _ => {}
                }
            }
            let bridge = message.header.family == AddressFamily::Bridge;
            match (get, bridge, ip, mac) {
                (true, _, Some(ip), None) => seen.push((now, Seen::Miss(ip))),
                (false, false, Some(ip), _) if ours => seen.push((now, Seen::Neighbour(ip))),
                (false, true, _, Some(mac)) if message.header.flags.contains(NeighbourFlags::ExtLearned) => {
                    seen.push((now, Seen::Fdb(mac)))
                }
                _ => {}
            }
        }
        Ok(seen)
    }

    /// Read until `wanted` all showed up; when the last did.
    fn until(&mut self, mut wanted: Vec<Seen>, limit: Duration) -> Result<Instant> {
        let deadline = Instant::now() + limit;
        let mut last = Instant::now();
        while !wanted.is_empty() {
            if Instant::now() > deadline {
                bail!("not seen within {limit:?}: {wanted:?}");
            }
            for (at, seen) in self.next()? {
                if let Some(i) = wanted.iter().position(|w| *w == seen) {
                    wanted.remove(i);
                    last = at;
                }
            }
        }
        Ok(last)
    }
}

pub struct Tools {
    pub netlab: PathBuf,
    pub agent: PathBuf,
    pub work: PathBuf,
}

impl Tools {
    pub(crate) fn netlab(&self, verb: &str, file: &Path) -> Result<()> {
        let output = Command::new(&self.netlab).arg(verb).arg(file).output()?;
        if !output.status.success() {
            bail!("netlab {verb}: {}", String::from_utf8_lossy(&output.stderr));
        }
        Ok(())
    }

    fn agents(&self, store: &str, mode: &str, tag: &str) -> Result<Vec<Daemon>> {
        (1..=3)
            .map(|i| {
                let (host, ov) = (format!("host{i}"), format!("ov{i}"));
                let log = self.work.join(format!("agent-{tag}-{i}.log"));
                let args = ["run", "--netns", &ov, "--device", "vxlan1", "--store", store, "--mode", mode];
                spawn(Some(&host), &self.agent, &args, &log)
            })
            .collect()
    }

    pub(crate) fn etcd(&self) -> Result<Daemon> {
        let data = self.work.join("etcd");
        let _ = std::fs::remove_dir_all(&data);
        let log = self.work.join("etcd.log");
        let daemon = spawn(
            None,
            Path::new("etcd"),
            &[
                "--data-dir",
                data.to_str().unwrap(),
                "--listen-client-urls",
                "http://0.0.0.0:2379",
                "--advertise-client-urls",
                "http://192.168.104.1:2379",
                "--listen-peer-urls",
                "http://127.0.0.1:2380",
                "--initial-advertise-peer-urls",
                "http://127.0.0.1:2380",
                "--initial-cluster",
                "default=http://127.0.0.1:2380",
            ],
            &log,
        )
        .context("start etcd (Debian package etcd-server)")?;
        wait(Duration::from_secs(20), || Ok(std::fs::read_to_string(&log)?.contains("ready to serve client requests")))
            .context("etcd did not start")?;
        Ok(daemon)
    }

    /// The cluster file for a store; for etcd the underlay reaches this namespace.
    pub(crate) fn cluster(&self, store: &str) -> Result<PathBuf> {
        // The bench runs its own agents, in the mode it measures: netlab runs none.
        let mut text = CLUSTER.replace(&format!("store: '{DIR_STORE}'"), &format!("store: '{store}', agent: false"));
        if store.starts_with("etcd") {
            text = text
                .replace("nodes:\n", "host:\n  interfaces:\n    lab0: {addresses: [192.168.104.1/24]}\nnodes:\n")
                .replace("      h1: {bridge: br0}\n", "      h0: {bridge: br0}\n      h1: {bridge: br0}\n")
                .replace("links:\n", "links:\n  - endpoints: [host:lab0, lan:h0]\n");
        }
        let file = self.work.join(if store.starts_with("etcd") { "cluster-etcd.yaml" } else { "cluster-dir.yaml" });
        std::fs::write(&file, text)?;
        Ok(file)
    }
}

pub(crate) fn wait(limit: Duration, mut done: impl FnMut() -> Result<bool>) -> Result<()> {
    let deadline = Instant::now() + limit;
    while !done()? {
        if Instant::now() > deadline {
            bail!("gave up after {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    Ok(())
}

/// The agent's entries on an overlay's device (neighbours, FDB entries).
pub(crate) fn installed(ns: &str) -> Result<(usize, usize)> {
    netns::thread::in_one(Netns::Named(ns.to_string()), |_| {
        let socket = Netlink::open_socket_here()?;
        let neighbours =
            netns::blocking::neighbours(&socket)?.iter().filter(|n| n.protocol == vxlan_agent::PROTOCOL).count();
        let fdb = netns::blocking::fdb(&socket)?.iter().filter(|f| f.extern_learned).count();
        Ok((neighbours, fdb))
    })
    .map_err(Into::into)
}

fn percentile(values: &mut [f64], q: f64) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(((values.len().max(1) - 1) as f64 * q).round() as usize).copied().unwrap_or(f64::NAN)
}

fn endpoint(n: u32) -> netlab_store::endpoints::Endpoint {
    netlab_store::endpoints::Endpoint {
        ip: IpAddr::V4(Ipv4Addr::new(10, 77, (n >> 8) as u8, n as u8)),
        mac: format!("02:77:00:00:{:02x}:{:02x}", n >> 8, n & 255).parse().expect("valid MAC"),
        vtep: "192.168.104.4".parse().expect("valid address"),
    }
}

/// Publication (a put to the store) to the entries installed on both other hosts.
fn publication(tools: &Tools, store: &str, samples: u32, runtime: &tokio::runtime::Runtime) -> Result<Value> {
    let file = tools.cluster(store)?;
    let _etcd = if store.starts_with("etcd") { Some(tools.etcd()?) } else { None };
    tools.netlab("apply", &file)?;
    let _agents = tools.agents(store, "proactive", "pub")?;
    wait(Duration::from_secs(20), || Ok(installed("ov1")? == (4, 4) && installed("ov2")? == (4, 4)))?;
    let url: netlab_store::StoreUrl = store.parse()?;
    let client = netlab_store::AnyStore::open(&url, None, Duration::ZERO)?;
    let (mut ov1, mut ov2) = (Watcher::open("ov1")?, Watcher::open("ov2")?);
    let mut latencies = Vec::new();
    for n in 0..samples {
        let e = endpoint(n);
        let wanted = || vec![Seen::Neighbour(e.ip), Seen::Fdb(e.mac.octets())];
        let started = Instant::now();
        runtime.block_on(netlab_store::endpoints::publish(&client, &e))?;
        let done = ov1.until(wanted(), Duration::from_secs(10))?.max(ov2.until(wanted(), Duration::from_secs(10))?);
        latencies.push(done.duration_since(started).as_secs_f64() * 1000.0);
    }
    for n in 0..samples {
        runtime.block_on(netlab_store::endpoints::withdraw(&client, &endpoint(n)))?;
    }
    drop(_agents);
    tools.netlab("destroy", &file)?;
    Ok(json!({
        "store": store.split(':').next(),
        "samples": samples,
        "p50_ms": percentile(&mut latencies, 0.5),
        "p99_ms": percentile(&mut latencies, 0.99),
    }))
}

/// Twenty pings from ct1 to ct3 (another host) right after the agents are ready.
fn first_pings(tools: &Tools, mode: &str) -> Result<Value> {
    let file = tools.cluster(DIR_STORE)?;
    tools.netlab("apply", &file)?;
    let _agents = tools.agents(DIR_STORE, mode, mode)?;
    if mode == "proactive" {
        wait(Duration::from_secs(20), || Ok(installed("ov1")? == (4, 4)))?;
    } else {
        wait(Duration::from_secs(20), || {
            let status = std::fs::read_to_string("/run/vxlan-agent/ov1:vxlan1.json").unwrap_or_default();
            Ok(status.contains("\"store_loaded\": true"))
        })?;
    }
    let output =
        Command::new("ip").args(["netns", "exec", "ct1", "ping", "-c20", "-i0.2", "-W1", "11.11.11.4"]).output()?;
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    let replies: Vec<(u32, f64)> = text
        .lines()
        .filter_map(|l| {
            let seq = l.split_whitespace().find_map(|w| w.strip_prefix("icmp_seq="))?.parse().ok()?;
            let rtt = l.split_whitespace().find_map(|w| w.strip_prefix("time="))?.parse().ok()?;
            Some((seq, rtt))
        })
        .collect();
    drop(_agents);
    tools.netlab("destroy", &file)?;
    Ok(json!({
        "mode": mode,
        "sent": 20,
        "lost": 20 - replies.len(),
        "first_reply_seq": replies.first().map(|r| r.0),
        "first_reply_after_s": replies.first().map(|r| (r.0 - 1) as f64 * 0.2),
        "first_rtt_ms": replies.first().map(|r| r.1),
    }))
}

pub fn overlay(tools: &Tools, samples: u32) -> Result<Value> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let dir = publication(tools, DIR_STORE, samples, &runtime)?;
    let etcd = publication(tools, ETCD_STORE, samples, &runtime)?;
    let proactive = first_pings(tools, "proactive")?;
    let miss = first_pings(tools, "miss")?;
    println!("overlay (cluster-3, 3 agents): publication to installed on both other hosts, {samples} samples");
    for p in [&dir, &etcd] {
        println!(
            "  {:<5} p50 {:>7.2} ms  p99 {:>7.2} ms",
            p["store"].as_str().unwrap_or(""),
            p["p50_ms"].as_f64().unwrap_or(f64::NAN),
            p["p99_ms"].as_f64().unwrap_or(f64::NAN)
        );
    }
    println!("first pings ct1 -> ct3 (20 at 0.2 s):");
    for p in [&proactive, &miss] {
        println!(
            "  {:<9} lost {}/20, first reply to echo {} ({:.1} s), rtt {:.3} ms",
            p["mode"].as_str().unwrap_or(""),
            p["lost"],
            p["first_reply_seq"],
            p["first_reply_after_s"].as_f64().unwrap_or(f64::NAN),
            p["first_rtt_ms"].as_f64().unwrap_or(f64::NAN)
        );
    }
    let etcd_p99 = etcd["p99_ms"].as_f64().unwrap_or(f64::INFINITY);
    let targets = json!([
        {"what": "publication to installed everywhere, etcd, p99 (ms)", "measured": etcd_p99, "limit": "<= 100", "met": etcd_p99 <= 100.0},
        {"what": "proactive first pings lost", "measured": proactive["lost"], "limit": "0", "met": proactive["lost"] == 0},
    ]);
    print_targets(&targets);
    Ok(json!({"case": "overlay", "publication": [dir, etcd], "first_pings": [proactive, miss], "targets": targets}))
}

pub(crate) fn print_targets(targets: &Value) {
    for t in targets.as_array().into_iter().flatten() {
        println!(
            "  target {}: {} (limit {}) {}",
            t["what"].as_str().unwrap_or(""),
            // Measured figures to 3 decimals; counts as they are.
            match t["measured"].as_f64() {
                Some(x) if x.fract() != 0.0 => format!("{x:.3}"),
                _ => t["measured"].to_string(),
            },
            t["limit"].as_str().unwrap_or(""),
            if t["met"] == true { "met" } else { "MISSED" }
        );
    }
}

/// Misses answered: ct1 sends one UDP datagram to each of `misses` addresses the store
/// knows (behind host3), each one an ARP request the VXLAN device cannot answer.
fn miss_latency(tools: &Tools, misses: u32) -> Result<(f64, f64)> {
    let file = tools.cluster(DIR_STORE)?;
    tools.netlab("apply", &file)?;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let url: netlab_store::StoreUrl = DIR_STORE.parse()?;
    let client = netlab_store::AnyStore::open(&url, None, Duration::ZERO)?;
    for n in 0..misses {
        runtime.block_on(netlab_store::endpoints::publish(&client, &endpoint(n)))?;
    }
    let _agents = tools.agents(DIR_STORE, "miss", "miss")?;
    wait(Duration::from_secs(20), || {
        let status = std::fs::read_to_string("/run/vxlan-agent/ov1:vxlan1.json").unwrap_or_default();
        Ok(status.contains("\"store_loaded\": true"))
    })?;
    let mut watcher = Watcher::open("ov1")?;
    // The senders need a route to 10.77.0.0/16 on the overlay: through br0's subnet.
    let status = Command::new("ip").args(["-n", "ct1", "route", "add", "10.77.0.0/16", "dev", "eth0"]).status()?;
    if !status.success() {
        bail!("route for the miss targets");
    }
    let socket = netns::thread::in_one(Netns::Named("ct1".into()), |_| {
        std::net::UdpSocket::bind("0.0.0.0:0").map_err(|e| netns::Error::io("bind", e))
    })?;
    let mut latencies = Vec::new();
    for n in 0..misses {
        let e = endpoint(n);
        socket.send_to(b"miss", (e.ip, 9))?;
        let mut missed_at = None;
        let deadline = Instant::now() + Duration::from_secs(5);
        'wait: while Instant::now() < deadline {
            for (at, seen) in watcher.next()? {
                match seen {
                    Seen::Miss(ip) if ip == e.ip => missed_at = missed_at.or(Some(at)),
                    Seen::Neighbour(ip) if ip == e.ip => {
                        if let Some(missed) = missed_at {
                            latencies.push(at.duration_since(missed).as_secs_f64() * 1000.0);
                        }
                        break 'wait;
                    }
                    _ => {}
                }
            }
        }
    }
    drop(_agents);
    tools.netlab("destroy", &file)?;
    for n in 0..misses {
        runtime.block_on(netlab_store::endpoints::withdraw(&client, &endpoint(n)))?;
    }
    if latencies.len() < misses as usize {
        bail!("{} of {misses} misses were answered", latencies.len());
    }
    Ok((percentile(&mut latencies, 0.5), percentile(&mut latencies, 0.99)))
}

/// `keys / 2` endpoints written to a fresh folder store at once, while ov1's agent runs.
fn burst(tools: &Tools, keys: u32) -> Result<Value> {
    let file = tools.cluster(DIR_STORE)?;
    tools.netlab("apply", &file)?;
    let store = tools.work.join("burst");
    let _ = std::fs::remove_dir_all(&store);
    std::fs::create_dir_all(store.join("arp"))?;
    std::fs::create_dir_all(store.join("fdb"))?;
    let url = format!("dir:{}", store.display());
    let log = tools.work.join("agent-burst.log");
    let mut agent =
        spawn(Some("host1"), &tools.agent, &["run", "--netns", "ov1", "--device", "vxlan1", "--store", &url], &log)?;
    wait(Duration::from_secs(20), || Ok(std::fs::read_to_string(&log)?.contains("device vxlan1 found")))?;
    let endpoints = keys / 2;
    let started = Instant::now();
    for n in 0..endpoints {
        let ip = Ipv4Addr::from(0x0a40_0000 + n);
        let mac = format!("02:66:00:{:02x}:{:02x}:{:02x}", n >> 16, (n >> 8) & 255, n & 255);
        std::fs::write(store.join("arp").join(ip.to_string()), format!("{mac}\n"))?;
        std::fs::write(store.join("fdb").join(&mac), "192.168.104.3\n")?;
    }
    let written = started.elapsed().as_secs_f64();
    let wanted = (endpoints as usize, endpoints as usize);
    let converged = wait(Duration::from_secs(120), || Ok(installed("ov1")? == wanted)).is_ok();
    let converge_s = started.elapsed().as_secs_f64();
    let (neighbours, fdb) = installed("ov1")?;
    let rss_kb = std::fs::read_to_string(format!("/proc/{}/status", agent.0.id()))?
        .lines()
        .find_map(|l| {
            l.strip_prefix("VmHWM:").map(|v| v.trim().trim_end_matches(" kB").trim().parse::<u64>().unwrap_or(0))
        })
        .unwrap_or(0);
    let overruns = std::fs::read_to_string("/run/vxlan-agent/ov1:vxlan1.json").unwrap_or_default();
    let _ = agent.0.kill();
    tools.netlab("destroy", &file)?;
    Ok(json!({
        "keys": keys,
        "write_s": written,
        "converged": converged,
        "converge_s": converge_s,
        "lost": keys as usize - neighbours - fdb,
        "agent_peak_rss_mb": rss_kb as f64 / 1024.0,
        "overruns": serde_json::from_str::<Value>(&overruns).ok().map(|s| s["counters"]["overruns"].clone()),
    }))
}

pub fn agent(tools: &Tools, misses: u32, keys: u32, endpoints: u32) -> Result<Value> {
    let (p50, p99) = miss_latency(tools, misses)?;
    let burst = burst(tools, keys)?;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let scale = crate::scale::etcd_scale(tools, endpoints, &runtime)?;
    println!("agent: miss notification to neighbour installed ({misses} misses), seen from outside the agent");
    println!("  p50 {p50:.3} ms  p99 {p99:.3} ms");
    println!(
        "burst of {keys} keys (folder store): written in {:.2} s, converged in {:.2} s, lost {}, agent peak RSS {:.1} MB, overruns {}",
        burst["write_s"].as_f64().unwrap_or(f64::NAN),
        burst["converge_s"].as_f64().unwrap_or(f64::NAN),
        burst["lost"],
        burst["agent_peak_rss_mb"].as_f64().unwrap_or(f64::NAN),
        burst["overruns"]
    );
    println!(
        "{endpoints} endpoints in etcd: loaded in {:.2} s; agent start to all installed {:.2} s (ip -batch of the same entries {:.2} s), lost {}, agent peak RSS {:.1} MB",
        scale["load_s"].as_f64().unwrap_or(f64::NAN),
        scale["converge_s"].as_f64().unwrap_or(f64::NAN),
        scale["ip_batch_s"].as_f64().unwrap_or(f64::NAN),
        scale["lost"],
        scale["agent_peak_rss_mb"].as_f64().unwrap_or(f64::NAN),
    );
    let rss = burst["agent_peak_rss_mb"].as_f64().unwrap_or(f64::INFINITY);
    let scale_rss = scale["agent_peak_rss_mb"].as_f64().unwrap_or(f64::INFINITY);
    let targets = json!([
        {"what": "miss to install p50 (ms)", "measured": p50, "limit": "<= 0.5", "met": p50 <= 0.5},
        {"what": "burst entries lost", "measured": burst["lost"], "limit": "0", "met": burst["lost"] == 0 && burst["converged"] == true},
        {"what": "agent peak RSS in the burst (MB)", "measured": rss, "limit": "<= 30", "met": rss <= 30.0},
        {"what": "etcd endpoints lost", "measured": scale["lost"], "limit": "0", "met": scale["lost"] == 0 && scale["converged"] == true},
        {"what": "agent peak RSS with the etcd endpoints (MB)", "measured": scale_rss, "limit": "<= 60", "met": scale_rss <= 60.0},
    ]);
    print_targets(&targets);
    Ok(
        json!({"case": "agent", "miss_to_install_ms": {"samples": misses, "p50": p50, "p99": p99}, "burst": burst, "etcd_scale": scale, "targets": targets}),
    )
}
