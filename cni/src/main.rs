//! `netlab-cni`: the CNI plugin binary (thin over the library): the spec's output on
//! stdout, exit code 0 on success and 1 on failure.

fn main() {
    let (output, code) = netlab_cni::invoke(|name| std::env::var_os(name), std::io::stdin().lock());
    if let Some(output) = output {
        println!("{output}");
    }
    std::process::exit(code);
}
