//! Policy enforcement on this host: a pass compiles the policy of every tenant with a local
//! attachment (the mirror's groups, rules and endpoints, plus the local attachments the mirror
//! may not show yet) and hands each tenant's IR to the policy driver, which applies only what
//! changed in one atomic step. The loop runs a pass per kick (every mirror change, ADD, DEL),
//! letting kicks gather for 3 ms; kicks that arrive during a pass are folded into the next one.
//!
//! The revision a pass compiled from is what this host enforces once every tenant applied
//! without error; it is reported to netmaster after each pass that moved it, and with the rule
//! counters every [`REPORT_INTERVAL`], so `netctl policy explain` / `status` can say whether a
//! host is current.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use contiv_api::policy::{PolicyReport, RuleCounter};
use contiv_policy::{
    compile_members, compile_rules, CompiledRules, Member, PolicyInput, Scope, TenantPolicy,
};

use crate::agent::{lock, Agent, Kick};
use crate::follow::Stop;
use crate::records::{Attachment, Phase};

/// What the policy loop knows and shares (with the reporter and tests).
#[derive(Default)]
pub struct PolicyState {
    /// Raised by whoever changed something policy depends on.
    pub kick: Kick,
    /// Raised after a pass that changed the datapath (the reporter sends a report).
    pub report_kick: Kick,
    /// The revision whose policy this host enforces (0: none yet).
    enforced: AtomicU64,
    /// What the last pass without error compiled from: the mirror's policy revision and a
    /// fingerprint of the local attachments. A pass with equal inputs has nothing to do.
    inputs: Mutex<Option<(u64, u64)>>,
    /// Compiled rules per tenant, and the mirror's rules revision they were compiled at.
    rules: Mutex<(u64, BTreeMap<String, CompiledRules>)>,
    /// The next pass runs in full even with unchanged inputs (the loop's periodic safety pass).
    pub(crate) force_next: std::sync::atomic::AtomicBool,
    /// Tenants handed to the driver by the last pass (the others are forgotten).
    tenants: Mutex<BTreeSet<String>>,
    /// Totals of the last pass, and its duration.
    pub(crate) last: Mutex<PassStats>,
    /// Passes started and finished, for waiters ([`Agent::await_policy`]).
    passes: Mutex<(u64, u64)>,
    passes_cond: Condvar,
}

/// Numbers of one pass (also what metrics show).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PassStats {
    pub revision: u64,
    pub rules: usize,
    pub elements: usize,
    /// Tenants whose datapath changed.
    pub changed: usize,
    pub errors: usize,
    pub duration: Duration,
}

impl PolicyState {
    /// The revision whose policy this host enforces.
    pub fn enforced_revision(&self) -> u64 {
        self.enforced.load(Ordering::SeqCst)
    }

    /// Whether the last pass compiled enforceable rules for `tenant`'s `group` (`None`: that
    /// tenant was not compiled). Differs from the mirror when every rule of the group was left
    /// out (a network it names does not exist).
    pub fn compiled_group_has_rules(&self, tenant: &str, group: &str) -> Option<bool> {
        let cache = lock(&self.rules);
        let compiled = cache.1.get(tenant)?;
        Some(
            compiled
                .groups
                .get(group)
                .is_some_and(|r| !r.ingress.is_empty() || !r.egress.is_empty()),
        )
    }

    /// Totals of the last pass.
    pub fn last_pass(&self) -> PassStats {
        *lock(&self.last)
    }
}

/// How long the loop lets kicks gather before a pass (part of the convergence time).
const COALESCE: Duration = Duration::from_millis(3);

/// How long an ADD waits for the policy of its new workload before it fails (the default of
/// `Settings::policy_wait`).
pub const ADD_POLICY_WAIT: Duration = Duration::from_secs(2);

/// Local attachments as policy members (the mirror may not have their endpoint yet).
fn local_members(live: &[Attachment], host: &str) -> Vec<Member> {
    live.iter()
        .filter(|a| a.phase != Phase::Releasing)
        .filter_map(|a| {
            let ip = a.ip.split('/').next()?.parse().ok()?;
            Some(Member {
                id: a.endpoint_id.clone(),
                tenant: a.tenant.clone(),
                group: a.group.clone().unwrap_or_default(),
                ip,
                host: host.to_string(),
            })
        })
        .collect()
}

/// What of the local attachments policy depends on (tenant, endpoint, address, group, whether
/// it is being released), hashed. Compared only within this process, so std's hasher will do.
fn records_fingerprint(live: &[Attachment]) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut fields: Vec<_> = live
        .iter()
        .map(|a| {
            let releasing = a.phase == Phase::Releasing;
            (&a.endpoint_id, &a.tenant, &a.ip, &a.group, releasing)
        })
        .collect();
    fields.sort();
    let mut h = std::collections::hash_map::DefaultHasher::new();
    fields.hash(&mut h);
    h.finish()
}

/// This host's policy for `tenants` from `input` plus the local attachments, with each tenant's
/// compiled rules from `rules` (compiled from `input` for a tenant missing there). Pure.
pub fn host_policy(
    mut input: PolicyInput,
    live: &[Attachment],
    host: &str,
    tenants: &BTreeSet<String>,
    rules: &mut BTreeMap<String, CompiledRules>,
) -> BTreeMap<String, TenantPolicy> {
    let known: BTreeSet<String> = input.endpoints.iter().map(|e| e.id.clone()).collect();
    input.endpoints.extend(
        local_members(live, host)
            .into_iter()
            .filter(|m| !known.contains(&m.id)),
    );
    rules.retain(|t, _| tenants.contains(t));
    tenants
        .iter()
        .map(|t| {
            let compiled = rules
                .entry(t.clone())
                .or_insert_with(|| compile_rules(&input, t));
            (
                t.clone(),
                compile_members(&input, Scope::Host(host), t, compiled),
            )
        })
        .collect()
}

impl Agent {
    /// Whether endpoints of `tenant`'s group `group` have rules to enforce (per the mirror).
    pub fn group_has_rules(&self, tenant: &str, group: &str) -> bool {
        let guard = self.mirror.read();
        let Some(m) = guard.as_ref() else {
            return false;
        };
        let Some(g) = m.groups.get(&format!("{tenant}:{group}")) else {
            return false;
        };
        g.policies.iter().any(|p| {
            let prefix = format!("{tenant}:{p}:");
            m.rules
                .range(prefix.clone()..)
                .next()
                .is_some_and(|(k, _)| k.starts_with(&prefix))
        })
    }

    /// Kicks the policy loop and waits (up to `timeout`) for a pass that started after this
    /// call, so it saw every attachment recorded before it. Returns whether one finished.
    pub fn await_policy(&self, timeout: Duration) -> bool {
        let target = lock(&self.policy.passes).0 + 1;
        // In full: whatever an earlier pass concluded, the caller's datapath may have just appeared.
        self.policy.force_next.store(true, Ordering::SeqCst);
        self.policy.kick.kick();
        let guard = lock(&self.policy.passes);
        let (guard, _) = self
            .policy
            .passes_cond
            .wait_timeout_while(guard, timeout, |(_, done)| *done < target)
            .unwrap_or_else(|p| p.into_inner());
        guard.1 >= target
    }

    /// One enforcement pass (see the module docs), counted for [`Agent::await_policy`].
    pub fn enforce_policy(&self) -> PassStats {
        let number = {
            let mut p = lock(&self.policy.passes);
            p.0 += 1;
            p.0
        };
        let stats = self.policy_pass();
        let mut p = lock(&self.policy.passes);
        p.1 = p.1.max(number);
        self.policy.passes_cond.notify_all();
        stats
    }

    fn policy_pass(&self) -> PassStats {
        let started = Instant::now();
        let live = self.records.list();
        let fingerprint = records_fingerprint(&live);
        let force = self.policy.force_next.swap(false, Ordering::SeqCst);
        let guard = self.mirror.read();
        // Without netmaster's state nothing is known to enforce: keep what is installed.
        let Some(m) = guard.as_ref() else {
            return PassStats::default();
        };
        let (revision, inputs) = (m.revision, (m.policy_revision, fingerprint));
        if !force && *lock(&self.policy.inputs) == Some(inputs) {
            // Nothing policy depends on changed since a pass that applied without error.
            drop(guard);
            self.policy.enforced.fetch_max(revision, Ordering::SeqCst);
            let mut last = lock(&self.policy.last);
            last.revision = revision;
            last.changed = 0;
            last.duration = started.elapsed();
            return *last;
        }
        let tenants: BTreeSet<String> = live.iter().map(|a| a.tenant.clone()).collect();
        let mut cache = lock(&self.policy.rules);
        if force || cache.0 != m.rules_revision {
            *cache = (m.rules_revision, BTreeMap::new());
        }
        // The rule side is compiled again only when it changed (or a tenant is new here):
        // endpoint churn costs a pass linear in the endpoints, not in the rules.
        let input = if tenants.iter().all(|t| cache.1.contains_key(t)) {
            m.policy_members_input()
        } else {
            m.policy_input()
        };
        drop(guard);
        let wanted = host_policy(input, &live, &self.settings.host, &tenants, &mut cache.1);
        drop(cache);
        let mut stats = PassStats {
            revision,
            ..Default::default()
        };
        // A tenant whose forwarding is not there yet installed nothing: the next pass must not
        // take these inputs as done.
        let mut pending = false;
        for (tenant, p) in &wanted {
            stats.rules += p.rule_count();
            stats.elements += p.element_count();
            // Always asked: the driver knows whether its datapath still holds `p` (an unchanged
            // IR in a tenant namespace made again since is installed again).
            match self.pol.apply(p) {
                Ok(s) => {
                    stats.changed += usize::from(s.changed);
                    pending |= s.pending;
                }
                Err(e) => {
                    stats.errors += 1;
                    tracing::warn!(tenant = %tenant, "policy not applied: {e}");
                }
            }
        }
        let now: BTreeSet<String> = wanted.keys().cloned().collect();
        let before = std::mem::replace(&mut *lock(&self.policy.tenants), now);
        for gone in before.iter().filter(|t| !wanted.contains_key(*t)) {
            self.pol.forget(gone);
        }
        stats.duration = started.elapsed();
        if stats.errors == 0 {
            self.policy.enforced.fetch_max(revision, Ordering::SeqCst);
        }
        *lock(&self.policy.inputs) = (stats.errors == 0 && !pending).then_some(inputs);
        if stats.changed > 0 {
            tracing::debug!(revision, rules = stats.rules, elements = stats.elements, took = ?stats.duration, "policy applied");
        }
        *lock(&self.policy.last) = stats;
        stats
    }

    /// The report netmaster gets: enforced revision, sizes, counters. The counters are read
    /// from the driver only when `fresh_counters` (the periodic report: reading them costs an
    /// `nft` run per tenant); the report right after a change leaves them out (netmaster keeps
    /// the previous ones), so it stays small and cheap.
    pub fn policy_report(&self, fresh_counters: bool) -> PolicyReport {
        let last = self.policy.last_pass();
        let read = || match self.pol.counters() {
            Ok(c) => Some(
                c.into_iter()
                    .map(|(k, c)| {
                        (
                            k,
                            RuleCounter {
                                packets: c.packets,
                                bytes: c.bytes,
                            },
                        )
                    })
                    .collect(),
            ),
            Err(e) => {
                tracing::debug!("policy counters not read: {e}");
                None
            }
        };
        let counters = if fresh_counters { read() } else { None };
        PolicyReport {
            hostname: self.settings.host.clone(),
            revision: self.policy.enforced_revision(),
            rules: last.rules as u64,
            elements: last.elements as u64,
            counters,
        }
    }
}

/// The enforcement loop: a pass per kick (and one every `interval` as a safety net).
pub fn policy_loop(agent: &Agent, stop: &Stop, interval: Duration) {
    policy_loop_observed(agent, stop, interval, |_| {});
}

/// [`policy_loop`], handing every pass's numbers to `observe` (the metrics).
pub fn policy_loop_observed(
    agent: &Agent,
    stop: &Stop,
    interval: Duration,
    observe: impl Fn(&PassStats),
) {
    while !stop.is_raised() {
        if agent.policy.kick.wait(interval) {
            // Kicks close together (an ADD's end and its endpoint's mirror event) make one pass.
            std::thread::sleep(COALESCE);
            agent.policy.kick.wait(Duration::ZERO);
        } else {
            // The periodic safety pass: in full, whatever the inputs say.
            agent.policy.force_next.store(true, Ordering::SeqCst);
        }
        if stop.is_raised() {
            return;
        }
        let s = agent.enforce_policy();
        // Netprofiles follow the same changes (see `qos`).
        agent.enforce_qos();
        observe(&s);
        // The reporter sends only when the enforced revision moved.
        agent.policy.report_kick.kick();
    }
}

/// How often counters are reported without a change.
pub const REPORT_INTERVAL: Duration = Duration::from_secs(10);
/// At most one report per this interval (a burst of changes sends one report, not one each).
const REPORT_SPACING: Duration = Duration::from_millis(20);

/// The reporter loop: a report after a pass that moved the enforced revision (spaced, without
/// counters: netmaster keeps the previous ones) and every [`REPORT_INTERVAL`] (with the counters
/// read anew).
pub fn report_loop(agent: &Agent, stop: &Stop) {
    let mut sent = 0u64;
    while !stop.is_raised() {
        let kicked = agent.policy.report_kick.wait(REPORT_INTERVAL);
        if stop.is_raised() {
            return;
        }
        let revision = agent.policy.enforced_revision();
        if kicked && revision == sent {
            continue;
        }
        if let Err(e) = agent.nm.policy_report(&agent.policy_report(!kicked)) {
            tracing::debug!("policy report not sent: {e}");
            continue;
        }
        sent = revision;
        std::thread::sleep(REPORT_SPACING);
    }
}
