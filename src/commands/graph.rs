//! `netlab graph FILE --format dot|mermaid|svg [-o FILE]`: the picture of a lab.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Args;
use netlab::graph::{self, Format};

use super::load;

#[derive(Args)]
pub struct Graph {
    pub file: PathBuf,
    /// dot (Graphviz), mermaid (a flowchart; renders on GitHub) or svg (laid out by netlab).
    #[arg(long, value_enum, default_value = "dot")]
    pub format: Format,
    /// Write to this file instead of stdout.
    #[arg(short, long)]
    pub output: Option<PathBuf>,
}

impl Graph {
    pub fn run(self) -> Result<ExitCode> {
        let topology = load(&self.file)?;
        let text = graph::render(&topology, self.format)?;
        match &self.output {
            Some(path) => std::fs::write(path, text).with_context(|| format!("write {}", path.display()))?,
            None => print!("{text}"),
        }
        Ok(ExitCode::SUCCESS)
    }
}
