//! One agent following a large etcd store: from its start to every entry installed,
//! its peak memory and what it lost; beside it, the same entries installed by one
//! `ip -batch` and `bridge -batch` into another overlay, which is the kernel's floor.

use std::io::Write;
use std::net::Ipv4Addr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use netlab_store::endpoints::Endpoint;
use netlab_store::{AnyStore, Store, StoreUrl, Value as StoreValue};
use serde_json::{json, Value};

use crate::overlay::{installed, spawn, wait, Tools, ETCD_STORE};

/// Where the large set lives: a prefix of its own in the cluster's etcd.
const SCALE_STORE: &str = "etcd://192.168.104.1:2379/scale";

fn endpoint(n: u32) -> Endpoint {
    Endpoint {
        ip: Ipv4Addr::from(0x0a80_0000 + n).into(),
        mac: format!("02:55:00:{:02x}:{:02x}:{:02x}", n >> 16, (n >> 8) & 255, n & 255).parse().expect("valid MAC"),
        vtep: "192.168.104.3".parse().expect("valid address"),
    }
}

/// The peak resident memory of a process, in MB.
pub(crate) fn peak_rss_mb(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:").and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok()))
        .unwrap_or(0.0)
        / 1024.0
}

/// The same entries installed by `ip -batch` (neighbours) and `bridge -batch` (FDB)
/// into ov2, whose agent is not running.
fn ip_batch(endpoints: u32) -> Result<f64> {
    let (mut neighbours, mut fdb) = (String::new(), String::new());
    for n in 0..endpoints {
        let e = endpoint(n);
        neighbours.push_str(&format!("neigh replace {} lladdr {} dev vxlan1 nud permanent\n", e.ip, e.mac));
        fdb.push_str(&format!("fdb replace {} dev vxlan1 self permanent dst {}\n", e.mac, e.vtep));
    }
    batches("ov2", [("ip", neighbours), ("bridge", fdb)])
}

/// `ip -batch` and `bridge -batch` in namespace `ns`, one after the other: seconds taken.
pub(crate) fn batches(ns: &str, batches: [(&str, String); 2]) -> Result<f64> {
    let started = Instant::now();
    for (program, batch) in batches {
        let mut child = Command::new(program).args(["-n", ns, "-batch", "-"]).stdin(Stdio::piped()).spawn()?;
        child.stdin.take().expect("piped").write_all(batch.as_bytes())?;
        if !child.wait()?.success() {
            bail!("{program} -batch failed");
        }
    }
    Ok(started.elapsed().as_secs_f64())
}

pub fn etcd_scale(tools: &Tools, endpoints: u32, runtime: &tokio::runtime::Runtime) -> Result<Value> {
    let file = tools.cluster(ETCD_STORE)?;
    let _etcd = tools.etcd()?;
    tools.netlab("apply", &file)?;
    let client = AnyStore::open(&SCALE_STORE.parse::<StoreUrl>()?, None, Duration::ZERO)?;
    let mut keys = Vec::with_capacity(2 * endpoints as usize);
    for n in 0..endpoints {
        for entry in endpoint(n).entries() {
            let path = entry.key().path();
            let value = StoreValue::new(&path, entry.value())?;
            keys.push((path, value));
        }
    }
    let loading = Instant::now();
    runtime.block_on(client.put_many(&keys))?;
    let load_s = loading.elapsed().as_secs_f64();
    drop(keys);

    let log = tools.work.join("agent-scale.log");
    let started = Instant::now();
    let agent = spawn(
        Some("host1"),
        &tools.agent,
        &["run", "--netns", "ov1", "--device", "vxlan1", "--store", SCALE_STORE],
        &log,
    )?;
    let wanted = (endpoints as usize, endpoints as usize);
    // Looked at four times a second: a dump of 200,000 entries is work for the
    // kernel that would slow the agent down if done all the time.
    let converged = wait(Duration::from_secs(300), || {
        std::thread::sleep(Duration::from_millis(250));
        Ok(installed("ov1")? == wanted)
    })
    .is_ok();
    let converge_s = started.elapsed().as_secs_f64();
    let (neighbours, fdb) = installed("ov1")?;
    let rss = peak_rss_mb(agent.0.id());
    drop(agent);
    let batch_s = ip_batch(endpoints)?;
    tools.netlab("destroy", &file)?;
    Ok(json!({
        "endpoints": endpoints,
        "load_s": load_s,
        "converged": converged,
        "converge_s": converge_s,
        "ip_batch_s": batch_s,
        "lost": 2 * endpoints as usize - neighbours - fdb,
        "agent_peak_rss_mb": rss,
    }))
}
