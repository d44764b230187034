//! `routes:` of a namespace.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use ipnetwork::IpNetwork;

use super::{name_hint, Validator};
use crate::model::names::{IfName, Place};
use crate::model::raw::RawNode;
use crate::model::topology::{LinkSpec, RouteSpec};

impl Validator {
    pub(super) fn routes(
        &mut self,
        place: &Place,
        node: &RawNode,
        links: &BTreeMap<IfName, LinkSpec>,
    ) -> BTreeSet<RouteSpec> {
        let mut routes = BTreeSet::new();
        let mut seen: BTreeSet<IpNetwork> = BTreeSet::new();
        for raw in &node.routes {
            let via = match &raw.via {
                Some(text) => match text.value.parse::<IpAddr>() {
                    Ok(ip) => Some(ip),
                    Err(_) => {
                        self.error(&text.referenced, format!("malformed gateway `{}`", text.value));
                        continue;
                    }
                },
                None => None,
            };
            let mut existing = false;
            let dev = match &raw.dev {
                Some(text) => match self.parse::<IfName>(text) {
                    Some(name) if links.contains_key(&name) => Some(name),
                    Some(name) if self.existing(place, &name) => {
                        existing = true;
                        Some(name)
                    }
                    Some(name) => {
                        self.error(
                            &text.referenced,
                            format!("no interface `{name}` in {place}{}", name_hint(name.as_str(), links.keys())),
                        );
                        continue;
                    }
                    None => continue,
                },
                None => None,
            };
            if via.is_none() && dev.is_none() {
                self.error(&raw.to.referenced, "a route needs `via` or `dev`");
                continue;
            }
            let to = if raw.to.value == "default" {
                match via {
                    Some(IpAddr::V6(_)) => IpNetwork::new(IpAddr::V6(0.into()), 0).expect("valid"),
                    _ => IpNetwork::new(IpAddr::V4(0.into()), 0).expect("valid"),
                }
            } else {
                match raw.to.value.parse::<IpNetwork>() {
                    Ok(net) if net.network() == net.ip() => net,
                    Ok(net) => {
                        self.error(
                            &raw.to.referenced,
                            format!(
                                "route destination `{}` has host bits set; did you mean {}/{}?",
                                raw.to.value,
                                net.network(),
                                net.prefix()
                            ),
                        );
                        continue;
                    }
                    Err(_) => {
                        self.error(&raw.to.referenced, format!("malformed route destination `{}`", raw.to.value));
                        continue;
                    }
                }
            };
            if let Some(gateway) = via {
                if gateway.is_ipv4() != to.is_ipv4() {
                    self.error(
                        &raw.to.referenced,
                        format!("route `{}` and gateway `{gateway}` are of different IP versions", raw.to.value),
                    );
                    continue;
                }
                // Through an existing device, its subnets are known at plan time only.
                let on_subnet = existing
                    || links
                        .iter()
                        .filter(|(name, _)| dev.as_ref().is_none_or(|d| d == *name))
                        .flat_map(|(_, l)| l.addresses.iter())
                        .any(|net| net.contains(gateway) && net.ip() != gateway);
                if !on_subnet {
                    let at = raw.via.as_ref().expect("via given").referenced;
                    self.error(&at, format!("gateway `{gateway}` is not on any subnet of {place}"));
                    continue;
                }
            }
            if !seen.insert(to) {
                self.error(&raw.to.referenced, format!("duplicate route to `{}` in {place}", raw.to.value));
                continue;
            }
            routes.insert(RouteSpec { to, via, dev });
        }
        routes
    }
}
