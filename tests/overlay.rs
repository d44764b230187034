//! Privileged tests of VXLAN devices and static ARP/FDB entries (part 6 of the
//! tutorial), each in its own sandbox.

mod support;

use support::{topology, Sandbox};

#[test]
fn static_overlay_lifecycle() {
    let sandbox = Sandbox::new();
    let before = sandbox.snapshot();
    let file = topology("overlay-static.yaml");
    sandbox.netlab_ok(&["apply", &file]);
    let checks = sandbox.netlab_ok(&["check", &file]);
    assert!(checks.contains("3 passed, 0 failed"), "{checks}");
    // The device lives in ov1, its socket on host1's underlay.
    let device = sandbox.ok("ip", &["-n", "ov1", "-d", "link", "show", "vxlan1"]);
    assert!(
        device.contains("vxlan id 42") && device.contains("link-netns host1") && device.contains("mtu 1450"),
        "{device}"
    );
    assert_eq!(sandbox.netlab_ok(&["plan", &file]).trim(), "no changes");

    // A static entry's destination changes: only that entry changes.
    let source = std::fs::read_to_string(&file).unwrap();
    let moved = sandbox.file(
        "moved.yaml",
        &source.replace(
            "{mac: '02:42:c0:a8:00:03', dev: vxlan1, dst: 192.168.104.3}",
            "{mac: '02:42:c0:a8:00:03', dev: vxlan1, dst: 192.168.104.9}",
        ),
    );
    let plan = sandbox.netlab_ok(&["plan", &moved]);
    assert_eq!(
        plan.lines().filter(|l| l.starts_with(['+', '-', '~'])).collect::<Vec<_>>(),
        ["~ fdb 02:42:c0:a8:00:03 dst 192.168.104.9 on ov1:vxlan1"]
    );
    sandbox.netlab_ok(&["apply", &moved]);
    let fdb = sandbox.ok("ip", &["netns", "exec", "ov1", "bridge", "fdb", "show", "dev", "vxlan1"]);
    assert!(fdb.contains("02:42:c0:a8:00:03 dst 192.168.104.9") && !fdb.contains("192.168.104.3"), "{fdb}");
    assert_eq!(sandbox.netlab_ok(&["plan", &moved]).trim(), "no changes");

    // Back, and a neighbour entry deleted by hand is drift, repaired.
    sandbox.netlab_ok(&["apply", &file]);
    sandbox.ok("ip", &["-n", "ov1", "neigh", "del", "11.11.11.3", "dev", "vxlan1"]);
    assert!(sandbox
        .netlab_ok(&["plan", &file])
        .contains("+ neighbour 11.11.11.3 lladdr 02:42:c0:a8:00:03 on ov1:vxlan1"));
    sandbox.netlab_ok(&["apply", &file]);
    assert!(sandbox.netlab_ok(&["check", &file]).contains("3 passed, 0 failed"));

    sandbox.netlab_ok(&["destroy", &file]);
    assert_eq!(sandbox.snapshot(), before);
}

#[test]
fn a_vxlan_whose_parameters_drift_is_made_again() {
    let sandbox = Sandbox::new();
    let file = topology("overlay-static.yaml");
    sandbox.netlab_ok(&["apply", &file]);
    let source = std::fs::read_to_string(&file).unwrap();
    let edited = sandbox.file(
        "edited.yaml",
        &source.replacen("vni: 42, port: 4789, underlay: host1", "vni: 43, port: 4789, underlay: host1", 1),
    );
    let plan = sandbox.netlab_ok(&["plan", &edited]);
    assert!(plan.contains("- vxlan ov1:vxlan1") && plan.contains("+ vxlan ov1:vxlan1 vni 43"), "{plan}");
    // Its static entries went with it and are put back.
    assert!(plan.contains("+ fdb 02:42:c0:a8:00:03 dst 192.168.104.3 on ov1:vxlan1"), "{plan}");
    sandbox.netlab_ok(&["apply", &edited]);
    assert!(sandbox.ok("ip", &["-n", "ov1", "-d", "link", "show", "vxlan1"]).contains("vxlan id 43"));
    assert_eq!(sandbox.netlab_ok(&["plan", &edited]).trim(), "no changes");
    sandbox.netlab_ok(&["destroy", &edited]);
}
