//! The lab operations behind the commands: apply (or plan) a topology, destroy a lab,
//! report its status. Each holds the lab's lock for its whole run.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};

use crate::apply::Executor;
use crate::model::{LabName, Topology};
use crate::observe::{observe, Scope};
use crate::plan::{plan, resolve, Change, Desired, History, Observed, ObservedNamespace, Plan};
use crate::progress::Progress;
use crate::record::{lock, Record};

/// How long destroy waits for the kernel to finish removing what it deleted (links
/// of a deleted namespace go asynchronously).
const SETTLE: Duration = Duration::from_secs(10);

pub struct Applied {
    pub plan: Plan,
    pub elapsed: Duration,
}

/// Compare the topology with the kernel and, unless `dry_run`, make them equal.
pub async fn apply(topology: &Topology, file: Option<&Path>, dry_run: bool) -> Result<Applied> {
    let started = Instant::now();
    let lab = &topology.name;
    let _lock = lock(lab)?;
    let mut record = Record::load(lab)?.unwrap_or_else(|| Record::new(lab.clone()));
    let history = record.history();
    let observed = observe_for(lab, &topology.namespaces, &record, &history).await?;
    // The file completed with the facts of the devices it names but does not create.
    let desired = &resolve(&topology.namespaces, &observed)?;
    let plan = plan(desired, &observed, &history).map_err(conflicts)?;
    if dry_run {
        return Ok(Applied { plan, elapsed: started.elapsed() });
    }
    if !plan.is_empty() || record.pending.is_some() || record.applied != *desired {
        record.pending = Some(desired.clone());
        record.file = file.map(|f| std::fs::canonicalize(f).unwrap_or_else(|_| f.to_path_buf()));
        remember_originals(&mut record, &plan);
        record.save()?;
        let executor = Executor::new(lab, desired, Progress::new(plan.changes.len()))?;
        executor.run(&plan.changes).await?;
        record.applied = desired.clone();
        record.pending = None;
        for (place, originals) in record.sysctl_originals.iter_mut() {
            let wanted = desired.get(place).map(|ns| &ns.sysctls);
            originals.retain(|key, _| wanted.is_some_and(|w| w.contains_key(key)));
        }
        record.sysctl_originals.retain(|_, originals| !originals.is_empty());
        record.save()?;
    }
    publish(topology, &mut record).await?;
    Ok(Applied { plan, elapsed: started.elapsed() })
}

/// Bring the overlay stores in line with the lab's endpoints. Runs on every apply, so
/// a store that lost them (emptied, restarted without data) gets them back.
async fn publish(topology: &Topology, record: &mut Record) -> Result<()> {
    let wanted = crate::publish::wanted(topology).await?;
    if wanted.is_empty() && record.publications.is_empty() {
        return Ok(());
    }
    let before = record.publications.clone();
    if !wanted.is_subset(&before) {
        record.publications.extend(wanted.iter().cloned());
        record.save()?;
    }
    crate::publish::converge(&wanted, &before).await?;
    if record.publications != wanted {
        record.publications = wanted;
        record.save()?;
    }
    Ok(())
}

/// The first value a sysctl had before this lab changed it is what destroy restores.
fn remember_originals(record: &mut Record, plan: &Plan) {
    for change in &plan.changes {
        if let Change::SetSysctl { place, key, previous: Some(previous), .. } = change {
            let originals = record.sysctl_originals.entry(place.clone()).or_default();
            originals.entry(key.clone()).or_insert_with(|| previous.clone());
        }
    }
}

async fn observe_for(lab: &LabName, desired: &Desired, record: &Record, history: &History) -> Result<Observed> {
    let scope =
        Scope::new(desired, &history.previous, record.pending.as_ref()).with_originals(&record.sysctl_originals);
    observe(lab, &scope).await
}

fn conflicts(list: Vec<String>) -> anyhow::Error {
    anyhow::anyhow!("cannot apply without taking over what netlab did not create:\n  {}", list.join("\n  "))
}

pub struct Destroyed {
    pub plan: Plan,
    pub elapsed: Duration,
    /// False when there was no record and nothing of the lab was found.
    pub existed: bool,
}

/// Remove everything the lab made, then check that nothing of it is left. `topology`
/// widens the search when the record is gone.
pub async fn destroy(lab: &LabName, topology: Option<&Topology>) -> Result<Destroyed> {
    let started = Instant::now();
    let _lock = lock(lab)?;
    let record = Record::load(lab)?;
    let existed = record.is_some();
    let mut record = record.unwrap_or_else(|| Record::new(lab.clone()));
    if let Some(topology) = topology {
        // Destroy by file with no record: look where the file says, adopt nothing.
        for (place, spec) in &topology.namespaces {
            record.applied.entry(place.clone()).or_insert_with(|| spec.clone());
        }
    }
    let history = record.history();
    let empty = Desired::new();
    if !record.publications.is_empty() {
        // An unreachable store does not keep the lab's namespaces alive: its stale
        // keys point at nothing, and agents drop them once they are removed.
        if let Err(e) = crate::publish::withdraw(&record.publications).await {
            eprintln!("netlab: warning: {e:#}; the lab's endpoints stay in the store");
        }
    }
    let observed = observe_for(lab, &empty, &record, &history).await?;
    let plan = plan(&empty, &not_foreign(observed), &history).map_err(conflicts)?;
    let executor = Executor::new(lab, &empty, Progress::new(plan.changes.len()))?;
    executor.run(&plan.changes).await?;

    // Verify: nothing of the lab may remain.
    let deadline = Instant::now() + SETTLE;
    loop {
        let observed = observe_for(lab, &empty, &record, &history).await?;
        let left = crate::plan::plan(&empty, &not_foreign(observed), &history).map_err(conflicts)?;
        if left.is_empty() {
            break;
        }
        if Instant::now() >= deadline {
            let names: Vec<String> =
                left.changes.iter().map(|c| c.to_string().trim_start_matches("- ").to_string()).collect();
            bail!("destroy left objects of lab {lab} behind: {}", names.join(", "));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Record::remove(lab)?;
    Ok(Destroyed { existed: existed || !plan.is_empty(), plan, elapsed: started.elapsed() })
}

/// Destroy never touches a namespace another owner holds under the lab's name.
fn not_foreign(mut observed: Observed) -> Observed {
    observed.namespaces.retain(|_, ns| !matches!(ns, ObservedNamespace::Foreign(_)));
    observed
}

/// Plan against the kernel without changing anything (for status).
pub async fn drift(topology: &Topology) -> Result<Plan> {
    let lab = &topology.name;
    let record = Record::load(lab)?.unwrap_or_else(|| Record::new(lab.clone()));
    let history = record.history();
    let observed = observe_for(lab, &topology.namespaces, &record, &history).await?;
    let desired = resolve(&topology.namespaces, &observed)?;
    plan(&desired, &observed, &history).map_err(conflicts)
}

/// Counts of a plan's changes by kind of action, for summaries.
pub fn summary(plan: &Plan) -> BTreeMap<&'static str, usize> {
    let mut counts = BTreeMap::new();
    for change in &plan.changes {
        let verb = match change.to_string().chars().next() {
            Some('+') => "created",
            Some('-') => "deleted",
            _ => "changed",
        };
        *counts.entry(verb).or_default() += 1;
    }
    counts
}
