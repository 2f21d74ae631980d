//! The network configuration the runtime streams on stdin, and where tenant/network/group come from.
//!
//! Contiv's own keys: `agentSocket` (unix socket of the host agent), `agentTimeoutSecs`,
//! `pendingDeleteDir` (see [`crate::spool`]), and the fallbacks `tenant`, `network`, `group`.
//! Unknown keys are ignored, as the spec allows.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;

use crate::agent_api::{AttachmentIdentity, DEFAULT_AGENT_SOCKET, DEFAULT_PENDING_DELETE_DIR};
use crate::error::CniError;

/// Label naming the Contiv tenant.
pub const LABEL_TENANT: &str = "io.contiv.tenant";
/// Label naming the Contiv network.
pub const LABEL_NETWORK: &str = "io.contiv.network";
/// Label naming the Contiv endpoint group.
pub const LABEL_GROUP: &str = "io.contiv.net-group";
/// Tenant when nothing names one.
pub const DEFAULT_TENANT: &str = "default";
/// Network when nothing names one.
pub const DEFAULT_NETWORK: &str = "default-net";
/// Agent timeout when the netconf does not set `agentTimeoutSecs`.
pub const DEFAULT_AGENT_TIMEOUT: Duration = Duration::from_secs(60);

/// One entry of `cni.dev/valid-attachments` (GC).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ValidAttachment {
    /// `CNI_CONTAINERID` given at ADD.
    #[serde(rename = "containerID")]
    pub container_id: String,
    /// `CNI_IFNAME` given at ADD.
    pub ifname: String,
}

/// The plugin configuration object, as far as contivk8s reads it.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NetConf {
    /// `cniVersion` (absent means 0.1.0, as libcni reads it).
    #[serde(default)]
    pub cni_version: Option<String>,
    /// `name` of the network configuration.
    #[serde(default)]
    pub name: String,
    /// `type` (the plugin binary name).
    #[serde(default, rename = "type")]
    pub plugin_type: Option<String>,
    /// Unix socket of the host agent.
    #[serde(default)]
    pub agent_socket: Option<String>,
    /// Timeout of each agent read/write, in seconds.
    #[serde(default)]
    pub agent_timeout_secs: Option<u64>,
    /// Directory where undeliverable DELs are recorded.
    #[serde(default)]
    pub pending_delete_dir: Option<String>,
    /// Fallback tenant.
    #[serde(default)]
    pub tenant: Option<String>,
    /// Fallback network.
    #[serde(default)]
    pub network: Option<String>,
    /// Fallback endpoint group.
    #[serde(default)]
    pub group: Option<String>,
    /// `args` (conventions: `args.cni.labels`).
    #[serde(default)]
    pub args: Option<Value>,
    /// `runtimeConfig` (capability args; contivk8s reads `labels`).
    #[serde(default)]
    pub runtime_config: Option<Value>,
    /// `prevResult` (CHECK, DEL, chained ADD), decoded later per version.
    #[serde(default)]
    pub prev_result: Option<Value>,
    /// `cni.dev/valid-attachments` (GC).
    #[serde(default, rename = "cni.dev/valid-attachments")]
    pub valid_attachments: Option<Vec<ValidAttachment>>,
    /// `cni.dev/attachments`: the name an earlier spec text used; libcni sends both.
    #[serde(default, rename = "cni.dev/attachments")]
    pub attachments_legacy: Option<Vec<ValidAttachment>>,
}

impl NetConf {
    /// Decodes stdin: code 6 when it is not a JSON object of the expected shape.
    pub fn decode(stdin: &[u8]) -> Result<Self, CniError> {
        let value: Value = serde_json::from_slice(stdin).map_err(|e| {
            CniError::decode("error unmarshalling network config").with_details(e.to_string())
        })?;
        if !value.is_object() {
            return Err(CniError::decode("error unmarshalling network config")
                .with_details("network config is not a JSON object"));
        }
        serde_json::from_value(value).map_err(|e| {
            CniError::decode("error unmarshalling network config").with_details(e.to_string())
        })
    }

    /// The `cniVersion` string as libcni reads it.
    pub fn version_str(&self) -> &str {
        self.cni_version.as_deref().unwrap_or("0.1.0")
    }

    /// Validates `name` (code 7): present, starts alphanumeric, then alphanumerics, `_`, `.`, `-`.
    pub fn validate_name(&self) -> Result<(), CniError> {
        if self.name.is_empty() {
            return Err(CniError::netconf("missing network name"));
        }
        let mut chars = self.name.chars();
        let ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
            && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
        if ok {
            Ok(())
        } else {
            Err(CniError::netconf(format!(
                "invalid characters in network name \"{}\"",
                self.name
            )))
        }
    }

    /// The still-valid attachments for GC. libcni sends `null` when there are none, so absent
    /// means none.
    pub fn gc_valid_attachments(&self) -> Vec<ValidAttachment> {
        self.valid_attachments
            .clone()
            .or_else(|| self.attachments_legacy.clone())
            .unwrap_or_default()
    }

    /// The agent socket path.
    pub fn agent_socket(&self) -> PathBuf {
        PathBuf::from(self.agent_socket.as_deref().unwrap_or(DEFAULT_AGENT_SOCKET))
    }

    /// The agent timeout.
    pub fn agent_timeout(&self) -> Duration {
        self.agent_timeout_secs
            .map_or(DEFAULT_AGENT_TIMEOUT, Duration::from_secs)
    }

    /// The pending-delete directory.
    pub fn pending_delete_dir(&self) -> PathBuf {
        PathBuf::from(
            self.pending_delete_dir
                .as_deref()
                .unwrap_or(DEFAULT_PENDING_DELETE_DIR),
        )
    }

    /// Tenant/network/group/pod for an attachment.
    ///
    /// Labels are merged from `CNI_ARGS` (every key not starting with `K8S_` and not
    /// `IgnoreUnknown`), then `runtimeConfig.labels`, then `args.cni.labels` (later wins: the
    /// conventions say `args` overrides `CNI_ARGS`). The `io.contiv.*` labels win over the netconf
    /// fields `tenant`/`network`/`group`, which win over `default`/`default-net`/no group.
    pub fn identity(&self, cni_args: &BTreeMap<String, String>) -> AttachmentIdentity {
        let mut labels: BTreeMap<String, String> = cni_args
            .iter()
            .filter(|(k, _)| !k.starts_with("K8S_") && k.as_str() != "IgnoreUnknown")
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        labels.extend(labels_at(
            self.runtime_config.as_ref().and_then(|v| v.get("labels")),
        ));
        labels.extend(labels_at(
            self.args
                .as_ref()
                .and_then(|v| v.get("cni"))
                .and_then(|v| v.get("labels")),
        ));
        let pick = |label: &str, field: &Option<String>| {
            labels
                .get(label)
                .filter(|v| !v.is_empty())
                .cloned()
                .or_else(|| field.clone().filter(|v| !v.is_empty()))
        };
        let arg = |k: &str| cni_args.get(k).filter(|v| !v.is_empty()).cloned();
        AttachmentIdentity {
            tenant: pick(LABEL_TENANT, &self.tenant).unwrap_or_else(|| DEFAULT_TENANT.to_string()),
            network: pick(LABEL_NETWORK, &self.network)
                .unwrap_or_else(|| DEFAULT_NETWORK.to_string()),
            group: pick(LABEL_GROUP, &self.group),
            pod_namespace: arg("K8S_POD_NAMESPACE"),
            pod_name: arg("K8S_POD_NAME"),
            pod_uid: arg("K8S_POD_UID"),
            labels,
        }
    }
}

/// Labels given as `[{"key":..,"value":..}]` (conventions) or as a `{"k":"v"}` map.
fn labels_at(v: Option<&Value>) -> Vec<(String, String)> {
    match v {
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(|item| {
                let k = item.get("key")?.as_str()?;
                let v = item.get("value")?.as_str()?;
                Some((k.to_string(), v.to_string()))
            })
            .collect(),
        Some(Value::Object(map)) => map
            .iter()
            .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
            .collect(),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::codes;

    fn args(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn decode_errors_are_code_6() {
        for bad in [&b"not json"[..], b"[1,2]", b"", br#"{"name": 5}"#] {
            assert_eq!(
                NetConf::decode(bad).map_err(|e| e.code),
                Err(codes::DECODE_FAILURE)
            );
        }
    }

    #[test]
    fn name_validation_is_code_7() {
        let conf = NetConf::decode(br#"{"cniVersion":"1.0.0"}"#).expect("decode");
        assert_eq!(
            conf.validate_name().map_err(|e| e.code),
            Err(codes::INVALID_NETCONF)
        );
        let conf = NetConf::decode(br#"{"name":"a/b"}"#).expect("decode");
        assert_eq!(
            conf.validate_name().map_err(|e| e.code),
            Err(codes::INVALID_NETCONF)
        );
        assert_eq!(conf.version_str(), "0.1.0");
    }

    #[test]
    fn identity_defaults() {
        let conf = NetConf::decode(br#"{"name":"n"}"#).expect("decode");
        let id = conf.identity(&BTreeMap::new());
        assert_eq!(
            (id.tenant.as_str(), id.network.as_str(), id.group),
            ("default", "default-net", None)
        );
    }

    #[test]
    fn identity_precedence() {
        let conf = NetConf::decode(
            br#"{"name":"n","tenant":"conf-t","network":"conf-n","group":"conf-g",
                 "runtimeConfig":{"labels":{"io.contiv.network":"rc-net"}},
                 "args":{"cni":{"labels":[{"key":"io.contiv.net-group","value":"args-g"},{"key":"app","value":"web"}]}}}"#,
        )
        .expect("decode");
        let cni_args = args(&[
            ("K8S_POD_NAMESPACE", "prod"),
            ("K8S_POD_NAME", "web-1"),
            ("IgnoreUnknown", "1"),
            ("io.contiv.tenant", "arg-t"),
            ("io.contiv.net-group", "arg-g"),
        ]);
        let id = conf.identity(&cni_args);
        assert_eq!(id.tenant, "arg-t");
        assert_eq!(id.network, "rc-net");
        assert_eq!(id.group.as_deref(), Some("args-g"));
        assert_eq!(id.pod_namespace.as_deref(), Some("prod"));
        assert_eq!(id.pod_name.as_deref(), Some("web-1"));
        assert_eq!(id.labels.get("app").map(String::as_str), Some("web"));
        assert!(
            !id.labels.contains_key("K8S_POD_NAME") && !id.labels.contains_key("IgnoreUnknown")
        );
        let id = conf.identity(&BTreeMap::new());
        assert_eq!(id.tenant, "conf-t");
    }

    #[test]
    fn contiv_keys_and_gc_attachments() {
        let conf = NetConf::decode(
            br#"{"name":"n","agentSocket":"/tmp/a.sock","agentTimeoutSecs":3,
                 "cni.dev/valid-attachments":[{"containerID":"c1","ifname":"eth0"}]}"#,
        )
        .expect("decode");
        assert_eq!(conf.agent_socket(), PathBuf::from("/tmp/a.sock"));
        assert_eq!(conf.agent_timeout(), Duration::from_secs(3));
        assert_eq!(conf.valid_attachments.as_ref().map(Vec::len), Some(1));
        let default = NetConf::decode(br#"{"name":"n"}"#).expect("decode");
        assert_eq!(default.agent_socket(), PathBuf::from(DEFAULT_AGENT_SOCKET));
    }
}
