use std::process::ExitCode;
use std::time::Duration;

use anyhow::Result;
use clap::Args;
use netlab::check::pingall::Matrix;
use netlab::check::Outcome;
use serde_json::json;

use super::{load, print_json, Output};

#[derive(Args)]
pub struct CheckCmd {
    #[command(flatten)]
    pub lab: super::lab_arg::LabFile,
    /// Seconds each check may take (a connection's wait; a ping's deadline, in whole
    /// seconds, at least 1), fractions allowed: `--timeout 1.5`.
    /// (Default 3: long enough for a first ARP exchange, short enough to keep a failing
    /// lab quick to diagnose.)
    #[arg(long, value_name = "SECONDS", default_value = "3", value_parser = budget)]
    pub timeout: Duration,
    /// Run only the checks whose line (as `netlab check` prints it) contains TEXT:
    /// `--only ct1`, `--only tcp`, `--only 'ping from RED'`. Repeat for more.
    #[arg(long, value_name = "TEXT")]
    pub only: Vec<String>,
    /// `text` for people, `json` for programs (a failure is then JSON too).
    #[arg(long, short, value_enum, default_value_t)]
    pub output: Output,
}

impl CheckCmd {
    pub async fn run(self) -> Result<ExitCode> {
        let file = self.lab.path()?;
        let topology = load(&file)?;
        // Said once, as exec and capture say it, rather than as a failure per check.
        let recorded = !matches!(netlab::record::Record::load(&topology.name), Ok(None));
        let mounted = |place: &netlab::model::Place| {
            place.node().is_some_and(|n| netns::namespace::presence(n.as_str()) == netns::namespace::Presence::Mounted)
        };
        if !recorded && !topology.nodes().any(mounted) {
            eprintln!("netlab: lab {} is not applied here (netlab apply {})", topology.name, file.display());
            return Ok(ExitCode::from(1));
        }
        let checks = netlab::check::select(&topology, &self.only);
        if checks.is_empty() && !self.only.is_empty() {
            eprintln!("netlab: no check of {} matches --only {}", file.display(), self.only.join(", --only "));
            return Ok(ExitCode::from(2));
        }
        let text = self.output == Output::Text;
        // In text each result is printed as soon as it is known, in the file's order;
        // JSON is one document, printed at the end.
        let budget = self.timeout;
        let outcomes = netlab::check::run_all(&topology, &checks, budget, |outcome| {
            if text {
                print_outcome(outcome);
            }
        })
        .await;
        let failed = outcomes.iter().filter(|o| !o.passed).count();
        if text {
            println!("{} passed, {failed} failed", outcomes.len() - failed);
        } else {
            print_json(
                &json!({ "lab": topology.name, "passed": outcomes.len() - failed, "failed": failed, "checks": outcomes }),
            )?;
        }
        Ok(if failed == 0 { ExitCode::SUCCESS } else { ExitCode::from(1) })
    }
}

/// A check's budget: more than nothing, at most an hour.
fn budget(text: &str) -> std::result::Result<Duration, String> {
    let budget = super::seconds(text)?;
    if budget.is_zero() || budget > Duration::from_secs(3600) {
        return Err(format!("`{text}`: give a budget above 0 and at most 3600 seconds"));
    }
    Ok(budget)
}

fn print_outcome(outcome: &Outcome) {
    match (&outcome.passed, &outcome.detail) {
        (true, _) => println!("pass  {}", outcome.check),
        (false, Some(detail)) => println!("FAIL  {}: {detail}", outcome.check),
        (false, None) => println!("FAIL  {}", outcome.check),
    }
    for matrix in &outcome.matrices {
        print!("{}", matrix_text(matrix));
    }
}

/// Rows ping, columns answer: `ok`, `FAIL`, or `-` where nothing was pinged.
fn matrix_text(matrix: &Matrix) -> String {
    let width = matrix.nodes.iter().map(String::len).max().unwrap_or(0).max(4);
    let mut text = format!("      {:<width$}", matrix.family.to_string());
    for node in &matrix.nodes {
        text.push_str(&format!(" {node:>width$}"));
    }
    text.push('\n');
    for (node, row) in matrix.nodes.iter().zip(&matrix.reached) {
        text.push_str(&format!("      {node:<width$}"));
        for cell in row {
            let mark = match cell {
                Some(true) => "ok",
                Some(false) => "FAIL",
                None => "-",
            };
            text.push_str(&format!(" {mark:>width$}"));
        }
        text.push('\n');
    }
    text
}

#[cfg(test)]
mod tests {
    use netlab::check::pingall::Family;

    use super::*;

    #[test]
    fn a_matrix_reads_row_to_column() {
        let matrix = Matrix {
            family: Family::Ipv4,
            nodes: vec!["ct1".into(), "ct2".into()],
            reached: vec![vec![None, Some(true)], vec![Some(false), None]],
        };
        assert_eq!(matrix_text(&matrix), "      IPv4  ct1  ct2\n      ct1     -   ok\n      ct2  FAIL    -\n");
    }
}
