//! The CNI_* environment of one invocation, checked: which command, and for the
//! commands on an attachment, its container ID, interface name and namespace path.
//! CNI_ARGS and CNI_PATH are accepted and unused (the plugin execs nothing).

use std::ffi::OsString;
use std::path::PathBuf;

use crate::names::{AttachmentId, Identifier};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("required environment variables missing: {}", .0.join(", "))]
    Missing(Vec<&'static str>),
    #[error("invalid {variable}: {why}")]
    Invalid { variable: &'static str, why: String },
    #[error("unknown CNI_COMMAND `{0}`: expected ADD, DEL, CHECK, STATUS, GC or VERSION")]
    UnknownCommand(String),
}

/// What the runtime asked for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request {
    Add(Attach),
    Check(Attach),
    Del(Detach),
    Status,
    Gc,
    Version,
}

/// ADD and CHECK: the attachment and the container's namespace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attach {
    pub id: AttachmentId,
    pub netns: PathBuf,
}

/// DEL: the namespace may be gone already.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Detach {
    pub id: AttachmentId,
    pub netns: Option<PathBuf>,
}

impl Request {
    /// Read the request from the environment (`get` is `std::env::var_os`, or a map in tests).
    pub fn from_env(get: impl Fn(&str) -> Option<OsString>) -> Result<Request, Error> {
        let value = |name: &'static str| -> Result<Option<String>, Error> {
            match get(name) {
                None => Ok(None),
                Some(value) if value.is_empty() => Ok(None),
                Some(value) => value
                    .into_string()
                    .map(Some)
                    .map_err(|_| Error::Invalid { variable: name, why: "not UTF-8".to_string() }),
            }
        };
        let Some(command) = value("CNI_COMMAND")? else { return Err(Error::Missing(vec!["CNI_COMMAND"])) };
        #[derive(PartialEq)]
        enum Verb {
            Add,
            Check,
            Del,
        }
        let verb = match command.as_str() {
            "ADD" => Verb::Add,
            "CHECK" => Verb::Check,
            "DEL" => Verb::Del,
            "STATUS" => return Ok(Request::Status),
            "GC" => return Ok(Request::Gc),
            "VERSION" => return Ok(Request::Version),
            _ => return Err(Error::UnknownCommand(command)),
        };
        let needs_netns = verb != Verb::Del;
        let container = value("CNI_CONTAINERID")?;
        let ifname = value("CNI_IFNAME")?;
        let netns = value("CNI_NETNS")?;
        let mut missing = Vec::new();
        if container.is_none() {
            missing.push("CNI_CONTAINERID");
        }
        if needs_netns && netns.is_none() {
            missing.push("CNI_NETNS");
        }
        if ifname.is_none() {
            missing.push("CNI_IFNAME");
        }
        if !missing.is_empty() {
            return Err(Error::Missing(missing));
        }
        let container: Identifier =
            container.unwrap_or_default().parse().map_err(|why| Error::Invalid { variable: "CNI_CONTAINERID", why })?;
        let ifname =
            ifname.unwrap_or_default().parse().map_err(|why| Error::Invalid { variable: "CNI_IFNAME", why })?;
        let netns = match netns {
            Some(path) if !path.starts_with('/') => {
                return Err(Error::Invalid { variable: "CNI_NETNS", why: format!("`{path}` is not an absolute path") })
            }
            other => other.map(PathBuf::from),
        };
        let id = AttachmentId { container, ifname };
        Ok(match (verb, netns) {
            (Verb::Del, netns) => Request::Del(Detach { id, netns }),
            (Verb::Add, Some(netns)) => Request::Add(Attach { id, netns }),
            (Verb::Check, Some(netns)) => Request::Check(Attach { id, netns }),
            (_, None) => return Err(Error::Missing(vec!["CNI_NETNS"])),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(vars: &[(&str, &str)]) -> Result<Request, Error> {
        Request::from_env(|name| vars.iter().find(|(n, _)| *n == name).map(|(_, v)| OsString::from(v)))
    }

    #[test]
    fn add_needs_container_netns_and_ifname() {
        let add = request(&[
            ("CNI_COMMAND", "ADD"),
            ("CNI_CONTAINERID", "c1"),
            ("CNI_NETNS", "/proc/42/ns/net"),
            ("CNI_IFNAME", "eth0"),
        ])
        .unwrap();
        let Request::Add(attach) = add else { panic!("{add:?}") };
        assert_eq!(attach.netns, PathBuf::from("/proc/42/ns/net"));
        assert_eq!(attach.id.file_name(), "c1:eth0");
        let missing = request(&[("CNI_COMMAND", "ADD"), ("CNI_IFNAME", "eth0")]).unwrap_err();
        assert_eq!(missing.to_string(), "required environment variables missing: CNI_CONTAINERID, CNI_NETNS");
    }

    #[test]
    fn del_goes_without_netns() {
        let del = request(&[("CNI_COMMAND", "DEL"), ("CNI_CONTAINERID", "c1"), ("CNI_IFNAME", "eth0")]).unwrap();
        assert!(matches!(del, Request::Del(Detach { netns: None, .. })));
    }

    #[test]
    fn unsafe_names_and_unknown_commands_are_refused() {
        let base = [("CNI_COMMAND", "DEL"), ("CNI_IFNAME", "eth0")];
        for bad in ["../../etc", "a/b", "..", &"x".repeat(300)] {
            let error = request(&[base[0], base[1], ("CNI_CONTAINERID", bad)]).unwrap_err();
            assert!(matches!(error, Error::Invalid { variable: "CNI_CONTAINERID", .. }), "{bad}: {error}");
        }
        let error = request(&[base[0], ("CNI_CONTAINERID", "c"), ("CNI_IFNAME", "a/b")]).unwrap_err();
        assert!(matches!(error, Error::Invalid { variable: "CNI_IFNAME", .. }), "{error}");
        let error =
            request(&[("CNI_COMMAND", "ADD"), ("CNI_CONTAINERID", "c"), ("CNI_IFNAME", "e"), ("CNI_NETNS", "x")])
                .unwrap_err();
        assert!(matches!(error, Error::Invalid { variable: "CNI_NETNS", .. }), "{error}");
        assert!(matches!(request(&[("CNI_COMMAND", "BOOM")]), Err(Error::UnknownCommand(_))));
        assert!(matches!(request(&[]), Err(Error::Missing(_))));
        assert_eq!(request(&[("CNI_COMMAND", "VERSION")]).unwrap(), Request::Version);
        assert_eq!(request(&[("CNI_COMMAND", "GC")]).unwrap(), Request::Gc);
    }
}
