//! The command line: one file per command, each a clap struct with `execute`.

mod docs;
mod endpoint;
mod list;
mod network;
mod node;
mod run;
mod status;

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use netlab_store::{AnyStore, StoreUrl, Tls};
use vxlan_agent::Error;

#[derive(Parser)]
#[command(version, about = "per-host agent of a dynamic VXLAN overlay")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Keep a VXLAN device's ARP and FDB entries in line with the store.
    Run(run::Run),
    /// Write an endpoint's entries (arp/IP -> MAC, fdb/MAC -> VTEP) to the store.
    Publish(endpoint::Publish),
    /// Remove an endpoint's entries from the store (those still holding its values).
    Withdraw(endpoint::Withdraw),
    /// Print the store's entries, one `KEY VALUE` per line.
    List(list::List),
    /// Show the counters of the agents on this host.
    Status(status::ShowStatus),
    /// The flannel-like mode's cluster network and leases (flannel's layout).
    Network(network::Network),
    /// The flannel-like node daemon: lease a subnet, write the subnet file, route to
    /// the other nodes' subnets over VXLAN.
    Node(node::Node),
    /// Print shell completions for bash, zsh, fish, elvish or powershell.
    Completions(docs::Completions),
    /// Print vxlan-agent's man page, or write a page per command into a folder.
    Man(docs::Man),
}

/// What a command prints: text for people, or JSON (`-o json`, as netlab's commands).
#[derive(Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum Output {
    #[default]
    Text,
    Json,
}

impl Command {
    /// Whether the output asked for is JSON: a failure is then reported as JSON too.
    pub fn wants_json(&self) -> bool {
        match self {
            Command::List(command) => command.output == Output::Json,
            Command::Status(command) => command.json(),
            Command::Network(command) => command.json(),
            _ => false,
        }
    }

    pub async fn execute(self) -> Result<(), Error> {
        match self {
            Command::Run(command) => command.execute().await,
            Command::Publish(command) => command.execute().await,
            Command::Withdraw(command) => command.execute().await,
            Command::List(command) => command.execute().await,
            Command::Status(command) => command.execute(),
            Command::Network(command) => command.execute().await,
            Command::Node(command) => command.execute().await,
            Command::Completions(command) => command.execute(),
            Command::Man(command) => command.execute(),
        }
    }
}

/// Completes at SIGTERM or SIGINT: daemons stop there and leave their entries.
fn shutdown_signal() -> Result<impl std::future::Future<Output = ()>, Error> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut terminate = signal(SignalKind::terminate()).map_err(|e| Error::Kernel(format!("signal: {e}")))?;
    let mut interrupt = signal(SignalKind::interrupt()).map_err(|e| Error::Kernel(format!("signal: {e}")))?;
    Ok(async move {
        tokio::select! {
            _ = terminate.recv() => {}
            _ = interrupt.recv() => {}
        }
    })
}

#[derive(Args)]
pub struct StoreArgs {
    /// dir:PATH or etcd://HOST:PORT[,HOST:PORT...][/PREFIX] (without a prefix:
    /// /netlab/vxlan for endpoints, /coreos.com/network for `network`).
    #[arg(long, default_value = "dir:/var/lib/vxlan-agent")]
    store: String,
    /// CA certificate (PEM) for etcd over TLS.
    #[arg(long)]
    etcd_ca: Option<PathBuf>,
    /// Client certificate (PEM) for etcd over TLS.
    #[arg(long, requires = "etcd_key")]
    etcd_cert: Option<PathBuf>,
    /// Client key (PEM) for etcd over TLS.
    #[arg(long, requires = "etcd_cert")]
    etcd_key: Option<PathBuf>,
}

impl StoreArgs {
    /// The store's URL; an etcd URL that names no prefix gets the keyspace's.
    fn url(&self, default_prefix: &str) -> Result<StoreUrl, Error> {
        Ok(StoreUrl::parse_with_default(&self.store, default_prefix)?)
    }

    /// `poll`: rescans of a folder store (see `AnyStore::open`).
    fn open(&self, default_prefix: &str, poll: Duration) -> Result<AnyStore, Error> {
        let url = self.url(default_prefix)?;
        let tls = (self.etcd_ca.is_some() || self.etcd_cert.is_some()).then(|| Tls {
            ca: self.etcd_ca.clone(),
            cert: self.etcd_cert.clone(),
            key: self.etcd_key.clone(),
        });
        if tls.is_some() && !matches!(url, StoreUrl::Etcd { .. }) {
            return Err(netlab_store::Error::Tls("--etcd-ca/--etcd-cert apply to an etcd store only".into()).into());
        }
        Ok(AnyStore::open(&url, tls, poll)?)
    }
}
