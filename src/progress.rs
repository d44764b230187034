//! done/total on a terminal while a long apply runs; silent when stderr is piped.

use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub struct Progress {
    total: usize,
    enabled: bool,
    last: Mutex<Option<Instant>>,
}

const EVERY: Duration = Duration::from_millis(100);

impl Progress {
    pub fn new(total: usize) -> Self {
        let enabled = total >= 50 && std::io::stderr().is_terminal();
        Progress { total, enabled, last: Mutex::new(None) }
    }

    pub fn update(&self, done: usize) {
        if !self.enabled {
            return;
        }
        let mut last = self.last.lock().expect("unpoisoned");
        if last.is_some_and(|t| t.elapsed() < EVERY) && done < self.total {
            return;
        }
        *last = Some(Instant::now());
        eprint!("\r{done}/{} changes", self.total);
        let _ = std::io::stderr().flush();
    }

    pub fn finish(&self) {
        if self.enabled {
            eprintln!();
        }
    }
}
