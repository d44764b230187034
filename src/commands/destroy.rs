use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Result};
use clap::Args;
use netlab::lab;
use netlab::model::LabName;
use serde_json::json;

use super::{load, print_json, Output};

#[derive(Args)]
pub struct Destroy {
    /// The lab's file (optional with --name).
    pub file: Option<PathBuf>,
    /// The lab's name, to destroy it without its file.
    #[arg(long)]
    pub name: Option<String>,
    /// `text` for people, `json` for programs (a failure is then JSON too).
    #[arg(long, short, value_enum, default_value_t)]
    pub output: Output,
}

impl Destroy {
    pub async fn run(self) -> Result<ExitCode> {
        let topology = match &self.file {
            // A file edited into one that does not validate: the lab is still there,
            // and its record knows it.
            Some(file) => Some(load(file).map_err(|e| {
                e.context("the file does not validate: destroy the lab by its name, `netlab destroy --name LAB` (`netlab list` shows them)")
            })?),
            None => None,
        };
        let name: LabName = match (&self.name, &topology) {
            (Some(name), _) => match name.parse() {
                Ok(name) => name,
                Err(e) => {
                    eprintln!("netlab: {e}");
                    return Ok(ExitCode::from(2));
                }
            },
            (None, Some(topology)) => topology.name.clone(),
            (None, None) => bail!("destroy needs a FILE or --name LAB"),
        };
        let destroyed = lab::destroy(&name, topology.as_ref()).await?;
        if self.output == Output::Json {
            print_json(&json!({
                "lab": name,
                "changes": destroyed.plan.changes,
                "elapsed_ms": destroyed.elapsed.as_millis() as u64,
            }))?;
        } else if !destroyed.existed {
            println!("lab {name} is not applied here: nothing to destroy");
        } else {
            for change in &destroyed.plan.changes {
                println!("{change}");
            }
            println!("destroyed lab {name} in {} ms", destroyed.elapsed.as_millis());
        }
        Ok(ExitCode::SUCCESS)
    }
}
