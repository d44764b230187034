//! The harness of tests/docs.rs (included there as `harness`): reading the blocks of a
//! walkthrough, running its sh blocks as one session in a sandbox, and matching the
//! output blocks. The rules are docs/README.md's.

use std::path::{Path, PathBuf};
use std::process::{Child, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crate::support::{self, firewall, text, Sandbox};

/// Upper bound for one walkthrough, after which it is killed and the test fails (a
/// bound, not a timing: the walkthroughs take seconds).
pub const BOUND: Duration = Duration::from_secs(150);

/// A fenced block of a walkthrough that the test reads.
#[derive(Debug, PartialEq, Eq)]
pub enum Kind {
    Run,
    Console,
    Mermaid,
    /// An excerpt of a lab file of topologies/.
    Yaml,
}

#[derive(Debug)]
pub struct Block {
    pub kind: Kind,
    /// The line of the opening fence (1-based), for messages.
    pub line: usize,
    pub text: String,
}

/// The blocks of a walkthrough the markers name, in order; other fences (```yaml,
/// ```text, ...) are skipped. A console or mermaid block before any sh block is an error.
pub fn blocks(markdown: &str) -> Result<Vec<Block>, String> {
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
pub fn end_marker(index: usize) -> String {
    format!("@@netlab-docs block {index} done")
}

/// The line the session prints when processes it started were still running at its end.
pub const LEFT_RUNNING: &str = "@@netlab-docs processes left running";

/// What script(1) runs: the session, then SIGKILL to every other process of the PID
/// namespace (`kill -1` spares the caller and the namespace's init, script itself), so
/// that none keeps the terminal open; that `kill` finding any is a failure of the
/// walkthrough (it stops what it starts, and waits for it).
pub fn session_command(session_file: &str) -> String {
    format!(
        "sh -e {session_file}; status=$?; if kill -KILL -1 2>/dev/null; then echo '{LEFT_RUNNING}'; [ $status = 0 ] && status=99; fi; exit $status"
    )
}

/// The session: each sh block followed by its end marker.
pub fn script(blocks: &[Block]) -> String {
    let mut script = String::new();
    for (index, block) in blocks.iter().enumerate().filter(|(_, b)| b.kind == Kind::Run) {
        script.push_str(&block.text);
        script.push_str(&format!("printf '\\n%s\\n' '{}'\n", end_marker(index)));
    }
    script
}

/// Whether an output line matches a shown line: equal, or with `...` in the shown line
/// standing for any text. Trailing blanks do not count.
pub fn line_matches(shown: &str, actual: &str) -> bool {
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
pub fn lines_match(shown: &[&str], actual: &[&str]) -> bool {
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

pub fn output_matches(shown: &str, actual: &str) -> bool {
    let shown: Vec<&str> = shown.lines().collect();
    let actual: Vec<&str> = actual.lines().collect();
    lines_match(&shown, &actual)
}

/// A walkthrough after its session: each sh block's output, in order of the blocks.
pub struct Walk {
    pub path: PathBuf,
    pub blocks: Vec<Block>,
    /// Output of each block (for sh blocks; empty for the others).
    pub outputs: Vec<String>,
}

impl Walk {
    /// The output of the one sh block that contains `command`.
    pub fn output_of(&self, command: &str) -> &str {
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
pub struct Session(Child);

impl Drop for Session {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Run the walkthrough `docs/NAME` in a fresh sandbox and check what every walkthrough
/// must hold: each sh block ran and exited 0, the console and mermaid blocks match, and
/// the sandbox is left as it was found.
pub fn walk(name: &str) -> Walk {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs").join(name);
    let markdown = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    walk_markdown(path, &markdown)
}

/// `walk` of a walkthrough's text; `path` names it in messages.
pub fn walk_markdown(path: PathBuf, markdown: &str) -> Walk {
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
pub fn session(sandbox: &Sandbox, path: &Path, blocks: &[Block]) -> (ExitStatus, String) {
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
pub fn split(path: &Path, blocks: &[Block], status: ExitStatus, all: &str) -> Vec<String> {
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
/// is exactly the output of the `netlab graph FILE -o mermaid` before it.
pub fn output_blocks_match(path: &Path, blocks: &[Block], outputs: &[String]) {
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
                    command.len() == 5 && command[..2] == ["netlab", "graph"] && command[3..] == ["-o", "mermaid"],
                    "{}: the mermaid block at line {} must follow a block that is just `netlab graph FILE -o mermaid`",
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
pub fn without_comment(line: &str) -> &str {
    let cut = line.find(" #").or_else(|| line.trim_start().starts_with('#').then_some(0)).unwrap_or(line.len());
    line[..cut].trim_end()
}

/// Whether the lines of an excerpt (comments and blank lines aside) are lines of the
/// file, in the same order.
pub fn excerpt_of(excerpt: &str, file: &str) -> bool {
    let mut lines = file.lines().map(without_comment);
    excerpt.lines().map(without_comment).filter(|l| !l.is_empty()).all(|wanted| lines.any(|l| l == wanted))
}
