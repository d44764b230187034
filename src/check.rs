//! Run a lab's `checks:`: ping with iputils' ping inside the source namespace, TCP
//! with sockets opened inside the namespaces (netlab listens itself when asked), and
//! bridge FDB contents over netlink.

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use serde::Serialize;

use crate::model::{Check, Endpoint, Place, Topology};

/// Budget of each check: long enough for a first ARP exchange, short enough to keep a
/// failing lab quick to diagnose.
const TIMEOUT: Duration = Duration::from_secs(3);

#[derive(Debug, Serialize)]
pub struct Outcome {
    pub check: String,
    pub passed: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// Run the checks one after the other, handing each outcome to `report` as soon as
/// it is known; every check has released what it opened (sockets, processes) by then.
pub async fn run_all(topology: &Topology, report: impl FnMut(&Outcome)) -> Vec<Outcome> {
    run_each(&topology.checks, run, report).await
}

/// The order of `run_all`, apart from what a check does: run one, report it, go on.
async fn run_each<'a, C: std::fmt::Display, F: std::future::Future<Output = Result<()>>>(
    checks: &'a [C],
    mut run: impl FnMut(&'a C) -> F,
    mut report: impl FnMut(&Outcome),
) -> Vec<Outcome> {
    let mut outcomes = Vec::new();
    for check in checks {
        let result = run(check).await;
        let outcome = Outcome {
            check: check.to_string(),
            passed: result.is_ok(),
            detail: result.err().map(|e| crate::error_text(&e)),
        };
        report(&outcome);
        outcomes.push(outcome);
    }
    outcomes
}

pub async fn run(check: &Check) -> Result<()> {
    match check {
        Check::Ping { from, to, .. } => ping(from, *to).await,
        Check::Tcp { from, to, listen } => {
            let (from, to, listen) = (from.clone(), *to, listen.clone());
            tokio::task::spawn_blocking(move || tcp(&from, to, listen)).await?
        }
        Check::Udp { from, to, listen } => {
            let (from, to, listen) = (from.clone(), *to, listen.clone());
            tokio::task::spawn_blocking(move || udp(&from, to, listen)).await?
        }
        Check::Fdb { bridge, learned } => fdb(bridge, learned).await,
        Check::Overlay { from, to, vxlan, vni, lower } => overlay(from, *to, vxlan, *vni, lower).await,
    }
}

async fn ping(from: &Place, to: IpAddr) -> Result<()> {
    let mut command = netns::process::command_in(&from.to_netns(), "ping")?;
    let family = if to.is_ipv4() { "-4" } else { "-6" };
    let deadline = TIMEOUT.as_secs().to_string();
    command.args([family, "-n", "-q", "-c", "1", "-W", "1", "-w", &deadline]).arg(to.to_string());
    command.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped());
    let output =
        tokio::task::spawn_blocking(move || command.output()).await?.context("run ping (install iputils-ping)")?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let reason = stderr.lines().next().filter(|l| !l.is_empty()).unwrap_or("no reply");
        bail!("{}", reason.to_lowercase());
    }
    Ok(())
}

/// Connect from `from` to `to`; with a listener, also prove the connection reached it
/// by an exchange of bytes. One thread does it all (the kernel completes the
/// handshake before accept), so the sockets close on every way out of here.
fn tcp(from: &Place, to: SocketAddr, listen: Option<(Place, SocketAddr)>) -> Result<()> {
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
        TcpStream::connect_timeout(&to, TIMEOUT).map_err(|e| netns::Error::io(format!("connect to {to}"), e))
    })?;
    let Some(listener) = listener else { return Ok(()) };
    if !readable_within(&listener, TIMEOUT)? {
        bail!("listener got no connection");
    }
    let (mut served, _) = listener.accept().context("accept the connection")?;
    served.set_read_timeout(Some(TIMEOUT))?;
    client.set_read_timeout(Some(TIMEOUT))?;
    let token = token();
    client.write_all(token.as_bytes())?;
    let mut got = vec![0u8; token.len()];
    served.read_exact(&mut got).context("the listener got no bytes")?;
    served.write_all(&got)?;
    let mut echo = vec![0u8; token.len()];
    client.read_exact(&mut echo).context("read the listener's echo")?;
    if echo != token.as_bytes() {
        bail!("the listener answered something else");
    }
    Ok(())
}

/// Send a datagram from `from` to `to` and wait for the echo of the listener netlab
/// opened in `listen`: proof that the datagram arrived, and the reply came back. One
/// thread holds both sockets, so the listener is closed when the check ends, pass or
/// fail, and the next check may listen on the same port.
fn udp(from: &Place, to: SocketAddr, (place, on): (Place, SocketAddr)) -> Result<()> {
    let listener = netns::thread::in_one(place.to_netns(), move |_| {
        UdpSocket::bind(on).map_err(|e| netns::Error::io(format!("listen on udp {on}"), e))
    })?;
    let client = netns::thread::in_one(from.to_netns(), move |_| {
        let any = if to.is_ipv4() { "0.0.0.0:0" } else { "[::]:0" };
        UdpSocket::bind(any).map_err(|e| netns::Error::io("open a udp socket", e))
    })?;
    client.connect(to).with_context(|| format!("send to udp {to}"))?;
    // A few tries: the first datagram may wait for neighbour resolution.
    let tries = 3;
    listener.set_read_timeout(Some(TIMEOUT / tries))?;
    client.set_read_timeout(Some(TIMEOUT / tries))?;
    let token = token();
    let (mut buffer, mut echo) = ([0u8; 64], [0u8; 64]);
    let mut heard = false;
    for _ in 0..tries {
        client.send(token.as_bytes()).with_context(|| format!("send to udp {to}"))?;
        match listener.recv_from(&mut buffer) {
            Ok((length, sender)) => {
                heard = true;
                listener.send_to(&buffer[..length], sender).context("the listener's echo")?;
            }
            Err(e) if timed_out(&e) => continue,
            Err(e) => return Err(e).context("the listener"),
        }
        match client.recv(&mut echo) {
            Ok(length) if &echo[..length] == token.as_bytes() => return Ok(()),
            Ok(_) => bail!("the listener answered something else"),
            Err(e) if timed_out(&e) => continue,
            Err(e) => return Err(e).with_context(|| format!("receive from udp {to}")),
        }
    }
    if heard {
        bail!("no answer from udp {to}: the listener's echo did not come back");
    }
    bail!("no answer from udp {to}: the listener got no datagram")
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
    let ready = nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(millis)).context("wait for a connection")?;
    Ok(ready > 0)
}

/// The bytes a check sends and expects back.
fn token() -> String {
    format!("netlab-{}", std::process::id())
}

/// A ping that must have gone through the VXLAN device (of the right VNI) and out of
/// its lower device on the underlay: both devices' packet counters must grow.
async fn overlay(from: &Place, to: IpAddr, vxlan: &Endpoint, vni: u32, lower: &Endpoint) -> Result<()> {
    let counted = |end: Endpoint| async move {
        let netlink = netns::Netlink::open(end.place.to_netns()).await?;
        netlink.link_by_name(end.name.as_str()).await?.with_context(|| format!("no interface {end}"))
    };
    let device = counted(vxlan.clone()).await?;
    let actual = device.vxlan.as_ref().map(|v| v.vni).with_context(|| format!("{vxlan} is not a vxlan device"))?;
    if actual != vni {
        bail!("{vxlan} has vni {actual}, not {vni}");
    }
    let underlay_before = counted(lower.clone()).await?.tx_packets.unwrap_or(0);
    ping(from, to).await?;
    let device_after = counted(vxlan.clone()).await?;
    let underlay_after = counted(lower.clone()).await?.tx_packets.unwrap_or(0);
    if device_after.tx_packets <= device.tx_packets {
        bail!("nothing went out through {vxlan}");
    }
    if underlay_after <= underlay_before {
        bail!("nothing went out through the underlay device {lower}");
    }
    Ok(())
}

async fn fdb(bridge: &Endpoint, learned: &[Endpoint]) -> Result<()> {
    let netlink = netns::Netlink::open(bridge.place.to_netns()).await?;
    let bridge_index =
        netlink.link_by_name(bridge.name.as_str()).await?.with_context(|| format!("no bridge {bridge}"))?.index;
    let entries =
        netns::thread::in_one(bridge.place.to_netns(), |_| netns::blocking::fdb(&netns::Netlink::open_socket_here()?))?;
    let mut missing = Vec::new();
    for end in learned {
        let here = netns::Netlink::open(end.place.to_netns()).await?;
        let link = here.link_by_name(end.name.as_str()).await?.with_context(|| format!("no interface {end}"))?;
        let mac = link.mac.with_context(|| format!("{end} has no MAC address"))?;
        if !entries.iter().any(|e| e.mac == mac && e.bridge == Some(bridge_index)) {
            missing.push(format!("{end} ({})", crate::model::Mac::from_octets(mac)));
        }
    }
    if !missing.is_empty() {
        bail!("not in the fdb of {bridge}: {}", missing.join(", "));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;

    use super::*;

    #[tokio::test]
    async fn each_outcome_is_reported_before_the_next_check_runs() {
        let log = RefCell::new(Vec::new());
        let outcomes = run_each(
            &["first", "second"],
            |check| {
                log.borrow_mut().push(format!("run {check}"));
                let failing = *check == "second";
                async move {
                    if failing {
                        bail!("no reply");
                    }
                    Ok(())
                }
            },
            |outcome| log.borrow_mut().push(format!("report {} {}", outcome.check, outcome.passed)),
        )
        .await;
        assert_eq!(log.into_inner(), ["run first", "report first true", "run second", "report second false"]);
        assert_eq!(outcomes[1].detail.as_deref(), Some("no reply"));
    }
}
