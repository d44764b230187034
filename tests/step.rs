//! `netlab apply --step` as a person meets it: on a terminal (a pseudo-terminal here),
//! each change shown with its commands, made on Enter, and `q` (or the end of input)
//! stopping with a lab the next apply finishes and destroy removes.

mod support;

use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::process::{Child, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use support::{text, topology, Sandbox};

const PROMPT: &str = "apply this change? [Enter: yes, q: stop]";
/// Put after the screen's text once netlab's side of the terminal is closed.
const CLOSED: &str = "\n<terminal closed>";
/// Only so that a hung netlab fails the test instead of hanging it.
const GUARD: Duration = Duration::from_secs(120);

/// netlab running with a pseudo-terminal as stdin, stdout and stderr; everything it
/// writes is collected by a reader thread.
struct OnTerminal {
    child: Child,
    master: std::fs::File,
    screen: Arc<(Mutex<String>, Condvar)>,
    /// How many prompts were answered.
    answered: usize,
}

impl OnTerminal {
    fn start(sandbox: &Sandbox, args: &[&str]) -> OnTerminal {
        let pty = nix::pty::openpty(None, None).expect("open a pseudo-terminal");
        let slave: OwnedFd = pty.slave;
        let child = sandbox
            .command(env!("CARGO_BIN_EXE_netlab"))
            .args(args)
            .stdin(Stdio::from(slave.try_clone().unwrap()))
            .stdout(Stdio::from(slave.try_clone().unwrap()))
            .stderr(Stdio::from(slave))
            .spawn()
            .expect("start netlab on the terminal");
        let master = std::fs::File::from(pty.master);
        let screen = Arc::new((Mutex::new(String::new()), Condvar::new()));
        let mut reader = master.try_clone().unwrap();
        let shared = screen.clone();
        std::thread::spawn(move || {
            let mut buffer = [0u8; 4096];
            // Ends with EIO once the last holder of the terminal's other side is gone.
            let (text, changed) = &*shared;
            while let Ok(n @ 1..) = reader.read(&mut buffer) {
                text.lock().unwrap().push_str(&String::from_utf8_lossy(&buffer[..n]));
                changed.notify_all();
            }
            text.lock().unwrap().push_str(CLOSED);
            changed.notify_all();
        });
        OnTerminal { child, master, screen, answered: 0 }
    }

    /// Wait for the next prompt; the screen so far.
    fn prompt(&self) -> String {
        let wanted = self.answered + 1;
        self.wait_for(|s| s.matches(PROMPT).count() >= wanted)
    }

    /// Type `answer` + Return at the prompt shown.
    fn reply(&mut self, answer: &str) {
        self.master.write_all(format!("{answer}\r").as_bytes()).unwrap();
        self.answered += 1;
    }

    /// Wait for the next prompt, return the screen so far, and type `answer` + Return.
    fn answer(&mut self, answer: &str) -> String {
        let screen = self.prompt();
        self.reply(answer);
        screen
    }

    fn wait_for(&self, done: impl Fn(&str) -> bool) -> String {
        let (text, changed) = &*self.screen;
        let deadline = Instant::now() + GUARD;
        let mut screen = text.lock().unwrap();
        while !done(&screen) {
            let left = deadline.checked_duration_since(Instant::now()).unwrap_or_else(|| {
                panic!("netlab did not get there; the terminal shows:\n{screen}");
            });
            screen = changed.wait_timeout(screen, left).unwrap().0;
        }
        screen.clone()
    }

    /// Wait for netlab to end; its exit status and the whole screen.
    fn finish(mut self) -> (std::process::ExitStatus, String) {
        let status = self.child.wait().unwrap();
        let screen = self.wait_for(|s| s.ends_with(CLOSED));
        (status, screen)
    }
}

impl Drop for OnTerminal {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn namespaces(sandbox: &Sandbox) -> Vec<String> {
    sandbox.ok("ls", &["-1", "/run/netns"]).lines().map(str::to_string).collect()
}

#[test]
fn each_change_waits_for_enter_and_q_stops_with_a_lab_the_next_apply_finishes() {
    let sandbox = Sandbox::new();
    let before = sandbox.snapshot();
    let file = topology("bridge.yaml");
    let mut terminal = OnTerminal::start(&sandbox, &["apply", "--step", &file]);

    let first = terminal.prompt();
    // The first change is shown with its commands, and nothing is made before Enter.
    assert!(first.contains("[1/7] + namespace BLUE"), "{first}");
    assert!(first.contains("ip netns add BLUE"), "{first}");
    assert!(namespaces(&sandbox).is_empty(), "a change was made before Enter");
    terminal.reply("");
    let second = terminal.prompt();
    assert!(second.contains("[2/7] + namespace RED"), "{second}");
    assert_eq!(namespaces(&sandbox), ["BLUE"], "only the first change is made while the second waits");
    terminal.reply("");
    let third = terminal.answer("");
    assert!(third.contains("[3/7] + bridge br0") && third.contains("ip link add name br0"), "{third}");
    terminal.answer("what?");
    let asked_again = terminal.answer("q");
    assert!(asked_again.contains("answer Enter to make the change, q to stop here"), "{asked_again}");
    let (status, screen) = terminal.finish();
    assert!(status.success(), "{status:?}: {screen}");
    assert!(screen.contains("stopped after 3 of 7 changes"), "{screen}");

    // What the three steps made is there, nothing of the fourth.
    assert_eq!(namespaces(&sandbox), ["BLUE", "RED"]);
    sandbox.ok("ip", &["link", "show", "br0"]);
    assert!(!sandbox.run("ip", &["link", "show", "beth1"]).status.success(), "the fourth change was made");

    // A consistent lab: status names what is missing, apply finishes, destroy removes.
    let status = sandbox.netlab(&["status", &file]);
    assert_eq!(status.status.code(), Some(1), "{}", text(&status.stdout));
    assert!(text(&status.stdout).contains("missing    veth RED:reth0"), "{}", text(&status.stdout));
    let finished = sandbox.netlab_ok(&["apply", &file]);
    assert!(finished.contains("applied 4 changes"), "{finished}");
    let status = sandbox.netlab(&["status", &file]);
    assert_eq!(status.status.code(), Some(0), "{}", text(&status.stdout));
    sandbox.netlab_ok(&["exec", &file, "RED", "--", "ping", "-c", "1", "-W", "5", "11.11.11.3"]);
    sandbox.netlab_ok(&["destroy", &file]);
    assert_eq!(sandbox.snapshot(), before, "destroy left something");
}

#[test]
fn stepping_through_every_change_builds_what_apply_builds() {
    let sandbox = Sandbox::new();
    let file = topology("nat.yaml");
    let plan = sandbox.netlab_ok(&["plan", &file]);
    let total = plan.lines().filter(|l| l.starts_with(['+', '~', '-'])).count();
    assert!(total > 5, "{plan}");
    let mut terminal = OnTerminal::start(&sandbox, &["apply", "--step", &file]);
    for _ in 0..total {
        terminal.answer("");
    }
    let (status, screen) = terminal.finish();
    assert!(status.success(), "{status:?}: {screen}");
    assert!(screen.contains(&format!("[{total}/{total}]")), "{screen}");
    assert!(
        screen.contains(&format!("applied {total} changes (")) && screen.contains(") to lab bridge in "),
        "{screen}"
    );
    // The NAT table's commands were shown before it was made.
    assert!(screen.contains("nft "), "{screen}");
    let status = sandbox.netlab(&["status", &file]);
    assert_eq!(status.status.code(), Some(0), "{}", text(&status.stdout));
    assert_eq!(sandbox.netlab_ok(&["plan", &file]).trim(), "no changes");
    sandbox.netlab_ok(&["destroy", &file]);
}

#[test]
fn end_of_input_before_the_first_change_leaves_no_trace() {
    let sandbox = Sandbox::new();
    let before = sandbox.snapshot();
    let file = topology("bridge.yaml");
    let mut terminal = OnTerminal::start(&sandbox, &["apply", "--step", &file]);
    terminal.wait_for(|s| s.contains(PROMPT));
    // Ctrl-D at the start of a line: the end of input.
    terminal.master.write_all(b"\x04").unwrap();
    let (status, screen) = terminal.finish();
    assert!(status.success(), "{status:?}: {screen}");
    assert!(screen.contains("stopped before the first change: nothing was made"), "{screen}");
    assert!(namespaces(&sandbox).is_empty(), "a change was made without Enter");
    // No record, no lock: the lab is not applied, as before.
    assert_eq!(sandbox.snapshot(), before);
    assert_eq!(sandbox.ok("ls", &["-A", "/run/netlab"]).trim(), "", "a record or lock was left");
    assert_eq!(sandbox.netlab_ok(&["list"]).trim(), "no labs applied");
}

#[test]
fn step_is_refused_with_a_dry_run_or_json() {
    for extra in [["--dry-run"], ["--output=json"]] {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_netlab"))
            .args(["apply", "--step", &topology("bridge.yaml")])
            .args(extra)
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(2), "{extra:?}: {}", text(&output.stderr));
        assert!(text(&output.stderr).contains("cannot be used with"), "{}", text(&output.stderr));
    }
}

#[test]
fn a_step_that_fails_stops_and_keeps_the_steps_made_before_it() {
    let sandbox = Sandbox::new();
    let before = sandbox.snapshot();
    let file = topology("bridge.yaml");
    let mut terminal = OnTerminal::start(&sandbox, &["apply", "--step", &file]);
    terminal.answer("");
    terminal.answer("");
    let third = terminal.prompt();
    assert!(third.contains("[3/7] + bridge br0"), "{third}");
    // Someone makes a br0 of their own while netlab waits.
    sandbox.ok("ip", &["link", "add", "br0", "type", "bridge"]);
    terminal.reply("");
    let (status, screen) = terminal.finish();
    assert_eq!(status.code(), Some(1), "{screen}");
    assert!(screen.contains("create bridge br0: file exists"), "the error names the link: {screen}");
    assert!(screen.contains("the steps before it stay"), "{screen}");
    // No undo of what the user let be made; the bridge is not netlab's and stays.
    assert_eq!(namespaces(&sandbox), ["BLUE", "RED"]);
    assert!(!sandbox.ok("ip", &["link", "show", "br0"]).contains("alias"), "netlab took over br0");
    sandbox.ok("ip", &["link", "del", "br0"]);
    sandbox.netlab_ok(&["apply", &file]);
    assert_eq!(sandbox.netlab(&["status", &file]).status.code(), Some(0));
    sandbox.netlab_ok(&["destroy", &file]);
    assert_eq!(sandbox.snapshot(), before);
}
