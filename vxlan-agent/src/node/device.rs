//! The node daemon's side of the kernel, in the namespace it runs in: the underlay
//! card, its VXLAN device (made and marked by the daemon), the entries on it, and
//! IP forwarding.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::{AsRawFd, OwnedFd};

use ipnetwork::IpNetwork;
use netns::blocking;
use netns::link::{LinkChange, LinkRef, LinkState, NewLink, Vxlan};
use netns::packet_core::{NLM_F_CREATE, NLM_F_REPLACE};
use netns::packet_route::RouteNetlinkMessage;
use netns::route::RouteRequest;
use netns::{Netlink, Netns};

use netlab_store::leases::{Mac, Subnet};

use super::plan::{Action, Entries, Slot};
use crate::PROTOCOL;

/// The alias that marks a device as the node daemon's: any other link of the same
/// name is someone else's and never changed.
pub const MARK: &str = "netlab:vxlan-agent-node";

/// The card VXLAN packets leave by.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Underlay {
    pub index: u32,
    pub name: String,
    pub mtu: u32,
}

/// What the device must be.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceSpec {
    pub name: String,
    pub vni: u32,
    pub port: u16,
    pub local: Ipv4Addr,
    pub underlay: Underlay,
    /// Used when the device is made; an existing device keeps its MAC.
    pub mac: Mac,
    /// `<subnet>.0`, as a /32.
    pub address: Ipv4Addr,
}

impl DeviceSpec {
    /// Room for the VXLAN header (50 bytes with outer IPv4, UDP and Ethernet).
    pub fn mtu(&self) -> u32 {
        self.underlay.mtu.saturating_sub(50)
    }
}

/// The device as made or found: what the lease must announce.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Device {
    pub index: u32,
    pub mac: Mac,
}

pub struct Kernel {
    requests: OwnedFd,
    netlink: Netlink,
}

impl Kernel {
    /// Sockets in the namespace the daemon runs in.
    pub async fn open() -> Result<Kernel, netns::Error> {
        Ok(Kernel { requests: Netlink::open_socket_here()?, netlink: Netlink::open(Netns::Host).await? })
    }

    /// The card named `name`, or else the one holding `public_ip`.
    pub fn underlay(&self, public_ip: Ipv4Addr, name: Option<&str>) -> Result<Underlay, String> {
        let links = blocking::links(&self.requests).map_err(|e| e.to_string())?;
        let link = match name {
            Some(name) => links.iter().find(|l| l.name == name).ok_or_else(|| format!("no interface {name}"))?,
            None => {
                let addresses = blocking::addresses(&self.requests).map_err(|e| e.to_string())?;
                let index = addresses
                    .iter()
                    .find(|a| a.network.ip() == IpAddr::V4(public_ip))
                    .map(|a| a.index)
                    .ok_or_else(|| format!("no interface holds {public_ip}: give --iface"))?;
                links.iter().find(|l| l.index == index).ok_or_else(|| format!("interface {index} vanished"))?
            }
        };
        Ok(Underlay { index: link.index, name: link.name.clone(), mtu: link.mtu })
    }

    fn link(&self, name: &str) -> Result<Option<LinkState>, String> {
        Ok(blocking::links(&self.requests).map_err(|e| e.to_string())?.into_iter().find(|l| l.name == name))
    }

    /// The MAC of the daemon's device `name`, if it exists (a restart keeps it).
    pub fn existing_mac(&self, name: &str) -> Result<Option<Mac>, String> {
        Ok(self.link(name)?.filter(ours).and_then(|l| l.mac).map(Mac::from_octets))
    }

    /// Refused when a link called `name` exists that the daemon did not make.
    pub fn check_free(&self, name: &str) -> Result<(), String> {
        match self.link(name)? {
            Some(link) if !ours(&link) => {
                Err(format!("{name} exists and was not made by vxlan-agent node; refused (remove it or pick --device)"))
            }
            _ => Ok(()),
        }
    }

    /// Make the device as `spec` says, or bring an existing one of the daemon's in
    /// line (made again when its VXLAN parameters differ). Someone else's link of the
    /// same name is refused.
    pub async fn ensure(&self, spec: &DeviceSpec) -> Result<Device, String> {
        let name = &spec.name;
        let existing = self.link(name)?;
        if let Some(link) = &existing {
            if !ours(link) {
                return Err(format!(
                    "{name} exists and was not made by vxlan-agent node; refused (remove it or pick --device)"
                ));
            }
        }
        let wanted = Vxlan {
            vni: spec.vni,
            port: spec.port,
            local: Some(IpAddr::V4(spec.local)),
            lower: Some(spec.underlay.index),
            ..Vxlan::default()
        };
        let same = |v: &Vxlan| {
            v.vni == wanted.vni
                && v.port == wanted.port
                && v.local == wanted.local
                && v.lower == wanted.lower
                && !v.learning
        };
        let link = match existing {
            Some(link) if link.vxlan.as_ref().is_some_and(same) => link,
            other => {
                if let Some(link) = other {
                    tracing::info!("{name}: vxlan parameters changed, making it again");
                    self.netlink.delete_link(link.index, name).await.map_err(|e| e.to_string())?;
                }
                let new = NewLink {
                    name: name.clone(),
                    mtu: Some(spec.mtu()),
                    mac: Some(spec.mac.octets()),
                    ..NewLink::default()
                };
                let here = self.netlink.ns().open().map_err(|e| e.to_string())?;
                self.netlink.create_vxlan(&new, &wanted, here.as_raw_fd()).await.map_err(|e| e.to_string())?;
                self.link(name)?.ok_or_else(|| format!("{name} vanished after it was made"))?
            }
        };
        let change = LinkChange {
            alias: (link.alias.as_deref() != Some(MARK)).then(|| MARK.to_string()),
            mtu: (link.mtu != spec.mtu()).then(|| spec.mtu()),
            up: (!link.up).then_some(true),
            ipv6_autoconf: (link.ipv6_autoconf == Some(true)).then_some(false),
            ..LinkChange::default()
        };
        // Only real changes: each one echoes a notification that wakes the daemon.
        if change.alias.is_some() || change.mtu.is_some() || change.up.is_some() || change.ipv6_autoconf.is_some() {
            self.netlink.set_link(LinkRef::Index(link.index), &change).await.map_err(|e| e.to_string())?;
        }
        self.address(link.index, name, spec.address).await?;
        let mac = link.mac.map(Mac::from_octets).unwrap_or(spec.mac);
        Ok(Device { index: link.index, mac })
    }

    /// Exactly `<subnet>.0/32` on the device.
    async fn address(&self, index: u32, name: &str, address: Ipv4Addr) -> Result<(), String> {
        let wanted = IpNetwork::new(IpAddr::V4(address), 32).expect("/32");
        let mut present = false;
        for held in
            blocking::addresses(&self.requests).map_err(|e| e.to_string())?.into_iter().filter(|a| a.index == index)
        {
            if held.network == wanted {
                present = true;
            } else if held.network.is_ipv4() {
                self.netlink.delete_address(index, name, held.network).await.map_err(|e| e.to_string())?;
            }
        }
        if !present {
            self.netlink.add_address(index, name, wanted).await.map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    /// Remove the daemon's device `name` (its entries and routes go with it).
    pub async fn remove(&self, name: &str) -> Result<(), String> {
        match self.link(name)? {
            Some(link) if ours(&link) => self.netlink.delete_link(link.index, name).await.map_err(|e| e.to_string()),
            _ => Ok(()),
        }
    }

    /// The daemon's entries on device `index`, and the slots others hold.
    pub fn observe(&self, index: u32) -> Result<(Entries, BTreeSet<Slot>), String> {
        let mut entries = Entries::default();
        let mut foreign = BTreeSet::new();
        for entry in blocking::neighbours(&self.requests).map_err(|e| e.to_string())? {
            let (true, IpAddr::V4(ip)) = (entry.index == index && entry.permanent, entry.ip) else { continue };
            match (entry.protocol, entry.mac) {
                (PROTOCOL, Some(mac)) => {
                    entries.neighbours.insert(ip, Mac::from_octets(mac));
                }
                _ => {
                    foreign.insert(Slot::Neighbour(ip));
                }
            }
        }
        for entry in blocking::fdb(&self.requests).map_err(|e| e.to_string())? {
            if entry.index != index || !entry.own || !entry.permanent || entry.mac == [0; 6] {
                continue;
            }
            let mac = Mac::from_octets(entry.mac);
            match (entry.extern_learned, entry.dst) {
                (true, Some(IpAddr::V4(dst))) => {
                    entries.fdb.insert(mac, dst);
                }
                _ => {
                    foreign.insert(Slot::Fdb(mac));
                }
            }
        }
        for route in blocking::routes(&self.requests).map_err(|e| e.to_string())? {
            let IpNetwork::V4(destination) = route.destination else { continue };
            let Ok(subnet) = Subnet::new(destination.network(), destination.prefix()) else { continue };
            match (route.oif == Some(index) && route.protocol == PROTOCOL, route.gateway) {
                (true, Some(IpAddr::V4(gateway))) => {
                    entries.routes.insert(subnet, gateway);
                }
                // The route of the device's own address, and routes of other links
                // to places no lease names, are no concern of the plan.
                _ => {
                    foreign.insert(Slot::Route(subnet));
                }
            }
        }
        Ok((entries, foreign))
    }

    /// Carry out actions on device `index`: each one's result, in order (`Err(errno)`).
    pub fn apply(&self, index: u32, actions: &[Action]) -> Result<Vec<Result<(), i32>>, String> {
        let requests = actions.iter().map(|action| request(index, action)).collect();
        blocking::batch(&self.requests, requests).map_err(|e| e.to_string())
    }
}

fn ours(link: &LinkState) -> bool {
    link.alias.as_deref() == Some(MARK) && link.vxlan.is_some()
}

fn request(index: u32, action: &Action) -> (RouteNetlinkMessage, u16) {
    use netns::neighbour::message;
    let replace = NLM_F_CREATE | NLM_F_REPLACE;
    let route = |subnet: Subnet, gateway: Ipv4Addr| RouteRequest {
        destination: IpNetwork::new(IpAddr::V4(subnet.network()), subnet.length()).expect("a subnet's length"),
        gateway: Some(IpAddr::V4(gateway)),
        oif: Some(index),
        protocol: PROTOCOL,
        onlink: true,
    };
    match *action {
        Action::SetNeighbour(ip, mac) => {
            (RouteNetlinkMessage::NewNeighbour(message::neighbour(index, ip.into(), mac.octets(), PROTOCOL)), replace)
        }
        Action::RemoveNeighbour(ip) => (RouteNetlinkMessage::DelNeighbour(message::neighbour_key(index, ip.into())), 0),
        Action::SetFdb(mac, vtep) => {
            (RouteNetlinkMessage::NewNeighbour(message::fdb(index, mac.octets(), vtep.into(), true)), replace)
        }
        Action::RemoveFdb(mac) => (RouteNetlinkMessage::DelNeighbour(message::fdb_key(index, mac.octets())), 0),
        Action::SetRoute(subnet, gateway) => {
            (RouteNetlinkMessage::NewRoute(netns::route::message(&route(subnet, gateway))), replace)
        }
        Action::RemoveRoute(subnet, gateway) => {
            (RouteNetlinkMessage::DelRoute(netns::route::message(&route(subnet, gateway))), 0)
        }
    }
}

/// Routing between the containers' bridge and the VXLAN device needs forwarding.
pub fn enable_forwarding() -> Result<(), String> {
    if netns::sysctl::read("net.ipv4.ip_forward").map_err(|e| e.to_string())?.as_deref() != Some("1") {
        netns::sysctl::write("net.ipv4.ip_forward", "1").map_err(|e| e.to_string())?;
        tracing::info!("net.ipv4.ip_forward set to 1");
    }
    Ok(())
}
