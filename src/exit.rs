//! What a failed command tells its caller by its exit code: one code per kind of
//! failure, so a script can tell "fix the file" from "something else is in the way"
//! from "try again".

use crate::apply::ApplyError;
use crate::firewall::FirewallError;
use crate::lab::LabError;
use crate::model::LoadError;
use crate::observe::ObserveError;
use crate::ownership::NotOurs;
use crate::record::RecordError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// The kernel or a program refused, a check failed, a lab differs from its file.
    Runtime,
    /// The command line or the file is wrong; nothing was touched.
    Invalid,
    /// Something netlab did not create (or another lab's) is in the way.
    Clash,
    /// The host does not fit the file: a device it names is missing or unsuitable.
    Unfit,
    /// Another netlab process is changing the lab.
    Busy,
    /// The lab's record under /run/netlab cannot be read.
    CorruptRecord,
}

impl Failure {
    /// Its name in JSON error reports.
    pub const fn name(self) -> &'static str {
        match self {
            Failure::Runtime => "runtime",
            Failure::Invalid => "invalid",
            Failure::Clash => "clash",
            Failure::Unfit => "unfit",
            Failure::Busy => "busy",
            Failure::CorruptRecord => "corrupt_record",
        }
    }

    pub const fn code(self) -> u8 {
        match self {
            Failure::Runtime => 1,
            Failure::Invalid => 2,
            Failure::Clash => 3,
            Failure::Unfit => 4,
            Failure::Busy => 5,
            Failure::CorruptRecord => 6,
        }
    }

    /// The first of `causes` (an error's chain, outermost first) that is one of
    /// netlab's typed errors decides; anything else is a runtime failure.
    pub fn of<'a>(causes: impl IntoIterator<Item = &'a (dyn std::error::Error + 'static)>) -> Failure {
        causes.into_iter().find_map(typed).unwrap_or(Failure::Runtime)
    }
}

/// Exit codes for `--help` and the README.
pub const EXIT_HELP: &str =
    "Exit codes: 0 success, 1 runtime failure (a kernel error, a failed check; for status: the lab \
                              differs from the file or is not applied), 2 invalid input (usage or file), 3 a clash \
                              with something netlab did not create, 4 the host does not fit the file (a device it \
                              names), 5 another netlab process is changing the lab, 6 the lab's record is corrupt.";

/// Input on the command line that clap cannot judge (a lab's name, a node's): exit 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Usage(pub String);

fn typed(error: &(dyn std::error::Error + 'static)) -> Option<Failure> {
    if error.downcast_ref::<Usage>().is_some() {
        return Some(Failure::Invalid);
    }
    if let Some(e) = error.downcast_ref::<LabError>() {
        return Some(lab(e));
    }
    if let Some(e) = error.downcast_ref::<RecordError>() {
        return Some(record(e));
    }
    if let Some(e) = error.downcast_ref::<FirewallError>() {
        return Some(firewall(e));
    }
    if error.downcast_ref::<NotOurs>().is_some() {
        return Some(Failure::Clash);
    }
    if error.downcast_ref::<LoadError>().is_some() {
        return Some(Failure::Invalid);
    }
    None
}

fn lab(error: &LabError) -> Failure {
    match error {
        LabError::Record(e) => record(e),
        LabError::Observe(ObserveError::Firewall(e)) => firewall(e),
        LabError::Apply(e) | LabError::Step(e) => apply(e),
        LabError::Existing(_) => Failure::Unfit,
        LabError::Conflicts(_) => Failure::Clash,
        _ => Failure::Runtime,
    }
}

fn apply(error: &ApplyError) -> Failure {
    match error {
        ApplyError::Firewall(e) => firewall(e),
        ApplyError::RolledBack(e) | ApplyError::RollbackIncomplete(e, _) => apply(e),
        _ => Failure::Runtime,
    }
}

fn record(error: &RecordError) -> Failure {
    match error {
        RecordError::Busy(_) => Failure::Busy,
        RecordError::Corrupt { .. } => Failure::CorruptRecord,
        _ => Failure::Runtime,
    }
}

fn firewall(error: &FirewallError) -> Failure {
    match error {
        FirewallError::Foreign { .. } => Failure::Clash,
        _ => Failure::Runtime,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_has_its_code_through_the_layers() {
        let lab: crate::model::LabName = "x".parse().unwrap();
        let busy = LabError::Record(RecordError::Busy(lab.clone()));
        assert_eq!(Failure::of([&busy as &(dyn std::error::Error + 'static)]), Failure::Busy);
        let foreign = FirewallError::Foreign { name: "netlab-x".into(), place: crate::model::Place::Host };
        let rolled = LabError::Apply(ApplyError::RolledBack(Box::new(ApplyError::Firewall(foreign))));
        assert_eq!(Failure::of([&rolled as &(dyn std::error::Error + 'static)]).code(), 3);
        let clash = LabError::Conflicts(vec!["namespace RED was not created by netlab".into()]);
        assert_eq!(Failure::of([&clash as &(dyn std::error::Error + 'static)]).code(), 3);
        let other = std::io::Error::other("x");
        assert_eq!(Failure::of([&other as &(dyn std::error::Error + 'static)]), Failure::Runtime);
    }
}
