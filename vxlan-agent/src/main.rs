//! `vxlan-agent`: run the agent, publish or withdraw an endpoint by hand, list the
//! store, or show the agents' counters. Each command is a file in `commands/`.
//!
//! Exit codes: 0 success, 1 runtime failure (store unreachable, another agent holds
//! the device, a kernel error), 2 invalid input (usage, a bad store URL or value).

mod commands;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = commands::Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info,h2=warn,tower=warn".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("vxlan-agent: start runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(cli.command.execute()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(problem) => {
            eprintln!("vxlan-agent: {problem}");
            ExitCode::from(problem.exit_code())
        }
    }
}
