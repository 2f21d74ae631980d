//! Field metadata tests: for every config object and every field of `ObjectKind::fields()`, a
//! value violating the spec's max_len / pattern / min / max is refused by `validate` with
//! Contiv's message, values satisfying it pass, `required` and `default` mean what they say, and
//! the tables (and `link-sets` / `links` names) cover the wire structs exactly.
//!
//! Objects are edited through their JSON form, so the tables' names are checked against the
//! serde names too.

use std::collections::BTreeSet;

use contiv_model::format::source as p;
use contiv_model::*;
use serde_json::{json, Value};

/// Values that match / do not match each pattern (never `""` as a non-match: defaults fill it).
fn samples(pattern: &str) -> (&'static [&'static str], &'static [&'static str]) {
    let table: &[(&str, &[&str], &[&str])] = &[
        (p::NAME, &["a", "a-b.c9", "A0"], &["-a", "a_b", "a."]),
        (p::NAME_OR_EMPTY, &["", "a", "a.b", "a."], &["-a", "a_b"]),
        (p::CFGD_TAG, &["", "a.b", "x-1"], &["a.", "a_b"]),
        (
            p::IPV4_OR_EMPTY,
            &["", "10.1.2.3"],
            &["10.1.2", "256.1.1.1"],
        ),
        (
            p::NETWORK_SUBNET,
            &["10.1.1.0/24", "10.1.1.1-10.1.1.9/24"],
            &["10.1.1.0/32", "10.1.1.0"],
        ),
        (
            p::IPV6_GATEWAY,
            &["", "2001::1", "1:2:3:4:5:6:7:8"],
            &["g::1", "1:2:3:4:5:6:7:8:9"],
        ),
        (p::IPV6_SUBNET, &["", "2001::/64"], &["2001::", "2001::/0"]),
        (p::ENCAP, &["vlan", "vxlan"], &["gre", "VLAN"]),
        (p::NW_TYPE, &["infra", "data"], &["x"]),
        (
            p::IP_POOL,
            &["", "10.1.1.1-10.1.1.5", "10.1.1.1"],
            &["10.1.1.1/24"],
        ),
        (p::RULE_ACTION, &["allow", "deny"], &["permit"]),
        (p::RULE_DIRECTION, &["in", "out"], &["both"]),
        (
            p::RULE_IP,
            &["", "10.1.1.1", "10.1.1.1/24", "10.1.1.1-5"],
            &["10.1.1.1/33", "x"],
        ),
        (
            p::RULE_PROTOCOL,
            &["", "tcp", "udp", "icmp", "17"],
            &["igmp", "1234"],
        ),
        (
            p::BANDWIDTH,
            &["", "10 kbps", "100mbps", "1G", "5 Mb"],
            &["0kbps", "10 tbps"],
        ),
        (p::GLOBAL_NAME, &["global"], &["Global"]),
        (p::ARP_MODE, &["", "proxy", "flood"], &["x"]),
        (p::FWD_MODE, &["", "bridge", "routing"], &["x"]),
        (
            p::NETWORK_INFRA_TYPE,
            &["", "aci", "aci-opflex", "default"],
            &["x"],
        ),
        (p::PVT_SUBNET, &["172.19.0.0/16"], &["172.19.0.0/24"]),
        (p::VLANS, &["1-4094"], &["1-4094,5-6", "a-b"]),
        (p::VXLANS, &["1-10000"], &["1-10000,2-3"]),
        (p::ROUTER_IP, &["1.2.3.4/24", "1.2.3.4-5/24"], &["1.2.3.4"]),
        (p::YES_NO, &["yes", "no"], &["maybe"]),
        (p::ACI_GW_NAME, &["aciGw"], &["acigw"]),
        (
            p::NODE_BINDINGS,
            &["", "topology/pod-1/node-101,topology/pod-1/node-102"],
            &["node-1"],
        ),
        (
            p::PATH_BINDINGS,
            &["", "topology/pod-1/paths-101/pathep-[eth1/1]"],
            &["x"],
        ),
    ];
    match table.iter().find(|(src, _, _)| *src == pattern) {
        Some((_, good, bad)) => (good, bad),
        None => panic!("no samples for pattern {pattern}"),
    }
}

/// Validates `base` with `field` set to `value` (key recomputed); the message on refusal, and
/// the validated object's JSON.
fn validate_with<T: ModelObject>(base: &Value, field: &str, value: Value) -> Result<Value, String> {
    let mut v = base.clone();
    v[field] = value;
    let mut obj: T = serde_json::from_value(v).map_err(|e| format!("decode: {e}"))?;
    obj.set_key(obj.computed_key());
    obj.validate().map_err(|e| e.0)?;
    serde_json::to_value(&obj).map_err(|e| format!("encode: {e}"))
}

fn refused<T: ModelObject>(base: &Value, spec: &FieldSpec, value: Value, msg: &str) {
    let want = format!("{} {msg}", spec.name);
    let got = validate_with::<T>(base, spec.name, value.clone()).err();
    assert_eq!(
        got.as_deref(),
        Some(want.as_str()),
        "{}.{} = {value}",
        T::KIND,
        spec.name
    );
}

fn passes<T: ModelObject>(base: &Value, spec: &FieldSpec, value: Value) {
    let got = validate_with::<T>(base, spec.name, value.clone());
    assert!(got.is_ok(), "{}.{} = {value}: {got:?}", T::KIND, spec.name);
}

fn check_string<T: ModelObject>(base: &Value, spec: &FieldSpec) {
    for bad in [
        "a\u{0}b", "a\nb", "a\rb", "a\tb", "a\u{1b}b", "a\u{7f}b", "a\u{85}b",
    ] {
        let got = validate_with::<T>(base, spec.name, json!(bad)).err();
        let want = format!("{} string has a control character", spec.name);
        assert!(
            got.as_deref().is_some_and(|m| m.starts_with(&want)),
            "{}.{} = {bad:?}: {got:?}",
            T::KIND,
            spec.name
        );
    }
    if let Some(n) = spec.max_len {
        refused::<T>(base, spec, json!("a".repeat(n + 1)), "string too long");
        if spec.regex().is_none_or(|re| re.is_match(&"a".repeat(n))) {
            passes::<T>(base, spec, json!("a".repeat(n)));
        }
    }
    if let Some(src) = spec.pattern {
        assert!(
            spec.regex().is_some(),
            "{}.{}: pattern not in format::source",
            T::KIND,
            spec.name
        );
        let (good, bad) = samples(src);
        for g in good {
            assert!(spec.max_len.is_none_or(|n| g.len() <= n));
            passes::<T>(base, spec, json!(g));
        }
        for b in bad {
            refused::<T>(base, spec, json!(b), "string invalid format");
        }
    } else {
        passes::<T>(base, spec, json!("any thing_at:all"));
    }
    let empty_refused = spec.default.is_none() && spec.regex().is_some_and(|re| !re.is_match(""));
    assert_eq!(
        spec.required,
        empty_refused,
        "{}.{} required",
        T::KIND,
        spec.name
    );
    match (spec.required, spec.default) {
        (true, _) => refused::<T>(base, spec, json!(""), "string invalid format"),
        (false, Some(d)) => {
            let out = validate_with::<T>(base, spec.name, json!("")).expect("default passes");
            assert_eq!(
                out[spec.name],
                json!(d),
                "{}.{} default",
                T::KIND,
                spec.name
            );
        }
        (false, None) => passes::<T>(base, spec, json!("")),
    }
}

fn check_int<T: ModelObject>(base: &Value, spec: &FieldSpec) {
    if let Some(hi) = spec.max {
        refused::<T>(base, spec, json!(hi + 1), "Value Out of bound");
        passes::<T>(base, spec, json!(hi));
    }
    match spec.min {
        Some(lo) => {
            // Just below the bound, skipping 0 when a default would replace it.
            let below = if lo - 1 == 0 && spec.default.is_some() {
                -1
            } else {
                lo - 1
            };
            refused::<T>(base, spec, json!(below), "Value Out of bound");
            passes::<T>(base, spec, json!(lo));
        }
        None => panic!(
            "{}.{}: every int needs a lower bound (negative values were stored)",
            T::KIND,
            spec.name
        ),
    }
    assert!(!spec.required && spec.pattern.is_none() && spec.max_len.is_none());
    match spec.default {
        Some(d) => {
            let out = validate_with::<T>(base, spec.name, json!(0)).expect("default passes");
            assert_eq!(
                out[spec.name].to_string(),
                d,
                "{}.{} default",
                T::KIND,
                spec.name
            );
        }
        None => passes::<T>(base, spec, json!(0)),
    }
}

/// Every field of `T` against its spec, and the table covering the wire struct exactly.
fn check<T: ModelObject>(base: Value) -> ObjectKind {
    let kind = T::KIND;
    let fields = kind.fields();
    let names: BTreeSet<&str> = fields.iter().map(|f| f.name).collect();
    assert_eq!(names.len(), fields.len(), "{kind}: duplicate field");
    let mut full = base.clone();
    for spec in fields {
        match spec.kind {
            FieldKind::String => check_string::<T>(&base, spec),
            FieldKind::Int => check_int::<T>(&base, spec),
            FieldKind::StringList => {
                passes::<T>(&base, spec, json!(["x", "y z"]));
                let got = validate_with::<T>(&base, spec.name, json!(["x", "y\u{0}"])).err();
                assert!(
                    got.as_deref()
                        .is_some_and(|m| m.contains("string has a control character")),
                    "{kind}.{}: {got:?}",
                    spec.name
                );
                assert!(!spec.required && spec.pattern.is_none() && spec.max_len.is_none());
            }
        }
        if full.get(spec.name).is_none() {
            full[spec.name] = match spec.kind {
                FieldKind::String => json!("x"),
                FieldKind::Int => json!(1),
                FieldKind::StringList => json!(["x"]),
            };
        }
    }
    let obj: T = serde_json::from_value(full).expect("decode full object");
    let encoded = serde_json::to_value(&obj).expect("encode");
    let extra = ["key", "link-sets", "links"];
    let wire: BTreeSet<&str> = encoded
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .filter(|k| !extra.contains(k))
        .collect();
    assert_eq!(wire, names, "{kind}: table vs wire struct");
    kind
}

#[test]
fn every_field_spec_is_what_validate_enforces() {
    let done = [
        check::<Tenant>(json!({"tenantName": "t"})),
        check::<Network>(
            json!({"tenantName": "t", "networkName": "n", "encap": "vlan", "subnet": "10.1.1.0/24"}),
        ),
        check::<EndpointGroup>(json!({"tenantName": "t", "groupName": "g", "networkName": "n"})),
        check::<Policy>(json!({"tenantName": "t", "policyName": "p"})),
        check::<Rule>(
            json!({"tenantName": "t", "policyName": "p", "ruleId": "1", "action": "allow", "direction": "in"}),
        ),
        check::<AppProfile>(json!({"tenantName": "t", "appProfileName": "a"})),
        check::<ServiceLb>(json!({"tenantName": "t", "serviceName": "s", "networkName": "n"})),
        check::<NetProfile>(json!({"tenantName": "t", "profileName": "p"})),
        check::<Global>(
            json!({"name": "global", "pvtSubnet": "172.19.0.0/16", "vlans": "1-4094", "vxlans": "1-10000"}),
        ),
        check::<Bgp>(json!({"hostname": "h", "routerip": "1.2.3.4/24"})),
        check::<AciGw>(
            json!({"name": "aciGw", "enforcePolicies": "no", "includeCommonTenant": "no", "physicalDomain": "pd"}),
        ),
        check::<ExtContractsGroup>(json!({"tenantName": "t", "contractsGroupName": "c"})),
    ];
    let configs: Vec<ObjectKind> = ObjectKind::ALL
        .into_iter()
        .filter(|k| k.is_config())
        .collect();
    assert_eq!(done.to_vec(), configs);
    assert!(ObjectKind::Endpoint.fields().is_empty());
}

/// `link-sets` / `links` member names round-trip (unknown ones would be dropped) and nothing
/// else is encoded.
fn check_links<T: ModelObject>() {
    let kind = T::KIND;
    let link = json!({"type": "tenant", "key": "k"});
    let sets: serde_json::Map<String, Value> = kind
        .link_sets()
        .iter()
        .map(|n| ((*n).to_owned(), json!({"k": link})))
        .collect();
    let links: serde_json::Map<String, Value> = kind
        .links()
        .iter()
        .map(|n| ((*n).to_owned(), link.clone()))
        .collect();
    let obj: T =
        serde_json::from_value(json!({"link-sets": sets, "links": links})).expect("decode");
    let out = serde_json::to_value(&obj).expect("encode");
    assert_eq!(
        out.get("link-sets").cloned(),
        (!sets.is_empty()).then_some(Value::Object(sets)),
        "{kind}"
    );
    assert_eq!(
        out.get("links").cloned(),
        (!links.is_empty()).then_some(Value::Object(links)),
        "{kind}"
    );
}

#[test]
fn link_member_names_match_the_wire() {
    check_links::<Tenant>();
    check_links::<Network>();
    check_links::<EndpointGroup>();
    check_links::<Policy>();
    check_links::<Rule>();
    check_links::<AppProfile>();
    check_links::<ServiceLb>();
    check_links::<NetProfile>();
    check_links::<Global>();
    check_links::<Bgp>();
    check_links::<AciGw>();
    check_links::<ExtContractsGroup>();
    check_links::<Endpoint>();
}
