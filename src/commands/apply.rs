use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::{Args, ValueEnum};
use netlab::explain;
use netlab::lab;
use netlab::plan::Plan;
use serde_json::json;

use super::{load, print_json, Output};

#[derive(Args)]
pub struct Apply {
    pub file: PathBuf,
    /// Print the changes without making them.
    #[arg(long)]
    pub dry_run: bool,
    /// Follow each change with the equivalent ip/bridge/nft/iptables/sysctl commands.
    #[arg(long)]
    pub explain: bool,
    #[arg(long, short, value_enum, default_value_t)]
    pub output: Output,
}

/// `plan` has one more form than the other commands: the plan as a runnable script.
/// (An enum of its own, so `--output sh` is refused where it means nothing.)
#[derive(Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum PlanOutput {
    #[default]
    Text,
    Json,
    /// One POSIX sh script of the equivalent commands, in the plan's order.
    Sh,
}

#[derive(Args)]
pub struct PlanCmd {
    pub file: PathBuf,
    /// Follow each change with the equivalent ip/bridge/nft/iptables/sysctl commands.
    #[arg(long)]
    pub explain: bool,
    #[arg(long, short, value_enum, default_value_t)]
    pub output: PlanOutput,
}

impl PlanCmd {
    pub async fn run(self) -> Result<ExitCode> {
        let output = match self.output {
            PlanOutput::Text => Output::Text,
            PlanOutput::Json => Output::Json,
            PlanOutput::Sh => {
                let topology = load(&self.file)?;
                let applied = lab::apply(&topology, Some(&self.file), true).await?;
                print!("{}", explain::shell::script(&topology.name, &self.file.display().to_string(), &applied.plan));
                return Ok(ExitCode::SUCCESS);
            }
        };
        Apply { file: self.file, dry_run: true, explain: self.explain, output }.run().await
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
        print_changes(&topology.name, plan, self.explain);
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

/// Each change on a line; with `explain`, its commands below it, indented.
fn print_changes(lab: &netlab::model::LabName, plan: &Plan, explain: bool) {
    for change in &plan.changes {
        println!("{change}");
        if !explain {
            continue;
        }
        for command in explain::commands(lab, change) {
            for note in &command.notes {
                println!("    # {note}");
            }
            for line in command.to_string().lines() {
                println!("    {line}");
            }
        }
    }
}
