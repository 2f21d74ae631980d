//! Contiv's policy model compiled for enforcement (no I/O).
//!
//! Semantics (what datapaths enforce and `explain` reports):
//! - a group's `policies` contribute their rules; `in` rules of the destination's group match the
//!   source, `out` rules of the source's group match the destination;
//! - among matching rules the highest priority wins, deny wins at equal priority, no match allows;
//!   a group without rules (and an endpoint without a group) allows everything;
//! - a new connection passes when the source's out-decision and the destination's in-decision
//!   both allow; packets of an established connection always pass (datapaths are stateful).
//!
//! [`spec`] parses wire rules into typed values (refusing bad ones), [`compile`] turns typed
//! groups, rules, networks and endpoints into the per-tenant IR ([`ir`]), [`explain`] evaluates
//! the IR for one flow.

pub mod compile;
pub mod explain;
pub mod ir;
pub mod objects;
pub mod spec;

pub use compile::{
    compile, compile_members, compile_rules, compile_tenant, CompiledRules, PolicyInput, Scope,
};
pub use explain::{Decision, Flow, Verdict};
pub use ir::{CompiledRule, GroupRules, HostPolicy, MemberPlaces, PeerMatch, TenantPolicy};
pub use objects::{input_from_objects, parse_subnet};
pub use spec::{
    Action, AddrMatch, Direction, GroupRef, Member, NetworkRef, Peer, Protocol, RuleError, RuleId,
    RuleSpec,
};
