//! An agent's life beside its lab: one agent per device, a lab destroyed and applied
//! again under running agents, an idle etcd watch, and a store of 100,000 endpoints.
//! Each test in its own sandbox; every agent and etcd is killed when it ends.

mod support;

use std::time::Duration;

use netlab_store::endpoints::Endpoint;
use netlab_store::{AnyStore, KeyPath, Store, StoreUrl, Value};
use support::overlay::*;
use support::{agent_binary, eventually, Sandbox};

const WANT1: [&str; 2] = ["fdb 02:42:c0:a8:00:03 dst 192.168.104.3", "neigh 11.11.11.3 lladdr 02:42:c0:a8:00:03"];

#[test]
fn a_second_agent_for_the_same_device_is_refused() {
    let sandbox = Sandbox::new();
    sandbox.netlab_ok(&["apply", &own_agents(&sandbox, "overlay-dynamic.yaml")]);
    let first = agent(&sandbox, "host1", "ov1", DIR_STORE, &[]);
    assert!(eventually(10.0, || entries(&sandbox, "ov1") == WANT1), "{}", first.output());
    // Bounded: an agent that is not refused would run on (`timeout` exits 124 then).
    let second = sandbox
        .command("timeout")
        .args(["10", &agent_binary(), "run", "--netns", "ov1", "--device", "vxlan1", "--store", DIR_STORE])
        .output()
        .unwrap();
    assert_eq!(second.status.code(), Some(1), "{}", support::text(&second.stderr));
    let message = support::text(&second.stderr);
    let expected = format!("another vxlan-agent (pid {}) already serves ov1:vxlan1", first.pid());
    assert!(message.contains(&expected), "{message}");
    // Another device in the same namespace is another agent's to serve.
    let other =
        sandbox.spawn("host1", &agent_binary(), &["run", "--netns", "ov1", "--device", "br0", "--store", DIR_STORE]);
    assert!(
        eventually(5.0, || other.output().contains("device br0 is a bridge device, not a VXLAN device")),
        "{}",
        other.output()
    );
    // Names that would make paths elsewhere are refused before anything happens.
    let bad = sandbox.run(&agent_binary(), &["run", "--netns", "ov1", "--device", "x/../../y", "--store", DIR_STORE]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(support::text(&bad.stderr).contains("invalid interface name"), "{}", support::text(&bad.stderr));
    let bad = sandbox.run(&agent_binary(), &["run", "--netns", "../ov1", "--device", "vxlan1", "--store", DIR_STORE]);
    assert_eq!(bad.status.code(), Some(2));
}

#[test]
fn destroy_and_apply_under_running_agents() {
    let sandbox = Sandbox::new();
    let file = own_agents(&sandbox, "overlay-dynamic.yaml");
    sandbox.netlab_ok(&["apply", &file]);
    // Periodic resyncs would not help: they read the namespace the sockets are in.
    let agent1 = agent(&sandbox, "host1", "ov1", DIR_STORE, &[]);
    let agent2 = agent(&sandbox, "host2", "ov2", DIR_STORE, &[]);
    assert!(eventually(10.0, || entries(&sandbox, "ov1") == WANT1), "{}", agent1.output());
    assert!(eventually(10.0, || entries(&sandbox, "ov2").len() == 4), "{}", agent2.output());
    // Both overlay namespaces are deleted and made again under the same names.
    sandbox.netlab_ok(&["destroy", &file]);
    sandbox.netlab_ok(&["apply", &file]);
    // The agents follow the new namespaces: the first ping answers within 3 s.
    let first = sandbox.run("ip", &["netns", "exec", "ct1", "ping", "-c1", "-W3", "11.11.11.3"]);
    assert!(first.status.success(), "{}\n{}", support::text(&first.stdout), agent1.output());
    assert!(eventually(10.0, || entries(&sandbox, "ov2").len() == 4), "{}", agent2.output());
    assert!(agent1.output().contains("namespace ov1 was made again"), "{}", agent1.output());
}

/// Debian's etcd 3.4 with its default flags sends away clients that ping more often
/// than every 5 s; an agent's idle watch must stay up, never listing the store again.
#[test]
fn an_idle_etcd_watch_stays_up() {
    let sandbox = Sandbox::new();
    let store = "etcd://127.0.0.1:2379/overlay-dynamic";
    let source = std::fs::read_to_string(own_agents(&sandbox, "overlay-dynamic.yaml")).unwrap();
    let file = sandbox.file("overlay-dynamic-etcd.yaml", &source.replace(DIR_STORE, store));
    let _etcd = etcd(&sandbox);
    sandbox.netlab_ok(&["apply", &file]);
    let agent1 = sandbox.spawn("", &agent_binary(), &["run", "--netns", "ov1", "--device", "vxlan1", "--store", store]);
    assert!(eventually(10.0, || entries(&sandbox, "ov1") == WANT1), "{}", agent1.output());
    std::thread::sleep(Duration::from_secs(65));
    let status: serde_json::Value = serde_json::from_str(&sandbox.ok(&agent_binary(), &["status", "--json"])).unwrap();
    let counters = &status[0]["counters"];
    assert_eq!(counters["store_snapshots"], 1, "the store was listed again: {counters}\n{}", agent1.output());
    assert_eq!(counters["store_errors"], 0, "{counters}\n{}", agent1.output());
    // And the watch still delivers.
    let publish =
        ["publish", "--store", store, "--ip", "11.11.11.9", "--mac", "02:42:c0:a8:00:09", "--vtep", "192.168.104.3"];
    sandbox.ok(&agent_binary(), &publish);
    assert!(eventually(5.0, || entries(&sandbox, "ov1").len() == 4), "{:?}", entries(&sandbox, "ov1"));
}

/// 100,000 endpoints on host2 in etcd: listed in full (in pages, past the client's
/// 4 MiB message limit) and all installed by host1's agent.
#[test]
fn a_hundred_thousand_etcd_endpoints_list_and_install() {
    const ENDPOINTS: u32 = 100_000;
    let sandbox = Sandbox::new();
    let store = "etcd://127.0.0.1:2379/big";
    let source = std::fs::read_to_string(own_agents(&sandbox, "overlay-dynamic.yaml")).unwrap();
    let file = sandbox.file("overlay-dynamic-etcd.yaml", &source.replace(DIR_STORE, "etcd://127.0.0.1:2379/small"));
    let _etcd = etcd(&sandbox);
    sandbox.netlab_ok(&["apply", &file]);
    sandbox.in_net(|| {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let url: StoreUrl = store.parse().unwrap();
        let client = AnyStore::open(&url, None, Duration::ZERO).unwrap();
        let mut keys = Vec::with_capacity(2 * ENDPOINTS as usize);
        for n in 0..ENDPOINTS {
            let endpoint = Endpoint {
                ip: format!("10.{}.{}.{}", n >> 16, (n >> 8) & 255, n & 255).parse().unwrap(),
                mac: format!("02:00:00:{:02x}:{:02x}:{:02x}", n >> 16, (n >> 8) & 255, n & 255).parse().unwrap(),
                vtep: "192.168.104.3".parse().unwrap(),
            };
            for entry in endpoint.entries() {
                let path: KeyPath = entry.key().path();
                let value = Value::new(&path, entry.value()).unwrap();
                keys.push((path, value));
            }
        }
        runtime.block_on(client.put_many(&keys)).unwrap();
    });
    let list = sandbox.run(&agent_binary(), &["list", "--store", store]);
    assert!(list.status.success(), "{}", support::text(&list.stderr));
    assert_eq!(support::text(&list.stdout).lines().count(), 2 * ENDPOINTS as usize);

    let agent1 = sandbox.spawn("", &agent_binary(), &["run", "--netns", "ov1", "--device", "vxlan1", "--store", store]);
    let counts = || {
        let neighbours = sandbox.ok("ip", &["-n", "ov1", "neigh", "show", "dev", "vxlan1"]);
        let fdb = sandbox.ok("ip", &["netns", "exec", "ov1", "bridge", "fdb", "show", "dev", "vxlan1"]);
        (
            neighbours.lines().filter(|l| l.contains("proto 78")).count(),
            fdb.lines().filter(|l| l.contains("extern_learn")).count(),
        )
    };
    let all = (ENDPOINTS as usize, ENDPOINTS as usize);
    assert!(eventually(120.0, || counts() == all), "{:?}\n{}", counts(), agent1.output());
}
