//! The `netprofile` object (key `tenantName:profileName`), its link-sets and links (no oper).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{model_object, object_fields, NoOper};
use crate::format::source as p;
use crate::gojson::go_json;
use crate::link::Link;

/// Config of the Contiv object `NetProfile` as on the wire.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(remote = "Self", default)]
pub struct NetProfile {
    /// `key`: The object key.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub key: String,
    /// `DSCP`: DSCP.
    #[serde(rename = "DSCP", skip_serializing_if = "crate::gojson::is_zero")]
    pub dscp: i64,
    /// `bandwidth`: Allocated bandwidth.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub bandwidth: String,
    /// `burst`: burst size.
    #[serde(skip_serializing_if = "crate::gojson::is_zero")]
    pub burst: i64,
    /// `profileName`: Network profile name.
    #[serde(rename = "profileName", skip_serializing_if = "String::is_empty")]
    pub profile_name: String,
    /// `tenantName`: Tenant name.
    #[serde(rename = "tenantName", skip_serializing_if = "String::is_empty")]
    pub tenant_name: String,
    /// `link-sets`.
    #[serde(rename = "link-sets")]
    pub link_sets: NetProfileLinkSets,
    /// `links`.
    pub links: NetProfileLinks,
}

/// `link-sets` of NetProfile: maps from the linked object's key to the link.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(remote = "Self", default)]
pub struct NetProfileLinkSets {
    /// `EndpointGroups`.
    #[serde(rename = "EndpointGroups", skip_serializing_if = "BTreeMap::is_empty")]
    pub endpoint_groups: BTreeMap<String, Link>,
}

/// `links` of NetProfile: single links (an unset one encodes as `{}`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(remote = "Self", default)]
pub struct NetProfileLinks {
    /// `Tenant`.
    #[serde(rename = "Tenant")]
    pub tenant: Link,
}

go_json!(NetProfile, NetProfileLinkSets, NetProfileLinks);

model_object!(NetProfile, NetProfile, NoOper, [tenant_name, profile_name]);

// Contiv's field checks for a netprofile, in Go's order (`profileName` is only
// length-checked and `tenantName` not at all, like Contiv). Contiv checked no lower bound of
// `DSCP` and `burst` (its schema says 0 for `DSCP`); a negative one cannot be enforced, so it
// is refused with Contiv's out-of-bound message.
object_fields!(NetProfile {
    "DSCP" => int(dscp).min(0).max(63),
    "bandwidth" => string(bandwidth).max_len(64).pattern(p::BANDWIDTH),
    "burst" => int(burst).min(0).max(10486),
    "profileName" => string(profile_name).max_len(64),
    "tenantName" => string(tenant_name),
});

/// Why a netprofile's `bandwidth`, `burst` or `DSCP` cannot be enforced (the message names the
/// value and says what is accepted).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct QosValueError(pub String);

/// The accepted forms, for messages.
const BANDWIDTH_FORMS: &str =
    "a number and a unit kbps, mbps or gbps (10 kbps, 100mbps, 1gbps; also k/m/g, kb/mb/gb)";

/// Bits per second of a bandwidth in Contiv's format: a number, an optional space and a unit
/// `kbps`/`mbps`/`gbps` (or `k`/`m`/`g`, `kb`/`mb`/`gb`), the prefix letter in either case;
/// decimal units (`1kbps` = 1,000 bit/s). `Ok(None)` for the empty string (no limit). Values
/// Contiv's pattern lets through but names no unit of (`10 1bps`) and numbers past `u64` are
/// errors.
pub fn parse_bandwidth(s: &str) -> Result<Option<u64>, QosValueError> {
    if s.is_empty() {
        return Ok(None);
    }
    let bad = || QosValueError(format!("Invalid bandwidth {s:?}: {BANDWIDTH_FORMS}"));
    let digits_end = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (digits, rest) = s.split_at(digits_end);
    if digits.is_empty() || digits.starts_with('0') {
        return Err(bad());
    }
    let rest = rest.strip_prefix(' ').unwrap_or(rest);
    let mut chars = rest.chars();
    let scale: u64 = match chars.next().map(|c| c.to_ascii_lowercase()) {
        Some('k') => 1_000,
        Some('m') => 1_000_000,
        Some('g') => 1_000_000_000,
        _ => return Err(bad()),
    };
    if !matches!(chars.as_str(), "" | "b" | "bps") {
        return Err(bad());
    }
    let n: u64 = digits.parse().map_err(|_| bad())?;
    n.checked_mul(scale).map(Some).ok_or_else(|| {
        QosValueError(format!(
            "Invalid bandwidth {s:?}: more than {} gbps",
            u64::MAX / 1_000_000_000
        ))
    })
}

impl NetProfile {
    /// The bandwidth limit in bits per second (`None`: no limit); see [`parse_bandwidth`].
    pub fn bandwidth_bps(&self) -> Result<Option<u64>, QosValueError> {
        parse_bandwidth(&self.bandwidth)
    }

    /// The burst in bytes (`burst` is in kilobytes, 1,024 bytes; `None`: 0, the default).
    pub fn burst_bytes(&self) -> Result<Option<u32>, QosValueError> {
        match self.burst {
            0 => Ok(None),
            b if !(2..=10486).contains(&b) => Err(QosValueError(format!(
                "Invalid burst {b}: kilobytes from 2 to 10486 (0: a default)"
            ))),
            b => Ok(Some(b as u32 * 1024)),
        }
    }

    /// The DSCP to mark packets with (`None`: 0, no marking).
    pub fn dscp_value(&self) -> Result<Option<u8>, QosValueError> {
        match self.dscp {
            0 => Ok(None),
            d if (1..=63).contains(&d) => Ok(Some(d as u8)),
            d => Err(QosValueError(format!("Invalid DSCP {d}: 0 to 63"))),
        }
    }

    /// Every value checked as the datapath needs it (the schema's checks come first).
    pub fn check_qos(&self) -> Result<(), QosValueError> {
        self.bandwidth_bps()?;
        self.burst_bytes()?;
        self.dscp_value()?;
        Ok(())
    }
}

#[cfg(test)]
mod qos_tests {
    use super::*;

    #[test]
    fn contiv_bandwidth_forms() {
        let ok = [
            ("10 kbps", 10_000),
            ("100mbps", 100_000_000),
            ("1gbps", 1_000_000_000),
            ("100 Mbps", 100_000_000),
            ("10 M", 10_000_000),
            ("5k", 5_000),
            ("3 Gb", 3_000_000_000),
            ("7mb", 7_000_000),
        ];
        for (s, bps) in ok {
            assert_eq!(parse_bandwidth(s), Ok(Some(bps)), "{s}");
        }
        assert_eq!(parse_bandwidth(""), Ok(None));
        for s in [
            "fast",
            "10",
            "10 1bps",
            "10{bps",
            "10 mbit",
            "0mbps",
            "10  mbps",
            "mbps",
            "99999999999999999999gbps",
            "99999999999gbps",
        ] {
            let e = parse_bandwidth(s).expect_err(s);
            assert!(e.0.contains(&format!("{s:?}")), "{e}");
        }
    }

    #[test]
    fn burst_and_dscp() {
        let p = |burst, dscp| NetProfile {
            burst,
            dscp,
            ..Default::default()
        };
        assert_eq!(p(0, 0).burst_bytes(), Ok(None));
        assert_eq!(p(2, 0).burst_bytes(), Ok(Some(2048)));
        assert!(p(1, 0).burst_bytes().is_err());
        assert!(p(-5, 0).burst_bytes().is_err());
        assert_eq!(p(0, 46).dscp_value(), Ok(Some(46)));
        assert_eq!(p(0, 0).dscp_value(), Ok(None));
        assert!(p(0, -1).check_qos().is_err());
        assert!(p(0, 64).dscp_value().is_err());
    }
}
