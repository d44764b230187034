//! The flannel keyspace's names, as flannel lays them out under its prefix
//! (`/coreos.com/network` by default): the cluster network's `config`, and one
//! `subnets/<network>-<length>` key per node's lease (`subnets/10.244.5.0-24`).

use std::net::Ipv4Addr;

use crate::error::Result;
use crate::key::KeyPath;

/// flannel's key prefix, the default for this keyspace on etcd.
pub const DEFAULT_PREFIX: &str = "/coreos.com/network";
/// The folder of the leases.
pub const SUBNETS: &str = "subnets";

/// The key of the cluster network's configuration.
pub fn config_key() -> KeyPath {
    KeyPath::new("config").expect("a plain name")
}

/// The key of the lease of `network/length`.
pub fn subnet_key(network: Ipv4Addr, length: u8) -> Result<KeyPath> {
    KeyPath::join(SUBNETS, &format!("{network}-{length}"))
}

/// The subnet a lease key names, if it names one.
pub fn subnet_of(key: &KeyPath) -> Option<(Ipv4Addr, u8)> {
    if key.folder() != Some(SUBNETS) {
        return None;
    }
    let (network, length) = key.name().split_once('-')?;
    let length: u8 = length.parse().ok().filter(|l| *l <= 32)?;
    Some((network.parse().ok()?, length))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lease_keys_round_trip() {
        let key = subnet_key("10.244.5.0".parse().unwrap(), 24).unwrap();
        assert_eq!(key.as_str(), "subnets/10.244.5.0-24");
        assert_eq!(subnet_of(&key), Some(("10.244.5.0".parse().unwrap(), 24)));
        for bad in ["subnets/10.244.5.0-33", "subnets/10.244.5-24", "arp/10.244.5.0-24", "config"] {
            assert_eq!(subnet_of(&KeyPath::new(bad).unwrap()), None, "{bad}");
        }
    }
}
