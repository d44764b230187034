//! `vxlan-agent completions SHELL` and `vxlan-agent man`: made from the clap definitions, so they
//! always say what the parser accepts.

use std::path::PathBuf;

use clap::{Args, CommandFactory};
use vxlan_agent::Error;

use super::Cli;

#[derive(Args)]
pub struct Completions {
    /// The shell to complete for: `vxlan-agent completions bash > /etc/bash_completion.d/vxlan-agent`.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

impl Completions {
    pub fn execute(self) -> Result<(), Error> {
        clap_complete::generate(self.shell, &mut Cli::command(), "vxlan-agent", &mut std::io::stdout());
        Ok(())
    }
}

#[derive(Args)]
pub struct Man {
    /// Write vxlan-agent.1 and a page per command (vxlan-agent-run.1, ...) into DIR instead of
    /// printing vxlan-agent.1: `vxlan-agent man --dir /usr/local/share/man/man1`.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

impl Man {
    pub fn execute(self) -> Result<(), Error> {
        match self.dir {
            Some(dir) => std::fs::create_dir_all(&dir)
                .and_then(|()| clap_mangen::generate_to(Cli::command(), &dir))
                .map_err(|e| Error::file("write man pages to", &dir, e)),
            None => clap_mangen::Man::new(Cli::command())
                .render(&mut std::io::stdout())
                .map_err(|e| Error::file("write", std::path::Path::new("stdout"), e)),
        }
    }
}
