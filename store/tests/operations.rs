//! The operations every backend offers, each test body run against a folder store
//! and against a real etcd: put/get, create-if-absent (also racing), delete-if,
//! list, and leases kept alive, then let go.

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use netlab_store::{Error, Store, MAX_VALUE};
use support::{get, key, on_both_stores, put, value, Bench, Kind};

on_both_stores!(
    a_new_store_is_empty,
    put_then_get,
    values_round_trip,
    create_only_when_absent,
    racing_creates_have_one_winner,
    delete_if_only_while_it_holds_the_value,
    replace_only_while_it_holds_the_value,
    list_gives_one_folder,
    a_kept_lease_outlives_its_ttl_then_expires,
);

/// Nothing was ever written (for the folder store: not even its root exists yet).
async fn a_new_store_is_empty(bench: Bench) {
    let store = &*bench.store;
    let name = key("arp/11.11.11.3");
    assert!(matches!(store.get(&name).await, Ok(None)), "get: {:?}", store.get(&name).await);
    assert!(matches!(store.list("arp").await.as_deref(), Ok([])), "list: {:?}", store.list("arp").await);
    let removed = store.delete_if(&name, &value(&name, "02:42:c0:a8:00:03")).await;
    assert!(matches!(removed, Ok(false)), "delete_if: {removed:?}");
}

async fn put_then_get(bench: Bench) {
    let store = &*bench.store;
    put(store, "fdb/02:42:c0:a8:00:03", "192.168.104.3").await;
    assert_eq!(get(store, "arp/11.11.11.3").await, None);
    put(store, "arp/11.11.11.3", "02:42:c0:a8:00:03").await;
    assert_eq!(get(store, "arp/11.11.11.3").await.as_deref(), Some("02:42:c0:a8:00:03"));
    // A put replaces; another client sees the new value.
    put(store, "arp/11.11.11.3", "02:42:c0:a8:00:04").await;
    assert_eq!(get(&bench.other(), "arp/11.11.11.3").await.as_deref(), Some("02:42:c0:a8:00:04"));
    // A key of one segment lives at the root.
    put(store, "config", "{\"Network\":\"10.244.0.0/16\"}").await;
    assert_eq!(get(store, "config").await.as_deref(), Some("{\"Network\":\"10.244.0.0/16\"}"));
    assert_eq!(get(store, "fdb/02:42:c0:a8:00:04").await, None);
}

/// Whatever a put accepts, a get gives back: the longest value, and text that looks
/// like the folder store's own expiry line (which the folder store refuses to write,
/// since it would read back as one).
async fn values_round_trip(bench: Bench) {
    let store = &*bench.store;
    let longest = "x".repeat(MAX_VALUE);
    let looks_leased = "#expires=1 lease=1";
    let mut wrong = Vec::new();
    for (name, text) in [("subnets/longest", longest.as_str()), ("subnets/looks-leased", looks_leased)] {
        if bench.kind == Kind::Dir && text == looks_leased {
            let refused = store.put(&key(name), &value(&key(name), text), None).await;
            assert!(matches!(refused, Err(Error::Invalid { .. })), "{refused:?}");
            assert_eq!(get(store, name).await, None, "nothing written");
            continue;
        }
        put(store, name, text).await;
        match store.get(&key(name)).await {
            Ok(Some(got)) if got.trimmed() == text => {}
            got => wrong.push(format!("{name}: put {} bytes, got back {got:?}", text.len())),
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
}

/// A compare-and-swap: someone else's value stays, and a replaced key is never absent
/// (a lease moves to a new store lease without the key going away).
async fn replace_only_while_it_holds_the_value(bench: Bench) {
    let (store, other) = (&*bench.store, bench.other());
    let name = key("subnets/10.244.6.0-24");
    assert!(!store.replace(&name, &value(&name, "old"), &value(&name, "new"), None).await.unwrap(), "absent");
    assert_eq!(get(store, name.as_str()).await, None, "replace never creates");
    put(store, name.as_str(), "old").await;
    assert!(!store.replace(&name, &value(&name, "other"), &value(&name, "new"), None).await.unwrap());
    assert_eq!(get(store, name.as_str()).await.as_deref(), Some("old"));
    let lease = store.grant(Duration::from_secs(30)).await.unwrap();
    assert!(store.replace(&name, &value(&name, "old"), &value(&name, "new"), Some(&lease)).await.unwrap());
    assert_eq!(get(&other, name.as_str()).await.as_deref(), Some("new"));
    store.keep_alive(&lease).await.unwrap();
    assert!(!other.replace(&name, &value(&name, "old"), &value(&name, "theirs"), None).await.unwrap());
    assert_eq!(get(store, name.as_str()).await.as_deref(), Some("new"));
}

async fn create_only_when_absent(bench: Bench) {
    let (store, other) = (&*bench.store, bench.other());
    let name = key("subnets/10.244.5.0-24");
    assert!(store.create(&name, &value(&name, "mine"), None).await.unwrap(), "first create");
    assert!(!store.create(&name, &value(&name, "again"), None).await.unwrap(), "second create");
    assert!(!other.create(&name, &value(&name, "theirs"), None).await.unwrap(), "create by another client");
    assert_eq!(get(store, name.as_str()).await.as_deref(), Some("mine"));
    // Free again once deleted.
    assert!(store.delete_if(&name, &value(&name, "mine")).await.unwrap());
    assert!(other.create(&name, &value(&name, "theirs"), None).await.unwrap(), "create after delete");
    assert_eq!(get(store, name.as_str()).await.as_deref(), Some("theirs"));
}

/// Two clients create the same key at the same moment: exactly one wins, and the
/// key holds the winner's value.
async fn racing_creates_have_one_winner(bench: Bench) {
    let contenders = [bench.store.clone(), Arc::new(bench.other())];
    for attempt in 0..20 {
        let name = key(&format!("subnets/10.244.{attempt}.0-24"));
        let barrier = Arc::new(tokio::sync::Barrier::new(2));
        let tasks: Vec<_> = contenders
            .iter()
            .zip(["a", "b"])
            .map(|(store, text)| {
                let (store, barrier, name) = (store.clone(), barrier.clone(), name.clone());
                tokio::spawn(async move {
                    let value = value(&name, text);
                    barrier.wait().await;
                    store.create(&name, &value, None).await.unwrap()
                })
            })
            .collect();
        let mut won = Vec::new();
        for (task, text) in tasks.into_iter().zip(["a", "b"]) {
            if task.await.unwrap() {
                won.push(text);
            }
        }
        assert_eq!(won.len(), 1, "attempt {attempt}: winners {won:?}");
        assert_eq!(get(&*bench.store, name.as_str()).await.as_deref(), Some(won[0]), "attempt {attempt}");
    }
}

async fn delete_if_only_while_it_holds_the_value(bench: Bench) {
    let store = &*bench.store;
    let name = key("arp/11.11.11.3");
    put(store, name.as_str(), "02:42:c0:a8:00:03").await;
    // Someone else's newer value is kept.
    assert!(!store.delete_if(&name, &value(&name, "02:42:c0:a8:00:09")).await.unwrap());
    assert_eq!(get(store, name.as_str()).await.as_deref(), Some("02:42:c0:a8:00:03"));
    assert!(store.delete_if(&name, &value(&name, "02:42:c0:a8:00:03")).await.unwrap());
    assert_eq!(get(store, name.as_str()).await, None);
    // Nothing left to remove.
    assert!(!store.delete_if(&name, &value(&name, "02:42:c0:a8:00:03")).await.unwrap());
    assert!(!store.delete_if(&key("nothing/here"), &value(&name, "x")).await.unwrap());
}

async fn list_gives_one_folder(bench: Bench) {
    let store = &*bench.store;
    put(store, "arp/11.11.11.2", "02:42:c0:a8:00:02").await;
    put(store, "arp/11.11.11.3", "02:42:c0:a8:00:03").await;
    put(store, "fdb/02:42:c0:a8:00:02", "192.168.104.2").await;
    // A folder whose name starts like `arp` is another folder.
    put(store, "arpx/11.11.11.4", "02:42:c0:a8:00:04").await;
    put(store, "config", "{}").await;
    let listed = |folder: &'static str| async move {
        let mut listed: Vec<(String, String)> = store
            .list(folder)
            .await
            .unwrap_or_else(|e| panic!("list {folder}: {e}"))
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.trimmed().to_string()))
            .collect();
        listed.sort();
        listed
    };
    let pairs = |pairs: &[(&str, &str)]| pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<Vec<_>>();
    assert_eq!(
        listed("arp").await,
        pairs(&[("arp/11.11.11.2", "02:42:c0:a8:00:02"), ("arp/11.11.11.3", "02:42:c0:a8:00:03")])
    );
    assert_eq!(listed("fdb").await, pairs(&[("fdb/02:42:c0:a8:00:02", "192.168.104.2")]));
    // The root's own keys only, not the folders' keys.
    assert_eq!(listed("").await, pairs(&[("config", "{}")]));
    assert_eq!(listed("subnets").await, pairs(&[]));
}

/// A leased value stays while the lease is kept alive, past its TTL; once the
/// keep-alives stop it goes, someone else can take the key, and the lease is
/// reported expired without touching their value.
async fn a_kept_lease_outlives_its_ttl_then_expires(bench: Bench) {
    let (store, other) = (&*bench.store, bench.other());
    let name = key("subnets/10.244.7.0-24");
    let lease = store.grant(Duration::from_secs(2)).await.unwrap();
    assert!(lease.ttl >= Duration::from_secs(2), "{lease:?}");
    assert!(store.create(&name, &value(&name, "mine"), Some(&lease)).await.unwrap());
    // 3 s of keep-alives every 0.5 s: well past the TTL of 2 s.
    for _ in 0..6 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        store.keep_alive(&lease).await.unwrap_or_else(|e| panic!("keep alive: {e}"));
        assert_eq!(get(store, name.as_str()).await.as_deref(), Some("mine"), "gone while kept alive");
    }
    // No more keep-alives: gone within the TTL and a generous margin (etcd checks
    // expiry on its own schedule).
    let stopped = Instant::now();
    assert!(support::eventually(10, || async { get(store, name.as_str()).await.is_none() }).await, "still there");
    assert!(stopped.elapsed() >= Duration::from_secs(1), "gone {:?} after the last keep-alive", stopped.elapsed());
    assert!(other.create(&name, &value(&name, "theirs"), None).await.unwrap(), "create by another after expiry");
    match store.keep_alive(&lease).await {
        Err(Error::LeaseExpired(id)) => assert_eq!(id, lease.id),
        other => panic!("keep alive of an expired lease: {other:?}"),
    }
    assert_eq!(get(store, name.as_str()).await.as_deref(), Some("theirs"));
}
