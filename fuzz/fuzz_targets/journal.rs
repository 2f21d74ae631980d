//! netplugin's journal reader (`records/journal.rs`, compiled in as it is: the file is pure)
//! on any bytes, as an agent finds `attachments.log` after a crash or damage.
//!
//! Holds: replay never panics; what it recovers, written as a snapshot, replays cleanly to the
//! same records (compaction at open loses nothing it recovered).
#![no_main]

#[allow(dead_code)]
#[path = "../../crates/netplugin/src/records/journal.rs"]
mod journal;

use std::collections::BTreeMap;
use std::path::Path;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let path = Path::new("attachments.log");
    let mut cache = BTreeMap::new();
    journal::replay(data, &mut cache, path);
    let snap = journal::snapshot(&cache).expect("records encode");
    let mut again = BTreeMap::new();
    let damage = journal::replay(&snap, &mut again, path);
    assert!(
        damage.is_clean(),
        "a snapshot replays with damage {damage:?}"
    );
    assert_eq!(again, cache, "snapshot round trip");
});
