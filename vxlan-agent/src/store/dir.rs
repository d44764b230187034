//! The folder store, the tutorial's layout: `PATH/arp/<IP>` holds a MAC and
//! `PATH/fdb/<MAC>` holds a VTEP address, one value per file, so `echo MAC >
//! PATH/arp/IP` by hand works.
//!
//! How it is watched: inotify on `arp/` and `fdb/` (a file counts once it is closed
//! after writing, or renamed into place), plus a full rescan every `poll` interval,
//! which catches what inotify cannot see: writes by another machine to a shared
//! folder (vboxsf, NFS, 9p) and an overflowed event queue. Writes go to a hidden
//! temporary file renamed over the key, so a reader never sees half a value.

use std::collections::BTreeSet;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::time::Duration;

use futures::StreamExt;
use inotify::{EventMask, Inotify, WatchMask};
use tokio::sync::mpsc;

use super::{io_failed, Backoff, Result, Store, Update};
use crate::endpoint::{Entry, Key, Table};

const KINDS: [&str; 2] = ["arp", "fdb"];

pub struct DirStore {
    root: PathBuf,
    poll: Duration,
}

/// A scan: the usable entries, and the files that hold something unusable.
struct Scan {
    table: Table,
    problems: BTreeSet<String>,
}

impl DirStore {
    pub fn new(root: PathBuf, poll: Duration) -> DirStore {
        DirStore { root, poll }
    }

    fn file(&self, key: Key) -> PathBuf {
        self.root.join(key.to_string())
    }

    fn prepare(&self) -> Result<()> {
        for kind in KINDS {
            let dir = self.root.join(kind);
            std::fs::create_dir_all(&dir).map_err(|e| io_failed(format!("create {}", dir.display()), e))?;
        }
        Ok(())
    }

    async fn scan(&self) -> Result<Scan> {
        let root = self.root.clone();
        tokio::task::spawn_blocking(move || scan(&root)).await.map_err(|e| format!("scan: {e}"))?
    }
}

impl Store for DirStore {
    async fn follow_once(&self, updates: &mpsc::Sender<Update>, backoff: &mut Backoff) -> Result<()> {
        self.prepare()?;
        let inotify = Inotify::init().map_err(|e| io_failed("inotify", e))?;
        let mask = WatchMask::CLOSE_WRITE
            | WatchMask::MOVED_TO
            | WatchMask::DELETE
            | WatchMask::MOVED_FROM
            | WatchMask::DELETE_SELF
            | WatchMask::MOVE_SELF;
        let mut watches = Vec::new();
        for kind in KINDS {
            let dir = self.root.join(kind);
            let watch =
                inotify.watches().add(&dir, mask).map_err(|e| io_failed(format!("watch {}", dir.display()), e))?;
            watches.push((watch, kind));
        }
        let mut events = inotify.into_event_stream(vec![0u8; 64 * 1024]).map_err(|e| io_failed("inotify", e))?;

        let Scan { table: mut known, mut problems } = self.scan().await?;
        report(&problems, &BTreeSet::new());
        if updates.send(Update::Snapshot(known.clone())).await.is_err() {
            return Ok(());
        }
        backoff.reset();
        let mut poll = tokio::time::interval(if self.poll.is_zero() { Duration::MAX / 4 } else { self.poll });
        poll.tick().await;
        loop {
            tokio::select! {
                event = events.next() => {
                    let event = match event {
                        Some(Ok(event)) => event,
                        Some(Err(e)) => return Err(io_failed("inotify", e)),
                        None => return Err("inotify ended".into()),
                    };
                    if event.mask.intersects(EventMask::DELETE_SELF | EventMask::MOVE_SELF | EventMask::IGNORED) {
                        return Err(format!("{} was removed", self.root.display()));
                    }
                    if event.mask.contains(EventMask::Q_OVERFLOW) {
                        // Events were lost: only a full rescan knows the truth now.
                        let scan = self.scan().await?;
                        report(&scan.problems, &problems);
                        (known, problems) = (scan.table, scan.problems);
                        if updates.send(Update::Snapshot(known.clone())).await.is_err() {
                            return Ok(());
                        }
                        continue;
                    }
                    let Some(kind) = watches.iter().find(|(w, _)| *w == event.wd).map(|(_, kind)| *kind) else { continue };
                    let Some(name) = event.name.and_then(|n| n.to_str().map(str::to_string)) else { continue };
                    if name.starts_with('.') {
                        continue;
                    }
                    let Some(key) = Key::parse(&format!("{kind}/{name}")) else {
                        tracing::debug!(file = %format!("{kind}/{name}"), "not a store key; ignored");
                        continue;
                    };
                    let update = match read(&self.file(key), key) {
                        Ok(Some(entry)) => {
                            known.set(entry);
                            Update::Set(entry)
                        }
                        Ok(None) => {
                            known.remove(key);
                            Update::Remove(key)
                        }
                        Err(problem) => {
                            tracing::warn!("{problem}; treated as absent");
                            known.remove(key);
                            Update::Remove(key)
                        }
                    };
                    if updates.send(update).await.is_err() {
                        return Ok(());
                    }
                }
                _ = poll.tick() => {
                    let scan = self.scan().await?;
                    report(&scan.problems, &problems);
                    problems = scan.problems;
                    if scan.table != known {
                        known = scan.table;
                        if updates.send(Update::Snapshot(known.clone())).await.is_err() {
                            return Ok(());
                        }
                    }
                }
                _ = updates.closed() => return Ok(()),
            }
        }
    }

    async fn put(&self, entry: &Entry) -> Result<()> {
        self.prepare()?;
        let file = self.file(entry.key());
        let name = file.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        let temporary = file.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
        std::fs::write(&temporary, format!("{}\n", entry.value()))
            .and_then(|()| std::fs::rename(&temporary, &file))
            .map_err(|e| {
                let _ = std::fs::remove_file(&temporary);
                io_failed(format!("write {}", file.display()), e)
            })
    }

    async fn remove(&self, key: Key, expected: &str) -> Result<bool> {
        let file = self.file(key);
        match std::fs::read_to_string(&file) {
            Ok(text) if text.trim() == expected => match std::fs::remove_file(&file) {
                Ok(()) => Ok(true),
                Err(e) if e.kind() == ErrorKind::NotFound => Ok(false),
                Err(e) => Err(io_failed(format!("remove {}", file.display()), e)),
            },
            Ok(_) => Ok(false),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(false),
            Err(e) => Err(io_failed(format!("read {}", file.display()), e)),
        }
    }

    async fn get(&self, key: Key) -> Result<Option<String>> {
        let file = self.file(key);
        match std::fs::read_to_string(&file) {
            Ok(text) => Ok(Some(text.trim().to_string())),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_failed(format!("read {}", file.display()), e)),
        }
    }
}

/// A key's entry; `None` when the file is gone.
fn read(file: &Path, key: Key) -> Result<Option<Entry>> {
    match std::fs::read_to_string(file) {
        Ok(text) => key.entry(&text).map(Some),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_failed(format!("read {}", file.display()), e)),
    }
}

fn scan(root: &Path) -> Result<Scan> {
    let mut table = Table::default();
    let mut problems = BTreeSet::new();
    for kind in KINDS {
        let dir = root.join(kind);
        let entries = std::fs::read_dir(&dir).map_err(|e| io_failed(format!("read {}", dir.display()), e))?;
        for file in entries {
            let file = file.map_err(|e| io_failed(format!("read {}", dir.display()), e))?;
            let Some(name) = file.file_name().to_str().map(str::to_string) else { continue };
            if name.starts_with('.') {
                continue;
            }
            let Some(key) = Key::parse(&format!("{kind}/{name}")) else {
                problems.insert(format!("{}: not a store key", file.path().display()));
                continue;
            };
            match read(&file.path(), key) {
                Ok(Some(entry)) => {
                    table.set(entry);
                }
                Ok(None) => {}
                Err(problem) => {
                    problems.insert(problem);
                }
            }
        }
    }
    Ok(Scan { table, problems })
}

/// Warn about each unusable file once, not at every rescan.
fn report(now: &BTreeSet<String>, before: &BTreeSet<String>) {
    for problem in now.difference(before) {
        tracing::warn!("{problem}; ignored");
    }
}
