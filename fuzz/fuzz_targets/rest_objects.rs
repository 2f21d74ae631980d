//! The REST body of every object kind, as netmaster decodes it (`contiv-model`: Go-compatible
//! JSON) and validates it. Input: one byte choosing the kind, then the body.
//!
//! Holds: nothing panics; an object that validates encodes to JSON that decodes back to the
//! same object, which validates again unchanged (what netmaster stores is what it serves, and
//! re-reading the store never refuses what was accepted).
#![no_main]

use contiv_model::*;
use libfuzzer_sys::fuzz_target;

fn check<T: ModelObject>(body: &[u8]) {
    let Ok(mut obj) = serde_json::from_slice::<T>(body) else {
        return;
    };
    let _ = obj.computed_key();
    if obj.validate().is_err() {
        return;
    }
    let encoded = serde_json::to_vec(&obj).expect("a valid object encodes");
    let mut again: T = serde_json::from_slice(&encoded).unwrap_or_else(|e| {
        panic!(
            "{} does not decode its own encoding: {e}: {}",
            T::KIND.type_name(),
            String::from_utf8_lossy(&encoded)
        )
    });
    assert_eq!(
        again,
        obj,
        "round trip of {}",
        String::from_utf8_lossy(&encoded)
    );
    again
        .validate()
        .unwrap_or_else(|e| panic!("stored {} no longer validates: {e}", T::KIND.type_name()));
    assert_eq!(again, obj, "validation is not idempotent");
    let inspect = Inspect::new(obj, T::Oper::default());
    serde_json::to_vec(&inspect).expect("inspect encodes");
}

fuzz_target!(|data: &[u8]| {
    let Some((&which, body)) = data.split_first() else {
        return;
    };
    match which % 12 {
        0 => check::<Tenant>(body),
        1 => check::<Network>(body),
        2 => check::<EndpointGroup>(body),
        3 => check::<Policy>(body),
        4 => check::<Rule>(body),
        5 => check::<AppProfile>(body),
        6 => check::<ServiceLb>(body),
        7 => check::<NetProfile>(body),
        8 => check::<Global>(body),
        9 => check::<Bgp>(body),
        10 => check::<AciGw>(body),
        _ => check::<ExtContractsGroup>(body),
    }
});
