//! A writable `/proc/sys` for the agent inside dockerd's managed plugin (`--remount-proc-sys`).
//!
//! dockerd starts every managed plugin with `/proc/sys` mounted read-only (the OCI defaults'
//! read-only paths; a plugin's config.json has no setting to lift them), but the datapath sets
//! sysctls of the namespaces it makes (forwarding, proxy ARP, bridge netfilter), and
//! `/proc/sys/net` always shows the namespace of the thread that opens it. The plugin runs in a
//! mount namespace of its own with CAP_SYS_ADMIN, so remounting that one bind mount read-write
//! changes nothing outside it.

use nix::mount::{mount, MsFlags};
use nix::sys::statvfs::{statvfs, FsFlags};

const PROC_SYS: &str = "/proc/sys";

/// Remounts `/proc/sys` read-write if it is read-only, keeping its other flags; `true` if it did.
pub fn make_writable() -> std::io::Result<bool> {
    let st = statvfs(PROC_SYS)?;
    let flags = st.flags();
    if !flags.contains(FsFlags::ST_RDONLY) {
        return Ok(false);
    }
    // A bind remount changes only this mount's flags; those not given are cleared, so the
    // ones runc set besides read-only are given again.
    let mut keep = MsFlags::MS_REMOUNT | MsFlags::MS_BIND;
    for (st_flag, ms_flag) in [
        (FsFlags::ST_NOSUID, MsFlags::MS_NOSUID),
        (FsFlags::ST_NODEV, MsFlags::MS_NODEV),
        (FsFlags::ST_NOEXEC, MsFlags::MS_NOEXEC),
    ] {
        if flags.contains(st_flag) {
            keep |= ms_flag;
        }
    }
    mount(None::<&str>, PROC_SYS, None::<&str>, keep, None::<&str>)?;
    Ok(true)
}
