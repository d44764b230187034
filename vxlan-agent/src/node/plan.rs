//! What a node's VXLAN device should hold for the other nodes' leases, and the changes
//! that get the kernel there. Pure: the daemon observes the kernel, feeds the leases
//! and what it saw, and carries out the answer.
//!
//! Per remote lease (flannel's scheme): a neighbour `<subnet>.0 -> VtepMAC`, an FDB
//! entry `VtepMAC -> PublicIP` and a route `<subnet> via <subnet>.0 onlink`. Only
//! entries the daemon marked are changed; a slot someone else holds is left alone.

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;

use netlab_store::leases::{LeaseAttrs, Mac, NetworkConfig, Subnet};

/// The daemon's entries on the device, as the kernel reports them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Entries {
    pub neighbours: BTreeMap<Ipv4Addr, Mac>,
    pub fdb: BTreeMap<Mac, Ipv4Addr>,
    /// Destination -> gateway.
    pub routes: BTreeMap<Subnet, Ipv4Addr>,
}

impl Entries {
    /// What the kernel holds once it carried out `action`.
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
            Action::SetRoute(subnet, gateway) => {
                self.routes.insert(subnet, gateway);
            }
            Action::RemoveRoute(subnet, _) => {
                self.routes.remove(&subnet);
            }
        }
    }
}

/// A kernel slot held by an entry the daemon did not make.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Slot {
    Neighbour(Ipv4Addr),
    Fdb(Mac),
    Route(Subnet),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    SetNeighbour(Ipv4Addr, Mac),
    RemoveNeighbour(Ipv4Addr),
    SetFdb(Mac, Ipv4Addr),
    RemoveFdb(Mac),
    SetRoute(Subnet, Ipv4Addr),
    RemoveRoute(Subnet, Ipv4Addr),
}

/// The entries every other node's lease asks for. Leases outside the configured
/// network, of this node (by subnet or public address) or of another VNI are left
/// out; of two leases claiming one VTEP MAC, the first subnet's wins.
pub fn wanted(
    config: &NetworkConfig,
    leases: &BTreeMap<Subnet, LeaseAttrs>,
    own_subnet: Option<Subnet>,
    own_ip: Ipv4Addr,
) -> Entries {
    let mut entries = Entries::default();
    for (subnet, lease) in leases {
        let remote = Some(*subnet) != own_subnet && lease.public_ip != own_ip;
        if !remote || !config.offers(subnet) || lease.vni != config.vni || entries.fdb.contains_key(&lease.vtep_mac) {
            continue;
        }
        let gateway = subnet.network();
        entries.neighbours.insert(gateway, lease.vtep_mac);
        entries.fdb.insert(lease.vtep_mac, lease.public_ip);
        entries.routes.insert(*subnet, gateway);
    }
    entries
}

/// The changes from `installed` to `wanted`: removals first (routes before the
/// entries they use), then additions (entries before the routes that use them).
pub fn plan(wanted: &Entries, installed: &Entries, foreign: &BTreeSet<Slot>) -> Vec<Action> {
    let mut actions = Vec::new();
    for (subnet, gateway) in &installed.routes {
        if wanted.routes.get(subnet) != Some(gateway) {
            actions.push(Action::RemoveRoute(*subnet, *gateway));
        }
    }
    for ip in installed.neighbours.keys().filter(|ip| !wanted.neighbours.contains_key(ip)) {
        actions.push(Action::RemoveNeighbour(*ip));
    }
    for mac in installed.fdb.keys().filter(|mac| !wanted.fdb.contains_key(mac)) {
        actions.push(Action::RemoveFdb(*mac));
    }
    for (ip, mac) in &wanted.neighbours {
        if installed.neighbours.get(ip) != Some(mac) && !foreign.contains(&Slot::Neighbour(*ip)) {
            actions.push(Action::SetNeighbour(*ip, *mac));
        }
    }
    for (mac, vtep) in &wanted.fdb {
        if installed.fdb.get(mac) != Some(vtep) && !foreign.contains(&Slot::Fdb(*mac)) {
            actions.push(Action::SetFdb(*mac, *vtep));
        }
    }
    for (subnet, gateway) in &wanted.routes {
        if installed.routes.get(subnet) != Some(gateway) && !foreign.contains(&Slot::Route(*subnet)) {
            actions.push(Action::SetRoute(*subnet, *gateway));
        }
    }
    actions
}

/// The VTEP MAC of a node that has none yet: locally administered, derived from its
/// public address and the VNI, so it is the same after a reboot (the other nodes'
/// entries stay right) and differs between nodes.
pub fn vtep_mac(public_ip: Ipv4Addr, vni: u32) -> Mac {
    let [a, b, c, d] = public_ip.octets();
    Mac::from_octets([0x0e, vni as u8, a, b, c, d])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> NetworkConfig {
        NetworkConfig::new("10.244.0.0/16".parse().unwrap(), Some(24), None, None).unwrap()
    }

    fn s(text: &str) -> Subnet {
        text.parse().unwrap()
    }

    fn ip(text: &str) -> Ipv4Addr {
        text.parse().unwrap()
    }

    fn lease(public_ip: &str, mac: &str) -> LeaseAttrs {
        LeaseAttrs { public_ip: ip(public_ip), vni: 1, vtep_mac: mac.parse().unwrap() }
    }

    fn leases() -> BTreeMap<Subnet, LeaseAttrs> {
        BTreeMap::from([
            (s("10.244.1.0/24"), lease("192.168.104.2", "0e:01:c0:a8:68:02")),
            (s("10.244.2.0/24"), lease("192.168.104.3", "0e:01:c0:a8:68:03")),
            (s("10.244.3.0/24"), lease("192.168.104.4", "0e:01:c0:a8:68:04")),
        ])
    }

    #[test]
    fn every_other_lease_gets_a_neighbour_an_fdb_entry_and_an_onlink_route() {
        let wanted = wanted(&config(), &leases(), Some(s("10.244.1.0/24")), ip("192.168.104.2"));
        assert_eq!(
            wanted.neighbours,
            BTreeMap::from([
                (ip("10.244.2.0"), "0e:01:c0:a8:68:03".parse().unwrap()),
                (ip("10.244.3.0"), "0e:01:c0:a8:68:04".parse().unwrap())
            ])
        );
        assert_eq!(wanted.fdb.values().copied().collect::<Vec<_>>(), [ip("192.168.104.3"), ip("192.168.104.4")]);
        assert_eq!(
            wanted.routes,
            BTreeMap::from([(s("10.244.2.0/24"), ip("10.244.2.0")), (s("10.244.3.0/24"), ip("10.244.3.0"))])
        );
    }

    #[test]
    fn leases_that_cannot_be_served_are_left_out() {
        let mut leases = leases();
        // Another VNI (a node not reconfigured yet), outside the network, a stale lease
        // of this node's own address, and a second claim on a VTEP MAC.
        leases.insert(s("10.244.4.0/24"), LeaseAttrs { vni: 2, ..lease("192.168.104.5", "0e:02:c0:a8:68:05") });
        leases.insert(s("10.9.0.0/24"), lease("192.168.104.6", "0e:01:c0:a8:68:06"));
        leases.insert(s("10.244.7.0/24"), lease("192.168.104.2", "0e:01:c0:a8:68:07"));
        leases.insert(s("10.244.8.0/24"), lease("192.168.104.8", "0e:01:c0:a8:68:03"));
        let wanted = wanted(&config(), &leases, Some(s("10.244.1.0/24")), ip("192.168.104.2"));
        assert_eq!(wanted.routes.keys().copied().collect::<Vec<_>>(), [s("10.244.2.0/24"), s("10.244.3.0/24")]);
    }

    #[test]
    fn a_new_vtep_mac_replaces_the_old_entries_and_a_gone_lease_is_removed() {
        let own = Some(s("10.244.1.0/24"));
        let before = wanted(&config(), &leases(), own, ip("192.168.104.2"));
        let mut after = leases();
        after.insert(s("10.244.2.0/24"), lease("192.168.104.3", "0e:01:00:00:00:99"));
        after.remove(&s("10.244.3.0/24"));
        let target = wanted(&config(), &after, own, ip("192.168.104.2"));
        let actions = plan(&target, &before, &BTreeSet::new());
        let mut recorded = before.clone();
        actions.iter().for_each(|action| recorded.record(action));
        assert_eq!(recorded, target, "recording the actions gives what was wanted");
        assert_eq!(
            actions,
            [
                Action::RemoveRoute(s("10.244.3.0/24"), ip("10.244.3.0")),
                Action::RemoveNeighbour(ip("10.244.3.0")),
                Action::RemoveFdb("0e:01:c0:a8:68:03".parse().unwrap()),
                Action::RemoveFdb("0e:01:c0:a8:68:04".parse().unwrap()),
                Action::SetNeighbour(ip("10.244.2.0"), "0e:01:00:00:00:99".parse().unwrap()),
                Action::SetFdb("0e:01:00:00:00:99".parse().unwrap(), ip("192.168.104.3")),
            ]
        );
    }

    #[test]
    fn converged_means_nothing_to_do_and_foreign_slots_are_never_taken() {
        let wanted = wanted(&config(), &leases(), Some(s("10.244.1.0/24")), ip("192.168.104.2"));
        assert_eq!(plan(&wanted, &wanted, &BTreeSet::new()), []);
        let foreign = BTreeSet::from([Slot::Route(s("10.244.2.0/24")), Slot::Neighbour(ip("10.244.3.0"))]);
        let actions = plan(&wanted, &Entries::default(), &foreign);
        assert!(!actions.contains(&Action::SetRoute(s("10.244.2.0/24"), ip("10.244.2.0"))));
        assert!(!actions.contains(&Action::SetNeighbour(ip("10.244.3.0"), "0e:01:c0:a8:68:04".parse().unwrap())));
        assert_eq!(actions.len(), 4, "{actions:?}");
    }

    #[test]
    fn vtep_macs_are_stable_local_unicast_and_differ_between_nodes() {
        let mac = vtep_mac(ip("192.168.104.2"), 1);
        assert_eq!(mac, vtep_mac(ip("192.168.104.2"), 1));
        assert_ne!(mac, vtep_mac(ip("192.168.104.3"), 1));
        let first = mac.octets()[0];
        assert_eq!(first & 0b11, 0b10, "locally administered, unicast");
    }
}
