//! `network set` and `network show`: the flannel-like mode's cluster network
//! (`config`) and the nodes' leases (`subnets/`), in flannel's layout. An etcd URL
//! without a prefix means flannel's `/coreos.com/network`.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Subcommand};
use netlab_store::leases::{self, config_key, LeaseAttrs, NetworkConfig, Subnet};
use netlab_store::{AnyStore, Store, StoreUrl, Tls};
use vxlan_agent::Error;

#[derive(Args)]
pub struct Network {
    #[command(subcommand)]
    command: NetworkCommand,
}

#[derive(Subcommand)]
enum NetworkCommand {
    /// Write the cluster network's configuration.
    Set(Set),
    /// Print the configuration and every lease.
    Show(Show),
}

#[derive(Args)]
struct LeaseStore {
    /// dir:PATH or etcd://HOST:PORT[,HOST:PORT...][/PREFIX] (default prefix /coreos.com/network).
    #[arg(long)]
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

impl LeaseStore {
    fn open(&self) -> Result<AnyStore, Error> {
        let url = StoreUrl::parse_with_default(&self.store, leases::DEFAULT_PREFIX)?;
        let tls = (self.etcd_ca.is_some() || self.etcd_cert.is_some()).then(|| Tls {
            ca: self.etcd_ca.clone(),
            cert: self.etcd_cert.clone(),
            key: self.etcd_key.clone(),
        });
        Ok(AnyStore::open(&url, tls, Duration::ZERO)?)
    }
}

#[derive(Args)]
struct Set {
    #[command(flatten)]
    store: LeaseStore,
    /// The cluster network, as 10.244.0.0/16.
    #[arg(long)]
    network: Subnet,
    /// The length of each node's subnet (default 24).
    #[arg(long)]
    subnet_len: Option<u8>,
    /// The VXLAN network identifier (default 1).
    #[arg(long)]
    vni: Option<u32>,
    /// The VXLAN UDP port (default 8472, the kernel's).
    #[arg(long)]
    port: Option<u16>,
}

#[derive(Args)]
struct Show {
    #[command(flatten)]
    store: LeaseStore,
}

impl Network {
    pub async fn execute(self) -> Result<(), Error> {
        match self.command {
            NetworkCommand::Set(set) => {
                let config = NetworkConfig::new(set.network, set.subnet_len, set.vni, set.port)
                    .map_err(|why| netlab_store::Error::Invalid { key: "config".into(), why })?;
                let store = set.store.open()?;
                Ok(store.put(&config_key(), &config.to_value(), None).await?)
            }
            NetworkCommand::Show(show) => {
                let store = show.store.open()?;
                match store.get(&config_key()).await? {
                    Some(value) => {
                        let config = NetworkConfig::parse(&value)?;
                        println!(
                            "network {} subnets /{} from {} to {} vni {} port {}",
                            config.network,
                            config.subnet_len,
                            config.subnet_min,
                            config.subnet_max,
                            config.vni,
                            config.port
                        );
                    }
                    None => println!("no network configured"),
                }
                for (key, value) in store.list(leases::SUBNETS).await? {
                    let Some(subnet) = Subnet::of_key(&key) else { continue };
                    match LeaseAttrs::parse(&key, &value) {
                        Ok(lease) => println!(
                            "lease {subnet} public-ip {} vni {} vtep-mac {}",
                            lease.public_ip, lease.vni, lease.vtep_mac
                        ),
                        Err(problem) => tracing::warn!("{problem}; ignored"),
                    }
                }
                Ok(())
            }
        }
    }
}
