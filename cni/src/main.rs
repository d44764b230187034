//! `netlab-cni`: the CNI plugin binary (thin over the library).

fn main() {
    eprintln!("netlab-cni: not built yet");
    std::process::exit(1);
}
