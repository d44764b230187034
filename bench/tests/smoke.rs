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
    assert!(netlab().exists(), "build netlab first: cargo test --workspace builds it");
    let json = std::env::temp_dir().join(format!("netlab-bench-smoke-{case}-{}.json", std::process::id()));
    let output = Command::new(env!("CARGO_BIN_EXE_netlab-bench"))
        .args(["--netlab", netlab().to_str().unwrap(), case, "--nodes", nodes, "--runs", "1", "--json"])
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
