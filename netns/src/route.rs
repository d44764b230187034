//! Routes in the main table.

use std::net::IpAddr;

use ipnetwork::IpNetwork;
use rtnetlink::packet_route::route::{RouteAddress, RouteAttribute, RouteFlags, RouteMessage, RouteProtocol};
use rtnetlink::packet_route::AddressFamily;
use rtnetlink::RouteMessageBuilder;

use crate::{Error, Netlink, Result};

const MAIN_TABLE: u32 = 254;

/// A route as the kernel reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouteState {
    pub destination: IpNetwork,
    pub gateway: Option<IpAddr>,
    pub oif: Option<u32>,
    pub protocol: u8,
}

/// A route to add or delete.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouteRequest {
    pub destination: IpNetwork,
    pub gateway: Option<IpAddr>,
    pub oif: Option<u32>,
    pub protocol: u8,
    /// The gateway is on the link even though no address of the link covers it
    /// (flannel's `via <subnet>.0 dev flannel.1 onlink`).
    pub onlink: bool,
}

impl Netlink {
    pub async fn add_route(&self, route: &RouteRequest) -> Result<()> {
        self.handle()
            .route()
            .add(message(route))
            .execute()
            .await
            .map_err(|e| Error::netlink(format!("add route {} in {}", describe(route), self.ns()), e))
    }

    pub async fn delete_route(&self, route: &RouteRequest) -> Result<()> {
        self.handle()
            .route()
            .del(message(route))
            .execute()
            .await
            .map_err(|e| Error::netlink(format!("delete route {} in {}", describe(route), self.ns()), e))
    }
}

fn describe(route: &RouteRequest) -> String {
    match route.gateway {
        Some(gateway) => format!("{} via {gateway}", route.destination),
        None => route.destination.to_string(),
    }
}

/// The netlink message for a route (for `blocking::batch`, with NLM_F_CREATE|NLM_F_REPLACE
/// to add or replace).
pub fn message(route: &RouteRequest) -> RouteMessage {
    let mut builder = RouteMessageBuilder::<IpAddr>::new()
        .destination_prefix(route.destination.network(), route.destination.prefix())
        .expect("prefix length of a valid network")
        .protocol(RouteProtocol::from(route.protocol))
        .table_id(MAIN_TABLE);
    if let Some(gateway) = route.gateway {
        builder = builder.gateway(gateway).expect("gateway family checked by the caller");
    }
    if let Some(oif) = route.oif {
        builder = builder.output_interface(oif);
    }
    let mut message = builder.build();
    if route.onlink {
        message.header.flags.insert(RouteFlags::Onlink);
    }
    message
}

pub(crate) fn parse(message: &RouteMessage) -> Option<RouteState> {
    let mut destination: Option<IpAddr> = None;
    let mut gateway: Option<IpAddr> = None;
    let mut oif = None;
    let mut table = u32::from(message.header.table);
    for attribute in &message.attributes {
        match attribute {
            RouteAttribute::Destination(address) => destination = ip(address),
            RouteAttribute::Gateway(address) => gateway = ip(address),
            RouteAttribute::Oif(index) => oif = Some(*index),
            RouteAttribute::Table(id) => table = *id,
            _ => {}
        }
    }
    if table != MAIN_TABLE {
        return None;
    }
    let destination = destination.unwrap_or(match message.header.address_family {
        AddressFamily::Inet6 => IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED),
        _ => IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
    });
    let destination = IpNetwork::new(destination, message.header.destination_prefix_length).ok()?;
    Some(RouteState { destination, gateway, oif, protocol: u8::from(message.header.protocol) })
}

fn ip(address: &RouteAddress) -> Option<IpAddr> {
    match address {
        RouteAddress::Inet(v4) => Some(IpAddr::V4(*v4)),
        RouteAddress::Inet6(v6) => Some(IpAddr::V6(*v6)),
        _ => None,
    }
}
