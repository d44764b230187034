//! One file per CNI command; `run` checks the config (and that its version has the
//! command) and dispatches.

mod add;
mod check;
mod del;
mod gc;
mod status;

use serde_json::Value;

use crate::config::{self, NetConf};
use crate::error::Error;
use crate::invocation::Request;
use crate::subnet_env::SubnetEnv;
use crate::version;

/// The command's output on success (`None`: nothing to print).
pub fn run(request: &Request, input: &[u8]) -> Result<Option<Value>, Error> {
    if *request == Request::Version {
        return Ok(Some(version::reply()));
    }
    let conf = config::parse(input)?;
    let refuse = |command| config::Error::CommandVersion { version: conf.version.as_str(), command };
    match request {
        Request::Add(attach) => add::add(&conf, attach).map(Some),
        Request::Del(detach) => del::del(&conf, detach).map(|()| None),
        Request::Check(_) if !conf.version.has_check() => Err(refuse("CHECK").into()),
        Request::Check(attach) => check::check(&conf, attach).map(|()| None),
        Request::Status if !conf.version.has_status_and_gc() => Err(refuse("STATUS").into()),
        Request::Status => status::status(&conf).map(|()| None),
        Request::Gc if !conf.version.has_status_and_gc() => Err(refuse("GC").into()),
        Request::Gc => gc::gc(&conf).map(|()| None),
        Request::Version => Ok(Some(version::reply())),
    }
}

/// The node's subnet, from the file the node daemon writes; an error naming the file
/// when there is none yet or it cannot serve (code 11: try again later).
fn read_subnet_file(conf: &NetConf) -> Result<SubnetEnv, Error> {
    let path = &conf.subnet_file;
    let fail = |reason: String| Error::SubnetFile { path: path.clone(), reason };
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(fail("missing: the node holds no subnet lease yet".to_string()))
        }
        Err(e) => return Err(fail(crate::error::io_text(&e))),
    };
    let env = SubnetEnv::parse(&text).ok_or_else(|| {
        fail("unreadable: expected FLANNEL_NETWORK, FLANNEL_SUBNET, FLANNEL_MTU and FLANNEL_IPMASQ".into())
    })?;
    if !env.network.covers(&env.subnet) {
        return Err(fail(format!("subnet {} is not inside the network {}", env.subnet, env.network)));
    }
    if !(68..=65535).contains(&env.mtu) {
        return Err(fail(format!("FLANNEL_MTU {} is outside 68..65535", env.mtu)));
    }
    Ok(env)
}

/// `ipnetwork`'s form of a subnet.
fn network(subnet: &netlab_store::leases::Subnet) -> ipnetwork::Ipv4Network {
    ipnetwork::Ipv4Network::new(subnet.network(), subnet.length()).expect("a subnet's length is at most 32")
}

/// A subnet back from `ipnetwork`'s form (host bits dropped).
fn subnet(network: &ipnetwork::Ipv4Network) -> netlab_store::leases::Subnet {
    netlab_store::leases::Subnet::new(network.network(), network.prefix()).expect("network address, valid length")
}
