//! Run a lab's `checks:`. Checks that only send traffic run at the same time (see
//! `order`), a bounded number at once; outcomes are reported in the file's order, each
//! as soon as it and every check before it have ended, and every check has released
//! what it opened (sockets, processes) by then. A failure carries what netlab knows
//! about its cause (`hints`).

mod hints;
mod order;
pub mod pingall;
mod probe;

use std::future::Future;
use std::ops::Range;
use std::time::Duration;

use futures::{stream, FutureExt, StreamExt};
use serde::Serialize;

use crate::model::{Check, Topology};
use pingall::Matrix;

/// Why a check failed: the lab does not behave as the file says (`Failed`), or the
/// check could not look (a namespace, a socket, ping itself).
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    #[error("{0}")]
    Failed(String),
    #[error(transparent)]
    Kernel(#[from] netns::Error),
    #[error("{step}")]
    Io {
        step: String,
        #[source]
        source: std::io::Error,
    },
    #[error("check task")]
    Task(#[from] tokio::task::JoinError),
    #[error("internal error: {0}")]
    Internal(&'static str),
}

type Result<T, E = CheckError> = std::result::Result<T, E>;

/// `bail!` for a verdict.
fn failed<T>(reason: impl Into<String>) -> Result<T> {
    Err(CheckError::Failed(reason.into()))
}

/// Context for an I/O error: the step that failed.
trait Step<T> {
    fn step(self, step: impl FnOnce() -> String) -> Result<T>;
}

impl<T> Step<T> for std::io::Result<T> {
    fn step(self, step: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|source| CheckError::Io { step: step(), source })
    }
}

/// Checks running at once.
const AT_ONCE: usize = 8;

#[derive(Debug, Serialize)]
pub struct Outcome {
    pub check: String,
    pub passed: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// A pingall's answers, one matrix per address family.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub matrices: Vec<Matrix>,
}

/// The checks of `topology` whose line contains one of `only` (all without `only`).
pub fn select<'a>(topology: &'a Topology, only: &[String]) -> Vec<&'a Check> {
    let wanted = |check: &Check| {
        let line = check.to_string();
        only.is_empty() || only.iter().any(|text| line.contains(text.as_str()))
    };
    topology.checks.iter().filter(|check| wanted(check)).collect()
}

/// Run `checks`, handing each outcome to `report` in order, as soon as it is known.
pub async fn run_all(
    topology: &Topology,
    checks: &[&Check],
    budget: Duration,
    report: impl FnMut(&Outcome),
) -> Vec<Outcome> {
    run_in_waves(checks, order::waves(checks), |check| outcome(topology, check, budget), report).await
}

/// The order of `run_all`, apart from what a check does: the waves one after the
/// other, the checks of a wave together.
async fn run_in_waves<'a, C, F: Future<Output = Outcome>>(
    checks: &'a [C],
    waves: Vec<Range<usize>>,
    run: impl Fn(&'a C) -> F,
    mut report: impl FnMut(&Outcome),
) -> Vec<Outcome> {
    let mut outcomes = Vec::new();
    for wave in waves {
        // Unordered, so a slow check holds no place the next ones could use; the ends
        // wait in `ended` until every check before them has been reported.
        let first = wave.start;
        let mut running = stream::iter(wave.map(|i| (i, &checks[i])))
            .map(|(i, check)| run(check).map(move |outcome| (i, outcome)))
            .buffer_unordered(AT_ONCE);
        let mut ended = std::collections::BTreeMap::new();
        let mut next = first;
        while let Some((i, outcome)) = running.next().await {
            ended.insert(i, outcome);
            while let Some(outcome) = ended.remove(&next) {
                report(&outcome);
                outcomes.push(outcome);
                next += 1;
            }
        }
    }
    outcomes
}

async fn outcome(topology: &Topology, check: &Check, budget: Duration) -> Outcome {
    let (result, matrices) = match check {
        Check::Pingall { nodes } => {
            let answers = pingall::run(nodes, budget).await;
            let failures = pingall::failures(nodes, &answers);
            let result = match failures.len() {
                0 => Ok(()),
                n => failed(format!("{n} of {} pings failed: {}", answers.len(), failures.join("; "))),
            };
            (result, pingall::matrices(nodes, &answers))
        }
        _ => (probe::run(check, budget).await, Vec::new()),
    };
    let detail = result.err().map(|e| {
        let notes = hints::notes(topology, check, hints::agent_running, hints::holder);
        match notes.is_empty() {
            true => crate::chain_text(&e),
            false => format!("{} ({})", crate::chain_text(&e), notes.join("; ")),
        }
    });
    Outcome { check: check.to_string(), passed: detail.is_none(), detail, matrices }
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;

    use super::*;

    #[tokio::test]
    async fn a_wave_runs_together_and_outcomes_come_in_the_files_order() {
        let log = RefCell::new(Vec::new());
        let run = |check: &&'static str| {
            let check = *check;
            let log = &log;
            async move {
                log.borrow_mut().push(format!("start {check}"));
                tokio::task::yield_now().await;
                log.borrow_mut().push(format!("end {check}"));
                Outcome { check: check.into(), passed: check != "b", detail: None, matrices: Vec::new() }
            }
        };
        let report = |outcome: &Outcome| log.borrow_mut().push(format!("report {}", outcome.check));
        let outcomes = run_in_waves(&["a", "b", "fdb"], vec![0..2, 2..3], run, report).await;
        let log = log.into_inner();
        let at = |entry: &str| log.iter().position(|e| e == entry).unwrap_or_else(|| panic!("no {entry}: {log:?}"));
        // a and b overlap; the outcomes come in the file's order; fdb starts after both.
        assert!(at("start b") < at("end a"), "{log:?}");
        assert!(at("end a") < at("report a") && at("report a") < at("report b"), "{log:?}");
        assert!(at("report b") < at("start fdb") && at("end fdb") < at("report fdb"), "{log:?}");
        assert!(!outcomes[1].passed);
    }
}
