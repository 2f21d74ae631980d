//! Contiv object model: the REST objects exactly as Contiv's API spells them, keys, and schema
//! validation (no I/O).
//!
//! This root module owns the [`ModelObject`] trait, the [`Inspect`] envelope and
//! [`ValidationError`]; the objects themselves live in [`objects`], the wire kinds/routes in
//! [`kind`], links in [`link`], the schema formats in [`format`](mod@format) and the field metadata
//! ([`FieldSpec`], one table per object, shared by validation and the OpenAPI document) in `fields`.
//!
//! Wire compatibility with Contiv's Go server (`encoding/json`):
//! - field order is Go's declaration order, empty strings / zero ints / empty lists and maps are
//!   omitted (`omitempty`), but the `link-sets` and `links` structs are *always* present (Go never
//!   omits a struct), and an empty link inside `links` encodes as `{}`;
//! - decoding accepts what Go accepts: every field optional, unknown fields ignored, `null`
//!   anywhere meaning "leave the zero value", field names matched case-insensitively (exact match
//!   preferred); but a member given twice is refused (Go: last wins), and so is a control
//!   character in any string field.

mod fields;
pub mod format;
mod gojson;
pub mod kind;
pub mod link;
pub mod objects;
pub mod strict;
mod validate;

use std::fmt::Debug;

use serde::de::DeserializeOwned;
use serde::Serialize;

pub use fields::{FieldKind, FieldSpec};
pub use kind::ObjectKind;
pub use link::Link;
pub use objects::*;
pub use strict::parse_strict;

/// A schema validation failure; `Display` is Contiv's message exactly (e.g. `"Invalid Key"`,
/// `"cfgdTag string too long"`, `"pktTag Value Out of bound"`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ValidationError(pub String);

impl ValidationError {
    /// Builds an error from any message.
    pub fn new(msg: impl Into<String>) -> Self {
        ValidationError(msg.into())
    }
}

/// One Contiv REST object (config side), with its key and the generated schema validation.
pub trait ModelObject:
    Serialize + DeserializeOwned + Clone + Debug + Default + PartialEq + Send + Sync + 'static
{
    /// Which Contiv object this is.
    const KIND: ObjectKind;
    /// The runtime (inspect) record; [`NoOper`] for objects whose Go inspect has no `Oper`.
    type Oper: Serialize + DeserializeOwned + Default + Clone + Debug + PartialEq + Send + Sync;

    /// The key fields joined by `:` (what `key` must equal).
    fn computed_key(&self) -> String;
    /// The `key` field as sent.
    fn key(&self) -> &str;
    /// Overwrites the `key` field.
    fn set_key(&mut self, key: String);
    /// Contiv's generated `Validate<Obj>`: `"Invalid Key"` when `key != computed_key()`, then
    /// each field in Go's order with Go's message; fills the schema defaults Go fills
    /// (network `nwType` "" -> "data", rule `priority` 0 -> 1).
    fn validate(&mut self) -> Result<(), ValidationError>;
}

/// Inspect envelope, `{"Config": {...}, "Oper": {...}}` like Go's `<Obj>Inspect`.
///
/// Go's `<Obj>Inspect` structs differ per object: appProfile, extContractsGroup, netprofile and
/// rule have no `Oper` member, endpoint has no `Config` member. Serialization follows that
/// (see [`ObjectKind::has_oper`] / [`ObjectKind::is_config`]); `Config`/`Oper` are never omitted
/// otherwise, even when empty.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Inspect<T: ModelObject> {
    pub config: T,
    pub oper: T::Oper,
}

impl<T: ModelObject> Inspect<T> {
    /// Builds an envelope.
    pub fn new(config: T, oper: T::Oper) -> Self {
        Inspect { config, oper }
    }
}

impl<T: ModelObject> Serialize for Inspect<T> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let kind = T::KIND;
        let n = usize::from(kind.is_config()) + usize::from(kind.has_oper());
        let mut st = s.serialize_struct("Inspect", n)?;
        if kind.is_config() {
            st.serialize_field("Config", &self.config)?;
        }
        if kind.has_oper() {
            st.serialize_field("Oper", &self.oper)?;
        }
        st.end()
    }
}

impl<'de, T: ModelObject> serde::Deserialize<'de> for Inspect<T> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let Some(mut map) = gojson::fold_object(d, &["Config", "Oper"])? else {
            return Ok(Inspect {
                config: T::default(),
                oper: T::Oper::default(),
            });
        };
        let config = match map.remove("Config") {
            Some(v) => serde_json::from_value(v).map_err(D::Error::custom)?,
            None => T::default(),
        };
        let oper = match map.remove("Oper") {
            Some(v) => serde_json::from_value(v).map_err(D::Error::custom)?,
            None => T::Oper::default(),
        };
        Ok(Inspect { config, oper })
    }
}
