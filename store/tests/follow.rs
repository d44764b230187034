//! Following a store: a snapshot (Reset, the Puts, Synced), then each change as it
//! happens, on both backends; on the folder store also files written by hand and
//! leased values expiring with nobody writing.

mod support;

use std::time::Duration;

use netlab_store::{Change, Store};
use support::{expect_delete, expect_put, key, next_change, on_both_stores, put, snapshot, start_follow, value, Bench};

on_both_stores!(snapshot_then_changes, an_expired_lease_is_a_delete);

const FOLDERS: &[&str] = &["arp", "fdb"];

async fn snapshot_then_changes(bench: Bench) {
    let store = &*bench.store;
    put(store, "arp/11.11.11.2", "02:42:c0:a8:00:02").await;
    put(store, "fdb/02:42:c0:a8:00:02", "192.168.104.2").await;
    // Not in a followed folder.
    put(store, "subnets/10.244.5.0-24", "{}").await;
    put(store, "config", "{}").await;

    let mut changes = start_follow(&bench.store, FOLDERS);
    let first = snapshot(&mut changes).await;
    let want = [("arp/11.11.11.2", "02:42:c0:a8:00:02"), ("fdb/02:42:c0:a8:00:02", "192.168.104.2")];
    assert_eq!(first, want.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect());

    // Another client's put, then one that replaces a value.
    put(&bench.other(), "arp/11.11.11.3", "02:42:c0:a8:00:03").await;
    expect_put(&mut changes, "arp/11.11.11.3", "02:42:c0:a8:00:03").await;
    put(store, "fdb/02:42:c0:a8:00:02", "192.168.104.9").await;
    expect_put(&mut changes, "fdb/02:42:c0:a8:00:02", "192.168.104.9").await;

    // Changes outside the followed folders are not reported: the next change is the
    // put after them.
    put(store, "subnets/10.244.6.0-24", "{}").await;
    put(store, "arpx/11.11.11.4", "02:42:c0:a8:00:04").await;
    put(store, "config", "{\"changed\":1}").await;
    put(store, "arp/11.11.11.4", "02:42:c0:a8:00:04").await;
    expect_put(&mut changes, "arp/11.11.11.4", "02:42:c0:a8:00:04").await;

    // A delete_if that does not match changes nothing; one that matches is a Delete.
    let name = key("arp/11.11.11.2");
    assert!(!store.delete_if(&name, &value(&name, "02:42:c0:a8:00:09")).await.unwrap());
    assert!(store.delete_if(&name, &value(&name, "02:42:c0:a8:00:02")).await.unwrap());
    expect_delete(&mut changes, "arp/11.11.11.2").await;

    // A follower that started later sees the same content as its snapshot.
    let mut later = start_follow(&bench.store, FOLDERS);
    let now = snapshot(&mut later).await;
    let want = [
        ("arp/11.11.11.3", "02:42:c0:a8:00:03"),
        ("arp/11.11.11.4", "02:42:c0:a8:00:04"),
        ("fdb/02:42:c0:a8:00:02", "192.168.104.9"),
    ];
    assert_eq!(now, want.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect());
}

/// A leased value that is not kept alive goes, and the follower is told, with
/// nobody writing anything (the folder store wakes at the expiry). Keep-alives
/// themselves are not news.
async fn an_expired_lease_is_a_delete(bench: Bench) {
    let store = &*bench.store;
    let mut changes = start_follow(&bench.store, FOLDERS);
    assert!(snapshot(&mut changes).await.is_empty());
    let name = key("arp/11.11.11.7");
    let lease = store.grant(Duration::from_secs(2)).await.unwrap();
    assert!(store.create(&name, &value(&name, "02:42:c0:a8:00:07"), Some(&lease)).await.unwrap());
    expect_put(&mut changes, "arp/11.11.11.7", "02:42:c0:a8:00:07").await;
    store.keep_alive(&lease).await.unwrap();
    put(store, "arp/11.11.11.8", "02:42:c0:a8:00:08").await;
    expect_put(&mut changes, "arp/11.11.11.8", "02:42:c0:a8:00:08").await;
    // No more keep-alives: the leased key goes (next_change waits up to 10 s).
    expect_delete(&mut changes, "arp/11.11.11.7").await;
}

/// `echo MAC > arp/IP` and `rm arp/IP`, as in the tutorial.
#[test]
fn dir_files_written_by_hand() {
    support::run(support::Kind::Dir, |bench: Bench| async move {
        let arp = bench.root().join("arp");
        std::fs::create_dir_all(&arp).unwrap();
        std::fs::write(arp.join("11.11.11.2"), "02:42:c0:a8:00:02\n").unwrap();
        let mut changes = start_follow(&bench.store, FOLDERS);
        let first = snapshot(&mut changes).await;
        assert_eq!(first.get("arp/11.11.11.2").map(String::as_str), Some("02:42:c0:a8:00:02"), "{first:?}");

        std::fs::write(arp.join("11.11.11.3"), "02:42:c0:a8:00:03\n").unwrap();
        expect_put(&mut changes, "arp/11.11.11.3", "02:42:c0:a8:00:03").await;
        // Rewritten in place (truncated, then written): one Put of the new value.
        std::fs::write(arp.join("11.11.11.3"), "02:42:c0:a8:00:33\n").unwrap();
        expect_put(&mut changes, "arp/11.11.11.3", "02:42:c0:a8:00:33").await;
        // Renamed into place, as editors do.
        std::fs::write(arp.join(".edit"), "02:42:c0:a8:00:04\n").unwrap();
        std::fs::rename(arp.join(".edit"), arp.join("11.11.11.4")).unwrap();
        expect_put(&mut changes, "arp/11.11.11.4", "02:42:c0:a8:00:04").await;
        std::fs::remove_file(arp.join("11.11.11.2")).unwrap();
        expect_delete(&mut changes, "arp/11.11.11.2").await;
        // A name that is no key (hidden, or with a space) is not reported.
        std::fs::write(arp.join(".hidden"), "x\n").unwrap();
        std::fs::write(arp.join("a b"), "x\n").unwrap();
        std::fs::write(bench.root().join("fdb").join("02:42:c0:a8:00:03"), "192.168.104.3\n").unwrap();
        expect_put(&mut changes, "fdb/02:42:c0:a8:00:03", "192.168.104.3").await;
        // The store reads what was written by hand.
        assert_eq!(support::get(&*bench.store, "arp/11.11.11.3").await.as_deref(), Some("02:42:c0:a8:00:33"));
    });
}

/// A key that turns into something unusable counts as gone for the follower.
#[test]
fn dir_a_key_replaced_by_garbage_is_a_delete() {
    support::run(support::Kind::Dir, |bench: Bench| async move {
        let store = &*bench.store;
        put(store, "arp/11.11.11.3", "02:42:c0:a8:00:03").await;
        let mut changes = start_follow(&bench.store, FOLDERS);
        assert_eq!(snapshot(&mut changes).await.len(), 1);
        let arp = bench.root().join("arp");
        // Not UTF-8.
        std::fs::write(arp.join("11.11.11.3"), b"\xff\xfe\n").unwrap();
        expect_delete(&mut changes, "arp/11.11.11.3").await;
        std::fs::write(arp.join("11.11.11.3"), "02:42:c0:a8:00:03\n").unwrap();
        expect_put(&mut changes, "arp/11.11.11.3", "02:42:c0:a8:00:03").await;
        // A symlink renamed over it.
        std::os::unix::fs::symlink("/etc/hostname", arp.join(".link")).unwrap();
        std::fs::rename(arp.join(".link"), arp.join("11.11.11.3")).unwrap();
        expect_delete(&mut changes, "arp/11.11.11.3").await;
        // The follower is still following.
        put(store, "arp/11.11.11.5", "02:42:c0:a8:00:05").await;
        expect_put(&mut changes, "arp/11.11.11.5", "02:42:c0:a8:00:05").await;
    });
}

/// Removing a followed folder ends that attempt; the follower is told, then gets a
/// fresh snapshot once the folder is back.
#[test]
fn dir_a_removed_folder_starts_over() {
    support::run(support::Kind::Dir, |bench: Bench| async move {
        put(&*bench.store, "arp/11.11.11.3", "02:42:c0:a8:00:03").await;
        let mut changes = start_follow(&bench.store, FOLDERS);
        assert_eq!(snapshot(&mut changes).await.len(), 1);
        std::fs::remove_dir_all(bench.root().join("fdb")).unwrap();
        // Nothing was in fdb/: no Delete, only the failure.
        let failed = next_change(&mut changes).await;
        assert!(matches!(failed, Change::Failed(_)), "expected Failed, got {failed:?}");
        // The next attempt makes the folder again and starts with a snapshot.
        let again = snapshot(&mut changes).await;
        assert_eq!(again.get("arp/11.11.11.3").map(String::as_str), Some("02:42:c0:a8:00:03"), "{again:?}");
        assert!(bench.root().join("fdb").is_dir());
    });
}
