//! Golden command lists of the labs, planned against an empty kernel (no root).
use super::*;
use crate::plan::{plan, History, Observed};

/// The script of a lab planned against an empty kernel, without its header.
fn fresh_script(file: &str) -> (LabName, Vec<String>) {
    let topology = crate::model::load(
        std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/topologies")).join(file).as_path(),
    )
    .unwrap();
    let planned = plan(&topology.namespaces, &Observed::default(), &History::default()).unwrap();
    let script = shell::script(&topology.name, file, &planned, &[]);
    (topology.name, script.lines().map(String::from).collect())
}

#[test]
fn the_bridge_lab_is_the_tutorials_commands_with_netlabs_marks() {
    let (lab, lines) = fresh_script("bridge.yaml");
    let group = ownership::group(&lab);
    let commands: Vec<&str> =
        lines.iter().map(String::as_str).filter(|l| !l.starts_with('#') && !l.is_empty()).collect();
    let expected = [
        "set -e".to_string(),
        "ip netns add BLUE".into(),
        "ip netns exec BLUE sysctl -w net.ipv6.conf.default.addr_gen_mode=1".into(),
        "ip -n BLUE link set dev lo alias netlab:bridge up".into(),
        "ip netns add RED".into(),
        "ip netns exec RED sysctl -w net.ipv6.conf.default.addr_gen_mode=1".into(),
        "ip -n RED link set dev lo alias netlab:bridge up".into(),
        format!("ip link add name br0 group {group} type bridge"),
        "ip link set dev br0 alias netlab:bridge addrgenmode none".into(),
        "ip link set dev br0 up".into(),
        format!("ip link add name beth1 group {group} master br0 type veth peer name beth0 netns BLUE group {group}"),
        "ip link set dev beth1 alias netlab:bridge addrgenmode none up".into(),
        "ip -n BLUE link set dev beth0 alias netlab:bridge up".into(),
        format!("ip link add name reth1 group {group} master br0 type veth peer name reth0 netns RED group {group}"),
        "ip link set dev reth1 alias netlab:bridge addrgenmode none up".into(),
        "ip -n RED link set dev reth0 alias netlab:bridge up".into(),
        "ip -n BLUE addr add 11.11.11.3/24 dev beth0".into(),
        "ip -n RED addr add 11.11.11.2/24 dev reth0".into(),
    ];
    assert_eq!(commands, expected);
    assert_eq!(lines[1], "# lab bridge, from bridge.yaml: what `netlab apply` would do here, as commands.");
    assert!(lines.contains(&"# + veth reth1 master br0 <-> RED:reth0".to_string()));
}

#[test]
fn the_static_overlay_has_its_entries_with_netlabs_protocol() {
    let (_, lines) = fresh_script("overlay-static.yaml");
    let has = |line: &str| assert!(lines.iter().any(|l| l == line), "no `{line}` in:\n{}", lines.join("\n"));
    has("bridge -n ov1 fdb replace 02:42:c0:a8:00:03 dev vxlan1 dst 192.168.104.3 self permanent");
    has("ip -n ov1 neigh replace 11.11.11.3 lladdr 02:42:c0:a8:00:03 dev vxlan1 nud permanent proto 77");
    // Made in the underlay's namespace, placed directly in the overlay's.
    assert!(
        lines.iter().any(|l| l.starts_with("ip -n host1 link add name vxlan1 group ")
            && l.ends_with(" netns ov1 type vxlan id 42 dstport 4789 local 192.168.104.2 dev eth0 proxy")),
        "{}",
        lines.join("\n")
    );
}

#[test]
fn routes_carry_netlabs_protocol() {
    let (_, lines) = fresh_script("gateway.yaml");
    assert!(lines.iter().any(|l| l == "ip -n RED route add default via 11.11.11.1 proto 77"), "{}", lines.join("\n"));
}

#[test]
fn nat_is_one_nft_transaction_carrying_the_labs_mark() {
    let (_, lines) = fresh_script("nat.yaml");
    let script = lines.join("\n");
    assert!(
        script.contains(
            "nft -f - <<'EOF'\ntable ip netlab-bridge { comment \"netlab:bridge\"; }\ndelete table ip netlab-bridge\n"
        ),
        "{script}"
    );
    assert!(
        script.contains("\nadd rule ip netlab-bridge postrouting ip saddr 11.11.11.0/24 oifname \"vext\" masquerade\n"),
        "{script}"
    );
    assert!(
        script.contains("# (was 0: netlab destroy restores it") || script.contains("sysctl -w net.ipv4.ip_forward=1"),
        "{script}"
    );
}

#[test]
fn a_published_port_reads_as_nft_syntax() {
    let (_, lines) = fresh_script("port-forward.yaml");
    let script = lines.join("\n");
    assert!(script.contains(" dnat to "), "{script}");
    assert!(script.contains(" ct status dnat masquerade"), "{script}");
    assert!(!script.contains("nft -j"), "every rule in nft's syntax: {script}");
}

#[test]
fn the_host_as_a_target_namespace_is_the_shells_own() {
    let text = shell::command_text(&Command {
        args: vec![Arg::Word("netns".into()), Arg::ShellNetns],
        stdin: None,
        notes: vec![],
    });
    assert_eq!(text, "netns \"/proc/$$/ns/net\"");
}
