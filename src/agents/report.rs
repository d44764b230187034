//! What `status` says about each agent: running or not, the entries it installed
//! (from the status file vxlan-agent keeps, see `vxlan-agent status`), its last error.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::process::is_alive;
use super::state::read_agents;
use super::PROGRAM;
use crate::model::{LabName, Place};
use crate::plan::agents::{AgentKey, AgentSpec};

/// Where vxlan-agent writes its status files (its `--status-dir` default).
const STATUS_DIR: &str = "/run/vxlan-agent";

/// The fields of vxlan-agent's status file that netlab reads (netlab does not
/// depend on the agent's crate: the file is the interface).
#[derive(Debug, Clone, Deserialize)]
pub(super) struct AgentStatusFile {
    pub pid: u32,
    #[serde(default)]
    pub store_loaded: bool,
    pub device_index: Option<u32>,
    #[serde(default)]
    pub device_problem: Option<String>,
    #[serde(default)]
    pub neighbours: usize,
    #[serde(default)]
    pub fdb: usize,
}

pub(super) fn agent_status(key: &AgentKey) -> Option<AgentStatusFile> {
    let netns = match &key.place {
        Place::Host => String::new(),
        Place::Node(node) => node.to_string(),
    };
    let file = Path::new(STATUS_DIR).join(format!("{netns}:{}.json", key.device));
    serde_json::from_slice(&std::fs::read(file).ok()?).ok()
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AgentReport {
    pub agent: String,
    pub running: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    /// Neighbour and FDB entries it has installed, as its status file says.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub neighbours: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fdb: Option<usize>,
    pub restarts: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log: Option<PathBuf>,
}

/// Each agent the file asks for, as it runs now.
pub fn report(lab: &LabName, wanted: &[AgentSpec]) -> Vec<AgentReport> {
    let states = read_agents(lab);
    wanted
        .iter()
        .map(|spec| {
            let key = spec.key();
            let state = states.get(&key.file_stem()).filter(|s| s.spec == *spec);
            let process = state.and_then(|s| s.process.clone()).filter(|p| is_alive(p, PROGRAM));
            let status = process.as_ref().and_then(|p| agent_status(&key).filter(|s| s.pid == p.pid));
            AgentReport {
                agent: key.to_string(),
                running: process.is_some(),
                pid: process.as_ref().map(|p| p.pid),
                neighbours: status.as_ref().map(|s| s.neighbours),
                fdb: status.as_ref().map(|s| s.fdb),
                restarts: state.map_or(0, |s| s.restarts),
                last_error: state.and_then(|s| s.last_error.clone()).or_else(|| status.and_then(|s| s.device_problem)),
                log: state.map(|s| s.log.clone()),
            }
        })
        .collect()
}
