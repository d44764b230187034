//! The supervisor's files: what it runs, and itself. Written whole to a temporary
//! file and renamed, so a reader never sees half of one.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{lab_dir, AgentError};
use crate::model::LabName;
use crate::plan::agents::{AgentProcess, AgentSpec};

/// One agent as the supervisor runs it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentState {
    pub spec: AgentSpec,
    /// The running process, if one runs.
    pub process: Option<AgentProcess>,
    pub log: PathBuf,
    /// Starts after the first (it died, or its device was made again).
    pub restarts: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SupervisorState {
    pub process: AgentProcess,
}

pub fn agents_file(lab: &LabName) -> PathBuf {
    lab_dir(lab).join("agents.json")
}

pub fn supervisor_file(lab: &LabName) -> PathBuf {
    lab_dir(lab).join("supervisor.json")
}

pub fn want_dir(lab: &LabName) -> PathBuf {
    lab_dir(lab).join("want")
}

/// The agents the supervisor last wrote, by `PLACE:DEVICE`; none when it wrote none.
pub fn read_agents(lab: &LabName) -> BTreeMap<String, AgentState> {
    read(&agents_file(lab)).unwrap_or_default()
}

pub fn read_supervisor(lab: &LabName) -> Option<SupervisorState> {
    read(&supervisor_file(lab))
}

/// The agents apply wants, by `PLACE:DEVICE`.
pub fn read_wanted(lab: &LabName) -> BTreeMap<String, AgentSpec> {
    let Ok(entries) = std::fs::read_dir(want_dir(lab)) else { return BTreeMap::new() };
    entries
        .flatten()
        .filter_map(|entry| {
            let name = entry.file_name().to_str()?.strip_suffix(".json")?.to_string();
            Some((name, read(&entry.path())?))
        })
        .collect()
}

fn read<T: for<'de> Deserialize<'de>>(path: &Path) -> Option<T> {
    serde_json::from_slice(&std::fs::read(path).ok()?).ok()
}

pub fn write(path: &Path, value: &impl Serialize) -> Result<(), AgentError> {
    let failed = |source| AgentError::Write { path: path.to_path_buf(), source };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(failed)?;
    }
    let temporary = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&temporary, serde_json::to_vec_pretty(value).expect("state serialises")).map_err(failed)?;
    std::fs::rename(&temporary, path).map_err(failed)
}
