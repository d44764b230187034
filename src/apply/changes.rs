//! One change against the kernel.

use std::os::fd::AsRawFd;

use super::error::{ApplyError, Result};
use netns::link::{LinkChange, LinkRef, NewLink};
use netns::route::RouteRequest;

use super::Executor;
use crate::firewall;
use crate::kernel_place::KernelPlace;
use crate::model::{IfName, Place, RouteSpec, VxlanSpec};
use crate::ownership;
use crate::plan::agents::{AgentKey, AgentProcess};
use crate::plan::firewall::nat_table;
use crate::plan::{Change, LinkSettings, VethEnd};

/// Deleting what is already gone is success: a veth goes with its peer, a route with
/// its device.
pub fn ignore_missing(result: netns::Result<()>) -> netns::Result<()> {
    match result {
        Err(e) if e.is_not_found() || e.code() == Some(libc::EADDRNOTAVAIL) => Ok(()),
        other => other,
    }
}

impl Executor {
    /// Stop an agent before its device or namespace goes (it waits for the process).
    async fn stop_agent(&self, key: &AgentKey, running: &[AgentProcess]) -> Result<()> {
        let (lab, key, running) = (self.lab.clone(), key.clone(), running.to_vec());
        tokio::task::spawn_blocking(move || crate::agents::stop(&lab, &key, &running)).await??;
        Ok(())
    }

    pub(super) async fn one(&self, change: &Change) -> Result<()> {
        match change {
            Change::StopAgent { key, running } => self.stop_agent(key, running).await?,
            // Agents start once the lab's endpoints are published (so a proactive one
            // installs them all at its start): see `lab::apply` and `agents::converge`.
            Change::StartAgent { .. } | Change::RestartAgent { .. } => {}
            Change::DeleteNamespace { namespace } => netns::namespace::delete(namespace.as_str())?,
            Change::DeleteNatTable { place } => firewall::nft::delete(place, &self.lab)?,
            Change::SetNatTable { place, nat, .. } => {
                let prepared = firewall::nft::prepare(place, &self.lab)?;
                if prepared.created {
                    self.remember(Change::DeleteNatTable { place: place.clone() });
                }
                firewall::nft::fill(place, &self.lab, &prepared, &nat_table(nat))?;
            }
            Change::CreateVxlan { place, name, settings, vxlan } => {
                self.create_vxlan(place, name, settings, vxlan).await?
            }
            Change::SetNeighbour { place, entry, .. } => {
                let index = self.index(place, &entry.dev).await?;
                let netlink = self.netlink(place).await?;
                netlink
                    .set_neighbour(index, entry.dev.as_str(), entry.ip, entry.mac.octets(), ownership::PROTOCOL)
                    .await?;
                self.remember(Change::DeleteNeighbour { place: place.clone(), entry: entry.clone() });
            }
            Change::DeleteNeighbour { place, entry } => {
                let Ok(index) = self.index(place, &entry.dev).await else { return Ok(()) };
                ignore_missing(self.netlink(place).await?.delete_neighbour(index, entry.dev.as_str(), entry.ip).await)?;
            }
            Change::SetFdb { place, entry, .. } => {
                let index = self.index(place, &entry.dev).await?;
                self.netlink(place).await?.set_fdb(index, entry.dev.as_str(), entry.mac.octets(), entry.dst).await?;
                self.remember(Change::DeleteFdb { place: place.clone(), entry: entry.clone() });
            }
            Change::DeleteFdb { place, entry } => {
                let Ok(index) = self.index(place, &entry.dev).await else { return Ok(()) };
                let netlink = self.netlink(place).await?;
                ignore_missing(
                    netlink.delete_fdb(index, entry.dev.as_str(), entry.mac.octets(), Some(entry.dst)).await,
                )?;
            }
            Change::AddForwardAccept { place, accept } => {
                firewall::iptables::add(place, &self.lab, accept)?;
                self.remember(Change::DeleteForwardAccept { place: place.clone(), accept: accept.clone() });
            }
            Change::DeleteForwardAccept { place, accept } => firewall::iptables::delete(place, &self.lab, accept)?,
            Change::CreateNamespace { .. } => {
                return Err(ApplyError::Internal(format!("{change} is made by the namespace thread")));
            }
            // Batched per namespace in a phase; one at a time only when rolling back.
            Change::SetSysctl { place, key, value, .. } => {
                let (key, value) = (key.as_str().to_string(), value.clone());
                netns::thread::in_one(place.to_netns(), move |_| netns::sysctl::write(&key, &value))?;
            }
            Change::DeleteRoute { place, route } => {
                // If the route's device is already gone, so is the route.
                if let Ok(request) = self.route_request(place, route).await {
                    ignore_missing(self.netlink(place).await?.delete_route(&request).await)?;
                }
            }
            Change::DeleteAddress { place, link, address } => {
                let index = self.index(place, link).await?;
                let result = self.netlink(place).await?.delete_address(index, link.as_str(), *address).await;
                ignore_missing(result)?;
            }
            Change::DeleteLink { place, name, .. } => {
                let Ok(index) = self.index(place, name).await else { return Ok(()) };
                ignore_missing(self.netlink(place).await?.delete_link(index, name.as_str()).await)?;
                self.forget(place, name);
            }
            Change::CreateBridge { place, name, settings } => self.create_bridge(place, name, settings).await?,
            Change::CreateVeth { a, b } => self.create_veth(a, b).await?,
            Change::SetLink { place, name, update } => {
                let master = match &update.master {
                    Some(Some(bridge)) => Some(Some(self.index(place, bridge).await?)),
                    Some(None) => Some(None),
                    None => None,
                };
                let change = LinkChange {
                    alias: update.mark.then(|| self.mark.clone()),
                    mtu: update.mtu,
                    mac: update.mac.map(|m| m.octets()),
                    master,
                    up: update.up,
                    ipv6_autoconf: update.ipv6_autoconf,
                };
                self.netlink(place).await?.set_link(LinkRef::Name(name.as_str()), &change).await?;
            }
            Change::AddAddress { place, link, address } => {
                let index = self.index(place, link).await?;
                self.netlink(place).await?.add_address(index, link.as_str(), *address).await?;
                self.remember(Change::DeleteAddress { place: place.clone(), link: link.clone(), address: *address });
            }
            Change::SetShaping { place, link, shaping, now } => {
                self.set_shaping(place, link, shaping, now.is_none()).await?
            }
            Change::DeleteShaping { place, link } => self.delete_shaping(place, link).await?,
            Change::AddRoute { place, route } => {
                let request = self.route_request(place, route).await?;
                self.netlink(place).await?.add_route(&request).await?;
                self.remember(Change::DeleteRoute { place: place.clone(), route: route.clone() });
            }
        }
        Ok(())
    }

    async fn route_request(&self, place: &Place, route: &RouteSpec) -> Result<RouteRequest> {
        let oif = match &route.dev {
            Some(dev) => Some(self.index(place, dev).await?),
            None => None,
        };
        Ok(RouteRequest {
            destination: route.to,
            gateway: route.via,
            oif,
            protocol: ownership::PROTOCOL,
            onlink: false,
        })
    }

    fn new_link(&self, name: &IfName, settings: &LinkSettings, master: Option<u32>, up: bool) -> NewLink {
        NewLink {
            name: name.as_str().to_string(),
            mtu: settings.mtu,
            mac: settings.mac.map(|m| m.octets()),
            group: self.group,
            master,
            up,
        }
    }

    /// A link comes up in its creating request only where nothing must be set first.
    fn up_at_creation(place: &Place, settings: &LinkSettings) -> bool {
        settings.up && *place != Place::Host && !settings.ipv6_autoconf
    }

    /// After creation: the mark, the bridge (for a veth's far end), the IPv6 mode
    /// where the namespace default is not the one wanted, and up.
    ///
    /// The IPv6 mode must be in place before IPv6 configures the link, and within a
    /// request the kernel applies flags before it. That is still safe in one request
    /// when the link cannot have carrier yet (a veth end whose peer is down): IPv6
    /// waits for carrier. Otherwise (a new bridge starts with carrier) it takes two.
    async fn finish_link(
        &self,
        place: &Place,
        name: &IfName,
        settings: &LinkSettings,
        set_master: bool,
        came_up: bool,
        carrier_possible: bool,
    ) -> Result<()> {
        let netlink = self.netlink(place).await?;
        let master = match (&settings.master, set_master) {
            (Some(bridge), true) => Some(Some(self.index(place, bridge).await?)),
            _ => None,
        };
        let ipv6_autoconf = match (place, settings.ipv6_autoconf) {
            (_, true) => Some(true),
            (Place::Host, false) => Some(false),
            (Place::Node(_), false) => None,
        };
        let bring_up = settings.up && !came_up;
        let together = ipv6_autoconf.is_none() || !carrier_possible;
        let mut change = LinkChange { alias: Some(self.mark.clone()), master, ipv6_autoconf, ..LinkChange::default() };
        if together && bring_up {
            change.up = Some(true);
        }
        netlink.set_link(LinkRef::Name(name.as_str()), &change).await?;
        if !together && bring_up {
            let up = LinkChange { up: Some(true), ..LinkChange::default() };
            netlink.set_link(LinkRef::Name(name.as_str()), &up).await?;
        }
        Ok(())
    }

    async fn create_bridge(&self, place: &Place, name: &IfName, settings: &LinkSettings) -> Result<()> {
        let up = Self::up_at_creation(place, settings);
        self.netlink(place).await?.create_bridge(&self.new_link(name, settings, None, up)).await?;
        self.remember(Change::DeleteLink { place: place.clone(), name: name.clone(), kind: "bridge".into() });
        self.finish_link(place, name, settings, false, up, true).await
    }

    /// Sent on the underlay's socket with the device's namespace as target: the UDP
    /// socket stays in the underlay.
    async fn create_vxlan(
        &self,
        place: &Place,
        name: &IfName,
        settings: &LinkSettings,
        vxlan: &VxlanSpec,
    ) -> Result<()> {
        let lower = self.index(&vxlan.underlay, &vxlan.dev).await?;
        let target = place.to_netns().open()?;
        let link = self.new_link(name, settings, None, false);
        let parameters = netns::link::Vxlan {
            vni: vxlan.vni,
            port: vxlan.port,
            local: Some(vxlan.local),
            group: vxlan.group,
            lower: Some(lower),
            learning: vxlan.learning,
            proxy: vxlan.proxy,
            l2miss: vxlan.l2miss,
            l3miss: vxlan.l3miss,
            ttl: vxlan.ttl.unwrap_or(0),
        };
        self.netlink(&vxlan.underlay).await?.create_vxlan(&link, &parameters, target.as_raw_fd()).await?;
        drop(target);
        self.remember(Change::DeleteLink { place: place.clone(), name: name.clone(), kind: "vxlan".into() });
        self.finish_link(place, name, settings, true, false, true).await
    }

    async fn create_veth(&self, a: &VethEnd, b: &VethEnd) -> Result<()> {
        let a_master = match &a.settings.master {
            Some(bridge) => Some(self.index(&a.place, bridge).await?),
            None => None,
        };
        let a_up = Self::up_at_creation(&a.place, &a.settings);
        // The kernel refuses to bring a peer up in the creating request (ENOTCONN: the
        // pair is not linked yet when the peer is configured).
        let b_up = false;
        let b_ns = b.place.to_netns().open()?;
        let local = self.new_link(&a.name, &a.settings, a_master, a_up);
        let peer = self.new_link(&b.name, &b.settings, None, b_up);
        self.netlink(&a.place).await?.create_veth(&local, &peer, b_ns.as_raw_fd()).await?;
        drop(b_ns);
        self.remember(Change::DeleteLink { place: a.place.clone(), name: a.name.clone(), kind: "veth".into() });
        // In order: while `a` is finished, `b` is down, so `a` has no carrier.
        self.finish_link(&a.place, &a.name, &a.settings, false, a_up, false).await?;
        self.finish_link(&b.place, &b.name, &b.settings, true, b_up, a.settings.up).await
    }
}
