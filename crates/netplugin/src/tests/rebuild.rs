//! The agent never destroys what it cannot account for: lost records are rebuilt from the
//! datapath and netmaster before any clean-up (`rebuild`), against the fakes.

use super::*;
use crate::records::Attachment;

/// netmaster's endpoints (the fake's) streamed into the agent's mirror, as netmaster would.
fn publish(e: &Env, revision: u64) {
    let changes =
        e.nm.eps
            .lock()
            .unwrap()
            .values()
            .map(|ep| kv(keys::endpoint(&ep.id), serde_json::to_value(ep).unwrap()))
            .collect();
    e.agent.mirror.apply(&AgentEvent {
        revision,
        changes,
        resync: false,
    });
}

/// Two workloads on `n`, published; then the agent restarts on a state dir whose journal is
/// gone. Returns the new agent and the records as the first agent had them.
fn restart_without_journal() -> (Env, Vec<Attachment>) {
    let e = env();
    e.agent.add(&add_req("c1", "n")).expect("add c1");
    e.agent.add(&add_req("c2", "n")).expect("add c2");
    publish(&e, 10);
    e.agent.reconcile();
    let before = e.agent.records.list();
    let (dp, nm, dir) = (e.dp.clone(), e.nm.clone(), e.dir);
    drop(e.agent);
    std::fs::remove_file(dir.path().join("state/attachments.log")).expect("delete journal");
    let e2 = agent_with(dp, nm, dir);
    publish(&e2, 11);
    (e2, before)
}

fn removals(calls: &[Call]) -> Vec<&Call> {
    calls
        .iter()
        .filter(|c| matches!(c, Call::RemoveLocalEndpoint(_) | Call::RemoveNetwork(_)))
        .collect()
}

#[test]
fn lost_records_of_running_workloads_are_adopted_and_del_still_works() {
    let (e, before) = restart_without_journal();
    assert!(e.agent.records.list().is_empty());
    let calls = e.dp.calls().len();
    let rep = e.agent.reconcile();
    assert!(rep.errors.is_empty(), "{:?}", rep.errors);
    assert_eq!((rep.adopted, rep.kept), (2, 0));
    assert_eq!(removals(&e.dp.calls()[calls..]), Vec::<&Call>::new());
    assert!(e.nm.deletes.lock().unwrap().is_empty(), "nothing released");
    // The records are what ADD wrote, but for the CNI network name and the creation time
    // nobody else keeps.
    let mut expected = before;
    expected.iter_mut().for_each(|a| {
        a.cni_network.clear();
        a.created = 0;
    });
    assert_eq!(e.agent.records.list(), expected);
    // A second pass has nothing to do.
    let rep = e.agent.reconcile();
    assert_eq!((rep.adopted, rep.plan.is_empty()), (0, true));
    // DEL of an adopted workload cleans up everything.
    e.agent.del(&del_req("c1", "n")).expect("del");
    assert!(e
        .dp
        .calls()
        .contains(&Call::RemoveLocalEndpoint("n.t-c1".into())));
    assert_eq!(*e.nm.deletes.lock().unwrap(), ["n.t-c1"]);
    assert_eq!(e.agent.records.list().len(), 1);
}

#[test]
fn interfaces_of_dead_workloads_without_records_are_removed_and_released() {
    let (e, _) = restart_without_journal();
    e.dead.lock().unwrap().insert("/run/netns/c2".into());
    let rep = e.agent.reconcile();
    assert!(rep.errors.is_empty(), "{:?}", rep.errors);
    assert_eq!(rep.adopted, 1);
    assert_eq!(
        rep.plan
            .orphans
            .iter()
            .map(|o| o.id.as_str())
            .collect::<Vec<_>>(),
        ["n.t-c2"]
    );
    assert_eq!(rep.netmaster_released, 1);
    assert_eq!(*e.nm.deletes.lock().unwrap(), ["n.t-c2"]);
    let left: Vec<_> = e.dp.observe().unwrap().local_endpoints;
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].id, "n.t-c1");
}

#[test]
fn live_interfaces_netmaster_does_not_know_are_kept_with_their_network() {
    let e = env();
    e.agent.add(&add_req("c1", "n")).expect("add");
    e.agent.reconcile();
    e.agent
        .records
        .remove(&("c1".into(), "eth0".into()))
        .unwrap();
    // The mirror has no endpoint of c1 (never published): it cannot be adopted.
    let calls = e.dp.calls().len();
    let rep = e.agent.reconcile();
    assert_eq!((rep.adopted, rep.kept), (0, 1));
    assert_eq!(removals(&e.dp.calls()[calls..]), Vec::<&Call>::new());
    assert_eq!(e.dp.observe().unwrap().local_endpoints.len(), 1);
    // What the datapath keeps per endpoint (source guard) is not re-synced while an interface
    // without a record is kept: it would lose its own.
    let resyncs = |from: usize| -> Vec<Call> {
        e.dp.calls()[from..]
            .iter()
            .filter(|c| matches!(c, Call::ResyncLocalEndpoints(_)))
            .cloned()
            .collect()
    };
    assert_eq!(resyncs(calls), Vec::<Call>::new());
    // Once netmaster's endpoint arrives, it is adopted; kicked passes ignored it meanwhile.
    assert!(e.agent.reconcile_changes().errors.is_empty());
    publish(&e, 12);
    let calls = e.dp.calls().len();
    assert_eq!(e.agent.reconcile().adopted, 1);
    assert!(e.nm.deletes.lock().unwrap().is_empty());
    // Every interface accounted for: re-synced from the records, the adopted one included.
    assert_eq!(
        resyncs(calls),
        [Call::ResyncLocalEndpoints(vec!["n.t-c1".into()])]
    );
}

#[test]
fn nothing_is_cleaned_up_when_the_workload_ends_or_netmaster_cannot_be_read() {
    let (e, _) = restart_without_journal();
    e.dead.lock().unwrap().insert("/run/netns/c2".into());
    e.dp.fail_next("workload_ends");
    let calls = e.dp.calls().len();
    let rep = e.agent.reconcile();
    assert_eq!(rep.errors.len(), 1, "{:?}", rep.errors);
    assert_eq!(removals(&e.dp.calls()[calls..]), Vec::<&Call>::new());
    assert_eq!(rep.netmaster_released, 0);
    // netmaster unreachable (its state possibly stale): same.
    e.agent.link.fail();
    let rep = e.agent.reconcile();
    assert_eq!((rep.adopted, rep.netmaster_released), (0, 0));
    assert_eq!(removals(&e.dp.calls()[calls..]), Vec::<&Call>::new());
    assert!(e.nm.deletes.lock().unwrap().is_empty());
    // Back: c1 adopted, c2 (dead) removed and released.
    e.agent.link.ok();
    let rep = e.agent.reconcile();
    assert_eq!((rep.adopted, rep.netmaster_released), (1, 1));
}

#[test]
fn a_record_whose_namespace_path_is_gone_follows_its_workload() {
    let e = env();
    e.agent.add(&add_req("c1", "n")).expect("add");
    e.agent.reconcile();
    // The runtime's path is gone, but the datapath finds the workload alive elsewhere.
    e.dead.lock().unwrap().insert("/run/netns/c1".into());
    let a = e.agent.records.list().remove(0);
    let mut ep = crate::agent::local_endpoint(&a).unwrap();
    ep.netns_path = "/proc/4242/ns/net".into();
    e.dp.add_local_endpoint(&ep)
        .expect("re-plug at the new path");
    let rep = e.agent.reconcile();
    assert_eq!(rep.stale_released, 0, "{rep:?}");
    assert_eq!(e.agent.records.list()[0].netns, "/proc/4242/ns/net");
    // Gone there too: released.
    e.dead.lock().unwrap().insert("/proc/4242/ns/net".into());
    assert_eq!(e.agent.reconcile().stale_released, 1);
    assert!(e.dp.observe().unwrap().local_endpoints.is_empty());
}

/// netmaster no longer holds endpoint `id` (the fake's and the mirror's view, at `revision`).
fn gone_at_netmaster(e: &Env, id: &str, revision: u64) {
    e.nm.eps.lock().unwrap().remove(id);
    e.agent.mirror.apply(&AgentEvent {
        revision,
        changes: vec![KvChange {
            key: keys::endpoint(id),
            value: None,
        }],
        resync: false,
    });
}

/// netmaster lost this host's endpoints (it reclaimed the node after a long silence) while the
/// workloads kept running: the next full pass announces them again, with their addresses.
#[test]
fn running_workloads_netmaster_lost_are_announced_again() {
    let e = env();
    e.agent.add(&add_req("c1", "n")).expect("add c1");
    publish(&e, 10);
    assert_eq!(e.agent.reconcile().reannounced, 0);
    let ip = e.agent.records.list()[0].ip.clone();
    // netmaster reclaims the endpoint; the agent's mirror follows.
    gone_at_netmaster(&e, "n.t-c1", 11);
    let calls = e.dp.calls().len();
    let rep = e.agent.reconcile();
    assert!(rep.errors.is_empty(), "{:?}", rep.errors);
    assert_eq!(rep.reannounced, 1);
    assert_eq!(removals(&e.dp.calls()[calls..]), Vec::<&Call>::new());
    let eps = e.nm.eps.lock().unwrap();
    let ep = eps.get("n.t-c1").expect("announced again");
    assert_eq!(ep.homing_host, "h1");
    assert_eq!(e.agent.records.list()[0].ip, ip, "the record is unchanged");
}

/// A Ready record whose interface is gone and whose endpoint netmaster does not hold (its DEL's
/// journal lines were lost) is forgotten, not plugged again with an address netmaster freed.
#[test]
fn a_record_with_neither_interface_nor_endpoint_is_forgotten_not_replugged() {
    let e = env();
    e.agent.add(&add_req("c1", "n")).expect("add c1");
    e.agent.add(&add_req("c2", "n")).expect("add c2");
    publish(&e, 10);
    e.agent.reconcile();
    // c1 was deleted everywhere but in the (damaged) journal.
    let c1 = e
        .agent
        .records
        .list()
        .into_iter()
        .find(|a| a.container_id == "c1")
        .expect("c1 record");
    let ep = crate::agent::local_endpoint(&c1).expect("endpoint");
    e.dp.remove_local_endpoint(&ep).expect("unplug");
    gone_at_netmaster(&e, "n.t-c1", 11);
    let calls = e.dp.calls().len();
    let rep = e.agent.reconcile();
    assert!(rep.errors.is_empty(), "{:?}", rep.errors);
    assert_eq!((rep.forgotten, rep.reannounced), (1, 0));
    assert!(rep.plan.replug.is_empty(), "{:?}", rep.plan.replug);
    assert!(
        !e.dp.calls()[calls..]
            .iter()
            .any(|c| matches!(c, Call::AddLocalEndpoint(_))),
        "nothing plugged again"
    );
    assert_eq!(recorded(&e), ["c2"]);
}
