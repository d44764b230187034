//! `bench/run checks`: `netlab check` against the pings a person runs by hand, one
//! after the other (`ip netns exec NODE ping ...`, as netlab's checks themselves ran
//! before they ran together). A lab of N namespaces on one bridge; every node pings
//! every other: the N(N-1) ping checks, one `pingall`, and the hand loop, first with
//! every node answering, then with one node silent (its pings wait out their budget).

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};

use crate::measure::median;

/// The lab, with its checks written out one by one or as a pingall.
fn lab(nodes: usize, pingall: bool) -> String {
    let mut text = String::from("name: bench-checks\nhost:\n  bridges: {br0: {}}\n  interfaces:\n");
    for i in 1..=nodes {
        text.push_str(&format!("    p{i}: {{bridge: br0}}\n"));
    }
    text.push_str("nodes:\n");
    for i in 1..=nodes {
        text.push_str(&format!(
            "  n{i}: {{interfaces: {{eth0: {{addresses: [10.77.{}.{}/16]}}}}}}\n",
            i / 250,
            i % 250 + 1
        ));
    }
    text.push_str("links:\n");
    for i in 1..=nodes {
        text.push_str(&format!("  - endpoints: [n{i}:eth0, host:p{i}]\n"));
    }
    text.push_str("checks:\n");
    if pingall {
        text.push_str("  - pingall: {}\n");
        return text;
    }
    for (from, to) in pairs(nodes) {
        text.push_str(&format!("  - ping: {{from: n{from}, to: {}}}\n", address(to)));
    }
    text
}

fn address(i: usize) -> String {
    format!("10.77.{}.{}", i / 250, i % 250 + 1)
}

fn pairs(nodes: usize) -> impl Iterator<Item = (usize, usize)> {
    (1..=nodes).flat_map(move |from| (1..=nodes).filter(move |to| *to != from).map(move |to| (from, to)))
}

/// `netlab check FILE`: seconds, and the summary line (failures are expected in the
/// silent round, so the exit code is not judged).
fn check(netlab: &Path, file: &Path) -> Result<(f64, String)> {
    let started = Instant::now();
    let output = Command::new(netlab).arg("check").arg(file).stderr(Stdio::null()).output()?;
    let seconds = started.elapsed().as_secs_f64();
    let text = String::from_utf8_lossy(&output.stdout);
    let summary = text.lines().last().unwrap_or_default().to_string();
    if !summary.contains(" passed, ") {
        bail!("netlab check {}: {text}", file.display());
    }
    Ok((seconds, summary))
}

/// The same pings by hand, one after the other, with the budget netlab's checks use.
fn by_hand(nodes: usize) -> Result<(f64, usize)> {
    let started = Instant::now();
    let mut answered = 0;
    for (from, to) in pairs(nodes) {
        let status = Command::new("ip")
            .args(["netns", "exec", &format!("n{from}"), "ping", "-4", "-n", "-q", "-c", "1", "-W", "1", "-w", "3"])
            .arg(address(to))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()?;
        answered += usize::from(status.success());
    }
    Ok((started.elapsed().as_secs_f64(), answered))
}

pub fn checks(netlab: &Path, work: &Path, nodes: usize, runs: usize) -> Result<Value> {
    let pings = work.join("checks-pings.yaml");
    let pingall = work.join("checks-pingall.yaml");
    std::fs::write(&pings, lab(nodes, false))?;
    std::fs::write(&pingall, lab(nodes, true))?;
    let status = Command::new(netlab).arg("apply").arg(&pings).stdout(Stdio::null()).status()?;
    if !status.success() {
        bail!("netlab apply {} failed", pings.display());
    }
    let pairs = nodes * (nodes - 1);
    println!("checks: {nodes} namespaces on a bridge, {pairs} pings (each node to every other), {runs} runs each");
    let mut report = serde_json::Map::new();
    for round in ["all answer", "one node silent"] {
        if round == "one node silent" {
            let flushed =
                Command::new("ip").args(["-n", &format!("n{nodes}"), "addr", "flush", "dev", "eth0"]).status()?;
            if !flushed.success() {
                bail!("silence n{nodes}");
            }
        }
        let (mut hand, mut each, mut all) = (Vec::new(), Vec::new(), Vec::new());
        let mut summaries = Vec::new();
        for _ in 0..runs {
            hand.push(by_hand(nodes).context("the pings by hand")?.0);
            let (seconds, summary) = check(netlab, &pings)?;
            each.push(seconds);
            summaries.push(summary);
            let (seconds, summary) = check(netlab, &pingall)?;
            all.push(seconds);
            summaries.push(summary);
        }
        let (hand, each, all) = (median(&hand), median(&each), median(&all));
        println!("  {round}:");
        println!("    {:<28}{hand:7.2} s", "by hand, one after another");
        println!("    {:<28}{each:7.2} s  ({:.2}x by hand)", format!("{pairs} ping checks"), each / hand);
        println!("    {:<28}{all:7.2} s  ({:.2}x by hand)", "one pingall", all / hand);
        println!("    netlab said: {}", summaries[..2].join(" / "));
        let key = if round == "all answer" { "all_answer" } else { "one_silent" };
        report.insert(key.into(), json!({ "by_hand_s": hand, "ping_checks_s": each, "pingall_s": all }));
    }
    let _ = Command::new(netlab).arg("destroy").arg(&pings).stdout(Stdio::null()).status();
    report.insert("nodes".into(), json!(nodes));
    report.insert("pings".into(), json!(pairs));
    Ok(Value::Object(report))
}
