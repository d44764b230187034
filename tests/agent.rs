//! Privileged tests of the dynamic overlay (part 7): netlab publishes endpoints to a
//! store, vxlan-agents run as real processes inside the simulated hosts and fill the
//! VXLAN devices' entries. Each test in its own sandbox; every agent and etcd it
//! starts is killed when the test ends.

mod support;

use nix::sys::signal::Signal;
use support::overlay::*;
use support::{agent_binary, eventually, Certificates, Process, Sandbox};

#[test]
fn folder_store_proactive_first_ping_answers() {
    let sandbox = Sandbox::new();
    let file = own_agents(&sandbox, "overlay-dynamic.yaml");
    sandbox.netlab_ok(&["apply", &file]);
    // netlab published the three containers in the tutorial's layout.
    assert_eq!(sandbox.ok("cat", &["/run/netlab/stores/overlay-dynamic/arp/11.11.11.3"]).trim(), "02:42:c0:a8:00:03");
    assert_eq!(
        sandbox.ok("cat", &["/run/netlab/stores/overlay-dynamic/fdb/02:42:c0:a8:00:04"]).trim(),
        "192.168.104.2"
    );

    let mut agent1 = agent(&sandbox, "host1", "ov1", DIR_STORE, &[]);
    let _agent2 = agent(&sandbox, "host2", "ov2", DIR_STORE, &[]);
    // host1 holds ct1 and ct3: its only remote endpoint is ct2; host2's are ct1 and ct3.
    let want1 = ["fdb 02:42:c0:a8:00:03 dst 192.168.104.3", "neigh 11.11.11.3 lladdr 02:42:c0:a8:00:03"];
    assert!(
        eventually(10.0, || entries(&sandbox, "ov1") == want1),
        "{:?}\n{}",
        entries(&sandbox, "ov1"),
        agent1.output()
    );
    assert!(eventually(10.0, || entries(&sandbox, "ov2").len() == 4), "{:?}", entries(&sandbox, "ov2"));

    // Installed ahead of traffic: the very first ping answers.
    assert!(ping(&sandbox, "ct1", "11.11.11.3"), "first ping ct1 -> ct2 lost");
    assert!(ping(&sandbox, "ct2", "11.11.11.2"), "first ping ct2 -> ct1 lost");
    assert!(ping(&sandbox, "ct3", "11.11.11.3"), "first ping ct3 -> ct2 lost");
    let checks = sandbox.netlab_ok(&["check", &file]);
    assert!(checks.contains("4 passed, 0 failed"), "{checks}");

    // One of the agent's entries removed by hand is put back (the kernel reports the
    // deletion; the store still wants it).
    sandbox.ok("ip", &["-n", "ov1", "neigh", "del", "11.11.11.3", "dev", "vxlan1"]);
    assert!(eventually(5.0, || entries(&sandbox, "ov1") == want1), "{:?}", entries(&sandbox, "ov1"));

    // Entries written by hand, as in the tutorial, work; removing them removes them.
    sandbox.ok("sh", &["-c", "echo 02:42:c0:a8:00:09 > /run/netlab/stores/overlay-dynamic/arp/11.11.11.9"]);
    sandbox.ok("sh", &["-c", "echo 192.168.104.3 > /run/netlab/stores/overlay-dynamic/fdb/02:42:c0:a8:00:09"]);
    assert!(eventually(5.0, || entries(&sandbox, "ov1").len() == 4), "{:?}", entries(&sandbox, "ov1"));
    assert!(entries(&sandbox, "ov1").contains(&"neigh 11.11.11.9 lladdr 02:42:c0:a8:00:09".to_string()));
    sandbox.ok("rm", &["/run/netlab/stores/overlay-dynamic/arp/11.11.11.9"]);
    assert!(eventually(5.0, || entries(&sandbox, "ov1").len() == 3), "{:?}", entries(&sandbox, "ov1"));
    assert!(!entries(&sandbox, "ov1").iter().any(|l| l.contains("11.11.11.9")));

    // The agent's counters (installed: 2 at start, 1 put back, 2 written by hand; removed:
    // 1), and entries that are not the agent's are left alone.
    sandbox.ok(
        "ip",
        &[
            "-n",
            "ov1",
            "neigh",
            "replace",
            "11.11.11.50",
            "lladdr",
            "02:00:00:00:00:50",
            "dev",
            "vxlan1",
            "nud",
            "permanent",
        ],
    );
    let ov1_status = || {
        let status = sandbox.ok(&agent_binary(), &["status", "--json"]);
        let status: serde_json::Value = serde_json::from_str(&status).unwrap();
        status.as_array().unwrap().iter().find(|s| s["netns"] == "ov1").expect("ov1's agent reports").clone()
    };
    // Status files are rewritten twice a second.
    assert!(
        eventually(5.0, || {
            let ov1 = ov1_status();
            ov1["counters"]["installed"] == 5 && ov1["counters"]["removed"] == 1 && ov1["store_loaded"] == true
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

/// A notification socket too small for a burst: the kernel drops notifications
/// (ENOBUFS), the agent counts the overrun and reconciles in full, which puts back an
/// entry of its own whose deletion was among the dropped notifications.
#[test]
fn netlink_overrun_is_counted_and_reconciled() {
    let sandbox = Sandbox::new();
    sandbox.netlab_ok(&["apply", &own_agents(&sandbox, "overlay-dynamic.yaml")]);
    let args = [
        "run",
        "--netns",
        "ov1",
        "--device",
        "vxlan1",
        "--store",
        DIR_STORE,
        "--resync",
        "3600",
        "--event-buffer",
        "4096",
    ];
    let agent1 = sandbox.spawn("host1", &agent_binary(), &args);
    let _agent2 = agent(&sandbox, "host2", "ov2", DIR_STORE, &[]);
    let want1 = ["fdb 02:42:c0:a8:00:03 dst 192.168.104.3", "neigh 11.11.11.3 lladdr 02:42:c0:a8:00:03"];
    assert!(eventually(10.0, || entries(&sandbox, "ov1") == want1), "{}", agent1.output());

    // 3,000 neighbour notifications on a device of someone else's, with one of the
    // agent's own entries deleted in the middle of them, while the agent is stopped:
    // its 4 KB buffer holds a few, the kernel drops the rest.
    agent1.signal(Signal::SIGSTOP);
    sandbox.ok("ip", &["-n", "ov1", "link", "add", "flood", "type", "veth", "peer", "name", "flood-peer"]);
    sandbox.ok("ip", &["-n", "ov1", "link", "set", "flood", "up"]);
    let mut batch = String::new();
    for i in 0..3000u32 {
        if i == 1500 {
            batch.push_str("neigh del 11.11.11.3 dev vxlan1\n");
        }
        batch.push_str(&format!(
            "neigh add 10.9.{}.{} lladdr 02:00:00:00:{:02x}:{:02x} dev flood nud permanent\n",
            i / 250,
            i % 250 + 1,
            i / 256,
            i % 256
        ));
    }
    let batch_file = sandbox.file("flood.batch", &batch);
    sandbox.ok("ip", &["-n", "ov1", "-batch", &batch_file]);
    agent1.signal(Signal::SIGCONT);

    let counters = || {
        let status: serde_json::Value =
            serde_json::from_str(&sandbox.ok(&agent_binary(), &["status", "--json"])).unwrap();
        status[0]["counters"].clone()
    };
    assert!(eventually(10.0, || counters()["overruns"].as_u64() > Some(0)), "{}\n{}", counters(), agent1.output());
    assert!(
        eventually(10.0, || entries(&sandbox, "ov1") == want1),
        "{:?}\n{}",
        entries(&sandbox, "ov1"),
        agent1.output()
    );
    assert!(ping(&sandbox, "ct1", "11.11.11.3"));
    // The flood was someone else's: every one of its entries is still there.
    let flood = sandbox.ok("ip", &["-n", "ov1", "neigh", "show", "dev", "flood"]);
    assert_eq!(flood.lines().count(), 3000);
    assert!(agent1.output().contains("netlink overrun, ENOBUFS"), "{}", agent1.output());
}

#[test]
fn miss_mode_answers_misses_only() {
    let sandbox = Sandbox::new();
    let file = own_agents(&sandbox, "overlay-dynamic.yaml");
    sandbox.netlab_ok(&["apply", &file]);
    let agent1 = agent(&sandbox, "host1", "ov1", DIR_STORE, &["--mode", "miss"]);
    let _agent2 = agent(&sandbox, "host2", "ov2", DIR_STORE, &["--mode", "miss"]);
    assert!(eventually(5.0, || agent1.output().contains("device vxlan1 found")), "{}", agent1.output());
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert!(entries(&sandbox, "ov1").is_empty(), "miss mode installs nothing ahead: {:?}", entries(&sandbox, "ov1"));

    // Pings half a second apart (echo n leaves at (n - 1) / 2 s): replies must start
    // within 3 s, so by echo 7. Each miss costs a dropped packet and an ARP retry
    // (1 s) on each side, as the tutorial measured.
    let output = sandbox.run("ip", &["netns", "exec", "ct1", "ping", "-c10", "-i0.5", "-W1", "11.11.11.3"]);
    let text = support::text(&output.stdout);
    let first = text.lines().find(|l| l.contains("bytes from 11.11.11.3")).and_then(|l| {
        l.split_whitespace().find_map(|w| w.strip_prefix("icmp_seq=")).and_then(|n| n.parse::<u32>().ok())
    });
    assert!(
        first.is_some_and(|n| n <= 7),
        "replies did not start within 3 s in miss mode:\n{text}\n{}",
        agent1.output()
    );
    // Exactly what was missed got installed: ct2's neighbour and FDB entry, not ct3's.
    assert_eq!(
        entries(&sandbox, "ov1"),
        ["fdb 02:42:c0:a8:00:03 dst 192.168.104.3", "neigh 11.11.11.3 lladdr 02:42:c0:a8:00:03"]
    );
    let status = sandbox.ok(&agent_binary(), &["status"]);
    assert!(status.contains("ov1:vxlan1") && status.contains("mode miss"), "{status}");
    assert!(!status.contains("misses l3 0 l2 0"), "{status}");

    // IPv6 link-local solicitations reach the device as misses the overlay does not
    // serve: counted as ignored, never installed, never an error.
    sandbox.ok("ip", &["-n", "ct1", "addr", "add", "fe80::2/64", "dev", "eth0", "nodad"]);
    sandbox.run("ip", &["netns", "exec", "ct1", "ping", "-6", "-c1", "-W1", "fe80::3%eth0"]);
    let ov1_counters = || {
        let status: serde_json::Value =
            serde_json::from_str(&sandbox.ok(&agent_binary(), &["status", "--json"])).unwrap();
        status.as_array().unwrap().iter().find(|s| s["netns"] == "ov1").unwrap()["counters"].clone()
    };
    assert!(eventually(5.0, || ov1_counters()["ignored_misses"].as_u64().unwrap() >= 1), "{}", ov1_counters());
    assert_eq!(ov1_counters()["failed"], 0);
    let neighbours = sandbox.ok("ip", &["-n", "ov1", "-6", "neigh", "show", "dev", "vxlan1"]);
    assert!(!neighbours.contains("fe80::3"), "{neighbours}");

    // Misses on someone else's VXLAN device in the same namespace are not the agent's,
    // even for an address the store knows.
    sandbox.ok(
        &agent_binary(),
        &["publish", "--store", DIR_STORE, "--ip", "12.0.0.9", "--mac", "02:00:00:00:00:09", "--vtep", "192.168.104.3"],
    );
    let vxlan2 = "-n host1 link add vxlan2 netns ov1 type vxlan id 43 dstport 4790 dev eth0 l2miss nolearning";
    sandbox.ok("ip", &vxlan2.split(' ').collect::<Vec<_>>());
    sandbox.ok("ip", &["-n", "ov1", "addr", "add", "12.0.0.1/24", "dev", "vxlan2"]);
    sandbox.ok("ip", &["-n", "ov1", "link", "set", "vxlan2", "up"]);
    // The neighbour is known, the MAC's VTEP is not: each packet is an L2 miss.
    sandbox.ok("ip", &["-n", "ov1", "neigh", "replace", "12.0.0.9", "lladdr", "02:00:00:00:00:09", "dev", "vxlan2"]);
    let before = ov1_counters();
    let mut monitor = sandbox.spawn("", "ip", &["-n", "ov1", "monitor", "neigh"]);
    std::thread::sleep(std::time::Duration::from_millis(200));
    sandbox.run("ip", &["netns", "exec", "ov1", "ping", "-c2", "-i0.3", "-W1", "12.0.0.9"]);
    // The kernel did send the misses (RTM_GETNEIGH shows as `miss` in ip monitor)...
    let seen = |output: String| output.lines().any(|l| l.starts_with("miss") && l.contains("02:00:00:00:00:09"));
    assert!(eventually(5.0, || seen(monitor.output())), "{}", monitor.output());
    monitor.stop(Signal::SIGKILL);
    std::thread::sleep(std::time::Duration::from_millis(300));
    // ...and the agent did not take them for its own, nor answer them.
    let after = ov1_counters();
    for counter in ["l2_misses", "l3_misses", "unknown_misses", "installed", "failed"] {
        assert_eq!(after[counter], before[counter], "{counter}: {before} -> {after}");
    }
    let fdb = sandbox.ok("ip", &["netns", "exec", "ov1", "bridge", "fdb", "show"]);
    assert!(!fdb.contains("02:00:00:00:00:09"), "{fdb}");
}

/// The store URL names every member: the agents and netlab carry on through the
/// others when the one they talk to dies.
#[test]
fn etcd_cluster_loses_a_member() {
    let sandbox = Sandbox::new();
    let store = "etcd://127.0.0.1:2379,127.0.0.2:2379,127.0.0.3:2379/overlay-dynamic";
    let source = std::fs::read_to_string(own_agents(&sandbox, "overlay-dynamic.yaml")).unwrap();
    let file = sandbox.file("overlay-dynamic-etcd3.yaml", &source.replace(DIR_STORE, store));
    let mut members: Vec<Process> = (1..=3).map(|i| etcd_member(&sandbox, i)).collect();
    let ready = |m: &Process| m.output().contains("ready to serve client requests");
    assert!(eventually(20.0, || members.iter().all(ready)), "{}", members[0].output());
    sandbox.netlab_ok(&["apply", &file]);
    let _agents = [agent(&sandbox, "", "ov1", store, &[]), agent(&sandbox, "", "ov2", store, &[])];
    assert!(eventually(10.0, || entries(&sandbox, "ov1").len() == 2 && entries(&sandbox, "ov2").len() == 4));

    // The first-named member dies; a change made after that reaches both agents.
    members[0].stop(Signal::SIGKILL);
    sandbox.ok(
        &agent_binary(),
        &["publish", "--store", store, "--ip", "11.11.11.9", "--mac", "02:42:c0:a8:00:09", "--vtep", "192.168.104.3"],
    );
    let knows_new = |overlay: &str| entries(&sandbox, overlay).iter().any(|e| e.contains("11.11.11.9"));
    assert!(eventually(20.0, || knows_new("ov1")), "{:?}", entries(&sandbox, "ov1"));
    // ov2 is that VTEP's own overlay: the new endpoint is local there, no entry.
    assert!(!knows_new("ov2"));
    assert!(ping(&sandbox, "ct1", "11.11.11.3") && ping(&sandbox, "ct2", "11.11.11.2"));

    // destroy withdraws through the surviving members.
    sandbox.netlab_ok(&["destroy", &file]);
    let listed = sandbox.ok(&agent_binary(), &["list", "--store", store]);
    assert_eq!(
        listed.lines().collect::<Vec<_>>(),
        ["arp/11.11.11.9 02:42:c0:a8:00:09", "fdb/02:42:c0:a8:00:09 192.168.104.3"]
    );
}

#[test]
fn etcd_on_loopback_with_agents_beside_it() {
    let sandbox = Sandbox::new();
    let source = std::fs::read_to_string(own_agents(&sandbox, "overlay-dynamic.yaml")).unwrap();
    let store = "etcd://127.0.0.1:2379/overlay-dynamic";
    let file = sandbox.file("overlay-dynamic-etcd.yaml", &source.replace(DIR_STORE, store));
    let _etcd = etcd(&sandbox);
    sandbox.netlab_ok(&["apply", &file]);
    let listed = sandbox.ok(&agent_binary(), &["list", "--store", store]);
    assert_eq!(listed.lines().count(), 6, "{listed}");
    assert!(
        listed.contains("arp/11.11.11.3 02:42:c0:a8:00:03") && listed.contains("fdb/02:42:c0:a8:00:04 192.168.104.2")
    );
    // The agents share etcd's namespace (the sandbox's) and bind to the overlays.
    let _agents = [agent(&sandbox, "", "ov1", store, &[]), agent(&sandbox, "", "ov2", store, &[])];
    assert!(eventually(10.0, || entries(&sandbox, "ov1").len() == 2 && entries(&sandbox, "ov2").len() == 4));
    assert!(ping(&sandbox, "ct1", "11.11.11.3"), "first ping lost");
    assert!(
        ping(&sandbox, "ct3", "11.11.11.3")
            && ping(&sandbox, "ct2", "11.11.11.2")
            && ping(&sandbox, "ct2", "11.11.11.4")
    );
    // A key someone else changed is theirs now: destroy withdraws only what still
    // holds the lab's value.
    sandbox.ok(
        &agent_binary(),
        &["publish", "--store", store, "--ip", "11.11.11.4", "--mac", "02:42:c0:a8:00:44", "--vtep", "192.168.104.9"],
    );
    sandbox.netlab_ok(&["destroy", &file]);
    let listed = sandbox.ok(&agent_binary(), &["list", "--store", store]);
    assert_eq!(
        listed.lines().collect::<Vec<_>>(),
        ["arp/11.11.11.4 02:42:c0:a8:00:44", "fdb/02:42:c0:a8:00:44 192.168.104.9"]
    );
}

#[test]
fn etcd_over_tls_with_client_certificates() {
    let sandbox = Sandbox::new();
    let tls = Certificates::make(&sandbox.dir.join("tls"));
    let store = "etcd://127.0.0.1:2379/overlay-dynamic";
    let store_in_file =
        format!("'{store}', store_tls: {{ca: '{}', cert: '{}', key: '{}'}}", tls.ca, tls.client_cert, tls.client_key);
    let source = std::fs::read_to_string(own_agents(&sandbox, "overlay-dynamic.yaml")).unwrap();
    let file = sandbox.file("overlay-dynamic-tls.yaml", &source.replace(&format!("'{DIR_STORE}'"), &store_in_file));
    let _etcd = etcd_with(&sandbox, Some(&tls));
    sandbox.netlab_ok(&["apply", &file]);

    let certificate = ["--etcd-ca", &tls.ca, "--etcd-cert", &tls.client_cert, "--etcd-key", &tls.client_key];
    let list = [&["list", "--store", store][..], &certificate].concat();
    assert_eq!(sandbox.ok(&agent_binary(), &list).lines().count(), 6);
    // etcd refuses a client without a certificate, and plain text altogether.
    for refused in [vec!["list", "--store", store, "--etcd-ca", &tls.ca], vec!["list", "--store", store]] {
        let output = sandbox.run(&agent_binary(), &refused);
        let message = support::text(&output.stderr);
        assert!(!output.status.success() && message.contains("vxlan-agent: "), "{refused:?}: {message}");
        assert!(!message.contains("panicked"), "{message}");
    }

    let _agents = [agent(&sandbox, "", "ov1", store, &certificate), agent(&sandbox, "", "ov2", store, &certificate)];
    assert!(eventually(10.0, || entries(&sandbox, "ov1").len() == 2 && entries(&sandbox, "ov2").len() == 4));
    assert!(ping(&sandbox, "ct1", "11.11.11.3"), "first ping lost");
    assert!(ping(&sandbox, "ct2", "11.11.11.4"));

    // destroy withdraws through TLS too, with what the record kept.
    sandbox.netlab_ok(&["destroy", "--name", "overlay-dynamic"]);
    assert_eq!(sandbox.ok(&agent_binary(), &list), "");
}

#[test]
fn cluster_of_three_follows_the_store() {
    let sandbox = Sandbox::new();
    let before = sandbox.snapshot();
    let file = own_agents(&sandbox, "cluster-3.yaml");
    sandbox.netlab_ok(&["apply", &file]);
    let mut agents = cluster_agents(&sandbox, "dir:/run/netlab/stores/cluster-3");
    assert!(eventually(10.0, || converged(&sandbox)), "{:?}", entries(&sandbox, "ov1"));
    let checks = sandbox.netlab_ok(&["check", &file]);
    assert!(
        checks.contains("pass  pingall ct1 ct2 ct3 ct4 ct5 ct6\n") && checks.contains("1 passed, 0 failed"),
        "{checks}"
    );

    // A container added on host1 becomes reachable from the other hosts...
    let source = std::fs::read_to_string(&file).unwrap();
    let added = sandbox.file(
        "added.yaml",
        &source
            .replace(
                "      veth-ct2: {bridge: br0}\n",
                "      veth-ct2: {bridge: br0}\n      veth-ct7: {bridge: br0}\n",
            )
            .replace(
                "  ct1:\n",
                "  ct7:\n    interfaces:\n      eth0: {addresses: [11.11.11.8/24], mac: '02:42:c0:a8:00:08'}\n  ct1:\n",
            )
            .replace("links:\n", "links:\n  - endpoints: [ct7:eth0, ov1:veth-ct7]\n"),
    );
    sandbox.netlab_ok(&["apply", &added]);
    let has_ct7 = |ov: &str| entries(&sandbox, ov).iter().any(|l| l.contains("02:42:c0:a8:00:08"));
    assert!(eventually(10.0, || has_ct7("ov2") && has_ct7("ov3")), "{:?}", entries(&sandbox, "ov2"));
    assert!(ping(&sandbox, "ct3", "11.11.11.8") && ping(&sandbox, "ct6", "11.11.11.8"));
    // ...and removing it removes its entries on every host.
    sandbox.netlab_ok(&["apply", &file]);
    assert!(eventually(10.0, || !has_ct7("ov2") && !has_ct7("ov3")), "{:?}", entries(&sandbox, "ov2"));
    assert!(converged(&sandbox));

    // An agent killed outright, with the store changing while it is down, converges
    // when it comes back: the stale entry goes, the new one comes.
    let mut killed = agents.remove(1);
    killed.stop(nix::sys::signal::Signal::SIGKILL);
    let store = "/run/netlab/stores/cluster-3";
    sandbox.ok("rm", &[&format!("{store}/arp/11.11.11.6")]);
    sandbox.ok("sh", &["-c", &format!("echo 02:42:c0:a8:00:09 > {store}/arp/11.11.11.9")]);
    assert!(entries(&sandbox, "ov2").iter().any(|l| l.contains("11.11.11.6")), "nothing changes while it is down");
    agents.insert(1, agent(&sandbox, "host2", "ov2", "dir:/run/netlab/stores/cluster-3", &[]));
    assert!(
        eventually(10.0, || {
            let now = entries(&sandbox, "ov2");
            !now.iter().any(|l| l.contains("11.11.11.6")) && now.iter().any(|l| l.contains("11.11.11.9"))
        }),
        "{:?}",
        entries(&sandbox, "ov2")
    );
    sandbox.ok("rm", &[&format!("{store}/arp/11.11.11.9")]);
    sandbox.netlab_ok(&["apply", &file]);
    assert!(eventually(10.0, || converged(&sandbox)), "{:?}", entries(&sandbox, "ov2"));

    // A VXLAN device deleted by hand and made again: its agent fills the new one.
    sandbox.ok("ip", &["-n", "ov3", "link", "del", "vxlan1"]);
    assert!(!ping(&sandbox, "ct5", "11.11.11.2"));
    sandbox.netlab_ok(&["apply", &file]);
    assert!(eventually(10.0, || entries(&sandbox, "ov3").len() == 8), "{:?}", entries(&sandbox, "ov3"));
    assert!(ping(&sandbox, "ct5", "11.11.11.2"), "{}", agents[2].output());
    assert!(agents.iter_mut().all(|a| a.running()));

    drop(agents);
    sandbox.netlab_ok(&["destroy", &file]);
    assert_eq!(sandbox.snapshot(), before);
}

#[test]
fn cluster_of_three_with_etcd_rides_out_an_outage() {
    let sandbox = Sandbox::new();
    let file = cluster_with_etcd(&sandbox);
    let mut etcd_server = etcd(&sandbox);
    sandbox.netlab_ok(&["apply", &file]);
    let _agents = cluster_agents(&sandbox, ETCD_STORE);
    assert!(eventually(10.0, || converged(&sandbox)), "{:?}", entries(&sandbox, "ov1"));
    // Proactive: the very first ping of each pair answers.
    assert!(ping(&sandbox, "ct1", "11.11.11.4") && ping(&sandbox, "ct6", "11.11.11.3"));
    let checks = sandbox.netlab_ok(&["check", &file]);
    assert!(
        checks.contains("pass  pingall ct1 ct2 ct3 ct4 ct5 ct6\n") && checks.contains("1 passed, 0 failed"),
        "{checks}"
    );

    // etcd goes away for 10 s: traffic keeps flowing on the installed entries.
    etcd_server.stop(nix::sys::signal::Signal::SIGKILL);
    std::thread::sleep(std::time::Duration::from_secs(10));
    assert!(converged(&sandbox));
    assert!(ping(&sandbox, "ct2", "11.11.11.7") && ping(&sandbox, "ct4", "11.11.11.2"));

    // Back with its data: a change made now reaches every agent.
    let _etcd_again = etcd(&sandbox);
    sandbox.ok(
        &agent_binary(),
        &[
            "publish",
            "--store",
            ETCD_STORE,
            "--ip",
            "11.11.11.9",
            "--mac",
            "02:42:c0:a8:00:09",
            "--vtep",
            "192.168.104.4",
        ],
    );
    let has_new = |ov: &str| entries(&sandbox, ov).iter().any(|l| l.contains("11.11.11.9"));
    assert!(eventually(20.0, || has_new("ov1") && has_new("ov2")), "{:?}", entries(&sandbox, "ov1"));
    assert!(!has_new("ov3"), "host3 is that endpoint's own host");
    // Every agent noticed the outage (and kept going).
    let status = sandbox.ok(&agent_binary(), &["status", "--json"]);
    let status: serde_json::Value = serde_json::from_str(&status).unwrap();
    let agents = status.as_array().unwrap();
    assert_eq!(agents.len(), 3);
    assert!(agents.iter().all(|a| a["counters"]["store_errors"].as_u64().unwrap() >= 1), "{status}");
    sandbox.netlab_ok(&["destroy", &file]);
}

#[test]
fn burst_of_twenty_thousand_entries_is_all_installed() {
    let sandbox = Sandbox::new();
    let file = own_agents(&sandbox, "overlay-dynamic.yaml");
    sandbox.netlab_ok(&["apply", &file]);
    let store = sandbox.dir.join("burst");
    std::fs::create_dir_all(store.join("arp")).unwrap();
    std::fs::create_dir_all(store.join("fdb")).unwrap();
    let url = format!("dir:{}", store.display());
    let agent1 = agent(&sandbox, "host1", "ov1", &url, &[]);
    assert!(eventually(5.0, || agent1.output().contains("device vxlan1 found")), "{}", agent1.output());
    // 10,000 endpoints on host2: 20,000 keys, written as fast as the disk takes them.
    for n in 0..10_000u32 {
        let ip = format!("10.{}.{}.{}", n >> 16, (n >> 8) & 255, n & 255);
        let mac = format!("02:00:00:{:02x}:{:02x}:{:02x}", n >> 16, (n >> 8) & 255, n & 255);
        std::fs::write(store.join("arp").join(&ip), format!("{mac}\n")).unwrap();
        std::fs::write(store.join("fdb").join(&mac), "192.168.104.3\n").unwrap();
    }
    let counts = || {
        let neighbours = sandbox.ok("ip", &["-n", "ov1", "neigh", "show", "dev", "vxlan1"]);
        let fdb = sandbox.ok("ip", &["netns", "exec", "ov1", "bridge", "fdb", "show", "dev", "vxlan1"]);
        (
            neighbours.lines().filter(|l| l.contains("proto 78")).count(),
            fdb.lines().filter(|l| l.contains("extern_learn")).count(),
        )
    };
    assert!(eventually(60.0, || counts() == (10_000, 10_000)), "{:?}\n{}", counts(), agent1.output().len());
    sandbox.netlab_ok(&["destroy", &file]);
}
