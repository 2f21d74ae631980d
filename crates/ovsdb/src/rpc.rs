//! JSON-RPC 1.0 messages as OVSDB uses them (RFC 7047 §4): requests and notifications from either
//! side, responses matched to requests by id. Pure data: decode a JSON text into a [`Message`],
//! encode one back; no I/O.

use serde_json::{json, Value};

/// One JSON-RPC message.
#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    /// A call that expects a response with the same id (`echo` from the server is one).
    Request {
        id: Value,
        method: String,
        params: Vec<Value>,
    },
    /// A call without a response (`id: null`): the server's `update` of a monitor.
    Notification { method: String, params: Vec<Value> },
    /// The answer to a request: exactly one of `result` and `error` is meaningful.
    Response {
        id: Value,
        result: Value,
        error: Value,
    },
}

/// Why a JSON text is not a JSON-RPC message.
#[derive(Debug, thiserror::Error)]
pub enum MessageError {
    #[error("malformed JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("not a JSON-RPC message: {0}")]
    Shape(String),
}

impl Message {
    pub fn request(id: u64, method: &str, params: Vec<Value>) -> Message {
        Message::Request {
            id: json!(id),
            method: method.to_string(),
            params,
        }
    }

    pub fn decode(text: &[u8]) -> Result<Message, MessageError> {
        let v: Value = serde_json::from_slice(text)?;
        let Value::Object(mut o) = v else {
            return Err(MessageError::Shape("not an object".into()));
        };
        let id = o.remove("id").unwrap_or(Value::Null);
        match o.remove("method") {
            Some(Value::String(method)) => {
                let params = match o.remove("params") {
                    Some(Value::Array(p)) => p,
                    None | Some(Value::Null) => vec![],
                    Some(other) => {
                        return Err(MessageError::Shape(format!(
                            "params of {method} is not an array: {other}"
                        )))
                    }
                };
                Ok(if id.is_null() {
                    Message::Notification { method, params }
                } else {
                    Message::Request { id, method, params }
                })
            }
            Some(other) => Err(MessageError::Shape(format!(
                "method is not a string: {other}"
            ))),
            None if o.contains_key("result") || o.contains_key("error") => Ok(Message::Response {
                id,
                result: o.remove("result").unwrap_or(Value::Null),
                error: o.remove("error").unwrap_or(Value::Null),
            }),
            None => Err(MessageError::Shape(
                "neither a method nor a result/error".into(),
            )),
        }
    }

    pub fn to_value(&self) -> Value {
        match self {
            Message::Request { id, method, params } => {
                json!({"id": id, "method": method, "params": params})
            }
            Message::Notification { method, params } => {
                json!({"id": null, "method": method, "params": params})
            }
            Message::Response { id, result, error } => {
                json!({"id": id, "result": result, "error": error})
            }
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        // Serialising a Value built from Values cannot fail.
        serde_json::to_vec(&self.to_value()).unwrap_or_default()
    }

    /// The answer RFC 7047 §4.1.11 asks for: an `echo` returns its params as the result.
    pub fn echo_reply(id: Value, params: Vec<Value>) -> Message {
        Message::Response {
            id,
            result: Value::Array(params),
            error: Value::Null,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_each_kind() {
        let m = Message::decode(br#"{"id":"echo","method":"echo","params":[]}"#).unwrap();
        assert_eq!(
            m,
            Message::Request {
                id: json!("echo"),
                method: "echo".into(),
                params: vec![]
            }
        );
        let m = Message::decode(br#"{"id":null,"method":"update","params":["m",{}]}"#).unwrap();
        assert!(
            matches!(m, Message::Notification { ref method, ref params } if method == "update" && params.len() == 2)
        );
        let m = Message::decode(br#"{"id":7,"result":["Open_vSwitch"],"error":null}"#).unwrap();
        assert_eq!(
            m,
            Message::Response {
                id: json!(7),
                result: json!(["Open_vSwitch"]),
                error: Value::Null
            }
        );
    }

    #[test]
    fn encodes_what_ovsdb_expects() {
        let m = Message::request(3, "list_dbs", vec![]);
        assert_eq!(
            String::from_utf8(m.encode()).unwrap(),
            r#"{"id":3,"method":"list_dbs","params":[]}"#
        );
        let r = Message::echo_reply(json!("echo"), vec![json!(1)]);
        assert_eq!(
            String::from_utf8(r.encode()).unwrap(),
            r#"{"error":null,"id":"echo","result":[1]}"#
        );
    }

    #[test]
    fn bad_shapes_are_errors() {
        for text in [
            &b"[]"[..],
            b"{}",
            br#"{"method":1}"#,
            br#"{"method":"x","params":3}"#,
            b"{",
        ] {
            assert!(
                Message::decode(text).is_err(),
                "{}",
                String::from_utf8_lossy(text)
            );
        }
    }
}
