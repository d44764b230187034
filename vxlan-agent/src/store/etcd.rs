//! The etcd store: keys `PREFIX/arp/<IP>` and `PREFIX/fdb/<MAC>` (etcd v3).
//!
//! Following: list the prefix, then watch it from the revision after the list, so
//! no change falls between the two. When the watch is cancelled because that
//! revision was compacted, or the connection fails, list again (a fresh snapshot)
//! after a backoff.
//!
//! Members: every connection talks to one member, and a failure moves to the next.
//! etcd-client can balance over all of them, but its balancer keeps routing requests
//! to a member that refuses connections (etcdv3/etcd-client#39), so one dead member
//! would fail a share of every operation.

use std::future::Future;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use etcd_client::{
    Certificate, Client, Compare, CompareOp, ConnectOptions, EventType, GetOptions, Identity, TlsOptions, Txn, TxnOp,
    WatchOptions,
};
use tokio::sync::{mpsc, Mutex};

use super::{io_failed, Backoff, Result, Store, Update};
use crate::endpoint::{Entry, Key, Table};

/// Files for TLS to etcd (PEM). Read when the store is opened, so a renewed
/// certificate is used by the next connection of a new process.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub struct Tls {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<PathBuf>,
}

/// In the error of a watch whose start revision was compacted away.
const COMPACTED: &str = "compacted";

pub struct EtcdStore {
    endpoints: Vec<String>,
    prefix: String,
    options: ConnectOptions,
    /// The member connections go to; moves on when one fails.
    member: AtomicUsize,
    /// One connection shared by writes (with its member), made on first use and
    /// dropped on failure.
    client: Mutex<Option<(usize, Client)>>,
}

fn read_pem(path: &PathBuf) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| io_failed(format!("read {}", path.display()), e))
}

impl EtcdStore {
    pub fn new(endpoints: Vec<String>, prefix: String, tls: Option<Tls>) -> Result<EtcdStore> {
        let mut options = ConnectOptions::new()
            .with_connect_timeout(Duration::from_secs(2))
            .with_timeout(Duration::from_secs(5))
            .with_keep_alive(Duration::from_secs(2), Duration::from_secs(2))
            .with_keep_alive_while_idle(true)
            // A member cut off from the leader ends our watch instead of holding it
            // silently: we then list again through another member.
            .with_require_leader(true);
        let scheme = if tls.is_some() { "https" } else { "http" };
        if let Some(tls) = tls {
            let mut config = TlsOptions::new();
            if let Some(ca) = &tls.ca {
                config = config.ca_certificate(Certificate::from_pem(read_pem(ca)?));
            }
            match (&tls.cert, &tls.key) {
                (Some(cert), Some(key)) => {
                    config = config.identity(Identity::from_pem(read_pem(cert)?, read_pem(key)?))
                }
                (None, None) => {}
                _ => return Err("etcd TLS: a client certificate needs its key, and the other way round".into()),
            }
            options = options.with_tls(config);
        }
        let endpoints = endpoints.iter().map(|e| format!("{scheme}://{e}")).collect();
        Ok(EtcdStore { endpoints, prefix, options, member: AtomicUsize::new(0), client: Mutex::new(None) })
    }

    fn full(&self, key: Key) -> String {
        format!("{}/{key}", self.prefix)
    }

    /// The entry of a full etcd key and value; `Err` names what is wrong with it.
    fn entry(&self, key: &[u8], value: &[u8]) -> std::result::Result<Entry, String> {
        let key = self.key(key).ok_or_else(|| format!("{}: not a store key", String::from_utf8_lossy(key)))?;
        key.entry(&String::from_utf8_lossy(value))
    }

    fn key(&self, key: &[u8]) -> Option<Key> {
        let key = std::str::from_utf8(key).ok()?;
        Key::parse(key.strip_prefix(&self.prefix)?.strip_prefix('/')?)
    }

    /// A client of the current member (the channel connects on first use).
    async fn connect(&self) -> Result<(usize, Client)> {
        let member = self.member.load(Ordering::Relaxed) % self.endpoints.len();
        let endpoint = &self.endpoints[member];
        let client = Client::connect([endpoint], Some(self.options.clone()))
            .await
            .map_err(|e| format!("connect to etcd {endpoint}: {e}"))?;
        Ok((member, client))
    }

    /// After a failure on `member`: the next connection goes to the next member
    /// (unless another failure moved on already).
    fn move_on_from(&self, member: usize) {
        let next = (member + 1) % self.endpoints.len();
        let _ = self.member.compare_exchange(member, next, Ordering::Relaxed, Ordering::Relaxed);
    }

    /// The shared client, connecting if needed.
    async fn client(&self) -> Result<(usize, Client)> {
        let mut slot = self.client.lock().await;
        if let Some(client) = &*slot {
            return Ok(client.clone());
        }
        let client = self.connect().await?;
        *slot = Some(client.clone());
        Ok(client)
    }

    /// Run a request on the shared client; a failure drops the connection and tries
    /// the next member, once per member. Every request here may run twice safely: a
    /// put of the same value, a get, a compare-and-delete.
    async fn with_client<T, Answer>(&self, what: &str, request: impl Fn(Client) -> Answer) -> Result<T>
    where
        Answer: Future<Output = std::result::Result<T, etcd_client::Error>>,
    {
        let mut failure = String::new();
        for _ in 0..self.endpoints.len() {
            let (member, client) = self.client().await?;
            match request(client).await {
                Ok(answer) => return Ok(answer),
                Err(e) => {
                    *self.client.lock().await = None;
                    self.move_on_from(member);
                    failure = format!("{what} (etcd {}): {e}", self.endpoints[member]);
                }
            }
        }
        Err(failure)
    }

    /// List, then watch from the next revision, through one member's client.
    async fn follow_member(
        &self,
        mut client: Client,
        updates: &mpsc::Sender<Update>,
        backoff: &mut Backoff,
    ) -> Result<()> {
        let listed = client
            .get(format!("{}/", self.prefix), Some(GetOptions::new().with_prefix()))
            .await
            .map_err(|e| format!("list {}: {e}", self.prefix))?;
        let revision = listed.header().map(|h| h.revision()).unwrap_or(0);
        let mut table = Table::default();
        for kv in listed.kvs() {
            match self.entry(kv.key(), kv.value()) {
                Ok(entry) => {
                    table.set(entry);
                }
                Err(problem) => tracing::warn!("{problem}; ignored"),
            }
        }
        if updates.send(Update::Snapshot(table)).await.is_err() {
            return Ok(());
        }
        let options = WatchOptions::new().with_prefix().with_start_revision(revision + 1).with_progress_notify();
        let mut stream = client
            .watch(format!("{}/", self.prefix), Some(options))
            .await
            .map_err(|e| format!("watch {}: {e}", self.prefix))?;
        backoff.reset();
        loop {
            let response = tokio::select! {
                response = stream.message() => response.map_err(|e| format!("watch {}: {e}", self.prefix))?,
                _ = updates.closed() => return Ok(()),
            };
            let Some(response) = response else { return Err(format!("watch {}: stream ended", self.prefix)) };
            if response.canceled() {
                return Err(match response.compact_revision() {
                    0 => format!("watch {}: cancelled: {}", self.prefix, response.cancel_reason()),
                    compacted => format!(
                        "watch {}: revision {} {COMPACTED} (now {compacted}); listing again",
                        self.prefix,
                        revision + 1
                    ),
                });
            }
            for event in response.events() {
                let Some(kv) = event.kv() else { continue };
                let Some(key) = self.key(kv.key()) else { continue };
                let update = match event.event_type() {
                    EventType::Delete => Update::Remove(key),
                    EventType::Put => match key.entry(&String::from_utf8_lossy(kv.value())) {
                        Ok(entry) => Update::Set(entry),
                        Err(problem) => {
                            tracing::warn!("{problem}; treated as absent");
                            Update::Remove(key)
                        }
                    },
                };
                if updates.send(update).await.is_err() {
                    return Ok(());
                }
            }
        }
    }
}

impl Store for EtcdStore {
    async fn follow_once(&self, updates: &mpsc::Sender<Update>, backoff: &mut Backoff) -> Result<()> {
        // A failed member is followed at once by the next; the caller's backoff starts
        // only when every member has failed in turn.
        let mut failure = String::new();
        for _ in 0..self.endpoints.len() {
            let (member, client) = self.connect().await?;
            match self.follow_member(client, updates, backoff).await {
                Ok(()) => return Ok(()),
                // Not the member's fault: list again from the same one.
                Err(problem) if problem.contains(COMPACTED) => return Err(problem),
                Err(problem) => {
                    self.move_on_from(member);
                    failure = format!("etcd {}: {problem}", self.endpoints[member]);
                }
            }
        }
        Err(failure)
    }

    async fn put(&self, entry: &Entry) -> Result<()> {
        let key = self.full(entry.key());
        let value = entry.value();
        self.with_client(&format!("put {key}"), |mut client| {
            let (key, value) = (key.clone(), value.clone());
            async move { client.put(key, value, None).await }
        })
        .await
        .map(|_| ())
    }

    async fn remove(&self, key: Key, expected: &str) -> Result<bool> {
        let key = self.full(key);
        // Only if it still holds our value: a transaction compares and deletes at once.
        let txn = Txn::new()
            .when([Compare::value(key.clone(), CompareOp::Equal, expected)])
            .and_then([TxnOp::delete(key.clone(), None)]);
        self.with_client(&format!("remove {key}"), |mut client| {
            let txn = txn.clone();
            async move { client.txn(txn).await }
        })
        .await
        .map(|response| response.succeeded())
    }

    async fn get(&self, key: Key) -> Result<Option<String>> {
        let key = self.full(key);
        let response = self
            .with_client(&format!("get {key}"), |mut client| {
                let key = key.clone();
                async move { client.get(key, None).await }
            })
            .await?;
        Ok(response.kvs().first().map(|kv| String::from_utf8_lossy(kv.value()).trim().to_string()))
    }
}
