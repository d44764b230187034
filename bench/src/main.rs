//! netlab's benchmark: builds the same lab with netlab and with the ways people build
//! such labs today, in one run on one machine, and prints medians and ratios. Started
//! by bench/run, inside its own network and mount namespace.

mod checks;
mod cni;
mod kernel;
mod labs;
mod leases;
mod measure;
mod overlay;
mod scale;

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};
use clap::{Parser, ValueEnum};
use serde::Serialize;
use serde_json::json;

use kernel::{count, settle, KernelState};
use measure::{median, run, run_each};

#[derive(Parser)]
#[command(about = "benchmark netlab against iproute2 scripts and mininet")]
struct Args {
    #[arg(value_enum)]
    case: Case,
    /// Lab sizes (default: star 100 and 1000, linear 50 and 100).
    #[arg(long, value_delimiter = ',')]
    nodes: Vec<usize>,
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Also write the figures as JSON.
    #[arg(long)]
    json: Option<PathBuf>,
    /// The netlab binary to measure.
    #[arg(long)]
    netlab: PathBuf,
    /// The vxlan-agent binary (default: beside netlab).
    #[arg(long)]
    agent: Option<PathBuf>,
    /// overlay: publications timed per store; agent: misses timed.
    #[arg(long, default_value_t = 100)]
    samples: u32,
    /// agent: keys in the burst (two per endpoint).
    #[arg(long, default_value_t = 20_000)]
    keys: u32,
    /// agent: endpoints in the etcd store one agent follows.
    #[arg(long, default_value_t = 100_000)]
    endpoints: u32,
    /// leases: remote leases one node daemon follows.
    #[arg(long, default_value_t = 1_000)]
    leases: u32,
    /// cni: containers added and deleted one after another.
    #[arg(long, default_value_t = 100)]
    containers: usize,
}

#[derive(Clone, Copy, ValueEnum, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum Case {
    Star,
    Linear,
    /// cluster-3 with agents: publication latency (dir, etcd), first pings (proactive, miss).
    Overlay,
    /// One agent: miss to install, and a burst of store keys.
    Agent,
    /// The node daemon: 50 nodes joining through etcd, one node following 1,000 leases.
    Leases,
    /// netlab-cni against the reference bridge + host-local plugins: ADD, DEL, bursts.
    Cni,
    /// netlab check (ping checks, pingall) against the same pings by hand.
    Checks,
}

/// One way of building a lab, and its figures over the runs.
#[derive(Serialize, Default)]
struct Series {
    name: String,
    apply_s: Vec<f64>,
    noop_s: Vec<f64>,
    destroy_s: Vec<f64>,
    peak_rss_mb: Vec<f64>,
    skipped: Option<String>,
}

impl Series {
    fn new(name: &str) -> Self {
        Series { name: name.into(), ..Series::default() }
    }
}

#[derive(Serialize)]
struct Target {
    what: String,
    measured: f64,
    limit: String,
    met: bool,
}

fn main() -> std::process::ExitCode {
    match main_result() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("netlab-bench: {e:#}");
            std::process::ExitCode::from(1)
        }
    }
}

fn main_result() -> Result<()> {
    let args = Args::parse();
    kernel::enter_sandbox()?;
    if matches!(args.case, Case::Overlay | Case::Agent | Case::Leases | Case::Cni | Case::Checks) {
        let work = tempdir()?;
        let tools = overlay::Tools {
            agent: args.agent.clone().unwrap_or_else(|| args.netlab.with_file_name("vxlan-agent")),
            netlab: args.netlab.clone(),
            work: work.clone(),
        };
        let report = match args.case {
            Case::Overlay => overlay::overlay(&tools, args.samples)?,
            Case::Cni => cni::cni(&args.netlab.with_file_name("netlab-cni"), &work, args.containers)?,
            Case::Checks => checks::checks(&args.netlab, &work, args.nodes.first().copied().unwrap_or(6), args.runs)?,
            Case::Leases => leases::leases(&tools, args.nodes.first().map_or(50, |n| *n as u32), args.leases)?,
            _ => overlay::agent(&tools, args.samples, args.keys, args.endpoints)?,
        };
        let _ = std::fs::remove_dir_all(&work);
        if let Some(path) = &args.json {
            std::fs::write(path, serde_json::to_string_pretty(&[report])?)
                .with_context(|| format!("write {}", path.display()))?;
        }
        return Ok(());
    }
    let sizes = match (args.nodes.is_empty(), args.case) {
        (false, _) => args.nodes.clone(),
        (true, Case::Star) => vec![100, 1000],
        (true, Case::Linear) => vec![50, 100],
        (true, _) => unreachable!("handled above"),
    };
    let work = tempdir()?;
    let empty = count()?;
    let mut reports = Vec::new();
    for &n in &sizes {
        let series = match args.case {
            Case::Star => star(&args, n, &work, empty)?,
            Case::Linear => linear(&args, n, &work, empty)?,
            _ => unreachable!("handled above"),
        };
        let targets = targets(args.case, n, &series);
        print_table(args.case, n, args.runs, &series, &targets);
        reports.push(json!({ "case": args.case, "nodes": n, "runs": args.runs, "series": series, "targets": targets }));
    }
    println!(
        "\n(the benchmark's own peak memory: {:.1} MB; netlab's figure cannot be below it)",
        kernel::own_peak_rss_mb()
    );
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_string_pretty(&reports)?)
            .with_context(|| format!("write {}", path.display()))?;
    }
    Ok(())
}

fn tempdir() -> Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("netlab-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

fn netlab(args: &Args, verb: &str, file: &Path) -> Result<measure::Measured> {
    run(Command::new(&args.netlab).arg(verb).arg(file).stdout(std::process::Stdio::null()))
}

/// netlab: apply, no-op re-apply, destroy; the state it built, checked to be gone.
fn netlab_run(args: &Args, file: &Path, series: &mut Series, empty: KernelState) -> Result<KernelState> {
    let applied = netlab(args, "apply", file)?;
    let built = count()?;
    let noop = netlab(args, "apply", file)?;
    let destroyed = netlab(args, "destroy", file)?;
    // destroy verifies before it returns: the kernel must already be back.
    let left = count()?;
    if left != empty {
        bail!("netlab destroy left {left:?}, expected {empty:?}");
    }
    series.apply_s.push(applied.seconds);
    series.noop_s.push(noop.seconds);
    series.destroy_s.push(destroyed.seconds);
    series.peak_rss_mb.push([applied, noop, destroyed].iter().map(|m| m.max_rss_kb).max().unwrap_or(0) as f64 / 1024.0);
    Ok(built)
}

fn same_state(who: &str, built: KernelState, netlab: KernelState) -> Result<()> {
    if built != netlab {
        bail!("{who} built {built:?}, netlab built {netlab:?}: not the same lab");
    }
    Ok(())
}

fn star(args: &Args, n: usize, work: &Path, empty: KernelState) -> Result<Vec<Series>> {
    let file = work.join(format!("star-{n}.yaml"));
    std::fs::write(&file, labs::star_yaml(n))?;
    let (build, teardown) = labs::star_per_command(n);
    let (host, namespaces, teardown_batch) = labs::star_batches(n);
    let host_file = work.join("host.batch");
    let teardown_file = work.join("teardown.batch");
    std::fs::write(&host_file, host)?;
    std::fs::write(&teardown_file, teardown_batch)?;
    let mut ns_files = Vec::new();
    for (ns, batch) in &namespaces {
        let path = work.join(format!("{ns}.batch"));
        std::fs::write(&path, batch)?;
        ns_files.push((ns.clone(), path));
    }

    let mut ours = Series::new("netlab");
    let mut per_command = Series::new("ip, one process per command");
    let mut batched = Series::new("ip -batch");
    for _ in 0..args.runs {
        let built = netlab_run(args, &file, &mut ours, empty)?;

        per_command.apply_s.push(run_each(&build)?);
        same_state("ip per command", count()?, built)?;
        let down = run_each(&teardown)?;
        per_command.destroy_s.push(down + settle(empty)?);

        let started = std::time::Instant::now();
        run(Command::new("ip").arg("-batch").arg(&host_file))?;
        for (ns, path) in &ns_files {
            run(Command::new("ip").args(["-n", ns, "-batch"]).arg(path))?;
        }
        batched.apply_s.push(started.elapsed().as_secs_f64());
        same_state("ip -batch", count()?, built)?;
        let down = run(Command::new("ip").arg("-batch").arg(&teardown_file))?.seconds;
        batched.destroy_s.push(down + settle(empty)?);
    }
    Ok(vec![ours, per_command, batched])
}

fn linear(args: &Args, n: usize, work: &Path, empty: KernelState) -> Result<Vec<Series>> {
    let file = work.join(format!("linear-{n}.yaml"));
    std::fs::write(&file, labs::linear_yaml(n))?;
    let mut ours = Series::new("netlab");
    let mut mininet = Series::new("mininet (mn --switch lxbr)");
    let have_mininet = Command::new("mn").arg("--version").output().is_ok_and(|o| o.status.success());
    if !have_mininet {
        mininet.skipped =
            Some("mininet is not installed (Debian packages mininet and bridge-utils): baseline skipped".into());
        eprintln!("note: {}", mininet.skipped.as_deref().unwrap_or_default());
    }
    for _ in 0..args.runs {
        netlab_run(args, &file, &mut ours, empty)?;
        if have_mininet {
            let topo = format!("linear,{n}");
            let measured = run(Command::new("mn")
                .args(["--switch", "lxbr", "--controller", "none", "--topo", &topo, "--test", "none"])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null()))?;
            // mininet builds and tears down in one command.
            mininet.apply_s.push(measured.seconds);
            settle(empty)?;
        }
    }
    Ok(vec![ours, mininet])
}

fn targets(case: Case, n: usize, series: &[Series]) -> Vec<Target> {
    let ours = &series[0];
    let target = |what: &str, measured: f64, limit: &str, met: bool| Target {
        what: what.into(),
        measured,
        limit: limit.into(),
        met,
    };
    let mut list = Vec::new();
    match (case, n) {
        (Case::Star, 1000) => {
            let apply = median(&ours.apply_s);
            list.push(target("apply (s)", apply, "<= 2.0", apply <= 2.0));
            let batch = median(&series[2].apply_s);
            list.push(target("apply speed-up over ip -batch", batch / apply, ">= 5x", batch / apply >= 5.0));
            let noop = median(&ours.noop_s);
            list.push(target("no-op re-apply (s)", noop, "<= 0.3", noop <= 0.3));
            let destroy = median(&ours.destroy_s);
            list.push(target("destroy (s)", destroy, "<= 1.5", destroy <= 1.5));
            let rss = median(&ours.peak_rss_mb);
            list.push(target("peak RSS (MB)", rss, "<= 50", rss <= 50.0));
        }
        (Case::Linear, 100) if series[1].skipped.is_none() => {
            let ours_total = median(&ours.apply_s) + median(&ours.destroy_s);
            let speedup = median(&series[1].apply_s) / ours_total;
            list.push(target("apply + destroy speed-up over mininet", speedup, ">= 30x", speedup >= 30.0));
        }
        _ => {}
    }
    list
}

fn print_table(case: Case, n: usize, runs: usize, series: &[Series], targets: &[Target]) {
    let name = match case {
        Case::Star => "star",
        Case::Linear => "linear",
        Case::Overlay | Case::Agent | Case::Leases | Case::Cni | Case::Checks => {
            unreachable!("printed by their modules")
        }
    };
    println!("\n{name} N={n} ({runs} runs, medians)");
    println!("{:<40} {:>10} {:>10} {:>10} {:>10}", "", "apply s", "no-op s", "destroy s", "peak MB");
    let cell = |values: &[f64], digits: usize| {
        if values.is_empty() {
            "-".to_string()
        } else {
            format!("{:.digits$}", median(values))
        }
    };
    for s in series {
        if let Some(reason) = &s.skipped {
            println!("{:<40} skipped: {reason}", s.name);
            continue;
        }
        println!(
            "{:<40} {:>10} {:>10} {:>10} {:>10}",
            s.name,
            cell(&s.apply_s, 3),
            cell(&s.noop_s, 3),
            cell(&s.destroy_s, 3),
            cell(&s.peak_rss_mb, 1)
        );
    }
    let ours = &series[0];
    for baseline in series.iter().skip(1).filter(|s| s.skipped.is_none()) {
        let ratio = |theirs: &[f64], ours: f64| {
            if theirs.is_empty() {
                "-".to_string()
            } else {
                format!("{:.1}x", median(theirs) / ours)
            }
        };
        match case {
            Case::Star => println!(
                "{:<40} {:>10} {:>10} {:>10}",
                format!("netlab vs {}", baseline.name),
                ratio(&baseline.apply_s, median(&ours.apply_s)),
                "",
                ratio(&baseline.destroy_s, median(&ours.destroy_s))
            ),
            Case::Linear => println!(
                "{:<40} {:>10}   (mininet's build + teardown / netlab's apply + destroy)",
                format!("netlab vs {}", baseline.name),
                ratio(&baseline.apply_s, median(&ours.apply_s) + median(&ours.destroy_s)),
            ),
            Case::Overlay | Case::Agent | Case::Leases | Case::Cni | Case::Checks => {}
        }
    }
    for t in targets {
        println!("target {:<40} {:>8.3} {:<8} {}", t.what, t.measured, t.limit, if t.met { "met" } else { "MISSED" });
    }
}
