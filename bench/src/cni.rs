//! `bench/run cni`: netlab-cni against Debian's reference plugins (bridge with
//! host-local IPAM), each executed the same way a runtime does (one exec per
//! command, config on stdin, CNI_* in the environment), from inside one node
//! namespace: ADD and DEL p50/p99 over `containers` containers, and 20 ADDs at once
//! (total wall, duplicate addresses).

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use netns::Netns;
use serde_json::{json, Value};

const NODE: &str = "cninode";
const REFERENCE_PLUGINS: &str = "/usr/lib/cni";

/// One plugin set under test: the binary to exec and its network config.
struct Plugin {
    name: &'static str,
    binary: PathBuf,
    config: Value,
    /// CNI_PATH (where a delegating plugin finds its IPAM plugin).
    path: String,
}

fn percentile(values: &mut [f64], q: f64) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(((values.len().max(1) - 1) as f64 * q).round() as usize).copied().unwrap_or(f64::NAN)
}

/// Exec a plugin: its result JSON and how long it took, in ms.
fn exec(plugin: &Plugin, command: &str, container: &str) -> Result<(Value, f64)> {
    let started = Instant::now();
    let mut child = Command::new(&plugin.binary)
        .env_clear()
        .env("CNI_COMMAND", command)
        .env("CNI_CONTAINERID", format!("bench-{container}"))
        .env("CNI_NETNS", format!("/run/netns/{container}"))
        .env("CNI_IFNAME", "eth0")
        .env("CNI_PATH", &plugin.path)
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("run {}", plugin.binary.display()))?;
    child.stdin.take().expect("piped").write_all(plugin.config.to_string().as_bytes())?;
    let output = child.wait_with_output()?;
    let took = started.elapsed().as_secs_f64() * 1000.0;
    if !output.status.success() {
        bail!(
            "{} {command} {container}: {}{}",
            plugin.name,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let result = if output.stdout.is_empty() { Value::Null } else { serde_json::from_slice(&output.stdout)? };
    Ok((result, took))
}

fn address(result: &Value) -> String {
    result["ips"][0]["address"].as_str().unwrap_or_default().to_string()
}

fn namespaces(prefix: &str, count: usize) -> Result<Vec<String>> {
    (0..count)
        .map(|i| {
            let name = format!("{prefix}{i}");
            let status = Command::new("ip").args(["netns", "add", &name]).status()?;
            if !status.success() {
                bail!("ip netns add {name} failed");
            }
            Ok(name)
        })
        .collect()
}

fn measure(plugin: &Plugin, containers: usize) -> Result<Value> {
    let tag = if plugin.name == "netlab-cni" { "ours-" } else { "ref-" };
    let names = namespaces(tag, containers)?;
    let node = Netns::Named(NODE.into());
    // The plugin runs in the node's namespace, as a runtime on that node would run it;
    // a child inherits the namespace of the thread that spawns it.
    let (mut add, mut del, parallel_s, duplicates) = {
        let plugin_config = plugin.config.clone();
        let plugin = Plugin {
            name: plugin.name,
            binary: plugin.binary.clone(),
            config: plugin_config,
            path: plugin.path.clone(),
        };
        let names = names.clone();
        netns::thread::in_one(node, move |_| {
            let run = || -> Result<(Vec<f64>, Vec<f64>, f64, usize)> {
                let mut add = Vec::new();
                let mut del = Vec::new();
                for name in &names {
                    add.push(exec(&plugin, "ADD", name)?.1);
                }
                for name in &names {
                    del.push(exec(&plugin, "DEL", name)?.1);
                }
                // Twenty at once, as a runtime starting a pod burst would.
                let burst: Vec<&String> = names.iter().take(20).collect();
                let started = Instant::now();
                let results: Vec<Result<(Value, f64)>> = std::thread::scope(|scope| {
                    let handles: Vec<_> = burst.iter().map(|name| scope.spawn(|| exec(&plugin, "ADD", name))).collect();
                    handles.into_iter().map(|h| h.join().expect("exec thread")).collect()
                });
                let parallel_s = started.elapsed().as_secs_f64();
                let mut seen = BTreeSet::new();
                let mut duplicates = 0;
                for result in results {
                    if !seen.insert(address(&result?.0)) {
                        duplicates += 1;
                    }
                }
                for name in &burst {
                    exec(&plugin, "DEL", name)?;
                }
                Ok((add, del, parallel_s, duplicates))
            };
            run().map_err(|e| netns::Error::other("plugin runs", format!("{e:#}")))
        })?
    };
    for name in &names {
        let _ = Command::new("ip").args(["netns", "delete", name]).status();
    }
    Ok(json!({
        "plugin": plugin.name,
        "containers": containers,
        "add_p50_ms": percentile(&mut add, 0.5),
        "add_p99_ms": percentile(&mut add, 0.99),
        "del_p50_ms": percentile(&mut del, 0.5),
        "del_p99_ms": percentile(&mut del, 0.99),
        "parallel_adds": 20.min(containers),
        "parallel_wall_s": parallel_s,
        "parallel_duplicates": duplicates,
    }))
}

pub fn cni(cni_binary: &Path, work: &Path, containers: usize) -> Result<Value> {
    let status = Command::new("ip").args(["netns", "add", NODE]).status()?;
    if !status.success() {
        bail!("ip netns add {NODE} failed");
    }
    let subnet_file = work.join("subnet.env");
    std::fs::write(
        &subnet_file,
        "FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=10.244.1.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=false\n",
    )?;
    let netlab = Plugin {
        name: "netlab-cni",
        binary: cni_binary.to_path_buf(),
        config: json!({"cniVersion": "1.0.0", "name": "bench", "type": "netlab-cni",
            "subnetFile": subnet_file, "dataDir": work.join("netlab-cni")}),
        path: cni_binary.parent().map(|p| p.display().to_string()).unwrap_or_default(),
    };
    let reference = Plugin {
        name: "bridge+host-local",
        binary: Path::new(REFERENCE_PLUGINS).join("bridge"),
        config: json!({"cniVersion": "1.0.0", "name": "benchref", "type": "bridge", "bridge": "cni1",
            "isGateway": true, "mtu": 1450,
            "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.245.1.0/24", "gateway": "10.245.1.1"}]],
                "routes": [{"dst": "0.0.0.0/0"}], "dataDir": work.join("host-local")}}),
        path: REFERENCE_PLUGINS.into(),
    };
    if !reference.binary.exists() {
        bail!("{} is missing: install containernetworking-plugins", reference.binary.display());
    }
    let outcome = (|| Ok::<_, anyhow::Error>((measure(&netlab, containers)?, measure(&reference, containers)?)))();
    let _ = Command::new("ip").args(["netns", "delete", NODE]).status();
    let (ours, theirs) = outcome?;
    print(&ours, &theirs);
    Ok(json!({"case": "cni", "netlab_cni": ours, "reference": theirs}))
}

fn print(ours: &Value, theirs: &Value) {
    let f = |v: &Value, k: &str| v[k].as_f64().unwrap_or(f64::NAN);
    println!("cni: {} containers, each plugin executed per command from one node namespace", ours["containers"]);
    println!(
        "{:<20} {:>10} {:>10} {:>10} {:>10} {:>16} {:>11}",
        "", "ADD p50", "ADD p99", "DEL p50", "DEL p99", "20 ADDs at once", "duplicates"
    );
    for v in [ours, theirs] {
        println!(
            "{:<20} {:>8.2}ms {:>8.2}ms {:>8.2}ms {:>8.2}ms {:>15.3}s {:>11}",
            v["plugin"].as_str().unwrap_or(""),
            f(v, "add_p50_ms"),
            f(v, "add_p99_ms"),
            f(v, "del_p50_ms"),
            f(v, "del_p99_ms"),
            f(v, "parallel_wall_s"),
            v["parallel_duplicates"]
        );
    }
    let add_ratio = f(ours, "add_p50_ms") / f(theirs, "add_p50_ms");
    let del_ratio = f(ours, "del_p50_ms") / f(theirs, "del_p50_ms");
    let verdict = |met: bool| if met { "met" } else { "NOT met" };
    println!("  ADD p50 {add_ratio:.2}x the reference's (target <= 0.5: {})", verdict(add_ratio <= 0.5));
    println!("  DEL p50 {del_ratio:.2}x the reference's (target <= 1: {})", verdict(del_ratio <= 1.0));
    println!(
        "  duplicates in 20 parallel ADDs: {} (target 0: {})",
        ours["parallel_duplicates"],
        verdict(ours["parallel_duplicates"] == 0)
    );
}
