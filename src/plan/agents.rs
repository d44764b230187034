//! The vxlan-agents a lab runs: one per VXLAN device with a store (unless the file
//! says `agent: false`), in the namespace of the device's underlay, and the flannel-like
//! mode's node daemon (`vxlan-agent node`) where a namespace declares `node:`. Desired agents
//! come from the file, observed ones are the processes found running (see
//! `agents::observe`); the difference is a list of start, restart and stop changes.
//! Pure, like the rest of the plan.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use serde::{Deserialize, Serialize};

use super::{Change, Desired, History};
use crate::model::{AgentMode, IfName, LinkKind, Place};
use netlab_store::{StoreUrl, Tls};

/// One agent as the file asks for it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct AgentSpec {
    /// The namespace it serves: the VXLAN device's, or the node daemon's own.
    pub place: Place,
    /// Where the agent process runs: the namespace of the device's UDP socket.
    pub underlay: Place,
    pub store: StoreUrl,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<Tls>,
    #[serde(flatten)]
    pub role: Role,
}

/// What the agent does.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "role", rename_all = "snake_case")]
pub enum Role {
    /// `vxlan-agent run`: fills one VXLAN device from the store.
    Vxlan { device: IfName, mode: AgentMode },
    /// `vxlan-agent node`: leases the host's subnet, makes its VXLAN device and routes.
    Node { public_ip: Ipv4Addr, ip_masq: bool },
}

/// Where the node daemon of a namespace writes its subnet file (flannel's format, for
/// CNI plugins) and its status: one of each per simulated host, which all share /run.
pub fn node_files(place: &Place) -> (String, String) {
    (format!("/run/vxlan-agent/node/{place}.env"), format!("/run/vxlan-agent/node/{place}.json"))
}

impl AgentSpec {
    /// `vxlan-agent`'s arguments for it, in a fixed order: an agent running with other
    /// arguments is another agent (observation compares them word for word).
    pub fn args(&self) -> Vec<String> {
        let mut args = Vec::new();
        match &self.role {
            Role::Vxlan { device, mode } => {
                args.push("run".to_string());
                if let Place::Node(node) = &self.place {
                    args.extend(["--netns".to_string(), node.to_string()]);
                }
                args.extend(["--device".to_string(), device.to_string(), "--store".into(), self.store.to_string()]);
                if *mode != AgentMode::Proactive {
                    args.extend(["--mode".to_string(), mode.name().to_string()]);
                }
            }
            Role::Node { public_ip, ip_masq } => {
                let (subnet_file, status_file) = node_files(&self.place);
                args.extend(["node".to_string(), "--store".into(), self.store.to_string()]);
                args.extend(["--public-ip".to_string(), public_ip.to_string()]);
                args.extend(["--subnet-file".to_string(), subnet_file, "--status-file".into(), status_file]);
                if *ip_masq {
                    args.push("--ip-masq".to_string());
                }
            }
        }
        if let Some(tls) = &self.tls {
            for (option, path) in [("--etcd-ca", &tls.ca), ("--etcd-cert", &tls.cert), ("--etcd-key", &tls.key)] {
                if let Some(path) = path {
                    args.extend([option.to_string(), path.display().to_string()]);
                }
            }
        }
        args
    }

    pub fn key(&self) -> AgentKey {
        let device = match &self.role {
            Role::Vxlan { device, .. } => Some(device.clone()),
            Role::Node { .. } => None,
        };
        AgentKey { place: self.place.clone(), device }
    }

    /// "proactive", "miss", or "node".
    pub fn kind(&self) -> &'static str {
        match &self.role {
            Role::Vxlan { mode, .. } => mode.name(),
            Role::Node { .. } => "node",
        }
    }
}

/// Which device an agent serves (`None`: the namespace's node daemon): at most one
/// agent each.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct AgentKey {
    pub place: Place,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<IfName>,
}

impl std::fmt::Display for AgentKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.device {
            Some(device) => f.write_str(&self.place.qualify(device)),
            None => write!(f, "{} (node daemon)", self.place),
        }
    }
}

impl AgentKey {
    /// A file name for the agent: `PLACE:DEVICE`, or `PLACE` for a node daemon (no
    /// interface or namespace name has a `:`, so no two agents share one).
    pub fn file_stem(&self) -> String {
        match &self.device {
            Some(device) => format!("{}:{device}", self.place),
            None => self.place.to_string(),
        }
    }
}

/// A vxlan-agent process found running where the lab's agents run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObservedAgent {
    pub key: AgentKey,
    /// The namespace the process runs in.
    pub underlay: Place,
    /// Its arguments after the program's name.
    pub args: Vec<String>,
    pub pid: u32,
    /// Its start time, in clock ticks after boot (/proc/PID/stat): with the pid, it
    /// names the process, even once the pid is recycled.
    pub started: u64,
}

/// The process a change stops: checked to be this one (start time, command line)
/// before any signal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentProcess {
    pub pid: u32,
    pub started: u64,
}

impl ObservedAgent {
    fn process(&self) -> AgentProcess {
        AgentProcess { pid: self.pid, started: self.started }
    }

    fn runs(&self, spec: &AgentSpec) -> bool {
        self.underlay == spec.underlay && self.args == spec.args()
    }
}

/// The agents `desired` asks for.
pub fn desired_agents(desired: &Desired) -> Vec<AgentSpec> {
    let mut agents = Vec::new();
    for (place, spec) in desired {
        for (name, link) in &spec.links {
            let LinkKind::Vxlan(vxlan) = &link.kind else { continue };
            let (Some(mode), Some(store)) = (vxlan.agent, &vxlan.store) else { continue };
            agents.push(AgentSpec {
                place: place.clone(),
                underlay: vxlan.underlay.clone(),
                store: store.clone(),
                tls: vxlan.store_tls.clone(),
                role: Role::Vxlan { device: name.clone(), mode },
            });
        }
        if let Some(node) = &spec.node {
            agents.push(AgentSpec {
                place: place.clone(),
                underlay: place.clone(),
                store: node.store.clone(),
                tls: node.store_tls.clone(),
                role: Role::Node { public_ip: node.public_ip, ip_masq: node.ip_masq },
            });
        }
    }
    agents
}

/// Whether an earlier apply of the lab ran an agent for `key`: only those are the
/// lab's to stop or replace.
fn was_ours(history: &History, key: &AgentKey) -> bool {
    let Some(namespace) = history.previous.get(&key.place) else { return false };
    let Some(device) = &key.device else { return namespace.node.is_some() };
    let link = namespace.links.get(device);
    matches!(link.map(|l| &l.kind), Some(LinkKind::Vxlan(vxlan)) if vxlan.agent.is_some() && vxlan.store.is_some())
}

/// Start what is missing, restart what runs with other arguments, stop the lab's
/// agents the file no longer asks for. An agent someone else started is left alone:
/// taken as the lab's when it runs as the file says, a conflict when it does not.
pub fn agent_changes(
    desired: &Desired,
    observed: &[ObservedAgent],
    history: &History,
    changes: &mut Vec<Change>,
    conflicts: &mut Vec<String>,
) {
    let mut running: BTreeMap<&AgentKey, Vec<&ObservedAgent>> = BTreeMap::new();
    for agent in observed {
        running.entry(&agent.key).or_default().push(agent);
    }
    let wanted = desired_agents(desired);
    for spec in &wanted {
        let key = spec.key();
        let found = running.get(&key).map(Vec::as_slice).unwrap_or_default();
        if found.iter().any(|agent| agent.runs(spec)) {
            continue;
        }
        match found.first() {
            None => changes.push(Change::StartAgent { agent: spec.clone() }),
            Some(_) if was_ours(history, &key) => changes.push(Change::RestartAgent {
                agent: spec.clone(),
                running: found.iter().map(|a| a.process()).collect(),
            }),
            Some(other) => conflicts.push(format!(
                "a vxlan-agent netlab did not start (pid {}) serves {key} with other arguments: stop it, or \
                 set `agent: false` on the device (or drop `node:`)",
                other.pid
            )),
        }
    }
    for (key, agents) in running {
        if wanted.iter().any(|spec| spec.key() == *key) || !was_ours(history, key) {
            continue;
        }
        changes.push(Change::StopAgent { key: key.clone(), running: agents.iter().map(|a| a.process()).collect() });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(place: &str, role: Role, tls: Option<Tls>) -> AgentSpec {
        AgentSpec {
            place: place.parse().unwrap(),
            underlay: "host1".parse().unwrap(),
            store: "etcd://10.0.0.9:2379/x".parse().unwrap(),
            tls,
            role,
        }
    }

    #[test]
    fn arguments_say_everything_the_file_does_in_a_fixed_order() {
        let vxlan = Role::Vxlan { device: "vxlan1".parse().unwrap(), mode: AgentMode::Miss };
        let tls = Tls { ca: Some("/ca.pem".into()), cert: Some("/c.pem".into()), key: Some("/k.pem".into()) };
        assert_eq!(
            spec("ov1", vxlan, Some(tls)).args().join(" "),
            "run --netns ov1 --device vxlan1 --store etcd://10.0.0.9:2379/x --mode miss --etcd-ca /ca.pem \
             --etcd-cert /c.pem --etcd-key /k.pem"
        );
        let host = Role::Vxlan { device: "vxlan1".parse().unwrap(), mode: AgentMode::Proactive };
        assert_eq!(spec("host", host, None).args().join(" "), "run --device vxlan1 --store etcd://10.0.0.9:2379/x");
        let node = spec("node1", Role::Node { public_ip: "10.0.0.2".parse().unwrap(), ip_masq: true }, None);
        assert_eq!(
            node.args().join(" "),
            "node --store etcd://10.0.0.9:2379/x --public-ip 10.0.0.2 --subnet-file /run/vxlan-agent/node/node1.env \
             --status-file /run/vxlan-agent/node/node1.json --ip-masq"
        );
        assert_eq!(node.key().file_stem(), "node1");
        assert_eq!(node.key().to_string(), "node1 (node daemon)");
    }
}
