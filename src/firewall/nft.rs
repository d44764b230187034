//! The lab's nftables table in a namespace, through the `nftables` crate (JSON to and
//! from `nft`). `nft` runs from a thread inside the namespace: the crate's own netns
//! handling breaks reads.

use std::path::PathBuf;

use anyhow::{anyhow, bail, Context, Result};
use nftables::schema::Nftables;
use serde_json::{json, Value};

use super::{ChainRules, Table, CHAINS};
use crate::model::Place;

/// `nft`, or an error naming the package, before anything changes.
pub fn program() -> Result<PathBuf> {
    super::program("nft").ok_or_else(|| anyhow!("nft not found: install the nftables package"))
}

/// The table as nft lists it, or `None` when the namespace has no such table.
pub fn read(place: &Place, table: &str) -> Result<Option<Table>> {
    let program = program()?;
    let name = table.to_string();
    let listed = netns::thread::in_one(place.to_netns(), move |_| {
        std::process::Command::new(&program)
            .args(["-j", "list", "table", "ip", &name])
            .output()
            .map_err(|e| netns::Error::io("run nft", e))
    })?;
    if !listed.status.success() {
        let stderr = String::from_utf8_lossy(&listed.stderr);
        if stderr.contains("No such file or directory") {
            return Ok(None);
        }
        bail!("nft list table ip {table} in {place}: {}", stderr.trim());
    }
    parse(&listed.stdout).map(Some).with_context(|| format!("read nft table {table} in {place}"))
}

fn parse(output: &[u8]) -> Result<Table> {
    let listed: Value = serde_json::from_slice(output)?;
    let objects = listed["nftables"].as_array().ok_or_else(|| anyhow!("no nftables array"))?;
    let mut table = Table::new();
    for object in objects {
        if let Some(chain) = object.get("chain") {
            let name = chain["name"].as_str().unwrap_or_default().to_string();
            let hook = chain["hook"].as_str().unwrap_or_default().to_string();
            let priority = chain["prio"].as_i64().unwrap_or_default() as i32;
            table.insert(name, ChainRules { hook, priority, rules: Vec::new() });
        }
    }
    for object in objects {
        if let Some(rule) = object.get("rule") {
            let chain = rule["chain"].as_str().unwrap_or_default();
            if let Some(chain) = table.get_mut(chain) {
                chain.rules.push(rule["expr"].clone());
            }
        }
    }
    Ok(table)
}

/// Replace the table with `wanted`, atomically: one `nft` transaction adds the table
/// (so that deleting it cannot fail), deletes it, and builds it again whole.
pub fn replace(place: &Place, name: &str, wanted: &Table) -> Result<()> {
    let table = json!({"family": "ip", "name": name});
    let mut commands =
        vec![json!({"add": {"table": table}}), json!({"delete": {"table": table}}), json!({"add": {"table": table}})];
    for (chain, _, _) in CHAINS {
        let rules = &wanted[chain];
        commands.push(json!({"add": {"chain": {
            "family": "ip", "table": name, "name": chain, "type": "nat", "hook": rules.hook, "prio": rules.priority, "policy": "accept"
        }}}));
        for expr in &rules.rules {
            commands.push(json!({"add": {"rule": {"family": "ip", "table": name, "chain": chain, "expr": expr}}}));
        }
    }
    run(place, commands)
}

pub fn delete(place: &Place, name: &str) -> Result<()> {
    let table = json!({"family": "ip", "name": name});
    run(place, vec![json!({"add": {"table": table}}), json!({"delete": {"table": table}})])
}

/// Apply a batch through the crate's typed schema, inside the namespace.
fn run(place: &Place, commands: Vec<Value>) -> Result<()> {
    program()?;
    let batch: Nftables<'static> =
        serde_json::from_value(json!({"nftables": commands})).context("build the nftables batch")?;
    netns::thread::in_one(place.to_netns(), move |_| {
        nftables::helper::apply_ruleset(&batch).map_err(|e| netns::Error::other("apply nftables batch", e))
    })
    .with_context(|| format!("nft in {place}"))
}
