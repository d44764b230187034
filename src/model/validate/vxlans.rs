//! One VXLAN device as declared: VNI, underlay, lower device, VTEP and remote or
//! group, and the overlay's store with its TLS files.

use std::net::IpAddr;
use std::path::PathBuf;

use super::{interfaces, Draft, PlaceDraft, Validator, VxlanSite};
use crate::model::names::{IfName, Place};
use crate::model::raw::{Located, RawNode, RawStoreTls, RawVxlan};
use crate::model::topology::{LinkKind, LinkSpec, VxlanSpec};
use netlab_store::{StoreUrl, Tls};
use netns::mac::Mac;

impl Validator {
    /// `vxlans:` of a namespace, added to its draft.
    pub(super) fn vxlan_devices(&mut self, place: &Place, node: &RawNode, draft: &mut PlaceDraft) {
        for (key, raw) in &node.vxlans {
            let Some(name) = self.parse::<IfName>(key) else { continue };
            if name.is_loopback() {
                self.error(&key.referenced, interfaces::LOOPBACK_TAKEN);
                continue;
            }
            if draft.links.contains_key(&name) {
                self.error(&key.referenced, format!("duplicate interface `{name}` in {place}"));
                continue;
            }
            let Some(vxlan) = self.vxlan(place, raw) else { continue };
            if !self.lower_device_is_another(place, &name, &vxlan, raw) {
                continue;
            }
            if let Some(mtu) = &raw.mtu {
                self.mtu_in_range(mtu);
            }
            let mut spec = LinkSpec::new(LinkKind::Vxlan(Box::new(vxlan)));
            spec.mtu = raw.mtu.as_ref().map(|m| m.value);
            spec.mac = raw.mac.as_ref().and_then(|mac| self.parse::<Mac>(mac));
            spec.up = raw.up.unwrap_or(true);
            self.vxlan_sites.push(VxlanSite {
                place: place.clone(),
                name: name.clone(),
                at: key.referenced,
                dev_at: raw.dev.referenced,
                underlay_at: raw.underlay.as_ref().map_or(key.referenced, |u| u.referenced),
                local_at: raw.local.referenced,
                mtu: raw.mtu.clone(),
            });
            draft.links.insert(
                name,
                Box::new(Draft { at: key.referenced, spec, unlinked: false, bridge_ref: raw.bridge.clone() }),
            );
        }
    }

    /// A VXLAN device's lower device is neither the device itself nor the bridge it is a
    /// port of (the kernel refuses both).
    fn lower_device_is_another(&mut self, place: &Place, name: &IfName, vxlan: &VxlanSpec, raw: &RawVxlan) -> bool {
        if vxlan.underlay != *place {
            return true;
        }
        if vxlan.dev == *name {
            self.error(&raw.dev.referenced, format!("vxlan `{name}` cannot be its own lower device"));
            return false;
        }
        if raw.bridge.as_ref().is_some_and(|bridge| bridge.value == vxlan.dev.as_str()) {
            let message =
                format!("the lower device of vxlan `{name}` cannot be `{}`, the bridge it is a port of", vxlan.dev);
            self.error(&raw.dev.referenced, message);
            return false;
        }
        true
    }

    pub(super) fn vxlan(&mut self, place: &Place, raw: &RawVxlan) -> Option<VxlanSpec> {
        const MAX_VNI: u32 = (1 << 24) - 1;
        if !(1..=MAX_VNI).contains(&raw.vni.value) {
            self.error(&raw.vni.referenced, format!("vni {} is out of range 1..={MAX_VNI}", raw.vni.value));
        }
        let underlay = match &raw.underlay {
            Some(text) => text.value.parse::<Place>().map_err(|e| self.error(&text.referenced, e)).ok()?,
            None => place.clone(),
        };
        let dev = self.parse::<IfName>(&raw.dev)?;
        let ip = |text: &Located<String>, this: &mut Self| match text.value.parse::<IpAddr>() {
            Ok(ip) => Some(ip),
            Err(_) => {
                this.error(&text.referenced, format!("malformed address `{}`", text.value));
                None
            }
        };
        let local = ip(&raw.local, self)?;
        let group = match (&raw.remote, &raw.group) {
            (Some(_), Some(group)) => {
                self.error(&group.referenced, "give `remote` or `group`, not both");
                return None;
            }
            (Some(remote), None) => {
                let remote = ip(remote, self)?;
                if remote.is_multicast() {
                    self.error(
                        &raw.remote.as_ref().expect("remote").referenced,
                        format!("remote `{remote}` is multicast: use `group`"),
                    );
                    return None;
                }
                Some(remote)
            }
            (None, Some(text)) => {
                let group = ip(text, self)?;
                if !group.is_multicast() {
                    self.error(&text.referenced, format!("group `{group}` is not a multicast address"));
                    return None;
                }
                Some(group)
            }
            (None, None) => None,
        };
        if let Some(group) = group {
            if group.is_ipv4() != local.is_ipv4() {
                self.error(&raw.local.referenced, "`local` and the remote or group are of different IP versions");
                return None;
            }
        }
        let store = raw.store.as_ref().and_then(|text| self.store(text, raw.bridge.is_some()));
        Some(VxlanSpec {
            vni: raw.vni.value,
            port: self.port(raw.port.as_ref())?,
            underlay,
            dev,
            local,
            group,
            learning: raw.learning.unwrap_or(true),
            proxy: raw.proxy.unwrap_or(false),
            l2miss: raw.l2miss.unwrap_or(false),
            l3miss: raw.l3miss.unwrap_or(false),
            ttl: raw.ttl,
            // A store that failed validation has its error already.
            store_tls: match (&raw.store_tls, &raw.store, &store) {
                (Some(_), Some(_), None) => None,
                (Some(tls), _, _) => self.store_tls(tls, store.as_ref()),
                (None, _, _) => None,
            },
            store,
        })
    }

    pub(super) fn store_tls(&mut self, raw: &Located<RawStoreTls>, store: Option<&StoreUrl>) -> Option<Tls> {
        if !matches!(store, Some(StoreUrl::Etcd { .. })) {
            self.error(&raw.referenced, "`store_tls` needs an etcd store (`store: etcd://...`)");
            return None;
        }
        let mut path = |field: &Option<Located<String>>, what: &str| -> Result<Option<PathBuf>, ()> {
            let Some(text) = field else { return Ok(None) };
            let path = PathBuf::from(&text.value);
            if !path.is_absolute() {
                self.error(&text.referenced, format!("{what} `{}` must be an absolute path", text.value));
                return Err(());
            }
            Ok(Some(path))
        };
        let files = (path(&raw.value.ca, "ca"), path(&raw.value.cert, "cert"), path(&raw.value.key, "key"));
        let (Ok(ca), Ok(cert), Ok(key)) = files else { return None };
        if cert.is_some() != key.is_some() {
            self.error(&raw.referenced, "`cert` and `key` go together: a client certificate needs its key");
            return None;
        }
        Some(Tls { ca, cert, key })
    }

    pub(super) fn store(&mut self, text: &Located<String>, bridged: bool) -> Option<StoreUrl> {
        let url = text.value.parse::<StoreUrl>().map_err(|e| self.error(&text.referenced, e.to_string())).ok()?;
        if let StoreUrl::Dir(path) = &url {
            if !path.is_absolute() {
                self.error(&text.referenced, format!("store `{url}`: the folder must be an absolute path"));
                return None;
            }
        }
        if !bridged {
            self.error(&text.referenced, "a store needs `bridge`: the endpoints published are the bridge's");
            return None;
        }
        Some(url)
    }
}

impl Validator {
    /// The UDP port of a VXLAN device: 4789 unless given; not 0, which the kernel
    /// replaces with 8472 (so the device would differ from the file at every apply).
    fn port(&mut self, port: Option<&Located<u16>>) -> Option<u16> {
        match port {
            None => Some(4789),
            Some(port) if port.value == 0 => {
                self.error(&port.referenced, "port 0 is not a port: the kernel would use 8472 instead");
                None
            }
            Some(port) => Some(port.value),
        }
    }
}
