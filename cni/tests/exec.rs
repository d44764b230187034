//! The plugin as a runtime executes it, without root: VERSION, and the spec's error
//! JSON for an environment that names no command. (The privileged contract tests are
//! tests/cni.rs at the workspace's root; this file also makes `cargo test --workspace`
//! build the `netlab-cni` binary they run.)

use std::io::Write;
use std::process::{Command, Stdio};

fn run(env: &[(&str, &str)], stdin: &str) -> (i32, serde_json::Value) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_netlab-cni"))
        .env_clear()
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("run netlab-cni");
    // A plugin that finds no command answers without reading its stdin: the pipe may
    // be closed before the configuration is written, which is no failure of the test.
    match child.stdin.take().unwrap().write_all(stdin.as_bytes()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
        written => written.unwrap(),
    }
    let output = child.wait_with_output().unwrap();
    (output.status.code().unwrap_or(-1), serde_json::from_slice(&output.stdout).expect("JSON on stdout"))
}

#[test]
fn version_lists_what_the_plugin_speaks() {
    let (code, answer) = run(&[("CNI_COMMAND", "VERSION")], "{\"cniVersion\":\"1.0.0\"}");
    assert_eq!(code, 0);
    assert_eq!(answer["cniVersion"], "1.1.0");
    assert_eq!(answer["supportedVersions"], serde_json::json!(["0.3.1", "0.4.0", "1.0.0", "1.1.0"]));
}

#[test]
fn no_command_is_an_environment_error_in_the_specs_json() {
    let (code, answer) = run(&[], "{}");
    assert_ne!(code, 0);
    assert_eq!(answer["code"], 4, "{answer}");
    assert!(answer["msg"].as_str().is_some_and(|m| m.contains("CNI_COMMAND")), "{answer}");
}
