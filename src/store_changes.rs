//! What publishing would change in the overlay stores: endpoints the lab attaches that
//! a store lacks (or holds with other values), and endpoints published before that the
//! lab no longer attaches but a store still holds. `plan` and `apply` show them after
//! the kernel's changes, `status` compares them, `plan --output sh` writes them as
//! `vxlan-agent publish|withdraw` commands.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::IpAddr;

use netlab_store::endpoints::{self, Mac};
use netlab_store::{StoreUrl, Tls};
use serde::Serialize;

use crate::model::{Endpoint, Topology};
use crate::publish::{self, Publication, PublishError};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum StoreAction {
    Publish,
    Withdraw,
}

/// One endpoint to write to, or remove from, a store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StoreChange {
    pub action: StoreAction,
    pub store: StoreUrl,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<Tls>,
    pub ip: IpAddr,
    /// `None` before the interface exists: the kernel will choose its MAC.
    pub mac: Option<Mac>,
    pub vtep: IpAddr,
    /// The interface published (unknown for a withdrawal: only the record remains).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interface: Option<Endpoint>,
}

impl fmt::Display for StoreChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mac = match (&self.mac, &self.interface) {
            (Some(mac), _) => mac.to_string(),
            (None, Some(interface)) => format!("(the MAC of {interface})"),
            (None, None) => "(a MAC)".to_string(),
        };
        match self.action {
            StoreAction::Publish => {
                write!(f, "+ endpoint {} {mac} behind {} in store {}", self.ip, self.vtep, self.store)
            }
            StoreAction::Withdraw => {
                write!(f, "- endpoint {} {mac} behind {} from store {}", self.ip, self.vtep, self.store)
            }
        }
    }
}

/// What publishing would change, and the stores that could not be read: for those,
/// every endpoint the lab attaches is listed as to publish (publishing is idempotent),
/// and nothing as to withdraw.
#[derive(Debug, Default)]
pub struct Pending {
    pub changes: Vec<StoreChange>,
    /// Each store that could not be read, with why.
    pub unread: Vec<(StoreUrl, String)>,
}

/// What publishing the lab's endpoints would change, given what was published before.
/// Reads every store concerned once; a store that cannot be read is an error unless
/// `lenient` (a plan or a status, which only look), where it goes to `unread`.
pub async fn pending(
    topology: &Topology,
    before: &BTreeSet<Publication>,
    lenient: bool,
) -> Result<Pending, PublishError> {
    let mut wanted = Vec::new();
    for attachment in topology.attachments() {
        let mac = match attachment.mac {
            Some(mac) => Some(mac),
            // Not made yet (a plan before the first apply): the kernel will choose.
            None => publish::kernel_mac(&attachment).await.ok(),
        };
        for ip in &attachment.ips {
            wanted.push(StoreChange {
                action: StoreAction::Publish,
                store: attachment.store.clone(),
                tls: attachment.tls.clone(),
                ip: *ip,
                mac,
                vtep: attachment.vtep,
                interface: Some(attachment.interface.clone()),
            });
        }
    }
    let kept: BTreeSet<(StoreUrl, IpAddr, Option<Mac>, IpAddr)> =
        wanted.iter().map(|w| (w.store.clone(), w.ip, w.mac, w.vtep)).collect();
    let gone = before
        .iter()
        .filter(|p| !kept.contains(&(p.store.clone(), p.endpoint.ip, Some(p.endpoint.mac), p.endpoint.vtep)));
    let withdrawn: Vec<StoreChange> = gone
        .map(|p| StoreChange {
            action: StoreAction::Withdraw,
            store: p.store.clone(),
            tls: p.tls.clone(),
            ip: p.endpoint.ip,
            mac: Some(p.endpoint.mac),
            vtep: p.endpoint.vtep,
            interface: None,
        })
        .collect();
    let mut tables = BTreeMap::new();
    let mut unread = Vec::new();
    for change in wanted.iter().chain(&withdrawn) {
        if tables.contains_key(&change.store) || unread.iter().any(|(url, _)| *url == change.store) {
            continue;
        }
        match read(&change.store, &change.tls).await {
            Ok(table) => {
                tables.insert(change.store.clone(), table);
            }
            Err(e) if lenient => unread.push((change.store.clone(), crate::chain_text(&e))),
            Err(e) => return Err(e),
        }
    }
    // Held: the store has the endpoint's values. An unread store holds nothing known.
    let held = |change: &StoreChange| {
        let Some(table) = tables.get(&change.store) else { return false };
        change.mac.is_some_and(|mac| table.mac_of(change.ip) == Some(mac) && table.vtep_of(mac) == Some(change.vtep))
    };
    let mut changes: Vec<StoreChange> = wanted.into_iter().filter(|w| !held(w)).collect();
    changes.extend(withdrawn.into_iter().filter(held));
    Ok(Pending { changes, unread })
}

async fn read(url: &StoreUrl, tls: &Option<Tls>) -> Result<endpoints::Table, PublishError> {
    let store = publish::open(&(url.clone(), tls.clone()))?;
    endpoints::list(&store)
        .await
        .map_err(|source| PublishError::List { url: Box::new(url.clone()), source: Box::new(source) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_change_says_what_it_writes_where() {
        let change = StoreChange {
            action: StoreAction::Publish,
            store: "dir:/run/s".parse().unwrap(),
            tls: None,
            ip: "11.11.11.2".parse().unwrap(),
            mac: None,
            vtep: "192.168.104.2".parse().unwrap(),
            interface: Some(Endpoint { place: "ct1".parse().unwrap(), name: "eth0".parse().unwrap() }),
        };
        assert_eq!(
            change.to_string(),
            "+ endpoint 11.11.11.2 (the MAC of ct1:eth0) behind 192.168.104.2 in store dir:/run/s"
        );
        let withdraw = StoreChange {
            action: StoreAction::Withdraw,
            mac: Some("02:42:c0:a8:00:02".parse().unwrap()),
            interface: None,
            ..change
        };
        assert_eq!(
            withdraw.to_string(),
            "- endpoint 11.11.11.2 02:42:c0:a8:00:02 behind 192.168.104.2 from store dir:/run/s"
        );
    }
}
