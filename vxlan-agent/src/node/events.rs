//! Kernel notifications that can undo the daemon's work (a link, neighbour, FDB entry
//! or route deleted; a link made or changed): each burst wakes a reconciliation, and an
//! overrun (ENOBUFS: notifications lost) forces one. Additions are the daemon's own
//! echoes and wake nothing.

use netns::blocking;
use netns::packet_core::NetlinkPayload;
use netns::packet_route::RouteNetlinkMessage;
use netns::Netlink;
use tokio::io::unix::AsyncFd;

const RTNLGRP_LINK: u32 = 1;
const RTNLGRP_NEIGH: u32 = 3;
const RTNLGRP_IPV4_ROUTE: u32 = 7;
/// Room for the echoes of a large burst of the daemon's own changes.
const BUFFER: usize = 8 * 1024 * 1024;

pub struct Events {
    socket: AsyncFd<netlink_sys::Socket>,
    buffer: Vec<u8>,
}

/// What a burst of notifications means.
#[derive(Debug, PartialEq, Eq)]
pub enum Burst {
    /// Something the daemon made may be gone or changed.
    Undone,
    /// Only additions: nothing to do.
    Quiet,
    /// Notifications were lost.
    Overrun,
}

impl Events {
    /// Subscribed in the namespace the daemon runs in.
    pub fn open() -> Result<Events, String> {
        let socket = Netlink::open_events_here(&[RTNLGRP_LINK, RTNLGRP_NEIGH, RTNLGRP_IPV4_ROUTE], BUFFER)
            .map_err(|e| e.to_string())?;
        // SAFETY: the socket owns its fd, which stays open and the same while the
        // AsyncFd owns the socket.
        let socket = unsafe { AsyncFd::register_with_interest(socket, tokio::io::Interest::READABLE) }
            .map_err(|e| format!("watch netlink socket: {}", std::io::Error::from(e)))?;
        Ok(Events { socket, buffer: vec![0; 64 * 1024] })
    }

    /// Waits for notifications, then reads what is queued.
    pub async fn next(&mut self) -> Result<Burst, String> {
        let mut burst = Burst::Quiet;
        let mut guard = self.socket.readable().await.map_err(|e| format!("read notifications: {e}"))?;
        for _ in 0..1024 {
            let buffer = &mut self.buffer;
            match guard.try_io(|socket| socket.get_ref().recv(&mut &mut buffer[..], 0)) {
                Ok(Ok(length)) => {
                    let messages = blocking::split(&self.buffer[..length], "read notifications").unwrap_or_default();
                    if messages
                        .into_iter()
                        .any(|m| matches!(m.payload, NetlinkPayload::InnerMessage(inner) if undoes(&inner)))
                    {
                        burst = Burst::Undone;
                    }
                }
                Ok(Err(e)) if e.raw_os_error() == Some(libc::ENOBUFS) => return Ok(Burst::Overrun),
                Ok(Err(e)) => return Err(format!("read notifications: {e}")),
                Err(_would_block) => break,
            }
        }
        Ok(burst)
    }
}

fn undoes(message: &RouteNetlinkMessage) -> bool {
    matches!(
        message,
        RouteNetlinkMessage::DelNeighbour(_)
            | RouteNetlinkMessage::DelRoute(_)
            | RouteNetlinkMessage::DelLink(_)
            | RouteNetlinkMessage::NewLink(_)
    )
}
