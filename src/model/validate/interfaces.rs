//! `interfaces:`, `bridges:` and `vxlans:` of a namespace: the devices it declares,
//! with their addresses, MTU and MAC.

use std::collections::BTreeSet;
use std::net::IpAddr;

use ipnetwork::IpNetwork;

use super::{Draft, PlaceDraft, Validator, MAX_MTU, MIN_MTU};
use crate::model::names::{IfName, Place};
use crate::model::raw::{Located, RawInterface, RawNode};
use crate::model::topology::{LinkKind, LinkSpec};
use netns::mac::Mac;

/// `lo` is made by the kernel with each namespace: netlab can only configure it.
pub(super) const LOOPBACK_TAKEN: &str = "`lo` is the namespace's loopback: netlab cannot make a device of that name";

impl Validator {
    pub(super) fn interfaces(&mut self, place: &Place, node: &RawNode) -> PlaceDraft {
        let mut draft = PlaceDraft::default();
        let declared =
            node.bridges.iter().map(|(k, v)| (k, v, true)).chain(node.interfaces.iter().map(|(k, v)| (k, v, false)));
        for (key, raw, is_bridge) in declared {
            let Some(name) = self.parse::<IfName>(key) else { continue };
            let default = RawInterface::default();
            let raw = raw.as_ref().unwrap_or(&default);
            if draft.links.contains_key(&name) {
                self.error(&key.referenced, format!("duplicate interface `{name}` in {place}"));
                continue;
            }
            let kind = match (is_bridge, name.is_loopback()) {
                (true, true) => {
                    self.error(&key.referenced, LOOPBACK_TAKEN);
                    continue;
                }
                (true, false) => LinkKind::Bridge,
                (false, true) => {
                    if *place == Place::Host {
                        self.error(&key.referenced, "`lo` of the host is not netlab's to configure");
                        continue;
                    }
                    if raw.mtu.is_some() || raw.mac.is_some() || raw.bridge.is_some() {
                        self.error(&key.referenced, "`lo` takes only addresses");
                    }
                    LinkKind::Loopback
                }
                // A placeholder until the link that makes this veth end is seen.
                (false, false) => LinkKind::Bridge,
            };
            if is_bridge {
                if let Some(bridge) = &raw.bridge {
                    self.error(&bridge.referenced, format!("bridge `{name}` cannot be a port of another bridge"));
                }
            }
            let spec = self.link_spec(kind, raw);
            if is_bridge || name.is_loopback() {
                self.shaping_only_on_veths(&name, raw);
            }
            let unlinked = !is_bridge && !name.is_loopback();
            let bridge_ref = raw.bridge.clone();
            draft.links.insert(name, Box::new(Draft { at: key.referenced, spec, unlinked, bridge_ref }));
        }
        self.vxlan_devices(place, node, &mut draft);
        draft
    }

    pub(super) fn link_spec(&mut self, kind: LinkKind, raw: &RawInterface) -> LinkSpec {
        let mut addresses = BTreeSet::new();
        for address in &raw.addresses {
            if let Some(network) = self.address(address) {
                if !addresses.insert(network) {
                    self.error(&address.referenced, format!("duplicate address `{}`", address.value));
                }
            }
        }
        if let Some(mtu) = &raw.mtu {
            self.mtu_in_range(mtu);
        }
        let mac = raw.mac.as_ref().and_then(|mac| self.parse::<Mac>(mac));
        let has_ipv6 = addresses.iter().any(IpNetwork::is_ipv6);
        LinkSpec {
            kind,
            mtu: raw.mtu.as_ref().map(|m| m.value),
            mac,
            up: raw.up.unwrap_or(true),
            master: None,
            addresses,
            ipv6_autoconf: raw.ipv6_autoconf.unwrap_or(has_ipv6),
            shaping: self.shaping(raw),
        }
    }

    pub(super) fn mtu_in_range(&mut self, mtu: &Located<u32>) -> bool {
        let ok = (MIN_MTU..=MAX_MTU).contains(&mtu.value);
        if !ok {
            self.error(&mtu.referenced, format!("mtu {} is out of range {MIN_MTU}..={MAX_MTU}", mtu.value));
        }
        ok
    }

    /// "11.11.11.2/24": an interface address with its prefix.
    pub(super) fn address(&mut self, text: &Located<String>) -> Option<IpNetwork> {
        if !text.value.contains('/') {
            self.error(&text.referenced, format!("address `{}` needs a prefix length, such as /24", text.value));
            return None;
        }
        match text.value.parse::<IpNetwork>() {
            Ok(network) => {
                let ip = network.ip();
                if ip.is_unspecified() || ip.is_multicast() || is_broadcast(ip) {
                    self.error(
                        &text.referenced,
                        format!("address `{}` cannot be assigned to an interface", text.value),
                    );
                    return None;
                }
                Some(network)
            }
            Err(_) => {
                self.error(&text.referenced, format!("malformed address `{}`", text.value));
                None
            }
        }
    }
}

fn is_broadcast(ip: IpAddr) -> bool {
    matches!(ip, IpAddr::V4(v4) if v4.is_broadcast())
}
