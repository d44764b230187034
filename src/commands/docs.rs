//! `netlab completions SHELL` and `netlab man`: made from the clap definitions, so they
//! always say what the parser accepts.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Args, CommandFactory};

use super::Cli;

#[derive(Args)]
pub struct Completions {
    /// The shell to complete for: `netlab completions bash > /etc/bash_completion.d/netlab`.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

impl Completions {
    pub fn run(self) -> Result<ExitCode> {
        clap_complete::generate(self.shell, &mut Cli::command(), "netlab", &mut std::io::stdout());
        Ok(ExitCode::SUCCESS)
    }
}

#[derive(Args)]
pub struct Man {
    /// Write netlab.1 and a page per command (netlab-apply.1, ...) into DIR instead of
    /// printing netlab.1: `netlab man --dir /usr/local/share/man/man1`.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

impl Man {
    pub fn run(self) -> Result<ExitCode> {
        match self.dir {
            Some(dir) => std::fs::create_dir_all(&dir)
                .and_then(|()| clap_mangen::generate_to(Cli::command(), &dir))
                .with_context(|| format!("write man pages to {}", dir.display()))?,
            None => clap_mangen::Man::new(Cli::command()).render(&mut std::io::stdout()).context("write man page")?,
        }
        Ok(ExitCode::SUCCESS)
    }
}
