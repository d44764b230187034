//! Which address a new attachment gets, as a pure choice: a host address of the node's
//! subnet that is not the network, the gateway (`.1`), the broadcast address, or in
//! use; the search starts after the last one given, so a released address is not
//! handed out again at once.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;

use netlab_store::leases::Subnet;

/// The gateway's address in a subnet: its first host address (flannel's FLANNEL_SUBNET).
pub fn gateway(subnet: &Subnet) -> Ipv4Addr {
    subnet.nth(1)
}

/// How many addresses containers can get: all but network, gateway and broadcast.
pub fn capacity(subnet: &Subnet) -> u32 {
    match subnet.length() {
        // A /0 holds 2^32 addresses: count in 64 bits.
        0..=30 => u32::try_from((1u64 << (32 - subnet.length())) - 3).unwrap_or(u32::MAX),
        _ => 0,
    }
}

/// Whether containers may get `address` in `subnet`.
pub fn assignable(subnet: &Subnet, address: Ipv4Addr) -> bool {
    let offset = u32::from(address).wrapping_sub(u32::from(subnet.network()));
    subnet.contains(address) && offset >= 2 && u64::from(offset) < u64::from(capacity(subnet)) + 2
}

/// The first free address after `last` (wrapping around), or `None` when every one is used.
pub fn choose(subnet: &Subnet, used: &BTreeSet<Ipv4Addr>, last: Option<Ipv4Addr>) -> Option<Ipv4Addr> {
    let size = u64::from(capacity(subnet));
    let start = match last.filter(|last| assignable(subnet, *last)) {
        Some(last) => u64::from(u32::from(last) - u32::from(subnet.network()) - 2) + 1,
        None => 0,
    };
    (0..size).map(|step| subnet.nth(2 + ((start + step) % size) as u32)).find(|candidate| !used.contains(candidate))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subnet(text: &str) -> Subnet {
        text.parse().unwrap()
    }

    fn ip(text: &str) -> Ipv4Addr {
        text.parse().unwrap()
    }

    #[test]
    fn skips_network_gateway_and_broadcast() {
        let s = subnet("10.244.1.0/24");
        assert_eq!(capacity(&s), 253);
        assert_eq!(gateway(&s), ip("10.244.1.1"));
        assert_eq!(choose(&s, &BTreeSet::new(), None), Some(ip("10.244.1.2")));
        for (address, ok) in
            [("10.244.1.0", false), ("10.244.1.1", false), ("10.244.1.2", true), ("10.244.1.254", true)]
        {
            assert_eq!(assignable(&s, ip(address)), ok, "{address}");
        }
        assert!(!assignable(&s, ip("10.244.1.255")));
        assert!(!assignable(&s, ip("10.244.2.5")));
        // After the last address comes the first again.
        assert_eq!(choose(&s, &BTreeSet::new(), Some(ip("10.244.1.254"))), Some(ip("10.244.1.2")));
    }

    #[test]
    fn starts_after_the_last_and_skips_used() {
        let s = subnet("10.244.1.0/24");
        let used: BTreeSet<_> = [ip("10.244.1.2"), ip("10.244.1.6")].into();
        assert_eq!(choose(&s, &used, Some(ip("10.244.1.5"))), Some(ip("10.244.1.7")));
        assert_eq!(choose(&s, &used, None), Some(ip("10.244.1.3")));
        // A last address from another subnet is ignored.
        assert_eq!(choose(&s, &used, Some(ip("10.9.9.9"))), Some(ip("10.244.1.3")));
    }

    #[test]
    fn full_and_tiny_subnets() {
        let s = subnet("10.244.1.0/29");
        assert_eq!(capacity(&s), 5);
        let used: BTreeSet<_> = (2..=6).map(|n| s.nth(n)).collect();
        assert_eq!(choose(&s, &used, None), None);
        for tiny in ["10.0.0.0/31", "10.0.0.1/32"] {
            assert_eq!(capacity(&subnet(tiny)), 0);
            assert_eq!(choose(&subnet(tiny), &BTreeSet::new(), None), None);
        }
        assert_eq!(capacity(&subnet("10.0.0.0/30")), 1);
        assert_eq!(capacity(&subnet("0.0.0.0/0")), u32::MAX - 2);
    }
}
