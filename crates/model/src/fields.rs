//! Field metadata of the config objects: one [`FieldSpec`] per JSON field (besides `key`,
//! `link-sets` and `links`), in Go's validation order.
//!
//! These tables are the single source of truth for schema validation: each object's
//! `ModelObject::validate` walks its table (see `validate::fields`), and the OpenAPI document is
//! generated from the same tables via [`ObjectKind::fields`](crate::ObjectKind::fields).

use regex::Regex;

use crate::format;

/// The JSON type of a field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FieldKind {
    /// A JSON string (Go `string`).
    String,
    /// A JSON integer (Go `int`, 64-bit).
    Int,
    /// A JSON array of strings (Go `[]string`).
    StringList,
}

/// One field of an object's schema, with the constraints `validate` enforces.
///
/// Constraints apply in this order: `default` (filled when the value is the zero value), then
/// `max_len` (bytes), `pattern`, `min`, `max`. For a [`FieldKind::StringList`] the string
/// constraints apply to each element.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FieldSpec {
    /// JSON name, exactly as on the wire.
    pub name: &'static str,
    /// JSON type.
    pub kind: FieldKind,
    /// Maximum length in bytes (`"<name> string too long"`).
    pub max_len: Option<usize>,
    /// Regex source (Go RE2 syntax, one of [`format::source`]) the value must match
    /// (`"<name> string invalid format"`).
    pub pattern: Option<&'static str>,
    /// Lower bound of an int (`"<name> Value Out of bound"`).
    pub min: Option<i64>,
    /// Upper bound of an int (`"<name> Value Out of bound"`).
    pub max: Option<i64>,
    /// Value validate fills in when the field is empty / zero (as its JSON text: `"data"`, `"1"`).
    pub default: Option<&'static str>,
    /// True when validate refuses the zero value (`""` / `0`) and fills no default.
    pub required: bool,
}

impl FieldSpec {
    const fn new(name: &'static str, kind: FieldKind) -> Self {
        FieldSpec {
            name,
            kind,
            max_len: None,
            pattern: None,
            min: None,
            max: None,
            default: None,
            required: false,
        }
    }

    /// An unconstrained string field.
    pub const fn string(name: &'static str) -> Self {
        Self::new(name, FieldKind::String)
    }

    /// An unconstrained int field.
    pub const fn int(name: &'static str) -> Self {
        Self::new(name, FieldKind::Int)
    }

    /// An unconstrained list-of-strings field.
    pub const fn list(name: &'static str) -> Self {
        Self::new(name, FieldKind::StringList)
    }

    /// With a maximum length in bytes.
    pub const fn max_len(mut self, n: usize) -> Self {
        self.max_len = Some(n);
        self
    }

    /// With a format (a [`format::source`] constant).
    pub const fn pattern(mut self, source: &'static str) -> Self {
        self.pattern = Some(source);
        self
    }

    /// With a lower bound.
    pub const fn min(mut self, n: i64) -> Self {
        self.min = Some(n);
        self
    }

    /// With an upper bound.
    pub const fn max(mut self, n: i64) -> Self {
        self.max = Some(n);
        self
    }

    /// With the default validate fills in.
    pub const fn default(mut self, value: &'static str) -> Self {
        self.default = Some(value);
        self
    }

    /// Marked required (the zero value is refused).
    pub const fn required(mut self) -> Self {
        self.required = true;
        self
    }

    /// The compiled [`pattern`](Self::pattern). `None` when there is no pattern, or (a
    /// programming error, caught by tests) when it is not one of [`format::source`].
    pub fn regex(&self) -> Option<&'static Regex> {
        self.pattern.and_then(format::compiled)
    }
}

/// Mutable access to one field's value, by JSON name (what validation walks).
pub(crate) enum FieldMut<'a> {
    Str(&'a mut String),
    Int(&'a mut i64),
    List(&'a mut Vec<String>),
}
