//! The agent's loop: the I/O around `core`. It follows the store, reads the
//! kernel's notifications, watches the overlay namespace (deleted and made again
//! under the same name, it opens its sockets in the new one), and carries out what
//! the core decides.

use std::future::Future;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use netlab_store::endpoints::FOLDERS;
use netlab_store::AnyStore;
use netns::name::{LinkName, NamespaceName};
use netns::Netns;
use tokio::sync::mpsc;
use tokio::time::MissedTickBehavior;

use crate::core::{Core, Effect, Observation};
use crate::error::Error;
use crate::kernel::{namespace_id, DeviceState, EventsError, Kernel};
use crate::lock::Lock;
use crate::reconcile::Mode;
use crate::status::{Samples, Status};

pub use crate::kernel::DEFAULT_EVENT_BUFFER;

pub struct Options {
    /// The overlay namespace; `None`: this process's own.
    pub netns: Option<NamespaceName>,
    pub device: LinkName,
    pub mode: Mode,
    /// This host's VTEP addresses; empty: the device's local address.
    pub local: Vec<IpAddr>,
    pub resync: Duration,
    /// Receive buffer of the notification socket (bytes).
    pub event_buffer: usize,
    pub status_dir: PathBuf,
    pub store_label: String,
}

impl Options {
    fn netns_label(&self) -> &str {
        self.netns.as_ref().map_or("self", |n| n.as_str())
    }

    fn netns(&self) -> Netns {
        self.netns.clone().map_or(Netns::Host, Netns::from)
    }
}

/// Run until `shutdown` completes; entries stay in place when it does.
pub async fn run(options: Options, store: AnyStore, shutdown: impl Future<Output = ()>) -> Result<(), Error> {
    let netns = options.netns.as_ref().map(NamespaceName::as_str);
    let what = format!("{}:{}", options.netns_label(), options.device);
    let _lock = Lock::take(&Lock::path(&options.status_dir, netns, options.device.as_str()), &what)?;
    let status_file = Status::file(&options.status_dir, netns, options.device.as_str());
    // `None` while the namespace is gone: holding its sockets would keep it, and the
    // VXLAN device in it (with its UDP port and VNI), alive.
    let mut kernel = Some(Kernel::open(options.netns(), options.event_buffer).await.map_err(Error::Kernel)?);
    let (changes, mut incoming) = mpsc::channel(8192);
    let store = Arc::new(store);
    let follower = tokio::spawn({
        let store = store.clone();
        async move { netlab_store::follow(&*store, &FOLDERS, changes).await }
    });
    let mut core = Core::new(options.mode, options.device.as_str(), &options.local);
    tracing::info!(
        netns = options.netns_label(), device = %options.device, store = %options.store_label,
        mode = ?options.mode, "started"
    );
    let mut reporter = Reporter { file: status_file, latency: Samples::default(), reported: None };
    let effect = core.start();
    drive(&mut core, kernel.as_ref(), effect);
    if let Some(problem) = core.device_problem() {
        tracing::warn!("at start: {problem}");
    }
    let mut resync = tokio::time::interval(options.resync);
    // After a long reconcile, one tick late rather than a burst of them.
    resync.set_missed_tick_behavior(MissedTickBehavior::Delay);
    resync.tick().await;
    let mut housekeeping = tokio::time::interval(Duration::from_millis(500));
    housekeeping.set_missed_tick_behavior(MissedTickBehavior::Delay);
    tokio::pin!(shutdown);

    // Not biased: a flood of kernel events must not starve the store, the resyncs and
    // the namespace watch.
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            events = next_events(&mut kernel) => match events {
                Ok(events) => {
                    let received = Instant::now();
                    let effect = core.on_kernel(events);
                    drive(&mut core, kernel.as_ref(), effect);
                    let micros = received.elapsed().as_micros() as u64;
                    (0..core.answered()).for_each(|_| reporter.latency.add(micros));
                }
                Err(EventsError::Overrun) => {
                    let effect = core.on_overrun();
                    drive(&mut core, kernel.as_ref(), effect);
                }
                Err(EventsError::Failed(problem)) => return Err(Error::Kernel(problem)),
            },
            change = incoming.recv() => {
                let Some(first) = change else { return Err(Error::Kernel("store follower stopped".into())) };
                // Take what is queued too: a burst is reconciled in one batch.
                let mut batch = vec![first];
                while batch.len() < 8192 {
                    match incoming.try_recv() {
                        Ok(change) => batch.push(change),
                        Err(_) => break,
                    }
                }
                let effect = core.on_store(batch);
                drive(&mut core, kernel.as_ref(), effect);
            }
            _ = resync.tick() => {
                let effect = core.on_tick();
                drive(&mut core, kernel.as_ref(), effect);
            }
            _ = housekeeping.tick() => {
                if let Some(name) = &options.netns {
                    if follow_namespace(name, &mut kernel, &options).await {
                        let effect = core.on_namespace_changed();
                        drive(&mut core, kernel.as_ref(), effect);
                    }
                }
                reporter.write(&core, &options);
            }
        }
    }
    follower.abort();
    reporter.write(&core, &options);
    tracing::info!("stopped; entries left in place");
    Ok(())
}

/// The kernel's next notifications; never, while there is no namespace.
async fn next_events(kernel: &mut Option<Kernel>) -> Result<Vec<crate::kernel::Event>, EventsError> {
    match kernel {
        Some(kernel) => kernel.events().await,
        None => std::future::pending().await,
    }
}

/// Keep the sockets in the namespace now at /run/netns/NAME: let go of them when it
/// is deleted, open new ones when it is made again. True when that changed them.
async fn follow_namespace(name: &NamespaceName, kernel: &mut Option<Kernel>, options: &Options) -> bool {
    let path = Path::new(netns::namespace::NETNS_DIR).join(name.as_str());
    let now = namespace_id(&path);
    if now.is_some() && now == kernel.as_ref().map(|k| k.namespace) {
        return false;
    }
    if now.is_none() {
        if kernel.take().is_some() {
            tracing::warn!("namespace {name} is gone; waiting for it to be made again");
            return true;
        }
        return false;
    }
    match Kernel::open(options.netns(), options.event_buffer).await {
        // Opened between a deletion and the mount of the new one: the next look sees.
        Ok(reopened) if Some(reopened.namespace) == now => {
            tracing::info!("namespace {name} was made again; following the new one");
            *kernel = Some(reopened);
            true
        }
        Ok(_) => false,
        Err(problem) => {
            tracing::warn!("open namespace {name} again: {problem}");
            false
        }
    }
}

/// Carry out effects until the core has nothing more to do.
fn drive(core: &mut Core, kernel: Option<&Kernel>, mut effect: Option<Effect>) {
    // No namespace: the effect is void; the core observes again once there is one.
    let Some(kernel) = kernel else { return };
    // Bounded: each observation or batch is answered by at most one more effect, and
    // a device that keeps vanishing must not spin the loop.
    for _ in 0..8 {
        effect = match effect {
            None => return,
            Some(Effect::Observe(why)) => {
                let observation = observe(kernel, core.device_name());
                core.observed(why, observation)
            }
            Some(Effect::Apply { index, actions }) => {
                let results = kernel.apply(index, &actions);
                core.applied(&actions, results)
            }
        };
    }
    if let Some(effect) = effect {
        tracing::warn!("left undone after 8 steps, until the next resync: {effect:?}");
    }
}

fn observe(kernel: &Kernel, device: &str) -> Result<Observation, String> {
    let state = kernel.device(device)?;
    let entries = match &state {
        DeviceState::Vxlan(device) => Some(kernel.observe(device.index)?),
        _ => None,
    };
    Ok(Observation { device: state, entries })
}

/// Writes the status file when something in it changed.
struct Reporter {
    file: PathBuf,
    latency: Samples,
    reported: Option<Status>,
}

impl Reporter {
    fn write(&mut self, core: &Core, options: &Options) {
        let status = Status {
            pid: std::process::id(),
            netns: options.netns_label().to_string(),
            device: options.device.to_string(),
            store: options.store_label.clone(),
            mode: format!("{:?}", options.mode).to_lowercase(),
            store_loaded: core.loaded(),
            device_index: core.device().map(|d| d.index),
            device_problem: core.device_problem().map(str::to_string),
            store_keys: core.store_keys(),
            neighbours: core.installed().neighbours.len(),
            fdb: core.installed().fdb.len(),
            counters: core.counters.clone(),
            miss_to_install: self.latency.latency(),
        };
        if self.reported.as_ref() != Some(&status) {
            if let Err(e) = status.write(&self.file) {
                tracing::warn!("write {}: {e}", self.file.display());
            }
            self.reported = Some(status);
        }
    }
}
