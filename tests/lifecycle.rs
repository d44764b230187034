//! Privileged end-to-end tests of the netlab command on the lab files, each in its own
//! sandbox: apply -> checks pass -> re-apply plans nothing -> an edit applies only the
//! difference -> drift made by hand shows and is repaired -> destroy leaves the
//! sandbox as it was -> destroying again succeeds.

mod support;

use serde_json::Value;
use support::{text, topology, Sandbox};

fn json(stdout: &str) -> Value {
    serde_json::from_str(stdout).unwrap_or_else(|e| panic!("not json ({e}): {stdout}"))
}

fn planned(sandbox: &Sandbox, file: &str) -> Vec<String> {
    let plan = json(&sandbox.netlab_ok(&["plan", file, "--output", "json"]));
    plan["changes"].as_array().unwrap().iter().map(|c| c["action"].as_str().unwrap().to_string()).collect()
}

#[test]
fn veth_pair_lab_lifecycle() {
    let sandbox = Sandbox::new();
    let before = sandbox.snapshot();
    let file = topology("veth-pair.yaml");

    let applied = sandbox.netlab_ok(&["apply", &file]);
    assert!(applied.contains("+ namespace RED"), "{applied}");
    assert!(sandbox.netlab_ok(&["check", &file]).contains("2 passed, 0 failed"));
    // As in the tutorial: the namespaces are iproute2's.
    assert!(sandbox.ok("ip", &["netns", "exec", "RED", "ip", "-o", "addr"]).contains("11.11.11.2/24"));
    // No IPv6 link-local addresses on links that carry no IPv6.
    assert!(!sandbox.ok("ip", &["-n", "RED", "-6", "addr", "show", "dev", "veth0"]).contains("fe80"));

    assert_eq!(sandbox.netlab_ok(&["apply", &file]).trim(), "no changes");
    assert!(planned(&sandbox, &file).is_empty());

    // An edit: only the difference is applied.
    let source = std::fs::read_to_string(&file).unwrap();
    let edited = sandbox.file(
        "veth-pair.yaml",
        &source.replace(
            "veth1:\n        addresses: [11.11.11.3/24]",
            "veth1:\n        addresses: [11.11.11.3/24, 11.11.11.30/24]\n        mtu: 1400",
        ),
    );
    assert_eq!(planned(&sandbox, &edited), ["set_link", "add_address"]);
    let red_veth_before = sandbox.ok("ip", &["-n", "RED", "-o", "link", "show", "veth0"]);
    sandbox.netlab_ok(&["apply", &edited]);
    assert!(sandbox.ok("ip", &["-n", "BLUE", "-o", "link", "show", "veth1"]).contains("mtu 1400"));
    assert!(sandbox.ok("ip", &["-n", "BLUE", "-o", "addr"]).contains("11.11.11.30/24"));
    // The pair was changed in place, not made again.
    assert_eq!(
        sandbox.ok("ip", &["-n", "RED", "-o", "link", "show", "veth0"]).split(':').next(),
        red_veth_before.split(':').next()
    );
    assert!(planned(&sandbox, &edited).is_empty());
    sandbox.netlab_ok(&["apply", &file]);
    assert!(!sandbox.ok("ip", &["-n", "BLUE", "-o", "addr"]).contains("11.11.11.30"));

    // Drift made by hand.
    sandbox.ok("ip", &["-n", "RED", "addr", "del", "11.11.11.2/24", "dev", "veth0"]);
    sandbox.ok("ip", &["-n", "BLUE", "link", "set", "veth1", "down"]);
    let drift = sandbox.netlab(&["status", &file, "--output", "json"]);
    assert_eq!(drift.status.code(), Some(1), "status exits 1 on drift");
    let status = json(&text(&drift.stdout));
    assert_eq!(status["in_sync"], false);
    let drifted: Vec<(String, String)> = status["objects"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| o["state"] != "ok")
        .map(|o| (o["object"].as_str().unwrap().to_string(), o["state"].as_str().unwrap().to_string()))
        .collect();
    assert_eq!(
        drifted,
        [
            ("veth BLUE:veth1".to_string(), "differs".to_string()),
            ("address 11.11.11.2/24 on RED:veth0".to_string(), "missing".to_string())
        ]
    );
    sandbox.netlab_ok(&["apply", &file]);
    assert!(sandbox.netlab_ok(&["check", &file]).contains("2 passed, 0 failed"));
    assert_eq!(json(&sandbox.netlab_ok(&["status", &file, "--output", "json"]))["in_sync"], true);

    // A link deleted by hand (both ends go) is made again.
    sandbox.ok("ip", &["-n", "RED", "link", "del", "veth0"]);
    assert_eq!(planned(&sandbox, &file), ["create_veth", "add_address", "add_address"]);
    sandbox.netlab_ok(&["apply", &file]);
    assert!(sandbox.netlab_ok(&["check", &file]).contains("2 passed, 0 failed"));

    assert!(sandbox.netlab_ok(&["list"]).contains("veth-pair"));
    sandbox.netlab_ok(&["destroy", &file]);
    assert_eq!(sandbox.snapshot(), before);
    let again = sandbox.netlab_ok(&["destroy", &file]);
    assert!(again.contains("nothing to destroy"), "{again}");
    assert_eq!(sandbox.snapshot(), before);
}

#[test]
fn bridge_lab_lifecycle() {
    let sandbox = Sandbox::new();
    let before = sandbox.snapshot();
    let file = topology("bridge.yaml");
    sandbox.netlab_ok(&["apply", &file]);
    let checks = sandbox.netlab_ok(&["check", &file]);
    assert!(checks.contains("3 passed, 0 failed"), "{checks}");
    assert!(sandbox.ok("ip", &["-o", "link", "show", "reth1"]).contains("master br0"));
    for link in ["br0", "reth1", "beth1"] {
        assert!(!sandbox.ok("ip", &["-6", "addr", "show", "dev", link]).contains("fe80"), "{link}");
    }
    assert!(planned(&sandbox, &file).is_empty());

    // A port taken off the bridge by hand is put back.
    sandbox.ok("ip", &["link", "set", "reth1", "nomaster"]);
    assert_eq!(planned(&sandbox, &file), ["set_link"]);
    sandbox.netlab_ok(&["apply", &file]);
    assert!(sandbox.netlab_ok(&["check", &file]).contains("3 passed, 0 failed"));

    sandbox.netlab_ok(&["destroy", &file]);
    assert_eq!(sandbox.snapshot(), before);
    sandbox.netlab_ok(&["destroy", "--name", "bridge"]);
}

#[test]
fn destroy_by_name_works_after_the_file_is_gone() {
    let sandbox = Sandbox::new();
    let before = sandbox.snapshot();
    let source = std::fs::read_to_string(topology("bridge.yaml")).unwrap();
    let file = sandbox.file("lab.yaml", &source);
    sandbox.netlab_ok(&["apply", &file]);
    std::fs::remove_file(&file).unwrap();
    sandbox.netlab_ok(&["destroy", "--name", "bridge"]);
    assert_eq!(sandbox.snapshot(), before);
}

#[test]
fn what_netlab_did_not_create_is_never_touched() {
    let sandbox = Sandbox::new();
    // Someone else's namespace, bridge and route.
    sandbox.ok("ip", &["netns", "add", "OTHER"]);
    sandbox.ok("ip", &["link", "add", "theirs0", "type", "bridge"]);
    sandbox.ok("ip", &["addr", "add", "10.99.0.1/24", "dev", "theirs0"]);
    sandbox.ok("ip", &["link", "set", "theirs0", "up"]);
    let before = sandbox.snapshot();

    // A namespace with a lab's node name that netlab did not create: an error, and
    // nothing at all is made.
    sandbox.ok("ip", &["netns", "add", "RED"]);
    let with_red = sandbox.snapshot();
    let output = sandbox.netlab(&["apply", &topology("bridge.yaml")]);
    assert_eq!(output.status.code(), Some(3), "a clash");
    assert!(
        text(&output.stderr).contains("namespace RED exists and was not created by netlab"),
        "{}",
        text(&output.stderr)
    );
    assert_eq!(sandbox.snapshot(), with_red);
    sandbox.ok("ip", &["netns", "del", "RED"]);

    sandbox.netlab_ok(&["apply", &topology("bridge.yaml")]);
    // A link added by hand in the lab's namespace is the user's.
    sandbox.ok("ip", &["-n", "RED", "link", "add", "mine0", "type", "bridge"]);
    assert!(planned(&sandbox, &topology("bridge.yaml")).is_empty());
    sandbox.netlab_ok(&["destroy", &topology("bridge.yaml")]);
    assert_eq!(sandbox.snapshot(), before);
}

#[test]
fn invalid_input_exits_2_and_leaves_the_kernel_untouched() {
    let sandbox = Sandbox::new();
    let before = sandbox.snapshot();
    let file = sandbox.file(
        "bad.yaml",
        "name: bad\nnodes:\n  RED: {}\n  BLUE: {}\nlinks:\n  - endpoints: [RED:veth0, GREEN:veth1]\n  - endpoints: [RED:a_name_far_too_long, BLUE:x]\n",
    );
    for verb in ["apply", "plan", "validate", "status", "check"] {
        let output = sandbox.netlab(&[verb, &file]);
        assert_eq!(output.status.code(), Some(2), "{verb}");
        let stderr = text(&output.stderr);
        assert!(
            stderr.contains(&format!("{file}:6:28: unknown node `GREEN` in endpoint `GREEN:veth1`")),
            "{verb}: {stderr}"
        );
        assert!(
            stderr.contains(&format!("{file}:7:17: interface name `a_name_far_too_long` is 19 bytes")),
            "{verb}: {stderr}"
        );
    }
    let output = sandbox.netlab(&["apply", "/nonexistent.yaml"]);
    assert_eq!(output.status.code(), Some(2));
    assert_eq!(text(&output.stderr), "netlab: read /nonexistent.yaml: no such file or directory\n");
    assert_eq!(sandbox.netlab(&["frobnicate"]).status.code(), Some(2));
    assert_eq!(sandbox.snapshot(), before);
}

#[test]
fn exec_runs_in_the_node_namespace_and_returns_its_exit_code() {
    let sandbox = Sandbox::new();
    let file = topology("veth-pair.yaml");
    sandbox.netlab_ok(&["apply", &file]);
    let inside = sandbox.netlab_ok(&["exec", &file, "BLUE", "--", "ip", "-o", "addr", "show", "veth1"]);
    assert!(inside.contains("11.11.11.3/24"), "{inside}");
    let failed = sandbox.netlab(&["exec", &file, "RED", "--", "sh", "-c", "exit 7"]);
    assert_eq!(failed.status.code(), Some(7));
    assert_eq!(sandbox.netlab(&["exec", &file, "GREEN", "--", "true"]).status.code(), Some(2));
    sandbox.netlab_ok(&["destroy", &file]);
}

#[test]
fn a_failing_check_fails_the_command() {
    let sandbox = Sandbox::new();
    let source = std::fs::read_to_string(topology("veth-pair.yaml")).unwrap();
    let file = sandbox.file("lab.yaml", &format!("{source}  - ping: {{from: RED, to: 11.11.11.99}}\n"));
    sandbox.netlab_ok(&["apply", &file]);
    let output = sandbox.netlab(&["check", &file]);
    assert_eq!(output.status.code(), Some(1));
    let stdout = text(&output.stdout);
    assert!(stdout.contains("FAIL  ping from RED to 11.11.11.99"), "{stdout}");
    assert!(stdout.contains("2 passed, 1 failed"), "{stdout}");
    sandbox.netlab_ok(&["destroy", &file]);
}
