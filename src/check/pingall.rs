//! `pingall`: each node pings every address of every other, all at once (a bounded
//! number at a time), and the answers become a matrix per address family.

use std::net::IpAddr;
use std::time::Duration;

use futures::{stream, StreamExt};
use serde::Serialize;

use super::probe;
use crate::model::Pinged;

/// Pings in flight at once: each is a process.
const AT_ONCE: usize = 16;

/// Who reached whom in one address family. `reached[i][j]`: whether node i got an
/// answer from every address of node j; `None` where nothing was pinged (i = j, or a
/// side without an address of the family).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Matrix {
    pub family: Family,
    pub nodes: Vec<String>,
    pub reached: Vec<Vec<Option<bool>>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Family {
    Ipv4,
    Ipv6,
}

impl Family {
    fn of(ip: &IpAddr) -> Family {
        if ip.is_ipv4() {
            Family::Ipv4
        } else {
            Family::Ipv6
        }
    }
}

impl std::fmt::Display for Family {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Family::Ipv4 => "IPv4",
            Family::Ipv6 => "IPv6",
        })
    }
}

/// One ping of the matrix: node `from` to address `to` of node `target`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probe {
    pub from: usize,
    pub target: usize,
    pub to: IpAddr,
}

/// Every ping to make: from each node with an address of the family to each address
/// of that family on every other node.
pub fn probes(nodes: &[Pinged]) -> Vec<Probe> {
    let has = |node: &Pinged, family: Family| node.addresses.iter().any(|a| Family::of(a) == family);
    let mut probes = Vec::new();
    for (from, source) in nodes.iter().enumerate() {
        for (target, pinged) in nodes.iter().enumerate() {
            if from == target {
                continue;
            }
            for to in &pinged.addresses {
                if has(source, Family::of(to)) {
                    probes.push(Probe { from, target, to: *to });
                }
            }
        }
    }
    probes
}

/// The matrices (IPv4 first) from each probe's answer: `None` for a reply, the
/// failure otherwise.
pub fn matrices(nodes: &[Pinged], answers: &[(Probe, Option<String>)]) -> Vec<Matrix> {
    let names: Vec<String> = nodes.iter().map(|n| n.node.to_string()).collect();
    [Family::Ipv4, Family::Ipv6]
        .into_iter()
        .filter(|family| answers.iter().any(|(p, _)| Family::of(&p.to) == *family))
        .map(|family| {
            let mut reached = vec![vec![None; nodes.len()]; nodes.len()];
            for (probe, failure) in answers.iter().filter(|(p, _)| Family::of(&p.to) == family) {
                let cell = reached[probe.from][probe.target].get_or_insert(true);
                *cell &= failure.is_none();
            }
            Matrix { family, nodes: names.clone(), reached }
        })
        .collect()
}

/// Run every probe, `AT_ONCE` at a time whichever end first; the answers in the
/// order of `probes`.
pub async fn run(nodes: &[Pinged], budget: Duration) -> Vec<(Probe, Option<String>)> {
    let mut answers: Vec<(usize, (Probe, Option<String>))> = stream::iter(probes(nodes).into_iter().enumerate())
        .map(|(i, probe)| async move {
            let result = probe::ping(&nodes[probe.from].node, probe.to, budget).await;
            (i, (probe, result.err().map(|e| crate::chain_text(&e))))
        })
        .buffer_unordered(AT_ONCE)
        .collect()
        .await;
    answers.sort_by_key(|(i, _)| *i);
    answers.into_iter().map(|(_, answer)| answer).collect()
}

/// The failed pings, one phrase each: "ct3 -> ct2 11.11.11.3: no reply".
pub fn failures(nodes: &[Pinged], answers: &[(Probe, Option<String>)]) -> Vec<String> {
    answers
        .iter()
        .filter_map(|(probe, failure)| {
            let failure = failure.as_ref()?;
            Some(format!("{} -> {} {}: {failure}", nodes[probe.from].node, nodes[probe.target].node, probe.to))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pinged(name: &str, addresses: &[&str]) -> Pinged {
        Pinged { node: name.parse().unwrap(), addresses: addresses.iter().map(|a| a.parse().unwrap()).collect() }
    }

    #[test]
    fn each_node_pings_each_address_of_the_others_in_its_families() {
        let nodes = [pinged("A", &["10.0.0.1", "fd00::1"]), pinged("B", &["10.0.0.2"]), pinged("C", &["fd00::3"])];
        let got: Vec<(usize, usize, String)> =
            probes(&nodes).into_iter().map(|p| (p.from, p.target, p.to.to_string())).collect();
        assert_eq!(
            got,
            [
                (0, 1, "10.0.0.2".to_string()),
                (0, 2, "fd00::3".to_string()),
                (1, 0, "10.0.0.1".to_string()),
                (2, 0, "fd00::1".to_string()),
            ]
        );
    }

    #[test]
    fn a_cell_passes_only_if_every_address_answered() {
        let nodes = [pinged("A", &["10.0.0.1"]), pinged("B", &["10.0.0.2", "10.0.1.2"])];
        let answers: Vec<(Probe, Option<String>)> = probes(&nodes)
            .into_iter()
            .map(|p| {
                let failure = (p.to.to_string() == "10.0.1.2").then(|| "no reply".to_string());
                (p, failure)
            })
            .collect();
        let matrices = matrices(&nodes, &answers);
        assert_eq!(matrices.len(), 1);
        assert_eq!(matrices[0].family, Family::Ipv4);
        assert_eq!(matrices[0].reached, [vec![None, Some(false)], vec![Some(true), None]]);
        assert_eq!(failures(&nodes, &answers), ["A -> B 10.0.1.2: no reply"]);
    }
}
