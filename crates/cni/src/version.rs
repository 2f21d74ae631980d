//! CNI spec versions this plugin speaks, and what each one allows.
//!
//! The result format depends on the version: 0.3.x/0.4.0 tag every IP with `"version"`, 1.0.0 drops
//! it, 1.1.0 adds interface `mtu`/`socketPath`/`pciID` and route `mtu`/`advmss`/`priority`/`table`/
//! `scope`. CHECK exists from 0.4.0, STATUS and GC from 1.1.0.

use std::fmt;

use crate::error::CniError;

/// A supported CNI spec version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum CniVersion {
    /// 0.3.0 (same result format as 0.3.1).
    V0_3_0,
    /// 0.3.1.
    V0_3_1,
    /// 0.4.0: CHECK, prevResult on DEL.
    V0_4_0,
    /// 1.0.0: no per-IP `version`.
    V1_0_0,
    /// 1.1.0: STATUS, GC, richer interfaces and routes.
    V1_1_0,
}

/// Every version the plugin supports, oldest first (reported by VERSION).
pub const SUPPORTED_VERSIONS: [CniVersion; 5] = [
    CniVersion::V0_3_0,
    CniVersion::V0_3_1,
    CniVersion::V0_4_0,
    CniVersion::V1_0_0,
    CniVersion::V1_1_0,
];

impl CniVersion {
    /// The newest supported version.
    pub const LATEST: CniVersion = CniVersion::V1_1_0;

    /// The version string, e.g. `"1.1.0"`.
    pub fn as_str(self) -> &'static str {
        match self {
            CniVersion::V0_3_0 => "0.3.0",
            CniVersion::V0_3_1 => "0.3.1",
            CniVersion::V0_4_0 => "0.4.0",
            CniVersion::V1_0_0 => "1.0.0",
            CniVersion::V1_1_0 => "1.1.0",
        }
    }

    /// Parses a supported version; anything else is error code 1.
    pub fn parse(s: &str) -> Result<Self, CniError> {
        SUPPORTED_VERSIONS
            .iter()
            .copied()
            .find(|v| v.as_str() == s)
            .ok_or_else(|| {
                CniError::version("incompatible CNI versions").with_details(format!(
                    "config is \"{s}\", plugin supports [{}]",
                    supported_list().join(", ")
                ))
            })
    }

    /// Results carry `"version"` on every IP (before 1.0.0).
    pub fn ips_have_version(self) -> bool {
        self < CniVersion::V1_0_0
    }

    /// CHECK is defined (0.4.0 and later).
    pub fn has_check(self) -> bool {
        self >= CniVersion::V0_4_0
    }

    /// STATUS and GC are defined, as are the 1.1.0 interface and route fields.
    pub fn is_1_1(self) -> bool {
        self >= CniVersion::V1_1_0
    }
}

impl fmt::Display for CniVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The supported versions as strings, oldest first.
pub fn supported_list() -> Vec<&'static str> {
    SUPPORTED_VERSIONS.iter().map(|v| v.as_str()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::codes;

    #[test]
    fn parses_supported_and_rejects_others_with_code_1() {
        for v in SUPPORTED_VERSIONS {
            assert_eq!(CniVersion::parse(v.as_str()), Ok(v));
        }
        for bad in ["0.2.0", "0.1.0", "2.0.0", "", "1.1", "x"] {
            assert_eq!(
                CniVersion::parse(bad).map_err(|e| e.code),
                Err(codes::INCOMPATIBLE_VERSION)
            );
        }
    }

    #[test]
    fn feature_gates() {
        assert!(CniVersion::V0_3_1.ips_have_version());
        assert!(!CniVersion::V1_0_0.ips_have_version());
        assert!(!CniVersion::V0_3_1.has_check());
        assert!(CniVersion::V0_4_0.has_check());
        assert!(!CniVersion::V1_0_0.is_1_1());
        assert!(CniVersion::V1_1_0.is_1_1());
    }
}
