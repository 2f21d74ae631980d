//! HTTP(S) client of netmaster's Contiv REST API (`/api/v1/...`, `/version`).
//!
//! One keep-alive ureq agent per invocation. Transport failures become [`Error::Connect`]; non-2xx
//! answers become [`Error::Server`] carrying netmaster's message (Contiv answers errors with HTTP 500
//! and a text/plain body). Objects travel as `serde_json::Value`, so nothing the server sends is
//! lost when it is printed back.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;

use crate::error::{Error, Result};

/// Default netmaster address of Contiv's netctl.
pub const DEFAULT_NETMASTER: &str = "http://netmaster:9999";

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// A connection to one netmaster.
pub struct Client {
    agent: ureq::Agent,
    base: String,
    /// Sent as `X-Auth-Token` (from `netctl login`, ~/.netctl/token).
    token: Option<String>,
}

/// Where `netctl login` keeps the token: `$HOME/.netctl/token`.
pub fn token_path() -> Option<PathBuf> {
    std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".netctl").join("token"))
}

/// Writes the token file (0600, its directory 0700); returns its path.
pub fn save_token(token: &str) -> Result<PathBuf> {
    use std::io::Write;
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    let path = token_path().ok_or_else(|| Error::invalid("HOME is not set"))?;
    if let Some(dir) = path.parent() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
    }
    let _ = std::fs::remove_file(&path);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)?;
    f.write_all(token.as_bytes())?;
    Ok(path)
}

/// The HTTP verbs netctl uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Method {
    Get,
    Post,
    Delete,
    Patch,
}

/// How netctl trusts an https netmaster.
#[derive(Debug, Clone, Default)]
pub struct ClientTls {
    /// The CA that signed netmaster's certificate (`--cacert`, `CONTIV_CACERT`).
    pub cacert: Option<PathBuf>,
    /// Contiv's `--insecure`: no certificate check at all.
    pub insecure: bool,
}

impl Client {
    /// A client for the netmaster at `url` (`http://` or `https://host:port`; a bare
    /// `host:port` gets `http://`).
    pub fn new(url: &str, tls: &ClientTls) -> Result<Self> {
        let base = normalize_base(url)?;
        let mut config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(CONNECT_TIMEOUT))
            .timeout_global(Some(REQUEST_TIMEOUT))
            .user_agent(concat!("netctl/", env!("CARGO_PKG_VERSION")));
        if base.starts_with("https://") {
            if tls.cacert.is_none() && !tls.insecure {
                return Err(Error::invalid(format!(
                    "{base}: give the CA that signed netmaster's certificate with --cacert FILE \
                     (or CONTIV_CACERT)"
                )));
            }
            let files = contiv_tls::ClientFiles {
                ca: tls.cacert.clone(),
                insecure: tls.insecure,
                ..Default::default()
            };
            let tls_config = contiv_tls::client_config(&files)
                .map_err(|e| Error::invalid(format!("--cacert: {e}")))?;
            config = config.tls_config(tls_config);
        }
        let config = config.build();
        let token = token_path()
            .and_then(|p| std::fs::read_to_string(p).ok())
            .map(|t| t.trim().to_owned())
            .filter(|t| !t.is_empty());
        Ok(Client {
            agent: ureq::Agent::new_with_config(config),
            base,
            token,
        })
    }

    /// The netmaster base URL, without a trailing slash.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// `GET /api/v1/<plural>/`: every object of a type. A `null` body is an empty list.
    pub fn list(&self, plural: &str) -> Result<Vec<Value>> {
        let path = format!("/api/v1/{plural}/");
        match self.get_json(&path)? {
            Value::Array(items) => Ok(items),
            Value::Null => Ok(Vec::new()),
            other => Err(Error::Decode {
                path,
                reason: format!("expected a JSON array, got {}", kind_of(&other)),
            }),
        }
    }

    /// `GET /api/v1/<plural>/<key>/`: one object's config.
    pub fn get(&self, plural: &str, key: &str) -> Result<Value> {
        self.get_json(&format!("/api/v1/{plural}/{key}/"))
    }

    /// `GET /api/v1/inspect/<plural>/<key>/`: `{"Config": .., "Oper": ..}`.
    pub fn inspect(&self, plural: &str, key: &str) -> Result<Value> {
        self.get_json(&format!("/api/v1/inspect/{plural}/{key}/"))
    }

    /// `POST /api/v1/<plural>/<key>/` with the object as body (create or update).
    pub fn post(&self, plural: &str, key: &str, body: &Value) -> Result<()> {
        let path = format!("/api/v1/{plural}/{key}/");
        self.send(Method::Post, &path, Some(body)).map(|_| ())
    }

    /// `DELETE /api/v1/<plural>/<key>/`. Like Contiv's client, a 404 counts as already deleted.
    pub fn delete(&self, plural: &str, key: &str) -> Result<()> {
        let path = format!("/api/v1/{plural}/{key}/");
        self.send(Method::Delete, &path, None).map(|_| ())
    }

    /// `POST /api/v1/auth_proxy/login/`: the answer (`{"token": ..}`).
    pub fn login(&self, body: &Value) -> Result<Value> {
        let path = "/api/v1/auth_proxy/login/";
        let text = self.send(Method::Post, path, Some(body))?;
        serde_json::from_str(&text).map_err(|e| Error::Decode {
            path: path.to_string(),
            reason: e.to_string(),
        })
    }

    /// A call on netmaster's user administration (`/api/v1/auth_proxy/<rest>`): `method` is
    /// GET, POST, PATCH or DELETE; the answer as JSON.
    pub fn users_call(&self, method: &str, rest: &str, body: Option<&Value>) -> Result<Value> {
        let path = format!("/api/v1/auth_proxy/{rest}");
        let m = match method {
            "POST" => Method::Post,
            "PATCH" => Method::Patch,
            "DELETE" => Method::Delete,
            _ => Method::Get,
        };
        let text = self.send(m, &path, body)?;
        Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// `GET <path>` decoded as JSON (`path` starts with `/`).
    pub fn get_json(&self, path: &str) -> Result<Value> {
        let text = self.send(Method::Get, path, None)?;
        serde_json::from_str(&text).map_err(|e| Error::Decode {
            path: path.to_string(),
            reason: e.to_string(),
        })
    }

    /// Sends one request and returns the body of a successful answer.
    fn send(&self, method: Method, path: &str, body: Option<&Value>) -> Result<String> {
        let url = format!("{}{}", self.base, path);
        let token = self.token.as_deref();
        let result = match method {
            Method::Get => with_token(self.agent.get(&url), token).call(),
            Method::Delete => with_token(self.agent.delete(&url), token).call(),
            Method::Post => {
                let payload = body.map(Value::to_string).unwrap_or_default();
                with_token(self.agent.post(&url), token)
                    .content_type("application/json")
                    .send(payload.as_str())
            }
            Method::Patch => {
                let payload = body.map(Value::to_string).unwrap_or_default();
                with_token(self.agent.patch(&url), token)
                    .content_type("application/json")
                    .send(payload.as_str())
            }
        };
        let mut response = result.map_err(|e| self.connect_error(e))?;
        let status = response.status();
        let text = response
            .body_mut()
            .read_to_string()
            .map_err(|e| self.connect_error(e))?;
        if status.is_success() {
            return Ok(text);
        }
        if method == Method::Delete && status.as_u16() == 404 {
            return Ok(String::new());
        }
        Err(Error::Server(server_message(status.as_u16(), &text)))
    }

    fn connect_error(&self, err: ureq::Error) -> Error {
        Error::Connect {
            url: self.base.clone(),
            reason: err.to_string(),
        }
    }
}

/// Checks and normalizes the `--netmaster` value.
fn normalize_base(url: &str) -> Result<String> {
    let url = url.trim().trim_end_matches('/');
    if url.is_empty() {
        return Err(Error::invalid("netmaster URL is empty"));
    }
    if url.starts_with("http://") || url.starts_with("https://") {
        return Ok(url.to_string());
    }
    if url.contains("://") {
        return Err(Error::invalid(format!(
            "unsupported netmaster URL scheme: {url}"
        )));
    }
    Ok(format!("http://{url}"))
}

/// The message to show for a failed request: netmaster's text, or the problem+json detail, or the
/// status line when the body is empty (Contiv's client says "Page not found!" for a bare 404).
fn server_message(status: u16, body: &str) -> String {
    let body = body.trim();
    if let Ok(Value::Object(problem)) = serde_json::from_str::<Value>(body) {
        for field in ["detail", "title", "message", "error"] {
            if let Some(Value::String(msg)) = problem.get(field) {
                return msg.clone();
            }
        }
    }
    if !body.is_empty() {
        return body.to_string();
    }
    match status {
        404 => "Page not found!".to_string(),
        403 => "Access denied!".to_string(),
        _ => format!("netmaster answered HTTP {status}"),
    }
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Adds `X-Auth-Token` when there is a token (no empty header without one).
fn with_token<B>(req: ureq::RequestBuilder<B>, token: Option<&str>) -> ureq::RequestBuilder<B> {
    match token {
        Some(t) => req.header("X-Auth-Token", t),
        None => req,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_url_normalization() {
        assert_eq!(
            normalize_base("http://nm:9999/").ok(),
            Some("http://nm:9999".into())
        );
        assert_eq!(
            normalize_base("nm:9999").ok(),
            Some("http://nm:9999".into())
        );
        assert_eq!(
            normalize_base("https://nm").ok(),
            Some("https://nm".to_string())
        );
        assert!(matches!(normalize_base("ftp://nm"), Err(Error::Invalid(_))));
        assert!(matches!(normalize_base(" "), Err(Error::Invalid(_))));
    }

    #[test]
    fn server_messages() {
        assert_eq!(
            server_message(500, "tenant not found\n"),
            "tenant not found"
        );
        assert_eq!(server_message(404, ""), "Page not found!");
        assert_eq!(
            server_message(409, r#"{"title":"Conflict","detail":"network exists"}"#),
            "network exists"
        );
        assert_eq!(server_message(502, ""), "netmaster answered HTTP 502");
    }
}
