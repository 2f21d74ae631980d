//! The CNI environment parameters (`CNI_COMMAND`, `CNI_CONTAINERID`, ...) and their validation.
//!
//! [`CniEnv`] is a plain value so [`crate::run_plugin`] can be called with any environment; only
//! [`CniEnv::from_process`] touches the real one. An empty variable counts as missing (as libcni).

use std::collections::BTreeMap;

use crate::error::CniError;

/// The CNI operation requested by `CNI_COMMAND`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    /// Add the container to the network.
    Add,
    /// Remove the container from the network.
    Del,
    /// Check the attachment against `prevResult`.
    Check,
    /// Report whether ADD can be serviced (1.1.0).
    Status,
    /// Remove stale attachments (1.1.0).
    Gc,
    /// Report supported versions.
    Version,
}

impl Command {
    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "ADD" => Command::Add,
            "DEL" => Command::Del,
            "CHECK" => Command::Check,
            "STATUS" => Command::Status,
            "GC" => Command::Gc,
            "VERSION" => Command::Version,
            _ => return None,
        })
    }

    /// The `CNI_COMMAND` spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Command::Add => "ADD",
            Command::Del => "DEL",
            Command::Check => "CHECK",
            Command::Status => "STATUS",
            Command::Gc => "GC",
            Command::Version => "VERSION",
        }
    }

    /// Variables the plugin needs for this command (CNI_PATH is never needed: nothing is delegated).
    fn required(self) -> &'static [&'static str] {
        match self {
            Command::Add | Command::Check => &[CONTAINERID, NETNS, IFNAME],
            Command::Del => &[CONTAINERID, IFNAME],
            Command::Status | Command::Gc | Command::Version => &[],
        }
    }
}

const COMMAND: &str = "CNI_COMMAND";
const CONTAINERID: &str = "CNI_CONTAINERID";
const NETNS: &str = "CNI_NETNS";
const IFNAME: &str = "CNI_IFNAME";
const ARGS: &str = "CNI_ARGS";
const PATH: &str = "CNI_PATH";

/// The CNI environment variables as given (empty values are treated as absent).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CniEnv {
    /// `CNI_COMMAND`.
    pub command: Option<String>,
    /// `CNI_CONTAINERID`.
    pub container_id: Option<String>,
    /// `CNI_NETNS`.
    pub netns: Option<String>,
    /// `CNI_IFNAME`.
    pub ifname: Option<String>,
    /// `CNI_ARGS` (`K=V;K=V`).
    pub args: Option<String>,
    /// `CNI_PATH`.
    pub path: Option<String>,
}

impl CniEnv {
    /// Reads the process environment.
    pub fn from_process() -> Self {
        Self::from_vars(
            std::env::vars_os()
                .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?))),
        )
    }

    /// Builds from `(name, value)` pairs; unknown names are ignored.
    pub fn from_vars<K: AsRef<str>, V: Into<String>>(
        vars: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        let mut env = CniEnv::default();
        for (k, v) in vars {
            let v: String = v.into();
            let slot = match k.as_ref() {
                COMMAND => &mut env.command,
                CONTAINERID => &mut env.container_id,
                NETNS => &mut env.netns,
                IFNAME => &mut env.ifname,
                ARGS => &mut env.args,
                PATH => &mut env.path,
                _ => continue,
            };
            *slot = Some(v);
        }
        env
    }

    fn get(&self, name: &str) -> Option<&str> {
        let v = match name {
            COMMAND => &self.command,
            CONTAINERID => &self.container_id,
            NETNS => &self.netns,
            IFNAME => &self.ifname,
            ARGS => &self.args,
            PATH => &self.path,
            _ => return None,
        };
        v.as_deref().filter(|s| !s.is_empty())
    }

    /// Validates the environment for its command: code 4 naming every missing or invalid variable.
    pub fn validate(&self) -> Result<Invocation, CniError> {
        let Some(cmd_str) = self.get(COMMAND) else {
            return Err(CniError::env(format!(
                "required env variables [{COMMAND}] missing"
            )));
        };
        let command = Command::parse(cmd_str)
            .ok_or_else(|| CniError::env(format!("unknown {COMMAND}: {cmd_str}")))?;
        let missing: Vec<&str> = command
            .required()
            .iter()
            .copied()
            .filter(|name| self.get(name).is_none())
            .collect();
        if !missing.is_empty() {
            return Err(CniError::env(format!(
                "required env variables [{}] missing",
                missing.join(",")
            )));
        }
        let container_id = self.get(CONTAINERID).map(str::to_string);
        let ifname = self.get(IFNAME).map(str::to_string);
        if command != Command::Version && command.required().contains(&CONTAINERID) {
            if let Some(id) = &container_id {
                validate_container_id(id)?;
            }
            if let Some(name) = &ifname {
                validate_ifname(name)?;
            }
        }
        let args = match self.get(ARGS) {
            Some(a) => parse_cni_args(a)?,
            None => BTreeMap::new(),
        };
        Ok(Invocation {
            command,
            container_id: container_id.unwrap_or_default(),
            netns: self.get(NETNS).map(str::to_string),
            ifname: ifname.unwrap_or_default(),
            args,
        })
    }
}

/// A validated invocation: the command and the attachment parameters it needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invocation {
    /// The command.
    pub command: Command,
    /// `CNI_CONTAINERID` (empty for STATUS/GC/VERSION).
    pub container_id: String,
    /// `CNI_NETNS` (optional for DEL).
    pub netns: Option<String>,
    /// `CNI_IFNAME` (empty for STATUS/GC/VERSION).
    pub ifname: String,
    /// `CNI_ARGS` parsed into key/value pairs.
    pub args: BTreeMap<String, String>,
}

fn validate_container_id(id: &str) -> Result<(), CniError> {
    let mut chars = id.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric());
    let rest_ok = chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if first_ok && rest_ok {
        Ok(())
    } else {
        Err(
            CniError::env(format!("invalid characters in {CONTAINERID}"))
                .with_details(id.to_string()),
        )
    }
}

fn validate_ifname(name: &str) -> Result<(), CniError> {
    let problem = if name == "." || name == ".." {
        Some("must not be . or ..")
    } else if name.len() > 15 {
        Some("must be less than 16 characters")
    } else if name
        .chars()
        .any(|c| c == '/' || c == ':' || c.is_whitespace())
    {
        Some("must not contain / or : or whitespace")
    } else {
        None
    };
    match problem {
        None => Ok(()),
        Some(p) => Err(CniError::env(format!("invalid {IFNAME} \"{name}\": {p}"))),
    }
}

/// Parses `CNI_ARGS` (`K=V;K=V`); a pair without `=` is code 4 naming `CNI_ARGS`.
pub fn parse_cni_args(s: &str) -> Result<BTreeMap<String, String>, CniError> {
    let mut out = BTreeMap::new();
    for pair in s.split(';').filter(|p| !p.trim().is_empty()) {
        let (k, v) = pair
            .split_once('=')
            .ok_or_else(|| CniError::env(format!("invalid {ARGS}: pair \"{pair}\" has no '='")))?;
        out.insert(k.trim().to_string(), v.trim().to_string());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::codes;

    fn env(pairs: &[(&str, &str)]) -> CniEnv {
        CniEnv::from_vars(pairs.iter().map(|(k, v)| (*k, v.to_string())))
    }

    #[test]
    fn missing_variables_are_named() {
        let e = env(&[]).validate().expect_err("no command");
        assert_eq!(e.code, codes::INVALID_ENV);
        assert!(e.msg.contains("CNI_COMMAND"));
        let e = env(&[("CNI_COMMAND", "ADD"), ("CNI_IFNAME", "eth0")])
            .validate()
            .expect_err("missing");
        assert_eq!(e.code, codes::INVALID_ENV);
        assert!(
            e.msg.contains("CNI_CONTAINERID") && e.msg.contains("CNI_NETNS"),
            "{}",
            e.msg
        );
        assert!(!e.msg.contains("CNI_IFNAME"));
    }

    #[test]
    fn del_does_not_need_netns_and_version_needs_nothing() {
        let inv = env(&[
            ("CNI_COMMAND", "DEL"),
            ("CNI_CONTAINERID", "c1"),
            ("CNI_IFNAME", "eth0"),
        ])
        .validate()
        .expect("valid DEL");
        assert_eq!(inv.netns, None);
        assert!(env(&[("CNI_COMMAND", "VERSION")]).validate().is_ok());
        assert!(env(&[("CNI_COMMAND", "GC")]).validate().is_ok());
    }

    #[test]
    fn unknown_command_and_bad_values() {
        assert!(env(&[("CNI_COMMAND", "FOO")])
            .validate()
            .expect_err("unknown")
            .msg
            .contains("FOO"));
        let base = [
            ("CNI_COMMAND", "ADD"),
            ("CNI_NETNS", "/run/netns/x"),
            ("CNI_IFNAME", "eth0"),
        ];
        let mut bad_id = base.to_vec();
        bad_id.push(("CNI_CONTAINERID", "-bad"));
        assert!(env(&bad_id)
            .validate()
            .expect_err("id")
            .msg
            .contains("CNI_CONTAINERID"));
        let bad_if = [
            ("CNI_COMMAND", "ADD"),
            ("CNI_NETNS", "/x"),
            ("CNI_CONTAINERID", "c"),
            ("CNI_IFNAME", "a:b"),
        ];
        assert!(env(&bad_if)
            .validate()
            .expect_err("ifname")
            .msg
            .contains("CNI_IFNAME"));
    }

    #[test]
    fn cni_args_parse() {
        let m =
            parse_cni_args("IgnoreUnknown=1;K8S_POD_NAME=web;io.contiv.tenant=t1;").expect("parse");
        assert_eq!(m.get("K8S_POD_NAME").map(String::as_str), Some("web"));
        assert_eq!(m.get("io.contiv.tenant").map(String::as_str), Some("t1"));
        assert_eq!(
            parse_cni_args("novalue").map_err(|e| e.code),
            Err(codes::INVALID_ENV)
        );
    }
}
