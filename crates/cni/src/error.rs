//! CNI error codes and the plugin's error type.
//!
//! Every failure of the plugin ends up as a [`CniError`]: a well-known CNI code (spec section 5,
//! "Error"), a short message and optional details. It is printed on stdout as the spec's error
//! result `{"cniVersion","code","msg","details"}` with a non-zero exit status.

use serde::{Deserialize, Serialize};

/// Well-known CNI error codes (0-99 are reserved by the spec, 100+ are plugin specific).
pub mod codes {
    /// Incompatible CNI version.
    pub const INCOMPATIBLE_VERSION: u32 = 1;
    /// Unsupported field in network configuration.
    pub const UNSUPPORTED_FIELD: u32 = 2;
    /// Container unknown or does not exist.
    pub const UNKNOWN_CONTAINER: u32 = 3;
    /// Invalid necessary environment variables; the message names them.
    pub const INVALID_ENV: u32 = 4;
    /// I/O failure.
    pub const IO_FAILURE: u32 = 5;
    /// Failed to decode content.
    pub const DECODE_FAILURE: u32 = 6;
    /// Invalid network config.
    pub const INVALID_NETCONF: u32 = 7;
    /// Try again later (transient condition).
    pub const TRY_AGAIN_LATER: u32 = 11;
    /// STATUS: the plugin cannot service ADD requests.
    pub const PLUGIN_NOT_AVAILABLE: u32 = 50;
    /// STATUS: not available, and existing containers may have limited connectivity.
    pub const PLUGIN_NOT_AVAILABLE_LIMITED: u32 = 51;
    /// Contiv specific: CHECK found the attachment different from `prevResult`.
    pub const CHECK_MISMATCH: u32 = 100;
    /// Contiv specific: the agent answered something that is not the agreed protocol.
    pub const AGENT_PROTOCOL: u32 = 101;
    /// Internal error (same value libcni uses).
    pub const INTERNAL: u32 = 999;
}

/// A CNI error: code, short message, longer details.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("CNI error {code}: {msg}{}", if .details.is_empty() { String::new() } else { format!(" ({})", .details) })]
pub struct CniError {
    /// The CNI error code (see [`codes`]).
    pub code: u32,
    /// Short message characterizing the error.
    pub msg: String,
    /// Longer description (may be empty).
    pub details: String,
}

impl CniError {
    /// An error with a code and a message, no details.
    pub fn new(code: u32, msg: impl Into<String>) -> Self {
        Self {
            code,
            msg: msg.into(),
            details: String::new(),
        }
    }

    /// Adds details.
    pub fn with_details(mut self, details: impl Into<String>) -> Self {
        self.details = details.into();
        self
    }

    /// Code 4 naming the invalid or missing variables.
    pub fn env(msg: impl Into<String>) -> Self {
        Self::new(codes::INVALID_ENV, msg)
    }

    /// Code 6 (decode failure).
    pub fn decode(msg: impl Into<String>) -> Self {
        Self::new(codes::DECODE_FAILURE, msg)
    }

    /// Code 7 (invalid network configuration).
    pub fn netconf(msg: impl Into<String>) -> Self {
        Self::new(codes::INVALID_NETCONF, msg)
    }

    /// Code 1 (incompatible CNI version).
    pub fn version(msg: impl Into<String>) -> Self {
        Self::new(codes::INCOMPATIBLE_VERSION, msg)
    }

    /// The spec's error result for this error, tagged with `cni_version`.
    pub fn to_result(&self, cni_version: &str) -> ErrorResult {
        ErrorResult {
            cni_version: cni_version.to_string(),
            code: self.code,
            msg: self.msg.clone(),
            details: self.details.clone(),
        }
    }
}

/// The error result printed on stdout (spec section 5, "Error").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorResult {
    /// Protocol version in use.
    #[serde(rename = "cniVersion")]
    pub cni_version: String,
    /// Error code.
    pub code: u32,
    /// Short message.
    pub msg: String,
    /// Longer message.
    #[serde(default)]
    pub details: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_result_has_all_spec_keys() {
        let e = CniError::new(codes::TRY_AGAIN_LATER, "agent down").with_details("connect refused");
        let v = serde_json::to_value(e.to_result("1.1.0")).expect("serialize");
        assert_eq!(
            v,
            serde_json::json!({"cniVersion":"1.1.0","code":11,"msg":"agent down","details":"connect refused"})
        );
        assert_eq!(e.to_string(), "CNI error 11: agent down (connect refused)");
    }
}
