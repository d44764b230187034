//! What apply and destroy do with agents: say which agents the lab wants, make sure
//! the lab's supervisor runs, wait until each agent serves its device; and on destroy
//! stop the supervisor and every agent, and check that none is left.

use std::collections::BTreeMap;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::process::{self, is_agent, is_alive};
use super::report::agent_status;
use super::state::{self, read_agents, read_supervisor, want_dir};
use super::{lab_dir, AgentError};
use crate::model::LabName;
use crate::plan::agents::{AgentKey, AgentProcess, AgentSpec};

/// How long apply waits for an agent to run and to load its store.
const START_TIMEOUT: Duration = Duration::from_secs(20);
/// How long a stopped process has to exit on SIGTERM before SIGKILL.
const GRACE: Duration = Duration::from_secs(3);

/// The lab's supervisor: `... supervise --name LAB` (whatever netlab's file is called).
fn supervisor_of(lab: &LabName) -> impl Fn(&[String]) -> bool + '_ {
    move |words| {
        words.iter().any(|w| w == "supervise") && words.windows(2).any(|w| w[0] == "--name" && w[1] == lab.as_str())
    }
}

fn want_file(lab: &LabName, key: &AgentKey) -> std::path::PathBuf {
    want_dir(lab).join(format!("{}.json", key.file_stem()))
}

/// No longer want an agent, and stop its processes.
pub fn stop(lab: &LabName, key: &AgentKey, running: &[AgentProcess]) -> Result<(), AgentError> {
    let file = want_file(lab, key);
    match std::fs::remove_file(&file) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            return Err(AgentError::Write { path: file, source: e });
        }
        _ => {}
    }
    let mut left = Vec::new();
    for process in running {
        if !process::stop(process, &is_agent, GRACE) {
            left.push(format!("vxlan-agent pid {}", process.pid));
        }
    }
    // The supervisor may have restarted it before it read the change: it stops
    // agents it no longer finds wanted at its next round.
    let deadline = Instant::now() + GRACE;
    while read_agents(lab).get(&key.file_stem()).is_some_and(|a| a.process.is_some()) && supervisor_alive(lab) {
        if Instant::now() >= deadline {
            left.push(format!("vxlan-agent of {key}"));
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    if !left.is_empty() {
        return Err(AgentError::LeftBehind { lab: lab.clone(), processes: left });
    }
    for file in super::report::agent_files(key) {
        let _ = std::fs::remove_file(file);
    }
    Ok(())
}

/// After apply has published the lab's endpoints: exactly `wanted` are wanted; the
/// processes `replaced` (agents that ran with other arguments) are stopped; the
/// supervisor runs when any agent is wanted (started again if it was killed) and is
/// stopped when none is; then wait until each agent runs as wanted and has loaded
/// its store (so, in proactive mode, has installed every remote endpoint).
pub fn converge(lab: &LabName, wanted: &[AgentSpec], replaced: &[AgentProcess]) -> Result<(), AgentError> {
    let stems: BTreeMap<String, &AgentSpec> = wanted.iter().map(|s| (s.key().file_stem(), s)).collect();
    for (stem, spec) in &state::read_wanted(lab) {
        if stems.get(stem).is_none_or(|w| *w != spec) {
            let _ = std::fs::remove_file(want_dir(lab).join(format!("{stem}.json")));
        }
    }
    if wanted.is_empty() {
        if let Some(supervisor) = read_supervisor(lab) {
            process::stop(&supervisor.process, &supervisor_of(lab), GRACE);
        }
        return Ok(());
    }
    // Said at once, rather than after waiting for agents that cannot start.
    super::agent_program()?;
    for spec in wanted {
        state::write(&want_file(lab, &spec.key()), spec)?;
    }
    for process in replaced {
        process::stop(process, &is_agent, GRACE);
    }
    ensure_supervisor(lab)?;
    let deadline = Instant::now() + START_TIMEOUT;
    for spec in wanted {
        wait_serving(lab, spec, deadline)?;
    }
    Ok(())
}

/// Wait until the supervisor runs the agent with the spec's arguments and the agent
/// reports its store loaded.
fn wait_serving(lab: &LabName, spec: &AgentSpec, deadline: Instant) -> Result<(), AgentError> {
    let key = spec.key();
    loop {
        let agents = read_agents(lab);
        let state = agents.get(&key.file_stem());
        let running = state.filter(|s| s.spec == *spec).and_then(|s| s.process.clone());
        let alive = running.filter(|p| is_alive(p, &is_agent));
        if let Some(process) = &alive {
            let status = agent_status(spec);
            if status.as_ref().is_some_and(|s| s.pid == process.pid && s.ready) {
                return Ok(());
            }
        }
        // An agent that runs but cannot reach its store yet keeps trying: not a failure
        // of apply (status says what it lacks).
        if Instant::now() >= deadline && alive.is_some() {
            let why = agent_status(spec).and_then(|s| s.problem).unwrap_or_else(|| "its store, its device".into());
            tracing::warn!(agent = %key, "the agent runs but does not serve yet: {why}");
            return Ok(());
        }
        if Instant::now() >= deadline {
            let reason = match (state.and_then(|s| s.last_error.clone()), agent_status(spec)) {
                (Some(error), _) => error,
                (None, Some(status)) => status.problem.unwrap_or_else(|| "it does not serve yet".into()),
                (None, None) => "it has not started".to_string(),
            };
            let log = state.map(|s| s.log.clone()).unwrap_or_else(|| lab_dir(lab));
            return Err(AgentError::NotRunning { key: key.to_string(), seconds: START_TIMEOUT.as_secs(), reason, log });
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

pub fn supervisor_alive(lab: &LabName) -> bool {
    read_supervisor(lab).is_some_and(|s| is_alive(&s.process, &supervisor_of(lab)))
}

/// Start the lab's supervisor unless it runs: detached, in a session of its own,
/// its output to supervisor.log. Two starting at once is harmless: the second finds
/// the lock held and leaves.
fn ensure_supervisor(lab: &LabName) -> Result<(), AgentError> {
    if supervisor_alive(lab) {
        return Ok(());
    }
    let failed = |source| AgentError::SpawnSupervisor { lab: lab.clone(), source };
    let dir = lab_dir(lab);
    std::fs::create_dir_all(&dir).map_err(failed)?;
    let log = std::fs::OpenOptions::new().create(true).append(true).open(dir.join("supervisor.log")).map_err(failed)?;
    let exe = std::env::current_exe().map_err(AgentError::OwnExecutable)?;
    let mut command = Command::new(exe);
    // -v: its starts and stops (info) go to supervisor.log too, not only warnings.
    command.args(["-v", "supervise", "--name", lab.as_str()]).stdin(Stdio::null()).stdout(Stdio::null()).stderr(log);
    // SAFETY: setsid and close_range are async-signal-safe system calls. setsid makes
    // the child a session leader, out of the terminal's and apply's process group (no
    // SIGHUP, no Ctrl-C); every descriptor past stderr that apply's caller let it
    // inherit (a pipe someone waits on to close, say) is closed at exec, so the
    // long-lived supervisor and its agents hold none of them.
    unsafe {
        command.pre_exec(|| {
            if libc::setsid() < 0 {
                return Err(std::io::Error::last_os_error());
            }
            if libc::close_range(3, libc::c_uint::MAX, libc::CLOSE_RANGE_CLOEXEC as libc::c_int) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = command.spawn().map_err(failed)?;
    // Until it has written its file (or left: another one took the lock first).
    let deadline = Instant::now() + Duration::from_secs(5);
    while !supervisor_alive(lab) && Instant::now() < deadline {
        if child.try_wait().map_err(failed)?.is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    // Not waited for: it outlives apply (and is reaped by init once apply exits).
    drop(child);
    Ok(())
}

/// For destroy: stop the supervisor (it stops its agents), then every agent it or an
/// earlier one recorded that still runs, and remove the lab's folder. Every pid is
/// checked to be the process meant (start time, command line) before a signal.
pub fn shutdown(lab: &LabName) -> Result<(), AgentError> {
    let _ = std::fs::remove_dir_all(want_dir(lab));
    let mut left = Vec::new();
    if let Some(supervisor) = read_supervisor(lab) {
        if !process::stop(&supervisor.process, &supervisor_of(lab), GRACE * 2) {
            left.push(format!("supervisor pid {}", supervisor.process.pid));
        }
    }
    for (stem, agent) in read_agents(lab) {
        if let Some(process) = agent.process {
            if !process::stop(&process, &is_agent, GRACE) {
                left.push(format!("vxlan-agent of {stem} (pid {})", process.pid));
            }
        }
    }
    if !left.is_empty() {
        return Err(AgentError::LeftBehind { lab: lab.clone(), processes: left });
    }
    // Their status files, locks and subnet files would speak of agents that are gone.
    for agent in read_agents(lab).values() {
        for file in super::report::agent_files(&agent.spec.key()) {
            let _ = std::fs::remove_file(file);
        }
    }
    match std::fs::remove_dir_all(lab_dir(lab)) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(AgentError::Write { path: lab_dir(lab), source: e }),
        _ => Ok(()),
    }
}
