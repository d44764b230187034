//! The per-host VXLAN agent is the subject of a later issue; until then this binary
//! says so instead of pretending to work.

fn main() -> std::process::ExitCode {
    eprintln!("vxlan-agent: not implemented yet");
    std::process::ExitCode::from(1)
}
