//! `network set` and `network show`: the flannel-like mode's cluster network
//! (`config`) and the nodes' leases (`subnets/`), in flannel's layout. An etcd URL
//! without a prefix means flannel's `/coreos.com/network`.

use std::time::Duration;

use clap::{Args, Subcommand};
use netlab_store::leases::{self, config_key, NetworkConfig, Subnet};
use netlab_store::Store;
use vxlan_agent::Error;

use super::StoreArgs;

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
struct Set {
    #[command(flatten)]
    store: StoreArgs,
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
    store: StoreArgs,
    /// `json`: {"config": {...} or null, "leases": [...]}.
    #[arg(long, short, value_enum, default_value_t)]
    output: super::Output,
}

impl Network {
    pub fn json(&self) -> bool {
        matches!(&self.command, NetworkCommand::Show(show) if show.output == super::Output::Json)
    }

    pub async fn execute(self) -> Result<(), Error> {
        match self.command {
            NetworkCommand::Set(set) => {
                let config = NetworkConfig::new(set.network, set.subnet_len, set.vni, set.port)
                    .map_err(|why| netlab_store::Error::Invalid { key: "config".into(), why })?;
                let store = set.store.open(leases::DEFAULT_PREFIX, Duration::ZERO)?;
                Ok(store.put(&config_key(), &config.to_value(), None).await?)
            }
            NetworkCommand::Show(show) => {
                let store = show.store.open(leases::DEFAULT_PREFIX, Duration::ZERO)?;
                if show.output == super::Output::Json {
                    return show_json(&store).await;
                }
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
                // In address order (the store lists keys as text: 10.244.18 after 10.244.172).
                for (subnet, lease) in vxlan_agent::node::lease::list(&store).await? {
                    println!(
                        "lease {subnet} public-ip {} vni {} vtep-mac {}",
                        lease.public_ip, lease.vni, lease.vtep_mac
                    );
                }
                Ok(())
            }
        }
    }
}

async fn show_json(store: &netlab_store::AnyStore) -> Result<(), Error> {
    let config = match store.get(&config_key()).await? {
        Some(value) => {
            let c = NetworkConfig::parse(&value)?;
            serde_json::json!({
                "network": c.network.to_string(), "subnet_len": c.subnet_len,
                "subnet_min": c.subnet_min.to_string(), "subnet_max": c.subnet_max.to_string(),
                "vni": c.vni, "port": c.port,
            })
        }
        None => serde_json::Value::Null,
    };
    let leases: Vec<serde_json::Value> = vxlan_agent::node::lease::list(store)
        .await?
        .into_iter()
        .map(|(subnet, lease)| {
            serde_json::json!({
                "subnet": subnet.to_string(), "public_ip": lease.public_ip.to_string(),
                "vni": lease.vni, "vtep_mac": lease.vtep_mac.to_string(),
            })
        })
        .collect();
    let json = serde_json::json!({ "config": config, "leases": leases });
    println!("{}", serde_json::to_string_pretty(&json).expect("json serializes"));
    Ok(())
}
