//! The lab operations behind the commands: apply (or plan) a topology, destroy a lab,
//! report its status. Apply and destroy hold the lab's lock for their whole run; a
//! plan (dry run) and status only read.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::apply::{ApplyError, Decision, Executor, Step};
use crate::model::{LabName, Place, SysctlKey, Topology};
use crate::observe::{discover, observe, ObserveError, Scope};
use crate::plan::{plan, resolve, Change, Desired, Effect, ExistingErrors, History, Observed, ObservedNamespace, Plan};
use crate::progress::Progress;
use crate::record::{lock, other_labs, Record, RecordError};
pub use crate::store_changes::Pending as StoreDrift;
use crate::store_changes::{pending, StoreChange};
use netlab_store::StoreUrl;

#[derive(Debug, thiserror::Error)]
pub enum LabError {
    #[error(transparent)]
    Record(#[from] RecordError),
    #[error(transparent)]
    Observe(#[from] ObserveError),
    /// The host does not fit the file (its existing devices).
    #[error(transparent)]
    Existing(#[from] ExistingErrors),
    #[error(transparent)]
    Apply(#[from] ApplyError),
    /// `apply --step`: what the earlier steps made is kept.
    #[error("a step failed; the steps before it stay, and the next apply finishes the lab once the cause is gone")]
    Step(#[source] ApplyError),
    #[error(transparent)]
    Publish(#[from] crate::publish::PublishError),
    #[error(transparent)]
    Agents(#[from] crate::agents::AgentError),
    #[error("what netlab did not create is in the lab's way (netlab takes nothing over):\n  {}", .0.join("\n  "))]
    Conflicts(Vec<String>),
    #[error("destroy left objects of lab {lab} behind: {}", .objects.join(", "))]
    LeftBehind { lab: LabName, objects: Vec<String> },
}

type Result<T, E = LabError> = std::result::Result<T, E>;

/// How long destroy waits for the kernel to finish removing what it deleted (links
/// of a deleted namespace go asynchronously).
const SETTLE: Duration = Duration::from_secs(10);

pub struct Applied {
    pub plan: Plan,
    pub elapsed: Duration,
    /// `apply --step` was told to stop after this many changes.
    pub stopped_after: Option<usize>,
    /// What publishing changed (or, in a dry run, would change) in the overlay stores.
    pub store: Vec<StoreChange>,
}

/// How apply goes about its plan.
pub enum Mode<'a> {
    /// Only plan: write nothing, not even the lock file (like `status`, it only reads).
    DryRun,
    Apply,
    /// One change at a time, asking before each (`apply --step`).
    Step(&'a mut dyn FnMut(Step<'_>) -> Decision),
}

/// Compare the topology with the kernel and, unless `dry_run`, make them equal.
pub async fn apply(topology: &Topology, file: Option<&Path>, dry_run: bool) -> Result<Applied> {
    apply_in(topology, file, if dry_run { Mode::DryRun } else { Mode::Apply }).await
}

/// Apply in the given mode. A stepped apply told to stop leaves the record with the
/// file pending, as a killed apply does: status shows what is missing, the next apply
/// finishes it, destroy removes what was made. The stores are published to only once
/// every change is made.
pub async fn apply_in(topology: &Topology, file: Option<&Path>, mut mode: Mode<'_>) -> Result<Applied> {
    let started = Instant::now();
    let lab = &topology.name;
    let dry_run = matches!(mode, Mode::DryRun);
    let lock = if dry_run { None } else { Some(lock(lab)?) };
    let before = Record::load(lab)?;
    let mut record = before.clone().unwrap_or_else(|| Record::new(lab.clone()));
    let (others, others_originals) = other_labs(lab)?;
    let mut history = record.history();
    history.others = others;
    let observed = observe_for(lab, &topology.namespaces, &record, &history, false).await?;
    // The file completed with the facts of the devices it names but does not create.
    let desired = &resolve(&topology.namespaces, &observed)?;
    let plan = plan(desired, &observed, &history).map_err(LabError::Conflicts)?;
    if dry_run {
        let store = pending(topology, &record.publications, true).await?;
        warn_unread(&store);
        let store = store.changes;
        return Ok(Applied { plan, elapsed: started.elapsed(), stopped_after: None, store });
    }
    if !plan.is_empty() || record.pending.is_some() || record.applied != *desired {
        record.pending = Some(desired.clone());
        record.file = file.map(|f| std::fs::canonicalize(f).unwrap_or_else(|_| f.to_path_buf()));
        remember_originals(&mut record, &plan, desired, &others_originals);
        record.save()?;
        match &mut mode {
            Mode::Step(ask) => {
                let executor = Executor::new(lab, desired, Progress::new(0))?;
                if let Some(made) = executor.run_stepwise(&plan.changes, *ask).await.map_err(LabError::Step)? {
                    // Stopped before the first change: nothing to finish, the record
                    // is put back as it was (none for a lab never applied).
                    if made == 0 {
                        match before {
                            Some(mut before) => before.save()?,
                            None => {
                                Record::remove(lab)?;
                                if let Some(lock) = lock {
                                    lock.remove()?;
                                }
                            }
                        }
                    }
                    let stopped_after = Some(made);
                    return Ok(Applied { plan, elapsed: started.elapsed(), stopped_after, store: Vec::new() });
                }
            }
            _ => Executor::new(lab, desired, Progress::new(plan.changes.len()))?.run(&plan.changes).await?,
        }
        record.applied = desired.clone();
        record.pending = None;
        for (place, originals) in record.sysctl_originals.iter_mut() {
            let wanted = desired.get(place).map(|ns| &ns.sysctls);
            originals.retain(|key, _| wanted.is_some_and(|w| w.contains_key(key)));
        }
        record.sysctl_originals.retain(|_, originals| !originals.is_empty());
        record.save()?;
    }
    let store = pending(topology, &record.publications, false).await?.changes;
    publish(topology, &mut record).await?;
    run_agents(lab, desired, &plan).await?;
    Ok(Applied { plan, elapsed: started.elapsed(), stopped_after: None, store })
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

/// The lab's agents, once its endpoints are published: those the file asks for run
/// under the lab's supervisor (started again if it was killed), the plan's restarts
/// replace the processes they name. Runs on every apply, like `publish`.
async fn run_agents(lab: &LabName, desired: &Desired, plan: &Plan) -> Result<()> {
    let wanted = crate::plan::agents::desired_agents(desired);
    let replaced: Vec<_> = plan
        .changes
        .iter()
        .filter_map(|c| if let Change::RestartAgent { running, .. } = c { Some(running.clone()) } else { None })
        .flatten()
        .collect();
    let lab = lab.clone();
    tokio::task::spawn_blocking(move || crate::agents::converge(&lab, &wanted, &replaced))
        .await
        .map_err(crate::apply::ApplyError::from)??;
    Ok(())
}

/// The first value a sysctl had before this lab changed it is what destroy restores.
/// A host sysctl another lab set first keeps that lab's original: every lab that
/// declares it holds the value from before any of them, and the last to go restores it.
fn remember_originals(
    record: &mut Record,
    plan: &Plan,
    desired: &Desired,
    others_originals: &BTreeMap<SysctlKey, String>,
) {
    if let Some(host) = desired.get(&Place::Host) {
        for key in host.sysctls.keys() {
            if let Some(original) = others_originals.get(key) {
                let originals = record.sysctl_originals.entry(Place::Host).or_default();
                originals.entry(key.clone()).or_insert_with(|| original.clone());
            }
        }
    }
    for change in &plan.changes {
        if let Change::SetSysctl { place, key, previous: Some(previous), .. } = change {
            let originals = record.sysctl_originals.entry(place.clone()).or_default();
            originals.entry(key.clone()).or_insert_with(|| previous.clone());
        }
    }
}

/// `recovering`: the record is missing or corrupt, so the host's firewall is read
/// whatever the record says.
async fn observe_for(
    lab: &LabName,
    desired: &Desired,
    record: &Record,
    history: &History,
    recovering: bool,
) -> Result<Observed> {
    let mut scope =
        Scope::new(desired, &history.previous, record.pending.as_ref()).with_originals(&record.sysctl_originals);
    if recovering {
        scope = scope.with_host_firewall();
    }
    let mut observed = observe(lab, &scope).await?;
    // Agents are looked for only where the file or an earlier apply runs one: a lab
    // without any costs no scan of /proc, a large one no look at every namespace.
    let agents = crate::plan::agents::desired_agents;
    // Only namespaces that are this lab's: another lab's `host1` (same name, its own
    // agents) is never looked into, let alone stopped.
    let ours = |place: &Place| {
        *place == Place::Host || matches!(observed.namespaces.get(place), Some(ObservedNamespace::Owned(_)))
    };
    let underlays: std::collections::BTreeSet<Place> = agents(desired)
        .into_iter()
        .chain(agents(&history.previous))
        .map(|agent| agent.underlay)
        .filter(|place| ours(place))
        .collect();
    if !underlays.is_empty() {
        observed.agents = crate::agents::observe(&underlays);
        observed.agents.retain(|agent| ours(&agent.key.place));
    }
    Ok(observed)
}

pub struct Destroyed {
    pub plan: Plan,
    pub elapsed: Duration,
    /// False when there was no record and nothing of the lab was found.
    pub existed: bool,
}

/// Remove everything the lab made, then check that nothing of it is left. Without a
/// usable record (missing or corrupt), what the lab made is found by its kernel marks
/// (see `observe::discover`); `topology` widens the search to where the file says.
pub async fn destroy(lab: &LabName, topology: Option<&Topology>) -> Result<Destroyed> {
    let started = Instant::now();
    let lock = lock(lab)?;
    // `recovering`: no usable record; the lab counts as applied if its record exists.
    let (record, recovering, existed) = match Record::load(lab) {
        Ok(Some(record)) => (Some(record), false, true),
        Ok(None) => (None, true, false),
        Err(RecordError::Corrupt { path, reason, .. }) => {
            eprintln!(
                "netlab: warning: the record of lab {lab}, {}, is corrupt ({reason}): destroying the lab by its \
                 kernel marks; host sysctls it changed keep their values (only the record knew the earlier ones)",
                path.display()
            );
            (None, true, true)
        }
        Err(e) => return Err(e.into()),
    };
    let mut record = record.unwrap_or_else(|| Record::new(lab.clone()));
    if let Some(topology) = topology {
        // Destroy by file with no record: look where the file says, adopt nothing.
        for (place, spec) in &topology.namespaces {
            record.applied.entry(place.clone()).or_insert_with(|| spec.clone());
        }
    }
    if recovering {
        for (place, spec) in discover(lab).await? {
            let known = record.applied.entry(place).or_default();
            known.routes.extend(spec.routes);
        }
    }
    let mut history = record.history();
    history.others = other_labs(lab)?.0;
    // The supervisor first: it would start again the agents the plan stops.
    let stopping = lab.clone();
    tokio::task::spawn_blocking(move || crate::agents::shutdown(&stopping))
        .await
        .map_err(crate::apply::ApplyError::from)??;
    let empty = Desired::new();
    if !record.publications.is_empty() {
        // An unreachable store does not keep the lab's namespaces alive: its stale
        // keys point at nothing, and agents drop them once they are removed.
        if let Err(e) = crate::publish::withdraw(&record.publications).await {
            let cause = std::error::Error::source(&e).map(|c| format!(": {c}")).unwrap_or_default();
            eprintln!("netlab: warning: {e}{cause}; the lab's endpoints stay in the store");
        }
    }
    let observed = observe_for(lab, &empty, &record, &history, recovering).await?;
    let plan = plan(&empty, &not_foreign(observed), &history).map_err(LabError::Conflicts)?;
    let executor = Executor::new(lab, &empty, Progress::new(plan.changes.len()))?;
    executor.run(&plan.changes).await?;

    // Verify: nothing of the lab may remain.
    let deadline = Instant::now() + SETTLE;
    loop {
        let observed = observe_for(lab, &empty, &record, &history, recovering).await?;
        let left = crate::plan::plan(&empty, &not_foreign(observed), &history).map_err(LabError::Conflicts)?;
        if left.is_empty() {
            break;
        }
        if Instant::now() >= deadline {
            let objects = left.changes.iter().map(Change::object).collect();
            return Err(LabError::LeftBehind { lab: lab.clone(), objects });
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Record::remove(lab)?;
    lock.remove()?;
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
    let mut history = record.history();
    history.others = other_labs(lab)?.0;
    let observed = observe_for(lab, &topology.namespaces, &record, &history, false).await?;
    let desired = resolve(&topology.namespaces, &observed)?;
    plan(&desired, &observed, &history).map_err(LabError::Conflicts)
}

/// What publishing the lab's endpoints would change in its stores now; stores that
/// cannot be read are in `unread` (their endpoints unknown, not counted as drift).
pub async fn store_drift(topology: &Topology) -> Result<StoreDrift> {
    let record = Record::load(&topology.name)?.unwrap_or_else(|| Record::new(topology.name.clone()));
    let mut drift = pending(topology, &record.publications, true).await?;
    let unread: Vec<&StoreUrl> = drift.unread.iter().map(|(url, _)| url).collect();
    drift.changes.retain(|change| !unread.contains(&&change.store));
    Ok(drift)
}

/// A plan says which stores it could not read.
fn warn_unread(pending: &StoreDrift) {
    for (url, why) in &pending.unread {
        tracing::warn!("cannot read store {url} ({why}): its endpoints are shown as to publish");
    }
}

/// Counts of a plan's changes by kind of action, for summaries.
pub fn summary(plan: &Plan) -> BTreeMap<&'static str, usize> {
    let mut counts = BTreeMap::new();
    for change in &plan.changes {
        let verb = match change.effect() {
            Effect::Create => "created",
            Effect::Delete => "deleted",
            Effect::Change => "changed",
        };
        *counts.entry(verb).or_default() += 1;
    }
    counts
}
