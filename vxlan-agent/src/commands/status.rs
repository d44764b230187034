//! `status`: the counters the agents on this host report.

use std::path::PathBuf;

use clap::Args;
use vxlan_agent::node::report::NodeStatus;
use vxlan_agent::status::{self, Status};
use vxlan_agent::Error;

#[derive(Args)]
pub struct ShowStatus {
    #[arg(long, default_value = status::DEFAULT_DIR)]
    status_dir: PathBuf,
    /// `json`: every agent's status file as an array of objects.
    #[arg(long, short, value_enum, default_value_t)]
    output: super::Output,
    /// The same as `-o json` (kept for scripts written before `-o`).
    #[arg(long, hide = true, conflicts_with = "output")]
    json: bool,
}

impl ShowStatus {
    pub fn json(&self) -> bool {
        self.json || self.output == super::Output::Json
    }

    pub fn execute(self) -> Result<(), Error> {
        let all = Status::read_all(&self.status_dir).map_err(|reason| Error::File {
            step: "read",
            path: self.status_dir.display().to_string(),
            reason,
        })?;
        if self.json() {
            println!("{}", serde_json::to_string_pretty(&all).expect("status serializes"));
            return Ok(());
        }
        // The node daemons': every status file in `node/` under the same folder (the
        // default `node/status.json`, and one per daemon netlab runs: `node/<ns>.json`).
        let nodes: Vec<NodeStatus> =
            node_files(&self.status_dir.join("node")).iter().filter_map(|f| NodeStatus::read(f).ok()).collect();
        if all.is_empty() && nodes.is_empty() {
            println!("no agents have reported in {}", self.status_dir.display());
        }
        for n in nodes {
            let c = &n.counters;
            let running = std::path::Path::new(&format!("/proc/{}", n.pid)).exists();
            println!(
                "node {} pid {} ({}) subnet {} device {} routes {}",
                n.public_ip,
                n.pid,
                if running { "running" } else { "stopped" },
                n.subnet.as_deref().unwrap_or("none"),
                n.device.as_deref().unwrap_or("none"),
                n.routes
            );
            if let Some(problem) = &n.problem {
                println!("  {problem}");
            }
            println!(
                "  reconciliations {}; installed {} removed {} failed {}; overruns {}; store snapshots {} errors {}; leases taken {} lost {}; renewal errors {}",
                c.reconciliations, c.installed, c.removed, c.failed, c.overruns, c.store_snapshots, c.store_errors,
                c.leases_taken, c.leases_lost, c.renewal_errors
            );
        }
        for s in all {
            let c = &s.counters;
            println!(
                "{}:{} pid {} ({}) store {} mode {} keys {} neighbours {} fdb {}",
                s.netns,
                s.device,
                s.pid,
                if s.running() { "running" } else { "stopped" },
                s.store,
                s.mode,
                s.store_keys,
                s.neighbours,
                s.fdb
            );
            if let Some(problem) = &s.device_problem {
                println!("  {problem}");
            }
            println!(
                "  misses l3 {} l2 {} unknown {} ignored {}; installed {} removed {} failed {}; resyncs {} overruns {}; store updates {} snapshots {} errors {}; miss to install p50 {} us p99 {} us",
                c.l3_misses, c.l2_misses, c.unknown_misses, c.ignored_misses, c.installed, c.removed, c.failed,
                c.resyncs, c.overruns, c.store_updates, c.store_snapshots, c.store_errors, s.miss_to_install.p50_us, s.miss_to_install.p99_us
            );
        }
        Ok(())
    }
}

/// The regular `*.json` files of `dir`, in name order (links and anything else skipped).
fn node_files(dir: &std::path::Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    files
}
