//! The `Bgp` object (key `hostname`) and its oper record.

use serde::{Deserialize, Serialize};

use super::{model_object, object_fields};
use crate::format::source as p;
use crate::gojson::go_json;

/// Config of the Contiv object `Bgp` as on the wire.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(remote = "Self", default)]
pub struct Bgp {
    /// `key`: The object key.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub key: String,
    /// `as`: AS id.
    #[serde(rename = "as", skip_serializing_if = "String::is_empty")]
    pub r#as: String,
    /// `hostname`: host name.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub hostname: String,
    /// `neighbor`: Bgp  neighbor.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub neighbor: String,
    /// `neighbor-as`: AS id.
    #[serde(rename = "neighbor-as", skip_serializing_if = "String::is_empty")]
    pub neighbor_as: String,
    /// `routerip`: Bgp router intf ip.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub routerip: String,
}

/// Runtime state of Bgp shown by inspect (`Oper`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(remote = "Self", default)]
pub struct BgpOper {
    /// `adminStatus`: admin status.
    #[serde(rename = "adminStatus", skip_serializing_if = "String::is_empty")]
    pub admin_status: String,
    /// `neighborStatus`: neighbor status.
    #[serde(rename = "neighborStatus", skip_serializing_if = "String::is_empty")]
    pub neighbor_status: String,
    /// `numRoutes`: number of routes.
    #[serde(rename = "numRoutes", skip_serializing_if = "crate::gojson::is_zero")]
    pub num_routes: i64,
    /// `routes`: routes.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub routes: Vec<String>,
}

go_json!(Bgp, BgpOper);

model_object!(Bgp, Bgp, BgpOper, [hostname]);

// Contiv's field checks for a Bgp host, in Go's order (`as`/`neighbor-as` are only
// length-checked; `routerip` only format-checked).
object_fields!(Bgp {
    "as" => string(r#as).max_len(64),
    "hostname" => string(hostname).max_len(256).pattern(p::NAME).required(),
    "neighbor" => string(neighbor).max_len(15).pattern(p::IPV4_OR_EMPTY),
    "neighbor-as" => string(neighbor_as).max_len(64),
    "routerip" => string(routerip).pattern(p::ROUTER_IP).required(),
});
