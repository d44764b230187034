//! `netlab capture`: the frames of one interface of a lab, read from a packet socket
//! opened inside the interface's namespace (no tcpdump needed there), handed one by
//! one to an output: a pcap stream (`pcap`) or a line per frame (`summary`).

pub mod pcap;
pub mod summary;

use std::os::fd::{AsFd, BorrowedFd};
use std::time::{Duration, Instant};

use netns::namespace::Presence;
use netns::packet::{PacketSocket, Received};

use crate::kernel_place::KernelPlace;
use crate::model::{Endpoint, LabName, Place};
use crate::ownership::NotOurs;

/// tcpdump's default snapshot length: whole frames, GSO super-frames of a veth included.
pub const SNAPLEN: usize = 262_144;

#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    #[error("no namespace {namespace}: lab {lab} is not applied here (netlab apply)")]
    NotApplied { lab: LabName, namespace: String },
    #[error("capture on {endpoint}")]
    NotOurs {
        endpoint: String,
        #[source]
        source: NotOurs,
    },
    #[error("no interface {endpoint} (the namespace has {available})")]
    NoInterface { endpoint: String, available: String },
    #[error(transparent)]
    Kernel(#[from] netns::Error),
    #[error("read a frame from {endpoint}")]
    Read {
        endpoint: String,
        #[source]
        source: std::io::Error,
    },
    #[error("write the capture")]
    Write(#[source] std::io::Error),
}

/// Where a capture takes its frames from: the endpoint's namespace, proved to be the
/// lab's (its `lo` carries the lab's mark; the host has none), and the interface
/// there. The socket is bound before this returns, so no later frame is missed.
pub fn open(lab: &LabName, endpoint: &Endpoint) -> Result<PacketSocket, CaptureError> {
    if let Place::Node(node) = &endpoint.place {
        if netns::namespace::presence(node.as_str()) != Presence::Mounted {
            return Err(CaptureError::NotApplied { lab: lab.clone(), namespace: node.to_string() });
        }
    }
    let (lab, endpoint) = (lab.clone(), endpoint.clone());
    let found = netns::thread::in_one(endpoint.place.to_netns(), move |_| {
        let links = netns::blocking::links(&netns::Netlink::open_socket_here()?)?;
        if let Place::Node(node) = &endpoint.place {
            let alias = links.iter().find(|l| l.name == "lo").and_then(|l| l.alias.as_deref());
            if let Err(source) = crate::ownership::check_namespace(&lab, node.as_str(), alias) {
                return Ok(Err(CaptureError::NotOurs { endpoint: endpoint.to_string(), source }));
            }
        }
        let Some(link) = links.iter().find(|l| l.name == endpoint.name.as_str()) else {
            let mut names: Vec<&str> = links.iter().map(|l| l.name.as_str()).collect();
            names.sort_unstable();
            return Ok(Err(CaptureError::NoInterface { endpoint: endpoint.to_string(), available: names.join(", ") }));
        };
        Ok(Ok(PacketSocket::open_here(link.index, &endpoint.to_string())?))
    })?;
    found
}

/// When to stop, besides a signal: after `count` frames, after `timeout`.
#[derive(Clone, Copy, Debug, Default)]
pub struct Limits {
    pub count: Option<u64>,
    pub timeout: Option<Duration>,
}

/// Why a capture ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum End {
    Count,
    Timeout,
    /// The stop descriptor became readable or hung up (Ctrl-C, SIGTERM).
    Stopped,
    /// The reader of the output went away (`| head`, wireshark closed).
    OutputClosed,
}

/// Where frames go, each complete (and flushed) before the next is read.
pub trait Sink {
    fn frame(&mut self, received: &Received, data: &[u8]) -> std::io::Result<()>;
}

/// Read frames from `socket` into `sink` until a limit is reached, `stop` becomes
/// readable or hangs up, or `output` (a pipe the sink writes to) loses its reader.
/// After a stop or the timeout, the frames the kernel had already queued (stamped
/// before that moment) are still written: a capture holds everything up to its end.
/// Returns the number of frames written and why it ended.
pub fn record(
    socket: &PacketSocket,
    endpoint: &Endpoint,
    limits: Limits,
    stop: BorrowedFd<'_>,
    output: Option<BorrowedFd<'_>>,
    sink: &mut dyn Sink,
) -> Result<(u64, End), CaptureError> {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    let deadline = limits.timeout.map(|t| Instant::now() + t);
    let mut buffer = vec![0u8; SNAPLEN];
    let mut written = 0u64;
    // Once set: the moment the capture ends (frames stamped later are not written).
    let mut ending: Option<(Duration, End)> = None;
    let read_error = |source| CaptureError::Read { endpoint: endpoint.to_string(), source };
    loop {
        if limits.count.is_some_and(|count| written >= count) {
            return Ok((written, End::Count));
        }
        let timeout = match (ending, deadline) {
            (Some(_), _) => PollTimeout::ZERO,
            (None, None) => PollTimeout::NONE,
            (None, Some(deadline)) => match deadline.checked_duration_since(Instant::now()) {
                None => {
                    ending = Some((wall_clock(), End::Timeout));
                    continue;
                }
                Some(left) => PollTimeout::try_from(left).unwrap_or(PollTimeout::MAX),
            },
        };
        // Asking for no event on the output still reports POLLERR/POLLHUP on it.
        let mut fds = vec![PollFd::new(socket.as_fd(), PollFlags::POLLIN), PollFd::new(stop, PollFlags::POLLIN)];
        if let Some(output) = output {
            fds.push(PollFd::new(output, PollFlags::empty()));
        }
        match poll(&mut fds, timeout) {
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(read_error(e.into())),
        }
        let events = |i: usize| fds[i].revents().unwrap_or(PollFlags::empty());
        if output.is_some() && events(2).intersects(PollFlags::POLLERR | PollFlags::POLLHUP) {
            return Ok((written, End::OutputClosed));
        }
        if ending.is_none() && !events(1).is_empty() {
            ending = Some((wall_clock(), End::Stopped));
            continue;
        }
        if events(0).is_empty() {
            match ending {
                Some((_, end)) => return Ok((written, end)),
                None => continue,
            }
        }
        let received = match socket.receive(&mut buffer) {
            Ok(received) => received,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(read_error(e)),
        };
        if let Some((cutoff, end)) = ending {
            if received.timestamp > cutoff {
                return Ok((written, end));
            }
        }
        sink.frame(&received, &buffer[..received.captured]).map_err(CaptureError::Write)?;
        written += 1;
    }
}

/// The clock of the kernel's frame timestamps.
fn wall_clock() -> Duration {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default()
}

/// One line per frame (see `summary`), for a person at a terminal.
pub struct Lines<W: std::io::Write> {
    output: W,
    vxlan_ports: Vec<u16>,
}

impl<W: std::io::Write> Lines<W> {
    /// `vxlan_ports`: UDP ports decoded as VXLAN besides 4789 (the lab's own).
    pub fn new(output: W, vxlan_ports: Vec<u16>) -> Lines<W> {
        Lines { output, vxlan_ports }
    }
}

impl<W: std::io::Write> Sink for Lines<W> {
    fn frame(&mut self, received: &Received, data: &[u8]) -> std::io::Result<()> {
        let line = summary::line(received.timestamp, received.direction, received.length, data, &self.vxlan_ports);
        writeln!(self.output, "{line}")?;
        self.output.flush()
    }
}

/// The UDP ports of the lab's VXLAN devices.
pub fn vxlan_ports(topology: &crate::model::Topology) -> Vec<u16> {
    let mut ports: Vec<u16> = topology
        .namespaces
        .values()
        .flat_map(|namespace| namespace.links.values())
        .filter_map(|link| match &link.kind {
            crate::model::LinkKind::Vxlan(vxlan) => Some(vxlan.port),
            _ => None,
        })
        .collect();
    ports.sort_unstable();
    ports.dedup();
    ports
}
