//! ADD: an address from the node's subnet (recorded before the kernel is touched),
//! then the bridge, the veth, the container's address and routes; undone if any step
//! fails. A second ADD of the same attachment keeps its address and replaces its veth.

use std::net::Ipv4Addr;

use serde_json::Value;

use super::{network, read_subnet_file};
use crate::allocate;
use crate::config::NetConf;
use crate::error::Error;
use crate::invocation::Attach;
use crate::kernel::{self, Wiring};
use crate::masquerade;
use crate::record::Record;
use crate::result::{self, Attached, Interface};
use crate::state::{self, State};
use crate::subnet_env::SubnetEnv;

pub fn add(conf: &NetConf, attach: &Attach) -> Result<Value, Error> {
    let env = read_subnet_file(conf)?;
    let container_ns = kernel::open_container_namespace(&attach.netns)?;
    let state = State::open(&conf.data_dir, &conf.name)?;
    let (record, previous) = allocate(conf, attach, &env, &state)?;
    let wired = wire(conf, &record, previous.as_ref(), &container_ns, &env);
    let wired = match wired {
        Ok(wired) => wired,
        Err(error) => {
            undo(&state, &record);
            return Err(error);
        }
    };
    let interface =
        |name: &str, mac, sandbox: Option<String>| Interface { name: name.to_string(), mac, mtu: record.mtu, sandbox };
    let attached = Attached {
        bridge: interface(record.bridge.as_str(), wired.bridge, None),
        host: interface(record.host_veth.as_str(), wired.host, None),
        container: interface(record.id.ifname.as_str(), wired.container, Some(attach.netns.display().to_string())),
        address: record.address,
        gateway: record.gateway,
        routes: record.routes(),
    };
    Ok(result::render(conf.version, &attached, conf.prev_result.as_ref()))
}

/// Under the lock: the attachment's address (its own again on a second ADD, when still
/// in the subnet) and its record, saved. Also the previous record, if there was one.
fn allocate(
    conf: &NetConf,
    attach: &Attach,
    env: &SubnetEnv,
    state: &State,
) -> Result<(Record, Option<Record>), Error> {
    let id = &attach.id;
    let lock = state.lock()?;
    let previous = match state.record(id) {
        Ok(previous) => previous,
        // Unreadable: it is about to be replaced.
        Err(state::Error::Corrupt { .. }) => None,
        Err(e) => return Err(e.into()),
    };
    let mut reuse: Option<Ipv4Addr> = None;
    if let Some(previous) = &previous {
        let address = previous.address.ip();
        let same_subnet = previous.address.prefix() == env.subnet.length();
        if same_subnet && allocate::assignable(&env.subnet, address) && state.owner(address)?.as_ref() == Some(id) {
            reuse = Some(address);
        }
    }
    let address = match reuse {
        Some(address) => address,
        None => {
            let mut used = state.allocated()?;
            let last = state.last()?;
            let address = loop {
                let candidate = allocate::choose(&env.subnet, &used, last).ok_or_else(|| state::Error::Exhausted {
                    subnet: env.subnet.to_string(),
                    capacity: allocate::capacity(&env.subnet),
                })?;
                if state.claim(&lock, candidate, id)? {
                    break candidate;
                }
                // Taken by someone who does not honour the lock: look further.
                used.insert(candidate);
            };
            state.set_last(&lock, address)?;
            if let Some(previous) = &previous {
                state.release(&lock, previous.address.ip(), id)?;
            }
            address
        }
    };
    let gateway = allocate::gateway(&env.subnet);
    let record = Record {
        id: id.clone(),
        netns: attach.netns.clone(),
        address: ipnetwork::Ipv4Network::new(address, env.subnet.length()).expect("length of a subnet"),
        gateway,
        cluster: network(&env.network),
        bridge: conf.bridge.clone(),
        host_veth: id.host_veth(),
        default_route: conf.is_gateway,
        mtu: conf.mtu.unwrap_or(env.mtu),
    };
    state.save(&lock, &record)?;
    Ok((record, previous))
}

/// The kernel's part, then masquerading and forwarding on the host.
fn wire(
    conf: &NetConf,
    record: &Record,
    previous: Option<&Record>,
    container_ns: &std::os::fd::OwnedFd,
    env: &SubnetEnv,
) -> Result<kernel::Wired, Error> {
    let routes = record.routes();
    let wiring = Wiring {
        bridge: &record.bridge,
        bridge_address: ipnetwork::Ipv4Network::new(record.gateway, record.address.prefix()).expect("valid length"),
        host_veth: &record.host_veth,
        ifname: &record.id.ifname,
        mtu: record.mtu,
        address: record.address,
        gateway: record.gateway,
        routes: &routes,
    };
    let wired = kernel::run_both(&record.netns, container_ns, |host, container| async move {
        if let Some(previous) = previous {
            // A second ADD: its old veth goes (and with it the container's end).
            kernel::remove_veth(&host, &previous.host_veth).await?;
        }
        kernel::attach(&host, &container, container_ns, &wiring).await.map_err(|e| match e.code() {
            Some(libc::EEXIST) => netns::Error::other(
                format!("create veth {} with {} in {}", record.host_veth, record.id.ifname, record.netns.display()),
                "an interface of that name exists already",
            ),
            _ => e,
        })
    })?;
    if conf.ip_masq {
        masquerade::ensure(env.subnet, env.network).map_err(Error::Masquerade)?;
    }
    // The gateway routes the containers' traffic to other nodes and beyond.
    kernel::enable_forwarding()?;
    Ok(wired)
}

/// After a failed ADD: no veth, no allocation, no record (best effort: the runtime
/// follows a failed ADD with a DEL anyway).
fn undo(state: &State, record: &Record) {
    let _ = kernel::run_host(|host| async move { kernel::remove_veth(&host, &record.host_veth).await });
    if let Ok(lock) = state.lock() {
        let _ = state.release(&lock, record.address.ip(), &record.id);
        let _ = state.forget(&lock, &record.id);
    }
}
