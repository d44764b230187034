//! Privileged tests of each kind of object a file can declare, beyond the lab files:
//! a bridge inside a node, a veth with both ends in the host, MACs, MTUs, links kept
//! down, routes through a device.

mod support;

use support::{text, Sandbox};

const SWITCHED: &str = "name: switched
host:
  interfaces:
    h0: {addresses: [10.5.0.1/24], mac: '02:00:00:00:05:01'}
    h1: {addresses: [10.8.0.2/24], up: false}
    h2: {}
    h3: {}
nodes:
  SW:
    bridges:
      br0: {mtu: 1400}
    interfaces:
      pa: {bridge: br0, mtu: 1400}
      pb: {bridge: br0, mtu: 1400}
  A:
    interfaces:
      eth0: {addresses: [10.6.0.2/24], mac: '02:00:00:00:06:02', mtu: 1400}
    routes:
      - {to: 10.7.0.0/16, dev: eth0}
  B:
    interfaces:
      eth0: {addresses: [10.6.0.3/24], mac: '02:00:00:00:06:03', mtu: 1400}
      lo: {addresses: [10.7.0.3/32]}
links:
  - endpoints: [A:eth0, SW:pa]
  - endpoints: [B:eth0, SW:pb]
  - endpoints: [h0, h1]
  - endpoints: [h2, h3]
checks:
  - ping: {from: A, to: B}
  - fdb: {bridge: SW:br0, learned: [A:eth0, B:eth0]}
  - tcp: {from: B, to: '10.6.0.2:7000', listen: A}
";

#[test]
fn bridges_in_nodes_host_veths_macs_mtus_and_device_routes() {
    let sandbox = Sandbox::new();
    let before = sandbox.snapshot();
    let file = sandbox.file("switched.yaml", SWITCHED);
    sandbox.netlab_ok(&["apply", &file]);
    let checks = sandbox.netlab_ok(&["check", &file]);
    assert!(checks.contains("3 passed, 0 failed"), "{checks}");

    let a = sandbox.ok("ip", &["-n", "A", "-o", "link", "show", "eth0"]);
    assert!(a.contains("mtu 1400") && a.contains("02:00:00:00:06:02"), "{a}");
    assert!(sandbox.ok("ip", &["-n", "SW", "-o", "link", "show", "pa"]).contains("master br0"));
    assert!(sandbox.ok("ip", &["-n", "A", "route", "show", "10.7.0.0/16"]).contains("dev eth0 proto 77"));
    let h1 = sandbox.ok("ip", &["-o", "link", "show", "h1"]);
    assert!(!h1.contains(",UP") && !h1.contains("<UP"), "{h1}");
    assert!(sandbox.ok("ip", &["-o", "link", "show", "h0"]).contains("02:00:00:00:05:01"));
    // No link-local addresses on host links, whichever end of a host pair came up last.
    sandbox.ok("sleep", &["0.5"]);
    for link in ["h0", "h2", "h3"] {
        assert!(!sandbox.ok("ip", &["-6", "addr", "show", "dev", link]).contains("fe80"), "{link}");
    }
    assert_eq!(sandbox.netlab_ok(&["apply", &file]).trim(), "no changes");

    // A MAC changed by hand is put back; a link brought up by hand goes down again.
    sandbox.ok("ip", &["-n", "A", "link", "set", "eth0", "address", "02:00:00:00:06:99"]);
    sandbox.ok("ip", &["link", "set", "h1", "up"]);
    let plan = sandbox.netlab_ok(&["plan", &file]);
    assert!(plan.contains("~ link A:eth0: mac 02:00:00:00:06:02"), "{plan}");
    assert!(plan.contains("~ link h1: down"), "{plan}");
    sandbox.netlab_ok(&["apply", &file]);
    assert_eq!(sandbox.netlab_ok(&["plan", &file]).trim(), "no changes");

    // The host's pairs go in one request, by the lab's interface group.
    let destroyed = sandbox.netlab(&["-vv", "destroy", &file]);
    assert!(destroyed.status.success(), "{}", text(&destroyed.stderr));
    assert!(text(&destroyed.stderr).contains("deleted links in one request"), "{}", text(&destroyed.stderr));
    assert_eq!(sandbox.snapshot(), before);
}

#[test]
fn the_group_is_not_trusted_alone() {
    let sandbox = Sandbox::new();
    let file = sandbox.file("switched.yaml", SWITCHED);
    sandbox.netlab_ok(&["apply", &file]);
    // Someone else's link in the lab's group: bulk deletion would take it too.
    let group = sandbox.ok("ip", &["-d", "-o", "link", "show", "h0"]);
    let group = group.split(" group ").nth(1).unwrap().split_whitespace().next().unwrap().to_string();
    sandbox.ok("ip", &["link", "add", "theirs", "type", "bridge"]);
    sandbox.ok("ip", &["link", "set", "theirs", "group", &group]);
    sandbox.netlab_ok(&["destroy", &file]);
    assert!(sandbox.ok("ip", &["-o", "link", "show", "theirs"]).contains("theirs"));
    assert!(!sandbox.ok("ip", &["-o", "link"]).contains("h0"));
}

#[test]
fn progress_shows_on_a_terminal_and_not_in_a_pipe() {
    let sandbox = Sandbox::new();
    let mut yaml = String::from("name: many\nnodes:\n");
    for i in 0..40 {
        yaml.push_str(&format!("  a{i}: {{}}\n  b{i}: {{}}\n"));
    }
    yaml.push_str("links:\n");
    for i in 0..40 {
        yaml.push_str(&format!("  - endpoints: [a{i}:eth0, b{i}:eth0]\n"));
    }
    let file = sandbox.file("many.yaml", &yaml);
    // `script` gives netlab a terminal; its output comes back through the pipe.
    let command = format!("{} apply {file}", env!("CARGO_BIN_EXE_netlab"));
    let on_terminal = sandbox.ok("script", &["-qec", &command, "/dev/null"]);
    assert!(on_terminal.contains("120/120 changes"), "{on_terminal}");
    let destroyed = sandbox.run(env!("CARGO_BIN_EXE_netlab"), &["destroy", &file]);
    assert!(destroyed.status.success());
    assert!(!text(&destroyed.stderr).contains("changes"), "{}", text(&destroyed.stderr));
}
