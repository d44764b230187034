//! What an agent reports about itself: counters, written as JSON to a status file
//! (one per agent) that `vxlan-agent status` reads.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Where agents write their status unless told otherwise.
pub const DEFAULT_DIR: &str = "/run/vxlan-agent";

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counters {
    pub l3_misses: u64,
    pub l2_misses: u64,
    /// Misses for keys the store does not have.
    pub unknown_misses: u64,
    /// Misses the overlay does not serve (IPv6 link-local, multicast).
    pub ignored_misses: u64,
    pub installed: u64,
    pub removed: u64,
    /// Changes the kernel refused.
    pub failed: u64,
    pub resyncs: u64,
    /// Times the kernel dropped notifications (ENOBUFS).
    pub overruns: u64,
    pub store_updates: u64,
    /// Complete snapshots of the store received: 1 for an agent that never had to
    /// list the store again.
    #[serde(default)]
    pub store_snapshots: u64,
    pub store_errors: u64,
}

/// Miss notification to entry installed, in microseconds, over the last misses.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Latency {
    pub samples: u64,
    pub p50_us: u64,
    pub p99_us: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    pub pid: u32,
    pub netns: String,
    pub device: String,
    pub store: String,
    pub mode: String,
    pub store_loaded: bool,
    pub device_index: Option<u32>,
    /// Why the device is not served (missing, not a VXLAN device), if it is not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_problem: Option<String>,
    pub store_keys: usize,
    pub neighbours: usize,
    pub fdb: usize,
    pub counters: Counters,
    pub miss_to_install: Latency,
}

impl Status {
    pub fn file(dir: &Path, netns: Option<&str>, device: &str) -> PathBuf {
        dir.join(format!("{}.json", Status::base_name(netns, device)))
    }

    /// `NETNS:DEVICE`, or `:DEVICE` for the agent's own namespace: a device name has
    /// no `:`, so no two agents share a name (with `.` they could: `ov.a` + `b` and
    /// `ov` + `a.b`), and the host's agent cannot clash with a namespace's.
    pub fn base_name(netns: Option<&str>, device: &str) -> String {
        format!("{}:{device}", netns.unwrap_or_default())
    }

    /// Write atomically, so a reader never sees half of it.
    pub fn write(&self, file: &Path) -> std::io::Result<()> {
        if let Some(dir) = file.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let temporary = file.with_extension("json.tmp");
        std::fs::write(&temporary, serde_json::to_vec_pretty(self).expect("status serializes"))?;
        std::fs::rename(&temporary, file)
    }

    /// Every status file in `dir`.
    pub fn read_all(dir: &Path) -> Result<Vec<Status>, String> {
        let entries = match std::fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(format!("read {}: {e}", dir.display())),
        };
        let mut all = Vec::new();
        for entry in entries.flatten() {
            let path = entry.path();
            if path.extension().is_some_and(|e| e == "json") {
                let text = std::fs::read(&path).map_err(|e| format!("read {}: {e}", path.display()))?;
                all.push(serde_json::from_slice(&text).map_err(|e| format!("read {}: {e}", path.display()))?);
            }
        }
        all.sort_by(|a: &Status, b| (&a.netns, &a.device).cmp(&(&b.netns, &b.device)));
        Ok(all)
    }

    pub fn running(&self) -> bool {
        Path::new(&format!("/proc/{}", self.pid)).exists()
    }
}

/// A window of recent samples, for percentiles without unbounded memory.
#[derive(Default)]
pub struct Samples {
    recent: std::collections::VecDeque<u64>,
    total: u64,
}

impl Samples {
    const KEEP: usize = 4096;

    pub fn add(&mut self, micros: u64) {
        if self.recent.len() == Self::KEEP {
            self.recent.pop_front();
        }
        self.recent.push_back(micros);
        self.total += 1;
    }

    pub fn latency(&self) -> Latency {
        let mut sorted: Vec<u64> = self.recent.iter().copied().collect();
        sorted.sort_unstable();
        let at = |q: f64| sorted.get(((sorted.len() as f64 - 1.0) * q).round() as usize).copied().unwrap_or(0);
        Latency { samples: self.total, p50_us: at(0.5), p99_us: at(0.99) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_of_a_window() {
        let mut samples = Samples::default();
        for micros in 1..=100 {
            samples.add(micros);
        }
        assert_eq!(samples.latency(), Latency { samples: 100, p50_us: 51, p99_us: 99 });
        assert_eq!(Samples::default().latency(), Latency::default());
    }
}
