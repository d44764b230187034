//! The topology model: a file is parsed into raw types, then validated into a
//! `Topology`. Pure: no kernel, no I/O beyond what the caller reads.

pub mod diagnostic;
pub mod mtu;

pub mod names;
pub mod raw;
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
    let raw: raw::RawTopology =
        serde_saphyr::from_str(source).map_err(|e| fail(vec![diagnostic::from_parse_error(&e)]))?;
    let mut topology = validate::validate(raw).map_err(fail)?;
    for warning in &mut topology.warnings {
        *warning = format!("{file}:{warning}");
    }
    Ok(topology)
}

/// Read and validate a topology file.
pub fn load(path: &std::path::Path) -> Result<Topology, LoadError> {
    let source = std::fs::read_to_string(path).map_err(|e| LoadError::Read(path.display().to_string(), e))?;
    if source.len() > MAX_FILE {
        return Err(LoadError::TooLarge(path.display().to_string()));
    }
    parse(&path.display().to_string(), &source).map_err(LoadError::Invalid)
}

/// Files larger than this are refused before parsing (a lab of 10,000 nodes is ~2 MB).
const MAX_FILE: usize = 64 << 20;

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("read {0}")]
    Read(String, #[source] std::io::Error),
    #[error("read {0}: larger than 64 MiB")]
    TooLarge(String),
    #[error("{0}")]
    Invalid(Diagnostics),
}
