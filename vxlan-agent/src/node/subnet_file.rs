//! The subnet file CNI plugins read: written whole to a temporary file beside it and
//! renamed over it, so a reader sees the old content or the new, never half of one.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use netlab_cni::subnet_env::SubnetEnv;

use crate::Error;

pub fn write(path: &Path, env: &SubnetEnv) -> Result<(), Error> {
    let text = env.render();
    if std::fs::read_to_string(path).is_ok_and(|now| now == text) {
        return Ok(());
    }
    let folder = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(folder).map_err(|e| Error::file("create folder", folder, e))?;
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let temporary = folder.join(format!(".{name}.{}.tmp", std::process::id()));
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o644)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&temporary)
        .and_then(|mut file| {
            file.write_all(text.as_bytes())?;
            file.sync_all()
        });
    written.map_err(|e| Error::file("write", &temporary, e))?;
    std::fs::rename(&temporary, path).map_err(|e| {
        let _ = std::fs::remove_file(&temporary);
        Error::file("replace", path, e)
    })
}

/// The node holds no lease: no CNI ADD may use the old subnet.
pub fn remove(path: &Path) -> Result<(), Error> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Error::file("remove", path, e)),
        _ => Ok(()),
    }
}

/// The subnet of the file a previous run left, if readable.
pub fn read(path: &Path) -> Option<SubnetEnv> {
    SubnetEnv::parse(&std::fs::read_to_string(path).ok()?)
}
