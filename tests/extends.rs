//! `extends:`: labs that build on each other. Without root: the merge rules, errors
//! located in the file that caused them, and the part-4 labs equal to the full copies
//! they replaced. With root, in a sandbox: part 3 then part 4 is one apply that only adds.

mod support;

use std::path::{Path, PathBuf};

use netlab::model::{load, parse, LoadError, Place};
use support::{topology, Sandbox};

/// A directory of files for one test, removed when it ends.
struct Files(PathBuf);

impl Files {
    fn new(test: &str) -> Files {
        let dir = std::env::temp_dir().join(format!("netlab-extends-{}-{test}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Files(dir)
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.0.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, text).unwrap();
        path
    }

    fn path(&self, name: &str) -> String {
        self.0.join(name).display().to_string()
    }
}

impl Drop for Files {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn error(path: &Path) -> String {
    match load(path) {
        Ok(lab) => panic!("{} loaded: {lab:?}", path.display()),
        Err(e) => e.to_string(),
    }
}

const BASE: &str = "name: base\nhost:\n  bridges:\n    br0: {}\n  interfaces:\n    p: {bridge: br0, mtu: 1400}\n  sysctls:\n    net.ipv4.ip_forward: 0\nnodes:\n  A:\n    interfaces:\n      e0: {addresses: [10.0.0.2/24]}\nlinks:\n  - endpoints: [A:e0, host:p]\nchecks:\n  - ping: {from: A, to: 10.0.0.2}\n";

/// Each part-4 lab, now a difference over the one before, is the same lab as the full
/// copy it replaced (kept in tests/data/before-extends), but for its name: it is
/// bridge.yaml's, so that it applies over part 3 as the same lab.
#[test]
fn the_part_4_labs_are_the_full_copies_they_replaced_under_part_3s_name() {
    for lab in ["gateway.yaml", "nat.yaml", "port-forward.yaml"] {
        let new = load(&Path::new("topologies").join(lab)).unwrap();
        let old_text = std::fs::read_to_string(Path::new("tests/data/before-extends").join(lab)).unwrap();
        let old_name = format!("name: {}\n", lab.trim_end_matches(".yaml"));
        assert!(old_text.contains(&old_name), "{lab}");
        let old = parse(&format!("topologies/{lab}"), &old_text.replace(&old_name, "name: bridge\n")).unwrap();
        assert_eq!(new, old, "{lab}");
        assert_eq!(new.name.to_string(), "bridge");
    }
}

#[test]
fn maps_merge_key_by_key_lists_append_and_the_extending_file_wins_for_values() {
    let files = Files::new("rules");
    files.write("base.yaml", BASE);
    let lab = files.write(
        "lab.yaml",
        "extends: base.yaml\nhost:\n  bridges:\n    br0: {addresses: [10.0.0.1/24]}\n  interfaces:\n    p: {mtu: 1300}\n  sysctls:\n    net.ipv4.ip_forward: 1\nnodes:\n  A:\n    interfaces:\n      e0: {addresses: [10.0.0.3/24]}\n    routes:\n      - {to: default, via: 10.0.0.1}\n  B:\n    interfaces:\n      e0: {addresses: [10.0.0.4/24]}\nlinks:\n  - endpoints: [B:e0, host:q]\n",
    );
    let merged = load(&lab).unwrap();
    let inherited = parse(
        "lab.yaml",
        "name: base\nhost:\n  bridges:\n    br0: {addresses: [10.0.0.1/24]}\n  interfaces:\n    p: {bridge: br0, mtu: 1300}\n    q: {}\n  sysctls:\n    net.ipv4.ip_forward: 1\nnodes:\n  A:\n    interfaces:\n      e0: {addresses: [10.0.0.2/24, 10.0.0.3/24]}\n    routes:\n      - {to: default, via: 10.0.0.1}\n  B:\n    interfaces:\n      e0: {addresses: [10.0.0.4/24]}\nlinks:\n  - endpoints: [A:e0, host:p]\n  - endpoints: [B:e0, host:q]\nchecks:\n  - ping: {from: A, to: 10.0.0.2}\n",
    )
    .unwrap();
    assert_eq!(merged, inherited);

    // A file that lists checks lists all of its own; a name given replaces the base's.
    let lab = files.write("own.yaml", "extends: base.yaml\nname: own\nchecks:\n  - ping: {from: host, to: 10.0.0.2}\n");
    let own = load(&lab).unwrap();
    assert_eq!(own.name.to_string(), "own");
    assert_eq!(own.checks.len(), 1);
    assert!(format!("{:?}", own.checks[0]).contains("Host"), "{:?}", own.checks);
    assert!(own.namespaces.contains_key(&Place::Host));
}

#[test]
fn chains_resolve_each_base_relative_to_the_file_that_names_it() {
    let files = Files::new("chain");
    files.write("parts/base.yaml", BASE);
    files.write("parts/middle.yaml", "extends: base.yaml\nnodes:\n  A:\n    routes:\n      - {to: default, via: 10.0.0.1}\nhost:\n  bridges:\n    br0: {addresses: [10.0.0.1/24]}\n");
    let top = files.write("top.yaml", "extends: parts/middle.yaml\nhost:\n  sysctls:\n    net.ipv4.ip_forward: 1\n");
    let lab = load(&top).unwrap();
    assert_eq!(lab.name.to_string(), "base");
    let a = &lab.namespaces[&Place::Node("A".parse().unwrap())];
    assert_eq!(a.routes.len(), 1);
}

/// An error of a base file is reported in it, at its line and column; a conflict with
/// an inherited entry is reported in the extending file, at the entry.
#[test]
fn errors_are_located_in_the_file_that_caused_them() {
    let files = Files::new("located");
    files.write("base.yaml", &BASE.replace("10.0.0.2/24]", "10.0.0.300/24]"));
    let lab = files.write("lab.yaml", "extends: base.yaml\n");
    let message = error(&lab);
    assert!(
        message.starts_with(&format!("{}:12:24: malformed address `10.0.0.300/24`", files.path("base.yaml"))),
        "{message}"
    );

    files.write("base.yaml", &BASE.replace("nodes:", "nodez:"));
    let message = error(&lab);
    assert!(message.starts_with(&format!("{}:9:1: unknown field `nodez`", files.path("base.yaml"))), "{message}");

    files.write("base.yaml", BASE);
    let lab = files.write("lab.yaml", "extends: base.yaml\nnodes:\n  A:\n    interfaces:\n      e0: {addresses: [10.0.0.2/24]}\nlinks:\n  - endpoints: [host:p, A:e0]\n");
    let message = error(&lab);
    let lab_name = files.path("lab.yaml");
    assert!(
        message.contains(&format!("{lab_name}:5:24: address 10.0.0.2/24 is already declared in the base file")),
        "{message}"
    );
    assert!(
        message.contains(&format!("{lab_name}:7:16: link [host:p, A:e0] is already declared in the base file")),
        "{message}"
    );

    let lab = files
        .write("lab.yaml", "extends: base.yaml\nnodes:\n  A:\n    routes:\n      - {to: default, via: 10.9.9.1}\n");
    let message = error(&lab);
    assert!(message.starts_with(&format!("{lab_name}:5:")), "{message}");
    assert!(message.contains("10.9.9.1"), "{message}");
}

/// A finding of the merged lab at a value of the base is reported in the base, at that
/// value's line and column: here forwarding turned off by the extending file leaves the
/// base's masquerade without it.
#[test]
fn a_finding_of_the_merged_lab_names_the_file_of_the_value_it_is_at() {
    let files = Files::new("warning");
    let base = BASE.replace(
        "net.ipv4.ip_forward: 0\n",
        "net.ipv4.ip_forward: 1\n  nat:\n    masquerade:\n      - {from: 10.0.0.0/24, out: p}\n",
    );
    files.write("base.yaml", &base);
    assert!(load(&files.0.join("base.yaml")).unwrap().warnings.is_empty());
    let lab = files.write(
        "lab.yaml",
        "# turns forwarding off\nextends: base.yaml\nhost:\n  sysctls:\n    net.ipv4.ip_forward: 0\n",
    );
    let warnings = load(&lab).unwrap().warnings;
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    let expected = format!(
        "{}:11:16: warning: host has NAT or published ports but does not enable forwarding",
        files.path("base.yaml")
    );
    assert!(warnings[0].starts_with(&expected), "{warnings:?}");

    // Several errors of the merged lab at once, each at its line of the extending file.
    let lab = files.write("lab.yaml", "extends: base.yaml\nnodes:\n  A:\n    routes:\n      - {to: default, via: 10.9.9.1}\nlinks:\n  - endpoints: [host:p, B:e0]\n");
    let message = error(&lab);
    assert!(message.contains(&format!("{}:5:", files.path("lab.yaml"))), "{message}");
    assert!(message.contains(&format!("{}:7:", files.path("lab.yaml"))), "{message}");
}

#[test]
fn a_missing_base_a_cycle_and_a_deep_chain_are_errors_at_the_extends_line() {
    let files = Files::new("bad");
    let lab = files.write("lab.yaml", "# a lab\nextends: nope.yaml\n");
    let message = error(&lab);
    let lab_name = files.path("lab.yaml");
    assert!(message.starts_with(&format!("{lab_name}:2:10: extends nope.yaml: read ")), "{message}");
    assert!(message.contains("No such file or directory"), "{message}");

    files.write("a.yaml", "extends: b.yaml\n");
    files.write("b.yaml", "extends: ./a.yaml\n");
    let message = error(&files.0.join("a.yaml"));
    assert!(message.starts_with(&format!("{}:1:10: `extends` makes a cycle: ", files.path("b.yaml"))), "{message}");
    let itself = files.write("self.yaml", "extends: self.yaml\n");
    assert!(error(&itself).contains("`extends` makes a cycle"));

    files.write("deep0.yaml", BASE);
    for level in 1..=8 {
        files.write(&format!("deep{level}.yaml"), &format!("extends: deep{}.yaml\n", level - 1));
    }
    // Eight files in all: allowed. Nine: refused, where the eighth names the ninth.
    assert!(load(&files.0.join("deep7.yaml")).is_ok());
    let message = error(&files.0.join("deep8.yaml"));
    assert!(
        message.starts_with(&format!("{}:1:10: `extends` goes deeper than 8 files", files.path("deep1.yaml"))),
        "{message}"
    );

    // A text alone has no directory to find its base in.
    let Err(e) = parse("x.yaml", "extends: bridge.yaml\n") else { panic!("parsed") };
    assert!(e.to_string().starts_with("x.yaml:1:10: `extends` needs a file on disk"), "{e}");
    assert!(matches!(load(Path::new("/nonexistent/lab.yaml")), Err(LoadError::Read(..))));
}

/// Part 3 applied, then part 4: the plan only adds (nothing removed, nothing made
/// again), the apply passes part 4's checks, and destroy leaves the sandbox as it was.
#[test]
fn part_4_applies_over_part_3_as_the_same_lab_and_only_adds() {
    let sandbox = Sandbox::new();
    let before = sandbox.snapshot();
    let (bridge, gateway, nat) = (topology("bridge.yaml"), topology("gateway.yaml"), topology("nat.yaml"));
    sandbox.netlab_ok(&["apply", &bridge]);
    assert!(sandbox.netlab_ok(&["check", &bridge]).contains("3 passed, 0 failed"));

    let plan = sandbox.netlab_ok(&["plan", &gateway]);
    assert_eq!(
        changes(&plan),
        [
            "+ address 11.11.11.1/24 on br0",
            "+ route default via 11.11.11.1 in BLUE",
            "+ route default via 11.11.11.1 in RED",
        ],
        "{plan}"
    );
    assert!(plan.contains("would apply 3 changes (3 created) to lab bridge"), "{plan}");
    sandbox.netlab_ok(&["apply", &gateway]);
    assert!(sandbox.netlab_ok(&["check", &gateway]).contains("3 passed, 0 failed"));
    assert_eq!(sandbox.netlab_ok(&["plan", &gateway]).trim(), "no changes");

    // On to NAT: additions, forwarding turned on and the nat table; nothing of parts 3
    // and 4 before it is touched again.
    let plan = sandbox.netlab_ok(&["plan", &nat]);
    let added = changes(&plan);
    assert!(
        added.contains(&"+ namespace EXT") && added.contains(&"~ sysctl net.ipv4.ip_forward in host: 0 -> 1"),
        "{plan}"
    );
    for line in added {
        assert!(!line.starts_with('-'), "{plan}");
        assert!(!["RED", "BLUE", "br0", "reth", "beth"].iter().any(|old| line.contains(old)), "{plan}");
    }
    sandbox.netlab_ok(&["apply", &nat]);
    assert!(sandbox.netlab_ok(&["check", &nat]).contains("4 passed, 0 failed"));

    sandbox.netlab_ok(&["destroy", &nat]);
    assert_eq!(sandbox.snapshot(), before);
}

/// The change lines of `netlab plan`: `+` create, `-` delete, `~` change.
fn changes(plan: &str) -> Vec<&str> {
    plan.lines().filter(|l| l.starts_with(['+', '-', '~'])).collect()
}
