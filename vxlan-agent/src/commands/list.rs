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
    /// `json`: {"arp": {IP: MAC}, "fdb": {MAC: VTEP}}.
    #[arg(long, short, value_enum, default_value_t)]
    pub output: super::Output,
}

impl List {
    pub async fn execute(self) -> Result<(), Error> {
        let table = endpoints::list(&self.store.open(netlab_store::DEFAULT_PREFIX, std::time::Duration::ZERO)?).await?;
        if self.output == super::Output::Json {
            let arp: serde_json::Map<String, serde_json::Value> =
                table.arp().map(|(ip, mac)| (ip.to_string(), mac.to_string().into())).collect();
            let fdb: serde_json::Map<String, serde_json::Value> =
                table.fdb().map(|(mac, vtep)| (mac.to_string(), vtep.to_string().into())).collect();
            let json = serde_json::json!({ "arp": arp, "fdb": fdb });
            println!("{}", serde_json::to_string_pretty(&json).expect("json serializes"));
            return Ok(());
        }
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
