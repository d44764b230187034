//! ADD's and DEL's changes to the kernel, over one netlink socket per namespace: the
//! bridge with the gateway address, the veth whose peer is made directly in the
//! container's namespace, the container's address and routes; and the removal of the
//! host end (which takes the container end with it, wherever it is).

use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use ipnetwork::{IpNetwork, Ipv4Network};
use netns::link::{LinkChange, LinkRef, LinkState, NewLink};
use netns::name::LinkName;
use netns::route::RouteRequest;
use netns::{Error, Netlink, Netns, Result};

use crate::invocation;

/// `proto boot`, what `ip route add` gives a route.
const ROUTE_PROTOCOL: u8 = 3;

/// What ADD asks of the kernel.
pub struct Wiring<'a> {
    pub bridge: &'a LinkName,
    /// The gateway's address with the subnet's length.
    pub bridge_address: Ipv4Network,
    pub host_veth: &'a LinkName,
    pub ifname: &'a LinkName,
    pub mtu: u32,
    pub address: Ipv4Network,
    pub gateway: Ipv4Addr,
    pub routes: &'a [Ipv4Network],
}

/// The MACs of what ADD made, for the result.
pub struct Wired {
    pub bridge: Option<[u8; 6]>,
    pub host: Option<[u8; 6]>,
    pub container: Option<[u8; 6]>,
}

/// The container's namespace at CNI_NETNS, opened once: it must be a network namespace,
/// and not the plugin's own.
pub fn open_container_namespace(path: &Path) -> Result<OwnedFd, invocation::Error> {
    let invalid = |why: String| invocation::Error::Invalid { variable: "CNI_NETNS", why };
    let text = |e: std::io::Error| format!("{}: {}", path.display(), crate::error::io_text(&e));
    let file = std::fs::File::open(path).map_err(|e| invalid(text(e)))?;
    let fs = nix::sys::statfs::fstatfs(file.as_fd()).map_err(|e| invalid(format!("{}: {e}", path.display())))?;
    if fs.filesystem_type() != nix::sys::statfs::NSFS_MAGIC {
        return Err(invalid(format!("{} is not a network namespace", path.display())));
    }
    let theirs = file.metadata().map_err(|e| invalid(text(e)))?;
    let ours = std::fs::metadata("/proc/self/ns/net").map_err(|e| invalid(format!("/proc/self/ns/net: {e}")))?;
    if (theirs.dev(), theirs.ino()) == (ours.dev(), ours.ino()) {
        return Err(invalid(format!("{} is the plugin's own namespace", path.display())));
    }
    Ok(OwnedFd::from(file))
}

/// A netlink socket in the namespace `fd` refers to. The calling thread enters it and
/// comes back: call only while the process has no other work in flight (before the
/// runtime starts); it saves a thread per ADD.
fn socket_in(fd: &OwnedFd) -> Result<OwnedFd> {
    use nix::sched::{setns, CloneFlags};
    let home = std::fs::File::open("/proc/thread-self/ns/net").map_err(|e| Error::io("open our own namespace", e))?;
    setns(fd, CloneFlags::CLONE_NEWNET).map_err(|e| Error::nix("enter the container's namespace", e))?;
    let socket = Netlink::open_socket_here();
    setns(home, CloneFlags::CLONE_NEWNET).map_err(|e| Error::nix("come back from the container's namespace", e))?;
    socket
}

/// A MAC for the bridge, derived from its name and gateway: set explicitly, the
/// bridge keeps it when ports come and go (the result stays true).
fn bridge_mac(name: &LinkName, gateway: Ipv4Addr) -> [u8; 6] {
    let hash = crate::names::fnv1a(&[name.as_str().as_bytes(), &[0], &gateway.octets()]).to_be_bytes();
    // 0a:58: locally administered, unicast.
    [0x0a, 0x58, hash[0], hash[1], hash[2], hash[3]]
}

/// The bridge, up, with the gateway address: made when missing.
pub async fn ensure_bridge(host: &Netlink, name: &LinkName, address: Ipv4Network, mtu: u32) -> Result<LinkState> {
    let bridge = match host.link_by_name(name.as_str()).await? {
        Some(bridge) => bridge,
        None => {
            let link = NewLink {
                name: name.to_string(),
                mtu: Some(mtu),
                mac: Some(bridge_mac(name, address.ip())),
                up: true,
                ..NewLink::default()
            };
            match host.create_bridge(&link).await {
                // Another ADD made it meanwhile.
                Err(e) if e.code() == Some(libc::EEXIST) => {}
                other => other?,
            }
            host.link_by_name(name.as_str())
                .await?
                .ok_or_else(|| Error::other(format!("create bridge {name}"), "gone right after creation"))?
        }
    };
    if bridge.kind.as_deref() != Some("bridge") {
        return Err(Error::other(
            format!("use bridge {name}"),
            format!("{name} exists and is a {} device, not a bridge", bridge.kind.as_deref().unwrap_or("plain")),
        ));
    }
    if !bridge.up {
        host.set_link(LinkRef::Index(bridge.index), &LinkChange { up: Some(true), ..LinkChange::default() }).await?;
    }
    match host.add_address(bridge.index, name.as_str(), IpNetwork::V4(address)).await {
        Err(e) if e.code() == Some(libc::EEXIST) => Ok(bridge),
        other => other.map(|()| bridge),
    }
}

/// The veth (host end on the bridge, container end in `container_ns`), then the
/// container's address and routes.
pub async fn attach(host: &Netlink, container: &Netlink, container_ns: &OwnedFd, wiring: &Wiring<'_>) -> Result<Wired> {
    let bridge = ensure_bridge(host, wiring.bridge, wiring.bridge_address, wiring.mtu).await?;
    let local = NewLink {
        name: wiring.host_veth.to_string(),
        mtu: Some(wiring.mtu),
        master: Some(bridge.index),
        up: true,
        ..NewLink::default()
    };
    // The kernel refuses to bring the peer up in the creating request.
    let peer = NewLink { name: wiring.ifname.to_string(), mtu: Some(wiring.mtu), ..NewLink::default() };
    host.create_veth(&local, &peer, container_ns.as_raw_fd()).await?;
    let (host_end, container_end) = futures::join!(host.link_by_name(wiring.host_veth.as_str()), async {
        let end = container
            .link_by_name(wiring.ifname.as_str())
            .await?
            .ok_or_else(|| Error::other(format!("set up {}", wiring.ifname), "missing right after creation"))?;
        configure_container(container, &end, wiring).await.map(|()| end)
    });
    Ok(Wired { bridge: bridge.mac, host: host_end?.and_then(|l| l.mac), container: container_end?.mac })
}

async fn configure_container(container: &Netlink, end: &LinkState, wiring: &Wiring<'_>) -> Result<()> {
    container.set_link(LinkRef::Index(end.index), &LinkChange { up: Some(true), ..LinkChange::default() }).await?;
    container.add_address(end.index, wiring.ifname.as_str(), IpNetwork::V4(wiring.address)).await?;
    for destination in wiring.routes {
        let route = RouteRequest {
            destination: IpNetwork::V4(*destination),
            gateway: Some(IpAddr::V4(wiring.gateway)),
            oif: Some(end.index),
            protocol: ROUTE_PROTOCOL,
            onlink: false,
        };
        container.add_route(&route).await?;
    }
    Ok(())
}

/// Delete the veth whose host end is `name`; whether there was one.
pub async fn remove_veth(host: &Netlink, name: &LinkName) -> Result<bool> {
    let Some(link) = host.link_by_name(name.as_str()).await? else { return Ok(false) };
    if link.kind.as_deref() != Some("veth") {
        // Not what ADD made: left alone.
        return Ok(false);
    }
    match host.delete_link(link.index, name.as_str()).await {
        Err(e) if e.is_not_found() => Ok(false),
        other => other.map(|()| true),
    }
}

/// net.ipv4.ip_forward on in the calling thread's namespace (the gateway routes the
/// containers' traffic), written only when off.
pub fn enable_forwarding() -> Result<()> {
    if netns::sysctl::read("net.ipv4.ip_forward")?.as_deref() != Some("1") {
        netns::sysctl::write("net.ipv4.ip_forward", "1")?;
    }
    Ok(())
}

/// Run `work` on a current-thread runtime, with rtnetlink on a socket in the host
/// namespace (the calling thread's).
pub fn run_host<T, F: std::future::Future<Output = Result<T>>>(work: impl FnOnce(Netlink) -> F) -> Result<T> {
    let host = Netlink::open_socket_here()?;
    runtime()?.block_on(async move { work(Netlink::from_socket(Netns::Host, host)).await })
}

/// Run `work` with sockets in the host and in the container's namespace (`path` names
/// it in errors).
pub fn run_both<T, F: std::future::Future<Output = Result<T>>>(
    path: &Path,
    container_ns: &OwnedFd,
    work: impl FnOnce(Netlink, Netlink) -> F,
) -> Result<T> {
    let host = Netlink::open_socket_here()?;
    let container = socket_in(container_ns)?;
    runtime()?.block_on(async move {
        let host = Netlink::from_socket(Netns::Host, host);
        work(host, Netlink::from_socket(Netns::Path(path.to_path_buf()), container)).await
    })
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .map_err(|e| Error::io("start the netlink runtime", e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bridge_macs_are_unicast_local_and_stable() {
        let name: LinkName = "cni0".parse().unwrap();
        let mac = bridge_mac(&name, "10.244.1.1".parse().unwrap());
        assert_eq!(mac[0] & 1, 0, "unicast");
        assert_eq!(mac[0] & 2, 2, "locally administered");
        assert_eq!(mac, bridge_mac(&name, "10.244.1.1".parse().unwrap()));
        assert_ne!(mac, bridge_mac(&name, "10.244.2.1".parse().unwrap()));
    }
}
