//! The `netlab` command: parses arguments, dispatches to a verb, and turns errors into
//! messages and exit codes (0 success, 1 runtime failure, 2 invalid input).

mod commands;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = commands::Cli::parse();
    commands::init_tracing(cli.verbose);
    raise_fd_limit();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("netlab: start runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(cli.command.run()) {
        Ok(code) => code,
        Err(err) => match err.downcast_ref::<netlab::model::LoadError>() {
            Some(netlab::model::LoadError::Invalid(diagnostics)) => {
                eprintln!("{diagnostics}");
                ExitCode::from(2)
            }
            Some(_) => {
                eprintln!("netlab: {}", netlab::error_text(&err));
                ExitCode::from(2)
            }
            None => {
                eprintln!("netlab: {}", netlab::error_text(&err));
                ExitCode::from(1)
            }
        },
    }
}

/// A large lab holds a socket per namespace: lift the soft limit on open files to the
/// hard one.
fn raise_fd_limit() {
    if let Ok((_, hard)) = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE) {
        let _ = nix::sys::resource::setrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE, hard, hard);
    }
}
