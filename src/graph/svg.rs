//! An SVG image of the picture, laid out by layout-rs (a pure-Rust port of Graphviz's
//! layered layout), so no external program is needed. layout-rs has no clusters: the
//! boxes of each simulated host are framed here, after layout, from their positions.

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

pub fn render(picture: &Picture) -> String {
    let orientation = Orientation::TopToBottom;
    let mut graph = VisualGraph::new(orientation);
    let mut handles: BTreeMap<&str, NodeHandle> = BTreeMap::new();
    // Boxes of one simulated host added together: the layout keeps insertion order as
    // its starting order, which keeps them side by side more often than not.
    let mut order: Vec<usize> = (0..picture.vertices.len()).collect();
    order.sort_by_key(|&i| picture.vertices[i].group.map_or(usize::MAX, |g| g));
    for &index in &order {
        let vertex = &picture.vertices[index];
        let fill = match vertex.kind {
            BoxKind::Namespace => "lightblue",
            BoxKind::Host => "lightgoldenrodyellow",
            BoxKind::Bridge => "palegreen",
            BoxKind::Vxlan => "plum",
            BoxKind::Existing => "lightgray",
            BoxKind::RemoteVtep => "white",
            BoxKind::Store => "lightyellow",
        };
        let text = vertex.lines.join("\n");
        let shape = match vertex.kind {
            BoxKind::RemoteVtep => ShapeKind::Circle(text),
            _ => ShapeKind::Box(text),
        };
        let rounded = if matches!(vertex.kind, BoxKind::Namespace | BoxKind::Host) { 0 } else { 10 };
        let look = StyleAttr::new(Color::fast("black"), 1, Some(Color::fast(fill)), rounded, FONT);
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
    with_frames(&svg, &picture.lab, &frames)
}

/// One frame per simulated host: the bounding box of its boxes, with its label.
fn frames(picture: &Picture, graph: &VisualGraph, handles: &BTreeMap<&str, NodeHandle>) -> String {
    let mut out = String::new();
    for (index, group) in picture.groups.iter().enumerate() {
        let mut bounds: Option<(f64, f64, f64, f64)> = None;
        for vertex in picture.vertices.iter().filter(|v| v.group == Some(index)) {
            let (top_left, bottom_right) = graph.pos(handles[vertex.id.as_str()]).bbox(false);
            let b = bounds.get_or_insert((top_left.x, top_left.y, bottom_right.x, bottom_right.y));
            *b = (b.0.min(top_left.x), b.1.min(top_left.y), b.2.max(bottom_right.x), b.3.max(bottom_right.y));
        }
        let Some((x0, y0, x1, y1)) = bounds else { continue };
        let (x, y) = ((x0 - FRAME_MARGIN).max(0.), (y0 - FRAME_MARGIN - EDGE_FONT as f64).max(0.));
        let _ = write!(
            out,
            "<g class=\"simulated-host\"><rect x=\"{x}\" y=\"{y}\" width=\"{}\" height=\"{}\" fill=\"#f4f4f4\" \
             stroke=\"#666\" stroke-dasharray=\"6,4\" rx=\"8\"/><text x=\"{}\" y=\"{}\" font-size=\"{EDGE_FONT}\" \
             font-family=\"Helvetica, sans-serif\" font-weight=\"bold\">{}</text></g>\n",
            x1 + FRAME_MARGIN - x,
            y1 + FRAME_MARGIN - y,
            x + 6.,
            y + EDGE_FONT as f64 + 2.,
            escape(&group.label)
        );
    }
    out
}

/// The frames go first in the document, so the boxes and edges are drawn over them.
fn with_frames(svg: &str, lab: &str, frames: &str) -> String {
    let title = format!("<title>{}</title>\n", escape(lab));
    match svg.find("</style>") {
        Some(at) => {
            let at = at + "</style>".len();
            format!("{}\n{title}{frames}{}", &svg[..at], &svg[at..])
        }
        None => svg.to_string(),
    }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}
