//! Raw file -> `Topology`. Every rule reports at the offending value and validation
//! goes on, so that a file's errors are all reported at once. One file per section of
//! the file format (interfaces, vxlans, links, routes, sysctls, nat, entries, checks),
//! plus what spans sections: a namespace put together, overlays across namespaces,
//! existing devices of the host.

mod checks;
mod entries;
mod existing;
mod interfaces;
mod links;
mod namespace;
mod nat;
mod node_daemon;
mod overlays;
mod routes;
mod shaping;
mod sysctls;
mod vxlans;

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde_saphyr::Location;

use super::diagnostic::Diagnostic;
use super::mtu::{MAX as MAX_MTU, MIN as MIN_MTU};
use super::names::{IfName, LabName, NodeName, Place};
use super::raw::{Located, RawNode, RawTopology};
use super::shaping::KernelFeatures;
use super::topology::{LinkSpec, Topology};

/// The kernel refuses the 1024th port of a bridge (EXFULL).
pub const MAX_BRIDGE_PORTS: usize = 1023;

pub fn validate(raw: RawTopology, features: KernelFeatures) -> Result<Topology, Vec<Diagnostic>> {
    let mut v = Validator { features, ..Validator::default() };
    let name = match &raw.name {
        Some(name) => v.parse::<LabName>(name),
        None => {
            v.errors.push(Diagnostic { line: 1, column: 1, message: "missing field `name`".into() });
            None
        }
    };
    let host_at = raw.name.as_ref().map_or(Location::UNKNOWN, |name| name.referenced);

    let mut places: Vec<(Place, Location, RawNode)> = Vec::new();
    places.push((Place::Host, host_at, raw.host.unwrap_or_default()));
    for (key, node) in raw.nodes {
        if let Some(node_name) = v.parse::<NodeName>(&key) {
            places.push((Place::Node(node_name), key.referenced, node.unwrap_or_default()));
        }
    }
    let known: BTreeSet<Place> = places.iter().map(|(place, ..)| place.clone()).collect();

    let mut drafts: BTreeMap<Place, PlaceDraft> = BTreeMap::new();
    for (place, _, node) in &places {
        drafts.insert(place.clone(), v.interfaces(place, node));
    }
    v.links(&raw.links, &known, &mut drafts);
    let mut namespaces = BTreeMap::new();
    for (place, _, node) in &places {
        let draft = drafts.remove(place).expect("one draft per place");
        namespaces.insert(place.clone(), v.finish_namespace(place, node, draft));
    }
    v.overlays(&mut namespaces);
    if let Some(host) = namespaces.get_mut(&Place::Host) {
        host.existing = std::mem::take(&mut v.existing);
    }
    v.unique_macs(&namespaces);
    let checks = raw.checks.iter().filter_map(|check| v.check(check, &known, &namespaces)).collect();

    match (name, v.errors.is_empty()) {
        (Some(name), true) => Ok(Topology { name, namespaces, checks, warnings: v.warnings }),
        _ => {
            v.errors.sort_by_key(|d| (d.line, d.column));
            Err(v.errors)
        }
    }
}

/// An interface of a namespace while validation gathers it.
struct Draft {
    at: Location,
    spec: LinkSpec,
    /// Declared under `interfaces:` but not yet seen in a link.
    unlinked: bool,
    bridge_ref: Option<Located<String>>,
}

#[derive(Default)]
struct PlaceDraft {
    /// Boxed: most namespaces hold one or two interfaces, and a map's first node has
    /// room for eleven values, which for a 100,000-node lab was most of its memory.
    links: BTreeMap<IfName, Box<Draft>>,
}

#[derive(Default)]
struct Validator {
    errors: Vec<Diagnostic>,
    warnings: Vec<String>,
    /// Where each VXLAN device was declared, for checks across namespaces.
    vxlan_sites: Vec<VxlanSite>,
    /// Where each interface was declared.
    declared: HashMap<(Place, IfName), Location>,
    /// Host devices the file names without declaring them (see `existing`).
    existing: BTreeSet<IfName>,
    /// What the kernel the lab is for offers (netem).
    features: KernelFeatures,
}

struct VxlanSite {
    place: Place,
    name: IfName,
    at: Location,
    dev_at: Location,
    underlay_at: Location,
    local_at: Location,
    mtu: Option<Located<u32>>,
}

impl Validator {
    fn error(&mut self, at: &Location, message: impl Into<String>) {
        self.errors.push(Diagnostic::at(at, message));
    }

    fn error_count(&self) -> usize {
        self.errors.len()
    }

    fn parse<T: std::str::FromStr<Err = String>>(&mut self, value: &Located<String>) -> Option<T> {
        match value.value.parse() {
            Ok(parsed) => Some(parsed),
            Err(message) => {
                self.error(&value.referenced, message);
                None
            }
        }
    }
}

/// ", did you mean `X`?" for a node name that is not one of `known`.
fn node_hint<'a>(typed: &str, known: impl IntoIterator<Item = &'a Place>) -> String {
    let names: Vec<String> = known.into_iter().map(ToString::to_string).collect();
    super::suggest::hint(typed, names.iter().map(String::as_str))
}

/// ", did you mean `X`?" for an interface name that is not one of `declared`.
fn name_hint<'a>(typed: &str, declared: impl IntoIterator<Item = &'a IfName>) -> String {
    super::suggest::hint(typed, declared.into_iter().map(IfName::as_str))
}
