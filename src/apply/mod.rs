//! Execute a plan against the kernel. Deletions run first, phase by phase; creation
//! follows a dependency graph (see `graph`), namespace by namespace, while namespaces
//! are created ahead on a thread of their own; sysctls and routes come last. A
//! failed deletion does not stop the others: every deletion is tried and every error
//! reported (nothing is created after one failed). If a creating change fails, the
//! work under way is let finish, then what this run created is removed again, newest
//! first.
//!
//! Connections: one per namespace, opened when first needed and closed after that
//! namespace's last change, so a large lab never holds them all at once (netlink-proto
//! gives each a 72 KiB buffer).
//!
//! IPv6 link-local autoconfiguration: namespaces netlab creates get
//! `net.ipv6.conf.default.addr_gen_mode = 1` (none) before any link exists, so their
//! links never start it. Host links are created down, switched off, then brought up:
//! the kernel refuses the setting in a creating request, and the host's defaults are
//! not netlab's to change.

mod changes;
mod error;
mod graph;
mod namespaces;
mod shaping;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

pub use error::ApplyError;
use error::{combine, Result};
use futures::stream::FuturesUnordered;
use futures::{stream, Future, StreamExt};
use netns::socket::Opener;
use netns::Netlink;

use crate::kernel_place::KernelPlace;
use crate::model::{IfName, LabName, Place};
use crate::ownership;
use crate::plan::{Change, Desired, Phase};
use crate::progress::Progress;
use graph::Graph;

/// Requests in flight at once: enough to keep the kernel busy, few enough to keep the
/// number of open connections small.
const IN_FLIGHT: usize = 64;

pub struct Executor {
    lab: LabName,
    mark: String,
    group: u32,
    /// Links the file wants, per namespace: the rest of the lab's links may go.
    wanted: HashMap<Place, BTreeSet<IfName>>,
    connections: Mutex<HashMap<Place, Netlink>>,
    /// Sockets of namespaces this run created, not yet wrapped in a connection.
    fresh: Mutex<HashMap<Place, OwnedFd>>,
    /// How many changes still to run talk to each namespace.
    remaining: Mutex<HashMap<Place, usize>>,
    opener: Opener,
    indexes: Mutex<HashMap<(Place, IfName), u32>>,
    /// Changes that undo what this run made, in the order it made them.
    undo: Mutex<Vec<Change>>,
    done: AtomicUsize,
    progress: Progress,
    /// Every change runs alone (`apply --step`): no deletion of a whole link group.
    one_by_one: bool,
}

/// What the user said before a step of `apply --step`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Apply,
    Stop,
}

/// A change about to be made by `apply --step`: the `number`th of `total`.
pub struct Step<'a> {
    pub number: usize,
    pub total: usize,
    pub change: &'a Change,
}

impl Executor {
    pub fn new(lab: &LabName, desired: &Desired, progress: Progress) -> Result<Self> {
        let wanted = desired.iter().map(|(place, ns)| (place.clone(), ns.links.keys().cloned().collect())).collect();
        Ok(Executor {
            lab: lab.clone(),
            mark: ownership::mark(lab),
            group: ownership::group(lab),
            wanted,
            connections: Mutex::new(HashMap::new()),
            fresh: Mutex::new(HashMap::new()),
            remaining: Mutex::new(HashMap::new()),
            opener: Opener::new()?,
            indexes: Mutex::new(HashMap::new()),
            undo: Mutex::new(Vec::new()),
            done: AtomicUsize::new(0),
            progress,
            one_by_one: false,
        })
    }

    /// Apply every change alone, in plan order, asking `ask` before each. Returns how
    /// many were made when told to stop. A failure stops too, without undoing the
    /// earlier steps: each was made at the user's word, and the lab is consistent as a
    /// killed apply's is (the record holds the file as pending; the next apply
    /// finishes it, destroy removes it).
    pub async fn run_stepwise(
        mut self,
        changes: &[Change],
        ask: &mut dyn FnMut(Step<'_>) -> Decision,
    ) -> Result<Option<usize>> {
        self.one_by_one = true;
        self.count_connections(changes);
        for (i, change) in changes.iter().enumerate() {
            if ask(Step { number: i + 1, total: changes.len(), change }) == Decision::Stop {
                return Ok(Some(i));
            }
            self.run_all(std::slice::from_ref(change)).await?;
        }
        Ok(None)
    }

    fn count_connections(&self, changes: &[Change]) {
        let mut remaining = self.remaining.lock().expect("unpoisoned");
        for change in changes {
            for place in change.connections() {
                *remaining.entry(place.clone()).or_default() += 1;
            }
        }
    }

    /// Apply every change; on failure, undo this run's creations and return the error.
    pub async fn run(&self, changes: &[Change]) -> Result<()> {
        self.count_connections(changes);
        let result = self.run_all(changes).await;
        self.progress.finish();
        let Err(err) = result else { return Ok(()) };
        let undo: Vec<Change> = self.undo.lock().expect("unpoisoned").drain(..).rev().collect();
        if undo.is_empty() {
            return Err(err);
        }
        tracing::warn!(changes = undo.len(), "rolling back what this run created");
        let mut failures = Vec::new();
        for change in &undo {
            if let Err(e) = self.one(change).await {
                failures.push(crate::chain_text(&e));
            }
        }
        if failures.is_empty() {
            Err(ApplyError::RolledBack(Box::new(err)))
        } else {
            Err(ApplyError::RollbackIncomplete(Box::new(err), failures.join("; ")))
        }
    }

    async fn run_all(&self, changes: &[Change]) -> Result<()> {
        let first_creation = changes.partition_point(|c| c.phase() < Phase::CreateNamespaces);
        let after_creation = changes.partition_point(|c| c.phase() <= Phase::AddAddresses);
        let mut failures = Vec::new();
        for group in changes[..first_creation].chunk_by(|a, b| a.phase() == b.phase()) {
            if let Err(e) = self.phase(group).await {
                failures.push(e);
            }
        }
        if !failures.is_empty() {
            return Err(combine(failures));
        }
        self.create(&changes[first_creation..after_creation]).await?;
        for group in changes[after_creation..].chunk_by(|a, b| a.phase() == b.phase()) {
            self.phase(group).await?;
        }
        Ok(())
    }

    /// One phase: its changes have no order among themselves.
    async fn phase(&self, group: &[Change]) -> Result<()> {
        let started = std::time::Instant::now();
        let phase = group[0].phase();
        match phase {
            Phase::DeleteNamespaces => self.delete_namespaces(group)?,
            Phase::DeleteLinks => self.delete_links(group).await?,
            Phase::SetSysctls => self.set_sysctls(group).await?,
            _ => all(group.iter().map(|change| self.tracked(change))).await?,
        }
        tracing::debug!(?phase, changes = group.len(), elapsed_ms = started.elapsed().as_millis() as u64, "phase done");
        Ok(())
    }

    /// The creating changes, in the order of their dependency graph.
    async fn create(&self, changes: &[Change]) -> Result<()> {
        if changes.is_empty() {
            return Ok(());
        }
        let started = std::time::Instant::now();
        let mut graph = Graph::new(changes);
        let batch: Vec<_> = graph
            .take(|i| matches!(changes[i], Change::CreateNamespace { .. }))
            .into_iter()
            .filter_map(|i| {
                if let Change::CreateNamespace { namespace } = &changes[i] {
                    Some((i, namespace.clone()))
                } else {
                    None
                }
            })
            .collect();
        let mut creating = batch.len();
        let cancel = Arc::new(AtomicBool::new(false));
        let (creator, mut created) =
            namespaces::spawn(batch, self.mark.clone(), cancel.clone()).map_err(ApplyError::Spawn)?;
        let mut running = FuturesUnordered::new();
        let mut failure: Option<ApplyError> = None;
        loop {
            while failure.is_none() && running.len() < IN_FLIGHT {
                let Some(i) = graph.next_ready() else { break };
                running.push(async move { (i, self.tracked(&changes[i]).await) });
            }
            if running.is_empty() && creating == 0 {
                break;
            }
            tokio::select! {
                Some((i, result)) = running.next(), if !running.is_empty() => match result {
                    Ok(()) => graph.complete(i),
                    Err(e) => {
                        failure.get_or_insert(e);
                        cancel.store(true, Ordering::Relaxed);
                    }
                },
                namespace = created.recv(), if creating > 0 => match namespace {
                    None => creating = 0,
                    Some(namespace) => {
                        creating -= 1;
                        let place = Place::Node(namespace.node.clone());
                        if namespace.made {
                            self.remember(Change::DeleteNamespace { namespace: namespace.node.clone() });
                        }
                        match namespace.socket {
                            Ok(socket) => {
                                self.fresh.lock().expect("unpoisoned").insert(place, socket);
                                self.finished(&changes[namespace.index]);
                                graph.complete(namespace.index);
                            }
                            Err(e) => {
                                failure.get_or_insert(e.into());
                                cancel.store(true, Ordering::Relaxed);
                            }
                        }
                    }
                },
            }
        }
        creator.join().map_err(|_| ApplyError::Panicked)?;
        if let Some(e) = failure {
            return Err(e);
        }
        if graph.unfinished() > 0 {
            return Err(ApplyError::Internal(format!("{} changes were never ready", graph.unfinished())));
        }
        tracing::debug!(changes = changes.len(), elapsed_ms = started.elapsed().as_millis() as u64, "creation done");
        Ok(())
    }

    /// Run one change, then count it done (and close connections no longer needed).
    async fn tracked(&self, change: &Change) -> Result<()> {
        self.one(change).await?;
        self.finished(change);
        Ok(())
    }

    fn finished(&self, change: &Change) {
        let done = self.done.fetch_add(1, Ordering::Relaxed) + 1;
        self.progress.update(done);
        let mut remaining = self.remaining.lock().expect("unpoisoned");
        for place in change.connections() {
            let left = remaining.entry(place.clone()).or_default();
            *left = left.saturating_sub(1);
            if *left == 0 && *place != Place::Host {
                self.connections.lock().expect("unpoisoned").remove(place);
            }
        }
    }

    fn remember(&self, undo: Change) {
        self.undo.lock().expect("unpoisoned").push(undo);
    }

    /// The namespace's connection: kept, made from a fresh socket, or opened now.
    async fn netlink(&self, place: &Place) -> Result<Netlink> {
        if let Some(netlink) = self.connections.lock().expect("unpoisoned").get(place) {
            return Ok(netlink.clone());
        }
        let fresh = self.fresh.lock().expect("unpoisoned").remove(place);
        let netlink = match fresh {
            Some(socket) => Netlink::from_socket(place.to_netns(), socket),
            None => self.opener.open(place.to_netns()).await?,
        };
        Ok(self.connections.lock().expect("unpoisoned").entry(place.clone()).or_insert(netlink).clone())
    }

    async fn index(&self, place: &Place, name: &IfName) -> Result<u32> {
        let key = (place.clone(), name.clone());
        if let Some(index) = self.indexes.lock().expect("unpoisoned").get(&key) {
            return Ok(*index);
        }
        let link = self.netlink(place).await?.link_by_name(name.as_str()).await?;
        let index = link.ok_or_else(|| ApplyError::LinkNotFound(place.qualify(name)))?.index;
        self.indexes.lock().expect("unpoisoned").insert(key, index);
        Ok(index)
    }

    fn forget(&self, place: &Place, name: &IfName) {
        self.indexes.lock().expect("unpoisoned").remove(&(place.clone(), name.clone()));
    }

    fn delete_namespaces(&self, group: &[Change]) -> Result<()> {
        let mut failures = Vec::new();
        for change in group {
            if let Change::DeleteNamespace { namespace } = change {
                if let Err(e) = netns::namespace::delete(namespace.as_str()) {
                    failures.push(e.into());
                    continue;
                }
                let place = Place::Node(namespace.clone());
                self.connections.lock().expect("unpoisoned").remove(&place);
                self.finished(change);
            }
        }
        failures.is_empty().then_some(()).ok_or_else(|| combine(failures))
    }

    /// Links are deleted per namespace in one request when every link of the lab's
    /// interface group there may go: one-by-one deletion pays an RCU grace period
    /// (about 17 ms) per link. A link may go if it is to be deleted, or if it carries
    /// the lab's mark and the file does not want it (a veth end whose peer goes). The
    /// group is never trusted alone: if any other link carries it, links are deleted
    /// one by one.
    async fn delete_links(&self, group: &[Change]) -> Result<()> {
        let mut by_place: BTreeMap<&Place, Vec<&Change>> = BTreeMap::new();
        for change in group {
            if let Change::DeleteLink { place, .. } = change {
                by_place.entry(place).or_default().push(change);
            }
        }
        let nothing = BTreeSet::new();
        let mut failures = Vec::new();
        for (place, changes) in by_place {
            if let Err(e) = self.delete_links_in(place, changes, self.wanted.get(place).unwrap_or(&nothing)).await {
                failures.push(e);
            }
        }
        failures.is_empty().then_some(()).ok_or_else(|| combine(failures))
    }

    async fn delete_links_in(&self, place: &Place, changes: Vec<&Change>, wanted: &BTreeSet<IfName>) -> Result<()> {
        let names: BTreeSet<&str> = changes
            .iter()
            .filter_map(|c| if let Change::DeleteLink { name, .. } = c { Some(name.as_str()) } else { None })
            .collect();
        let links =
            netns::thread::in_one(place.to_netns(), |_| netns::blocking::links(&netns::Netlink::open_socket_here()?))?;
        let grouped: Vec<&netns::link::LinkState> = links.iter().filter(|l| l.group == self.group).collect();
        let may_go = |l: &&netns::link::LinkState| {
            names.contains(l.name.as_str())
                || (l.alias.as_deref() == Some(self.mark.as_str()) && !wanted.iter().any(|w| w.as_str() == l.name))
        };
        if !self.one_by_one && grouped.len() >= 2 && grouped.iter().all(may_go) {
            changes::ignore_missing(self.netlink(place).await?.delete_group(self.group).await)?;
            tracing::debug!(%place, links = grouped.len(), group = self.group, "deleted links in one request");
            for change in &changes {
                if let Change::DeleteLink { name, .. } = change {
                    self.forget(place, name);
                }
                self.finished(change);
            }
        } else {
            all(changes.into_iter().map(|change| self.tracked(change))).await?;
        }
        Ok(())
    }

    /// All sysctl writes of a namespace in one visit of a thread.
    async fn set_sysctls(&self, group: &[Change]) -> Result<()> {
        let mut by_place: BTreeMap<Place, Vec<(String, String)>> = BTreeMap::new();
        for change in group {
            if let Change::SetSysctl { place, key, value, .. } = change {
                by_place.entry(place.clone()).or_default().push((key.as_str().to_string(), value.clone()));
            }
        }
        let places: Vec<Place> = by_place.keys().cloned().collect();
        let writes: HashMap<netns::Netns, Vec<(String, String)>> =
            by_place.into_iter().map(|(place, writes)| (place.to_netns(), writes)).collect();
        let results = tokio::task::spawn_blocking(move || {
            netns::thread::in_each(places.iter().map(KernelPlace::to_netns).collect(), move |ns| {
                for (key, value) in &writes[ns] {
                    netns::sysctl::write(key, value)?;
                }
                Ok(())
            })
        })
        .await??;
        for result in results {
            result?;
        }
        for change in group {
            if let Change::SetSysctl { place, key, previous: Some(previous), value } = change {
                let undo = Change::SetSysctl {
                    place: place.clone(),
                    key: key.clone(),
                    value: previous.clone(),
                    previous: Some(value.clone()),
                };
                self.remember(undo);
            }
            self.finished(change);
        }
        Ok(())
    }
}

/// Run at most IN_FLIGHT at a time, every one to its end, then report every error:
/// nothing this run made may escape the undo list.
async fn all<F: Future<Output = Result<()>>>(futures: impl Iterator<Item = F>) -> Result<()> {
    let results: Vec<Result<()>> = stream::iter(futures).buffer_unordered(IN_FLIGHT).collect().await;
    let failures: Vec<ApplyError> = results.into_iter().filter_map(Result::err).collect();
    failures.is_empty().then_some(()).ok_or_else(|| combine(failures))
}
