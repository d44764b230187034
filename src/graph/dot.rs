//! Graphviz text: `netlab graph FILE --format dot | dot -Tpng > lab.png`.

use std::fmt::Write;

use super::{BoxKind, Edge, EdgeKind, Picture, Vertex};

pub fn render(picture: &Picture) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "graph {} {{", quote(&picture.lab));
    out.push_str("  rankdir=LR;\n  node [shape=box, style=\"rounded,filled\", fontname=\"Helvetica\", fontsize=11];\n");
    out.push_str("  edge [fontname=\"Helvetica\", fontsize=9];\n");
    for (index, group) in picture.groups.iter().enumerate() {
        let _ = writeln!(out, "  subgraph {} {{", quote(&format!("cluster_{index}")));
        let _ = writeln!(out, "    label={}; style=dashed; color=gray40;", quote(&group.label));
        for vertex in picture.vertices.iter().filter(|v| v.group == Some(index)) {
            out.push_str("    ");
            vertex_line(&mut out, vertex);
        }
        out.push_str("  }\n");
    }
    for vertex in picture.vertices.iter().filter(|v| v.group.is_none()) {
        out.push_str("  ");
        vertex_line(&mut out, vertex);
    }
    for edge in &picture.edges {
        edge_line(&mut out, edge);
    }
    out.push_str("}\n");
    out
}

fn vertex_line(out: &mut String, vertex: &Vertex) {
    let (shape, fill) = match vertex.kind {
        BoxKind::Namespace => ("box", "lightblue"),
        BoxKind::Host => ("box", "lightgoldenrod"),
        BoxKind::Bridge => ("box", "palegreen"),
        BoxKind::Vxlan => ("box", "plum"),
        BoxKind::Existing => ("box", "lightgray"),
        BoxKind::RemoteVtep => ("ellipse", "white"),
        BoxKind::Store => ("cylinder", "lightyellow"),
    };
    let _ = writeln!(
        out,
        "{} [label={}, shape={shape}, fillcolor={fill}];",
        quote(&vertex.id),
        quote(&vertex.lines.join("\n"))
    );
}

fn edge_line(out: &mut String, edge: &Edge) {
    let style = match edge.kind {
        EdgeKind::Veth => "solid",
        EdgeKind::Contains => "dotted",
        EdgeKind::Underlay => "bold",
        EdgeKind::Tunnel | EdgeKind::Publishes => "dashed",
    };
    let _ = write!(out, "  {} -- {} [style={style}", quote(&edge.from), quote(&edge.to));
    if !edge.lines.is_empty() {
        let _ = write!(out, ", label={}", quote(&edge.lines.join("\n")));
    }
    out.push_str("];\n");
}

/// A DOT string: `"` and `\` escaped, a newline as `\n` (a centred line break).
pub fn quote(text: &str) -> String {
    let mut quoted = String::with_capacity(text.len() + 2);
    quoted.push('"');
    for c in text.chars() {
        match c {
            '"' => quoted.push_str("\\\""),
            '\\' => quoted.push_str("\\\\"),
            '\n' => quoted.push_str("\\n"),
            c => quoted.push(c),
        }
    }
    quoted.push('"');
    quoted
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quote_escapes_quotes_backslashes_and_newlines() {
        assert_eq!(quote("a\"b\\c\nd"), "\"a\\\"b\\\\c\\nd\"");
    }
}
