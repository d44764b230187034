//! The etcd store (v3 API): key `PREFIX/arp/11.11.11.3` for the store key
//! `arp/11.11.11.3`.
//!
//! Members: every connection talks to one member, and a failure moves to the next.
//! etcd-client can balance over all of them, but its balancer keeps routing requests
//! to a member that refuses connections (etcdv3/etcd-client#39), so one dead member
//! would fail a share of every operation.
//!
//! Keepalive: HTTP/2 pings every 10 s, and only while a request or watch is open.
//! etcd's default `--grpc-keepalive-min-time` is 5 s: a client pinging more often
//! is sent away (GOAWAY too_many_pings), which used to break every watch.

mod follow;

use std::future::Future;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use etcd_client::{
    Certificate, Client, Compare, CompareOp, ConnectOptions, Identity, PutOptions, TlsOptions, Txn, TxnOp,
};
use tokio::sync::{mpsc, Mutex};

use crate::backend::{Backoff, Change, Lease, Store};
use crate::error::{Error, Result};
use crate::key::{KeyPath, Value};
use crate::url::Tls;

pub struct EtcdStore {
    endpoints: Vec<String>,
    prefix: String,
    options: ConnectOptions,
    /// The member connections go to; moves on when one fails.
    member: AtomicUsize,
    /// One connection shared by requests (with its member), made on first use and
    /// dropped on failure.
    client: Mutex<Option<(usize, Client)>>,
}

fn read_pem(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| Error::Tls(format!("read {}: {}", path.display(), netns::Error::io("", e))))
}

impl EtcdStore {
    pub fn new(endpoints: Vec<String>, prefix: String, tls: Option<Tls>) -> Result<EtcdStore> {
        let mut options = ConnectOptions::new()
            .with_connect_timeout(Duration::from_secs(2))
            .with_timeout(Duration::from_secs(5))
            .with_keep_alive(Duration::from_secs(10), Duration::from_secs(5))
            .with_keep_alive_while_idle(false)
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
                _ => return Err(Error::Tls("a client certificate needs its key, and the other way round".into())),
            }
            options = options.with_tls(config);
        }
        let endpoints = endpoints.iter().map(|e| format!("{scheme}://{e}")).collect();
        Ok(EtcdStore { endpoints, prefix, options, member: AtomicUsize::new(0), client: Mutex::new(None) })
    }

    fn full(&self, key: &KeyPath) -> String {
        format!("{}/{key}", self.prefix)
    }

    /// The store key of a full etcd key, if it is one of ours and a valid key.
    fn key(&self, full: &[u8]) -> Option<KeyPath> {
        let text = std::str::from_utf8(full).ok()?;
        KeyPath::new(text.strip_prefix(&self.prefix)?.strip_prefix('/')?).ok()
    }

    /// A client of the current member (the channel connects on first use).
    async fn connect(&self) -> Result<(usize, Client)> {
        let member = self.member.load(Ordering::Relaxed) % self.endpoints.len();
        let endpoint = &self.endpoints[member];
        match Client::connect([endpoint], Some(self.options.clone())).await {
            Ok(client) => Ok((member, client)),
            Err(source) => {
                self.move_on_from(member);
                Err(Error::Connect { endpoint: endpoint.clone(), source })
            }
        }
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

    /// Run a request on the shared client; a failure of the member (unreachable, no
    /// leader, timed out) drops the connection and tries the next member, once per
    /// member; any other error is the answer. Every request here may run twice
    /// safely: a put of the same value, a get, a compare-and-delete, and a
    /// compare-and-create that reads back what it finds (see `create`).
    async fn with_client<T, Answer>(
        &self,
        step: &'static str,
        key: &str,
        request: impl Fn(Client) -> Answer,
    ) -> Result<T>
    where
        Answer: Future<Output = std::result::Result<T, etcd_client::Error>>,
    {
        self.on_members(|member, client| {
            let answer = request(client);
            async move {
                answer.await.map_err(|source| Error::Etcd {
                    step,
                    key: key.to_string(),
                    endpoint: self.endpoints[member].clone(),
                    source,
                })
            }
        })
        .await
    }

    /// Run `request` with the current member's client, moving on to the next member
    /// (once per member) when the member failed; any other error is the answer.
    async fn on_members<T, Answer>(&self, request: impl Fn(usize, Client) -> Answer) -> Result<T>
    where
        Answer: Future<Output = Result<T>>,
    {
        let mut failure = None;
        for _ in 0..self.endpoints.len() {
            let (member, client) = match self.client().await {
                Ok(client) => client,
                Err(problem) => {
                    failure = Some(problem);
                    continue;
                }
            };
            match request(member, client).await {
                Ok(answer) => return Ok(answer),
                Err(problem) => {
                    let theirs = match &problem {
                        Error::Etcd { source, .. } => member_failed(source),
                        Error::Connect { .. } => true,
                        _ => false,
                    };
                    if !theirs {
                        return Err(problem);
                    }
                    *self.client.lock().await = None;
                    self.move_on_from(member);
                    failure = Some(problem);
                }
            }
        }
        Err(failure.expect("at least one member"))
    }
}

/// Whether an error is the member's (move on to the next) rather than an answer.
fn member_failed(error: &etcd_client::Error) -> bool {
    match error {
        etcd_client::Error::TransportError(_) | etcd_client::Error::IoError(_) => true,
        // CANCELLED (1), UNKNOWN (2, a broken stream), DEADLINE_EXCEEDED (4),
        // UNAVAILABLE (14: unreachable, or a member without a leader).
        etcd_client::Error::GRpcStatus(status) => matches!(status.code() as i32, 1 | 2 | 4 | 14),
        _ => false,
    }
}

impl Store for EtcdStore {
    async fn get(&self, key: &KeyPath) -> Result<Option<Value>> {
        let full = self.full(key);
        let response = self
            .with_client("get", &full, |mut client| {
                let full = full.clone();
                async move { client.get(full, None).await }
            })
            .await?;
        // An empty value is no value, as in the folder store.
        let value = response.kvs().first().map(|kv| Value::from_bytes(key.as_str(), kv.value())).transpose()?;
        Ok(value.filter(|v| !v.trimmed().is_empty()))
    }

    async fn put(&self, key: &KeyPath, value: &Value, lease: Option<&Lease>) -> Result<()> {
        let full = self.full(key);
        let options = lease.map(|lease| PutOptions::new().with_lease(lease.id));
        self.with_client("put", &full, |mut client| {
            let (full, value, options) = (full.clone(), value.to_string(), options.clone());
            async move { client.put(full, value, options).await }
        })
        .await
        .map(|_| ())
    }

    async fn put_many(&self, entries: &[(KeyPath, Value)]) -> Result<()> {
        // etcd's default --max-txn-ops is 128.
        for chunk in entries.chunks(128) {
            let puts: Vec<TxnOp> =
                chunk.iter().map(|(key, value)| TxnOp::put(self.full(key), value.as_str(), None)).collect();
            let first = self.full(&chunk[0].0);
            self.with_client("put", &first, |mut client| {
                let txn = Txn::new().and_then(puts.clone());
                async move { client.txn(txn).await }
            })
            .await?;
        }
        Ok(())
    }

    async fn create(&self, key: &KeyPath, value: &Value, lease: Option<&Lease>) -> Result<bool> {
        let full = self.full(key);
        // Version 0: the key does not exist (an expired lease took its keys with it).
        // Otherwise read what is there: a retry after a lost answer finds our own
        // value under our own lease, and that is a success, not a subnet taken twice.
        let put = TxnOp::put(full.clone(), value.as_str(), lease.map(|l| PutOptions::new().with_lease(l.id)));
        let txn = Txn::new()
            .when([Compare::version(full.clone(), CompareOp::Equal, 0)])
            .and_then([put])
            .or_else([TxnOp::get(full.clone(), None)]);
        let response = self
            .with_client("create", &full, |mut client| {
                let txn = txn.clone();
                async move { client.txn(txn).await }
            })
            .await?;
        if response.succeeded() {
            return Ok(true);
        }
        let ours = response.op_responses().into_iter().any(|answer| match answer {
            etcd_client::TxnOpResponse::Get(found) => found
                .kvs()
                .first()
                .is_some_and(|kv| kv.value() == value.as_str().as_bytes() && lease.is_some_and(|l| kv.lease() == l.id)),
            _ => false,
        });
        Ok(ours)
    }

    async fn delete_if(&self, key: &KeyPath, expected: &Value) -> Result<bool> {
        let full = self.full(key);
        // Only if it still holds that value: a transaction compares and deletes at once.
        let txn = Txn::new()
            .when([Compare::value(full.clone(), CompareOp::Equal, expected.as_str())])
            .and_then([TxnOp::delete(full.clone(), None)]);
        self.with_client("delete", &full, |mut client| {
            let txn = txn.clone();
            async move { client.txn(txn).await }
        })
        .await
        .map(|response| response.succeeded())
    }

    async fn replace(&self, key: &KeyPath, expected: &Value, value: &Value, lease: Option<&Lease>) -> Result<bool> {
        let full = self.full(key);
        // Compared and written in one transaction; a retry after a lost answer finds
        // our own value under our own lease, and that is a success.
        let put = TxnOp::put(full.clone(), value.as_str(), lease.map(|l| PutOptions::new().with_lease(l.id)));
        let txn = Txn::new()
            .when([Compare::value(full.clone(), CompareOp::Equal, expected.as_str())])
            .and_then([put])
            .or_else([TxnOp::get(full.clone(), None)]);
        let response = self
            .with_client("replace", &full, |mut client| {
                let txn = txn.clone();
                async move { client.txn(txn).await }
            })
            .await?;
        if response.succeeded() {
            return Ok(true);
        }
        Ok(response.op_responses().into_iter().any(|answer| match answer {
            etcd_client::TxnOpResponse::Get(found) => found
                .kvs()
                .first()
                .is_some_and(|kv| kv.value() == value.as_str().as_bytes() && lease.is_none_or(|l| kv.lease() == l.id)),
            _ => false,
        }))
    }

    async fn list(&self, folder: &str) -> Result<Vec<(KeyPath, Value)>> {
        let range = follow::Range::new(&self.prefix, &[folder]);
        // A list starts over on each member.
        self.on_members(|member, client| {
            let range = &range;
            async move {
                let mut listed = Vec::new();
                let endpoint = self.endpoints[member].clone();
                self.pages(client, endpoint, range, |key, value| listed.push((key, value))).await?;
                Ok(listed)
            }
        })
        .await
    }

    async fn grant(&self, ttl: Duration) -> Result<Lease> {
        let seconds = ttl.as_secs_f64().ceil().max(1.0) as i64;
        let response = self
            .with_client("grant lease", "", |mut client| async move { client.lease_grant(seconds, None).await })
            .await?;
        Ok(Lease { id: response.id(), ttl: Duration::from_secs(response.ttl().max(1) as u64) })
    }

    async fn keep_alive(&self, lease: &Lease) -> Result<()> {
        let id = lease.id;
        let ttl = self
            .with_client("keep lease alive", "", |mut client| async move {
                // etcd-client reads the first answer itself and reports a lease that is
                // gone (ttl 0) as this error, with this text (it has no variant of its
                // own): an answer, not a failed member. Its other uses of the variant
                // (a request it could not send) are failures, as is a stream that ends
                // without an answer: neither says the lease is gone.
                let (mut keeper, mut answers) = match client.lease_keep_alive(id).await {
                    Err(etcd_client::Error::LeaseKeepAliveError(text)) if text == "lease not found" => return Ok(0),
                    other => other?,
                };
                keeper.keep_alive().await?;
                match answers.message().await? {
                    Some(answer) => Ok(answer.ttl()),
                    None => Err(etcd_client::Error::LeaseKeepAliveError("the stream ended without an answer".into())),
                }
            })
            .await?;
        if ttl <= 0 {
            return Err(Error::LeaseExpired(id));
        }
        Ok(())
    }

    async fn follow_once(&self, folders: &[&str], changes: &mpsc::Sender<Change>, backoff: &mut Backoff) -> Result<()> {
        // A failed member is followed at once by the next; the caller's backoff starts
        // only when every member has failed in turn.
        let mut failure = None;
        for _ in 0..self.endpoints.len() {
            let (member, client) = self.connect().await?;
            match self.follow_member(client, folders, changes, backoff).await {
                Ok(()) => return Ok(()),
                // Not the member's fault: list again from the same one.
                Err(compacted @ Error::Compacted { .. }) => return Err(compacted),
                Err(problem) => {
                    self.move_on_from(member);
                    failure = Some(problem);
                }
            }
        }
        Err(failure.expect("at least one member"))
    }
}
