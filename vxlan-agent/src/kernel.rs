//! The agent's side of the kernel, in the overlay's namespace: the VXLAN device,
//! the agent's own entries on it, changes to them, and notifications (misses, links
//! coming and going, entries removed).
//!
//! Plain netlink sockets rather than rtnetlink's connection: requests are batched
//! (thousands of entries per burst), and notifications are read straight off a
//! socket whose buffer overrun (ENOBUFS) must reach the agent, so it can resync.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::os::fd::OwnedFd;

use netns::blocking;
use netns::packet_core::{NetlinkPayload, NLM_F_CREATE, NLM_F_REPLACE};
use netns::packet_route::link::LinkAttribute;
use netns::packet_route::neighbour::{NeighbourAttribute, NeighbourFlags, NeighbourMessage};
use netns::packet_route::{AddressFamily, RouteNetlinkMessage};
use netns::{Netlink, Netns};
use tokio::io::unix::AsyncFd;

use netlab_store::endpoints::Mac;

use crate::reconcile::{Action, Installed, Slot};

/// The protocol the agent's neighbour entries carry (`proto 78` in `ip neigh`);
/// netlab's own static entries carry 77. FDB entries of a VXLAN device have no
/// protocol: the agent's are flagged externally learned (`extern_learn`) instead.
pub const PROTOCOL: u8 = 78;

const RTNLGRP_LINK: u32 = 1;
const RTNLGRP_NEIGH: u32 = 3;
/// Room for a burst of notifications (a 20,000-entry burst is 40,000 echoes).
pub const DEFAULT_EVENT_BUFFER: usize = 32 * 1024 * 1024;

/// What holds the device's name in the namespace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DeviceState {
    Missing,
    /// A link of another kind (its kind, if the kernel names one).
    NotVxlan(Option<String>),
    Vxlan(Device),
}

/// A namespace's identity (device and inode of its nsfs file): a namespace deleted
/// and made again under the same name has another.
pub type NamespaceId = (u64, u64);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Device {
    pub index: u32,
    /// IFLA_VXLAN_LOCAL: this host's VTEP address.
    pub local: Option<IpAddr>,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Event {
    /// The device has no neighbour entry for this address (L3MISS).
    L3Miss {
        index: u32,
        ip: IpAddr,
    },
    /// The device has no FDB entry for this MAC (L2MISS).
    L2Miss {
        index: u32,
        mac: Mac,
    },
    /// An entry on a device was deleted.
    Gone {
        index: u32,
        slot: Slot,
    },
    /// A link was created or changed.
    Link {
        index: u32,
        name: String,
    },
    LinkGone {
        index: u32,
    },
}

pub enum EventsError {
    /// The kernel dropped notifications (ENOBUFS): what the agent knows may be stale.
    Overrun,
    Failed(String),
}

/// What the kernel holds on the device: the agent's entries, and the slots taken by
/// someone else's permanent entries (never touched).
pub struct Observed {
    pub installed: Installed,
    pub foreign: BTreeSet<Slot>,
}

pub struct Kernel {
    requests: OwnedFd,
    events: AsyncFd<netlink_sys::Socket>,
    buffer: Vec<u8>,
    /// The namespace the sockets live in.
    pub namespace: NamespaceId,
}

/// The identity of the namespace at `path` (/run/netns/NAME, /proc/self/ns/net);
/// `None` when there is none.
pub fn namespace_id(path: &std::path::Path) -> Option<NamespaceId> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

impl Kernel {
    /// Sockets in `ns`, opened on a thread that enters it (sockets keep their
    /// namespace, so the runtime can use them anywhere).
    /// `event_buffer`: the notification socket's receive buffer, in bytes.
    pub async fn open(ns: Netns, event_buffer: usize) -> Result<Kernel, String> {
        let (requests, events, namespace) = tokio::task::spawn_blocking(move || {
            netns::thread::in_one(ns, move |_| {
                let requests = Netlink::open_socket_here()?;
                let events = Netlink::open_events_here(&[RTNLGRP_LINK, RTNLGRP_NEIGH], event_buffer)?;
                let namespace = namespace_id(std::path::Path::new("/proc/thread-self/ns/net"))
                    .ok_or_else(|| netns::Error::other("read /proc/thread-self/ns/net", "missing"))?;
                Ok((requests, events, namespace))
            })
        })
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?;
        // SAFETY: the socket owns its fd, which stays open and the same while the
        // AsyncFd owns the socket.
        let events = unsafe { AsyncFd::register_with_interest(events, tokio::io::Interest::READABLE) }
            .map_err(|e| format!("watch netlink socket: {}", std::io::Error::from(e)))?;
        Ok(Kernel { requests, events, buffer: vec![0; 64 * 1024], namespace })
    }

    /// What the link called `name` is.
    pub fn device(&self, name: &str) -> Result<DeviceState, String> {
        let links = blocking::links(&self.requests).map_err(|e| e.to_string())?;
        Ok(match links.into_iter().find(|link| link.name == name) {
            None => DeviceState::Missing,
            Some(link) => match link.vxlan {
                Some(vxlan) => DeviceState::Vxlan(Device { index: link.index, local: vxlan.local }),
                None => DeviceState::NotVxlan(link.kind),
            },
        })
    }

    pub fn observe(&self, index: u32) -> Result<Observed, String> {
        let mut installed = Installed::default();
        let mut foreign = BTreeSet::new();
        for entry in blocking::neighbours(&self.requests).map_err(|e| e.to_string())? {
            if entry.index != index || !entry.permanent {
                continue;
            }
            match (entry.protocol, entry.mac) {
                (PROTOCOL, Some(mac)) => {
                    installed.neighbours.insert(entry.ip, Mac::from_octets(mac));
                }
                _ => {
                    foreign.insert(Slot::Neighbour(entry.ip));
                }
            }
        }
        for entry in blocking::fdb(&self.requests).map_err(|e| e.to_string())? {
            if entry.index != index || !entry.own || !entry.permanent || entry.mac == [0; 6] {
                continue;
            }
            let mac = Mac::from_octets(entry.mac);
            match (entry.extern_learned, entry.dst) {
                (true, Some(dst)) => {
                    installed.fdb.insert(mac, dst);
                }
                _ => {
                    foreign.insert(Slot::Fdb(mac));
                }
            }
        }
        Ok(Observed { installed, foreign })
    }

    /// Carry out actions on the device; each one's result, in order (`Err(errno)`).
    pub fn apply(&self, index: u32, actions: &[Action]) -> Result<Vec<Result<(), i32>>, String> {
        let replace = NLM_F_CREATE | NLM_F_REPLACE;
        // Built a chunk at a time: 200,000 decoded messages at once would take more
        // memory than everything else the agent holds.
        let mut results = Vec::with_capacity(actions.len());
        for chunk in actions.chunks(1024) {
            let requests = chunk.iter().map(|action| request(index, action, replace)).collect();
            results.extend(blocking::batch(&self.requests, requests).map_err(|e| e.to_string())?);
        }
        Ok(results)
    }

    /// The next notifications (waits for at least one datagram, then takes what is
    /// queued, up to a bound so other work gets its turn).
    pub async fn events(&mut self) -> Result<Vec<Event>, EventsError> {
        let mut events = Vec::new();
        // One readiness, many reads: try_io clears it when the socket runs dry.
        let mut guard = self.events.readable().await.map_err(|e| EventsError::Failed(e.to_string()))?;
        for _ in 0..256 {
            let buffer = &mut self.buffer;
            match guard.try_io(|socket| socket.get_ref().recv(&mut &mut buffer[..], 0)) {
                Ok(Ok(length)) => {
                    // One notification per datagram: one that does not decode is skipped.
                    let messages = blocking::split(&self.buffer[..length], "read notifications").unwrap_or_else(|e| {
                        tracing::debug!("{e}");
                        Vec::new()
                    });
                    events.extend(messages.into_iter().filter_map(|m| match m.payload {
                        NetlinkPayload::InnerMessage(inner) => parse(inner),
                        _ => None,
                    }));
                }
                Ok(Err(e)) if e.raw_os_error() == Some(libc::ENOBUFS) => return Err(EventsError::Overrun),
                Ok(Err(e)) => return Err(EventsError::Failed(format!("read notifications: {e}"))),
                Err(_would_block) => break,
            }
        }
        Ok(events)
    }
}

/// The netlink request for one action on device `index`.
fn request(index: u32, action: &Action, replace: u16) -> (RouteNetlinkMessage, u16) {
    use netns::neighbour::message;
    match *action {
        Action::SetNeighbour(ip, mac) => {
            (RouteNetlinkMessage::NewNeighbour(message::neighbour(index, ip, mac.octets(), PROTOCOL)), replace)
        }
        Action::RemoveNeighbour(ip) => (RouteNetlinkMessage::DelNeighbour(message::neighbour_key(index, ip)), 0),
        Action::SetFdb(mac, vtep) => {
            (RouteNetlinkMessage::NewNeighbour(message::fdb(index, mac.octets(), vtep, true)), replace)
        }
        Action::RemoveFdb(mac) => (RouteNetlinkMessage::DelNeighbour(message::fdb_key(index, mac.octets())), 0),
    }
}

/// The address and MAC a neighbour message names.
fn fields(message: &NeighbourMessage) -> (Option<IpAddr>, Option<Mac>) {
    let mut ip = None;
    let mut mac = None;
    for attribute in &message.attributes {
        match attribute {
            NeighbourAttribute::Destination(a) => ip = netns::neighbour::ip_of(a),
            NeighbourAttribute::LinkLayerAddress(bytes) => {
                mac = <[u8; 6]>::try_from(bytes.as_slice()).ok().filter(|m| *m != [0; 6]).map(Mac::from_octets)
            }
            _ => {}
        }
    }
    (ip, mac)
}

fn parse(message: RouteNetlinkMessage) -> Option<Event> {
    match message {
        // A VXLAN device reports misses as RTM_GETNEIGH (AF_BRIDGE): an address
        // without MAC is an L3 miss, a MAC without address an L2 miss.
        RouteNetlinkMessage::GetNeighbour(message) => {
            let index = message.header.ifindex;
            match fields(&message) {
                (Some(ip), None) => Some(Event::L3Miss { index, ip }),
                (None, Some(mac)) => Some(Event::L2Miss { index, mac }),
                _ => None,
            }
        }
        RouteNetlinkMessage::DelNeighbour(message) => {
            let index = message.header.ifindex;
            let bridge = message.header.family == AddressFamily::Bridge;
            match fields(&message) {
                (_, Some(mac)) if bridge && message.header.flags.contains(NeighbourFlags::Own) => {
                    Some(Event::Gone { index, slot: Slot::Fdb(mac) })
                }
                (Some(ip), _) if !bridge => Some(Event::Gone { index, slot: Slot::Neighbour(ip) }),
                _ => None,
            }
        }
        RouteNetlinkMessage::NewLink(message) => {
            let name = message.attributes.iter().find_map(|a| match a {
                LinkAttribute::IfName(name) => Some(name.clone()),
                _ => None,
            })?;
            Some(Event::Link { index: message.header.index, name })
        }
        RouteNetlinkMessage::DelLink(message) => Some(Event::LinkGone { index: message.header.index }),
        _ => None,
    }
}
