//! `--ip-masq`: traffic from the node's subnet to anywhere outside the cluster network
//! leaves with the node's address. One nftables table of the daemon's own, replaced
//! whole in one transaction, so it never holds a half rule set and never touches
//! anyone else's rules.

use netlab_store::leases::Subnet;
use nftables::schema::Nftables;
use serde_json::json;

pub const TABLE: &str = "netlab-node";

fn table() -> serde_json::Value {
    json!({"family": "ip", "name": TABLE})
}

/// The table, made again with the one rule for `subnet` within `network`.
pub fn install(subnet: Subnet, network: Subnet) -> Result<(), String> {
    let prefix = |s: Subnet| json!({"prefix": {"addr": s.network().to_string(), "len": s.length()}});
    let rule = json!([
        {"match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": "saddr"}}, "right": prefix(subnet)}},
        {"match": {"op": "!=", "left": {"payload": {"protocol": "ip", "field": "daddr"}}, "right": prefix(network)}},
        {"masquerade": null}
    ]);
    run(vec![
        json!({"add": {"table": table()}}),
        json!({"delete": {"table": table()}}),
        json!({"add": {"table": table()}}),
        json!({"add": {"chain": {"family": "ip", "table": TABLE, "name": "postrouting", "type": "nat",
            "hook": "postrouting", "prio": 100, "policy": "accept"}}}),
        json!({"add": {"rule": {"family": "ip", "table": TABLE, "chain": "postrouting", "expr": rule}}}),
    ])
}

/// No masquerading (the table goes, if it is there).
pub fn remove() -> Result<(), String> {
    run(vec![json!({"add": {"table": table()}}), json!({"delete": {"table": table()}})])
}

fn run(commands: Vec<serde_json::Value>) -> Result<(), String> {
    let batch: Nftables<'static> =
        serde_json::from_value(json!({"nftables": commands})).map_err(|e| format!("build nftables batch: {e}"))?;
    nftables::helper::apply_ruleset(&batch).map_err(|e| format!("nft table ip {TABLE}: {e}"))
}
