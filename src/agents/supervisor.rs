//! The lab's supervisor (`netlab supervise --name LAB`, started by apply): runs one
//! vxlan-agent per wanted device inside the device's underlay namespace, starts again
//! one that dies (with backoff) or whose device was made again (its ifindex changed),
//! stops those no longer wanted, and records what it runs in agents.json. It ends on
//! SIGTERM (stopping its agents), or when the lab's folder is removed.
//!
//! A plain loop of rounds rather than async tasks: a handful of children, checked a
//! few times a second.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::process::{self, is_agent, is_alive, start_time};
use super::state::{self, agents_file, read_agents, read_wanted, supervisor_file, AgentState, SupervisorState};
use super::{agent_program, lab_dir, observe, AgentError};
use crate::kernel_place::KernelPlace;
use crate::model::LabName;
use crate::plan::agents::{AgentProcess, AgentSpec, Role};

const ROUND: Duration = Duration::from_millis(200);
/// How often each device's ifindex is read.
const DEVICE_CHECK: Duration = Duration::from_secs(1);
const FIRST_BACKOFF: Duration = Duration::from_millis(200);
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// An agent that ran this long before dying starts again without delay.
const STEADY: Duration = Duration::from_secs(10);
const GRACE: Duration = Duration::from_secs(3);

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_stop(_: libc::c_int) {
    STOP.store(true, Ordering::Relaxed);
}

/// One agent under supervision.
struct Slot {
    spec: AgentSpec,
    log: PathBuf,
    /// Our child, or a process found running (started by an earlier supervisor).
    child: Option<Child>,
    process: Option<AgentProcess>,
    since: Instant,
    /// The device's ifindex when the agent started (`None`: it had none then).
    ifindex: Option<u32>,
    restarts: u32,
    /// Started at least once: a later start counts as a restart.
    started_once: bool,
    backoff: Duration,
    next_start: Instant,
    last_error: Option<String>,
}

/// Run until told to stop. Exits at once, successfully, if another supervisor of
/// the lab holds the lock.
pub fn supervise(lab: &LabName) -> Result<(), AgentError> {
    let dir = lab_dir(lab);
    std::fs::create_dir_all(&dir).map_err(|source| AgentError::Write { path: dir.clone(), source })?;
    let lock_path = dir.join("supervisor.lock");
    let lock = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|source| AgentError::Write { path: lock_path.clone(), source })?;
    // SAFETY: flock on an fd we own.
    if unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        tracing::info!(%lab, "another supervisor runs this lab");
        return Ok(());
    }
    let action = nix::sys::signal::SigAction::new(
        nix::sys::signal::SigHandler::Handler(on_stop),
        nix::sys::signal::SaFlags::empty(),
        nix::sys::signal::SigSet::empty(),
    );
    for signal in [nix::sys::signal::Signal::SIGTERM, nix::sys::signal::Signal::SIGINT] {
        // SAFETY: the handler only stores to an atomic.
        let _ = unsafe { nix::sys::signal::sigaction(signal, &action) };
    }
    let me = std::process::id();
    let process = AgentProcess { pid: me, started: start_time(me).unwrap_or_default() };
    state::write(&supervisor_file(lab), &SupervisorState { process })?;
    tracing::info!(%lab, pid = me, "supervisor started");
    let mut supervisor =
        Supervisor { lab: lab.clone(), slots: BTreeMap::new(), written: None, checked: Instant::now() };
    supervisor.adopt();
    while !STOP.load(Ordering::Relaxed) && dir.exists() {
        supervisor.round();
        std::thread::sleep(ROUND);
    }
    supervisor.stop_all();
    tracing::info!(%lab, "supervisor stopped");
    drop(lock);
    Ok(())
}

struct Supervisor {
    lab: LabName,
    slots: BTreeMap<String, Slot>,
    written: Option<BTreeMap<String, AgentState>>,
    checked: Instant,
}

impl Supervisor {
    /// Agents an earlier supervisor of the lab ran that still run as wanted are kept
    /// (same pid): only their supervisor was gone.
    fn adopt(&mut self) {
        let wanted = read_wanted(&self.lab);
        for (stem, state) in read_agents(&self.lab) {
            let (Some(process), Some(spec)) = (state.process, wanted.get(&stem)) else { continue };
            if state.spec == *spec && is_alive(&process, &is_agent) {
                let mut slot = Slot::new(spec.clone(), state.log);
                slot.restarts = state.restarts;
                slot.ifindex = ifindex(spec);
                slot.process = Some(process);
                slot.started_once = true;
                self.slots.insert(stem, slot);
            }
        }
    }

    fn round(&mut self) {
        let wanted = read_wanted(&self.lab);
        let gone: Vec<String> = self.slots.keys().filter(|stem| !wanted.contains_key(*stem)).cloned().collect();
        for stem in gone {
            if let Some(mut slot) = self.slots.remove(&stem) {
                slot.stop();
            }
        }
        let check_devices = self.checked.elapsed() >= DEVICE_CHECK;
        if check_devices {
            self.checked = Instant::now();
        }
        for (stem, spec) in wanted {
            let log = lab_dir(&self.lab).join(format!("{stem}.log"));
            let slot = self.slots.entry(stem).or_insert_with(|| Slot::new(spec.clone(), log));
            if slot.spec != spec {
                slot.stop();
                slot.spec = spec;
                slot.next_start = Instant::now();
            }
            slot.check(check_devices);
            if slot.process.is_none() && Instant::now() >= slot.next_start {
                slot.start();
            }
        }
        self.write();
    }

    fn stop_all(&mut self) {
        for slot in self.slots.values_mut() {
            slot.stop();
        }
        self.write();
    }

    /// agents.json, when it changed.
    fn write(&mut self) {
        let states: BTreeMap<String, AgentState> = self
            .slots
            .iter()
            .map(|(stem, slot)| {
                (
                    stem.clone(),
                    AgentState {
                        spec: slot.spec.clone(),
                        process: slot.process.clone(),
                        log: slot.log.clone(),
                        restarts: slot.restarts,
                        last_error: slot.last_error.clone(),
                    },
                )
            })
            .collect();
        if self.written.as_ref() == Some(&states) {
            return;
        }
        match state::write(&agents_file(&self.lab), &states) {
            Ok(()) => self.written = Some(states),
            Err(e) => tracing::warn!("{e}"),
        }
    }
}

impl Slot {
    fn new(spec: AgentSpec, log: PathBuf) -> Slot {
        Slot {
            spec,
            log,
            child: None,
            process: None,
            since: Instant::now(),
            ifindex: None,
            restarts: 0,
            started_once: false,
            backoff: FIRST_BACKOFF,
            next_start: Instant::now(),
            last_error: None,
        }
    }

    /// Notice an agent that ended, or whose device was made again.
    fn check(&mut self, check_device: bool) {
        let Some(process) = self.process.clone() else { return };
        let ended = match &mut self.child {
            Some(child) => match child.try_wait() {
                Ok(Some(status)) => Some(format!("exited ({status})")),
                Ok(None) => None,
                Err(e) => Some(format!("wait: {e}")),
            },
            None => (!is_alive(&process, &is_agent)).then(|| "ended".to_string()),
        };
        if let Some(how) = ended {
            let error = format!("{how}{}", last_line(&self.log).map(|l| format!(": {l}")).unwrap_or_default());
            tracing::warn!(agent = %self.spec.key(), pid = process.pid, "{error}");
            self.last_error = Some(error);
            self.child = None;
            self.process = None;
            if self.since.elapsed() >= STEADY {
                self.backoff = FIRST_BACKOFF;
            }
            self.next_start = Instant::now() + self.backoff;
            self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
            return;
        }
        if check_device {
            let now = ifindex(&self.spec);
            match (self.ifindex, now) {
                (Some(before), Some(now)) if before != now => {
                    tracing::info!(agent = %self.spec.key(), before, now, "device made again: restarting its agent");
                    self.stop();
                    self.next_start = Instant::now();
                }
                (None, Some(now)) => self.ifindex = Some(now),
                _ => {}
            }
        }
    }

    fn start(&mut self) {
        // An agent already serving the device as wanted (an earlier supervisor's, or
        // one started by hand with the same arguments) is taken over, not doubled.
        let running =
            observe([&self.spec.underlay]).into_iter().find(|a| a.key == self.spec.key() && a.args == self.spec.args());
        if let Some(found) = running {
            self.process = Some(AgentProcess { pid: found.pid, started: found.started });
            self.ifindex = ifindex(&self.spec);
            self.since = Instant::now();
            self.started_once = true;
            return;
        }
        match self.spawn() {
            Ok((child, process)) => {
                if self.started_once {
                    self.restarts += 1;
                }
                self.started_once = true;
                tracing::info!(agent = %self.spec.key(), pid = process.pid, "agent started");
                self.child = Some(child);
                self.process = Some(process);
                self.since = Instant::now();
            }
            Err(e) => {
                tracing::warn!(agent = %self.spec.key(), "start: {e}");
                self.last_error = Some(format!("start: {e}"));
                self.next_start = Instant::now() + self.backoff;
                self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
            }
        }
    }

    /// The agent, in the underlay's namespace, its output appended to its log.
    fn spawn(&mut self) -> std::io::Result<(Child, AgentProcess)> {
        let namespace = File::open(self.spec.underlay.to_netns().path())?;
        let log = OpenOptions::new().create(true).append(true).open(&self.log)?;
        self.ifindex = ifindex(&self.spec);
        let program = agent_program().map_err(std::io::Error::other)?;
        let mut command = Command::new(program);
        command.args(self.spec.args()).stdin(Stdio::null()).stdout(log.try_clone()?).stderr(log);
        let fd = namespace.as_raw_fd();
        // SAFETY: setns is async-signal-safe; `namespace` outlives the spawn.
        unsafe {
            command.pre_exec(move || {
                if libc::setns(fd, libc::CLONE_NEWNET) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = command.spawn()?;
        let started = start_time(child.id()).unwrap_or_default();
        drop(namespace);
        let pid = child.id();
        Ok((child, AgentProcess { pid, started }))
    }

    fn stop(&mut self) {
        if let Some(process) = self.process.take() {
            process::stop(&process, &is_agent, GRACE);
        }
        if let Some(mut child) = self.child.take() {
            let _ = child.wait();
        }
    }
}

/// The device's ifindex now; `None` when it (or its namespace) is missing, and for a
/// node daemon, which makes its device itself.
fn ifindex(spec: &AgentSpec) -> Option<u32> {
    let Role::Vxlan { device, .. } = &spec.role else { return None };
    let device = device.to_string();
    netns::thread::in_one(spec.place.to_netns(), move |_| {
        let links = netns::blocking::links(&netns::Netlink::open_socket_here()?)?;
        Ok(links.into_iter().find(|l| l.name == device).map(|l| l.index))
    })
    .ok()
    .flatten()
}

/// The last line of a log, for the error a dead agent leaves: only one that is not a
/// log line of the agent's routine work (an INFO or DEBUG line says nothing of why).
fn last_line(log: &PathBuf) -> Option<String> {
    let text = std::fs::read_to_string(log).ok()?;
    let line = text.lines().rev().find(|l| !l.trim().is_empty())?;
    if [" INFO ", " DEBUG ", " TRACE "].iter().any(|level| line.contains(level)) {
        return None;
    }
    Some(line.chars().take(300).collect())
}
