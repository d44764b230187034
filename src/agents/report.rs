//! What `status` says about each agent: running or not, the entries it installed
//! (from the status file vxlan-agent keeps, see `vxlan-agent status`), its last error.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::process::{command_line, is_agent, is_alive, runs_program};
use super::state::read_agents;
use crate::model::{LabName, Place};
use crate::plan::agents::{node_files, AgentSpec, Role};

/// Where vxlan-agent writes its status files (its `--status-dir` default).
const STATUS_DIR: &str = "/run/vxlan-agent";

/// The fields of vxlan-agent's status file that netlab reads (netlab does not
/// depend on the agent's crate: the file is the interface).
#[derive(Debug, Clone, Deserialize)]
struct RunStatusFile {
    pid: u32,
    #[serde(default)]
    store_loaded: bool,
    device_index: Option<u32>,
    #[serde(default)]
    device_problem: Option<String>,
    #[serde(default)]
    neighbours: usize,
    #[serde(default)]
    fdb: usize,
}

/// The same of `vxlan-agent node`'s status file.
#[derive(Debug, Clone, Deserialize)]
struct NodeStatusFile {
    pid: u32,
    subnet: Option<String>,
    device: Option<String>,
    #[serde(default)]
    routes: usize,
    #[serde(default)]
    problem: Option<String>,
}

/// What an agent says of itself.
#[derive(Debug, Clone, Default)]
pub(super) struct AgentStatus {
    pub pid: u32,
    /// It serves: its store is loaded and its device there (a node daemon: it holds
    /// a subnet and has made its device).
    pub ready: bool,
    pub problem: Option<String>,
    pub neighbours: Option<usize>,
    pub fdb: Option<usize>,
    pub subnet: Option<String>,
    pub routes: Option<usize>,
}

fn read<T: for<'de> Deserialize<'de>>(file: &Path) -> Option<T> {
    serde_json::from_slice(&std::fs::read(file).ok()?).ok()
}

/// The files an agent netlab runs leaves under /run/vxlan-agent: a vxlan-agent's status
/// file and lock, a node daemon's status and subnet files. Destroy removes them once
/// the agent is stopped.
pub(super) fn agent_files(key: &crate::plan::agents::AgentKey) -> Vec<std::path::PathBuf> {
    match &key.device {
        Some(device) => {
            let netns = match &key.place {
                Place::Host => String::new(),
                Place::Node(node) => node.to_string(),
            };
            // Not with_extension: a device's name may hold a dot (`flannel.1`).
            let file = |suffix: &str| Path::new(STATUS_DIR).join(format!("{netns}:{device}.{suffix}"));
            vec![file("json"), file("lock")]
        }
        None => {
            let (subnet, status) = node_files(&key.place);
            vec![subnet.into(), status.into()]
        }
    }
}

pub(super) fn agent_status(spec: &AgentSpec) -> Option<AgentStatus> {
    match &spec.role {
        Role::Vxlan { device, .. } => {
            let netns = match &spec.place {
                Place::Host => String::new(),
                Place::Node(node) => node.to_string(),
            };
            let status: RunStatusFile = read(&Path::new(STATUS_DIR).join(format!("{netns}:{device}.json")))?;
            Some(AgentStatus {
                pid: status.pid,
                ready: status.store_loaded && status.device_index.is_some(),
                problem: status.device_problem,
                neighbours: Some(status.neighbours),
                fdb: Some(status.fdb),
                ..AgentStatus::default()
            })
        }
        Role::Node { .. } => {
            let status: NodeStatusFile = read(Path::new(&node_files(&spec.place).1))?;
            Some(AgentStatus {
                pid: status.pid,
                ready: status.subnet.is_some() && status.device.is_some(),
                problem: status.problem,
                subnet: status.subnet,
                routes: Some(status.routes),
                ..AgentStatus::default()
            })
        }
    }
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
    /// A node daemon's subnet and the routes it made to the other hosts' subnets.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subnet: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub routes: Option<usize>,
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
            let process = state.and_then(|s| s.process.clone()).filter(|p| is_alive(p, &is_agent));
            let status = match &process {
                Some(p) => agent_status(spec).filter(|s| s.pid == p.pid),
                // Not the supervisor's (started by a script, say): running if the pid
                // of its status file is a vxlan-agent still.
                None => agent_status(spec)
                    .filter(|s| command_line(s.pid).is_some_and(|words| runs_program(&words, super::PROGRAM))),
            };
            let pid = process.as_ref().map(|p| p.pid).or(status.as_ref().map(|s| s.pid));
            AgentReport {
                agent: key.to_string(),
                running: pid.is_some(),
                pid,
                neighbours: status.as_ref().and_then(|s| s.neighbours),
                fdb: status.as_ref().and_then(|s| s.fdb),
                subnet: status.as_ref().and_then(|s| s.subnet.clone()),
                routes: status.as_ref().and_then(|s| s.routes),
                restarts: state.map_or(0, |s| s.restarts),
                last_error: state.and_then(|s| s.last_error.clone()).or_else(|| status.and_then(|s| s.problem)),
                log: state.map(|s| s.log.clone()),
            }
        })
        .collect()
}
