//! Unit tests of the agent's logic against `FakeDatapath` and an in-memory fake netmaster.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::ops::ControlFlow;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use contiv_api::agent::{AgentEvent, AgentSnapshot, KvChange, NodeInfo};
use contiv_api::keys;
use contiv_api::plugin::{
    AllocAddressRequest, AllocAddressResponse, CreateEndpointRequest, DeleteEndpointRequest,
    ReleaseAddressRequest,
};
use contiv_api::policy::PolicyReport;
use contiv_api::EndpointState;
use contiv_cni::agent_api::{AgentAddRequest, AgentDelRequest, AttachmentIdentity};
use contiv_cni::error::codes;
use contiv_datapath::fake::{Call, FakeDatapath, FakePolicy, FakeQos};
use contiv_datapath::{Datapath, FwdMode};
use contiv_model::ObjectKind;
use serde_json::json;

use crate::agent::{Agent, Parts, Settings};
use crate::follow::{follow, Link, Stop};
use crate::mirror::{Mirror, SharedMirror};
use crate::netmaster::{Netmaster, NmError, WatchEnd};
use crate::records::{Phase, RecordStore};

mod cnm;
mod qos;
mod rebuild;

const HOST: &str = "h1";

/// netmaster in memory: endpoints by id, addresses from 10.1.<net>.2 up, scripted watch.
#[derive(Default)]
struct FakeNm {
    eps: Mutex<BTreeMap<String, EndpointState>>,
    deletes: Mutex<Vec<String>>,
    down: AtomicBool,
    snapshots: Mutex<VecDeque<AgentSnapshot>>,
    watches: Mutex<VecDeque<(Vec<AgentEvent>, WatchEnd)>>,
    watched_from: Mutex<Vec<u64>>,
    reports: Mutex<Vec<PolicyReport>>,
    /// The revision createEndpoint answers with.
    answer_revision: std::sync::atomic::AtomicU64,
    /// Addresses reserved by allocAddress and not claimed, `network.tenant/ip`.
    allocs: Mutex<BTreeSet<String>>,
}

impl FakeNm {
    fn check_up(&self) -> Result<(), NmError> {
        if self.down.load(Ordering::SeqCst) {
            return Err(NmError::Unreachable {
                url: "fake".into(),
                reason: "down".into(),
            });
        }
        Ok(())
    }
}

impl Netmaster for FakeNm {
    fn register_node(&self, _: &NodeInfo) -> Result<(), NmError> {
        self.check_up()
    }
    fn snapshot(&self) -> Result<AgentSnapshot, NmError> {
        self.check_up()?;
        self.snapshots
            .lock()
            .unwrap()
            .pop_front()
            .ok_or(NmError::Unreachable {
                url: "fake".into(),
                reason: "no more snapshots".into(),
            })
    }
    fn watch(&self, after: u64, f: &mut dyn FnMut(AgentEvent) -> ControlFlow<()>) -> WatchEnd {
        self.watched_from.lock().unwrap().push(after);
        let Some((evs, end)) = self.watches.lock().unwrap().pop_front() else {
            return WatchEnd::Stopped;
        };
        for ev in evs {
            if f(ev).is_break() {
                return WatchEnd::Stopped;
            }
        }
        end
    }
    fn create_endpoint(&self, r: &CreateEndpointRequest) -> Result<(EndpointState, u64), NmError> {
        self.check_up()?;
        let id = format!(
            "{}.{}-{}",
            r.network_name, r.tenant_name, r.config_ep.container
        );
        let mut eps = self.eps.lock().unwrap();
        let third = if r.network_name == "n2" { 2 } else { 1 };
        let n = eps.len() as u8 + 2;
        let ip = match r.config_ep.ip_address.as_str() {
            "" => format!("10.{third}.0.{n}"),
            ip => ip.to_string(),
        };
        let net_id = format!("{}.{}", r.network_name, r.tenant_name);
        self.allocs
            .lock()
            .unwrap()
            .remove(&format!("{net_id}/{ip}"));
        let ep = eps.entry(id.clone()).or_insert_with(|| EndpointState {
            id,
            ip_address: ip,
            mac_address: format!("02:02:0a:{third:02x}:00:{n:02x}"),
            homing_host: r.config_ep.host.clone(),
            vtep_ip: r.config_ep.vtep_ip.clone(),
            tenant_name: r.tenant_name.clone(),
            network_name: r.network_name.clone(),
            endpoint_id: r.config_ep.container.clone(),
            intf_name: r.config_ep.intf_name.clone(),
            container_id: r.config_ep.container_id.clone(),
            service_name: r.config_ep.service_name.clone(),
            ..Default::default()
        });
        Ok((ep.clone(), self.answer_revision.load(Ordering::SeqCst)))
    }
    fn delete_endpoint(&self, r: &DeleteEndpointRequest) -> Result<(), NmError> {
        self.check_up()?;
        let id = format!("{}.{}-{}", r.network_name, r.tenant_name, r.endpoint_id);
        self.eps.lock().unwrap().remove(&id);
        self.deletes.lock().unwrap().push(id);
        Ok(())
    }
    fn policy_report(&self, r: &PolicyReport) -> Result<(), NmError> {
        self.check_up()?;
        self.reports.lock().unwrap().push(r.clone());
        Ok(())
    }
    /// From 10.<net>.0.100 up; the group part of the id (`net:group.tenant`) is dropped.
    fn alloc_address(&self, r: &AllocAddressRequest) -> Result<AllocAddressResponse, NmError> {
        self.check_up()?;
        let net_id = match r.network_id.split_once(':') {
            Some((net, gt)) => format!("{net}.{}", gt.rsplit_once('.').map_or(gt, |(_, t)| t)),
            None => r.network_id.clone(),
        };
        let third = if net_id.starts_with("n2.") { 2 } else { 1 };
        let mut allocs = self.allocs.lock().unwrap();
        // As netmaster: a preferred address is given if free, refused (409) if held.
        let preferred = &r.preferred_ipv4_address;
        if !preferred.is_empty() && allocs.contains(&format!("{net_id}/{preferred}")) {
            return Err(NmError::Refused {
                op: "/plugin/allocAddress".into(),
                status: 409,
                message: format!("ip address {preferred} is not available"),
            });
        }
        let ip = std::iter::once(preferred.clone())
            .filter(|p| !p.is_empty())
            .chain((100..200).map(|n| format!("10.{third}.0.{n}")))
            .find(|ip| !allocs.contains(&format!("{net_id}/{ip}")))
            .expect("free address");
        allocs.insert(format!("{net_id}/{ip}"));
        Ok(AllocAddressResponse {
            network_id: r.network_id.clone(),
            ipv4_address: format!("{ip}/24"),
        })
    }
    fn release_address(&self, r: &ReleaseAddressRequest) -> Result<(), NmError> {
        self.check_up()?;
        let key = format!("{}/{}", r.network_id, r.ipv4_address);
        if self.allocs.lock().unwrap().remove(&key) {
            Ok(())
        } else {
            Err(NmError::Refused {
                op: "/plugin/releaseAddress".into(),
                status: 404,
                message: format!("address {} is not allocated", r.ipv4_address),
            })
        }
    }
}

fn kv(key: String, v: serde_json::Value) -> KvChange {
    KvChange {
        key,
        value: Some(v),
    }
}

fn net_kvs(tenant: &str, net: &str, third: u8, vni: u32, encap: &str) -> Vec<KvChange> {
    let key = format!("{tenant}:{net}");
    vec![
        kv(
            keys::object(ObjectKind::Network, &key),
            json!({"tenantName":tenant,"networkName":net,
            "subnet":format!("10.{third}.0.0/24"),"gateway":format!("10.{third}.0.1"),"encap":encap}),
        ),
        kv(keys::net_oper(&key), json!({"pktTag":1,"extPktTag":vni})),
    ]
}

fn remote_ep(net: &str, name: &str, ip: &str, host: &str) -> KvChange {
    let id = format!("{net}.t-{name}");
    kv(
        keys::endpoint(&id),
        json!({"id":id,"tenantName":"t","networkName":net,"ipAddress":ip,
        "homingHost":host,"vtepIP":"10.255.0.2"}),
    )
}

fn base_mirror() -> Mirror {
    let mut kvs = net_kvs("t", "n", 1, 5001, "vxlan");
    kvs.extend(net_kvs("t", "n2", 2, 5002, "vxlan"));
    kvs.extend(net_kvs("t", "vl", 3, 7, "vlan"));
    kvs.extend(net_kvs("other", "x", 9, 6000, "vxlan"));
    kvs.push(remote_ep("n2", "r1", "10.2.0.9", "h2"));
    Mirror::from_snapshot(&AgentSnapshot { revision: 3, kvs })
}

struct Env {
    agent: Arc<Agent>,
    dp: Arc<FakeDatapath>,
    pol: Arc<FakePolicy>,
    qos: Arc<FakeQos>,
    nm: Arc<FakeNm>,
    dead: Arc<Mutex<BTreeSet<String>>>,
    dir: tempfile::TempDir,
}

fn agent_with(dp: Arc<FakeDatapath>, nm: Arc<FakeNm>, dir: tempfile::TempDir) -> Env {
    let dead = Arc::new(Mutex::new(BTreeSet::new()));
    let d2 = dead.clone();
    let pol = Arc::new(FakePolicy::new());
    let qos = Arc::new(FakeQos::new());
    let agent = Agent::new(Parts {
        settings: Settings {
            host: HOST.into(),
            vtep_ip: "10.255.0.1".parse().unwrap(),
            fwd_mode: FwdMode::Bridge,
            pending_dir: dir.path().join("pending"),
            mirror_wait: Duration::from_millis(20),
            policy_wait: Duration::from_millis(300),
            datapath: "fake",
            dns: false,
        },
        dp: dp.clone(),
        pol: pol.clone(),
        qos: qos.clone(),
        nm: nm.clone(),
        records: RecordStore::open(&dir.path().join("state")).expect("records"),
        netns_alive: Arc::new(move |p: &Path| {
            !d2.lock().unwrap().contains(&p.display().to_string())
        }),
    });
    agent.mirror.replace(base_mirror());
    Env {
        agent,
        dp,
        pol,
        qos,
        nm,
        dead,
        dir,
    }
}

fn env() -> Env {
    let mut dp = FakeDatapath::new();
    dp.refuse_vlan = true;
    let dp = Arc::new(dp);
    agent_with(
        dp,
        Arc::new(FakeNm::default()),
        tempfile::tempdir().expect("tempdir"),
    )
}

fn add_req(cid: &str, net: &str) -> AgentAddRequest {
    AgentAddRequest {
        container_id: cid.into(),
        netns: format!("/run/netns/{cid}"),
        ifname: "eth0".into(),
        cni_network: "contiv".into(),
        identity: AttachmentIdentity {
            tenant: "t".into(),
            network: net.into(),
            ..Default::default()
        },
    }
}

fn del_req(cid: &str, net: &str) -> AgentDelRequest {
    let a = add_req(cid, net);
    AgentDelRequest {
        container_id: a.container_id,
        netns: Some(a.netns),
        ifname: a.ifname,
        cni_network: a.cni_network,
        identity: a.identity,
    }
}

#[test]
fn add_is_idempotent_and_del_cleans_everything() {
    let e = env();
    let r = e.agent.add(&add_req("c1", "n")).expect("add");
    assert_eq!(r.ip, "10.1.0.2/24");
    assert_eq!(r.gateway.as_deref(), Some("10.1.0.1"));
    assert_eq!(r.routes[0].dst, "0.0.0.0/0");
    assert_eq!(r.endpoint_id.as_deref(), Some("n.t-c1"));
    assert_eq!(e.agent.add(&add_req("c1", "n")).expect("add again"), r);
    assert_eq!(e.nm.eps.lock().unwrap().len(), 1);
    assert_eq!(e.agent.records.list()[0].phase, Phase::Ready);
    e.agent.del(&del_req("c1", "n")).expect("del");
    e.agent.del(&del_req("c1", "n")).expect("del again");
    assert!(e.agent.records.list().is_empty());
    assert!(e.nm.eps.lock().unwrap().is_empty());
    assert!(e.dp.observe().unwrap().local_endpoints.is_empty());
    assert!(e
        .dp
        .calls()
        .contains(&Call::RemoveLocalEndpoint("n.t-c1".into())));
}

#[test]
fn add_errors_map_to_cni_codes() {
    let e = env();
    assert_eq!(e.agent.add(&add_req("c1", "nope")).unwrap_err().code, 7);
    let vlan = e.agent.add(&add_req("c1", "vl")).unwrap_err();
    assert_eq!(vlan.code, 7);
    assert!(vlan.msg.contains("vlan"), "{vlan:?}");
    e.nm.down.store(true, Ordering::SeqCst);
    assert_eq!(e.agent.add(&add_req("c1", "n")).unwrap_err().code, 11);
    e.nm.down.store(false, Ordering::SeqCst);
    let mut bad = add_req("c1", "n");
    bad.netns.clear();
    assert_eq!(e.agent.add(&bad).unwrap_err().code, 4);
    assert!(e.agent.records.list().is_empty());
    assert!(
        e.nm.eps.lock().unwrap().is_empty(),
        "nothing allocated by failed adds"
    );
}

#[test]
fn datapath_failure_rolls_back() {
    let e = env();
    e.dp.fail_next("add_local_endpoint");
    assert_eq!(e.agent.add(&add_req("c1", "n")).unwrap_err().code, 999);
    assert!(e.agent.records.list().is_empty());
    assert!(e.nm.eps.lock().unwrap().is_empty());
}

#[test]
fn reconcile_sets_up_all_tenant_networks_with_remotes() {
    let e = env();
    e.agent.add(&add_req("c1", "n")).expect("add");
    let rep = e.agent.reconcile();
    assert!(rep.errors.is_empty(), "{:?}", rep.errors);
    let nets: Vec<_> =
        e.dp.observe()
            .unwrap()
            .networks
            .into_iter()
            .map(|n| n.id)
            .collect();
    assert_eq!(
        nets,
        ["t:n", "t:n2"],
        "vlan network skipped, other tenant not set up"
    );
    assert_eq!(e.dp.remotes("t:n2").len(), 1);
    assert_eq!(e.dp.remotes("t:n2")[0].ip.to_string(), "10.2.0.9");
    // A second pass changes nothing.
    assert!(e.agent.reconcile().plan.is_empty());
    // The last workload goes: the tenant's networks go too.
    e.agent.del(&del_req("c1", "n")).expect("del");
    e.agent.reconcile();
    assert!(e.dp.observe().unwrap().networks.is_empty());
}

#[test]
fn mirror_changes_reprogram_remotes() {
    let e = env();
    e.agent.add(&add_req("c1", "n")).expect("add");
    e.agent.reconcile();
    e.agent.mirror.apply(&AgentEvent {
        revision: 4,
        changes: vec![
            remote_ep("n", "r2", "10.1.0.50", "h2"),
            KvChange {
                key: keys::endpoint("n2.t-r1"),
                value: None,
            },
        ],
        resync: false,
    });
    e.agent.reconcile();
    assert_eq!(e.dp.remotes("t:n").len(), 1);
    assert!(e.dp.remotes("t:n2").is_empty());
}

#[test]
fn restart_converges_without_flushing() {
    let e = env();
    e.agent.add(&add_req("c1", "n")).expect("add");
    e.agent.add(&add_req("c2", "n")).expect("add");
    e.agent.reconcile();
    let (dp, nm, dir) = (e.dp.clone(), e.nm.clone(), e.dir);
    drop(e.agent);
    // While the agent was down: c2's namespace vanished, a remote endpoint was added.
    let e2 = agent_with(dp.clone(), nm.clone(), dir);
    e2.dead.lock().unwrap().insert("/run/netns/c2".into());
    e2.agent.mirror.apply(&AgentEvent {
        revision: 5,
        changes: vec![remote_ep("n", "r3", "10.1.0.77", "h2")],
        resync: false,
    });
    let before = dp.calls().len();
    let rep = e2.agent.reconcile();
    assert_eq!(rep.stale_released, 1);
    let calls = dp.calls()[before..].to_vec();
    assert!(
        !calls.iter().any(|c| matches!(
            c,
            Call::AddLocalEndpoint(_) | Call::RemoveNetwork(_) | Call::EnsureNetwork(_)
        )),
        "{calls:?}"
    );
    assert!(calls.contains(&Call::RemoveLocalEndpoint("n.t-c2".into())));
    assert_eq!(dp.remotes("t:n").len(), 1);
    assert_eq!(e2.agent.records.list().len(), 1);
    assert_eq!(*nm.deletes.lock().unwrap(), ["n.t-c2"]);
}

#[test]
fn del_with_netmaster_down_finishes_later() {
    let e = env();
    e.agent.add(&add_req("c1", "n")).expect("add");
    e.nm.down.store(true, Ordering::SeqCst);
    e.agent
        .del(&del_req("c1", "n"))
        .expect("del succeeds locally");
    assert_eq!(e.agent.records.list()[0].phase, Phase::Releasing);
    assert!(e.dp.observe().unwrap().local_endpoints.is_empty());
    e.agent.reconcile();
    assert_eq!(
        e.agent.records.list().len(),
        1,
        "still waiting for netmaster"
    );
    e.nm.down.store(false, Ordering::SeqCst);
    e.agent.reconcile();
    assert!(e.agent.records.list().is_empty());
    assert!(e.nm.eps.lock().unwrap().is_empty());
}

#[test]
fn unrecorded_endpoints_of_this_host_are_released() {
    let e = env();
    e.agent.mirror.apply(&AgentEvent {
        revision: 6,
        changes: vec![remote_ep("n", "ghost", "10.1.0.60", HOST)],
        resync: false,
    });
    let rep = e.agent.reconcile();
    assert_eq!(rep.netmaster_released, 1);
    assert_eq!(*e.nm.deletes.lock().unwrap(), ["n.t-ghost"]);
}

#[test]
fn spool_replay_deletes_and_forgets() {
    let e = env();
    e.agent.add(&add_req("c1", "n")).expect("add");
    let path =
        contiv_cni::spool::record(&e.agent.settings.pending_dir, &del_req("c1", "n")).unwrap();
    assert_eq!(e.agent.replay_spool(), 1);
    assert!(!path.exists());
    assert!(e.agent.records.list().is_empty());
}

#[test]
fn gc_releases_unlisted_attachments() {
    let e = env();
    e.agent.add(&add_req("c1", "n")).expect("add");
    e.agent.add(&add_req("c2", "n")).expect("add");
    let req = contiv_cni::agent_api::AgentGcRequest {
        cni_network: "contiv".into(),
        valid_attachments: vec![contiv_cni::agent_api::GcAttachment {
            container_id: "c2".into(),
            ifname: "eth0".into(),
        }],
    };
    e.agent.gc(&req).expect("gc");
    assert_eq!(recorded(&e), ["c2"]);
}

/// Container ids of the agent's attachment records.
fn recorded(e: &Env) -> Vec<String> {
    e.agent
        .records
        .list()
        .into_iter()
        .map(|a| a.container_id)
        .collect()
}

#[test]
fn check_and_status() {
    let e = env();
    let r = e.agent.add(&add_req("c1", "n")).expect("add");
    let mut chk = contiv_cni::agent_api::AgentCheckRequest {
        container_id: "c1".into(),
        ifname: "eth0".into(),
        expected_ips: vec![r.ip.clone()],
        ..Default::default()
    };
    assert_eq!(e.agent.check(&chk).expect("check"), r);
    chk.expected_ips = vec!["10.9.9.9/24".into()];
    assert_eq!(e.agent.check(&chk).unwrap_err().code, 100);
    chk.container_id = "nope".into();
    assert_eq!(e.agent.check(&chk).unwrap_err().code, 3);
    let st = contiv_cni::agent_api::AgentStatusRequest::default();
    assert_eq!(
        e.agent.status(&st).unwrap_err().code,
        50,
        "never reached netmaster"
    );
    e.dp.fail_next("observe");
    assert_eq!(e.agent.status(&st).unwrap_err().code, 51);
}

#[test]
fn follower_resumes_and_resyncs() {
    let nm = FakeNm::default();
    let snap = |rev| AgentSnapshot {
        revision: rev,
        kvs: net_kvs("t", "n", 1, 5001, "vxlan"),
    };
    nm.snapshots.lock().unwrap().extend([snap(10), snap(20)]);
    let ev = AgentEvent {
        revision: 11,
        changes: vec![remote_ep("n", "a", "10.1.0.5", "h2")],
        resync: false,
    };
    let keepalive = AgentEvent {
        revision: 11,
        ..Default::default()
    };
    nm.watches.lock().unwrap().extend([
        (vec![ev, keepalive], WatchEnd::Disconnected("reset".into())),
        (vec![], WatchEnd::Resync),
        (vec![], WatchEnd::Stopped),
    ]);
    let (mirror, link, stop) = (SharedMirror::new(), Link::new(), Stop::new());
    let changes = Mutex::new(0);
    follow(&nm, &mirror, &link, &stop, &|| {
        *changes.lock().unwrap() += 1
    });
    assert_eq!(*nm.watched_from.lock().unwrap(), [10, 11, 20]);
    assert_eq!(
        *changes.lock().unwrap(),
        3,
        "two snapshots and one real change"
    );
    let m = mirror.read();
    assert_eq!(m.as_ref().unwrap().revision, 20);
    assert!(
        m.as_ref().unwrap().endpoints.is_empty(),
        "resync replaced the mirror"
    );
}

#[test]
fn plan_rebuilds_a_network_whose_vni_changed_and_replugs_its_workloads() {
    use crate::reconcile::{desired, plan};
    let e = env();
    e.agent.add(&add_req("c1", "n")).expect("add");
    e.agent.reconcile();
    let mut observed = e.dp.observe().unwrap();
    observed
        .networks
        .iter_mut()
        .filter(|n| n.id == "t:n")
        .for_each(|n| n.vni = 42);
    let live = e.agent.records.list();
    let m = e.agent.mirror.read().clone();
    let d = desired(m.as_ref(), &live, HOST, FwdMode::Bridge, &|s| {
        e.dp.validate(s).is_ok()
    });
    let p = plan(&d, &observed, &live, &BTreeSet::new());
    assert_eq!(p.remove_networks, ["t:n"]);
    assert_eq!(p.ensure.iter().map(|s| s.vni).collect::<Vec<_>>(), [5001]);
    assert_eq!(p.replug.len(), 1);
    assert!(p.orphans.is_empty());
    // Without a mirror nothing is removed.
    let blind = desired(None, &live, HOST, FwdMode::Bridge, &|_| true);
    assert!(
        plan(&blind, &e.dp.observe().unwrap(), &live, &BTreeSet::new())
            .remove_networks
            .is_empty()
    );
}

/// Runs `f` while the agent's policy loop runs (stopped after).
fn with_policy_loop<R>(e: &Env, f: impl FnOnce() -> R) -> R {
    let stop = Stop::new();
    let (a, s) = (e.agent.clone(), stop.clone());
    let looper =
        std::thread::spawn(move || crate::policy::policy_loop(&a, &s, Duration::from_secs(30)));
    let out = f();
    stop.raise();
    e.agent.policy.kick.kick();
    looper.join().expect("loop");
    out
}

/// An ADD request of container `c1` in group `db`.
fn add_in_db() -> AgentAddRequest {
    let mut req = add_req("c1", "n");
    req.identity.group = Some("db".into());
    req
}

/// Event at `revision`: group `t:db` gets policy `p`, whose one rule denies everything in.
fn db_deny_all_in(revision: u64) -> AgentEvent {
    db_with_rule(
        revision,
        json!({"direction":"in","action":"deny","priority":1}),
    )
}

/// Event at `revision`: group `t:db` gets policy `p` with rule `1` (`fields` besides the keys).
fn db_with_rule(revision: u64, fields: serde_json::Value) -> AgentEvent {
    let mut rule = json!({"tenantName":"t","policyName":"p","ruleId":"1"});
    if let (Some(r), Some(f)) = (rule.as_object_mut(), fields.as_object()) {
        r.extend(f.clone());
    }
    AgentEvent {
        revision,
        changes: vec![
            kv(
                keys::object(ObjectKind::EndpointGroup, "t:db"),
                json!({"tenantName":"t","groupName":"db","networkName":"n","policies":["p"]}),
            ),
            kv(keys::object(ObjectKind::Rule, "t:p:1"), rule),
        ],
        resync: false,
    }
}

/// The policy pass compiles the mirror's groups and rules for the tenants with local workloads,
/// counts a workload the mirror does not show yet (its record), and reports the revision.
#[test]
fn policy_pass_enforces_local_members_and_reports_revision() {
    let e = env();
    let req = add_in_db();
    let r = e.agent.add(&req).expect("add");
    let ip: std::net::Ipv4Addr = r.ip.split('/').next().unwrap().parse().unwrap();
    // No policy yet: nothing to enforce, but the pass covers the revision.
    let s = e.agent.enforce_policy();
    assert_eq!((s.rules, s.errors), (0, 0));
    assert_eq!(e.agent.policy.enforced_revision(), 3);
    e.agent.mirror.apply(&db_deny_all_in(4));
    let s = e.agent.enforce_policy();
    assert_eq!((s.rules, s.changed, s.errors), (1, 1, 0));
    let p = e.pol.applied("t").expect("tenant t applied");
    assert_eq!(p.ingress_members.get(&ip).map(String::as_str), Some("db"));
    assert!(
        e.pol.applied("other").is_none(),
        "no workload of tenant other here"
    );
    // Nothing changed: the driver is not called again, and a change policy does not depend on
    // (a node's heartbeat) moves the enforced revision without a compile.
    let calls = e.pol.apply_calls();
    assert_eq!(e.agent.enforce_policy().changed, 0);
    e.agent.mirror.apply(&AgentEvent {
        revision: 5,
        changes: vec![kv(
            keys::node("h2"),
            json!({"hostname":"h2","vtepIP":"10.255.0.2"}),
        )],
        resync: false,
    });
    let s = e.agent.enforce_policy();
    assert_eq!((s.revision, s.rules, s.changed), (5, 1, 0));
    assert_eq!(
        e.pol.apply_calls(),
        calls,
        "no driver call for unchanged inputs"
    );
    assert_eq!(e.agent.policy.enforced_revision(), 5);
    // A remote endpoint joining db: the rules compiled before are kept (the same shared map),
    // only the members are compiled again.
    let before = e.pol.applied("t").expect("applied").groups;
    e.agent.mirror.apply(&AgentEvent {
        revision: 6,
        changes: vec![kv(
            keys::endpoint("n.t-r9"),
            json!({"id":"n.t-r9","tenantName":"t","networkName":"n","serviceName":"db","ipAddress":"10.1.0.99","homingHost":"h2","vtepIP":"10.255.0.2"}),
        )],
        resync: false,
    });
    e.agent.enforce_policy();
    let after = e.pol.applied("t").expect("applied").groups;
    assert!(
        std::sync::Arc::ptr_eq(&before, &after),
        "rules not compiled again"
    );
    // The periodic pass runs in full anyway.
    e.agent
        .policy
        .force_next
        .store(true, std::sync::atomic::Ordering::SeqCst);
    e.agent.enforce_policy();
    assert_eq!(e.pol.apply_calls(), calls + 2);
    let report = e.agent.policy_report(true);
    assert_eq!(
        (report.hostname.as_str(), report.revision, report.rules),
        (HOST, 6, 1)
    );
    e.agent.nm.policy_report(&report).expect("report");
    assert_eq!(e.nm.reports.lock().unwrap().len(), 1);
}

/// ADD of a workload whose group has rules returns only after a policy pass counted it: its
/// address is in the applied policy before it could send a packet.
#[test]
fn add_in_a_group_with_rules_waits_for_its_policy() {
    let e = env();
    e.agent.mirror.apply(&db_deny_all_in(4));
    assert!(e.agent.group_has_rules("t", "db"));
    assert!(!e.agent.group_has_rules("t", "web"));
    with_policy_loop(&e, || {
        let r = e.agent.add(&add_in_db()).expect("add");
        let ip: std::net::Ipv4Addr = r.ip.split('/').next().unwrap().parse().unwrap();
        let p = e.pol.applied("t").expect("applied before ADD returned");
        assert_eq!(p.ingress_members.get(&ip).map(String::as_str), Some("db"));
    });
}

/// Fail closed: when the rules of a workload's group cannot be put in force (no policy pass
/// answers), its ADD fails with "try again later" and leaves nothing behind.
#[test]
fn add_fails_closed_when_its_groups_rules_are_not_in_force() {
    let e = env();
    e.agent.mirror.apply(&db_deny_all_in(4));
    let req = add_in_db();
    let err = e.agent.add(&req).expect_err("no policy loop runs: refused");
    assert_eq!(err.code, codes::TRY_AGAIN_LATER, "{err:?}");
    assert!(err.msg.contains("policy of group db"), "{err:?}");
    assert!(e.agent.records.list().is_empty(), "no record left");
    assert!(
        e.nm.eps.lock().unwrap().is_empty(),
        "no endpoint left at netmaster"
    );
    assert!(
        !e.dp
            .calls()
            .iter()
            .any(|c| matches!(c, Call::AddLocalEndpoint(_))),
        "no interface was made"
    );
}

/// A group whose every rule names a network that no longer exists has nothing to enforce: its
/// ADDs go through (after one pass) instead of failing forever.
#[test]
fn add_in_a_group_whose_rules_cannot_apply_goes_through() {
    let e = env();
    e.agent.mirror.apply(&db_with_rule(
        4,
        json!({"direction":"in","action":"allow","priority":1,"fromNetwork":"gone"}),
    ));
    with_policy_loop(&e, || e.agent.add(&add_in_db()))
        .expect("nothing to enforce: the ADD goes through");
}

/// An ADD in a group waits until the mirror has caught up with netmaster's revision at the
/// endpoint's creation (a group or rule made just before must not be missed); if it cannot, the
/// ADD fails with try-again-later instead of deciding on stale state.
#[test]
fn add_in_a_group_waits_for_the_mirror_to_reach_netmasters_revision() {
    let e = env();
    e.nm.answer_revision.store(10, Ordering::SeqCst);
    let req = add_in_db();
    let err = e.agent.add(&req).expect_err("mirror at 3, netmaster at 10");
    assert_eq!(err.code, codes::TRY_AGAIN_LATER, "{err:?}");
    assert!(e.agent.records.list().is_empty(), "rolled back");
    e.agent.mirror.apply(&AgentEvent {
        revision: 10,
        changes: vec![kv(
            keys::node("h2"),
            json!({"hostname":"h2","vtepIP":"10.255.0.2"}),
        )],
        resync: false,
    });
    e.agent
        .add(&req)
        .expect("caught up: the group has no rules, plugged");
    // Without a group there is no policy decision to wait for.
    e.nm.answer_revision.store(99, Ordering::SeqCst);
    e.agent.add(&add_req("c2", "n")).expect("no group");
}
