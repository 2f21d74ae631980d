//! Strict JSON for request bodies that are not model objects (the agent API): parses a document
//! like `serde_json::from_slice::<Value>` but refuses a member given twice in one object (serde's
//! `Value` silently keeps the last) and a control character in any string or member name, naming
//! the member. Model objects get the same two checks from their own decoder and validation.

use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

/// Parses `body` strictly (see the module docs); the error is a message for a 400.
pub fn parse_strict(body: &[u8]) -> Result<Value, String> {
    let mut de = serde_json::Deserializer::from_slice(body);
    let value = Strict { at: "" }
        .deserialize(&mut de)
        .map_err(|e| e.to_string())?;
    de.end().map_err(|e| e.to_string())?;
    Ok(value)
}

/// One value, and the member it is the value of (for messages).
struct Strict<'a> {
    at: &'a str,
}

fn printable<E: de::Error>(at: &str, s: &str) -> Result<(), E> {
    match s.chars().find(|c| c.is_control()) {
        Some(c) => Err(E::custom(format!(
            "member {at:?} holds a control character ({c:?})"
        ))),
        None => Ok(()),
    }
}

impl<'de> DeserializeSeed<'de> for Strict<'_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Strict<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        printable(self.at, v)?;
        Ok(Value::String(v.to_owned()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
        printable(self.at, &v)?;
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut out = Vec::new();
        while let Some(v) = seq.next_element_seed(Strict { at: self.at })? {
            out.push(v);
        }
        Ok(Value::Array(out))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        while let Some(name) = map.next_key::<String>()? {
            printable::<A::Error>(&name, &name)?;
            let value = map.next_value_seed(Strict { at: &name })?;
            if out.insert(name.clone(), value).is_some() {
                return Err(de::Error::custom(format!(
                    "duplicate member {name:?} in one object"
                )));
            }
        }
        Ok(Value::Object(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strict_json_refuses_duplicates_and_control_characters() {
        let ok = parse_strict(br#"{"a":{"b":[1,"x y"],"c":null},"d":true}"#).unwrap();
        assert_eq!(ok["a"]["b"][1], "x y");
        for (body, says) in [
            (&br#"{"a":1,"a":2}"#[..], "duplicate member \"a\""),
            (br#"{"o":{"k":"v","k":"w"}}"#, "duplicate member \"k\""),
            (br#"{"host":"h\u0000"}"#, "member \"host\" holds a control"),
            (
                br#"{"labels":{"x":"a\nb"}}"#,
                "member \"x\" holds a control",
            ),
            (br#"{"l":["ok","\t"]}"#, "member \"l\" holds a control"),
            (br#"{"a\r":1}"#, "holds a control"),
            (br#"{"a":1} x"#, "trailing"),
        ] {
            let err = parse_strict(body).unwrap_err();
            assert!(
                err.contains(says),
                "{}: {err}",
                String::from_utf8_lossy(body)
            );
        }
    }
}
