//! One VXLAN device as declared: VNI, underlay, lower device, VTEP and remote or
//! group, and the overlay's store with its TLS files.

use std::net::IpAddr;
use std::path::PathBuf;

use super::{interfaces, Draft, PlaceDraft, Validator, VxlanSite};
use crate::model::names::{IfName, Place};
use crate::model::raw::{Located, RawAgent, RawNode, RawStoreTls, RawVxlan};
use crate::model::topology::{AgentMode, LinkKind, LinkSpec, VxlanSpec};
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
        let agent = self.agent(place, &underlay, raw, store.is_some());
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
            agent,
        })
    }

    /// The agent netlab runs for the device: by default one in proactive mode wherever
    /// there is a store; none with `agent: false`. An agent without a store has nothing
    /// to serve.
    fn agent(&mut self, place: &Place, underlay: &Place, raw: &RawVxlan, store: bool) -> Option<AgentMode> {
        let mode = match raw.agent.as_ref().map(|a| (&a.value, a.referenced)) {
            None | Some((RawAgent::Enabled(true), _)) => AgentMode::Proactive,
            Some((RawAgent::Enabled(false), _)) => return None,
            Some((RawAgent::Options(options), _)) => options.mode.unwrap_or(AgentMode::Proactive),
        };
        let at = raw.agent.as_ref().map(|a| a.referenced);
        if raw.store.is_none() {
            if let Some(at) = at {
                self.error(&at, "`agent` needs `store`: the agent installs the endpoints the store holds");
            }
            return None;
        }
        // vxlan-agent names the device's namespace by its name under /run/netns: the
        // host has none, so an agent for a device in the host runs in the host.
        if *place == Place::Host && *underlay != Place::Host {
            let at = at.or(raw.underlay.as_ref().map(|u| u.referenced)).unwrap_or(raw.dev.referenced);
            self.error(
                &at,
                "an agent for a VXLAN device in the host runs in the host: give the device `underlay: host` or \
                 `agent: false`",
            );
            return None;
        }
        store.then_some(mode)
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

#[cfg(test)]
mod tests {
    use crate::model::{parse, AgentMode, LinkKind, Place};

    /// ov's vxlan device over h's eth0, with `FIELDS` added to it.
    fn file(fields: &str) -> String {
        format!(
            "name: x\nnodes:\n  h:\n    interfaces:\n      eth0: {{addresses: [10.0.0.1/24]}}\n  peer: {{}}\n  ov:\n    bridges:\n      br0: {{}}\n    vxlans:\n      vx: {{vni: 42, underlay: h, dev: eth0, local: 10.0.0.1, bridge: br0{fields}}}\nlinks:\n  - endpoints: [h:eth0, peer:eth0]\n"
        )
    }

    fn agent(fields: &str) -> Option<AgentMode> {
        let topology = parse("lab.yaml", &file(fields)).unwrap();
        let link = &topology.namespaces[&"ov".parse::<Place>().unwrap()].links[&"vx".parse().unwrap()];
        let LinkKind::Vxlan(vxlan) = &link.kind else { panic!("a vxlan") };
        vxlan.agent
    }

    fn errors(fields: &str) -> Vec<String> {
        let diagnostics = parse("lab.yaml", &file(fields)).unwrap_err();
        diagnostics.items.iter().map(|d| format!("{}:{}: {}", d.line, d.column, d.message)).collect()
    }

    #[test]
    fn a_store_gets_a_proactive_agent_unless_the_file_says_otherwise() {
        const STORE: &str = ", store: 'dir:/s'";
        assert_eq!(agent(STORE), Some(AgentMode::Proactive));
        assert_eq!(agent(&format!("{STORE}, agent: true")), Some(AgentMode::Proactive));
        assert_eq!(agent(&format!("{STORE}, agent: {{mode: miss}}")), Some(AgentMode::Miss));
        assert_eq!(agent(&format!("{STORE}, agent: {{}}")), Some(AgentMode::Proactive));
        assert_eq!(agent(&format!("{STORE}, agent: false")), None);
        assert_eq!(agent(""), None);
    }

    #[test]
    fn an_agent_where_it_makes_no_sense_is_refused_where_it_is_written() {
        assert_eq!(
            errors(", agent: {mode: miss}"),
            ["11:82: `agent` needs `store`: the agent installs the endpoints the store holds"]
        );
        let bad_mode = errors(", store: 'dir:/s', agent: {mode: often}");
        assert!(bad_mode[0].starts_with("11:") && bad_mode[0].contains("often"), "{bad_mode:?}");
        let unknown = errors(", store: 'dir:/s', agent: {mod: miss}");
        assert!(unknown.iter().any(|e| e.contains("unknown field `mod`, did you mean `mode`?")), "{unknown:?}");
    }

    #[test]
    fn an_agent_for_a_device_in_the_host_needs_the_host_as_underlay() {
        let text = "name: x\nnodes:\n  h:\n    interfaces:\n      eth0: {addresses: [10.0.0.1/24]}\n  peer: {}\nhost:\n  bridges:\n    br0: {}\n  vxlans:\n    vx: {vni: 42, underlay: h, dev: eth0, local: 10.0.0.1, bridge: br0, store: 'dir:/s'}\nlinks:\n  - endpoints: [h:eth0, peer:eth0]\n";
        let found: Vec<String> = parse("lab.yaml", text)
            .unwrap_err()
            .items
            .iter()
            .map(|d| format!("{}:{}: {}", d.line, d.column, d.message))
            .collect();
        assert_eq!(
            found,
            ["11:29: an agent for a VXLAN device in the host runs in the host: give the device `underlay: host` or \
              `agent: false`"]
        );
    }
}
