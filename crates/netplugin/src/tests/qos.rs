//! Netprofiles against the fakes: an ADD in a group with a profile starts limited and marked; a
//! profile changed, detached, attached or deleted applies to the running endpoint on the next
//! pass; passes with nothing new change nothing; a tenant that left is forgotten.

use contiv_datapath::RateLimit;

use super::*;

fn event(revision: u64, changes: Vec<KvChange>) -> AgentEvent {
    AgentEvent {
        revision,
        changes,
        resync: false,
    }
}

fn profile(bandwidth: &str, dscp: i64) -> KvChange {
    kv(
        keys::object(ObjectKind::NetProfile, "t:gold"),
        json!({"tenantName":"t","profileName":"gold","bandwidth":bandwidth,"DSCP":dscp}),
    )
}

fn db_group(net_profile: &str) -> KvChange {
    kv(
        keys::object(ObjectKind::EndpointGroup, "t:db"),
        json!({"tenantName":"t","groupName":"db","networkName":"n","netProfile":net_profile}),
    )
}

#[test]
fn netprofile_follows_adds_changes_and_detachment() {
    let e = env();
    e.agent
        .mirror
        .apply(&event(4, vec![profile("10mbps", 46), db_group("gold")]));
    let r = e.agent.add(&add_in_db()).expect("add");
    let id = r.endpoint_id.expect("endpoint id");
    let q = e.qos.endpoint(&id).expect("applied during the ADD");
    assert_eq!(
        (q.limit, q.dscp),
        (Some(RateLimit::new(10_000_000, None)), Some(46))
    );
    assert_eq!(q.netns_path, Path::new("/run/netns/c1"));
    assert_eq!(e.qos.calls(), [("t".to_string(), 1)]);

    // Nothing new: the driver is asked, changes nothing.
    e.agent.enforce_qos();
    assert_eq!(e.qos.calls().last(), Some(&("t".to_string(), 0)));

    // The profile edited: live.
    e.agent.mirror.apply(&event(5, vec![profile("1gbps", 0)]));
    assert_eq!(e.agent.enforce_qos().changed, 1);
    let q = e.qos.endpoint(&id).expect("applied");
    assert_eq!(
        (q.limit.map(|l| l.bits_per_sec), q.dscp),
        (Some(1_000_000_000), None)
    );

    // Detached from the group: nothing enforced any more; attached again: back.
    e.agent.mirror.apply(&event(6, vec![db_group("")]));
    assert_eq!(e.agent.enforce_qos().changed, 1);
    assert!(!e.qos.endpoint(&id).expect("listed").is_set());
    e.agent.mirror.apply(&event(7, vec![db_group("gold")]));
    assert_eq!(e.agent.enforce_qos().changed, 1);
    assert!(e.qos.endpoint(&id).expect("listed").is_set());

    // The workload leaves: its tenant is forgotten by the next full pass.
    e.agent.del(&del_req("c1", "n")).expect("del");
    e.agent.enforce_qos();
    assert!(e.qos.applied("t").is_none(), "tenant t forgotten");
}

#[test]
fn endpoint_without_group_or_profile_gets_nothing() {
    let e = env();
    let r = e.agent.add(&add_req("c1", "n")).expect("add");
    let id = r.endpoint_id.expect("endpoint id");
    assert!(!e.qos.endpoint(&id).expect("listed").is_set());
    assert_eq!(e.agent.enforce_qos().changed, 0);
}
