//! `netlab exec FILE NODE -- CMD...`: what `ip netns exec NODE CMD...` does, for a
//! namespace this lab made. netlab's process becomes the command, so signals reach it
//! directly and its exit status is the command's own (128+n when a signal ends it).

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::Args;
use netlab::model::{LabName, NodeName, Place};
use netns::namespace::Presence;

use super::load;

#[derive(Args)]
#[command(
    override_usage = "netlab exec FILE NODE -- COMMAND [ARGS]...\n       netlab exec --name LAB NODE -- COMMAND [ARGS]..."
)]
pub struct Exec {
    /// The lab's file and the node (or `host`); with --name, the node alone.
    #[arg(value_name = "FILE NODE", num_args = 1..=2, required = true)]
    pub targets: Vec<String>,
    /// The lab's name: no file needed, the namespace is checked to be the lab's.
    #[arg(long)]
    pub name: Option<String>,
    /// The command and its arguments, after `--`: `netlab exec lab.yaml RED -- ip -br addr`.
    #[arg(last = true, required = true)]
    pub command: Vec<OsString>,
}

impl Exec {
    /// Call while the process has one thread: it enters the node's namespaces and, on
    /// success, never returns.
    pub fn run(self) -> Result<ExitCode> {
        let (file, node) = super::lab_arg::split_target(self.targets, self.name.as_deref())?;
        // By name, the lab's places are those of its last apply.
        let (lab, places): (LabName, BTreeSet<Place>) = match (file, &self.name) {
            (Some(file), _) => {
                let topology = load(&file)?;
                (topology.name, topology.namespaces.into_keys().collect())
            }
            (None, Some(name)) => {
                let record = super::lab_arg::record_of(name)?;
                (record.lab, record.applied.into_keys().collect())
            }
            (None, None) => return Err(netlab::exit::Usage("give the lab's FILE or --name LAB".into()).into()),
        };
        let place: Place = match node.parse() {
            Ok(place) if places.contains(&place) => place,
            _ => {
                eprintln!("netlab: lab {lab} has no node `{node}`");
                return Ok(ExitCode::from(2));
            }
        };
        if let Place::Node(node) = &place {
            enter(&lab, node)?;
        }
        let errno = netns::exec::exec(&self.command);
        let program = self.command[0].to_string_lossy();
        let (code, reason) = shell_failure(errno);
        eprintln!("netlab: {program}: {reason}");
        Ok(ExitCode::from(code))
    }
}

/// Move into the node's network namespace, after proving it is this lab's (its `lo`
/// carries the lab's mark), then into a mount namespace of its own.
fn enter(lab: &LabName, node: &NodeName) -> Result<()> {
    let name = node.as_str();
    if netns::namespace::presence(name) != Presence::Mounted {
        bail!("no namespace {name}: lab {lab} is not applied here (netlab apply)");
    }
    netns::namespace::enter(&netns::Netns::Named(name.to_string()))?;
    let socket = netns::Netlink::open_socket_here()?;
    let links = netns::blocking::links(&socket).with_context(|| format!("read namespace {name}"))?;
    let alias = links.iter().find(|l| l.name == "lo").and_then(|l| l.alias.as_deref());
    netlab::ownership::check_namespace(lab, name, alias)?;
    for uncovered in netns::exec::isolate_mounts(name)? {
        eprintln!("netlab: warning: {}", uncovered.error);
    }
    Ok(())
}

/// The exit code and message a shell gives when it cannot start a command: 127 when
/// there is no such command, 126 when it is there but cannot be run.
fn shell_failure(errno: nix::Error) -> (u8, String) {
    match errno {
        nix::Error::ENOENT => (127, "command not found".to_string()),
        other => (126, netns::errno_text(other as i32)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_to_start_exit_as_in_a_shell() {
        assert_eq!(shell_failure(nix::Error::ENOENT), (127, "command not found".to_string()));
        assert_eq!(shell_failure(nix::Error::EACCES), (126, "permission denied".to_string()));
        assert_eq!(shell_failure(nix::Error::ENOEXEC).0, 126);
    }
}
