//! One rtnetlink connection per namespace. A netlink socket belongs to the namespace
//! it was opened in, so it is opened on a thread inside that namespace and then
//! handed to the runtime; requests on it are pipelined by rtnetlink.

use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd, OwnedFd};

use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr, TokioSocket};
use rtnetlink::Handle;

use crate::namespace::Netns;
use crate::{Error, Result};

/// A connection to the kernel's routing netlink in one namespace.
#[derive(Clone)]
pub struct Netlink {
    ns: Netns,
    handle: Handle,
}

impl Netlink {
    /// Open a socket in the calling thread's namespace (called inside `thread::in_each`
    /// or `namespace::create_many`).
    pub fn open_socket_here() -> Result<OwnedFd> {
        let step = "open netlink socket";
        let mut socket = Socket::new(NETLINK_ROUTE).map_err(|e| Error::io(step, e))?;
        // As netlink-proto does for the sockets it opens itself.
        socket.bind_auto().map_err(|e| Error::io(step, e))?;
        socket.connect(&SocketAddr::new(0, 0)).map_err(|e| Error::io(step, e))?;
        // SAFETY: the fd was just created by `Socket::new` and ownership moves here.
        Ok(unsafe { OwnedFd::from_raw_fd(socket.into_raw_fd()) })
    }

    /// A non-blocking socket subscribed to multicast groups (RTNLGRP_*) in the calling
    /// thread's namespace. Its receive buffer is `receive_buffer` bytes, forced past
    /// the system limit (we run as root) so that bursts of notifications fit.
    pub fn open_events_here(groups: &[u32], receive_buffer: usize) -> Result<Socket> {
        let step = "open netlink event socket";
        let mut socket = Socket::new(NETLINK_ROUTE).map_err(|e| Error::io(step, e))?;
        socket.bind_auto().map_err(|e| Error::io(step, e))?;
        for group in groups {
            socket.add_membership(*group).map_err(|e| Error::io(step, e))?;
        }
        let size = libc::c_int::try_from(receive_buffer).unwrap_or(libc::c_int::MAX);
        // SAFETY: setsockopt on a socket we own, with a pointer to a c_int and its size.
        let forced = unsafe {
            libc::setsockopt(
                socket.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVBUFFORCE,
                (&size as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if forced != 0 {
            socket.set_rx_buf_sz(receive_buffer).map_err(|e| Error::io(step, e))?;
        }
        socket.set_non_blocking(true).map_err(|e| Error::io(step, e))?;
        Ok(socket)
    }

    /// Wrap a socket opened in `ns`. Must be called inside the tokio runtime.
    pub fn from_socket(ns: Netns, fd: OwnedFd) -> Netlink {
        // SAFETY: `fd` is an owned netlink socket; TokioSocket takes ownership.
        let socket = unsafe { TokioSocket::from_raw_fd(fd.into_raw_fd()) };
        let (connection, handle, _) = rtnetlink::from_socket(socket);
        tokio::spawn(connection);
        Netlink { ns, handle }
    }

    /// Connections to each namespace, in order.
    pub async fn open_many(namespaces: Vec<Netns>) -> Result<Vec<Result<Netlink>>> {
        let sockets = tokio::task::spawn_blocking({
            let namespaces = namespaces.clone();
            move || crate::thread::in_each(namespaces, |_| Self::open_socket_here())
        })
        .await
        .map_err(|e| Error::other("open netlink sockets", e))??;
        Ok(namespaces.into_iter().zip(sockets).map(|(ns, fd)| fd.map(|fd| Netlink::from_socket(ns, fd))).collect())
    }

    pub async fn open(ns: Netns) -> Result<Netlink> {
        // Opening on a thread of its own keeps runtime threads in their namespace.
        Self::open_many(vec![ns]).await?.pop().expect("one socket per namespace")
    }

    pub fn ns(&self) -> &Netns {
        &self.ns
    }

    pub(crate) fn handle(&self) -> &Handle {
        &self.handle
    }

    /// "RED:veth0", or just "veth0" in the host namespace: how errors name objects.
    pub(crate) fn qualified(&self, name: &str) -> String {
        match &self.ns {
            Netns::Host => name.to_string(),
            Netns::Named(ns) => format!("{ns}:{name}"),
            Netns::Path(path) => format!("{}:{name}", path.display()),
        }
    }
}

type OpenRequest = (Netns, tokio::sync::oneshot::Sender<Result<OwnedFd>>);

/// Opens sockets inside namespaces for callers on the runtime, on one thread of its
/// own that moves between namespaces (runtime threads never do). The thread ends when
/// the opener is dropped.
pub struct Opener {
    requests: std::sync::mpsc::Sender<OpenRequest>,
}

impl Opener {
    pub fn new() -> Result<Opener> {
        let (requests, incoming) = std::sync::mpsc::channel::<OpenRequest>();
        std::thread::Builder::new()
            .name("netns-open".into())
            .spawn(move || {
                for (ns, reply) in incoming {
                    let socket = crate::namespace::enter(&ns).and_then(|()| Netlink::open_socket_here());
                    let _ = reply.send(socket);
                }
            })
            .map_err(|e| Error::io("spawn socket thread", e))?;
        Ok(Opener { requests })
    }

    pub async fn open(&self, ns: Netns) -> Result<Netlink> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        let step = || format!("open netlink socket in {ns}");
        self.requests.send((ns.clone(), reply)).map_err(|_| Error::other(step(), "socket thread gone"))?;
        let fd = answer.await.map_err(|_| Error::other(step(), "socket thread gone"))??;
        Ok(Netlink::from_socket(ns, fd))
    }
}
