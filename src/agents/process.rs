//! Processes as /proc shows them: a pid with its start time names one process for
//! good (a recycled pid has another start time), so nothing here signals a pid
//! without checking both the start time and the command line first.

use std::path::Path;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::plan::agents::AgentProcess;

/// The start time of a process, in clock ticks after boot (field 22 of
/// /proc/PID/stat); `None` when there is no such process.
pub fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may hold anything, spaces
    // and parentheses included: the fields after it start after the last `)`.
    let rest = &stat[stat.rfind(')')? + 1..];
    // Field 3 (state) is the first after it, so field 22 is the 20th.
    let ticks = rest.split_whitespace().nth(19)?;
    // A zombie has exited: only its parent's wait is left.
    let state = rest.split_whitespace().next()?;
    if state == "Z" || state == "X" {
        return None;
    }
    ticks.parse().ok()
}

/// The words of a process's command line.
pub fn command_line(pid: u32) -> Option<Vec<String>> {
    let raw = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    if raw.is_empty() {
        return None;
    }
    Some(raw.split(|b| *b == 0).filter(|w| !w.is_empty()).map(|w| String::from_utf8_lossy(w).into_owned()).collect())
}

/// Whether the program of a command line is `name` (its file name).
pub fn runs_program(words: &[String], name: &str) -> bool {
    words.first().and_then(|w| Path::new(w).file_name()).is_some_and(|f| f == name)
}

/// What tells the process meant by its command line.
pub type Meant<'a> = &'a dyn Fn(&[String]) -> bool;

/// A vxlan-agent.
pub fn is_agent(words: &[String]) -> bool {
    runs_program(words, super::PROGRAM)
}

/// The process is still the one meant: same start time, a command line `meant` accepts.
pub fn is_alive(process: &AgentProcess, meant: Meant) -> bool {
    start_time(process.pid) == Some(process.started) && command_line(process.pid).is_some_and(|words| meant(&words))
}

/// The inode of the network namespace of a process (or of `/proc/self`).
pub fn net_namespace(pid: Option<u32>) -> Option<u64> {
    use std::os::unix::fs::MetadataExt;
    let path = match pid {
        Some(pid) => format!("/proc/{pid}/ns/net"),
        None => "/proc/self/ns/net".to_string(),
    };
    std::fs::metadata(path).ok().map(|m| m.ino())
}

/// Stop a process that is still the one meant: SIGTERM, then SIGKILL after `grace`.
/// Whether it is gone (true also when it had already gone, or the pid is another
/// process's now, which is left alone).
pub fn stop(process: &AgentProcess, meant: Meant, grace: Duration) -> bool {
    if !is_alive(process, meant) {
        return true;
    }
    let pid = Pid::from_raw(process.pid as i32);
    let _ = kill(pid, Signal::SIGTERM);
    if wait_gone(process, grace) {
        return true;
    }
    // Checked again: the pid may have been recycled while we waited.
    if is_alive(process, meant) {
        let _ = kill(pid, Signal::SIGKILL);
    }
    wait_gone(process, Duration::from_secs(2))
}

/// Wait until the process is gone (a zombie counts as gone); whether it went in time.
pub fn wait_gone(process: &AgentProcess, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    loop {
        if start_time(process.pid) != Some(process.started) {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Every process id under /proc.
pub fn all_pids() -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else { return Vec::new() };
    entries.flatten().filter_map(|e| e.file_name().to_str()?.parse().ok()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_found_by_its_start_time_and_program() {
        let pid = std::process::id();
        let started = start_time(pid).expect("our own start time");
        let words = command_line(pid).unwrap();
        let program = Path::new(&words[0]).file_name().unwrap().to_string_lossy().into_owned();
        let us = |w: &[String]| runs_program(w, &program);
        assert!(is_alive(&AgentProcess { pid, started }, &us));
        // Another start time is another process: never ours to signal.
        assert!(!is_alive(&AgentProcess { pid, started: started + 1 }, &us));
        assert!(!is_alive(&AgentProcess { pid, started }, &is_agent));
        assert!(stop(&AgentProcess { pid, started: started + 1 }, &us, Duration::ZERO));
    }
}
