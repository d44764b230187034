//! Errors in a topology file, each pointing at file:line:column with the source line.

use std::fmt;

use serde_saphyr::Location;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub line: u64,
    pub column: u64,
    pub message: String,
}

impl Diagnostic {
    pub fn at(location: &Location, message: impl Into<String>) -> Self {
        Diagnostic { line: location.line(), column: location.column(), message: message.into() }
    }
}

/// All the errors found in one file, and those of the other files of an `extends:`
/// chain, each in its own file.
#[derive(Debug, Clone)]
pub struct Diagnostics {
    pub file: String,
    pub source: String,
    pub items: Vec<Diagnostic>,
    pub also: Vec<Diagnostics>,
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, item) in self.items.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{}:{}:{}: {}", self.file, item.line, item.column, item.message)?;
            let line = usize::try_from(item.line).ok().and_then(|n| self.source.lines().nth(n.checked_sub(1)?));
            if let Some(text) = line {
                let width = item.line.to_string().len();
                let caret = usize::try_from(item.column.saturating_sub(1)).unwrap_or(0).min(text.len());
                write!(f, "\n{:width$} |\n{} | {}\n{:width$} | {}^", "", item.line, text, "", " ".repeat(caret))?;
            }
        }
        for other in &self.also {
            write!(f, "\n{other}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Diagnostics {}

/// serde-saphyr renders its own snippet; keep only its message, since we render ours.
pub fn from_parse_error(err: &serde_saphyr::Error) -> Diagnostic {
    let text = err.to_string();
    let first = text.lines().next().unwrap_or("invalid yaml");
    let message = first.strip_prefix("error: ").unwrap_or(first);
    // "line 3 column 7: unknown field ..." -> "unknown field ..."
    let message = match message.find(": ") {
        Some(cut) if message.starts_with("line ") => &message[cut + 2..],
        _ => message,
    };
    let (line, column) = err.location().map(|l| (l.line(), l.column())).unwrap_or((1, 1));
    Diagnostic { line, column, message: message.to_string() }
}
