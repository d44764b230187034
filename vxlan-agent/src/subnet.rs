//! Which subnet a node leases (flannel's order, fixed where it falls short): its own
//! lease, found by its public address, first (a restarted node keeps its subnet);
//! then the subnet of its last subnet file, if nobody holds it now; then a free one
//! from a random starting point, so that nodes joining together rarely race for the
//! same key. Pure: the daemon takes the candidates one by one with create-if-absent.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use netlab_store::leases::{LeaseAttrs, NetworkConfig, Subnet};

#[derive(Debug, PartialEq, Eq)]
pub enum Choice {
    /// The store already holds this node's lease.
    Keep(Subnet),
    /// Free subnets to try, in order.
    Try(Vec<Subnet>),
    /// Every subnet is leased.
    Full,
}

pub fn choose(
    config: &NetworkConfig,
    leases: &BTreeMap<Subnet, LeaseAttrs>,
    public_ip: Ipv4Addr,
    previous: Option<Subnet>,
    random: u64,
) -> Choice {
    if let Some((subnet, _)) = leases.iter().find(|(s, lease)| lease.public_ip == public_ip && config.offers(s)) {
        return Choice::Keep(*subnet);
    }
    let free: Vec<Subnet> = config.subnets().filter(|s| !leases.contains_key(s)).collect();
    if free.is_empty() {
        return Choice::Full;
    }
    let start = (random % free.len() as u64) as usize;
    let mut order: Vec<Subnet> = free[start..].iter().chain(&free[..start]).copied().collect();
    if let Some(previous) = previous.filter(|p| config.offers(p) && !leases.contains_key(p)) {
        order.retain(|s| *s != previous);
        order.insert(0, previous);
    }
    Choice::Try(order)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> NetworkConfig {
        NetworkConfig::new("10.244.0.0/22".parse().unwrap(), Some(24), None, None).unwrap()
    }

    fn lease(ip: &str) -> LeaseAttrs {
        LeaseAttrs { public_ip: ip.parse().unwrap(), vni: 1, vtep_mac: "0e:00:00:00:00:01".parse().unwrap() }
    }

    fn s(text: &str) -> Subnet {
        text.parse().unwrap()
    }

    #[test]
    fn a_node_keeps_its_own_lease() {
        let leases = BTreeMap::from([(s("10.244.2.0/24"), lease("192.168.104.2"))]);
        let me = "192.168.104.2".parse().unwrap();
        assert_eq!(choose(&config(), &leases, me, Some(s("10.244.1.0/24")), 7), Choice::Keep(s("10.244.2.0/24")));
    }

    #[test]
    fn the_last_subnet_comes_first_when_free() {
        // 10.244.0.0/22 in /24s: .1, .2, .3 are offered (.0 is left out).
        let leases = BTreeMap::from([(s("10.244.2.0/24"), lease("192.168.104.3"))]);
        let me = "192.168.104.2".parse().unwrap();
        assert_eq!(
            choose(&config(), &leases, me, Some(s("10.244.3.0/24")), 0),
            Choice::Try(vec![s("10.244.3.0/24"), s("10.244.1.0/24")])
        );
        // Taken by someone else meanwhile: not tried first, not tried at all.
        assert_eq!(
            choose(&config(), &leases, me, Some(s("10.244.2.0/24")), 1),
            Choice::Try(vec![s("10.244.3.0/24"), s("10.244.1.0/24")])
        );
        // Outside what the network offers now (it was reconfigured): ignored.
        assert_eq!(
            choose(&config(), &leases, me, Some(s("10.9.0.0/24")), 0),
            Choice::Try(vec![s("10.244.1.0/24"), s("10.244.3.0/24")])
        );
    }

    #[test]
    fn free_subnets_start_at_a_random_point_and_run_out() {
        let me = "192.168.104.9".parse().unwrap();
        let starts: std::collections::BTreeSet<Subnet> = (0..3)
            .map(|r| match choose(&config(), &BTreeMap::new(), me, None, r) {
                Choice::Try(order) => order[0],
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(starts.len(), 3, "three random draws, three starting points");
        let full = BTreeMap::from([
            (s("10.244.1.0/24"), lease("192.168.104.2")),
            (s("10.244.2.0/24"), lease("192.168.104.3")),
            (s("10.244.3.0/24"), lease("192.168.104.4")),
        ]);
        assert_eq!(choose(&config(), &full, me, None, 0), Choice::Full);
    }
}
