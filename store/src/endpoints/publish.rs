//! Writing and reading the overlay keyspace: an endpoint's two keys, and the whole
//! table at once.

use super::{Endpoint, Resolver, Table, FOLDERS};
use crate::backend::{Change, Store};
use crate::error::Result;
use crate::key::Value;

/// Write an endpoint's two keys, skipping those that already hold the value (so a
/// re-apply does not wake every agent).
pub async fn publish(store: &impl Store, endpoint: &Endpoint) -> Result<()> {
    for entry in endpoint.entries() {
        let path = entry.key().path();
        let value = Value::new(&path, entry.value())?;
        let current = match store.get(&path).await {
            Ok(current) => current,
            // Something unusable at our key (a symlink, a FIFO, garbage): replaced.
            Err(problem) if problem.is_content() => None,
            Err(problem) => return Err(problem),
        };
        if current.as_ref().map(Value::trimmed) != Some(value.as_str()) {
            store.put(&path, &value, None).await?;
        }
    }
    Ok(())
}

/// Remove an endpoint's keys where they still hold its values (canonical names
/// only: an alias someone wrote by hand is theirs).
pub async fn withdraw(store: &impl Store, endpoint: &Endpoint) -> Result<()> {
    for entry in endpoint.entries() {
        let path = entry.key().path();
        let value = Value::new(&path, entry.value())?;
        store.delete_if(&path, &value).await?;
    }
    Ok(())
}

/// The whole table, as the agents see it.
pub async fn list(store: &impl Store) -> Result<Table> {
    let mut resolver = Resolver::default();
    resolver.apply(Change::Reset);
    for folder in FOLDERS {
        for (path, value) in store.list(folder).await? {
            resolver.apply(Change::Put(path, value));
        }
    }
    resolver.apply(Change::Synced);
    Ok(resolver.table().clone())
}
