//! Object kinds (names, routes, keys) and the `format` helpers.

use contiv_model::format::{self, bandwidth_to_kbps, is_valid_name, protocol_number};
use contiv_model::*;

#[test]
fn plural_roundtrip_and_contiv_spellings() {
    for k in ObjectKind::ALL {
        assert_eq!(ObjectKind::from_plural(k.plural()), Some(k));
        assert_eq!(ObjectKind::from_type_name(k.type_name()), Some(k));
    }
    let plurals: Vec<_> = ObjectKind::ALL.iter().map(|k| k.plural()).collect();
    assert_eq!(
        plurals,
        [
            "tenants",
            "networks",
            "endpointGroups",
            "policys",
            "rules",
            "appProfiles",
            "serviceLBs",
            "netprofiles",
            "globals",
            "Bgps",
            "aciGws",
            "extContractsGroups",
            "endpoints"
        ]
    );
    assert_eq!(ObjectKind::from_plural("policies"), None);
    assert_eq!(ObjectKind::from_plural("Tenants"), None);
    assert!(!ObjectKind::Endpoint.is_config());
    assert!(ObjectKind::ALL.iter().filter(|k| k.is_config()).count() == 12);
}

#[test]
fn kind_consts_match_objects() {
    fn check<T: ModelObject>(kind: ObjectKind) {
        assert_eq!(T::KIND, kind);
    }
    check::<Tenant>(ObjectKind::Tenant);
    check::<Network>(ObjectKind::Network);
    check::<EndpointGroup>(ObjectKind::EndpointGroup);
    check::<Policy>(ObjectKind::Policy);
    check::<Rule>(ObjectKind::Rule);
    check::<AppProfile>(ObjectKind::AppProfile);
    check::<ServiceLb>(ObjectKind::ServiceLb);
    check::<NetProfile>(ObjectKind::NetProfile);
    check::<Global>(ObjectKind::Global);
    check::<Bgp>(ObjectKind::Bgp);
    check::<AciGw>(ObjectKind::AciGw);
    check::<ExtContractsGroup>(ObjectKind::ExtContractsGroup);
    check::<Endpoint>(ObjectKind::Endpoint);
}

/// `key_fields` names JSON members that really exist, and joining them gives `computed_key`.
#[test]
fn key_fields_are_json_members() {
    fn check<T: ModelObject>(obj: T) {
        let json = serde_json::to_value(&obj).unwrap_or_default();
        let parts: Vec<String> = T::KIND
            .key_fields()
            .iter()
            .map(|f| {
                json.get(*f)
                    .and_then(|v| v.as_str())
                    .unwrap_or("<missing>")
                    .to_owned()
            })
            .collect();
        assert_eq!(parts.join(":"), obj.computed_key(), "{:?}", T::KIND);
    }
    check(Tenant {
        tenant_name: "t".into(),
        ..Default::default()
    });
    check(Network {
        tenant_name: "t".into(),
        network_name: "n".into(),
        ..Default::default()
    });
    check(EndpointGroup {
        tenant_name: "t".into(),
        group_name: "g".into(),
        ..Default::default()
    });
    check(Policy {
        tenant_name: "t".into(),
        policy_name: "p".into(),
        ..Default::default()
    });
    check(Rule {
        tenant_name: "t".into(),
        policy_name: "p".into(),
        rule_id: "1".into(),
        ..Default::default()
    });
    check(AppProfile {
        tenant_name: "t".into(),
        app_profile_name: "a".into(),
        ..Default::default()
    });
    check(ServiceLb {
        tenant_name: "t".into(),
        service_name: "s".into(),
        ..Default::default()
    });
    check(NetProfile {
        tenant_name: "t".into(),
        profile_name: "p".into(),
        ..Default::default()
    });
    check(Global {
        name: "global".into(),
        ..Default::default()
    });
    check(Bgp {
        hostname: "h".into(),
        ..Default::default()
    });
    check(AciGw {
        name: "aciGw".into(),
        ..Default::default()
    });
    check(ExtContractsGroup {
        tenant_name: "t".into(),
        contracts_group_name: "c".into(),
        ..Default::default()
    });
    check(Endpoint::new("e"));
}

#[test]
fn all_patterns_compile() {
    assert!(format::all_patterns().len() >= 25);
}

#[test]
fn names() {
    for ok in ["a", "default", "a-b", "a.b", "A9.b-c", "0"] {
        assert!(is_valid_name(ok), "{ok}");
    }
    for bad in ["", "-a", "a-", "a_b", "a b", "a..b", ".a", "a.", "a:b"] {
        assert!(!is_valid_name(bad), "{bad}");
    }
}

#[test]
fn bandwidth_like_contiv() {
    assert_eq!(bandwidth_to_kbps("10 kbps"), Some(10));
    assert_eq!(bandwidth_to_kbps("100mbps"), Some(104_857));
    assert_eq!(bandwidth_to_kbps("1G"), Some(1_073_741));
    assert_eq!(bandwidth_to_kbps("2 Kb"), Some(2));
    assert_eq!(bandwidth_to_kbps("5 Mb"), Some(5_242));
    assert_eq!(bandwidth_to_kbps("7"), Some(0));
    assert_eq!(bandwidth_to_kbps(""), None);
    assert_eq!(bandwidth_to_kbps("kbps"), None);
    assert_eq!(bandwidth_to_kbps("99999999999999999999 g"), None);
}

#[test]
fn protocols() {
    assert_eq!(protocol_number("tcp"), Some(6));
    assert_eq!(protocol_number("udp"), Some(17));
    assert_eq!(protocol_number("icmp"), Some(1));
    assert_eq!(protocol_number("igmp"), Some(2));
    assert_eq!(protocol_number(""), Some(0));
    assert_eq!(protocol_number("47"), Some(47));
    assert_eq!(protocol_number("255"), Some(255));
    assert_eq!(protocol_number("256"), None);
    assert_eq!(protocol_number("TCP"), None);
    assert_eq!(protocol_number("+6"), None);
    assert_eq!(format::protocol_name(17), Some("udp"));
}

#[test]
fn validation_error_display_is_the_message() {
    assert_eq!(
        ValidationError::new("Invalid Key").to_string(),
        "Invalid Key"
    );
}
