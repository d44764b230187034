//! The topology model: a file is parsed into raw types, then validated into a
//! `Topology`. Pure: no kernel, no I/O beyond what the caller reads.

pub mod diagnostic;
mod load;
mod merge;
pub mod mtu;

pub mod names;
pub mod raw;
mod schema;
pub mod shaping;
mod suggest;
pub mod topology;
mod validate;

pub use diagnostic::{Diagnostic, Diagnostics};
pub use names::{IfName, LabName, NodeName, Place, SysctlKey};
pub use netns::mac::Mac;
pub use shaping::{KernelFeatures, Shaping};
pub use topology::{
    AgentMode, Attachment, Check, Endpoint, FdbSpec, LinkKind, LinkSpec, Masquerade, NamespaceSpec, NatSpec,
    NeighbourSpec, Pinged, Protocol, Publish, RouteSpec, Topology, VxlanSpec,
};

/// Parse and validate a topology from its text; `file` names it in errors. A text
/// alone has no directory to find a base in: `extends:` needs `load`.
pub fn parse(file: &str, source: &str) -> Result<Topology, Diagnostics> {
    parse_for(file, source, KernelFeatures::ALL)
}

/// `parse`, for a kernel with these features (see `load_for`).
pub fn parse_for(file: &str, source: &str, features: KernelFeatures) -> Result<Topology, Diagnostics> {
    let fail = |items| Diagnostics { file: file.to_string(), source: source.to_string(), items, also: Vec::new() };
    let raw = parse_raw(file, source)?;
    if let Some(extends) = &raw.extends {
        return Err(fail(vec![Diagnostic::at(
            &extends.referenced,
            "`extends` needs a file on disk (netlab reads it)",
        )]));
    }
    finish(file, source, raw, features)
}

/// One file's text into raw types: shape, then serde; errors name this file.
fn parse_raw(file: &str, source: &str) -> Result<raw::RawTopology, Diagnostics> {
    let fail = |items| Diagnostics { file: file.to_string(), source: source.to_string(), items, also: Vec::new() };
    // Unknown fields, foreign tags and merge keys, all at once; serde would stop at the first.
    let shape_errors = schema::check(source);
    if !shape_errors.is_empty() {
        return Err(fail(shape_errors));
    }
    serde_saphyr::from_str_with_options(source, parser_options())
        .map_err(|e| fail(vec![diagnostic::from_parse_error(&e)]))
}

/// Validate raw types read from `file` (with what it extends merged in).
fn finish(file: &str, source: &str, raw: raw::RawTopology, features: KernelFeatures) -> Result<Topology, Diagnostics> {
    let fail = |items| Diagnostics { file: file.to_string(), source: source.to_string(), items, also: Vec::new() };
    let mut topology = validate::validate(raw, features).map_err(fail)?;
    for warning in &mut topology.warnings {
        *warning = format!("{file}:{warning}");
    }
    Ok(topology)
}

/// The parser's limits follow the file's: serde-saphyr's defaults (250,000 nodes,
/// 1,000,000 events) would refuse a valid lab of 15,000 nodes (1.9 MB), far below
/// MAX_FILE. Every node and event takes at least one byte of the file, so these never
/// bind before MAX_FILE does; alias expansion keeps the parser's own limits. Merge keys
/// are refused by `schema` already; refusing them here too keeps serde from expanding
/// one should that pass ever miss it.
fn parser_options() -> serde_saphyr::Options {
    serde_saphyr::options! {
        budget: serde_saphyr::budget! {
            max_nodes: MAX_FILE,
            max_events: MAX_FILE,
            max_total_scalar_bytes: MAX_FILE,
        },
        merge_keys: serde_saphyr::MergeKeyPolicy::Error,
    }
}

pub use load::{load, load_for, LoadError, MAX_EXTENDS, MAX_FILE};
