//! The walkthroughs of docs/ run for real, so they cannot rot. The markers are the ones
//! docs/README.md states: each ```` ```sh ```` block is shell, run in order in one `sh -e`
//! session per walkthrough (a fresh sandbox each, from a scratch folder where
//! `topologies/` is the repository's, this build's `netlab`, `vxlan-agent` and
//! `netlab-cni` first on PATH, on a pseudo-terminal as the reader's); a ```` ```console
//! ```` block is the output of the `sh` block before it (`...` alone on a line: any lines;
//! inside a line: any text), a ```` ```mermaid ```` block is exactly the output of the
//! `sh` block before it, which must be one `netlab graph FILE --format mermaid`, and a
//! ```` ```yaml ```` block is an excerpt of a lab file.
//!
//! The session runs in a PID namespace of its own (`unshare --pid --fork --kill-child`).
//! A walkthrough stops the daemons it starts; whatever is still running when its last
//! block ends is killed and fails it, and if the test itself ends early (a bound, a
//! panic), killing unshare takes the whole namespace with it.
//! Each test then asserts what its walkthrough claims (the checks pass, the capture
//! holds the frames the text describes) and that destroy left the sandbox as it was.
//! The harness (blocks, session, matching) is tests/support/docs.rs.

#[path = "support/docs.rs"]
mod harness;
mod support;

use std::path::Path;

use harness::{blocks, end_marker, excerpt_of, line_matches, output_matches, script, walk, walk_markdown, Kind, Walk};

/// Every ```yaml block of docs/ is an excerpt of a lab file of topologies/, so a
/// changed lab file cannot leave a walkthrough showing the old one.
#[test]
fn yaml_blocks_are_excerpts_of_the_lab_files() {
    let labs: Vec<(String, String)> = std::fs::read_dir(support::topology(""))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .map(|p| (p.display().to_string(), std::fs::read_to_string(&p).unwrap()))
        .collect();
    let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs");
    let mut excerpts = 0;
    for entry in std::fs::read_dir(&docs).unwrap() {
        let path = entry.unwrap().path();
        let markdown = std::fs::read_to_string(&path).unwrap();
        for block in blocks(&markdown).unwrap().iter().filter(|b| b.kind == Kind::Yaml) {
            assert!(
                labs.iter().any(|(_, lab)| excerpt_of(&block.text, lab)),
                "{}: the yaml block at line {} is in no file of topologies/:\n{}",
                path.display(),
                block.line,
                block.text
            );
            excerpts += 1;
        }
    }
    assert!(excerpts >= 5, "the walkthroughs show their lab files");
}

#[test]
fn an_excerpt_keeps_the_file_order() {
    let file = "name: x  # the lab\nnodes:\n  RED: {}\n  BLUE: {}\n";
    assert!(excerpt_of("nodes:\n\n  BLUE: {}   # comment\n", file));
    assert!(!excerpt_of("  BLUE: {}\n  RED: {}\n", file));
    assert!(!excerpt_of("  GREEN: {}\n", file));
}

/// Each `netlab check` of a walkthrough passed all its checks (`N passed, 0 failed`).
fn checks_passed(walk: &Walk) -> usize {
    let mut runs = 0;
    for (block, output) in walk.blocks.iter().zip(&walk.outputs) {
        let checks = block.text.lines().filter(|l| l.trim_start().starts_with("netlab check ")).count();
        if checks == 0 {
            continue;
        }
        let summaries: Vec<&str> = output.lines().filter(|l| l.ends_with(" failed")).collect();
        assert_eq!(summaries.len(), checks, "{}: block at line {}: {output}", walk.path.display(), block.line);
        for summary in summaries {
            assert!(summary.ends_with(" passed, 0 failed"), "{}: {summary}", walk.path.display());
        }
        runs += checks;
    }
    runs
}

/// The capture lines (the one-line summaries `netlab capture` prints on a terminal) of
/// the block that runs `netlab capture`.
fn capture_lines(walk: &Walk) -> Vec<String> {
    walk.output_of("netlab capture")
        .lines()
        .filter(|l| l.as_bytes().get(2) == Some(&b':') && (l.contains(" in ") || l.contains(" out ")))
        .map(str::to_string)
        .collect()
}

#[test]
fn part3_namespaces() {
    let walk = walk("part3-namespaces.md");
    assert_eq!(checks_passed(&walk), 3);
    // ARP on the host's side of RED's veth: RED asks for BLUE's address, BLUE answers.
    let lines = capture_lines(&walk);
    assert!(lines.iter().any(|l| l.contains(" in  42 bytes arp who-has 11.11.11.3 tell 11.11.11.2")), "{lines:#?}");
    assert!(lines.iter().any(|l| l.contains(" out 42 bytes arp reply 11.11.11.3 is-at ")), "{lines:#?}");
    // The drift made by hand shows in status (exit code 1), and apply repairs it.
    let status = walk.output_of("ip -n RED link set reth0 down");
    assert!(status.contains("differs    veth RED:reth0 (needs up)") && status.contains("exit code 1"), "{status}");
}

#[test]
fn part4_nat() {
    let walk = walk("part4-nat.md");
    assert_eq!(checks_passed(&walk), 4);
    // Going from part 3 to part 4 only adds.
    let plan = walk.output_of("netlab plan topologies/gateway.yaml --explain");
    assert!(plan.contains("would apply 3 changes (3 created)"), "{plan}");
    // On the outside link, RED's pings leave from the host's address, never RED's.
    let lines = capture_lines(&walk);
    assert!(lines.iter().any(|l| l.contains("198.51.100.1 > 203.0.113.1 icmp echo request")), "{lines:#?}");
    assert!(lines.iter().any(|l| l.contains("203.0.113.1 > 198.51.100.1 icmp echo reply")), "{lines:#?}");
    assert!(!lines.iter().any(|l| l.contains("11.11.11.")), "{lines:#?}");
}

#[test]
fn part6_static_overlay() {
    let walk = walk("part6-static-overlay.md");
    assert_eq!(checks_passed(&walk), 2);
    let lines = capture_lines(&walk);
    let wrapped = |direction: &str, outer: &str, inner: &str| {
        lines.iter().any(|l| {
            l.contains(&format!(" {direction} "))
                && l.contains(outer)
                && l.contains("> 4789 vxlan vni 42: ")
                && l.contains(inner)
        })
    };
    assert!(
        wrapped("out", "192.168.104.2 > 192.168.104.3 udp", "11.11.11.2 > 11.11.11.3 icmp echo request"),
        "{lines:#?}"
    );
    assert!(
        wrapped("in", "192.168.104.3 > 192.168.104.2 udp", "11.11.11.3 > 11.11.11.2 icmp echo reply"),
        "{lines:#?}"
    );
}

#[test]
fn part7_dynamic_overlay() {
    let walk = walk("part7-dynamic-overlay.md");
    assert_eq!(checks_passed(&walk), 2);
    let lines = capture_lines(&walk);
    assert!(
        lines.iter().any(|l| l.contains("> 4789 vxlan vni 42: 11.11.11.4 > 11.11.11.3 icmp echo request")),
        "{lines:#?}"
    );
}

#[test]
fn flannel_mode() {
    let walk = walk("flannel.md");
    assert_eq!(checks_passed(&walk), 1);
    let lines = capture_lines(&walk);
    assert!(
        lines.iter().any(|l| l.contains(" out ") && l.contains("udp") && l.contains("> 8472 vxlan vni 1: 10.244.")),
        "{lines:#?}"
    );
}

/// The harness itself: a wrong command, shown output that differs, and a lab left
/// behind each fail the walkthrough.
#[test]
#[should_panic(expected = "wrong.md: the sh block at line 4 failed")]
fn a_wrong_command_fails_its_walkthrough() {
    walk_markdown(
        "wrong.md".into(),
        "```sh\nnetlab apply topologies/veth-pair.yaml\n```\n```sh\nnetlab chek topologies/veth-pair.yaml\n```\n",
    );
}

#[test]
#[should_panic(expected = "stale.md: the console block at line 4 does not match")]
fn shown_output_that_differs_fails_its_walkthrough() {
    walk_markdown(
        "stale.md".into(),
        "```sh\nnetlab validate topologies/veth-pair.yaml\n```\n```console\ntopologies/veth-pair.yaml is fine\n```\n",
    );
}

#[test]
#[should_panic(expected = "left.md: the sandbox after the walkthrough")]
fn a_lab_left_behind_fails_its_walkthrough() {
    walk_markdown("left.md".into(), "```sh\nnetlab apply topologies/veth-pair.yaml\n```\n");
}

/// A process a walkthrough starts in the background and never stops (here one deaf to
/// the SIGHUP the end of the terminal sends) is killed when its session ends, and the
/// walkthrough fails.
#[test]
fn processes_left_running_are_killed() {
    let markdown = "```sh\n(trap '' HUP; exec sleep 86399) &\n```\n";
    let walked = std::panic::catch_unwind(|| walk_markdown("daemon.md".into(), markdown));
    let message = walked.err().and_then(|e| e.downcast::<String>().ok()).expect("the walkthrough failed");
    assert!(message.contains("daemon.md: processes it started were still running"), "{message}");
    let left = std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| std::fs::read(e.ok()?.path().join("cmdline")).ok())
        .filter(|cmdline| cmdline == b"sleep\086399\0")
        .count();
    assert_eq!(left, 0, "the walkthrough's sleep is still running");
}

/// Every walkthrough of docs/ has its test above, and the index links it.
#[test]
fn every_walkthrough_is_run() {
    let source = std::fs::read_to_string(file!()).unwrap();
    let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs");
    let index = std::fs::read_to_string(docs.join("README.md")).unwrap();
    for entry in std::fs::read_dir(&docs).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        if name.ends_with(".md") && name != "README.md" {
            assert!(source.contains(&format!("walk(\"{name}\")")), "docs/{name} has no test here");
            assert!(index.contains(&format!("({name})")), "docs/README.md does not link {name}");
        }
    }
}

#[test]
fn blocks_are_read_by_their_tags() {
    // A ```text block is not read (nor the ```sh line inside it).
    let markdown = "text\n```sh\nnetlab apply x\n```\n```text\n```sh\n```\n```yaml\na: 1\n```\n```console\nok\n```\n```mermaid\nflowchart\n```\n";
    let read = blocks(markdown).unwrap();
    let kinds: Vec<&Kind> = read.iter().map(|b| &b.kind).collect();
    assert_eq!(kinds, [&Kind::Run, &Kind::Yaml, &Kind::Console, &Kind::Mermaid]);
    assert_eq!((read[0].line, read[0].text.as_str()), (2, "netlab apply x\n"));
    assert_eq!((read[1].line, read[2].line), (8, 11));
    assert!(blocks("```console\nok\n```\n").unwrap_err().contains("line 1"));
    assert!(blocks("```sh\nnetlab apply x\n").unwrap_err().contains("never closed"));
}

#[test]
fn shown_output_matches_with_dots() {
    let output = "+ namespace RED\n    ip netns add RED\nwould apply 7 changes in 4 ms\n";
    assert!(output_matches("+ namespace RED\n...\nwould apply 7 changes in ... ms\n", output));
    assert!(output_matches("...\nwould apply 7 changes in ...\n", output));
    assert!(output_matches("+ namespace RED\n...\n", output));
    // Every shown line is required, in order, consecutive unless `...` separates them.
    assert!(!output_matches("+ namespace RED\nwould apply 7 changes in ... ms\n", output));
    assert!(!output_matches("+ namespace BLUE\n...\n", output));
    assert!(!output_matches("...\nwould apply 8 changes in ... ms\n", output));
    assert!(!output_matches("+ namespace RED\n", output));
    assert!(line_matches(
        "... out 148 bytes ... > 4789 vxlan vni 42: ...",
        "05:05 out 148 bytes 1 > 4789 vxlan vni 42: x"
    ));
    assert!(!line_matches("... vni 42 ...", "05:05 vni 4 2"));
    assert!(!line_matches("a...a", "a"));
}

#[test]
fn the_session_marks_each_block() {
    let read = blocks("```sh\na\n```\n```console\nx\n```\n```sh\nb\n```\n").unwrap();
    assert_eq!(
        script(&read),
        format!("a\nprintf '\\n%s\\n' '{}'\nb\nprintf '\\n%s\\n' '{}'\n", end_marker(0), end_marker(2))
    );
}
