//! The subnet file a CNI plugin reads (flannel's `/run/flannel/subnet.env`):
//! FLANNEL_NETWORK, FLANNEL_SUBNET (the node's first host address with the subnet's
//! length), FLANNEL_MTU and FLANNEL_IPMASQ, one `NAME=value` per line.

use std::net::Ipv4Addr;

use netlab_store::leases::Subnet;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SubnetEnv {
    pub network: Subnet,
    pub subnet: Subnet,
    pub mtu: u32,
    pub ip_masq: bool,
}

impl SubnetEnv {
    pub fn render(&self) -> String {
        format!(
            "FLANNEL_NETWORK={}\nFLANNEL_SUBNET={}/{}\nFLANNEL_MTU={}\nFLANNEL_IPMASQ={}\n",
            self.network,
            self.subnet.nth(1),
            self.subnet.length(),
            self.mtu,
            self.ip_masq
        )
    }

    /// A subnet file's content; `None` when a line is missing or unreadable.
    pub fn parse(text: &str) -> Option<SubnetEnv> {
        let field =
            |name: &str| text.lines().find_map(|line| line.trim().strip_prefix(name)?.strip_prefix('=').map(str::trim));
        let network = field("FLANNEL_NETWORK")?.parse().ok()?;
        let (gateway, length) = field("FLANNEL_SUBNET")?.split_once('/')?;
        let gateway: Ipv4Addr = gateway.parse().ok()?;
        let length: u8 = length.parse().ok().filter(|l| *l <= 32)?;
        let network_of = Ipv4Addr::from(u32::from(gateway) & u32::MAX.checked_shl(32 - u32::from(length)).unwrap_or(0));
        let subnet = Subnet::new(network_of, length).ok()?;
        let mtu = field("FLANNEL_MTU")?.parse().ok()?;
        let ip_masq = field("FLANNEL_IPMASQ")?.parse().ok()?;
        Some(SubnetEnv { network, subnet, mtu, ip_masq })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flannels_format_round_trips() {
        let env = SubnetEnv {
            network: "10.244.0.0/16".parse().unwrap(),
            subnet: "10.244.5.0/24".parse().unwrap(),
            mtu: 1450,
            ip_masq: true,
        };
        let text = env.render();
        assert_eq!(
            text,
            "FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=10.244.5.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n"
        );
        assert_eq!(SubnetEnv::parse(&text), Some(env));
        assert_eq!(SubnetEnv::parse("FLANNEL_NETWORK=10.244.0.0/16\n"), None);
        assert_eq!(SubnetEnv::parse(&text.replace("1450", "big")), None);
    }
}
