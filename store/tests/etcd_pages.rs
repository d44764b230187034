//! etcd answers come in pages: lists and follow snapshots of more keys than one page
//! holds, pages too large for one message, and values over the limit written by some
//! other etcd client.

mod support;

use std::collections::BTreeSet;

use futures::StreamExt as _;
use netlab_store::{Change, Error, Store, MAX_VALUE};
use support::{expect_delete, expect_put, key, next_change, put, snapshot, start_follow, value, Bench, Kind};

/// More than one page (10,000 keys): the list continues after the last key of the first.
const MANY: usize = 12_000;

fn address(i: usize) -> String {
    format!("10.0.{}.{}", i / 250, i % 250 + 1)
}

/// A raw etcd client, as another program writing into the store would use.
async fn raw_client() -> etcd_client::Client {
    let endpoint = format!("http://{}", support::ENDPOINT);
    etcd_client::Client::connect([endpoint], None).await.expect("connect to etcd")
}

#[test]
fn etcd_lists_and_follows_more_keys_than_a_page() {
    support::run(Kind::Etcd, |bench: Bench| async move {
        let store = &*bench.store;
        // Many puts in flight at once: etcd batches them.
        futures::stream::iter(0..MANY)
            .map(|i| async move { put(store, &format!("arp/{}", address(i)), "02:42:c0:a8:00:03").await })
            .buffer_unordered(32)
            .collect::<()>()
            .await;
        put(store, "fdb/02:42:c0:a8:00:03", "192.168.104.3").await;
        put(store, "arpx/10.0.0.1", "02:42:c0:a8:00:03").await;
        let want: BTreeSet<String> = (0..MANY).map(|i| format!("arp/{}", address(i))).collect();

        let listed = store.list("arp").await.unwrap_or_else(|e| panic!("list arp: {e}"));
        assert_eq!(listed.len(), MANY, "keys listed");
        assert_eq!(listed.iter().map(|(k, _)| k.to_string()).collect::<BTreeSet<_>>(), want);
        assert!(listed.iter().all(|(_, v)| v.as_str() == "02:42:c0:a8:00:03"));

        // One folder (its own range), then two (the whole prefix, filtered).
        let mut changes = start_follow(&bench.store, &["arp"]);
        let first = snapshot(&mut changes).await;
        assert_eq!(first.keys().cloned().collect::<BTreeSet<_>>(), want);
        drop(changes);
        let mut changes = start_follow(&bench.store, &["arp", "fdb"]);
        let both = snapshot(&mut changes).await;
        assert_eq!(both.len(), MANY + 1, "keys in the snapshot of arp and fdb");
        assert!(both.contains_key("fdb/02:42:c0:a8:00:03") && !both.contains_key("arpx/10.0.0.1"));
        // The watch starts right after the snapshot's revision.
        put(store, "arp/10.1.0.1", "02:42:c0:a8:00:04").await;
        expect_put(&mut changes, "arp/10.1.0.1", "02:42:c0:a8:00:04").await;
    });
}

/// Values longer than a store holds, put by another etcd client: refused by get,
/// left out of lists and snapshots, a Delete for a follower. So many that one page
/// of them is over the client's message limit (16 MiB): the page is asked again smaller.
#[test]
fn etcd_oversized_values_are_left_out() {
    support::run(Kind::Etcd, |bench: Bench| async move {
        let store = &*bench.store;
        put(store, "arp/10.0.0.1", "02:42:c0:a8:00:01").await;
        let mut raw = raw_client().await;
        let big = "y".repeat(20 * 1024);
        let full = |i: usize| format!("{}/arp/10.1.{}.{}", support::PREFIX, i / 250, i % 250 + 1);
        let puts = futures::stream::iter(0..1000).map(|i| {
            let (mut raw, key, big) = (raw.clone(), full(i), big.clone());
            async move { raw.put(key, big, None).await.expect("raw put") }
        });
        puts.buffer_unordered(32).collect::<Vec<_>>().await;
        put(store, "arp/10.2.0.1", "02:42:c0:a8:00:02").await;

        let oversized = key("arp/10.1.0.1");
        match store.get(&oversized).await {
            Err(Error::TooLarge { limit, .. }) => assert_eq!(limit, MAX_VALUE),
            other => panic!("get of a 20 KiB value: {other:?}"),
        }
        let listed: Vec<String> = store
            .list("arp")
            .await
            .unwrap_or_else(|e| panic!("list arp: {e}"))
            .iter()
            .map(|(k, _)| k.to_string())
            .collect();
        assert_eq!(listed, ["arp/10.0.0.1", "arp/10.2.0.1"]);

        let mut changes = start_follow(&bench.store, &["arp", "fdb"]);
        let first = snapshot(&mut changes).await;
        assert_eq!(first.keys().map(String::as_str).collect::<Vec<_>>(), ["arp/10.0.0.1", "arp/10.2.0.1"]);
        // A usable key overwritten with an oversized value is gone for the follower.
        raw.put(format!("{}/arp/10.0.0.1", support::PREFIX), big.clone(), None).await.unwrap();
        expect_delete(&mut changes, "arp/10.0.0.1").await;
        // Still following.
        raw.put(format!("{}/arp/10.0.0.1", support::PREFIX), "02:42:c0:a8:00:09", None).await.unwrap();
        expect_put(&mut changes, "arp/10.0.0.1", "02:42:c0:a8:00:09").await;
        // delete_if of an oversized value compares, it does not fail.
        let name = key("arp/10.1.0.1");
        assert!(!store.delete_if(&name, &value(&name, "02:42:c0:a8:00:09")).await.unwrap());
        assert!(matches!(store.get(&name).await, Err(Error::TooLarge { .. })));
    });
}

/// Keys under the prefix that are not keys of a store (too deep, hidden, with
/// spaces) are nobody's: never listed, never followed.
#[test]
fn etcd_foreign_keys_are_ignored() {
    support::run(Kind::Etcd, |bench: Bench| async move {
        let mut raw = raw_client().await;
        for foreign in ["arp/a/b", "arp/.hidden", "arp/a b", "arp/", "arp"] {
            raw.put(format!("{}/{foreign}", support::PREFIX), "02:42:c0:a8:00:09", None).await.unwrap();
        }
        // Another store's prefix that starts like ours.
        raw.put(format!("{}x/arp/10.0.0.9", support::PREFIX), "02:42:c0:a8:00:09", None).await.unwrap();
        put(&*bench.store, "arp/10.0.0.1", "02:42:c0:a8:00:01").await;
        let listed = bench.store.list("arp").await.unwrap();
        assert_eq!(listed.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(), ["arp/10.0.0.1"]);
        let mut changes = start_follow(&bench.store, &["arp", "fdb"]);
        assert_eq!(snapshot(&mut changes).await.keys().map(String::as_str).collect::<Vec<_>>(), ["arp/10.0.0.1"]);
        raw.put(format!("{}/arp/x/y", support::PREFIX), "02:42:c0:a8:00:09", None).await.unwrap();
        raw.put(format!("{}x/arp/10.0.0.8", support::PREFIX), "02:42:c0:a8:00:09", None).await.unwrap();
        put(&*bench.store, "arp/10.0.0.2", "02:42:c0:a8:00:02").await;
        let next = next_change(&mut changes).await;
        assert!(matches!(&next, Change::Put(k, _) if k.as_str() == "arp/10.0.0.2"), "{next:?}");
    });
}
