//! A folder store shared with someone hostile (or careless): whatever they plant in
//! it (symlinks, FIFOs, devices, huge files, files at guessable temporary names) is
//! never followed, never blocks us, is never read without bound, and never makes us
//! write outside the store.

mod support;

use std::os::unix::fs::{FileTypeExt as _, MetadataExt as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use netlab_store::{AnyStore, Backoff, Change, Error, Store, MAX_VALUE};
use support::{expect_put, get, key, next_change, promptly, put, snapshot, start_follow, value, Bench, Kind};

const MAC: &str = "02:42:c0:a8:00:03";

/// A file outside the store holding `secret`, next to the store's root.
fn outside(bench: &Bench, name: &str) -> PathBuf {
    let path = bench.root().parent().unwrap().join(name);
    std::fs::write(&path, "secret\n").unwrap();
    path
}

fn assert_refused<T: std::fmt::Debug>(what: &str, result: Result<T, Error>, path: &Path) {
    match result {
        Err(Error::Refused { path: refused, .. }) if refused == path => {}
        other => panic!("{what}: expected refused {}, got {other:?}", path.display()),
    }
}

/// The names in a folder, hidden ones included.
fn names(folder: &Path) -> Vec<String> {
    let mut names: Vec<String> =
        std::fs::read_dir(folder).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    names
}

/// A key planted as a symlink: get refuses it, list and follow leave it out, and a
/// put replaces the link itself instead of writing through it.
#[test]
fn a_symlinked_key_is_refused_and_replaced() {
    support::run(Kind::Dir, |bench: Bench| async move {
        let store = &*bench.store;
        let secret = outside(&bench, "outside");
        put(store, "arp/11.11.11.2", "02:42:c0:a8:00:02").await;
        let link = bench.root().join("arp/11.11.11.3");
        std::os::unix::fs::symlink(&secret, &link).unwrap();
        let name = key("arp/11.11.11.3");

        assert_refused("get", store.get(&name).await, &link);
        let listed = store.list("arp").await.unwrap();
        assert_eq!(listed.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(), ["arp/11.11.11.2"]);
        let mut changes = start_follow(&bench.store, &["arp"]);
        assert_eq!(snapshot(&mut changes).await.keys().collect::<Vec<_>>(), ["arp/11.11.11.2"]);
        // The link is not a value: nothing to delete, nothing to create over.
        assert!(!store.delete_if(&name, &value(&name, "secret")).await.unwrap());
        assert!(!store.create(&name, &value(&name, MAC), None).await.unwrap());
        assert!(std::fs::symlink_metadata(&link).unwrap().file_type().is_symlink(), "the link was removed");

        put(store, name.as_str(), MAC).await;
        assert_eq!(std::fs::read_to_string(&secret).unwrap(), "secret\n", "written through the link");
        assert!(std::fs::symlink_metadata(&link).unwrap().file_type().is_file(), "the link was not replaced");
        assert_eq!(get(store, name.as_str()).await.as_deref(), Some(MAC));
        expect_put(&mut changes, name.as_str(), MAC).await;

        // A hard link to an outside file is replaced too, not written into.
        let linked = outside(&bench, "linked");
        std::fs::hard_link(&linked, bench.root().join("arp/11.11.11.4")).unwrap();
        put(store, "arp/11.11.11.4", MAC).await;
        assert_eq!(std::fs::read_to_string(&linked).unwrap(), "secret\n", "written through a hard link");
    });
}

/// `arp/` planted as a symlink to another folder: every operation refuses it, nothing
/// is read from or written to that folder, and a follower reports the failure until
/// the folder is a real one again.
#[test]
fn a_symlinked_folder_is_refused() {
    support::run(Kind::Dir, |bench: Bench| async move {
        let store = &*bench.store;
        let elsewhere = bench.root().parent().unwrap().join("elsewhere");
        std::fs::create_dir_all(&elsewhere).unwrap();
        std::fs::write(elsewhere.join("11.11.11.3"), "02:42:c0:a8:00:09\n").unwrap();
        std::fs::create_dir_all(bench.root()).unwrap();
        let arp = bench.root().join("arp");
        std::os::unix::fs::symlink(&elsewhere, &arp).unwrap();
        let name = key("arp/11.11.11.3");
        let mine = value(&name, MAC);

        assert_refused("put", store.put(&name, &mine, None).await, &arp);
        assert_refused("create", store.create(&name, &mine, None).await, &arp);
        assert_refused("get", store.get(&name).await, &arp);
        assert_refused("list", store.list("arp").await, &arp);
        assert_refused("delete_if", store.delete_if(&name, &value(&name, "02:42:c0:a8:00:09")).await, &arp);
        assert_eq!(names(&elsewhere), ["11.11.11.3"]);
        assert_eq!(std::fs::read_to_string(elsewhere.join("11.11.11.3")).unwrap(), "02:42:c0:a8:00:09\n");

        let (sender, _receiver) = tokio::sync::mpsc::channel(8);
        let mut backoff = Backoff::new();
        let attempt = store.follow_once(&["arp", "fdb"], &sender, &mut backoff);
        match tokio::time::timeout(Duration::from_secs(5), attempt).await {
            Ok(Err(problem)) => assert!(problem.to_string().contains(&arp.display().to_string()), "{problem}"),
            other => panic!("follow_once over a symlinked folder: {other:?}"),
        }
        let mut changes = start_follow(&bench.store, &["arp", "fdb"]);
        let first = next_change(&mut changes).await;
        assert!(matches!(&first, Change::Failed(Error::Refused { path, .. }) if *path == arp), "{first:?}");

        // Made a real folder again: the next attempt sends a whole snapshot.
        std::fs::remove_file(&arp).unwrap();
        put(store, name.as_str(), MAC).await;
        loop {
            match next_change(&mut changes).await {
                Change::Failed(_) => continue,
                Change::Reset => break,
                other => panic!("expected Failed or Reset, got {other:?}"),
            }
        }
        match next_change(&mut changes).await {
            Change::Put(k, v) if k == name && v.trimmed() == MAC => {}
            other => panic!("expected the Put of {name}, got {other:?}"),
        }
        assert!(matches!(next_change(&mut changes).await, Change::Synced));
        assert_eq!(names(&elsewhere), ["11.11.11.3"]);
    });
}

/// A FIFO at a key: opening it to read would block until a writer comes. Every
/// operation returns at once, and it is still there.
#[test]
fn a_fifo_is_refused_without_blocking() {
    support::run(Kind::Dir, |bench: Bench| async move {
        put(&*bench.store, "arp/11.11.11.2", "02:42:c0:a8:00:02").await;
        let fifo = bench.root().join("arp/11.11.11.3");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o644)).unwrap();
        let name = key("arp/11.11.11.3");
        let (store, n) = (bench.store.clone(), name.clone());
        let got = promptly("get of a fifo", move || futures::executor::block_on(store.get(&n))).await;
        assert_refused("get", got, &fifo);
        let store = bench.store.clone();
        let listed = promptly("list with a fifo", move || futures::executor::block_on(store.list("arp"))).await;
        assert_eq!(listed.unwrap().iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(), ["arp/11.11.11.2"]);
        let (store, n) = (bench.store.clone(), name.clone());
        let removed =
            promptly("delete_if of a fifo", move || futures::executor::block_on(store.delete_if(&n, &value(&n, MAC))))
                .await;
        assert!(matches!(removed, Ok(false)), "{removed:?}");
        let (store, n) = (bench.store.clone(), name.clone());
        let created = promptly("create over a fifo", move || {
            futures::executor::block_on(store.create(&n, &value(&n, MAC), None))
        })
        .await;
        assert!(matches!(created, Ok(false)), "{created:?}");
        assert!(std::fs::symlink_metadata(&fifo).unwrap().file_type().is_fifo(), "the fifo was removed");
        // A follower starts (next_change gives up after 10 s) and leaves it out.
        let mut changes = start_follow(&bench.store, &["arp"]);
        assert_eq!(snapshot(&mut changes).await.keys().collect::<Vec<_>>(), ["arp/11.11.11.2"]);
    });
}

/// A key linked to /dev/zero: an endless source, refused before anything is read (a
/// bounded read would say TooLarge instead).
#[test]
fn a_link_to_dev_zero_is_refused_unread() {
    support::run(Kind::Dir, |bench: Bench| async move {
        put(&*bench.store, "arp/11.11.11.2", "02:42:c0:a8:00:02").await;
        let link = bench.root().join("arp/11.11.11.3");
        std::os::unix::fs::symlink("/dev/zero", &link).unwrap();
        let (store, name) = (bench.store.clone(), key("arp/11.11.11.3"));
        let got = promptly("get of /dev/zero", move || futures::executor::block_on(store.get(&name))).await;
        assert_refused("get", got, &link);
        assert_eq!(bench.store.list("arp").await.unwrap().len(), 1);
        let mut changes = start_follow(&bench.store, &["arp"]);
        assert_eq!(snapshot(&mut changes).await.keys().collect::<Vec<_>>(), ["arp/11.11.11.2"]);
    });
}

/// A device node at a key (made with mknod, so root): refused, never opened.
#[test]
fn a_device_node_is_refused() {
    assert!(nix::unistd::geteuid().is_root(), "this test makes a device node: run it as root");
    support::run(Kind::Dir, |bench: Bench| async move {
        put(&*bench.store, "arp/11.11.11.2", "02:42:c0:a8:00:02").await;
        let node = bench.root().join("arp/11.11.11.3");
        // The numbers of /dev/zero.
        let mode = nix::sys::stat::Mode::from_bits_truncate(0o644);
        nix::sys::stat::mknod(&node, nix::sys::stat::SFlag::S_IFCHR, mode, nix::sys::stat::makedev(1, 5)).unwrap();
        let (store, name) = (bench.store.clone(), key("arp/11.11.11.3"));
        let got = promptly("get of a device", move || futures::executor::block_on(store.get(&name))).await;
        assert_refused("get", got, &node);
        assert_eq!(bench.store.list("arp").await.unwrap().len(), 1);
    });
}

/// The peak memory of this process (VmHWM), in bytes.
fn peak_memory() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).expect("VmHWM in /proc/self/status");
    line.split_whitespace().nth(1).unwrap().parse::<u64>().unwrap() * 1024
}

/// A regular file far over the limit (256 MiB, sparse): TooLarge, and only its first
/// bytes are read (the peak memory does not grow by anything like its size).
#[test]
fn an_oversized_file_is_refused_unread() {
    support::run(Kind::Dir, |bench: Bench| async move {
        let store = &*bench.store;
        put(store, "arp/11.11.11.2", "02:42:c0:a8:00:02").await;
        let huge = bench.root().join("arp/11.11.11.3");
        let size = 256 << 20;
        std::fs::File::create(&huge).unwrap().set_len(size).unwrap();
        let name = key("arp/11.11.11.3");
        let before = peak_memory();
        match store.get(&name).await {
            Err(Error::TooLarge { key, size: seen, limit, .. }) => {
                assert_eq!((key.as_str(), limit), (name.as_str(), MAX_VALUE));
                assert!(seen > MAX_VALUE, "reported size {seen}");
            }
            other => panic!("get of a 256 MiB file: {other:?}"),
        }
        assert_eq!(store.list("arp").await.unwrap().len(), 1);
        assert!(!store.delete_if(&name, &value(&name, MAC)).await.unwrap());
        let mut changes = start_follow(&bench.store, &["arp"]);
        assert_eq!(snapshot(&mut changes).await.keys().collect::<Vec<_>>(), ["arp/11.11.11.2"]);
        let grown = peak_memory().saturating_sub(before);
        assert!(grown < 64 << 20, "peak memory grew by {} MiB", grown >> 20);
        assert_eq!(std::fs::metadata(&huge).unwrap().len(), size, "the file was changed");
    });
}

/// Symlinks planted at every temporary name one could guess (with our pid, the
/// usual suffixes): writes never go through them, and nothing is left behind.
#[test]
fn temporary_names_cannot_be_aimed_elsewhere() {
    support::run(Kind::Dir, |bench: Bench| async move {
        let store = &*bench.store;
        let secret = outside(&bench, "outside");
        let never = bench.root().parent().unwrap().join("never-created");
        put(store, "arp/11.11.11.2", "02:42:c0:a8:00:02").await;
        let arp = bench.root().join("arp");
        let pid = std::process::id();
        let mut planted = Vec::new();
        for name in ["11.11.11.3", "11.11.11.4"] {
            for kind in ["tmp", "new", "del"] {
                for guess in [
                    format!(".{name}.{pid}.{kind}"),
                    format!(".{name}.{kind}"),
                    format!(".{name}.0.{kind}"),
                    format!(".{name}.0000000000000000.{kind}"),
                    format!("{name}.{kind}"),
                ] {
                    std::os::unix::fs::symlink(&secret, arp.join(&guess)).unwrap();
                    planted.push((guess, secret.clone()));
                }
            }
            // A dangling one: a write through it would create the file it names.
            let guess = format!(".{name}~");
            std::os::unix::fs::symlink(&never, arp.join(&guess)).unwrap();
            planted.push((guess, never.clone()));
        }
        for guess in [".tmp", ".new", ".del"] {
            std::os::unix::fs::symlink(&secret, arp.join(guess)).unwrap();
            planted.push((guess.to_string(), secret.clone()));
        }

        // Every writing operation, leased values and their keep-alives included.
        put(store, "arp/11.11.11.3", MAC).await;
        put(store, "arp/11.11.11.3", "02:42:c0:a8:00:33").await;
        let name = key("arp/11.11.11.4");
        let lease = store.grant(Duration::from_secs(30)).await.unwrap();
        assert!(store.create(&name, &value(&name, MAC), Some(&lease)).await.unwrap());
        store.keep_alive(&lease).await.unwrap();
        assert!(!store.delete_if(&name, &value(&name, "02:42:c0:a8:00:09")).await.unwrap());
        assert!(store.delete_if(&name, &value(&name, MAC)).await.unwrap());
        assert!(store.create(&name, &value(&name, MAC), None).await.unwrap());

        assert_eq!(std::fs::read_to_string(&secret).unwrap(), "secret\n", "written through a planted link");
        assert!(!never.exists(), "a dangling planted link was followed");
        for (guess, target) in &planted {
            assert_eq!(std::fs::read_link(arp.join(guess)).ok().as_ref(), Some(target), "{guess} was replaced");
        }
        // Only the plants and the keys: no temporary file left over.
        let mut want: Vec<String> = planted.iter().map(|(guess, _)| guess.clone()).collect();
        want.extend(["11.11.11.2", "11.11.11.3", "11.11.11.4"].map(String::from));
        want.sort();
        assert_eq!(names(&arp), want);
        assert_eq!(get(store, "arp/11.11.11.3").await.as_deref(), Some("02:42:c0:a8:00:33"));
    });
}

/// delete_if of a key someone else has rewritten (by hand, or leased) keeps their
/// file exactly as it was.
#[test]
fn delete_if_keeps_someone_elses_value() {
    support::run(Kind::Dir, |bench: Bench| async move {
        let store = &*bench.store;
        let name = key("arp/11.11.11.3");
        put(store, name.as_str(), MAC).await;
        let file = bench.root().join("arp/11.11.11.3");
        let theirs = b"02:42:c0:a8:00:09\n";
        std::fs::write(&file, theirs).unwrap();
        let inode = std::fs::metadata(&file).unwrap().ino();
        assert!(!store.delete_if(&name, &value(&name, MAC)).await.unwrap());
        assert_eq!(std::fs::read(&file).unwrap(), theirs);
        assert_eq!(std::fs::metadata(&file).unwrap().ino(), inode, "their file was replaced by a copy");
        // Leased by another client: still theirs.
        let other = bench.other();
        let lease = other.grant(Duration::from_secs(30)).await.unwrap();
        other.put(&name, &value(&name, "02:42:c0:a8:00:10"), Some(&lease)).await.unwrap();
        let leased = std::fs::read(&file).unwrap();
        assert!(!store.delete_if(&name, &value(&name, MAC)).await.unwrap());
        assert_eq!(std::fs::read(&file).unwrap(), leased);
        assert_eq!(names(&bench.root().join("arp")), ["11.11.11.3"], "a file left over");
    });
}

/// A file nobody else may read (another user's, mode 0600) is unusable like any
/// other: left out, not a failure of the whole folder. Runs as `nobody` on a thread
/// of its own (root reads everything).
#[test]
fn an_unreadable_file_is_left_out() {
    assert!(nix::unistd::geteuid().is_root(), "this test needs another user's file: run it as root");
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("store");
    std::fs::create_dir_all(root.join("arp")).unwrap();
    for folder in [dir.path(), &root, &root.join("arp")] {
        std::fs::set_permissions(folder, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    }
    std::fs::write(root.join("arp/11.11.11.2"), "02:42:c0:a8:00:02\n").unwrap();
    let private = root.join("arp/11.11.11.3");
    std::fs::write(&private, "02:42:c0:a8:00:03\n").unwrap();
    std::fs::set_permissions(&private, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let store = Arc::new(AnyStore::Dir(netlab_store::DirStore::new(root, Duration::ZERO)));
    let thread = std::thread::spawn(move || {
        // The raw call changes this thread's user only (libc's changes every thread).
        let uid = 65534;
        assert_eq!(unsafe { libc::syscall(libc::SYS_setresuid, uid, uid, uid) }, 0, "become nobody");
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async {
            let listed = store.list("arp").await.map(|l| l.into_iter().map(|(k, _)| k.to_string()).collect::<Vec<_>>());
            let mut changes = start_follow(&store, &["arp"]);
            let (first, second) = (next_change(&mut changes).await, next_change(&mut changes).await);
            // Both checked before failing, to tell which of list and follow is wrong.
            let followed =
                matches!((&first, &second), (Change::Reset, Change::Put(k, _)) if k.as_str() == "arp/11.11.11.2");
            let listed_ok = matches!(listed.as_deref(), Ok([only]) if only == "arp/11.11.11.2");
            assert!(listed_ok && followed, "list: {listed:?}\nfollow: {first:?}, then {second:?}");
            assert!(matches!(next_change(&mut changes).await, Change::Synced));
        });
    });
    if let Err(panic) = thread.join() {
        std::panic::resume_unwind(panic);
    }
}
