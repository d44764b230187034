//! Following a folder store: inotify on each followed folder (a file counts once it
//! is closed after writing, or renamed into place), plus a full rescan every `poll`
//! interval, which catches what inotify cannot see: writes by another machine to a
//! shared folder (vboxsf, NFS, 9p), an overflowed event queue, and leased values
//! expiring.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::{Duration, SystemTime};

use futures::StreamExt;
use inotify::{EventMask, Inotify, WatchDescriptor, WatchMask};
use tokio::sync::mpsc;

use super::read_in;
use super::safe::Folder;
use crate::backend::{Backoff, Change};
use crate::error::{Error, Refusal, Result};
use crate::key::{is_segment, KeyPath, Stored, Value};

/// What a scan of one folder found.
pub struct Scan {
    pub values: BTreeMap<KeyPath, Stored>,
    /// Files that hold something unusable, with why.
    pub problems: BTreeMap<String, String>,
}

/// The usable keys of `folder` ("" for the root's own keys); a missing folder is empty.
pub fn scan_folder(root: &Path, folder: &str) -> Result<Scan> {
    let mut scan = Scan { values: BTreeMap::new(), problems: BTreeMap::new() };
    let Some(root) = Folder::existing_root(root)? else { return Ok(scan) };
    let opened;
    let dir = if folder.is_empty() {
        &root
    } else {
        match root.folder(folder, false)? {
            Some(dir) => {
                opened = dir;
                &opened
            }
            None => return Ok(scan),
        }
    };
    for name in dir.names()? {
        let Some(key) = key_of(folder, &name) else { continue };
        match read_in(dir, &key, &name) {
            Ok(Some(stored)) => {
                scan.values.insert(key, stored);
            }
            Ok(None) => {}
            // The root also holds the folders of other keys.
            Err(Error::Refused { what: Refusal::Folder, .. }) if folder.is_empty() => {}
            Err(problem) if problem.is_content() => {
                scan.problems.insert(key.to_string(), problem.to_string());
            }
            Err(problem) => return Err(problem),
        }
    }
    Ok(scan)
}

fn key_of(folder: &str, name: &str) -> Option<KeyPath> {
    if !is_segment(name) {
        return None;
    }
    if folder.is_empty() {
        KeyPath::new(name).ok()
    } else {
        KeyPath::join(folder, name).ok()
    }
}

/// What the follower was last told, and the problems already warned about.
struct Known {
    values: BTreeMap<KeyPath, Value>,
    problems: BTreeMap<String, String>,
    /// When the earliest leased value expires: a rescan is due then.
    next_expiry: Option<SystemTime>,
}

impl Known {
    /// Warn about each unusable file once, not at every rescan.
    fn report(&mut self, problems: BTreeMap<String, String>) {
        for (key, problem) in &problems {
            if self.problems.get(key) != Some(problem) {
                tracing::warn!("{problem}; ignored");
            }
        }
        self.problems = problems;
    }

    fn report_one(&mut self, key: String, problem: String) {
        if self.problems.get(&key) != Some(&problem) {
            tracing::warn!("{problem}; ignored");
            self.problems.insert(key, problem);
        }
    }

    fn expiring(&mut self, stored: &Stored) {
        if let Some(at) = stored.expires {
            self.next_expiry = Some(self.next_expiry.map_or(at, |next| next.min(at)));
        }
    }
}

pub async fn follow_once(
    root: &Path,
    poll: Duration,
    folders: &[&str],
    changes: &mpsc::Sender<Change>,
    backoff: &mut Backoff,
) -> Result<()> {
    let inotify = Inotify::init().map_err(|e| Error::io("watch", root, &e))?;
    // CREATE for hard links (`ln`, and link(2) where a file system has no
    // RENAME_NOREPLACE): the only event they raise. An empty new file reads as absent.
    let mask = WatchMask::CLOSE_WRITE
        | WatchMask::CREATE
        | WatchMask::MOVED_TO
        | WatchMask::DELETE
        | WatchMask::MOVED_FROM
        | WatchMask::DELETE_SELF
        | WatchMask::MOVE_SELF
        | WatchMask::ONLYDIR
        | WatchMask::DONT_FOLLOW;
    let mut watches: Vec<(WatchDescriptor, &str)> = Vec::new();
    let top = Folder::root(root)?;
    for folder in folders {
        // Made if missing, refused if planted as a symlink: only then watched.
        let path = if folder.is_empty() {
            root.to_path_buf()
        } else {
            top.folder(folder, true)?.ok_or_else(|| removed(root.join(folder)))?.path().to_path_buf()
        };
        let watch = inotify.watches().add(&path, mask).map_err(|e| Error::io("watch", &path, &e))?;
        watches.push((watch, folder));
    }
    let mut events = inotify.into_event_stream(vec![0u8; 64 * 1024]).map_err(|e| Error::io("watch", root, &e))?;

    let mut known = Known { values: BTreeMap::new(), problems: BTreeMap::new(), next_expiry: None };
    let scanned = scan(root, folders, &mut known)?;
    if changes.send(Change::Reset).await.is_err() {
        return Ok(());
    }
    for (key, value) in &scanned {
        if changes.send(Change::Put(key.clone(), value.clone())).await.is_err() {
            return Ok(());
        }
    }
    known.values = scanned;
    if changes.send(Change::Synced).await.is_err() {
        return Ok(());
    }
    backoff.reset();

    let poll = if poll.is_zero() { Duration::from_secs(86_400) } else { poll };
    let mut next_scan = tokio::time::Instant::now() + poll;
    loop {
        let due = known
            .next_expiry
            .and_then(|at| at.duration_since(SystemTime::now()).ok().or(Some(Duration::ZERO)))
            .map_or(next_scan, |wait| next_scan.min(tokio::time::Instant::now() + wait));
        tokio::select! {
            event = events.next() => {
                let event = match event {
                    Some(Ok(event)) => event,
                    Some(Err(e)) => return Err(Error::io("watch", root, &e)),
                    None => return Err(Error::WatchEnded { what: root.display().to_string(), why: "inotify ended".into() }),
                };
                if event.mask.intersects(EventMask::DELETE_SELF | EventMask::MOVE_SELF | EventMask::IGNORED) {
                    return Err(Error::WatchEnded { what: root.display().to_string(), why: "a followed folder was removed".into() });
                }
                if event.mask.contains(EventMask::Q_OVERFLOW) {
                    // Events were lost: only a full rescan knows the truth now.
                    if !rescan(root, folders, &mut known, changes).await? {
                        return Ok(());
                    }
                    continue;
                }
                let Some(folder) = watches.iter().find(|(w, _)| *w == event.wd).map(|(_, folder)| *folder) else { continue };
                let Some(key) = event.name.and_then(|n| n.to_str().and_then(|name| key_of(folder, name))) else { continue };
                let change = match reread(root, &key) {
                    Ok(Some(stored)) => {
                        known.expiring(&stored);
                        Some(stored.value)
                    }
                    Ok(None) => None,
                    // The root also holds the folders of other keys.
                    Err(Error::Refused { what: Refusal::Folder, .. }) if key.folder().is_none() => None,
                    Err(problem) if problem.is_content() => {
                        known.report_one(key.to_string(), problem.to_string());
                        None
                    }
                    Err(problem) => return Err(problem),
                };
                if !send_if_changed(&mut known.values, key, change, changes).await {
                    return Ok(());
                }
            }
            _ = tokio::time::sleep_until(due) => {
                if !rescan(root, folders, &mut known, changes).await? {
                    return Ok(());
                }
                next_scan = tokio::time::Instant::now() + poll;
            }
            _ = changes.closed() => return Ok(()),
        }
    }
}

/// One key's current value.
fn reread(root: &Path, key: &KeyPath) -> Result<Option<Stored>> {
    let Some(top) = Folder::existing_root(root)? else { return Ok(None) };
    match key.folder() {
        None => read_in(&top, key, key.name()),
        Some(folder) => match top.folder(folder, false)? {
            Some(dir) => read_in(&dir, key, key.name()),
            None => Ok(None),
        },
    }
}

/// Every followed folder's usable values; records problems and the next expiry.
fn scan(root: &Path, folders: &[&str], known: &mut Known) -> Result<BTreeMap<KeyPath, Value>> {
    let mut values = BTreeMap::new();
    let mut problems = BTreeMap::new();
    known.next_expiry = None;
    for folder in folders {
        let scan = scan_folder(root, folder)?;
        for (key, stored) in scan.values {
            known.expiring(&stored);
            values.insert(key, stored.value);
        }
        problems.extend(scan.problems);
    }
    known.report(problems);
    Ok(values)
}

/// Scan again and tell the follower what differs; false when it has gone.
async fn rescan(root: &Path, folders: &[&str], known: &mut Known, changes: &mpsc::Sender<Change>) -> Result<bool> {
    let now = scan(root, folders, known)?;
    let keys: BTreeSet<KeyPath> = known.values.keys().chain(now.keys()).cloned().collect();
    for key in keys {
        let value = now.get(&key).cloned();
        if !send_if_changed(&mut known.values, key, value, changes).await {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Tell the follower about a key whose value is now `value`, if that is news; false
/// when the follower has gone.
async fn send_if_changed(
    known: &mut BTreeMap<KeyPath, Value>,
    key: KeyPath,
    value: Option<Value>,
    changes: &mpsc::Sender<Change>,
) -> bool {
    if known.get(&key) == value.as_ref() {
        return true;
    }
    let change = match value {
        Some(value) => {
            known.insert(key.clone(), value.clone());
            Change::Put(key, value)
        }
        None => {
            known.remove(&key);
            Change::Delete(key)
        }
    };
    changes.send(change).await.is_ok()
}

/// A folder removed between being made and being opened (someone else's doing).
pub(super) fn removed(path: std::path::PathBuf) -> Error {
    Error::Io { step: "open", path, errno: libc::ENOENT }
}
