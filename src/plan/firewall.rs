//! The lab's firewall as data: its NAT as one nftables table per namespace, and, where
//! iptables' FORWARD chain drops by default (as Docker leaves it), accept rules for the
//! lab's prefixes in that chain. Pure: `crate::firewall` runs `nft` and `iptables`
//! and reads their listings into these types.

use std::collections::{BTreeMap, BTreeSet};

use ipnetwork::{IpNetwork, Ipv4Network};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::model::{LabName, LinkKind, NamespaceSpec, NatSpec, Place};

/// The name of the lab's table (family `ip`) in each namespace with NAT. The name alone
/// proves nothing: the table is the lab's only when it carries the lab's mark as its
/// comment (see `ObservedTable`).
pub fn table_name(lab: &LabName) -> String {
    format!("netlab-{lab}")
}

/// The table's base chains: name, hook, priority (srcnat 100, dstnat -100).
pub const CHAINS: [(&str, &str, i32); 3] =
    [("postrouting", "postrouting", 100), ("prerouting", "prerouting", -100), ("output", "output", -100)];

/// A chain as nft reports it: its hook, priority, and each rule's statements (JSON).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainRules {
    pub hook: String,
    pub priority: i32,
    pub rules: Vec<Value>,
}

pub type Table = BTreeMap<String, ChainRules>;

/// The table of the lab's name in a namespace, as found there.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum ObservedTable {
    /// No such table (or not looked at: the lab has no NAT there, now or before).
    #[default]
    Absent,
    /// Carries the lab's mark: its chains and rules as nft lists them.
    Owned(Table),
    /// A table of that name without the lab's mark: someone else's, never replaced
    /// or deleted. Holds the table's name, for the message.
    Foreign(String),
}

impl ObservedTable {
    pub fn owned(&self) -> Option<&Table> {
        match self {
            ObservedTable::Owned(table) => Some(table),
            _ => None,
        }
    }
}

/// The table for a namespace's NAT, as nft lists it (its canonical JSON), so that
/// what the kernel has compares equal to what the file wants.
pub fn nat_table(nat: &NatSpec) -> Table {
    let mut table: Table = CHAINS
        .iter()
        .map(|(name, hook, priority)| {
            (name.to_string(), ChainRules { hook: hook.to_string(), priority: *priority, rules: Vec::new() })
        })
        .collect();
    let matches = |protocol: &str, field: &str, right: Value| json!({"match": {"op": "==", "left": {"payload": {"protocol": protocol, "field": field}}, "right": right}});
    let prefix = |net: &Ipv4Network| {
        if net.prefix() == 32 {
            json!(net.ip().to_string())
        } else {
            json!({"prefix": {"addr": net.network().to_string(), "len": net.prefix()}})
        }
    };
    let postrouting = &mut table.get_mut("postrouting").expect("chain").rules;
    for m in &nat.masquerade {
        let mut rule = vec![matches("ip", "saddr", prefix(&m.from))];
        if let Some(out) = &m.out {
            rule.push(json!({"match": {"op": "==", "left": {"meta": {"key": "oifname"}}, "right": out.as_str()}}));
        }
        if let Some(to) = &m.to {
            rule.push(matches("ip", "daddr", prefix(to)));
        }
        rule.push(json!({"masquerade": null}));
        postrouting.push(Value::Array(rule));
    }
    for p in &nat.publish {
        let Some(subnet) = &p.hairpin else { continue };
        postrouting.push(json!([
            matches("ip", "saddr", prefix(subnet)),
            matches("ip", "daddr", json!(p.to.ip().to_string())),
            matches(p.protocol.name(), "dport", json!(p.to.port())),
            {"match": {"op": "in", "left": {"ct": {"key": "status"}}, "right": "dnat"}},
            {"masquerade": null},
        ]));
    }
    for chain in ["prerouting", "output"] {
        let rules = &mut table.get_mut(chain).expect("chain").rules;
        for p in &nat.publish {
            rules.push(json!([
                matches("ip", "daddr", json!(p.on.ip().to_string())),
                matches(p.protocol.name(), "dport", json!(p.on.port())),
                {"dnat": {"addr": p.to.ip().to_string(), "port": p.to.port()}},
            ]));
        }
    }
    table
}

/// An accept rule in iptables' filter FORWARD chain for traffic from or to a prefix.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ForwardAccept {
    pub backend: Backend,
    pub direction: Direction,
    pub prefix: Ipv4Network,
}

/// Which iptables holds the rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    Nft,
    Legacy,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    From,
    To,
}

impl std::fmt::Display for ForwardAccept {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.direction {
            Direction::From => write!(f, "accept forwarding from {}", self.prefix)?,
            Direction::To => write!(f, "accept forwarding to {}", self.prefix)?,
        }
        if self.backend == Backend::Legacy {
            f.write_str(" (iptables-legacy)")?;
        }
        Ok(())
    }
}

/// What the FORWARD chain of one iptables variant holds for the lab: whether its
/// policy drops, and the lab's own accept rules (comment exactly the lab's mark).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Forward {
    pub policy_drop: bool,
    pub accepts: BTreeSet<ForwardAccept>,
}

/// The lab's IPv4 prefixes: the subnets of the addresses on its links (loopback
/// addresses are reached through those).
pub fn lab_prefixes(namespaces: &BTreeMap<Place, NamespaceSpec>) -> BTreeSet<Ipv4Network> {
    namespaces
        .values()
        .flat_map(|ns| ns.links.values().filter(|l| l.kind != LinkKind::Loopback))
        .flat_map(|l| l.addresses.iter())
        .filter_map(|a| match a {
            IpNetwork::V4(v4) => Ipv4Network::new(v4.network(), v4.prefix()).ok(),
            IpNetwork::V6(_) => None,
        })
        .collect()
}

/// Both directions for each prefix.
pub fn forward_accepts(backend: Backend, prefixes: &BTreeSet<Ipv4Network>) -> BTreeSet<ForwardAccept> {
    prefixes
        .iter()
        .flat_map(|prefix| {
            [Direction::From, Direction::To].map(|direction| ForwardAccept { backend, direction, prefix: *prefix })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_published_port_renders_as_nft_lists_it() {
        let lab = crate::model::parse(
            "lab.yaml",
            "name: x\nhost:\n  bridges:\n    br0: {addresses: [11.11.11.1/24]}\n  interfaces:\n    e: {addresses: [198.51.100.1/24]}\n  sysctls: {net.ipv4.ip_forward: 1}\n  nat:\n    masquerade: [{from: 11.11.11.0/24, out: e}]\n    publish: [{on: '198.51.100.1:8080', to: '11.11.11.2:80'}]\nnodes:\n  A: {}\nlinks:\n  - endpoints: [A:e, e]\n",
        )
        .unwrap();
        assert!(lab.warnings.is_empty(), "{:?}", lab.warnings);
        let table = nat_table(&lab.namespaces[&crate::model::Place::Host].nat);
        let text = |chain: &str| serde_json::to_string(&table[chain].rules).unwrap();
        assert_eq!(
            text("prerouting"),
            r#"[[{"match":{"left":{"payload":{"field":"daddr","protocol":"ip"}},"op":"==","right":"198.51.100.1"}},{"match":{"left":{"payload":{"field":"dport","protocol":"tcp"}},"op":"==","right":8080}},{"dnat":{"addr":"11.11.11.2","port":80}}]]"#
        );
        assert_eq!(table["postrouting"].rules.len(), 2, "masquerade and hairpin");
        assert_eq!(table["output"].rules, table["prerouting"].rules);
    }
}
