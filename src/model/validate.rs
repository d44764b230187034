//! Raw file -> `Topology`. Every rule reports at the offending value and validation
//! goes on, so that a file's errors are all reported at once.

mod existing;
mod overlays;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::{IpAddr, SocketAddr, SocketAddrV4};
use std::path::PathBuf;

use ipnetwork::{IpNetwork, Ipv4Network};
use serde_saphyr::Location;

use super::diagnostic::Diagnostic;
use super::names::{IfName, LabName, NodeName, Place, SysctlKey, HOST};
use super::raw::{Located, RawCheck, RawInterface, RawNode, RawStoreTls, RawTopology};
use super::topology::{
    Check, Endpoint, FdbSpec, LinkKind, LinkSpec, Masquerade, NamespaceSpec, NatSpec, NeighbourSpec, Protocol, Publish,
    RouteSpec, Topology, VxlanSpec,
};
use netlab_store::{StoreUrl, Tls};
use netns::mac::Mac;

/// The kernel refuses the 1024th port of a bridge (EXFULL).
pub const MAX_BRIDGE_PORTS: usize = 1023;
const MIN_MTU: u32 = 68;
const MAX_MTU: u32 = 65535;

pub fn validate(raw: RawTopology) -> Result<Topology, Vec<Diagnostic>> {
    let mut v = Validator::default();
    let name = v.parse::<LabName>(&raw.name);

    let mut places: Vec<(Place, Location, RawNode)> = Vec::new();
    places.push((Place::Host, raw.name.referenced, raw.host.unwrap_or_default()));
    for (key, node) in raw.nodes {
        if let Some(node_name) = v.parse::<NodeName>(&key) {
            places.push((Place::Node(node_name), key.referenced, node.unwrap_or_default()));
        }
    }
    let known: BTreeSet<Place> = places.iter().map(|(place, ..)| place.clone()).collect();

    let mut drafts: BTreeMap<Place, PlaceDraft> = BTreeMap::new();
    for (place, _, node) in &places {
        drafts.insert(place.clone(), v.interfaces(place, node));
    }
    v.links(&raw.links, &known, &mut drafts);
    let mut namespaces = BTreeMap::new();
    for (place, _, node) in &places {
        let draft = drafts.remove(place).expect("one draft per place");
        namespaces.insert(place.clone(), v.finish_namespace(place, node, draft));
    }
    v.overlays(&mut namespaces);
    if let Some(host) = namespaces.get_mut(&Place::Host) {
        host.existing = std::mem::take(&mut v.existing);
    }
    v.unique_macs(&namespaces);
    let checks = raw.checks.iter().filter_map(|check| v.check(check, &known, &namespaces)).collect();

    match (name, v.errors.is_empty()) {
        (Some(name), true) => Ok(Topology { name, namespaces, checks, warnings: v.warnings }),
        _ => {
            v.errors.sort_by_key(|d| (d.line, d.column));
            Err(v.errors)
        }
    }
}

/// An interface of a namespace while validation gathers it.
struct Draft {
    at: Location,
    spec: LinkSpec,
    /// Declared under `interfaces:` but not yet seen in a link.
    unlinked: bool,
    bridge_ref: Option<Located<String>>,
}

#[derive(Default)]
struct PlaceDraft {
    links: BTreeMap<IfName, Draft>,
}

#[derive(Default)]
struct Validator {
    errors: Vec<Diagnostic>,
    warnings: Vec<String>,
    /// Where each VXLAN device was declared, for checks across namespaces.
    vxlan_sites: Vec<VxlanSite>,
    /// Where each interface was declared.
    declared: HashMap<(Place, IfName), Location>,
    /// Host devices the file names without declaring them (see `existing`).
    existing: BTreeSet<IfName>,
}

struct VxlanSite {
    place: Place,
    name: IfName,
    at: Location,
    dev_at: Location,
    local_at: Location,
    mtu: Option<Located<u32>>,
}

impl Validator {
    fn error(&mut self, at: &Location, message: impl Into<String>) {
        self.errors.push(Diagnostic::at(at, message));
    }

    fn parse<T: std::str::FromStr<Err = String>>(&mut self, value: &Located<String>) -> Option<T> {
        match value.value.parse() {
            Ok(parsed) => Some(parsed),
            Err(message) => {
                self.error(&value.referenced, message);
                None
            }
        }
    }

    fn interfaces(&mut self, place: &Place, node: &RawNode) -> PlaceDraft {
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
                (true, _) => LinkKind::Bridge,
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
            let unlinked = !is_bridge && !name.is_loopback();
            draft.links.insert(name, Draft { at: key.referenced, spec, unlinked, bridge_ref: raw.bridge.clone() });
        }
        for (key, raw) in &node.vxlans {
            let Some(name) = self.parse::<IfName>(key) else { continue };
            if draft.links.contains_key(&name) {
                self.error(&key.referenced, format!("duplicate interface `{name}` in {place}"));
                continue;
            }
            let Some(vxlan) = self.vxlan(place, raw) else { continue };
            let mut spec = LinkSpec::new(LinkKind::Vxlan(vxlan));
            spec.mtu = raw.mtu.as_ref().map(|m| m.value);
            spec.mac = raw.mac.as_ref().and_then(|mac| self.parse::<Mac>(mac));
            spec.up = raw.up.unwrap_or(true);
            self.vxlan_sites.push(VxlanSite {
                place: place.clone(),
                name: name.clone(),
                at: key.referenced,
                dev_at: raw.dev.referenced,
                local_at: raw.local.referenced,
                mtu: raw.mtu.clone(),
            });
            draft
                .links
                .insert(name, Draft { at: key.referenced, spec, unlinked: false, bridge_ref: raw.bridge.clone() });
        }
        draft
    }

    fn vxlan(&mut self, place: &Place, raw: &super::raw::RawVxlan) -> Option<VxlanSpec> {
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
            port: raw.port.unwrap_or(4789),
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

    fn store_tls(&mut self, raw: &Located<RawStoreTls>, store: Option<&StoreUrl>) -> Option<Tls> {
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

    fn store(&mut self, text: &Located<String>, bridged: bool) -> Option<StoreUrl> {
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

    fn link_spec(&mut self, kind: LinkKind, raw: &RawInterface) -> LinkSpec {
        let mut addresses = BTreeSet::new();
        for address in &raw.addresses {
            if let Some(network) = self.address(address) {
                if !addresses.insert(network) {
                    self.error(&address.referenced, format!("duplicate address `{}`", address.value));
                }
            }
        }
        if let Some(mtu) = &raw.mtu {
            if !(MIN_MTU..=MAX_MTU).contains(&mtu.value) {
                self.error(&mtu.referenced, format!("mtu {} is out of range {MIN_MTU}..={MAX_MTU}", mtu.value));
            }
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
        }
    }

    /// "11.11.11.2/24": an interface address with its prefix.
    fn address(&mut self, text: &Located<String>) -> Option<IpNetwork> {
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

    fn endpoint(&mut self, text: &Located<String>, known: &BTreeSet<Place>) -> Option<Endpoint> {
        let (place_text, name_text) = match text.value.split_once(':') {
            Some((place, name)) => (place, name),
            None => (HOST, text.value.as_str()),
        };
        let place: Place = match place_text.parse() {
            Ok(place) if known.contains(&place) => place,
            _ => {
                self.error(&text.referenced, format!("unknown node `{place_text}` in endpoint `{}`", text.value));
                return None;
            }
        };
        match name_text.parse::<IfName>() {
            Ok(name) => Some(Endpoint { place, name }),
            Err(message) => {
                self.error(&text.referenced, message);
                None
            }
        }
    }

    fn links(
        &mut self,
        links: &[super::raw::RawLink],
        known: &BTreeSet<Place>,
        drafts: &mut BTreeMap<Place, PlaceDraft>,
    ) {
        let mut used: HashMap<Endpoint, Location> = HashMap::new();
        for link in links {
            let raw_ends = &link.endpoints.value;
            if raw_ends.len() != 2 {
                self.error(
                    &link.endpoints.referenced,
                    format!("a link has exactly 2 endpoints, found {}", raw_ends.len()),
                );
                continue;
            }
            let ends: Vec<Option<Endpoint>> = raw_ends.iter().map(|e| self.endpoint(e, known)).collect();
            let [Some(a), Some(b)] = [ends[0].clone(), ends[1].clone()] else {
                // The link is reported; its valid end is not "unlinked" on top of that.
                for end in ends.iter().flatten() {
                    if let Some(draft) = drafts.get_mut(&end.place).and_then(|d| d.links.get_mut(&end.name)) {
                        draft.unlinked = false;
                        draft.spec.kind = LinkKind::Veth { peer: end.clone() };
                    }
                }
                continue;
            };
            let mut ok = true;
            for (end, raw) in [(&a, &raw_ends[0]), (&b, &raw_ends[1])] {
                if used.contains_key(end) || (a == b && std::ptr::eq(end, &b)) {
                    self.error(&raw.referenced, format!("endpoint `{end}` is used by more than one link"));
                    ok = false;
                    continue;
                }
                used.insert(end.clone(), raw.referenced);
                let draft = drafts.get_mut(&end.place).expect("known place");
                match draft.links.get(&end.name) {
                    Some(existing) if !existing.unlinked => {
                        let what = if existing.spec.kind == LinkKind::Bridge { "a bridge" } else { "`lo`" };
                        self.error(&raw.referenced, format!("endpoint `{end}` names {what}, not a veth end"));
                        ok = false;
                    }
                    _ => {}
                }
            }
            if !ok {
                continue;
            }
            for (end, peer, raw) in [(&a, &b, &raw_ends[0]), (&b, &a, &raw_ends[1])] {
                let draft = drafts.get_mut(&end.place).expect("known place");
                let entry = draft.links.entry(end.name.clone()).or_insert_with(|| Draft {
                    at: raw.referenced,
                    spec: LinkSpec::new(LinkKind::Bridge),
                    unlinked: true,
                    bridge_ref: None,
                });
                entry.unlinked = false;
                entry.spec.kind = LinkKind::Veth { peer: peer.clone() };
            }
        }
    }

    fn finish_namespace(&mut self, place: &Place, node: &RawNode, mut draft: PlaceDraft) -> NamespaceSpec {
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
                _ => self.error(&bridge_ref.referenced, format!("no bridge `{}` in {place}", bridge_ref.value)),
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
        let sysctls = self.sysctls(node);
        let nat = self.nat(place, node, &links);
        let (neighbours, fdb) = self.entries(place, node, &links);
        let spec = NamespaceSpec { links, routes, sysctls, nat, neighbours, fdb, existing: BTreeSet::new() };
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

    /// Static neighbour and FDB entries; FDB entries belong on VXLAN devices.
    fn entries(
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
                self.error(&raw.dev.referenced, format!("no interface `{dev}` in {place}"));
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

    fn nat(&mut self, place: &Place, node: &RawNode, links: &BTreeMap<IfName, LinkSpec>) -> NatSpec {
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
                        self.error(&out.referenced, format!("no interface `{name}` in {place}"));
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

    /// Two interfaces of one namespace on the same or overlapping subnets make routing
    /// ambiguous; the same address twice is a conflict.
    fn overlapping_addresses(&mut self, place: &Place, node: &RawNode, links: &BTreeMap<IfName, LinkSpec>) {
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

    fn routes(&mut self, place: &Place, node: &RawNode, links: &BTreeMap<IfName, LinkSpec>) -> BTreeSet<RouteSpec> {
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
                        self.error(&text.referenced, format!("no interface `{name}` in {place}"));
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

    fn sysctls(&mut self, node: &RawNode) -> BTreeMap<SysctlKey, String> {
        let mut sysctls = BTreeMap::new();
        for (key, value) in &node.sysctls {
            let Some(key) = self.parse::<SysctlKey>(key) else { continue };
            let text = &value.value.0;
            if text.is_empty() || text.len() > 256 || text.chars().any(|c| c.is_control() && c != '\t') {
                self.error(&value.referenced, format!("invalid value for sysctl `{key}`"));
                continue;
            }
            sysctls.insert(key, netns::sysctl::normalise(text));
        }
        sysctls
    }

    fn unique_macs(&mut self, namespaces: &BTreeMap<Place, NamespaceSpec>) {
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

    fn place(&mut self, text: &Located<String>, known: &BTreeSet<Place>) -> Option<Place> {
        match text.value.parse::<Place>() {
            Ok(place) if known.contains(&place) => Some(place),
            _ => {
                self.error(&text.referenced, format!("unknown node `{}`", text.value));
                None
            }
        }
    }

    fn check(
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
                                format!("`{}` is neither an address nor a node", ping.to.value),
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

    fn socket_address(&mut self, text: &Located<String>) -> Option<SocketAddr> {
        match text.value.parse::<SocketAddr>() {
            Ok(address) if address.port() != 0 => Some(address),
            _ => {
                self.error(&text.referenced, format!("`{}` is not ADDRESS:PORT", text.value));
                None
            }
        }
    }
}

fn is_broadcast(ip: IpAddr) -> bool {
    matches!(ip, IpAddr::V4(v4) if v4.is_broadcast())
}
