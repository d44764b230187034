//! The overlay keyspace, in the tutorial's layout: `arp/<IP>` -> MAC (which MAC
//! answers for an overlay address) and `fdb/<MAC>` -> VTEP IP (which host the MAC
//! lives behind). Keys and values are parsed into types here, once, at the store's
//! edge. Names written by hand in another form (`02:42:C0:A8:00:03`, or
//! `02-42-c0-a8-00-03` as in the tutorial's VMware branch) mean the same key: they
//! are aliases of the canonical name (see `resolve`).

mod publish;
mod resolve;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::IpAddr;

pub use netns::mac::Mac;
pub use publish::{list, publish, withdraw};
pub use resolve::{Resolver, Update};

use crate::error::Error;
use crate::key::KeyPath;

/// The folders of the keyspace.
pub const FOLDERS: [&str; 2] = ["arp", "fdb"];

/// A MAC as a person may write it: either case, `:` or `-` between the pairs.
pub fn parse_mac(text: &str) -> Result<Mac, String> {
    text.replace('-', ":").parse()
}

/// A key of the store, relative to the overlay's root.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Key {
    Arp(IpAddr),
    Fdb(Mac),
}

impl Key {
    /// "arp/11.11.11.3" or "fdb/02:42:c0:a8:00:03" (or an alias of one); anything
    /// else is not a key of this keyspace.
    pub fn parse(relative: &str) -> Option<Key> {
        let (kind, name) = relative.split_once('/')?;
        match kind {
            "arp" => name.parse().ok().map(Key::Arp),
            "fdb" => parse_mac(name).ok().map(Key::Fdb),
            _ => None,
        }
    }

    /// The key of a store path, if it is one of this keyspace's.
    pub fn of(path: &KeyPath) -> Option<Key> {
        Key::parse(path.as_str())
    }

    /// The canonical path of the key.
    pub fn path(self) -> KeyPath {
        KeyPath::new(&self.to_string()).expect("an address or a MAC is a valid key segment")
    }

    /// Parse what the key holds (surrounding whitespace, as `echo` leaves, is fine).
    pub fn entry(self, value: &str) -> Result<Entry, Error> {
        let value = value.trim();
        let invalid = |why: String| Error::Invalid { key: self.to_string(), why };
        match self {
            Key::Arp(ip) => parse_mac(value).map(|mac| Entry::Arp(ip, mac)).map_err(invalid),
            Key::Fdb(mac) => value
                .parse()
                .map(|vtep| Entry::Fdb(mac, vtep))
                .map_err(|_| invalid(format!("invalid VTEP address `{}`", value.escape_debug()))),
        }
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Key::Arp(ip) => write!(f, "arp/{ip}"),
            Key::Fdb(mac) => write!(f, "fdb/{mac}"),
        }
    }
}

/// One key with its value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Entry {
    Arp(IpAddr, Mac),
    Fdb(Mac, IpAddr),
}

impl Entry {
    pub fn key(&self) -> Key {
        match *self {
            Entry::Arp(ip, _) => Key::Arp(ip),
            Entry::Fdb(mac, _) => Key::Fdb(mac),
        }
    }

    /// The value as the store holds it.
    pub fn value(&self) -> String {
        match self {
            Entry::Arp(_, mac) => mac.to_string(),
            Entry::Fdb(_, vtep) => vtep.to_string(),
        }
    }
}

/// An endpoint attached to the overlay: its address, its MAC and the VTEP of the host
/// it lives on. Publishing it writes two keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub struct Endpoint {
    pub ip: IpAddr,
    pub mac: Mac,
    pub vtep: IpAddr,
}

impl Endpoint {
    pub fn entries(&self) -> [Entry; 2] {
        [Entry::Arp(self.ip, self.mac), Entry::Fdb(self.mac, self.vtep)]
    }
}

/// The store's content, with the reverse index the agent needs when a MAC's VTEP
/// changes (every address answering with that MAC is affected).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Table {
    arp: BTreeMap<IpAddr, Mac>,
    fdb: BTreeMap<Mac, IpAddr>,
    /// (MAC, address) pairs rather than a set per MAC: one allocation per MAC would
    /// cost more than the table itself at 100,000 endpoints.
    ips_by_mac: BTreeSet<(Mac, IpAddr)>,
}

impl Table {
    pub fn from_entries(entries: impl IntoIterator<Item = Entry>) -> Table {
        let mut table = Table::default();
        for entry in entries {
            table.set(entry);
        }
        table
    }

    /// Set a key; true when that changed anything.
    pub fn set(&mut self, entry: Entry) -> bool {
        match entry {
            Entry::Arp(ip, mac) => {
                let old = self.arp.insert(ip, mac);
                if let Some(old) = old.filter(|old| *old != mac) {
                    self.unindex(old, ip);
                }
                self.ips_by_mac.insert((mac, ip));
                old != Some(mac)
            }
            Entry::Fdb(mac, vtep) => self.fdb.insert(mac, vtep) != Some(vtep),
        }
    }

    /// Remove a key; true when it was there.
    pub fn remove(&mut self, key: Key) -> bool {
        match key {
            Key::Arp(ip) => match self.arp.remove(&ip) {
                Some(mac) => {
                    self.unindex(mac, ip);
                    true
                }
                None => false,
            },
            Key::Fdb(mac) => self.fdb.remove(&mac).is_some(),
        }
    }

    fn unindex(&mut self, mac: Mac, ip: IpAddr) {
        self.ips_by_mac.remove(&(mac, ip));
    }

    /// Whether the key holds an entry.
    pub fn has(&self, key: Key) -> bool {
        match key {
            Key::Arp(ip) => self.arp.contains_key(&ip),
            Key::Fdb(mac) => self.fdb.contains_key(&mac),
        }
    }

    pub fn mac_of(&self, ip: IpAddr) -> Option<Mac> {
        self.arp.get(&ip).copied()
    }

    pub fn vtep_of(&self, mac: Mac) -> Option<IpAddr> {
        self.fdb.get(&mac).copied()
    }

    /// Addresses that answer with `mac`.
    pub fn ips_of(&self, mac: Mac) -> impl Iterator<Item = IpAddr> + '_ {
        let first = IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED);
        self.ips_by_mac.range((mac, first)..).take_while(move |(m, _)| *m == mac).map(|(_, ip)| *ip)
    }

    pub fn arp(&self) -> impl Iterator<Item = (IpAddr, Mac)> + '_ {
        self.arp.iter().map(|(ip, mac)| (*ip, *mac))
    }

    pub fn fdb(&self) -> impl Iterator<Item = (Mac, IpAddr)> + '_ {
        self.fdb.iter().map(|(mac, vtep)| (*mac, *vtep))
    }

    pub fn len(&self) -> usize {
        self.arp.len() + self.fdb.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mac(s: &str) -> Mac {
        s.parse().unwrap()
    }

    #[test]
    fn keys_round_trip_and_reject_garbage() {
        for text in ["arp/11.11.11.3", "fdb/02:42:c0:a8:00:03", "arp/fd00::3"] {
            assert_eq!(Key::parse(text).unwrap().to_string(), text);
        }
        for text in ["arp/11.11.11", "fdb/zz", "arp", "nat/1.2.3.4", "arp/1.2.3.4/x", ".tmp-arp"] {
            assert_eq!(Key::parse(text), None, "{text}");
        }
    }

    #[test]
    fn hand_written_forms_are_the_same_key() {
        let canonical = Key::parse("fdb/02:42:c0:a8:00:03").unwrap();
        for alias in ["fdb/02:42:C0:A8:00:03", "fdb/02-42-c0-a8-00-03", "fdb/02-42-C0-A8-00-03"] {
            assert_eq!(Key::parse(alias), Some(canonical), "{alias}");
        }
        assert_eq!(Key::parse("arp/FD00::3"), Key::parse("arp/fd00::3"));
        assert_eq!(canonical.path().as_str(), "fdb/02:42:c0:a8:00:03");
        let arp = Key::parse("arp/11.11.11.3").unwrap();
        assert_eq!(
            arp.entry("02-42-C0-A8-00-03\n").unwrap(),
            Entry::Arp("11.11.11.3".parse().unwrap(), mac("02:42:c0:a8:00:03"))
        );
    }

    #[test]
    fn values_are_trimmed_and_typed() {
        let key = Key::parse("arp/11.11.11.3").unwrap();
        assert_eq!(
            key.entry("02:42:c0:a8:00:03\n").unwrap(),
            Entry::Arp("11.11.11.3".parse().unwrap(), mac("02:42:c0:a8:00:03"))
        );
        assert!(key.entry("192.168.104.3").unwrap_err().to_string().contains("arp/11.11.11.3"));
        let key = Key::parse("fdb/02:42:c0:a8:00:03").unwrap();
        assert!(key.entry("02:42:c0:a8:00:03").unwrap_err().to_string().contains("invalid VTEP"));
    }

    #[test]
    fn reverse_index_follows_changes() {
        let ip: IpAddr = "11.11.11.3".parse().unwrap();
        let (a, b) = (mac("02:00:00:00:00:0a"), mac("02:00:00:00:00:0b"));
        let mut table = Table::default();
        assert!(table.set(Entry::Arp(ip, a)));
        assert!(!table.set(Entry::Arp(ip, a)));
        assert!(table.set(Entry::Arp(ip, b)));
        assert_eq!(table.ips_of(a).count(), 0);
        assert_eq!(table.ips_of(b).collect::<Vec<_>>(), vec![ip]);
        assert!(table.remove(Key::Arp(ip)));
        assert_eq!(table.ips_of(b).count(), 0);
        assert!(!table.remove(Key::Arp(ip)));
    }
}
