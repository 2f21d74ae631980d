//! Ipv4Pool behaviour, Contiv's inspect strings and messages.

use std::net::Ipv4Addr;

use contiv_resources::{Ipv4Pool, Ipv4Range, ResourceError};

fn ip(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

fn r(a: &str, b: &str) -> Ipv4Range {
    Ipv4Range {
        start: ip(a),
        end: ip(b),
    }
}

#[test]
fn fresh_network_strings() {
    let p = Ipv4Pool::new("10.1.1.0/24", Some(ip("10.1.1.1"))).unwrap();
    assert_eq!(p.prefix().to_string(), "10.1.1.0/24");
    assert_eq!(p.prefix_len(), 24);
    assert_eq!(p.gateway(), Some(ip("10.1.1.1")));
    assert_eq!(p.allocated_count(), 0);
    // Contiv shows the gateway among allocated addresses
    assert_eq!(p.allocated_ranges(), "10.1.1.1");
    assert_eq!(p.available_ranges(), "10.1.1.2-10.1.1.254");
    let q = Ipv4Pool::new("10.1.1.0/24", None).unwrap();
    assert_eq!(
        (q.allocated_ranges(), q.available_ranges()),
        (String::new(), "10.1.1.1-10.1.1.254".into())
    );
}

#[test]
fn allocate_lowest_release_reallocate() {
    let mut p = Ipv4Pool::new("10.1.1.0/24", Some(ip("10.1.1.254"))).unwrap();
    for n in 1..=5u8 {
        assert_eq!(p.allocate_lowest(None).unwrap(), Ipv4Addr::new(10, 1, 1, n));
    }
    assert_eq!(p.allocated_count(), 5);
    assert!(p.release(ip("10.1.1.2")));
    assert!(!p.release(ip("10.1.1.2")));
    assert!(!p.release(ip("10.1.1.254")), "gateway is never released");
    assert!(!p.release(ip("10.9.9.9")));
    assert!(!p.is_allocated(ip("10.1.1.2")) && p.is_allocated(ip("10.1.1.3")));
    assert!(!p.is_allocated(ip("10.1.1.254")));
    assert_eq!(
        p.allocated_ranges(),
        "10.1.1.1, 10.1.1.3-10.1.1.5, 10.1.1.254"
    );
    assert_eq!(p.available_ranges(), "10.1.1.2, 10.1.1.6-10.1.1.253");
    assert_eq!(p.allocate_lowest(None).unwrap(), ip("10.1.1.2"));
    assert_eq!(p.allocate_lowest(None).unwrap(), ip("10.1.1.6"));
}

#[test]
fn exhaustion() {
    let mut p = Ipv4Pool::new("10.1.1.0/29", Some(ip("10.1.1.1"))).unwrap();
    let got: Vec<_> = (0..5).map(|_| p.allocate_lowest(None).unwrap()).collect();
    assert_eq!(got.last(), Some(&ip("10.1.1.6")));
    let e = p.allocate_lowest(None).unwrap_err();
    assert_eq!(
        e.to_string(),
        "auto allocation failed - address exhaustion in subnet 10.1.1.0/29"
    );
    assert_eq!(p.available_ranges(), "");
    assert_eq!(p.allocated_ranges(), "10.1.1.1-10.1.1.6");
    assert_eq!(p.free_count(), 0);
}

#[test]
fn preferred_address() {
    let mut p = Ipv4Pool::new("10.1.1.0/24", Some(ip("10.1.1.1"))).unwrap();
    assert!(p.check_available(ip("10.1.1.5")).is_ok());
    p.allocate_specific(ip("10.1.1.5")).unwrap();
    assert!(p.check_available(ip("10.1.1.5")).is_err());
    assert!(p.check_available(ip("10.1.1.1")).is_err());
    let e = p.allocate_specific(ip("10.1.1.5")).unwrap_err();
    assert_eq!(e.to_string(), "ip address 10.1.1.5 is not available");
    let msg = |p: &mut Ipv4Pool, s: &str| p.allocate_specific(ip(s)).unwrap_err().to_string();
    assert_eq!(
        msg(&mut p, "10.1.1.1"),
        "ip address 10.1.1.1 is reserved in subnet 10.1.1.0/24"
    );
    assert_eq!(
        msg(&mut p, "10.1.1.0"),
        "ip address 10.1.1.0 is reserved in subnet 10.1.1.0/24"
    );
    assert_eq!(
        msg(&mut p, "10.1.1.255"),
        "ip address 10.1.1.255 is reserved in subnet 10.1.1.0/24"
    );
    assert_eq!(
        msg(&mut p, "10.1.2.1"),
        "ip address 10.1.2.1 is outside subnet 10.1.1.0/24"
    );
    assert_eq!(p.allocated_count(), 1);
    // lowest skips the preferred one
    let got: Vec<_> = (0..4).map(|_| p.allocate_lowest(None).unwrap()).collect();
    assert_eq!(
        got,
        vec![
            ip("10.1.1.2"),
            ip("10.1.1.3"),
            ip("10.1.1.4"),
            ip("10.1.1.6")
        ]
    );
    // specific on the current lowest free keeps lowest-free correct
    p.allocate_specific(ip("10.1.1.7")).unwrap();
    assert_eq!(p.allocate_lowest(None).unwrap(), ip("10.1.1.8"));
}

#[test]
fn range_subnet_with_gateway_inside_and_outside() {
    let mut p = Ipv4Pool::new("10.1.1.10-10.1.1.20/24", Some(ip("10.1.1.1"))).unwrap();
    assert_eq!(p.range(), r("10.1.1.10", "10.1.1.20"));
    assert_eq!(p.allocated_ranges(), "");
    assert_eq!(p.available_ranges(), "10.1.1.10-10.1.1.20");
    assert_eq!(p.allocate_lowest(None).unwrap(), ip("10.1.1.10"));
    assert!(p.contains(ip("10.1.1.5")));
    assert_eq!(
        p.allocate_specific(ip("10.1.1.5")).unwrap_err().to_string(),
        "ip address 10.1.1.5 is outside the address range 10.1.1.10-10.1.1.20 of subnet 10.1.1.0/24"
    );
    assert!(matches!(
        p.allocate_specific(ip("10.1.1.1")),
        Err(ResourceError::AddressReserved { .. })
    ));
    let mut q = Ipv4Pool::new("10.1.1.10-10.1.1.20/24", Some(ip("10.1.1.10"))).unwrap();
    assert_eq!(q.allocated_ranges(), "10.1.1.10");
    assert_eq!(q.available_ranges(), "10.1.1.11-10.1.1.20");
    assert_eq!(q.allocate_lowest(None).unwrap(), ip("10.1.1.11"));
    assert_eq!(q.allocated_count(), 1);
}

#[test]
fn gateway_checks() {
    let msg = |s: &str, g: &str| Ipv4Pool::new(s, Some(ip(g))).unwrap_err().to_string();
    assert_eq!(
        msg("10.1.1.0/24", "10.1.2.1"),
        "gateway 10.1.2.1 is not in subnet 10.1.1.0/24"
    );
    assert_eq!(
        msg("10.1.1.0/24", "10.1.1.0"),
        "gateway 10.1.1.0 is a reserved address of subnet 10.1.1.0/24"
    );
    assert_eq!(
        msg("10.1.1.0/24", "10.1.1.255"),
        "gateway 10.1.1.255 is a reserved address of subnet 10.1.1.0/24"
    );
    assert!(Ipv4Pool::new("10.1.1.0/33", None).is_err());
}

#[test]
fn slash_31_and_30() {
    let mut p = Ipv4Pool::new("10.1.1.4/31", None).unwrap();
    assert_eq!(p.available_ranges(), "10.1.1.4-10.1.1.5");
    assert_eq!(p.allocate_lowest(None).unwrap(), ip("10.1.1.4"));
    assert_eq!(p.allocate_lowest(None).unwrap(), ip("10.1.1.5"));
    assert!(p.allocate_lowest(None).is_err());
    let mut g = Ipv4Pool::new("10.1.1.4/31", Some(ip("10.1.1.4"))).unwrap();
    assert_eq!(g.allocate_lowest(None).unwrap(), ip("10.1.1.5"));
    assert!(g.allocate_lowest(None).is_err());
    let mut q = Ipv4Pool::new("10.1.1.4/30", Some(ip("10.1.1.5"))).unwrap();
    assert_eq!(q.allocate_lowest(None).unwrap(), ip("10.1.1.6"));
    assert!(q.allocate_lowest(None).is_err());
}

#[test]
fn epg_pool_reservation_and_scoped_allocation() {
    let mut p = Ipv4Pool::new("10.1.1.0/24", Some(ip("10.1.1.1"))).unwrap();
    let pool = r("10.1.1.2", "10.1.1.4");
    p.check_pool(&pool).unwrap();
    p.reserve_pool(&pool).unwrap();
    assert_eq!(p.reserved_pools(), &[pool]);
    assert_eq!(p.pool_of(ip("10.1.1.3")), Some(&pool));
    assert_eq!(p.pool_of(ip("10.1.1.5")), None);
    // network view shows the whole pool as allocated (Contiv did)
    assert_eq!(p.allocated_ranges(), "10.1.1.1-10.1.1.4");
    assert_eq!(p.available_ranges(), "10.1.1.5-10.1.1.254");
    assert_eq!(p.allocate_lowest(None).unwrap(), ip("10.1.1.5"));
    assert_eq!(p.peek_lowest(Some(&pool)).unwrap(), ip("10.1.1.2"));
    assert_eq!(p.peek_lowest(None).unwrap(), ip("10.1.1.6"));
    assert_eq!(p.allocate_lowest(Some(&pool)).unwrap(), ip("10.1.1.2"));
    assert_eq!(p.allocate_lowest(Some(&pool)).unwrap(), ip("10.1.1.3"));
    assert_eq!(p.allocated_ranges_in(&pool), "10.1.1.2-10.1.1.3");
    assert_eq!(p.available_ranges_in(&pool), "10.1.1.4");
    assert_eq!(p.allocate_lowest(Some(&pool)).unwrap(), ip("10.1.1.4"));
    assert_eq!(
        p.allocate_lowest(Some(&pool)).unwrap_err().to_string(),
        "auto allocation failed - address exhaustion in pool 10.1.1.2-10.1.1.4"
    );
    assert_eq!(p.available_ranges_in(&pool), "");
    assert!(matches!(
        p.peek_lowest(Some(&pool)),
        Err(ResourceError::PoolExhausted { .. })
    ));
    assert_eq!(p.allocated_count(), 4);
    assert!(p.release(ip("10.1.1.3")));
    assert_eq!(
        p.allocate_lowest(None).unwrap(),
        ip("10.1.1.6"),
        "un-scoped skips the pool"
    );
    assert_eq!(p.allocate_lowest(Some(&pool)).unwrap(), ip("10.1.1.3"));
    assert!(p.release_pool(&pool));
    assert!(!p.release_pool(&pool));
    assert_eq!(p.allocated_ranges(), "10.1.1.1-10.1.1.6");
}

#[test]
fn epg_pool_checks() {
    let mut p = Ipv4Pool::new("10.1.1.10-10.1.1.100/24", Some(ip("10.1.1.50"))).unwrap();
    p.allocate_specific(ip("10.1.1.30")).unwrap();
    let msg = |p: &Ipv4Pool, a: &str, b: &str| p.check_pool(&r(a, b)).unwrap_err().to_string();
    assert_eq!(
        msg(&p, "10.2.2.1", "10.2.2.5"),
        "bad ip-pool 10.2.2.1-10.2.2.5, EPG ip-pool must be a subset of network 10.1.1.0/24"
    );
    assert_eq!(
        msg(&p, "10.1.1.250", "10.1.2.5"),
        "invalid ip-pool 10.1.1.250-10.1.2.5"
    );
    assert_eq!(
        msg(&p, "10.1.1.5", "10.1.1.12"),
        "ip address 10.1.1.5 is not available"
    );
    assert_eq!(
        msg(&p, "10.1.1.95", "10.1.1.120"),
        "ip address 10.1.1.101 is not available"
    );
    assert_eq!(
        msg(&p, "10.1.1.20", "10.1.1.40"),
        "ip address 10.1.1.30 is not available"
    );
    assert_eq!(
        msg(&p, "10.1.1.40", "10.1.1.60"),
        "ip address 10.1.1.50 is not available"
    );
    p.reserve_pool(&r("10.1.1.60", "10.1.1.70")).unwrap();
    assert_eq!(
        msg(&p, "10.1.1.65", "10.1.1.80"),
        "ip address 10.1.1.65 is not available"
    );
    assert!(p.reserve_pool(&r("10.1.1.55", "10.1.1.60")).is_err());
    p.reserve_pool(&r("10.1.1.31", "10.1.1.40")).unwrap();
    assert_eq!(
        p.reserved_pools(),
        &[r("10.1.1.31", "10.1.1.40"), r("10.1.1.60", "10.1.1.70")]
    );
    assert!(matches!(
        p.allocate_lowest(Some(&r("10.2.0.1", "10.2.0.2"))),
        Err(ResourceError::IpPoolNotSubset { .. })
    ));
    // a sub-range outside the allocatable range has nothing to give
    assert!(matches!(
        p.allocate_lowest(Some(&r("10.1.1.1", "10.1.1.5"))),
        Err(ResourceError::PoolExhausted { .. })
    ));
    assert_eq!(p.allocated_ranges_in(&r("10.1.1.1", "10.1.1.5")), "");
    assert_eq!(p.available_ranges_in(&r("10.1.1.1", "10.1.1.5")), "");
    assert_eq!(
        p.available_ranges_in(&r("10.1.1.1", "10.1.1.12")),
        "10.1.1.10-10.1.1.12"
    );
}

#[test]
fn unscoped_exhaustion_with_pools() {
    let mut p = Ipv4Pool::new("10.1.1.0/29", None).unwrap();
    p.reserve_pool(&r("10.1.1.3", "10.1.1.6")).unwrap();
    assert_eq!(p.allocate_lowest(None).unwrap(), ip("10.1.1.1"));
    assert_eq!(p.allocate_lowest(None).unwrap(), ip("10.1.1.2"));
    assert!(matches!(
        p.allocate_lowest(None),
        Err(ResourceError::AddressExhausted { .. })
    ));
    assert_eq!(
        p.allocate_lowest(Some(&r("10.1.1.3", "10.1.1.6"))).unwrap(),
        ip("10.1.1.3")
    );
}

#[test]
fn slash_8_scattered_strings() {
    let mut p = Ipv4Pool::new("10.0.0.0/8", Some(ip("10.0.0.1"))).unwrap();
    for i in 0..1000u32 {
        p.allocate_specific(Ipv4Addr::from(u32::from(ip("10.0.0.0")) + 16_000 * (i + 1)))
            .unwrap();
    }
    assert_eq!(p.allocated_count(), 1000);
    let alloc = p.allocated_ranges();
    assert_eq!(alloc.split(", ").count(), 1001);
    assert!(alloc.starts_with("10.0.0.1, 10.0.62.128, "));
    let avail = p.available_ranges();
    assert_eq!(avail.split(", ").count(), 1001);
    assert!(avail.starts_with("10.0.0.2-10.0.62.127, "));
    assert!(avail.ends_with("-10.255.255.254"));
}
