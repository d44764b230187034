use std::io::{IsTerminal, Write};
use std::process::ExitCode;

use anyhow::Result;
use clap::{Args, ValueEnum};
use netlab::apply::{Decision, Step};
use netlab::explain;
use netlab::lab;
use netlab::model::{LabName, Topology};
use netlab::plan::{Change, Plan};
use netlab::store_changes::{StoreAction, StoreChange};
use serde_json::json;

use super::{load, print_json, Output};

#[derive(Args)]
pub struct Apply {
    #[command(flatten)]
    pub lab: super::lab_arg::LabFile,
    /// Print the changes without making them.
    #[arg(long)]
    pub dry_run: bool,
    /// Follow each change with the equivalent ip/bridge/nft/iptables/sysctl commands.
    #[arg(long)]
    pub explain: bool,
    /// One change at a time: show it and its commands, make it on Enter, stop on `q`
    /// (the next apply finishes the lab, destroy removes it).
    #[arg(long, conflicts_with_all = ["dry_run", "output"])]
    pub step: bool,
    /// `text` for people, `json` for programs (a failure is then JSON too).
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
    #[command(flatten)]
    pub lab: super::lab_arg::LabFile,
    /// Follow each change with the equivalent ip/bridge/nft/iptables/sysctl commands.
    #[arg(long)]
    pub explain: bool,
    /// `text` for people, `json` for programs, `sh` the equivalent commands as one script.
    #[arg(long, short, value_enum, default_value_t)]
    pub output: PlanOutput,
}

impl PlanCmd {
    pub async fn run(self) -> Result<ExitCode> {
        let output = match self.output {
            PlanOutput::Text => Output::Text,
            PlanOutput::Json => Output::Json,
            PlanOutput::Sh => {
                let file = self.lab.path()?;
                let topology = load(&file)?;
                let applied = lab::apply(&topology, Some(&file), true).await?;
                print!(
                    "{}",
                    explain::shell::script(&topology.name, &file.display().to_string(), &applied.plan, &applied.store)
                );
                return Ok(ExitCode::SUCCESS);
            }
        };
        Apply { lab: self.lab, dry_run: true, explain: self.explain, step: false, output }.run().await
    }
}

impl Apply {
    pub async fn run(self) -> Result<ExitCode> {
        let file = self.lab.path()?;
        let topology = load(&file)?;
        if self.step {
            return self.run_stepwise(&topology, &file).await;
        }
        let applied = lab::apply(&topology, Some(&file), self.dry_run).await?;
        let plan = &applied.plan;
        if self.output == Output::Json {
            print_json(&json!({
                "lab": topology.name,
                "dry_run": self.dry_run,
                "changes": plan.changes,
                "store": applied.store,
                "elapsed_ms": applied.elapsed.as_millis() as u64,
            }))?;
            return Ok(ExitCode::SUCCESS);
        }
        if plan.is_empty() && applied.store.is_empty() {
            println!("no changes");
            return Ok(ExitCode::SUCCESS);
        }
        print_changes(&topology.name, plan, self.explain);
        print_store_changes(&applied.store, self.explain);
        summarize(if self.dry_run { "would apply" } else { "applied" }, &topology.name, &applied);
        Ok(ExitCode::SUCCESS)
    }
}

/// Each change on a line; with `explain`, its commands below it, indented.
fn print_changes(lab: &LabName, plan: &Plan, explain: bool) {
    for change in &plan.changes {
        println!("{change}");
        if explain {
            print_commands(lab, change);
        }
    }
}

/// The overlay stores' changes, after the kernel's: publishing comes once the lab is made.
fn print_store_changes(store: &[StoreChange], explain: bool) {
    for change in store {
        println!("{change}");
        if explain {
            for command in explain::store_commands(change) {
                println!("    {command}");
            }
        }
    }
}

/// "applied 27 changes (25 created, 2 changed) to lab L in 94 ms": the kernel's changes
/// and the stores' together.
fn summarize(verb: &str, lab: &LabName, applied: &lab::Applied) {
    let mut summary = lab::summary(&applied.plan);
    for change in &applied.store {
        *summary.entry(store_verb(change)).or_default() += 1;
    }
    let counts: Vec<String> = summary.iter().map(|(verb, n)| format!("{n} {verb}")).collect();
    println!(
        "{verb} {} ({}) to lab {lab} in {} ms",
        netlab::count(applied.plan.changes.len() + applied.store.len(), "change"),
        counts.join(", "),
        applied.elapsed.as_millis()
    );
}

fn store_verb(change: &StoreChange) -> &'static str {
    match change.action {
        StoreAction::Publish => "created",
        StoreAction::Withdraw => "deleted",
    }
}

fn print_commands(lab: &LabName, change: &Change) {
    for command in explain::commands(lab, change) {
        for note in &command.notes {
            println!("    # {note}");
        }
        for line in command.to_string().lines() {
            println!("    {line}");
        }
    }
}

impl Apply {
    /// `--step`: the plan one change at a time, each shown with its commands and made
    /// only when the user says so on stdin (end of input stops, as `q` does).
    async fn run_stepwise(&self, topology: &Topology, file: &std::path::Path) -> Result<ExitCode> {
        let lab = topology.name.clone();
        let mut ask = |step: Step<'_>| ask(&lab, step);
        let applied = lab::apply_in(topology, Some(file), lab::Mode::Step(&mut ask)).await?;
        let total = applied.plan.changes.len();
        match applied.stopped_after {
            _ if total == 0 && applied.store.is_empty() => println!("no changes"),
            Some(0) => println!("stopped before the first change: nothing was made"),
            Some(made) => println!(
                "stopped after {made} of {}; lab {lab} is partly applied: `netlab apply {file}` finishes it, \
                 `netlab destroy {file}` removes it",
                netlab::count(total, "change"),
                file = file.display()
            ),
            None => {
                // The stores are written once the kernel's changes are made.
                print_store_changes(&applied.store, false);
                summarize("applied", &lab, &applied);
            }
        }
        Ok(ExitCode::SUCCESS)
    }
}

/// Answers read from a pipe or file are echoed, so a transcript reads as a terminal's.
fn echoed(answer: &str) -> &str {
    if !std::io::stdin().is_terminal() {
        println!("{answer}");
    }
    answer
}

fn ask(lab: &LabName, step: Step<'_>) -> Decision {
    println!("[{}/{}] {}", step.number, step.total, step.change);
    print_commands(lab, step.change);
    loop {
        print!("apply this change? [Enter: yes, q: stop] ");
        let _ = std::io::stdout().flush();
        let mut answer = String::new();
        match std::io::stdin().read_line(&mut answer) {
            Ok(0) | Err(_) => {
                println!();
                return Decision::Stop;
            }
            Ok(_) => match echoed(answer.trim()) {
                "" | "y" | "yes" => return Decision::Apply,
                "q" | "quit" | "n" | "no" => return Decision::Stop,
                other => println!("{other:?}: answer Enter to make the change, q to stop here"),
            },
        }
    }
}
