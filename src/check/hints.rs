//! What netlab knows that explains a failed check: the address it tried is on no
//! interface the lab declares, or an overlay that takes its entries from a store has
//! no vxlan-agent running.

use std::net::IpAddr;

use crate::kernel_place::KernelPlace;
use crate::model::{Check, Endpoint, LinkKind, Place, Topology};

/// Notes for a failed `check`; `agent_running` says whether an agent serves a device,
/// `holder` what the kernel says of the interface the file puts an address on.
pub fn notes(
    topology: &Topology,
    check: &Check,
    agent_running: impl Fn(&Endpoint) -> bool,
    holder: impl Fn(&Endpoint, IpAddr) -> Option<String>,
) -> Vec<String> {
    let mut notes = Vec::new();
    let target = match check {
        Check::Ping { to, .. } | Check::Overlay { to, .. } => Some(*to),
        Check::Tcp { to, .. } | Check::Udp { to, .. } => Some(to.ip()),
        Check::Fdb { .. } | Check::Pingall { .. } => None,
    };
    if let Some(ip) = target {
        match declaring(topology, ip) {
            None => notes.push(format!("{ip} is on no interface of lab {}", topology.name)),
            Some(end) => notes.extend(holder(&end, ip)),
        }
    }
    if !matches!(check, Check::Fdb { .. }) {
        for device in stored_overlays(topology).into_iter().filter(|d| !agent_running(d)) {
            notes.push(format!("no vxlan-agent is running for {device}, whose entries come only from its store"));
        }
    }
    notes
}

/// The interface the file puts `ip` on.
fn declaring(topology: &Topology, ip: IpAddr) -> Option<Endpoint> {
    topology.namespaces.iter().find_map(|(place, namespace)| {
        let (name, _) = namespace.links.iter().find(|(_, link)| link.addresses.iter().any(|a| a.ip() == ip))?;
        Some(Endpoint { place: place.clone(), name: name.clone() })
    })
}

/// What the kernel has of the interface `end` that the file puts `ip` on: its namespace
/// or the link missing, the link down, the address not on it; nothing when it is all
/// there (or the kernel cannot be asked).
pub fn holder(end: &Endpoint, ip: IpAddr) -> Option<String> {
    use netns::namespace::{presence, Presence};
    if let Place::Node(node) = &end.place {
        if presence(node.as_str()) != Presence::Mounted {
            return Some(format!("the namespace {node}, where {ip} belongs, is missing"));
        }
    }
    let read = netns::thread::in_one(end.place.to_netns(), |_| {
        let socket = netns::Netlink::open_socket_here()?;
        Ok((netns::blocking::links(&socket)?, netns::blocking::addresses(&socket)?))
    });
    let (links, addresses) = read.ok()?;
    let Some(link) = links.iter().find(|l| l.name == end.name.as_str()) else {
        return Some(format!("{end}, where {ip} belongs, is missing"));
    };
    if !link.up {
        return Some(format!("{end}, where {ip} belongs, is down"));
    }
    if !addresses.iter().any(|a| a.index == link.index && a.network.ip() == ip) {
        return Some(format!("{ip} belongs on {end}, which does not have it"));
    }
    None
}

/// VXLAN devices with a `store:`.
fn stored_overlays(topology: &Topology) -> Vec<Endpoint> {
    let mut devices = Vec::new();
    for (place, namespace) in &topology.namespaces {
        for (name, link) in &namespace.links {
            if matches!(&link.kind, LinkKind::Vxlan(vxlan) if vxlan.store.is_some()) {
                devices.push(Endpoint { place: place.clone(), name: name.clone() });
            }
        }
    }
    devices
}

/// Whether a vxlan-agent serves `device`: an agent holds an exclusive lock on
/// `/run/vxlan-agent/NETNS:DEVICE.lock` (its default status folder) while it runs,
/// and the kernel lets it go when the agent ends, however it ends.
pub fn agent_running(device: &Endpoint) -> bool {
    use nix::fcntl::{Flock, FlockArg, OFlag};
    let netns = match &device.place {
        Place::Host => String::new(),
        Place::Node(node) => node.to_string(),
    };
    let path = format!("/run/vxlan-agent/{netns}:{}.lock", device.name);
    // No symlink following, no blocking on a special file put there.
    let flags = OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC;
    let Ok(fd) = nix::fcntl::open(path.as_str(), flags, nix::sys::stat::Mode::empty()) else { return false };
    // SAFETY: `open` just returned this descriptor, owned by nothing else.
    let file = unsafe { <std::fs::File as std::os::fd::FromRawFd>::from_raw_fd(fd) };
    match Flock::lock(file, FlockArg::LockSharedNonblock) {
        Ok(_released_on_drop) => false,
        Err((_, errno)) => errno == nix::errno::Errno::EWOULDBLOCK,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topology() -> Topology {
        let text = "name: t
nodes:
  A: {interfaces: {eth0: {addresses: [10.0.0.1/24]}}}
  B:
    interfaces: {eth0: {addresses: [10.0.0.2/24]}}
    bridges: {br0: {}}
    vxlans:
      vxlan1: {vni: 42, dev: eth0, local: 10.0.0.2, bridge: br0, store: 'dir:/tmp/s', learning: false}
links:
  - endpoints: [A:eth0, B:eth0]
";
        crate::model::parse("t.yaml", text).expect("valid")
    }

    fn ping(to: &str) -> Check {
        Check::Ping { from: "A".parse().unwrap(), to: to.parse().unwrap(), to_label: to.into() }
    }

    #[test]
    fn an_address_of_no_interface_is_named() {
        let notes = notes(&topology(), &ping("10.0.0.9"), |_| true, |_, _| None);
        assert_eq!(notes, ["10.0.0.9 is on no interface of lab t"]);
        assert!(super::notes(&topology(), &ping("10.0.0.2"), |_| true, |_, _| None).is_empty());
        let missing = super::notes(&topology(), &ping("10.0.0.2"), |_| true, |end, ip| Some(format!("{ip} on {end}")));
        assert_eq!(missing, ["10.0.0.2 on B:eth0"]);
    }

    #[test]
    fn an_overlay_with_a_store_and_no_agent_is_named() {
        let notes = notes(&topology(), &ping("10.0.0.2"), |_| false, |_, _| None);
        assert_eq!(notes, ["no vxlan-agent is running for B:vxlan1, whose entries come only from its store"]);
    }
}
