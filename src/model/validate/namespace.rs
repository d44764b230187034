//! One namespace put together: bridge ports, its loopback, and the checks across its
//! interfaces (overlapping addresses) and across namespaces (unique MACs).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use ipnetwork::IpNetwork;
use serde_saphyr::Location;

use super::{existing, name_hint, PlaceDraft, Validator, MAX_BRIDGE_PORTS};
use crate::model::diagnostic::Diagnostic;
use crate::model::names::{IfName, Place};
use crate::model::raw::RawNode;
use crate::model::topology::{LinkKind, LinkSpec, NamespaceSpec};
use netns::mac::Mac;

impl Validator {
    pub(super) fn finish_namespace(&mut self, place: &Place, node: &RawNode, mut draft: PlaceDraft) -> NamespaceSpec {
        // Bridge ports.
        let bridges: BTreeSet<IfName> = draft
            .links
            .iter()
            .filter(|(_, d)| d.spec.kind == LinkKind::Bridge && !d.unlinked)
            .map(|(n, _)| n.clone())
            .collect();
        let mut ports: BTreeMap<IfName, usize> = BTreeMap::new();
        for (name, link) in draft.links.iter() {
            self.declared.insert((place.clone(), name.clone()), link.at);
        }
        for (name, link) in draft.links.iter_mut() {
            if link.unlinked {
                let hint = if *place == Place::Host { existing::HINT } else { "" };
                let message = format!("interface `{}` is not an endpoint of any link{hint}", place.qualify(name));
                self.error(&link.at, message);
                continue;
            }
            let Some(bridge_ref) = &link.bridge_ref else { continue };
            match bridge_ref.value.parse::<IfName>() {
                Ok(bridge) if bridges.contains(&bridge) => {
                    *ports.entry(bridge.clone()).or_default() += 1;
                    link.spec.master = Some(bridge);
                }
                _ => {
                    let hint = name_hint(&bridge_ref.value, &bridges);
                    self.error(&bridge_ref.referenced, format!("no bridge `{}` in {place}{hint}", bridge_ref.value));
                }
            }
        }
        for (bridge, count) in &ports {
            if *count > MAX_BRIDGE_PORTS {
                let at = draft.links[bridge].at;
                self.error(
                    &at,
                    format!("bridge `{bridge}` has {count} ports; the kernel allows at most {MAX_BRIDGE_PORTS}"),
                );
            }
        }
        let mut links: BTreeMap<IfName, LinkSpec> =
            draft.links.into_iter().filter(|(_, d)| !d.unlinked).map(|(n, d)| (n, d.spec)).collect();
        if *place != Place::Host {
            links.entry("lo".parse().expect("valid name")).or_insert_with(|| LinkSpec::new(LinkKind::Loopback));
        }
        self.overlapping_addresses(place, node, &links);
        let routes = self.routes(place, node, &links);
        let sysctls = self.sysctls(place, node);
        let nat = self.nat(place, node, &links);
        let (neighbours, fdb) = self.entries(place, node, &links);
        let node_daemon = node.node.as_ref().and_then(|daemon| self.node_daemon(daemon));
        let spec = NamespaceSpec {
            links,
            routes,
            sysctls,
            nat,
            neighbours,
            fdb,
            existing: BTreeSet::new(),
            node: node_daemon,
        };
        if !spec.nat.is_empty() && !spec.forwards_ipv4() {
            let at = node.nat.as_ref().and_then(|n| {
                n.masquerade.first().map(|m| m.from.referenced).or(n.publish.first().map(|p| p.on.referenced))
            });
            if let Some(at) = at {
                self.warnings.push(format!(
                    "{}:{}: warning: {place} has NAT or published ports but does not enable forwarding \
                     (sysctls: {{net.ipv4.ip_forward: 1}}): forwarded traffic will not pass",
                    at.line(),
                    at.column()
                ));
            }
        }
        spec
    }

    /// Two interfaces of one namespace on the same or overlapping subnets make routing
    /// ambiguous; the same address twice is a conflict.
    pub(super) fn overlapping_addresses(&mut self, place: &Place, node: &RawNode, links: &BTreeMap<IfName, LinkSpec>) {
        let located: HashMap<IpNetwork, Location> = node
            .interfaces
            .values()
            .chain(node.bridges.values())
            .flatten()
            .flat_map(|raw| raw.addresses.iter())
            .filter_map(|a| Some((a.value.parse().ok()?, a.referenced)))
            .collect();
        let all: Vec<(&IfName, &IpNetwork)> = links
            .iter()
            .filter(|(_, l)| l.kind != LinkKind::Loopback)
            .flat_map(|(n, l)| l.addresses.iter().map(move |a| (n, a)))
            .collect();
        for (i, (name_a, a)) in all.iter().enumerate() {
            for (name_b, b) in &all[i + 1..] {
                let at = located.get(b).copied();
                let Some(at) = at else { continue };
                if a.ip() == b.ip() {
                    self.error(&at, format!("duplicate address `{}` in {place}: also on `{name_a}`", b.ip()));
                } else if name_a != name_b && (a.contains(b.ip()) || b.contains(a.ip())) {
                    self.error(&at, format!("address `{b}` of `{name_b}` overlaps `{a}` of `{name_a}` in {place}"));
                }
            }
        }
    }

    pub(super) fn unique_macs(&mut self, namespaces: &BTreeMap<Place, NamespaceSpec>) {
        let mut seen: BTreeMap<Mac, String> = BTreeMap::new();
        for (place, ns) in namespaces {
            for (name, link) in &ns.links {
                let Some(mac) = link.mac else { continue };
                let here = place.qualify(name);
                if let Some(first) = seen.insert(mac, here.clone()) {
                    // MACs were parsed from located values; the file position is lost by
                    // now, so point at the top of the file with both owners named.
                    self.errors.push(Diagnostic {
                        line: 1,
                        column: 1,
                        message: format!("MAC address {mac} is used by both `{first}` and `{here}`"),
                    });
                }
            }
        }
    }
}
