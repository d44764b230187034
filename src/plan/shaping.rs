//! Link shaping in a plan: each of the lab's links with `rate`/`delay`/... gets its
//! root qdisc set (changed in place when one is there, never by remaking the link),
//! and loses it when the file drops the fields. Root qdiscs are read (see `observe`)
//! only where the lab shapes, or shaped, a link of the namespace.

use std::collections::BTreeSet;

use netns::qdisc::{Netem, Qdisc, Tbf, NETEM_DEFAULT_LIMIT};

use super::{Change, ObservedQdisc, Planner};
use crate::model::shaping::{Micros, Percent, Rate};
use crate::model::{IfName, NamespaceSpec, Place, Shaping};

/// The qdisc the kernel should hold for `shaping`, in its units.
pub fn in_kernel_units(shaping: &Shaping) -> Qdisc {
    match shaping {
        Shaping::Tbf(tbf) => Qdisc::Tbf(Tbf {
            rate_bytes: tbf.rate.bytes_per_second(),
            burst: tbf.burst.bytes(),
            // Validation keeps it within u32.
            limit: u32::try_from(tbf.limit()).unwrap_or(u32::MAX),
        }),
        Shaping::Netem(netem) => Qdisc::Netem(Netem {
            delay_ns: u64::from(netem.delay.micros()) * 1000,
            jitter_ns: u64::from(netem.jitter.micros()) * 1000,
            // As tc: the fraction of u32::MAX, rounded.
            loss: (f64::from(netem.loss.millionths()) / f64::from(Percent::MILLION) * f64::from(u32::MAX)).round()
                as u32,
            limit: NETEM_DEFAULT_LIMIT,
            rate_bytes: netem.rate.map(|r| r.bytes_per_second()),
        }),
    }
}

/// Whether what the kernel has is what was asked for. The kernel keeps a tbf's burst
/// as a time in 64 ns ticks, so it comes back a few bytes off at high rates.
fn same(wanted: &Qdisc, have: &Qdisc) -> bool {
    match (wanted, have) {
        (Qdisc::Tbf(w), Qdisc::Tbf(h)) => {
            let slack = 1 + u64::from(w.burst) / 1000 + w.rate_bytes * 128 / 1_000_000_000;
            w.rate_bytes == h.rate_bytes && w.limit == h.limit && u64::from(w.burst.abs_diff(h.burst)) <= slack
        }
        (Qdisc::Netem(w), Qdisc::Netem(h)) => w == h,
        _ => false,
    }
}

/// What a link's root qdisc is, as a plan and status print it.
pub fn qdisc_text(observed: &ObservedQdisc) -> String {
    match &observed.qdisc {
        Some(Qdisc::Tbf(tbf)) => {
            // The latency tc would show: how long the queue beyond the burst takes.
            let queue = u64::from(tbf.limit.saturating_sub(tbf.burst));
            let latency_us = queue * 1_000_000 / tbf.rate_bytes.max(1);
            let rate = Rate::from_bits(tbf.rate_bytes * 8).map_or_else(|| "0bit".into(), |r| r.to_string());
            format!("tbf rate {rate} burst {}b latency {}", tbf.burst, Micros::from_micros(latency_us))
        }
        Some(Qdisc::Netem(netem)) => format!(
            "netem delay {}us jitter {}us loss {:.4}%{}",
            netem.delay_ns / 1000,
            netem.jitter_ns / 1000,
            f64::from(netem.loss) / f64::from(u32::MAX) * 100.0,
            netem.rate_bytes.map(|r| format!(" rate {}bit", r * 8)).unwrap_or_default()
        ),
        None => observed.kind.clone(),
    }
}

impl Planner<'_> {
    pub(super) fn shaping_changes(&mut self, place: &Place, spec: &NamespaceSpec, recreated: &BTreeSet<IfName>) {
        let observed = self.observed.qdiscs.get(place);
        for (name, link) in &spec.links {
            // A link made (again) by this plan starts with the kernel's default qdisc.
            let have = if recreated.contains(name) { None } else { observed.and_then(|q| q.get(name)) };
            match (&link.shaping, have) {
                (Some(wanted), Some(have)) if have.qdisc.is_some_and(|h| same(&in_kernel_units(wanted), &h)) => {}
                (Some(wanted), have) => self.changes.push(Change::SetShaping {
                    place: place.clone(),
                    link: name.clone(),
                    shaping: *wanted,
                    now: have.map(qdisc_text),
                }),
                // The link is the lab's, and the file gives it the kernel's default.
                (None, Some(_)) => {
                    self.changes.push(Change::DeleteShaping { place: place.clone(), link: name.clone() })
                }
                (None, None) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::model::{LinkKind, Topology};
    use crate::plan::{plan, History, NamespaceState, Observed, ObservedKind, ObservedLink, ObservedNamespace};

    fn lab(fields: &str) -> Topology {
        let text = format!(
            "name: t\nnodes:\n  A:\n    interfaces:\n      eth0: {{{fields}}}\n  B:\n    interfaces:\n      eth0: {{}}\n\
             links:\n  - endpoints: [A:eth0, B:eth0]\n"
        );
        crate::model::parse("t.yaml", &text).expect("valid")
    }

    /// The links of `lab` as a perfect apply leaves them, with `qdisc` on A:eth0.
    fn applied(lab: &Topology, qdisc: Option<Qdisc>) -> Observed {
        let mut observed = Observed::default();
        for (place, spec) in &lab.namespaces {
            let mut state = NamespaceState::default();
            // A:eth0 is link 10, B:eth0 link 20, each the other's peer.
            let (index, peer) = if place.to_string() == "A" { (10, 20) } else { (20, 10) };
            for (name, link) in &spec.links {
                let (kind, index) = match &link.kind {
                    LinkKind::Veth { .. } => (ObservedKind::Veth { peer_index: Some(peer) }, index),
                    _ => (ObservedKind::Loopback, 1),
                };
                let link = ObservedLink {
                    kind,
                    index,
                    marked: true,
                    mtu: 1500,
                    mac: None,
                    up: true,
                    master: None,
                    addresses: link.addresses.clone(),
                    ipv6_autoconf: Some(false),
                };
                state.links.insert(name.clone(), link);
            }
            observed.namespaces.insert(place.clone(), ObservedNamespace::Owned(state));
        }
        if let Some(qdisc) = qdisc {
            let a = Place::Node("A".parse().unwrap());
            let eth0: IfName = "eth0".parse().unwrap();
            let found = ObservedQdisc { kind: qdisc.kind().into(), qdisc: Some(qdisc) };
            observed.qdiscs.insert(a, BTreeMap::from([(eth0, found)]));
        }
        observed
    }

    fn changes(wanted: &str, have: Option<Qdisc>) -> Vec<String> {
        let lab = lab(wanted);
        let planned = plan(&lab.namespaces, &applied(&lab, have), &History::default()).expect("a plan");
        planned.changes.iter().map(ToString::to_string).collect()
    }

    fn tbf(rate_bytes: u64, burst: u32, limit: u32) -> Option<Qdisc> {
        Some(Qdisc::Tbf(Tbf { rate_bytes, burst, limit }))
    }

    #[test]
    fn set_in_place_repaired_and_removed() {
        assert_eq!(changes("rate: 10mbit", None), ["+ shaping on A:eth0: tbf rate 10mbit burst 6600b latency 50ms"]);
        // As the kernel reads back: the burst a byte off (ticks of 64 ns).
        assert!(changes("rate: 10mbit", tbf(1_250_000, 6599, 69_100)).is_empty());
        assert_eq!(
            changes("rate: 20mbit", tbf(1_250_000, 6600, 69_100)),
            ["~ shaping on A:eth0: tbf rate 20mbit burst 11600b latency 50ms"]
        );
        let Change::SetShaping { now, .. } =
            &plan(&lab("rate: 10mbit").namespaces, &applied(&lab(""), tbf(625_000, 6600, 37_850)), &History::default())
                .unwrap()
                .changes[0]
        else {
            panic!("a shaping change")
        };
        assert_eq!(now.as_deref(), Some("tbf rate 5mbit burst 6600b latency 50ms"));
        assert_eq!(changes("", tbf(1_250_000, 6600, 69_100)), ["- shaping on A:eth0"]);
        assert!(changes("", None).is_empty());
        let netem = Qdisc::Netem(Netem { delay_ns: 20_000_000, jitter_ns: 0, loss: 0, limit: 1000, rate_bytes: None });
        assert!(changes("delay: 20ms", Some(netem)).is_empty());
        assert_eq!(changes("delay: 20ms", tbf(1_250_000, 6600, 69_100)), ["~ shaping on A:eth0: netem delay 20ms"]);
    }
}
