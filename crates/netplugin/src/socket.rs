//! The agent's local unix sockets (CNI, Docker plugin): only root may talk to them.

use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::Path;

/// Binds the unix socket `path` (replacing a stale one left by a killed agent), mode 0600: only
/// root (the container runtime exec'ing contivk8s, dockerd) may ask for networking. A missing
/// directory is created 0700; an existing one is left as it is (it may be shared, like /run) but
/// a directory others may write to is reported, since they could replace the socket. `what`
/// names the socket in that report.
pub(crate) fn bind_root_only(path: &Path, what: &str) -> std::io::Result<tokio::net::UnixListener> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
        let mode = std::fs::metadata(dir)?.permissions().mode();
        if mode & 0o022 != 0 && mode & 0o1000 == 0 {
            tracing::warn!(
                dir = %dir.display(),
                "the {what} socket's directory is writable by others (mode {:o}): they could replace the socket",
                mode & 0o7777
            );
        }
    }
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    let l = tokio::net::UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    Ok(l)
}
