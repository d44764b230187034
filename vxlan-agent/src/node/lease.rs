//! Taking and keeping a node's lease in the store: the subnet `subnet::choose` picks,
//! written with create-if-absent under a store lease (TTL), so two nodes never hold
//! one subnet; the node's own old lease is replaced only while it still holds the
//! value read (delete-if-unchanged, then create).

use std::collections::BTreeMap;
use std::time::Duration;

use netlab_store::leases::{self, LeaseAttrs, NetworkConfig, Subnet};
use netlab_store::{KeyPath, Lease, Store, Value};

use crate::subnet::{choose, Choice};

/// A subnet this node holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Held {
    pub subnet: Subnet,
    pub lease: Lease,
    /// What the node wrote under the subnet's key.
    pub value: Value,
}

impl Held {
    pub fn key(&self) -> KeyPath {
        self.subnet.key()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LeaseError {
    #[error(transparent)]
    Store(#[from] netlab_store::Error),
    #[error("no free subnet in {0}: every one is leased")]
    Full(Subnet),
    #[error("every free subnet of {0} was taken by others meanwhile, {1} times over")]
    Contended(Subnet, u32),
}

/// The leases in the store, by subnet; unusable ones are skipped with a warning.
pub async fn list(store: &impl Store) -> Result<BTreeMap<Subnet, LeaseAttrs>, netlab_store::Error> {
    let mut found = BTreeMap::new();
    for (key, value) in store.list(leases::SUBNETS).await? {
        let Some(subnet) = Subnet::of_key(&key) else { continue };
        match LeaseAttrs::parse(&key, &value) {
            Ok(lease) => {
                found.insert(subnet, lease);
            }
            Err(problem) => tracing::warn!("{problem}; ignored"),
        }
    }
    Ok(found)
}

/// Take a subnet for a node with `attrs`: its own lease (by public address) first,
/// then `previous` if free, then a free one. Returns once written under a fresh
/// store lease of `ttl`.
pub async fn acquire(
    store: &impl Store,
    config: &NetworkConfig,
    attrs: LeaseAttrs,
    previous: Option<Subnet>,
    ttl: Duration,
) -> Result<Held, LeaseError> {
    const ROUNDS: u32 = 8;
    for _ in 0..ROUNDS {
        let current = list(store).await?;
        let choice = choose(config, &current, attrs.public_ip, previous, random());
        let candidates = match choice {
            Choice::Full => return Err(LeaseError::Full(config.network)),
            Choice::Keep(subnet) => {
                // Moved to a fresh store lease by compare-and-swap: the key never goes
                // away, so the other nodes never see this node's routes withdrawn.
                // Someone else's newer value stays, and the next round looks again.
                let key = subnet.key();
                let value = attrs.to_value(&key);
                let lease = store.grant(ttl).await?;
                let taken = match store.get(&key).await? {
                    Some(old) => store.replace(&key, &old, &value, Some(&lease)).await?,
                    None => store.create(&key, &value, Some(&lease)).await?,
                };
                if taken {
                    return Ok(Held { subnet, lease, value });
                }
                continue;
            }
            Choice::Try(order) => order,
        };
        let lease = store.grant(ttl).await?;
        for subnet in candidates {
            let key = subnet.key();
            let value = attrs.to_value(&key);
            if store.create(&key, &value, Some(&lease)).await? {
                return Ok(Held { subnet, lease, value });
            }
        }
    }
    Err(LeaseError::Contended(config.network, ROUNDS))
}

/// Move a key that still holds the node's value to a fresh store lease, when its own
/// lease was reported gone: the subnet (and the other nodes' routes to it) stay.
/// `None`: the key changed meanwhile.
pub async fn reattach(store: &impl Store, held: &Held, ttl: Duration) -> Result<Option<Lease>, netlab_store::Error> {
    let lease = store.grant(ttl).await?;
    Ok(store.replace(&held.key(), &held.value, &held.value, Some(&lease)).await?.then_some(lease))
}

/// Whether a lease (by its key's value now) is still this node's.
pub fn still_ours(held: &Held, now: Option<&Value>) -> bool {
    now.is_some_and(|value| value.trimmed() == held.value.trimmed())
}

/// Give a subnet back (a node reconfigured out of it): removed only while it holds
/// the node's value.
pub async fn release(store: &impl Store, held: &Held) -> Result<bool, netlab_store::Error> {
    store.delete_if(&held.key(), &held.value).await
}

/// A random start for the free-subnet search (nodes joining together should not all
/// race for the same key); not for secrets.
fn random() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u32(std::process::id());
    hasher.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use netlab_store::DirStore;
    use std::net::Ipv4Addr;

    fn config() -> NetworkConfig {
        NetworkConfig::new("10.244.0.0/22".parse().unwrap(), Some(24), None, None).unwrap()
    }

    fn attrs(ip: &str) -> LeaseAttrs {
        let public_ip: Ipv4Addr = ip.parse().unwrap();
        LeaseAttrs { public_ip, vni: 1, vtep_mac: crate::node::plan::vtep_mac(public_ip, 1) }
    }

    fn store() -> (DirStore, std::path::PathBuf) {
        let dir = std::env::temp_dir().join(format!("netlab-lease-{}-{}", std::process::id(), random()));
        std::fs::create_dir_all(&dir).unwrap();
        (DirStore::new(dir.clone(), Duration::ZERO), dir)
    }

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
    }

    #[test]
    fn nodes_get_distinct_subnets_until_the_network_is_full() {
        let (store, dir) = store();
        runtime().block_on(async {
            let ttl = Duration::from_secs(60);
            let mut subnets = std::collections::BTreeSet::new();
            for i in 2..5 {
                let held = acquire(&store, &config(), attrs(&format!("192.168.104.{i}")), None, ttl).await.unwrap();
                assert!(subnets.insert(held.subnet), "{} given twice", held.subnet);
            }
            let full = acquire(&store, &config(), attrs("192.168.104.9"), None, ttl).await;
            assert!(matches!(full, Err(LeaseError::Full(_))), "{full:?}");
            assert_eq!(list(&store).await.unwrap().len(), 3);
        });
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_restarted_node_keeps_its_subnet_under_a_new_lease_and_gives_it_back_on_release() {
        let (store, dir) = store();
        runtime().block_on(async {
            let ttl = Duration::from_secs(60);
            let first = acquire(&store, &config(), attrs("192.168.104.2"), None, ttl).await.unwrap();
            let again = acquire(&store, &config(), attrs("192.168.104.2"), None, ttl).await.unwrap();
            assert_eq!(again.subnet, first.subnet);
            assert!(still_ours(&again, store.get(&again.key()).await.unwrap().as_ref()));
            assert!(release(&store, &again).await.unwrap());
            assert!(list(&store).await.unwrap().is_empty());
        });
        std::fs::remove_dir_all(dir).unwrap();
    }
}
