//! `nat:`: masquerade and published ports (nftables, IPv4).

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddrV4;

use ipnetwork::{IpNetwork, Ipv4Network};

use super::{name_hint, Validator};
use crate::model::names::{IfName, Place};
use crate::model::raw::{Located, RawNode};
use crate::model::topology::{LinkSpec, Masquerade, NatSpec, Protocol, Publish};

impl Validator {
    pub(super) fn nat(&mut self, place: &Place, node: &RawNode, links: &BTreeMap<IfName, LinkSpec>) -> NatSpec {
        let Some(raw) = &node.nat else { return NatSpec::default() };
        let mut nat = NatSpec::default();
        let ipv4 = |text: &Located<String>, this: &mut Self| -> Option<Ipv4Network> {
            match text.value.parse::<Ipv4Network>() {
                Ok(net) if net.network() == net.ip() => Some(net),
                Ok(net) => {
                    this.error(
                        &text.referenced,
                        format!(
                            "prefix `{}` has host bits set; did you mean {}/{}?",
                            text.value,
                            net.network(),
                            net.prefix()
                        ),
                    );
                    None
                }
                Err(_) => {
                    this.error(&text.referenced, format!("`{}` is not an IPv4 prefix (NAT is IPv4 only)", text.value));
                    None
                }
            }
        };
        for m in &raw.masquerade {
            let from = ipv4(&m.from, self);
            let (out, to) = match (&m.out, &m.to) {
                (Some(out), None) => match self.parse::<IfName>(out) {
                    Some(name) if links.contains_key(&name) => (Some(name), None),
                    Some(name) => {
                        self.error(
                            &out.referenced,
                            format!("no interface `{name}` in {place}{}", name_hint(name.as_str(), links.keys())),
                        );
                        continue;
                    }
                    None => continue,
                },
                (None, Some(to)) => (None, ipv4(to, self)),
                _ => {
                    self.error(
                        &m.from.referenced,
                        "masquerade needs exactly one of `out` (an interface) or `to` (a prefix)",
                    );
                    continue;
                }
            };
            if let (Some(from), true) = (from, out.is_some() || to.is_some()) {
                nat.masquerade.push(Masquerade { from, out, to });
            }
        }
        let local: Vec<Ipv4Network> = links
            .values()
            .flat_map(|l| l.addresses.iter())
            .filter_map(|a| if let IpNetwork::V4(v4) = a { Some(*v4) } else { None })
            .collect();
        let mut published = BTreeSet::new();
        for p in &raw.publish {
            let protocol = match p.protocol.as_ref().map(|l| (l.value.as_str(), l)) {
                None | Some(("tcp", _)) => Protocol::Tcp,
                Some(("udp", _)) => Protocol::Udp,
                Some((other, at)) => {
                    self.error(&at.referenced, format!("protocol `{other}` is not tcp or udp"));
                    continue;
                }
            };
            let address = |text: &Located<String>, this: &mut Self| match text.value.parse::<SocketAddrV4>() {
                Ok(address) if address.port() != 0 => Some(address),
                _ => {
                    this.error(&text.referenced, format!("`{}` is not IPV4ADDRESS:PORT", text.value));
                    None
                }
            };
            let (Some(on), Some(to)) = (address(&p.on, self), address(&p.to, self)) else { continue };
            if !local.iter().any(|net| net.ip() == *on.ip()) {
                self.error(&p.on.referenced, format!("`{}` is not an address of {place}", on.ip()));
                continue;
            }
            if !published.insert((protocol, on)) {
                self.error(&p.on.referenced, format!("{} {on} is published twice", protocol.name()));
                continue;
            }
            let hairpin = local
                .iter()
                .find(|net| net.contains(*to.ip()))
                .and_then(|net| Ipv4Network::new(net.network(), net.prefix()).ok());
            nat.publish.push(Publish { protocol, on, to, hairpin });
        }
        nat
    }
}
