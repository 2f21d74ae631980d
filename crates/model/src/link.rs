//! `modeldb.Link`: a one-way reference from one object to another, as stored in `links`
//! (single) and `link-sets` (map keyed by the target's key).
//!
//! Wire form: `{"type": "<type name>", "key": "<object key>"}`, both members `omitempty`, so an
//! unset link encodes as `{}` (Go never omits the struct itself).

use serde::{Deserialize, Serialize};

use crate::gojson::go_json;
use crate::kind::ObjectKind;

/// A link to another object.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(remote = "Self", default)]
pub struct Link {
    /// Target's type name (`ObjectKind::type_name`), JSON `type`.
    #[serde(rename = "type", skip_serializing_if = "String::is_empty")]
    pub obj_type: String,
    /// Target's key, JSON `key`.
    #[serde(rename = "key", skip_serializing_if = "String::is_empty")]
    pub obj_key: String,
}

go_json!(Link);

impl Link {
    /// A link to the object of `kind` with `key`.
    pub fn new(kind: ObjectKind, key: impl Into<String>) -> Self {
        Link {
            obj_type: kind.type_name().to_owned(),
            obj_key: key.into(),
        }
    }

    /// True when the link is unset (Go's zero `Link`).
    pub fn is_empty(&self) -> bool {
        self.obj_type.is_empty() && self.obj_key.is_empty()
    }
}
