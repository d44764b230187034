//! Static neighbour (ARP/NDP) entries, and FDB entries of VXLAN devices (MAC -> VTEP),
//! as the tutorial adds them by hand with `ip neigh` and `bridge fdb ... self dst`.

use std::net::IpAddr;

use rtnetlink::packet_route::neighbour::{
    NeighbourAddress, NeighbourAttribute, NeighbourFlags, NeighbourMessage, NeighbourState,
};
use rtnetlink::packet_route::route::RouteProtocol;
use rtnetlink::packet_route::AddressFamily;

use crate::link::Mac;
use crate::{Error, Netlink, Result};

/// A neighbour entry as the kernel reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NeighbourEntry {
    pub index: u32,
    pub ip: IpAddr,
    pub mac: Option<Mac>,
    pub permanent: bool,
    pub protocol: u8,
    /// The NUD state bits (NUD_REACHABLE, NUD_STALE, ...), for display.
    pub state: u16,
    /// NTF_EXT_LEARNED: put there by a control plane.
    pub extern_learned: bool,
}

/// An FDB entry: of a bridge (on one of its ports), or of a device's own table
/// (NTF_SELF), such as a VXLAN device's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FdbEntry {
    /// The port, or the device.
    pub index: u32,
    pub mac: Mac,
    /// The bridge, when the entry is in a bridge's table.
    pub bridge: Option<u32>,
    /// The remote VTEP.
    pub dst: Option<IpAddr>,
    pub permanent: bool,
    pub own: bool,
    /// NTF_EXT_LEARNED: put there by a control plane (the vxlan-agent marks its
    /// entries so), not by hand or by netlab.
    pub extern_learned: bool,
}

fn address(ip: IpAddr) -> NeighbourAddress {
    match ip {
        IpAddr::V4(v4) => NeighbourAddress::Inet(v4),
        IpAddr::V6(v6) => NeighbourAddress::Inet6(v6),
    }
}

impl Netlink {
    /// Add or replace a permanent entry, marked with `protocol`.
    pub async fn set_neighbour(&self, index: u32, device: &str, ip: IpAddr, mac: Mac, protocol: u8) -> Result<()> {
        let mut request = self.handle().neighbours().add(index, ip).link_layer_address(&mac).replace();
        request.message_mut().attributes.push(NeighbourAttribute::Protocol(RouteProtocol::from(protocol)));
        request
            .execute()
            .await
            .map_err(|e| Error::netlink(format!("set neighbour {ip} on {}", self.qualified(device)), e))
    }

    pub async fn delete_neighbour(&self, index: u32, device: &str, ip: IpAddr) -> Result<()> {
        let mut message = NeighbourMessage::default();
        message.header.family = match ip {
            IpAddr::V4(_) => AddressFamily::Inet,
            IpAddr::V6(_) => AddressFamily::Inet6,
        };
        message.header.ifindex = index;
        message.attributes.push(NeighbourAttribute::Destination(address(ip)));
        self.handle()
            .neighbours()
            .del(message)
            .execute()
            .await
            .map_err(|e| Error::netlink(format!("delete neighbour {ip} on {}", self.qualified(device)), e))
    }

    /// `bridge fdb replace MAC dev DEVICE self permanent dst DST`.
    pub async fn set_fdb(&self, index: u32, device: &str, mac: Mac, dst: IpAddr) -> Result<()> {
        let mut request = self.handle().neighbours().add_bridge(index, &mac).flags(NeighbourFlags::Own).replace();
        request.message_mut().attributes.push(NeighbourAttribute::Destination(address(dst)));
        request.execute().await.map_err(|e| Error::netlink(format!("set fdb entry on {}", self.qualified(device)), e))
    }

    pub async fn delete_fdb(&self, index: u32, device: &str, mac: Mac, dst: Option<IpAddr>) -> Result<()> {
        let mut message = NeighbourMessage::default();
        message.header.family = AddressFamily::Bridge;
        message.header.ifindex = index;
        message.header.flags = NeighbourFlags::Own;
        message.attributes.push(NeighbourAttribute::LinkLayerAddress(mac.to_vec()));
        if let Some(dst) = dst {
            message.attributes.push(NeighbourAttribute::Destination(address(dst)));
        }
        self.handle()
            .neighbours()
            .del(message)
            .execute()
            .await
            .map_err(|e| Error::netlink(format!("delete fdb entry on {}", self.qualified(device)), e))
    }
}

pub fn parse_neighbour(message: &NeighbourMessage) -> Option<NeighbourEntry> {
    let mut ip = None;
    let mut mac = None;
    let mut protocol = 0;
    for attribute in &message.attributes {
        match attribute {
            NeighbourAttribute::Destination(address) => ip = ip_of(address),
            NeighbourAttribute::LinkLayerAddress(bytes) => mac = bytes.as_slice().try_into().ok(),
            NeighbourAttribute::Protocol(p) => protocol = u8::from(*p),
            _ => {}
        }
    }
    Some(NeighbourEntry {
        index: message.header.ifindex,
        ip: ip?,
        mac,
        permanent: message.header.state == NeighbourState::Permanent,
        protocol,
        state: u16::from(message.header.state),
        extern_learned: message.header.flags.contains(NeighbourFlags::ExtLearned),
    })
}

/// The IP address of an NDA_DST. In AF_BRIDGE messages (FDB entries, VXLAN misses)
/// it comes as raw bytes, 4 or 16, since the family does not say which.
pub fn ip_of(address: &NeighbourAddress) -> Option<IpAddr> {
    match address {
        NeighbourAddress::Inet(v4) => Some(IpAddr::V4(*v4)),
        NeighbourAddress::Inet6(v6) => Some(IpAddr::V6(*v6)),
        NeighbourAddress::Other(bytes) => match bytes.len() {
            4 => <[u8; 4]>::try_from(bytes.as_slice()).ok().map(IpAddr::from),
            16 => <[u8; 16]>::try_from(bytes.as_slice()).ok().map(IpAddr::from),
            _ => None,
        },
        _ => None,
    }
}

pub fn parse_fdb(message: &NeighbourMessage) -> Option<FdbEntry> {
    let mut mac = None;
    let mut dst = None;
    let mut bridge = None;
    for attribute in &message.attributes {
        match attribute {
            NeighbourAttribute::LinkLayerAddress(bytes) => mac = bytes.as_slice().try_into().ok(),
            NeighbourAttribute::Controller(index) => bridge = Some(*index),
            NeighbourAttribute::Destination(address) => dst = ip_of(address),
            _ => {}
        }
    }
    Some(FdbEntry {
        index: message.header.ifindex,
        mac: mac?,
        bridge,
        dst,
        // A bit, not the whole state: `bridge fdb add ... permanent` sends NUD_NOARP
        // with it, and the kernel keeps both.
        permanent: u16::from(message.header.state) & u16::from(NeighbourState::Permanent) != 0,
        own: message.header.flags.contains(NeighbourFlags::Own),
        extern_learned: message.header.flags.contains(NeighbourFlags::ExtLearned),
    })
}

/// Messages for `blocking::batch`, for callers that change many entries at once.
pub mod message {
    use super::*;

    fn family(ip: IpAddr) -> AddressFamily {
        match ip {
            IpAddr::V4(_) => AddressFamily::Inet,
            IpAddr::V6(_) => AddressFamily::Inet6,
        }
    }

    /// A permanent neighbour entry marked with `protocol` (send with NLM_F_REPLACE).
    pub fn neighbour(index: u32, ip: IpAddr, mac: Mac, protocol: u8) -> NeighbourMessage {
        let mut message = NeighbourMessage::default();
        message.header.family = family(ip);
        message.header.ifindex = index;
        message.header.state = NeighbourState::Permanent;
        message.attributes.push(NeighbourAttribute::Destination(address(ip)));
        message.attributes.push(NeighbourAttribute::LinkLayerAddress(mac.to_vec()));
        message.attributes.push(NeighbourAttribute::Protocol(RouteProtocol::from(protocol)));
        message
    }

    pub fn neighbour_key(index: u32, ip: IpAddr) -> NeighbourMessage {
        let mut message = NeighbourMessage::default();
        message.header.family = family(ip);
        message.header.ifindex = index;
        message.attributes.push(NeighbourAttribute::Destination(address(ip)));
        message
    }

    /// A permanent entry in a device's own FDB (NTF_SELF) towards `dst`, flagged as
    /// externally learned when a control plane owns it.
    pub fn fdb(index: u32, mac: Mac, dst: IpAddr, extern_learned: bool) -> NeighbourMessage {
        let mut message = fdb_key(index, mac);
        message.header.state = NeighbourState::Permanent;
        if extern_learned {
            message.header.flags |= NeighbourFlags::ExtLearned;
        }
        message.attributes.push(NeighbourAttribute::Destination(address(dst)));
        message
    }

    pub fn fdb_key(index: u32, mac: Mac) -> NeighbourMessage {
        let mut message = NeighbourMessage::default();
        message.header.family = AddressFamily::Bridge;
        message.header.ifindex = index;
        message.header.flags = NeighbourFlags::Own;
        message.attributes.push(NeighbourAttribute::LinkLayerAddress(mac.to_vec()));
        message
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `bridge fdb add MAC dev vxlan1 self permanent dst IP` (iproute2) stores NUD_NOARP
    /// with NUD_PERMANENT; such an entry is permanent.
    #[test]
    fn an_fdb_entry_is_permanent_by_its_bit() {
        let mut message = NeighbourMessage::default();
        message.header.family = AddressFamily::Bridge;
        message.header.flags = NeighbourFlags::Own;
        message.header.state = NeighbourState::from(0x80u16 | 0x40);
        message.attributes.push(NeighbourAttribute::LinkLayerAddress(vec![2, 0x42, 0xc0, 0xa8, 0, 3]));
        assert!(parse_fdb(&message).unwrap().permanent);
        message.header.state = NeighbourState::from(0x40u16);
        assert!(!parse_fdb(&message).unwrap().permanent);
    }
}
