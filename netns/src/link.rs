//! Links: observe them, create bridges and veth pairs, change and delete them.

use std::net::IpAddr;
use std::os::fd::RawFd;

use futures::TryStreamExt;
/// A link's operational state as the kernel reports it (`ip link`'s `state UP`).
pub use rtnetlink::packet_route::link::State as OperState;
use rtnetlink::packet_route::link::{
    AfSpecInet6, AfSpecUnspec, In6AddrGenMode, InfoData, InfoKind, InfoVeth, InfoVxlan, LinkAttribute, LinkFlags,
    LinkInfo, LinkMessage,
};
use rtnetlink::{LinkMessageBuilder, LinkUnspec};

use crate::{Error, Netlink, Result};

pub type Mac = [u8; 6];

/// A link as the kernel reports it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LinkState {
    pub index: u32,
    pub name: String,
    /// "veth", "bridge", ...; `None` for plain devices such as lo.
    pub kind: Option<String>,
    pub alias: Option<String>,
    pub group: u32,
    pub mtu: u32,
    pub mac: Option<Mac>,
    pub up: bool,
    /// Index of the bridge this link is a port of.
    pub master: Option<u32>,
    /// For a veth: the peer's index (in the peer's namespace).
    pub peer_index: Option<u32>,
    /// The peer is in another namespace (the kernel sent IFLA_LINK_NETNSID).
    pub peer_elsewhere: bool,
    /// The id, in this namespace, of the namespace the peer (of a veth) or the lower
    /// device (of a VXLAN device) is in: IFLA_LINK_NETNSID (see `blocking::nsid`).
    pub link_netnsid: Option<i32>,
    /// RFC 2863 operational state (IFLA_OPERSTATE): whether it can pass packets.
    pub oper_state: Option<OperState>,
    /// Whether IPv6 generates a link-local address here (`None`: IPv6 is off).
    pub ipv6_autoconf: Option<bool>,
    /// For a VXLAN device: its parameters.
    pub vxlan: Option<Vxlan>,
    /// Packets sent and received, when the kernel included statistics.
    pub tx_packets: Option<u64>,
    pub rx_packets: Option<u64>,
}

/// A VXLAN device's parameters (IFLA_VXLAN_*).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Vxlan {
    pub vni: u32,
    pub port: u16,
    pub local: Option<IpAddr>,
    /// The remote VTEP or multicast group.
    pub group: Option<IpAddr>,
    /// The lower device's index, in the namespace of the device's socket.
    pub lower: Option<u32>,
    pub learning: bool,
    pub proxy: bool,
    pub l2miss: bool,
    pub l3miss: bool,
    /// 0: inherit.
    pub ttl: u8,
}

/// A link to create.
#[derive(Clone, Debug, Default)]
pub struct NewLink {
    pub name: String,
    pub mtu: Option<u32>,
    pub mac: Option<Mac>,
    pub group: u32,
    /// Bridge index, in the namespace the link is created in.
    pub master: Option<u32>,
    pub up: bool,
}

/// Changes to an existing link; `None` leaves an attribute as it is.
#[derive(Clone, Debug, Default)]
pub struct LinkChange {
    pub alias: Option<String>,
    pub mtu: Option<u32>,
    pub mac: Option<Mac>,
    /// `Some(None)` detaches from the bridge.
    pub master: Option<Option<u32>>,
    pub up: Option<bool>,
    /// `Some(false)` stops IPv6 link-local autoconfiguration on this link.
    pub ipv6_autoconf: Option<bool>,
}

/// Which link a change or deletion applies to.
#[derive(Clone, Debug)]
pub enum LinkRef<'a> {
    Index(u32),
    Name(&'a str),
}

impl Netlink {
    pub async fn link_by_name(&self, name: &str) -> Result<Option<LinkState>> {
        let found = self.handle().link().get().match_name(name.to_string()).execute().try_next().await;
        match found {
            Ok(message) => Ok(message.as_ref().map(parse)),
            Err(e) => {
                let err = Error::netlink(format!("look up link {}", self.qualified(name)), e);
                if err.is_not_found() {
                    Ok(None)
                } else {
                    Err(err)
                }
            }
        }
    }

    pub async fn create_bridge(&self, link: &NewLink) -> Result<()> {
        let message = fill(LinkMessageBuilder::<LinkUnspec>::new_with_info_kind(InfoKind::Bridge), link).build();
        self.add_link(message, || format!("create bridge {}", self.qualified(&link.name))).await
    }

    /// Create a VXLAN device inside the namespace `device_ns` refers to, its UDP socket
    /// and `vxlan.lower` staying in this connection's namespace (what the tutorial does
    /// by creating it here and moving it).
    pub async fn create_vxlan(&self, link: &NewLink, vxlan: &Vxlan, device_ns: RawFd) -> Result<()> {
        let mut data = vec![
            InfoVxlan::Id(vxlan.vni),
            InfoVxlan::Port(vxlan.port),
            InfoVxlan::Learning(vxlan.learning),
            InfoVxlan::Proxy(vxlan.proxy),
            InfoVxlan::L2Miss(vxlan.l2miss),
            InfoVxlan::L3Miss(vxlan.l3miss),
            InfoVxlan::Ttl(vxlan.ttl),
        ];
        if let Some(lower) = vxlan.lower {
            data.push(InfoVxlan::Link(lower));
        }
        match vxlan.local {
            Some(IpAddr::V4(ip)) => data.push(InfoVxlan::Local(ip)),
            Some(IpAddr::V6(ip)) => data.push(InfoVxlan::Local6(ip)),
            None => {}
        }
        match vxlan.group {
            Some(IpAddr::V4(ip)) => data.push(InfoVxlan::Group(ip)),
            Some(IpAddr::V6(ip)) => data.push(InfoVxlan::Group6(ip)),
            None => {}
        }
        let message = fill(LinkMessageBuilder::<LinkUnspec>::new_with_info_kind(InfoKind::Vxlan), link)
            .setns_by_fd(device_ns)
            .set_info_data(InfoData::Vxlan(data))
            .build();
        self.add_link(message, || format!("create vxlan {} (socket in {})", link.name, self.ns())).await
    }

    /// Create a veth pair in one request: `local` here, `peer` directly inside the
    /// namespace `peer_ns` refers to.
    pub async fn create_veth(&self, local: &NewLink, peer: &NewLink, peer_ns: RawFd) -> Result<()> {
        let peer_message = fill(LinkMessageBuilder::<LinkUnspec>::new(), peer).setns_by_fd(peer_ns).build();
        let message = fill(LinkMessageBuilder::<LinkUnspec>::new_with_info_kind(InfoKind::Veth), local)
            .set_info_data(InfoData::Veth(InfoVeth::Peer(peer_message)))
            .build();
        self.add_link(message, || format!("create veth {}", self.qualified(&local.name))).await
    }

    async fn add_link(&self, message: LinkMessage, step: impl FnOnce() -> String) -> Result<()> {
        self.handle().link().add(message).execute().await.map_err(|e| Error::netlink(step(), e))
    }

    pub async fn set_link(&self, target: LinkRef<'_>, change: &LinkChange) -> Result<()> {
        self.handle()
            .link()
            .set(set_message(&target, change))
            .execute()
            .await
            .map_err(|e| Error::netlink(format!("set link {}", self.qualified(&target.to_string())), e))
    }

    pub async fn delete_link(&self, index: u32, name: &str) -> Result<()> {
        self.handle()
            .link()
            .del(index)
            .execute()
            .await
            .map_err(|e| Error::netlink(format!("delete link {}", self.qualified(name)), e))
    }

    /// Delete every link of an interface group in one request: the kernel removes them
    /// under one RCU grace period, where one-by-one deletion pays one each.
    pub async fn delete_group(&self, group: u32) -> Result<()> {
        let message = LinkMessageBuilder::<LinkUnspec>::default().link_group(group).build();
        self.handle()
            .link()
            .del_with_message(message)
            .execute()
            .await
            .map_err(|e| Error::netlink(format!("delete link group {group} in {}", self.ns()), e))
    }
}

fn parse_vxlan(data: &[InfoVxlan]) -> Vxlan {
    let mut vxlan = Vxlan::default();
    for attribute in data {
        match attribute {
            InfoVxlan::Id(vni) => vxlan.vni = *vni,
            InfoVxlan::Port(port) => vxlan.port = *port,
            InfoVxlan::Local(ip) => vxlan.local = Some(IpAddr::V4(*ip)),
            InfoVxlan::Local6(ip) => vxlan.local = Some(IpAddr::V6(*ip)),
            InfoVxlan::Group(ip) => vxlan.group = Some(IpAddr::V4(*ip)),
            InfoVxlan::Group6(ip) => vxlan.group = Some(IpAddr::V6(*ip)),
            InfoVxlan::Link(index) => vxlan.lower = Some(*index),
            InfoVxlan::Learning(on) => vxlan.learning = *on,
            InfoVxlan::Proxy(on) => vxlan.proxy = *on,
            InfoVxlan::L2Miss(on) => vxlan.l2miss = *on,
            InfoVxlan::L3Miss(on) => vxlan.l3miss = *on,
            InfoVxlan::Ttl(ttl) => vxlan.ttl = *ttl,
            _ => {}
        }
    }
    // The kernel reports unset addresses as 0.0.0.0.
    vxlan.local = vxlan.local.filter(|ip| !ip.is_unspecified());
    vxlan.group = vxlan.group.filter(|ip| !ip.is_unspecified());
    vxlan
}

/// The RTM_SETLINK message for a change.
pub(crate) fn set_message(target: &LinkRef<'_>, change: &LinkChange) -> LinkMessage {
    let mut builder = match target {
        LinkRef::Index(index) => LinkUnspec::new_with_index(*index),
        LinkRef::Name(name) => LinkUnspec::new_with_name(name),
    };
    if let Some(alias) = &change.alias {
        builder = builder.alias(alias.clone());
    }
    if let Some(mtu) = change.mtu {
        builder = builder.mtu(mtu);
    }
    if let Some(mac) = change.mac {
        builder = builder.address(mac.to_vec());
    }
    match change.master {
        Some(Some(index)) => builder = builder.controller(index),
        Some(None) => builder = builder.nocontroller(),
        None => {}
    }
    match change.up {
        Some(true) => builder = builder.up(),
        Some(false) => builder = builder.down(),
        None => {}
    }
    if let Some(autoconf) = change.ipv6_autoconf {
        let mode = if autoconf { In6AddrGenMode::Eui64 } else { In6AddrGenMode::None };
        builder = builder.append_extra_attribute(LinkAttribute::AfSpecUnspec(vec![AfSpecUnspec::Inet6(vec![
            AfSpecInet6::AddrGenMode(mode),
        ])]));
    }
    builder.build()
}

impl std::fmt::Display for LinkRef<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LinkRef::Index(index) => write!(f, "#{index}"),
            LinkRef::Name(name) => f.write_str(name),
        }
    }
}

fn fill(mut builder: LinkMessageBuilder<LinkUnspec>, link: &NewLink) -> LinkMessageBuilder<LinkUnspec> {
    builder = builder.name(link.name.clone()).link_group(link.group);
    if let Some(mtu) = link.mtu {
        builder = builder.mtu(mtu);
    }
    if let Some(mac) = link.mac {
        builder = builder.address(mac.to_vec());
    }
    if let Some(master) = link.master {
        builder = builder.controller(master);
    }
    if link.up {
        builder = builder.up();
    }
    builder
}

pub(crate) fn parse(message: &LinkMessage) -> LinkState {
    let mut link = LinkState {
        index: message.header.index,
        up: message.header.flags.contains(LinkFlags::Up),
        ..LinkState::default()
    };
    for attribute in &message.attributes {
        match attribute {
            LinkAttribute::IfName(name) => link.name = name.clone(),
            LinkAttribute::IfAlias(alias) => link.alias = Some(alias.clone()),
            LinkAttribute::Group(group) => link.group = *group,
            LinkAttribute::Mtu(mtu) => link.mtu = *mtu,
            LinkAttribute::Address(bytes) => link.mac = bytes.as_slice().try_into().ok(),
            LinkAttribute::Controller(index) => link.master = Some(*index),
            LinkAttribute::Link(index) => link.peer_index = Some(*index),
            LinkAttribute::LinkNetNsId(id) => {
                link.peer_elsewhere = true;
                link.link_netnsid = Some(*id);
            }
            LinkAttribute::OperState(state) => link.oper_state = Some(*state),
            LinkAttribute::Stats64(stats) => {
                link.tx_packets = Some(stats.tx_packets);
                link.rx_packets = Some(stats.rx_packets);
            }
            LinkAttribute::AfSpecUnspec(specs) => {
                for spec in specs {
                    if let AfSpecUnspec::Inet6(inet6) = spec {
                        for attribute in inet6 {
                            if let AfSpecInet6::AddrGenMode(mode) = attribute {
                                link.ipv6_autoconf = Some(*mode != In6AddrGenMode::None);
                            }
                        }
                    }
                }
            }
            LinkAttribute::LinkInfo(infos) => {
                for info in infos {
                    match info {
                        LinkInfo::Kind(kind) => link.kind = Some(kind.to_string()),
                        LinkInfo::Data(InfoData::Vxlan(data)) => link.vxlan = Some(parse_vxlan(data)),
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    link
}
