//! Privileged tests of NAT, published ports and coexistence with iptables (part 4 of
//! the tutorial), each in its own sandbox.

mod support;

use support::{firewall, iptables_rules, text, topology, Sandbox};

/// Someone else's rules, there before the lab and still there after it.
fn add_foreign_rules(sandbox: &Sandbox) {
    sandbox.ok("nft", &["add", "table", "ip", "theirs"]);
    sandbox.ok("nft", &["add", "chain", "ip", "theirs", "post", "{ type nat hook postrouting priority 50; }"]);
    sandbox.ok("nft", &["add", "rule", "ip", "theirs", "post", "ip", "saddr", "10.77.0.0/16", "masquerade"]);
    sandbox.ok("iptables", &["-A", "FORWARD", "-s", "10.88.0.0/16", "-j", "ACCEPT"]);
}

fn lifecycle(sandbox: &Sandbox, lab: &str, checks: usize) {
    let file = topology(lab);
    sandbox.netlab_ok(&["apply", &file]);
    let outcome = sandbox.netlab_ok(&["check", &file]);
    assert!(outcome.contains(&format!("{checks} passed, 0 failed")), "{lab}: {outcome}");
    assert_eq!(sandbox.netlab_ok(&["plan", &file]).trim(), "no changes", "{lab}");
    sandbox.netlab_ok(&["destroy", &file]);
}

#[test]
fn gateway_nat_and_port_forward_labs() {
    let sandbox = Sandbox::new();
    add_foreign_rules(&sandbox);
    let before = (sandbox.snapshot(), firewall(&sandbox));
    for (lab, checks) in [("gateway.yaml", 3), ("nat.yaml", 4), ("port-forward.yaml", 10)] {
        lifecycle(&sandbox, lab, checks);
        assert_eq!((sandbox.snapshot(), firewall(&sandbox)), before, "{lab} left something behind");
    }
}

#[test]
fn with_forward_policy_drop_the_labs_still_work_and_leave_iptables_as_it_was() {
    let sandbox = Sandbox::new();
    // What Docker leaves behind: FORWARD drops, and bridged traffic crosses it.
    sandbox.ok("iptables", &["-P", "FORWARD", "DROP"]);
    sandbox.ok("sysctl", &["-qw", "net.bridge.bridge-nf-call-iptables=1"]);
    add_foreign_rules(&sandbox);
    let before = (sandbox.snapshot(), firewall(&sandbox));
    for (lab, checks) in [("bridge.yaml", 3), ("gateway.yaml", 3), ("nat.yaml", 4), ("port-forward.yaml", 10)] {
        let planned = sandbox.netlab_ok(&["plan", &topology(lab)]);
        assert!(
            planned.contains("+ iptables FORWARD rule in host: accept forwarding to 11.11.11.0/24"),
            "{lab}: {planned}"
        );
        lifecycle(&sandbox, lab, checks);
        assert_eq!((sandbox.snapshot(), firewall(&sandbox)), before, "{lab} left something behind");
    }
}

#[test]
fn the_accept_rules_are_what_lets_bridged_traffic_through() {
    let sandbox = Sandbox::new();
    sandbox.ok("iptables", &["-P", "FORWARD", "DROP"]);
    sandbox.ok("sysctl", &["-qw", "net.bridge.bridge-nf-call-iptables=1"]);
    let file = topology("bridge.yaml");
    sandbox.netlab_ok(&["apply", &file]);
    assert!(sandbox.netlab_ok(&["check", &file]).contains("3 passed, 0 failed"));
    // Drift: the lab's accept rules removed by hand.
    for direction in ["-s", "-d"] {
        sandbox.ok(
            "iptables",
            &[
                "-D",
                "FORWARD",
                direction,
                "11.11.11.0/24",
                "-m",
                "comment",
                "--comment",
                "netlab:bridge",
                "-j",
                "ACCEPT",
            ],
        );
    }
    let failed = sandbox.netlab(&["check", &file]);
    assert_eq!(failed.status.code(), Some(1), "pings must fail without the accepts: {}", text(&failed.stdout));
    let status = sandbox.netlab(&["status", &file]);
    assert_eq!(status.status.code(), Some(1), "status exits 1 on drift");
    let status = text(&status.stdout);
    assert!(
        status.contains("missing    iptables FORWARD rule in host: accept forwarding from 11.11.11.0/24"),
        "{status}"
    );
    sandbox.netlab_ok(&["apply", &file]);
    assert!(sandbox.netlab_ok(&["check", &file]).contains("3 passed, 0 failed"));
    sandbox.netlab_ok(&["destroy", &file]);
}

#[test]
fn the_masquerade_is_what_reaches_the_outside_and_drift_is_repaired() {
    let sandbox = Sandbox::new();
    let file = topology("nat.yaml");
    sandbox.netlab_ok(&["apply", &file]);
    assert!(
        sandbox.ok("ip", &["-n", "EXT", "route"]).lines().all(|r| !r.contains("11.11.11")),
        "EXT must have no route back"
    );
    assert!(sandbox.netlab_ok(&["check", &file]).contains("4 passed, 0 failed"));

    // The table deleted by hand: the outside is unreachable, status shows it, apply repairs.
    sandbox.ok("nft", &["delete", "table", "ip", "netlab-bridge"]);
    let failed = sandbox.netlab(&["check", &file]);
    assert!(text(&failed.stdout).contains("FAIL  ping from RED to 203.0.113.1"), "{}", text(&failed.stdout));
    let status = sandbox.netlab(&["status", &file]);
    assert_eq!(status.status.code(), Some(1), "status exits 1 on drift");
    assert!(text(&status.stdout).contains("missing    nat table in host"));
    sandbox.netlab_ok(&["apply", &file]);
    assert!(sandbox.netlab_ok(&["check", &file]).contains("4 passed, 0 failed"));

    // A rule added to the lab's table by hand is drift too.
    sandbox
        .ok("nft", &["add", "rule", "ip", "netlab-bridge", "postrouting", "ip", "saddr", "10.1.0.0/16", "masquerade"]);
    assert_eq!(
        sandbox.netlab_ok(&["plan", &file]).trim().lines().next(),
        Some("~ nat table in host: 1 masquerade, 0 published ports")
    );
    sandbox.netlab_ok(&["apply", &file]);
    assert!(!sandbox.ok("nft", &["list", "table", "ip", "netlab-bridge"]).contains("10.1.0.0"));
    sandbox.netlab_ok(&["destroy", &file]);
    assert_eq!(sandbox.ok("nft", &["list", "ruleset"]).trim(), "");
}

#[test]
fn a_missing_nft_is_named_before_anything_changes() {
    let sandbox = Sandbox::new();
    let before = sandbox.snapshot();
    // Hide nft inside the sandbox's own mount namespace.
    let nft = sandbox.ok("sh", &["-c", "command -v nft"]);
    sandbox.ok("mount", &["--bind", "/dev/null", nft.trim()]);
    let output = sandbox.netlab(&["apply", &topology("nat.yaml")]);
    assert_eq!(output.status.code(), Some(1));
    assert!(text(&output.stderr).contains("nft not found: install the nftables package"), "{}", text(&output.stderr));
    assert_eq!(sandbox.snapshot(), before);
}

#[test]
fn a_legacy_iptables_forward_drop_is_accommodated_too() {
    let sandbox = Sandbox::new();
    sandbox.ok("iptables-legacy", &["-P", "FORWARD", "DROP"]);
    sandbox.ok("iptables-legacy", &["-A", "FORWARD", "-s", "10.88.0.0/16", "-j", "ACCEPT"]);
    sandbox.ok("sysctl", &["-qw", "net.bridge.bridge-nf-call-iptables=1"]);
    let legacy = || iptables_rules(&sandbox.ok("iptables-legacy-save", &[]));
    let before = (sandbox.snapshot(), legacy(), firewall(&sandbox));
    for (lab, checks) in [("bridge.yaml", 3), ("nat.yaml", 4)] {
        let planned = sandbox.netlab_ok(&["plan", &topology(lab)]);
        assert!(planned.contains("accept forwarding to 11.11.11.0/24 (iptables-legacy)"), "{lab}: {planned}");
        lifecycle(&sandbox, lab, checks);
        assert_eq!((sandbox.snapshot(), legacy(), firewall(&sandbox)), before, "{lab} left something behind");
    }
}

#[test]
fn no_legacy_table_is_created_by_looking() {
    let sandbox = Sandbox::new();
    let file = topology("nat.yaml");
    sandbox.netlab_ok(&["apply", &file]);
    sandbox.netlab_ok(&["destroy", &file]);
    assert_eq!(sandbox.ok("cat", &["/proc/net/ip_tables_names"]).trim(), "");
}
