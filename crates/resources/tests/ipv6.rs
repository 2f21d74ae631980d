//! Ipv6Pool behaviour.

use std::net::Ipv6Addr;

use contiv_resources::{Ipv6Pool, ResourceError};

fn ip(s: &str) -> Ipv6Addr {
    s.parse().unwrap()
}

#[test]
fn lowest_skips_anycast_and_gateway() {
    let mut p = Ipv6Pool::new("2001:db8::/64", Some(ip("2001:db8::1"))).unwrap();
    assert_eq!(p.prefix().to_string(), "2001:db8::/64");
    assert_eq!(p.prefix_len(), 64);
    assert_eq!(p.gateway(), Some(ip("2001:db8::1")));
    assert_eq!(p.allocate_lowest().unwrap(), ip("2001:db8::2"));
    assert_eq!(p.allocate_lowest().unwrap(), ip("2001:db8::3"));
    assert_eq!(p.allocated_count(), 2);
    assert!(p.is_allocated(ip("2001:db8::2")));
    assert!(!p.is_allocated(ip("2001:db8::1")) && p.is_taken(ip("2001:db8::1")));
    assert!(p.is_taken(ip("2001:db8::")) && p.is_taken(ip("2001:db9::5")));
    assert!(!p.is_taken(ip("2001:db8::4")));
    assert!(p.contains(ip("2001:db8::ffff")) && !p.contains(ip("2001:db9::")));
}

#[test]
fn specific_release_reallocate() {
    let mut p = Ipv6Pool::new("2001:db8::/64", None).unwrap();
    assert_eq!(p.peek_lowest().unwrap(), ip("2001:db8::1"));
    assert!(p.check_available(ip("2001:db8::1")).is_ok());
    p.allocate_specific(ip("2001:db8::1")).unwrap();
    assert!(matches!(
        p.check_available(ip("2001:db8::1")),
        Err(ResourceError::AddressNotAvailable { .. })
    ));
    assert_eq!(p.peek_lowest().unwrap(), ip("2001:db8::2"));
    assert_eq!(
        p.allocate_specific(ip("2001:db8::1"))
            .unwrap_err()
            .to_string(),
        "ip address 2001:db8::1 is not available"
    );
    assert!(matches!(
        p.allocate_specific(ip("2001:db8::")),
        Err(ResourceError::AddressReserved { .. })
    ));
    assert!(matches!(
        p.allocate_specific(ip("2001:db9::1")),
        Err(ResourceError::AddressOutsideSubnet { .. })
    ));
    p.allocate_specific(ip("2001:db8::3")).unwrap();
    assert_eq!(p.allocate_lowest().unwrap(), ip("2001:db8::2"));
    assert_eq!(p.allocate_lowest().unwrap(), ip("2001:db8::4"));
    assert!(p.release(ip("2001:db8::2")));
    assert!(!p.release(ip("2001:db8::2")));
    assert!(!p.release(ip("2001:db8::")));
    assert_eq!(p.allocate_lowest().unwrap(), ip("2001:db8::2"));
    assert_eq!(p.allocate_lowest().unwrap(), ip("2001:db8::5"));
    assert_eq!(p.allocated_count(), 5);
}

#[test]
fn exhaustion_small_prefix() {
    let mut p = Ipv6Pool::new("2001:db8::/126", Some(ip("2001:db8::3"))).unwrap();
    assert_eq!(p.allocate_lowest().unwrap(), ip("2001:db8::1"));
    assert_eq!(p.allocate_lowest().unwrap(), ip("2001:db8::2"));
    assert_eq!(
        p.allocate_lowest().unwrap_err().to_string(),
        "auto allocation failed - address exhaustion in subnet 2001:db8::/126"
    );
    assert!(p.peek_lowest().is_err());
    assert!(p.release(ip("2001:db8::1")));
    assert_eq!(p.allocate_lowest().unwrap(), ip("2001:db8::1"));
}

#[test]
fn gateway_checks() {
    let e = Ipv6Pool::new("2001:db8::/64", Some(ip("2001:db9::1"))).unwrap_err();
    assert_eq!(
        e.to_string(),
        "gateway 2001:db9::1 is not in subnet 2001:db8::/64"
    );
    assert!(matches!(
        Ipv6Pool::new("2001:db8::/64", Some(ip("2001:db8::"))),
        Err(ResourceError::GatewayReserved { .. })
    ));
    assert!(Ipv6Pool::new("2001:db8::/8", None).is_err());
    assert!(Ipv6Pool::new("10.1.1.0/24", None).is_err());
}

#[test]
fn many_sequential() {
    let mut p = Ipv6Pool::new("2001:db8::/64", Some(ip("2001:db8::1"))).unwrap();
    for _ in 0..4000 {
        p.allocate_lowest().unwrap();
    }
    assert_eq!(p.allocated_count(), 4000);
    assert!(p.is_allocated(Ipv6Addr::from(u128::from(ip("2001:db8::")) + 4001)));
}
