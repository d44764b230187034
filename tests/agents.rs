//! The vxlan-agents netlab runs (privileged, each test in its own sandbox): apply starts
//! one per VXLAN device with a store under the lab's supervisor, the first pings
//! answer with no agent started by the test, a killed agent and the agent of a remade
//! device are started again, an unchanged re-apply keeps them (same pids), a killed
//! supervisor is started again by the next apply, `agent: false` starts nothing, and
//! destroy leaves no process. Whatever a test leaves is killed by pid at its end.

mod support;

use std::collections::BTreeSet;
use std::os::unix::fs::MetadataExt;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde_json::Value;
use support::overlay::{entries, own_agents, without_agents};
use support::{eventually, text, topology, Sandbox};

/// The processes of a lab found from outside the sandbox: any process in the
/// simulated hosts' namespaces (where the agents run), and netlab's supervisor or a
/// vxlan-agent in the sandbox's own. Dropped, it kills what is left (pass or fail).
struct Leftovers {
    /// Inodes of the simulated hosts' namespaces.
    hosts: BTreeSet<u64>,
    /// Inode of the sandbox's namespace.
    sandbox: u64,
}

fn inode(text: &str) -> u64 {
    let digits: String = text.chars().filter(char::is_ascii_digit).collect();
    digits.parse().unwrap()
}

impl Leftovers {
    /// Right after apply, pass or fail: a host namespace apply did not make is skipped.
    fn new(sandbox: &Sandbox, hosts: &[&str]) -> Leftovers {
        let hosts = hosts
            .iter()
            .map(|h| sandbox.run("stat", &["-L", "-c", "%i", &format!("/run/netns/{h}")]))
            .filter(|stat| stat.status.success())
            .map(|stat| inode(&text(&stat.stdout)))
            .collect();
        let own = inode(&sandbox.ok("readlink", &["/proc/self/ns/net"]));
        Leftovers { hosts, sandbox: own }
    }

    /// "PID COMMAND LINE" of each process of the lab still running.
    fn running(&self) -> Vec<String> {
        let mut found = Vec::new();
        for entry in std::fs::read_dir("/proc").unwrap().flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else { continue };
            let Ok(namespace) = std::fs::metadata(format!("/proc/{pid}/ns/net")) else { continue };
            let Ok(raw) = std::fs::read(format!("/proc/{pid}/cmdline")) else { continue };
            let line = String::from_utf8_lossy(&raw).replace('\0', " ");
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            let zombie = stat.rsplit_once(')').is_some_and(|(_, rest)| rest.trim_start().starts_with('Z'));
            let ours = self.hosts.contains(&namespace.ino())
                || (namespace.ino() == self.sandbox && (line.contains("vxlan-agent") || line.contains(" supervise ")));
            if ours && !zombie && !line.is_empty() {
                found.push(format!("{pid} {line}"));
            }
        }
        found
    }
}

impl Drop for Leftovers {
    fn drop(&mut self) {
        for process in self.running() {
            let pid: i32 = process.split(' ').next().unwrap().parse().unwrap();
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
    }
}

/// Apply `file`, then (whether it worked or not) take note of the lab's processes, so
/// that they are killed at the end whatever happens; then require success. The
/// leftovers and apply's output.
fn applied(sandbox: &Sandbox, file: &str, hosts: &[&str]) -> (Leftovers, String) {
    let output = sandbox.netlab(&["apply", file]);
    let leftovers = Leftovers::new(sandbox, hosts);
    assert!(output.status.success(), "apply: {}{}", text(&output.stdout), text(&output.stderr));
    (leftovers, text(&output.stdout))
}

fn ping(sandbox: &Sandbox, from: &str, to: &str) -> bool {
    sandbox.run("ip", &["netns", "exec", from, "ping", "-c1", "-W2", to]).status.success()
}

fn status(sandbox: &Sandbox, file: &str) -> Value {
    let output = sandbox.netlab(&["status", file, "-o", "json"]);
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&output.stderr)))
}

/// The pid of each agent `status` reports running, by device.
fn agent_pids(sandbox: &Sandbox, file: &str) -> Vec<(String, Option<u64>)> {
    let status = status(sandbox, file);
    status["agents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| (a["agent"].as_str().unwrap().to_string(), a["pid"].as_u64()))
        .collect()
}

fn pid_of(sandbox: &Sandbox, file: &str, agent: &str) -> Option<u64> {
    agent_pids(sandbox, file).into_iter().find(|(a, _)| a == agent).and_then(|(_, pid)| pid)
}

fn supervisor_pid(sandbox: &Sandbox, lab: &str) -> i32 {
    let file = sandbox.ok("cat", &[&format!("/run/netlab/{lab}/supervisor.json")]);
    let value: Value = serde_json::from_str(&file).unwrap();
    value["process"]["pid"].as_i64().unwrap() as i32
}

fn destroy_leaves_nothing(sandbox: &Sandbox, file: &str, lab: &str, leftovers: &Leftovers) {
    sandbox.netlab_ok(&["destroy", file]);
    // Nor the agents' status files, locks and subnet files: `vxlan-agent status` would
    // list agents that are gone.
    let files = sandbox.ok("find", &["/run/vxlan-agent", "-type", "f"]);
    assert_eq!(files.trim(), "", "files of the agents left after destroy");
    assert_eq!(leftovers.running(), Vec::<String>::new(), "processes left after destroy");
    assert!(!sandbox.run("test", &["-e", &format!("/run/netlab/{lab}")]).status.success(), "the lab's folder stays");
}

#[test]
fn overlay_dynamic_runs_its_agents_from_apply_to_destroy() {
    let sandbox = Sandbox::new();
    let file = topology("overlay-dynamic.yaml");
    let (leftovers, applied) = applied(&sandbox, &file, &["host1", "host2"]);
    assert!(applied.contains("+ agent of ov1:vxlan1 in host1, proactive"), "{applied}");
    // The first ping of each pair answers: the agents had installed every remote
    // endpoint when apply returned.
    for (from, to) in [("ct1", "11.11.11.3"), ("ct2", "11.11.11.2"), ("ct3", "11.11.11.3")] {
        assert!(ping(&sandbox, from, to), "{from} -> {to}: {}", sandbox.netlab_ok(&["status", &file]));
    }
    let before = [entries(&sandbox, "ov1"), entries(&sandbox, "ov2")];
    assert_eq!(before[0].len(), 2, "{before:?}");
    assert_eq!(before[1].len(), 4, "{before:?}");
    let report = status(&sandbox, &file);
    assert_eq!(report["in_sync"], true, "{report}");
    assert_eq!(report["agents"][1]["neighbours"], 2, "{report}");
    assert_eq!(report["agents"][1]["fdb"], 2, "{report}");
    let pids = agent_pids(&sandbox, &file);
    assert!(pids.iter().all(|(_, pid)| pid.is_some()), "{pids:?}");
    assert_eq!(leftovers.running().len(), 2 + 1, "two agents and the supervisor: {:?}", leftovers.running());

    // An unchanged file: nothing to do, the same agents.
    assert_eq!(sandbox.netlab_ok(&["apply", &file]).trim(), "no changes");
    assert_eq!(agent_pids(&sandbox, &file), pids);

    // An agent killed by hand is back, and puts back the entries removed meanwhile.
    let killed = pid_of(&sandbox, &file, "ov1:vxlan1").unwrap();
    kill(Pid::from_raw(killed as i32), Signal::SIGKILL).unwrap();
    sandbox.ok("ip", &["-n", "ov1", "neigh", "flush", "dev", "vxlan1", "nud", "all"]);
    assert!(
        eventually(15.0, || pid_of(&sandbox, &file, "ov1:vxlan1").is_some_and(|pid| pid != killed)
            && entries(&sandbox, "ov1") == before[0]),
        "{}",
        sandbox.netlab_ok(&["status", &file])
    );
    assert!(status(&sandbox, &file)["agents"][0]["restarts"].as_u64().unwrap() >= 1);
    assert!(ping(&sandbox, "ct1", "11.11.11.3"));

    // The device made again: its agent is started again and fills it.
    let serving = pid_of(&sandbox, &file, "ov1:vxlan1").unwrap();
    sandbox.ok("ip", &["-n", "ov1", "link", "del", "vxlan1"]);
    sandbox.netlab_ok(&["apply", &file]);
    assert!(
        eventually(15.0, || pid_of(&sandbox, &file, "ov1:vxlan1").is_some_and(|pid| pid != serving)
            && entries(&sandbox, "ov1") == before[0]),
        "{}",
        sandbox.netlab_ok(&["status", &file])
    );
    assert!(ping(&sandbox, "ct1", "11.11.11.3"));

    // A killed supervisor: the next apply starts it again; the agents keep running.
    let pids = agent_pids(&sandbox, &file);
    let supervisor = supervisor_pid(&sandbox, "overlay-dynamic");
    kill(Pid::from_raw(supervisor), Signal::SIGKILL).unwrap();
    assert!(eventually(5.0, || !leftovers.running().iter().any(|p| p.starts_with(&format!("{supervisor} ")))));
    // status says so: nothing would restart an agent now.
    let status = sandbox.netlab(&["status", &file]);
    assert_eq!(status.status.code(), Some(1), "{}", text(&status.stdout));
    assert!(text(&status.stdout).contains("stopped    supervisor of the lab's agents"), "{}", text(&status.stdout));
    sandbox.netlab_ok(&["apply", &file]);
    assert_eq!(sandbox.netlab(&["status", &file]).status.code(), Some(0));
    let again = supervisor_pid(&sandbox, "overlay-dynamic");
    assert_ne!(again, supervisor);
    assert!(leftovers.running().iter().any(|p| p.starts_with(&format!("{again} ")) && p.contains("supervise")));
    assert_eq!(agent_pids(&sandbox, &file), pids, "the agents were taken over, not started again");
    // ...and supervises them: a killed agent is back.
    let killed = pid_of(&sandbox, &file, "ov2:vxlan1").unwrap();
    kill(Pid::from_raw(killed as i32), Signal::SIGKILL).unwrap();
    assert!(eventually(15.0, || pid_of(&sandbox, &file, "ov2:vxlan1").is_some_and(|pid| pid != killed)));

    destroy_leaves_nothing(&sandbox, &file, "overlay-dynamic", &leftovers);
}

#[test]
fn cluster_3_answers_every_first_ping() {
    let sandbox = Sandbox::new();
    let file = topology("cluster-3.yaml");
    let (leftovers, _) = applied(&sandbox, &file, &["host1", "host2", "host3"]);
    let mut failed = Vec::new();
    for from in 1..=6 {
        for to in 2..=7 {
            if to != from + 1 && !ping(&sandbox, &format!("ct{from}"), &format!("11.11.11.{to}")) {
                failed.push(format!("ct{from} -> 11.11.11.{to}"));
            }
        }
    }
    assert_eq!(failed, Vec::<String>::new(), "{}", sandbox.netlab_ok(&["status", &file]));
    assert_eq!(leftovers.running().len(), 3 + 1, "{:?}", leftovers.running());
    destroy_leaves_nothing(&sandbox, &file, "cluster-3", &leftovers);
}

#[test]
fn agent_false_starts_nothing() {
    let sandbox = Sandbox::new();
    let file = own_agents(&sandbox, "overlay-dynamic.yaml");
    let (leftovers, applied) = applied(&sandbox, &file, &["host1", "host2"]);
    assert!(!applied.contains("agent"), "{applied}");
    assert_eq!(leftovers.running(), Vec::<String>::new());
    assert_eq!(status(&sandbox, &file)["agents"], serde_json::json!([]));
    assert!(!sandbox.run("test", &["-e", "/run/netlab/overlay-dynamic"]).status.success());
    destroy_leaves_nothing(&sandbox, &file, "overlay-dynamic", &leftovers);
}

/// flannel-3 with a node daemon declared on each node: apply runs the three, each
/// leases a subnet and routes to the two others', a node reaches another's subnet
/// across the overlay, status shows each daemon's subnet, destroy stops them.
#[test]
fn node_daemons_declared_in_the_file_are_run_by_apply() {
    use support::flannel::{set_network, DIR_STORE};
    let sandbox = Sandbox::new();
    let mut source = std::fs::read_to_string(topology("flannel-3.yaml")).unwrap();
    for n in 1..=3 {
        let from = format!("      eth0: {{addresses: [192.168.104.{}/24]}}\n", n + 1);
        let to = format!("{from}    node: {{store: '{DIR_STORE}', public_ip: 192.168.104.{}}}\n", n + 1);
        assert_eq!(source.matches(&from).count(), 1, "flannel-3.yaml changed shape");
        source = source.replacen(&from, &to, 1);
    }
    let file = sandbox.file("flannel-3-nodes.yaml", &source);
    set_network(&sandbox, DIR_STORE, &[]);
    let (leftovers, applied) = applied(&sandbox, &file, &["node1", "node2", "node3"]);
    assert!(applied.contains("+ agent of node1 (node daemon) in node1, node, store"), "{applied}");
    assert_eq!(leftovers.running().len(), 3 + 1, "{:?}", leftovers.running());

    // Each holds a subnet once apply returns; each routes to the two others' in time.
    let subnets = || -> Vec<Option<String>> {
        let report = status(&sandbox, &file);
        report["agents"].as_array().unwrap().iter().map(|a| a["subnet"].as_str().map(str::to_string)).collect()
    };
    let held = subnets();
    assert!(held.iter().all(Option::is_some), "{held:?}");
    let routes = |n: u8| sandbox.ok("ip", &["-n", &format!("node{n}"), "route", "show", "dev", "flannel.1"]);
    assert!(
        eventually(20.0, || (1..=3).all(|n| routes(n).lines().count() == 2)),
        "{}",
        sandbox.netlab_ok(&["status", &file])
    );
    // node1 reaches node2's device address (its subnet's .0) through flannel.1.
    let node2 = held[1].as_deref().unwrap().split('/').next().unwrap().to_string();
    assert!(ping(&sandbox, "node1", &node2), "{}", routes(1));
    assert_eq!(sandbox.netlab_ok(&["apply", &file]).trim(), "no changes");
    destroy_leaves_nothing(&sandbox, &file, "flannel-3", &leftovers);
}

/// Re-apply after an edit: another mode restarts the agent with it, `agent: false`
/// stops the lab's agent of that device, the other agent keeps its pid throughout.
#[test]
fn an_edited_file_restarts_and_stops_agents() {
    let sandbox = Sandbox::new();
    let source = std::fs::read_to_string(topology("overlay-dynamic.yaml")).unwrap();
    let store = "store: 'dir:/run/netlab/stores/overlay-dynamic'}";
    let edit = |with: &str| {
        let text = source.replacen(store, &format!("store: 'dir:/run/netlab/stores/overlay-dynamic', {with}}}"), 1);
        assert_ne!(text, source);
        sandbox.file("overlay-dynamic.yaml", &text)
    };
    let file = sandbox.file("overlay-dynamic.yaml", &source);
    let (leftovers, _) = applied(&sandbox, &file, &["host1", "host2"]);
    let first = agent_pids(&sandbox, &file);

    let file = edit("agent: {mode: miss}");
    let changed = sandbox.netlab_ok(&["apply", &file]);
    assert!(changed.contains("~ agent of ov1:vxlan1 in host1, miss"), "{changed}");
    let second = agent_pids(&sandbox, &file);
    assert_ne!(second[0].1, first[0].1, "restarted");
    assert_eq!(second[1], first[1], "the other agent is untouched");
    let miss = leftovers.running();
    assert!(miss.iter().any(|p| p.contains("--netns ov1") && p.contains("--mode miss")), "{miss:?}");

    let file = edit("agent: false");
    let stopped = sandbox.netlab_ok(&["apply", &file]);
    assert!(stopped.contains("- agent of ov1:vxlan1"), "{stopped}");
    let left = leftovers.running();
    assert!(!left.iter().any(|p| p.contains("--netns ov1")), "{left:?}");
    assert_eq!(agent_pids(&sandbox, &file), [second[1].clone()]);
    destroy_leaves_nothing(&sandbox, &file, "overlay-dynamic", &leftovers);
}

/// A caller that waits for apply's output to close (a pipe, as `$(netlab apply ...)`
/// or a CI log) is not kept waiting by the supervisor and agents apply leaves
/// running: they keep no descriptor apply inherited, even one not close-on-exec.
#[test]
fn apply_leaves_no_inherited_descriptor_open_in_its_processes() {
    use std::io::Read;
    let sandbox = Sandbox::new();
    let file = topology("overlay-dynamic.yaml");
    // sh hands apply a copy of the pipe as fd 7, which is not close-on-exec.
    let script = format!("exec 7>&1; {} apply {file} >/dev/null 2>&1", env!("CARGO_BIN_EXE_netlab"));
    let mut child = sandbox.command("sh").args(["-c", &script]).stdout(std::process::Stdio::piped()).spawn().unwrap();
    let mut pipe = child.stdout.take().unwrap();
    let (sender, closed) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = pipe.read_to_end(&mut Vec::new());
        let _ = sender.send(());
    });
    let status = child.wait().unwrap();
    let leftovers = Leftovers::new(&sandbox, &["host1", "host2"]);
    assert!(status.success());
    assert_eq!(leftovers.running().len(), 2 + 1, "{:?}", leftovers.running());
    // Bounded only so that a failure ends: the pipe closes when sh exits.
    let waited = closed.recv_timeout(std::time::Duration::from_secs(30));
    assert!(waited.is_ok(), "the pipe stays open: held by {:?}", leftovers.running());
    destroy_leaves_nothing(&sandbox, &file, "overlay-dynamic", &leftovers);
}

/// A netlab with no vxlan-agent beside it or on PATH says so at once, names the way
/// out, and starts nothing.
#[test]
fn without_vxlan_agent_apply_says_so_and_starts_nothing() {
    let sandbox = Sandbox::new();
    let alone = sandbox.dir.join("alone");
    std::fs::create_dir(&alone).unwrap();
    let netlab = alone.join("netlab");
    std::fs::hard_link(env!("CARGO_BIN_EXE_netlab"), &netlab).unwrap();
    let file = topology("overlay-dynamic.yaml");
    let output = sandbox
        .command(netlab.to_str().unwrap())
        .args(["apply", &file])
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .output()
        .unwrap();
    let leftovers = Leftovers::new(&sandbox, &["host1", "host2"]);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output.stdout));
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains(&format!("vxlan-agent is neither beside netlab ({}/vxlan-agent) nor on PATH", alone.display()))
            && stderr.contains("set `agent: false`"),
        "{stderr}"
    );
    assert_eq!(leftovers.running(), Vec::<String>::new());
    destroy_leaves_nothing(&sandbox, &file, "overlay-dynamic", &leftovers);
}

/// What the lab publishes is part of its plan and its status: an endpoint missing from
/// the store is drift that apply repairs; an unreadable store is said, not guessed.
#[test]
fn the_stores_endpoints_are_planned_and_compared() {
    let sandbox = Sandbox::new();
    let file = topology("overlay-dynamic.yaml");
    let store = "/run/netlab/stores/overlay-dynamic";
    let plan = sandbox.netlab_ok(&["plan", &file]);
    let endpoints: Vec<&str> = plan.lines().filter(|l| l.starts_with("+ endpoint ")).collect();
    assert_eq!(endpoints.len(), 3, "{plan}");
    assert!(plan.contains("+ endpoint 11.11.11.3 02:42:c0:a8:00:03 behind 192.168.104.3 in store dir:"), "{plan}");
    let (leftovers, _) = applied(&sandbox, &file, &["host1", "host2"]);
    assert_eq!(sandbox.netlab_ok(&["plan", &file]).trim(), "no changes");

    // A key removed by hand: status says so and exits 1, apply puts it back.
    sandbox.ok("rm", &[&format!("{store}/arp/11.11.11.3")]);
    let status = sandbox.netlab(&["status", &file]);
    assert_eq!(status.status.code(), Some(1), "{}", text(&status.stdout));
    assert!(
        text(&status.stdout)
            .contains("missing    endpoint 11.11.11.3 02:42:c0:a8:00:03 behind 192.168.104.3 in store dir:"),
        "{}",
        text(&status.stdout)
    );
    let json: Value = serde_json::from_slice(&sandbox.netlab(&["status", &file, "-o", "json"]).stdout).unwrap();
    assert_eq!(json["store"][0]["action"], "publish", "{json:#}");
    assert_eq!(json["store"][0]["ip"], "11.11.11.3");
    let repaired = sandbox.netlab_ok(&["apply", &file]);
    assert!(repaired.contains("applied 1 change (1 created)"), "{repaired}");
    assert_eq!(sandbox.ok("cat", &[&format!("{store}/arp/11.11.11.3")]).trim(), "02:42:c0:a8:00:03");
    assert_eq!(sandbox.netlab(&["status", &file]).status.code(), Some(0));
    destroy_leaves_nothing(&sandbox, &file, "overlay-dynamic", &leftovers);

    // A store nobody serves: plan lists what it would publish and says it could not
    // look; status, with the kernel in sync, names the store as unknown.
    let unreachable = sandbox.file(
        "unreachable.yaml",
        &without_agents(&std::fs::read_to_string(&file).unwrap())
            .replace(&format!("dir:{store}"), "etcd://127.0.0.1:9"),
    );
    let plan = sandbox.netlab(&["plan", &unreachable]);
    assert!(plan.status.success(), "{}", text(&plan.stderr));
    assert_eq!(text(&plan.stdout).lines().filter(|l| l.starts_with("+ endpoint ")).count(), 3);
    assert!(text(&plan.stderr).contains("cannot read store etcd://127.0.0.1:9"), "{}", text(&plan.stderr));
    let apply = sandbox.netlab(&["apply", &unreachable]);
    assert_eq!(apply.status.code(), Some(1), "apply must publish, and cannot");
    let status = sandbox.netlab(&["status", &unreachable]);
    assert!(
        text(&status.stdout).contains("unknown    endpoints in store etcd://127.0.0.1:9"),
        "{}",
        text(&status.stdout)
    );
    sandbox.netlab_ok(&["destroy", &unreachable]);
}

/// Labs share namespace names (cluster-3 and overlay-dynamic both have host1, ov1):
/// one lab never stops, takes over or counts the agents of another.
#[test]
fn another_labs_agents_are_never_touched() {
    let sandbox = Sandbox::new();
    let file = topology("overlay-dynamic.yaml");
    let (leftovers, _) = applied(&sandbox, &file, &["host1", "host2"]);
    let running = leftovers.running();
    assert_eq!(running.len(), 2 + 1, "{running:?}");
    let other = topology("cluster-3.yaml");
    let destroyed = sandbox.netlab(&["destroy", &other]);
    assert!(destroyed.status.success(), "{}", text(&destroyed.stderr));
    assert!(!text(&destroyed.stdout).contains("agent"), "{}", text(&destroyed.stdout));
    let applied_other = sandbox.netlab(&["apply", &other]);
    assert_eq!(applied_other.status.code(), Some(3), "{}", text(&applied_other.stderr));
    assert!(text(&applied_other.stderr).contains("namespace host1"), "{}", text(&applied_other.stderr));
    assert_eq!(leftovers.running(), running, "the other lab's commands touched this lab's agents");
    destroy_leaves_nothing(&sandbox, &file, "overlay-dynamic", &leftovers);
}

/// The harness itself: a test that fails after apply, before its destroy, drops its
/// sandbox, which stops the supervisor and the agents apply left in sessions of their
/// own (nothing of a failed test keeps running on the machine).
#[test]
fn a_sandbox_dropped_before_destroy_leaves_no_process() {
    let sandbox = Sandbox::new();
    let file = topology("overlay-dynamic.yaml");
    let (leftovers, _) = applied(&sandbox, &file, &["host1", "host2"]);
    assert_eq!(leftovers.running().len(), 2 + 1, "{:?}", leftovers.running());
    drop(sandbox);
    assert!(eventually(5.0, || leftovers.running().is_empty()), "{:?}", leftovers.running());
}
