//! The `netlab` command: parses arguments, dispatches to a verb, and turns errors into
//! messages and exit codes (one per kind of failure: see `netlab::exit`).

mod commands;

use std::process::ExitCode;

use clap::Parser;
use netlab::exit::Failure;

fn main() -> ExitCode {
    end_quietly_when_output_closes();
    let cli = commands::Cli::parse();
    commands::init_tracing(cli.verbose);
    let json = cli.command.wants_json();
    // exec becomes the command: it must enter the namespaces while the process has one
    // thread, and the command inherits netlab's limits, so it runs before the others.
    let command = match cli.command {
        commands::Command::Exec(exec) => return exit_code(exec.run(), false),
        command => command,
    };
    raise_fd_limit();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("netlab: start runtime: {e}");
            return ExitCode::from(1);
        }
    };
    exit_code(runtime.block_on(command.run()), json)
}

/// The exit code of a failure's kind; the message on stderr, and with `json` also as
/// a JSON document on stdout, where the output would have been.
fn exit_code(result: anyhow::Result<ExitCode>, json: bool) -> ExitCode {
    let err = match result {
        Ok(code) => return code,
        Err(err) => err,
    };
    let diagnostics = match err.downcast_ref::<netlab::model::LoadError>() {
        Some(netlab::model::LoadError::Invalid(diagnostics)) => Some(diagnostics),
        _ => None,
    };
    match diagnostics {
        Some(diagnostics) => {
            eprintln!("{diagnostics}");
            // A command's word on what to do about it (destroy's way out).
            let inner = err.downcast_ref::<netlab::model::LoadError>().map(ToString::to_string);
            if inner.is_some_and(|inner| inner != err.to_string()) {
                eprintln!("netlab: {err}");
            }
        }
        None => eprintln!("netlab: {}", netlab::error_text(&err)),
    }
    let failure = Failure::of(err.chain().map(|cause| cause as &(dyn std::error::Error + 'static)));
    if json {
        let mut located = Vec::new();
        let mut files = diagnostics.into_iter().collect::<Vec<_>>();
        while let Some(file) = files.pop() {
            for item in &file.items {
                located.push(serde_json::json!({
                    "file": file.file, "line": item.line, "column": item.column, "message": item.message,
                }));
            }
            files.extend(&file.also);
        }
        let report = serde_json::json!({ "error": {
            "kind": failure.name(),
            "exit_code": failure.code(),
            "message": match diagnostics {
                Some(d) => format!("{} does not validate: {}", d.file, netlab::count(located.len(), "error")),
                None => netlab::error_text(&err),
            },
            "diagnostics": located,
        }});
        println!("{}", serde_json::to_string_pretty(&report).unwrap_or_default());
    }
    ExitCode::from(failure.code())
}

/// A large lab holds a socket per namespace: lift the soft limit on open files to the
/// hard one.
fn raise_fd_limit() {
    if let Ok((_, hard)) = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE) {
        let _ = nix::sys::resource::setrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE, hard, hard);
    }
}

/// When the reader of netlab's output goes away (`netlab plan big.yaml | head -1`),
/// netlab ends as `cat` or `ip` do: killed by SIGPIPE, silently. Rust ignores SIGPIPE,
/// which turns such a print into a panic; restoring the default for the whole process
/// would also kill netlab when a program it feeds (`nft -f -`) exits early, where the
/// write's EPIPE must be reported instead. So the handler looks at which pipe broke.
fn end_quietly_when_output_closes() {
    extern "C" fn on_sigpipe(_: libc::c_int) {
        if output_closed(libc::STDOUT_FILENO) || output_closed(libc::STDERR_FILENO) {
            // SAFETY: signal and raise are async-signal-safe. SIGPIPE is blocked while
            // this handler runs, so the raised one is delivered, with the default
            // action, as the handler returns.
            unsafe {
                libc::signal(libc::SIGPIPE, libc::SIG_DFL);
                libc::raise(libc::SIGPIPE);
            }
        }
    }
    let action = nix::sys::signal::SigAction::new(
        nix::sys::signal::SigHandler::Handler(on_sigpipe),
        nix::sys::signal::SaFlags::SA_RESTART,
        nix::sys::signal::SigSet::empty(),
    );
    // SAFETY: the handler only calls async-signal-safe functions (poll, signal, raise).
    let _ = unsafe { nix::sys::signal::sigaction(nix::sys::signal::Signal::SIGPIPE, &action) };
}

/// Whether `fd` is a pipe or socket whose reader has gone: the kernel reports POLLERR
/// (pipe) or POLLHUP (socket) on it whatever events are asked for.
fn output_closed(fd: libc::c_int) -> bool {
    let mut poll = libc::pollfd { fd, events: 0, revents: 0 };
    // SAFETY: one valid pollfd, no waiting; poll is async-signal-safe.
    let ready = unsafe { libc::poll(&mut poll, 1, 0) };
    ready == 1 && poll.revents & (libc::POLLERR | libc::POLLHUP) != 0
}
