//! The shared store of an overlay, behind one trait: a folder of files (the
//! tutorial's layout) or etcd. Agents follow it; `publish` and `withdraw` (and
//! `netlab apply`/`destroy`) write it.

mod dir;
mod etcd;
mod url;

use std::future::Future;
use std::time::Duration;

use tokio::sync::mpsc;

use crate::endpoint::{Endpoint, Entry, Key, Table};

pub use dir::DirStore;
pub use etcd::{EtcdStore, Tls};
pub use url::StoreUrl;

/// What a store tells its follower.
#[derive(Debug)]
pub enum Update {
    /// The whole content: sent first, and again whenever continuity was lost
    /// (reconnected, compacted, events overflowed). The follower reconciles fully.
    Snapshot(Table),
    Set(Entry),
    /// The key is gone, or holds something unusable.
    Remove(Key),
    /// The store could not be read; the follower keeps what it has.
    Failed(String),
}

pub type Result<T> = std::result::Result<T, String>;

/// "read /x: permission denied": the step and the system's reason, lowercase.
pub(crate) fn io_failed(step: impl Into<String>, error: std::io::Error) -> String {
    netns::Error::io(step, error).to_string()
}

pub trait Store: Send + Sync + 'static {
    /// One attempt at following the store: a snapshot, then changes, until `updates`
    /// is closed (`Ok`) or the store fails (`Err`; the next attempt starts with a
    /// fresh snapshot). Resets `backoff` once it has sent its snapshot.
    fn follow_once(
        &self,
        updates: &mpsc::Sender<Update>,
        backoff: &mut Backoff,
    ) -> impl Future<Output = Result<()>> + Send;

    /// Write a key.
    fn put(&self, entry: &Entry) -> impl Future<Output = Result<()>> + Send;

    /// Remove a key if it still holds `expected` (someone else's newer value is kept);
    /// true when it was removed.
    fn remove(&self, key: Key, expected: &str) -> impl Future<Output = Result<bool>> + Send;

    /// The value of a key (trimmed), if it holds one.
    fn get(&self, key: Key) -> impl Future<Output = Result<Option<String>>> + Send;
}

/// Either backend, chosen by URL.
pub enum AnyStore {
    Dir(DirStore),
    /// Boxed: the etcd client is large.
    Etcd(Box<EtcdStore>),
}

impl AnyStore {
    pub fn open(url: &StoreUrl, tls: Option<Tls>, poll: Duration) -> Result<AnyStore> {
        Ok(match url {
            StoreUrl::Dir(path) => AnyStore::Dir(DirStore::new(path.clone(), poll)),
            StoreUrl::Etcd { endpoints, prefix } => {
                AnyStore::Etcd(Box::new(EtcdStore::new(endpoints.clone(), prefix.clone(), tls)?))
            }
        })
    }
}

impl Store for AnyStore {
    async fn follow_once(&self, updates: &mpsc::Sender<Update>, backoff: &mut Backoff) -> Result<()> {
        match self {
            AnyStore::Dir(store) => store.follow_once(updates, backoff).await,
            AnyStore::Etcd(store) => store.follow_once(updates, backoff).await,
        }
    }

    async fn put(&self, entry: &Entry) -> Result<()> {
        match self {
            AnyStore::Dir(store) => store.put(entry).await,
            AnyStore::Etcd(store) => store.put(entry).await,
        }
    }

    async fn remove(&self, key: Key, expected: &str) -> Result<bool> {
        match self {
            AnyStore::Dir(store) => store.remove(key, expected).await,
            AnyStore::Etcd(store) => store.remove(key, expected).await,
        }
    }

    async fn get(&self, key: Key) -> Result<Option<String>> {
        match self {
            AnyStore::Dir(store) => store.get(key).await,
            AnyStore::Etcd(store) => store.get(key).await,
        }
    }
}

/// Follow a store until `updates` is closed: attempt after attempt, each failure
/// reported to the follower and waited out with a backoff.
pub async fn follow(store: &impl Store, updates: mpsc::Sender<Update>) {
    let mut backoff = Backoff::new();
    loop {
        match store.follow_once(&updates, &mut backoff).await {
            Ok(()) => return,
            Err(problem) => {
                if updates.send(Update::Failed(problem)).await.is_err() {
                    return;
                }
                backoff.wait().await;
            }
        }
    }
}

/// Write an endpoint's two keys, skipping those that already hold the value (so a
/// re-apply does not wake every agent).
pub async fn publish(store: &impl Store, endpoint: &Endpoint) -> Result<()> {
    for entry in endpoint.entries() {
        if store.get(entry.key()).await?.as_deref() != Some(entry.value().as_str()) {
            store.put(&entry).await?;
        }
    }
    Ok(())
}

/// Remove an endpoint's keys where they still hold its values.
pub async fn withdraw(store: &impl Store, endpoint: &Endpoint) -> Result<()> {
    for entry in endpoint.entries() {
        store.remove(entry.key(), &entry.value()).await?;
    }
    Ok(())
}

/// Doubling waits between retries, from 100 ms to 5 s.
pub struct Backoff(Duration);

impl Backoff {
    const FIRST: Duration = Duration::from_millis(100);
    const LAST: Duration = Duration::from_secs(5);

    fn new() -> Backoff {
        Backoff(Self::FIRST)
    }

    pub fn reset(&mut self) {
        self.0 = Self::FIRST;
    }

    async fn wait(&mut self) {
        tokio::time::sleep(self.0).await;
        self.0 = (self.0 * 2).min(Self::LAST);
    }
}
