//! The lab's nftables table as nft's own syntax, for `nft -f -`: what `plan::firewall`
//! states as JSON (the form nft lists and netlab compares), written as a reader would
//! type it. The table carries the lab's mark as its comment, as netlab makes it.

use serde_json::{json, Value};

use crate::model::{LabName, NatSpec};
use crate::ownership;
use crate::plan::firewall::{nat_table, table_name, CHAINS};

/// One run of nft: its input, in nft's syntax or (`json`) as a JSON batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NftInput {
    pub json: bool,
    pub text: String,
}

/// What leaves exactly the lab's table for `nat` in the namespace: one `nft -f -`
/// transaction in nft's syntax. `add` first, so that `delete` finds a table even
/// where there was none.
///
/// A rule that cannot be written in nft's syntax (an interface name holding `"` or
/// `\`, which nft's strings cannot escape) sends the chains and rules as a JSON batch
/// after the marked table is made: two transactions, as apply itself does (nft 1.0.6
/// takes no table comment in JSON).
pub fn replace_table(lab: &LabName, nat: &NatSpec) -> Vec<NftInput> {
    let name = table_name(lab);
    let mark = ownership::mark(lab);
    let table = nat_table(nat);
    let marked = format!("table ip {name} {{ comment \"{mark}\"; }}\n");
    let fresh = format!("{marked}delete table ip {name}\n{marked}");
    let mut chains = String::new();
    for (chain, hook, priority) in CHAINS {
        chains.push_str(&format!(
            "add chain ip {name} {chain} {{ type nat hook {hook} priority {priority}; policy accept; }}\n"
        ));
        for rule in &table[chain].rules {
            match rule_text(rule) {
                Some(rule) => chains.push_str(&format!("add rule ip {name} {chain} {rule}\n")),
                None => {
                    return vec![
                        NftInput { json: false, text: fresh },
                        NftInput { json: true, text: json_batch(&name, nat) },
                    ]
                }
            }
        }
    }
    vec![NftInput { json: false, text: format!("{fresh}{chains}") }]
}

/// The chains and rules as a JSON batch, into the table made already.
fn json_batch(name: &str, nat: &NatSpec) -> String {
    let table = nat_table(nat);
    let mut commands = Vec::new();
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
        let name = right.as_str()?;
        return (!name.contains(['"', '\\'])).then(|| format!("oifname \"{name}\""));
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
        // nft's strings have no escapes: such a name goes as JSON.
        let quoted = json!([{"match": {"op": "==", "left": {"meta": {"key": "oifname"}}, "right": "a\"b"}}]);
        assert_eq!(rule_text(&quoted), None);
    }

    #[test]
    fn a_rule_nft_syntax_cannot_hold_goes_as_json_after_the_marked_table() {
        let lab: LabName = "x".parse().unwrap();
        let nat = NatSpec {
            masquerade: vec![crate::model::Masquerade {
                from: "11.11.11.0/24".parse().unwrap(),
                out: Some("a\"b".parse().unwrap()),
                to: None,
            }],
            publish: vec![],
        };
        let inputs = replace_table(&lab, &nat);
        assert_eq!(inputs.len(), 2);
        assert!(!inputs[0].json && inputs[0].text.ends_with("table ip netlab-x { comment \"netlab:x\"; }\n"));
        assert!(inputs[1].json && inputs[1].text.contains(r#""right":"a\"b""#), "{}", inputs[1].text);
        let plain = NatSpec {
            masquerade: vec![crate::model::Masquerade {
                out: Some("eth0".parse().unwrap()),
                ..nat.masquerade[0].clone()
            }],
            publish: vec![],
        };
        let inputs = replace_table(&lab, &plain);
        assert_eq!(inputs.len(), 1);
        assert!(
            inputs[0]
                .text
                .contains("add rule ip netlab-x postrouting ip saddr 11.11.11.0/24 oifname \"eth0\" masquerade\n"),
            "{}",
            inputs[0].text
        );
    }
}
