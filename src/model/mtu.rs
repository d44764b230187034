//! What an overlay carries: a VXLAN device's MTU is its lower device's less the
//! encapsulation (50 bytes over an IPv4 underlay, 70 over IPv6), and everything on its
//! bridge (the ports, and the far ends of veth ports) must fit in it, or large packets
//! vanish in the overlay. Shared by validation (a lower device the file declares) and
//! planning (an existing lower device, whose MTU only the kernel knows).

use std::collections::BTreeMap;
use std::net::IpAddr;

use super::names::Place;
use super::topology::{Endpoint, LinkKind, NamespaceSpec};

/// The default MTU of a link the file gives none.
pub const DEFAULT: u32 = 1500;

/// The smallest MTU the kernel sets (IPv4's minimum): a VXLAN device's too, so a lower
/// device whose MTU less the encapsulation is below it cannot carry an overlay.
pub const MIN: u32 = 68;
pub const MAX: u32 = 65535;

/// Bytes of VXLAN encapsulation over an underlay of `local`'s IP version.
pub fn overhead(local: IpAddr) -> u32 {
    if local.is_ipv4() {
        50
    } else {
        70
    }
}

/// The largest packet a VXLAN device of VTEP `local` carries over a lower device of `lower_mtu`.
pub fn carried(lower_mtu: u32, local: IpAddr) -> u32 {
    lower_mtu.saturating_sub(overhead(local))
}

/// An interface on an overlay whose MTU the file set larger than the overlay carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TooLarge {
    pub end: Endpoint,
    pub mtu: u32,
}

/// Give the VXLAN device `device` the MTU `effective`, and the same to every port of
/// its bridge and far end of a veth port that has none; those set larger are returned.
pub fn spread(namespaces: &mut BTreeMap<Place, NamespaceSpec>, device: &Endpoint, effective: u32) -> Vec<TooLarge> {
    let Some(here) = namespaces.get_mut(&device.place) else { return Vec::new() };
    let Some(link) = here.links.get_mut(&device.name) else { return Vec::new() };
    link.mtu = Some(effective);
    let Some(bridge) = link.master.clone() else { return Vec::new() };
    let mut ends: Vec<Endpoint> = Vec::new();
    for (name, link) in &here.links {
        if link.master.as_ref() == Some(&bridge) && *name != device.name {
            ends.push(Endpoint { place: device.place.clone(), name: name.clone() });
            if let LinkKind::Veth { peer } = &link.kind {
                ends.push(peer.clone());
            }
        }
    }
    let mut too_large = Vec::new();
    for end in ends {
        let Some(link) = namespaces.get_mut(&end.place).and_then(|ns| ns.links.get_mut(&end.name)) else { continue };
        match link.mtu {
            Some(mtu) if mtu > effective => too_large.push(TooLarge { end, mtu }),
            Some(_) => {}
            None => link.mtu = Some(effective),
        }
    }
    too_large
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encapsulation_depends_on_the_underlay_version() {
        assert_eq!(carried(1500, "192.0.2.1".parse().unwrap()), 1450);
        assert_eq!(carried(1500, "2001:db8::1".parse().unwrap()), 1430);
        assert_eq!(carried(40, "192.0.2.1".parse().unwrap()), 0);
    }

    #[test]
    fn the_bridge_and_far_ends_take_the_overlay_mtu_unless_set() {
        let lab = crate::model::parse(
            "x.yaml",
            "name: x\nnodes:\n  ov:\n    bridges: {br0: {}}\n    vxlans:\n      vx: {vni: 1, underlay: host, dev: eth1, local: 10.0.0.1, bridge: br0}\n    interfaces:\n      p: {bridge: br0}\n      q: {bridge: br0}\n  a:\n    interfaces: {eth0: {mtu: 1400}}\n  b:\n    interfaces: {eth0: {mtu: 1500}}\nlinks:\n  - endpoints: [a:eth0, ov:p]\n  - endpoints: [b:eth0, ov:q]\n",
        )
        .unwrap();
        let mut namespaces = lab.namespaces;
        let device = Endpoint { place: "ov".parse().unwrap(), name: "vx".parse().unwrap() };
        let too_large = spread(&mut namespaces, &device, 1450);
        let mtu = |node: &str, name: &str| namespaces[&node.parse().unwrap()].links[&name.parse().unwrap()].mtu;
        assert_eq!((mtu("ov", "vx"), mtu("ov", "p"), mtu("a", "eth0")), (Some(1450), Some(1450), Some(1400)));
        let b = Endpoint { place: "b".parse().unwrap(), name: "eth0".parse().unwrap() };
        assert_eq!(too_large, [TooLarge { end: b, mtu: 1500 }]);
    }
}
