//! `vxlan-agent`: run the agent, publish or withdraw an endpoint by hand, or show
//! the agents' counters.

use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use vxlan_agent::agent::{self, Options};
use vxlan_agent::endpoint::{Endpoint, Mac};
use vxlan_agent::reconcile::Mode;
use vxlan_agent::status::{self, Status};
use vxlan_agent::store::{self, AnyStore, StoreUrl, Tls};

#[derive(Parser)]
#[command(version, about = "per-host agent of a dynamic VXLAN overlay")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Keep a VXLAN device's ARP and FDB entries in line with the store.
    Run(RunArgs),
    /// Write an endpoint's entries (arp/IP -> MAC, fdb/MAC -> VTEP) to the store.
    Publish(EndpointArgs),
    /// Remove an endpoint's entries from the store (those still holding its values).
    Withdraw(EndpointArgs),
    /// Print the store's entries, one `KEY VALUE` per line.
    List {
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Show the counters of the agents on this host.
    Status {
        #[arg(long, default_value = status::DEFAULT_DIR)]
        status_dir: PathBuf,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Args)]
struct StoreArgs {
    /// dir:PATH (a folder with arp/ and fdb/) or etcd://HOST:PORT[,HOST:PORT...][/PREFIX].
    #[arg(long, default_value = "dir:/var/lib/vxlan-agent")]
    store: StoreUrl,
    /// CA certificate (PEM) for etcd over TLS.
    #[arg(long)]
    etcd_ca: Option<PathBuf>,
    /// Client certificate (PEM) for etcd over TLS.
    #[arg(long, requires = "etcd_key")]
    etcd_cert: Option<PathBuf>,
    /// Client key (PEM) for etcd over TLS.
    #[arg(long, requires = "etcd_cert")]
    etcd_key: Option<PathBuf>,
}

impl StoreArgs {
    fn open(&self, poll: Duration) -> Result<AnyStore, String> {
        let tls = (self.etcd_ca.is_some() || self.etcd_cert.is_some()).then(|| Tls {
            ca: self.etcd_ca.clone(),
            cert: self.etcd_cert.clone(),
            key: self.etcd_key.clone(),
        });
        if tls.is_some() && !matches!(self.store, StoreUrl::Etcd { .. }) {
            return Err("--etcd-ca/--etcd-cert apply to an etcd store only".into());
        }
        AnyStore::open(&self.store, tls, poll)
    }
}

#[derive(Args)]
struct RunArgs {
    /// The namespace (in /run/netns) where the VXLAN device lives; default: this process's.
    #[arg(long)]
    netns: Option<String>,
    /// The VXLAN device.
    #[arg(long)]
    device: String,
    #[command(flatten)]
    store: StoreArgs,
    /// proactive: install every entry before traffic needs it (misses remain the
    /// fallback); miss: only answer misses, as the tutorial's agent does.
    #[arg(long, value_enum, default_value = "proactive")]
    mode: Mode,
    /// This host's VTEP address (repeatable); default: the device's local address.
    #[arg(long)]
    local: Vec<IpAddr>,
    /// Seconds between full reconciliations of the kernel with the store.
    #[arg(long, default_value_t = 30.0)]
    resync: f64,
    /// Seconds between rescans of a folder store (for shared folders inotify cannot
    /// see into); 0: inotify only.
    #[arg(long, default_value_t = 5.0)]
    poll: f64,
    /// Receive buffer of the kernel notification socket, in bytes. When a burst overruns
    /// it the kernel drops notifications and the agent reconciles in full.
    #[arg(long, default_value_t = agent::DEFAULT_EVENT_BUFFER)]
    event_buffer: usize,
    #[arg(long, default_value = status::DEFAULT_DIR)]
    status_dir: PathBuf,
}

#[derive(Args)]
struct EndpointArgs {
    #[command(flatten)]
    store: StoreArgs,
    #[arg(long)]
    ip: IpAddr,
    #[arg(long)]
    mac: Mac,
    /// The VTEP (underlay address) of the host the endpoint lives on.
    #[arg(long)]
    vtep: IpAddr,
}

fn seconds(value: f64, what: &str) -> Result<Duration, String> {
    Duration::try_from_secs_f64(value).map_err(|_| format!("--{what} {value}: not a number of seconds"))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info,h2=warn,tower=warn".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("vxlan-agent: start runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(execute(cli.command)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(problem) => {
            eprintln!("vxlan-agent: {problem}");
            ExitCode::FAILURE
        }
    }
}

async fn execute(command: Command) -> Result<(), String> {
    match command {
        Command::Run(args) => {
            let netns = match &args.netns {
                Some(name) => netns::Netns::Named(name.clone()),
                None => netns::Netns::Host,
            };
            let status_file = Status::file(&args.status_dir, args.netns.as_deref().unwrap_or("self"), &args.device);
            let store = args.store.open(seconds(args.poll, "poll")?)?;
            let options = Options {
                netns,
                device: args.device,
                mode: args.mode,
                local: args.local,
                resync: seconds(args.resync, "resync")?.max(Duration::from_millis(100)),
                event_buffer: args.event_buffer,
                status_file,
                store_label: args.store.store.to_string(),
            };
            agent::run(options, store).await
        }
        Command::Publish(args) => {
            let endpoint = Endpoint { ip: args.ip, mac: args.mac, vtep: args.vtep };
            store::publish(&args.store.open(Duration::ZERO)?, &endpoint).await
        }
        Command::Withdraw(args) => {
            let endpoint = Endpoint { ip: args.ip, mac: args.mac, vtep: args.vtep };
            store::withdraw(&args.store.open(Duration::ZERO)?, &endpoint).await
        }
        Command::List { store } => {
            let store = store.open(Duration::ZERO)?;
            let (updates, mut incoming) = tokio::sync::mpsc::channel(16);
            let follower = store::follow(&store, updates);
            tokio::pin!(follower);
            // The follower sends a snapshot first (or a failure): that is the listing.
            let first = tokio::select! {
                update = incoming.recv() => update,
                () = &mut follower => None,
            };
            match first {
                Some(store::Update::Snapshot(table)) => {
                    for (ip, mac) in table.arp() {
                        println!("arp/{ip} {mac}");
                    }
                    for (mac, vtep) in table.fdb() {
                        println!("fdb/{mac} {vtep}");
                    }
                    Ok(())
                }
                Some(store::Update::Failed(problem)) => Err(problem),
                _ => Err("the store sent no snapshot".to_string()),
            }
        }
        Command::Status { status_dir, json } => {
            let all = Status::read_all(&status_dir)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&all).expect("status serializes"));
                return Ok(());
            }
            if all.is_empty() {
                println!("no agents have reported in {}", status_dir.display());
            }
            for s in all {
                let c = &s.counters;
                println!(
                    "{}:{} pid {} ({}) store {} mode {} keys {} neighbours {} fdb {}",
                    s.netns,
                    s.device,
                    s.pid,
                    if s.running() { "running" } else { "stopped" },
                    s.store,
                    s.mode,
                    s.store_keys,
                    s.neighbours,
                    s.fdb
                );
                println!(
                    "  misses l3 {} l2 {} unknown {} ignored {}; installed {} removed {} failed {}; resyncs {} overruns {}; store updates {} errors {}; miss to install p50 {} us p99 {} us",
                    c.l3_misses, c.l2_misses, c.unknown_misses, c.ignored_misses, c.installed, c.removed, c.failed,
                    c.resyncs, c.overruns, c.store_updates, c.store_errors, s.miss_to_install.p50_us, s.miss_to_install.p99_us
                );
            }
            Ok(())
        }
    }
}
