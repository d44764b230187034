//! The command line as scripts and people meet it: a closed output pipe, status exit
//! codes, `exec` as `ip netns exec`, checks that clean up after themselves, logs
//! without colour codes off a terminal. Tests that touch the kernel run in their own
//! sandbox.

mod support;

use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Output, Stdio};

use nix::sys::signal::Signal;
use support::{eventually, text, topology, Sandbox};

const NETLAB: &str = env!("CARGO_BIN_EXE_netlab");

/// Run `command` with its stdout on a pipe whose reader is already closed, so the
/// first thing it prints meets a closed pipe; stderr is captured.
fn with_closed_stdout(mut command: Command) -> Output {
    let (reader, writer) = nix::unistd::pipe().unwrap();
    drop(reader);
    command.stdin(Stdio::null()).stdout(Stdio::from(writer)).stderr(Stdio::piped()).output().unwrap()
}

/// Ended as `cat` is by a closed pipe: by SIGPIPE (141 in a shell), without a word.
fn assert_quiet_end(what: &str, output: &Output) {
    assert_eq!(
        output.status.signal(),
        Some(Signal::SIGPIPE as i32),
        "{what}: {:?}, stderr: {}",
        output.status,
        text(&output.stderr)
    );
    assert!(output.stderr.is_empty(), "{what} said something: {}", text(&output.stderr));
}

#[test]
fn a_closed_pipe_ends_netlab_quietly_without_a_kernel() {
    let file = topology("veth-pair.yaml");
    let mut validate = Command::new(NETLAB);
    validate.args(["validate", &file]);
    assert_quiet_end("validate", &with_closed_stdout(validate));
    let mut help = Command::new(NETLAB);
    help.arg("--help");
    assert_quiet_end("--help", &with_closed_stdout(help));

    // The same for a message to a closed stderr.
    let (reader, writer) = nix::unistd::pipe().unwrap();
    drop(reader);
    let missing = Command::new(NETLAB)
        .args(["validate", "/nonexistent/lab.yaml"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(writer))
        .output()
        .unwrap();
    assert_eq!(missing.status.signal(), Some(Signal::SIGPIPE as i32), "{:?}", missing.status);
    assert!(missing.stdout.is_empty(), "{}", text(&missing.stdout));
}

#[test]
fn a_closed_pipe_ends_every_printing_command_quietly() {
    let sandbox = Sandbox::new();
    let before = sandbox.snapshot();
    let file = topology("veth-pair.yaml");
    let netlab = |args: &[&str]| {
        let mut command = sandbox.command(NETLAB);
        command.args(args);
        with_closed_stdout(command)
    };
    // The first apply prints its changes, having made them.
    assert_quiet_end("apply", &netlab(&["apply", &file]));
    assert!(sandbox.netlab_ok(&["check", &file]).contains("2 passed, 0 failed"));
    for args in [
        &["apply", &file][..],
        &["plan", &file],
        &["plan", &file, "-o", "json"],
        &["status", &file],
        &["status", &file, "-o", "json"],
        &["check", &file],
        &["check", &file, "-o", "json"],
        &["list"],
        &["list", "-o", "json"],
        &["validate", &file],
        &["exec", &file, "RED", "--", "ip", "link"],
    ] {
        assert_quiet_end(&args.join(" "), &netlab(args));
    }
    assert_quiet_end("destroy", &netlab(&["destroy", &file, "-o", "json"]));
    assert_eq!(sandbox.snapshot(), before, "destroy did its work before printing");
}

#[test]
fn status_exits_1_when_the_lab_is_not_applied_or_differs() {
    let sandbox = Sandbox::new();
    let file = topology("veth-pair.yaml");

    let absent = sandbox.netlab(&["status", &file]);
    assert_eq!(absent.status.code(), Some(1), "{}", text(&absent.stdout));
    assert!(text(&absent.stdout).contains("lab veth-pair is not applied here"), "{}", text(&absent.stdout));
    let absent = sandbox.netlab(&["status", &file, "-o", "json"]);
    assert_eq!(absent.status.code(), Some(1));
    let json: serde_json::Value = serde_json::from_slice(&absent.stdout).unwrap();
    assert!(json["applied"] == false && json["in_sync"] == false, "{json}");

    sandbox.netlab_ok(&["apply", &file]);
    let in_sync = sandbox.netlab(&["status", &file]);
    assert_eq!(in_sync.status.code(), Some(0), "{}", text(&in_sync.stdout));

    sandbox.ok("ip", &["-n", "RED", "addr", "del", "11.11.11.2/24", "dev", "veth0"]);
    let drift = sandbox.netlab(&["status", &file]);
    assert_eq!(drift.status.code(), Some(1), "{}", text(&drift.stdout));
    assert!(text(&drift.stdout).contains("missing    address 11.11.11.2/24 on RED:veth0"), "{}", text(&drift.stdout));
    let drift = sandbox.netlab(&["status", &file, "-o", "json"]);
    assert_eq!(drift.status.code(), Some(1));
    let json: serde_json::Value = serde_json::from_slice(&drift.stdout).unwrap();
    assert!(json["applied"] == true && json["in_sync"] == false, "{json}");

    sandbox.netlab_ok(&["apply", &file]);
    sandbox.netlab_ok(&["status", &file]);
    sandbox.netlab_ok(&["destroy", &file]);
}

#[test]
fn status_help_documents_its_exit_codes() {
    let help = Command::new(NETLAB).args(["status", "--help"]).output().unwrap();
    assert!(help.status.success());
    let help = text(&help.stdout);
    assert!(help.contains("Exit codes: 0 the lab matches the file, 1 it differs"), "{help}");
}

/// A sandbox with the veth-pair lab applied, and /etc made writable for the sandbox
/// alone (an overlay on a tmpfs), holding /etc/netns/RED/hosts.
fn exec_sandbox() -> (Sandbox, String) {
    let sandbox = Sandbox::new();
    let layers = sandbox.dir.join("etc-layers").display().to_string();
    sandbox.ok(
        "sh",
        &[
            "-c",
            "set -e; mkdir -p \"$1\"; mount -t tmpfs netlab-test \"$1\"; mkdir \"$1/upper\" \"$1/work\"
             mount -t overlay netlab-test -o lowerdir=/etc,upperdir=\"$1/upper\",workdir=\"$1/work\" /etc
             mkdir -p /etc/netns/RED; echo '11.11.11.3 blue-as-red-sees-it' > /etc/netns/RED/hosts",
            "sh",
            &layers,
        ],
    );
    let file = topology("veth-pair.yaml");
    sandbox.netlab_ok(&["apply", &file]);
    (sandbox, file)
}

#[test]
fn exec_sees_the_node_as_ip_netns_exec_does() {
    let (sandbox, file) = exec_sandbox();
    let host_hosts = sandbox.ok("cat", &["/etc/hosts"]);
    let host_sys = sandbox.ok("ls", &["/sys/class/net"]);

    let sys = sandbox.netlab_ok(&["exec", &file, "RED", "--", "ls", "/sys/class/net"]);
    assert_eq!(sys.split_whitespace().collect::<Vec<_>>(), ["lo", "veth0"], "{sys}");
    let sys = sandbox.netlab_ok(&["exec", &file, "BLUE", "--", "cat", "/sys/class/net/veth1/address"]);
    assert!(sandbox.ok("ip", &["-n", "BLUE", "link", "show", "veth1"]).contains(sys.trim()), "{sys}");

    let hosts = sandbox.netlab_ok(&["exec", &file, "RED", "--", "cat", "/etc/hosts"]);
    assert_eq!(hosts, "11.11.11.3 blue-as-red-sees-it\n");
    assert_eq!(sandbox.netlab_ok(&["exec", &file, "BLUE", "--", "cat", "/etc/hosts"]), host_hosts);

    // Nothing of it reaches the caller's mounts.
    assert_eq!(sandbox.ok("cat", &["/etc/hosts"]), host_hosts);
    assert_eq!(sandbox.ok("ls", &["/sys/class/net"]), host_sys);
    sandbox.netlab_ok(&["destroy", &file]);
}

#[test]
fn exec_exits_as_a_shell_does() {
    let (sandbox, file) = exec_sandbox();
    let missing = sandbox.netlab(&["exec", &file, "RED", "--", "no-such-command"]);
    assert_eq!(missing.status.code(), Some(127), "{}", text(&missing.stderr));
    assert_eq!(text(&missing.stderr), "netlab: no-such-command: command not found\n");

    let script = sandbox.dir.join("not-executable");
    std::fs::write(&script, "#!/bin/sh\n").unwrap();
    let refused = sandbox.netlab(&["exec", &file, "RED", "--", &script.display().to_string()]);
    assert_eq!(refused.status.code(), Some(126), "{}", text(&refused.stderr));
    assert!(text(&refused.stderr).contains("permission denied"), "{}", text(&refused.stderr));

    assert_eq!(sandbox.netlab(&["exec", &file, "RED", "--", "sh", "-c", "exit 7"]).status.code(), Some(7));
    let killed = sandbox.netlab(&["exec", &file, "RED", "--", "sh", "-c", "kill -TERM $$"]);
    assert_eq!(killed.status.signal(), Some(Signal::SIGTERM as i32), "{:?}", killed.status);
    // As a shell reports it.
    let shell = sandbox.ok(
        "sh",
        &["-c", "\"$@\"; echo \"exit $?\"", "sh", NETLAB, "exec", &file, "RED", "--", "sh", "-c", "kill -TERM $$"],
    );
    assert_eq!(shell.trim(), "exit 143");
    sandbox.netlab_ok(&["destroy", &file]);
}

/// Processes whose command line is exactly `words`, anywhere on the machine.
fn processes(words: &[String]) -> Vec<i32> {
    let wanted: Vec<u8> = words.iter().flat_map(|w| w.bytes().chain([0])).collect();
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|line| line == wanted))
        .collect()
}

/// Kills what `exec` may have left running (the sandbox has no pid namespace of its
/// own), pass or fail.
struct KillOnDrop(Vec<String>);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        for pid in processes(&self.0) {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), Signal::SIGKILL);
        }
    }
}

#[test]
fn a_signal_to_exec_reaches_the_command() {
    let (sandbox, file) = exec_sandbox();
    // A command line no other process has.
    let command = vec!["sleep".to_string(), format!("600.{}", std::process::id())];
    let cleanup = KillOnDrop(command.clone());
    let args: Vec<&str> = ["exec", &file, "RED", "--"].into_iter().chain(command.iter().map(String::as_str)).collect();
    let mut exec = sandbox.spawn("", NETLAB, &args);
    assert!(eventually(10.0, || !processes(&command).is_empty()), "the command never started: {}", exec.output());
    let status = exec.stop(Signal::SIGTERM);
    assert_eq!(status.signal(), Some(Signal::SIGTERM as i32), "{status:?}");
    assert!(eventually(10.0, || processes(&command).is_empty()), "the command outlived netlab exec");
    drop(cleanup);
    sandbox.netlab_ok(&["destroy", &file]);
}

#[test]
fn exec_refuses_a_namespace_the_lab_does_not_own() {
    let sandbox = Sandbox::new();
    let file = topology("veth-pair.yaml");
    sandbox.ok("ip", &["netns", "add", "RED"]);
    let foreign = sandbox.netlab(&["exec", &file, "RED", "--", "touch", "/run/netlab/ran"]);
    assert_eq!(foreign.status.code(), Some(3), "{}", text(&foreign.stderr));
    assert_eq!(
        text(&foreign.stderr),
        "netlab: namespace RED was not created by netlab (lab veth-pair): refusing to run in it\n"
    );
    sandbox.ok("ip", &["-n", "RED", "link", "set", "lo", "alias", "netlab:other"]);
    let other = sandbox.netlab(&["exec", &file, "RED", "--", "touch", "/run/netlab/ran"]);
    assert_eq!(other.status.code(), Some(3));
    assert_eq!(
        text(&other.stderr),
        "netlab: namespace RED belongs to lab other, not to lab veth-pair: refusing to run in it\n"
    );
    assert!(!sandbox.ok("ls", &["/run/netlab"]).contains("ran"), "the command ran");

    let absent = sandbox.netlab(&["exec", &file, "BLUE", "--", "true"]);
    assert_eq!(absent.status.code(), Some(1));
    assert!(text(&absent.stderr).contains("no namespace BLUE: lab veth-pair is not applied here"));
}

#[test]
fn a_failing_check_frees_its_port_for_the_next() {
    let sandbox = Sandbox::new();
    let source = std::fs::read_to_string(topology("veth-pair.yaml")).unwrap();
    // RED has no route to 10.99.99.1: the first check of each pair fails at once,
    // with its listener open in BLUE; the second needs the same port.
    let file = sandbox.file(
        "lab.yaml",
        &format!(
            "{source}  - udp: {{from: RED, to: '10.99.99.1:5000', listen: BLUE, on: '11.11.11.3:5000'}}
  - udp: {{from: RED, to: '11.11.11.3:5000', listen: BLUE}}
  - tcp: {{from: RED, to: '10.99.99.1:6000', listen: BLUE, on: '11.11.11.3:6000'}}
  - tcp: {{from: RED, to: '11.11.11.3:6000', listen: BLUE}}
"
        ),
    );
    sandbox.netlab_ok(&["apply", &file]);
    let output = sandbox.netlab(&["check", &file]);
    let stdout = text(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("FAIL  udp from RED to 10.99.99.1:5000"), "{stdout}");
    assert!(stdout.contains("pass  udp from RED to 11.11.11.3:5000"), "{stdout}");
    assert!(stdout.contains("FAIL  tcp from RED to 10.99.99.1:6000"), "{stdout}");
    assert!(stdout.contains("pass  tcp from RED to 11.11.11.3:6000"), "{stdout}");
    assert!(stdout.contains("4 passed, 2 failed"), "{stdout}");
    sandbox.netlab_ok(&["destroy", &file]);
}

#[test]
fn logs_carry_no_colour_codes_off_a_terminal() {
    let sandbox = Sandbox::new();
    let file = topology("veth-pair.yaml");
    let output = sandbox.netlab(&["-vv", "apply", &file]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let logs = text(&output.stderr);
    assert!(logs.contains("DEBUG"), "expected debug logs: {logs}");
    assert!(!output.stderr.contains(&0x1b), "escape codes in: {logs:?}");
    sandbox.netlab_ok(&["destroy", &file]);
}

/// On a terminal (a pty from `script`), logs are in colour unless NO_COLOR is set.
#[test]
fn logs_are_in_colour_on_a_terminal_unless_no_color() {
    let sandbox = Sandbox::new();
    let file = topology("veth-pair.yaml");
    let on_terminal = |verb: &str, no_color: Option<&str>| {
        let mut command = sandbox.command("script");
        command.args(["-q", "-e", "-c", &format!("{NETLAB} -vv {verb} {file}"), "/dev/null"]);
        match no_color {
            Some(value) => command.env("NO_COLOR", value),
            None => command.env_remove("NO_COLOR"),
        };
        let output = command.stdin(Stdio::null()).output().expect("script (util-linux)");
        assert!(output.status.success(), "{}{}", text(&output.stdout), text(&output.stderr));
        assert!(text(&output.stdout).contains("DEBUG"), "expected debug logs: {}", text(&output.stdout));
        output.stdout.contains(&0x1b)
    };
    assert!(on_terminal("apply", None), "no colour on a terminal");
    assert!(!on_terminal("destroy", Some("1")), "colour despite NO_COLOR");
}

/// vxlan-agent on a terminal (a pty from `script`): its logs are in colour, and not
/// with NO_COLOR set.
#[test]
fn agent_logs_honour_no_color_on_a_terminal() {
    let sandbox = Sandbox::new();
    let agent = support::agent_binary();
    let coloured = |device: &str, no_color: &str| {
        let command: Vec<String> =
            [&agent, "run", "--device", device, "--store", "dir:/run/vxlan-agent/store"].map(String::from).into();
        let _cleanup = KillOnDrop(command.clone());
        let terminal = sandbox.spawn(
            "",
            "env",
            &[&format!("NO_COLOR={no_color}"), "script", "-q", "-e", "-c", &command.join(" "), "/dev/null"],
        );
        // The line that says so is whole once "started" shows.
        assert!(eventually(10.0, || terminal.output().contains("started")), "{}", terminal.output());
        terminal.output().contains('\u{1b}')
    };
    assert!(coloured("vxlan8", ""), "no colour on a terminal");
    assert!(!coloured("vxlan9", "1"), "colour despite NO_COLOR");
}

/// Each kind of failure has its exit code (`netlab --help` lists them): another
/// netlab process holding the lab's lock gives 5, and nothing changes.
#[test]
fn a_lab_another_process_is_changing_exits_5() {
    let sandbox = Sandbox::new();
    let file = topology("veth-pair.yaml");
    sandbox.ok("mkdir", &["-p", "/run/netlab"]);
    let holder = sandbox.spawn("", "flock", &["/run/netlab/veth-pair.lock", "sleep", "600"]);
    assert!(
        eventually(10.0, || sandbox.run("flock", &["-n", "/run/netlab/veth-pair.lock", "true"]).status.code()
            == Some(1)),
        "the lock is not held: {}",
        holder.output()
    );
    let before = sandbox.snapshot();
    let busy = sandbox.netlab(&["apply", &file]);
    assert_eq!(busy.status.code(), Some(5), "{}", text(&busy.stderr));
    assert_eq!(text(&busy.stderr), "netlab: lab veth-pair is being changed by another netlab process\n");
    assert_eq!(sandbox.snapshot(), before, "a busy lab was changed");
    drop(holder);
    let help = text(&Command::new(NETLAB).arg("--help").output().unwrap().stdout);
    for code in ["3 a clash", "4 the host does not fit", "5 another netlab process", "6 the lab's record is corrupt"] {
        assert!(help.contains(code), "--help lacks `{code}`: {help}");
    }
}

#[test]
fn bash_completes_netlabs_commands_and_options() {
    let script = Command::new(NETLAB).args(["completions", "bash"]).output().unwrap();
    assert!(script.status.success());
    let dir = std::env::temp_dir().join(format!("netlab-completion-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("netlab.bash");
    std::fs::write(&file, &script.stdout).unwrap();
    // Complete as bash would after `netlab ins<TAB>` and `netlab apply --st<TAB>`.
    let complete = |words: &str, current: usize| {
        let program = format!(
            "source {}; COMP_WORDS=({words}); COMP_CWORD={current}; COMP_LINE='{words}'; \
             _netlab netlab \"${{COMP_WORDS[$COMP_CWORD]}}\" \"${{COMP_WORDS[$COMP_CWORD-1]}}\"; echo \"${{COMPREPLY[@]}}\"",
            file.display()
        );
        let output = Command::new("bash").args(["--noprofile", "--norc", "-c", &program]).output().unwrap();
        assert!(output.status.success(), "{}", text(&output.stderr));
        text(&output.stdout).trim().to_string()
    };
    assert_eq!(complete("netlab ins", 1), "inspect");
    assert_eq!(complete("netlab apply --st", 2), "--step");
    for shell in ["zsh", "fish"] {
        let output = Command::new(NETLAB).args(["completions", shell]).output().unwrap();
        assert!(output.status.success() && text(&output.stdout).contains("capture"), "{shell}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn man_pages_cover_every_command_and_its_options() {
    let dir = std::env::temp_dir().join(format!("netlab-man-{}", std::process::id()));
    let output = Command::new(NETLAB).args(["man", "--dir"]).arg(&dir).output().unwrap();
    assert!(output.status.success(), "{}", text(&output.stderr));
    for command in
        ["apply", "plan", "destroy", "status", "validate", "exec", "check", "list", "capture", "graph", "inspect"]
    {
        let page = std::fs::read_to_string(dir.join(format!("netlab-{command}.1"))).unwrap();
        assert!(page.contains(&format!(".TH netlab-{command} 1")), "{command}");
    }
    let apply = std::fs::read_to_string(dir.join("netlab-apply.1")).unwrap();
    assert!(apply.contains("\\-\\-step") && apply.contains("\\-\\-explain"), "{apply}");
    let main = Command::new(NETLAB).arg("man").output().unwrap();
    assert!(text(&main.stdout).contains("Exit codes: 0 success"), "the main page lacks the exit codes");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn with_output_json_a_failure_is_json_too() {
    let dir = std::env::temp_dir().join(format!("netlab-json-errors-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("bad.yaml");
    std::fs::write(&bad, "name: x\nnodes:\n  A: {interfaces: {eth0: {mtuu: 1}}}\n  B: {interfacez: {}}\n").unwrap();
    for command in [&["validate"][..], &["plan"], &["status"], &["check"], &["graph"]] {
        let output = Command::new(NETLAB).args(command).arg(&bad).args(["-o", "json"]).output().unwrap();
        assert_eq!(output.status.code(), Some(2), "{command:?}");
        let json: serde_json::Value = serde_json::from_slice(&output.stdout)
            .unwrap_or_else(|e| panic!("{command:?}: {e}: {}", text(&output.stdout)));
        assert_eq!(json["error"]["kind"], "invalid", "{command:?}");
        assert_eq!(json["error"]["exit_code"], 2);
        let diagnostics = json["error"]["diagnostics"].as_array().unwrap();
        assert_eq!(diagnostics.len(), 2, "{json:#}");
        assert_eq!((diagnostics[0]["line"].as_u64(), diagnostics[0]["column"].as_u64()), (Some(3), Some(27)));
        assert!(diagnostics[1]["message"].as_str().unwrap().contains("unknown field `interfacez`"), "{json:#}");
        // People still read it on stderr.
        assert!(text(&output.stderr).contains("bad.yaml:3:27"), "{command:?}");
    }
    let good = Command::new(NETLAB).args(["validate", "topologies/nat.yaml", "-o", "json"]).output().unwrap();
    let json: serde_json::Value = serde_json::from_slice(&good.stdout).unwrap();
    assert_eq!(
        (json["valid"].as_bool(), json["lab"].as_str(), json["nodes"].as_u64()),
        (Some(true), Some("bridge"), Some(3))
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_lab_can_be_named_instead_of_its_file() {
    let sandbox = Sandbox::new();
    let file = sandbox.file("bridge.yaml", &std::fs::read_to_string(topology("bridge.yaml")).unwrap());
    let not_applied = sandbox.netlab(&["exec", "--name", "bridge", "RED", "--", "true"]);
    assert_eq!(not_applied.status.code(), Some(1), "{}", text(&not_applied.stderr));
    assert!(text(&not_applied.stderr).contains("lab bridge is not applied here"), "{}", text(&not_applied.stderr));
    sandbox.netlab_ok(&["apply", &file]);

    for command in ["plan", "apply"] {
        assert_eq!(sandbox.netlab_ok(&[command, "--name", "bridge"]).trim(), "no changes", "{command}");
    }
    assert!(sandbox.netlab_ok(&["validate", "--name", "bridge"]).contains("lab bridge is valid"));
    assert_eq!(sandbox.netlab(&["status", "--name", "bridge"]).status.code(), Some(0));
    let links = sandbox.netlab_ok(&["exec", "--name", "bridge", "RED", "--", "ip", "-br", "link", "show", "reth0"]);
    assert!(links.starts_with("reth0@"), "{links}");
    let checks = sandbox.netlab_ok(&["check", "--name", "bridge"]);
    assert!(checks.contains("3 passed, 0 failed"), "{checks}");
    assert_eq!(sandbox.netlab_ok(&["graph", "--name", "bridge"]), sandbox.netlab_ok(&["graph", &file]));
    // Nothing sends on reth0 unless asked: pings from RED give the frame.
    let mut capture = sandbox
        .command(NETLAB)
        .args(["capture", "--name", "bridge", "RED:reth0", "-c", "1", "--timeout", "30", "-w", "-"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    assert!(eventually(30.0, || {
        sandbox.netlab(&["exec", "--name", "bridge", "RED", "--", "ping", "-c", "1", "-W", "1", "11.11.11.3"]);
        matches!(capture.try_wait(), Ok(Some(_)))
    }));
    let pcap = capture.wait_with_output().unwrap();
    assert!(pcap.status.success());
    assert!(pcap.stdout.len() > 24 + 16, "one frame after the pcap header: {} bytes", pcap.stdout.len());

    // Bad names are usage errors; a file that is gone is said so, exec still works.
    for bad in ["a b", "x/y"] {
        let output = sandbox.netlab(&["check", "--name", bad]);
        assert_eq!(output.status.code(), Some(2), "{bad}: {}", text(&output.stderr));
    }
    std::fs::remove_file(&file).unwrap();
    let gone = sandbox.netlab(&["check", "--name", "bridge"]);
    assert_eq!(gone.status.code(), Some(1));
    assert!(text(&gone.stderr).contains("which is gone: give the file"), "{}", text(&gone.stderr));
    sandbox.netlab_ok(&["exec", "--name", "bridge", "BLUE", "--", "true"]);
    let both = sandbox.netlab(&["exec", "--name", "bridge", "x.yaml", "BLUE", "--", "true"]);
    assert_eq!(both.status.code(), Some(2));
    sandbox.netlab_ok(&["destroy", "--name", "bridge"]);
}
