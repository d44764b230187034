//! The folder store: one file per key below a root folder (`arp/11.11.11.3` holds a
//! MAC, as in the tutorial), so `echo MAC > arp/IP` by hand works. Every file
//! operation goes through `safe` (no symlink followed, bounded non-blocking reads of
//! regular files only, exclusive temporary files).
//!
//! A value bound to a lease carries its expiry in a first line
//! `#expires=<unix ms> lease=<id>`; readers treat an expired value as absent and the
//! holder rewrites the line to keep it alive.

mod safe;
mod watch;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::mpsc;

use crate::backend::{Backoff, Change, Lease, Store};
use crate::error::{Error, Result};
use crate::key::{KeyPath, Stored, Value, MAX_VALUE};
use safe::{Contents, Folder};

/// Room for the expiry line on top of the longest value.
const READ_LIMIT: usize = MAX_VALUE + 64;
const EXPIRES: &str = "#expires=";

pub struct DirStore {
    root: PathBuf,
    poll: Duration,
    /// The keys put with each lease of this process, rewritten by `keep_alive`.
    leases: Mutex<BTreeMap<i64, BTreeMap<KeyPath, Value>>>,
}

impl DirStore {
    pub fn new(root: PathBuf, poll: Duration) -> DirStore {
        DirStore { root, poll, leases: Mutex::new(BTreeMap::new()) }
    }

    /// The folder holding `key` and the key's file name in it; `None` when the
    /// folder does not exist and `create` is false.
    fn place<'k>(&self, key: &'k KeyPath, create: bool) -> Result<Option<(Folder, &'k str)>> {
        let root = if create {
            Folder::root(&self.root)?
        } else {
            match Folder::existing_root(&self.root)? {
                Some(root) => root,
                None => return Ok(None),
            }
        };
        match key.folder() {
            None => Ok(Some((root, key.name()))),
            Some(folder) => Ok(root.folder(folder, create)?.map(|folder| (folder, key.name()))),
        }
    }

    /// Like `place`, making what is missing.
    fn made_place<'k>(&self, key: &'k KeyPath) -> Result<(Folder, &'k str)> {
        self.place(key, true)?.ok_or_else(|| watch::removed(self.root.join(key.folder().unwrap_or_default())))
    }

    fn read(&self, key: &KeyPath) -> Result<Option<Stored>> {
        let Some((folder, name)) = self.place(key, false)? else { return Ok(None) };
        read_in(&folder, key, name)
    }

    fn lease_keys(&self) -> std::sync::MutexGuard<'_, BTreeMap<i64, BTreeMap<KeyPath, Value>>> {
        // A panic elsewhere while holding it leaves plain data: still usable.
        self.leases.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn remember(&self, key: &KeyPath, value: &Value, lease: Option<&Lease>) {
        if let Some(lease) = lease {
            self.lease_keys().entry(lease.id).or_default().insert(key.clone(), value.clone());
        }
    }
}

/// A key's stored value in `folder`; `None` when missing or expired.
fn read_in(folder: &Folder, key: &KeyPath, name: &str) -> Result<Option<Stored>> {
    match folder.read(name, READ_LIMIT)? {
        Contents::Missing => Ok(None),
        Contents::Bytes(bytes) => {
            let stored = decode(key.as_str(), &bytes)?;
            Ok(stored.filter(|s| s.expires.is_none_or(|at| at > SystemTime::now())))
        }
    }
}

/// The file's content for a value, with its expiry line when leased.
fn encode(key: &KeyPath, value: &Value, lease: Option<&Lease>) -> Result<Vec<u8>> {
    if value.as_str().starts_with(EXPIRES) {
        // It would read back as an expiry line.
        return Err(Error::Invalid { key: key.to_string(), why: format!("a value cannot begin with `{EXPIRES}`") });
    }
    let mut text = String::new();
    if let Some(lease) = lease {
        let expires = SystemTime::now() + lease.ttl;
        let millis = expires.duration_since(UNIX_EPOCH).unwrap_or_default().as_millis();
        text.push_str(&format!("{EXPIRES}{millis} lease={:x}\n", lease.id));
    }
    text.push_str(value.as_str());
    text.push('\n');
    Ok(text.into_bytes())
}

/// A file's content as a value and its expiry; `None` for an empty file (one being
/// written by hand, not yet closed).
fn decode(key: &str, bytes: &[u8]) -> Result<Option<Stored>> {
    let (expires, body) = match bytes.strip_prefix(EXPIRES.as_bytes()) {
        Some(rest) => {
            let end = rest.iter().position(|b| *b == b'\n').unwrap_or(rest.len());
            let line = std::str::from_utf8(&rest[..end]).unwrap_or_default();
            let millis = line.split_whitespace().next().and_then(|m| m.parse::<u64>().ok()).ok_or_else(|| {
                Error::Invalid { key: key.to_string(), why: format!("unreadable expiry line `{EXPIRES}{line}`") }
            })?;
            (Some(UNIX_EPOCH + Duration::from_millis(millis)), &rest[(end + 1).min(rest.len())..])
        }
        None => (None, bytes),
    };
    // The newline `encode` (or `echo`) ends the value with is not part of it.
    let body = body.strip_suffix(b"\n").unwrap_or(body);
    let value = Value::from_bytes(key, body)?;
    if value.trimmed().is_empty() {
        return Ok(None);
    }
    Ok(Some(Stored { value, expires }))
}

impl Store for DirStore {
    async fn get(&self, key: &KeyPath) -> Result<Option<Value>> {
        Ok(self.read(key)?.map(|stored| stored.value))
    }

    async fn put(&self, key: &KeyPath, value: &Value, lease: Option<&Lease>) -> Result<()> {
        let (folder, name) = self.made_place(key)?;
        folder.write(name, &encode(key, value, lease)?)?;
        self.remember(key, value, lease);
        Ok(())
    }

    async fn put_many(&self, entries: &[(KeyPath, Value)]) -> Result<()> {
        for (key, value) in entries {
            self.put(key, value, None).await?;
        }
        Ok(())
    }

    async fn create(&self, key: &KeyPath, value: &Value, lease: Option<&Lease>) -> Result<bool> {
        let (folder, name) = self.made_place(key)?;
        let bytes = encode(key, value, lease)?;
        if folder.create(name, &bytes)? {
            self.remember(key, value, lease);
            return Ok(true);
        }
        // Taken, unless what is there has expired. Only an expired value is moved
        // aside (anything else, garbage included, is someone's); if what was moved
        // is still that expired value (not a fresh one just made), try once more.
        let expired = |bytes: &[u8]| {
            decode(key.as_str(), bytes)
                .ok()
                .flatten()
                .is_some_and(|s| s.expires.is_some_and(|at| at <= SystemTime::now()))
        };
        match folder.read(name, READ_LIMIT) {
            Ok(Contents::Bytes(now)) if expired(&now) => {}
            _ => return Ok(false),
        }
        let Some(taken) = folder.take(name)? else { return Ok(false) };
        let still_expired = matches!(taken.read(READ_LIMIT), Ok(Contents::Bytes(old)) if expired(&old));
        if !still_expired {
            taken.restore()?;
            return Ok(false);
        }
        taken.discard()?;
        let created = folder.create(name, &bytes)?;
        if created {
            self.remember(key, value, lease);
        }
        Ok(created)
    }

    async fn delete_if(&self, key: &KeyPath, expected: &Value) -> Result<bool> {
        let Some((folder, name)) = self.place(key, false)? else { return Ok(false) };
        let holds = |contents: Result<Contents>| match contents {
            Ok(Contents::Bytes(bytes)) => {
                decode(key.as_str(), &bytes).ok().flatten().is_some_and(|s| s.value.trimmed() == expected.trimmed())
            }
            _ => false,
        };
        // Looked at in place first: a key holding something else is never moved.
        if !holds(folder.read(name, READ_LIMIT)) {
            return Ok(false);
        }
        // Then moved aside and looked at again, so a value written meanwhile is kept.
        let Some(taken) = folder.take(name)? else { return Ok(false) };
        let holds = holds(taken.read(READ_LIMIT));
        if holds {
            taken.discard()?;
        } else {
            taken.restore()?;
        }
        Ok(holds)
    }

    async fn replace(&self, key: &KeyPath, expected: &Value, value: &Value, lease: Option<&Lease>) -> Result<bool> {
        let Some((folder, name)) = self.place(key, false)? else { return Ok(false) };
        let holds = match folder.read(name, READ_LIMIT) {
            Ok(Contents::Bytes(bytes)) => decode(key.as_str(), &bytes).ok().flatten().is_some_and(|s| {
                s.value.trimmed() == expected.trimmed() && s.expires.is_none_or(|at| at > SystemTime::now())
            }),
            _ => false,
        };
        if !holds {
            return Ok(false);
        }
        // Renamed over the key, which never looks absent to a reader. A change another
        // writer makes between the look and the rename is lost: the window create's
        // fallback has too; writers of leases only create, over expired values only.
        folder.write(name, &encode(key, value, lease)?)?;
        self.remember(key, value, lease);
        Ok(true)
    }

    async fn list(&self, folder: &str) -> Result<Vec<(KeyPath, Value)>> {
        Ok(watch::scan_folder(&self.root, folder)?
            .values
            .into_iter()
            .map(|(key, stored)| (key, stored.value))
            .collect())
    }

    async fn grant(&self, ttl: Duration) -> Result<Lease> {
        let mut bytes = [0u8; 8];
        getrandom::getrandom(&mut bytes).map_err(|e| Error::Io {
            step: "grant lease",
            path: "getrandom".into(),
            errno: e.raw_os_error().unwrap_or(libc::EIO),
        })?;
        // Positive, like etcd's lease IDs.
        let id = (i64::from_ne_bytes(bytes) & i64::MAX).max(1);
        self.lease_keys().insert(id, BTreeMap::new());
        Ok(Lease { id, ttl })
    }

    async fn keep_alive(&self, lease: &Lease) -> Result<()> {
        let keys = self.lease_keys().get(&lease.id).cloned().ok_or(Error::LeaseExpired(lease.id))?;
        // Renewed only while it still holds our value with time to spare: close to its
        // expiry someone else may take the key between our look and our rewrite.
        let margin = lease.ttl / 4;
        let mut lost = Vec::new();
        for (key, value) in &keys {
            let ours = self.read(key)?.is_some_and(|now| {
                now.value.trimmed() == value.trimmed() && now.expires.is_none_or(|at| at > SystemTime::now() + margin)
            });
            if ours {
                self.put(key, value, Some(lease)).await?;
            } else {
                lost.push(key.clone());
            }
        }
        // Keys put with the lease meanwhile (by another task) stay in it.
        let mut leases = self.lease_keys();
        let Some(held) = leases.get_mut(&lease.id) else { return Err(Error::LeaseExpired(lease.id)) };
        lost.iter().for_each(|key| {
            held.remove(key);
        });
        if !keys.is_empty() && held.is_empty() {
            leases.remove(&lease.id);
            return Err(Error::LeaseExpired(lease.id));
        }
        Ok(())
    }

    async fn follow_once(&self, folders: &[&str], changes: &mpsc::Sender<Change>, backoff: &mut Backoff) -> Result<()> {
        watch::follow_once(&self.root, self.poll, folders, changes, backoff).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leased_values_carry_their_expiry() {
        let key = KeyPath::new("subnets/10.244.5.0-24").unwrap();
        let value = Value::new(&key, "{\"PublicIP\":\"192.168.104.2\"}").unwrap();
        let lease = Lease { id: 0xabc, ttl: Duration::from_secs(60) };
        let bytes = encode(&key, &value, Some(&lease)).unwrap();
        assert!(String::from_utf8_lossy(&bytes).starts_with("#expires="));
        let stored = decode(key.as_str(), &bytes).unwrap().unwrap();
        assert_eq!(stored.value.trimmed(), value.as_str());
        assert!(stored.expires.unwrap() > SystemTime::now() + Duration::from_secs(50));
        assert_eq!(decode("k", b"02:42:c0:a8:00:03\n").unwrap().unwrap().expires, None);
        assert_eq!(decode("k", b"\n").unwrap(), None);
        assert!(decode("k", b"#expires=soon\nx\n").is_err());
        let unleased = Value::new(&key, "#expires=1 lease=1").unwrap();
        assert!(encode(&key, &unleased, None).is_err(), "would read back as leased");
        let longest = Value::new(&key, "x".repeat(MAX_VALUE)).unwrap();
        let bytes = encode(&key, &longest, Some(&lease)).unwrap();
        assert_eq!(decode(key.as_str(), &bytes).unwrap().unwrap().value, longest);
    }
}
