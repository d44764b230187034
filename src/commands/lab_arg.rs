//! `FILE` or `--name LAB` on the command line: a lab named by its file, or by its name,
//! whose file is the one it was last applied from (its record under /run/netlab).

use std::path::PathBuf;

use anyhow::{anyhow, bail, Result};
use clap::Args;
use netlab::exit::Usage;
use netlab::model::LabName;
use netlab::record::Record;

/// `FILE` or `--name LAB`, for the commands that read a lab's file.
#[derive(Args, Clone)]
pub struct LabFile {
    /// The lab's file (YAML; see the README's "The file format"), or give --name.
    #[arg(required_unless_present = "name")]
    pub file: Option<PathBuf>,
    /// The lab's name instead: the file it was last applied from (its record under
    /// /run/netlab says which).
    #[arg(long, conflicts_with = "file")]
    pub name: Option<String>,
}

impl LabFile {
    /// The file to read.
    pub fn path(&self) -> Result<PathBuf> {
        file_or_recorded(self.file.clone(), self.name.as_deref())
    }
}

/// The file to read: `file`, or the one lab `name` was last applied from.
pub fn file_or_recorded(file: Option<PathBuf>, name: Option<&str>) -> Result<PathBuf> {
    match (file, name) {
        (Some(file), None) => Ok(file),
        (None, Some(name)) => recorded_file(name),
        _ => Err(Usage("give the lab's FILE or --name LAB".into()).into()),
    }
}

/// The lab's record, by its name as given on the command line.
pub fn record_of(name: &str) -> Result<Record> {
    let lab: LabName = name.parse().map_err(|e| Usage(format!("--name {name}: {e}")))?;
    Record::load(&lab)?.ok_or_else(|| anyhow!("lab {lab} is not applied here: it has no record under /run/netlab"))
}

fn recorded_file(name: &str) -> Result<PathBuf> {
    let record = record_of(name)?;
    let Some(file) = record.file else { bail!("the record of lab {} names no file: give the file", record.lab) };
    if !file.is_file() {
        bail!("lab {} was applied from {}, which is gone: give the file", record.lab, file.display());
    }
    Ok(file)
}

/// `[FILE] TARGET` as typed: with `--name`, the one word is the target.
pub fn split_target(words: Vec<String>, name: Option<&str>) -> Result<(Option<PathBuf>, String)> {
    let mut words = words.into_iter();
    match (words.next(), words.next(), words.next(), name) {
        (Some(target), None, None, Some(_)) => Ok((None, target)),
        (Some(file), Some(target), None, None) => Ok((Some(PathBuf::from(file)), target)),
        (_, _, _, Some(_)) => Err(Usage("with --name, give only the target after it".into()).into()),
        _ => Err(Usage("give the lab's FILE (or --name LAB) and the target".into()).into()),
    }
}
