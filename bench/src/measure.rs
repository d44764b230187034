//! Run a program and measure its wall time and peak resident memory.

use std::process::Command;
use std::time::Instant;

use anyhow::{bail, Context, Result};

#[derive(Debug, Clone, Copy)]
pub struct Measured {
    pub seconds: f64,
    pub max_rss_kb: u64,
}

/// Run to completion; a non-zero exit is an error naming the command.
pub fn run(command: &mut Command) -> Result<Measured> {
    let started = Instant::now();
    let child = command.spawn().with_context(|| format!("start {command:?}"))?;
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: rusage is plain data the kernel fills in; wait4 reaps our own child.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let reaped = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    let seconds = started.elapsed().as_secs_f64();
    if reaped != pid {
        bail!("wait for {command:?}: {}", std::io::Error::last_os_error());
    }
    std::mem::forget(child);
    if !libc::WIFEXITED(status) || libc::WEXITSTATUS(status) != 0 {
        bail!("{command:?} failed with status {status:#x}");
    }
    Ok(Measured { seconds, max_rss_kb: usage.ru_maxrss as u64 })
}

/// Run one command after another, one process each; the total wall time.
pub fn run_each(commands: &[Vec<String>]) -> Result<f64> {
    let started = Instant::now();
    for argv in commands {
        run(Command::new(&argv[0]).args(&argv[1..]))?;
    }
    Ok(started.elapsed().as_secs_f64())
}

pub fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    match sorted.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => sorted[n / 2],
        n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    }
}
