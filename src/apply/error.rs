//! What executing a plan can fail with.

use crate::firewall::FirewallError;

#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// A kernel call (netlink, a namespace, a sysctl), named by its step.
    #[error(transparent)]
    Kernel(#[from] netns::Error),
    #[error(transparent)]
    Firewall(#[from] FirewallError),
    #[error(transparent)]
    Agent(#[from] crate::agents::AgentError),
    #[error("link {0} not found")]
    LinkNotFound(String),
    #[error("start the namespace thread")]
    Spawn(#[source] std::io::Error),
    #[error("the namespace thread panicked")]
    Panicked,
    #[error("a worker thread failed")]
    Thread(#[from] tokio::task::JoinError),
    #[error("internal error: {0}")]
    Internal(String),
    /// Every failure of a step that carries on past one (deletions), one per line.
    #[error("{} failed:\n  {}", crate::count(.0.len(), "change"), .0.join("\n  "))]
    Several(Vec<String>),
    #[error("rolled back what this run created")]
    RolledBack(#[source] Box<ApplyError>),
    #[error("rollback incomplete: {1}")]
    RollbackIncomplete(#[source] Box<ApplyError>, String),
}

pub type Result<T, E = ApplyError> = std::result::Result<T, E>;

/// One error for several: itself if alone, otherwise each (with its causes) on a line.
pub fn combine(mut failures: Vec<ApplyError>) -> ApplyError {
    if failures.len() == 1 {
        return failures.remove(0);
    }
    ApplyError::Several(failures.iter().map(|e| crate::chain_text(e)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn several_failures_are_all_reported_with_their_causes() {
        let busy = |name: &str| ApplyError::Kernel(netns::Error::other(format!("delete namespace {name}"), "busy"));
        assert_eq!(combine(vec![busy("A")]).to_string(), busy("A").to_string());
        let both = combine(vec![busy("A"), ApplyError::RolledBack(Box::new(busy("B")))]);
        assert_eq!(
            both.to_string(),
            format!("2 changes failed:\n  {}\n  rolled back what this run created: {}", busy("A"), busy("B"))
        );
    }
}
