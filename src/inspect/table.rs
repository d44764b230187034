//! The text of `netlab inspect`: per namespace, a table of interfaces, then routes,
//! VXLAN devices and their entries, in aligned columns. Colour (for `missing`, a
//! namespace that is not there, a link that is down) only when asked: the command
//! asks on a terminal without NO_COLOR, as logs do.

use super::{Inspection, InterfaceView, NodeView, Presence, Role};

#[derive(Clone, Copy, PartialEq, Eq)]
enum Paint {
    Plain,
    Bold,
    Red,
    Yellow,
}

struct Cell {
    text: String,
    paint: Paint,
}

impl Cell {
    fn plain(text: impl Into<String>) -> Cell {
        Cell { text: text.into(), paint: Paint::Plain }
    }

    fn painted(text: impl Into<String>, paint: Paint) -> Cell {
        Cell { text: text.into(), paint }
    }
}

fn or_dash(value: Option<impl ToString>) -> String {
    value.map(|v| v.to_string()).unwrap_or_else(|| "-".into())
}

fn paint(text: &str, paint: Paint, colour: bool) -> String {
    let code = match paint {
        _ if !colour => return text.to_string(),
        Paint::Plain => return text.to_string(),
        Paint::Bold => "1",
        Paint::Red => "31",
        Paint::Yellow => "33",
    };
    format!("\x1b[{code}m{text}\x1b[0m")
}

/// Rows under a header, each column as wide as its widest cell (counted in
/// characters, before colour), two spaces apart, indented by two.
fn grid(out: &mut Vec<String>, header: &[&str], rows: Vec<Vec<Cell>>, colour: bool) {
    if rows.is_empty() {
        return;
    }
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.text.chars().count());
        }
    }
    let line = |cells: Vec<Cell>| {
        let last = cells.len().saturating_sub(1);
        let parts: Vec<String> = cells
            .into_iter()
            .zip(&widths)
            .enumerate()
            .map(|(i, (cell, width))| {
                let pad = if i == last { 0 } else { width - cell.text.chars().count() };
                format!("{}{}", paint(&cell.text, cell.paint, colour), " ".repeat(pad))
            })
            .collect();
        format!("  {}", parts.join("  "))
    };
    out.push(line(header.iter().map(|h| Cell::painted(*h, Paint::Bold)).collect()));
    out.extend(rows.into_iter().map(line));
}

/// The whole inspection as lines of text.
pub fn render(inspection: &Inspection, colour: bool) -> Vec<String> {
    let mut out = vec![format!("lab {}", inspection.lab)];
    for node in &inspection.nodes {
        out.push(String::new());
        node_lines(&mut out, node, colour);
    }
    if !inspection.agents.is_empty() {
        out.push(String::new());
        out.push(paint("agents", Paint::Bold, colour));
        let rows = inspection.agents.iter().map(agent_row).collect();
        grid(&mut out, &["AGENT", "STATE", "PID", "INSTALLED", "RESTARTS", "LOG"], rows, colour);
    }
    out
}

fn agent_row(agent: &crate::agents::AgentReport) -> Vec<Cell> {
    let state = match agent.running {
        true => Cell::plain("running"),
        false => Cell::painted("stopped", Paint::Red),
    };
    let installed = match (agent.neighbours, agent.fdb, &agent.subnet) {
        (Some(neighbours), Some(fdb), _) => format!("{neighbours} neigh, {fdb} fdb"),
        (_, _, Some(subnet)) => format!("subnet {subnet}, {} routes", agent.routes.unwrap_or(0)),
        _ => "-".into(),
    };
    let log = agent.log.as_ref().map(|l| l.display());
    vec![
        Cell::plain(&agent.agent),
        state,
        Cell::plain(or_dash(agent.pid)),
        Cell::plain(installed),
        Cell::plain(agent.restarts.to_string()),
        Cell::plain(or_dash(log)),
    ]
}

fn node_lines(out: &mut Vec<String>, node: &NodeView, colour: bool) {
    let role = match node.role {
        Role::Host => "host",
        Role::Node => "node",
        Role::SimulatedHost => "simulated host",
    };
    let presence = match node.namespace {
        Presence::Present => None,
        Presence::Missing => Some("namespace missing"),
        Presence::Stale => Some("namespace stale (a name without a namespace)"),
        Presence::Foreign => Some("not this lab's namespace"),
        Presence::Unreadable => Some("namespace unreadable"),
    };
    let mut title = paint(&format!("{} ({role})", node.place), Paint::Bold, colour);
    if let Some(presence) = presence {
        title.push_str(": ");
        title.push_str(&paint(presence, Paint::Red, colour));
        if let Some(detail) = &node.detail {
            title.push_str(&format!(" ({detail})"));
        }
    }
    out.push(title);

    let header = ["INTERFACE", "KIND", "PEER", "MASTER", "MAC", "MTU", "STATE", "OPER", "ADDRESSES"];
    grid(out, &header, node.interfaces.iter().map(interface_row).collect(), colour);

    let routes = node
        .routes
        .iter()
        .map(|r| {
            let to = if r.to.prefix() == 0 { "default".to_string() } else { r.to.to_string() };
            vec![
                Cell::plain(to),
                Cell::plain(or_dash(r.via)),
                Cell::plain(or_dash(r.dev.as_ref())),
                presence_or(r.exists, or_dash(r.proto.as_ref())),
            ]
        })
        .collect();
    grid(out, &["ROUTE", "VIA", "DEV", "PROTO"], routes, colour);

    let vxlans = node
        .interfaces
        .iter()
        .filter_map(|i| Some((i, i.vxlan.as_ref()?)))
        .map(|(i, v)| {
            let flags: Vec<&str> =
                [("learning", v.learning), ("proxy", v.proxy), ("l2miss", v.l2miss), ("l3miss", v.l3miss)]
                    .into_iter()
                    .filter_map(|(name, on)| on.then_some(name))
                    .collect();
            let dev = match (&v.underlay, &v.dev) {
                (Some(place), Some(dev)) => place.qualify(dev),
                _ => "-".into(),
            };
            vec![
                Cell::plain(&i.name),
                Cell::plain(v.vni.to_string()),
                Cell::plain(v.port.to_string()),
                Cell::plain(or_dash(v.local)),
                Cell::plain(or_dash(v.group)),
                Cell::plain(dev),
                Cell::plain(if flags.is_empty() { "-".to_string() } else { flags.join(",") }),
            ]
        })
        .collect();
    grid(out, &["VXLAN", "VNI", "PORT", "LOCAL", "REMOTE", "DEV", "FLAGS"], vxlans, colour);

    let neighbours = node
        .neighbours
        .iter()
        .map(|n| {
            let mut state = n.state.join(",");
            if n.extern_learn {
                state.push_str(",extern_learn");
            }
            vec![
                Cell::plain(n.ip.to_string()),
                Cell::plain(or_dash(n.mac)),
                Cell::plain(&n.dev),
                presence_or(n.exists, if state.is_empty() { "-".into() } else { state }),
                Cell::plain(or_dash(n.proto.as_ref())),
            ]
        })
        .collect();
    grid(out, &["NEIGHBOUR", "MAC", "DEV", "STATE", "PROTO"], neighbours, colour);

    let fdb = node
        .fdb
        .iter()
        .map(|f| {
            let flags: Vec<&str> = [("permanent", f.permanent), ("extern_learn", f.extern_learn)]
                .into_iter()
                .filter_map(|(name, on)| on.then_some(name))
                .collect();
            vec![
                Cell::plain(f.mac.to_string()),
                Cell::plain(&f.dev),
                Cell::plain(or_dash(f.dst)),
                presence_or(f.exists, if flags.is_empty() { "-".to_string() } else { flags.join(",") }),
            ]
        })
        .collect();
    grid(out, &["FDB", "DEV", "DST", "STATE"], fdb, colour);
}

/// `missing` (in red) for what the lab declares and the kernel lacks, else `text`.
fn presence_or(exists: bool, text: String) -> Cell {
    if exists {
        Cell::plain(text)
    } else {
        Cell::painted("missing", Paint::Red)
    }
}

fn interface_row(i: &InterfaceView) -> Vec<Cell> {
    let state = match i.up {
        _ if !i.exists => Cell::painted("missing", Paint::Red),
        Some(true) => Cell::plain("up"),
        Some(false) => Cell::painted("down", Paint::Yellow),
        None => Cell::plain("-"),
    };
    let mut addresses: Vec<String> = i.addresses.iter().map(ToString::to_string).collect();
    addresses.extend(i.missing_addresses.iter().map(|a| format!("{a} (missing)")));
    let kind = if i.existing { format!("{} (existing)", i.kind) } else { i.kind.clone() };
    vec![
        Cell::plain(&i.name),
        Cell::plain(kind),
        Cell::plain(or_dash(i.peer.as_ref())),
        Cell::plain(or_dash(i.master.as_ref())),
        Cell::plain(or_dash(i.mac)),
        Cell::plain(or_dash(i.mtu)),
        state,
        Cell::plain(or_dash(i.oper_state.as_ref())),
        match (addresses.is_empty(), i.missing_addresses.is_empty()) {
            (true, _) => Cell::plain("-"),
            (false, true) => Cell::plain(addresses.join(",")),
            (false, false) => Cell::painted(addresses.join(","), Paint::Red),
        },
    ]
}
