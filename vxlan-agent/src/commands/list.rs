//! `list`: the store's entries as the agents see them (aliases resolved), one
//! `KEY VALUE` per line.

use std::io::Write;

use clap::Args;
use netlab_store::endpoints;
use vxlan_agent::Error;

use super::StoreArgs;

#[derive(Args)]
pub struct List {
    #[command(flatten)]
    store: StoreArgs,
}

impl List {
    pub async fn execute(self) -> Result<(), Error> {
        let table = endpoints::list(&self.store.open(netlab_store::DEFAULT_PREFIX, std::time::Duration::ZERO)?).await?;
        // Buffered: 100,000 endpoints are 200,000 lines.
        let mut out = std::io::BufWriter::new(std::io::stdout().lock());
        let written: std::io::Result<()> = (|| {
            for (ip, mac) in table.arp() {
                writeln!(out, "arp/{ip} {mac}")?;
            }
            for (mac, vtep) in table.fdb() {
                writeln!(out, "fdb/{mac} {vtep}")?;
            }
            out.flush()
        })();
        match written {
            // A reader that stopped early (`| head`) is not a failure.
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
            Err(e) => Err(Error::file("write", std::path::Path::new("stdout"), e)),
            Ok(()) => Ok(()),
        }
    }
}
