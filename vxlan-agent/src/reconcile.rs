//! What the kernel should hold, given the store, and the changes that get it there.
//! Pure: the agent feeds it the store's table, what it knows is installed, and which
//! keys to look at; it answers with actions.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use netlab_store::endpoints::{Key, Mac, Table};

/// Which entries the agent installs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Mode {
    /// Every entry of the store, before any traffic asks for it.
    Proactive,
    /// Only what the kernel missed, as the tutorial's agent does.
    Miss,
}

/// The agent's entries on the VXLAN device, as far as it knows.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Installed {
    pub neighbours: BTreeMap<IpAddr, Mac>,
    pub fdb: BTreeMap<Mac, IpAddr>,
}

impl Installed {
    /// Record an action the kernel carried out.
    pub fn record(&mut self, action: &Action) {
        match *action {
            Action::SetNeighbour(ip, mac) => {
                self.neighbours.insert(ip, mac);
            }
            Action::RemoveNeighbour(ip) => {
                self.neighbours.remove(&ip);
            }
            Action::SetFdb(mac, vtep) => {
                self.fdb.insert(mac, vtep);
            }
            Action::RemoveFdb(mac) => {
                self.fdb.remove(&mac);
            }
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    SetNeighbour(IpAddr, Mac),
    RemoveNeighbour(IpAddr),
    SetFdb(Mac, IpAddr),
    RemoveFdb(Mac),
}

/// One entry of the kernel, by what identifies it on the device.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Slot {
    Neighbour(IpAddr),
    Fdb(Mac),
}

/// Everything the decision depends on besides the slot.
pub struct Inputs<'a> {
    pub table: &'a Table,
    /// This host's own VTEP addresses: endpoints behind them are served by the local
    /// bridge and get no entry on the VXLAN device.
    pub local: &'a BTreeSet<IpAddr>,
    pub mode: Mode,
    /// In miss mode, the slots the kernel has asked for.
    pub asked: &'a BTreeSet<Slot>,
    /// Slots holding someone else's permanent entry: never changed.
    pub foreign: &'a BTreeSet<Slot>,
}

impl Inputs<'_> {
    fn wanted(&self, slot: Slot) -> bool {
        self.mode == Mode::Proactive || self.asked.contains(&slot)
    }

    fn remote(&self, mac: Mac) -> bool {
        self.table.vtep_of(mac).is_none_or(|vtep| !self.local.contains(&vtep))
    }

    /// What the slot should hold, if anything.
    pub fn desired(&self, slot: Slot) -> Option<Action> {
        if !self.wanted(slot) {
            return None;
        }
        match slot {
            Slot::Neighbour(ip) => {
                if !served(ip) {
                    return None;
                }
                let mac = self.table.mac_of(ip)?;
                self.remote(mac).then_some(Action::SetNeighbour(ip, mac))
            }
            Slot::Fdb(mac) => {
                let vtep = self.table.vtep_of(mac).filter(|vtep| reachable_vtep(*vtep))?;
                (!self.local.contains(&vtep)).then_some(Action::SetFdb(mac, vtep))
            }
        }
    }

    /// The action that brings one slot in line, if it is not already (and is ours).
    pub fn fix(&self, slot: Slot, installed: &Installed) -> Option<Action> {
        if self.foreign.contains(&slot) {
            return None;
        }
        let desired = self.desired(slot);
        let current = match slot {
            Slot::Neighbour(ip) => installed.neighbours.get(&ip).map(|mac| Action::SetNeighbour(ip, *mac)),
            Slot::Fdb(mac) => installed.fdb.get(&mac).map(|vtep| Action::SetFdb(mac, *vtep)),
        };
        match (desired, current) {
            (desired, current) if desired == current => None,
            (Some(desired), _) => Some(desired),
            (None, _) => Some(match slot {
                Slot::Neighbour(ip) => Action::RemoveNeighbour(ip),
                Slot::Fdb(mac) => Action::RemoveFdb(mac),
            }),
        }
    }

    /// Actions for the slots touched by changed store keys.
    pub fn after_changes(&self, keys: &BTreeSet<Key>, installed: &Installed) -> Vec<Action> {
        let mut slots = BTreeSet::new();
        for key in keys {
            match *key {
                Key::Arp(ip) => {
                    slots.insert(Slot::Neighbour(ip));
                }
                Key::Fdb(mac) => {
                    // Whether the MAC is local decides its addresses' entries too.
                    slots.insert(Slot::Fdb(mac));
                    slots.extend(self.table.ips_of(mac).map(Slot::Neighbour));
                }
            }
        }
        slots.into_iter().filter_map(|slot| self.fix(slot, installed)).collect()
    }

    /// Actions that make the installed entries exactly the desired ones.
    pub fn full(&self, installed: &Installed) -> Vec<Action> {
        let mut slots: BTreeSet<Slot> = BTreeSet::new();
        slots.extend(self.table.arp().map(|(ip, _)| Slot::Neighbour(ip)));
        slots.extend(self.table.fdb().map(|(mac, _)| Slot::Fdb(mac)));
        slots.extend(installed.neighbours.keys().map(|ip| Slot::Neighbour(*ip)));
        slots.extend(installed.fdb.keys().map(|mac| Slot::Fdb(*mac)));
        slots.into_iter().filter_map(|slot| self.fix(slot, installed)).collect()
    }
}

/// Addresses an overlay serves, whatever a store holds: not unspecified, loopback,
/// multicast, broadcast or link-local (every interface asks for IPv6 link-local
/// addresses; none of them lives behind a VTEP).
pub fn served(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            !(v4.is_unspecified() || v4.is_loopback() || v4.is_multicast() || v4.is_broadcast() || v4.is_link_local())
        }
        IpAddr::V6(v6) => !(v6.is_unspecified() || v6.is_loopback() || v6.is_multicast() || v6.is_unicast_link_local()),
    }
}

/// A VTEP a unicast FDB entry can point at.
fn reachable_vtep(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => !(v4.is_unspecified() || v4.is_loopback() || v4.is_multicast() || v4.is_broadcast()),
        IpAddr::V6(v6) => !(v6.is_unspecified() || v6.is_loopback() || v6.is_multicast()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use netlab_store::endpoints::Entry;

    #[test]
    fn addresses_no_overlay_serves_get_no_entry_whatever_the_store_says() {
        let garbage =
            ["0.0.0.0", "127.0.0.1", "224.0.0.1", "255.255.255.255", "169.254.1.1", "ff02::1", "fe80::1", "::1", "::"];
        let mut entries: Vec<Entry> = garbage
            .iter()
            .enumerate()
            .map(|(i, text)| Entry::Arp(ip(text), mac(&format!("02:00:00:00:01:{i:02x}"))))
            .collect();
        // And MACs behind VTEPs no unicast entry can point at.
        for (i, vtep) in ["0.0.0.0", "127.0.0.1", "239.1.1.1"].iter().enumerate() {
            entries.push(Entry::Fdb(mac(&format!("02:00:00:00:02:{i:02x}")), ip(vtep)));
        }
        let table = Table::from_entries(entries);
        let (local, asked) = (local(), BTreeSet::new());
        let inputs =
            Inputs { table: &table, local: &local, mode: Mode::Proactive, asked: &asked, foreign: &BTreeSet::new() };
        assert_eq!(inputs.full(&Installed::default()), [], "nothing to install");
        // One installed before (by an older agent) is removed.
        let mut installed = Installed::default();
        installed.neighbours.insert(ip("127.0.0.1"), mac("02:00:00:00:01:01"));
        assert_eq!(inputs.full(&installed), [Action::RemoveNeighbour(ip("127.0.0.1"))]);
        assert!(served(ip("11.11.11.3")) && served(ip("fd00::3")));
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }
    fn mac(s: &str) -> Mac {
        s.parse().unwrap()
    }

    /// ct1 (.2) lives here behind 192.168.104.2; ct2 (.3) behind host2.
    fn table() -> Table {
        Table::from_entries([
            Entry::Arp(ip("11.11.11.2"), mac("02:42:c0:a8:00:02")),
            Entry::Fdb(mac("02:42:c0:a8:00:02"), ip("192.168.104.2")),
            Entry::Arp(ip("11.11.11.3"), mac("02:42:c0:a8:00:03")),
            Entry::Fdb(mac("02:42:c0:a8:00:03"), ip("192.168.104.3")),
        ])
    }

    fn local() -> BTreeSet<IpAddr> {
        [ip("192.168.104.2")].into()
    }

    #[test]
    fn proactive_installs_remote_endpoints_only() {
        let (table, local, asked) = (table(), local(), BTreeSet::new());
        let inputs =
            Inputs { table: &table, local: &local, mode: Mode::Proactive, asked: &asked, foreign: &BTreeSet::new() };
        let actions = inputs.full(&Installed::default());
        assert_eq!(
            actions,
            [
                Action::SetNeighbour(ip("11.11.11.3"), mac("02:42:c0:a8:00:03")),
                Action::SetFdb(mac("02:42:c0:a8:00:03"), ip("192.168.104.3")),
            ]
        );
        let mut installed = Installed::default();
        actions.iter().for_each(|a| installed.record(a));
        assert!(inputs.full(&installed).is_empty(), "converged");
    }

    #[test]
    fn miss_mode_installs_only_what_was_asked() {
        let (table, local) = (table(), local());
        let asked: BTreeSet<Slot> = [Slot::Neighbour(ip("11.11.11.3"))].into();
        let inputs =
            Inputs { table: &table, local: &local, mode: Mode::Miss, asked: &asked, foreign: &BTreeSet::new() };
        assert_eq!(
            inputs.full(&Installed::default()),
            [Action::SetNeighbour(ip("11.11.11.3"), mac("02:42:c0:a8:00:03"))]
        );
    }

    #[test]
    fn removed_or_changed_keys_remove_or_replace_entries() {
        let (mut table, local, asked) = (table(), local(), BTreeSet::new());
        let mut installed = Installed::default();
        let inputs =
            Inputs { table: &table, local: &local, mode: Mode::Proactive, asked: &asked, foreign: &BTreeSet::new() };
        inputs.full(&installed).iter().for_each(|a| installed.record(a));

        table.remove(Key::Arp(ip("11.11.11.3")));
        table.set(Entry::Fdb(mac("02:42:c0:a8:00:03"), ip("192.168.104.4")));
        let keys: BTreeSet<Key> = [Key::Arp(ip("11.11.11.3")), Key::Fdb(mac("02:42:c0:a8:00:03"))].into();
        let inputs =
            Inputs { table: &table, local: &local, mode: Mode::Proactive, asked: &asked, foreign: &BTreeSet::new() };
        assert_eq!(
            inputs.after_changes(&keys, &installed),
            [Action::RemoveNeighbour(ip("11.11.11.3")), Action::SetFdb(mac("02:42:c0:a8:00:03"), ip("192.168.104.4"))]
        );
    }

    #[test]
    fn a_mac_moving_here_removes_its_addresses_entries() {
        let (mut table, local, asked) = (table(), local(), BTreeSet::new());
        let mut installed = Installed::default();
        let inputs =
            Inputs { table: &table, local: &local, mode: Mode::Proactive, asked: &asked, foreign: &BTreeSet::new() };
        inputs.full(&installed).iter().for_each(|a| installed.record(a));

        table.set(Entry::Fdb(mac("02:42:c0:a8:00:03"), ip("192.168.104.2")));
        let keys: BTreeSet<Key> = [Key::Fdb(mac("02:42:c0:a8:00:03"))].into();
        let inputs =
            Inputs { table: &table, local: &local, mode: Mode::Proactive, asked: &asked, foreign: &BTreeSet::new() };
        assert_eq!(
            inputs.after_changes(&keys, &installed),
            [Action::RemoveNeighbour(ip("11.11.11.3")), Action::RemoveFdb(mac("02:42:c0:a8:00:03"))]
        );
    }

    #[test]
    fn an_address_without_fdb_entry_still_gets_its_neighbour() {
        let table = Table::from_entries([Entry::Arp(ip("11.11.11.9"), mac("02:00:00:00:00:09"))]);
        let (local, asked) = (local(), BTreeSet::new());
        let inputs =
            Inputs { table: &table, local: &local, mode: Mode::Proactive, asked: &asked, foreign: &BTreeSet::new() };
        assert_eq!(
            inputs.full(&Installed::default()),
            [Action::SetNeighbour(ip("11.11.11.9"), mac("02:00:00:00:00:09"))]
        );
    }

    #[test]
    fn someone_elses_entry_is_never_changed() {
        let (table, local, asked) = (table(), local(), BTreeSet::new());
        let foreign: BTreeSet<Slot> = [Slot::Fdb(mac("02:42:c0:a8:00:03"))].into();
        let inputs = Inputs { table: &table, local: &local, mode: Mode::Proactive, asked: &asked, foreign: &foreign };
        assert_eq!(
            inputs.full(&Installed::default()),
            [Action::SetNeighbour(ip("11.11.11.3"), mac("02:42:c0:a8:00:03"))]
        );
    }
}
