//! An SVG image of the picture, laid out by layout-rs (a pure-Rust port of Graphviz's
//! layered layout), so no external program is needed.
//!
//! layout-rs has no clusters, and its ordering pass may interleave the boxes of two
//! simulated hosts. So each box on a simulated host says so itself (an outline in the
//! host's colour and an "on HOST" line); a frame around a host's boxes is added only
//! where it holds no box of another host and crosses no other frame.

use std::collections::BTreeMap;
use std::fmt::Write;

use layout::adt::dag::NodeHandle;
use layout::backends::svg::SVGWriter;
use layout::core::base::Orientation;
use layout::core::color::Color;
use layout::core::style::{LineStyleKind, StyleAttr};
use layout::std_shapes::render::get_shape_size;
use layout::std_shapes::shapes::{Arrow, Element, LineEndKind, ShapeKind};
use layout::topo::layout::VisualGraph;

use super::{BoxKind, EdgeKind, Picture};

const FONT: usize = 13;
const EDGE_FONT: usize = 11;
/// Space between a simulated host's frame and the boxes inside it.
const FRAME_MARGIN: f64 = 14.;
/// Outline colours of the simulated hosts, in turn.
const HOST_COLOURS: [&str; 6] = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b"];

type Rect = (f64, f64, f64, f64);

/// layout-rs's ordering and placement passes grow much faster than the graph: a lab of
/// 100 namespaces on a bridge (about 300 boxes and edges) takes 3 s in a debug build,
/// one of 300 takes 80 s. Beyond this many, the SVG is refused rather than left hanging.
pub const MAX_ELEMENTS: usize = 400;

#[derive(Debug, thiserror::Error)]
#[error(
    "svg: the lab draws as {0} boxes and edges; netlab lays out at most {MAX_ELEMENTS} (use -o dot with \
     Graphviz for larger labs)"
)]
pub struct TooLarge(pub usize);

pub fn render(picture: &Picture) -> Result<String, TooLarge> {
    let elements = picture.vertices.len() + picture.edges.len();
    if elements > MAX_ELEMENTS {
        return Err(TooLarge(elements));
    }
    let orientation = Orientation::TopToBottom;
    let mut graph = VisualGraph::new(orientation);
    let mut handles: BTreeMap<&str, NodeHandle> = BTreeMap::new();
    for vertex in &picture.vertices {
        let fill = match vertex.kind {
            BoxKind::Namespace => "lightblue",
            BoxKind::Host => "lightgoldenrodyellow",
            BoxKind::Bridge => "palegreen",
            BoxKind::Vxlan => "plum",
            BoxKind::Existing => "lightgray",
            BoxKind::RemoteVtep => "white",
            BoxKind::Store => "lightyellow",
        };
        let mut lines = vertex.lines.clone();
        let (mut outline, mut width) = ("black", 1);
        if let Some(index) = vertex.group {
            let group = &picture.groups[index];
            outline = HOST_COLOURS[index % HOST_COLOURS.len()];
            width = 3;
            if vertex.id != group.root {
                let host = group.root.trim_start_matches("ns/");
                // A device already says which namespace it is in: "in ov1 on host1".
                match lines.get_mut(1).filter(|line| line.starts_with("in ")) {
                    Some(line) => line.push_str(&format!(" on {host}")),
                    None => lines.insert(1, format!("on {host}")),
                }
            }
        }
        let text = lines.join("\n");
        let shape = match vertex.kind {
            BoxKind::RemoteVtep => ShapeKind::Circle(text),
            _ => ShapeKind::Box(text),
        };
        let rounded = if matches!(vertex.kind, BoxKind::Namespace | BoxKind::Host) { 0 } else { 10 };
        let look = StyleAttr::new(Color::fast(outline), width, Some(Color::fast(fill)), rounded, FONT);
        let size = get_shape_size(orientation, &shape, FONT, false);
        handles.insert(vertex.id.as_str(), graph.add_node(Element::create(shape, look, orientation, size)));
    }
    for edge in &picture.edges {
        let (Some(&from), Some(&to)) = (handles.get(edge.from.as_str()), handles.get(edge.to.as_str())) else {
            continue;
        };
        let (style, width, colour) = match edge.kind {
            EdgeKind::Veth => (LineStyleKind::Normal, 2, "black"),
            EdgeKind::Contains => (LineStyleKind::Dashed, 1, "gray"),
            EdgeKind::Underlay => (LineStyleKind::Normal, 3, "purple"),
            EdgeKind::Tunnel => (LineStyleKind::Dashed, 2, "purple"),
            EdgeKind::Publishes => (LineStyleKind::Dashed, 1, "darkgoldenrod"),
        };
        let look = StyleAttr::new(Color::fast(colour), width, None, 0, EDGE_FONT);
        let arrow =
            Arrow::new(LineEndKind::None, LineEndKind::None, style, &edge.lines.join("\n"), &look, &None, &None);
        graph.add_edge(arrow, from, to);
    }
    let mut writer = SVGWriter::new();
    graph.do_it(false, false, false, &mut writer);
    let svg = writer.finalize();

    let frames = frames(picture, &graph, &handles);
    // layout-rs grows its canvas by a guess at each text's size (far too tall for long
    // labels): the canvas is set again from what was laid out.
    let mut extent = (0f64, 0f64);
    for node in graph.iter_nodes() {
        let (_, bottom_right) = graph.pos(node).bbox(false);
        extent = (extent.0.max(bottom_right.x), extent.1.max(bottom_right.y));
    }
    for (_, _, x1, y1) in frames.iter().map(|(rect, _)| rect) {
        extent = (extent.0.max(*x1), extent.1.max(*y1));
    }
    let mut drawn = String::new();
    for (index, ((x0, y0, x1, y1), label)) in frames.iter().enumerate() {
        let colour = HOST_COLOURS[index % HOST_COLOURS.len()];
        let _ = writeln!(
            drawn,
            "<g class=\"simulated-host\"><rect x=\"{x0}\" y=\"{y0}\" width=\"{}\" height=\"{}\" fill=\"#f6f6f6\" \
             stroke=\"{colour}\" stroke-dasharray=\"6,4\" rx=\"8\"/><text x=\"{}\" y=\"{}\" font-size=\"{EDGE_FONT}\" \
             font-family=\"Helvetica, sans-serif\" font-weight=\"bold\" fill=\"{colour}\">{}</text></g>",
            x1 - x0,
            y1 - y0,
            x0 + 6.,
            y0 + EDGE_FONT as f64 + 2.,
            escape(label)
        );
    }
    Ok(finish(&svg, &picture.lab, &drawn, (extent.0 + 10., extent.1 + 10.)))
}

/// The frames of the simulated hosts that can be drawn cleanly (see the module's comment).
fn frames(picture: &Picture, graph: &VisualGraph, handles: &BTreeMap<&str, NodeHandle>) -> Vec<(Rect, String)> {
    let rect_of = |id: &str| {
        let (a, b) = graph.pos(handles[id]).bbox(false);
        (a.x, a.y, b.x, b.y)
    };
    let mut candidates = Vec::new();
    for (index, group) in picture.groups.iter().enumerate() {
        let members = picture.vertices.iter().filter(|v| v.group == Some(index));
        let Some(bounds) =
            members.map(|v| rect_of(&v.id)).reduce(|a, b| (a.0.min(b.0), a.1.min(b.1), a.2.max(b.2), a.3.max(b.3)))
        else {
            continue;
        };
        let frame = (
            (bounds.0 - FRAME_MARGIN).max(0.),
            (bounds.1 - FRAME_MARGIN - EDGE_FONT as f64).max(0.),
            bounds.2 + FRAME_MARGIN,
            bounds.3 + FRAME_MARGIN,
        );
        let foreign = picture.vertices.iter().filter(|v| v.group != Some(index));
        let clean = foreign.map(|v| rect_of(&v.id)).all(|r| !overlaps(frame, r));
        candidates.push((frame, group.label.clone(), clean));
    }
    let all = candidates.clone();
    candidates
        .into_iter()
        .enumerate()
        .filter(|(i, (frame, _, clean))| {
            *clean && all.iter().enumerate().all(|(j, other)| j == *i || !overlaps(*frame, other.0))
        })
        .map(|(_, (frame, label, _))| (frame, label))
        .collect()
}

fn overlaps(a: Rect, b: Rect) -> bool {
    a.0 < b.2 && b.0 < a.2 && a.1 < b.3 && b.1 < a.3
}

/// The document with its canvas set to `size`, a title, and the frames drawn first so
/// that boxes and edges are drawn over them.
fn finish(svg: &str, lab: &str, frames: &str, size: (f64, f64)) -> String {
    let (width, height) = (size.0.ceil(), size.1.ceil());
    let header = format!(
        "<svg width=\"{width}\" height=\"{height}\" viewBox=\"0 0 {width} {height}\" \
         xmlns=\"http://www.w3.org/2000/svg\">\n<title>{}</title>\n",
        escape(lab)
    );
    let (Some(open), Some(style_end)) = (svg.find("<svg "), svg.find("</style>")) else {
        return svg.to_string();
    };
    let Some(open_end) = svg[open..].find('>').map(|at| open + at + 1) else {
        return svg.to_string();
    };
    let after_style = style_end + "</style>".len();
    // layout-rs lists its font classes in HashMap order: sorted, the same file gives the
    // same image every time.
    let style = &svg[open_end..after_style];
    let mut classes: Vec<&str> = style.lines().filter(|line| line.starts_with('.')).collect();
    classes.sort_unstable();
    let style = format!(
        "{}<style>\n{}\n</style>",
        &style[..style.find("<style>").unwrap_or(0)].trim_start(),
        classes.join("\n").replace("Times, serif", "Helvetica, Arial, sans-serif")
    );
    // A white halo under every text keeps edge labels readable where a line crosses them.
    let halo = "<style>text { paint-order: stroke; stroke: white; stroke-width: 3px; stroke-linejoin: round; }</style>";
    let (body, labels) = edge_labels_last(&svg[after_style..]);
    format!("{}{header}{}\n{halo}\n{frames}{body}{labels}</svg>", &svg[..open], style)
}

/// layout-rs draws an edge's label (at a point of the edge) before the edge itself, so
/// the line runs over the text; moved to the end, the labels (with their halo) are on top.
/// Returns the body without its closing `</svg>`, and the labels.
fn edge_labels_last(body: &str) -> (String, String) {
    let body = body.trim_end().strip_suffix("</svg>").unwrap_or(body);
    let edge_class = format!("class=\"a{EDGE_FONT}\"");
    let (mut kept, mut labels) = (String::new(), String::new());
    let mut rest = body;
    while let Some(start) = rest.find("<text dominant-baseline") {
        let Some(end) = rest[start..].find("</text>").map(|at| start + at + "</text>".len()) else { break };
        kept.push_str(&rest[..start]);
        let text = &rest[start..end];
        if text.contains(&edge_class) {
            // The halo as attributes too: not every renderer applies it from CSS.
            labels.push_str(&text.replacen(
                "<text ",
                "<text paint-order=\"stroke\" stroke=\"white\" stroke-width=\"4\" stroke-linejoin=\"round\" ",
                1,
            ));
            labels.push('\n');
        } else {
            kept.push_str(text);
        }
        rest = &rest[end..];
    }
    kept.push_str(rest);
    (kept, labels)
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}
