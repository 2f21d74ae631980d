//! Network namespaces. Netlink work for a namespace runs on a dedicated OS thread that
//! `setns()`es first and owns a current-thread tokio runtime (a tokio worker is never moved).
//! [`run_in`] makes a fresh thread per call (for one-off namespaces: workloads); [`NsPool`]
//! keeps such threads, each with its runtime and netlink socket, per long-lived namespace (the
//! host, tenant routers) and hands them calls over a channel, so a call costs a channel round
//! trip instead of a thread spawn + setns + runtime + socket (~0.1-0.2 ms each, several per ADD).
//! A pooled call may also borrow a netlink handle in a *guest* namespace (a workload's): the
//! worker `setns()`es into the guest only long enough to open a netlink socket there (a netlink
//! socket stays bound to the namespace it was opened in) and comes straight back, so a whole
//! CNI ADD runs as one job on a tenant's worker without a thread per workload.
//! Named namespaces are created like `ip netns add`: `unshare(CLONE_NEWNET)` on a throwaway
//! thread, then a bind mount of that thread's namespace onto `<dir>/<name>` (no fork).

use std::collections::HashMap;
use std::fs::File;
use std::future::Future;
use std::os::fd::AsFd;
use std::os::unix::fs::MetadataExt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, Sender, SyncSender};
use std::sync::Mutex;
use std::time::{Duration, Instant};

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
            let (rt, handle, conn_task) = enter_with_netlink(ns, &file)?;
            let out = rt.block_on(f(handle));
            conn_task.abort();
            out
        });
        worker
            .join()
            .unwrap_or(Err(LinuxError::ThreadPanicked { ns: name }))
    })
}

/// What a pooled worker lends each job: its runtime, its netlink handle, and its own
/// namespace (to return to after opening a socket in a guest namespace).
struct WorkerCtx {
    rt: tokio::runtime::Runtime,
    handle: Handle,
    home: File,
}

impl WorkerCtx {
    /// A netlink handle bound to the namespace open at `guest`, its connection driven by this
    /// worker's runtime. `Err((e, healthy))`: `healthy` is false when the worker could not
    /// return to its own namespace (it must then exit).
    fn guest_handle(
        &self,
        guest: &File,
        label: &str,
    ) -> Result<(Handle, tokio::task::JoinHandle<()>), (LinuxError, bool)> {
        let err = |op: &'static str, e: std::io::Error| LinuxError::Netns {
            ns: label.to_string(),
            op,
            source: e,
        };
        setns(guest.as_fd(), CloneFlags::CLONE_NEWNET)
            .map_err(|e| (err("setns", nix_io(e)), true))?;
        // Nothing between the two setns() calls can panic or await: the socket is created
        // synchronously by `new_connection`.
        let conn = {
            let _g = self.rt.enter();
            rtnetlink::new_connection()
        };
        if let Err(e) = setns(self.home.as_fd(), CloneFlags::CLONE_NEWNET) {
            return Err((
                err("setns back to the worker's own namespace", nix_io(e)),
                false,
            ));
        }
        let (conn, handle, _) = conn.map_err(|e| (err("netlink socket", e), true))?;
        Ok((handle, self.rt.spawn(conn)))
    }
}

/// A job handed to a pooled worker; answers whether the worker is still healthy.
type JobOf<'a> = Box<dyn FnOnce(&WorkerCtx) -> bool + Send + 'a>;
type Job = JobOf<'static>;

/// One pooled thread living in a namespace (it exits when this handle is dropped).
struct Worker {
    jobs: Sender<Job>,
    used: Instant,
}

/// Idle workers of one namespace (identified by path and nsfs inode, so a namespace deleted
/// and re-created under the same name never gets the old one's threads).
#[derive(Default)]
struct Idle {
    ino: u64,
    workers: Vec<Worker>,
}

/// Threads kept per namespace: at most this many idle ones.
const MAX_IDLE: usize = 32;
/// An idle thread is dropped after this long without work (and releases its namespace).
const IDLE_EXIT: Duration = Duration::from_secs(30);

/// Pooled netlink threads per long-lived namespace (see the module docs). Calls on one
/// namespace run in parallel on as many threads as are busy (deleting a veth blocks its
/// thread for an RCU grace period; concurrent deletions share one); idle threads are reused.
/// A pooled thread holds a reference to its namespace: call [`NsPool::forget`] before deleting
/// a namespace so the kernel frees it (and the devices in it) at once.
#[derive(Default)]
pub struct NsPool {
    idle: Mutex<HashMap<PathBuf, Idle>>,
}

/// What a worker answers for one call: the call's result, or its panic.
type Outcome<R> = std::thread::Result<Result<R, LinuxError>>;

/// A call in flight: the closure is dropped before the answer channel, so the caller (which
/// waits for the answer or the channel's end) never returns while the closure may still touch
/// what it borrows.
struct Call<F, R> {
    f: Option<F>,
    tx: SyncSender<Outcome<R>>,
}

impl<F, R> Drop for Call<F, R> {
    fn drop(&mut self) {
        drop(self.f.take());
    }
}

impl NsPool {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<PathBuf, Idle>> {
        self.idle.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Drops the idle threads of `ns` (they exit and release the namespace).
    pub fn forget(&self, ns: &Path) {
        self.lock().remove(ns);
    }

    /// Like [`run_in`], on a pooled thread of `ns`.
    pub fn run<F, Fut, R>(&self, ns: &Path, f: F) -> Result<R, LinuxError>
    where
        F: FnOnce(Handle) -> Fut + Send,
        Fut: Future<Output = Result<R, LinuxError>>,
        R: Send,
    {
        self.submit(ns, move |ctx| {
            (ctx.rt.block_on(f(ctx.handle.clone())), true)
        })
    }

    /// Like [`NsPool::run`], with a second netlink handle bound to the namespace open at `guest`
    /// (labelled `guest_label` in errors): `f(handle in ns, handle in guest)`. The worker does
    /// not stay in the guest namespace, so it does not keep it alive.
    pub fn run_with_guest<F, Fut, R>(
        &self,
        ns: &Path,
        guest: &File,
        guest_label: &str,
        f: F,
    ) -> Result<R, LinuxError>
    where
        F: FnOnce(Handle, Handle) -> Fut + Send,
        Fut: Future<Output = Result<R, LinuxError>>,
        R: Send,
    {
        self.submit(ns, move |ctx| {
            let (guest_handle, conn) = match ctx.guest_handle(guest, guest_label) {
                Ok(v) => v,
                Err((e, healthy)) => return (Err(e), healthy),
            };
            let out = ctx.rt.block_on(f(ctx.handle.clone(), guest_handle));
            conn.abort();
            (out, true)
        })
    }

    /// Runs `job` on a pooled worker of `ns` (idle one reused, else a new one) and waits for it.
    /// The job answers its result and whether the worker may be kept.
    fn submit<J, R>(&self, ns: &Path, job: J) -> Result<R, LinuxError>
    where
        J: FnOnce(&WorkerCtx) -> (Result<R, LinuxError>, bool) + Send,
        R: Send,
    {
        let ino = std::fs::metadata(ns).map_err(ns_err(ns, "stat"))?.ino();
        let pooled = {
            let mut m = self.lock();
            for idle in m.values_mut() {
                idle.workers.retain(|w| w.used.elapsed() < IDLE_EXIT);
            }
            m.retain(|p, idle| !idle.workers.is_empty() || p == ns);
            let idle = m.entry(ns.to_path_buf()).or_default();
            if idle.ino != ino {
                *idle = Idle {
                    ino,
                    workers: Vec::new(),
                };
            }
            idle.workers.pop()
        };
        let (tx, rx) = mpsc::sync_channel::<Outcome<R>>(1);
        let call = Call { f: Some(job), tx };
        let job: JobOf<'_> = Box::new(move |ctx: &WorkerCtx| {
            let mut call = call;
            let f = call.f.take().expect("a call runs once");
            let out = catch_unwind(AssertUnwindSafe(|| f(ctx)));
            let healthy = matches!(out, Ok((_, true)));
            let _ = call.tx.send(out.map(|(r, _)| r));
            healthy
        });
        // SAFETY: the job borrows from this frame; we do not return before the job has run or
        // been dropped: we wait on `rx`, whose sender lives in the job and is dropped only
        // after the closure `f` (and its future) are gone (see `Call`), whether the job runs,
        // panics (caught), or is dropped unrun (worker gone: `send` hands it back, or the
        // worker's queue drops it).
        let job: Job = unsafe { std::mem::transmute(job) };
        let mut worker = match pooled {
            Some(w) => w,
            None => Self::spawn(ns)?,
        };
        if let Err(mpsc::SendError(job)) = worker.jobs.send(job) {
            // The worker is gone (cannot happen short of a bug): the job comes back unrun.
            drop(job);
            let _ = rx.recv();
            return Err(LinuxError::ThreadPanicked {
                ns: ns.display().to_string(),
            });
        }
        let out = rx.recv();
        match out {
            Ok(Ok(r)) => {
                worker.used = Instant::now();
                let mut m = self.lock();
                if let Some(idle) = m.get_mut(ns) {
                    if idle.ino == ino && idle.workers.len() < MAX_IDLE {
                        idle.workers.push(worker);
                    }
                }
                r
            }
            Ok(Err(_)) | Err(_) => Err(LinuxError::ThreadPanicked {
                ns: ns.display().to_string(),
            }),
        }
    }

    /// Starts a worker in `ns` (returns once it is in the namespace and ready).
    fn spawn(ns: &Path) -> Result<Worker, LinuxError> {
        let file = File::open(ns).map_err(ns_err(ns, "open"))?;
        let (jobs, rx) = mpsc::channel::<Job>();
        let (ready_tx, ready_rx) = mpsc::sync_channel::<Result<(), LinuxError>>(1);
        let path = ns.to_path_buf();
        std::thread::Builder::new()
            .name("netns-worker".into())
            .spawn(move || worker_main(&path, file, rx, ready_tx))
            .map_err(ns_err(ns, "spawn thread"))?;
        match ready_rx.recv() {
            Ok(Ok(())) => Ok(Worker {
                jobs,
                used: Instant::now(),
            }),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(LinuxError::ThreadPanicked {
                ns: ns.display().to_string(),
            }),
        }
    }
}

/// Moves the calling thread into the namespace open at `file` (`ns` names it in errors) and
/// gives it a current-thread runtime with a netlink connection there, the connection's task
/// already spawned on that runtime.
fn enter_with_netlink(
    ns: &Path,
    file: &File,
) -> Result<(tokio::runtime::Runtime, Handle, tokio::task::JoinHandle<()>), LinuxError> {
    setns(file.as_fd(), CloneFlags::CLONE_NEWNET).map_err(|e| ns_err(ns, "setns")(nix_io(e)))?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(ns_err(ns, "tokio runtime"))?;
    let (conn, handle, _) = {
        let _g = rt.enter();
        rtnetlink::new_connection().map_err(ns_err(ns, "netlink socket"))?
    };
    let conn_task = rt.spawn(conn);
    Ok((rt, handle, conn_task))
}

/// A pooled thread: enters the namespace, builds its runtime and netlink connection, reports on
/// `ready`, then runs jobs until its handle is dropped or a job panics.
fn worker_main(
    ns: &Path,
    file: File,
    rx: Receiver<Job>,
    ready: SyncSender<Result<(), LinuxError>>,
) {
    let setup = || -> Result<_, LinuxError> {
        let (rt, handle, conn_task) = enter_with_netlink(ns, &file)?;
        Ok((
            WorkerCtx {
                rt,
                handle,
                home: file,
            },
            conn_task,
        ))
    };
    let (ctx, conn_task) = match setup() {
        Ok(v) => {
            let _ = ready.send(Ok(()));
            v
        }
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    while let Ok(job) = rx.recv() {
        if !job(&ctx) {
            break; // a panicked job may have left the connection half-used
        }
    }
    conn_task.abort();
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

/// Paths naming every network namespace this process can find, one per namespace: namespace
/// mounts first (`nsfs` in `/proc/self/mountinfo`: `/run/netns/x`, a runtime's own directory),
/// then `/proc/<pid>/ns/net` of the lowest process in each namespace no mount names. A mount
/// lives as long as the namespace is meant to (the runtime removes it after CNI DEL); the
/// lowest pid is usually the namespace's first process (a pod's sandbox). Unreadable entries are
/// skipped (processes come and go during the scan).
pub fn all_namespaces() -> Vec<PathBuf> {
    let mounts = std::fs::read_to_string("/proc/self/mountinfo")
        .map(|m| nsfs_mounts(&m))
        .unwrap_or_default();
    let mut pids: Vec<u32> = std::fs::read_dir("/proc")
        .map(|rd| {
            rd.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    pids.sort_unstable();
    let procs = pids
        .into_iter()
        .map(|p| PathBuf::from(format!("/proc/{p}/ns/net")));
    let mut seen = std::collections::HashSet::new();
    mounts
        .into_iter()
        .chain(procs)
        .filter(|p| {
            std::fs::metadata(p).is_ok_and(|m| seen.insert((m.dev(), m.ino())) && is_netns(p))
        })
        .collect()
}

/// Mount points of `nsfs` mounts in a `mountinfo` text (octal escapes decoded).
fn nsfs_mounts(mountinfo: &str) -> Vec<PathBuf> {
    mountinfo
        .lines()
        .filter_map(|l| {
            let (left, right) = l.split_once(" - ")?;
            (right.split(' ').next()? == "nsfs").then_some(())?;
            Some(PathBuf::from(unescape_mountinfo(left.split(' ').nth(4)?)))
        })
        .collect()
}

/// Decodes mountinfo's `\ooo` escapes (space, tab, newline, backslash).
fn unescape_mountinfo(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let octal = b
            .get(i + 1..i + 4)
            .filter(|d| d.iter().all(|c| (b'0'..=b'7').contains(c)));
        match (b[i], octal) {
            (b'\\', Some(d)) => {
                out.push(d.iter().fold(0u8, |v, c| v.wrapping_mul(8) + (c - b'0')));
                i += 4;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nsfs_mount_points_are_read_from_mountinfo() {
        let info = "25 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n\
            2016 29 0:4 net:[4026532571] /run/netns/qs-w1 rw shared:586 - nsfs nsfs rw\n\
            2017 29 0:4 net:[4026532572] /var/lib/k\\040s/ns\\134x rw - nsfs nsfs rw\n\
            30 25 0:26 / /proc rw,nosuid - proc proc rw\n";
        assert_eq!(
            nsfs_mounts(info),
            [
                PathBuf::from("/run/netns/qs-w1"),
                PathBuf::from("/var/lib/k s/ns\\x")
            ]
        );
        assert_eq!(unescape_mountinfo("a\\01"), "a\\01", "not an escape");
    }
}
