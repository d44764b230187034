//! `netlab inspect FILE|--name LAB`: what exists of the lab, as the kernel has it,
//! read only. Reads each of the lab's namespaces once (and the host), asks the kernel
//! which namespace each veth peer and VXLAN lower device is in, then prints the rows
//! `netlab::inspect` builds: a table per namespace, or JSON.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::Args;
use netlab::inspect::{self, Inspection, Kernel, Presence, Seen};
use netlab::model::{LabName, Place};
use netlab::observe;
use netlab::plan::Desired;
use netlab::record::Record;
use netns::namespace::Presence as Mounted;

use super::{load, print_json, Output};

#[derive(Args)]
pub struct Inspect {
    /// The lab's file (or give --name).
    #[arg(required_unless_present = "name")]
    pub file: Option<PathBuf>,
    /// The lab's name: inspect it from its record under /run/netlab, without its file.
    #[arg(long, conflicts_with = "file")]
    pub name: Option<String>,
    /// `text`: a table per namespace; `json`: the same as objects.
    #[arg(long, short, value_enum, default_value_t)]
    pub output: Output,
}

impl Inspect {
    pub async fn run(self) -> Result<ExitCode> {
        let (lab, declared, recorded) = match (&self.file, &self.name) {
            (Some(file), _) => {
                let topology = load(file)?;
                // A record that cannot be read still says the lab was applied here.
                let recorded = !matches!(Record::load(&topology.name), Ok(None));
                (topology.name, topology.namespaces, recorded)
            }
            (None, Some(name)) => {
                let lab: LabName = match name.parse() {
                    Ok(lab) => lab,
                    Err(e) => {
                        eprintln!("netlab: {e}");
                        return Ok(ExitCode::from(2));
                    }
                };
                match Record::load(&lab)? {
                    Some(record) => (lab, record.history().previous, true),
                    None => return not_applied(&lab, self.output, "it has no record under /run/netlab"),
                }
            }
            (None, None) => anyhow::bail!("inspect needs a FILE or --name LAB"),
        };
        let kernel = read(&declared).await?;
        let nodes = inspect::build(&lab, &declared, &kernel);
        let found = nodes.iter().any(|n| match n.place {
            Place::Host => n.interfaces.iter().any(|i| i.exists && !i.existing),
            Place::Node(_) => n.namespace == Presence::Present,
        });
        let agents = netlab::agents::report(&lab, &netlab::plan::agents::desired_agents(&declared));
        let inspection = Inspection { lab, applied: recorded || found, nodes, agents };
        if !inspection.applied {
            let how = self.file.as_ref().map(|f| format!("netlab apply {}", f.display())).unwrap_or_default();
            if self.output == Output::Json {
                print_json(&inspection)?;
                return Ok(ExitCode::from(1));
            }
            return not_applied(&inspection.lab, self.output, &how);
        }
        match self.output {
            Output::Json => print_json(&inspection)?,
            Output::Text => {
                // Colour only for a person at a terminal, and not with NO_COLOR set.
                let colour =
                    std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
                for line in inspect::render(&inspection, colour) {
                    println!("{line}");
                }
            }
        }
        Ok(ExitCode::SUCCESS)
    }
}

fn not_applied(lab: &LabName, output: Output, how: &str) -> Result<ExitCode> {
    if output == Output::Json {
        print_json(&Inspection { lab: lab.clone(), applied: false, nodes: Vec::new(), agents: Vec::new() })?;
    } else if how.is_empty() {
        println!("lab {lab} is not applied here");
    } else {
        println!("lab {lab} is not applied here ({how})");
    }
    Ok(ExitCode::from(1))
}

/// Everything in the lab's namespaces (and the host), then the namespace ids that
/// say where veth peers and VXLAN lower devices are.
async fn read(declared: &Desired) -> Result<Kernel, observe::ObserveError> {
    let mut seen: BTreeMap<Place, Seen> = BTreeMap::new();
    let mut mounted = vec![Place::Host];
    for place in declared.keys() {
        let Place::Node(node) = place else { continue };
        let absent = match netns::namespace::presence(node.as_str()) {
            Mounted::Missing => Seen::Missing,
            Mounted::Stale => Seen::Stale,
            Mounted::Mounted => {
                mounted.push(place.clone());
                continue;
            }
        };
        seen.insert(place.clone(), absent);
    }
    // Entries are read where the lab declares some (and where a VXLAN device is).
    let entries = declared
        .iter()
        .filter(|(_, spec)| !spec.neighbours.is_empty() || !spec.fdb.is_empty())
        .map(|(place, _)| place.clone())
        .collect();
    let dumps = observe::dump_each(mounted.clone(), entries).await?;
    for (place, dump) in mounted.into_iter().zip(dumps) {
        let state = match dump {
            Ok(dump) => Seen::Read(dump),
            Err(e) => Seen::Unreadable(e.to_string()),
        };
        seen.insert(place, state);
    }
    let nsids = observe::nsids(inspect::nsids_to_ask(&seen)).await?;
    Ok(Kernel { seen, nsids })
}
