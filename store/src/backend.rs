//! The operations every backend offers, on checked keys and bounded values, and the
//! loop that follows a store through failures.

use std::future::Future;
use std::time::Duration;

use tokio::sync::mpsc;

use crate::dir::DirStore;
use crate::error::Result;
use crate::etcd::EtcdStore;
use crate::key::{KeyPath, Value};
use crate::url::{StoreUrl, Tls};

/// What a follower is told, in order.
#[derive(Debug)]
pub enum Change {
    /// A snapshot begins: the `Put`s up to `Synced` are the whole content of the
    /// followed folders. Sent first, and again whenever continuity was lost
    /// (reconnected, compacted, events overflowed).
    Reset,
    Put(KeyPath, Value),
    /// The key is gone, expired, or holds something unusable.
    Delete(KeyPath),
    /// The snapshot is complete; what follows are changes to it.
    Synced,
    /// The store could not be followed; the follower keeps what it has and the
    /// next attempt starts with `Reset`.
    Failed(crate::Error),
}

/// Values bound to a time-to-live: every key put with the lease goes when the lease
/// is not kept alive for `ttl`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Lease {
    pub id: i64,
    pub ttl: Duration,
}

pub trait Store: Send + Sync + 'static {
    /// The value of a key, if it holds a usable one (an expired value counts as none).
    fn get(&self, key: &KeyPath) -> impl Future<Output = Result<Option<Value>>> + Send;

    /// Write a key, bound to `lease` if given.
    fn put(&self, key: &KeyPath, value: &Value, lease: Option<&Lease>) -> impl Future<Output = Result<()>> + Send;

    /// Write many keys (unleased), in as few requests as the backend allows.
    fn put_many(&self, entries: &[(KeyPath, Value)]) -> impl Future<Output = Result<()>> + Send;

    /// Write a key only if it holds no value, atomically; true when written.
    fn create(&self, key: &KeyPath, value: &Value, lease: Option<&Lease>) -> impl Future<Output = Result<bool>> + Send;

    /// Remove a key only while it holds `expected` (someone else's newer value is
    /// kept); true when removed.
    fn delete_if(&self, key: &KeyPath, expected: &Value) -> impl Future<Output = Result<bool>> + Send;

    /// Write `value` (bound to `lease` if given) only while the key holds `expected`,
    /// atomically where the backend can: readers see the old value or the new, never
    /// the key absent. True when written.
    fn replace(
        &self,
        key: &KeyPath,
        expected: &Value,
        value: &Value,
        lease: Option<&Lease>,
    ) -> impl Future<Output = Result<bool>> + Send;

    /// The keys of a folder ("" for the keys at the root) with their values; keys
    /// holding something unusable are left out with a warning.
    fn list(&self, folder: &str) -> impl Future<Output = Result<Vec<(KeyPath, Value)>>> + Send;

    /// A new lease of `ttl`.
    fn grant(&self, ttl: Duration) -> impl Future<Output = Result<Lease>> + Send;

    /// Renew a lease for another `ttl`; `Error::LeaseExpired` once it is gone.
    fn keep_alive(&self, lease: &Lease) -> impl Future<Output = Result<()>> + Send;

    /// One attempt at following `folders`: a snapshot, then changes, until `changes`
    /// is closed (`Ok`) or the store fails (`Err`). Resets `backoff` once its
    /// snapshot is sent.
    fn follow_once(
        &self,
        folders: &[&str],
        changes: &mpsc::Sender<Change>,
        backoff: &mut Backoff,
    ) -> impl Future<Output = Result<()>> + Send;
}

/// Either backend, chosen by URL.
pub enum AnyStore {
    Dir(DirStore),
    /// Boxed: the etcd client is large.
    Etcd(Box<EtcdStore>),
}

impl AnyStore {
    /// `poll`: how often a folder store is scanned in full besides inotify (for
    /// shared folders whose other writers inotify cannot see); zero: never.
    pub fn open(url: &StoreUrl, tls: Option<Tls>, poll: Duration) -> Result<AnyStore> {
        Ok(match url {
            StoreUrl::Dir(path) => AnyStore::Dir(DirStore::new(path.clone(), poll)),
            StoreUrl::Etcd { endpoints, prefix } => {
                AnyStore::Etcd(Box::new(EtcdStore::new(endpoints.clone(), prefix.clone(), tls)?))
            }
        })
    }
}

/// Forward a call to the backend in use.
macro_rules! each {
    ($self:ident, $store:ident => $call:expr) => {
        match $self {
            AnyStore::Dir($store) => $call,
            AnyStore::Etcd($store) => $call,
        }
    };
}

impl Store for AnyStore {
    async fn get(&self, key: &KeyPath) -> Result<Option<Value>> {
        each!(self, store => store.get(key).await)
    }

    async fn put(&self, key: &KeyPath, value: &Value, lease: Option<&Lease>) -> Result<()> {
        each!(self, store => store.put(key, value, lease).await)
    }

    async fn put_many(&self, entries: &[(KeyPath, Value)]) -> Result<()> {
        each!(self, store => store.put_many(entries).await)
    }

    async fn create(&self, key: &KeyPath, value: &Value, lease: Option<&Lease>) -> Result<bool> {
        each!(self, store => store.create(key, value, lease).await)
    }

    async fn delete_if(&self, key: &KeyPath, expected: &Value) -> Result<bool> {
        each!(self, store => store.delete_if(key, expected).await)
    }

    async fn replace(&self, key: &KeyPath, expected: &Value, value: &Value, lease: Option<&Lease>) -> Result<bool> {
        each!(self, store => store.replace(key, expected, value, lease).await)
    }

    async fn list(&self, folder: &str) -> Result<Vec<(KeyPath, Value)>> {
        each!(self, store => store.list(folder).await)
    }

    async fn grant(&self, ttl: Duration) -> Result<Lease> {
        each!(self, store => store.grant(ttl).await)
    }

    async fn keep_alive(&self, lease: &Lease) -> Result<()> {
        each!(self, store => store.keep_alive(lease).await)
    }

    async fn follow_once(&self, folders: &[&str], changes: &mpsc::Sender<Change>, backoff: &mut Backoff) -> Result<()> {
        each!(self, store => store.follow_once(folders, changes, backoff).await)
    }
}

/// Follow `folders` of a store until `changes` is closed: attempt after attempt,
/// each failure reported to the follower and waited out with a backoff.
pub async fn follow(store: &impl Store, folders: &[&str], changes: mpsc::Sender<Change>) {
    let mut backoff = Backoff::new();
    loop {
        match store.follow_once(folders, &changes, &mut backoff).await {
            Ok(()) => return,
            Err(problem) => {
                if changes.send(Change::Failed(problem)).await.is_err() {
                    return;
                }
                backoff.wait().await;
            }
        }
    }
}

/// Doubling waits between retries, from 100 ms to 5 s.
pub struct Backoff(Duration);

impl Backoff {
    const FIRST: Duration = Duration::from_millis(100);
    const LAST: Duration = Duration::from_secs(5);

    pub fn new() -> Backoff {
        Backoff(Self::FIRST)
    }

    pub fn reset(&mut self) {
        self.0 = Self::FIRST;
    }

    pub async fn wait(&mut self) {
        tokio::time::sleep(self.0).await;
        self.0 = (self.0 * 2).min(Self::LAST);
    }
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff::new()
    }
}
