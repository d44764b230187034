//! Execute a plan against the kernel. Changes of one phase run concurrently on the
//! namespaces' sockets; phases run in order. If a change fails, what this run created
//! is removed again, newest first.
//!
//! IPv6 link-local autoconfiguration: namespaces netlab creates get
//! `net.ipv6.conf.default.addr_gen_mode = 1` (none) before any link exists, so their
//! links never start it. Host links are created down, switched off, then brought up:
//! the kernel refuses the setting in a creating request, and the host's defaults are
//! not netlab's to change.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use anyhow::{anyhow, Context, Result};
use futures::{stream, StreamExt, TryStreamExt};
use netns::link::{LinkChange, LinkRef, NewLink};
use netns::route::RouteRequest;
use netns::Netlink;

use crate::model::{IfName, LabName, NodeName, Place, RouteSpec};
use crate::observe::Connections;
use crate::ownership;
use crate::plan::{Change, LinkSettings, Phase, VethEnd};
use crate::progress::Progress;

/// How many requests are in flight at once: enough to keep the kernel busy, few
/// enough to keep memory flat for large labs.
const IN_FLIGHT: usize = 256;

pub struct Executor {
    mark: String,
    group: u32,
    connections: Mutex<Connections>,
    indexes: Mutex<HashMap<(Place, IfName), u32>>,
    /// Changes that undo what this run made, in the order it made them.
    undo: Mutex<Vec<Change>>,
    done: AtomicUsize,
    progress: Progress,
}

impl Executor {
    pub fn new(lab: &LabName, connections: Connections, progress: Progress) -> Self {
        Executor {
            mark: ownership::mark(lab),
            group: ownership::group(lab),
            connections: Mutex::new(connections),
            indexes: Mutex::new(HashMap::new()),
            undo: Mutex::new(Vec::new()),
            done: AtomicUsize::new(0),
            progress,
        }
    }

    /// Apply every change; on failure, undo this run's creations and return the error.
    pub async fn run(&self, changes: &[Change]) -> Result<()> {
        match self.run_phases(changes).await {
            Ok(()) => Ok(()),
            Err(err) => {
                let undo: Vec<Change> = self.undo.lock().expect("unpoisoned").drain(..).rev().collect();
                if undo.is_empty() {
                    return Err(err);
                }
                tracing::warn!(changes = undo.len(), "rolling back what this run created");
                let mut failures = Vec::new();
                for change in &undo {
                    if let Err(e) = self.one(change).await {
                        failures.push(crate::error_text(&e));
                    }
                }
                if failures.is_empty() {
                    Err(err.context("rolled back what this run created"))
                } else {
                    Err(err.context(format!("rollback incomplete: {}", failures.join("; "))))
                }
            }
        }
    }

    async fn run_phases(&self, changes: &[Change]) -> Result<()> {
        for group in changes.chunk_by(|a, b| a.phase() == b.phase()) {
            let started = std::time::Instant::now();
            let phase = group[0].phase();
            match phase {
                Phase::CreateNamespaces => self.create_namespaces(group).await?,
                Phase::DeleteNamespaces => self.delete_namespaces(group).await?,
                Phase::SetSysctls => self.set_sysctls(group).await?,
                Phase::DeleteLinks => self.delete_links(group).await?,
                _ => {
                    stream::iter(group)
                        .map(|change| self.one(change))
                        .buffer_unordered(IN_FLIGHT)
                        .try_collect::<()>()
                        .await?;
                }
            }
            tracing::debug!(
                ?phase,
                changes = group.len(),
                elapsed_ms = started.elapsed().as_millis() as u64,
                "phase done"
            );
        }
        Ok(())
    }

    fn tick(&self, count: usize) {
        let done = self.done.fetch_add(count, Ordering::Relaxed) + count;
        self.progress.update(done);
    }

    fn remember(&self, undo: Change) {
        self.undo.lock().expect("unpoisoned").push(undo);
    }

    fn netlink(&self, place: &Place) -> Result<Netlink> {
        self.connections.lock().expect("unpoisoned").get(place).cloned()
    }

    async fn index(&self, place: &Place, name: &IfName) -> Result<u32> {
        let key = (place.clone(), name.clone());
        if let Some(index) = self.indexes.lock().expect("unpoisoned").get(&key) {
            return Ok(*index);
        }
        let link = self.netlink(place)?.link_by_name(name.as_str()).await?;
        let index = link.with_context(|| format!("link {} not found", place.qualify(name)))?.index;
        self.indexes.lock().expect("unpoisoned").insert(key, index);
        Ok(index)
    }

    fn forget(&self, place: &Place, name: &IfName) {
        self.indexes.lock().expect("unpoisoned").remove(&(place.clone(), name.clone()));
    }

    /// One thread creates every namespace, opening each one's socket and switching off
    /// IPv6 autoconfiguration while inside; then each `lo` gets the mark and comes up.
    async fn create_namespaces(&self, group: &[Change]) -> Result<()> {
        let nodes: Vec<NodeName> = group
            .iter()
            .filter_map(|c| if let Change::CreateNamespace { namespace } = c { Some(namespace.clone()) } else { None })
            .collect();
        let names: Vec<String> = nodes.iter().map(|n| n.as_str().to_string()).collect();
        let sockets = tokio::task::spawn_blocking(move || {
            netns::namespace::prepare_dir()?;
            netns::namespace::create_many(names, |_| {
                // Absent when IPv6 is disabled: nothing to switch off then.
                if netns::sysctl::read("net.ipv6.conf.default.addr_gen_mode")?.is_some() {
                    netns::sysctl::write("net.ipv6.conf.default.addr_gen_mode", "1")?;
                }
                Netlink::open_socket_here()
            })
        })
        .await??;
        let mut first_error = None;
        for (node, socket) in nodes.iter().zip(sockets) {
            let place = Place::Node(node.clone());
            match socket {
                Ok(fd) => {
                    self.remember(Change::DeleteNamespace { namespace: node.clone() });
                    let netlink = Netlink::from_socket(place.to_netns(), fd);
                    self.connections.lock().expect("unpoisoned").0.insert(place, netlink);
                }
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        if let Some(e) = first_error {
            return Err(e.into());
        }
        let lo = LinkChange { alias: Some(self.mark.clone()), up: Some(true), ..LinkChange::default() };
        stream::iter(&nodes)
            .map(|node| {
                let lo = &lo;
                async move {
                    self.netlink(&Place::Node(node.clone()))?.set_link(LinkRef::Name("lo"), lo).await?;
                    self.tick(1);
                    Ok::<_, anyhow::Error>(())
                }
            })
            .buffer_unordered(IN_FLIGHT)
            .try_collect()
            .await
    }

    async fn delete_namespaces(&self, group: &[Change]) -> Result<()> {
        for change in group {
            if let Change::DeleteNamespace { namespace } = change {
                netns::namespace::delete(namespace.as_str())?;
                self.connections.lock().expect("unpoisoned").0.remove(&Place::Node(namespace.clone()));
                self.tick(1);
            }
        }
        Ok(())
    }

    /// Links are deleted per namespace in one request when the lab's interface group
    /// there holds exactly the links to delete: one-by-one deletion pays an RCU grace
    /// period (about 17 ms) per link. The group is never trusted alone: if any other
    /// link carries it, links are deleted one by one.
    async fn delete_links(&self, group: &[Change]) -> Result<()> {
        let mut by_place: BTreeMap<&Place, Vec<&Change>> = BTreeMap::new();
        for change in group {
            if let Change::DeleteLink { place, .. } = change {
                by_place.entry(place).or_default().push(change);
            }
        }
        for (place, changes) in by_place {
            let names: BTreeSet<&str> = changes
                .iter()
                .filter_map(|c| if let Change::DeleteLink { name, .. } = c { Some(name.as_str()) } else { None })
                .collect();
            let netlink = self.netlink(place)?;
            let links = netlink.links().await?;
            let deleted: BTreeSet<u32> =
                links.iter().filter(|l| names.contains(l.name.as_str())).map(|l| l.index).collect();
            // Every link of the group must be one to delete, or this lab's veth whose
            // peer, here, is one to delete (it goes with it anyway).
            let goes = |l: &netns::link::LinkState| {
                names.contains(l.name.as_str())
                    || (l.alias.as_deref() == Some(self.mark.as_str())
                        && l.kind.as_deref() == Some("veth")
                        && !l.peer_elsewhere
                        && l.peer_index.is_some_and(|peer| deleted.contains(&peer)))
            };
            let exact = names.len() > 1
                && deleted.len() == names.len()
                && links.iter().filter(|l| l.group == self.group).all(goes);
            if exact {
                ignore_missing(netlink.delete_group(self.group).await)?;
                tracing::debug!(%place, links = names.len(), group = self.group, "deleted links in one request");
                for change in &changes {
                    if let Change::DeleteLink { name, .. } = change {
                        self.forget(place, name);
                    }
                }
                self.tick(changes.len());
            } else {
                stream::iter(changes)
                    .map(|change| self.one(change))
                    .buffer_unordered(IN_FLIGHT)
                    .try_collect::<()>()
                    .await?;
            }
        }
        Ok(())
    }

    /// All sysctl writes of a namespace in one visit of a thread.
    async fn set_sysctls(&self, group: &[Change]) -> Result<()> {
        let mut by_place: BTreeMap<Place, Vec<(String, String)>> = BTreeMap::new();
        for change in group {
            if let Change::SetSysctl { place, key, value, .. } = change {
                by_place.entry(place.clone()).or_default().push((key.as_str().to_string(), value.clone()));
            }
        }
        let places: Vec<Place> = by_place.keys().cloned().collect();
        let writes: HashMap<netns::Netns, Vec<(String, String)>> =
            by_place.into_iter().map(|(place, writes)| (place.to_netns(), writes)).collect();
        let results = tokio::task::spawn_blocking(move || {
            netns::thread::in_each(places.iter().map(Place::to_netns).collect(), move |ns| {
                for (key, value) in &writes[ns] {
                    netns::sysctl::write(key, value)?;
                }
                Ok(())
            })
        })
        .await??;
        for result in results {
            result?;
        }
        for change in group {
            if let Change::SetSysctl { place, key, previous: Some(previous), value } = change {
                let undo = Change::SetSysctl {
                    place: place.clone(),
                    key: key.clone(),
                    value: previous.clone(),
                    previous: Some(value.clone()),
                };
                self.remember(undo);
            }
        }
        self.tick(group.len());
        Ok(())
    }

    async fn one(&self, change: &Change) -> Result<()> {
        match change {
            Change::DeleteNamespace { namespace } => netns::namespace::delete(namespace.as_str())?,
            Change::CreateNamespace { .. } | Change::SetSysctl { .. } => {
                return Err(anyhow!("internal error: {change} is applied in a batch"));
            }
            Change::DeleteRoute { place, route } => {
                // If the route's device is already gone, so is the route.
                if let Ok(request) = self.route_request(place, route).await {
                    ignore_missing(self.netlink(place)?.delete_route(&request).await)?;
                }
            }
            Change::DeleteAddress { place, link, address } => {
                let index = self.index(place, link).await?;
                let result = self.netlink(place)?.delete_address(index, link.as_str(), *address).await;
                ignore_missing(result)?;
            }
            Change::DeleteLink { place, name, .. } => {
                let Ok(index) = self.index(place, name).await else { return Ok(()) };
                ignore_missing(self.netlink(place)?.delete_link(index, name.as_str()).await)?;
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
                self.netlink(place)?.set_link(LinkRef::Name(name.as_str()), &change).await?;
            }
            Change::AddAddress { place, link, address } => {
                let index = self.index(place, link).await?;
                self.netlink(place)?.add_address(index, link.as_str(), *address).await?;
                self.remember(Change::DeleteAddress { place: place.clone(), link: link.clone(), address: *address });
            }
            Change::AddRoute { place, route } => {
                let request = self.route_request(place, route).await?;
                self.netlink(place)?.add_route(&request).await?;
                self.remember(Change::DeleteRoute { place: place.clone(), route: route.clone() });
            }
        }
        self.tick(1);
        Ok(())
    }

    async fn route_request(&self, place: &Place, route: &RouteSpec) -> Result<RouteRequest> {
        let oif = match &route.dev {
            Some(dev) => Some(self.index(place, dev).await?),
            None => None,
        };
        Ok(RouteRequest { destination: route.to, gateway: route.via, oif, protocol: ownership::ROUTE_PROTOCOL })
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
    /// where the namespace default is not the one wanted, and up. The IPv6 mode must be
    /// set before the link comes up, and the kernel applies it after flags within a
    /// request: then it takes two requests, otherwise one.
    async fn finish_link(
        &self,
        place: &Place,
        name: &IfName,
        settings: &LinkSettings,
        set_master: bool,
        came_up: bool,
    ) -> Result<()> {
        let netlink = self.netlink(place)?;
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
        let mut change = LinkChange { alias: Some(self.mark.clone()), master, ipv6_autoconf, ..LinkChange::default() };
        if ipv6_autoconf.is_none() && bring_up {
            change.up = Some(true);
        }
        netlink.set_link(LinkRef::Name(name.as_str()), &change).await?;
        if ipv6_autoconf.is_some() && bring_up {
            let up = LinkChange { up: Some(true), ..LinkChange::default() };
            netlink.set_link(LinkRef::Name(name.as_str()), &up).await?;
        }
        Ok(())
    }

    async fn create_bridge(&self, place: &Place, name: &IfName, settings: &LinkSettings) -> Result<()> {
        let up = Self::up_at_creation(place, settings);
        self.netlink(place)?.create_bridge(&self.new_link(name, settings, None, up)).await?;
        self.remember(Change::DeleteLink { place: place.clone(), name: name.clone(), kind: "bridge".into() });
        self.finish_link(place, name, settings, false, up).await
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
        self.netlink(&a.place)?.create_veth(&local, &peer, b_ns.as_raw_fd()).await?;
        drop(b_ns);
        self.remember(Change::DeleteLink { place: a.place.clone(), name: a.name.clone(), kind: "veth".into() });
        futures::try_join!(
            self.finish_link(&a.place, &a.name, &a.settings, false, a_up),
            self.finish_link(&b.place, &b.name, &b.settings, true, b_up),
        )?;
        Ok(())
    }
}

/// Deleting what is already gone is success: a veth goes with its peer, a route with
/// its device.
fn ignore_missing(result: netns::Result<()>) -> netns::Result<()> {
    match result {
        Err(e) if e.is_not_found() || e.code() == Some(libc::EADDRNOTAVAIL) => Ok(()),
        other => other,
    }
}
