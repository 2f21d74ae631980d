//! Network namespaces. Netlink work for a namespace runs on a dedicated OS thread that
//! `setns()`es first and owns a current-thread tokio runtime (a tokio worker is never moved).
//! Named namespaces are created like `ip netns add`: `unshare(CLONE_NEWNET)` on a throwaway
//! thread, then a bind mount of that thread's namespace onto `<dir>/<name>` (no fork).

use std::fs::File;
use std::future::Future;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::{setns, unshare, CloneFlags};
use nix::sys::statfs::{statfs, NSFS_MAGIC};
use rtnetlink::Handle;

use crate::error::{libc_errno, LinuxError};

/// Default directory of named namespaces (what `ip netns` uses).
pub const NETNS_DIR: &str = "/run/netns";

fn ns_err<'a>(ns: &'a Path, op: &'static str) -> impl Fn(std::io::Error) -> LinuxError + 'a {
    move |source| LinuxError::Netns {
        ns: ns.display().to_string(),
        op,
        source,
    }
}

fn nix_io(e: nix::errno::Errno) -> std::io::Error {
    std::io::Error::from_raw_os_error(e as i32)
}

/// Runs `f` with a netlink handle bound to the namespace `ns` (a file: `/run/netns/x`,
/// `/proc/<pid>/ns/net`), on a fresh OS thread, and waits for its result.
pub fn run_in<F, Fut, R>(ns: &Path, f: F) -> Result<R, LinuxError>
where
    F: FnOnce(Handle) -> Fut + Send,
    Fut: Future<Output = Result<R, LinuxError>>,
    R: Send,
{
    let name = ns.display().to_string();
    let file = File::open(ns).map_err(ns_err(ns, "open"))?;
    std::thread::scope(|s| {
        let worker = s.spawn(move || {
            setns(file.as_fd(), CloneFlags::CLONE_NEWNET)
                .map_err(|e| ns_err(ns, "setns")(nix_io(e)))?;
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(ns_err(ns, "tokio runtime"))?;
            rt.block_on(async move {
                let (conn, handle, _) =
                    rtnetlink::new_connection().map_err(ns_err(ns, "netlink socket"))?;
                let conn_task = tokio::spawn(conn);
                let out = f(handle).await;
                conn_task.abort();
                out
            })
        });
        worker
            .join()
            .unwrap_or(Err(LinuxError::ThreadPanicked { ns: name }))
    })
}

/// True when `path` is a mounted network namespace (nsfs).
pub fn is_netns(path: &Path) -> bool {
    statfs(path)
        .map(|s| s.filesystem_type() == NSFS_MAGIC)
        .unwrap_or(false)
}

/// Makes `dir` a shared mount point like `ip netns` does, so namespace mounts propagate.
fn prepare_dir(dir: &Path) -> Result<(), LinuxError> {
    std::fs::create_dir_all(dir).map_err(ns_err(dir, "create dir"))?;
    let shared = MsFlags::MS_SHARED | MsFlags::MS_REC;
    if mount(None::<&str>, dir, None::<&str>, shared, None::<&str>).is_ok() {
        return Ok(());
    }
    let bind = MsFlags::MS_BIND | MsFlags::MS_REC;
    mount(Some(dir), dir, None::<&str>, bind, None::<&str>)
        .and_then(|_| mount(None::<&str>, dir, None::<&str>, shared, None::<&str>))
        .map_err(|e| ns_err(dir, "make shared")(nix_io(e)))
}

/// Creates the named namespace `<dir>/<name>` unless it exists; returns its path.
pub fn create_named(dir: &Path, name: &str) -> Result<PathBuf, LinuxError> {
    let path = dir.join(name);
    if is_netns(&path) {
        return Ok(path);
    }
    prepare_dir(dir)?;
    // A leftover plain file (crash between create and mount) is reused.
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(ns_err(&path, "create mount point"))?;
    let target = path.clone();
    let res = std::thread::spawn(move || -> Result<(), nix::errno::Errno> {
        unshare(CloneFlags::CLONE_NEWNET)?;
        mount(
            Some("/proc/thread-self/ns/net"),
            &target,
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
    })
    .join();
    match res {
        Ok(Ok(())) => Ok(path),
        Ok(Err(e)) => {
            let _ = std::fs::remove_file(&path);
            Err(ns_err(&path, "unshare + bind mount")(nix_io(e)))
        }
        Err(_) => Err(LinuxError::ThreadPanicked {
            ns: path.display().to_string(),
        }),
    }
}

/// Deletes a named namespace (unmount + unlink); absent is success. The kernel frees the
/// namespace, and every link inside it, once nothing else holds it.
pub fn delete_named(path: &Path) -> Result<(), LinuxError> {
    match umount2(path, MntFlags::MNT_DETACH) {
        Ok(()) => {}
        Err(e) if e as i32 == libc_errno::ENOENT || e == nix::errno::Errno::EINVAL => {}
        Err(e) => return Err(ns_err(path, "unmount")(nix_io(e))),
    }
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(ns_err(path, "remove")(e)),
    }
}

/// Names in `dir` starting with `prefix`, sorted.
pub fn list_named(dir: &Path, prefix: &str) -> Result<Vec<String>, LinuxError> {
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(ns_err(dir, "list")(e)),
    };
    let mut out: Vec<String> = rd
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| n.starts_with(prefix))
        .collect();
    out.sort();
    Ok(out)
}

/// Writes a sysctl of the calling thread's network namespace (call it inside [`run_in`]).
pub fn sysctl(ns: &str, key: &str, value: &str) -> Result<(), LinuxError> {
    let path = format!("/proc/sys/{}", key.replace('.', "/"));
    std::fs::write(&path, value).map_err(|source| LinuxError::Sysctl {
        key: key.to_string(),
        ns: ns.to_string(),
        source,
    })
}
