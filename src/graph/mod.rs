//! The picture of a lab: a topology becomes a small graph model (boxes, edges, groups of
//! boxes for simulated hosts), which `dot`, `mermaid` and `svg` turn into text. Pure: no
//! I/O, no kernel.

mod build;
pub mod dot;
pub mod mermaid;
pub mod svg;

pub use build::picture;

/// What a box stands for; the renderers choose a shape and colour from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BoxKind {
    /// A node's network namespace.
    Namespace,
    /// The namespace netlab runs in.
    Host,
    Bridge,
    Vxlan,
    /// A device of the host netlab does not create (a VM's own card).
    Existing,
    /// A VTEP address outside the lab (a remote, a multicast group, an FDB destination).
    RemoteVtep,
    /// The store a dynamic overlay publishes its endpoints to.
    Store,
}

/// One box of the picture. `lines[0]` is its name; the others are details (addresses,
/// NAT, routes).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Vertex {
    /// Unique in the picture; stable across runs.
    pub id: String,
    pub kind: BoxKind,
    pub lines: Vec<String>,
    /// Index into `Picture::groups`.
    pub group: Option<usize>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EdgeKind {
    /// A veth pair, between the boxes its two ends are in (or the bridges they are ports of).
    Veth,
    /// A device inside its namespace, or a VXLAN device as a port of its bridge.
    Contains,
    /// A VXLAN device and the lower device / namespace its UDP socket rides on.
    Underlay,
    /// A VXLAN device and a VTEP it sends to (another device of the lab, or a remote).
    Tunnel,
    /// A VXLAN device and the store its endpoints are published to.
    Publishes,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Edge {
    pub from: String,
    pub to: String,
    pub kind: EdgeKind,
    /// One line per detail; empty when the edge says enough by its kind.
    pub lines: Vec<String>,
}

/// A simulated host: an underlay namespace and the namespaces that live "on" it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Group {
    pub id: String,
    pub label: String,
    /// The id of the box of the host's own namespace (the underlay).
    pub root: String,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Picture {
    pub lab: String,
    pub groups: Vec<Group>,
    pub vertices: Vec<Vertex>,
    pub edges: Vec<Edge>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Graphviz.
    Dot,
    /// A Mermaid flowchart (renders on GitHub).
    Mermaid,
    /// An SVG image laid out by netlab itself.
    Svg,
    /// The graph model itself: boxes, edges and groups as objects.
    Json,
}

/// The picture of `topology` in `format`; only an SVG of a very large lab is refused.
pub fn render(topology: &crate::model::Topology, format: Format) -> Result<String, svg::TooLarge> {
    let picture = picture(topology);
    Ok(match format {
        Format::Dot => dot::render(&picture),
        Format::Mermaid => mermaid::render(&picture),
        Format::Svg => svg::render(&picture)?,
        Format::Json => serde_json::to_string_pretty(&picture).expect("a picture serializes") + "\n",
    })
}
