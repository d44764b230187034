//! `netlab inspect` against real labs, each in its own sandbox: what it reports is
//! what `ip -j` reads in the same namespaces; what the file declares and the kernel
//! lacks shows as missing; it works from the record once the file is gone, changes
//! nothing, and ends quietly on a closed pipe.

mod support;

use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Output, Stdio};

use nix::sys::signal::Signal;
use serde_json::Value;
use support::{text, topology, Sandbox};

const NETLAB: &str = env!("CARGO_BIN_EXE_netlab");

fn inspect_json(sandbox: &Sandbox, args: &[&str]) -> Value {
    let mut all = vec!["inspect"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["-o", "json"]);
    let output = sandbox.netlab(&all);
    assert_eq!(output.status.code(), Some(0), "{}{}", text(&output.stdout), text(&output.stderr));
    serde_json::from_slice(&output.stdout).unwrap()
}

fn node<'a>(json: &'a Value, place: &str) -> &'a Value {
    json["nodes"].as_array().unwrap().iter().find(|n| n["place"] == place).unwrap_or_else(|| panic!("{place}: {json}"))
}

fn interface<'a>(node: &'a Value, name: &str) -> &'a Value {
    node["interfaces"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["name"] == name)
        .unwrap_or_else(|| panic!("{name}: {node}"))
}

/// `ip -j link show dev NAME` in a namespace ("" for the sandbox's own).
fn ip_link(sandbox: &Sandbox, ns: &str, name: &str) -> Value {
    let mut args = vec![];
    if !ns.is_empty() {
        args.extend(["-n", ns]);
    }
    args.extend(["-j", "-d", "link", "show", "dev", name]);
    let links: Value = serde_json::from_str(&sandbox.ok("ip", &args)).unwrap();
    links[0].clone()
}

fn ip_addresses(sandbox: &Sandbox, ns: &str, name: &str) -> Vec<String> {
    let json: Value = serde_json::from_str(&sandbox.ok("ip", &["-n", ns, "-j", "addr", "show", "dev", name])).unwrap();
    let mut found: Vec<String> = json[0]["addr_info"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| format!("{}/{}", a["local"].as_str().unwrap(), a["prefixlen"]))
        .collect();
    found.sort();
    found
}

/// `ip -j -d link` of each interface, read before inspect runs: an operational state
/// may still move on (a bridge goes from `unknown` to `up` once the kernel's link
/// watch runs), so inspect's must be the one before or the one after.
fn read_before(sandbox: &Sandbox, interfaces: &[(&str, &str)]) -> Vec<Value> {
    interfaces.iter().map(|(ns, name)| ip_link(sandbox, ns, name)).collect()
}

/// Each interface as inspect reports it equals what `ip` reads: MAC, MTU, master, up,
/// kind, operational state, addresses.
fn assert_as_ip_has_it(sandbox: &Sandbox, json: &Value, interfaces: &[(&str, &str)], before: &[Value]) {
    for ((ns, name), before) in interfaces.iter().zip(before) {
        let place = if ns.is_empty() { "host" } else { ns };
        let shown = interface(node(json, place), name);
        let kernel = ip_link(sandbox, ns, name);
        assert_eq!(shown["mac"], kernel["address"], "{place}:{name}");
        assert_eq!(shown["mtu"], kernel["mtu"], "{place}:{name}");
        assert_eq!(shown["master"], kernel.get("master").cloned().unwrap_or(Value::Null), "{place}:{name}");
        let oper = |link: &Value| link["operstate"].as_str().unwrap().to_lowercase();
        let (shown_oper, before, after) = (shown["oper_state"].as_str().unwrap(), oper(before), oper(&kernel));
        assert!(shown_oper == before || shown_oper == after, "{place}:{name}: {shown_oper}, {before} then {after}");
        let up = kernel["flags"].as_array().unwrap().iter().any(|f| f == "UP");
        assert_eq!(shown["up"], up, "{place}:{name}");
        assert_eq!(shown["kind"], kernel["linkinfo"]["info_kind"], "{place}:{name}");
        if !ns.is_empty() {
            let addresses: Vec<String> =
                shown["addresses"].as_array().unwrap().iter().map(|a| a.as_str().unwrap().to_string()).collect();
            assert_eq!(addresses, ip_addresses(sandbox, ns, name), "{place}:{name}");
        }
    }
}

#[test]
fn bridge_lab_is_reported_as_the_kernel_has_it() {
    let sandbox = Sandbox::new();
    let file = topology("bridge.yaml");
    sandbox.netlab_ok(&["apply", &file]);
    let before = sandbox.snapshot();
    let interfaces = [("RED", "reth0"), ("BLUE", "beth0"), ("", "reth1"), ("", "beth1"), ("", "br0")];
    let before_inspect = read_before(&sandbox, &interfaces);
    let json = inspect_json(&sandbox, &[&file]);
    assert_eq!(json["lab"], "bridge");
    assert_as_ip_has_it(&sandbox, &json, &interfaces, &before_inspect);
    let peer = |place: &str, name: &str| interface(node(&json, place), name)["peer"].clone();
    assert_eq!(peer("RED", "reth0"), serde_json::json!({"place": "host", "name": "reth1"}));
    assert_eq!(peer("host", "beth1"), serde_json::json!({"place": "BLUE", "name": "beth0"}));
    // The host shows the lab's links only: not the sandbox's lo.
    let host: Vec<&str> =
        node(&json, "host")["interfaces"].as_array().unwrap().iter().map(|i| i["name"].as_str().unwrap()).collect();
    assert_eq!(host, ["beth1", "br0", "reth1"]);
    assert_eq!(node(&json, "host")["role"], "host");
    let routes = node(&json, "RED")["routes"].as_array().unwrap().clone();
    assert!(
        routes.iter().any(|r| r["to"] == "11.11.11.0/24" && r["dev"] == "reth0" && r["proto"] == "kernel"),
        "{routes:?}"
    );

    // The table: a header and a row, with the real MAC.
    let table = sandbox.netlab_ok(&["inspect", &file]);
    let lines: Vec<&str> = table.lines().collect();
    let red = lines.iter().position(|l| *l == "RED (node)").unwrap_or_else(|| panic!("{table}"));
    let header = lines[red + 1];
    assert_eq!(
        header.split_whitespace().collect::<Vec<_>>(),
        ["INTERFACE", "KIND", "PEER", "MASTER", "MAC", "MTU", "STATE", "OPER", "ADDRESSES"]
    );
    let row = lines[red + 2..].iter().find(|l| l.trim_start().starts_with("reth0")).unwrap();
    let mac = ip_link(&sandbox, "RED", "reth0")["address"].as_str().unwrap().to_string();
    assert_eq!(
        row.split_whitespace().collect::<Vec<_>>(),
        ["reth0", "veth", "host:reth1", "-", &mac, "1500", "up", "up", "11.11.11.2/24"]
    );
    // Columns line up: each cell starts where its header does.
    assert_eq!(row.find(&mac), header.find("MAC"), "{table}");
    assert!(!table.contains('\u{1b}'), "colour off a terminal: {table:?}");

    assert_eq!(sandbox.snapshot(), before, "inspect changed something");
    sandbox.netlab_ok(&["destroy", &file]);
}

#[test]
fn overlay_static_shows_vxlan_parameters_entries_and_simulated_hosts() {
    let sandbox = Sandbox::new();
    let file = topology("overlay-static.yaml");
    sandbox.netlab_ok(&["apply", &file]);
    // An entry as a control plane adds it: permanent and externally learned.
    sandbox.ok(
        "ip",
        &[
            "netns",
            "exec",
            "ov1",
            "bridge",
            "fdb",
            "add",
            "02:42:c0:a8:00:09",
            "dev",
            "vxlan1",
            "self",
            "dst",
            "192.168.104.9",
            "extern_learn",
            "permanent",
        ],
    );
    let interfaces = [("ct1", "eth0"), ("ov1", "veth-ct1"), ("ov1", "vxlan1"), ("ov1", "br0"), ("host1", "eth0")];
    let before_inspect = read_before(&sandbox, &interfaces);
    let json = inspect_json(&sandbox, &[&file]);
    assert_as_ip_has_it(&sandbox, &json, &interfaces, &before_inspect);
    assert_eq!(node(&json, "host1")["role"], "simulated_host");
    assert_eq!(node(&json, "ov1")["role"], "node");
    assert_eq!(interface(node(&json, "host1"), "eth0")["peer"], serde_json::json!({"place": "host2", "name": "eth0"}));
    assert_eq!(interface(node(&json, "ct2"), "eth0")["peer"], serde_json::json!({"place": "ov2", "name": "veth-ct2"}));

    let vxlan = &interface(node(&json, "ov1"), "vxlan1")["vxlan"];
    let kernel = ip_link(&sandbox, "ov1", "vxlan1")["linkinfo"]["info_data"].clone();
    assert_eq!(vxlan["vni"], kernel["id"]);
    assert_eq!(vxlan["port"], kernel["port"]);
    assert_eq!(vxlan["local"], kernel["local"]);
    assert_eq!((vxlan["underlay"].as_str(), vxlan["dev"].as_str()), (Some("host1"), Some("eth0")));
    assert_eq!((vxlan["learning"].as_bool(), vxlan["proxy"].as_bool()), (Some(true), Some(true)));

    let ov1 = node(&json, "ov1");
    let neighbours = ov1["neighbours"].as_array().unwrap();
    assert!(
        neighbours.iter().any(|n| n["ip"] == "11.11.11.3"
            && n["mac"] == "02:42:c0:a8:00:03"
            && n["dev"] == "vxlan1"
            && n["permanent"] == true
            && n["proto"] == "netlab"
            && n["declared"] == true),
        "{neighbours:?}"
    );
    let fdb = ov1["fdb"].as_array().unwrap();
    let entry = |mac: &str| fdb.iter().find(|f| f["mac"] == mac).unwrap_or_else(|| panic!("{mac}: {fdb:?}"));
    let declared = entry("02:42:c0:a8:00:03");
    assert_eq!(
        (&declared["dst"], &declared["permanent"], &declared["extern_learn"]),
        (&"192.168.104.3".into(), &true.into(), &false.into())
    );
    let learned = entry("02:42:c0:a8:00:09");
    assert_eq!(
        (&learned["dst"], &learned["extern_learn"], &learned["declared"]),
        (&"192.168.104.9".into(), &true.into(), &false.into())
    );
    // Both are in the kernel as `bridge fdb` shows them.
    let shown = sandbox.ok("ip", &["netns", "exec", "ov1", "bridge", "fdb", "show", "dev", "vxlan1"]);
    let line = shown.lines().find(|l| l.starts_with("02:42:c0:a8:00:09 dst 192.168.104.9")).unwrap_or_default();
    assert!(line.ends_with("self extern_learn permanent"), "{shown}");

    let table = sandbox.netlab_ok(&["inspect", &file]);
    assert!(table.contains("host1 (simulated host)"), "{table}");
    let vxlan_row =
        table.lines().find(|l| l.trim_start().starts_with("vxlan1  42")).unwrap_or_else(|| panic!("{table}"));
    assert_eq!(
        vxlan_row.split_whitespace().collect::<Vec<_>>(),
        ["vxlan1", "42", "4789", "192.168.104.2", "-", "host1:eth0", "learning,proxy"]
    );
    sandbox.netlab_ok(&["destroy", &file]);
}

/// Three simulated hosts whose namespaces all use the same names and, so, the same
/// indexes: every veth's peer is the one the file links it to, both ways.
#[test]
fn cluster_3_peers_are_the_files_links_both_ways() {
    let sandbox = Sandbox::new();
    let file = topology("cluster-3.yaml");
    sandbox.netlab_ok(&["apply", &file]);
    let json = inspect_json(&sandbox, &[&file]);
    let mut pairs = vec![];
    for i in 1..=3 {
        pairs.push((format!("host{i}"), "eth0".to_string(), "lan".to_string(), format!("h{i}")));
    }
    for ct in 1..=6 {
        pairs.push((format!("ct{ct}"), "eth0".into(), format!("ov{}", (ct + 1) / 2), format!("veth-ct{ct}")));
    }
    for (a, a_if, b, b_if) in &pairs {
        let peer = |place: &str, name: &str| interface(node(&json, place), name)["peer"].clone();
        assert_eq!(peer(a, a_if), serde_json::json!({"place": b, "name": b_if}), "{a}:{a_if}");
        assert_eq!(peer(b, b_if), serde_json::json!({"place": a, "name": a_if}), "{b}:{b_if}");
    }
    for i in 1..=3 {
        assert_eq!(node(&json, &format!("host{i}"))["role"], "simulated_host");
        let vxlan = &interface(node(&json, &format!("ov{i}")), "vxlan1")["vxlan"];
        assert_eq!(
            (vxlan["underlay"].as_str(), vxlan["dev"].as_str()),
            (Some(format!("host{i}").as_str()), Some("eth0"))
        );
        assert_eq!(
            (&vxlan["l2miss"], &vxlan["l3miss"], &vxlan["learning"]),
            (&true.into(), &true.into(), &false.into())
        );
    }
    assert_eq!(node(&json, "lan")["role"], "node");
    // The agents apply started: one per host, running, each pid a vxlan-agent bound to
    // its overlay namespace.
    let agents = json["agents"].as_array().unwrap();
    assert_eq!(agents.len(), 3, "{json:#}");
    for (i, agent) in agents.iter().enumerate() {
        assert_eq!(agent["agent"], format!("ov{}:vxlan1", i + 1), "{json:#}");
        assert_eq!(agent["running"], true);
        let pid = agent["pid"].as_u64().unwrap();
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        assert!(cmdline.contains(&format!("vxlan-agent run --netns ov{} --device vxlan1", i + 1)), "{cmdline}");
    }
    let table = text(&sandbox.netlab(&["inspect", &file]).stdout);
    let section = table.split("\nagents\n").nth(1).unwrap_or_else(|| panic!("no agents section: {table}"));
    assert!(section.starts_with("  AGENT       STATE    PID"), "{section}");
    assert!(section.contains("ov2:vxlan1  running"), "{section}");
    sandbox.netlab_ok(&["destroy", &file]);
}

#[test]
fn an_interface_or_address_deleted_by_hand_shows_as_missing() {
    let sandbox = Sandbox::new();
    let file = topology("bridge.yaml");
    sandbox.netlab_ok(&["apply", &file]);
    // Deleting one end of a veth deletes both.
    sandbox.ok("ip", &["-n", "RED", "link", "del", "reth0"]);
    let json = inspect_json(&sandbox, &[&file]);
    for (place, name) in [("RED", "reth0"), ("host", "reth1")] {
        let gone = interface(node(&json, place), name);
        assert_eq!(
            (&gone["exists"], &gone["declared"], &gone["mac"]),
            (&false.into(), &true.into(), &Value::Null),
            "{gone}"
        );
    }
    let beth0 = interface(node(&json, "BLUE"), "beth0");
    assert_eq!((&beth0["exists"], &beth0["missing_addresses"]), (&true.into(), &serde_json::json!([])));
    // An address deleted by hand: the interface is there, the address missing.
    sandbox.ok("ip", &["-n", "BLUE", "addr", "del", "11.11.11.3/24", "dev", "beth0"]);
    let json = inspect_json(&sandbox, &[&file]);
    let beth0 = interface(node(&json, "BLUE"), "beth0");
    assert_eq!(
        (&beth0["addresses"], &beth0["missing_addresses"]),
        (&serde_json::json!([]), &serde_json::json!(["11.11.11.3/24"]))
    );
    let table = sandbox.netlab_ok(&["inspect", &file]);
    let row = table.lines().find(|l| l.trim_start().starts_with("reth0")).unwrap();
    assert!(row.contains("missing"), "{table}");
    let row = table.lines().find(|l| l.trim_start().starts_with("beth0")).unwrap();
    assert!(row.ends_with("up     up       11.11.11.3/24 (missing)"), "{table}");
    sandbox.netlab_ok(&["destroy", &file]);
}

#[test]
fn by_name_it_reads_the_record_once_the_file_is_gone() {
    let sandbox = Sandbox::new();
    let contents = std::fs::read_to_string(topology("bridge.yaml")).unwrap();
    let file = sandbox.file("bridge.yaml", &contents);
    sandbox.netlab_ok(&["apply", &file]);
    let by_file = inspect_json(&sandbox, &[&file]);
    std::fs::remove_file(&file).unwrap();
    let by_name = inspect_json(&sandbox, &["--name", "bridge"]);
    assert_eq!(by_name, by_file);
    sandbox.netlab_ok(&["destroy", "--name", "bridge"]);
    let after = sandbox.netlab(&["inspect", "--name", "bridge"]);
    assert_eq!(after.status.code(), Some(1));
    assert!(text(&after.stdout).contains("lab bridge is not applied here"), "{}", text(&after.stdout));
}

#[test]
fn a_lab_not_applied_exits_1_and_an_invalid_file_2() {
    let sandbox = Sandbox::new();
    let file = topology("veth-pair.yaml");
    let absent = sandbox.netlab(&["inspect", &file]);
    assert_eq!(absent.status.code(), Some(1));
    assert!(text(&absent.stdout).contains("lab veth-pair is not applied here"), "{}", text(&absent.stdout));
    let absent = sandbox.netlab(&["inspect", &file, "-o", "json"]);
    assert_eq!(absent.status.code(), Some(1));
    let json: Value = serde_json::from_slice(&absent.stdout).unwrap();
    assert_eq!(json["applied"], false);
    assert_eq!(node(&json, "RED")["namespace"], "missing");

    let invalid = sandbox.file("bad.yaml", "name: bad\nnodes:\n  A: {interfaces: {e: {addresses: [300.1.1.1/24]}}}\n");
    let output = sandbox.netlab(&["inspect", &invalid]);
    assert_eq!(output.status.code(), Some(2), "{}", text(&output.stderr));
    assert!(text(&output.stderr).contains("bad.yaml:3:"), "{}", text(&output.stderr));
}

/// The VM half-file over a hand-made `eth1`: the host shows the existing device it
/// names (with its address) and the VXLAN device rides on it.
#[test]
fn the_hosts_existing_device_is_shown_and_carries_the_overlay() {
    let sandbox = Sandbox::new();
    sandbox.ok("ip", &["link", "add", "eth1", "type", "veth", "peer", "name", "eth1-peer"]);
    sandbox.ok("ip", &["addr", "add", "192.168.104.2/24", "dev", "eth1"]);
    sandbox.ok("ip", &["link", "set", "eth1", "up"]);
    let file = topology("vm/host1-static.yaml");
    sandbox.netlab_ok(&["apply", &file]);
    let before_inspect = read_before(&sandbox, &[("", "eth1")]);
    let json = inspect_json(&sandbox, &[&file]);
    let eth1 = interface(node(&json, "host"), "eth1");
    assert_eq!((&eth1["existing"], &eth1["exists"]), (&true.into(), &true.into()), "{eth1}");
    assert_eq!(eth1["addresses"], serde_json::json!(["192.168.104.2/24"]));
    assert_as_ip_has_it(&sandbox, &json, &[("", "eth1")], &before_inspect);
    let vxlan = &interface(node(&json, "ov1"), "vxlan1")["vxlan"];
    assert_eq!((vxlan["underlay"].as_str(), vxlan["dev"].as_str()), (Some("host"), Some("eth1")));
    let hosts: Vec<&str> =
        node(&json, "host")["interfaces"].as_array().unwrap().iter().map(|i| i["name"].as_str().unwrap()).collect();
    assert_eq!(hosts, ["eth1"], "the sandbox's other links are not the lab's");
    sandbox.netlab_ok(&["destroy", &file]);
}

/// Run `command` with its stdout on a pipe whose reader is already closed.
fn with_closed_stdout(mut command: Command) -> Output {
    let (reader, writer) = nix::unistd::pipe().unwrap();
    drop(reader);
    command.stdin(Stdio::null()).stdout(Stdio::from(writer)).stderr(Stdio::piped()).output().unwrap()
}

#[test]
fn a_closed_pipe_ends_inspect_quietly() {
    let sandbox = Sandbox::new();
    let file = topology("veth-pair.yaml");
    sandbox.netlab_ok(&["apply", &file]);
    for args in [&["inspect", &file][..], &["inspect", &file, "-o", "json"], &["inspect", "--name", "veth-pair"]] {
        let mut command = sandbox.command(NETLAB);
        command.args(args);
        let output = with_closed_stdout(command);
        assert_eq!(output.status.signal(), Some(Signal::SIGPIPE as i32), "{args:?}: {:?}", output.status);
        assert!(output.stderr.is_empty(), "{args:?} said something: {}", text(&output.stderr));
    }
    sandbox.netlab_ok(&["destroy", &file]);
}

/// On a terminal (a pty from `script`) the table is in colour, unless NO_COLOR.
#[test]
fn the_table_is_in_colour_on_a_terminal_unless_no_color() {
    let sandbox = Sandbox::new();
    let file = topology("veth-pair.yaml");
    sandbox.netlab_ok(&["apply", &file]);
    let on_terminal = |no_color: Option<&str>| {
        let mut command = sandbox.command("script");
        command.args(["-q", "-e", "-c", &format!("{NETLAB} inspect {file}"), "/dev/null"]);
        match no_color {
            Some(value) => command.env("NO_COLOR", value),
            None => command.env_remove("NO_COLOR"),
        };
        let output = command.stdin(Stdio::null()).output().expect("script (util-linux)");
        assert!(output.status.success(), "{}{}", text(&output.stdout), text(&output.stderr));
        assert!(text(&output.stdout).contains("INTERFACE"), "{}", text(&output.stdout));
        output.stdout.contains(&0x1b)
    };
    assert!(on_terminal(None), "no colour on a terminal");
    assert!(!on_terminal(Some("1")), "colour despite NO_COLOR");
    sandbox.netlab_ok(&["destroy", &file]);
}

#[test]
fn inspect_help_documents_its_exit_codes() {
    let help = Command::new(NETLAB).args(["inspect", "--help"]).output().unwrap();
    assert!(help.status.success());
    let help = text(&help.stdout);
    assert!(help.contains("Exit codes: 0 the lab could be read"), "{help}");
    assert!(help.contains("netlab inspect --name bridge -o json"), "{help}");
}
