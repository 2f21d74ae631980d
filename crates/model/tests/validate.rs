//! Validation tests: for every object, Contiv's messages for the key check and for each field's
//! too-long / bad-format / out-of-bound case, in Go's order, and the defaults Go fills.

use contiv_model::*;

/// Validates a clone of `obj` after `edit`, with the key recomputed (so only the field fails).
fn err_of<T: ModelObject>(obj: &T, edit: impl FnOnce(&mut T)) -> String {
    let mut o = obj.clone();
    edit(&mut o);
    let k = o.computed_key();
    o.set_key(k);
    match o.validate() {
        Ok(()) => "ok".to_owned(),
        Err(e) => e.to_string(),
    }
}

fn long(n: usize) -> String {
    "a".repeat(n)
}

/// Every valid object must validate, and a wrong key must say "Invalid Key" before anything.
fn check_key_and_ok<T: ModelObject>(mut obj: T) -> T {
    let good = obj.computed_key();
    obj.set_key(format!("{good}x"));
    assert_eq!(
        obj.clone().validate().map_err(|e| e.0),
        Err("Invalid Key".to_owned())
    );
    obj.set_key(good);
    assert_eq!(obj.validate(), Ok(()));
    obj
}

fn tenant() -> Tenant {
    Tenant {
        tenant_name: "t1".into(),
        ..Default::default()
    }
}

#[test]
fn tenant_validation() {
    let t = check_key_and_ok(tenant());
    assert_eq!(
        err_of(&t, |t| t.default_network = long(65)),
        "defaultNetwork string too long"
    );
    assert_eq!(
        err_of(&t, |t| t.default_network = "-bad".into()),
        "defaultNetwork string invalid format"
    );
    assert_eq!(err_of(&t, |t| t.default_network = long(64)), "ok");
    assert_eq!(
        err_of(&t, |t| t.tenant_name = long(65)),
        "tenantName string too long"
    );
    assert_eq!(
        err_of(&t, |t| t.tenant_name = "a_b".into()),
        "tenantName string invalid format"
    );
    assert_eq!(
        err_of(&t, |t| t.tenant_name = String::new()),
        "tenantName string invalid format"
    );
    assert_eq!(err_of(&t, |t| t.tenant_name = "a.b-c.D9".into()), "ok");
}

fn network() -> Network {
    Network {
        tenant_name: "t".into(),
        network_name: "n".into(),
        encap: "vlan".into(),
        subnet: "10.1.1.0/24".into(),
        ..Default::default()
    }
}

#[test]
fn network_validation_and_default() {
    let n = check_key_and_ok(network());
    assert_eq!(n.nw_type, "data", "nwType default");
    let n = network();
    assert_eq!(
        err_of(&n, |n| n.cfgd_tag = long(129)),
        "cfgdTag string too long"
    );
    assert_eq!(
        err_of(&n, |n| n.cfgd_tag = "a b".into()),
        "cfgdTag string invalid format"
    );
    assert_eq!(
        err_of(&n, |n| n.encap = String::new()),
        "encap string invalid format"
    );
    assert_eq!(
        err_of(&n, |n| n.encap = "gre".into()),
        "encap string invalid format"
    );
    assert_eq!(
        err_of(&n, |n| n.gateway = "10.1.1".into()),
        "gateway string invalid format"
    );
    assert_eq!(
        err_of(&n, |n| n.ipv6_gateway = "2001::g".into()),
        "ipv6Gateway string invalid format"
    );
    assert_eq!(
        err_of(&n, |n| n.ipv6_subnet = "2001::".into()),
        "ipv6Subnet string invalid format"
    );
    assert_eq!(err_of(&n, |n| n.ipv6_subnet = "2001::/100".into()), "ok");
    assert_eq!(
        err_of(&n, |n| n.network_name = long(65)),
        "networkName string too long"
    );
    assert_eq!(
        err_of(&n, |n| n.network_name = "n!".into()),
        "networkName string invalid format"
    );
    assert_eq!(
        err_of(&n, |n| n.nw_type = "mgmt".into()),
        "nwType string invalid format"
    );
    assert_eq!(err_of(&n, |n| n.nw_type = "infra".into()), "ok");
    assert_eq!(
        err_of(&n, |n| n.pkt_tag = 16_777_217),
        "pktTag Value Out of bound"
    );
    assert_eq!(err_of(&n, |n| n.pkt_tag = 16_777_216), "ok");
    assert_eq!(
        err_of(&n, |n| n.subnet = String::new()),
        "subnet string invalid format"
    );
    assert_eq!(
        err_of(&n, |n| n.subnet = "10.1.1.0/32".into()),
        "subnet string invalid format"
    );
    assert_eq!(
        err_of(&n, |n| n.subnet = "10.1.1.10-10.1.1.20/24".into()),
        "ok"
    );
    assert_eq!(
        err_of(&n, |n| n.tenant_name = long(65)),
        "tenantName string too long"
    );
    assert_eq!(
        err_of(&n, |n| n.tenant_name = "t_".into()),
        "tenantName string invalid format"
    );
    // Go's order: cfgdTag is reported before encap.
    assert_eq!(
        err_of(&n, |n| {
            n.cfgd_tag = "a b".into();
            n.encap = String::new()
        }),
        "cfgdTag string invalid format"
    );
}

fn epg() -> EndpointGroup {
    EndpointGroup {
        tenant_name: "t".into(),
        group_name: "web".into(),
        network_name: "n".into(),
        ..Default::default()
    }
}

#[test]
fn endpoint_group_validation() {
    let g = check_key_and_ok(epg());
    assert_eq!(
        err_of(&g, |g| g.cfgd_tag = long(129)),
        "cfgdTag string too long"
    );
    assert_eq!(
        err_of(&g, |g| g.cfgd_tag = "-x".into()),
        "cfgdTag string invalid format"
    );
    assert_eq!(
        err_of(&g, |g| g.group_name = long(65)),
        "groupName string too long"
    );
    assert_eq!(
        err_of(&g, |g| g.group_name = String::new()),
        "groupName string invalid format"
    );
    assert_eq!(
        err_of(&g, |g| g.ip_pool = "10.1.1.1-".into()),
        "ipPool string invalid format"
    );
    assert_eq!(err_of(&g, |g| g.ip_pool = "10.1.1.1-10.1.1.9".into()), "ok");
    assert_eq!(
        err_of(&g, |g| g.net_profile = long(65)),
        "netProfile string too long"
    );
    assert_eq!(err_of(&g, |g| g.net_profile = "any thing".into()), "ok");
    assert_eq!(
        err_of(&g, |g| g.network_name = long(65)),
        "networkName string too long"
    );
    assert_eq!(
        err_of(&g, |g| g.network_name = String::new()),
        "networkName string invalid format"
    );
    assert_eq!(
        err_of(&g, |g| g.tenant_name = long(65)),
        "tenantName string too long"
    );
    assert_eq!(
        err_of(&g, |g| g.tenant_name = ".".into()),
        "tenantName string invalid format"
    );
}

fn policy() -> Policy {
    Policy {
        tenant_name: "t".into(),
        policy_name: "p".into(),
        ..Default::default()
    }
}

#[test]
fn policy_validation() {
    let p = check_key_and_ok(policy());
    assert_eq!(
        err_of(&p, |p| p.policy_name = long(65)),
        "policyName string too long"
    );
    assert_eq!(
        err_of(&p, |p| p.policy_name = "p p".into()),
        "policyName string invalid format"
    );
    assert_eq!(
        err_of(&p, |p| p.tenant_name = long(65)),
        "tenantName string too long"
    );
    assert_eq!(
        err_of(&p, |p| p.tenant_name = "".into()),
        "tenantName string invalid format"
    );
}

fn rule() -> Rule {
    Rule {
        tenant_name: "t".into(),
        policy_name: "p".into(),
        rule_id: "1".into(),
        action: "allow".into(),
        direction: "in".into(),
        ..Default::default()
    }
}

#[test]
fn rule_validation_and_default() {
    let r = check_key_and_ok(rule());
    assert_eq!(r.priority, 1, "priority default");
    let r = rule();
    assert_eq!(
        err_of(&r, |r| r.action = "drop".into()),
        "action string invalid format"
    );
    assert_eq!(
        err_of(&r, |r| r.direction = "both".into()),
        "direction string invalid format"
    );
    assert_eq!(
        err_of(&r, |r| r.from_endpoint_group = long(65)),
        "fromEndpointGroup string too long"
    );
    assert_eq!(
        err_of(&r, |r| r.from_endpoint_group = "a b".into()),
        "fromEndpointGroup string invalid format"
    );
    assert_eq!(
        err_of(&r, |r| r.from_ip_address = "10.1.1.300".into()),
        "fromIpAddress string invalid format"
    );
    assert_eq!(
        err_of(&r, |r| r.from_ip_address = "10.1.1.1-20/24".into()),
        "ok"
    );
    assert_eq!(
        err_of(&r, |r| r.from_network = long(65)),
        "fromNetwork string too long"
    );
    assert_eq!(
        err_of(&r, |r| r.from_network = "a b".into()),
        "fromNetwork string invalid format"
    );
    assert_eq!(
        err_of(&r, |r| r.policy_name = long(65)),
        "policyName string too long"
    );
    assert_eq!(
        err_of(&r, |r| r.policy_name = "".into()),
        "policyName string invalid format"
    );
    assert_eq!(err_of(&r, |r| r.port = 65536), "port Value Out of bound");
    assert_eq!(err_of(&r, |r| r.port = -1), "port Value Out of bound");
    assert_eq!(err_of(&r, |r| r.port = 65535), "ok");
    assert_eq!(
        err_of(&r, |r| r.priority = -1),
        "priority Value Out of bound"
    );
    assert_eq!(
        err_of(&r, |r| r.priority = 101),
        "priority Value Out of bound"
    );
    assert_eq!(err_of(&r, |r| r.priority = 100), "ok");
}

#[test]
fn rule_validation_protocol_and_to_fields() {
    let r = rule();
    assert_eq!(
        err_of(&r, |r| r.protocol = "igmp".into()),
        "protocol string invalid format"
    );
    assert_eq!(
        err_of(&r, |r| r.protocol = "1234".into()),
        "protocol string invalid format"
    );
    assert_eq!(err_of(&r, |r| r.protocol = "icmp".into()), "ok");
    assert_eq!(err_of(&r, |r| r.protocol = "47".into()), "ok");
    assert_eq!(
        err_of(&r, |r| r.rule_id = long(65)),
        "ruleId string too long"
    );
    assert_eq!(
        err_of(&r, |r| r.rule_id = "".into()),
        "ruleId string invalid format"
    );
    assert_eq!(
        err_of(&r, |r| r.tenant_name = long(65)),
        "tenantName string too long"
    );
    assert_eq!(
        err_of(&r, |r| r.tenant_name = "*".into()),
        "tenantName string invalid format"
    );
    assert_eq!(
        err_of(&r, |r| r.to_endpoint_group = long(65)),
        "toEndpointGroup string too long"
    );
    assert_eq!(
        err_of(&r, |r| r.to_endpoint_group = "a b".into()),
        "toEndpointGroup string invalid format"
    );
    assert_eq!(
        err_of(&r, |r| r.to_ip_address = "1.2.3".into()),
        "toIpAddress string invalid format"
    );
    assert_eq!(
        err_of(&r, |r| r.to_network = long(65)),
        "toNetwork string too long"
    );
    assert_eq!(
        err_of(&r, |r| r.to_network = "a b".into()),
        "toNetwork string invalid format"
    );
}

#[test]
fn app_profile_validation() {
    let a = check_key_and_ok(AppProfile {
        tenant_name: "t".into(),
        app_profile_name: "a".into(),
        ..Default::default()
    });
    assert_eq!(
        err_of(&a, |a| a.app_profile_name = long(65)),
        "appProfileName string too long"
    );
    assert_eq!(
        err_of(&a, |a| a.app_profile_name = "".into()),
        "appProfileName string invalid format"
    );
    assert_eq!(
        err_of(&a, |a| a.tenant_name = long(65)),
        "tenantName string too long"
    );
    assert_eq!(
        err_of(&a, |a| a.tenant_name = "x y".into()),
        "tenantName string invalid format"
    );
}

#[test]
fn service_lb_validation() {
    let s = check_key_and_ok(ServiceLb {
        tenant_name: "t".into(),
        service_name: "s".into(),
        network_name: "n".into(),
        ..Default::default()
    });
    assert_eq!(
        err_of(&s, |s| s.ip_address = "100.100.100.1000".into()),
        "ipAddress string too long"
    );
    assert_eq!(
        err_of(&s, |s| s.ip_address = "10.1.1".into()),
        "ipAddress string invalid format"
    );
    assert_eq!(
        err_of(&s, |s| s.network_name = long(65)),
        "networkName string too long"
    );
    assert_eq!(
        err_of(&s, |s| s.network_name = "".into()),
        "networkName string invalid format"
    );
    assert_eq!(
        err_of(&s, |s| s.service_name = long(257)),
        "serviceName string too long"
    );
    assert_eq!(err_of(&s, |s| s.service_name = long(256)), "ok");
    assert_eq!(
        err_of(&s, |s| s.service_name = "s s".into()),
        "serviceName string invalid format"
    );
    assert_eq!(
        err_of(&s, |s| s.tenant_name = long(65)),
        "tenantName string too long"
    );
    assert_eq!(
        err_of(&s, |s| s.tenant_name = "".into()),
        "tenantName string invalid format"
    );
}

#[test]
fn net_profile_validation() {
    let p = check_key_and_ok(NetProfile {
        tenant_name: "t".into(),
        profile_name: "p".into(),
        ..Default::default()
    });
    assert_eq!(p.dscp, 0);
    assert_eq!(err_of(&p, |p| p.dscp = 64), "DSCP Value Out of bound");
    assert_eq!(err_of(&p, |p| p.dscp = -1), "DSCP Value Out of bound");
    assert_eq!(err_of(&p, |p| p.dscp = 63), "ok");
    assert_eq!(
        err_of(&p, |p| p.bandwidth = format!("1{}", "0".repeat(64))),
        "bandwidth string too long"
    );
    for bad in [
        "10",
        "0 kbps",
        "10 tbps",
        "10  kbps",
        "10kbps ",
        "10 Kbps10",
    ] {
        assert_eq!(
            err_of(&p, |p| p.bandwidth = bad.into()),
            "bandwidth string invalid format",
            "{bad}"
        );
    }
    for good in ["", "10 kbps", "100mbps", "1G", "5 Mb", "7gb", "3 K"] {
        assert_eq!(err_of(&p, |p| p.bandwidth = good.into()), "ok", "{good}");
    }
    assert_eq!(err_of(&p, |p| p.burst = 10487), "burst Value Out of bound");
    assert_eq!(err_of(&p, |p| p.burst = 10486), "ok");
    assert_eq!(
        err_of(&p, |p| p.profile_name = long(65)),
        "profileName string too long"
    );
    // Contiv checks neither profileName's nor tenantName's format here.
    assert_eq!(err_of(&p, |p| p.profile_name = "any name".into()), "ok");
    assert_eq!(err_of(&p, |p| p.tenant_name = long(100)), "ok");
}

fn global() -> Global {
    Global {
        name: "global".into(),
        pvt_subnet: "172.19.0.0/16".into(),
        vlans: "1-4094".into(),
        vxlans: "1-10000".into(),
        ..Default::default()
    }
}

#[test]
fn global_validation() {
    let g = check_key_and_ok(global());
    assert_eq!(
        err_of(&g, |g| g.arp_mode = long(65)),
        "arpMode string too long"
    );
    assert_eq!(
        err_of(&g, |g| g.arp_mode = "arp".into()),
        "arpMode string invalid format"
    );
    assert_eq!(
        err_of(&g, |g| g.fwd_mode = long(65)),
        "fwdMode string too long"
    );
    assert_eq!(
        err_of(&g, |g| g.fwd_mode = "nat".into()),
        "fwdMode string invalid format"
    );
    assert_eq!(err_of(&g, |g| g.name = long(65)), "name string too long");
    assert_eq!(
        err_of(&g, |g| g.name = "global2".into()),
        "name string invalid format"
    );
    assert_eq!(
        err_of(&g, |g| g.network_infra_type = long(65)),
        "networkInfraType string too long"
    );
    assert_eq!(
        err_of(&g, |g| g.network_infra_type = "aci-x".into()),
        "networkInfraType string invalid format"
    );
    assert_eq!(
        err_of(&g, |g| g.network_infra_type = "aci-opflex".into()),
        "ok"
    );
    assert_eq!(
        err_of(&g, |g| g.pvt_subnet = "172.19.0.0/24".into()),
        "pvtSubnet string invalid format"
    );
    assert_eq!(
        err_of(&g, |g| g.vlans = "1-4094,5".into()),
        "vlans string invalid format"
    );
    assert_eq!(
        err_of(&g, |g| g.vlans = "".into()),
        "vlans string invalid format"
    );
    assert_eq!(
        err_of(&g, |g| g.vxlans = "1-123456789".into()),
        "vxlans string invalid format"
    );
    assert_eq!(err_of(&g, |g| g.vxlans = "1-12345678".into()), "ok");
}

#[test]
fn bgp_validation() {
    let b = check_key_and_ok(Bgp {
        hostname: "h1".into(),
        routerip: "50.1.1.1/24".into(),
        ..Default::default()
    });
    assert_eq!(err_of(&b, |b| b.r#as = long(65)), "as string too long");
    assert_eq!(
        err_of(&b, |b| b.hostname = long(257)),
        "hostname string too long"
    );
    assert_eq!(
        err_of(&b, |b| b.hostname = "h_1".into()),
        "hostname string invalid format"
    );
    assert_eq!(
        err_of(&b, |b| b.neighbor = "1234.1234.1234.1".into()),
        "neighbor string too long"
    );
    assert_eq!(
        err_of(&b, |b| b.neighbor = "1.2.3".into()),
        "neighbor string invalid format"
    );
    assert_eq!(
        err_of(&b, |b| b.neighbor_as = long(65)),
        "neighbor-as string too long"
    );
    assert_eq!(
        err_of(&b, |b| b.routerip = "50.1.1.1".into()),
        "routerip string invalid format"
    );
    assert_eq!(err_of(&b, |b| b.routerip = "50.1.1.1-5/24".into()), "ok");
}

fn aci_gw() -> AciGw {
    AciGw {
        name: "aciGw".into(),
        enforce_policies: "yes".into(),
        include_common_tenant: "no".into(),
        physical_domain: "dom".into(),
        ..Default::default()
    }
}

#[test]
fn aci_gw_validation() {
    let a = check_key_and_ok(aci_gw());
    assert_eq!(
        err_of(&a, |a| a.enforce_policies = long(65)),
        "enforcePolicies string too long"
    );
    assert_eq!(
        err_of(&a, |a| a.enforce_policies = "".into()),
        "enforcePolicies string invalid format"
    );
    assert_eq!(
        err_of(&a, |a| a.include_common_tenant = long(65)),
        "includeCommonTenant string too long"
    );
    assert_eq!(
        err_of(&a, |a| a.include_common_tenant = "maybe".into()),
        "includeCommonTenant string invalid format"
    );
    assert_eq!(err_of(&a, |a| a.name = long(65)), "name string too long");
    assert_eq!(
        err_of(&a, |a| a.name = "acigw".into()),
        "name string invalid format"
    );
    assert_eq!(
        err_of(&a, |a| a.node_bindings = long(2049)),
        "nodeBindings string too long"
    );
    assert_eq!(
        err_of(&a, |a| a.node_bindings = "topology/pod-1/node-x".into()),
        "nodeBindings string invalid format"
    );
    assert_eq!(
        err_of(&a, |a| a.node_bindings =
            "topology/pod-1/node-101,topology/pod-1/node-102".into()),
        "ok"
    );
    assert_eq!(
        err_of(&a, |a| a.path_bindings = long(2049)),
        "pathBindings string too long"
    );
    assert_eq!(
        err_of(&a, |a| a.path_bindings =
            "topology/pod-1/paths-1/pathep-eth1/1".into()),
        "pathBindings string invalid format"
    );
    assert_eq!(
        err_of(&a, |a| a.physical_domain = long(129)),
        "physicalDomain string too long"
    );
    assert_eq!(
        err_of(&a, |a| a.physical_domain = "".into()),
        "physicalDomain string invalid format"
    );
}

#[test]
fn ext_contracts_group_validation() {
    let c = check_key_and_ok(ExtContractsGroup {
        tenant_name: "t".into(),
        contracts_group_name: "c".into(),
        ..Default::default()
    });
    assert_eq!(
        err_of(&c, |c| c.contracts_group_name = long(65)),
        "contractsGroupName string too long"
    );
    assert_eq!(
        err_of(&c, |c| c.contracts_group_name = "".into()),
        "contractsGroupName string invalid format"
    );
    assert_eq!(
        err_of(&c, |c| c.tenant_name = long(65)),
        "tenantName string too long"
    );
    assert_eq!(
        err_of(&c, |c| c.tenant_name = "a:b".into()),
        "tenantName string invalid format"
    );
    assert_eq!(err_of(&c, |c| c.contracts_type = "anything".into()), "ok");
}

#[test]
fn endpoint_key_only() {
    let e = check_key_and_ok(Endpoint::new("abc"));
    assert_eq!(e.computed_key(), "abc");
}

#[test]
fn computed_keys_join_key_fields_in_order() {
    assert_eq!(rule().computed_key(), "t:p:1");
    assert_eq!(network().computed_key(), "t:n");
    assert_eq!(global().computed_key(), "global");
    assert_eq!(
        Bgp {
            hostname: "h".into(),
            ..Default::default()
        }
        .computed_key(),
        "h"
    );
}
