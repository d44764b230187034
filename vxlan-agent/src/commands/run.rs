//! `run`: the agent itself, until SIGTERM or SIGINT.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use netns::name::{LinkName, NamespaceName};
use vxlan_agent::reconcile::Mode;
use vxlan_agent::run::{self, Options};
use vxlan_agent::status;
use vxlan_agent::Error;

use super::StoreArgs;

#[derive(Args)]
pub struct Run {
    /// The namespace (in /run/netns) where the VXLAN device lives; default: this process's.
    #[arg(long)]
    netns: Option<NamespaceName>,
    /// The VXLAN device.
    #[arg(long)]
    device: LinkName,
    #[command(flatten)]
    store: StoreArgs,
    /// proactive: install every entry before traffic needs it (misses remain the
    /// fallback); miss: only answer misses, as the tutorial's agent does.
    #[arg(long, value_enum, default_value = "proactive")]
    mode: Mode,
    /// This host's VTEP address (repeatable); default: the device's local address.
    #[arg(long)]
    local: Vec<IpAddr>,
    /// Seconds between full reconciliations of the kernel with the store.
    #[arg(long, default_value_t = 30.0, value_parser = seconds)]
    resync: f64,
    /// Seconds between rescans of a folder store (for shared folders inotify cannot
    /// see into); 0: inotify only.
    #[arg(long, default_value_t = 5.0, value_parser = seconds)]
    poll: f64,
    /// Receive buffer of the kernel notification socket, in bytes. When a burst overruns
    /// it the kernel drops notifications and the agent reconciles in full.
    #[arg(long, default_value_t = run::DEFAULT_EVENT_BUFFER)]
    event_buffer: usize,
    #[arg(long, default_value = status::DEFAULT_DIR)]
    status_dir: PathBuf,
}

/// A number of seconds that makes a duration.
pub fn seconds(text: &str) -> Result<f64, String> {
    let value: f64 = text.parse().map_err(|_| format!("`{text}` is not a number of seconds"))?;
    Duration::try_from_secs_f64(value).map(|_| value).map_err(|_| format!("`{text}` is not a number of seconds"))
}

impl Run {
    pub async fn execute(self) -> Result<(), Error> {
        // Zero turns rescans off; anything else is at least 100 ms apart.
        let poll = if self.poll == 0.0 { Duration::ZERO } else { Duration::from_secs_f64(self.poll.max(0.1)) };
        let store = self.store.open(netlab_store::DEFAULT_PREFIX, poll)?;
        let options = Options {
            netns: self.netns,
            device: self.device,
            mode: self.mode,
            local: self.local,
            resync: Duration::from_secs_f64(self.resync).max(Duration::from_millis(100)),
            event_buffer: self.event_buffer,
            status_dir: self.status_dir,
            store_label: self.store.url(netlab_store::DEFAULT_PREFIX)?.to_string(),
        };
        let shutdown = super::shutdown_signal()?;
        run::run(options, store, shutdown).await
    }
}
