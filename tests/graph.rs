//! `netlab graph`, without root: for every lab in topologies/ (and topologies/vm/), each
//! format names every node, bridge, VXLAN device, existing device, veth link and NAT rule
//! of the parsed file, and the SVG is well-formed XML.

use std::path::{Path, PathBuf};
use std::process::Command;

use netlab::graph::{render, Format};
use netlab::model::{LinkKind, Topology};

fn labs() -> Vec<PathBuf> {
    let mut files = Vec::new();
    for dir in ["topologies", "topologies/vm"] {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "yaml") {
                files.push(path);
            }
        }
    }
    files.sort();
    assert!(files.len() >= 15, "labs found: {files:?}");
    files
}

/// The contents of every quoted string of a DOT or Mermaid text, unescaped, cut into
/// lines: what a reader sees in the boxes and on the edges.
fn quoted_lines(text: &str, unescape: fn(&str) -> String, line_break: &str) -> Vec<String> {
    let mut lines = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find('"') {
        let body = &rest[start + 1..];
        let mut end = 0;
        let bytes = body.as_bytes();
        while end < bytes.len() && bytes[end] != b'"' {
            end += if bytes[end] == b'\\' { 2 } else { 1 };
        }
        let end = end.min(body.len());
        lines.extend(body[..end].split(line_break).map(unescape));
        rest = &body[(end + 1).min(body.len())..];
    }
    lines
}

fn dot_lines(text: &str) -> Vec<String> {
    quoted_lines(text, |s| s.replace("\\\"", "\"").replace("\\\\", "\\"), "\\n")
}

fn mermaid_lines(text: &str) -> Vec<String> {
    quoted_lines(
        text,
        |s| s.replace("#quot;", "\"").replace("#lt;", "<").replace("#gt;", ">").replace("#35;", "#"),
        "<br>",
    )
}

/// The text of every `<tspan>` (one line of a box or an edge label); the SVG must parse.
fn svg_lines(text: &str, file: &Path) -> Vec<String> {
    let document =
        roxmltree::Document::parse(text).unwrap_or_else(|e| panic!("{}: svg does not parse: {e}", file.display()));
    assert_eq!(document.root_element().tag_name().name(), "svg");
    document
        .descendants()
        .filter(|n| n.tag_name().name() == "tspan")
        .map(|n| n.text().unwrap_or_default().to_string())
        .collect()
}

/// What the picture must show of `topology`, as (line the reader must see, how many times
/// at least). A line starting with `^` only has to start a line.
fn expected(topology: &Topology) -> Vec<(String, usize)> {
    let mut want: Vec<(String, usize)> = Vec::new();
    let mut add = |line: String| match want.iter_mut().find(|(l, _)| *l == line) {
        Some((_, count)) => *count += 1,
        None => want.push((line, 1)),
    };
    for place in topology.nodes() {
        add(place.to_string());
    }
    for (place, spec) in &topology.namespaces {
        for (name, link) in &spec.links {
            match &link.kind {
                LinkKind::Loopback => {}
                LinkKind::Bridge => add(format!("{name} (bridge)")),
                LinkKind::Vxlan(vxlan) => {
                    add(format!("{name} (vxlan)"));
                    add(format!("VNI {} port {}", vxlan.vni, vxlan.port));
                    add(format!("over {}:{}", vxlan.underlay, vxlan.dev));
                }
                // Each end of a veth pair, named as NODE:IFNAME (host:IFNAME in the host), starts a line of its edge.
                LinkKind::Veth { .. } => add(format!("^{place}:{name}")),
            }
        }
        for name in &spec.existing {
            add(format!("{name} (existing device)"));
        }
        for masquerade in &spec.nat.masquerade {
            add(format!("^masquerade {}", masquerade.from));
        }
        for publish in &spec.nat.publish {
            add(format!("publish {} {} -> {}", publish.protocol.name(), publish.on, publish.to));
        }
    }
    want
}

fn assert_shows(file: &Path, format: &str, topology: &Topology, lines: &[String]) {
    for (line, count) in expected(topology) {
        let found = match line.strip_prefix('^') {
            Some(prefix) => lines
                .iter()
                .filter(|l| l.starts_with(prefix) && l[prefix.len()..].chars().next().is_none_or(|c| c == ' '))
                .count(),
            None => lines.iter().filter(|l| **l == line).count(),
        };
        assert!(
            found >= count,
            "{} ({format}): {line:?} shown {found} times, expected {count}: {lines:#?}",
            file.display()
        );
    }
}

#[test]
fn every_lab_in_every_format_shows_all_it_declares() {
    for file in labs() {
        let topology = netlab::model::load(&file).unwrap();
        assert_shows(&file, "dot", &topology, &dot_lines(&render(&topology, Format::Dot).unwrap()));
        assert_shows(&file, "mermaid", &topology, &mermaid_lines(&render(&topology, Format::Mermaid).unwrap()));
        assert_shows(&file, "svg", &topology, &svg_lines(&render(&topology, Format::Svg).unwrap(), &file));
    }
}

#[test]
fn simulated_hosts_are_clusters_in_dot_and_subgraphs_in_mermaid() {
    let topology = netlab::model::load(Path::new("topologies/overlay-static.yaml")).unwrap();
    let dot = render(&topology, Format::Dot).unwrap();
    let mermaid = render(&topology, Format::Mermaid).unwrap();
    // ct1 (a container) sits in host1's cluster, with ov1 (its vxlan rides on host1).
    let cluster = |name: &str| {
        let start = dot.find(&format!("label=\"{name} (simulated host)\"")).expect(name);
        dot[start..dot[start..].find("  }").map(|end| start + end).unwrap()].to_string()
    };
    for member in ["\"ns/host1\"", "\"ns/ov1\"", "\"ns/ct1\"", "\"dev/ov1/vxlan1\""] {
        assert!(cluster("host1").contains(member), "{member} not in host1's cluster:\n{dot}");
        assert!(!cluster("host2").contains(member), "{member} in host2's cluster:\n{dot}");
    }
    assert_eq!(mermaid.matches("subgraph ").count(), 2, "{mermaid}");
}

#[test]
fn the_command_writes_a_file_or_stdout_and_refuses_an_unknown_format() {
    let netlab = env!("CARGO_BIN_EXE_netlab");
    let dir = std::env::temp_dir().join(format!("netlab-graph-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let out = dir.join("nat.mmd");
    let status =
        Command::new(netlab).args(["graph", "topologies/nat.yaml", "-o", "mermaid", "-w"]).arg(&out).status().unwrap();
    assert!(status.success());
    let topology = netlab::model::load(Path::new("topologies/nat.yaml")).unwrap();
    assert_eq!(std::fs::read_to_string(&out).unwrap(), render(&topology, Format::Mermaid).unwrap());
    let stdout = Command::new(netlab).args(["graph", "topologies/nat.yaml", "--format", "svg"]).output().unwrap();
    assert!(stdout.status.success());
    assert_eq!(String::from_utf8(stdout.stdout).unwrap(), render(&topology, Format::Svg).unwrap());
    let wrong = Command::new(netlab).args(["graph", "topologies/nat.yaml", "--format", "png"]).output().unwrap();
    assert_eq!(wrong.status.code(), Some(2));
    // JSON: the picture's boxes and edges as objects.
    let json = Command::new(netlab).args(["graph", "topologies/nat.yaml", "-o", "json"]).output().unwrap();
    let json: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    let picture = netlab::graph::picture(&topology);
    assert_eq!(json["lab"], picture.lab.as_str());
    assert_eq!(json["vertices"].as_array().unwrap().len(), picture.vertices.len());
    assert_eq!(json["edges"].as_array().unwrap().len(), picture.edges.len());
    assert!(json["vertices"].as_array().unwrap().iter().any(|v| v["kind"] == "namespace" && v["lines"][0] == "EXT"));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_readme_example_is_what_netlab_draws() {
    let readme = std::fs::read_to_string("README.md").unwrap();
    let start = readme.find("```mermaid\n").expect("a mermaid example in README.md") + "```mermaid\n".len();
    let end = start + readme[start..].find("```").unwrap();
    let topology = netlab::model::load(Path::new("topologies/bridge.yaml")).unwrap();
    assert_eq!(&readme[start..end], render(&topology, Format::Mermaid).unwrap());
}

#[test]
fn an_svg_of_a_lab_too_large_to_lay_out_is_refused_with_the_way_out() {
    let mut yaml = String::from("name: big\nhost:\n  bridges: {br0: {}}\n  interfaces:\n");
    let count = netlab::graph::svg::MAX_ELEMENTS;
    for i in 0..count {
        yaml.push_str(&format!("    h{i}: {{bridge: br0}}\n"));
    }
    yaml.push_str("nodes:\n");
    for i in 0..count {
        yaml.push_str(&format!("  n{i}: {{}}\n"));
    }
    yaml.push_str("links:\n");
    for i in 0..count {
        yaml.push_str(&format!("  - endpoints: [n{i}:e, host:h{i}]\n"));
    }
    let topology = netlab::model::parse("big.yaml", &yaml).unwrap();
    let error = render(&topology, Format::Svg).unwrap_err().to_string();
    assert!(error.contains("use -o dot"), "{error}");
    // dot and mermaid have no such limit.
    assert!(render(&topology, Format::Dot).unwrap().contains(&format!("\"ns/n{}\"", count - 1)));
}

#[test]
fn the_dot_of_every_lab_parses_as_dot() {
    // The parser does refuse broken text (an edge without its far end, an unclosed quote).
    assert!(layout::gv::DotParser::new("graph { a -- ; }").process().is_err());
    assert!(layout::gv::DotParser::new("graph { \"a [label=x]; }").process().is_err());
    for file in labs() {
        let topology = netlab::model::load(&file).unwrap();
        let dot = render(&topology, Format::Dot).unwrap();
        let mut parser = layout::gv::DotParser::new(&dot);
        if let Err(error) = parser.process() {
            panic!("{}: dot does not parse: {error}\n{dot}", file.display());
        }
    }
}
