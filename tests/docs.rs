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

mod support;

use std::path::{Path, PathBuf};
use std::process::{Child, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use support::{firewall, text, Sandbox};

/// Upper bound for one walkthrough, after which it is killed and the test fails (a
/// bound, not a timing: the walkthroughs take seconds).
const BOUND: Duration = Duration::from_secs(150);

/// A fenced block of a walkthrough that the test reads.
#[derive(Debug, PartialEq, Eq)]
enum Kind {
    Run,
    Console,
    Mermaid,
    /// An excerpt of a lab file of topologies/.
    Yaml,
}

#[derive(Debug)]
struct Block {
    kind: Kind,
    /// The line of the opening fence (1-based), for messages.
    line: usize,
    text: String,
}

/// The blocks of a walkthrough the markers name, in order; other fences (```yaml,
/// ```text, ...) are skipped. A console or mermaid block before any sh block is an error.
fn blocks(markdown: &str) -> Result<Vec<Block>, String> {
    let mut blocks = Vec::new();
    let mut open: Option<(Option<Kind>, usize, String)> = None;
    for (number, line) in markdown.lines().enumerate() {
        let number = number + 1;
        match open.take() {
            None => {
                if let Some(tag) = line.strip_prefix("```") {
                    let kind = match tag.trim() {
                        "sh" => Some(Kind::Run),
                        "console" => Some(Kind::Console),
                        "mermaid" => Some(Kind::Mermaid),
                        "yaml" => Some(Kind::Yaml),
                        _ => None,
                    };
                    open = Some((kind, number, String::new()));
                }
            }
            Some((kind, start, mut body)) => {
                if line.trim_end() == "```" {
                    if let Some(kind) = kind {
                        let output = matches!(kind, Kind::Console | Kind::Mermaid);
                        if output && !blocks.iter().any(|b: &Block| b.kind == Kind::Run) {
                            return Err(format!("line {start}: an output block before any sh block"));
                        }
                        blocks.push(Block { kind, line: start, text: body });
                    }
                } else {
                    body.push_str(line);
                    body.push('\n');
                    open = Some((kind, start, body));
                }
            }
        }
    }
    match open {
        Some((_, start, _)) => Err(format!("line {start}: a block that is never closed")),
        None => Ok(blocks),
    }
}

/// The line that ends each sh block's output in the session's output.
fn end_marker(index: usize) -> String {
    format!("@@netlab-docs block {index} done")
}

/// The line the session prints when processes it started were still running at its end.
const LEFT_RUNNING: &str = "@@netlab-docs processes left running";

/// What script(1) runs: the session, then SIGKILL to every other process of the PID
/// namespace (`kill -1` spares the caller and the namespace's init, script itself), so
/// that none keeps the terminal open; that `kill` finding any is a failure of the
/// walkthrough (it stops what it starts, and waits for it).
fn session_command(session_file: &str) -> String {
    format!(
        "sh -e {session_file}; status=$?; if kill -KILL -1 2>/dev/null; then echo '{LEFT_RUNNING}'; [ $status = 0 ] && status=99; fi; exit $status"
    )
}

/// The session: each sh block followed by its end marker.
fn script(blocks: &[Block]) -> String {
    let mut script = String::new();
    for (index, block) in blocks.iter().enumerate().filter(|(_, b)| b.kind == Kind::Run) {
        script.push_str(&block.text);
        script.push_str(&format!("printf '\\n%s\\n' '{}'\n", end_marker(index)));
    }
    script
}

/// Whether an output line matches a shown line: equal, or with `...` in the shown line
/// standing for any text. Trailing blanks do not count.
fn line_matches(shown: &str, actual: &str) -> bool {
    let (shown, actual) = (shown.trim_end(), actual.trim_end());
    let parts: Vec<&str> = shown.split("...").collect();
    if parts.len() == 1 {
        return shown == actual;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !actual.starts_with(first) || !actual[first.len()..].ends_with(last) {
        return false;
    }
    let mut rest = &actual[first.len()..actual.len() - last.len()];
    for part in &parts[1..parts.len() - 1] {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    true
}

/// Whether output lines match shown lines: in order, consecutive, all of them, where a
/// shown line that is `...` alone stands for any number of lines.
fn lines_match(shown: &[&str], actual: &[&str]) -> bool {
    match shown.split_first() {
        None => actual.is_empty(),
        Some((first, rest)) if first.trim() == "..." => {
            (0..=actual.len()).any(|skip| lines_match(rest, &actual[skip..]))
        }
        Some((first, rest)) => {
            actual.first().is_some_and(|line| line_matches(first, line)) && lines_match(rest, &actual[1..])
        }
    }
}

fn output_matches(shown: &str, actual: &str) -> bool {
    let shown: Vec<&str> = shown.lines().collect();
    let actual: Vec<&str> = actual.lines().collect();
    lines_match(&shown, &actual)
}

/// A walkthrough after its session: each sh block's output, in order of the blocks.
struct Walk {
    path: PathBuf,
    blocks: Vec<Block>,
    /// Output of each block (for sh blocks; empty for the others).
    outputs: Vec<String>,
}

impl Walk {
    /// The output of the one sh block that contains `command`.
    fn output_of(&self, command: &str) -> &str {
        let found: Vec<usize> = (0..self.blocks.len())
            .filter(|&i| self.blocks[i].kind == Kind::Run && self.blocks[i].text.contains(command))
            .collect();
        assert_eq!(found.len(), 1, "{}: {} sh blocks contain `{command}`", self.path.display(), found.len());
        &self.outputs[found[0]]
    }
}

/// The session's process tree: killed when dropped, pass or fail. Killing unshare makes
/// it kill its child, the PID namespace's first process, and with it every process of
/// the namespace.
struct Session(Child);

impl Drop for Session {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Run the walkthrough `docs/NAME` in a fresh sandbox and check what every walkthrough
/// must hold: each sh block ran and exited 0, the console and mermaid blocks match, and
/// the sandbox is left as it was found.
fn walk(name: &str) -> Walk {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs").join(name);
    let markdown = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    walk_markdown(path, &markdown)
}

/// `walk` of a walkthrough's text; `path` names it in messages.
fn walk_markdown(path: PathBuf, markdown: &str) -> Walk {
    let blocks = blocks(markdown).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(blocks.iter().any(|b| b.kind == Kind::Run), "{}: no sh block", path.display());

    let sandbox = Sandbox::new();
    let before = sandbox.snapshot();
    let firewall_before = firewall(&sandbox);
    let (status, all) = session(&sandbox, &path, &blocks);
    let outputs = split(&path, &blocks, status, &all);
    output_blocks_match(&path, &blocks, &outputs);

    // Destroy (the walkthrough's last step) left the sandbox as it was.
    assert_eq!(sandbox.snapshot(), before, "{}: the sandbox after the walkthrough", path.display());
    assert_eq!(firewall(&sandbox), firewall_before, "{}: the firewall after the walkthrough", path.display());
    Walk { path, blocks, outputs }
}

/// Run the sh blocks as one session in the sandbox; its exit status and its output
/// (stdout and stderr as the terminal showed them, without carriage returns).
fn session(sandbox: &Sandbox, path: &Path, blocks: &[Block]) -> (ExitStatus, String) {
    // The scratch folder: the lab files as in the repository, the binaries of this
    // build under their installed names.
    let work = sandbox.dir.join("work");
    let bin = sandbox.dir.join("bin");
    std::fs::create_dir_all(&work).unwrap();
    std::fs::create_dir_all(&bin).unwrap();
    std::os::unix::fs::symlink(support::topology(""), work.join("topologies")).unwrap();
    let netlab = env!("CARGO_BIN_EXE_netlab").to_string();
    for (name, binary) in
        [("netlab", netlab), ("vxlan-agent", support::agent_binary()), ("netlab-cni", support::cni_binary())]
    {
        std::os::unix::fs::symlink(binary, bin.join(name)).unwrap();
    }
    let session_file = sandbox.file("session.sh", &format!("cd '{}'\n{}", work.display(), script(blocks)));
    let output_path = sandbox.dir.join("session.out");
    let output = std::fs::File::create(&output_path).unwrap();
    let path_variable = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default());
    // The session's PID namespace gets its own /proc (so `vxlan-agent status` finds the
    // agents by their PIDs), hence a mount namespace of its own: /run/netns is made
    // shared first, so the namespaces a walkthrough creates or deletes there are the
    // sandbox's too (and one it leaves behind outlives the session).
    sandbox.ok("mount", &["--make-shared", "/run/netns"]);
    // script(1) gives the session a pseudo-terminal, as the reader's: netlab capture
    // prints one line per frame there. Its -e passes on the session's exit code.
    let child = sandbox
        .command("unshare")
        .args(["--pid", "--fork", "--kill-child", "--mount-proc", "--propagation", "unchanged", "--"])
        .args(["script", "-q", "-e", "-c"])
        .arg(session_command(&session_file))
        .arg("/dev/null")
        .env("PATH", path_variable)
        .env("SHELL", "/bin/sh")
        .stdin(Stdio::null())
        .stdout(output.try_clone().unwrap())
        .stderr(output)
        .spawn()
        .expect("start the session (unshare and script, from util-linux)");
    let mut session = Session(child);
    let started = Instant::now();
    let status = loop {
        if let Some(status) = session.0.try_wait().unwrap() {
            break status;
        }
        assert!(
            started.elapsed() < BOUND,
            "{}: still running after {BOUND:?}; output so far:\n{}",
            path.display(),
            std::fs::read_to_string(&output_path).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    drop(session);
    (status, text(&std::fs::read(&output_path).unwrap()).replace('\r', ""))
}

/// The session's output cut at the markers: each sh block's output (empty for the
/// other blocks). A block whose marker is missing failed, and the test with it.
fn split(path: &Path, blocks: &[Block], status: ExitStatus, all: &str) -> Vec<String> {
    let mut outputs = vec![String::new(); blocks.len()];
    let mut rest = all;
    for (index, block) in blocks.iter().enumerate().filter(|(_, b)| b.kind == Kind::Run) {
        let marker = format!("\n{}\n", end_marker(index));
        let Some(at) = rest.find(&marker) else {
            panic!(
                "{}: the sh block at line {} failed ({status}):\n{}\n--- its output:\n{rest}",
                path.display(),
                block.line,
                block.text
            );
        };
        outputs[index] = rest[..at].to_string();
        rest = &rest[at + marker.len()..];
    }
    assert!(
        !rest.contains(LEFT_RUNNING),
        "{}: processes it started were still running at its end (stop them, and wait for them)",
        path.display()
    );
    assert!(status.success(), "{}: the session ended with {status}: {rest}", path.display());
    outputs
}

/// Each console block matches the output of the sh block before it; each mermaid block
/// is exactly the output of the `netlab graph FILE --format mermaid` before it.
fn output_blocks_match(path: &Path, blocks: &[Block], outputs: &[String]) {
    let mut last_run = 0;
    for (index, block) in blocks.iter().enumerate() {
        match block.kind {
            Kind::Run => last_run = index,
            Kind::Yaml => {}
            Kind::Console => assert!(
                output_matches(&block.text, &outputs[last_run]),
                "{}: the console block at line {} does not match the output of the sh block at line {}.\n--- shown:\n{}--- output:\n{}",
                path.display(),
                block.line,
                blocks[last_run].line,
                block.text,
                outputs[last_run]
            ),
            Kind::Mermaid => {
                let command: Vec<&str> = blocks[last_run].text.split_whitespace().collect();
                assert!(
                    command.len() == 5 && command[..2] == ["netlab", "graph"] && command[3..] == ["--format", "mermaid"],
                    "{}: the mermaid block at line {} must follow a block that is just `netlab graph FILE --format mermaid`",
                    path.display(),
                    block.line
                );
                assert_eq!(
                    block.text.trim_end(),
                    outputs[last_run].trim_end(),
                    "{}: the mermaid block at line {} is not what `{}` prints",
                    path.display(),
                    block.line,
                    blocks[last_run].text.trim()
                );
            }
        }
    }
}

/// A YAML line without its comment and trailing blanks (comments in an excerpt may
/// differ from the file's).
fn without_comment(line: &str) -> &str {
    let cut = line.find(" #").or_else(|| line.trim_start().starts_with('#').then_some(0)).unwrap_or(line.len());
    line[..cut].trim_end()
}

/// Whether the lines of an excerpt (comments and blank lines aside) are lines of the
/// file, in the same order.
fn excerpt_of(excerpt: &str, file: &str) -> bool {
    let mut lines = file.lines().map(without_comment);
    excerpt.lines().map(without_comment).filter(|l| !l.is_empty()).all(|wanted| lines.any(|l| l == wanted))
}

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
    assert!(lines.iter().any(|l| l.contains(" out ") && l.contains("udp") && l.contains("> 8472")), "{lines:#?}");
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
