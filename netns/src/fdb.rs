//! Bridge forwarding databases.

use futures::TryStreamExt;
use rtnetlink::packet_route::neighbour::{NeighbourAttribute, NeighbourMessage};
use rtnetlink::packet_route::AddressFamily;

use crate::link::Mac;
use crate::{Error, Netlink, Result};

/// One FDB entry as the kernel reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FdbEntry {
    pub mac: Mac,
    /// The port (or device) the entry is on.
    pub port: u32,
    /// The bridge, when the entry is in a bridge's table.
    pub bridge: Option<u32>,
}

impl Netlink {
    pub async fn fdb(&self) -> Result<Vec<FdbEntry>> {
        let messages: Vec<NeighbourMessage> = self
            .handle()
            .neighbours()
            .get()
            .set_address_family(AddressFamily::Bridge)
            .execute()
            .try_collect()
            .await
            .map_err(|e| Error::netlink(format!("list fdb in {}", self.ns()), e))?;
        Ok(messages.iter().filter_map(parse).collect())
    }
}

fn parse(message: &NeighbourMessage) -> Option<FdbEntry> {
    let mut mac = None;
    let mut bridge = None;
    for attribute in &message.attributes {
        match attribute {
            NeighbourAttribute::LinkLayerAddress(bytes) => mac = bytes.as_slice().try_into().ok(),
            NeighbourAttribute::Controller(index) => bridge = Some(*index),
            _ => {}
        }
    }
    Some(FdbEntry { mac: mac?, port: message.header.ifindex, bridge })
}
