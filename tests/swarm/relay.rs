//! netmaster listens on the test's loopback, but a managed plugin runs in dockerd's network
//! namespace (the plugin's "host" network: the simulated host), whose loopback is another one.
//! A relay listens on 127.0.0.1:PORT inside the host's namespace and forwards every connection
//! to 127.0.0.1:PORT of the test's namespace, where netmaster is: the stand-in for the
//! management network between real hosts and netmaster. Bytes are copied unchanged.

use std::io;
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use contiv_netplugin::testbed::in_netns;

/// Stops accepting when dropped (connections in flight end with their peers).
pub struct Relay {
    stop: Arc<AtomicBool>,
    accept: Option<JoinHandle<()>>,
}

impl Relay {
    pub fn start(ns: &Path, port: u16) -> Result<Relay, String> {
        // A socket stays in the namespace it was made in: bind there, serve from here.
        let listener = in_netns(ns, || TcpListener::bind(("127.0.0.1", port)))?
            .map_err(|e| format!("relay bind 127.0.0.1:{port} in {}: {e}", ns.display()))?;
        // Non-blocking, so the accept loop sees the stop flag.
        listener.set_nonblocking(true).map_err(|e| e.to_string())?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        // This thread and those it spawns are in the test's namespace: their connects reach
        // netmaster.
        let accept = std::thread::spawn(move || {
            while !flag.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((inbound, _)) => {
                        std::thread::spawn(move || forward(inbound, port));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(20)),
                }
            }
        });
        Ok(Relay {
            stop,
            accept: Some(accept),
        })
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.accept.take() {
            let _ = t.join();
        }
    }
}

/// Copies both ways until either side closes.
fn forward(inbound: TcpStream, port: u16) {
    let Ok(outbound) = TcpStream::connect(("127.0.0.1", port)) else {
        return;
    };
    let _ = inbound.set_nonblocking(false);
    let (Ok(mut from_nm), Ok(mut to_agent)) = (outbound.try_clone(), inbound.try_clone()) else {
        return;
    };
    let up = std::thread::spawn(move || {
        let (mut from_agent, mut to_nm) = (inbound, outbound);
        let _ = io::copy(&mut from_agent, &mut to_nm);
        let _ = to_nm.shutdown(Shutdown::Write);
    });
    let _ = io::copy(&mut from_nm, &mut to_agent);
    let _ = to_agent.shutdown(Shutdown::Write);
    let _ = up.join();
}
