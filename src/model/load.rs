//! Reading a lab file from disk, and the files it `extends:`, each one bounded and
//! validated as a file of its own before the next one builds on it.

use std::io::Read;
use std::path::{Path, PathBuf};

use super::diagnostic::{Diagnostic, Diagnostics};
use super::raw::RawTopology;
use super::{finish, merge, parse_raw, validate, Topology};

/// Files larger than this are refused while reading (a lab of 100,000 nodes is ~13 MB).
pub const MAX_FILE: usize = 64 << 20;

/// At most this many files in a chain of `extends:` (the file itself included).
pub const MAX_EXTENDS: usize = 8;

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

/// Read and validate a topology file: a regular file or a pipe (`<(cat lab.yaml)`), read
/// at most to MAX_FILE and one byte more, so that `/dev/urandom` stops at the limit.
/// With `extends:`, the base is read the same way (relative to this file), validated on
/// its own so that its errors name it, then this file's differences are merged over it.
pub fn load(path: &Path) -> Result<Topology, LoadError> {
    let layer = read_layer(path, &mut Vec::new())?;
    finish(&layer.file, &layer.source, layer.raw).map_err(LoadError::Invalid)
}

/// One file with what it extends merged in, and the text that its errors point into.
struct Layer {
    file: String,
    source: String,
    raw: RawTopology,
}

/// `chain`: the files that extend this one, outermost first, to find cycles.
fn read_layer(path: &Path, chain: &mut Vec<PathBuf>) -> Result<Layer, LoadError> {
    let file = path.display().to_string();
    let source = read_text(path)?;
    let invalid = |items| LoadError::Invalid(Diagnostics { file: file.clone(), source: source.clone(), items });
    let raw = parse_raw(&file, &source).map_err(LoadError::Invalid)?;
    let Some(extends) = raw.extends.clone() else {
        return Ok(Layer { file, source, raw });
    };
    let here = |message: String| invalid(vec![Diagnostic::at(&extends.referenced, message)]);
    // The same file reached by two spellings is one file: compare resolved paths.
    chain.push(std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf()));
    if chain.len() >= MAX_EXTENDS {
        return Err(here(format!("`extends` goes deeper than {MAX_EXTENDS} files")));
    }
    if extends.value.is_empty() {
        return Err(here("`extends` names no file".into()));
    }
    let base_path = path.parent().unwrap_or(Path::new("")).join(&extends.value);
    let resolved = std::fs::canonicalize(&base_path).unwrap_or_else(|_| base_path.clone());
    if let Some(start) = chain.iter().position(|seen| *seen == resolved) {
        let cycle: Vec<String> = chain[start..].iter().chain([&resolved]).map(|p| p.display().to_string()).collect();
        return Err(here(format!("`extends` makes a cycle: {}", cycle.join(" -> "))));
    }
    let base = match read_layer(&base_path, chain) {
        Ok(base) => base,
        Err(LoadError::Invalid(diagnostics)) => return Err(LoadError::Invalid(diagnostics)),
        Err(unreadable) => return Err(here(format!("extends {}: {}", extends.value, error_chain(&unreadable)))),
    };
    // The base is a lab of its own: its own errors are reported in it, not here.
    validate::validate(base.raw.clone()).map_err(|items| {
        LoadError::Invalid(Diagnostics { file: base.file.clone(), source: base.source.clone(), items })
    })?;
    let raw = merge::merge(base.raw, raw).map_err(invalid)?;
    Ok(Layer { file, source, raw })
}

fn read_text(path: &Path) -> Result<String, LoadError> {
    let name = path.display().to_string();
    let read_error = |e| LoadError::Read(name.clone(), e);
    let file = std::fs::File::open(path).map_err(read_error)?;
    let mut bytes = Vec::new();
    file.take(MAX_FILE as u64 + 1).read_to_end(&mut bytes).map_err(read_error)?;
    if bytes.len() > MAX_FILE {
        return Err(LoadError::TooLarge(name));
    }
    String::from_utf8(bytes).map_err(|_| LoadError::NotText(name))
}

fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text = format!("{text}: {cause}");
        source = cause.source();
    }
    text
}
