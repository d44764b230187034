//! Addresses on links.

use std::net::IpAddr;

use ipnetwork::IpNetwork;
use rtnetlink::packet_route::address::{AddressAttribute, AddressFlags, AddressMessage};

use crate::{Error, Netlink, Result};

/// An address as the kernel reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AddressState {
    pub index: u32,
    pub network: IpNetwork,
}

impl Netlink {
    /// IPv6 addresses skip duplicate address detection: in a lab they are declared
    /// unique, and DAD would keep them unusable for a second or more.
    pub async fn add_address(&self, index: u32, link: &str, network: IpNetwork) -> Result<()> {
        let mut request = self.handle().address().add(index, network.ip(), network.prefix());
        if network.is_ipv6() {
            request.message_mut().attributes.push(AddressAttribute::Flags(AddressFlags::Nodad));
        }
        request
            .execute()
            .await
            .map_err(|e| Error::netlink(format!("add address {network} to {}", self.qualified(link)), e))
    }

    pub async fn delete_address(&self, index: u32, link: &str, network: IpNetwork) -> Result<()> {
        let mut message = AddressMessage::default();
        message.header.family = match network {
            IpNetwork::V4(_) => rtnetlink::packet_route::AddressFamily::Inet,
            IpNetwork::V6(_) => rtnetlink::packet_route::AddressFamily::Inet6,
        };
        message.header.index = index;
        message.header.prefix_len = network.prefix();
        message.attributes.push(AddressAttribute::Local(network.ip()));
        if network.is_ipv6() {
            message.attributes.push(AddressAttribute::Address(network.ip()));
        }
        self.handle()
            .address()
            .del(message)
            .execute()
            .await
            .map_err(|e| Error::netlink(format!("delete address {network} from {}", self.qualified(link)), e))
    }
}

pub(crate) fn parse(message: &AddressMessage) -> Option<AddressState> {
    // IFA_LOCAL is the interface's own address; IFA_ADDRESS is the peer on
    // point-to-point links and equals IFA_LOCAL elsewhere. IPv6 only sends IFA_ADDRESS.
    let mut local: Option<IpAddr> = None;
    let mut address: Option<IpAddr> = None;
    for attribute in &message.attributes {
        match attribute {
            AddressAttribute::Local(ip) => local = Some(*ip),
            AddressAttribute::Address(ip) => address = Some(*ip),
            _ => {}
        }
    }
    let ip = local.or(address)?;
    let network = IpNetwork::new(ip, message.header.prefix_len).ok()?;
    Some(AddressState { index: message.header.index, network })
}
