//! The lab's nftables table in a namespace. `nft` runs from a thread inside the
//! namespace (the `nftables` crate's own netns handling breaks reads).
//!
//! The table is the lab's only when its comment is exactly the lab's mark
//! (`netlab:<lab>`). nft 1.0.6 (Debian 12) neither lists nor accepts a table's comment
//! in JSON, and the crate's schema has no field for it, so the mark is written and read
//! in nft's own syntax; chains and rules go as JSON through the crate's typed schema.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use super::{FirewallError, Result};
use nftables::schema::Nftables;
use serde_json::{json, Value};

use crate::kernel_place::KernelPlace;
use crate::model::{LabName, Place};
use crate::ownership;
use crate::plan::firewall::{table_name, ChainRules, ObservedTable, Table, CHAINS};

/// `nft`, or an error naming the package, before anything changes.
pub fn program() -> Result<PathBuf> {
    super::program("nft").ok_or(FirewallError::Missing("nft", "nftables"))
}

/// The table of the lab's name in the namespace, and whose it is.
pub fn read(place: &Place, lab: &LabName) -> Result<ObservedTable> {
    Ok(match inspect(place, lab)? {
        Found::Absent => ObservedTable::Absent,
        Found::Foreign => ObservedTable::Foreign(table_name(lab)),
        Found::Owned { table, .. } => ObservedTable::Owned(table),
    })
}

/// The lab's table, ready to be filled: found with the lab's mark, or created with it
/// when absent. A table of that name without the mark is refused.
pub fn prepare(place: &Place, lab: &LabName) -> Result<Prepared> {
    let name = table_name(lab);
    match inspect(place, lab)? {
        Found::Foreign => Err(FirewallError::Foreign { name, place: place.clone() }),
        Found::Owned { table, .. } => Ok(Prepared { created: false, chains: table.into_keys().collect() }),
        Found::Absent => {
            // `create` fails if a table of that name appeared meanwhile: never
            // filled unless it is the one made here, with the mark.
            script(place, &create_script(lab))?;
            Ok(Prepared { created: true, chains: Vec::new() })
        }
    }
}

pub struct Prepared {
    /// Made by this call: whoever undoes the run deletes it.
    pub created: bool,
    /// The chains it holds now.
    chains: Vec<String>,
}

/// Make the prepared table hold exactly `wanted`, in one transaction.
pub fn fill(place: &Place, lab: &LabName, prepared: &Prepared, wanted: &Table) -> Result<()> {
    batch(place, fill_batch(&table_name(lab), &prepared.chains, wanted))
}

/// Delete the lab's table, if there is one and it carries the mark; by its handle, so
/// that only the table just proven the lab's can go.
pub fn delete(place: &Place, lab: &LabName) -> Result<()> {
    match inspect(place, lab)? {
        Found::Owned { handle, .. } => {
            script(place, &format!("delete table ip handle {handle}\n"))?;
        }
        Found::Absent | Found::Foreign => {}
    }
    Ok(())
}

enum Found {
    Absent,
    Foreign,
    Owned { table: Table, handle: u64 },
}

fn inspect(place: &Place, lab: &LabName) -> Result<Found> {
    let name = table_name(lab);
    let Some(text) = list(place, &name, false)? else { return Ok(Found::Absent) };
    if !marked(&text, lab) {
        return Ok(Found::Foreign);
    }
    let Some(listed) = list(place, &name, true)? else { return Ok(Found::Absent) };
    let listing = |reason| FirewallError::Listing { name: name.clone(), place: place.clone(), reason };
    let (table, handle) = parse(listed.as_bytes()).map_err(listing)?;
    Ok(Found::Owned { table, handle })
}

/// `nft list table ip NAME` (as JSON or text), or `None` when there is no such table.
/// nft gives no distinct exit code for a missing table: a failed listing is taken as
/// absence only if the list of tables confirms it.
fn list(place: &Place, name: &str, as_json: bool) -> Result<Option<String>> {
    let mut args = vec!["list", "table", "ip", name];
    if as_json {
        args.insert(0, "-j");
    }
    match run(place, &args, None) {
        Ok(listing) => Ok(Some(listing)),
        Err(e) => {
            let tables = run(place, &["-j", "list", "tables", "ip"], None)?;
            let names = table_names(tables.as_bytes()).map_err(|reason| FirewallError::Listing {
                name: name.to_string(),
                place: place.clone(),
                reason,
            })?;
            if names.iter().any(|t| t == name) {
                Err(e)
            } else {
                Ok(None)
            }
        }
    }
}

/// Run nft inside the namespace, with `input` on its standard input.
fn run(place: &Place, args: &[&str], input: Option<String>) -> Result<String> {
    let program = program()?;
    let owned: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    let output = netns::thread::in_one(place.to_netns(), move |_| {
        let mut child = Command::new(&program)
            .args(&owned)
            .stdin(if input.is_some() { Stdio::piped() } else { Stdio::null() })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| netns::Error::io("run nft", e))?;
        if let (Some(input), Some(mut stdin)) = (input, child.stdin.take()) {
            stdin.write_all(input.as_bytes()).map_err(|e| netns::Error::io("write to nft", e))?;
        }
        child.wait_with_output().map_err(|e| netns::Error::io("run nft", e))
    })
    .map_err(|source| FirewallError::Run { program: "nft", place: place.clone(), source })?;
    if !output.status.success() {
        return Err(FirewallError::Failed {
            program: "nft",
            args: args.join(" "),
            place: place.clone(),
            stderr: String::from_utf8_lossy(&output.stderr).trim().to_string(),
        });
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// A script in nft's own syntax, read from standard input, as one transaction.
fn script(place: &Place, text: &str) -> Result<()> {
    run(place, &["-f", "-"], Some(text.to_string())).map(|_| ())
}

/// Apply a batch through the crate's typed schema, inside the namespace.
fn batch(place: &Place, commands: Vec<Value>) -> Result<()> {
    program()?;
    let batch: Nftables<'static> = serde_json::from_value(json!({"nftables": commands}))
        .map_err(|e| FirewallError::Batch { place: place.clone(), reason: e.to_string() })?;
    netns::thread::in_one(place.to_netns(), move |_| {
        nftables::helper::apply_ruleset(&batch).map_err(|e| netns::Error::other("apply nftables batch", e))
    })
    .map_err(|source| FirewallError::Run { program: "nft", place: place.clone(), source })
}

/// The table made with the lab's mark. Names are validated (letters, digits, `_`,
/// `-`, `.`), so they need no quoting in nft's syntax.
fn create_script(lab: &LabName) -> String {
    format!("create table ip {} {{ comment \"{}\"; }}\n", table_name(lab), ownership::mark(lab))
}

/// Whether nft's listing of a table shows the lab's mark as the table's comment (the
/// table's own lines are indented once; its chains' comments are indented twice).
fn marked(listing: &str, lab: &LabName) -> bool {
    let wanted = format!("\tcomment \"{}\"", ownership::mark(lab));
    listing.lines().any(|line| line == wanted)
}

/// One transaction: empty the table, delete its chains, build them again whole.
fn fill_batch(name: &str, chains: &[String], wanted: &Table) -> Vec<Value> {
    let mut commands = vec![json!({"flush": {"table": {"family": "ip", "name": name}}})];
    for chain in chains {
        commands.push(json!({"delete": {"chain": {"family": "ip", "table": name, "name": chain}}}));
    }
    for (chain, _, _) in CHAINS {
        let rules = &wanted[chain];
        commands.push(json!({"add": {"chain": {
            "family": "ip", "table": name, "name": chain, "type": "nat", "hook": rules.hook, "prio": rules.priority, "policy": "accept"
        }}}));
        for expr in &rules.rules {
            commands.push(json!({"add": {"rule": {"family": "ip", "table": name, "chain": chain, "expr": expr}}}));
        }
    }
    commands
}

/// Listing problems are reasons: the caller names the table and namespace.
fn objects(output: &[u8]) -> Result<Vec<Value>, String> {
    let listed: Value = serde_json::from_slice(output).map_err(|e| e.to_string())?;
    match listed.get("nftables") {
        Some(Value::Array(objects)) => Ok(objects.clone()),
        _ => Err("no nftables array".into()),
    }
}

fn table_names(output: &[u8]) -> Result<Vec<String>, String> {
    Ok(objects(output)?.iter().filter_map(|o| Some(o.get("table")?.get("name")?.as_str()?.to_string())).collect())
}

/// A table's chains and rules, and its handle, from nft's JSON listing.
fn parse(output: &[u8]) -> Result<(Table, u64), String> {
    let objects = objects(output)?;
    let handle = objects.iter().find_map(|o| o.get("table")?.get("handle")?.as_u64()).ok_or("no table handle")?;
    let mut table = Table::new();
    for object in &objects {
        if let Some(chain) = object.get("chain") {
            let name = chain["name"].as_str().unwrap_or_default().to_string();
            let hook = chain["hook"].as_str().unwrap_or_default().to_string();
            let priority = chain["prio"].as_i64().unwrap_or_default() as i32;
            table.insert(name, ChainRules { hook, priority, rules: Vec::new() });
        }
    }
    for object in &objects {
        if let Some(rule) = object.get("rule") {
            let chain = rule["chain"].as_str().unwrap_or_default();
            if let Some(chain) = table.get_mut(chain) {
                chain.rules.push(rule["expr"].clone());
            }
        }
    }
    Ok((table, handle))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lab(name: &str) -> LabName {
        name.parse().unwrap()
    }

    #[test]
    fn only_the_labs_exact_comment_marks_the_table() {
        let listing = "table ip netlab-nat {\n\tcomment \"netlab:nat\"\n\tchain postrouting {\n\t}\n}\n";
        assert!(marked(listing, &lab("nat")));
        assert!(!marked(listing, &lab("na")));
        assert!(!marked("table ip netlab-nat {\n\tcomment \"netlab:nat other\"\n}\n", &lab("nat")));
        assert!(!marked("table ip netlab-nat {\n}\n", &lab("nat")));
        // A chain's comment (indented twice) is not the table's.
        assert!(!marked("table ip netlab-nat {\n\tchain c {\n\t\tcomment \"netlab:nat\"\n\t}\n}\n", &lab("nat")));
        assert_eq!(create_script(&lab("a.b_c")), "create table ip netlab-a.b_c { comment \"netlab:a.b_c\"; }\n");
    }

    #[test]
    fn the_listing_gives_chains_rules_and_handle() {
        let listed = br#"{"nftables": [{"metainfo": {"version": "1.0.6"}}, {"table": {"family": "ip", "name": "netlab-x", "handle": 7}},
            {"chain": {"family": "ip", "table": "netlab-x", "name": "postrouting", "handle": 3, "type": "nat", "hook": "postrouting", "prio": 100, "policy": "accept"}},
            {"rule": {"family": "ip", "table": "netlab-x", "chain": "postrouting", "handle": 4, "expr": [{"masquerade": null}]}}]}"#;
        let (table, handle) = parse(listed).unwrap();
        assert_eq!(handle, 7);
        assert_eq!(table["postrouting"].hook, "postrouting");
        assert_eq!(table["postrouting"].rules, [json!([{"masquerade": null}])]);
        assert!(parse(b"{}").is_err());
    }

    #[test]
    fn refilling_deletes_every_chain_there_and_builds_them_again() {
        let wanted = crate::plan::firewall::nat_table(&Default::default());
        let commands = fill_batch("netlab-x", &["postrouting".into(), "mine".into()], &wanted);
        assert_eq!(commands[0], json!({"flush": {"table": {"family": "ip", "name": "netlab-x"}}}));
        assert_eq!(commands[2]["delete"]["chain"]["name"], "mine");
        assert_eq!(commands.len(), 1 + 2 + CHAINS.len());
        // The crate's schema takes it.
        serde_json::from_value::<Nftables>(json!({ "nftables": commands })).unwrap();
    }
}
