//! One file per verb; each has a clap struct and a `run` that returns the exit code.

mod apply;
mod capture;
mod check;
mod destroy;
mod docs;
mod exec;
mod graph;
mod inspect;
mod lab_arg;
mod list;
mod status;
mod supervise;
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
    #[command(
        after_help = "Examples:\n  netlab apply topologies/bridge.yaml\n  netlab apply --explain topologies/nat.yaml\n  \
                            netlab apply --step topologies/bridge.yaml"
    )]
    Apply(apply::Apply),
    /// Show the changes apply would make (same as `apply --dry-run`).
    #[command(
        after_help = "Examples:\n  netlab plan topologies/bridge.yaml\n  netlab plan --explain topologies/nat.yaml\n  \
                            netlab plan topologies/bridge.yaml -o sh > lab.sh"
    )]
    Plan(apply::PlanCmd),
    /// Remove everything the lab created, and nothing else.
    #[command(after_help = "Examples:\n  netlab destroy topologies/bridge.yaml\n  netlab destroy --name bridge")]
    Destroy(destroy::Destroy),
    /// Show each object of the lab and whether it matches the file.
    #[command(
        after_help = "Examples:\n  netlab status topologies/bridge.yaml\n  netlab status --name bridge -o json\n\n\
                            Exit codes: 0 the lab matches the file, 1 it differs (netlab apply repairs it) or is \
                            not applied here, 2 invalid input."
    )]
    Status(status::Status),
    /// Check the file without touching the kernel.
    #[command(
        after_help = "Examples:\n  netlab validate topologies/bridge.yaml\n  netlab validate lab.yaml -o json\n\n\
                            Exit codes: 0 valid, 2 invalid (each error as file:line:column)."
    )]
    Validate(validate::Validate),
    /// Run a command inside a node's namespace, as `ip netns exec` does.
    #[command(after_help = "Examples:\n  netlab exec topologies/bridge.yaml RED -- ip -br addr\n  \
                            netlab exec --name bridge BLUE -- ping -c 1 11.11.11.2\n\n\
                            netlab becomes the command: its exit code is the command's (128+N when signal N \
                            ends it), 127 when there is no such command, 126 when it cannot be run, 1 when the \
                            namespace is missing or not the lab's, 2 invalid input.")]
    Exec(exec::Exec),
    /// Run the file's checks.
    #[command(
        after_help = "Examples:\n  netlab check topologies/bridge.yaml\n  netlab check --name cluster-3 --only pingall\n  \
                            netlab check lab.yaml --timeout 10 -o json\n\nExit codes: 0 every check passed, 1 one failed, 2 \
                            invalid input."
    )]
    Check(check::CheckCmd),
    /// List the labs applied on this host.
    #[command(after_help = "Examples:\n  netlab list\n  netlab list -o json")]
    List(list::List),
    /// Capture the frames of one interface of a lab, as pcap or one line each.
    #[command(after_help = "Examples:\n  netlab capture topologies/nat.yaml host:vext -c 10\n  \
                            netlab capture --name overlay-static host1:eth0 -w - | tshark -r -\n  \
                            netlab capture lab.yaml RED:eth0 --timeout 5 -w red.pcap")]
    Capture(capture::Capture),
    /// Draw the lab: dot, mermaid, svg or json.
    #[command(after_help = "Examples:\n  netlab graph topologies/bridge.yaml -o mermaid\n  \
                            netlab graph topologies/overlay-static.yaml -o svg -w overlay.svg\n  \
                            netlab graph lab.yaml | dot -Tpng > lab.png")]
    Graph(graph::Graph),
    /// Show what exists of the lab, as the kernel has it: interfaces, routes, entries.
    #[command(
        after_help = "Examples:\n  netlab inspect topologies/bridge.yaml\n  netlab inspect --name bridge -o json\n\n\
                            Exit codes: 0 the lab could be read (what it declares and the kernel lacks is shown \
                            as missing), 1 a runtime failure or a lab not applied here, 2 invalid input."
    )]
    Inspect(inspect::Inspect),
    /// Print shell completions for bash, zsh, fish, elvish or powershell.
    #[command(after_help = "Examples:\n  netlab completions bash > /etc/bash_completion.d/netlab\n  \
                            netlab completions zsh > ~/.zfunc/_netlab")]
    Completions(docs::Completions),
    /// Print netlab's man page, or write a page per command into a folder.
    #[command(after_help = "Examples:\n  netlab man | man -l -\n  netlab man --dir /usr/local/share/man/man1")]
    Man(docs::Man),
    /// The supervisor of a lab's vxlan-agents (started by apply, stopped by destroy).
    #[command(hide = true)]
    Supervise(supervise::Supervise),
}

impl Command {
    /// Whether the output asked for is JSON: a failure is then reported as JSON too.
    pub fn wants_json(&self) -> bool {
        match self {
            Command::Apply(cmd) => cmd.output == Output::Json,
            Command::Plan(cmd) => cmd.output == apply::PlanOutput::Json,
            Command::Destroy(cmd) => cmd.output == Output::Json,
            Command::Status(cmd) => cmd.output == Output::Json,
            Command::Validate(cmd) => cmd.output == Output::Json,
            Command::Check(cmd) => cmd.output == Output::Json,
            Command::List(cmd) => cmd.output == Output::Json,
            Command::Inspect(cmd) => cmd.output == Output::Json,
            Command::Graph(cmd) => cmd.output == netlab::graph::Format::Json,
            Command::Exec(_)
            | Command::Capture(_)
            | Command::Completions(_)
            | Command::Man(_)
            | Command::Supervise(_) => false,
        }
    }

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
            Command::Completions(cmd) => cmd.run(),
            Command::Man(cmd) => cmd.run(),
            // It sleeps between rounds: off the runtime's workers.
            Command::Supervise(cmd) => tokio::task::spawn_blocking(move || cmd.run()).await?,
        }
    }
}

#[derive(Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum Output {
    #[default]
    Text,
    Json,
}

/// A duration in seconds on the command line, fractions allowed (`--timeout 0.5`).
pub fn seconds(text: &str) -> std::result::Result<std::time::Duration, String> {
    let value: f64 = text.parse().map_err(|_| format!("`{text}` is not a number of seconds"))?;
    std::time::Duration::try_from_secs_f64(value).map_err(|_| format!("`{text}` is not a duration in seconds"))
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

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::Cli;

    /// Every argument of every command says what it is, and every visible command shows
    /// examples: `--help` is where people look first.
    #[test]
    fn every_argument_has_help_and_every_command_examples() {
        let cli = Cli::command();
        let mut missing = Vec::new();
        for command in cli.get_subcommands().filter(|c| !c.is_hide_set()) {
            let after = command.get_after_help().map(ToString::to_string).unwrap_or_default();
            if !after.contains("Examples:") {
                missing.push(format!("{}: no examples", command.get_name()));
            }
            for arg in command.get_arguments().filter(|a| !a.is_hide_set()) {
                if arg.get_help().is_none() && !["help", "version"].contains(&arg.get_id().as_str()) {
                    missing.push(format!("{} {}: no help", command.get_name(), arg.get_id()));
                }
            }
        }
        assert!(missing.is_empty(), "{missing:#?}");
    }
}
