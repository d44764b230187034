//! `netlab supervise --name LAB` (hidden): the lab's agent supervisor, started by
//! apply in a session of its own. Not for people to run: apply starts it and destroy
//! stops it.

use std::process::ExitCode;

use anyhow::Result;
use clap::Args;
use netlab::model::LabName;

#[derive(Args)]
pub struct Supervise {
    /// The lab whose agents to run.
    #[arg(long)]
    pub name: LabName,
}

impl Supervise {
    pub fn run(self) -> Result<ExitCode> {
        // Apply writes the lab's record before it starts the supervisor.
        if netlab::record::Record::load(&self.name)?.is_none() {
            anyhow::bail!("lab {} is not applied here: no agents to supervise", self.name);
        }
        netlab::agents::supervise(&self.name)?;
        Ok(ExitCode::SUCCESS)
    }
}
