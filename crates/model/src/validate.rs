//! The building blocks of Contiv's generated `Validate<Obj>` functions, each returning Contiv's
//! exact message: key check, string length (bytes), string format, int bounds — and [`fields`],
//! which applies them to an object by walking its [`FieldSpec`] table.
//!
//! One check Contiv lacked: no string field (names, keys, AS numbers, descriptions...) may hold a
//! control character (NUL, newline, escape...); they reached logs, netctl's tables and the
//! datapath's names unfiltered.

use regex::Regex;

use crate::fields::{FieldMut, FieldSpec};
use crate::ValidationError;

/// `"Invalid Key"` unless `key == computed`.
pub(crate) fn key(key: &str, computed: &str) -> Result<(), ValidationError> {
    if key == computed {
        Ok(())
    } else {
        Err(ValidationError::new("Invalid Key"))
    }
}

/// `"<field> string has a control character"` when `value` holds one (NUL, tab, newline, DEL,
/// the C1 range...).
pub(crate) fn printable(field: &str, value: &str) -> Result<(), ValidationError> {
    match value.chars().find(|c| c.is_control()) {
        Some(c) => Err(ValidationError(format!(
            "{field} string has a control character ({:?})",
            c
        ))),
        None => Ok(()),
    }
}

/// `"<field> string too long"` when `value` is longer than `max` bytes.
pub(crate) fn length(field: &str, value: &str, max: usize) -> Result<(), ValidationError> {
    if value.len() > max {
        Err(ValidationError(format!("{field} string too long")))
    } else {
        Ok(())
    }
}

/// `"<field> string invalid format"` when `value` does not match `re`.
pub(crate) fn format(field: &str, value: &str, re: &Regex) -> Result<(), ValidationError> {
    if re.is_match(value) {
        Ok(())
    } else {
        Err(ValidationError(format!("{field} string invalid format")))
    }
}

/// `"<field> Value Out of bound"` when `value > max`.
pub(crate) fn max(field: &str, value: i64, max: i64) -> Result<(), ValidationError> {
    if value > max {
        Err(ValidationError(format!("{field} Value Out of bound")))
    } else {
        Ok(())
    }
}

/// `"<field> Value Out of bound"` when `value < min`.
pub(crate) fn min(field: &str, value: i64, min: i64) -> Result<(), ValidationError> {
    if value < min {
        Err(ValidationError(format!("{field} Value Out of bound")))
    } else {
        Ok(())
    }
}

/// An object whose fields are described by a [`FieldSpec`] table.
pub(crate) trait Fields {
    /// The table, in Go's validation order.
    const FIELDS: &'static [FieldSpec];
    /// The field with this JSON name.
    fn field_mut(&mut self, name: &str) -> Option<FieldMut<'_>>;
}

/// Checks every field of `obj` against its table, in order; fills defaults on the way.
pub(crate) fn fields<T: Fields>(obj: &mut T) -> Result<(), ValidationError> {
    for spec in T::FIELDS {
        let value = obj
            .field_mut(spec.name)
            .ok_or_else(|| ValidationError(format!("{} has no accessor (model bug)", spec.name)))?;
        field(spec, value)?;
    }
    Ok(())
}

/// Checks one value against its spec (default, length, format, bounds).
fn field(spec: &FieldSpec, value: FieldMut<'_>) -> Result<(), ValidationError> {
    match value {
        FieldMut::Str(s) => {
            if let (true, Some(d)) = (s.is_empty(), spec.default) {
                d.clone_into(s);
            }
            string(spec, s)
        }
        FieldMut::List(items) => items.iter().try_for_each(|s| string(spec, s)),
        FieldMut::Int(n) => {
            if let (0, Some(d)) = (*n, spec.default) {
                *n = d.parse().map_err(|_| {
                    ValidationError(format!(
                        "{} default {d:?} is not an int (model bug)",
                        spec.name
                    ))
                })?;
            }
            if let Some(lo) = spec.min {
                min(spec.name, *n, lo)?;
            }
            if let Some(hi) = spec.max {
                max(spec.name, *n, hi)?;
            }
            Ok(())
        }
    }
}

fn string(spec: &FieldSpec, value: &str) -> Result<(), ValidationError> {
    printable(spec.name, value)?;
    if let Some(n) = spec.max_len {
        length(spec.name, value, n)?;
    }
    if let Some(source) = spec.pattern {
        let re = spec.regex().ok_or_else(|| {
            ValidationError(format!(
                "{}: unknown pattern {source:?} (model bug)",
                spec.name
            ))
        })?;
        format(spec.name, value, re)?;
    }
    Ok(())
}
