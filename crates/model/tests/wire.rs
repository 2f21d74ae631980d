//! Wire-format tests: JSON as Contiv's Go server produces it (written from the Go struct tags:
//! declaration order, `omitempty`, structs never omitted) decodes and re-encodes byte for byte,
//! and decoding accepts what Go's `encoding/json` accepts.

use contiv_model::*;
use serde::de::DeserializeOwned;
use serde::Serialize;

/// Decodes `json` as `T` and checks it re-encodes to exactly the same text.
fn roundtrip<T: Serialize + DeserializeOwned>(json: &str) -> T {
    let v: T = match serde_json::from_str(json) {
        Ok(v) => v,
        Err(e) => panic!("decode {json}: {e}"),
    };
    let out = serde_json::to_string(&v).unwrap_or_default();
    assert_eq!(out, json);
    v
}

fn encode<T: Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

#[test]
fn zero_objects_encode_like_go() {
    assert_eq!(encode(&Tenant::default()), r#"{"link-sets":{}}"#);
    assert_eq!(
        encode(&Network::default()),
        r#"{"link-sets":{},"links":{"Tenant":{}}}"#
    );
    assert_eq!(
        encode(&EndpointGroup::default()),
        r#"{"link-sets":{},"links":{"AppProfile":{},"NetProfile":{},"Network":{},"Tenant":{}}}"#
    );
    assert_eq!(
        encode(&Policy::default()),
        r#"{"link-sets":{},"links":{"Tenant":{}}}"#
    );
    assert_eq!(
        encode(&Rule::default()),
        r#"{"link-sets":{},"links":{"MatchEndpointGroup":{}}}"#
    );
    assert_eq!(
        encode(&AppProfile::default()),
        r#"{"link-sets":{},"links":{"Tenant":{}}}"#
    );
    assert_eq!(
        encode(&ServiceLb::default()),
        r#"{"links":{"Network":{},"Tenant":{}}}"#
    );
    assert_eq!(
        encode(&NetProfile::default()),
        r#"{"link-sets":{},"links":{"Tenant":{}}}"#
    );
    assert_eq!(encode(&ExtContractsGroup::default()), r#"{"link-sets":{}}"#);
    assert_eq!(encode(&Global::default()), "{}");
    assert_eq!(encode(&Bgp::default()), "{}");
    assert_eq!(encode(&AciGw::default()), "{}");
    assert_eq!(encode(&EndpointOper::default()), "{}");
    assert_eq!(encode(&Link::default()), "{}");
}

#[test]
fn tenant_roundtrip() {
    let t: Tenant = roundtrip(concat!(
        r#"{"key":"t1","defaultNetwork":"net1","tenantName":"t1","link-sets":{"#,
        r#""AppProfiles":{"t1:app":{"type":"appProfile","key":"t1:app"}},"#,
        r#""EndpointGroups":{"t1:a":{"type":"endpointGroup","key":"t1:a"},"t1:b":{"type":"endpointGroup","key":"t1:b"}},"#,
        r#""NetProfiles":{"t1:p":{"type":"netprofile","key":"t1:p"}},"#,
        r#""Networks":{"t1:net1":{"type":"network","key":"t1:net1"}},"#,
        r#""Policies":{"t1:pol":{"type":"policy","key":"t1:pol"}},"#,
        r#""Servicelbs":{"t1:lb":{"type":"serviceLB","key":"t1:lb"}},"#,
        r#""VolumeProfiles":{"t1:vp":{"type":"volumeProfile","key":"t1:vp"}},"#,
        r#""Volumes":{"t1:v":{"type":"volume","key":"t1:v"}}}}"#
    ));
    assert_eq!(t.link_sets.endpoint_groups.len(), 2);
    assert_eq!(
        t.link_sets.networks["t1:net1"],
        Link::new(ObjectKind::Network, "t1:net1")
    );
}

#[test]
fn network_roundtrip() {
    let n: Network = roundtrip(concat!(
        r#"{"key":"default:net1","cfgdTag":"tag1","encap":"vxlan","gateway":"10.1.1.254","#,
        r#""ipv6Gateway":"2001::1","ipv6Subnet":"2001::/100","networkName":"net1","nwType":"data","#,
        r#""pktTag":1000,"subnet":"10.1.1.0/24","tenantName":"default","#,
        r#""link-sets":{"EndpointGroups":{"default:web":{"type":"endpointGroup","key":"default:web"}},"#,
        r#""Servicelbs":{"default:lb":{"type":"serviceLB","key":"default:lb"}},"#,
        r#""Services":{"default:svc":{"type":"serviceLB","key":"default:svc"}}},"#,
        r#""links":{"Tenant":{"type":"tenant","key":"default"}}}"#
    ));
    assert_eq!(n.pkt_tag, 1000);
    assert_eq!(n.ipv6_gateway, "2001::1");
    assert_eq!(n.links.tenant.obj_key, "default");
}

#[test]
fn endpoint_group_roundtrip() {
    let g: EndpointGroup = roundtrip(concat!(
        r#"{"key":"t:web","cfgdTag":"web-tag","extContractsGrps":["c1","c2"],"groupName":"web","#,
        r#""ipPool":"10.1.1.10-10.1.1.20","netProfile":"gold","networkName":"net1","#,
        r#""policies":["p1"],"tenantName":"t","#,
        r#""link-sets":{"ExtContractsGrps":{"t:c1":{"type":"extContractsGroup","key":"t:c1"}},"#,
        r#""MatchRules":{"t:p1:1":{"type":"rule","key":"t:p1:1"}},"#,
        r#""Policies":{"t:p1":{"type":"policy","key":"t:p1"}},"#,
        r#""Services":{"t:s":{"type":"serviceLB","key":"t:s"}}},"#,
        r#""links":{"AppProfile":{"type":"appProfile","key":"t:app"},"#,
        r#""NetProfile":{"type":"netprofile","key":"t:gold"},"#,
        r#""Network":{"type":"network","key":"t:net1"},"Tenant":{"type":"tenant","key":"t"}}}"#
    ));
    assert_eq!(g.ext_contracts_grps, vec!["c1", "c2"]);
    assert_eq!(g.links.app_profile.obj_type, "appProfile");
}

#[test]
fn policy_and_rule_roundtrip() {
    roundtrip::<Policy>(concat!(
        r#"{"key":"t:p","policyName":"p","tenantName":"t","#,
        r#""link-sets":{"EndpointGroups":{"t:web":{"type":"endpointGroup","key":"t:web"}},"#,
        r#""Rules":{"t:p:1":{"type":"rule","key":"t:p:1"}}},"#,
        r#""links":{"Tenant":{"type":"tenant","key":"t"}}}"#
    ));
    let r: Rule = roundtrip(concat!(
        r#"{"key":"t:p:1","action":"allow","direction":"in","fromEndpointGroup":"web","#,
        r#""fromIpAddress":"10.1.1.0/24","fromNetwork":"net1","policyName":"p","port":80,"#,
        r#""priority":10,"protocol":"tcp","ruleId":"1","tenantName":"t","toEndpointGroup":"db","#,
        r#""toIpAddress":"10.2.2.2","toNetwork":"net2","#,
        r#""link-sets":{"Policies":{"t:p":{"type":"policy","key":"t:p"}}},"#,
        r#""links":{"MatchEndpointGroup":{"type":"endpointGroup","key":"t:db"}}}"#
    ));
    assert_eq!((r.port, r.priority), (80, 10));
}

#[test]
fn app_profile_netprofile_ecg_roundtrip() {
    roundtrip::<AppProfile>(concat!(
        r#"{"key":"t:app","appProfileName":"app","endpointGroups":["web","db"],"tenantName":"t","#,
        r#""link-sets":{"EndpointGroups":{"t:web":{"type":"endpointGroup","key":"t:web"}}},"#,
        r#""links":{"Tenant":{"type":"tenant","key":"t"}}}"#
    ));
    let p: NetProfile = roundtrip(concat!(
        r#"{"key":"t:gold","DSCP":10,"bandwidth":"10 mbps","burst":100,"profileName":"gold","#,
        r#""tenantName":"t","link-sets":{"EndpointGroups":{"t:web":{"type":"endpointGroup","key":"t:web"}}},"#,
        r#""links":{"Tenant":{"type":"tenant","key":"t"}}}"#
    ));
    assert_eq!(p.dscp, 10);
    roundtrip::<ExtContractsGroup>(concat!(
        r#"{"key":"t:c","contracts":["uni/tn-t/brc-x"],"contractsGroupName":"c","#,
        r#""contractsType":"provided","tenantName":"t","#,
        r#""link-sets":{"EndpointGroups":{"t:web":{"type":"endpointGroup","key":"t:web"}}}}"#
    ));
}

#[test]
fn service_lb_global_bgp_acigw_roundtrip() {
    roundtrip::<ServiceLb>(concat!(
        r#"{"key":"t:lb","ipAddress":"10.1.1.100","networkName":"net1","#,
        r#""ports":["80:8080:TCP"],"selectors":["app=web"],"serviceName":"lb","tenantName":"t","#,
        r#""links":{"Network":{"type":"network","key":"t:net1"},"Tenant":{"type":"tenant","key":"t"}}}"#
    ));
    roundtrip::<Global>(concat!(
        r#"{"key":"global","arpMode":"proxy","fwdMode":"bridge","name":"global","#,
        r#""networkInfraType":"default","pvtSubnet":"172.19.0.0/16","vlans":"1-4094","vxlans":"1-10000"}"#
    ));
    let b: Bgp = roundtrip(concat!(
        r#"{"key":"host1","as":"65002","hostname":"host1","neighbor":"50.1.1.2","#,
        r#""neighbor-as":"500","routerip":"50.1.1.1/24"}"#
    ));
    assert_eq!((b.r#as.as_str(), b.neighbor_as.as_str()), ("65002", "500"));
    roundtrip::<AciGw>(concat!(
        r#"{"key":"aciGw","enforcePolicies":"yes","includeCommonTenant":"no","name":"aciGw","#,
        r#""nodeBindings":"topology/pod-1/node-101","#,
        r#""pathBindings":"topology/pod-1/paths-101/pathep-[eth1/14]","physicalDomain":"dom1"}"#
    ));
}

const EP: &str = concat!(
    r#"{"key":"ep1","containerID":"c0ffee","containerName":"web1","endpointGroupId":3,"#,
    r#""endpointGroupKey":"web:t","endpointID":"ep1","homingHost":"host1","intfName":"vport1","#,
    r#""ipAddress":["10.1.1.2","2001::2"],"labels":"map[app:web]","macAddress":"02:02:0a:01:01:02","#,
    r#""network":"net1.t","serviceName":"web","virtualPort":"vport1","vtepIP":"192.168.2.10"}"#
);

#[test]
fn oper_roundtrip() {
    let ep: EndpointOper = roundtrip(EP);
    assert_eq!(ep.endpoint_group_id, 3);
    roundtrip::<NetworkOper>(&format!(
        r#"{{"allocatedAddressesCount":2,"allocatedIPAddresses":"10.1.1.1-10.1.1.2","availableIPAddresses":"10.1.1.3-10.1.1.254","endpoints":[{EP}],"externalPktTag":1,"networkTag":"tag","numEndpoints":1,"pktTag":1}}"#
    ));
    roundtrip::<EndpointGroupOper>(&format!(
        r#"{{"allocatedIPAddresses":"10.1.1.2","availableIPAddresses":"10.1.1.3","endpoints":[{EP}],"externalPktTag":5,"groupTag":"web","numEndpoints":1,"pktTag":4}}"#
    ));
    roundtrip::<PolicyOper>(&format!(
        r#"{{"endpoints":[{EP}],"numEndpoints":1,"policyViolations":2}}"#
    ));
    roundtrip::<ServiceLbOper>(&format!(
        r#"{{"numProviders":1,"providers":[{EP}],"serviceVip":"10.1.1.100"}}"#
    ));
    roundtrip::<GlobalOper>(
        r#"{"clusterMode":"kubernetes","defaultNetwork":"net1","freeVXLANsStart":2,"numNetworks":3,"vlansInUse":"1-2","vxlansInUse":"1"}"#,
    );
    roundtrip::<BgpOper>(
        r#"{"adminStatus":"up","neighborStatus":"established","numRoutes":2,"routes":["10.1.1.0/24","10.2.2.0/24"]}"#,
    );
    roundtrip::<AciGwOper>(r#"{"numAppProfiles":1}"#);
    roundtrip::<TenantOper>(&format!(
        r#"{{"endpointGroups":[{{"groupTag":"g","numEndpoints":1}}],"endpoints":[{EP}],"networks":[{{"pktTag":1}}],"policies":[{{"numEndpoints":1}}],"servicelbs":[{{"serviceVip":"1.1.1.1"}}],"totalAppProfiles":1,"totalEPGs":2,"totalEndpoints":3,"totalNetprofiles":4,"totalNetworks":5,"totalPolicies":6,"totalServicelbs":7}}"#
    ));
}

#[test]
fn inspect_envelopes_follow_go_struct_shapes() {
    let i: Inspect<Network> = roundtrip(
        r#"{"Config":{"key":"t:n","link-sets":{},"links":{"Tenant":{}}},"Oper":{"pktTag":3}}"#,
    );
    assert_eq!(i.oper.pkt_tag, 3);
    roundtrip::<Inspect<Global>>(r#"{"Config":{},"Oper":{}}"#);
    // No Oper member in Go for these.
    roundtrip::<Inspect<Rule>>(
        r#"{"Config":{"key":"t:p:1","link-sets":{},"links":{"MatchEndpointGroup":{}}}}"#,
    );
    roundtrip::<Inspect<AppProfile>>(r#"{"Config":{"link-sets":{},"links":{"Tenant":{}}}}"#);
    roundtrip::<Inspect<NetProfile>>(r#"{"Config":{"link-sets":{},"links":{"Tenant":{}}}}"#);
    roundtrip::<Inspect<ExtContractsGroup>>(r#"{"Config":{"link-sets":{}}}"#);
    // No Config member for endpoints.
    let e: Inspect<Endpoint> = roundtrip(&format!(r#"{{"Oper":{EP}}}"#));
    assert_eq!(e.oper.endpoint_id, "ep1");
}

#[test]
fn decoding_accepts_what_go_accepts() {
    // Unknown members ignored, null means "leave zero", names matched case-insensitively.
    let n: Network = serde_json::from_str(
        r#"{"KEY":"t:n","TenantName":"t","networkname":"n","pktTag":null,"bogus":[1,2],"links":null,"link-sets":{"EndpointGroups":null}}"#,
    )
    .unwrap_or_default();
    assert_eq!(
        (
            n.key.as_str(),
            n.tenant_name.as_str(),
            n.network_name.as_str()
        ),
        ("t:n", "t", "n")
    );
    assert_eq!(n.pkt_tag, 0);
    // A member given twice is refused (Go: last wins), by exact or folded name, also when
    // unknown or null; the message names it.
    for body in [
        r#"{"tenantName":"a","tenantName":"b"}"#,
        r#"{"tenantName":"a","TENANTNAME":"c"}"#,
        r#"{"tenantName":null,"tenantName":"b"}"#,
        r#"{"bogus":1,"tenantName":"a","bogus":2}"#,
    ] {
        let err = serde_json::from_str::<Tenant>(body)
            .map(|_| ())
            .unwrap_err();
        assert!(
            err.to_string().contains("duplicate member"),
            "{body}: {err}"
        );
    }
    let err = serde_json::from_str::<Tenant>(r#"{"TenantName":"a","tenantName":"b"}"#)
        .map(|_| ())
        .unwrap_err();
    assert!(err.to_string().contains("\"tenantName\""), "{err}");
    // `null` body decodes to the zero object; `{}` too.
    assert_eq!(
        serde_json::from_str::<Rule>("null").ok(),
        Some(Rule::default())
    );
    assert_eq!(
        serde_json::from_str::<Rule>("{}").ok(),
        Some(Rule::default())
    );
    // Link type/key case-insensitive too.
    let l: Link = serde_json::from_str(r#"{"Type":"tenant","KEY":"t"}"#).unwrap_or_default();
    assert_eq!(l, Link::new(ObjectKind::Tenant, "t"));
    // Go has no "as" vs "As" ambiguity issue: exact name preferred.
    let b: Bgp = serde_json::from_str(r#"{"As":"1","neighbor-As":"2"}"#).unwrap_or_default();
    assert_eq!((b.r#as.as_str(), b.neighbor_as.as_str()), ("1", "2"));
}

#[test]
fn decoding_rejects_what_go_rejects() {
    assert!(serde_json::from_str::<Network>(r#"{"pktTag":"10"}"#).is_err());
    assert!(serde_json::from_str::<Network>(r#"{"pktTag":1.5}"#).is_err());
    assert!(serde_json::from_str::<Network>(r#"{"tenantName":5}"#).is_err());
    assert!(serde_json::from_str::<Network>(r#"[]"#).is_err());
    assert!(serde_json::from_str::<Network>(r#""x""#).is_err());
}

#[test]
fn negative_ints_survive() {
    let p: NetProfile = roundtrip(r#"{"DSCP":-1,"burst":-5,"link-sets":{},"links":{"Tenant":{}}}"#);
    assert_eq!((p.dscp, p.burst), (-1, -5));
}
