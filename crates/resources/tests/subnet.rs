//! Subnet parsing, ip-pool ranges, overlap and MAC derivation.

use std::net::Ipv4Addr;

use contiv_resources::{
    mac_from_ipv4, parse_subnet, parse_subnet_v6, subnets_overlap, Ipv4Range, ResourceError,
};

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
fn plain_subnets() {
    let (net, range) = parse_subnet("10.1.1.0/24").unwrap();
    assert_eq!(net.to_string(), "10.1.1.0/24");
    assert_eq!(range, r("10.1.1.1", "10.1.1.254"));
    // host bits are cleared
    let (net, range) = parse_subnet("10.1.1.77/24").unwrap();
    assert_eq!(
        (net.to_string(), range),
        ("10.1.1.0/24".into(), r("10.1.1.1", "10.1.1.254"))
    );
    let (net, range) = parse_subnet("10.0.0.0/8").unwrap();
    assert_eq!((net.prefix_len(), range.len()), (8, (1 << 24) - 2));
    assert_eq!(
        parse_subnet("10.1.1.4/30").unwrap().1,
        r("10.1.1.5", "10.1.1.6")
    );
    // /31: RFC 3021, both usable
    assert_eq!(
        parse_subnet("10.1.1.4/31").unwrap().1,
        r("10.1.1.4", "10.1.1.5")
    );
}

#[test]
fn range_subnets() {
    let (net, range) = parse_subnet("10.1.1.10-10.1.1.100/24").unwrap();
    assert_eq!(
        (net.to_string(), range),
        ("10.1.1.0/24".into(), r("10.1.1.10", "10.1.1.100"))
    );
    // a range touching the network/broadcast address is clipped
    assert_eq!(
        parse_subnet("10.1.1.0-10.1.1.255/24").unwrap().1,
        r("10.1.1.1", "10.1.1.254")
    );
    assert_eq!(
        parse_subnet("10.1.1.5-10.1.1.5/24").unwrap().1,
        r("10.1.1.5", "10.1.1.5")
    );
    let msg = |s: &str| parse_subnet(s).unwrap_err().to_string();
    assert_eq!(
        msg("10.1.1.100-10.1.1.10/24"),
        "Network subnet format not valid"
    );
    assert_eq!(
        msg("10.1.1.10-10.1.2.10/24"),
        "Network subnet format not valid"
    );
    assert_eq!(
        msg("10.1.1.255-10.1.1.255/24"),
        "Network subnet format not valid"
    );
}

#[test]
fn bad_subnets() {
    let msg = |s: &str| parse_subnet(s).unwrap_err().to_string();
    assert_eq!(msg("10.1.1.0/7"), "subnet length 7 not supported");
    assert_eq!(msg("10.1.1.0/32"), "subnet length 32 not supported");
    assert_eq!(msg("10.1.1.0/1"), "subnet length 1 not supported");
    for bad in [
        "10.1.1.0",
        "10.1.1.0/33",
        "10.1.1/24",
        "x/24",
        "10.1.1.0/",
        "10.1.1.1-x/24",
        "",
    ] {
        assert!(
            matches!(parse_subnet(bad), Err(ResourceError::InvalidSubnet { .. })),
            "{bad}"
        );
    }
    assert_eq!(msg("bogus"), "invalid subnet bogus");
}

#[test]
fn ipv6_subnets() {
    assert_eq!(
        parse_subnet_v6("2001:db8::1/64").unwrap().to_string(),
        "2001:db8::/64"
    );
    assert!(matches!(
        parse_subnet_v6("2001:db8::/8"),
        Err(ResourceError::SubnetLengthNotSupported { len: 8 })
    ));
    assert!(parse_subnet_v6("2001:db8::/128").is_err());
    assert!(parse_subnet_v6("10.1.1.0/24").is_err());
}

#[test]
fn ip_pool_parse() {
    assert_eq!(
        Ipv4Range::parse("10.1.1.10-10.1.1.20").unwrap(),
        r("10.1.1.10", "10.1.1.20")
    );
    assert_eq!(
        "10.1.1.10".parse::<Ipv4Range>().unwrap(),
        r("10.1.1.10", "10.1.1.10")
    );
    assert_eq!(
        r("10.1.1.10", "10.1.1.20").to_string(),
        "10.1.1.10-10.1.1.20"
    );
    assert_eq!(r("10.1.1.10", "10.1.1.20").len(), 11);
    assert_eq!(
        Ipv4Range::new(ip("10.0.0.9"), ip("10.0.0.1")),
        r("10.0.0.1", "10.0.0.9")
    );
    assert_eq!(
        Ipv4Range::parse("10.1.1.20-10.1.1.10")
            .unwrap_err()
            .to_string(),
        "invalid ip-pool 10.1.1.20-10.1.1.10"
    );
    assert_eq!(
        Ipv4Range::parse("a-b").unwrap_err().to_string(),
        "invalid ip-pool a-b"
    );
    assert_eq!(
        Ipv4Range::parse("2001:db8::1-2001:db8::5")
            .unwrap_err()
            .to_string(),
        "ipv6 address pool is not supported for Endpoint Groups"
    );
}

#[test]
fn ip_pool_subset_check() {
    let net = parse_subnet("10.1.1.0/24").unwrap().0;
    assert!(r("10.1.1.10", "10.1.1.20").check_subset(net).is_ok());
    assert_eq!(
        r("10.2.2.1", "10.2.2.5")
            .check_subset(net)
            .unwrap_err()
            .to_string(),
        "bad ip-pool 10.2.2.1-10.2.2.5, EPG ip-pool must be a subset of network 10.1.1.0/24"
    );
    assert_eq!(
        r("10.1.1.250", "10.1.2.5")
            .check_subset(net)
            .unwrap_err()
            .to_string(),
        "invalid ip-pool 10.1.1.250-10.1.2.5"
    );
    let reversed = Ipv4Range {
        start: ip("10.1.1.9"),
        end: ip("10.1.1.1"),
    };
    assert!(reversed.is_empty());
    assert_eq!(reversed.len(), 0);
    assert!(reversed.check_subset(net).is_err());
    let wide = parse_subnet("10.0.0.0/8").unwrap().0;
    assert!(r("10.1.0.0", "10.9.255.255").check_subset(wide).is_ok());
}

#[test]
fn overlap() {
    let o = |a: &str, b: &str| subnets_overlap(a, b).unwrap();
    assert!(o("10.1.1.0/24", "10.1.1.0/24"));
    assert!(o("10.1.0.0/16", "10.1.200.0/24"));
    assert!(o("10.1.200.0/24", "10.1.0.0/16"));
    assert!(!o("10.1.1.0/24", "10.1.2.0/24"));
    assert!(o("10.1.1.5/24", "10.1.1.0/30"));
    // range subnets compare by their range
    assert!(!o("10.1.1.1-10.1.1.100/24", "10.1.1.101-10.1.1.200/24"));
    assert!(o("10.1.1.1-10.1.1.100/24", "10.1.1.100-10.1.1.200/24"));
    assert!(o("10.1.1.50-10.1.1.60/24", "10.1.1.0/24"));
    assert!(!o("10.1.1.50-10.1.1.60/24", "10.1.2.0/24"));
    assert!(o("2001:db8::/64", "2001:db8::/48"));
    assert!(!o("2001:db8::/64", "2001:db8:1::/64"));
    assert!(!o("2001:db8::/64", "10.1.1.0/24"));
    assert!(subnets_overlap("10.1.1.0/24", "junk").is_err());
    assert!(subnets_overlap("junk:", "2001:db8::/64").is_err());
}

#[test]
fn mac() {
    assert_eq!(mac_from_ipv4(ip("10.1.1.2")), "02:02:0a:01:01:02");
    assert_eq!(mac_from_ipv4(ip("255.0.171.16")), "02:02:ff:00:ab:10");
}
