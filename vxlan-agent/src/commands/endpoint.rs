//! `publish` and `withdraw`: an endpoint's two keys, by hand.

use std::net::IpAddr;

use clap::Args;
use netlab_store::endpoints::{self, Endpoint, Mac};
use vxlan_agent::Error;

use super::StoreArgs;

#[derive(Args)]
pub struct EndpointArgs {
    #[command(flatten)]
    store: StoreArgs,
    #[arg(long)]
    ip: IpAddr,
    #[arg(long, value_parser = endpoints::parse_mac)]
    mac: Mac,
    /// The VTEP (underlay address) of the host the endpoint lives on.
    #[arg(long)]
    vtep: IpAddr,
}

impl EndpointArgs {
    fn endpoint(&self) -> Endpoint {
        Endpoint { ip: self.ip, mac: self.mac, vtep: self.vtep }
    }
}

#[derive(Args)]
pub struct Publish {
    #[command(flatten)]
    args: EndpointArgs,
}

impl Publish {
    pub async fn execute(self) -> Result<(), Error> {
        let store = self.args.store.open(netlab_store::DEFAULT_PREFIX, std::time::Duration::ZERO)?;
        Ok(endpoints::publish(&store, &self.args.endpoint()).await?)
    }
}

#[derive(Args)]
pub struct Withdraw {
    #[command(flatten)]
    args: EndpointArgs,
}

impl Withdraw {
    pub async fn execute(self) -> Result<(), Error> {
        let store = self.args.store.open(netlab_store::DEFAULT_PREFIX, std::time::Duration::ZERO)?;
        Ok(endpoints::withdraw(&store, &self.args.endpoint()).await?)
    }
}
