//! IdPool / VxlanPool behaviour and Contiv's messages.

use contiv_resources::{IdPool, ResourceError, VxlanPool};

#[test]
fn parse_range_ok_and_bounds() {
    let p = IdPool::parse_range("1-4094", 4094).unwrap();
    assert_eq!(p.ranges(), &[(1, 4094)]);
    assert!(p.contains_range(1) && p.contains_range(4094));
    assert!(!p.contains_range(0) && !p.contains_range(4095));
    assert_eq!(IdPool::parse_range(" 7 ", 10).unwrap().ranges(), &[(7, 7)]);
    let multi = IdPool::parse_range("70-100, 10-50,45-60", 4094).unwrap();
    assert_eq!(multi.ranges(), &[(10, 60), (70, 100)]);
}

#[test]
fn parse_range_contiv_messages() {
    let msg = |s: &str| IdPool::parse_kind(s, 4094, "vlan").unwrap_err().to_string();
    assert_eq!(msg("1-2-3"), "invalid tags 1-2-3, correct '10-50,70-100'");
    assert_eq!(msg("a-b"), "invalid tags a-b, correct '10-50,70-100'");
    assert_eq!(msg(""), "invalid tags , correct '10-50,70-100'");
    assert_eq!(msg("-5"), "invalid tags -5, correct '10-50,70-100'");
    assert_eq!(msg("10-5"), "invalid range 10-5, min is greater than max");
    assert_eq!(msg("0-5"), "invalid range 0-5, values less than 1");
    assert_eq!(
        msg("1-5000"),
        "invalid range 1-5000, vlan values exceed 4094 max allowed"
    );
    assert!(matches!(
        IdPool::parse_range("1-99999999999", 10),
        Err(ResourceError::RangeAboveMax { max: 10, .. })
    ));
}

#[test]
fn allocate_reserve_release() {
    let mut p = IdPool::parse_kind("1-5", 4094, "vlan").unwrap();
    assert_eq!(p.first_free(), Some(1));
    assert_eq!(p.allocate_lowest().unwrap(), 1);
    p.reserve(3).unwrap();
    assert_eq!(p.allocate_lowest().unwrap(), 2);
    assert_eq!(p.allocate_lowest().unwrap(), 4);
    assert_eq!(
        p.reserve(3).unwrap_err().to_string(),
        "requested vlan not available - vlan:3"
    );
    assert_eq!(
        p.reserve(5000).unwrap_err().to_string(),
        "requested vlan not available - vlan:5000"
    );
    assert!(matches!(
        p.reserve(0),
        Err(ResourceError::IdOutOfRange { id: 0, .. })
    ));
    assert!(matches!(
        p.reserve(4),
        Err(ResourceError::IdNotAvailable { id: 4, .. })
    ));
    assert_eq!(p.allocate_lowest().unwrap(), 5);
    assert_eq!(p.first_free(), None);
    assert_eq!(
        p.allocate_lowest().unwrap_err().to_string(),
        "no vlans available"
    );
    assert_eq!(p.used_count(), 5);
    assert!(p.release(2));
    assert!(!p.release(2));
    assert!(!p.release(77));
    assert!(!p.is_used(2) && p.is_used(3) && !p.is_used(77));
    assert_eq!(p.first_free(), Some(2));
    assert_eq!(p.allocate_lowest().unwrap(), 2);
}

#[test]
fn gaps_between_ranges_are_never_allocated() {
    let mut p = IdPool::parse_range("1-2,5-6", 100).unwrap();
    let got: Vec<u32> = (0..4).map(|_| p.allocate_lowest().unwrap()).collect();
    assert_eq!(got, vec![1, 2, 5, 6]);
    assert!(p.allocate_lowest().is_err());
    assert!(!p.contains_range(3) && !p.is_used(3));
    assert!(matches!(
        p.reserve(4),
        Err(ResourceError::IdOutOfRange { .. })
    ));
    assert!(!p.release(3));
    assert_eq!(p.used_ranges(), "1-2, 5-6");
}

#[test]
fn used_ranges_format() {
    let mut p = IdPool::new(1, 4094);
    assert_eq!(p.used_ranges(), "");
    p.reserve(7).unwrap();
    assert_eq!(p.used_ranges(), "7");
    for id in [1, 2, 3, 4, 5, 4094] {
        p.reserve(id).unwrap();
    }
    assert_eq!(p.used_ranges(), "1-5, 7, 4094");
    assert_eq!(p.used_count(), 7);
    let mut q = IdPool::new(100, 100);
    assert_eq!(q.allocate_lowest().unwrap(), 100);
    assert_eq!(q.used_ranges(), "100");
    assert_eq!(IdPool::new(9, 3).ranges(), &[(3, 9)]);
}

#[test]
fn epg_ids_and_large_pools() {
    let mut p = IdPool::new(1, 65535).with_kind("endpoint group id");
    for i in 1..=65535 {
        assert_eq!(p.allocate_lowest().unwrap(), i);
    }
    assert_eq!(
        p.allocate_lowest().unwrap_err().to_string(),
        "no endpoint group ids available"
    );
    assert!(p.release(40000));
    assert_eq!(p.allocate_lowest().unwrap(), 40000);
    assert_eq!(p.used_ranges(), "1-65535");
    let mut v = IdPool::parse_range("1-16777215", 16_777_215).unwrap();
    v.reserve(16_777_215).unwrap();
    assert_eq!(v.allocate_lowest().unwrap(), 1);
    assert_eq!(v.used_ranges(), "1, 16777215");
}

#[test]
fn vxlan_pairs_with_local_vlan() {
    let mut v = VxlanPool::parse("10001-10003").unwrap();
    assert_eq!(v.free_vxlans_start(), 10000);
    assert_eq!(v.allocate(None).unwrap(), (10001, 1));
    assert_eq!(v.allocate(Some(10003)).unwrap(), (10003, 2));
    assert_eq!(
        v.allocate(Some(10003)).unwrap_err().to_string(),
        "requested vxlan not available - vxlan:10003"
    );
    assert_eq!(
        v.allocate(Some(5)).unwrap_err().to_string(),
        "requested vxlan not available - vxlan:5"
    );
    assert_eq!(v.allocate(None).unwrap(), (10002, 3));
    assert_eq!(
        v.allocate(None).unwrap_err().to_string(),
        "no vxlans available"
    );
    assert!(v.release(10001, 1));
    assert!(!v.release(10001, 1));
    v.reserve(10001, 1).unwrap();
    assert!(v.reserve(10001, 9).is_err());
    assert_eq!(v.vnis.used_ranges(), "10001-10003");
    assert_eq!(v.local_vlans.used_ranges(), "1-3");
}

#[test]
fn vxlan_local_vlans_exhausted_leaves_vni_free() {
    let mut v = VxlanPool::parse("1-10000").unwrap();
    for _ in 0..4094 {
        v.allocate(None).unwrap();
    }
    assert_eq!(
        v.allocate(None).unwrap_err().to_string(),
        "no local vlans available"
    );
    assert_eq!(v.vnis.used_count(), 4094);
    assert!(v.reserve(5000, 5).is_err());
    assert!(!v.vnis.is_used(5000));
    assert!(VxlanPool::parse("1-16777216").is_err());
}
