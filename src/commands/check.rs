use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::Args;
use netlab::check::Outcome;
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
        let text = self.output == Output::Text;
        // In text each result is printed as soon as its check ends; JSON is one
        // document, printed at the end.
        let outcomes = netlab::check::run_all(&topology, |outcome| {
            if text {
                print_outcome(outcome);
            }
        })
        .await;
        let failed = outcomes.iter().filter(|o| !o.passed).count();
        if text {
            println!("{} passed, {failed} failed", outcomes.len() - failed);
        } else {
            print_json(
                &json!({ "lab": topology.name, "passed": outcomes.len() - failed, "failed": failed, "checks": outcomes }),
            )?;
        }
        Ok(if failed == 0 { ExitCode::SUCCESS } else { ExitCode::from(1) })
    }
}

fn print_outcome(outcome: &Outcome) {
    match (&outcome.passed, &outcome.detail) {
        (true, _) => println!("pass  {}", outcome.check),
        (false, Some(detail)) => println!("FAIL  {}: {detail}", outcome.check),
        (false, None) => println!("FAIL  {}", outcome.check),
    }
}
