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
    let what = format!("{}:{}", options.netns_label(), options.device);
    let _lock = Lock::take(&Lock::path(&options.status_dir, options.netns_label(), options.device.as_str()), &what)?;
    let status_file = Status::file(&options.status_dir, options.netns_label(), options.device.as_str());
    let mut kernel = Kernel::open(options.netns(), options.event_buffer).await.map_err(Error::Kernel)?;
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
    drive(&mut core, &kernel, effect);
    if let Some(problem) = core.device_problem() {
        tracing::warn!("at start: {problem}");
    }
    let mut resync = tokio::time::interval(options.resync);
    resync.tick().await;
    let mut housekeeping = tokio::time::interval(Duration::from_millis(500));
    let mut namespace_gone = false;
    tokio::pin!(shutdown);

    loop {
        tokio::select! {
            biased;
            _ = &mut shutdown => break,
            events = kernel.events() => match events {
                Ok(events) => {
                    let received = Instant::now();
                    let effect = core.on_kernel(events);
                    let answered = core.answered();
                    drive(&mut core, &kernel, effect);
                    let micros = received.elapsed().as_micros() as u64;
                    (0..answered).for_each(|_| reporter.latency.add(micros));
                }
                Err(EventsError::Overrun) => {
                    let effect = core.on_overrun();
                    drive(&mut core, &kernel, effect);
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
                drive(&mut core, &kernel, effect);
            }
            _ = resync.tick() => {
                let effect = core.on_tick();
                drive(&mut core, &kernel, effect);
            }
            _ = housekeeping.tick() => {
                if let Some(name) = &options.netns {
                    if let Some(reopened) = follow_namespace(name, &kernel, &options, &mut namespace_gone).await? {
                        kernel = reopened;
                        let effect = core.on_namespace_changed();
                        drive(&mut core, &kernel, effect);
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

/// New sockets when /run/netns/NAME is another namespace than the one they were
/// opened in (deleted and made again); `None` otherwise.
async fn follow_namespace(
    name: &NamespaceName,
    kernel: &Kernel,
    options: &Options,
    gone: &mut bool,
) -> Result<Option<Kernel>, Error> {
    let path = Path::new(netns::namespace::NETNS_DIR).join(name.as_str());
    let Some(now) = namespace_id(&path) else {
        if !*gone {
            tracing::warn!("namespace {name} is gone; waiting for it to be made again");
            *gone = true;
        }
        return Ok(None);
    };
    if now == kernel.namespace {
        return Ok(None);
    }
    match Kernel::open(options.netns(), options.event_buffer).await {
        // Opened between a deletion and the mount of the new one: the next check sees.
        Ok(reopened) if reopened.namespace == now => {
            tracing::info!("namespace {name} was made again; following the new one");
            *gone = false;
            Ok(Some(reopened))
        }
        Ok(_) => Ok(None),
        Err(problem) => {
            tracing::warn!("open namespace {name} again: {problem}");
            Ok(None)
        }
    }
}

/// Carry out effects until the core has nothing more to do.
fn drive(core: &mut Core, kernel: &Kernel, mut effect: Option<Effect>) {
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
