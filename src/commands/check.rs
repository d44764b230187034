use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::Args;
use serde_json::json;

use super::{load, print_json, Output};

#[derive(Args)]
pub struct CheckCmd {
    pub file: PathBuf,
    #[arg(long, short, value_enum, default_value_t)]
    pub output: Output,
}

impl CheckCmd {
    pub async fn run(self) -> Result<ExitCode> {
        let topology = load(&self.file)?;
        let outcomes = netlab::check::run_all(&topology).await;
        let failed = outcomes.iter().filter(|o| !o.passed).count();
        if self.output == Output::Json {
            print_json(
                &json!({ "lab": topology.name, "passed": outcomes.len() - failed, "failed": failed, "checks": outcomes }),
            )?;
        } else {
            for outcome in &outcomes {
                match (&outcome.passed, &outcome.detail) {
                    (true, _) => println!("pass  {}", outcome.check),
                    (false, Some(detail)) => println!("FAIL  {}: {detail}", outcome.check),
                    (false, None) => println!("FAIL  {}", outcome.check),
                }
            }
            println!("{} passed, {failed} failed", outcomes.len() - failed);
        }
        Ok(if failed == 0 { ExitCode::SUCCESS } else { ExitCode::from(1) })
    }
}
