//! What netlab applied, kept under /run/netlab so that destroy works without the file
//! and a killed apply can be finished or undone. /run is a tmpfs: like the namespaces
//! themselves, records do not survive a reboot.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

#[cfg(test)]
use crate::model::Topology;
use crate::model::{LabName, Place, SysctlKey};
use crate::plan::{Desired, History};
use crate::publish::Publication;

pub const STATE_DIR: &str = "/run/netlab";

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

    fn path(lab: &LabName) -> PathBuf {
        Path::new(STATE_DIR).join(format!("{lab}.json"))
    }

    pub fn load(lab: &LabName) -> Result<Option<Record>> {
        let path = Self::path(lab);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e).with_context(|| format!("read {}", path.display())),
        };
        serde_json::from_str(&text).map(Some).with_context(|| format!("parse {}", path.display()))
    }

    /// Written to a temporary file and renamed, so a kill never leaves half a record.
    pub fn save(&mut self) -> Result<()> {
        self.updated_unix =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
        std::fs::create_dir_all(STATE_DIR).with_context(|| format!("create {STATE_DIR}"))?;
        let path = Self::path(&self.lab);
        let tmp = path.with_extension("json.tmp");
        let mut file = File::create(&tmp).with_context(|| format!("write {}", tmp.display()))?;
        file.write_all(serde_json::to_string_pretty(self)?.as_bytes())
            .with_context(|| format!("write {}", tmp.display()))?;
        file.sync_all().ok();
        std::fs::rename(&tmp, &path).with_context(|| format!("write {}", path.display()))
    }

    pub fn remove(lab: &LabName) -> Result<()> {
        match std::fs::remove_file(Self::path(lab)) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e).context("remove the lab's record"),
        }
    }

    pub fn list() -> Result<Vec<Record>> {
        let entries = match std::fs::read_dir(STATE_DIR) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e).context(format!("list {STATE_DIR}")),
        };
        let mut records = Vec::new();
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some(lab) = name.strip_suffix(".json").and_then(|n| n.parse::<LabName>().ok()) else { continue };
            if let Some(record) = Self::load(&lab)? {
                records.push(record);
            }
        }
        records.sort_by(|a, b| a.lab.cmp(&b.lab));
        Ok(records)
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
        History { previous, sysctl_originals: self.sysctl_originals.clone() }
    }
}

/// Held while a run changes a lab. The kernel releases it when the process dies, even
/// by SIGKILL, so a killed apply never blocks the next one.
pub struct Lock(#[allow(dead_code)] File);

pub fn lock(lab: &LabName) -> Result<Lock> {
    std::fs::create_dir_all(STATE_DIR).with_context(|| format!("create {STATE_DIR}"))?;
    let path = Path::new(STATE_DIR).join(format!("{lab}.lock"));
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("open {}", path.display()))?;
    // SAFETY: flock on an fd we own; no memory is involved.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        bail!("lab {lab} is being changed by another netlab process");
    }
    Ok(Lock(file))
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
