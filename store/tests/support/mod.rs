//! The two stores every operation test runs against: a folder store in a temporary
//! folder, and a real etcd of its own in a private network namespace (tests never use
//! the machine's network). The test body runs on a thread that has entered that
//! namespace before its runtime is built, so every socket of the etcd client, on
//! every worker thread, is made there. etcd and the namespace's holder are killed
//! when the test ends, pass or fail.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::future::Future;
use std::io::BufRead as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use netlab_store::{AnyStore, Change, DirStore, EtcdStore, KeyPath, Store, Value};
use tokio::sync::mpsc;

pub const ENDPOINT: &str = "127.0.0.1:2379";
pub const PREFIX: &str = "/netlab-store-test";

/// One test per backend from one body: `dir::NAME` and `etcd::NAME`.
#[allow(unused_macros)]
macro_rules! on_both_stores {
    ($($test:ident),* $(,)?) => {
        mod dir {
            $(#[test] fn $test() { crate::support::run(crate::support::Kind::Dir, super::$test) })*
        }
        mod etcd {
            $(#[test] fn $test() { crate::support::run(crate::support::Kind::Etcd, super::$test) })*
        }
    };
}
#[allow(unused_imports)]
pub(crate) use on_both_stores;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Dir,
    Etcd,
}

/// The store under test, and the means to open another client of it (another
/// process, as far as the store can tell).
pub struct Bench {
    pub kind: Kind,
    pub store: Arc<AnyStore>,
    root: PathBuf,
}

impl Bench {
    fn new(kind: Kind, root: PathBuf) -> Bench {
        Bench { kind, store: Arc::new(open(kind, &root)), root }
    }

    /// A second, independent client of the same store.
    pub fn other(&self) -> AnyStore {
        open(self.kind, &self.root)
    }

    /// The folder store's root.
    pub fn root(&self) -> &Path {
        assert_eq!(self.kind, Kind::Dir, "only a folder store has a root");
        &self.root
    }
}

fn open(kind: Kind, root: &Path) -> AnyStore {
    match kind {
        // No polling: changes must reach a follower through inotify alone.
        Kind::Dir => AnyStore::Dir(DirStore::new(root.to_path_buf(), Duration::ZERO)),
        Kind::Etcd => {
            AnyStore::Etcd(Box::new(EtcdStore::new(vec![ENDPOINT.into()], PREFIX.into(), None).expect("etcd store")))
        }
    }
}

/// Run `body` against a fresh store of `kind`.
pub fn run<F, Fut>(kind: Kind, body: F)
where
    F: FnOnce(Bench) -> Fut + Send + 'static,
    Fut: Future<Output = ()>,
{
    let dir = tempfile::tempdir().expect("temporary folder");
    let root = dir.path().join("store");
    match kind {
        Kind::Dir => on_thread(None, Bench::new(kind, root), body),
        Kind::Etcd => {
            let etcd = Etcd::start(dir.path());
            let log = etcd.log.clone();
            let holder = etcd.holder.id();
            let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                on_thread(Some((holder, log)), Bench::new(kind, root), body)
            }));
            if let Err(panic) = outcome {
                let output = etcd.output();
                let tail: Vec<&str> = output.lines().rev().take(40).collect();
                eprintln!("etcd log, last lines:\n{}", tail.into_iter().rev().collect::<Vec<_>>().join("\n"));
                drop(etcd);
                std::panic::resume_unwind(panic);
            }
        }
    }
}

/// The body on a thread of its own, in the holder's network namespace if given;
/// a multi-threaded runtime so that racing tasks really run at the same time.
fn on_thread<F, Fut>(netns: Option<(u32, PathBuf)>, bench: Bench, body: F)
where
    F: FnOnce(Bench) -> Fut + Send + 'static,
    Fut: Future<Output = ()>,
{
    let thread = std::thread::spawn(move || {
        if let Some((holder, _)) = &netns {
            let ns = std::fs::File::open(format!("/proc/{holder}/ns/net")).expect("open the holder's namespace");
            nix::sched::setns(&ns, nix::sched::CloneFlags::CLONE_NEWNET).expect("enter the holder's namespace");
        }
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        runtime.block_on(async {
            if let Some((holder, log)) = &netns {
                wait_for_etcd(&bench, *holder, log).await;
            }
            body(bench).await
        });
        // A task stuck in a blocking call must not hold the test up.
        runtime.shutdown_timeout(Duration::from_secs(2));
    });
    if let Err(panic) = thread.join() {
        std::panic::resume_unwind(panic);
    }
}

/// Until etcd answers; and a check that the runtime's threads are in the namespace.
async fn wait_for_etcd(bench: &Bench, holder: u32, log: &Path) {
    let theirs = std::fs::read_link(format!("/proc/{holder}/ns/net")).unwrap();
    let ours = tokio::spawn(async { std::fs::read_link("/proc/thread-self/ns/net").unwrap() }).await.unwrap();
    assert_eq!(ours, theirs, "the runtime's threads are not in the test's network namespace");
    let probe = key("probe");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match bench.store.get(&probe).await {
            Ok(_) => return,
            Err(problem) if Instant::now() > deadline => {
                panic!("etcd not ready within 20 s: {problem}\n{}", std::fs::read_to_string(log).unwrap_or_default())
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

/// An etcd of its own, in a fresh network and mount namespace kept by a holder
/// process; its data on a tmpfs mounted there (fsync costs nothing, nothing is left).
struct Etcd {
    holder: Child,
    etcd: Child,
    log: PathBuf,
}

const HOLDER: &str = "set -e
mount -t tmpfs netlab-store-test \"$1\"
ip link set lo up
echo ready
exec sleep 600";

impl Etcd {
    fn start(dir: &Path) -> Etcd {
        assert!(nix::unistd::geteuid().is_root(), "etcd tests need root (a network namespace): run them as root");
        let data = dir.join("etcd");
        std::fs::create_dir(&data).unwrap();
        let mut holder = Command::new("unshare")
            .args(["--net", "--mount", "--propagation", "private", "--", "sh", "-c", HOLDER, "sh"])
            .arg(&data)
            .stdout(Stdio::piped())
            .spawn()
            .expect("start namespace holder (unshare from util-linux)");
        let mut ready = String::new();
        std::io::BufReader::new(holder.stdout.take().unwrap()).read_line(&mut ready).unwrap();
        assert_eq!(ready.trim(), "ready", "namespace holder setup failed");
        let log = dir.join("etcd.log");
        let output = std::fs::File::create(&log).unwrap();
        let (client, peer) = ("http://127.0.0.1:2379", "http://127.0.0.1:2380");
        // nsenter execs etcd: the child's pid is etcd's.
        let etcd = Command::new("nsenter")
            .args(["--target", &holder.id().to_string(), "--net", "--mount", "--", "etcd", "--name", "default"])
            .arg("--data-dir")
            .arg(data.join("member"))
            .args(["--listen-client-urls", client, "--advertise-client-urls", client])
            .args(["--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer])
            .args(["--initial-cluster", "default=http://127.0.0.1:2380"])
            .stdin(Stdio::null())
            .stdout(output.try_clone().unwrap())
            .stderr(output)
            .spawn()
            .expect("start etcd (apt install etcd-server)");
        Etcd { holder, etcd, log }
    }

    fn output(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        // etcd first: it would keep the namespace alive without the holder.
        let _ = self.etcd.kill();
        let _ = self.etcd.wait();
        let _ = self.holder.kill();
        let _ = self.holder.wait();
    }
}

pub fn key(text: &str) -> KeyPath {
    KeyPath::new(text).unwrap_or_else(|e| panic!("{e}"))
}

pub fn value(key: &KeyPath, text: &str) -> Value {
    Value::new(key, text).unwrap_or_else(|e| panic!("{e}"))
}

/// Put `text` at `key` without a lease.
pub async fn put(store: &impl Store, key: &str, text: &str) {
    let key = self::key(key);
    store.put(&key, &value(&key, text), None).await.unwrap_or_else(|e| panic!("put {key}: {e}"));
}

/// What `key` holds, without the newline the folder store keeps.
pub async fn get(store: &impl Store, key: &str) -> Option<String> {
    let key = self::key(key);
    store.get(&key).await.unwrap_or_else(|e| panic!("get {key}: {e}")).map(|v| v.trimmed().to_string())
}

/// A follower of `folders`, running in a task until the receiver is dropped.
pub fn start_follow(store: &Arc<AnyStore>, folders: &'static [&'static str]) -> mpsc::Receiver<Change> {
    let (sender, receiver) = mpsc::channel(64);
    let store = store.clone();
    tokio::spawn(async move { netlab_store::follow(&*store, folders, sender).await });
    receiver
}

/// The next change, waited for at most 10 s.
pub async fn next_change(changes: &mut mpsc::Receiver<Change>) -> Change {
    match tokio::time::timeout(Duration::from_secs(10), changes.recv()).await {
        Ok(Some(change)) => change,
        Ok(None) => panic!("the follower stopped"),
        Err(_) => panic!("no change within 10 s"),
    }
}

/// The snapshot a follower starts with (Reset, a Put per key, Synced), trimmed.
pub async fn snapshot(changes: &mut mpsc::Receiver<Change>) -> BTreeMap<String, String> {
    let first = next_change(changes).await;
    assert!(matches!(first, Change::Reset), "expected Reset first, got {first:?}");
    let mut values = BTreeMap::new();
    loop {
        match next_change(changes).await {
            Change::Put(key, value) => {
                let again = values.insert(key.to_string(), value.trimmed().to_string());
                assert!(again.is_none(), "{key} twice in one snapshot");
            }
            Change::Synced => return values,
            other => panic!("expected a Put or Synced in the snapshot, got {other:?}"),
        }
    }
}

/// The next change must be a Put of `key` holding `text`.
pub async fn expect_put(changes: &mut mpsc::Receiver<Change>, key: &str, text: &str) {
    match next_change(changes).await {
        Change::Put(k, v) if k.as_str() == key && v.trimmed() == text => {}
        other => panic!("expected Put {key} = {text}, got {other:?}"),
    }
}

pub async fn expect_delete(changes: &mut mpsc::Receiver<Change>, key: &str) {
    match next_change(changes).await {
        Change::Delete(k) if k.as_str() == key => {}
        other => panic!("expected Delete {key}, got {other:?}"),
    }
}

/// `work` on a blocking thread, failing the test if it has not returned within 5 s
/// (a FIFO opened for reading blocks until a writer comes; no async timeout can cut
/// a blocking call short).
pub async fn promptly<T: Send + 'static>(what: &str, work: impl FnOnce() -> T + Send + 'static) -> T {
    match tokio::time::timeout(Duration::from_secs(5), tokio::task::spawn_blocking(work)).await {
        Ok(Ok(answer)) => answer,
        Ok(Err(failed)) => std::panic::resume_unwind(failed.into_panic()),
        Err(_) => panic!("{what} hung for 5 s"),
    }
}

/// Poll `condition` every 100 ms for up to `seconds`; whether it came true.
pub async fn eventually<Fut: Future<Output = bool>>(seconds: u64, mut condition: impl FnMut() -> Fut) -> bool {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    loop {
        if condition().await {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
