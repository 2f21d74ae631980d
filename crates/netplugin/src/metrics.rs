//! Prometheus metrics of the agent, served on `--metrics-address` (off when unset).
//!
//! Two kinds of values: what the policy loop observes pass by pass (apply latency, passes,
//! errors: [`Metrics::observe_pass`]), and what is read from the agent at scrape time (enforced
//! revision, rules and set elements of the last pass, the driver's per-rule counters, denied
//! packets: a [`Collector`] over the [`Agent`]), so nothing is copied on the hot path.
//!
//! `GET /metrics` answers OpenMetrics text when the scraper asks for it (`Accept:
//! application/openmetrics-text`, as Prometheus does) and the Prometheus text format 0.0.4
//! otherwise.
//!
//! Metrics:
//! - `contiv_policy_apply_seconds` (histogram): duration of the passes that changed the datapath
//! - `contiv_policy_passes_total`, `contiv_policy_apply_errors_total` (tenants not applied)
//! - `contiv_policy_enforced_revision`, `contiv_policy_rules_installed`,
//!   `contiv_policy_elements_installed` (gauges)
//! - `contiv_policy_rule_packets_total`, `contiv_policy_rule_bytes_total` `{rule, action}`
//! - `contiv_policy_denied_packets_total`: the packets of every deny rule
//! - `contiv_netplugin_info{version, datapath}` = 1

use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use contiv_datapath::PolicyCounter;
use contiv_policy::Action;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::metrics::info::Info;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::{Registry, Unit};

use crate::agent::Agent;
use crate::policy::PassStats;

/// Upper bounds (seconds) of the apply-latency buckets: 0.5 ms to 2 s.
const APPLY_BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0,
];

/// Content type of the OpenMetrics text format.
pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The agent's metrics registry. Shared between the policy loop (which calls
/// [`Metrics::observe_pass`]) and the HTTP server (which calls [`Metrics::render`]).
pub struct Metrics {
    registry: Registry,
    apply_seconds: Histogram,
    passes: Counter,
    apply_errors: Counter,
}

impl Metrics {
    /// A registry whose scrape-time values are read from `agent`.
    pub fn new(agent: Arc<Agent>) -> Metrics {
        let mut registry = Registry::default();
        let apply_seconds = Histogram::new(APPLY_BUCKETS);
        registry.register_with_unit(
            "contiv_policy_apply",
            "Duration of the policy passes that changed the datapath",
            Unit::Seconds,
            apply_seconds.clone(),
        );
        let passes = Counter::default();
        registry.register(
            "contiv_policy_passes",
            "Policy enforcement passes run",
            passes.clone(),
        );
        let apply_errors = Counter::default();
        registry.register(
            "contiv_policy_apply_errors",
            "Tenant policies the driver failed to apply",
            apply_errors.clone(),
        );
        registry.register(
            "contiv_netplugin",
            "Version and datapath driver of this agent",
            Info::new(vec![
                ("version", env!("CARGO_PKG_VERSION")),
                ("datapath", agent.settings.datapath),
            ]),
        );
        registry.register_collector(Box::new(AgentCollector(agent)));
        Metrics {
            registry,
            apply_seconds,
            passes,
            apply_errors,
        }
    }

    /// Records one policy pass: counted always, its duration only if it changed the datapath.
    pub fn observe_pass(&self, s: &PassStats) {
        self.passes.inc();
        if s.errors > 0 {
            self.apply_errors.inc_by(s.errors as u64);
        }
        if s.changed > 0 {
            self.apply_seconds.observe(s.duration.as_secs_f64());
        }
    }

    /// The OpenMetrics text exposition (ends with `# EOF`).
    pub fn render_openmetrics(&self) -> String {
        let mut out = String::new();
        if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &self.registry) {
            tracing::warn!("metrics not encoded: {e}");
        }
        out
    }

    /// The Prometheus text format 0.0.4.
    pub fn render_prometheus(&self) -> String {
        let mut out = String::new();
        if let Err(e) =
            prometheus_client::encoding::prometheus_text::encode(&mut out, &self.registry)
        {
            tracing::warn!("metrics not encoded: {e}");
        }
        out
    }
}

/// Values read from the agent at every scrape.
struct AgentCollector(Arc<Agent>);

impl std::fmt::Debug for AgentCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AgentCollector")
    }
}

/// One rule's counters with the action the mirror gives it (`unknown`: no longer in the
/// mirror, still installed until the next pass).
struct RuleRow {
    rule: String,
    action: Option<Action>,
    counter: PolicyCounter,
}

impl RuleRow {
    fn action_label(&self) -> &'static str {
        match self.action {
            Some(Action::Deny) => "deny",
            Some(Action::Allow) => "allow",
            None => "unknown",
        }
    }
}

impl AgentCollector {
    fn rule_rows(&self) -> Option<Vec<RuleRow>> {
        let counters: BTreeMap<String, PolicyCounter> = match self.0.pol.counters() {
            Ok(c) => c,
            Err(e) => {
                tracing::debug!("policy counters not read for metrics: {e}");
                return None;
            }
        };
        let mirror = self.0.mirror.read();
        let action = |rule: &str| Some(mirror.as_ref()?.rules.get(rule)?.action);
        let rows = counters
            .into_iter()
            .map(|(rule, counter)| RuleRow {
                action: action(&rule),
                rule,
                counter,
            })
            .collect();
        Some(rows)
    }
}

fn gauge(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    value: u64,
) -> Result<(), std::fmt::Error> {
    let g = ConstGauge::new(value);
    g.encode(encoder.encode_descriptor(name, help, None, g.metric_type())?)
}

/// A per-rule counter family labelled `rule` and `action`.
fn rule_family(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    rows: &[RuleRow],
    value: fn(&PolicyCounter) -> u64,
) -> Result<(), std::fmt::Error> {
    let mut family = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
    for r in rows {
        let labels = [("rule", r.rule.as_str()), ("action", r.action_label())];
        ConstCounter::new(value(&r.counter)).encode(family.encode_family(&labels)?)?;
    }
    Ok(())
}

impl Collector for AgentCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let policy = &self.0.policy;
        let last = policy.last_pass();
        gauge(
            &mut encoder,
            "contiv_policy_enforced_revision",
            "netmaster revision whose policy this host enforces (0: none yet).",
            policy.enforced_revision(),
        )?;
        gauge(
            &mut encoder,
            "contiv_policy_rules_installed",
            "Rules in this host's policy as of the last pass.",
            last.rules as u64,
        )?;
        gauge(
            &mut encoder,
            "contiv_policy_elements_installed",
            "Set and map elements in this host's policy as of the last pass.",
            last.elements as u64,
        )?;
        let Some(rows) = self.rule_rows() else {
            return Ok(());
        };
        let denied: u64 = rows
            .iter()
            .filter(|r| r.action == Some(Action::Deny))
            .map(|r| r.counter.packets)
            .sum();
        ConstCounter::new(denied).encode(encoder.encode_descriptor(
            "contiv_policy_denied_packets",
            "Packets dropped by deny rules.",
            None,
            MetricType::Counter,
        )?)?;
        rule_family(
            &mut encoder,
            "contiv_policy_rule_packets",
            "Packets matched per rule.",
            &rows,
            |c| c.packets,
        )?;
        rule_family(
            &mut encoder,
            "contiv_policy_rule_bytes",
            "Bytes matched per rule.",
            &rows,
            |c| c.bytes,
        )?;
        Ok(())
    }
}

/// `GET /metrics`: OpenMetrics if the scraper accepts it, else text 0.0.4. Rendered on the
/// blocking pool (reading the driver's counters may run `nft`).
async fn scrape(State(m): State<Arc<Metrics>>, headers: HeaderMap) -> Response {
    let openmetrics = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains("application/openmetrics-text"));
    let rendered = tokio::task::spawn_blocking(move || {
        if openmetrics {
            (OPENMETRICS_CONTENT_TYPE, m.render_openmetrics())
        } else {
            (
                prometheus_client::encoding::prometheus_text::CONTENT_TYPE,
                m.render_prometheus(),
            )
        }
    })
    .await;
    match rendered {
        Ok((ctype, body)) => ([(header::CONTENT_TYPE, ctype)], body).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, format!("metrics: {e}")).into_response(),
    }
}

/// The metrics routes (`GET /metrics`).
pub fn router(metrics: Arc<Metrics>) -> Router {
    Router::new()
        .route("/metrics", get(scrape))
        .with_state(metrics)
}

/// Binds the metrics address (at start-up, before anything else starts, so a taken address
/// fails the start). The listener is non-blocking, ready for [`serve`].
pub fn bind(addr: SocketAddr) -> std::io::Result<std::net::TcpListener> {
    let l = std::net::TcpListener::bind(addr)?;
    l.set_nonblocking(true)?;
    Ok(l)
}

/// Serves `GET /metrics` on `listener` until `shutdown` resolves (needs a tokio runtime).
pub async fn serve(
    listener: std::net::TcpListener,
    metrics: Arc<Metrics>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::from_std(listener)?;
    axum::serve(listener, router(metrics))
        .with_graceful_shutdown(shutdown)
        .await
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::ops::ControlFlow;
    use std::path::Path;
    use std::sync::Arc;
    use std::time::Duration;

    use contiv_api::agent::{AgentEvent, AgentSnapshot, KvChange, NodeInfo};
    use contiv_api::keys;
    use contiv_api::plugin::{CreateEndpointRequest, DeleteEndpointRequest};
    use contiv_api::policy::PolicyReport;
    use contiv_api::EndpointState;
    use contiv_datapath::fake::{FakeDatapath, FakePolicy};
    use contiv_datapath::{ApplyStats, DatapathError, FwdMode, PolicyCounter, PolicyDriver};
    use contiv_model::ObjectKind;
    use serde_json::json;

    use super::*;
    use crate::agent::{Parts, Settings};
    use crate::mirror::Mirror;
    use crate::netmaster::{Netmaster, NmError, WatchEnd};
    use crate::policy::PassStats;
    use crate::records::{Attachment, Phase, RecordStore};

    /// A netmaster that is never reached (the metrics read only local state).
    struct Offline;

    fn offline() -> NmError {
        NmError::Unreachable {
            url: "offline".into(),
            reason: "test".into(),
        }
    }

    impl Netmaster for Offline {
        fn register_node(&self, _: &NodeInfo) -> Result<(), NmError> {
            Err(offline())
        }
        fn snapshot(&self) -> Result<AgentSnapshot, NmError> {
            Err(offline())
        }
        fn watch(&self, _: u64, _: &mut dyn FnMut(AgentEvent) -> ControlFlow<()>) -> WatchEnd {
            WatchEnd::Stopped
        }
        fn create_endpoint(
            &self,
            _: &CreateEndpointRequest,
        ) -> Result<(EndpointState, u64), NmError> {
            Err(offline())
        }
        fn delete_endpoint(&self, _: &DeleteEndpointRequest) -> Result<(), NmError> {
            Err(offline())
        }
        fn policy_report(&self, _: &PolicyReport) -> Result<(), NmError> {
            Err(offline())
        }
    }

    /// [`FakePolicy`] with fixed per-rule counters.
    struct Counting(FakePolicy, BTreeMap<String, PolicyCounter>);

    impl PolicyDriver for Counting {
        fn apply(&self, p: &contiv_policy::TenantPolicy) -> Result<ApplyStats, DatapathError> {
            self.0.apply(p)
        }
        fn admit(&self, t: &str, g: &str, ip: std::net::Ipv4Addr) -> Result<bool, DatapathError> {
            self.0.admit(t, g, ip)
        }
        fn forget(&self, tenant: &str) {
            self.0.forget(tenant)
        }
        fn counters(&self) -> Result<BTreeMap<String, PolicyCounter>, DatapathError> {
            Ok(self.1.clone())
        }
    }

    fn kv(key: String, v: serde_json::Value) -> KvChange {
        KvChange {
            key,
            value: Some(v),
        }
    }

    fn rule(id: &str, action: &str) -> KvChange {
        kv(
            keys::object(ObjectKind::Rule, &format!("t:p:{id}")),
            json!({"tenantName":"t","policyName":"p","ruleId":id,"direction":"in","action":action,"priority":1}),
        )
    }

    fn counter(packets: u64, bytes: u64) -> PolicyCounter {
        PolicyCounter { packets, bytes }
    }

    /// An agent with one local workload in group `t:db` (policy `p`: rule 1 deny, rule 2 allow)
    /// at revision 7, and a driver reporting counters for both rules and one no longer known.
    fn agent(dir: &Path) -> Arc<Agent> {
        let counters = BTreeMap::from([
            ("t:p:1".to_string(), counter(7, 588)),
            ("t:p:2".to_string(), counter(3, 180)),
            ("t:gone:9".to_string(), counter(1, 60)),
        ]);
        let agent = Agent::new(Parts {
            settings: Settings {
                host: "h1".into(),
                vtep_ip: "10.255.0.1".parse().unwrap(),
                fwd_mode: FwdMode::Bridge,
                pending_dir: dir.join("pending"),
                mirror_wait: Duration::from_millis(20),
                policy_wait: Duration::from_millis(300),
                datapath: "fake",
                dns: false,
            },
            dp: Arc::new(FakeDatapath::new()),
            pol: Arc::new(Counting(FakePolicy::new(), counters)),
            qos: Arc::new(contiv_datapath::NoQos),
            nm: Arc::new(Offline),
            records: RecordStore::open(&dir.join("state")).expect("records"),
            netns_alive: Arc::new(|_: &Path| true),
        });
        let kvs = vec![
            kv(
                keys::object(ObjectKind::Network, "t:n"),
                json!({"tenantName":"t","networkName":"n","subnet":"10.1.0.0/24","gateway":"10.1.0.1","encap":"vxlan"}),
            ),
            kv(keys::net_oper("t:n"), json!({"pktTag":1,"extPktTag":5001})),
            kv(
                keys::object(ObjectKind::EndpointGroup, "t:db"),
                json!({"tenantName":"t","groupName":"db","networkName":"n","policies":["p"]}),
            ),
            rule("1", "deny"),
            rule("2", "allow"),
        ];
        agent
            .mirror
            .replace(Mirror::from_snapshot(&AgentSnapshot { revision: 7, kvs }));
        let a = Attachment {
            container_id: "c1".into(),
            ifname: "eth0".into(),
            tenant: "t".into(),
            network: "n".into(),
            group: Some("db".into()),
            ep_container: "c1".into(),
            endpoint_id: "n.t-c1".into(),
            ip: "10.1.0.2/24".into(),
            gateway: "10.1.0.1".into(),
            phase: Phase::Ready,
            ..Default::default()
        };
        agent.records.put(&a).expect("record");
        agent
    }

    fn has_line(text: &str, line: &str) {
        assert!(
            text.lines().any(|l| l == line),
            "no line {line:?} in:\n{text}"
        );
    }

    #[test]
    fn renders_pass_and_scrape_time_values() {
        let dir = tempfile::tempdir().expect("tempdir");
        let agent = agent(dir.path());
        let m = Metrics::new(agent.clone());
        let s = agent.enforce_policy();
        assert_eq!((s.revision, s.rules, s.changed, s.errors), (7, 2, 1, 0));
        m.observe_pass(&s);
        // Unchanged pass: counted, not timed; a pass with errors counts them.
        m.observe_pass(&agent.enforce_policy());
        m.observe_pass(&PassStats {
            errors: 2,
            ..Default::default()
        });

        let text = m.render_prometheus();
        for line in [
            "# TYPE contiv_policy_apply_seconds histogram",
            "contiv_policy_apply_seconds_count 1",
            "contiv_policy_apply_seconds_bucket{le=\"+Inf\"} 1",
            "# TYPE contiv_policy_passes_total counter",
            "contiv_policy_passes_total 3",
            "contiv_policy_apply_errors_total 2",
            "contiv_policy_enforced_revision 7",
            "contiv_policy_rules_installed 2",
            &format!("contiv_policy_elements_installed {}", s.elements),
            "contiv_policy_denied_packets_total 7",
            "contiv_policy_rule_packets_total{rule=\"t:p:1\",action=\"deny\"} 7",
            "contiv_policy_rule_packets_total{rule=\"t:p:2\",action=\"allow\"} 3",
            "contiv_policy_rule_packets_total{rule=\"t:gone:9\",action=\"unknown\"} 1",
            "contiv_policy_rule_bytes_total{rule=\"t:p:1\",action=\"deny\"} 588",
            "contiv_netplugin_info{version=\"0.1.0\",datapath=\"fake\"} 1",
        ] {
            has_line(&text, line);
        }
        assert!(s.elements > 0);

        let om = m.render_openmetrics();
        has_line(&om, "# TYPE contiv_policy_passes counter");
        has_line(&om, "# UNIT contiv_policy_apply_seconds seconds");
        has_line(&om, "contiv_policy_denied_packets_total 7");
        assert!(om.ends_with("# EOF\n"), "{om}");
    }

    #[test]
    fn serves_metrics_over_http() {
        let dir = tempfile::tempdir().expect("tempdir");
        let agent = agent(dir.path());
        let m = Arc::new(Metrics::new(agent.clone()));
        m.observe_pass(&agent.enforce_policy());
        let listener = bind("127.0.0.1:0".parse().unwrap()).expect("bind");
        let addr = listener.local_addr().expect("addr");
        // A second bind of the same address fails (what `run` reports as a start-up error).
        assert!(bind(addr).is_err());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let server = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(serve(listener, m, async {
                let _ = rx.await;
            }))
        });
        let url = format!("http://{addr}/metrics");

        let mut r = ureq::get(&url).call().expect("scrape");
        let ctype = r.headers().get("content-type").expect("content type");
        assert_eq!(ctype, "text/plain; version=0.0.4; charset=utf-8");
        let body = r.body_mut().read_to_string().expect("body");
        has_line(&body, "contiv_policy_passes_total 1");
        has_line(&body, "contiv_policy_denied_packets_total 7");

        let mut r = ureq::get(&url)
            .header(
                "Accept",
                "application/openmetrics-text;version=1.0.0,text/plain;q=0.5",
            )
            .call()
            .expect("scrape");
        let ctype = r.headers().get("content-type").expect("content type");
        assert_eq!(ctype, OPENMETRICS_CONTENT_TYPE);
        let body = r.body_mut().read_to_string().expect("body");
        assert!(body.ends_with("# EOF\n"), "{body}");

        match ureq::get(&format!("http://{addr}/other")).call() {
            Err(ureq::Error::StatusCode(404)) => {}
            other => panic!("expected 404, got {other:?}"),
        }
        tx.send(()).expect("shutdown");
        server.join().expect("server").expect("served");
    }
}
