//! The flannel-like node daemon: it leases a subnet of the cluster network, writes the
//! subnet file CNI plugins read, makes the node's VXLAN device, and routes to every
//! other node's subnet over it.
//!
//! Pure parts: `plan` (the entries the leases ask for, and the changes), and
//! `crate::subnet` (which subnet to take). Effects: `lease` (the store), `device`
//! (netlink), `masq` (nftables), `subnet_file`; this file is the loop joining them.

mod device;
mod events;
pub mod lease;
pub mod masq;
pub mod plan;
pub mod report;
mod subnet_file;

use std::collections::BTreeMap;
use std::future::Future;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use netlab_cni::subnet_env::SubnetEnv;
use netlab_store::leases::{config_key, LeaseAttrs, NetworkConfig, Subnet};
use netlab_store::{Change, KeyPath, Store, Value};
use tokio::sync::mpsc;

use self::device::{DeviceSpec, Kernel};
use self::events::{Burst, Events};
use self::lease::Held;
use self::report::NodeStatus;
use crate::Error;

pub struct Options {
    pub public_ip: Ipv4Addr,
    /// The underlay card; default: the one holding `public_ip`.
    pub iface: Option<String>,
    pub subnet_file: PathBuf,
    /// Default: `flannel.<VNI>`.
    pub device: Option<String>,
    pub ip_masq: bool,
    /// The lease's time to live: a node that stops renewing loses its subnet after it.
    pub ttl: Duration,
    /// Between full reconciliations of the kernel with the store.
    pub resync: Duration,
    pub status_file: PathBuf,
}

/// What the daemon has made of the store and the kernel so far.
struct Node<S> {
    store: Arc<S>,
    options: Options,
    kernel: Kernel,
    /// The followed keys (`config`, `subnets/...`), once a snapshot is complete.
    known: BTreeMap<KeyPath, Value>,
    /// A snapshot being received (between `Reset` and `Synced`).
    incoming: Option<BTreeMap<KeyPath, Value>>,
    synced: bool,
    held: Option<Held>,
    /// The configuration the device and lease were made for.
    serving: Option<NetworkConfig>,
    device: Option<(String, device::Device)>,
    /// Problems already reported, so a waiting daemon does not repeat itself.
    reported: Option<String>,
    status: NodeStatus,
    /// Lease, device, subnet file and masquerading are checked too, not only the
    /// entries: at the start, on resyncs, after the kernel undid something.
    full: bool,
    /// The kernel's entries as last observed, with the daemon's changes since: store
    /// changes are planned against it; anything that may have changed the kernel
    /// behind the daemon's back (a notification, a resync, a failed change) drops it.
    installed: Option<(plan::Entries, std::collections::BTreeSet<plan::Slot>)>,
    /// The subnet last held, tried first when a lease is taken again.
    last_subnet: Option<Subnet>,
    /// Renewals failing since: reported once, and once more when they work again.
    renewal_failing: bool,
}

/// Run until `shutdown` completes. Leases, routes and the subnet file stay (a restart
/// takes the same subnet back).
pub async fn run<S: Store>(store: S, options: Options, shutdown: impl Future<Output = ()>) -> Result<(), Error> {
    let kernel = Kernel::open().await.map_err(|e| Error::Kernel(e.to_string()))?;
    let mut events = Events::open().map_err(Error::Kernel)?;
    device::enable_forwarding().map_err(Error::Kernel)?;
    let store = Arc::new(store);
    let (changes, mut incoming) = mpsc::channel(4096);
    let follower = {
        let store = store.clone();
        tokio::spawn(async move { netlab_store::follow(&*store, &["", netlab_store::leases::SUBNETS], changes).await })
    };
    let renew_every = (options.ttl / 3).max(Duration::from_millis(200));
    let mut renew = tokio::time::interval(renew_every);
    let mut resync = tokio::time::interval(options.resync);
    let mut node = Node {
        store,
        options,
        kernel,
        known: BTreeMap::new(),
        incoming: None,
        synced: false,
        held: None,
        serving: None,
        device: None,
        reported: None,
        status: NodeStatus { pid: std::process::id(), ..NodeStatus::default() },
        full: true,
        installed: None,
        last_subnet: None,
        renewal_failing: false,
    };
    node.status.public_ip = node.options.public_ip.to_string();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            Some(change) = incoming.recv() => {
                node.take(change);
                // Everything queued counts as one batch: one reconciliation for a burst.
                while let Ok(change) = incoming.try_recv() {
                    node.take(change);
                }
            }
            _ = renew.tick() => node.renew().await,
            _ = resync.tick() => node.full = true,
            burst = events.next() => match burst {
                Ok(Burst::Quiet) => continue,
                Ok(Burst::Undone) => node.full = true,
                Ok(Burst::Overrun) => {
                    tracing::warn!("kernel notifications overran; reconciling in full");
                    node.status.counters.overruns += 1;
                    node.full = true;
                }
                Err(problem) => return Err(Error::Kernel(problem)),
            },
            () = &mut shutdown => break,
        }
        if node.synced {
            let before = node.status.clone();
            node.converge().await;
            node.status.counters.reconciliations += 1;
            let mut changed = node.status.clone();
            changed.counters.reconciliations = before.counters.reconciliations;
            if changed != before {
                if let Err(e) = node.status.write(&node.options.status_file) {
                    tracing::warn!("write {}: {e}", node.options.status_file.display());
                }
            }
        }
    }
    follower.abort();
    tracing::info!("stopped; lease, routes and subnet file kept for a restart");
    Ok(())
}

impl<S: Store> Node<S> {
    fn take(&mut self, change: Change) {
        match change {
            Change::Reset => self.incoming = Some(BTreeMap::new()),
            Change::Put(key, value) => {
                self.incoming.as_mut().unwrap_or(&mut self.known).insert(key, value);
            }
            Change::Delete(key) => {
                self.incoming.as_mut().unwrap_or(&mut self.known).remove(&key);
            }
            Change::Synced => {
                if let Some(snapshot) = self.incoming.take() {
                    self.known = snapshot;
                    self.status.counters.store_snapshots += 1;
                    // Continuity was lost: everything is looked at again, the kernel too.
                    self.full = true;
                }
                self.synced = true;
            }
            // What is known stays (routes too) until the store is back.
            Change::Failed(problem) => {
                self.status.counters.store_errors += 1;
                tracing::warn!("store: {problem}; retrying, routes kept");
            }
        }
    }

    async fn renew(&mut self) {
        let Some(held) = &self.held else { return };
        match self.store.keep_alive(&held.lease).await {
            Ok(()) => {
                if std::mem::take(&mut self.renewal_failing) {
                    tracing::info!("lease of {} renewed again", held.subnet);
                }
            }
            Err(netlab_store::Error::LeaseExpired(_)) => {
                // A store drops a lease's keys with it: a key that still holds the
                // node's value outlived the answer, and is moved to a fresh lease.
                let held = held.clone();
                let kept = match self.store.get(&held.key()).await {
                    Ok(now) if lease::still_ours(&held, now.as_ref()) => {
                        lease::reattach(&*self.store, &held, self.options.ttl).await.ok().flatten()
                    }
                    _ => None,
                };
                match (kept, &mut self.held) {
                    (Some(fresh), Some(current)) => {
                        tracing::warn!(
                            "lease of {} reported gone while its key stayed: moved to a new lease",
                            held.subnet
                        );
                        current.lease = fresh;
                    }
                    _ => {
                        tracing::warn!("lease of {} expired; taking a subnet again", held.subnet);
                        self.lose_lease();
                    }
                }
            }
            Err(problem) => {
                self.status.counters.renewal_errors += 1;
                if !std::mem::replace(&mut self.renewal_failing, true) {
                    tracing::warn!("renew lease of {}: {problem}; retrying, routes kept", held.subnet);
                }
            }
        }
    }

    /// No CNI ADD may use a subnet the node no longer holds.
    fn lose_lease(&mut self) {
        self.last_subnet = self.held.take().map(|held| held.subnet).or(self.last_subnet);
        self.renewal_failing = false;
        self.status.subnet = None;
        self.status.counters.leases_lost += 1;
        if let Err(problem) = subnet_file::remove(&self.options.subnet_file) {
            tracing::warn!("{problem}");
        }
    }

    fn report(&mut self, problem: String) {
        self.status.problem = Some(problem.clone());
        if self.reported.as_ref() != Some(&problem) {
            tracing::warn!("{problem}");
            self.reported = Some(problem);
        }
    }

    /// Bring lease, subnet file, device and entries in line with the store.
    async fn converge(&mut self) {
        let config = match self.known.get(&config_key()).map(NetworkConfig::parse) {
            Some(Ok(config)) => config,
            Some(Err(problem)) => return self.report(format!("{problem}; waiting for a usable config")),
            None => {
                return self.report(format!("no network config at {}; waiting (vxlan-agent network set)", config_key()))
            }
        };
        if let Some(held) = self.held.clone() {
            // The watch can lag behind the daemon's own writes (an event from before
            // the lease was taken): the store itself is asked before letting go.
            if !lease::still_ours(&held, self.known.get(&held.key())) {
                match self.store.get(&held.key()).await {
                    Ok(now) if lease::still_ours(&held, now.as_ref()) => {
                        self.known.insert(held.key(), held.value.clone());
                    }
                    Ok(_) => {
                        tracing::warn!(
                            "lease of {} is gone from the store or taken; taking a subnet again",
                            held.subnet
                        );
                        self.lose_lease();
                    }
                    Err(problem) => return self.report(format!("check lease of {}: {problem}; retrying", held.subnet)),
                }
            }
        }
        if self.serving.as_ref() != Some(&config) {
            self.reconfigure(&config).await;
        }
        let Err(problem) = self.serve(&config).await else {
            self.reported = None;
            self.status.problem = None;
            return;
        };
        self.report(problem);
    }

    /// A new configuration: a lease of another VNI, or outside the network, is given
    /// up, and a device of another name goes.
    async fn reconfigure(&mut self, config: &NetworkConfig) {
        if let Some(held) = self.held.take() {
            let announced_vni = LeaseAttrs::parse(&held.key(), &held.value).map(|a| a.vni).ok();
            if !config.offers(&held.subnet) {
                if let Err(problem) = lease::release(&*self.store, &held).await {
                    tracing::warn!("give back {}: {problem}", held.subnet);
                }
            } else if announced_vni == Some(config.vni) {
                self.held = Some(held);
            } else {
                // Taken again in place (compare-and-swap), announcing the new VNI.
                self.last_subnet = Some(held.subnet);
            }
        }
        if let Some((name, _)) = self.device.take() {
            if name != self.device_name(config) {
                if let Err(problem) = self.kernel.remove(&name).await {
                    tracing::warn!("remove {name}: {problem}");
                }
            }
        }
        self.serving = Some(*config);
        self.full = true;
    }

    fn device_name(&self, config: &NetworkConfig) -> String {
        self.options.device.clone().unwrap_or_else(|| format!("flannel.{}", config.vni))
    }

    async fn serve(&mut self, config: &NetworkConfig) -> Result<(), String> {
        let (held, index) = match (&self.held, &self.device) {
            (Some(held), Some((_, device))) if !self.full => (held.clone(), device.index),
            _ => {
                self.installed = None;
                let (held, index) = self.serve_fully(config).await?;
                self.full = false;
                (held, index)
            }
        };
        self.reconcile(config, &held, index)
    }

    /// The lease (taken if not held), the device, the subnet file and masquerading.
    async fn serve_fully(&mut self, config: &NetworkConfig) -> Result<(Held, u32), String> {
        let name = self.device_name(config);
        // A link of that name made by someone else: no lease either, or the other
        // nodes would route this subnet into a node that cannot serve it.
        self.kernel.check_free(&name)?;
        let underlay = self.kernel.underlay(self.options.public_ip, self.options.iface.as_deref())?;
        let mac =
            self.kernel.existing_mac(&name)?.unwrap_or_else(|| plan::vtep_mac(self.options.public_ip, config.vni));
        let held = match &self.held {
            Some(held) => held.clone(),
            None => {
                let attrs = LeaseAttrs { public_ip: self.options.public_ip, vni: config.vni, vtep_mac: mac };
                let previous =
                    self.last_subnet.or_else(|| subnet_file::read(&self.options.subnet_file).map(|env| env.subnet));
                let held = lease::acquire(&*self.store, config, attrs, previous, self.options.ttl)
                    .await
                    .map_err(|e| format!("take a lease: {e}; retrying"))?;
                tracing::info!("leased {} (ttl {:?})", held.subnet, self.options.ttl);
                self.status.counters.leases_taken += 1;
                self.status.subnet = Some(held.subnet.to_string());
                self.known.insert(held.key(), held.value.clone());
                self.held = Some(held.clone());
                held
            }
        };
        let spec = DeviceSpec {
            name: name.clone(),
            vni: config.vni,
            port: config.port,
            local: self.options.public_ip,
            underlay,
            mac,
            address: held.subnet.network(),
        };
        let made = self.kernel.ensure(&spec).await?;
        self.device = Some((name.clone(), made));
        self.status.device = Some(name.clone());
        let env =
            SubnetEnv { network: config.network, subnet: held.subnet, mtu: spec.mtu(), ip_masq: self.options.ip_masq };
        // Only now that the lease is held: an ADD never reads a subnet not ours.
        subnet_file::write(&self.options.subnet_file, &env).map_err(|e| e.to_string())?;
        if self.options.ip_masq {
            masq::install(held.subnet, config.network)?;
        }
        Ok((held, made.index))
    }

    /// The entries and routes of the other nodes' leases, against the kernel's.
    fn reconcile(&mut self, config: &NetworkConfig, held: &Held, index: u32) -> Result<(), String> {
        let name = self.device.as_ref().map(|(name, _)| name.clone()).unwrap_or_default();
        let leases = self.leases();
        let wanted = plan::wanted(config, &leases, Some(held.subnet), self.options.public_ip);
        let (mut installed, foreign) = match self.installed.take() {
            Some(known) => known,
            None => self.kernel.observe(index)?,
        };
        let actions = plan::plan(&wanted, &installed, &foreign);
        self.status.routes = wanted.routes.len();
        if actions.is_empty() {
            self.installed = Some((installed, foreign));
            return Ok(());
        }
        let results = self.kernel.apply(index, &actions)?;
        if results.iter().all(Result::is_ok) {
            actions.iter().for_each(|action| installed.record(action));
            self.installed = Some((installed, foreign));
        }
        let failed: Vec<String> = actions
            .iter()
            .zip(results)
            .filter_map(|(action, result)| {
                result.err().map(|errno| format!("{action:?}: {}", netns::errno_text(errno)))
            })
            .collect();
        tracing::debug!("{name}: {} changes, {} failed", actions.len(), failed.len());
        let counters = &mut self.status.counters;
        for action in &actions {
            match action {
                plan::Action::RemoveRoute(..) | plan::Action::RemoveNeighbour(_) | plan::Action::RemoveFdb(_) => {
                    counters.removed += 1
                }
                _ => counters.installed += 1,
            }
        }
        counters.failed += failed.len() as u64;
        match failed.is_empty() {
            true => Ok(()),
            false => {
                Err(format!("{name}: {} of {} changes failed ({})", failed.len(), actions.len(), failed.join(", ")))
            }
        }
    }

    fn leases(&self) -> BTreeMap<Subnet, LeaseAttrs> {
        self.known
            .iter()
            .filter_map(|(key, value)| {
                let subnet = Subnet::of_key(key)?;
                LeaseAttrs::parse(key, value).ok().map(|lease| (subnet, lease))
            })
            .collect()
    }
}
