use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::Args;
use netlab::lab;
use netlab::status::{status, State};
use serde_json::json;

use super::{load, print_json, Output};

#[derive(Args)]
pub struct Status {
    pub file: PathBuf,
    #[arg(long, short, value_enum, default_value_t)]
    pub output: Output,
}

impl Status {
    pub async fn run(self) -> Result<ExitCode> {
        let topology = load(&self.file)?;
        let plan = lab::drift(&topology).await?;
        let objects = status(&topology.namespaces, &plan);
        let in_sync = plan.is_empty();
        if self.output == Output::Json {
            print_json(&json!({ "lab": topology.name, "in_sync": in_sync, "objects": objects }))?;
            return Ok(ExitCode::SUCCESS);
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
        if in_sync {
            println!("lab {} matches {}", topology.name, self.file.display());
        } else {
            println!(
                "lab {} differs from {}: {} changes would repair it (netlab apply)",
                topology.name,
                self.file.display(),
                plan.changes.len()
            );
        }
        Ok(ExitCode::SUCCESS)
    }
}
