//! What the node daemon reports about itself: a JSON status file, rewritten
//! atomically after each reconciliation that changed something.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Beside the agents' status files, in a folder of its own (`vxlan-agent status`
/// reads the agents' folder only).
pub const DEFAULT_FILE: &str = "/run/vxlan-agent/node/status.json";

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeCounters {
    pub reconciliations: u64,
    pub installed: u64,
    pub removed: u64,
    /// Changes the kernel refused.
    pub failed: u64,
    /// Times the kernel dropped notifications (ENOBUFS).
    pub overruns: u64,
    pub store_snapshots: u64,
    pub store_errors: u64,
    pub leases_taken: u64,
    pub leases_lost: u64,
    pub renewal_errors: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeStatus {
    pub pid: u32,
    pub public_ip: String,
    /// The subnet held, if any.
    pub subnet: Option<String>,
    pub device: Option<String>,
    /// Other nodes' leases routed to.
    pub routes: usize,
    /// Why the node is not serving, if it is not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
    pub counters: NodeCounters,
}

impl NodeStatus {
    pub fn write(&self, file: &Path) -> std::io::Result<()> {
        if let Some(dir) = file.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let temporary: PathBuf = file.with_extension("json.tmp");
        std::fs::write(&temporary, serde_json::to_vec_pretty(self).expect("status serializes"))?;
        std::fs::rename(&temporary, file)
    }

    pub fn read(file: &Path) -> Result<NodeStatus, String> {
        let text = std::fs::read(file).map_err(|e| format!("read {}: {e}", file.display()))?;
        serde_json::from_slice(&text).map_err(|e| format!("read {}: {e}", file.display()))
    }
}
