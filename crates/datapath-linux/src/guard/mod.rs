//! Source guard (anti-spoofing) for workload ports: a workload's veth accepts from it only frames
//! from the endpoint's MAC and, for IPv4 and ARP, from the endpoint's address; everything else
//! (other sources, other MACs, ARP with a foreign sender, IPv6, other ethertypes) is dropped and
//! counted. Traffic to the workload is not looked at. What Contiv's OVS pipeline checked per port.
//!
//! Desired state as data (`render`): one `contiv_guard` table per family in every tenant
//! namespace, installed by network setup ([`install`], one `nft -f`, idempotent, keeps the
//! elements); an endpoint's (port, MAC, address) element goes in over netlink before its host veth
//! comes up ([`admit`], one batch for the three tables) and leaves with it ([`release`]);
//! [`resync`] replaces every set whole in one transaction (a restarted agent's view of what is
//! attached). Independent of policy and of `bridge-nf-call-iptables`.
//!
//! Invariant: a port named like a host veth is closed unless its element is present: a failed or
//! missing `admit` drops the workload's traffic, never lets it through unchecked.

mod releases;
pub mod render;

use std::collections::BTreeMap;
use std::path::Path;

use contiv_datapath::{DatapathError, LocalEndpoint};

use crate::driver::LinuxDatapath;
use crate::error::{Errors, LinuxError};
use crate::policy::nfnl::{self, ElemChange, Op, TableChanges};
use crate::policy::nft;
pub use releases::Releases;
pub use render::Entry;

fn guard_error(
    ns: &Path,
    op: &'static str,
    source: impl std::error::Error + Send + Sync + 'static,
) -> LinuxError {
    LinuxError::Guard {
        ns: ns.display().to_string(),
        op,
        source: Box::new(source),
    }
}

/// Makes the guard tables exist in namespace `ns` with their current rules; elements already
/// there stay (one `nft -f`, one transaction). Idempotent.
pub fn install(ns: &Path) -> Result<(), LinuxError> {
    nft::apply(ns, &render::install()).map_err(|e| guard_error(ns, "install", e))
}

/// Replaces the allowed set of every guard table in `ns` by exactly `entries` (installing the
/// tables if needed), in one transaction: a port listed is never without its element, a port not
/// listed is closed afterwards.
pub fn resync(ns: &Path, entries: &[Entry]) -> Result<(), LinuxError> {
    nft::apply(ns, &render::replace(entries)).map_err(|e| guard_error(ns, "re-sync", e))
}

/// [`resync`] of every tenant namespace of the driver: each gets the elements of the endpoints of
/// `eps` whose network lives there (none: its sets are emptied). An endpoint whose network is not
/// on this host has no port to guard. Best effort over namespaces, every failure reported.
pub(crate) fn resync_all(d: &LinuxDatapath, eps: &[LocalEndpoint]) -> Result<(), DatapathError> {
    let locs = d.scan()?;
    let mut by_ns: BTreeMap<&Path, Vec<Entry>> = BTreeMap::new();
    for loc in &locs {
        by_ns.entry(loc.ns_path.as_path()).or_default();
    }
    for ep in eps {
        if let Some(loc) = locs.iter().find(|l| l.id == ep.network_id) {
            by_ns
                .entry(loc.ns_path.as_path())
                .or_default()
                .push(crate::endpoint::guard_entry(ep));
        }
    }
    let mut errs = Errors::default();
    for (ns, entries) in by_ns {
        d.guard.settle(ns);
        errs.absorb(resync(ns, &entries));
    }
    errs.finish()
}

/// Sends `op` of `entries` to the three tables as one netlink batch.
fn send(ns: &Path, op: Op, entries: &[Entry]) -> Result<(), nfnl::NfnlError> {
    let changes: Vec<[ElemChange<Entry>; 1]> = render::FAMILIES
        .iter()
        .map(|_| {
            [ElemChange {
                set: render::SET.to_string(),
                op,
                elems: entries.iter().map(|e| (e.clone(), None)).collect(),
            }]
        })
        .collect();
    let tables: Vec<TableChanges<'_, Entry>> = render::FAMILIES
        .iter()
        .zip(&changes)
        .map(|(family, c)| TableChanges {
            family: *family,
            table: render::TABLE_NAME,
            changes: c,
        })
        .collect();
    nfnl::send_tables(ns, &tables)
}

/// Lets `entry`'s port send from its MAC and address (idempotent: an element already there is
/// kept). Fails when the tables are absent (network setup installs them).
pub fn admit(ns: &Path, entry: &Entry) -> Result<(), LinuxError> {
    send(ns, Op::Add, std::slice::from_ref(entry)).map_err(|e| guard_error(ns, "admit", e))
}

/// Takes `entries`' elements out of the tables, one batch (one transaction: a deletion commit
/// waits ~14 ms here, see `releases`). Absent (element or table) is success.
pub fn release(ns: &Path, entries: &[Entry]) -> Result<(), LinuxError> {
    let absent = |e: &nfnl::NfnlError| matches!(e, nfnl::NfnlError::Refused(io) if io.raw_os_error() == Some(libc::ENOENT));
    match send(ns, Op::Delete, entries) {
        Ok(()) => Ok(()),
        // One element or table missing fails the whole batch: element by element, table by table.
        Err(e) if absent(&e) => {
            for entry in entries {
                for (family, c) in render::port_changes(Op::Delete, entry) {
                    let t = TableChanges {
                        family,
                        table: render::TABLE_NAME,
                        changes: std::slice::from_ref(&c),
                    };
                    match nfnl::send_tables(ns, &[t]) {
                        Err(e) if !absent(&e) => return Err(guard_error(ns, "release", e)),
                        _ => {}
                    }
                }
            }
            Ok(())
        }
        Err(e) => Err(guard_error(ns, "release", e)),
    }
}

/// Frames dropped so far per table (`"bridge contiv_guard"` → packets); a table absent counts 0.
pub fn dropped(ns: &Path) -> Result<BTreeMap<String, u64>, LinuxError> {
    let mut out = BTreeMap::new();
    for f in render::FAMILIES {
        let t = render::table(f);
        let c = nft::counters_of(ns, &t).map_err(|e| guard_error(ns, "read counters", e))?;
        let packets = c.get(render::COUNTER).map(|(p, _)| *p).unwrap_or(0);
        out.insert(t, packets);
    }
    Ok(out)
}
