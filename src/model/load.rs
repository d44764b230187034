//! Reading a lab file from disk, and the files it `extends:`, each one bounded and
//! validated as a file of its own before the next one builds on it.

use std::io::Read;
use std::path::{Path, PathBuf};

use super::diagnostic::{Diagnostic, Diagnostics};
use super::raw::{Located, RawTopology};
use super::{merge, parse_raw, validate, KernelFeatures, Topology};

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
/// With `extends:`, the base is read the same way (relative to this file) and validated
/// as a lab of its own, then this file's differences are merged over it.
///
/// Every file of a chain is parsed below blank lines that put its lines after those of
/// the files read before it: a location in the merged lab then says which file it is in,
/// and each error is reported in that file at its own line. (The locations serde gives
/// carry no file; blank lines change nothing else in YAML.)
pub fn load(path: &Path) -> Result<Topology, LoadError> {
    load_for(path, KernelFeatures::ALL)
}

/// `load`, for a kernel with these features: what the file needs and the kernel lacks
/// (netem) is an error at its line.
pub fn load_for(path: &Path, features: KernelFeatures) -> Result<Topology, LoadError> {
    let chain = read_chain(path)?;
    let mut layers = chain.layers.into_iter().rev();
    let deepest = layers.next().expect("a chain has its file");
    let mut merged = deepest.raw;
    for layer in layers {
        // The lab so far is a base: a lab of its own, with its own errors.
        validate::validate(merged.clone(), features).map_err(|items| chain.sources.invalid(items, layer.index + 1))?;
        merged = merge::merge(merged, layer.raw).map_err(|items| chain.sources.invalid(items, layer.index))?;
    }
    let mut topology = validate::validate(merged, features).map_err(|items| chain.sources.invalid(items, 0))?;
    for warning in &mut topology.warnings {
        *warning = chain.sources.locate_warning(warning);
    }
    Ok(topology)
}

/// The files of a chain, the one asked for first, and their raw contents.
struct Chain {
    sources: Sources,
    layers: Vec<Layer>,
}

struct Layer {
    /// In `Sources`.
    index: usize,
    raw: RawTopology,
}

fn read_chain(path: &Path) -> Result<Chain, LoadError> {
    let mut sources = Sources(Vec::new());
    let mut layers = Vec::new();
    // Resolved paths, to find a cycle (one file reached by two spellings is one file).
    let mut seen: Vec<PathBuf> = Vec::new();
    let mut next = path.to_path_buf();
    // The `extends` that named `next`, and the file it is in.
    let mut named_by: Option<(Located<String>, usize)> = None;
    loop {
        let text = match (read_text(&next), &named_by) {
            (Ok(text), _) => text,
            (Err(error), None) => return Err(error),
            // A base that cannot be read is the extending file's error, at its `extends`.
            (Err(error), Some((extends, index))) => {
                let message = format!("extends {}: {}", extends.value, error_chain(&error));
                return Err(sources.invalid(vec![Diagnostic::at(&extends.referenced, message)], *index));
            }
        };
        let file = next.display().to_string();
        let offset = sources.0.last().map_or(0, |last| last.offset + last.lines);
        let lines = text.lines().count() as u64 + 1;
        let index = sources.0.len();
        let raw = parse_raw(&file, &pad(&text, offset));
        sources.0.push(Source { file, text, offset, lines });
        let raw = raw.map_err(|diagnostics| sources.invalid(diagnostics.items, index))?;
        let extends = raw.extends.clone();
        layers.push(Layer { index, raw });
        let Some(extends) = extends else { break };
        let here = |message: String| sources.invalid(vec![Diagnostic::at(&extends.referenced, message)], index);
        seen.push(std::fs::canonicalize(&next).unwrap_or_else(|_| next.clone()));
        if seen.len() >= MAX_EXTENDS {
            return Err(here(format!("`extends` goes deeper than {MAX_EXTENDS} files")));
        }
        if extends.value.is_empty() {
            return Err(here("`extends` names no file".into()));
        }
        let base = next.parent().unwrap_or(Path::new("")).join(&extends.value);
        let resolved = std::fs::canonicalize(&base).unwrap_or_else(|_| base.clone());
        if let Some(start) = seen.iter().position(|file| *file == resolved) {
            let cycle: Vec<String> = seen[start..].iter().chain([&resolved]).map(|p| p.display().to_string()).collect();
            return Err(here(format!("`extends` makes a cycle: {}", cycle.join(" -> "))));
        }
        named_by = Some((extends, index));
        next = base;
    }
    Ok(Chain { sources, layers })
}

/// `text` below `lines` blank lines; the file asked for (no lines before it) is not copied.
fn pad(text: &str, lines: u64) -> std::borrow::Cow<'_, str> {
    if lines == 0 {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut padded = "\n".repeat(usize::try_from(lines).unwrap_or(usize::MAX));
    padded.push_str(text);
    std::borrow::Cow::Owned(padded)
}

/// One file of a chain: its lines are `offset + 1 ..= offset + lines` in the locations
/// of the merged lab.
struct Source {
    file: String,
    text: String,
    offset: u64,
    lines: u64,
}

struct Sources(Vec<Source>);

impl Sources {
    /// The file a line of the merged lab is in, and the line in it. A location outside
    /// every file (an error of the lab as a whole, at 1:1) is `whole`'s.
    fn locate(&self, line: u64, whole: usize) -> (usize, u64) {
        let within = |source: &Source| line > source.offset && line <= source.offset + source.lines;
        match self.0.iter().position(within) {
            // Files read before `whole` extend it: none of their lines is in its lab.
            Some(index) if index >= whole => (index, line - self.0[index].offset),
            _ => (whole, line),
        }
    }

    /// Errors of the lab that `whole` (an index) is the outermost file of, each in its
    /// file; the files in the order they were read.
    fn invalid(&self, items: Vec<Diagnostic>, whole: usize) -> LoadError {
        let mut by_file: Vec<Vec<Diagnostic>> = vec![Vec::new(); self.0.len()];
        for item in items {
            let (index, line) = self.locate(item.line, whole);
            by_file[index].push(Diagnostic { line, ..item });
        }
        let mut files = self.0.iter().zip(by_file).filter(|(_, items)| !items.is_empty()).map(|(source, items)| {
            Diagnostics { file: source.file.clone(), source: source.text.clone(), items, also: Vec::new() }
        });
        // Callers pass at least one error; without any, the lab's own file, empty.
        let mut first = files.next().unwrap_or_else(|| Diagnostics {
            file: self.0[whole].file.clone(),
            source: self.0[whole].text.clone(),
            items: Vec::new(),
            also: Vec::new(),
        });
        first.also = files.collect();
        LoadError::Invalid(first)
    }

    /// `LINE:COLUMN: warning: ...` of the merged lab -> `FILE:LINE:COLUMN: warning: ...`.
    fn locate_warning(&self, warning: &str) -> String {
        match warning.split_once(':').and_then(|(line, rest)| Some((line.parse().ok()?, rest))) {
            Some((line, rest)) => {
                let (index, line) = self.locate(line, 0);
                format!("{}:{line}:{rest}", self.0[index].file)
            }
            None => format!("{}:{warning}", self.0[0].file),
        }
    }
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
