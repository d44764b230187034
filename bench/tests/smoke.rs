//! The benchmark keeps working: a smoke size of each case, one run. Timings are
//! reported, never asserted; what is asserted is that every way of building the lab
//! built the same thing (the benchmark fails otherwise) and that figures came out.

use std::path::PathBuf;
use std::process::Command;

fn netlab() -> PathBuf {
    // The workspace's netlab, built by this same `cargo test` (same profile).
    let bench = PathBuf::from(env!("CARGO_BIN_EXE_netlab-bench"));
    bench.with_file_name("netlab")
}

fn smoke(case: &str, nodes: &str) -> serde_json::Value {
    smoke_with(case, &["--nodes", nodes])
}

fn smoke_with(case: &str, options: &[&str]) -> serde_json::Value {
    assert!(netlab().exists(), "build netlab first: cargo test --workspace builds it");
    let json = std::env::temp_dir().join(format!("netlab-bench-smoke-{case}-{}.json", std::process::id()));
    let output = Command::new(env!("CARGO_BIN_EXE_netlab-bench"))
        .args(["--netlab", netlab().to_str().unwrap(), case, "--runs", "1"])
        .args(options)
        .arg("--json")
        .arg(&json)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let report: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    std::fs::remove_file(&json).unwrap();
    report
}

#[test]
fn star_smoke() {
    let report = smoke("star", "20");
    let series = report[0]["series"].as_array().unwrap();
    let names: Vec<&str> = series.iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["netlab", "ip, one process per command", "ip -batch"]);
    for s in series {
        assert_eq!(s["apply_s"].as_array().unwrap().len(), 1, "{s}");
        assert_eq!(s["destroy_s"].as_array().unwrap().len(), 1, "{s}");
    }
    assert!(series[0]["peak_rss_mb"][0].as_f64().unwrap() > 0.0);
}

#[test]
fn linear_smoke() {
    let report = smoke("linear", "5");
    let series = report[0]["series"].as_array().unwrap();
    assert_eq!(series[0]["apply_s"].as_array().unwrap().len(), 1);
    // mininet is optional: measured when installed, otherwise skipped with a reason.
    let mininet = &series[1];
    assert!(mininet["skipped"].is_string() || mininet["apply_s"].as_array().unwrap().len() == 1, "{mininet}");
}

#[test]
fn overlay_smoke() {
    let report = smoke_with("overlay", &["--samples", "5"]);
    let publication = report[0]["publication"].as_array().unwrap();
    assert_eq!(publication.len(), 2, "dir and etcd");
    for p in publication {
        assert_eq!(p["samples"], 5);
        assert!(p["p50_ms"].as_f64().unwrap() > 0.0, "{p}");
    }
    let pings = report[0]["first_pings"].as_array().unwrap();
    assert_eq!(pings[0]["mode"], "proactive");
    assert_eq!(pings[1]["mode"], "miss");
}

#[test]
fn agent_smoke() {
    let report = smoke_with("agent", &["--samples", "20", "--keys", "2000", "--endpoints", "2000"]);
    assert_eq!(report[0]["miss_to_install_ms"]["samples"], 20);
    assert_eq!(report[0]["burst"]["keys"], 2000);
    assert_eq!(report[0]["burst"]["lost"], 0, "{}", report[0]);
    assert_eq!(report[0]["etcd_scale"]["endpoints"], 2000);
    assert_eq!(report[0]["etcd_scale"]["lost"], 0, "{}", report[0]);
}

#[test]
fn leases_smoke() {
    let report = smoke_with("leases", &["--nodes", "4", "--leases", "50"]);
    assert_eq!(report[0]["join"]["nodes"], 4);
    assert!(report[0]["join"]["routed_after_last_join_p99_ms"].as_f64().is_some(), "{}", report[0]);
    assert_eq!(report[0]["follow"]["leases"], 50);
    assert_eq!(report[0]["follow"]["lost"], 0, "{}", report[0]);
    assert_eq!(report[0]["follow"]["overruns"], 0, "{}", report[0]);
}

#[test]
fn cni_smoke() {
    let report = smoke_with("cni", &["--containers", "5"]);
    for side in ["netlab_cni", "reference"] {
        let figures = &report[0][side];
        assert_eq!(figures["containers"], 5, "{figures}");
        assert!(figures["add_p50_ms"].as_f64().unwrap() > 0.0, "{figures}");
        assert_eq!(figures["parallel_duplicates"], 0, "{figures}");
    }
}

#[test]
fn checks_smoke() {
    let report = smoke_with("checks", &["--nodes", "3"]);
    assert_eq!(report[0]["pings"], 6, "{report}");
    for round in ["all_answer", "one_silent"] {
        for figure in ["by_hand_s", "ping_checks_s", "pingall_s"] {
            assert!(report[0][round][figure].as_f64().unwrap() > 0.0, "{report}");
        }
    }
}
