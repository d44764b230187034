//! Privileged tests of existing devices: the two-VM half-files (topologies/vm/) name
//! the VM's own card, eth1, which netlab does not create. In each sandbox, eth1 is a
//! veth made by hand and addressed as Vagrant would; "two VMs" are two namespaces, vm1
//! and vm2, joined by their eth1s (192.168.104.2 and .3), and netlab runs inside each
//! through `nsenter --net` (not `ip netns exec`, whose private mount namespace would
//! take the namespaces netlab makes with it when netlab exits). netlab checks eth1 at
//! plan time, builds the overlay over it, and destroy leaves it exactly as it was.

mod support;

use std::process::Output;

use support::{agent_binary, eventually, text, topology, Sandbox};

/// Run netlab inside a simulated VM: its network namespace, the sandbox's mounts.
fn in_vm(sandbox: &Sandbox, vm: &str, args: &[&str]) -> Output {
    let namespace = format!("--net=/run/netns/{vm}");
    sandbox.run("nsenter", &[&[namespace.as_str(), "--", env!("CARGO_BIN_EXE_netlab")][..], args].concat())
}

fn in_vm_ok(sandbox: &Sandbox, vm: &str, args: &[&str]) -> String {
    let output = in_vm(sandbox, vm, args);
    assert!(output.status.success(), "netlab {args:?} in {vm}: {}{}", text(&output.stdout), text(&output.stderr));
    text(&output.stdout)
}

/// Everything about a card `ip` shows: link (state, MTU, master, alias, IPv6 mode) and
/// addresses. `vm` empty: the sandbox's own namespace.
fn card(sandbox: &Sandbox, vm: &str) -> String {
    let ip = |args: &[&str]| {
        let prefix: &[&str] = if vm.is_empty() { &[] } else { &["-n", vm] };
        sandbox.ok("ip", &[prefix, args].concat())
    };
    // Wait out IPv6 duplicate address detection of its link-local address.
    assert!(eventually(5.0, || !ip(&["addr", "show", "eth1"]).contains("tentative")));
    let shown = format!("{}{}", ip(&["-d", "link", "show", "eth1"]), ip(&["-d", "addr", "show", "eth1"]));
    // Without what runs by itself: a bridge port's timers.
    let mut words = shown.split(' ').peekable();
    let mut kept = Vec::new();
    while let Some(word) = words.next() {
        kept.push(word);
        if word.ends_with("_timer") {
            while words.next_if(|w| w.is_empty()).is_some() {}
            words.next();
        }
    }
    kept.join(" ")
}

/// Two simulated VMs, vm1 and vm2, whose cards eth1 are joined as the tutorial's
/// private network: 192.168.104.2 and .3.
fn two_vms(sandbox: &Sandbox) {
    for vm in ["vm1", "vm2"] {
        sandbox.ok("ip", &["netns", "add", vm]);
        sandbox.ok("ip", &["-n", vm, "link", "set", "lo", "up"]);
    }
    sandbox.ok("ip", &["link", "add", "eth1", "netns", "vm1", "type", "veth", "peer", "name", "eth1", "netns", "vm2"]);
    for (vm, address) in [("vm1", "192.168.104.2/24"), ("vm2", "192.168.104.3/24")] {
        sandbox.ok("ip", &["-n", vm, "addr", "add", address, "dev", "eth1"]);
        sandbox.ok("ip", &["-n", vm, "link", "set", "eth1", "up"]);
    }
}

fn ping(sandbox: &Sandbox, from: &str, to: &str) -> bool {
    sandbox.run("ip", &["netns", "exec", from, "ping", "-c1", "-W1", to]).status.success()
}

/// A half-file with other checks in place of its own.
fn with_checks(sandbox: &Sandbox, file: &str, checks: &str) -> String {
    let source = std::fs::read_to_string(topology(file)).unwrap();
    let cut = source.find("\nchecks:\n").unwrap();
    let name = file.replace('/', "-");
    sandbox.file(&name, &format!("{}\nchecks:\n{checks}", &source[..cut]))
}

/// A half-file on the VM's own card, as a VM might have it: an alias of its own, MTU
/// 1400, two addresses, a port of a bridge made by hand. The overlay takes 1400 - 50;
/// nothing else of the card changes, `plan` of the applied lab is empty, `status`
/// lists the card as an existing device, and destroy leaves it exactly as it was.
#[test]
fn a_half_file_on_the_hosts_own_card() {
    let sandbox = Sandbox::new();
    sandbox.ok("ip", &["link", "add", "eth1", "type", "veth", "peer", "name", "far"]);
    sandbox.ok("ip", &["link", "add", "hand0", "type", "bridge"]);
    for args in [
        &["link", "set", "eth1", "alias", "the VM's card", "mtu", "1400", "master", "hand0"][..],
        &["addr", "add", "192.168.104.2/24", "dev", "eth1"],
        &["addr", "add", "10.0.2.15/24", "dev", "eth1"],
        &["link", "set", "far", "up"],
        &["link", "set", "hand0", "up"],
        &["link", "set", "eth1", "up"],
    ] {
        sandbox.ok("ip", args);
    }
    // Once IPv6 duplicate address detection is over everywhere.
    assert!(eventually(5.0, || !sandbox.ok("ip", &["addr"]).contains("tentative")));
    let before = sandbox.snapshot();
    let card_before = card(&sandbox, "");
    let file = topology("vm/host1-static.yaml");

    let applied = sandbox.netlab_ok(&["apply", &file]);
    assert!(
        applied.contains("+ vxlan ov1:vxlan1 vni 42 dstport 4789 local 192.168.104.2 dev eth1 mtu 1350"),
        "{applied}"
    );
    let device = sandbox.ok("ip", &["-n", "ov1", "-d", "link", "show", "vxlan1"]);
    assert!(device.contains("mtu 1350") && device.contains("vxlan id 42 local 192.168.104.2"), "{device}");
    assert!(sandbox.ok("ip", &["-n", "ct1", "link", "show", "eth0"]).contains("mtu 1350"));
    let checks = sandbox.netlab_ok(&["check", &file]);
    assert!(checks.contains("2 passed, 0 failed"), "{checks}");
    assert_eq!(card(&sandbox, ""), card_before, "apply changed the card");

    assert_eq!(sandbox.netlab_ok(&["plan", &file]).trim(), "no changes");
    let status: serde_json::Value = serde_json::from_str(&sandbox.netlab_ok(&["status", &file, "-o", "json"])).unwrap();
    assert_eq!(status["in_sync"], true, "{status}");
    let objects = status["objects"].as_array().unwrap();
    assert!(objects.iter().all(|o| o["state"] == "ok"), "{status}");
    assert!(objects.iter().any(|o| o["object"] == "existing device eth1 in host"), "{status}");

    let destroyed = sandbox.netlab_ok(&["destroy", &file]);
    assert!(!destroyed.contains("eth1"), "{destroyed}");
    assert_eq!(card(&sandbox, ""), card_before, "destroy changed the card");
    assert_eq!(sandbox.snapshot(), before);
}

/// What needs the card's facts fails at plan time with exit code 4 (the file is valid:
/// this host does not fit it), naming the card, before any change.
#[test]
fn plan_time_errors_name_the_existing_device_and_change_nothing() {
    let sandbox = Sandbox::new();
    let file = topology("vm/host1-static.yaml");
    let before = sandbox.snapshot();
    let fails = |args: &[&str], message: &str| {
        let output = sandbox.netlab(args);
        let stderr = text(&output.stderr);
        assert_eq!(output.status.code(), Some(4), "{args:?}: {stderr}");
        assert!(stderr.starts_with(message), "{args:?}: {stderr}");
    };
    assert!(sandbox.netlab_ok(&["validate", &file]).contains("existing devices, checked at plan time: eth1 in host"));

    // No such card.
    fails(&["plan", &file], "netlab: existing device `eth1` in host: no such link");
    fails(&["apply", &file], "netlab: existing device `eth1` in host: no such link");
    assert_eq!(sandbox.snapshot(), before, "a failed apply changed something");

    // The VTEP address is not the card's.
    sandbox.ok("ip", &["link", "add", "eth1", "type", "veth", "peer", "name", "far"]);
    sandbox.ok("ip", &["addr", "add", "192.168.104.9/24", "dev", "eth1"]);
    let not_its = "netlab: VTEP address 192.168.104.2 of `ov1:vxlan1` is not an address of existing device `eth1` \
                   in host (it has 192.168.104.9/24";
    fails(&["plan", &file], not_its);
    fails(&["apply", &file], not_its);

    // An MTU the file sets that the card cannot carry.
    sandbox.ok("ip", &["addr", "add", "192.168.104.2/24", "dev", "eth1"]);
    sandbox.ok("ip", &["link", "set", "eth1", "mtu", "1400"]);
    let source = std::fs::read_to_string(&file).unwrap();
    let sized = sandbox
        .file("sized.yaml", &source.replace("learning: true, bridge: br0}", "learning: true, bridge: br0, mtu: 1450}"));
    let too_small = "netlab: mtu 1450 of `ov1:vxlan1` is larger than 1350 carries over existing device `eth1` in host \
                     (its mtu 1400 less 50)";
    fails(&["plan", &sized], too_small);
    fails(&["apply", &sized], too_small);
    assert_eq!(sandbox.ok("ls", &["/run/netns"]), "", "a failed apply made namespaces");

    // A card that fits: the same file applies.
    sandbox.ok("ip", &["link", "set", "eth1", "mtu", "1500"]);
    assert!(sandbox.netlab_ok(&["apply", &sized]).contains("mtu 1450"));
    sandbox.netlab_ok(&["destroy", &sized]);
}

/// Part 6 on two simulated VMs: each applies its half over its own eth1, ct1 and ct2
/// ping each other through vxlan1 and out of the VM's eth1, plans of both are empty,
/// and destroying both leaves each card exactly as it was.
#[test]
fn two_vms_ping_across_the_static_overlay_and_destroy_leaves_their_cards() {
    let sandbox = Sandbox::new();
    two_vms(&sandbox);
    let before = sandbox.snapshot();
    let cards = [card(&sandbox, "vm1"), card(&sandbox, "vm2")];
    let halves = [("vm1", topology("vm/host1-static.yaml")), ("vm2", topology("vm/host2-static.yaml"))];
    for (vm, file) in &halves {
        in_vm_ok(&sandbox, vm, &["apply", file]);
    }
    for (vm, file) in &halves {
        let checks = in_vm_ok(&sandbox, vm, &["check", file]);
        assert!(checks.contains("2 passed, 0 failed"), "{vm}: {checks}");
        assert_eq!(in_vm_ok(&sandbox, vm, &["plan", file]).trim(), "no changes", "{vm}");
    }
    // Across: the ping went through the VXLAN device and out of the VM's own card.
    let across1 = with_checks(
        &sandbox,
        "vm/host1-static.yaml",
        "  - overlay: {from: ct1, to: 11.11.11.3, vxlan: 'ov1:vxlan1', vni: 42}\n",
    );
    let across2 = with_checks(
        &sandbox,
        "vm/host2-static.yaml",
        "  - overlay: {from: ct2, to: 11.11.11.2, vxlan: 'ov2:vxlan1', vni: 42}\n",
    );
    assert!(in_vm_ok(&sandbox, "vm1", &["check", &across1]).contains("1 passed, 0 failed"));
    assert!(in_vm_ok(&sandbox, "vm2", &["check", &across2]).contains("1 passed, 0 failed"));

    for (vm, file) in &halves {
        in_vm_ok(&sandbox, vm, &["destroy", file]);
    }
    assert_eq!([card(&sandbox, "vm1"), card(&sandbox, "vm2")], cards, "destroy changed a card");
    assert_eq!(sandbox.snapshot(), before);
    assert_eq!(sandbox.ok("ls", &["/run/netns"]).split_whitespace().collect::<Vec<_>>(), ["vm1", "vm2"]);
}

/// What `status` says of each half's agent, for a failure's message.
fn agent_logs(sandbox: &Sandbox, halves: &[(&str, String)]) -> String {
    halves.iter().map(|(vm, file)| text(&in_vm(sandbox, vm, &["status", file]).stdout)).collect()
}

/// Both pings of the overlay answer within `seconds`.
fn overlay_pings(sandbox: &Sandbox, seconds: f64) -> bool {
    eventually(seconds, || ping(sandbox, "ct1", "11.11.11.3") && ping(sandbox, "ct2", "11.11.11.2"))
}

/// Part 7 with the folder store: each half publishes its container behind its own
/// VTEP (the `local` on the existing card), the agents fill the devices from the
/// folder, the containers ping each other, and destroy withdraws them.
#[test]
fn two_vms_with_the_folder_store_publish_behind_their_cards() {
    let sandbox = Sandbox::new();
    two_vms(&sandbox);
    let cards = [card(&sandbox, "vm1"), card(&sandbox, "vm2")];
    let (folder, store) = ("/run/netlab/stores/vm-demo", "dir:/run/netlab/stores/vm-demo");
    let half = |file: &str| {
        let source = std::fs::read_to_string(topology(file)).unwrap();
        sandbox.file(&file.replace('/', "-"), &source.replace("dir:/vagrant/overlaynet/storage", store))
    };
    let halves = [("vm1", half("vm/host1-dynamic.yaml")), ("vm2", half("vm/host2-dynamic.yaml"))];
    for (vm, file) in &halves {
        in_vm_ok(&sandbox, vm, &["apply", file]);
    }
    let key = |name: &str| sandbox.ok("cat", &[&format!("{folder}/{name}")]).trim().to_string();
    assert_eq!(
        [key("arp/11.11.11.2"), key("fdb/02:42:c0:a8:00:02"), key("arp/11.11.11.3"), key("fdb/02:42:c0:a8:00:03")],
        ["02:42:c0:a8:00:02", "192.168.104.2", "02:42:c0:a8:00:03", "192.168.104.3"]
    );

    // Each half's apply runs its agent (netlab's, in the VM's namespace).
    assert!(overlay_pings(&sandbox, 10.0), "{}", agent_logs(&sandbox, &halves));
    for (vm, file) in &halves {
        assert!(in_vm_ok(&sandbox, vm, &["check", file]).contains("2 passed, 0 failed"));
        assert_eq!(in_vm_ok(&sandbox, vm, &["plan", file]).trim(), "no changes", "{vm}");
    }

    for (vm, file) in &halves {
        in_vm_ok(&sandbox, vm, &["destroy", file]);
    }
    let left = sandbox.ok("find", &[folder, "-type", "f"]);
    assert_eq!(left, "", "destroy withdrew the endpoints");
    assert_eq!([card(&sandbox, "vm1"), card(&sandbox, "vm2")], cards, "destroy changed a card");
}

/// Part 7 with etcd on host1, the half-files as they are: etcd listens on vm1's card
/// (192.168.104.2:2379), vm2 publishes across the underlay, the agents fill the devices
/// from etcd and the containers ping each other; destroy withdraws both.
#[test]
fn two_vms_with_etcd_on_host1() {
    let sandbox = Sandbox::new();
    two_vms(&sandbox);
    let cards = [card(&sandbox, "vm1"), card(&sandbox, "vm2")];
    let data = sandbox.dir.join("etcd");
    let client = "http://192.168.104.2:2379";
    let etcd = sandbox.spawn(
        "vm1",
        "etcd",
        &[
            "--name",
            "host1",
            "--data-dir",
            data.to_str().unwrap(),
            "--listen-client-urls",
            client,
            "--advertise-client-urls",
            client,
            "--listen-peer-urls",
            "http://127.0.0.1:2380",
            "--initial-advertise-peer-urls",
            "http://127.0.0.1:2380",
            "--initial-cluster",
            "host1=http://127.0.0.1:2380",
        ],
    );
    assert!(eventually(20.0, || etcd.output().contains("ready to serve client requests")), "{}", etcd.output());

    let store = "etcd://192.168.104.2:2379";
    let halves = [("vm1", topology("vm/host1-etcd.yaml")), ("vm2", topology("vm/host2-etcd.yaml"))];
    for (vm, file) in &halves {
        in_vm_ok(&sandbox, vm, &["apply", file]);
    }
    let list = || sandbox.ok("ip", &["netns", "exec", "vm2", &agent_binary(), "list", "--store", store]);
    assert_eq!(
        list().lines().collect::<Vec<_>>(),
        [
            "arp/11.11.11.2 02:42:c0:a8:00:02",
            "arp/11.11.11.3 02:42:c0:a8:00:03",
            "fdb/02:42:c0:a8:00:02 192.168.104.2",
            "fdb/02:42:c0:a8:00:03 192.168.104.3",
        ]
    );

    assert!(overlay_pings(&sandbox, 10.0), "{}", agent_logs(&sandbox, &halves));

    for (vm, file) in &halves {
        in_vm_ok(&sandbox, vm, &["destroy", file]);
    }
    assert_eq!(list(), "", "destroy withdrew the endpoints");
    assert_eq!([card(&sandbox, "vm1"), card(&sandbox, "vm2")], cards, "destroy changed a card");
}

/// A host route through the existing card: made with the lab's protocol, its gateway
/// checked against the card's subnets at plan time, removed by destroy with nothing
/// else of the card.
#[test]
fn a_host_route_through_the_existing_card() {
    let sandbox = Sandbox::new();
    sandbox.ok("ip", &["link", "add", "eth1", "type", "veth", "peer", "name", "far"]);
    sandbox.ok("ip", &["addr", "add", "192.168.104.2/24", "dev", "eth1"]);
    sandbox.ok("ip", &["link", "set", "far", "up"]);
    sandbox.ok("ip", &["link", "set", "eth1", "up"]);
    assert!(eventually(5.0, || !sandbox.ok("ip", &["addr"]).contains("tentative")));
    let before = sandbox.snapshot();
    let card_before = card(&sandbox, "");
    let routed = "name: routed\nhost:\n  routes:\n    - {to: 10.99.0.0/16, via: 192.168.104.1, dev: eth1}\n    - {to: 10.98.0.0/16, dev: eth1}\n";
    let file = sandbox.file("routed.yaml", routed);
    sandbox.netlab_ok(&["apply", &file]);
    let routes = sandbox.ok("ip", &["route", "show", "proto", "77"]);
    assert_eq!(
        routes.lines().map(str::trim).collect::<Vec<_>>(),
        ["10.98.0.0/16 dev eth1", "10.99.0.0/16 via 192.168.104.1 dev eth1"],
    );
    assert_eq!(sandbox.netlab_ok(&["plan", &file]).trim(), "no changes");

    let off = sandbox.file("off.yaml", &routed.replace("via: 192.168.104.1", "via: 10.1.0.1"));
    let output = sandbox.netlab(&["plan", &off]);
    assert_eq!(output.status.code(), Some(4));
    assert!(
        text(&output.stderr).starts_with(
            "netlab: gateway 10.1.0.1 of route `10.99.0.0/16 via 10.1.0.1 dev eth1` in host is not on any subnet \
             of existing device `eth1` (it has 192.168.104.2/24"
        ),
        "{}",
        text(&output.stderr)
    );

    sandbox.netlab_ok(&["destroy", &file]);
    assert_eq!(card(&sandbox, ""), card_before);
    assert_eq!(sandbox.snapshot(), before);
}
