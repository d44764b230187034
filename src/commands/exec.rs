use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::Args;
use netlab::model::Place;

use super::load;

#[derive(Args)]
pub struct Exec {
    pub file: PathBuf,
    /// The node (or `host`).
    pub node: String,
    /// The command and its arguments, after `--`.
    #[arg(last = true, required = true)]
    pub command: Vec<String>,
}

impl Exec {
    pub fn run(self) -> Result<ExitCode> {
        let topology = load(&self.file)?;
        let place: Place = match self.node.parse() {
            Ok(place) if topology.namespaces.contains_key(&place) => place,
            _ => {
                eprintln!("netlab: lab {} has no node `{}`", topology.name, self.node);
                return Ok(ExitCode::from(2));
            }
        };
        let (program, args) = self.command.split_first().expect("clap requires a command");
        let mut command = netns::process::command_in(&place.to_netns(), program)
            .with_context(|| format!("is lab {} applied?", topology.name))?;
        let status = command.args(args).status().with_context(|| format!("run {program} in {place}"))?;
        match status.code() {
            Some(code) => Ok(ExitCode::from(u8::try_from(code).unwrap_or(1))),
            None => bail!("{program} was killed by a signal"),
        }
    }
}
