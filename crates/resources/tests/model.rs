//! Randomized comparison of Ipv4Pool against a BTreeSet model, and speed checks.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::time::Instant;

use contiv_resources::{IdPool, Ipv4Pool, Ipv4Range};

/// xorshift64* — deterministic, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u32) -> u32 {
        (self.next() % u64::from(n)) as u32
    }
}

/// Contiv's range-string format computed the slow way from a set of u32 addresses.
fn model_ranges(set: &BTreeSet<u32>) -> String {
    let mut runs: Vec<(u32, u32)> = Vec::new();
    for &a in set {
        match runs.last_mut() {
            Some(l) if l.1 + 1 == a => l.1 = a,
            _ => runs.push((a, a)),
        }
    }
    let fmt = |(s, e): (u32, u32)| {
        if s == e {
            Ipv4Addr::from(s).to_string()
        } else {
            format!("{}-{}", Ipv4Addr::from(s), Ipv4Addr::from(e))
        }
    };
    runs.into_iter().map(fmt).collect::<Vec<_>>().join(", ")
}

fn run_model(spec: &str, gw: Option<Ipv4Addr>, epg: Ipv4Range, seed: u64) {
    let mut pool = Ipv4Pool::new(spec, gw).unwrap();
    pool.reserve_pool(&epg).unwrap();
    let range = pool.range();
    let (lo, hi) = (u32::from(range.start), u32::from(range.end));
    let gw_in = gw.map(u32::from).filter(|g| (lo..=hi).contains(g));
    let (elo, ehi) = (u32::from(epg.start), u32::from(epg.end));
    let mut model: BTreeSet<u32> = BTreeSet::new();
    let free = |m: &BTreeSet<u32>, a: u32| !m.contains(&a) && Some(a) != gw_in;
    let mut rng = Rng(seed);
    // probe a little outside the range too
    let probe = |rng: &mut Rng| lo.saturating_sub(2) + rng.below(hi - lo + 5);
    for step in 0..10_000 {
        match rng.below(6) {
            0 | 1 => {
                let want = (lo..=hi).find(|&a| free(&model, a) && !(elo..=ehi).contains(&a));
                assert_eq!(pool.peek_lowest(None).ok().map(u32::from), want);
                let got = pool.allocate_lowest(None).ok().map(u32::from);
                assert_eq!(got, want, "step {step} lowest");
                want.map(|a| model.insert(a));
            }
            2 => {
                let want = (elo..=ehi).find(|&a| free(&model, a));
                let got = pool.allocate_lowest(Some(&epg)).ok().map(u32::from);
                assert_eq!(got, want, "step {step} within");
                want.map(|a| model.insert(a));
            }
            3 => {
                let a = probe(&mut rng);
                let ok = (lo..=hi).contains(&a) && free(&model, a);
                assert_eq!(
                    pool.check_available(Ipv4Addr::from(a)).is_ok(),
                    ok,
                    "step {step} check {a}"
                );
                assert_eq!(
                    pool.allocate_specific(Ipv4Addr::from(a)).is_ok(),
                    ok,
                    "step {step} specific {a}"
                );
                if ok {
                    model.insert(a);
                }
            }
            _ => {
                let a = match model.iter().nth(rng.below(model.len() as u32 + 1) as usize) {
                    Some(&a) if rng.below(4) != 0 => a,
                    _ => probe(&mut rng),
                };
                assert_eq!(
                    pool.release(Ipv4Addr::from(a)),
                    model.remove(&a),
                    "step {step} release {a}"
                );
            }
        }
        let a = probe(&mut rng);
        assert_eq!(pool.is_allocated(Ipv4Addr::from(a)), model.contains(&a));
        assert_eq!(pool.allocated_count() as usize, model.len());
        if step % 500 == 0 {
            check_strings(&pool, &model, gw_in, epg);
        }
    }
    check_strings(&pool, &model, gw_in, epg);
}

fn check_strings(pool: &Ipv4Pool, model: &BTreeSet<u32>, gw_in: Option<u32>, epg: Ipv4Range) {
    let range = pool.range();
    let (lo, hi) = (u32::from(range.start), u32::from(range.end));
    let (elo, ehi) = (u32::from(epg.start), u32::from(epg.end));
    let mut shown: BTreeSet<u32> = model.clone();
    shown.extend(gw_in);
    shown.extend(elo..=ehi);
    let avail: BTreeSet<u32> = (lo..=hi).filter(|a| !shown.contains(a)).collect();
    assert_eq!(pool.allocated_ranges(), model_ranges(&shown));
    assert_eq!(pool.available_ranges(), model_ranges(&avail));
    let in_epg: BTreeSet<u32> = model.range(elo..=ehi).copied().collect();
    let free_epg: BTreeSet<u32> = (elo..=ehi).filter(|a| !in_epg.contains(a)).collect();
    assert_eq!(pool.allocated_ranges_in(&epg), model_ranges(&in_epg));
    assert_eq!(pool.available_ranges_in(&epg), model_ranges(&free_epg));
}

fn ip(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

#[test]
fn random_ops_match_model_plain_24() {
    let epg = Ipv4Range {
        start: ip("10.1.1.100"),
        end: ip("10.1.1.140"),
    };
    run_model(
        "10.1.1.0/24",
        Some(ip("10.1.1.1")),
        epg,
        0x9E37_79B9_7F4A_7C15,
    );
}

#[test]
fn random_ops_match_model_range_subnet_crossing_words() {
    let epg = Ipv4Range {
        start: ip("10.1.0.64"),
        end: ip("10.1.0.200"),
    };
    run_model("10.1.0.30-10.1.1.40/22", Some(ip("10.1.1.0")), epg, 42);
}

#[test]
fn random_ops_match_model_gateway_outside_range() {
    let epg = Ipv4Range {
        start: ip("10.2.0.10"),
        end: ip("10.2.0.12"),
    };
    run_model("10.2.0.5-10.2.0.90/25", Some(ip("10.2.0.1")), epg, 7);
}

/// Budgets are generous for debug builds on a loaded 2-core machine; release is far faster.
#[test]
fn sequential_allocations_are_fast() {
    let mut p = Ipv4Pool::new("10.1.0.0/16", Some(ip("10.1.0.1"))).unwrap();
    let t = Instant::now();
    for _ in 0..4000 {
        p.allocate_lowest(None).unwrap();
    }
    let seq = t.elapsed();
    let mut big = Ipv4Pool::new("10.0.0.0/8", Some(ip("10.0.0.1"))).unwrap();
    // fill the first 4M addresses, then free scattered ones and re-allocate lowest
    for _ in 0..(1 << 22) {
        big.allocate_lowest(None).unwrap();
    }
    let t = Instant::now();
    for k in (1..2000u32).rev() {
        assert!(big.release(Ipv4Addr::from(u32::from(ip("10.0.0.0")) + k * 2000)));
    }
    for _ in 1..2000 {
        big.allocate_lowest(None).unwrap();
    }
    let n = big.allocate_lowest(None).unwrap();
    assert_eq!(u32::from(n) - u32::from(ip("10.0.0.0")), (1 << 22) + 2);
    let s = big.available_ranges();
    assert_eq!(
        s,
        format!("{}-10.255.255.254", Ipv4Addr::from(u32::from(n) + 1))
    );
    let scattered = t.elapsed();
    eprintln!("4000 sequential on /16: {seq:?}; /8 release+realloc 2000 + strings: {scattered:?}");
    assert!(
        seq.as_millis() < 50,
        "4000 sequential allocations took {seq:?}"
    );
    assert!(
        scattered.as_millis() < 500,
        "/8 scattered ops took {scattered:?}"
    );
    let mut ids = IdPool::new(1, 16_777_215);
    let t = Instant::now();
    for _ in 0..100_000 {
        ids.allocate_lowest().unwrap();
    }
    eprintln!("100k IdPool allocations: {:?}", t.elapsed());
    assert!(t.elapsed().as_millis() < 500);
}
