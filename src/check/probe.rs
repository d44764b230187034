//! What each kind of check does: ping with iputils' ping inside the source namespace,
//! TCP and UDP with sockets opened inside the namespaces (netlab listens itself when
//! asked), bridge FDB contents and device counters over netlink. `budget` is how long
//! one check may take.

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::process::Stdio;
use std::time::Duration;

use super::{failed, CheckError, Result, Step};
use crate::kernel_place::KernelPlace;
use crate::model::{Check, Endpoint, Place};

/// Every kind but `pingall`, which is many pings (see `pingall`).
pub async fn run(check: &Check, budget: Duration) -> Result<()> {
    match check {
        Check::Ping { from, to, .. } => ping(from, *to, budget).await,
        Check::Tcp { from, to, listen } => {
            let (from, to, listen) = (from.clone(), *to, listen.clone());
            tokio::task::spawn_blocking(move || tcp(&from, to, listen, budget)).await?
        }
        Check::Udp { from, to, listen } => {
            let (from, to, listen) = (from.clone(), *to, listen.clone());
            tokio::task::spawn_blocking(move || udp(&from, to, listen, budget)).await?
        }
        Check::Fdb { bridge, learned } => fdb(bridge, learned).await,
        Check::Overlay { from, to, vxlan, vni, lower } => overlay(from, *to, vxlan, *vni, lower, budget).await,
        Check::Pingall { .. } => Err(CheckError::Internal("a pingall is run by check::pingall")),
    }
}

pub async fn ping(from: &Place, to: IpAddr, budget: Duration) -> Result<()> {
    let mut command = netns::process::command_in(&from.to_netns(), "ping")?;
    let family = if to.is_ipv4() { "-4" } else { "-6" };
    // ping's deadline is in whole seconds.
    let deadline = (budget.as_secs_f64().ceil() as u64).max(1).to_string();
    command.args([family, "-n", "-q", "-c", "1", "-W", "1", "-w", &deadline]).arg(to.to_string());
    command.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped());
    let output = tokio::task::spawn_blocking(move || command.output())
        .await?
        .step(|| "run ping (install iputils-ping)".into())?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let reason = stderr.lines().next().filter(|l| !l.is_empty()).unwrap_or("no reply");
        return failed(reason.to_lowercase());
    }
    Ok(())
}

/// Connect from `from` to `to`; with a listener, also prove the connection reached it
/// by an exchange of bytes. One thread does it all (the kernel completes the
/// handshake before accept), so the sockets close on every way out of here.
fn tcp(from: &Place, to: SocketAddr, listen: Option<(Place, SocketAddr)>, budget: Duration) -> Result<()> {
    let listener = match &listen {
        Some((place, on)) => {
            let on = *on;
            Some(netns::thread::in_one(place.to_netns(), move |_| {
                TcpListener::bind(on).map_err(|e| netns::Error::io(format!("listen on {on}"), e))
            })?)
        }
        None => None,
    };
    let mut client = netns::thread::in_one(from.to_netns(), move |_| {
        TcpStream::connect_timeout(&to, budget).map_err(|e| netns::Error::io(format!("connect to {to}"), e))
    })?;
    let Some(listener) = listener else { return Ok(()) };
    if !readable_within(&listener, budget)? {
        return failed("listener got no connection");
    }
    let (mut served, _) = listener.accept().step(|| "accept the connection".into())?;
    served.set_read_timeout(Some(budget)).step(|| "set a timeout".into())?;
    client.set_read_timeout(Some(budget)).step(|| "set a timeout".into())?;
    let token = token();
    client.write_all(token.as_bytes()).step(|| format!("send to {to}"))?;
    let mut got = vec![0u8; token.len()];
    served.read_exact(&mut got).step(|| "the listener got no bytes".into())?;
    served.write_all(&got).step(|| "the listener's echo".into())?;
    let mut echo = vec![0u8; token.len()];
    client.read_exact(&mut echo).step(|| "read the listener's echo".into())?;
    if echo != token.as_bytes() {
        return failed("the listener answered something else");
    }
    Ok(())
}

/// Send a datagram from `from` to `to` and wait for the echo of the listener netlab
/// opened in `listen`: proof that the datagram arrived, and the reply came back. One
/// thread holds both sockets, so the listener is closed when the check ends, pass or
/// fail, and the next check may listen on the same port.
fn udp(from: &Place, to: SocketAddr, (place, on): (Place, SocketAddr), budget: Duration) -> Result<()> {
    let listener = netns::thread::in_one(place.to_netns(), move |_| {
        UdpSocket::bind(on).map_err(|e| netns::Error::io(format!("listen on udp {on}"), e))
    })?;
    let client = netns::thread::in_one(from.to_netns(), move |_| {
        let any = if to.is_ipv4() { "0.0.0.0:0" } else { "[::]:0" };
        UdpSocket::bind(any).map_err(|e| netns::Error::io("open a udp socket", e))
    })?;
    client.connect(to).step(|| format!("send to udp {to}"))?;
    // A few tries: the first datagram may wait for neighbour resolution.
    let tries = 3;
    listener.set_read_timeout(Some(budget / tries)).step(|| "set a timeout".into())?;
    client.set_read_timeout(Some(budget / tries)).step(|| "set a timeout".into())?;
    let token = token();
    let (mut buffer, mut echo) = ([0u8; 64], [0u8; 64]);
    let mut heard = false;
    for _ in 0..tries {
        client.send(token.as_bytes()).step(|| format!("send to udp {to}"))?;
        match listener.recv_from(&mut buffer) {
            Ok((length, sender)) => {
                heard = true;
                listener.send_to(&buffer[..length], sender).step(|| "the listener's echo".into())?;
            }
            Err(e) if timed_out(&e) => continue,
            Err(e) => return Err(e).step(|| "the listener".into()),
        }
        match client.recv(&mut echo) {
            Ok(length) if &echo[..length] == token.as_bytes() => return Ok(()),
            Ok(_) => return failed("the listener answered something else"),
            Err(e) if timed_out(&e) => continue,
            Err(e) => return Err(e).step(|| format!("receive from udp {to}")),
        }
    }
    if heard {
        return failed(format!("no answer from udp {to}: the listener's echo did not come back"));
    }
    failed(format!("no answer from udp {to}: the listener got no datagram"))
}

/// What a socket read with a timeout returns when the time is up.
fn timed_out(error: &std::io::Error) -> bool {
    matches!(error.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut)
}

/// Whether a connection is waiting on `listener` within `limit`.
fn readable_within(listener: &TcpListener, limit: Duration) -> Result<bool> {
    use std::os::fd::AsFd;
    let mut fds = [nix::poll::PollFd::new(listener.as_fd(), nix::poll::PollFlags::POLLIN)];
    let millis = u16::try_from(limit.as_millis()).unwrap_or(u16::MAX);
    let ready = nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(millis))
        .map_err(|e| CheckError::Io { step: "wait for a connection".into(), source: e.into() })?;
    Ok(ready > 0)
}

/// The bytes a check sends and expects back.
fn token() -> String {
    format!("netlab-{}", std::process::id())
}

/// A ping that must have gone through the VXLAN device (of the right VNI) and out of
/// its lower device on the underlay: both devices' packet counters must grow.
async fn overlay(
    from: &Place,
    to: IpAddr,
    vxlan: &Endpoint,
    vni: u32,
    lower: &Endpoint,
    budget: Duration,
) -> Result<()> {
    let counted = |end: Endpoint| async move {
        let netlink = netns::Netlink::open(end.place.to_netns()).await?;
        netlink.link_by_name(end.name.as_str()).await?.ok_or_else(|| CheckError::Failed(format!("no interface {end}")))
    };
    let device = counted(vxlan.clone()).await?;
    let Some(actual) = device.vxlan.as_ref().map(|v| v.vni) else {
        return failed(format!("{vxlan} is not a vxlan device"));
    };
    if actual != vni {
        return failed(format!("{vxlan} has vni {actual}, not {vni}"));
    }
    let underlay_before = counted(lower.clone()).await?.tx_packets.unwrap_or(0);
    ping(from, to, budget).await?;
    let device_after = counted(vxlan.clone()).await?;
    let underlay_after = counted(lower.clone()).await?.tx_packets.unwrap_or(0);
    if device_after.tx_packets <= device.tx_packets {
        return failed(format!("nothing went out through {vxlan}"));
    }
    if underlay_after <= underlay_before {
        return failed(format!("nothing went out through the underlay device {lower}"));
    }
    Ok(())
}

async fn fdb(bridge: &Endpoint, learned: &[Endpoint]) -> Result<()> {
    let netlink = netns::Netlink::open(bridge.place.to_netns()).await?;
    let Some(bridge_link) = netlink.link_by_name(bridge.name.as_str()).await? else {
        return failed(format!("no bridge {bridge}"));
    };
    let bridge_index = bridge_link.index;
    let entries =
        netns::thread::in_one(bridge.place.to_netns(), |_| netns::blocking::fdb(&netns::Netlink::open_socket_here()?))?;
    let mut missing = Vec::new();
    for end in learned {
        let here = netns::Netlink::open(end.place.to_netns()).await?;
        let Some(link) = here.link_by_name(end.name.as_str()).await? else {
            return failed(format!("no interface {end}"));
        };
        let Some(mac) = link.mac else { return failed(format!("{end} has no MAC address")) };
        if !entries.iter().any(|e| e.mac == mac && e.bridge == Some(bridge_index)) {
            missing.push(format!("{end} ({})", crate::model::Mac::from_octets(mac)));
        }
    }
    if !missing.is_empty() {
        return failed(format!("not in the fdb of {bridge}: {}", missing.join(", ")));
    }
    Ok(())
}
