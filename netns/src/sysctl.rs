//! Sysctls under /proc/sys/net are per network namespace: they are read and written
//! from a thread inside the namespace (see `thread`).

use std::path::PathBuf;

use crate::{Error, Result};

/// `net.ipv4.ip_forward` -> /proc/sys/net/ipv4/ip_forward. The caller validated the
/// key; we still refuse anything that could leave /proc/sys.
fn path(key: &str) -> Result<PathBuf> {
    if key.split('.').any(|part| part.is_empty() || part == ".." || part.contains('/')) {
        return Err(Error::other(format!("sysctl {key}"), "invalid key"));
    }
    Ok(PathBuf::from("/proc/sys").join(key.replace('.', "/")))
}

/// Read a value in the calling thread's namespace, whitespace normalised to single
/// spaces (the kernel separates some values with tabs). `None` when it does not exist.
pub fn read(key: &str) -> Result<Option<String>> {
    match std::fs::read_to_string(path(key)?) {
        Ok(text) => Ok(Some(normalise(&text))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io(format!("read sysctl {key}"), e)),
    }
}

pub fn write(key: &str, value: &str) -> Result<()> {
    std::fs::write(path(key)?, value).map_err(|e| Error::io(format!("set sysctl {key}={value}"), e))
}

pub fn normalise(value: &str) -> String {
    value.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    #[test]
    fn keys_stay_under_proc_sys() {
        assert!(super::path("net.ipv4.ip_forward").unwrap().ends_with("net/ipv4/ip_forward"));
        assert!(super::path("net....x").is_err());
        assert!(super::path("net.a/b").is_err());
    }

    #[test]
    fn tabs_and_newlines_normalise() {
        assert_eq!(super::normalise("4096\t131072\t6291456\n"), "4096 131072 6291456");
    }
}
