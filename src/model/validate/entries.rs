//! `neighbours:` and `fdb:`: static ARP/NDP entries and VXLAN FDB entries.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use super::{name_hint, Validator};
use crate::model::names::{IfName, Place};
use crate::model::raw::RawNode;
use crate::model::topology::{FdbSpec, LinkKind, LinkSpec, NeighbourSpec};
use netns::mac::Mac;

impl Validator {
    /// Static neighbour and FDB entries; FDB entries belong on VXLAN devices.
    pub(super) fn entries(
        &mut self,
        place: &Place,
        node: &RawNode,
        links: &BTreeMap<IfName, LinkSpec>,
    ) -> (BTreeSet<NeighbourSpec>, BTreeSet<FdbSpec>) {
        let mut neighbours = BTreeSet::new();
        let mut seen = BTreeSet::new();
        for raw in &node.neighbours {
            let (Some(dev), Some(mac)) = (self.parse::<IfName>(&raw.dev), self.parse::<Mac>(&raw.mac)) else {
                continue;
            };
            if !links.contains_key(&dev) {
                self.error(
                    &raw.dev.referenced,
                    format!("no interface `{dev}` in {place}{}", name_hint(dev.as_str(), links.keys())),
                );
                continue;
            }
            let Ok(ip) = raw.ip.value.parse::<IpAddr>() else {
                self.error(&raw.ip.referenced, format!("malformed address `{}`", raw.ip.value));
                continue;
            };
            if !seen.insert((dev.clone(), ip)) {
                self.error(&raw.ip.referenced, format!("two neighbour entries for {ip} on `{dev}`"));
                continue;
            }
            neighbours.insert(NeighbourSpec { dev, ip, mac });
        }
        let mut fdb = BTreeSet::new();
        let mut seen = BTreeSet::new();
        for raw in &node.fdb {
            let (Some(dev), Some(mac)) = (self.parse::<IfName>(&raw.dev), self.parse::<Mac>(&raw.mac)) else {
                continue;
            };
            if !links.get(&dev).is_some_and(|l| matches!(l.kind, LinkKind::Vxlan(_))) {
                self.error(&raw.dev.referenced, format!("no vxlan device `{dev}` in {place}"));
                continue;
            }
            let Ok(dst) = raw.dst.value.parse::<IpAddr>() else {
                self.error(&raw.dst.referenced, format!("malformed address `{}`", raw.dst.value));
                continue;
            };
            if !seen.insert((dev.clone(), mac)) {
                self.error(&raw.mac.referenced, format!("two fdb entries for {mac} on `{dev}`"));
                continue;
            }
            fdb.insert(FdbSpec { dev, mac, dst });
        }
        (neighbours, fdb)
    }
}
