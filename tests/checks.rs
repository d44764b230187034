//! `netlab check` beyond one check at a time: `pingall` as a matrix per address family,
//! traffic checks together (listeners on one port never overlap), `--only`,
//! `--timeout`, and failures that say what netlab knows.

mod support;

use serde_json::Value;
use support::{agent_binary, text, Sandbox};

/// Three namespaces on a bridge, each with an IPv4 and an IPv6 address.
const TRIANGLE: &str = "name: triangle
nodes:
  A: {interfaces: {eth0: {addresses: [10.9.0.1/24, 'fd09::1/64']}}}
  B: {interfaces: {eth0: {addresses: [10.9.0.2/24, 'fd09::2/64']}}}
  C: {interfaces: {eth0: {addresses: [10.9.0.3/24, 'fd09::3/64']}}}
  SW:
    bridges: {br0: {}}
    interfaces: {pa: {bridge: br0}, pb: {bridge: br0}, pc: {bridge: br0}}
links:
  - endpoints: [A:eth0, SW:pa]
  - endpoints: [B:eth0, SW:pb]
  - endpoints: [C:eth0, SW:pc]
checks:
  - pingall: {}
  - tcp: {from: A, to: '10.9.0.2:7000', listen: B}
  - tcp: {from: C, to: '10.9.0.2:7000', listen: B}
  - udp: {from: A, to: '10.9.0.3:7001', listen: C}
";

fn check_json(sandbox: &Sandbox, args: &[&str]) -> (Option<i32>, Value) {
    let output = sandbox.netlab(&[&["check", "--output", "json"], args].concat());
    let json = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}{}", text(&output.stdout), text(&output.stderr)));
    (output.status.code(), json)
}

#[test]
fn pingall_is_a_matrix_per_family_and_a_missing_address_shows_in_its_column() {
    let sandbox = Sandbox::new();
    let file = sandbox.file("triangle.yaml", TRIANGLE);
    sandbox.netlab_ok(&["apply", &file]);
    let (code, json) = check_json(&sandbox, &[&file]);
    assert_eq!(code, Some(0), "{json:#}");
    let pingall = &json["checks"][0];
    assert_eq!(pingall["check"], "pingall A B C", "{json:#}");
    let matrices = pingall["matrices"].as_array().unwrap();
    assert_eq!(matrices.len(), 2, "{json:#}");
    for (matrix, family) in matrices.iter().zip(["ipv4", "ipv6"]) {
        assert_eq!(matrix["family"], family);
        assert_eq!(matrix["nodes"], serde_json::json!(["A", "B", "C"]));
        let expected = serde_json::json!([[null, true, true], [true, null, true], [true, true, null]]);
        assert_eq!(matrix["reached"], expected, "{family}");
    }
    // The two listeners on B's port 7000 ran one after the other: both passed.
    assert_eq!(json["passed"], 4, "{json:#}");

    // B loses its IPv6 address: B's IPv6 column fails, IPv4 is untouched.
    sandbox.netlab_ok(&["exec", &file, "B", "--", "ip", "addr", "del", "fd09::2/64", "dev", "eth0"]);
    let (code, json) = check_json(&sandbox, &[&file, "--only", "pingall"]);
    assert_eq!(code, Some(1), "{json:#}");
    assert_eq!(json["checks"].as_array().unwrap().len(), 1, "--only pingall ran other checks: {json:#}");
    let pingall = &json["checks"][0];
    let ipv6 = &pingall["matrices"][1];
    // B's row fails too: the file still gives B an IPv6 address, and B has none to
    // send from.
    let expected = serde_json::json!([[null, false, true], [false, null, false], [true, false, null]]);
    assert_eq!(ipv6["reached"], expected);
    assert_eq!(pingall["matrices"][0]["reached"][0], serde_json::json!([null, true, true]));
    let detail = pingall["detail"].as_str().unwrap();
    assert!(detail.starts_with("4 of 12 pings failed: A -> B fd09::2: "), "{detail}");

    // The text form prints the matrix, rows pinging columns.
    let output = sandbox.netlab(&["check", &file, "--only", "pingall"]);
    let printed = text(&output.stdout);
    assert!(printed.contains("      IPv6    A    B    C\n      A       - FAIL   ok\n"), "{printed}");
    sandbox.netlab_ok(&["destroy", &file]);
}

#[test]
fn only_selects_by_the_printed_line_and_a_selection_of_nothing_is_refused() {
    let sandbox = Sandbox::new();
    let file = sandbox.file("triangle.yaml", TRIANGLE);
    // Before apply: said once, not as a failure of each check.
    let early = sandbox.netlab(&["check", &file]);
    assert_eq!(early.status.code(), Some(1));
    assert!(text(&early.stderr).contains("lab triangle is not applied here (netlab apply"), "{}", text(&early.stderr));
    assert!(text(&early.stdout).is_empty(), "{}", text(&early.stdout));
    sandbox.netlab_ok(&["apply", &file]);
    let (code, json) = check_json(&sandbox, &[&file, "--only", "tcp from C", "--only", "udp"]);
    assert_eq!(code, Some(0), "{json:#}");
    let ran: Vec<&str> = json["checks"].as_array().unwrap().iter().map(|c| c["check"].as_str().unwrap()).collect();
    assert_eq!(ran, ["tcp from C to 10.9.0.2:7000", "udp from A to 10.9.0.3:7001"]);
    let output = sandbox.netlab(&["check", &file, "--only", "nothing like this"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(text(&output.stderr).contains("no check of"), "{}", text(&output.stderr));
    let output = sandbox.netlab(&["check", &file, "--timeout", "0"]);
    assert_eq!(output.status.code(), Some(2), "a zero budget was taken");
    // Fractions, as capture's --timeout takes them.
    let (code, json) = check_json(&sandbox, &[&file, "--timeout", "1.5", "--only", "udp"]);
    assert_eq!((code, json["passed"].as_u64()), (Some(0), Some(1)), "{json:#}");
    sandbox.netlab_ok(&["destroy", &file]);
}

/// Two hosts' overlay namespaces joined by VXLAN with a folder store and no static
/// entries: only an agent can make the overlay work.
const STORED: &str = "name: stored
nodes:
  U1: {interfaces: {eth0: {addresses: [192.168.50.1/24]}}}
  U2: {interfaces: {eth0: {addresses: [192.168.50.2/24]}}}
  O1:
    bridges: {br0: {}}
    vxlans:
      vxlan1: {vni: 7, underlay: U1, dev: eth0, local: 192.168.50.1, learning: false, proxy: true,
               l2miss: true, l3miss: true, bridge: br0, store: 'dir:/run/netlab/stores/stored', agent: false}
    interfaces: {p1: {bridge: br0}}
  O2:
    bridges: {br0: {}}
    vxlans:
      vxlan1: {vni: 7, underlay: U2, dev: eth0, local: 192.168.50.2, learning: false, proxy: true,
               l2miss: true, l3miss: true, bridge: br0, store: 'dir:/run/netlab/stores/stored', agent: false}
    interfaces: {p2: {bridge: br0}}
  C1: {interfaces: {eth0: {addresses: [10.8.0.1/24], mtu: 1450}}}
  C2: {interfaces: {eth0: {addresses: [10.8.0.2/24], mtu: 1450}}}
links:
  - endpoints: [U1:eth0, U2:eth0]
  - endpoints: [C1:eth0, O1:p1]
  - endpoints: [C2:eth0, O2:p2]
checks:
  - ping: {from: C1, to: 10.8.0.2}
  - ping: {from: C1, to: 10.8.0.77}
";

#[test]
fn a_failure_names_an_address_of_no_interface_and_an_overlay_without_its_agent() {
    let sandbox = Sandbox::new();
    let file = sandbox.file("stored.yaml", STORED);
    sandbox.netlab_ok(&["apply", &file]);
    let (code, json) = check_json(&sandbox, &[&file, "--timeout", "1"]);
    assert_eq!(code, Some(1), "{json:#}");
    let detail = |i: usize| json["checks"][i]["detail"].as_str().unwrap_or_default().to_string();
    for device in ["O1:vxlan1", "O2:vxlan1"] {
        let note = format!("no vxlan-agent is running for {device}, whose entries come only from its store");
        assert!(detail(0).contains(&note), "{}", detail(0));
    }
    assert!(!detail(0).contains("is on no interface"), "{}", detail(0));
    assert!(detail(1).contains("10.8.0.77 is on no interface of lab stored"), "{}", detail(1));

    // With both agents running, the overlay works and the other failure says only
    // what is true.
    let store = "dir:/run/netlab/stores/stored";
    let agent = agent_binary();
    let _agents: Vec<_> = [("U1", "O1"), ("U2", "O2")]
        .iter()
        .map(|(underlay, overlay)| {
            sandbox.spawn(underlay, &agent, &["run", "--netns", overlay, "--device", "vxlan1", "--store", store])
        })
        .collect();
    let (code, json) = check_json(&sandbox, &[&file, "--only", "10.8.0.2"]);
    assert_eq!(code, Some(0), "{json:#}");
    let (code, json) = check_json(&sandbox, &[&file, "--only", "10.8.0.77", "--timeout", "1"]);
    assert_eq!(code, Some(1));
    let detail = json["checks"][0]["detail"].as_str().unwrap();
    assert!(!detail.contains("vxlan-agent"), "{detail}");
    sandbox.netlab_ok(&["destroy", &file]);
}

#[test]
fn a_pingall_that_cannot_tell_who_answers_is_refused_where_it_is_written() {
    let file = std::env::temp_dir().join(format!("netlab-pingall-{}.yaml", std::process::id()));
    let cases = [
        ("  - pingall: {nodes: [A, A]}\n", "`A` is listed twice"),
        ("  - pingall: {nodes: [A]}\n", "a pingall needs at least two nodes with addresses"),
        ("  - pingall: {nodes: [A, X]}\n", "unknown node `X`"),
        ("  - pingall: {nodes: [A, SW]}\n", "node `SW` has no address to ping"),
    ];
    let lab = TRIANGLE.split("checks:").next().unwrap().to_string();
    for (check, message) in cases {
        std::fs::write(&file, format!("{lab}checks:\n{check}")).unwrap();
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_netlab"))
            .args(["validate", file.to_str().unwrap()])
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(2), "{check}");
        let stderr = text(&output.stderr);
        assert!(stderr.contains(":14:") && stderr.contains(message), "{check}: {stderr}");
    }
    // Two nodes holding one address.
    let twice = lab.replace("10.9.0.3/24", "10.9.0.2/24") + "checks:\n  - pingall: {}\n";
    std::fs::write(&file, twice).unwrap();
    let output =
        std::process::Command::new(env!("CARGO_BIN_EXE_netlab")).args(["validate", file.to_str().unwrap()]).output();
    let stderr = text(&output.unwrap().stderr);
    assert!(stderr.contains("10.9.0.2 is on both `B` and `C`"), "{stderr}");
    std::fs::remove_file(&file).unwrap();
}

#[test]
fn a_failure_says_what_the_kernel_has_of_the_address_it_tried() {
    let sandbox = Sandbox::new();
    let file = sandbox.file("triangle.yaml", TRIANGLE);
    sandbox.netlab_ok(&["apply", &file]);
    sandbox.netlab_ok(&["exec", &file, "B", "--", "ip", "addr", "del", "10.9.0.2/24", "dev", "eth0"]);
    sandbox.netlab_ok(&["exec", &file, "C", "--", "ip", "link", "set", "eth0", "down"]);
    let (code, json) = check_json(&sandbox, &[&file, "--only", "tcp from A", "--only", "udp", "--timeout", "1"]);
    assert_eq!(code, Some(1), "{json:#}");
    let detail = |i: usize| json["checks"][i]["detail"].as_str().unwrap_or_default().to_string();
    assert!(detail(0).contains("10.9.0.2 belongs on B:eth0, which does not have it"), "{}", detail(0));
    assert!(detail(1).contains("C:eth0, where 10.9.0.3 belongs, is down"), "{}", detail(1));
    sandbox.netlab_ok(&["destroy", &file]);
}
