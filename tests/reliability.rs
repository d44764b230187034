//! Privileged tests of what must hold whatever happens: a killed apply, a failure in
//! the middle of an apply, other labs and host settings.

mod support;

use std::time::{Duration, Instant};

use support::{text, topology, Sandbox};

/// A star of `n` namespaces on a host bridge, as YAML.
fn star(name: &str, n: usize) -> String {
    let mut yaml = format!("name: {name}\nhost:\n  bridges:\n    br0: {{}}\n  interfaces:\n");
    for i in 0..n {
        yaml.push_str(&format!("    p{i}: {{bridge: br0}}\n"));
    }
    yaml.push_str("nodes:\n");
    for i in 0..n {
        yaml.push_str(&format!(
            "  n{i}:\n    interfaces:\n      eth0: {{addresses: [10.0.{}.{}/16]}}\n",
            (i + 2) / 256,
            (i + 2) % 256
        ));
    }
    yaml.push_str("links:\n");
    for i in 0..n {
        yaml.push_str(&format!("  - endpoints: [n{i}:eth0, p{i}]\n"));
    }
    yaml.push_str("checks:\n  - ping: {from: n0, to: n1}\n");
    yaml
}

/// Start an apply of a large lab and SIGKILL it once some of its namespaces exist.
fn killed_apply(sandbox: &Sandbox, file: &str) {
    let mut apply = sandbox.command(env!("CARGO_BIN_EXE_netlab")).args(["apply", file]).spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let made = sandbox.ok("ls", &["-1", "/run/netns"]).lines().count();
        if made >= 20 || Instant::now() > deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    // nsenter execs netlab in place: this SIGKILLs netlab itself, and nothing else.
    let _ = apply.kill();
    let _ = apply.wait();
}

#[test]
fn an_apply_killed_midway_is_finished_by_the_next_apply() {
    let sandbox = Sandbox::new();
    let before = sandbox.snapshot();
    let file = sandbox.file("star.yaml", &star("star", 300));
    killed_apply(&sandbox, &file);
    // Whatever state the kill left, the next apply converges and the lab works.
    sandbox.netlab_ok(&["apply", &file]);
    assert_eq!(sandbox.ok("ls", &["-1", "/run/netns"]).lines().count(), 300);
    assert!(sandbox.netlab_ok(&["check", &file]).contains("1 passed, 0 failed"));
    assert_eq!(sandbox.netlab_ok(&["apply", &file]).trim(), "no changes");
    sandbox.netlab_ok(&["destroy", &file]);
    assert_eq!(sandbox.snapshot(), before);
}

#[test]
fn an_apply_killed_midway_is_undone_by_destroy_without_the_file() {
    let sandbox = Sandbox::new();
    let before = sandbox.snapshot();
    let file = sandbox.file("star.yaml", &star("star", 300));
    killed_apply(&sandbox, &file);
    std::fs::remove_file(&file).unwrap();
    sandbox.netlab_ok(&["destroy", "--name", "star"]);
    assert_eq!(sandbox.snapshot(), before);
}

#[test]
fn a_failure_midway_rolls_back_what_the_run_created() {
    let sandbox = Sandbox::new();
    let before = sandbox.snapshot();
    // The kernel has no such sysctl: the failure comes after namespaces, links and
    // addresses were made.
    let source = std::fs::read_to_string(topology("bridge.yaml")).unwrap();
    let file =
        sandbox.file("lab.yaml", &source.replace("  RED:\n", "  RED:\n    sysctls:\n      net.ipv4.no_such_key: 1\n"));
    let output = sandbox.netlab(&["apply", &file]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = text(&output.stderr);
    assert!(stderr.contains("rolled back what this run created"), "{stderr}");
    assert!(stderr.contains("set sysctl net.ipv4.no_such_key=1: no such file or directory"), "{stderr}");
    assert_eq!(sandbox.snapshot().namespaces, before.namespaces);
    assert_eq!(sandbox.snapshot().links, before.links);
    // The record of the attempt is harmless: destroy finds nothing and cleans it.
    sandbox.netlab_ok(&["destroy", "--name", "bridge"]);
    assert_eq!(sandbox.snapshot(), before);
}

const GATEWAY: &str = "name: routed
host:
  bridges:
    br0: {addresses: [11.11.11.1/24, 'fd00:11::1/64']}
  interfaces:
    reth1: {bridge: br0}
  sysctls:
    net.ipv4.ip_forward: 1
  routes:
    - {to: 10.20.0.0/16, via: 11.11.11.2}
nodes:
  RED:
    interfaces:
      reth0: {addresses: [11.11.11.2/24, 'fd00:11::2/64']}
      lo: {addresses: [10.20.0.1/32]}
    routes:
      - {to: default, via: 11.11.11.1}
      - {to: 'fd00:99::/64', via: 'fd00:11::1'}
links:
  - endpoints: [RED:reth0, reth1]
checks:
  - ping: {from: RED, to: 11.11.11.1}
  - ping: {from: host, to: RED}
  - ping: {from: host, to: 10.20.0.1}
  - ping: {from: RED, to: 'fd00:11::1'}
  - tcp: {from: host, to: '10.20.0.1:8080', listen: RED}
";

#[test]
fn routes_sysctls_and_ipv6_on_the_host_are_restored_by_destroy() {
    let sandbox = Sandbox::new();
    let before = sandbox.snapshot();
    assert_eq!(sandbox.ok("sysctl", &["-n", "net.ipv4.ip_forward"]).trim(), "0");
    let file = sandbox.file("routed.yaml", GATEWAY);
    sandbox.netlab_ok(&["apply", &file]);
    let checks = sandbox.netlab_ok(&["check", &file]);
    assert!(checks.contains("5 passed, 0 failed"), "{checks}");
    assert_eq!(sandbox.ok("sysctl", &["-n", "net.ipv4.ip_forward"]).trim(), "1");
    assert!(sandbox.ok("ip", &["route", "show", "10.20.0.0/16"]).contains("via 11.11.11.2 dev br0 proto 77"));
    // IPv6 was asked for on these links: link-local autoconfiguration stays on there.
    assert!(sandbox.ok("ip", &["-n", "RED", "-6", "addr", "show", "dev", "reth0"]).contains("fe80"));
    assert_eq!(sandbox.netlab_ok(&["apply", &file]).trim(), "no changes");

    // A route deleted by hand is drift, repaired by apply.
    sandbox.ok("ip", &["-n", "RED", "route", "del", "default"]);
    let status = sandbox.netlab(&["status", &file]);
    assert_eq!(status.status.code(), Some(1), "status exits 1 on drift");
    let status = text(&status.stdout);
    assert!(status.contains("missing    route default via 11.11.11.1 in RED"), "{status}");
    sandbox.netlab_ok(&["apply", &file]);
    assert!(sandbox.netlab_ok(&["check", &file]).contains("5 passed, 0 failed"));

    sandbox.netlab_ok(&["destroy", &file]);
    assert_eq!(sandbox.snapshot(), before);
}

#[test]
fn labs_do_not_touch_each_other() {
    let sandbox = Sandbox::new();
    let before = sandbox.snapshot();
    sandbox.netlab_ok(&["apply", &topology("bridge.yaml")]);
    let with_bridge = sandbox.snapshot();
    // veth-pair uses the same node names: they belong to the other lab.
    let output = sandbox.netlab(&["apply", &topology("veth-pair.yaml")]);
    assert_eq!(output.status.code(), Some(3), "a clash");
    assert!(text(&output.stderr).contains("namespace BLUE belongs to lab bridge"), "{}", text(&output.stderr));
    assert_eq!(sandbox.snapshot(), with_bridge);
    // A second lab beside it, then destroy one: the other is intact.
    let other = sandbox.file("other.yaml", &star("other", 3).replace("br0", "br1").replace("10.0.", "10.1."));
    sandbox.netlab_ok(&["apply", &other]);
    sandbox.netlab_ok(&["destroy", "--name", "bridge"]);
    assert!(sandbox.netlab_ok(&["check", &other]).contains("1 passed, 0 failed"));
    assert_eq!(sandbox.netlab_ok(&["plan", &other]).trim(), "no changes");
    let listed = sandbox.netlab_ok(&["list"]);
    assert!(listed.contains("other") && !listed.contains("bridge"), "{listed}");
    sandbox.netlab_ok(&["destroy", &other]);
    assert_eq!(sandbox.snapshot(), before);
}

#[test]
fn a_failed_deletion_does_not_stop_the_others_and_every_error_is_reported() {
    let sandbox = Sandbox::new();
    let before = sandbox.snapshot();
    let file = topology("nat.yaml");
    sandbox.netlab_ok(&["apply", &file]);
    // A second mount on a namespace's name: its name cannot be removed (busy).
    for stuck in ["BLUE", "EXT"] {
        let path = format!("/run/netns/{stuck}");
        sandbox.ok("mount", &["--bind", &path, &path]);
    }
    let output = sandbox.netlab(&["destroy", &file]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains("2 changes failed") && stderr.contains("namespace BLUE") && stderr.contains("namespace EXT"),
        "{stderr}"
    );
    // The rest went: RED (after BLUE in order), the host's links.
    assert_eq!(sandbox.ok("ls", &["/run/netns"]).split_whitespace().collect::<Vec<_>>(), ["BLUE", "EXT"]);
    assert!(!sandbox.ok("ip", &["-o", "link", "show"]).contains("br0"));

    // That destroy took the extra mounts off: the next one finishes.
    sandbox.netlab_ok(&["destroy", &file]);
    assert_eq!(sandbox.snapshot(), before);
}
