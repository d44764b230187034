use std::process::ExitCode;

use anyhow::Result;
use clap::Args;

use serde_json::json;

use super::{load, print_json, Output};

#[derive(Args)]
pub struct Validate {
    #[command(flatten)]
    pub lab: super::lab_arg::LabFile,
    /// `json`: the counts as an object; errors too, each with line and column.
    #[arg(long, short, value_enum, default_value_t)]
    pub output: Output,
}

impl Validate {
    pub fn run(self) -> Result<ExitCode> {
        let file = self.lab.path()?;
        let topology = load(&file)?;
        let nodes = topology.nodes().count();
        let links: usize = topology.namespaces.values().map(|ns| ns.links.len()).sum();
        // Devices netlab does not create are checked against the kernel at plan time.
        let existing: Vec<String> = topology
            .namespaces
            .iter()
            .flat_map(|(place, spec)| spec.existing.iter().map(move |name| format!("{name} in {place}")))
            .collect();
        if self.output == Output::Json {
            print_json(&json!({
                "file": file.display().to_string(),
                "lab": topology.name,
                "valid": true,
                "nodes": nodes,
                "interfaces": links,
                "checks": topology.checks.len(),
                "existing": existing,
                "warnings": topology.warnings.iter().map(ToString::to_string).collect::<Vec<_>>(),
            }))?;
            return Ok(ExitCode::SUCCESS);
        }
        let existing = if existing.is_empty() {
            String::new()
        } else {
            format!("; existing devices, checked at plan time: {}", existing.join(", "))
        };
        println!(
            "{}: lab {} is valid ({}, {}, {}){existing}",
            file.display(),
            topology.name,
            netlab::count(nodes, "node"),
            netlab::count(links, "interface"),
            netlab::count(topology.checks.len(), "check")
        );
        Ok(ExitCode::SUCCESS)
    }
}
