//! Accept rules in iptables' filter FORWARD chain, each tagged with the comment
//! `netlab:<lab>`. A rule is the lab's only when it has exactly the shape netlab
//! writes and its comment is exactly the lab's mark; no other rule is ever deleted.
//! Both variants are consulted: iptables-nft, and iptables-legacy where a legacy
//! filter table exists (listing with iptables-legacy would create one otherwise).

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::{FirewallError, Result};

use crate::kernel_place::KernelPlace;
use crate::model::{LabName, Place};
use crate::ownership;
use crate::plan::firewall::{Backend, Direction, Forward, ForwardAccept};

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
        found.insert(backend, parse(&output, &ownership::mark(lab), backend));
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
    })
    .map_err(|source| FirewallError::Run { program: "iptables", place: place.clone(), source })?;
    Ok(names.lines().any(|table| table == "filter"))
}

/// The words of one line of `iptables -S`, unquoted. iptables prints an argument bare
/// when it holds only letters, digits, `_` and `-`, and otherwise in double quotes with
/// `"`, `\` and `'` escaped by a backslash (xtables_save_string). That is not a
/// shell's quoting (in a shell `\'` inside double quotes keeps its backslash), so
/// this is not left to a shell-words crate.
fn words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut chars = line.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        let Some(&first) = chars.peek() else { break };
        let mut word = String::new();
        if first == '"' {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => word.extend(chars.next()),
                    '"' => break,
                    c => word.push(c),
                }
            }
        } else {
            while let Some(c) = chars.next_if(|c| !c.is_whitespace()) {
                word.push(c);
            }
        }
        words.push(word);
    }
    words
}

/// The lab's accepts: rules of exactly the shape `add` writes,
/// `-A FORWARD -s|-d PREFIX -m comment --comment MARK -j ACCEPT`, with the lab's mark.
fn parse(listing: &str, mark: &str, backend: Backend) -> Forward {
    let mut forward = Forward::default();
    for line in listing.lines() {
        let words = words(line);
        let words: Vec<&str> = words.iter().map(String::as_str).collect();
        match words.as_slice() {
            ["-P", "FORWARD", "DROP"] => forward.policy_drop = true,
            ["-A", "FORWARD", flag, prefix, "-m", "comment", "--comment", comment, "-j", "ACCEPT"]
                if *comment == mark =>
            {
                let direction = match *flag {
                    "-s" => Direction::From,
                    "-d" => Direction::To,
                    _ => continue,
                };
                if let Ok(prefix) = prefix.parse() {
                    forward.accepts.insert(ForwardAccept { backend, direction, prefix });
                }
            }
            _ => {}
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

/// The rule's arguments after the action: `-D` with the same arguments deletes only a
/// rule equal in every match, the comment included.
fn rule(lab: &LabName, accept: &ForwardAccept) -> Vec<String> {
    let flag = match accept.direction {
        Direction::From => "-s",
        Direction::To => "-d",
    };
    let prefix = accept.prefix.to_string();
    let mark = ownership::mark(lab);
    ["FORWARD", flag, &prefix, "-m", "comment", "--comment", &mark, "-j", "ACCEPT"].map(String::from).to_vec()
}

fn change(place: &Place, lab: &LabName, accept: &ForwardAccept, action: &str) -> Result<()> {
    let program = program(accept.backend).ok_or(FirewallError::Missing("iptables", "iptables"))?;
    let mut args = vec!["-w".to_string(), action.to_string()];
    args.extend(rule(lab, accept));
    run(place, program, args).map(|_| ())
}

/// Run iptables inside the namespace; arguments go to execve, never to a shell.
fn run(place: &Place, program: PathBuf, args: Vec<String>) -> Result<String> {
    let run_error = |source| FirewallError::Run { program: "iptables", place: place.clone(), source };
    let mut command = netns::process::command_in(&place.to_netns(), &program.to_string_lossy()).map_err(run_error)?;
    let output = command.args(&args).output().map_err(|e| run_error(netns::Error::io("run iptables", e)))?;
    if !output.status.success() {
        return Err(FirewallError::Failed {
            program: "iptables",
            args: args.join(" "),
            place: place.clone(),
            stderr: String::from_utf8_lossy(&output.stderr).trim().to_string(),
        });
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_arguments_are_read_as_iptables_writes_them() {
        assert_eq!(words(r#"-A FORWARD --comment "netlab:x other" -j ACCEPT"#)[3], "netlab:x other");
        assert_eq!(words(r#"--comment "a\"b\'c\\d" x"#), ["--comment", r#"a"b'c\d"#, "x"]);
        assert_eq!(words("  -P   FORWARD DROP "), ["-P", "FORWARD", "DROP"]);
        assert_eq!(words(r#"--comment """#), ["--comment", ""]);
    }

    #[test]
    fn only_the_labs_exact_accepts_are_read() {
        let listing = "-P FORWARD DROP\n-A FORWARD -s 11.11.11.0/24 -m comment --comment \"netlab:nat\" -j ACCEPT\n\
                       -A FORWARD -d 11.11.11.0/24 -m comment --comment netlab:nat -j ACCEPT\n\
                       -A FORWARD -s 10.0.0.0/8 -m comment --comment \"netlab:other\" -j ACCEPT\n-A FORWARD -j DOCKER-USER\n\
                       -A FORWARD -s 10.1.0.0/16 -m comment --comment \"netlab:nat other\" -j ACCEPT\n\
                       -A FORWARD -s 10.2.0.0/16 -m comment --comment \"netlab:nat\" -j ACCEPT -m mark --mark 1\n\
                       -A FORWARD -s 10.3.0.0/16 -i eth0 -m comment --comment \"netlab:nat\" -j ACCEPT\n";
        let forward = parse(listing, "netlab:nat", Backend::Nft);
        assert!(forward.policy_drop);
        let prefixes: Vec<String> = forward.accepts.iter().map(|a| format!("{a}")).collect();
        assert_eq!(prefixes, ["accept forwarding from 11.11.11.0/24", "accept forwarding to 11.11.11.0/24"]);
    }

    #[test]
    fn the_rule_written_is_the_shape_read() {
        let lab: LabName = "nat".parse().unwrap();
        let accept =
            ForwardAccept { backend: Backend::Nft, direction: Direction::To, prefix: "11.11.11.0/24".parse().unwrap() };
        let line = format!("-A {}", rule(&lab, &accept).join(" "));
        assert_eq!(
            parse(&line, &ownership::mark(&lab), Backend::Nft).accepts.into_iter().collect::<Vec<_>>(),
            [accept]
        );
    }
}
