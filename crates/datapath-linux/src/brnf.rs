//! Bridged IPv4 through the IP netfilter hooks (`net.bridge.bridge-nf-call-iptables`) per tenant
//! namespace. Network setup turns it off (it costs a conntrack lookup per bridged frame); it is on
//! while any driver needs it: policy (to filter bridged traffic) or service balancing (conntrack
//! must un-NAT the bridged replies of providers to clients on the same network). Each driver
//! states its own need; the namespace gets the OR of them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use contiv_datapath::DatapathError;

/// Who needs bridge netfilter in a namespace (bits).
pub const POLICY: u8 = 1;
pub const SERVICES: u8 = 2;

static NEEDS: Mutex<BTreeMap<PathBuf, u8>> = Mutex::new(BTreeMap::new());

fn backend(what: String, e: std::io::Error) -> DatapathError {
    DatapathError::Backend {
        object: what,
        source: Box::new(e),
    }
}

/// Records whether `who` needs bridge netfilter in `ns` and makes the sysctl the OR of every
/// need (re-checked on every call: nothing else may switch it off under a driver that needs it).
pub fn need(ns: &Path, who: u8, on: bool) -> Result<(), DatapathError> {
    let mut needs = NEEDS.lock().unwrap_or_else(|p| p.into_inner());
    let bits = needs.entry(ns.to_path_buf()).or_insert(0);
    if on {
        *bits |= who;
    } else {
        *bits &= !who;
    }
    let want = *bits != 0;
    if *bits == 0 {
        needs.remove(ns);
    }
    // Written under the lock: two drivers never race on the value.
    set(ns, want)
}

/// Turns IPv4 bridge netfilter on or off in the namespace (absent sysctl: no br_netfilter, and
/// bridged traffic cannot be seen at the IP layer at all). A throwaway thread enters the
/// namespace: `/proc/sys/net` shows the namespace of the thread that opens it.
fn set(ns: &Path, on: bool) -> Result<(), DatapathError> {
    let file = "/proc/sys/net/bridge/bridge-nf-call-iptables";
    let value = if on { "1" } else { "0" };
    let err = |e: std::io::Error| backend(format!("bridge netfilter in {}", ns.display()), e);
    let fd = std::fs::File::open(ns).map_err(err)?;
    std::thread::scope(|s| {
        s.spawn(|| -> std::io::Result<()> {
            nix::sched::setns(&fd, nix::sched::CloneFlags::CLONE_NEWNET)
                .map_err(std::io::Error::from)?;
            match std::fs::read_to_string(file) {
                // Without br_netfilter bridged traffic never reaches the IP hooks: what needs it
                // cannot work, so say so instead of reporting it done.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound && on => {
                    Err(std::io::Error::new(
                        e.kind(),
                        "br_netfilter is not loaded: bridged traffic cannot be filtered or un-NATed",
                    ))
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                Ok(v) if v.trim() == value => Ok(()),
                _ => std::fs::write(file, value),
            }
        })
        .join()
        .unwrap_or_else(|_| Err(std::io::Error::other("sysctl thread panicked")))
    })
    .map_err(err)
}
