//! Privileged tests of ownership, each in its own sandbox: netlab changes or deletes
//! only what it proves its own (a mark, a comment exactly `netlab:<lab>`, a record),
//! releases host objects several labs declare only with the last of them, destroys a
//! lab from its kernel marks when its record is missing or corrupt, and a dry run
//! writes nothing.

mod support;

use support::{firewall, text, topology, Sandbox};

fn fails_with(sandbox: &Sandbox, args: &[&str], code: i32, message: &str) {
    let output = sandbox.netlab(args);
    assert_eq!(output.status.code(), Some(code), "{args:?}: {}{}", text(&output.stdout), text(&output.stderr));
    assert!(text(&output.stderr).contains(message), "{args:?}: {}", text(&output.stderr));
}

#[test]
fn a_foreign_nft_table_with_the_labs_name_is_a_clash_never_replaced_or_deleted() {
    let sandbox = Sandbox::new();
    let file = topology("nat.yaml");
    sandbox.ok("nft", &["add", "table", "ip", "netlab-bridge"]);
    sandbox.ok("nft", &["add", "chain", "ip", "netlab-bridge", "theirs", "{ type nat hook postrouting priority 50; }"]);
    sandbox.ok("nft", &["add", "rule", "ip", "netlab-bridge", "theirs", "ip", "saddr", "10.77.0.0/16", "masquerade"]);
    let before = (sandbox.snapshot(), firewall(&sandbox));

    // Reported before any change, like a foreign link.
    fails_with(
        &sandbox,
        &["apply", &file],
        3,
        "nft table ip netlab-bridge in host exists and was not created by netlab",
    );
    assert_eq!((sandbox.snapshot(), firewall(&sandbox)), before);
    // Destroy, by file and by name (no record: found by marks), leaves it alone.
    sandbox.netlab_ok(&["destroy", &file]);
    sandbox.netlab_ok(&["destroy", "--name", "bridge"]);
    assert_eq!((sandbox.snapshot(), firewall(&sandbox)), before);

    // The lab's own table carries the mark, and destroy removes it.
    sandbox.ok("nft", &["delete", "table", "ip", "netlab-bridge"]);
    sandbox.netlab_ok(&["apply", &file]);
    let table = sandbox.ok("nft", &["list", "table", "ip", "netlab-bridge"]);
    assert!(table.contains("\tcomment \"netlab:bridge\""), "{table}");
    assert!(sandbox.netlab_ok(&["check", &file]).contains("4 passed, 0 failed"));
    assert_eq!(sandbox.netlab_ok(&["plan", &file]).trim(), "no changes");
    sandbox.netlab_ok(&["destroy", &file]);
    assert_eq!(sandbox.ok("nft", &["list", "ruleset"]).trim(), "");
}

#[test]
fn an_iptables_rule_whose_comment_only_begins_with_the_labs_mark_is_not_the_labs() {
    let sandbox = Sandbox::new();
    let file = topology("bridge.yaml");
    sandbox.ok("iptables", &["-P", "FORWARD", "DROP"]);
    let theirs =
        ["FORWARD", "-s", "11.11.11.0/24", "-m", "comment", "--comment", "netlab:bridge other", "-j", "ACCEPT"];
    sandbox.ok("iptables", &[&["-A"][..], &theirs[..]].concat());
    let before = (sandbox.snapshot(), firewall(&sandbox));

    sandbox.netlab_ok(&["apply", &file]);
    let listed = sandbox.ok("iptables", &["-S", "FORWARD"]);
    for rule in [
        "-A FORWARD -s 11.11.11.0/24 -m comment --comment \"netlab:bridge\" -j ACCEPT",
        "-A FORWARD -d 11.11.11.0/24 -m comment --comment \"netlab:bridge\" -j ACCEPT",
        "-A FORWARD -s 11.11.11.0/24 -m comment --comment \"netlab:bridge other\" -j ACCEPT",
    ] {
        assert!(listed.lines().any(|l| l == rule), "missing {rule}:\n{listed}");
    }
    assert_eq!(sandbox.netlab_ok(&["plan", &file]).trim(), "no changes");
    sandbox.netlab_ok(&["destroy", &file]);
    assert_eq!((sandbox.snapshot(), firewall(&sandbox)), before);
}

/// A lab that routes 10.50.0.0/16 through the host's own card `ext0` and forwards.
fn routing_lab(name: &str, subnet: u8) -> String {
    format!(
        "name: {name}
host:
  bridges:
    br{subnet}: {{addresses: [10.{subnet}.0.1/24]}}
  interfaces:
    p{subnet}: {{bridge: br{subnet}}}
  sysctls: {{net.ipv4.ip_forward: 1}}
  routes:
    - {{to: 10.50.0.0/16, via: 192.0.2.254, dev: ext0}}
nodes:
  N{subnet}:
    interfaces:
      eth0: {{addresses: [10.{subnet}.0.2/24]}}
links:
  - endpoints: [N{subnet}:eth0, p{subnet}]
"
    )
}

/// Two labs declaring the same host sysctl and host route: whichever goes first leaves
/// both; the last restores the sysctl's value from before either and deletes the route.
#[test]
fn host_objects_two_labs_declare_go_only_with_the_last_of_them() {
    for first_to_go in ["one", "two"] {
        let sandbox = Sandbox::new();
        sandbox.ok("ip", &["link", "add", "ext0", "type", "veth", "peer", "name", "ext0p"]);
        sandbox.ok("ip", &["addr", "add", "192.0.2.1/24", "dev", "ext0"]);
        for end in ["ext0", "ext0p"] {
            // No IPv6 link-local address appearing later, and carrier before the snapshot.
            sandbox.ok("ip", &["link", "set", end, "addrgenmode", "none"]);
            sandbox.ok("ip", &["link", "set", end, "up"]);
        }
        let carrier = || !sandbox.ok("ip", &["-o", "link", "show"]).contains("NO-CARRIER");
        assert!(support::eventually(5.0, carrier), "the card never got carrier");
        let before = sandbox.snapshot();
        assert_eq!(sandbox.ok("sysctl", &["-n", "net.ipv4.ip_forward"]).trim(), "0");
        let one = sandbox.file("one.yaml", &routing_lab("one", 1));
        let two = sandbox.file("two.yaml", &routing_lab("two", 2));
        sandbox.netlab_ok(&["apply", &one]);
        sandbox.netlab_ok(&["apply", &two]);
        assert_eq!(sandbox.netlab_ok(&["plan", &two]).trim(), "no changes");

        let (gone, left) = if first_to_go == "one" { (&one, &two) } else { (&two, &one) };
        sandbox.netlab_ok(&["destroy", gone]);
        assert_eq!(sandbox.ok("sysctl", &["-n", "net.ipv4.ip_forward"]).trim(), "1", "{first_to_go} went first");
        let routes = sandbox.ok("ip", &["route", "show", "10.50.0.0/16"]);
        assert!(routes.contains("via 192.0.2.254 dev ext0 proto 77"), "{first_to_go} went first: {routes}");
        assert_eq!(sandbox.netlab_ok(&["plan", left]).trim(), "no changes", "{first_to_go} went first");

        sandbox.netlab_ok(&["destroy", left]);
        assert_eq!(sandbox.snapshot(), before, "{first_to_go} went first");
    }
}

#[test]
fn without_its_record_a_lab_is_destroyed_by_its_kernel_marks() {
    let sandbox = Sandbox::new();
    // Forwarding already on (its earlier value is only in the record), and a FORWARD
    // chain that drops, so that the lab has accept rules too.
    sandbox.ok("sysctl", &["-qw", "net.ipv4.ip_forward=1"]);
    sandbox.ok("iptables", &["-P", "FORWARD", "DROP"]);
    let before = (sandbox.snapshot(), firewall(&sandbox));
    let file = topology("nat.yaml");
    sandbox.netlab_ok(&["apply", &file]);
    assert!(sandbox.ok("iptables", &["-S", "FORWARD"]).contains("netlab:bridge"));
    sandbox.ok("rm", &["/run/netlab/bridge.json"]);

    let destroyed = sandbox.netlab_ok(&["destroy", "--name", "bridge"]);
    assert!(destroyed.contains("destroyed lab bridge"), "{destroyed}");
    assert_eq!((sandbox.snapshot(), firewall(&sandbox)), before);
    let again = sandbox.netlab_ok(&["destroy", "--name", "bridge"]);
    assert!(again.contains("nothing to destroy"), "{again}");
}

#[test]
fn a_corrupt_record_is_named_with_the_way_out_and_hides_no_other_lab() {
    let sandbox = Sandbox::new();
    let before = sandbox.snapshot();
    let file = topology("bridge.yaml");
    // Its route goes through its own bridge, to a gateway on the bridge's subnet.
    let source = routing_lab("other", 7).replace("via: 192.0.2.254, dev: ext0", "via: 10.7.0.2, dev: br7");
    let other = sandbox.file("other.yaml", &source);
    sandbox.netlab_ok(&["apply", &file]);
    sandbox.netlab_ok(&["apply", &other]);
    sandbox.ok("sh", &["-c", "printf '{\"lab\": \"bridge\", broken' > /run/netlab/bridge.json"]);

    let way_out = "netlab destroy --name bridge";
    for args in [&["apply", &file][..], &["plan", &file], &["status", &file]] {
        fails_with(&sandbox, args, 6, "/run/netlab/bridge.json");
        fails_with(&sandbox, args, 6, way_out);
    }
    // The other lab is not held up.
    assert_eq!(sandbox.netlab_ok(&["plan", &other]).trim(), "no changes");
    let listed = sandbox.netlab_ok(&["list"]);
    assert!(listed.lines().any(|l| l.starts_with("other ")), "{listed}");
    assert!(
        listed.lines().any(|l| l.starts_with("bridge ") && l.contains("corrupt") && l.contains(way_out)),
        "{listed}"
    );
    let rows: serde_json::Value = serde_json::from_str(&sandbox.netlab_ok(&["list", "--output", "json"])).unwrap();
    let corrupt: Vec<&str> = rows
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r.get("corrupt").is_some())
        .map(|r| r["lab"].as_str().unwrap())
        .collect();
    assert_eq!(corrupt, ["bridge"], "{rows}");

    let destroyed = sandbox.netlab(&["destroy", "--name", "bridge"]);
    assert!(destroyed.status.success(), "{}", text(&destroyed.stderr));
    assert!(text(&destroyed.stderr).contains("/run/netlab/bridge.json"), "{}", text(&destroyed.stderr));
    assert!(!sandbox.netlab_ok(&["list"]).contains("bridge"));
    sandbox.netlab_ok(&["destroy", &other]);
    assert_eq!(sandbox.snapshot(), before);
}

/// `proxy_arp` on the lab's own veth ends, in the host and in a node.
fn proxy_lab(sysctls: bool) -> String {
    let (host, node) = if sysctls {
        ("  sysctls: {net.ipv4.conf.reth1.proxy_arp: 1}\n", "    sysctls: {net.ipv4.conf.reth0.proxy_arp: 1}\n")
    } else {
        ("", "")
    };
    format!(
        "name: proxy
host:
  interfaces:
    reth1: {{addresses: [10.9.0.1/24]}}
{host}nodes:
  RED:
    interfaces:
      reth0: {{addresses: [10.9.0.2/24]}}
{node}links:
  - endpoints: [RED:reth0, reth1]
"
    )
}

#[test]
fn sysctls_of_the_labs_own_links_apply_again_and_destroy() {
    let sandbox = Sandbox::new();
    let before = sandbox.snapshot();
    let plain = sandbox.file("plain.yaml", &proxy_lab(false));
    let proxied = sandbox.file("proxied.yaml", &proxy_lab(true));
    let proxy_arp = |args: &[&str]| sandbox.ok("sysctl", args).trim().to_string();

    // Made with the links, and added to links that exist (their values then recorded).
    for first in [&proxied, &plain] {
        sandbox.netlab_ok(&["apply", first]);
        sandbox.netlab_ok(&["apply", &proxied]);
        assert_eq!(proxy_arp(&["-n", "net.ipv4.conf.reth1.proxy_arp"]), "1");
        assert_eq!(
            sandbox.ok("ip", &["netns", "exec", "RED", "sysctl", "-n", "net.ipv4.conf.reth0.proxy_arp"]).trim(),
            "1"
        );
        assert_eq!(sandbox.netlab_ok(&["apply", &proxied]).trim(), "no changes");
        sandbox.netlab_ok(&["destroy", &proxied]);
        assert_eq!(sandbox.snapshot(), before);
    }

    // The links dropped from the file with their keys: the recorded values went with
    // the links, and no apply tries to restore them.
    let unlinked = sandbox.file("unlinked.yaml", "name: proxy\nnodes:\n  RED: {}\n");
    sandbox.netlab_ok(&["apply", &plain]);
    sandbox.netlab_ok(&["apply", &proxied]);
    sandbox.netlab_ok(&["apply", &unlinked]);
    assert_eq!(sandbox.netlab_ok(&["apply", &unlinked]).trim(), "no changes");
    sandbox.netlab_ok(&["destroy", &unlinked]);
    assert_eq!(sandbox.snapshot(), before);
}

#[test]
fn a_dry_run_writes_nothing_and_destroy_removes_the_lock() {
    let sandbox = Sandbox::new();
    let file = topology("bridge.yaml");
    let state = || sandbox.ok("ls", &["-A", "/run/netlab"]);
    sandbox.netlab_ok(&["plan", &file]);
    sandbox.netlab_ok(&["apply", "--dry-run", &file]);
    assert_eq!(state(), "");
    sandbox.netlab_ok(&["apply", &file]);
    sandbox.netlab_ok(&["plan", &file]);
    sandbox.netlab_ok(&["destroy", &file]);
    assert_eq!(state(), "");
}

fn local_addresses_lab(declared: bool) -> String {
    let (lo, extra) = if declared { ("[127.0.0.2/32]", ", 'fe80::1/64'") } else { ("[]", "") };
    format!(
        "name: local
nodes:
  RED:
    interfaces:
      lo: {{addresses: {lo}}}
      veth0: {{addresses: [10.0.0.1/24{extra}]}}
  BLUE:
    interfaces:
      veth1: {{addresses: [10.0.0.2/24]}}
links:
  - endpoints: [RED:veth0, BLUE:veth1]
"
    )
}

#[test]
fn loopback_and_link_local_addresses_the_file_drops_are_removed_the_kernels_stay() {
    let sandbox = Sandbox::new();
    let before = sandbox.snapshot();
    let with = sandbox.file("with.yaml", &local_addresses_lab(true));
    let without = sandbox.file("without.yaml", &local_addresses_lab(false));
    let addresses = |dev: &str| sandbox.ok("ip", &["-n", "RED", "-o", "addr", "show", "dev", dev]);
    sandbox.netlab_ok(&["apply", &with]);
    assert!(addresses("lo").contains("127.0.0.2/32"));
    assert!(addresses("veth0").contains("fe80::1/64"));

    sandbox.netlab_ok(&["apply", &without]);
    let (lo, veth0) = (addresses("lo"), addresses("veth0"));
    assert!(!lo.contains("127.0.0.2/32") && !veth0.contains("fe80::1/64"), "{lo}{veth0}");
    // The kernel's own stay: lo's, and veth0's link-local address from its MAC.
    assert!(lo.contains("127.0.0.1/8") && lo.contains("::1/128"), "{lo}");
    assert!(veth0.contains("fe80::") && veth0.contains("scope link"), "{veth0}");
    assert_eq!(sandbox.netlab_ok(&["apply", &without]).trim(), "no changes");
    sandbox.netlab_ok(&["destroy", &without]);
    assert_eq!(sandbox.snapshot(), before);
}
