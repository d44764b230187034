//! Requests on a plain, blocking netlink socket, from a thread inside a namespace.
//!
//! Why not rtnetlink here: netlink-proto gives every connection 72 KiB of buffers and
//! decodes a whole dump into its queue ahead of the consumer (a thousand links with
//! all their attributes are over 10 MB). Observing a thousand namespaces, or bringing
//! up `lo` in each as it is created, would hold all of that at once. Here each reply
//! is converted as it arrives, in a 32 KiB buffer.

use std::os::fd::{AsRawFd, OwnedFd};

use rtnetlink::packet_core::{
    NetlinkBuffer, NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_DUMP, NLM_F_REQUEST,
};
use rtnetlink::packet_route::address::AddressMessage;
use rtnetlink::packet_route::link::{LinkAttribute, LinkExtentMask, LinkMessage};
use rtnetlink::packet_route::neighbour::NeighbourMessage;
use rtnetlink::packet_route::nsid::{NsidAttribute, NsidMessage};
use rtnetlink::packet_route::route::RouteMessage;
use rtnetlink::packet_route::AddressFamily;
use rtnetlink::packet_route::RouteNetlinkMessage;

use crate::address::AddressState;
use crate::link::{set_message, LinkChange, LinkRef, LinkState};
use crate::route::RouteState;
use crate::{Error, Result};

/// The kernel fills a dump reply up to the largest buffer it has been given, at most
/// 32 KiB.
const BUFFER: usize = 32 * 1024;

/// RTM_SETLINK, waiting for the kernel's acknowledgement.
pub fn set_link(socket: &OwnedFd, target: LinkRef<'_>, change: &LinkChange) -> Result<()> {
    let step = format!("set link {target}");
    let message = RouteNetlinkMessage::SetLink(set_message(&target, change));
    exchange(socket, message, NLM_F_REQUEST | NLM_F_ACK, &step, |_| {})
}

/// Every link of the socket's namespace (without statistics).
pub fn links(socket: &OwnedFd) -> Result<Vec<LinkState>> {
    let mut request = LinkMessage::default();
    request.attributes.push(LinkAttribute::ExtMask(vec![LinkExtentMask::SkipStats]));
    let mut links = Vec::new();
    exchange(socket, RouteNetlinkMessage::GetLink(request), NLM_F_REQUEST | NLM_F_DUMP, "list links", |reply| {
        if let RouteNetlinkMessage::NewLink(message) = reply {
            links.push(crate::link::parse(&message));
        }
    })?;
    Ok(links)
}

pub fn addresses(socket: &OwnedFd) -> Result<Vec<AddressState>> {
    let mut addresses = Vec::new();
    let request = RouteNetlinkMessage::GetAddress(AddressMessage::default());
    exchange(socket, request, NLM_F_REQUEST | NLM_F_DUMP, "list addresses", |reply| {
        if let RouteNetlinkMessage::NewAddress(message) = reply {
            addresses.extend(crate::address::parse(&message));
        }
    })?;
    Ok(addresses)
}

/// Routes of the main table, every family.
pub fn routes(socket: &OwnedFd) -> Result<Vec<RouteState>> {
    let mut routes = Vec::new();
    let request = RouteNetlinkMessage::GetRoute(RouteMessage::default());
    exchange(socket, request, NLM_F_REQUEST | NLM_F_DUMP, "list routes", |reply| {
        if let RouteNetlinkMessage::NewRoute(message) = reply {
            routes.extend(crate::route::parse(&message));
        }
    })?;
    Ok(routes)
}

/// Neighbour entries of every family (ARP and NDP).
pub fn neighbours(socket: &OwnedFd) -> Result<Vec<crate::neighbour::NeighbourEntry>> {
    let mut entries = Vec::new();
    let request = RouteNetlinkMessage::GetNeighbour(NeighbourMessage::default());
    exchange(socket, request, NLM_F_REQUEST | NLM_F_DUMP, "list neighbours", |reply| {
        if let RouteNetlinkMessage::NewNeighbour(message) = reply {
            if message.header.family != AddressFamily::Bridge {
                entries.extend(crate::neighbour::parse_neighbour(&message));
            }
        }
    })?;
    Ok(entries)
}

/// Forwarding database entries (bridges' and VXLAN devices').
pub fn fdb(socket: &OwnedFd) -> Result<Vec<crate::neighbour::FdbEntry>> {
    let mut entries = Vec::new();
    let mut message = NeighbourMessage::default();
    message.header.family = AddressFamily::Bridge;
    exchange(socket, RouteNetlinkMessage::GetNeighbour(message), NLM_F_REQUEST | NLM_F_DUMP, "list fdb", |reply| {
        if let RouteNetlinkMessage::NewNeighbour(message) = reply {
            entries.extend(crate::neighbour::parse_fdb(&message));
        }
    })?;
    Ok(entries)
}

/// The id the socket's namespace gives the namespace `other` refers to (RTM_GETNSID
/// with NETNSA_FD), as IFLA_LINK_NETNSID reports it; `None` when it has given none.
/// Only reads: the kernel assigns no id here.
pub fn nsid(socket: &OwnedFd, other: &OwnedFd) -> Result<Option<i32>> {
    let mut request = NsidMessage::default();
    request.attributes.push(NsidAttribute::Fd(other.as_raw_fd() as u32));
    let mut id = None;
    exchange(socket, RouteNetlinkMessage::GetNsId(request), NLM_F_REQUEST | NLM_F_ACK, "get nsid", |reply| {
        if let RouteNetlinkMessage::NewNsId(message) = reply {
            for attribute in message.attributes {
                if let NsidAttribute::Id(found) = attribute {
                    id = Some(found).filter(|found| *found >= 0);
                }
            }
        }
    })?;
    Ok(id)
}

/// How many requests go to the kernel in one send: their acknowledgements must fit
/// the socket's receive buffer before they are read.
const BATCH: usize = 256;

/// Send many requests (each acknowledged) and return each one's result, in order:
/// `Err(errno)` for those the kernel refused. Requests go in batches of `BATCH`
/// messages per send, which is what makes installing thousands of entries cheap.
pub fn batch(socket: &OwnedFd, requests: Vec<(RouteNetlinkMessage, u16)>) -> Result<Vec<std::result::Result<(), i32>>> {
    let step = "send batch";
    let mut results = Vec::with_capacity(requests.len());
    let mut buffer = vec![0u8; BUFFER];
    let mut requests = requests.into_iter().peekable();
    while requests.peek().is_some() {
        let first = results.len() as u32 + 1;
        let mut outgoing = Vec::new();
        let mut sent_here = 0;
        for (offset, (request, flags)) in requests.by_ref().take(BATCH).enumerate() {
            sent_here += 1;
            let mut header = NetlinkHeader::default();
            header.flags = flags | NLM_F_REQUEST | NLM_F_ACK;
            header.sequence_number = first + offset as u32;
            let mut message = NetlinkMessage::new(header, NetlinkPayload::from(request));
            message.finalize();
            let start = outgoing.len();
            outgoing.resize(start + message.buffer_len(), 0);
            message.serialize(&mut outgoing[start..]);
        }
        // SAFETY: send and recv on a socket we own, within the buffers' lengths.
        let sent = unsafe { libc::send(socket.as_raw_fd(), outgoing.as_ptr().cast(), outgoing.len(), 0) };
        if sent < 0 {
            return Err(Error::io(step, std::io::Error::last_os_error()));
        }
        let mut answers: Vec<Option<std::result::Result<(), i32>>> = vec![None; sent_here];
        let mut missing = sent_here;
        while missing > 0 {
            let received = unsafe { libc::recv(socket.as_raw_fd(), buffer.as_mut_ptr().cast(), buffer.len(), 0) };
            if received < 0 {
                return Err(Error::io(step, std::io::Error::last_os_error()));
            }
            for reply in split(&buffer[..received as usize], step)? {
                let Some(slot) = reply.header.sequence_number.checked_sub(first).map(|i| i as usize) else { continue };
                if let (Some(answer @ None), NetlinkPayload::Error(error)) = (answers.get_mut(slot), reply.payload) {
                    *answer = Some(error.code.map_or(Ok(()), |code| Err(-code.get())));
                    missing -= 1;
                }
            }
        }
        results.extend(answers.into_iter().map(|a| a.expect("every request answered")));
    }
    Ok(results)
}

/// The messages of one datagram from the kernel.
pub fn split(mut rest: &[u8], step: &str) -> Result<Vec<NetlinkMessage<RouteNetlinkMessage>>> {
    let mut messages = Vec::new();
    while !rest.is_empty() {
        let length = NetlinkBuffer::new_checked(rest)
            .map_err(|e| Error::other(step, format!("undecodable reply: {e}")))?
            .length() as usize;
        messages.push(
            NetlinkMessage::<RouteNetlinkMessage>::deserialize(&rest[..length])
                .map_err(|e| Error::other(step, format!("undecodable reply: {e}")))?,
        );
        rest = &rest[length.next_multiple_of(4).min(rest.len())..];
    }
    Ok(messages)
}

/// Send one request and hand each reply to `each` until the kernel's acknowledgement
/// (or the end of a dump).
pub(crate) fn exchange(
    socket: &OwnedFd,
    request: RouteNetlinkMessage,
    flags: u16,
    step: &str,
    mut each: impl FnMut(RouteNetlinkMessage),
) -> Result<()> {
    const SEQUENCE: u32 = 1;
    let mut header = NetlinkHeader::default();
    header.flags = flags;
    header.sequence_number = SEQUENCE;
    let mut message = NetlinkMessage::new(header, NetlinkPayload::from(request));
    message.finalize();
    let mut buffer = vec![0u8; message.buffer_len().max(BUFFER)];
    message.serialize(&mut buffer[..message.buffer_len()]);
    // SAFETY: send and recv on a socket we own, within the buffer's length.
    let sent = unsafe { libc::send(socket.as_raw_fd(), buffer.as_ptr().cast(), message.buffer_len(), 0) };
    if sent < 0 {
        return Err(Error::io(step, std::io::Error::last_os_error()));
    }
    loop {
        let received = unsafe { libc::recv(socket.as_raw_fd(), buffer.as_mut_ptr().cast(), buffer.len(), 0) };
        if received < 0 {
            return Err(Error::io(step, std::io::Error::last_os_error()));
        }
        for reply in split(&buffer[..received as usize], step)? {
            if reply.header.sequence_number != SEQUENCE {
                continue;
            }
            match reply.payload {
                NetlinkPayload::Done(_) => return Ok(()),
                NetlinkPayload::Error(error) => {
                    return match error.code {
                        Some(code) => Err(Error::errno(step, code.get())),
                        None => Ok(()),
                    }
                }
                NetlinkPayload::InnerMessage(inner) => each(inner),
                _ => {}
            }
        }
    }
}
