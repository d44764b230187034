//! One file per verb; each has a clap struct and a `run` that returns the exit code.

mod apply;
mod capture;
mod check;
mod destroy;
mod exec;
mod graph;
mod inspect;
mod list;
mod status;
mod validate;

use std::io::IsTerminal;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Result;
use clap::{Parser, Subcommand, ValueEnum};
use netlab::model::{self, Topology};

#[derive(Parser)]
#[command(
    name = "netlab",
    version,
    about = "Declarative network namespace labs: apply, check, destroy",
    after_help = netlab::exit::EXIT_HELP
)]
pub struct Cli {
    /// Log what netlab does (repeat for more detail).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Create or converge what the file declares.
    Apply(apply::Apply),
    /// Show the changes apply would make (same as `apply --dry-run`).
    Plan(apply::PlanCmd),
    /// Remove everything the lab created, and nothing else.
    Destroy(destroy::Destroy),
    /// Show each object of the lab and whether it matches the file.
    #[command(after_help = "Exit codes: 0 the lab matches the file, 1 it differs (netlab apply repairs it) or is \
                            not applied here, 2 invalid input.")]
    Status(status::Status),
    /// Check the file without touching the kernel.
    Validate(validate::Validate),
    /// Run a command inside a node's namespace, as `ip netns exec` does.
    #[command(after_help = "netlab becomes the command: its exit code is the command's (128+N when signal N \
                            ends it), 127 when there is no such command, 126 when it cannot be run, 1 when the \
                            namespace is missing or not the lab's, 2 invalid input.")]
    Exec(exec::Exec),
    /// Run the file's checks.
    Check(check::CheckCmd),
    /// List the labs applied on this host.
    List(list::List),
    /// Capture the frames of one interface of a lab, as pcap or one line each.
    Capture(capture::Capture),
    /// Draw the lab: dot, mermaid or svg.
    Graph(graph::Graph),
    /// Show what exists of the lab, as the kernel has it: interfaces, routes, entries.
    #[command(
        after_help = "Examples:\n  netlab inspect topologies/bridge.yaml\n  netlab inspect --name bridge -o json\n\n\
                            Exit codes: 0 the lab could be read (what it declares and the kernel lacks is shown \
                            as missing), 1 a runtime failure or a lab not applied here, 2 invalid input."
    )]
    Inspect(inspect::Inspect),
}

impl Command {
    pub async fn run(self) -> Result<ExitCode> {
        match self {
            Command::Apply(cmd) => cmd.run().await,
            Command::Plan(cmd) => cmd.run().await,
            Command::Destroy(cmd) => cmd.run().await,
            Command::Status(cmd) => cmd.run().await,
            Command::Validate(cmd) => cmd.run(),
            Command::Exec(cmd) => cmd.run(),
            Command::Check(cmd) => cmd.run().await,
            Command::List(cmd) => cmd.run(),
            Command::Capture(cmd) => cmd.run().await,
            Command::Graph(cmd) => cmd.run(),
            Command::Inspect(cmd) => cmd.run().await,
        }
    }
}

#[derive(Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum Output {
    #[default]
    Text,
    Json,
}

/// Load and validate a file for this machine's kernel; its warnings go to stderr.
pub fn load(path: &Path) -> Result<Topology> {
    let features = model::KernelFeatures { netem: netns::qdisc::netem_available() };
    let topology = model::load_for(path, features)?;
    for warning in &topology.warnings {
        eprintln!("{warning}");
    }
    Ok(topology)
}

pub fn print_json(value: &impl serde::Serialize) -> Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

pub fn init_tracing(verbose: u8) {
    let level = match verbose {
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("NETLAB_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    // Colour only for a person at a terminal, and not even then with NO_COLOR set
    // (https://no-color.org): logs sent to a file or a journal stay plain text.
    let colour = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(colour)
        .with_target(false)
        .init();
}
