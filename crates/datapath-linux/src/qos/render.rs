//! The DSCP marking of a tenant as nft text: a pure function of the marked endpoints.
//!
//! Layout: one `netdev` table per tenant router namespace, apart from the policy driver's `inet
//! contiv` table (which that driver replaces whole), with one base chain per marked endpoint on
//! the ingress hook of its host-side veth, i.e. on every packet the workload sends, before
//! bridging or routing, in both forwarding modes and whether or not the tenant has policy
//! (bridged frames reach `inet` hooks only with `bridge-nf-call-iptables`, which is off
//! without policy):
//!
//! ```text
//! table netdev contiv_qos {
//!     chain dscp_ctve1a2b3c4d5e { type filter hook ingress device "ctve1a2b3c4d5e" priority 0; policy accept; }
//!     rule: ip dscp set 46          (IPv4 only; the ECN bits are kept)
//! }
//! ```
//!
//! A change replaces the table in one transaction (`add table` + `delete table` + the new one),
//! so no packet sees half a marking; no marked endpoint removes the table.

use std::collections::BTreeMap;

/// The table's family and name.
pub const TABLE: &str = "netdev contiv_qos";

/// The batch that makes the table mark exactly `marks` (host-side interface → DSCP).
pub fn batch(marks: &BTreeMap<String, u8>) -> String {
    let mut out = format!("add table {TABLE}\ndelete table {TABLE}\n");
    if marks.is_empty() {
        return out;
    }
    out.push_str(&format!("add table {TABLE}\n"));
    for (dev, dscp) in marks {
        let chain = format!("dscp_{dev}");
        out.push_str(&format!(
            "add chain {TABLE} {chain} {{ type filter hook ingress device \"{dev}\" priority 0; policy accept; }}\n"
        ));
        out.push_str(&format!("add rule {TABLE} {chain} ip dscp set {dscp}\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::golden::check as golden;

    #[test]
    fn dscp_batch_matches_golden() {
        let marks: BTreeMap<String, u8> = [
            ("ctve00000000aa".to_string(), 46),
            ("ctve0000000b01".to_string(), 10),
        ]
        .into();
        golden("nft_qos_dscp.txt", &batch(&marks));
        golden("nft_qos_none.txt", &batch(&BTreeMap::new()));
    }
}
