//! CHECK's view of the kernel: what the host and the container's namespace hold
//! (plain netlink dumps, read on one thread per namespace), and the pure comparison
//! with what ADD recorded. Routes are only required to be there: a later plugin of
//! the chain may add others.

use std::net::IpAddr;
use std::os::fd::OwnedFd;

use ipnetwork::IpNetwork;
use netns::address::AddressState;
use netns::blocking;
use netns::link::LinkState;
use netns::route::RouteState;
use netns::{Netlink, Result};

use crate::record::Record;

/// The links, addresses and routes of one namespace.
#[derive(Clone, Debug, Default)]
pub struct Namespace {
    pub links: Vec<LinkState>,
    pub addresses: Vec<AddressState>,
    pub routes: Vec<RouteState>,
}

#[derive(Clone, Debug, Default)]
pub struct Observed {
    pub host: Namespace,
    pub container: Namespace,
}

fn dump() -> Result<Namespace> {
    let socket = Netlink::open_socket_here()?;
    Ok(Namespace {
        links: blocking::links(&socket)?,
        addresses: blocking::addresses(&socket)?,
        routes: blocking::routes(&socket)?,
    })
}

/// Read the host (the calling thread's namespace) and the container's namespace.
pub fn observe(container_ns: &OwnedFd) -> Result<Observed> {
    let host = dump()?;
    let container = std::thread::scope(|scope| {
        scope
            .spawn(|| {
                nix::sched::setns(container_ns, nix::sched::CloneFlags::CLONE_NEWNET)
                    .map_err(|e| netns::Error::nix("enter the container's namespace", e))?;
                dump()
            })
            .join()
            .map_err(|_| netns::Error::other("read the container's namespace", "thread panicked"))?
    })?;
    Ok(Observed { host, container })
}

/// Everything that differs from the record, in words; empty when all is in place.
pub fn problems(record: &Record, observed: &Observed) -> Vec<String> {
    let mut problems = Vec::new();
    let by_name = |ns: &Namespace, name: &str| ns.links.iter().find(|l| l.name == name).cloned();
    let has_address = |ns: &Namespace, index: u32, network: IpNetwork| {
        ns.addresses.iter().any(|a| a.index == index && a.network == network)
    };
    let ifname = record.id.ifname.as_str();
    match by_name(&observed.container, ifname) {
        None => problems.push(format!("interface {ifname} is missing from {}", record.netns.display())),
        Some(link) => {
            if !link.up {
                problems.push(format!("interface {ifname} is down"));
            }
            if link.mtu != record.mtu {
                problems.push(format!("interface {ifname} has MTU {}, not {}", link.mtu, record.mtu));
            }
            if !has_address(&observed.container, link.index, IpNetwork::V4(record.address)) {
                problems.push(format!("interface {ifname} lacks its address {}", record.address));
            }
            for destination in record.routes() {
                let present = observed.container.routes.iter().any(|r| {
                    r.destination == IpNetwork::V4(destination)
                        && r.gateway == Some(IpAddr::V4(record.gateway))
                        && r.oif == Some(link.index)
                });
                if !present {
                    problems.push(format!("route to {destination} via {} on {ifname} is missing", record.gateway));
                }
            }
        }
    }
    let bridge = by_name(&observed.host, record.bridge.as_str());
    match &bridge {
        None => problems.push(format!("bridge {} is missing", record.bridge)),
        Some(bridge) => {
            let gateway = IpNetwork::new(IpAddr::V4(record.gateway), record.address.prefix()).expect("valid length");
            if !has_address(&observed.host, bridge.index, gateway) {
                problems.push(format!("bridge {} lacks the gateway address {gateway}", record.bridge));
            }
        }
    }
    match by_name(&observed.host, record.host_veth.as_str()) {
        None => problems.push(format!("host end {} is missing", record.host_veth)),
        Some(host_end) => {
            if bridge.is_some_and(|bridge| host_end.master != Some(bridge.index)) {
                problems.push(format!("host end {} is not a port of {}", record.host_veth, record.bridge));
            }
            if !host_end.up {
                problems.push(format!("host end {} is down", record.host_veth));
            }
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link(index: u32, name: &str, master: Option<u32>) -> LinkState {
        LinkState { index, name: name.into(), mtu: 1450, up: true, master, ..LinkState::default() }
    }

    fn healthy(record: &Record) -> Observed {
        let route = |destination: &str| RouteState {
            destination: destination.parse().unwrap(),
            gateway: Some("10.244.1.1".parse().unwrap()),
            oif: Some(2),
            protocol: 3,
        };
        Observed {
            host: Namespace {
                links: vec![link(5, "cni0", None), link(6, record.host_veth.as_str(), Some(5))],
                addresses: vec![AddressState { index: 5, network: "10.244.1.1/24".parse().unwrap() }],
                routes: vec![],
            },
            container: Namespace {
                links: vec![link(1, "lo", None), link(2, "eth0", None)],
                addresses: vec![AddressState { index: 2, network: "10.244.1.2/24".parse().unwrap() }],
                routes: vec![route("10.244.0.0/16"), route("0.0.0.0/0"), route("192.168.9.0/24")],
            },
        }
    }

    #[test]
    fn as_add_left_it_there_is_nothing_to_say() {
        let record = crate::record::sample();
        assert_eq!(problems(&record, &healthy(&record)), Vec::<String>::new());
    }

    #[test]
    fn each_difference_is_named() {
        let record = crate::record::sample();
        let mut observed = healthy(&record);
        observed.container.addresses.clear();
        observed.container.routes.remove(1);
        observed.host.links[1].master = None;
        assert_eq!(
            problems(&record, &observed),
            vec![
                "interface eth0 lacks its address 10.244.1.2/24".to_string(),
                "route to 0.0.0.0/0 via 10.244.1.1 on eth0 is missing".to_string(),
                format!("host end {} is not a port of cni0", record.host_veth),
            ]
        );
        observed.container.links.pop();
        observed.host.links.clear();
        assert_eq!(
            problems(&record, &observed),
            vec![
                "interface eth0 is missing from /run/netns/c1".to_string(),
                "bridge cni0 is missing".to_string(),
                format!("host end {} is missing", record.host_veth),
            ]
        );
    }
}
