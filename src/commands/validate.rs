use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::Args;

use super::load;

#[derive(Args)]
pub struct Validate {
    pub file: PathBuf,
}

impl Validate {
    pub fn run(self) -> Result<ExitCode> {
        let topology = load(&self.file)?;
        let nodes = topology.nodes().count();
        let links: usize = topology.namespaces.values().map(|ns| ns.links.len()).sum();
        // Devices netlab does not create are checked against the kernel at plan time.
        let existing: Vec<String> = topology
            .namespaces
            .iter()
            .flat_map(|(place, spec)| spec.existing.iter().map(move |name| format!("{name} in {place}")))
            .collect();
        let existing = if existing.is_empty() {
            String::new()
        } else {
            format!("; existing devices, checked at plan time: {}", existing.join(", "))
        };
        println!(
            "{}: lab {} is valid ({nodes} nodes, {links} interfaces, {} checks){existing}",
            self.file.display(),
            topology.name,
            topology.checks.len()
        );
        Ok(ExitCode::SUCCESS)
    }
}
