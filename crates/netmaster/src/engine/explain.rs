//! `GET /api/v1/policyExplain/`: which rule decides a new connection between two endpoints (or
//! addresses) of a tenant, computed from netmaster's state with the same compiler the agents use
//! (`contiv_policy`, cluster scope), plus whether the hosts involved enforce the latest revision.

use std::net::Ipv4Addr;

use contiv_api::policy::{ExplainDecision, ExplainSide, Explanation};
use contiv_api::EndpointState;
use contiv_policy::{compile_tenant, input_from_objects, Decision, Flow, Protocol, Scope};
use serde::Deserialize;

use super::{Engine, DEFAULT_TENANT};
use crate::error::{ApiError, ApiResult};
use crate::rules::require_tenant;
use crate::state::State;

/// The query: `tenant` (default `default`), `from`/`to` (endpoint id, container name, container
/// id, or an IPv4 address), `protocol` (default tcp), `port` (default 0: none).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct ExplainQuery {
    pub tenant: String,
    pub from: String,
    pub to: String,
    pub protocol: String,
    pub port: String,
}

fn decision(d: &Decision) -> ExplainDecision {
    ExplainDecision {
        group: d.group.clone(),
        rule: d.rule.as_ref().map(ToString::to_string),
        action: d.action.to_string(),
    }
}

fn parse_flow_params(q: &ExplainQuery) -> ApiResult<(Protocol, u16)> {
    let proto = if q.protocol.is_empty() {
        "tcp"
    } else {
        q.protocol.as_str()
    };
    let protocol: Protocol = proto
        .parse()
        .map_err(|e: contiv_policy::RuleError| ApiError::bad_request(e.0))?;
    let port: u16 = if q.port.is_empty() {
        0
    } else {
        q.port
            .parse()
            .map_err(|_| ApiError::bad_request(format!("invalid port {:?} (0-65535)", q.port)))?
    };
    if port != 0 && !protocol.has_ports() {
        return Err(ApiError::bad_request(format!(
            "port {port} needs protocol tcp or udp (protocol is {protocol})"
        )));
    }
    Ok((protocol, port))
}

/// Finds `what` among the tenant's endpoints: an IPv4 address (of an endpoint or not), an
/// endpoint id (or Contiv's `endpointID`), a container name or a container id.
fn resolve(
    st: &State,
    tenant: &str,
    what: &str,
    which: &str,
) -> ApiResult<(Ipv4Addr, Option<EndpointState>)> {
    if what.is_empty() {
        return Err(ApiError::bad_request(format!(
            "missing '{which}': an endpoint or an IPv4 address"
        )));
    }
    let of_tenant = || st.endpoints.values().filter(|e| e.tenant_name == tenant);
    if let Ok(ip) = what.parse::<Ipv4Addr>() {
        let ep = of_tenant()
            .find(|e| e.ip_address.parse::<Ipv4Addr>() == Ok(ip))
            .cloned();
        return Ok((ip, ep));
    }
    let found: Vec<&EndpointState> = of_tenant()
        .filter(|e| {
            [&e.id, &e.endpoint_id, &e.ep_common_name, &e.container_id]
                .iter()
                .any(|v| *v == what)
        })
        .collect();
    let ep = match found.as_slice() {
        [] => {
            return Err(ApiError::not_found(format!(
                "endpoint {what} not found in tenant {tenant}"
            )))
        }
        [one] => *one,
        many => {
            let ids: Vec<&str> = many.iter().map(|e| e.id.as_str()).collect();
            return Err(ApiError::bad_request(format!(
                "{what} names {} endpoints ({}): use an endpoint id",
                many.len(),
                ids.join(", ")
            )));
        }
    };
    let ip = ep
        .ip_address
        .parse::<Ipv4Addr>()
        .map_err(|_| ApiError::bad_request(format!("endpoint {} has no IPv4 address", ep.id)))?;
    Ok((ip, Some(ep.clone())))
}

fn side(ip: Ipv4Addr, ep: Option<&EndpointState>) -> ExplainSide {
    let non_empty = |s: &str| (!s.is_empty()).then(|| s.to_owned());
    ExplainSide {
        ip: ip.to_string(),
        endpoint: ep.map(|e| e.id.clone()),
        group: ep.and_then(|e| non_empty(&e.service_name)),
        host: ep.and_then(|e| non_empty(&e.homing_host)),
    }
}

impl Engine {
    /// Explains the verdict on a new connection (see [`ExplainQuery`]).
    pub fn policy_explain(&self, q: &ExplainQuery) -> ApiResult<Explanation> {
        let tenant = if q.tenant.is_empty() {
            DEFAULT_TENANT
        } else {
            q.tenant.as_str()
        };
        let (protocol, port) = parse_flow_params(q)?;
        let (from, to, verdict) = self.read(|st| {
            require_tenant(st, tenant, true)?;
            let (src, from_ep) = resolve(st, tenant, &q.from, "from")?;
            let (dst, to_ep) = resolve(st, tenant, &q.to, "to")?;
            let (input, _bad) = input_from_objects(
                st.networks.values(),
                st.epgs.values(),
                st.rules.values(),
                st.endpoints.values(),
            );
            let policy = compile_tenant(&input, Scope::Cluster, tenant);
            let verdict = policy.verdict(&Flow {
                src,
                dst,
                protocol,
                port,
            });
            Ok::<_, ApiError>((
                side(src, from_ep.as_ref()),
                side(dst, to_ep.as_ref()),
                verdict,
            ))
        })?;
        let mut hosts: Vec<&str> = [&from.host, &to.host]
            .into_iter()
            .flatten()
            .map(String::as_str)
            .collect();
        hosts.dedup();
        let rule = verdict.deciding_rule().map(ToString::to_string);
        Ok(Explanation {
            tenant: tenant.to_owned(),
            protocol: protocol.to_string(),
            port,
            verdict: verdict.action.to_string(),
            reason: rule.is_none().then(|| "no rule matched".to_owned()),
            rule,
            egress: decision(&verdict.egress),
            ingress: decision(&verdict.ingress),
            revision: self.published_revision(),
            hosts: self.host_policy_status(Some(&hosts)),
            from,
            to,
        })
    }
}
