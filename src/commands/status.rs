//! `netlab status FILE`: each object of the lab against the kernel. Exit code 0 when
//! the lab matches the file, 1 when it differs or is not applied here (no record and
//! none of its namespaces), so scripts can test it.

use std::process::ExitCode;

use anyhow::Result;
use clap::Args;
use netlab::agents::AgentReport;
use netlab::lab;
use netlab::model::Topology;
use netlab::plan::agents::desired_agents;
use netlab::plan::{Change, Plan};
use netlab::record::Record;
use netlab::status::{status, State};
use netlab::store_changes::StoreAction;
use serde_json::json;

use super::{load, print_json, Output};

#[derive(Args)]
pub struct Status {
    #[command(flatten)]
    pub lab: super::lab_arg::LabFile,
    /// `text` for people, `json` for programs (a failure is then JSON too).
    #[arg(long, short, value_enum, default_value_t)]
    pub output: Output,
}

impl Status {
    pub async fn run(self) -> Result<ExitCode> {
        let file = self.lab.path()?;
        let topology = load(&file)?;
        let plan = lab::drift(&topology).await?;
        let lab::StoreDrift { changes: store, unread } = lab::store_drift(&topology).await?;
        let objects = status(&topology.namespaces, &plan);
        let agents = netlab::agents::report(&topology.name, &desired_agents(&topology.namespaces));
        // A record: apply made the lab and runs its agents under a supervisor, which
        // must be there, or nothing restarts an agent that dies (the next apply starts
        // it again). A lab built by `plan --output sh` has neither.
        let recorded = !matches!(Record::load(&topology.name), Ok(None));
        let supervised = agents.is_empty() || !recorded || netlab::agents::supervisor_alive(&topology.name);
        let in_sync = plan.is_empty() && store.is_empty() && supervised;
        // (A record that cannot be read still says the lab was applied here.)
        let applied = in_sync || recorded || !creates_every_node(&topology, &plan);
        let code = if in_sync { ExitCode::SUCCESS } else { ExitCode::from(1) };
        if self.output == Output::Json {
            print_json(&json!({
                "lab": topology.name,
                "applied": applied,
                "in_sync": in_sync,
                "objects": objects,
                "store": store,
                "agents": agents,
                "supervised": supervised,
            }))?;
            return Ok(code);
        }
        if !applied {
            println!("lab {} is not applied here (netlab apply {})", topology.name, file.display());
            return Ok(code);
        }
        for object in &objects {
            let state = match object.state {
                State::Ok => "ok",
                State::Missing => "missing",
                State::Differs => "differs",
                State::Unexpected => "unexpected",
            };
            match &object.detail {
                Some(detail) => println!("{state:<10} {} ({detail})", object.object),
                None => println!("{state:<10} {}", object.object),
            }
        }
        for change in &store {
            let (state, what) = match change.action {
                StoreAction::Publish => ("missing", "endpoint"),
                StoreAction::Withdraw => ("unexpected", "endpoint"),
            };
            let mac = change.mac.map(|m| m.to_string()).unwrap_or_else(|| "?".into());
            println!("{state:<10} {what} {} {mac} behind {} in store {}", change.ip, change.vtep, change.store);
        }
        if !supervised {
            println!(
                "{:<10} supervisor of the lab's agents (none would be restarted; netlab apply starts it)",
                "stopped"
            );
        }
        for (url, why) in &unread {
            println!("{:<10} endpoints in store {url}: cannot read it ({why})", "unknown");
        }
        for agent in &agents {
            println!(
                "{:<10} vxlan-agent of {}{}",
                if agent.running { "running" } else { "stopped" },
                agent.agent,
                details(agent)
            );
        }
        if in_sync {
            println!("lab {} matches {}", topology.name, file.display());
        } else {
            println!(
                "lab {} differs from {}: {} would repair it (netlab apply)",
                topology.name,
                file.display(),
                netlab::count(plan.changes.len() + store.len() + usize::from(!supervised), "change")
            );
        }
        Ok(code)
    }
}

/// " (pid N, 4 neighbours and 4 fdb entries installed, 1 restart, last error: ...)".
fn details(agent: &AgentReport) -> String {
    let mut parts = Vec::new();
    if let Some(pid) = agent.pid {
        parts.push(format!("pid {pid}"));
    }
    if let (Some(neighbours), Some(fdb)) = (agent.neighbours, agent.fdb) {
        let (neighbours, fdb) = (netlab::count(neighbours, "neighbour"), netlab::count(fdb, "fdb entry"));
        parts.push(format!("{neighbours} and {fdb} installed"));
    }
    if let Some(subnet) = &agent.subnet {
        parts.push(format!("subnet {subnet}, routes to {}", netlab::count(agent.routes.unwrap_or(0), "other subnet")));
    }
    if agent.restarts > 0 {
        parts.push(format!("restarts: {}", agent.restarts));
    }
    if let Some(error) = &agent.last_error {
        parts.push(format!("last error: {error}"));
    }
    if let Some(log) = &agent.log {
        parts.push(format!("log {}", log.display()));
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!(" ({})", parts.join(", "))
    }
}

/// Whether the plan makes every node's namespace: none of the lab is in the kernel.
fn creates_every_node(topology: &Topology, plan: &Plan) -> bool {
    topology.nodes().all(|place| {
        plan.changes
            .iter()
            .any(|c| matches!(c, Change::CreateNamespace { namespace } if place.node() == Some(namespace)))
    })
}
