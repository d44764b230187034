//! The two-VM scenarios in real VMs: each test runs `vm/run SCENARIO`, which boots the
//! tutorial's host1 (192.168.104.2) and host2 (192.168.104.3) under qemu (TCG, no KVM
//! needed) inside a throwaway network and mount namespace, runs `vm/guest/SCENARIO.sh`
//! in both and passes only if both pass (see the top of vm/run for the contract). The
//! VMs run the binaries this test was built with.
//!
//! Needs root and qemu-system-x86, linux-image-amd64, busybox-static, kmod (.ci/run
//! installs them). Where they are missing the tests fail, saying what to install; they
//! never pass silently. `NETLAB_VM_TESTS=skip` makes them skip with a loud line, except
//! under CI (`CI=true`), where nothing may skip.
//!
//! A new scenario is a file `vm/guest/NAME.sh`, a test below calling `scenario("NAME")`
//! and its name in `SCENARIOS` (`every_scenario_has_a_test` checks the list).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

/// The scenarios of vm/guest/, each with its test below.
const SCENARIOS: &[&str] = &["smoke", "static", "dir", "etcd", "flannel"];

/// One pair of VMs at a time: each takes a CPU for its qemu, and the machines running
/// the suite may have two.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

const INSTALL: &str =
    "apt-get install -y --no-install-recommends qemu-system-x86 linux-image-amd64 busybox-static kmod";

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0")
}

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(program).is_file()))
}

/// What vm/run needs and this machine lacks.
fn missing_prerequisites() -> Vec<String> {
    let mut missing = Vec::new();
    if !on_path("qemu-system-x86_64") {
        missing.push("qemu-system-x86_64 (package qemu-system-x86)".to_string());
    }
    let kernel = std::fs::read_dir("/boot").into_iter().flatten().flatten().any(|entry| {
        let name = entry.file_name().to_string_lossy().into_owned();
        name.strip_prefix("vmlinuz-").is_some_and(|version| Path::new("/lib/modules").join(version).is_dir())
    });
    if !kernel {
        missing.push("a kernel in /boot/vmlinuz-* with its /lib/modules (package linux-image-amd64)".to_string());
    }
    if !on_path("busybox") {
        missing.push("busybox (package busybox-static)".to_string());
    }
    if !on_path("modprobe") && !Path::new("/sbin/modprobe").exists() {
        missing.push("modprobe (package kmod)".to_string());
    }
    missing
}

/// Run a scenario in the two VMs; its output (both logs and the timings), or None when
/// skipped on purpose.
fn scenario(name: &str) -> Option<String> {
    if std::env::var("NETLAB_VM_TESTS").as_deref() == Ok("skip") {
        assert!(!in_ci(), "NETLAB_VM_TESTS=skip is set under CI: the VM tests may not skip in CI");
        // Straight to stderr: the test harness would capture eprintln! of a passing test.
        let _ = writeln!(
            std::io::stderr(),
            "\n*** SKIPPED: VM scenario {name} (NETLAB_VM_TESTS=skip); it did NOT run ***\n"
        );
        return None;
    }
    let missing = missing_prerequisites();
    assert!(
        missing.is_empty(),
        "VM scenario {name} cannot run: missing {}.\nInstall them (as root): {INSTALL}\n{}",
        missing.join(", "),
        if in_ci() {
            "CI must install them (.ci/run does)."
        } else {
            "Or set NETLAB_VM_TESTS=skip to skip the VM tests outside CI."
        }
    );
    assert!(nix::unistd::geteuid().is_root(), "the VM tests need root: run them as root (see README)");

    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_netlab")).parent().unwrap();
    let started = std::time::Instant::now();
    let output =
        Command::new(repo().join("vm/run")).arg(name).env("NETLAB_VM_BIN_DIR", bin_dir).output().expect("run vm/run");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    println!("{stdout}");
    eprintln!("{stderr}");
    assert!(
        output.status.success(),
        "vm/run {name} failed ({}, after {:.1?}):\n{stdout}\n{stderr}",
        output.status,
        started.elapsed()
    );
    Some(stdout)
}

/// The log of one VM in vm/run's output.
fn log_of<'a>(output: &'a str, host: &str) -> &'a str {
    let start = output.find(&format!("===== {host}: ")).unwrap_or_else(|| panic!("no log of {host} in:\n{output}"));
    let rest = &output[start..];
    let end = rest[1..].find("\n=====").map_or(rest.len(), |end| end + 1);
    &rest[..end]
}

#[test]
fn smoke() {
    let Some(output) = scenario("smoke") else { return };
    for (host, peer) in [("host1", "192.168.104.3"), ("host2", "192.168.104.2")] {
        let log = log_of(&output, host);
        assert!(
            log.contains(&format!("64 bytes from {peer}: icmp_seq=")),
            "{host} got no ping reply from {peer}:\n{log}"
        );
        assert!(log.contains("3 packets transmitted, 3 received"), "{host} lost pings:\n{log}");
        assert!(
            log.contains(&format!("netlab {}", env!("CARGO_PKG_VERSION"))),
            "{host} did not run the host's netlab:\n{log}"
        );
        assert!(log.contains("smoke passed"), "{host} did not finish:\n{log}");
    }
    assert!(
        log_of(&output, "host1").contains("host2 read what host1 wrote"),
        "the shared folder is not live:\n{output}"
    );
    assert!(output.contains("vm/run smoke: PASS"), "{output}");
}

/// The Debian package the demo scenarios install in the VMs, packed once from the
/// binaries `cargo test --workspace` built (packaging/build-deb --no-build).
fn package() {
    static PACKED: std::sync::Once = std::sync::Once::new();
    PACKED.call_once(|| {
        let output =
            Command::new(repo().join("packaging/build-deb")).arg("--no-build").output().expect("run build-deb");
        assert!(output.status.success(), "packaging/build-deb: {}", String::from_utf8_lossy(&output.stderr));
    });
}

/// A demo of the tutorial in the two VMs: provisioned as Vagrant would, the overlay
/// pings the other VM's container, `netlab check` passes, teardown leaves eth1 as it was.
fn demo(name: &str) {
    package();
    let Some(output) = scenario(name) else { return };
    for host in ["host1", "host2"] {
        let log = log_of(&output, host);
        assert!(log.contains("installing netlab_"), "{host} did not install the package:\n{log}");
        assert!(log.contains("3 packets transmitted, 3 received"), "{host}: the overlay lost pings:\n{log}");
        if name != "flannel" {
            assert!(log.contains(" passed, 0 failed"), "{host}: netlab check did not pass:\n{log}");
        }
        assert!(log.contains("eth1 as it was"), "{host}: eth1 changed:\n{log}");
        assert!(log.contains(&format!("{name} passed")), "{host} did not finish:\n{log}");
    }
    assert!(output.contains(&format!("vm/run {name}: PASS")), "{output}");
}

#[test]
fn static_overlay() {
    demo("static");
}

#[test]
fn dynamic_overlay_with_the_folder_store() {
    demo("dir");
}

#[test]
fn dynamic_overlay_with_etcd_on_host1() {
    demo("etcd");
}

#[test]
fn flannel_mode() {
    demo("flannel");
}

/// Every vm/guest/NAME.sh has its test here (and every test its script).
#[test]
fn every_scenario_has_a_test() {
    let mut found: Vec<String> = std::fs::read_dir(repo().join("vm/guest"))
        .expect("read vm/guest")
        .flatten()
        .filter_map(|entry| entry.file_name().to_string_lossy().strip_suffix(".sh").map(str::to_string))
        // Libraries the scenarios source, not scenarios.
        .filter(|name| name != "lib" && name != "demo")
        .collect();
    found.sort();
    let mut listed: Vec<String> = SCENARIOS.iter().map(|s| s.to_string()).collect();
    listed.sort();
    assert_eq!(found, listed, "vm/guest/*.sh and SCENARIOS in tests/vm.rs differ: add a test for each scenario");
}
