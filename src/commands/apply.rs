use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::Args;
use netlab::lab;
use serde_json::json;

use super::{load, print_json, Output};

#[derive(Args)]
pub struct Apply {
    pub file: PathBuf,
    /// Print the changes without making them.
    #[arg(long)]
    pub dry_run: bool,
    #[arg(long, short, value_enum, default_value_t)]
    pub output: Output,
}

#[derive(Args)]
pub struct PlanCmd {
    pub file: PathBuf,
    #[arg(long, short, value_enum, default_value_t)]
    pub output: Output,
}

impl PlanCmd {
    pub async fn run(self) -> Result<ExitCode> {
        Apply { file: self.file, dry_run: true, output: self.output }.run().await
    }
}

impl Apply {
    pub async fn run(self) -> Result<ExitCode> {
        let topology = load(&self.file)?;
        let applied = lab::apply(&topology, Some(&self.file), self.dry_run).await?;
        let plan = &applied.plan;
        if self.output == Output::Json {
            print_json(&json!({
                "lab": topology.name,
                "dry_run": self.dry_run,
                "changes": plan.changes,
                "elapsed_ms": applied.elapsed.as_millis() as u64,
            }))?;
            return Ok(ExitCode::SUCCESS);
        }
        if plan.is_empty() {
            println!("no changes");
            return Ok(ExitCode::SUCCESS);
        }
        for change in &plan.changes {
            println!("{change}");
        }
        let counts: Vec<String> = lab::summary(plan).iter().map(|(verb, n)| format!("{n} {verb}")).collect();
        let verb = if self.dry_run { "would apply" } else { "applied" };
        println!(
            "{verb} {} changes ({}) to lab {} in {} ms",
            plan.changes.len(),
            counts.join(", "),
            topology.name,
            applied.elapsed.as_millis()
        );
        Ok(ExitCode::SUCCESS)
    }
}
