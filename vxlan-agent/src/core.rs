//! The agent's decisions as plain state, with no I/O: store changes, kernel events,
//! overruns, namespace changes and ticks go in; the one effect to carry out next
//! comes out (read the device afresh, or change entries), and its result goes back
//! in. The loop in `run` does the I/O; the tests here drive the state directly.
//!
//! It reconciles fully on start, on a store snapshot, after a netlink overrun, when
//! the device or its namespace comes back, and on every periodic tick; in between it
//! changes only the entries a store change or a miss touches.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::time::{Duration, Instant};

use netlab_store::endpoints::{Key, Resolver, Update};
use netlab_store::Change;

use crate::kernel::{Device, DeviceState, Event, Observed};
use crate::reconcile::{served, Action, Inputs, Installed, Mode, Slot};
use crate::status::Counters;

/// What the loop is to do next.
#[derive(Debug, PartialEq, Eq)]
pub enum Effect {
    /// Read the device and the entries on it afresh, then call `observed`.
    Observe(&'static str),
    /// Carry out the actions on device `index`, then call `applied`.
    Apply { index: u32, actions: Vec<Action> },
}

/// What a fresh look at the kernel found.
pub struct Observation {
    pub device: DeviceState,
    /// The entries of the device, when it is a VXLAN device.
    pub entries: Option<Observed>,
}

pub struct Core {
    mode: Mode,
    device_name: String,
    /// `--local`: this host's VTEPs as given; empty: the device's own local address.
    local_given: BTreeSet<IpAddr>,
    resolver: Resolver,
    device: Option<Device>,
    /// Why there is no device to serve, for the log and `status`.
    device_problem: Option<String>,
    local: BTreeSet<IpAddr>,
    installed: Installed,
    foreign: BTreeSet<Slot>,
    asked: BTreeSet<Slot>,
    pub counters: Counters,
    unknown_log: RateLimit,
    /// Misses answered by the last `on_kernel` (for latency samples).
    answered: usize,
}

impl Core {
    pub fn new(mode: Mode, device_name: &str, local: &[IpAddr]) -> Core {
        Core {
            mode,
            device_name: device_name.to_string(),
            local_given: local.iter().copied().collect(),
            resolver: Resolver::default(),
            device: None,
            device_problem: None,
            local: local.iter().copied().collect(),
            installed: Installed::default(),
            foreign: BTreeSet::new(),
            asked: BTreeSet::new(),
            counters: Counters::default(),
            unknown_log: RateLimit::new(10, Duration::from_secs(1)),
            answered: 0,
        }
    }

    fn inputs(&self) -> Inputs<'_> {
        Inputs {
            table: self.resolver.table(),
            local: &self.local,
            mode: self.mode,
            asked: &self.asked,
            foreign: &self.foreign,
        }
    }

    fn apply(&self, actions: Vec<Action>) -> Option<Effect> {
        let index = self.device?.index;
        (!actions.is_empty()).then_some(Effect::Apply { index, actions })
    }

    pub fn start(&self) -> Option<Effect> {
        Some(Effect::Observe("start"))
    }

    pub fn on_tick(&self) -> Option<Effect> {
        Some(Effect::Observe("periodic"))
    }

    pub fn on_overrun(&mut self) -> Option<Effect> {
        tracing::warn!("kernel dropped notifications (netlink overrun, ENOBUFS); full resync");
        self.counters.overruns += 1;
        Some(Effect::Observe("netlink overrun"))
    }

    /// The namespace was deleted and made again: the loop has opened its sockets in
    /// the new one; nothing known of the old one holds.
    pub fn on_namespace_changed(&mut self) -> Option<Effect> {
        self.forget_device();
        Some(Effect::Observe("namespace made again"))
    }

    fn forget_device(&mut self) {
        self.device = None;
        self.installed = Installed::default();
        self.foreign.clear();
    }

    pub fn observed(&mut self, why: &'static str, observation: Result<Observation, String>) -> Option<Effect> {
        let observation = match observation {
            Ok(observation) => observation,
            Err(problem) => {
                tracing::warn!("resync ({why}): {problem}");
                return None;
            }
        };
        let (device, problem) = match observation.device {
            DeviceState::Vxlan(device) => (Some(device), None),
            DeviceState::Missing => (None, Some(format!("device {} not found; waiting for it", self.device_name))),
            DeviceState::NotVxlan(kind) => (
                None,
                Some(format!(
                    "device {} is {}, not a VXLAN device; waiting for a VXLAN device of that name",
                    self.device_name,
                    kind.map_or("a plain device".to_string(), |k| format!("a {k} device"))
                )),
            ),
        };
        if device.map(|d| d.index) != self.device.map(|d| d.index) || problem != self.device_problem {
            match (&device, &problem) {
                (Some(d), _) => tracing::info!(index = d.index, "device {} found", self.device_name),
                (None, Some(problem)) => tracing::warn!("{problem}"),
                (None, None) => {}
            }
        }
        self.device_problem = problem;
        let (Some(device), Some(entries)) = (device, observation.entries) else {
            self.forget_device();
            return None;
        };
        self.device = Some(device);
        if self.local_given.is_empty() {
            self.local = device.local.into_iter().collect();
        }
        self.installed = entries.installed;
        self.foreign = entries.foreign;
        self.counters.resyncs += 1;
        if !self.resolver.loaded() {
            return None;
        }
        let actions = self.inputs().full(&self.installed);
        tracing::debug!(why, changes = actions.len(), "resync");
        self.apply(actions)
    }

    pub fn on_store(&mut self, batch: Vec<Change>) -> Option<Effect> {
        let mut keys = BTreeSet::new();
        let mut snapshot = false;
        for change in batch {
            self.counters.store_updates += 1;
            match self.resolver.apply(change) {
                Some(Update::Snapshot) => {
                    snapshot = true;
                    self.counters.store_snapshots += 1;
                }
                Some(Update::Changed(key)) => {
                    keys.insert(key);
                }
                Some(Update::Failed(problem)) => {
                    self.counters.store_errors += 1;
                    tracing::warn!("store: {problem}; keeping the entries installed, retrying");
                }
                None => {}
            }
        }
        if snapshot {
            // A snapshot may follow a gap: the kernel's side is read again too.
            return Some(Effect::Observe("store snapshot"));
        }
        if !self.resolver.loaded() || keys.is_empty() {
            return None;
        }
        let actions = self.inputs().after_changes(&keys, &self.installed);
        // A slot whose key left the store is no longer asked for (only the changed
        // keys are looked at: this runs for every store batch).
        for key in keys.iter().filter(|key| !self.resolver.table().has(**key)) {
            self.asked.remove(&match *key {
                Key::Arp(ip) => Slot::Neighbour(ip),
                Key::Fdb(mac) => Slot::Fdb(mac),
            });
        }
        self.apply(actions)
    }

    pub fn on_kernel(&mut self, events: Vec<Event>) -> Option<Effect> {
        let index = self.device.map(|d| d.index);
        // One action per slot: a burst of misses for one address is one change.
        let mut actions = BTreeMap::new();
        let mut resync = None;
        let mut answered = 0;
        for event in events {
            match event {
                Event::L3Miss { index: i, ip } if Some(i) == index => {
                    if !served(ip) {
                        self.counters.ignored_misses += 1;
                        continue;
                    }
                    self.counters.l3_misses += 1;
                    if let Some(action) = self.on_miss(Slot::Neighbour(ip)) {
                        answered += 1;
                        actions.insert(Slot::Neighbour(ip), action);
                    }
                }
                Event::L2Miss { index: i, mac } if Some(i) == index => {
                    self.counters.l2_misses += 1;
                    if let Some(action) = self.on_miss(Slot::Fdb(mac)) {
                        answered += 1;
                        actions.insert(Slot::Fdb(mac), action);
                    }
                }
                // Someone removed one of ours that the store may still want.
                Event::Gone { index: i, slot } if Some(i) == index && self.forget(slot) => {
                    if let Some(action) = self.inputs().fix(slot, &self.installed) {
                        actions.insert(slot, action);
                    }
                }
                Event::Link { index: i, name } if name == self.device_name && Some(i) != index => {
                    resync = Some("device appeared");
                }
                Event::LinkGone { index: i } if Some(i) == index => {
                    tracing::warn!("device {} deleted; waiting for it to come back", self.device_name);
                    self.device_problem = Some(format!("device {} deleted; waiting for it", self.device_name));
                    self.forget_device();
                }
                _ => {}
            }
        }
        self.answered = answered;
        if let Some(why) = resync {
            return Some(Effect::Observe(why));
        }
        self.apply(actions.into_values().collect())
    }

    /// Misses the last `on_kernel` answered with a change (the latency samples).
    pub fn answered(&self) -> usize {
        self.answered
    }

    /// The action for a missed slot: the kernel just said it has no entry there.
    fn on_miss(&mut self, slot: Slot) -> Option<Action> {
        self.forget(slot);
        let table = self.resolver.table();
        let known = match slot {
            Slot::Neighbour(ip) => table.mac_of(ip).is_some(),
            Slot::Fdb(mac) => table.vtep_of(mac).is_some(),
        };
        // Only what the store knows is remembered as asked: anyone can make the kernel
        // miss on any address, and the set must not grow with them. The kernel asks
        // again for an unknown one (every second for an address).
        if known {
            self.asked.insert(slot);
        } else {
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

    /// The kernel's answer to `Effect::Apply`: one result per action, or a failure of
    /// the whole batch.
    pub fn applied(&mut self, actions: &[Action], results: Result<Vec<Result<(), i32>>, String>) -> Option<Effect> {
        let results = match results {
            Ok(results) => results,
            Err(problem) => {
                tracing::warn!("{problem}");
                return Some(Effect::Observe("device changed"));
            }
        };
        let name = &self.device_name;
        let mut stale = false;
        // A line per entry for the changes a person follows; a summary for bulk ones
        // (a line each for 200,000 entries would cost more than installing them).
        let each = actions.len() <= 32;
        let (installed, removed, failed) = (self.counters.installed, self.counters.removed, self.counters.failed);
        for (action, result) in actions.iter().zip(results) {
            match (action, result) {
                (_, Ok(())) => {
                    self.installed.record(action);
                    match action {
                        Action::SetNeighbour(..) | Action::SetFdb(..) => self.counters.installed += 1,
                        Action::RemoveNeighbour(_) | Action::RemoveFdb(_) => self.counters.removed += 1,
                    }
                    if each {
                        tracing::info!("{} dev {name}", describe(action));
                    } else {
                        tracing::debug!("{} dev {name}", describe(action));
                    }
                }
                // Already gone: what was wanted.
                (Action::RemoveNeighbour(_) | Action::RemoveFdb(_), Err(libc::ENOENT)) => self.installed.record(action),
                (_, Err(code)) => {
                    self.counters.failed += 1;
                    stale |= code == libc::ENODEV;
                    tracing::warn!("{action:?} on {name}: {}", netns::errno_text(code));
                }
            }
        }
        if !each {
            tracing::info!(
                "dev {name}: installed {}, removed {}, failed {}",
                self.counters.installed - installed,
                self.counters.removed - removed,
                self.counters.failed - failed
            );
        }
        stale.then_some(Effect::Observe("device changed"))
    }

    pub fn device_name(&self) -> &str {
        &self.device_name
    }

    pub fn loaded(&self) -> bool {
        self.resolver.loaded()
    }

    pub fn device(&self) -> Option<Device> {
        self.device
    }

    pub fn device_problem(&self) -> Option<&str> {
        self.device_problem.as_deref()
    }

    pub fn store_keys(&self) -> usize {
        self.resolver.table().len()
    }

    pub fn installed(&self) -> &Installed {
        &self.installed
    }
}

/// An action as the log tells it, in `ip` words.
fn describe(action: &Action) -> String {
    match action {
        Action::SetNeighbour(ip, mac) => format!("installed neighbour {ip} lladdr {mac}"),
        Action::SetFdb(mac, vtep) => format!("installed fdb {mac} dst {vtep}"),
        Action::RemoveNeighbour(ip) => format!("removed neighbour {ip}"),
        Action::RemoveFdb(mac) => format!("removed fdb {mac}"),
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
#[path = "core_tests.rs"]
mod tests;
