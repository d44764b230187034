//! A Mermaid flowchart: GitHub renders it inside a ```mermaid block.

use std::collections::BTreeMap;
use std::fmt::Write;

use super::{BoxKind, EdgeKind, Picture, Vertex};

pub fn render(picture: &Picture) -> String {
    // Mermaid ids must be plain words: number the boxes, the names go in the labels.
    let ids: BTreeMap<&str, String> =
        picture.vertices.iter().enumerate().map(|(i, v)| (v.id.as_str(), format!("n{i}"))).collect();
    let mut out = String::from("flowchart LR\n");
    for (index, group) in picture.groups.iter().enumerate() {
        let _ = writeln!(out, "  subgraph g{index} [{}]", label(&group.label));
        for vertex in picture.vertices.iter().filter(|v| v.group == Some(index)) {
            out.push_str("    ");
            vertex_line(&mut out, &ids[vertex.id.as_str()], vertex);
        }
        out.push_str("  end\n");
    }
    for vertex in picture.vertices.iter().filter(|v| v.group.is_none()) {
        out.push_str("  ");
        vertex_line(&mut out, &ids[vertex.id.as_str()], vertex);
    }
    for edge in &picture.edges {
        let (from, to) = (&ids[edge.from.as_str()], &ids[edge.to.as_str()]);
        let arrow = match edge.kind {
            EdgeKind::Veth => "---",
            EdgeKind::Contains => "-.-",
            EdgeKind::Underlay => "===",
            EdgeKind::Tunnel | EdgeKind::Publishes => "-.-",
        };
        if edge.lines.is_empty() {
            let _ = writeln!(out, "  {from} {arrow} {to}");
        } else {
            let _ = writeln!(out, "  {from} {arrow}|{}| {to}", label(&edge.lines.join("\n")));
        }
    }
    out
}

fn vertex_line(out: &mut String, id: &str, vertex: &Vertex) {
    let text = label(&vertex.lines.join("\n"));
    let _ = match vertex.kind {
        BoxKind::Namespace | BoxKind::Host => writeln!(out, "{id}[{text}]"),
        BoxKind::Bridge | BoxKind::Vxlan | BoxKind::Existing => writeln!(out, "{id}([{text}])"),
        BoxKind::RemoteVtep => writeln!(out, "{id}(({text}))"),
        BoxKind::Store => writeln!(out, "{id}[({text})]"),
    };
}

/// A quoted Mermaid label: `"` and characters Mermaid reads as markup become entity
/// codes, a newline `<br>`.
pub fn label(text: &str) -> String {
    let mut quoted = String::from("\"");
    for c in text.chars() {
        match c {
            '"' => quoted.push_str("#quot;"),
            '<' => quoted.push_str("#lt;"),
            '>' => quoted.push_str("#gt;"),
            '#' => quoted.push_str("#35;"),
            '\n' => quoted.push_str("<br>"),
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
    fn labels_escape_markup_and_break_lines() {
        assert_eq!(label("a \"b\"\n1 -> 2 #3"), "\"a #quot;b#quot;<br>1 -#gt; 2 #35;3\"");
    }
}
