//! `node`: the flannel-like node daemon, until SIGTERM or SIGINT.

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use netns::name::LinkName;
use vxlan_agent::node::{self, Options};
use vxlan_agent::Error;

use super::run::seconds;
use super::StoreArgs;

#[derive(Args)]
pub struct Node {
    #[command(flatten)]
    store: StoreArgs,
    /// This node's address on the underlay: its VTEP, and how its lease is found again.
    #[arg(long)]
    public_ip: Ipv4Addr,
    /// The underlay card; default: the one holding --public-ip.
    #[arg(long)]
    iface: Option<LinkName>,
    /// The subnet file CNI plugins read (flannel's format).
    #[arg(long, default_value = "/run/flannel/subnet.env")]
    subnet_file: PathBuf,
    /// The VXLAN device; default: flannel.<VNI>.
    #[arg(long)]
    device: Option<LinkName>,
    /// Masquerade traffic from this node's subnet leaving the cluster network.
    #[arg(long)]
    ip_masq: bool,
    /// Seconds a lease lives without renewal: a node that dies loses its subnet after it.
    #[arg(long, default_value_t = 60.0, value_parser = seconds)]
    ttl: f64,
    /// Seconds between full reconciliations of the kernel with the store.
    #[arg(long, default_value_t = 10.0, value_parser = seconds)]
    resync: f64,
    /// Seconds between rescans of a folder store (for shared folders inotify cannot
    /// see into); 0: inotify only.
    #[arg(long, default_value_t = 5.0, value_parser = seconds)]
    poll: f64,
    /// Where the daemon writes its status (JSON).
    #[arg(long, default_value = node::report::DEFAULT_FILE)]
    status_file: PathBuf,
}

impl Node {
    pub async fn execute(self) -> Result<(), Error> {
        let poll = if self.poll == 0.0 { Duration::ZERO } else { Duration::from_secs_f64(self.poll.max(0.1)) };
        let store = self.store.open(netlab_store::leases::DEFAULT_PREFIX, poll)?;
        // etcd counts leases in whole seconds.
        let ttl = Duration::from_secs_f64(self.ttl.max(1.0).round());
        let options = Options {
            public_ip: self.public_ip,
            iface: self.iface.map(|n| n.as_str().to_string()),
            subnet_file: self.subnet_file,
            device: self.device.map(|n| n.as_str().to_string()),
            ip_masq: self.ip_masq,
            ttl,
            resync: Duration::from_secs_f64(self.resync).max(Duration::from_millis(100)),
            status_file: self.status_file,
        };
        let shutdown = super::shutdown_signal()?;
        match store {
            netlab_store::AnyStore::Dir(store) => node::run(store, options, shutdown).await,
            netlab_store::AnyStore::Etcd(store) => node::run(*store, options, shutdown).await,
        }
    }
}
