//! Namespaces are created on one thread of our own, which hands each one over as soon
//! as it exists, so that links are made in it while the next ones are being created.

use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use netns::link::{LinkChange, LinkRef};
use netns::Netlink;
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver};

use crate::model::NodeName;

pub struct Created {
    /// The change's index in the plan.
    pub index: usize,
    pub node: NodeName,
    /// The namespace exists (even if what followed failed): undo must remove it.
    pub made: bool,
    /// A netlink socket opened inside it.
    pub socket: netns::Result<OwnedFd>,
}

/// Create the namespaces in order until done or `cancel` is set.
pub fn spawn(
    batch: Vec<(usize, NodeName)>,
    mark: String,
    cancel: Arc<AtomicBool>,
) -> std::io::Result<(std::thread::JoinHandle<()>, UnboundedReceiver<Created>)> {
    let (sender, receiver) = unbounded_channel();
    let thread = std::thread::Builder::new().name("netns-create".into()).spawn(move || {
        if let Err(e) = netns::namespace::prepare_dir() {
            if let Some((index, node)) = batch.into_iter().next() {
                let _ = sender.send(Created { index, node, made: false, socket: Err(e) });
            }
            return;
        }
        for (index, node) in batch {
            if cancel.load(Ordering::Relaxed) {
                break;
            }
            let made = netns::namespace::create_and_enter(node.as_str());
            let created = Created { index, made: made.is_ok(), socket: made.and_then(|()| settle_in(&mark)), node };
            if sender.send(created).is_err() {
                break;
            }
        }
    })?;
    Ok((thread, receiver))
}

/// Inside a new namespace: IPv6 autoconfiguration off by default for the links to
/// come, a socket, and `lo` up with the lab's mark: the mark comes last, so a
/// namespace without it was not finished (see `observe`).
fn settle_in(mark: &str) -> netns::Result<OwnedFd> {
    match netns::sysctl::write("net.ipv6.conf.default.addr_gen_mode", "1") {
        // Absent when IPv6 is disabled: nothing to switch off then.
        Err(e) if e.code() == Some(libc::ENOENT) => {}
        other => other?,
    }
    let socket = Netlink::open_socket_here()?;
    let lo = LinkChange { alias: Some(mark.to_string()), up: Some(true), ..LinkChange::default() };
    netns::blocking::set_link(&socket, LinkRef::Name("lo"), &lo)?;
    Ok(socket)
}
