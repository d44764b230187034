//! The vxlan-agents netlab runs for a lab, and the supervisor that keeps them running.
//!
//! Files, under /run/netlab/<lab>/ (the lab's record of its processes: the record
//! file proper is written by apply under the lab's lock, these by the supervisor):
//! - `want/<place>:<device>.json`: an agent apply wants (its spec), one file each so
//!   concurrent changes never rewrite each other's;
//! - `agents.json`: what the supervisor runs: each agent's pid, start time, log path,
//!   restarts and last error;
//! - `supervisor.json`: the supervisor's own pid and start time; `supervisor.lock`,
//!   held while it runs;
//! - `<place>:<device>.log` (each agent's output) and `supervisor.log`.

mod control;
mod observe;
pub mod process;
mod report;
mod state;
mod supervisor;

use std::path::{Path, PathBuf};

pub use control::{converge, shutdown, stop, supervisor_alive};
pub use observe::observe;
pub use report::{report, AgentReport};
pub use state::{AgentState, SupervisorState};
pub use supervisor::supervise;

use crate::model::LabName;
use crate::record::STATE_DIR;

/// The agent's program name, as it appears in /proc/PID/cmdline.
pub const PROGRAM: &str = "vxlan-agent";

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("write {}: {source}", path.display())]
    Write { path: PathBuf, source: std::io::Error },
    #[error("start the supervisor of lab {lab}: {source}")]
    SpawnSupervisor { lab: LabName, source: std::io::Error },
    #[error("the vxlan-agent of {key} is not running after {seconds} s: {reason} (log: {})", log.display())]
    NotRunning { key: String, seconds: u64, reason: String, log: PathBuf },
    #[error("processes of lab {lab} would not stop: {}", .processes.join(", "))]
    LeftBehind { lab: LabName, processes: Vec<String> },
    #[error("find the netlab executable: {0}")]
    OwnExecutable(std::io::Error),
    #[error("vxlan-agent is neither beside netlab ({}) nor on PATH: install it (from the source tree: `cargo build --release --workspace`), or set `agent: false` on the lab's VXLAN devices (and drop `node:`)", .beside.display())]
    NoAgentProgram { beside: PathBuf },
}

/// The lab's folder of processes and logs.
pub fn lab_dir(lab: &LabName) -> PathBuf {
    Path::new(STATE_DIR).join(lab.as_str())
}

/// The vxlan-agent to run: the one beside netlab's own executable, else the first on
/// PATH (found at each start, so an agent installed later is found too).
pub fn agent_program() -> Result<PathBuf, AgentError> {
    let beside = std::env::current_exe().map_err(AgentError::OwnExecutable)?.with_file_name(PROGRAM);
    if beside.is_file() {
        return Ok(beside);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join(PROGRAM))
        .find(|p| p.is_file())
        .ok_or(AgentError::NoAgentProgram { beside })
}
