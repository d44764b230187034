//! `vxlan-agent`: run the agent, publish or withdraw an endpoint by hand, list the
//! store, or show the agents' counters. Each command is a file in `commands/`.
//!
//! Exit codes: 0 success, 1 runtime failure (store unreachable, another agent holds
//! the device, a kernel error), 2 invalid input (usage, a bad store URL or value).

mod commands;

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = commands::Cli::parse();
    // Colour only for a person at a terminal, and not with NO_COLOR (https://no-color.org):
    // the agent's logs usually go to a journal or a file.
    let colour = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info,h2=warn,tower=warn".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(colour)
        .init();
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("vxlan-agent: start runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let json = cli.command.wants_json();
    match runtime.block_on(cli.command.execute()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(problem) => {
            eprintln!("vxlan-agent: {problem}");
            if json {
                // Where the output would have been, in the shape of netlab's errors.
                let kind = if problem.exit_code() == 2 { "invalid" } else { "runtime" };
                let report = serde_json::json!({ "error": {
                    "kind": kind, "exit_code": problem.exit_code(), "message": problem.to_string(),
                }});
                println!("{}", serde_json::to_string_pretty(&report).unwrap_or_default());
            }
            ExitCode::from(problem.exit_code())
        }
    }
}
