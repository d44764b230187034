//! Listing and following etcd keys.
//!
//! Lists come in pages (a range with a limit, continuing after the last key, all at
//! the first page's revision), so any number of keys lists within the client's
//! message limit; a page too large for it is asked again at half the size.
//! Following: list, then watch from the revision after the list, so no change
//! falls between the two. A watch cancelled because that revision was compacted
//! lists again.

use etcd_client::{Client, EventType, GetOptions, KvClient, WatchOptions};
use tokio::sync::mpsc;

use super::EtcdStore;
use crate::backend::{Backoff, Change};
use crate::error::{Error, Result};
use crate::key::{KeyPath, Value};

/// Keys per page at first. Large: etcd 3.4 counts every key of the range for each
/// page, so small pages make a large list quadratic (200,000 keys in pages of 1,000
/// took 8 s, in pages of 10,000 under 1 s).
const PAGE: i64 = 10_000;
/// The largest answer accepted; a page over it is asked again at half the size.
const MAX_MESSAGE: usize = 16 << 20;

/// The etcd key range holding some folders of a store, and which keys in it count.
pub struct Range {
    start: Vec<u8>,
    end: Vec<u8>,
    folders: Vec<String>,
}

impl Range {
    /// One folder's keys, or (for several folders or the root's keys) the whole
    /// prefix, filtered.
    pub fn new(prefix: &str, folders: &[&str]) -> Range {
        let start = match folders {
            [folder] if !folder.is_empty() => format!("{prefix}/{folder}/"),
            _ => format!("{prefix}/"),
        }
        .into_bytes();
        let end = range_end(&start);
        Range { start, end, folders: folders.iter().map(|f| f.to_string()).collect() }
    }

    fn wants(&self, key: &KeyPath) -> bool {
        let folder = key.folder().unwrap_or("");
        self.folders.iter().any(|f| f == folder)
    }
}

/// The first key after every key that starts with `start`.
fn range_end(start: &[u8]) -> Vec<u8> {
    let mut end = start.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0]
}

/// Pages of a range, all at one revision.
struct Pager<'a> {
    store: &'a EtcdStore,
    range: &'a Range,
    kv: KvClient,
    endpoint: String,
    next: Option<Vec<u8>>,
    limit: i64,
    revision: i64,
}

impl<'a> Pager<'a> {
    fn new(store: &'a EtcdStore, range: &'a Range, client: &Client, endpoint: String) -> Pager<'a> {
        let kv = client.kv_client().max_decoding_message_size(MAX_MESSAGE);
        Pager { store, range, kv, endpoint, next: Some(range.start.clone()), limit: PAGE, revision: 0 }
    }

    /// Whether the list's revision is gone: a count at it (a tiny answer) fails.
    async fn compacted(&mut self) -> bool {
        let options =
            GetOptions::new().with_range(self.range.end.clone()).with_count_only().with_revision(self.revision);
        self.kv.get(self.range.start.clone(), Some(options)).await.is_err()
    }

    /// The next page's usable keys; `None` after the last.
    async fn next_page(&mut self) -> Result<Option<Vec<(KeyPath, Value)>>> {
        let Some(start) = self.next.clone() else { return Ok(None) };
        let options =
            GetOptions::new().with_range(self.range.end.clone()).with_limit(self.limit).with_revision(self.revision);
        let mut response = match self.kv.get(start, Some(options)).await {
            Ok(response) => response,
            // OUT_OF_RANGE (11) is both the client's "message too large" and etcd's
            // "revision compacted"; RESOURCE_EXHAUSTED (8) the former only.
            Err(etcd_client::Error::GRpcStatus(status)) if matches!(status.code() as i32, 8 | 11) && self.limit > 1 => {
                if self.revision != 0 && self.compacted().await {
                    let key = String::from_utf8_lossy(&self.range.start).into_owned();
                    return Err(Error::Compacted { prefix: key, revision: self.revision, compacted: 0 });
                }
                self.limit /= 2;
                return Ok(Some(Vec::new()));
            }
            Err(source) => {
                let key = String::from_utf8_lossy(&self.range.start).into_owned();
                return Err(Error::Etcd { step: "list", key, endpoint: self.endpoint.clone(), source });
            }
        };
        if self.revision == 0 {
            self.revision = response.header().map_or(0, |h| h.revision());
        }
        let more = response.more();
        let kvs = response.take_kvs();
        self.next = match kvs.last() {
            Some(last) if more => Some([last.key(), &[0]].concat()),
            _ => None,
        };
        let mut page = Vec::with_capacity(kvs.len());
        for kv in kvs {
            let Some(key) = self.store.key(kv.key()).filter(|key| self.range.wants(key)) else { continue };
            match Value::from_bytes(key.as_str(), kv.value()) {
                Ok(value) => page.push((key, value)),
                Err(problem) => tracing::warn!("{problem}; ignored"),
            }
        }
        Ok(Some(page))
    }
}

impl EtcdStore {
    /// Every page of a range, given to `sink`.
    pub(super) async fn pages(
        &self,
        client: Client,
        endpoint: String,
        range: &Range,
        mut sink: impl FnMut(KeyPath, Value),
    ) -> Result<i64> {
        let mut pager = Pager::new(self, range, &client, endpoint);
        while let Some(page) = pager.next_page().await? {
            page.into_iter().for_each(|(key, value)| sink(key, value));
        }
        Ok(pager.revision)
    }

    /// List, then watch from the next revision, through one member's client.
    pub(super) async fn follow_member(
        &self,
        mut client: Client,
        folders: &[&str],
        changes: &mpsc::Sender<Change>,
        backoff: &mut Backoff,
    ) -> Result<()> {
        let range = Range::new(&self.prefix, folders);
        let endpoint =
            self.endpoints[self.member.load(std::sync::atomic::Ordering::Relaxed) % self.endpoints.len()].clone();
        let mut pager = Pager::new(self, &range, &client, endpoint.clone());
        // The first page before Reset: a store that cannot be listed leaves the
        // follower's state untouched.
        let mut page = pager.next_page().await?;
        if changes.send(Change::Reset).await.is_err() {
            return Ok(());
        }
        while let Some(entries) = page {
            for (key, value) in entries {
                if changes.send(Change::Put(key, value)).await.is_err() {
                    return Ok(());
                }
            }
            page = pager.next_page().await?;
        }
        if changes.send(Change::Synced).await.is_err() {
            return Ok(());
        }
        let revision = pager.revision;
        let what = String::from_utf8_lossy(&range.start).into_owned();
        let watch_failed =
            |source| Error::Etcd { step: "watch", key: what.clone(), endpoint: endpoint.clone(), source };
        let options =
            WatchOptions::new().with_range(range.end.clone()).with_start_revision(revision + 1).with_progress_notify();
        let mut stream = client.watch(range.start.clone(), Some(options)).await.map_err(watch_failed)?;
        backoff.reset();
        loop {
            let response = tokio::select! {
                response = stream.message() => response.map_err(watch_failed)?,
                _ = changes.closed() => return Ok(()),
            };
            let Some(response) = response else {
                return Err(Error::WatchEnded { what: what.clone(), why: "stream ended".into() });
            };
            if response.canceled() {
                return Err(match response.compact_revision() {
                    0 => Error::WatchEnded {
                        what: what.clone(),
                        why: format!("cancelled: {}", response.cancel_reason()),
                    },
                    compacted => Error::Compacted { prefix: what.clone(), revision: revision + 1, compacted },
                });
            }
            for event in response.events() {
                let Some(kv) = event.kv() else { continue };
                let Some(key) = self.key(kv.key()).filter(|key| range.wants(key)) else { continue };
                let change = match event.event_type() {
                    EventType::Delete => Change::Delete(key),
                    EventType::Put => match Value::from_bytes(key.as_str(), kv.value()) {
                        Ok(value) => Change::Put(key, value),
                        Err(problem) => {
                            tracing::warn!("{problem}; treated as absent");
                            Change::Delete(key)
                        }
                    },
                };
                if changes.send(change).await.is_err() {
                    return Ok(());
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_cover_exactly_their_folders() {
        assert_eq!(range_end(b"/p/arp/"), b"/p/arp0".to_vec());
        assert_eq!(range_end(&[b'a', 0xff]), b"b".to_vec());
        let range = Range::new("/netlab/vxlan", &["arp", "fdb"]);
        assert_eq!(range.start, b"/netlab/vxlan/".to_vec());
        assert!(range.wants(&KeyPath::new("arp/1.2.3.4").unwrap()));
        assert!(!range.wants(&KeyPath::new("config").unwrap()));
        assert!(!range.wants(&KeyPath::new("subnets/10.0.0.0-24").unwrap()));
        let range = Range::new("/coreos.com/network", &["subnets"]);
        assert_eq!(range.start, b"/coreos.com/network/subnets/".to_vec());
        let range = Range::new("/coreos.com/network", &["", "subnets"]);
        assert!(range.wants(&KeyPath::new("config").unwrap()));
    }
}
