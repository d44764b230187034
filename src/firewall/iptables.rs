//! Accept rules in iptables' filter FORWARD chain, each tagged with a comment naming
//! the lab. Only rules carrying that comment are ever deleted. Both variants are
//! consulted: iptables-nft, and iptables-legacy where a legacy filter table exists
//! (listing with iptables-legacy would create one otherwise).

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use anyhow::{anyhow, bail, Result};

use super::{Backend, Direction, ForwardAccept};
use crate::model::{LabName, Place};

pub fn comment(lab: &LabName) -> String {
    format!("netlab:{lab}")
}

/// What the FORWARD chain holds for the lab.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Forward {
    pub policy_drop: bool,
    pub accepts: BTreeSet<ForwardAccept>,
}

/// The FORWARD chain of each iptables variant present; empty when iptables is not
/// installed (then no iptables rule can drop anything).
pub fn read(place: &Place, lab: &LabName) -> Result<BTreeMap<Backend, Forward>> {
    let mut found = BTreeMap::new();
    for backend in [Backend::Nft, Backend::Legacy] {
        let Some(program) = program(backend) else { continue };
        if backend == Backend::Legacy && !legacy_filter_exists(place)? {
            continue;
        }
        let output = run(place, program, vec!["-w".into(), "-S".into(), "FORWARD".into()])?;
        found.insert(backend, parse(&output, &comment(lab), backend));
    }
    Ok(found)
}

fn program(backend: Backend) -> Option<PathBuf> {
    match backend {
        Backend::Nft => super::program("iptables-nft").or_else(|| super::program("iptables")),
        Backend::Legacy => super::program("iptables-legacy"),
    }
}

/// Whether the namespace has a legacy filter table, read without creating one.
fn legacy_filter_exists(place: &Place) -> Result<bool> {
    let names = netns::thread::in_one(place.to_netns(), |_| {
        Ok(std::fs::read_to_string("/proc/thread-self/net/ip_tables_names").unwrap_or_default())
    })?;
    Ok(names.lines().any(|table| table == "filter"))
}

fn parse(listing: &str, comment: &str, backend: Backend) -> Forward {
    let mut forward = Forward::default();
    for line in listing.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        if words.starts_with(&["-P", "FORWARD", "DROP"]) {
            forward.policy_drop = true;
        }
        let ours = words.windows(2).any(|w| w[0] == "--comment" && w[1].trim_matches('"') == comment);
        if !ours || !words.ends_with(&["-j", "ACCEPT"]) {
            continue;
        }
        for (flag, direction) in [("-s", Direction::From), ("-d", Direction::To)] {
            let prefix = words.windows(2).find(|w| w[0] == flag).and_then(|w| w[1].parse().ok());
            if let Some(prefix) = prefix {
                forward.accepts.insert(ForwardAccept { backend, direction, prefix });
            }
        }
    }
    forward
}

pub fn add(place: &Place, lab: &LabName, accept: &ForwardAccept) -> Result<()> {
    change(place, lab, accept, "-I")
}

pub fn delete(place: &Place, lab: &LabName, accept: &ForwardAccept) -> Result<()> {
    change(place, lab, accept, "-D")
}

fn change(place: &Place, lab: &LabName, accept: &ForwardAccept, action: &str) -> Result<()> {
    let program = program(accept.backend).ok_or_else(|| anyhow!("iptables not found: install the iptables package"))?;
    let flag = match accept.direction {
        Direction::From => "-s",
        Direction::To => "-d",
    };
    let args = [
        "-w",
        action,
        "FORWARD",
        flag,
        &accept.prefix.to_string(),
        "-m",
        "comment",
        "--comment",
        &comment(lab),
        "-j",
        "ACCEPT",
    ];
    run(place, program, args.iter().map(|a| a.to_string()).collect()).map(|_| ())
}

/// Run iptables inside the namespace; arguments go to execve, never to a shell.
fn run(place: &Place, program: PathBuf, args: Vec<String>) -> Result<String> {
    let mut command = netns::process::command_in(&place.to_netns(), &program.to_string_lossy())?;
    let output = command.args(&args).output()?;
    if !output.status.success() {
        bail!("iptables {} in {place}: {}", args.join(" "), String::from_utf8_lossy(&output.stderr).trim());
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_the_labs_commented_accepts_are_read() {
        let listing = "-P FORWARD DROP\n-A FORWARD -s 11.11.11.0/24 -m comment --comment \"netlab:nat\" -j ACCEPT\n\
                       -A FORWARD -d 11.11.11.0/24 -m comment --comment netlab:nat -j ACCEPT\n\
                       -A FORWARD -s 10.0.0.0/8 -m comment --comment \"netlab:other\" -j ACCEPT\n-A FORWARD -j DOCKER-USER\n";
        let forward = super::parse(listing, "netlab:nat", super::Backend::Nft);
        assert!(forward.policy_drop);
        assert_eq!(forward.accepts.len(), 2);
    }
}
