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
        println!(
            "{}: lab {} is valid ({nodes} nodes, {links} interfaces, {} checks)",
            self.file.display(),
            topology.name,
            topology.checks.len()
        );
        Ok(ExitCode::SUCCESS)
    }
}
