//! netlab: declarative network namespace labs. The pure core (`model`, `plan`) turns a
//! file and what the kernel has into an ordered list of changes; the edges
//! (`observe`, `apply`, `check`) talk to the kernel.

pub mod agents;
pub mod apply;
pub mod capture;
pub mod check;
mod error_text;
pub mod exit;
pub mod explain;
pub mod firewall;
pub mod graph;
pub mod inspect;
pub mod kernel_place;
pub mod lab;
pub mod model;
pub mod observe;
pub mod ownership;
pub mod plan;
pub mod progress;
pub mod publish;
pub mod record;
pub mod status;
pub mod store_changes;

pub use error_text::{chain_text, error_text};

/// "1 change", "2 changes", "2 fdb entries": a count with its noun, for messages.
pub fn count(n: usize, noun: &str) -> String {
    match (n, noun.strip_suffix('y')) {
        (1, _) => format!("1 {noun}"),
        (_, Some(stem)) => format!("{n} {stem}ies"),
        (_, None) => format!("{n} {noun}s"),
    }
}
