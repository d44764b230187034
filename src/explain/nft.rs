//! The lab's nftables table as nft's own syntax, for `nft -f -`: what `plan::firewall`
//! states as JSON (the form nft lists and netlab compares), written as a reader would
//! type it. The table carries the lab's mark as its comment, as netlab makes it.

use serde_json::{json, Value};

use crate::model::{LabName, NatSpec};
use crate::ownership;
use crate::plan::firewall::{nat_table, table_name, CHAINS};

/// The input of `nft -f -` (or `nft -j -f -` when `json`) that leaves exactly the
/// lab's table for `nat` in the namespace, in one transaction. `add` first, so that
/// `delete` finds a table even where there was none.
pub fn replace_table(lab: &LabName, nat: &NatSpec) -> (String, bool) {
    let name = table_name(lab);
    let mark = ownership::mark(lab);
    let table = nat_table(nat);
    let mut text = format!("table ip {name} {{ comment \"{mark}\"; }}\ndelete table ip {name}\ntable ip {name} {{\n");
    text.push_str(&format!("\tcomment \"{mark}\"\n"));
    for (chain, hook, priority) in CHAINS {
        text.push_str(&format!("\tchain {chain} {{\n\t\ttype nat hook {hook} priority {priority}; policy accept;\n"));
        for rule in &table[chain].rules {
            match rule_text(rule) {
                Some(rule) => text.push_str(&format!("\t\t{rule}\n")),
                None => return (json_batch(lab, nat), true),
            }
        }
        text.push_str("\t}\n");
    }
    text.push_str("}\n");
    (text, false)
}

/// The same as a JSON batch, for rules nft's syntax is not written for here. nft
/// (1.0.6) takes no table comment in JSON: the table is then made without its mark,
/// which `netlab status` would report.
fn json_batch(lab: &LabName, nat: &NatSpec) -> String {
    let name = table_name(lab);
    let table = nat_table(nat);
    let mut commands = vec![
        json!({"add": {"table": {"family": "ip", "name": name}}}),
        json!({"delete": {"table": {"family": "ip", "name": name}}}),
        json!({"add": {"table": {"family": "ip", "name": name}}}),
    ];
    for (chain, hook, priority) in CHAINS {
        commands.push(json!({"add": {"chain": {"family": "ip", "table": name, "name": chain, "type": "nat", "hook": hook, "prio": priority, "policy": "accept"}}}));
        for expr in &table[chain].rules {
            commands.push(json!({"add": {"rule": {"family": "ip", "table": name, "chain": chain, "expr": expr}}}));
        }
    }
    format!("{}\n", json!({ "nftables": commands }))
}

/// One rule's statements in nft's syntax; `None` for a statement not written here.
fn rule_text(rule: &Value) -> Option<String> {
    let statements: Option<Vec<String>> = rule.as_array()?.iter().map(statement).collect();
    Some(statements?.join(" "))
}

fn statement(statement: &Value) -> Option<String> {
    if statement.get("masquerade").is_some() {
        return Some("masquerade".into());
    }
    if let Some(dnat) = statement.get("dnat") {
        let addr = dnat.get("addr")?.as_str()?;
        return Some(match dnat.get("port") {
            Some(port) => format!("dnat to {addr}:{}", port.as_u64()?),
            None => format!("dnat to {addr}"),
        });
    }
    let matched = statement.get("match")?;
    let (op, left, right) = (matched.get("op")?.as_str()?, matched.get("left")?, matched.get("right")?);
    if let Some(payload) = left.get("payload") {
        let (protocol, field) = (payload.get("protocol")?.as_str()?, payload.get("field")?.as_str()?);
        return (op == "==").then(|| Some(format!("{protocol} {field} {}", value(right)?)))?;
    }
    if let Some(ct) = ct_statement(statement) {
        return Some(ct);
    }
    if left.get("meta")?.get("key")?.as_str()? == "oifname" && op == "==" {
        // Interface names are validated: no quote or backslash can be in one.
        return Some(format!("oifname \"{}\"", right.as_str()?));
    }
    None
}

fn value(right: &Value) -> Option<String> {
    match right {
        Value::String(text) => Some(text.clone()),
        Value::Number(number) => Some(number.to_string()),
        _ => {
            let prefix = right.get("prefix")?;
            Some(format!("{}/{}", prefix.get("addr")?.as_str()?, prefix.get("len")?.as_u64()?))
        }
    }
}

/// `ct status dnat` is listed as a match of the `in` operator on a `ct` key.
fn ct_statement(statement: &Value) -> Option<String> {
    let matched = statement.get("match")?;
    let key = matched.get("left")?.get("ct")?.get("key")?.as_str()?;
    (matched.get("op")?.as_str()? == "in").then(|| Some(format!("ct {key} {}", matched.get("right")?.as_str()?)))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_statement_netlab_writes_reads_as_nft_syntax() {
        let rule = json!([
            {"match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": "saddr"}}, "right": {"prefix": {"addr": "11.11.11.0", "len": 24}}}},
            {"match": {"op": "==", "left": {"meta": {"key": "oifname"}}, "right": "veth-ext"}},
            {"match": {"op": "==", "left": {"payload": {"protocol": "tcp", "field": "dport"}}, "right": 80}},
            {"match": {"op": "in", "left": {"ct": {"key": "status"}}, "right": "dnat"}},
            {"masquerade": null},
        ]);
        assert_eq!(
            rule_text(&rule).unwrap(),
            "ip saddr 11.11.11.0/24 oifname \"veth-ext\" tcp dport 80 ct status dnat masquerade"
        );
        assert_eq!(rule_text(&json!([{"dnat": {"addr": "11.11.11.2", "port": 80}}])).unwrap(), "dnat to 11.11.11.2:80");
        assert_eq!(rule_text(&json!([{"counter": null}])), None);
    }
}
