//! A packet socket (AF_PACKET, SOCK_RAW, every protocol) bound to one interface: the
//! frames it sends and receives, whole, with the kernel's timestamps. Like a netlink
//! socket it belongs to the namespace it was opened in, so it is opened on a thread
//! inside that namespace (`thread::in_one`) and may then be read from any thread.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::time::Duration;

use crate::{Error, Result};

/// Receive buffer asked for: a burst of full-size frames fits while the reader writes.
const RECEIVE_BUFFER: libc::c_int = 4 << 20;

/// One interface's frames, in both directions.
pub struct PacketSocket {
    fd: OwnedFd,
}

/// Whether the interface sent the frame or received it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    In,
    Out,
}

/// What one read returned: `length` is the frame's size on the wire, of which the
/// first `captured` bytes are in the buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Received {
    pub length: usize,
    pub captured: usize,
    /// Since the Unix epoch.
    pub timestamp: Duration,
    pub direction: Direction,
}

/// The kernel's counters since the last call (PACKET_STATISTICS resets them).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Statistics {
    pub received: u32,
    pub dropped: u32,
}

impl PacketSocket {
    /// Open a socket on interface `index` of the calling thread's namespace.
    pub fn open_here(index: u32, name: &str) -> Result<PacketSocket> {
        let step = || format!("open a packet socket on {name}");
        // Protocol 0 at creation: the socket sees nothing until it is bound to the
        // interface, so no frame of another interface slips in before the bind.
        // SAFETY: plain socket(2) call; the returned fd is checked and owned below.
        let raw = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
        if raw < 0 {
            return Err(Error::io(step(), std::io::Error::last_os_error()));
        }
        // SAFETY: `raw` is a fresh descriptor that nothing else owns.
        let socket = PacketSocket { fd: unsafe { OwnedFd::from_raw_fd(raw) } };
        socket.set_option(libc::SO_TIMESTAMPNS, 1).map_err(|e| Error::io(step(), e))?;
        // Forcing past rmem_max needs CAP_NET_ADMIN; the plain size is the fallback.
        if socket.set_option(libc::SO_RCVBUFFORCE, RECEIVE_BUFFER).is_err() {
            socket.set_option(libc::SO_RCVBUF, RECEIVE_BUFFER).map_err(|e| Error::io(step(), e))?;
        }
        let index = libc::c_int::try_from(index).map_err(|_| Error::other(step(), "interface index out of range"))?;
        // SAFETY: an all-zero sockaddr_ll is a valid value; the fields are set below.
        let mut address: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        address.sll_family = libc::AF_PACKET as u16;
        address.sll_protocol = (libc::ETH_P_ALL as u16).to_be();
        address.sll_ifindex = index;
        // SAFETY: bind with a pointer to a sockaddr_ll and its exact size.
        let bound = unsafe {
            libc::bind(
                socket.fd.as_raw_fd(),
                (&address as *const libc::sockaddr_ll).cast(),
                std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        };
        if bound != 0 {
            return Err(Error::io(step(), std::io::Error::last_os_error()));
        }
        Ok(socket)
    }

    fn set_option(&self, option: libc::c_int, value: libc::c_int) -> std::io::Result<()> {
        // SAFETY: setsockopt on a socket we own, with a pointer to a c_int and its size.
        let done = unsafe {
            libc::setsockopt(
                self.fd.as_raw_fd(),
                libc::SOL_SOCKET,
                option,
                (&value as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if done == 0 {
            Ok(())
        } else {
            Err(std::io::Error::last_os_error())
        }
    }

    /// Read the next frame into `buffer` (blocks until one comes: poll first). A frame
    /// longer than the buffer is cut, and `length` still says how long it was.
    pub fn receive(&self, buffer: &mut [u8]) -> std::io::Result<Received> {
        // u64s keep the control buffer aligned for cmsghdr.
        let mut control = [0u64; 16];
        let mut iov = libc::iovec { iov_base: buffer.as_mut_ptr().cast(), iov_len: buffer.len() };
        // SAFETY: all-zero sockaddr_ll and msghdr are valid values; pointers set below.
        let mut from: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        let mut message: libc::msghdr = unsafe { std::mem::zeroed() };
        message.msg_name = (&mut from as *mut libc::sockaddr_ll).cast();
        message.msg_namelen = std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t;
        message.msg_iov = &mut iov;
        message.msg_iovlen = 1;
        message.msg_control = control.as_mut_ptr().cast();
        message.msg_controllen = std::mem::size_of_val(&control);
        // MSG_TRUNC: a packet socket then returns the frame's full length.
        // SAFETY: every pointer in `message` points at a live buffer of the stated size.
        let length = unsafe { libc::recvmsg(self.fd.as_raw_fd(), &mut message, libc::MSG_TRUNC) };
        if length < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let length = length as usize;
        let mut timestamp = None;
        // SAFETY: the CMSG macros walk the control buffer the kernel filled, within
        // msg_controllen; the timespec is read unaligned from the cmsg's data.
        unsafe {
            let mut header = libc::CMSG_FIRSTHDR(&message);
            while !header.is_null() {
                if (*header).cmsg_level == libc::SOL_SOCKET && (*header).cmsg_type == libc::SCM_TIMESTAMPNS {
                    let time: libc::timespec = std::ptr::read_unaligned(libc::CMSG_DATA(header).cast());
                    timestamp = Some(Duration::new(time.tv_sec as u64, time.tv_nsec as u32));
                }
                header = libc::CMSG_NXTHDR(&message, header);
            }
        }
        // The kernel stamps every frame once SO_TIMESTAMPNS is on; the clock is the
        // fallback should one come without.
        let timestamp = timestamp
            .unwrap_or_else(|| std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default());
        let direction = if from.sll_pkttype == libc::PACKET_OUTGOING { Direction::Out } else { Direction::In };
        Ok(Received { length, captured: length.min(buffer.len()), timestamp, direction })
    }

    /// Frames the kernel queued and dropped (receive buffer full) since the last call.
    pub fn statistics(&self) -> std::io::Result<Statistics> {
        let mut stats = libc::tpacket_stats { tp_packets: 0, tp_drops: 0 };
        let mut size = std::mem::size_of::<libc::tpacket_stats>() as libc::socklen_t;
        // SAFETY: getsockopt into a tpacket_stats with its size.
        let done = unsafe {
            libc::getsockopt(
                self.fd.as_raw_fd(),
                libc::SOL_PACKET,
                libc::PACKET_STATISTICS,
                (&mut stats as *mut libc::tpacket_stats).cast(),
                &mut size,
            )
        };
        if done != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(Statistics { received: stats.tp_packets, dropped: stats.tp_drops })
    }
}

impl AsFd for PacketSocket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}
