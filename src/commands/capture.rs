//! `netlab capture FILE NODE:IFNAME`: the frames of one interface of a lab, as pcap
//! (to a file, or to stdout for `| tshark -r -` and `| wireshark -k -i -`) or, on a
//! terminal, as one line each. Ends after `-c N` frames, after `--timeout S`, on
//! Ctrl-C or SIGTERM (the file whole), or when the reader of stdout goes away.

use std::fs::File;
use std::io::IsTerminal;
use std::os::fd::AsFd;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Args;
use netlab::capture::pcap::Pcap;
use netlab::capture::{End, Limits, Lines, Sink};
use netlab::model::{Endpoint, IfName, Place, Topology};
use tokio::signal::unix::{signal, SignalKind};

use super::load;

#[derive(Args)]
#[command(
    override_usage = "netlab capture FILE NODE:IFNAME [OPTIONS]\n       netlab capture --name LAB NODE:IFNAME [OPTIONS]"
)]
pub struct Capture {
    /// The lab's file and the interface: NODE:IFNAME, or host:IFNAME (or IFNAME alone)
    /// for the host's; with --name, the interface alone.
    #[arg(value_name = "FILE NODE:IFNAME", num_args = 1..=2, required = true)]
    pub targets: Vec<String>,
    /// The lab's name: capture on the lab as last applied, from the file it was applied from.
    #[arg(long)]
    pub name: Option<String>,
    /// Stop after this many frames.
    #[arg(short = 'c', long = "count", value_parser = clap::value_parser!(u64).range(1..))]
    pub count: Option<u64>,
    /// Stop after this many seconds (fractions allowed).
    #[arg(long, value_name = "SECONDS", value_parser = super::seconds)]
    pub timeout: Option<Duration>,
    /// Write pcap to this file, or to stdout with `-`. Default: `-` when stdout is not
    /// a terminal, one line per frame when it is.
    #[arg(short = 'w', long = "write")]
    pub write: Option<PathBuf>,
}

/// What becomes of each frame.
enum Output {
    PcapFile(PathBuf),
    PcapStdout,
    Lines,
}

impl Capture {
    pub async fn run(self) -> Result<ExitCode> {
        let (file, interface) = super::lab_arg::split_target(self.targets, self.name.as_deref())?;
        let topology = load(&super::lab_arg::file_or_recorded(file, self.name.as_deref())?)?;
        let endpoint = match endpoint(&topology, &interface) {
            Ok(endpoint) => endpoint,
            Err(message) => {
                eprintln!("netlab: {message}");
                return Ok(ExitCode::from(2));
            }
        };
        let output = match self.write.as_deref() {
            Some(path) if path.as_os_str() == "-" => Output::PcapStdout,
            Some(path) => Output::PcapFile(path.to_path_buf()),
            None if std::io::stdout().is_terminal() => Output::Lines,
            None => Output::PcapStdout,
        };
        // Taken over before the socket opens: from here on Ctrl-C ends the capture
        // cleanly instead of killing netlab mid-record.
        let mut interrupt = signal(SignalKind::interrupt()).context("handle SIGINT")?;
        let mut terminate = signal(SignalKind::terminate()).context("handle SIGTERM")?;
        let socket = tokio::task::spawn_blocking({
            let (lab, endpoint) = (topology.name.clone(), endpoint.clone());
            move || netlab::capture::open(&lab, &endpoint)
        })
        .await??;
        let (mut sink, watched): (Box<dyn Sink + Send>, Option<File>) = match &output {
            Output::PcapFile(path) => {
                let file = File::create(path).with_context(|| format!("create {}", path.display()))?;
                (Box::new(Pcap::new(file).with_context(|| format!("write {}", path.display()))?), None)
            }
            Output::PcapStdout => {
                let stdout = stdout_file()?;
                let watched = stdout.try_clone().context("duplicate stdout")?;
                (Box::new(Pcap::new(stdout).context("write the pcap header to stdout")?), Some(watched))
            }
            Output::Lines => {
                let lines = Lines::new(std::io::stdout(), netlab::capture::vxlan_ports(&topology));
                (Box::new(lines), Some(stdout_file()?))
            }
        };
        // Said once the socket is bound: from this line on, no frame is missed.
        let target = match &output {
            Output::PcapFile(path) => format!(" into {}", path.display()),
            Output::PcapStdout => " as pcap to stdout".to_string(),
            Output::Lines => String::new(),
        };
        eprintln!("netlab: capturing on {endpoint}{target}");
        // The loop ends when the write end of this pipe closes (a signal came).
        let (stop_read, stop_write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).context("create a pipe")?;
        let limits = Limits { count: self.count, timeout: self.timeout };
        let mut capture = tokio::task::spawn_blocking(move || {
            let result = netlab::capture::record(
                &socket,
                &endpoint,
                limits,
                stop_read.as_fd(),
                watched.as_ref().map(|f| f.as_fd()),
                sink.as_mut(),
            );
            let dropped = socket.statistics().map(|s| s.dropped).unwrap_or(0);
            result.map(|(frames, end)| (frames, end, dropped))
        });
        let result = tokio::select! {
            result = &mut capture => result,
            _ = interrupt.recv() => { drop(stop_write); capture.await }
            _ = terminate.recv() => { drop(stop_write); capture.await }
        };
        let (frames, end, dropped) = result??;
        if end == End::OutputClosed {
            // As a program killed by SIGPIPE shows in a shell, without a word.
            return Ok(ExitCode::from(141));
        }
        let plural = if frames == 1 { "" } else { "s" };
        eprintln!("netlab: {frames} frame{plural} captured, {dropped} dropped by the kernel");
        Ok(ExitCode::SUCCESS)
    }
}

/// `NODE:IFNAME`, `host:IFNAME` or `IFNAME` (the host's), as links name endpoints; the
/// node must be one of the lab's.
fn endpoint(topology: &Topology, text: &str) -> Result<Endpoint, String> {
    let (place_text, name_text) = text.split_once(':').unwrap_or(("host", text));
    let place: Place = match place_text.parse() {
        Ok(place) if topology.namespaces.contains_key(&place) || place == Place::Host => place,
        _ => return Err(format!("lab {} has no node `{place_text}`", topology.name)),
    };
    let name: IfName = name_text.parse()?;
    Ok(Endpoint { place, name })
}

/// Stdout as a file, unbuffered: each pcap record goes out whole as it is written.
fn stdout_file() -> Result<File> {
    let fd = std::io::stdout().as_fd().try_clone_to_owned().context("duplicate stdout")?;
    Ok(File::from(fd))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_name_a_node_of_the_lab_or_the_host() {
        let file = concat!(env!("CARGO_MANIFEST_DIR"), "/topologies/nat.yaml");
        let topology = netlab::model::load(std::path::Path::new(file)).unwrap();
        assert_eq!(endpoint(&topology, "RED:reth0").unwrap().to_string(), "RED:reth0");
        assert_eq!(endpoint(&topology, "host:vext").unwrap().place, Place::Host);
        assert_eq!(endpoint(&topology, "vext").unwrap().place, Place::Host);
        assert_eq!(endpoint(&topology, "GREEN:eth0").unwrap_err(), "lab bridge has no node `GREEN`");
        assert!(endpoint(&topology, "RED:a/b").is_err());
    }

    #[test]
    fn timeouts_are_seconds() {
        assert_eq!(crate::commands::seconds("1.5").unwrap(), Duration::from_millis(1500));
        assert!(crate::commands::seconds("-1").is_err());
        assert!(crate::commands::seconds("soon").is_err());
    }
}
