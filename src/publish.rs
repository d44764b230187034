//! Publishing a lab's overlay endpoints to the overlays' stores (arp/IP -> MAC,
//! fdb/MAC -> VTEP), so that the vxlan-agents on other hosts can reach them, and
//! withdrawing them when they go. The record remembers what was published, so
//! destroy withdraws exactly that, even without the file.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use netlab_store::endpoints::{self, Endpoint, Mac};
use netlab_store::{AnyStore, StoreUrl, Tls};
use serde::{Deserialize, Serialize};

use crate::kernel_place::KernelPlace;
use crate::model::{Attachment, Topology};

#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("read the MAC of {0}: no such link")]
    NoSuchLink(String),
    #[error("read the MAC of {what}")]
    ReadMac {
        what: String,
        #[source]
        source: netns::Error,
    },
    #[error("read the MAC of an interface: a thread failed")]
    Thread(#[from] tokio::task::JoinError),
    #[error("read {url}")]
    List {
        url: Box<StoreUrl>,
        #[source]
        source: Box<netlab_store::Error>,
    },
    #[error("open {url}")]
    Open {
        url: Box<StoreUrl>,
        #[source]
        source: Box<netlab_store::Error>,
    },
    #[error("{verb} {ip} ({mac}) {preposition} {url}")]
    Store {
        verb: &'static str,
        preposition: &'static str,
        ip: std::net::IpAddr,
        mac: Mac,
        url: Box<StoreUrl>,
        #[source]
        source: Box<netlab_store::Error>,
    },
}

type Result<T, E = PublishError> = std::result::Result<T, E>;

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Publication {
    pub store: StoreUrl,
    /// How to reach an etcd store over TLS; kept so destroy can withdraw without the file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<Tls>,
    pub endpoint: Endpoint,
}

/// The lab's publications; MACs the file leaves to the kernel are read back.
pub async fn wanted(topology: &Topology) -> Result<BTreeSet<Publication>> {
    let mut wanted = BTreeSet::new();
    for attachment in topology.attachments() {
        let mac = match attachment.mac {
            Some(mac) => mac,
            None => kernel_mac(&attachment).await?,
        };
        for ip in &attachment.ips {
            let endpoint = Endpoint { ip: *ip, mac, vtep: attachment.vtep };
            wanted.insert(Publication { store: attachment.store.clone(), tls: attachment.tls.clone(), endpoint });
        }
    }
    Ok(wanted)
}

pub(crate) async fn kernel_mac(attachment: &Attachment) -> Result<Mac> {
    let place = attachment.interface.place.clone();
    let name = attachment.interface.name.to_string();
    let what = attachment.interface.to_string();
    let links = tokio::task::spawn_blocking(move || {
        netns::thread::in_one(place.to_netns(), |_| netns::blocking::links(&netns::Netlink::open_socket_here()?))
    })
    .await?
    .map_err(|source| PublishError::ReadMac { what: what.clone(), source })?;
    links
        .into_iter()
        .find(|link| link.name == name)
        .and_then(|link| link.mac)
        .map(Mac::from_octets)
        .ok_or(PublishError::NoSuchLink(what))
}

type StoreAccess = (StoreUrl, Option<Tls>);

fn by_store(publications: impl IntoIterator<Item = Publication>) -> BTreeMap<StoreAccess, Vec<Endpoint>> {
    let mut grouped: BTreeMap<StoreAccess, Vec<Endpoint>> = BTreeMap::new();
    for publication in publications {
        grouped.entry((publication.store, publication.tls)).or_default().push(publication.endpoint);
    }
    grouped
}

pub(crate) fn open((url, tls): &StoreAccess) -> Result<AnyStore> {
    AnyStore::open(url, tls.clone(), Duration::ZERO)
        .map_err(|source| PublishError::Open { url: Box::new(url.clone()), source: Box::new(source) })
}

/// Publish `wanted` and withdraw what was published before but is not wanted now.
pub async fn converge(wanted: &BTreeSet<Publication>, before: &BTreeSet<Publication>) -> Result<()> {
    change(wanted.iter().cloned(), Change::Publish).await?;
    change(before.difference(wanted).cloned(), Change::Withdraw).await
}

/// Remove publications from their stores (keys that hold someone else's value stay).
pub async fn withdraw(publications: &BTreeSet<Publication>) -> Result<()> {
    change(publications.iter().cloned(), Change::Withdraw).await
}

#[derive(Clone, Copy)]
enum Change {
    Publish,
    Withdraw,
}

async fn change(publications: impl IntoIterator<Item = Publication>, change: Change) -> Result<()> {
    for (access, endpoints) in by_store(publications) {
        let store = open(&access)?;
        let url = &access.0;
        for endpoint in endpoints {
            let (done, (verb, preposition)) = match change {
                Change::Publish => (endpoints::publish(&store, &endpoint).await, ("publish", "to")),
                Change::Withdraw => (endpoints::withdraw(&store, &endpoint).await, ("withdraw", "from")),
            };
            done.map_err(|source| PublishError::Store {
                verb,
                preposition,
                ip: endpoint.ip,
                mac: endpoint.mac,
                url: Box::new(url.clone()),
                source: Box::new(source),
            })?;
        }
    }
    Ok(())
}
