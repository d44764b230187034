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
        // The node daemon's, at its default place under the same folder.
        let node_file = self.status_dir.join("node").join("status.json");
        let node = NodeStatus::read(&node_file).ok();
        if all.is_empty() && node.is_none() {
            println!("no agents have reported in {}", self.status_dir.display());
        }
        if let Some(n) = node {
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
