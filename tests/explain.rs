//! `netlab plan --output sh` run for real: for every lab of topologies/, the script run
//! with sh in a fresh sandbox builds what `netlab status` then takes as the lab's, in
//! sync with the file (ownership marks included: a link or namespace without them
//! would show as missing or clash), `plan` has nothing left to do, and `destroy`
//! leaves the sandbox as it was.

mod support;

use support::{agent_binary, eventually, firewall, text, topology, Sandbox};

/// Generate the script in the sandbox (plan reads the kernel there), run it with sh,
/// then require status 0, an empty plan, and a destroy that leaves nothing behind.
fn script_builds_the_lab(sandbox: &Sandbox, file: &str) {
    let before = sandbox.snapshot();
    let firewall_before = firewall(sandbox);
    let script = sandbox.netlab_ok(&["plan", file, "--output", "sh"]);
    assert!(script.starts_with("#!/bin/sh\n") && script.contains("\nset -e\n"), "{script}");
    let path = sandbox.file("lab.sh", &script);
    // A dynamic overlay's script starts `vxlan-agent` as the README has it: on PATH.
    let agent_dir = std::path::Path::new(&agent_binary()).parent().unwrap().display().to_string();
    let search = format!("{agent_dir}:{}", std::env::var("PATH").unwrap_or_default());
    let ran = sandbox.command("sh").arg(&path).env("PATH", search).output().unwrap();
    assert!(ran.status.success(), "{file}: the script failed: {}\n{script}", text(&ran.stderr));

    let status = sandbox.netlab(&["status", file]);
    assert_eq!(
        status.status.code(),
        Some(0),
        "{file}: status after the script: {}{}\n{script}",
        text(&status.stdout),
        text(&status.stderr)
    );
    assert_eq!(sandbox.netlab_ok(&["plan", file]).trim(), "no changes", "{file}");

    sandbox.netlab_ok(&["destroy", file]);
    let after = sandbox.snapshot();
    // Host sysctls keep the value the script set: netlab restores a host sysctl from
    // its record of the earlier value, and a script-built lab has no record (the
    // script says so on the command). Here that is IPv4 forwarding, 0 before.
    // (Read from the script, not the file: a lab may inherit the sysctl by `extends:`.)
    let forwards = script.contains("net.ipv4.ip_forward=1");
    let sysctls = if forwards { before.sysctls.replacen("0\n", "1\n", 1) } else { before.sysctls.clone() };
    assert_eq!(after.sysctls, sysctls, "{file}: host sysctls after destroy");
    let before = support::Snapshot { sysctls: after.sysctls.clone(), ..before };
    assert_eq!(after, before, "{file}: destroy after the script");
    assert_eq!(firewall(sandbox), firewall_before, "{file}: destroy after the script");
}

fn lab(name: &str) {
    lab_prepared(name, |_| {});
}

/// `prepare` readies the sandbox first (what the lab needs that is not netlab's).
fn lab_prepared(name: &str, prepare: impl FnOnce(&Sandbox)) {
    let sandbox = Sandbox::new();
    prepare(&sandbox);
    script_builds_the_lab(&sandbox, &topology(name));
}

#[test]
fn veth_pair() {
    lab("veth-pair.yaml");
}

#[test]
fn bridge() {
    lab("bridge.yaml");
}

#[test]
fn gateway() {
    lab("gateway.yaml");
}

#[test]
fn nat() {
    lab("nat.yaml");
}

#[test]
fn port_forward() {
    lab("port-forward.yaml");
}

#[test]
fn overlay_static() {
    lab("overlay-static.yaml");
}

#[test]
fn overlay_dynamic() {
    lab("overlay-dynamic.yaml");
}

#[test]
fn cluster_3() {
    lab("cluster-3.yaml");
}

#[test]
fn flannel_3() {
    lab("flannel-3.yaml");
}

/// The node daemons the script starts need the cluster network in the store first.
#[test]
fn flannel_3_nodes() {
    lab_prepared("flannel-3-nodes.yaml", |sandbox| {
        let store = "dir:/run/netlab/stores/flannel-3";
        sandbox.ok(&agent_binary(), &["network", "set", "--store", store, "--network", "10.244.0.0/16"]);
    });
}

/// Every file of topologies/ has its test above: a new lab cannot go untested.
#[test]
fn every_lab_is_covered() {
    let source = std::fs::read_to_string(file!()).unwrap();
    for entry in std::fs::read_dir(topology("")).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        if name.ends_with(".yaml") {
            let tested =
                source.contains(&format!("lab(\"{name}\")")) || source.contains(&format!("lab_prepared(\"{name}\""));
            assert!(tested, "topologies/{name} has no test here");
        }
    }
    for entry in std::fs::read_dir(topology("vm")).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        assert!(source.contains(&format!("(\"{name}\", ")), "topologies/vm/{name} has no test here");
    }
}

/// A half-file of topologies/vm/ names the VM's own card eth1, which netlab does not
/// create: it is made first (a veth whose peer stays beside it, down, addressed as
/// Vagrant does), and is part of the "before" that destroy must leave.
fn vm_lab(name: &str, address: &str) {
    let sandbox = Sandbox::new();
    // The peer stays down and IPv6 off: a card whose carrier and link-local address
    // would still be settling when "before" is taken.
    sandbox.ok("ip", &["link", "add", "eth1", "type", "veth", "peer", "name", "eth1-peer"]);
    sandbox.ok("ip", &["link", "set", "eth1", "addrgenmode", "none"]);
    sandbox.ok("ip", &["addr", "add", address, "dev", "eth1"]);
    sandbox.ok("ip", &["link", "set", "eth1", "up"]);
    // The etcd halves' store is etcd on host1 (192.168.104.2): here, in the sandbox.
    let _etcd = name.contains("etcd").then(|| {
        if !address.starts_with("192.168.104.2/") {
            sandbox.ok("ip", &["addr", "add", "192.168.104.2/32", "dev", "lo"]);
        }
        support::overlay::etcd(&sandbox)
    });
    script_builds_the_lab(&sandbox, &topology(&format!("vm/{name}")));
}

#[test]
fn vm_halves() {
    for (name, address) in [
        ("host1-static.yaml", "192.168.104.2/24"),
        ("host2-static.yaml", "192.168.104.3/24"),
        ("host1-dynamic.yaml", "192.168.104.2/24"),
        ("host2-dynamic.yaml", "192.168.104.3/24"),
        ("host1-etcd.yaml", "192.168.104.2/24"),
        ("host2-etcd.yaml", "192.168.104.3/24"),
    ] {
        vm_lab(name, address);
    }
}

/// Where iptables' FORWARD chain drops (as Docker leaves it), the NAT lab also needs
/// accept rules: the script's iptables commands make exactly the rules netlab would.
#[test]
fn nat_with_a_dropping_forward_chain() {
    let sandbox = Sandbox::new();
    sandbox.ok("iptables", &["-P", "FORWARD", "DROP"]);
    let file = topology("nat.yaml");
    let script = sandbox.netlab_ok(&["plan", &file, "--output", "sh"]);
    assert!(
        script.contains("iptables -w -I FORWARD -s 11.11.11.0/24 -m comment --comment netlab:bridge -j ACCEPT"),
        "{script}"
    );
    script_builds_the_lab(&sandbox, &file);
}

/// A lab applied by netlab, then its file edited: the script of the plan (deletions
/// included) converges the kernel to the new file as apply would.
#[test]
fn the_script_of_an_edit_converges() {
    let sandbox = Sandbox::new();
    let before = sandbox.snapshot();
    let first = sandbox.file(
        "edit.yaml",
        "name: edit\nhost:\n  bridges: {br0: {addresses: [11.11.11.1/24]}}\n  interfaces: {reth1: {bridge: br0}, beth1: {bridge: br0}}\n\
         nodes:\n  RED: {interfaces: {reth0: {addresses: [11.11.11.2/24]}}}\n  BLUE: {interfaces: {beth0: {addresses: [11.11.11.3/24]}}}\n\
         links:\n  - endpoints: [RED:reth0, host:reth1]\n  - endpoints: [BLUE:beth0, host:beth1]\n",
    );
    sandbox.netlab_ok(&["apply", &first]);
    let edited = sandbox.file(
        "edit.yaml",
        "name: edit\nhost:\n  bridges: {br0: {addresses: [11.11.11.1/24]}}\n  interfaces: {reth1: {bridge: br0}}\n\
         nodes:\n  RED:\n    interfaces: {reth0: {addresses: [11.11.11.4/24], mtu: 1400}}\n    routes: [{to: default, via: 11.11.11.1}]\n\
         links:\n  - endpoints: [RED:reth0, host:reth1]\n",
    );
    let script = sandbox.netlab_ok(&["plan", &edited, "--output", "sh"]);
    for command in [
        "ip netns delete BLUE",
        "ip -n RED addr del 11.11.11.2/24 dev reth0",
        "ip -n RED link set dev reth0 mtu 1400",
        "ip -n RED route add default via 11.11.11.1 proto 77",
    ] {
        assert!(script.lines().any(|l| l == command), "no `{command}` in:\n{script}");
    }
    let path = sandbox.file("edit.sh", &script);
    let ran = sandbox.run("sh", &[&path]);
    assert!(ran.status.success(), "the script failed: {}\n{script}", text(&ran.stderr));
    // The kernel removes the links of a deleted namespace (here BLUE's peer beth1 in
    // the host) after `ip netns delete` returns, as it does after apply.
    assert!(eventually(10.0, || !sandbox.run("ip", &["link", "show", "dev", "beth1"]).status.success()));
    let status = sandbox.netlab(&["status", &edited]);
    assert_eq!(status.status.code(), Some(0), "{}\n{script}", text(&status.stdout));
    assert_eq!(sandbox.netlab_ok(&["plan", &edited]).trim(), "no changes");
    sandbox.netlab_ok(&["destroy", &edited]);
    assert_eq!(sandbox.snapshot(), before);
}

/// `--explain` follows each change with its commands, indented, in plan and apply.
#[test]
fn explain_shows_each_changes_commands() {
    let sandbox = Sandbox::new();
    let file = topology("veth-pair.yaml");
    let planned = sandbox.netlab_ok(&["plan", &file, "--explain"]);
    let lines: Vec<&str> = planned.lines().collect();
    let at = lines.iter().position(|l| *l == "+ namespace BLUE").expect(&planned);
    assert_eq!(lines[at + 1], "    ip netns add BLUE", "{planned}");
    assert!(lines.contains(&"    ip -n BLUE addr add 11.11.11.3/24 dev veth1"), "{planned}");
    let applied = sandbox.netlab_ok(&["apply", &file, "--explain"]);
    assert!(applied.contains("\n    ip -n RED addr add 11.11.11.2/24 dev veth0\n"), "{applied}");
    assert_eq!(sandbox.netlab(&["status", &file]).status.code(), Some(0));
    // Elsewhere `sh` is no output: refused as invalid input.
    assert_eq!(sandbox.netlab(&["status", &file, "--output", "sh"]).status.code(), Some(2));
    sandbox.netlab_ok(&["destroy", &file]);
}

/// Names the shell, iproute2 or nft could misread, all valid in a file: interfaces
/// called `up` and `mtu` (words of `ip link`), one holding `'` and `$`, a NAT's
/// outgoing interface holding `"` (which nft's syntax cannot hold), a node called
/// `all`. The script still builds exactly the lab.
#[test]
fn names_that_could_be_misread_are_names() {
    let sandbox = Sandbox::new();
    let file = sandbox.file(
        "odd.yaml",
        "name: odd\nhost:\n  interfaces:\n    'a\"b': {addresses: [198.51.100.1/24]}\n  sysctls: {net.ipv4.ip_forward: 1}\n\
         \x20 nat:\n    masquerade: [{from: 11.11.11.0/24, out: 'a\"b'}]\n\
         nodes:\n  all:\n    interfaces:\n      up: {addresses: [11.11.11.2/24]}\n      \"it's$x\": {addresses: [198.51.100.2/24]}\n\
         \x20 mtu:\n    interfaces:\n      mtu: {addresses: [11.11.11.3/24]}\n\
         links:\n  - endpoints: [all:up, mtu:mtu]\n  - endpoints: [\"all:it's$x\", 'host:a\"b']\n",
    );
    script_builds_the_lab(&sandbox, &file);
}
