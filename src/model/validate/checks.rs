//! `checks:`: ping, tcp, udp, fdb and overlay checks, each naming declared nodes.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr};

use super::{node_hint, Validator};
use crate::model::names::Place;
use serde_saphyr::Location;

use crate::model::raw::{Located, RawCheck, RawPingAll};
use crate::model::topology::{Check, Endpoint, LinkKind, NamespaceSpec, Pinged};

/// The addresses of a node others can ping: neither loopback nor link-local.
fn pingable(namespace: &NamespaceSpec) -> Vec<IpAddr> {
    let reachable = |ip: &IpAddr| match ip {
        IpAddr::V4(v4) => !v4.is_loopback() && !v4.is_link_local(),
        IpAddr::V6(v6) => !v6.is_loopback() && !v6.is_unicast_link_local(),
    };
    namespace
        .links
        .values()
        .filter(|link| link.kind != LinkKind::Loopback)
        .flat_map(|link| link.addresses.iter().map(|a| a.ip()))
        .filter(reachable)
        .collect()
}

impl Validator {
    pub(super) fn place(&mut self, text: &Located<String>, known: &BTreeSet<Place>) -> Option<Place> {
        match text.value.parse::<Place>() {
            Ok(place) if known.contains(&place) => Some(place),
            _ => {
                self.error(&text.referenced, format!("unknown node `{}`{}", text.value, node_hint(&text.value, known)));
                None
            }
        }
    }

    pub(super) fn check(
        &mut self,
        check: &RawCheck,
        known: &BTreeSet<Place>,
        namespaces: &BTreeMap<Place, NamespaceSpec>,
    ) -> Option<Check> {
        match check {
            RawCheck::Ping(ping) => {
                let from = self.place(&ping.from, known);
                let to = match ping.to.value.parse::<IpAddr>() {
                    Ok(ip) => Some(ip),
                    Err(_) => match ping.to.value.parse::<Place>() {
                        Ok(place) if known.contains(&place) => {
                            let first = namespaces[&place]
                                .links
                                .values()
                                .filter(|l| l.kind != LinkKind::Loopback)
                                .flat_map(|l| l.addresses.iter())
                                .find(|a| a.is_ipv4())
                                .map(|a| a.ip());
                            if first.is_none() {
                                self.error(&ping.to.referenced, format!("node `{place}` has no IPv4 address to ping"));
                            }
                            first
                        }
                        _ => {
                            self.error(
                                &ping.to.referenced,
                                format!(
                                    "`{}` is neither an address nor a node{}",
                                    ping.to.value,
                                    node_hint(&ping.to.value, known)
                                ),
                            );
                            None
                        }
                    },
                };
                Some(Check::Ping { from: from?, to: to?, to_label: ping.to.value.clone() })
            }
            RawCheck::Overlay(raw) => {
                let from = self.place(&raw.from, known);
                let to = match raw.to.value.parse::<IpAddr>() {
                    Ok(ip) => Some(ip),
                    Err(_) => {
                        self.error(&raw.to.referenced, format!("malformed address `{}`", raw.to.value));
                        None
                    }
                };
                let vxlan = self.endpoint(&raw.vxlan, known)?;
                let Some(LinkKind::Vxlan(spec)) = namespaces[&vxlan.place].links.get(&vxlan.name).map(|l| &l.kind)
                else {
                    self.error(&raw.vxlan.referenced, format!("no vxlan device `{vxlan}`"));
                    return None;
                };
                let lower = Endpoint { place: spec.underlay.clone(), name: spec.dev.clone() };
                Some(Check::Overlay { from: from?, to: to?, vxlan, vni: raw.vni.value, lower })
            }
            RawCheck::Udp(udp) => {
                let from = self.place(&udp.from, known);
                let to = self.socket_address(&udp.to);
                let Some(node) = &udp.listen else {
                    self.error(
                        &udp.to.referenced,
                        "a udp check needs `listen`: UDP has no connection to observe without netlab's echo",
                    );
                    return None;
                };
                let place = self.place(node, known);
                let on = match &udp.on {
                    Some(on) => self.socket_address(on),
                    None => to,
                };
                Some(Check::Udp { from: from?, to: to?, listen: (place?, on?) })
            }
            RawCheck::Tcp(tcp) => {
                let from = self.place(&tcp.from, known);
                let to = self.socket_address(&tcp.to);
                let listen = match &tcp.listen {
                    Some(node) => {
                        let place = self.place(node, known);
                        let on = match &tcp.on {
                            Some(on) => self.socket_address(on),
                            None => to,
                        };
                        Some((place?, on?))
                    }
                    None => {
                        if let Some(on) = &tcp.on {
                            self.error(&on.referenced, "`on` needs `listen`");
                        }
                        None
                    }
                };
                Some(Check::Tcp { from: from?, to: to?, listen })
            }
            RawCheck::Pingall(raw) => self.pingall(raw, known, namespaces),
            RawCheck::Fdb(fdb) => {
                let bridge = self.endpoint(&fdb.bridge, known);
                if let Some(bridge) = &bridge {
                    let is_bridge =
                        namespaces[&bridge.place].links.get(&bridge.name).is_some_and(|l| l.kind == LinkKind::Bridge);
                    if !is_bridge {
                        self.error(&fdb.bridge.referenced, format!("no bridge `{bridge}`"));
                    }
                }
                let mut learned = Vec::new();
                for raw in &fdb.learned {
                    let Some(end) = self.endpoint(raw, known) else { continue };
                    if !namespaces[&end.place].links.contains_key(&end.name) {
                        self.error(&raw.referenced, format!("no interface `{end}`"));
                        continue;
                    }
                    learned.push(end);
                }
                (learned.len() == fdb.learned.len()).then_some(Check::Fdb { bridge: bridge?, learned })
            }
        }
    }

    /// The nodes of a `pingall` with the addresses to ping on each. An address two of
    /// them hold would make a cell of the matrix depend on which one answers.
    fn pingall(
        &mut self,
        raw: &Located<RawPingAll>,
        known: &BTreeSet<Place>,
        namespaces: &BTreeMap<Place, NamespaceSpec>,
    ) -> Option<Check> {
        let errors_before = self.error_count();
        let chosen: Vec<(Place, Location)> = match &raw.value.nodes {
            Some(list) => {
                let mut chosen: Vec<(Place, Location)> = Vec::new();
                for text in &list.value {
                    let Some(place) = self.place(text, known) else { continue };
                    if chosen.iter().any(|(p, _)| *p == place) {
                        self.error(&text.referenced, format!("`{place}` is listed twice"));
                        continue;
                    }
                    chosen.push((place, text.referenced));
                }
                chosen
            }
            None => namespaces
                .keys()
                .filter(|place| **place != Place::Host && !pingable(&namespaces[place]).is_empty())
                .map(|place| (place.clone(), raw.referenced))
                .collect(),
        };
        let mut holders: BTreeMap<IpAddr, Place> = BTreeMap::new();
        let mut nodes = Vec::new();
        for (place, at) in chosen {
            let addresses = pingable(&namespaces[&place]);
            if addresses.is_empty() {
                self.error(&at, format!("node `{place}` has no address to ping"));
            }
            for ip in &addresses {
                if let Some(other) = holders.insert(*ip, place.clone()) {
                    self.error(
                        &at,
                        format!(
                            "{ip} is on both `{other}` and `{place}`: a pingall cannot tell which one answers; \
                             list the nodes it covers (`pingall: {{nodes: [...]}}`)"
                        ),
                    );
                }
            }
            nodes.push(Pinged { node: place, addresses });
        }
        if nodes.len() < 2 && self.error_count() == errors_before {
            self.error(&raw.referenced, "a pingall needs at least two nodes with addresses");
        }
        (self.error_count() == errors_before).then_some(Check::Pingall { nodes })
    }

    pub(super) fn socket_address(&mut self, text: &Located<String>) -> Option<SocketAddr> {
        match text.value.parse::<SocketAddr>() {
            Ok(address) if address.port() != 0 => Some(address),
            _ => {
                self.error(&text.referenced, format!("`{}` is not ADDRESS:PORT", text.value));
                None
            }
        }
    }
}
