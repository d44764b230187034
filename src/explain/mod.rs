//! Each change of a plan as the iproute2 / bridge / nft / iptables / sysctl commands a
//! reader of the tutorial would type for it, building what netlab builds: the same
//! ownership marks (link alias `netlab:<lab>`, the lab's interface group in the
//! creating request, `lo` of each namespace marked, `proto 77` on routes and
//! neighbours, the nft table's comment, the iptables rule's comment) and the same
//! steps in the same order as `apply` (see `apply::changes` and
//! `apply::namespaces`), so `netlab status` takes the result as the lab's. Pure: no
//! I/O; `shell` writes the commands as sh.
//!
//! Where a command cannot be exactly what apply does, a note on it says so.
//!
//! Names come after a keyword that takes the next word whatever it is (`name`, `dev`,
//! `peer name`, `master`), so an interface called `up` or `mtu` is never read as an
//! option.

pub mod nft;
mod shaping;
pub mod shell;

use ipnetwork::IpNetwork;

use crate::model::{IfName, LabName, Place, RouteSpec};
use crate::ownership;
use crate::plan::agents::{AgentProcess, AgentSpec};
use crate::plan::firewall::{table_name, Backend, Direction, ForwardAccept};
use crate::plan::{Change, LinkSettings, LinkUpdate, VethEnd};

/// One word of a command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Arg {
    Word(String),
    /// The network namespace of the shell running the script (netlab's "host"), as a
    /// path `ip ... netns` opens: `/proc/$$/ns/net`. Only a shell knows `$$`.
    ShellNetns,
    /// The end of a command started in the background: standard input from
    /// /dev/null, output and errors appended to this file (a process that outlives
    /// the script must hold none of its pipes).
    OutputTo(String),
    /// The MAC of an interface the script made, read when the command runs (the kernel
    /// chose it): `"$(ip netns exec NODE cat /sys/class/net/IF/address)"`.
    MacOf(crate::model::Endpoint),
}

/// A command: its words, what it reads on standard input, and notes on where it
/// differs from what apply does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    pub args: Vec<Arg>,
    pub stdin: Option<String>,
    pub notes: Vec<String>,
}

impl Command {
    fn new<S: Into<String>>(words: impl IntoIterator<Item = S>) -> Command {
        Command { args: words.into_iter().map(|w| Arg::Word(w.into())).collect(), stdin: None, notes: Vec::new() }
    }

    fn note(mut self, note: &str) -> Command {
        self.notes.push(note.to_string());
        self
    }
}

impl std::fmt::Display for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&shell::command_text(self))
    }
}

/// The command that makes one change of an overlay store: vxlan-agent's own.
pub fn store_commands(change: &crate::store_changes::StoreChange) -> Vec<Command> {
    use crate::store_changes::StoreAction;
    let verb = match change.action {
        StoreAction::Publish => "publish",
        StoreAction::Withdraw => "withdraw",
    };
    let mut command = Command::new(["vxlan-agent", verb, "--store", &change.store.to_string(), "--ip"]);
    command.args.push(Arg::Word(change.ip.to_string()));
    command.args.push(Arg::Word("--mac".into()));
    command.args.push(match (&change.mac, &change.interface) {
        (Some(mac), _) => Arg::Word(mac.to_string()),
        (None, Some(interface)) => Arg::MacOf(interface.clone()),
        (None, None) => Arg::Word("MAC".into()),
    });
    command.args.push(Arg::Word("--vtep".into()));
    command.args.push(Arg::Word(change.vtep.to_string()));
    let tls = change.tls.clone().unwrap_or_default();
    for (flag, path) in [("--etcd-ca", &tls.ca), ("--etcd-cert", &tls.cert), ("--etcd-key", &tls.key)] {
        if let Some(path) = path {
            command.args.push(Arg::Word(flag.into()));
            command.args.push(Arg::Word(path.display().to_string()));
        }
    }
    vec![command]
}

/// The commands that make one change, in order.
pub fn commands(lab: &LabName, change: &Change) -> Vec<Command> {
    Explainer { lab, mark: ownership::mark(lab), group: ownership::group(lab).to_string() }.change(change)
}

struct Explainer<'a> {
    lab: &'a LabName,
    mark: String,
    group: String,
}

/// `kill PID` for each process of an agent.
fn stop_agent(running: &[AgentProcess]) -> Vec<Command> {
    running
        .iter()
        .map(|process| {
            Command::new(["kill".to_string(), process.pid.to_string()]).note(
                "apply first checks the pid is still that agent (its start time and command line), then waits for it \
                 to exit (SIGKILL after 3 s)",
            )
        })
        .collect()
}

/// `ip` (or `bridge`) in a namespace: `-n NODE` for a node, nothing for the host.
fn tool(program: &str, place: &Place) -> Vec<String> {
    match place {
        Place::Host => vec![program.to_string()],
        Place::Node(node) => vec![program.to_string(), "-n".into(), node.to_string()],
    }
}

fn ip(place: &Place, words: &[&str]) -> Command {
    let mut all = tool("ip", place);
    all.extend(words.iter().map(|w| w.to_string()));
    Command::new(all)
}

fn sysctl(place: &Place, key: &str, value: &str) -> Command {
    let assignment = format!("{key}={value}");
    let mut words = in_namespace(place, "sysctl");
    words.extend(["-w".to_string(), assignment]);
    Command::new(words)
}

/// A prefix as `ip route` is typed: `default` for the IPv4 default route.
fn destination(to: &IpNetwork) -> String {
    match to {
        IpNetwork::V4(v4) if v4.prefix() == 0 => "default".into(),
        other => other.to_string(),
    }
}

fn route_words(route: &RouteSpec) -> Vec<String> {
    let mut words = vec![destination(&route.to)];
    if let Some(via) = route.via {
        words.extend(["via".into(), via.to_string()]);
    }
    if let Some(dev) = &route.dev {
        words.extend(["dev".into(), dev.to_string()]);
    }
    words.extend(["proto".into(), ownership::PROTOCOL.to_string()]);
    words
}

impl Explainer<'_> {
    /// The agent in the background, in its own session, inside the underlay's
    /// namespace, its output in the lab's folder.
    fn start_agent(&self, agent: &AgentSpec) -> Vec<Command> {
        let dir = crate::agents::lab_dir(self.lab).display().to_string();
        let log = format!("{dir}/{}.log", agent.key().file_stem());
        let mut words = in_namespace(&agent.underlay, "setsid");
        words.extend(["-f".to_string(), crate::agents::PROGRAM.to_string()]);
        words.extend(agent.args());
        let mut start = Command::new(words).note(
            "apply runs it under the lab's supervisor (`netlab supervise`), which starts it again when it dies or its \
             device is made again, and waits until it has loaded its store; started here, it runs unsupervised",
        );
        start.args.push(Arg::OutputTo(log));
        vec![Command::new(["mkdir", "-p", dir.as_str()]), start]
    }

    fn change(&self, change: &Change) -> Vec<Command> {
        match change {
            Change::StartAgent { agent } => self.start_agent(agent),
            Change::RestartAgent { agent, running } => {
                let mut commands = stop_agent(running);
                commands.extend(self.start_agent(agent));
                commands
            }
            Change::StopAgent { running, .. } => stop_agent(running),
            Change::CreateNamespace { namespace } => {
                let place = Place::Node(namespace.clone());
                vec![
                    Command::new(["ip", "netns", "add", namespace.as_str()]),
                    sysctl(&place, "net.ipv6.conf.default.addr_gen_mode", "1")
                        .note("IPv6 autoconfiguration off for links to come; apply skips it where IPv6 is disabled"),
                    ip(&place, &["link", "set", "dev", "lo", "alias", &self.mark, "up"]),
                ]
            }
            Change::DeleteNamespace { namespace } => vec![Command::new(["ip", "netns", "delete", namespace.as_str()])],
            Change::CreateBridge { place, name, settings } => {
                let up = up_at_creation(place, settings);
                let mut create = tool("ip", place);
                create.extend(["link".into(), "add".into(), "name".into(), name.to_string()]);
                create.extend(self.new_link(settings, up));
                create.extend(["type".into(), "bridge".into()]);
                let mut commands = vec![Command::new(create)];
                commands.extend(self.finish_link(place, name, settings, false, up, true));
                commands
            }
            Change::CreateVeth { a, b } => self.veth(a, b),
            Change::CreateVxlan { place, name, settings, vxlan } => {
                let mut create = tool("ip", &vxlan.underlay);
                create.extend(["link".into(), "add".into(), "name".into(), name.to_string()]);
                create.extend(self.new_link(settings, false));
                let mut args: Vec<Arg> = create.into_iter().map(Arg::Word).collect();
                // Made in the underlay's request and placed directly in its namespace.
                if place != &vxlan.underlay {
                    args.push(Arg::Word("netns".into()));
                    args.push(match place {
                        Place::Node(node) => Arg::Word(node.to_string()),
                        Place::Host => Arg::ShellNetns,
                    });
                }
                let mut rest = vec!["type".to_string(), "vxlan".into(), "id".into(), vxlan.vni.to_string()];
                rest.extend(["dstport".into(), vxlan.port.to_string(), "local".into(), vxlan.local.to_string()]);
                rest.extend(["dev".into(), vxlan.dev.to_string()]);
                if let Some(group) = vxlan.group {
                    let word = if group.is_multicast() { "group" } else { "remote" };
                    rest.extend([word.into(), group.to_string()]);
                }
                if !vxlan.learning {
                    rest.push("nolearning".into());
                }
                for (on, word) in [(vxlan.proxy, "proxy"), (vxlan.l2miss, "l2miss"), (vxlan.l3miss, "l3miss")] {
                    if on {
                        rest.push(word.into());
                    }
                }
                if let Some(ttl) = vxlan.ttl {
                    rest.extend(["ttl".into(), ttl.to_string()]);
                }
                args.extend(rest.into_iter().map(Arg::Word));
                let mut commands = vec![Command { args, stdin: None, notes: Vec::new() }];
                commands.extend(self.finish_link(place, name, settings, true, false, true));
                commands
            }
            Change::SetLink { place, name, update } => vec![self.set_link(place, name, update)],
            Change::DeleteLink { place, name, .. } => vec![ip(place, &["link", "delete", "dev", name.as_str()])
                .note("apply deletes the lab's links of a namespace in one request by interface group when all of them go, and counts a link already gone (with its veth peer) as deleted")],
            Change::AddAddress { place, link, address } => vec![address_command(place, "add", link, address)],
            Change::DeleteAddress { place, link, address } => vec![address_command(place, "del", link, address)],
            Change::AddRoute { place, route } => {
                let mut words = vec!["route".to_string(), "add".into()];
                words.extend(route_words(route));
                vec![ip(place, &words.iter().map(String::as_str).collect::<Vec<_>>())]
            }
            Change::DeleteRoute { place, route } => {
                let mut words = vec!["route".to_string(), "del".into()];
                words.extend(route_words(route));
                vec![ip(place, &words.iter().map(String::as_str).collect::<Vec<_>>())]
            }
            Change::SetNeighbour { place, entry, .. } => {
                let (ip_text, mac, protocol) = (entry.ip.to_string(), entry.mac.to_string(), ownership::PROTOCOL.to_string());
                vec![ip(
                    place,
                    &["neigh", "replace", &ip_text, "lladdr", &mac, "dev", entry.dev.as_str(), "nud", "permanent", "proto", &protocol],
                )]
            }
            Change::DeleteNeighbour { place, entry } => {
                vec![ip(place, &["neigh", "del", &entry.ip.to_string(), "dev", entry.dev.as_str()])]
            }
            Change::SetFdb { place, entry, .. } => {
                let mut words = tool("bridge", place);
                words.extend(["fdb", "replace", &entry.mac.to_string(), "dev", entry.dev.as_str(), "dst", &entry.dst.to_string(), "self", "permanent"].map(String::from));
                vec![Command::new(words)]
            }
            Change::DeleteFdb { place, entry } => {
                let mut words = tool("bridge", place);
                words.extend(["fdb", "del", &entry.mac.to_string(), "dev", entry.dev.as_str(), "dst", &entry.dst.to_string(), "self"].map(String::from));
                vec![Command::new(words)]
            }
            Change::SetSysctl { place, key, value, previous } => {
                let command = sysctl(place, key.as_str(), value);
                match (place, previous) {
                    (Place::Host, Some(previous)) => vec![command.note(&format!(
                        "was {previous}: netlab destroy restores it from the record apply keeps, which a script does not write"
                    ))],
                    _ => vec![command],
                }
            }
            Change::SetNatTable { place, nat, .. } => nft::replace_table(self.lab, nat)
                .into_iter()
                .map(|input| {
                    let mut words = in_namespace(place, "nft");
                    if input.json {
                        words.push("-j".into());
                    }
                    words.extend(["-f".into(), "-".into()]);
                    let mut command = Command::new(words);
                    if !input.json {
                        command = command.note(
                            "the table replaced whole; apply first proves a table of this name carries the lab's mark and never replaces one that does not",
                        );
                    }
                    command.stdin = Some(input.text);
                    command
                })
                .collect(),
            Change::DeleteNatTable { place } => {
                let mut words = in_namespace(place, "nft");
                words.extend(["delete".into(), "table".into(), "ip".into(), table_name(self.lab)]);
                vec![Command::new(words)
                    .note("apply deletes it only once its comment proves it the lab's, by its handle")]
            }
            Change::SetShaping { place, link, shaping, .. } => vec![shaping::replace(place, link, shaping)],
            Change::DeleteShaping { place, link } => vec![shaping::delete(place, link)],
            Change::AddForwardAccept { place, accept } => vec![self.iptables(place, "-I", accept)],
            Change::DeleteForwardAccept { place, accept } => vec![self.iptables(place, "-D", accept)],
        }
    }

    /// The words of a creating request before `type`: the lab's group first (the mark
    /// that holds before the alias is set), then what the link is made with.
    fn new_link(&self, settings: &LinkSettings, up: bool) -> Vec<String> {
        let mut words = vec!["group".to_string(), self.group.clone()];
        if let Some(mtu) = settings.mtu {
            words.extend(["mtu".into(), mtu.to_string()]);
        }
        if let Some(mac) = settings.mac {
            words.extend(["address".into(), mac.to_string()]);
        }
        if up {
            words.push("up".into());
        }
        words
    }

    /// As `apply::changes::create_veth`: the pair made from `a`'s namespace with the
    /// peer directly in `b`'s, then `a` finished (while `b` is down), then `b`.
    fn veth(&self, a: &VethEnd, b: &VethEnd) -> Vec<Command> {
        let a_up = up_at_creation(&a.place, &a.settings);
        let mut words = tool("ip", &a.place);
        words.extend(["link".into(), "add".into(), "name".into(), a.name.to_string()]);
        words.extend(self.new_link(&a.settings, a_up));
        if let Some(master) = &a.settings.master {
            words.extend(["master".into(), master.to_string()]);
        }
        words.extend(["type".into(), "veth".into(), "peer".into(), "name".into(), b.name.to_string()]);
        let mut args: Vec<Arg> = words.into_iter().map(Arg::Word).collect();
        if b.place != a.place {
            args.push(Arg::Word("netns".into()));
            args.push(match &b.place {
                Place::Node(node) => Arg::Word(node.to_string()),
                Place::Host => Arg::ShellNetns,
            });
        }
        // The peer never comes up in the creating request (the kernel refuses it).
        args.extend(self.new_link(&b.settings, false).into_iter().map(Arg::Word));
        let mut commands = vec![Command { args, stdin: None, notes: Vec::new() }];
        commands.extend(self.finish_link(&a.place, &a.name, &a.settings, false, a_up, false));
        commands.extend(self.finish_link(&b.place, &b.name, &b.settings, true, false, a.settings.up));
        commands
    }

    /// As `apply::changes::finish_link`: the mark, the bridge, the IPv6 mode, and up,
    /// in one command unless the link may already have carrier while its IPv6 mode
    /// changes (then up comes in a second one).
    fn finish_link(
        &self,
        place: &Place,
        name: &IfName,
        settings: &LinkSettings,
        set_master: bool,
        came_up: bool,
        carrier_possible: bool,
    ) -> Vec<Command> {
        let mut words =
            vec!["link".to_string(), "set".into(), "dev".into(), name.to_string(), "alias".into(), self.mark.clone()];
        if let (Some(bridge), true) = (&settings.master, set_master) {
            words.extend(["master".into(), bridge.to_string()]);
        }
        let ipv6_autoconf = match (place, settings.ipv6_autoconf) {
            (_, true) => Some(true),
            (Place::Host, false) => Some(false),
            (Place::Node(_), false) => None,
        };
        if let Some(on) = ipv6_autoconf {
            words.extend(["addrgenmode".into(), if on { "eui64" } else { "none" }.into()]);
        }
        let bring_up = settings.up && !came_up;
        let together = ipv6_autoconf.is_none() || !carrier_possible;
        if together && bring_up {
            words.push("up".into());
        }
        let mut commands = vec![ip(place, &words.iter().map(String::as_str).collect::<Vec<_>>())];
        if !together && bring_up {
            commands.push(ip(place, &["link", "set", "dev", name.as_str(), "up"]));
        }
        commands
    }

    fn set_link(&self, place: &Place, name: &IfName, update: &LinkUpdate) -> Command {
        let mut words = vec!["link".to_string(), "set".into(), "dev".into(), name.to_string()];
        if update.mark {
            words.extend(["alias".into(), self.mark.clone()]);
        }
        if let Some(mtu) = update.mtu {
            words.extend(["mtu".into(), mtu.to_string()]);
        }
        if let Some(mac) = update.mac {
            words.extend(["address".into(), mac.to_string()]);
        }
        match &update.master {
            Some(Some(bridge)) => words.extend(["master".into(), bridge.to_string()]),
            Some(None) => words.push("nomaster".into()),
            None => {}
        }
        match update.up {
            Some(true) => words.push("up".into()),
            Some(false) => words.push("down".into()),
            None => {}
        }
        if let Some(on) = update.ipv6_autoconf {
            words.extend(["addrgenmode".into(), if on { "eui64" } else { "none" }.into()]);
        }
        ip(place, &words.iter().map(String::as_str).collect::<Vec<_>>())
    }

    fn iptables(&self, place: &Place, action: &str, accept: &ForwardAccept) -> Command {
        let program = match accept.backend {
            Backend::Nft => "iptables",
            Backend::Legacy => "iptables-legacy",
        };
        let flag = match accept.direction {
            Direction::From => "-s",
            Direction::To => "-d",
        };
        let mut words = in_namespace(place, program);
        words.extend(
            [
                "-w",
                action,
                "FORWARD",
                flag,
                &accept.prefix.to_string(),
                "-m",
                "comment",
                "--comment",
                &self.mark,
                "-j",
                "ACCEPT",
            ]
            .map(String::from),
        );
        let command = Command::new(words);
        match accept.backend {
            // Debian's `iptables` is iptables-nft; apply runs iptables-nft where it exists.
            Backend::Nft => command.note("iptables here is the nf_tables variant (iptables-nft)"),
            Backend::Legacy => command,
        }
    }
}

/// A program run inside a node's namespace (`ip netns exec NODE`), or in the host.
fn in_namespace(place: &Place, program: &str) -> Vec<String> {
    match place {
        Place::Host => vec![program.to_string()],
        Place::Node(node) => vec!["ip".into(), "netns".into(), "exec".into(), node.to_string(), program.to_string()],
    }
}

/// As `apply::changes::up_at_creation`.
fn up_at_creation(place: &Place, settings: &LinkSettings) -> bool {
    settings.up && *place != Place::Host && !settings.ipv6_autoconf
}

/// IPv6 addresses skip duplicate address detection, as apply adds them.
fn address_command(place: &Place, action: &str, link: &IfName, address: &IpNetwork) -> Command {
    let text = address.to_string();
    let mut words = vec!["addr", action, text.as_str(), "dev", link.as_str()];
    if address.is_ipv6() && action == "add" {
        words.push("nodad");
    }
    ip(place, &words)
}

#[cfg(test)]
mod tests;
