//! What the kernel makes or removes by itself, which the plan must neither delete nor
//! restore: addresses it gives links, and per-link sysctl keys that go with their link.

use ipnetwork::IpNetwork;

use super::{ObservedKind, ObservedLink};
use crate::model::{Mac, SysctlKey};

/// The link a per-link key belongs to: `net.ipv4.conf.reth1.proxy_arp` is reth1's
/// (`all` and `default` are not links).
pub fn link_of(key: &SysctlKey) -> Option<&str> {
    let parts: Vec<&str> = key.as_str().split('.').collect();
    match parts.as_slice() {
        ["net", "ipv4" | "ipv6", "conf" | "neigh", dev, _, ..] if !matches!(*dev, "all" | "default") => Some(dev),
        _ => None,
    }
}

/// The ranges the kernel fills by itself: IPv6 link-local and loopback.
pub fn kernel_range(address: &IpNetwork) -> bool {
    match address {
        IpNetwork::V4(v4) => v4.ip().is_loopback(),
        IpNetwork::V6(v6) => v6.ip().is_loopback() || (v6.ip().segments()[0] & 0xffc0) == 0xfe80,
    }
}

/// Addresses the kernel gives a link itself: `lo`'s 127.0.0.1/8 and ::1/128, and the
/// EUI-64 link-local address derived from the link's MAC (addr_gen_mode 0).
pub fn kernels_own(address: &IpNetwork, observed: &ObservedLink) -> bool {
    let loopback = ["127.0.0.1/8", "::1/128"].iter().any(|own| own.parse() == Ok(*address));
    if observed.kind == ObservedKind::Loopback {
        return loopback;
    }
    observed.mac.is_some_and(|mac| *address == eui64_link_local(mac))
}

fn eui64_link_local(mac: Mac) -> IpNetwork {
    let m = mac.octets();
    let ip = std::net::Ipv6Addr::new(
        0xfe80,
        0,
        0,
        0,
        u16::from_be_bytes([m[0] ^ 0x02, m[1]]),
        u16::from_be_bytes([m[2], 0xff]),
        u16::from_be_bytes([0xfe, m[3]]),
        u16::from_be_bytes([m[4], m[5]]),
    );
    IpNetwork::new(ip.into(), 64).expect("64 is a valid prefix length")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_link_keys_name_their_link() {
        let link = |key: &str| link_of(&key.parse().unwrap()).map(str::to_string);
        assert_eq!(link("net.ipv4.conf.reth1.proxy_arp").as_deref(), Some("reth1"));
        assert_eq!(link("net.ipv6.neigh.eth0.base_reachable_time_ms").as_deref(), Some("eth0"));
        assert_eq!(link("net.ipv4.conf.all.forwarding"), None);
        assert_eq!(link("net.ipv4.ip_forward"), None);
    }

    #[test]
    fn the_eui64_link_local_address_follows_the_mac() {
        let mac: Mac = "02:42:c0:a8:00:02".parse().unwrap();
        assert_eq!(eui64_link_local(mac), "fe80::42:c0ff:fea8:2/64".parse::<IpNetwork>().unwrap());
    }
}
