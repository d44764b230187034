//! `netlab graph FILE [-o dot|mermaid|svg|json] [-w FILE]`: the picture of a lab.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Args;
use netlab::graph::{self, Format};

use super::load;

#[derive(Args)]
pub struct Graph {
    #[command(flatten)]
    pub lab: super::lab_arg::LabFile,
    /// dot (Graphviz), mermaid (a flowchart; renders on GitHub), svg (laid out by
    /// netlab) or json (the boxes and edges as objects). `--format` is the same.
    #[arg(short, long, alias = "format", value_enum, default_value = "dot")]
    pub output: Format,
    /// Write to FILE instead of stdout: `netlab graph lab.yaml -o svg -w lab.svg`.
    #[arg(short, long, value_name = "FILE")]
    pub write: Option<PathBuf>,
}

impl Graph {
    pub fn run(self) -> Result<ExitCode> {
        let topology = load(&self.lab.path()?)?;
        let text = graph::render(&topology, self.output)?;
        match &self.write {
            Some(path) => std::fs::write(path, text).with_context(|| format!("write {}", path.display()))?,
            None => print!("{text}"),
        }
        Ok(ExitCode::SUCCESS)
    }
}
