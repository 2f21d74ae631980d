//! The driver's own thread: a single-threaded runtime inside the host namespace running one job
//! at a time (connections it opened keep running beside the jobs). The trait's synchronous
//! calls hand their future over and wait for its result, so they never block a caller's
//! runtime, and every socket (OVSDB, OpenFlow on the host's loopback, netlink) is the host's.

use std::future::Future;
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::pin::Pin;

use tokio::sync::mpsc;

type Job = Pin<Box<dyn Future<Output = ()> + Send>>;

#[derive(Clone)]
pub(super) struct Worker {
    jobs: mpsc::UnboundedSender<Job>,
}

impl Worker {
    /// Starts the thread, in `netns` if given.
    pub(super) fn start(netns: Option<PathBuf>) -> std::io::Result<Worker> {
        let (tx, mut rx) = mpsc::unbounded_channel::<Job>();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name("ovs-driver".into())
            .spawn(move || {
                let setup = || -> std::io::Result<tokio::runtime::Runtime> {
                    if let Some(p) = &netns {
                        let f = std::fs::File::open(p)?;
                        // SAFETY: setns on a valid netns fd changes only this thread.
                        if unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
                            return Err(std::io::Error::last_os_error());
                        }
                    }
                    tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                };
                match setup() {
                    Ok(rt) => {
                        let _ = ready_tx.send(Ok(()));
                        rt.block_on(async move {
                            while let Some(job) = rx.recv().await {
                                job.await;
                            }
                        });
                    }
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                    }
                }
            })?;
        ready_rx
            .recv()
            .map_err(|_| std::io::Error::other("ovs driver thread ended"))??;
        Ok(Worker { jobs: tx })
    }

    /// Runs `fut` on the thread and waits for its output (`None`: the thread is gone).
    pub(super) fn run<T, F>(&self, fut: F) -> Option<T>
    where
        F: Future<Output = T> + Send + 'static,
        T: Send + 'static,
    {
        let (tx, rx) = std::sync::mpsc::channel();
        let job: Job = Box::pin(async move {
            let _ = tx.send(fut.await);
        });
        self.jobs.send(job).ok()?;
        rx.recv().ok()
    }
}
