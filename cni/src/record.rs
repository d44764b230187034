//! What ADD did for one attachment, saved before it touches the kernel, so DEL, CHECK
//! and GC know it even after the subnet file changed (a new lease, another MTU) and
//! without `prevResult`.

use std::net::Ipv4Addr;
use std::path::PathBuf;

use ipnetwork::Ipv4Network;
use netns::name::LinkName;
use serde::{Deserialize, Serialize};

use crate::names::AttachmentId;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    pub id: AttachmentId,
    pub netns: PathBuf,
    /// The container's address with the subnet's length.
    pub address: Ipv4Network,
    pub gateway: Ipv4Addr,
    /// The cluster network, routed via the gateway.
    pub cluster: Ipv4Network,
    pub bridge: LinkName,
    pub host_veth: LinkName,
    pub default_route: bool,
    pub mtu: u32,
}

/// The record as stored (JSON), before its names are checked again.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawRecord {
    container_id: String,
    ifname: String,
    netns: PathBuf,
    address: Ipv4Network,
    gateway: Ipv4Addr,
    cluster: Ipv4Network,
    bridge: String,
    host_veth: String,
    default_route: bool,
    mtu: u32,
}

impl Record {
    /// The container's routes, each via the gateway: the cluster network, and the
    /// default route when the network is the container's gateway.
    pub fn routes(&self) -> Vec<Ipv4Network> {
        let mut routes = vec![self.cluster];
        if self.default_route {
            routes.push(Ipv4Network::new(Ipv4Addr::UNSPECIFIED, 0).expect("0.0.0.0/0"));
        }
        routes
    }

    pub fn to_json(&self) -> Vec<u8> {
        let raw = RawRecord {
            container_id: self.id.container.to_string(),
            ifname: self.id.ifname.to_string(),
            netns: self.netns.clone(),
            address: self.address,
            gateway: self.gateway,
            cluster: self.cluster,
            bridge: self.bridge.to_string(),
            host_veth: self.host_veth.to_string(),
            default_route: self.default_route,
            mtu: self.mtu,
        };
        serde_json::to_vec_pretty(&raw).expect("a record serialises")
    }

    pub fn from_json(bytes: &[u8]) -> Result<Record, String> {
        let raw: RawRecord = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
        Ok(Record {
            id: AttachmentId { container: raw.container_id.parse()?, ifname: raw.ifname.parse()? },
            netns: raw.netns,
            address: raw.address,
            gateway: raw.gateway,
            cluster: raw.cluster,
            bridge: raw.bridge.parse()?,
            host_veth: raw.host_veth.parse()?,
            default_route: raw.default_route,
            mtu: raw.mtu,
        })
    }
}

#[cfg(test)]
pub(crate) fn sample() -> Record {
    let id = AttachmentId { container: "c1".parse().unwrap(), ifname: "eth0".parse().unwrap() };
    Record {
        host_veth: id.host_veth(),
        id,
        netns: "/run/netns/c1".into(),
        address: "10.244.1.2/24".parse().unwrap(),
        gateway: "10.244.1.1".parse().unwrap(),
        cluster: "10.244.0.0/16".parse().unwrap(),
        bridge: "cni0".parse().unwrap(),
        default_route: true,
        mtu: 1450,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_checks_names_again() {
        let record = sample();
        assert_eq!(Record::from_json(&record.to_json()), Ok(record.clone()));
        assert_eq!(record.routes().len(), 2);
        let text = String::from_utf8(record.to_json()).unwrap();
        assert!(text.contains("\"address\": \"10.244.1.2/24\""), "{text}");
        let tampered = text.replace(record.host_veth.as_str(), "../../etc/x");
        assert!(Record::from_json(tampered.as_bytes()).is_err());
        assert!(Record::from_json(b"{}").is_err());
    }
}
