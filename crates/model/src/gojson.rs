//! Go `encoding/json` decoding rules for our structs.
//!
//! Owns the glue that makes serde accept exactly what Go's decoder accepts for a struct:
//! `null` means "keep the zero value" (for the whole object and for every member), member names
//! match exactly or else case-insensitively (Go's `EqualFold`). Unlike Go (last wins), a member
//! given twice (also as `name` and `Name`) is refused: a filter and the server must never read
//! different values from one body. Every wire struct derives serde with `#[serde(remote = "Self")]` and gets its trait
//! impls from [`go_json!`], which routes decoding through [`fold_object`].

use std::fmt;

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde_json::{Map, Value};

/// Reads one JSON value that must be an object (or `null`), and returns it with member names
/// folded onto `fields` the way Go matches struct fields and `null` members dropped; a member
/// given twice (by exact or folded name) is an error naming it. `Ok(None)` for a JSON `null`.
pub(crate) fn fold_object<'de, D: Deserializer<'de>>(
    d: D,
    fields: &[&str],
) -> Result<Option<Map<String, Value>>, D::Error> {
    let Some(entries) = d.deserialize_option(EntriesVisitor)? else {
        return Ok(None);
    };
    let mut out = Map::new();
    let mut seen = std::collections::HashSet::with_capacity(entries.len());
    for (name, value) in entries {
        let field = match_field(&name, fields);
        if !seen.insert(field.unwrap_or(&name).to_owned()) {
            return Err(de::Error::custom(format!(
                "duplicate member {name:?} in one object"
            )));
        }
        let Some(field) = field else {
            continue; // unknown member: ignored like Go
        };
        if value.is_null() {
            continue; // Go: null leaves the field as it is
        }
        out.insert(field.to_owned(), value);
    }
    Ok(Some(out))
}

/// Go's field lookup: an exact name first, then a case-insensitive one.
fn match_field<'a>(name: &str, fields: &[&'a str]) -> Option<&'a str> {
    if let Some(f) = fields.iter().find(|f| **f == name) {
        return Some(f);
    }
    fields.iter().copied().find(|f| equal_fold(f, name))
}

/// Simple Unicode case folding comparison, close to Go's `strings.EqualFold`.
fn equal_fold(a: &str, b: &str) -> bool {
    let mut ai = a.chars();
    let mut bi = b.chars();
    loop {
        match (ai.next(), bi.next()) {
            (None, None) => return true,
            (Some(x), Some(y)) if fold_eq(x, y) => {}
            _ => return false,
        }
    }
}

fn fold_eq(x: char, y: char) -> bool {
    if x == y {
        return true;
    }
    let lower = |c: char| {
        let mut it = c.to_lowercase();
        match (it.next(), it.next()) {
            (Some(l), None) => l,
            _ => c,
        }
    };
    let upper = |c: char| {
        let mut it = c.to_uppercase();
        match (it.next(), it.next()) {
            (Some(u), None) => u,
            _ => c,
        }
    };
    lower(x) == lower(y) || upper(x) == upper(y)
}

/// Collects an object's members in document order (keeping duplicates).
struct EntriesVisitor;

impl<'de> Visitor<'de> for EntriesVisitor {
    type Value = Option<Vec<(String, Value)>>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object or null")
    }

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut out = Vec::with_capacity(map.size_hint().unwrap_or(0));
        while let Some((k, v)) = map.next_entry::<String, Value>()? {
            out.push((k, v));
        }
        Ok(Some(out))
    }
}

/// Error type of [`FieldProbe`]: carries the field list out of a derived `deserialize`.
#[derive(Debug)]
pub(crate) enum ProbeError {
    Fields(&'static [&'static str]),
    Other,
}

impl fmt::Display for ProbeError {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("field probe")
    }
}

impl std::error::Error for ProbeError {}

impl de::Error for ProbeError {
    fn custom<T: fmt::Display>(_msg: T) -> Self {
        ProbeError::Other
    }
}

/// A deserializer that only records the field names a derived struct asks for.
pub(crate) struct FieldProbe;

impl<'de> Deserializer<'de> for FieldProbe {
    type Error = ProbeError;

    fn deserialize_any<V: Visitor<'de>>(self, _v: V) -> Result<V::Value, ProbeError> {
        Err(ProbeError::Other)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        _v: V,
    ) -> Result<V::Value, ProbeError> {
        Err(ProbeError::Fields(fields))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier
        ignored_any
    }
}

/// The serde field names of a derived struct, given its derived `deserialize` function.
pub(crate) fn probe_fields<T>(
    derived: fn(FieldProbe) -> Result<T, ProbeError>,
) -> &'static [&'static str] {
    match derived(FieldProbe) {
        Err(ProbeError::Fields(f)) => f,
        _ => &[],
    }
}

/// Implements `Serialize`/`Deserialize` for a struct deriving serde with
/// `#[serde(remote = "Self")]`, decoding with Go's rules (see the module docs).
macro_rules! go_json {
    ($($ty:ident),+ $(,)?) => {$(
        impl ::serde::Serialize for $ty {
            fn serialize<S: ::serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                $ty::serialize(self, s)
            }
        }

        impl<'de> ::serde::Deserialize<'de> for $ty {
            fn deserialize<D: ::serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                use ::serde::de::Error as _;
                let fields = $crate::gojson::probe_fields::<$ty>(|p| $ty::deserialize(p));
                match $crate::gojson::fold_object(d, fields)? {
                    None => Ok(<$ty as Default>::default()),
                    Some(map) => $ty::deserialize(::serde_json::Value::Object(map))
                        .map_err(D::Error::custom),
                }
            }
        }
    )+};
}

pub(crate) use go_json;

/// `skip_serializing_if` helper for Go's `omitempty` on ints.
pub(crate) fn is_zero(v: &i64) -> bool {
    *v == 0
}
