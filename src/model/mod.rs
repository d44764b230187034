//! The topology model: a file is parsed into raw types, then validated into a
//! `Topology`. Pure: no kernel, no I/O beyond what the caller reads.

pub mod diagnostic;
pub mod mtu;

pub mod names;
pub mod raw;
mod schema;
mod suggest;
pub mod topology;
mod validate;

pub use diagnostic::{Diagnostic, Diagnostics};
pub use names::{IfName, LabName, NodeName, Place, SysctlKey};
pub use netns::mac::Mac;
pub use topology::{
    Attachment, Check, Endpoint, FdbSpec, LinkKind, LinkSpec, Masquerade, NamespaceSpec, NatSpec, NeighbourSpec,
    Protocol, Publish, RouteSpec, Topology, VxlanSpec,
};

/// Parse and validate a topology from its text; `file` names it in errors.
pub fn parse(file: &str, source: &str) -> Result<Topology, Diagnostics> {
    let fail = |items| Diagnostics { file: file.to_string(), source: source.to_string(), items };
    // Unknown fields, foreign tags and merge keys, all at once; serde would stop at the first.
    let shape_errors = schema::check(source);
    if !shape_errors.is_empty() {
        return Err(fail(shape_errors));
    }
    let raw: raw::RawTopology = serde_saphyr::from_str_with_options(source, parser_options())
        .map_err(|e| fail(vec![diagnostic::from_parse_error(&e)]))?;
    let mut topology = validate::validate(raw).map_err(fail)?;
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

/// Read and validate a topology file: a regular file or a pipe (`<(cat lab.yaml)`), read
/// at most to MAX_FILE and one byte more, so that `/dev/urandom` stops at the limit.
pub fn load(path: &std::path::Path) -> Result<Topology, LoadError> {
    use std::io::Read;
    let name = path.display().to_string();
    let read_error = |e| LoadError::Read(name.clone(), e);
    let file = std::fs::File::open(path).map_err(read_error)?;
    let mut bytes = Vec::new();
    file.take(MAX_FILE as u64 + 1).read_to_end(&mut bytes).map_err(read_error)?;
    if bytes.len() > MAX_FILE {
        return Err(LoadError::TooLarge(name));
    }
    let source = String::from_utf8(bytes).map_err(|_| LoadError::NotText(name.clone()))?;
    parse(&name, &source).map_err(LoadError::Invalid)
}

/// Files larger than this are refused while reading (a lab of 100,000 nodes is ~13 MB).
pub const MAX_FILE: usize = 64 << 20;

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("read {0}")]
    Read(String, #[source] std::io::Error),
    #[error("read {0}: larger than 64 MiB")]
    TooLarge(String),
    #[error("read {0}: not UTF-8 text")]
    NotText(String),
    #[error("{0}")]
    Invalid(Diagnostics),
}
