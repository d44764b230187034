//! podman with its CNI backend inside the sandbox (see tests/podman.rs).

#![allow(dead_code)]
