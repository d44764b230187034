//! What netlab applied, kept under /run/netlab so that destroy works without the file
//! and a killed apply can be finished or undone. /run is a tmpfs: like the namespaces
//! themselves, records do not survive a reboot.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

#[cfg(test)]
use crate::model::Topology;
use crate::model::{LabName, Place, SysctlKey};
use crate::plan::{Desired, History, OtherLabs};
use crate::publish::Publication;

pub const STATE_DIR: &str = "/run/netlab";

#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("read {}: {source}", path.display())]
    Read { path: PathBuf, source: std::io::Error },
    #[error(
        "the record of lab {lab}, {}, is corrupt ({reason}): `netlab destroy --name {lab}` removes the lab \
         by its kernel marks and deletes the record (then apply the file again)",
        path.display()
    )]
    Corrupt { lab: LabName, path: PathBuf, reason: String },
    #[error("write {}: {source}", path.display())]
    Write { path: PathBuf, source: std::io::Error },
    #[error("remove {}: {source}", path.display())]
    Remove { path: PathBuf, source: std::io::Error },
    #[error("list {STATE_DIR}: {0}")]
    List(std::io::Error),
    #[error("lock {}: {source}", path.display())]
    Lock { path: PathBuf, source: std::io::Error },
    #[error("lab {0} is being changed by another netlab process")]
    Busy(LabName),
}

impl RecordError {
    fn write(path: &Path) -> impl FnOnce(std::io::Error) -> RecordError + '_ {
        move |source| RecordError::Write { path: path.to_path_buf(), source }
    }
}

/// One entry of `/run/netlab`: a lab's record, or a file that should be one and is not.
#[derive(Debug)]
pub enum Listed {
    Record(Box<Record>),
    Corrupt { lab: LabName, error: RecordError },
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Record {
    pub lab: LabName,
    /// The file last applied, for `list`.
    pub file: Option<PathBuf>,
    /// The state the last successful apply reached.
    pub applied: Desired,
    /// Set before an apply changes anything, cleared when it succeeds: after a kill,
    /// it tells the next run what may have been half made.
    pub pending: Option<Desired>,
    pub sysctl_originals: BTreeMap<Place, BTreeMap<SysctlKey, String>>,
    /// Endpoints published to overlay stores (added before writing to a store, so a
    /// killed apply still withdraws them).
    #[serde(default)]
    pub publications: BTreeSet<Publication>,
    pub updated_unix: u64,
}

impl Record {
    pub fn new(lab: LabName) -> Self {
        Record {
            lab,
            file: None,
            applied: Desired::new(),
            pending: None,
            sysctl_originals: BTreeMap::new(),
            publications: BTreeSet::new(),
            updated_unix: 0,
        }
    }

    pub fn path(lab: &LabName) -> PathBuf {
        Path::new(STATE_DIR).join(format!("{lab}.json"))
    }

    /// The lab's record; `None` when it has none. A record that cannot be parsed is
    /// an error naming it and the way out.
    pub fn load(lab: &LabName) -> Result<Option<Record>, RecordError> {
        let path = Self::path(lab);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) if e.kind() == std::io::ErrorKind::InvalidData => return Err(corrupt(lab, path, e.to_string())),
            Err(source) => return Err(RecordError::Read { path, source }),
        };
        match serde_json::from_str::<Record>(&text) {
            Ok(record) if record.lab == *lab => Ok(Some(record)),
            Ok(record) => Err(corrupt(lab, path, format!("it names lab {}", record.lab))),
            Err(e) => Err(corrupt(lab, path, e.to_string())),
        }
    }

    /// Written to a temporary file and renamed, so a kill never leaves half a record.
    pub fn save(&mut self) -> Result<(), RecordError> {
        self.updated_unix =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
        std::fs::create_dir_all(STATE_DIR).map_err(RecordError::write(Path::new(STATE_DIR)))?;
        let path = Self::path(&self.lab);
        let tmp = path.with_extension("json.tmp");
        let text = serde_json::to_string_pretty(self).expect("a record serialises");
        let mut file = File::create(&tmp).map_err(RecordError::write(&tmp))?;
        file.write_all(text.as_bytes()).map_err(RecordError::write(&tmp))?;
        file.sync_all().ok();
        std::fs::rename(&tmp, &path).map_err(RecordError::write(&path))
    }

    pub fn remove(lab: &LabName) -> Result<(), RecordError> {
        let path = Self::path(lab);
        match std::fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(source) => Err(RecordError::Remove { path, source }),
        }
    }

    /// Every lab with a record here, sorted by name; a corrupt record is listed as such
    /// and does not hide the others.
    pub fn list() -> Result<Vec<Listed>, RecordError> {
        let mut listed = Vec::new();
        for lab in Self::labs()? {
            match Self::load(&lab) {
                Ok(Some(record)) => listed.push(Listed::Record(Box::new(record))),
                Ok(None) => {}
                Err(error @ RecordError::Corrupt { .. }) => listed.push(Listed::Corrupt { lab, error }),
                Err(e) => return Err(e),
            }
        }
        Ok(listed)
    }

    /// The labs with a record here, sorted, without reading the records.
    fn labs() -> Result<Vec<LabName>, RecordError> {
        let entries = match std::fs::read_dir(STATE_DIR) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(RecordError::List(e)),
        };
        let mut labs: Vec<LabName> = entries
            .flatten()
            .filter_map(|entry| entry.file_name().to_str()?.strip_suffix(".json")?.parse().ok())
            .collect();
        labs.sort();
        Ok(labs)
    }

    /// Everything the lab may have made: what was applied and what was being applied.
    pub fn history(&self) -> History {
        let mut previous = self.applied.clone();
        if let Some(pending) = &self.pending {
            for (place, spec) in pending {
                let merged = previous.entry(place.clone()).or_default();
                merged.links.extend(spec.links.clone());
                merged.routes.extend(spec.routes.iter().cloned());
                merged.sysctls.extend(spec.sysctls.clone());
                merged.neighbours.extend(spec.neighbours.iter().cloned());
                merged.fdb.extend(spec.fdb.iter().cloned());
                // Only where NAT is is its table looked at: either version will do.
                if merged.nat.is_empty() {
                    merged.nat = spec.nat.clone();
                }
            }
        }
        History { previous, sysctl_originals: self.sysctl_originals.clone(), others: OtherLabs::default() }
    }
}

fn corrupt(lab: &LabName, path: PathBuf, reason: String) -> RecordError {
    RecordError::Corrupt { lab: lab.clone(), path, reason }
}

/// What the other labs recorded here declare in the host (applied, or being applied),
/// and the original values they keep of the host sysctls they set. A corrupt record
/// cannot say: it counts for nothing (and is reported by the commands of its own lab).
pub fn other_labs(lab: &LabName) -> Result<(OtherLabs, BTreeMap<SysctlKey, String>), RecordError> {
    let mut others = OtherLabs::default();
    let mut originals = BTreeMap::new();
    for other in Record::labs()?.into_iter().filter(|other| other != lab) {
        let Ok(Some(record)) = Record::load(&other) else { continue };
        let history = record.history();
        if let Some(host) = history.previous.get(&Place::Host) {
            others.sysctls.extend(host.sysctls.keys().cloned());
            others.routes.extend(host.routes.iter().cloned());
        }
        if let Some(kept) = history.sysctl_originals.get(&Place::Host) {
            for (key, value) in kept {
                originals.entry(key.clone()).or_insert_with(|| value.clone());
            }
        }
    }
    Ok((others, originals))
}

/// Held while a run changes a lab. The kernel releases it when the process dies, even
/// by SIGKILL, so a killed apply never blocks the next one.
pub struct Lock {
    file: File,
    path: PathBuf,
}

/// How often taking the lock starts again because its file was removed meanwhile.
const LOCK_ATTEMPTS: usize = 16;

pub fn lock(lab: &LabName) -> Result<Lock, RecordError> {
    std::fs::create_dir_all(STATE_DIR).map_err(|source| RecordError::Lock { path: STATE_DIR.into(), source })?;
    let path = Path::new(STATE_DIR).join(format!("{lab}.lock"));
    let failed = |source| RecordError::Lock { path: path.clone(), source };
    for _ in 0..LOCK_ATTEMPTS {
        let file = OpenOptions::new().create(true).truncate(false).write(true).open(&path).map_err(failed)?;
        // SAFETY: flock on an fd we own; no memory is involved.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            return Err(RecordError::Busy(lab.clone()));
        }
        // A destroy that held the lock may have removed the file between our open and
        // our flock: a lock on a removed file keeps no one out, so take it again.
        let held = file.metadata().map_err(failed)?;
        match std::fs::metadata(&path) {
            Ok(now) if now.dev() == held.dev() && now.ino() == held.ino() => return Ok(Lock { file, path }),
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(failed(e)),
        }
    }
    Err(RecordError::Busy(lab.clone()))
}

impl Lock {
    /// Remove the lock file, still holding the lock: a run that opened it meanwhile
    /// sees it removed once it gets the lock, and starts again on a new file.
    pub fn remove(self) -> Result<(), RecordError> {
        match std::fs::remove_file(&self.path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(source) => Err(RecordError::Remove { path: self.path.clone(), source }),
        }?;
        drop(self.file);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn history_covers_what_a_killed_apply_was_making() {
        let lab: Topology = crate::model::parse(
            "lab.yaml",
            "name: x\nhost:\n  interfaces:\n    e: {addresses: [10.0.0.1/24]}\n  sysctls: {net.ipv4.ip_forward: 1}\n  nat:\n    masquerade: [{from: 10.0.0.0/24, out: e}]\nnodes:\n  A: {}\nlinks:\n  - endpoints: [A:e, e]\n",
        )
        .unwrap();
        let mut record = Record::new(lab.name.clone());
        record.pending = Some(lab.namespaces.clone());
        let history = record.history();
        assert!(!history.previous[&Place::Host].nat.is_empty());
        assert!(history.previous.contains_key(&"A".parse().unwrap()));
    }
}
