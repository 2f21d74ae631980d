//! The building blocks of Contiv's generated `Validate<Obj>` functions, each returning Contiv's
//! exact message: key check, string length (bytes), string format, int bounds.

use regex::Regex;

use crate::ValidationError;

/// `"Invalid Key"` unless `key == computed`.
pub(crate) fn key(key: &str, computed: &str) -> Result<(), ValidationError> {
    if key == computed {
        Ok(())
    } else {
        Err(ValidationError::new("Invalid Key"))
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

/// Length then format, the usual pair.
pub(crate) fn string(
    field: &str,
    value: &str,
    max: usize,
    re: &Regex,
) -> Result<(), ValidationError> {
    length(field, value, max)?;
    format(field, value, re)
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
