//! Run a lab's `checks:`: ping with iputils' ping inside the source namespace, TCP
//! with sockets opened inside the namespaces (netlab listens itself when asked), and
//! bridge FDB contents over netlink.

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::process::Stdio;
use std::time::{Duration, Instant};

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

pub async fn run_all(topology: &Topology) -> Vec<Outcome> {
    let mut outcomes = Vec::new();
    for check in &topology.checks {
        let result = run(check).await;
        outcomes.push(Outcome {
            check: check.to_string(),
            passed: result.is_ok(),
            detail: result.err().map(|e| crate::error_text(&e)),
        });
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
/// by an exchange of bytes.
fn tcp(from: &Place, to: SocketAddr, listen: Option<(Place, SocketAddr)>) -> Result<()> {
    let token = format!("netlab-{}", std::process::id());
    let listener = match &listen {
        Some((place, on)) => {
            let on = *on;
            Some(netns::thread::in_one(place.to_netns(), move |_| {
                TcpListener::bind(on).map_err(|e| netns::Error::io(format!("listen on {on}"), e))
            })?)
        }
        None => None,
    };
    let server = listener.map(|listener| {
        let token = token.clone();
        std::thread::spawn(move || -> Result<()> {
            listener.set_nonblocking(true)?;
            let deadline = Instant::now() + TIMEOUT;
            let mut stream = loop {
                match listener.accept() {
                    Ok((stream, _)) => break stream,
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock && Instant::now() < deadline => {
                        std::thread::sleep(Duration::from_millis(10));
                    }
                    Err(e) => bail!("listener got no connection: {e}"),
                }
            };
            stream.set_nonblocking(false)?;
            stream.set_read_timeout(Some(TIMEOUT))?;
            let mut got = vec![0u8; token.len()];
            stream.read_exact(&mut got)?;
            stream.write_all(&got)?;
            Ok(())
        })
    });
    let client = netns::thread::in_one(from.to_netns(), move |_| {
        TcpStream::connect_timeout(&to, TIMEOUT).map_err(|e| netns::Error::io(format!("connect to {to}"), e))
    });
    let result = client.map_err(anyhow::Error::from).and_then(|mut stream| {
        if server.is_some() {
            stream.set_read_timeout(Some(TIMEOUT))?;
            stream.write_all(token.as_bytes())?;
            let mut echo = vec![0u8; token.len()];
            stream.read_exact(&mut echo).context("read the listener's echo")?;
            if echo != token.as_bytes() {
                bail!("the listener answered something else");
            }
        }
        Ok(())
    });
    if let Some(server) = server {
        let served = server.join().map_err(|_| anyhow::anyhow!("listener thread panicked"))?;
        result?;
        return served;
    }
    result
}

/// Send a datagram from `from` to `to` and wait for the echo of the listener netlab
/// opened in `listen`: proof that the datagram arrived, and the reply came back.
fn udp(from: &Place, to: SocketAddr, (place, on): (Place, SocketAddr)) -> Result<()> {
    let token = format!("netlab-{}", std::process::id());
    let listener = netns::thread::in_one(place.to_netns(), move |_| {
        UdpSocket::bind(on).map_err(|e| netns::Error::io(format!("listen on udp {on}"), e))
    })?;
    listener.set_read_timeout(Some(TIMEOUT))?;
    let server = std::thread::spawn(move || -> Result<()> {
        let mut buffer = [0u8; 64];
        let (length, sender) = listener.recv_from(&mut buffer).context("the listener got no datagram")?;
        listener.send_to(&buffer[..length], sender)?;
        Ok(())
    });
    let client = netns::thread::in_one(from.to_netns(), move |_| {
        let any = if to.is_ipv4() { "0.0.0.0:0" } else { "[::]:0" };
        UdpSocket::bind(any).map_err(|e| netns::Error::io("open a udp socket", e))
    })?;
    client.connect(to)?;
    // A few tries: the first datagram may wait for neighbour resolution.
    let tries = 3;
    client.set_read_timeout(Some(TIMEOUT / tries))?;
    let mut echo = [0u8; 64];
    let mut answered = None;
    for _ in 0..tries {
        client.send(token.as_bytes())?;
        if let Ok(length) = client.recv(&mut echo) {
            answered = Some(length);
            break;
        }
    }
    let served = server.join().map_err(|_| anyhow::anyhow!("listener thread panicked"))?;
    match answered {
        Some(length) if &echo[..length] == token.as_bytes() => served,
        Some(_) => bail!("the listener answered something else"),
        None => served.and(Err(anyhow::anyhow!("no answer from udp {to}"))),
    }
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
