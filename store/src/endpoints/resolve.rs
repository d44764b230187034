//! From a store's raw changes to the overlay's table. Pure: a follower feeds it
//! changes and gets told which keys changed.
//!
//! Aliases: a key written by hand in another form (an upper-case MAC) holds the
//! same key as the canonical name. The canonical file wins while it exists; an alias
//! counts only when there is none, and removing an alias never removes the entry
//! the canonical file holds.

use std::collections::{BTreeMap, BTreeSet};

use super::{Entry, Key, Table};
use crate::backend::Change;
use crate::key::{KeyPath, Value};

/// What a change meant for the table.
#[derive(Debug)]
pub enum Update {
    /// The table was replaced by a complete snapshot: reconcile everything.
    Snapshot,
    /// This key's entry changed (look it up in the table; absent means removed).
    Changed(Key),
    /// The store could not be followed; the table stays as it was.
    Failed(crate::Error),
}

#[derive(Default)]
struct State {
    table: Table,
    /// Keys whose entry in the table comes from an alias (no canonical file).
    from_alias: BTreeSet<Key>,
    aliases: BTreeMap<Key, BTreeMap<KeyPath, Entry>>,
}

impl State {
    /// Set the value at `path`; true when the key's entry changed.
    fn put(&mut self, path: KeyPath, entry: Entry) -> bool {
        let key = entry.key();
        if path == key.path() {
            self.from_alias.remove(&key);
            return self.table.set(entry);
        }
        self.aliases.entry(key).or_default().insert(path, entry);
        let canonical_present = self.table.has(key) && !self.from_alias.contains(&key);
        !canonical_present && self.take_alias(key)
    }

    /// Remove the value at `path` (gone, or unusable); true when the key changed.
    fn delete(&mut self, path: &KeyPath, key: Key) -> bool {
        if *path == key.path() {
            if self.from_alias.contains(&key) || !self.table.has(key) {
                return false;
            }
            return self.take_alias(key);
        }
        if let Some(paths) = self.aliases.get_mut(&key) {
            paths.remove(path);
            if paths.is_empty() {
                self.aliases.remove(&key);
            }
        }
        self.from_alias.contains(&key) && self.take_alias(key)
    }

    /// The key's entry from its first alias, or none; true when that changed it.
    fn take_alias(&mut self, key: Key) -> bool {
        match self.aliases.get(&key).and_then(|paths| paths.values().next()).copied() {
            Some(entry) => {
                self.from_alias.insert(key);
                self.table.set(entry)
            }
            None => {
                self.from_alias.remove(&key);
                self.table.remove(key)
            }
        }
    }
}

/// The overlay's table as a store's changes make it.
#[derive(Default)]
pub struct Resolver {
    current: State,
    /// A snapshot being received (between `Reset` and `Synced`): the current table
    /// stays in use until it is complete.
    building: Option<State>,
    loaded: bool,
}

impl Resolver {
    pub fn table(&self) -> &Table {
        &self.current.table
    }

    /// A complete snapshot has been received at least once.
    pub fn loaded(&self) -> bool {
        self.loaded
    }

    pub fn apply(&mut self, change: Change) -> Option<Update> {
        match change {
            Change::Reset => {
                self.building = Some(State::default());
                None
            }
            Change::Synced => {
                self.current = self.building.take()?;
                self.loaded = true;
                Some(Update::Snapshot)
            }
            Change::Failed(problem) => {
                self.building = None;
                Some(Update::Failed(problem))
            }
            Change::Put(path, value) => {
                let key = Key::of(&path)?;
                let state = self.building.as_mut().unwrap_or(&mut self.current);
                let changed = match entry(key, &value) {
                    Some(entry) => state.put(path, entry),
                    None => state.delete(&path, key),
                };
                (changed && self.building.is_none()).then_some(Update::Changed(key))
            }
            Change::Delete(path) => {
                let key = Key::of(&path)?;
                let state = self.building.as_mut().unwrap_or(&mut self.current);
                let changed = state.delete(&path, key);
                (changed && self.building.is_none()).then_some(Update::Changed(key))
            }
        }
    }
}

/// The entry a value makes; an unusable one is warned about and counts as absent.
fn entry(key: Key, value: &Value) -> Option<Entry> {
    key.entry(value.as_str()).map_err(|problem| tracing::warn!("{problem}; treated as absent")).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(path: &str, value: &str) -> Change {
        let path = KeyPath::new(path).unwrap();
        let value = Value::new(&path, value).unwrap();
        Change::Put(path, value)
    }

    fn delete(path: &str) -> Change {
        Change::Delete(KeyPath::new(path).unwrap())
    }

    fn loaded(changes: Vec<Change>) -> Resolver {
        let mut resolver = Resolver::default();
        resolver.apply(Change::Reset);
        changes.into_iter().for_each(|c| assert!(resolver.apply(c).is_none(), "no updates while building"));
        assert!(matches!(resolver.apply(Change::Synced), Some(Update::Snapshot)));
        resolver
    }

    const MAC: &str = "02:42:c0:a8:00:03";

    fn vtep(resolver: &Resolver) -> Option<String> {
        resolver.table().vtep_of(MAC.parse().unwrap()).map(|ip| ip.to_string())
    }

    #[test]
    fn an_alias_counts_until_the_canonical_key_exists() {
        let mut resolver = loaded(vec![put("fdb/02:42:C0:A8:00:03", "192.168.104.3")]);
        assert_eq!(vtep(&resolver).as_deref(), Some("192.168.104.3"));
        // The canonical key wins over the alias.
        assert!(matches!(resolver.apply(put("fdb/02:42:c0:a8:00:03", "192.168.104.4")), Some(Update::Changed(_))));
        assert_eq!(vtep(&resolver).as_deref(), Some("192.168.104.4"));
        assert!(resolver.apply(put("fdb/02-42-c0-a8-00-03", "192.168.104.9")).is_none());
        assert_eq!(vtep(&resolver).as_deref(), Some("192.168.104.4"));
    }

    #[test]
    fn removing_an_alias_keeps_the_canonical_entry() {
        let mut resolver =
            loaded(vec![put("fdb/02:42:c0:a8:00:03", "192.168.104.3"), put("fdb/02:42:C0:A8:00:03", "192.168.104.3")]);
        assert!(resolver.apply(delete("fdb/02:42:C0:A8:00:03")).is_none());
        assert_eq!(vtep(&resolver).as_deref(), Some("192.168.104.3"));
        // Removing the canonical one falls back to a remaining alias, then to nothing.
        resolver.apply(put("fdb/02-42-c0-a8-00-03", "192.168.104.7"));
        assert!(matches!(resolver.apply(delete("fdb/02:42:c0:a8:00:03")), Some(Update::Changed(_))));
        assert_eq!(vtep(&resolver).as_deref(), Some("192.168.104.7"));
        assert!(matches!(resolver.apply(delete("fdb/02-42-c0-a8-00-03")), Some(Update::Changed(_))));
        assert_eq!(vtep(&resolver), None);
    }

    #[test]
    fn garbage_counts_as_absent_and_other_keys_are_ignored() {
        let mut resolver = loaded(vec![put("arp/11.11.11.3", MAC)]);
        assert!(matches!(resolver.apply(put("arp/11.11.11.3", "not a mac")), Some(Update::Changed(_))));
        assert!(resolver.table().is_empty());
        assert!(resolver.apply(put("subnets/10.0.0.0-24", "x")).is_none());
        assert!(resolver.apply(put("arp/not-an-ip", MAC)).is_none());
    }

    #[test]
    fn a_snapshot_replaces_the_table_only_when_complete() {
        let mut resolver = loaded(vec![put("arp/11.11.11.3", MAC)]);
        resolver.apply(Change::Reset);
        resolver.apply(put("arp/11.11.11.4", MAC));
        assert_eq!(resolver.table().len(), 1, "the old table serves until Synced");
        assert!(resolver.table().mac_of("11.11.11.3".parse().unwrap()).is_some());
        resolver.apply(Change::Synced);
        assert!(resolver.table().mac_of("11.11.11.3".parse().unwrap()).is_none());
        assert!(resolver.table().mac_of("11.11.11.4".parse().unwrap()).is_some());
    }
}
