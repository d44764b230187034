//! The size of what `netlab validate` reads, through the binary: labs up to the
//! documented 64 MiB parse, larger input stops at the limit while it is read (exit 2),
//! and a pipe is read like a file. No root needed.

use std::io::Write;
use std::os::unix::process::CommandExt;
use std::process::{Command, Output, Stdio};

fn netlab(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_netlab"));
    command.args(args);
    command
}

/// A valid lab of `pairs` linked node pairs, each node with an address, a MAC, an MTU,
/// a route and a sysctl: about 130 bytes and 20 YAML nodes per lab node.
fn lab_of_pairs(pairs: usize) -> String {
    let mut yaml = String::from("name: big\nnodes:\n");
    for i in 0..pairs {
        let (hi, lo) = (i / 256, i % 256);
        for (side, host) in [("a", 1), ("b", 2)] {
            let mac = format!("02:00:{:02x}:{:02x}:{:02x}:{host:02x}", i >> 16, hi & 0xff, lo);
            yaml.push_str(&format!(
                "  {side}{i}:\n    interfaces:\n      eth0: {{addresses: [10.{}.{lo}.{host}/30], mtu: 1400, mac: '{mac}'}}\n    routes: [{{to: default, via: 10.{}.{lo}.{}}}]\n    sysctls: {{net.ipv4.ip_forward: 1}}\n",
                hi % 256,
                hi % 256,
                3 - host
            ));
        }
    }
    yaml.push_str("links:\n");
    for i in 0..pairs {
        yaml.push_str(&format!("  - endpoints: [a{i}:eth0, b{i}:eth0]\n"));
    }
    yaml
}

/// YAML nodes (scalars, sequences, mappings) in `yaml`, as the parser counts them.
fn yaml_nodes(yaml: &str) -> usize {
    granit_parser::Parser::new_from_str(yaml)
        .map(|event| event.unwrap().0)
        .filter(|event| {
            matches!(
                event,
                granit_parser::Event::Scalar(..)
                    | granit_parser::Event::SequenceStart(..)
                    | granit_parser::Event::MappingStart(..)
            )
        })
        .count()
}

/// A valid 15,000-node lab, which serde-saphyr's default budget (250,000 YAML nodes)
/// refused with "budget breached: Nodes", is valid.
#[test]
fn a_lab_of_15000_nodes_is_valid() {
    let yaml = lab_of_pairs(7_500);
    assert!(yaml_nodes(&yaml) > 250_000, "the lab must exceed the parser's default budget");
    assert!(yaml.len() < 64 << 20);
    let lab = match netlab::model::parse("big.yaml", &yaml) {
        Ok(lab) => lab,
        Err(e) => panic!("{}", e.items.iter().take(3).map(|d| d.message.clone()).collect::<Vec<_>>().join("\n")),
    };
    assert_eq!(lab.nodes().count(), 15_000);
}

fn validate_with_memory_limit(path: &str, stdin: Stdio) -> Output {
    let mut command = netlab(&["validate", path]);
    command.stdin(stdin).stdout(Stdio::piped()).stderr(Stdio::piped());
    // SAFETY: setrlimit is async-signal-safe; nothing else runs between fork and exec.
    unsafe {
        command.pre_exec(|| {
            // Reading without bound would need more than this; reading to the limit does not.
            let limit = 512 << 20;
            nix::sys::resource::setrlimit(nix::sys::resource::Resource::RLIMIT_DATA, limit, limit)
                .map_err(std::io::Error::from)
        });
    }
    command.output().unwrap()
}

/// `/dev/urandom` never ends: reading stops past 64 MiB and says so, exit 2.
#[test]
fn endless_input_stops_at_the_size_limit() {
    let output = validate_with_memory_limit("/dev/urandom", Stdio::null());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("/dev/urandom: larger than 64 MiB"), "{stderr}");
}

/// A lab read through a pipe (as `netlab validate <(cat lab.yaml)` does) is valid.
#[test]
fn a_pipe_is_read_like_a_file() {
    let mut child = netlab(&["validate", "/dev/stdin"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let text = std::fs::read("topologies/veth-pair.yaml").unwrap();
    child.stdin.take().unwrap().write_all(&text).unwrap();
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(String::from_utf8_lossy(&output.stdout).contains("is valid"));
}

/// Through the binary: errors of the new rules exit 2 and name file:line:column.
#[test]
fn refused_files_exit_2_with_their_location() {
    let dir = std::env::temp_dir().join(format!("netlab-validate-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("lab.yaml");
    std::fs::write(
        &file,
        "name: x\nhost:\n  bridges:\n    br%d: {}\n  vxlans:\n    vx0: {vni: 1, port: 0, dev: eth1, local: 10.0.0.1}\n",
    )
    .unwrap();
    let output = netlab(&["validate", file.to_str().unwrap()]).output().unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    let located = |at: &str| stderr.contains(&format!("{}:{at}", file.display()));
    assert!(located("4:5: interface name `br%d` holds `%`"), "{stderr}");
    assert!(located("6:25: port 0 is not a port"), "{stderr}");
}
