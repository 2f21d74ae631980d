//! A minimal blocking HTTP/1.1 codec: enough for one JSON request per unix-socket connection.
//!
//! Client side: [`write_request`] and [`read_response`] (status line, headers, body framed by
//! `Content-Length`, `Transfer-Encoding: chunked`, or end of stream). Server side (for the test
//! agent): [`read_request`] and [`write_response`], which only need `Content-Length` bodies.

use std::io::{self, BufRead, Read, Write};

/// Largest header section or body accepted (the protocol's messages are a few KiB).
const MAX_SIZE: usize = 4 << 20;

/// A parsed HTTP message head plus body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Response status code (0 for requests).
    pub status: u16,
    /// Request method (empty for responses).
    pub method: String,
    /// Request target (empty for responses).
    pub path: String,
    /// Headers, names lower-cased, in order.
    pub headers: Vec<(String, String)>,
    /// Body bytes.
    pub body: Vec<u8>,
}

fn invalid(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.into())
}

/// Writes a `POST` with a JSON body and `Connection: close`.
pub fn write_request(w: &mut impl Write, path: &str, body: &[u8]) -> io::Result<()> {
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: contiv-agent\r\nUser-Agent: contivk8s/{}\r\n\
         Content-Type: application/json\r\nAccept: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        env!("CARGO_PKG_VERSION"),
        body.len()
    );
    w.write_all(head.as_bytes())?;
    w.write_all(body)?;
    w.flush()
}

/// Reads one line terminated by `\n`, without the line ending; fails at end of stream.
fn read_line(r: &mut impl BufRead, budget: &mut usize) -> io::Result<String> {
    let mut buf = Vec::new();
    let n = r
        .by_ref()
        .take(*budget as u64 + 1)
        .read_until(b'\n', &mut buf)?;
    if n == 0 {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "connection closed before a complete message",
        ));
    }
    if n > *budget {
        return Err(invalid("HTTP header section too large"));
    }
    *budget -= n;
    if buf.last() != Some(&b'\n') {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "connection closed inside a header line",
        ));
    }
    while matches!(buf.last(), Some(b'\n' | b'\r')) {
        buf.pop();
    }
    String::from_utf8(buf).map_err(|_| invalid("HTTP header is not UTF-8"))
}

fn read_headers(r: &mut impl BufRead, budget: &mut usize) -> io::Result<Vec<(String, String)>> {
    let mut headers = Vec::new();
    loop {
        let line = read_line(r, budget)?;
        if line.is_empty() {
            return Ok(headers);
        }
        let (k, v) = line
            .split_once(':')
            .ok_or_else(|| invalid(format!("bad header line {line:?}")))?;
        headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
    }
}

fn content_length(headers: &[(String, String)]) -> io::Result<Option<usize>> {
    match headers.iter().find(|(k, _)| k == "content-length") {
        None => Ok(None),
        Some((_, v)) => {
            let n: usize = v
                .parse()
                .map_err(|_| invalid(format!("bad Content-Length {v:?}")))?;
            if n > MAX_SIZE {
                return Err(invalid("HTTP body too large"));
            }
            Ok(Some(n))
        }
    }
}

fn read_exact_body(r: &mut impl Read, n: usize) -> io::Result<Vec<u8>> {
    let mut body = vec![0; n];
    r.read_exact(&mut body)?;
    Ok(body)
}

fn read_chunked(r: &mut impl BufRead) -> io::Result<Vec<u8>> {
    let mut body = Vec::new();
    let mut budget = MAX_SIZE;
    loop {
        let line = read_line(r, &mut budget)?;
        let size_str = line.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_str, 16)
            .map_err(|_| invalid(format!("bad chunk size {line:?}")))?;
        if size == 0 {
            // Trailers, up to the empty line.
            while !read_line(r, &mut budget)?.is_empty() {}
            return Ok(body);
        }
        if body.len() + size > MAX_SIZE {
            return Err(invalid("HTTP body too large"));
        }
        body.extend(read_exact_body(r, size)?);
        read_line(r, &mut budget)?;
    }
}

/// Reads a response (skipping `1xx` interim responses).
pub fn read_response(r: &mut impl BufRead) -> io::Result<Message> {
    loop {
        let mut budget = 64 * 1024;
        let status_line = read_line(r, &mut budget)?;
        let mut parts = status_line.splitn(3, ' ');
        let version = parts.next().unwrap_or_default();
        if !version.starts_with("HTTP/1.") {
            return Err(invalid(format!(
                "not an HTTP/1.x response: {status_line:?}"
            )));
        }
        let status: u16 = parts
            .next()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| invalid(format!("bad status line {status_line:?}")))?;
        let headers = read_headers(r, &mut budget)?;
        if (100..200).contains(&status) {
            continue;
        }
        let chunked = headers
            .iter()
            .any(|(k, v)| k == "transfer-encoding" && v.to_ascii_lowercase().contains("chunked"));
        let body = if chunked {
            read_chunked(r)?
        } else if let Some(n) = content_length(&headers)? {
            read_exact_body(r, n)?
        } else if status == 204 || status == 304 {
            Vec::new()
        } else {
            let mut body = Vec::new();
            r.take(MAX_SIZE as u64 + 1).read_to_end(&mut body)?;
            if body.len() > MAX_SIZE {
                return Err(invalid("HTTP body too large"));
            }
            body
        };
        return Ok(Message {
            status,
            method: String::new(),
            path: String::new(),
            headers,
            body,
        });
    }
}

#[cfg(any(test, feature = "test-agent"))]
/// Reads a request with an optional `Content-Length` body (server side, test agent).
pub fn read_request(r: &mut impl BufRead) -> io::Result<Message> {
    let mut budget = 64 * 1024;
    let line = read_line(r, &mut budget)?;
    let mut parts = line.split(' ');
    let (Some(method), Some(path)) = (parts.next(), parts.next()) else {
        return Err(invalid(format!("bad request line {line:?}")));
    };
    let headers = read_headers(r, &mut budget)?;
    let body = match content_length(&headers)? {
        Some(n) => read_exact_body(r, n)?,
        None => Vec::new(),
    };
    Ok(Message {
        status: 0,
        method: method.to_string(),
        path: path.to_string(),
        headers,
        body,
    })
}

#[cfg(any(test, feature = "test-agent"))]
/// Writes a JSON response with `Content-Length` and `Connection: close` (server side, test agent).
pub fn write_response(w: &mut impl Write, status: u16, body: &[u8]) -> io::Result<()> {
    let reason = match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        503 => "Service Unavailable",
        _ => "Error",
    };
    let head = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n",
        body.len()
    );
    w.write_all(head.as_bytes())?;
    w.write_all(body)?;
    w.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_round_trip() {
        let mut buf = Vec::new();
        write_request(&mut buf, "/cni/add", br#"{"a":1}"#).expect("write");
        let msg = read_request(&mut &buf[..]).expect("read");
        assert_eq!(
            (msg.method.as_str(), msg.path.as_str()),
            ("POST", "/cni/add")
        );
        assert!(msg
            .headers
            .contains(&("content-type".to_string(), "application/json".to_string())));
        assert_eq!(msg.body, br#"{"a":1}"#);
    }

    #[test]
    fn response_with_content_length() {
        let mut buf = Vec::new();
        write_response(&mut buf, 404, b"{}").expect("write");
        let msg = read_response(&mut &buf[..]).expect("read");
        assert_eq!(msg.status, 404);
        assert_eq!(msg.body, b"{}");
    }

    #[test]
    fn response_chunked_after_continue() {
        let raw =
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\
                    4\r\n{\"a\"\r\n3;x=y\r\n:1}\r\n0\r\n\r\n";
        let msg = read_response(&mut &raw[..]).expect("read");
        assert_eq!(msg.status, 200);
        assert_eq!(msg.body, br#"{"a":1}"#);
    }

    #[test]
    fn response_until_eof_and_truncated() {
        let msg = read_response(&mut &b"HTTP/1.0 200 OK\r\n\r\n{}"[..]).expect("read");
        assert_eq!(msg.body, b"{}");
        let err = read_response(&mut &b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n{}"[..]);
        assert!(err.is_err());
        assert!(read_response(&mut &b""[..]).is_err());
        assert!(read_response(&mut &b"SSH-2.0\r\n\r\n"[..]).is_err());
    }
}
