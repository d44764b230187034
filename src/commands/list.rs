use std::process::ExitCode;

use anyhow::Result;
use clap::Args;
use netlab::record::{Listed, Record};
use serde_json::json;

use super::{print_json, Output};

#[derive(Args)]
pub struct List {
    /// `text` for people, `json` for programs (a failure is then JSON too).
    #[arg(long, short, value_enum, default_value_t)]
    pub output: Output,
}

impl List {
    pub fn run(self) -> Result<ExitCode> {
        let listed = Record::list()?;
        let rows: Vec<serde_json::Value> = listed
            .iter()
            .map(|entry| match entry {
                Listed::Record(r) => json!({
                    "lab": r.lab,
                    "file": r.file,
                    "namespaces": r.applied.keys().filter(|p| p.node().is_some()).count(),
                    "interrupted": r.pending.is_some(),
                    "updated_unix": r.updated_unix,
                }),
                Listed::Corrupt { lab, error } => json!({
                    "lab": lab,
                    "corrupt": error.to_string(),
                }),
            })
            .collect();
        if self.output == Output::Json {
            return print_json(&rows).map(|()| ExitCode::SUCCESS);
        }
        if listed.is_empty() {
            println!("no labs applied");
        }
        for entry in &listed {
            match entry {
                Listed::Record(record) => {
                    let file = record.file.as_ref().map(|f| f.display().to_string()).unwrap_or_else(|| "-".into());
                    let nodes = record.applied.keys().filter(|p| p.node().is_some()).count();
                    let note = if record.pending.is_some() { "  (interrupted: apply or destroy again)" } else { "" };
                    println!("{:<24} {nodes:>5} nodes  {file}{note}", record.lab);
                }
                Listed::Corrupt { lab, error } => println!("{lab:<24} corrupt: {error}"),
            }
        }
        Ok(ExitCode::SUCCESS)
    }
}
