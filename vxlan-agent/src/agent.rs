//! The agent's loop: follow the store, answer the kernel's misses, and keep the
//! device's entries equal to what the store says (see `reconcile`).
//!
//! It reconciles fully on start, when the store sends a snapshot, after a netlink
//! overrun, when the device comes back, and every `resync` interval; in between it
//! changes only the entries touched by a store update or a miss.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::mpsc;

use crate::endpoint::Table;
use crate::kernel::{Device, Event, EventsError, Kernel};
use crate::reconcile::{Action, Inputs, Installed, Mode, Slot};
use crate::status::{Counters, Samples, Status};
use crate::store::{AnyStore, Update};

pub use crate::kernel::DEFAULT_EVENT_BUFFER;

pub struct Options {
    pub netns: netns::Netns,
    pub device: String,
    pub mode: Mode,
    /// This host's VTEP addresses; empty: the device's local address.
    pub local: Vec<IpAddr>,
    pub resync: Duration,
    /// Receive buffer of the notification socket (bytes).
    pub event_buffer: usize,
    pub status_file: PathBuf,
    pub store_label: String,
}

pub async fn run(options: Options, store: AnyStore) -> Result<(), String> {
    let mut kernel = Kernel::open(options.netns.clone(), options.event_buffer).await?;
    let (updates, mut incoming) = mpsc::channel(8192);
    let store = Arc::new(store);
    let follower = tokio::spawn({
        let store = store.clone();
        async move { crate::store::follow(&*store, updates).await }
    });
    let mut terminate = signal(SignalKind::terminate()).map_err(|e| format!("signal: {e}"))?;
    let mut interrupt = signal(SignalKind::interrupt()).map_err(|e| format!("signal: {e}"))?;
    let mut agent = Agent::new(options);
    tracing::info!(
        netns = %agent.options.netns, device = %agent.options.device, store = %agent.options.store_label,
        mode = ?agent.options.mode, "started"
    );
    agent.resync(&kernel, "start");
    let mut resync = tokio::time::interval(agent.options.resync);
    resync.tick().await;
    let mut report = tokio::time::interval(Duration::from_millis(500));

    loop {
        tokio::select! {
            biased;
            _ = terminate.recv() => break,
            _ = interrupt.recv() => break,
            events = kernel.events() => match events {
                Ok(events) => agent.on_kernel(&kernel, events),
                Err(EventsError::Overrun) => {
                    tracing::warn!("kernel dropped notifications (netlink overrun, ENOBUFS); full resync");
                    agent.counters.overruns += 1;
                    agent.resync(&kernel, "netlink overrun");
                }
                Err(EventsError::Failed(problem)) => return Err(problem),
            },
            update = incoming.recv() => {
                let Some(first) = update else { return Err("store follower stopped".into()) };
                // Take what is queued too: a burst is reconciled in one batch.
                let mut batch = vec![first];
                while batch.len() < 8192 {
                    match incoming.try_recv() {
                        Ok(update) => batch.push(update),
                        Err(_) => break,
                    }
                }
                agent.on_store(&kernel, batch);
            }
            _ = resync.tick() => agent.resync(&kernel, "periodic"),
            _ = report.tick() => agent.write_status(),
        }
    }
    follower.abort();
    agent.write_status();
    tracing::info!("stopped; entries left in place");
    Ok(())
}

struct Agent {
    options: Options,
    table: Table,
    /// The store has been read at least once: until then nothing is removed.
    loaded: bool,
    device: Option<Device>,
    local: BTreeSet<IpAddr>,
    installed: Installed,
    foreign: BTreeSet<Slot>,
    asked: BTreeSet<Slot>,
    counters: Counters,
    latency: Samples,
    unknown_log: RateLimit,
    reported: Option<Status>,
    /// The device vanished under a change: look again at the next chance.
    stale: bool,
}

impl Agent {
    fn new(options: Options) -> Agent {
        Agent {
            local: options.local.iter().copied().collect(),
            options,
            table: Table::default(),
            loaded: false,
            device: None,
            installed: Installed::default(),
            foreign: BTreeSet::new(),
            asked: BTreeSet::new(),
            counters: Counters::default(),
            latency: Samples::default(),
            unknown_log: RateLimit::new(10, Duration::from_secs(1)),
            reported: None,
            stale: false,
        }
    }

    fn inputs(&self) -> Inputs<'_> {
        Inputs {
            table: &self.table,
            local: &self.local,
            mode: self.options.mode,
            asked: &self.asked,
            foreign: &self.foreign,
        }
    }

    /// Look at the device and its entries afresh, and reconcile them fully.
    fn resync(&mut self, kernel: &Kernel, why: &str) {
        self.stale = false;
        let device = match kernel.device(&self.options.device) {
            Ok(device) => device,
            Err(problem) => {
                tracing::warn!("resync ({why}): {problem}");
                return;
            }
        };
        if device.map(|d| d.index) != self.device.map(|d| d.index) {
            match device {
                Some(d) => tracing::info!(index = d.index, "device {} found", self.options.device),
                None => tracing::warn!("device {} not found; waiting for it", self.options.device),
            }
        }
        self.device = device;
        let Some(device) = device else {
            self.installed = Installed::default();
            return;
        };
        if self.options.local.is_empty() {
            self.local = device.local.into_iter().collect();
        }
        match kernel.observe(device.index) {
            Ok(observed) => {
                self.installed = observed.installed;
                self.foreign = observed.foreign;
            }
            Err(problem) => {
                tracing::warn!("resync ({why}): {problem}");
                return;
            }
        }
        self.counters.resyncs += 1;
        if self.loaded {
            let actions = self.inputs().full(&self.installed);
            tracing::debug!(why, changes = actions.len(), "resync");
            self.execute(kernel, actions);
        }
    }

    fn on_store(&mut self, kernel: &Kernel, batch: Vec<Update>) {
        let mut keys = BTreeSet::new();
        let mut snapshot = false;
        for update in batch {
            self.counters.store_updates += 1;
            match update {
                Update::Snapshot(table) => {
                    snapshot = true;
                    self.loaded = true;
                    self.table = table;
                }
                Update::Set(entry) => {
                    if self.table.set(entry) {
                        keys.insert(entry.key());
                    }
                }
                Update::Remove(key) => {
                    if self.table.remove(key) {
                        keys.insert(key);
                    }
                }
                Update::Failed(problem) => {
                    self.counters.store_errors += 1;
                    tracing::warn!("store: {problem}; keeping the entries installed, retrying");
                }
            }
        }
        if snapshot {
            // A snapshot may follow a gap: the kernel's side is read again too.
            self.resync(kernel, "store snapshot");
        } else if self.loaded && !keys.is_empty() {
            let actions = self.inputs().after_changes(&keys, &self.installed);
            self.execute(kernel, actions);
        }
        if self.stale {
            self.resync(kernel, "device changed");
        }
    }

    fn on_kernel(&mut self, kernel: &Kernel, events: Vec<Event>) {
        let received = Instant::now();
        let index = self.device.map(|d| d.index);
        // One action per slot: a burst of misses for one address is one change.
        let mut actions = std::collections::BTreeMap::new();
        let mut resync = None;
        for event in events {
            match event {
                Event::L3Miss { index: i, ip } if Some(i) == index => {
                    if !served(ip) {
                        self.counters.ignored_misses += 1;
                        continue;
                    }
                    self.counters.l3_misses += 1;
                    if let Some(action) = self.on_miss(Slot::Neighbour(ip)) {
                        actions.insert(Slot::Neighbour(ip), action);
                    }
                }
                Event::L2Miss { index: i, mac } if Some(i) == index => {
                    self.counters.l2_misses += 1;
                    if let Some(action) = self.on_miss(Slot::Fdb(mac)) {
                        actions.insert(Slot::Fdb(mac), action);
                    }
                }
                // Someone removed one of ours that the store may still want.
                Event::Gone { index: i, slot } if Some(i) == index && self.forget(slot) => {
                    if let Some(action) = self.inputs().fix(slot, &self.installed) {
                        actions.insert(slot, action);
                    }
                }
                Event::Link { index: i, name } if name == self.options.device && Some(i) != index => {
                    resync = Some("device appeared");
                }
                Event::LinkGone { index: i } if Some(i) == index => {
                    tracing::warn!("device {} deleted; waiting for it to come back", self.options.device);
                    self.device = None;
                    self.installed = Installed::default();
                }
                _ => {}
            }
        }
        if !actions.is_empty() {
            let answered = actions.len();
            self.execute(kernel, actions.into_values().collect());
            let micros = received.elapsed().as_micros() as u64;
            for _ in 0..answered {
                self.latency.add(micros);
            }
        }
        if let Some(why) = resync.or(self.stale.then_some("device changed")) {
            self.resync(kernel, why);
        }
    }

    /// The action for a missed slot: the kernel just said it has no entry there.
    fn on_miss(&mut self, slot: Slot) -> Option<Action> {
        self.asked.insert(slot);
        self.forget(slot);
        let known = match slot {
            Slot::Neighbour(ip) => self.table.mac_of(ip).is_some(),
            Slot::Fdb(mac) => self.table.vtep_of(mac).is_some(),
        };
        if !known {
            self.counters.unknown_misses += 1;
            if self.unknown_log.allow() {
                tracing::debug!("miss for {slot:?}: not in the store");
            }
        }
        self.inputs().fix(slot, &self.installed)
    }

    /// Drop a slot from what is known installed; true if it was there.
    fn forget(&mut self, slot: Slot) -> bool {
        match slot {
            Slot::Neighbour(ip) => self.installed.neighbours.remove(&ip).is_some(),
            Slot::Fdb(mac) => self.installed.fdb.remove(&mac).is_some(),
        }
    }

    fn execute(&mut self, kernel: &Kernel, actions: Vec<Action>) {
        let Some(device) = self.device else { return };
        if actions.is_empty() {
            return;
        }
        let results = match kernel.apply(device.index, &actions) {
            Ok(results) => results,
            Err(problem) => {
                tracing::warn!("{problem}");
                self.stale = true;
                return;
            }
        };
        let name = &self.options.device;
        for (action, result) in actions.iter().zip(results) {
            match (action, result) {
                (_, Ok(())) => {
                    self.installed.record(action);
                    match action {
                        Action::SetNeighbour(ip, mac) => {
                            self.counters.installed += 1;
                            tracing::info!("installed neighbour {ip} lladdr {mac} dev {name}");
                        }
                        Action::SetFdb(mac, vtep) => {
                            self.counters.installed += 1;
                            tracing::info!("installed fdb {mac} dst {vtep} dev {name}");
                        }
                        Action::RemoveNeighbour(ip) => {
                            self.counters.removed += 1;
                            tracing::info!("removed neighbour {ip} dev {name}");
                        }
                        Action::RemoveFdb(mac) => {
                            self.counters.removed += 1;
                            tracing::info!("removed fdb {mac} dev {name}");
                        }
                    }
                }
                // Already gone: what was wanted.
                (Action::RemoveNeighbour(_) | Action::RemoveFdb(_), Err(libc::ENOENT)) => self.installed.record(action),
                (_, Err(code)) => {
                    self.counters.failed += 1;
                    if code == libc::ENODEV {
                        self.stale = true;
                    }
                    tracing::warn!("{action:?} on {name}: {}", netns::errno_text(code));
                }
            }
        }
    }

    fn write_status(&mut self) {
        let status = Status {
            pid: std::process::id(),
            netns: self.options.netns.to_string(),
            device: self.options.device.clone(),
            store: self.options.store_label.clone(),
            mode: format!("{:?}", self.options.mode).to_lowercase(),
            store_loaded: self.loaded,
            device_index: self.device.map(|d| d.index),
            store_keys: self.table.len(),
            neighbours: self.installed.neighbours.len(),
            fdb: self.installed.fdb.len(),
            counters: self.counters.clone(),
            miss_to_install: self.latency.latency(),
        };
        if self.reported.as_ref() != Some(&status) {
            if let Err(e) = status.write(&self.options.status_file) {
                tracing::warn!("write {}: {e}", self.options.status_file.display());
            }
            self.reported = Some(status);
        }
    }
}

/// Addresses an overlay serves: not IPv6 link-local (every interface asks for those),
/// not multicast or unspecified.
fn served(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => !(v4.is_multicast() || v4.is_unspecified() || v4.is_broadcast()),
        IpAddr::V6(v6) => !(v6.is_multicast() || v6.is_unspecified() || v6.is_unicast_link_local()),
    }
}

/// At most `burst` events per `window`.
struct RateLimit {
    burst: u32,
    window: Duration,
    started: Instant,
    used: u32,
}

impl RateLimit {
    fn new(burst: u32, window: Duration) -> RateLimit {
        RateLimit { burst, window, started: Instant::now(), used: 0 }
    }

    fn allow(&mut self) -> bool {
        if self.started.elapsed() >= self.window {
            self.started = Instant::now();
            self.used = 0;
        }
        self.used += 1;
        self.used <= self.burst
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_local_and_multicast_are_not_served() {
        for ip in ["fe80::1", "ff02::1", "224.0.0.1", "0.0.0.0"] {
            assert!(!served(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["11.11.11.3", "fd00::3"] {
            assert!(served(ip.parse().unwrap()), "{ip}");
        }
    }

    #[test]
    fn rate_limit_allows_a_burst_per_window() {
        let mut limit = RateLimit::new(3, Duration::from_secs(3600));
        assert_eq!((0..5).filter(|_| limit.allow()).count(), 3);
    }
}
