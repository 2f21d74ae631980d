//! One module per Contiv object: the wire structs (config, `link-sets`, `links`, oper) and each
//! object's generated-validation equivalent. This module owns the shared pieces: the
//! [`ModelObject`](crate::ModelObject) impl macro, [`NoOper`] and the inspect-only [`Endpoint`].

mod aci_gw;
mod app_profile;
mod bgp;
mod endpoint;
mod endpoint_group;
mod ext_contracts_group;
mod global;
mod net_profile;
mod network;
mod policy;
mod rule;
mod service_lb;
mod tenant;

use serde::{Deserialize, Serialize};

pub use aci_gw::*;
pub use app_profile::*;
pub use bgp::*;
pub use endpoint::*;
pub use endpoint_group::*;
pub use ext_contracts_group::*;
pub use global::*;
pub use net_profile::*;
pub use network::*;
pub use policy::*;
pub use rule::*;
pub use service_lb::*;
pub use tenant::*;

use crate::gojson::go_json;

/// The `Oper` of objects whose Go inspect has none (appProfile, extContractsGroup, netprofile,
/// rule). Encodes as `{}`; [`Inspect`](crate::Inspect) leaves it out entirely.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(remote = "Self")]
pub struct NoOper {}

go_json!(NoOper);

/// Implements [`ModelObject`](crate::ModelObject) from the kind, the oper type and the key
/// fields; validation = key check then the type's field table (see [`object_fields`]).
macro_rules! model_object {
    ($ty:ident, $kind:ident, $oper:ty, [$($field:ident),+]) => {
        impl $crate::ModelObject for $ty {
            const KIND: $crate::ObjectKind = $crate::ObjectKind::$kind;
            type Oper = $oper;

            fn computed_key(&self) -> String {
                [$(self.$field.as_str()),+].join(":")
            }

            fn key(&self) -> &str {
                &self.key
            }

            fn set_key(&mut self, key: String) {
                self.key = key;
            }

            fn validate(&mut self) -> Result<(), $crate::ValidationError> {
                $crate::validate::key(&self.key, &$crate::ModelObject::computed_key(self))?;
                $crate::validate::fields(self)
            }
        }
    };
}

pub(crate) use model_object;

/// The [`FieldMut`](crate::fields::FieldMut) variant for a [`FieldSpec`](crate::FieldSpec)
/// constructor name.
macro_rules! field_access {
    (string, $e:expr) => {
        $crate::fields::FieldMut::Str($e)
    };
    (int, $e:expr) => {
        $crate::fields::FieldMut::Int($e)
    };
    (list, $e:expr) => {
        $crate::fields::FieldMut::List($e)
    };
}

/// Declares an object's field table once: `"jsonName" => ctor(rust_field).constraint(..)`, in
/// Go's validation order. Generates the public `FIELDS` constant (what
/// [`ObjectKind::fields`](crate::ObjectKind::fields) returns) and the name -> field accessor
/// validation walks, so the constraints exist in exactly one place.
macro_rules! object_fields {
    ($ty:ident { $($name:literal => $ctor:ident($field:ident) $(.$m:ident($($arg:expr),*))*),* $(,)? }) => {
        impl $ty {
            /// The field table (JSON names, types, constraints), in Go's validation order.
            pub const FIELDS: &'static [$crate::FieldSpec] =
                &[$($crate::FieldSpec::$ctor($name)$(.$m($($arg),*))*),*];
        }

        impl $crate::validate::Fields for $ty {
            const FIELDS: &'static [$crate::FieldSpec] = $ty::FIELDS;

            #[allow(unused_variables)]
            fn field_mut(&mut self, name: &str) -> Option<$crate::fields::FieldMut<'_>> {
                match name {
                    $($name => Some($crate::objects::field_access!($ctor, &mut self.$field)),)*
                    _ => None,
                }
            }
        }
    };
}

pub(crate) use field_access;
pub(crate) use object_fields;
