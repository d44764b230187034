//! Privileged tests of the dynamic overlay (part 7): netlab publishes endpoints to a
//! store, vxlan-agents run as real processes inside the simulated hosts and fill the
//! VXLAN devices' entries. Each test in its own sandbox; every agent and etcd it
//! starts is killed when the test ends.

mod support;

use nix::sys::signal::Signal;
use support::{agent_binary, eventually, topology, Process, Sandbox};

const DIR_STORE: &str = "dir:/run/netlab/stores/overlay-dynamic";

fn agent(sandbox: &Sandbox, host: &str, overlay: &str, store: &str, extra: &[&str]) -> Process {
    let mut args = vec!["run", "--netns", overlay, "--device", "vxlan1", "--store", store, "--resync", "2"];
    args.extend_from_slice(extra);
    sandbox.spawn(host, &agent_binary(), &args)
}

/// The agent's entries on an overlay's vxlan1: neighbours (proto 78) and FDB entries
/// (extern_learn), one line each.
fn entries(sandbox: &Sandbox, overlay: &str) -> Vec<String> {
    let neighbours = sandbox.run("ip", &["-n", overlay, "neigh", "show", "dev", "vxlan1"]);
    let fdb = sandbox.run("ip", &["netns", "exec", overlay, "bridge", "fdb", "show", "dev", "vxlan1"]);
    let mut lines: Vec<String> = support::text(&neighbours.stdout)
        .lines()
        .filter(|l| l.contains("proto 78"))
        .map(|l| format!("neigh {}", l.split_whitespace().take(3).collect::<Vec<_>>().join(" ")))
        .collect();
    lines.extend(
        support::text(&fdb.stdout)
            .lines()
            .filter(|l| l.contains("extern_learn"))
            .map(|l| format!("fdb {}", l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))),
    );
    lines.sort();
    lines
}

fn ping(sandbox: &Sandbox, from: &str, to: &str) -> bool {
    sandbox.run("ip", &["netns", "exec", from, "ping", "-c1", "-W2", to]).status.success()
}

#[test]
fn folder_store_proactive_first_ping_answers() {
    let sandbox = Sandbox::new();
    let file = topology("overlay-dynamic.yaml");
    sandbox.netlab_ok(&["apply", &file]);
    // netlab published the three containers in the tutorial's layout.
    assert_eq!(sandbox.ok("cat", &["/run/netlab/stores/overlay-dynamic/arp/11.11.11.3"]).trim(), "02:42:c0:a8:00:03");
    assert_eq!(sandbox.ok("cat", &["/run/netlab/stores/overlay-dynamic/fdb/02:42:c0:a8:00:04"]).trim(), "192.168.104.2");

    let mut agent1 = agent(&sandbox, "host1", "ov1", DIR_STORE, &[]);
    let _agent2 = agent(&sandbox, "host2", "ov2", DIR_STORE, &[]);
    // host1 holds ct1 and ct3: its only remote endpoint is ct2; host2's are ct1 and ct3.
    let want1 = ["fdb 02:42:c0:a8:00:03 dst 192.168.104.3", "neigh 11.11.11.3 lladdr 02:42:c0:a8:00:03"];
    assert!(eventually(10.0, || entries(&sandbox, "ov1") == want1), "{:?}\n{}", entries(&sandbox, "ov1"), agent1.output());
    assert!(eventually(10.0, || entries(&sandbox, "ov2").len() == 4), "{:?}", entries(&sandbox, "ov2"));

    // Installed ahead of traffic: the very first ping answers.
    assert!(ping(&sandbox, "ct1", "11.11.11.3"), "first ping ct1 -> ct2 lost");
    assert!(ping(&sandbox, "ct2", "11.11.11.2"), "first ping ct2 -> ct1 lost");
    assert!(ping(&sandbox, "ct3", "11.11.11.3"), "first ping ct3 -> ct2 lost");
    let checks = sandbox.netlab_ok(&["check", &file]);
    assert!(checks.contains("4 passed, 0 failed"), "{checks}");

    // Entries written by hand, as in the tutorial, work; removing them removes them.
    sandbox.ok("sh", &["-c", "echo 02:42:c0:a8:00:09 > /run/netlab/stores/overlay-dynamic/arp/11.11.11.9"]);
    sandbox.ok("sh", &["-c", "echo 192.168.104.3 > /run/netlab/stores/overlay-dynamic/fdb/02:42:c0:a8:00:09"]);
    assert!(eventually(5.0, || entries(&sandbox, "ov1").len() == 4), "{:?}", entries(&sandbox, "ov1"));
    assert!(entries(&sandbox, "ov1").contains(&"neigh 11.11.11.9 lladdr 02:42:c0:a8:00:09".to_string()));
    sandbox.ok("rm", &["/run/netlab/stores/overlay-dynamic/arp/11.11.11.9"]);
    assert!(eventually(5.0, || entries(&sandbox, "ov1").len() == 3), "{:?}", entries(&sandbox, "ov1"));
    assert!(!entries(&sandbox, "ov1").iter().any(|l| l.contains("11.11.11.9")));

    // The agent's counters, and entries that are not the agent's are left alone.
    sandbox.ok("ip", &["-n", "ov1", "neigh", "replace", "11.11.11.50", "lladdr", "02:00:00:00:00:50", "dev", "vxlan1", "nud", "permanent"]);
    let ov1_status = || {
        let status = sandbox.ok(&agent_binary(), &["status", "--json"]);
        let status: serde_json::Value = serde_json::from_str(&status).unwrap();
        status.as_array().unwrap().iter().find(|s| s["netns"] == "ov1").expect("ov1's agent reports").clone()
    };
    // Status files are rewritten twice a second.
    assert!(
        eventually(5.0, || {
            let ov1 = ov1_status();
            ov1["counters"]["installed"] == 4 && ov1["counters"]["removed"] == 1 && ov1["store_loaded"] == true
        }),
        "{}",
        ov1_status()
    );

    // SIGTERM: a clean exit that leaves the entries in place.
    assert!(agent1.stop(Signal::SIGTERM).success(), "{}", agent1.output());
    assert!(agent1.output().contains("stopped; entries left in place"));
    assert_eq!(entries(&sandbox, "ov1").len(), 3);
    let foreign = sandbox.ok("ip", &["-n", "ov1", "neigh", "show", "11.11.11.50"]);
    assert!(foreign.contains("PERMANENT"), "{foreign}");

    // destroy withdraws exactly what apply published (the hand-written key stays).
    sandbox.netlab_ok(&["destroy", &file]);
    let left = sandbox.ok("find", &["/run/netlab/stores/overlay-dynamic", "-type", "f"]);
    assert_eq!(left.trim(), "/run/netlab/stores/overlay-dynamic/fdb/02:42:c0:a8:00:09");
}

#[test]
fn miss_mode_answers_misses_only() {
    let sandbox = Sandbox::new();
    let file = topology("overlay-dynamic.yaml");
    sandbox.netlab_ok(&["apply", &file]);
    let agent1 = agent(&sandbox, "host1", "ov1", DIR_STORE, &["--mode", "miss"]);
    let _agent2 = agent(&sandbox, "host2", "ov2", DIR_STORE, &["--mode", "miss"]);
    assert!(eventually(5.0, || agent1.output().contains("device vxlan1 found")), "{}", agent1.output());
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert!(entries(&sandbox, "ov1").is_empty(), "miss mode installs nothing ahead: {:?}", entries(&sandbox, "ov1"));

    // Six pings half a second apart: replies must start within the first 3 s.
    let output = sandbox.run("ip", &["netns", "exec", "ct1", "ping", "-c6", "-i0.5", "-W1", "11.11.11.3"]);
    let text = support::text(&output.stdout);
    assert!(text.contains("bytes from 11.11.11.3"), "no reply within 3 s in miss mode:\n{text}\n{}", agent1.output());
    // Exactly what was missed got installed: ct2's neighbour and FDB entry, not ct3's.
    assert_eq!(
        entries(&sandbox, "ov1"),
        ["fdb 02:42:c0:a8:00:03 dst 192.168.104.3", "neigh 11.11.11.3 lladdr 02:42:c0:a8:00:03"]
    );
    let status = sandbox.ok(&agent_binary(), &["status"]);
    assert!(status.contains("ov1:vxlan1") && status.contains("mode miss"), "{status}");
    assert!(!status.contains("misses l3 0 l2 0"), "{status}");
    // IPv6 link-local solicitations are misses the overlay does not serve: never
    // installed, never an error.
    assert!(!agent1.output().contains("fe80"), "{}", agent1.output());
}
