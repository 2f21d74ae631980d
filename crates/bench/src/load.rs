//! A small closed-loop HTTP/1.1 load client: `connections` threads, each with one keep-alive
//! connection, sending the same GET back to back for a fixed time. Servers that answer
//! `Connection: close` (the original netmaster does) get a new connection per request, which is
//! part of what is measured. Bounded in threads and time; stops by itself.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};

pub const MAX_CONNECTIONS: usize = 64;
pub const MAX_DURATION: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, Default)]
pub struct LoadResult {
    /// Completed 200 responses inside the measured window.
    pub requests: u64,
    pub secs: f64,
    pub errors: u64,
    /// TCP connections opened inside the measured window.
    pub connects: u64,
    /// Body bytes of the last response (size of one list).
    pub body_bytes: usize,
}

impl LoadResult {
    pub fn rps(&self) -> f64 {
        self.requests as f64 / self.secs
    }
}

/// Runs GET `path` against `addr` for `warmup + duration`, counting only the `duration` window.
pub fn run(
    addr: SocketAddr,
    path: &str,
    connections: usize,
    warmup: Duration,
    duration: Duration,
) -> anyhow::Result<LoadResult> {
    if connections == 0 || connections > MAX_CONNECTIONS {
        bail!("connections must be 1..={MAX_CONNECTIONS}");
    }
    if duration.is_zero() || duration + warmup > MAX_DURATION {
        bail!("warmup + duration must be > 0 and <= {MAX_DURATION:?}");
    }
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nAccept: application/json\r\nUser-Agent: contiv-bench\r\n\r\n").into_bytes();
    let request = Arc::new(request);
    let start = Instant::now();
    let measure_from = start + warmup;
    let stop_at = measure_from + duration;
    let failed = Arc::new(AtomicBool::new(false));
    let mut handles = Vec::new();
    for _ in 0..connections {
        let request = request.clone();
        let failed = failed.clone();
        handles.push(std::thread::spawn(move || {
            worker(addr, &request, measure_from, stop_at, &failed)
        }));
    }
    let mut total = LoadResult {
        secs: duration.as_secs_f64(),
        ..Default::default()
    };
    let mut first_err = None;
    for h in handles {
        match h.join().map_err(|_| anyhow!("load worker panicked"))? {
            Ok(r) => {
                total.requests += r.requests;
                total.errors += r.errors;
                total.connects += r.connects;
                total.body_bytes = total.body_bytes.max(r.body_bytes);
            }
            Err(e) => {
                first_err.get_or_insert(e);
            }
        }
    }
    if let Some(e) = first_err {
        return Err(e);
    }
    Ok(total)
}

fn connect(addr: SocketAddr) -> std::io::Result<TcpStream> {
    let s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    s.set_nodelay(true)?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    s.set_write_timeout(Some(Duration::from_secs(10)))?;
    Ok(s)
}

fn worker(
    addr: SocketAddr,
    request: &[u8],
    measure_from: Instant,
    stop_at: Instant,
    failed: &AtomicBool,
) -> anyhow::Result<LoadResult> {
    let mut res = LoadResult::default();
    let mut conn: Option<TcpStream> = None;
    let mut buf = Vec::with_capacity(64 * 1024);
    let mut consecutive_errors = 0u32;
    loop {
        let now = Instant::now();
        if now >= stop_at || failed.load(Ordering::Relaxed) {
            break;
        }
        let counted = now >= measure_from;
        let stream = match conn.as_mut() {
            Some(s) => s,
            None => {
                let s = connect(addr).with_context(|| format!("connecting to {addr}"))?;
                if counted {
                    res.connects += 1;
                }
                conn.insert(s)
            }
        };
        match exchange(stream, request, &mut buf) {
            Ok((status, body_len, keep)) => {
                if status != 200 {
                    failed.store(true, Ordering::Relaxed);
                    bail!("GET answered HTTP {status}");
                }
                consecutive_errors = 0;
                // Only responses that complete inside the window count.
                if counted && Instant::now() <= stop_at {
                    res.requests += 1;
                }
                res.body_bytes = body_len;
                if !keep {
                    conn = None;
                }
            }
            Err(e) => {
                conn = None;
                res.errors += 1;
                consecutive_errors += 1;
                if consecutive_errors > 100 {
                    failed.store(true, Ordering::Relaxed);
                    return Err(e.context("100 consecutive request errors"));
                }
            }
        }
    }
    Ok(res)
}

/// One request/response on `s`. Returns (status, body length, connection reusable).
fn exchange(
    s: &mut TcpStream,
    request: &[u8],
    buf: &mut Vec<u8>,
) -> anyhow::Result<(u16, usize, bool)> {
    s.write_all(request)?;
    buf.clear();
    // Read the head.
    let head_end = loop {
        if let Some(i) = find(buf, b"\r\n\r\n") {
            break i + 4;
        }
        if !read_more(s, buf)? {
            bail!("connection closed before the response head");
        }
    };
    let head = std::str::from_utf8(&buf[..head_end]).context("non-UTF-8 response head")?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status: u16 = status_line
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| anyhow!("bad status line {status_line:?}"))?;
    let http10 = status_line.starts_with("HTTP/1.0");
    let mut content_length = None;
    let mut chunked = false;
    let mut close = http10;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            content_length = Some(value.parse::<usize>().context("bad Content-Length")?);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = value.to_ascii_lowercase().contains("chunked");
        } else if name.eq_ignore_ascii_case("connection") {
            let v = value.to_ascii_lowercase();
            if v.contains("close") {
                close = true;
            } else if v.contains("keep-alive") {
                close = false;
            }
        }
    }
    let body_len = if chunked {
        read_chunked(s, buf, head_end)?
    } else if let Some(n) = content_length {
        while buf.len() < head_end + n {
            if !read_more(s, buf)? {
                bail!("connection closed inside the body");
            }
        }
        n
    } else {
        // Delimited by close.
        while read_more(s, buf)? {}
        close = true;
        buf.len() - head_end
    };
    Ok((status, body_len, !close))
}

fn read_more(s: &mut TcpStream, buf: &mut Vec<u8>) -> std::io::Result<bool> {
    let old = buf.len();
    buf.resize(old + 64 * 1024, 0);
    let n = s.read(&mut buf[old..]);
    match n {
        Ok(n) => {
            buf.truncate(old + n);
            Ok(n > 0)
        }
        Err(e) => {
            buf.truncate(old);
            Err(e)
        }
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Reads a chunked body starting at `pos`; returns the decoded length.
fn read_chunked(s: &mut TcpStream, buf: &mut Vec<u8>, mut pos: usize) -> anyhow::Result<usize> {
    let mut total = 0;
    loop {
        let line_end = loop {
            if let Some(i) = find(&buf[pos..], b"\r\n") {
                break pos + i;
            }
            if !read_more(s, buf)? {
                bail!("connection closed inside a chunk header");
            }
        };
        let size_str = std::str::from_utf8(&buf[pos..line_end])?
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_string();
        let size = usize::from_str_radix(&size_str, 16)
            .with_context(|| format!("bad chunk size {size_str:?}"))?;
        pos = line_end + 2;
        if size == 0 {
            // Trailers end with an empty line.
            loop {
                if let Some(i) = find(&buf[pos..], b"\r\n") {
                    if i == 0 {
                        return Ok(total);
                    }
                    pos += i + 2;
                    continue;
                }
                if !read_more(s, buf)? {
                    bail!("connection closed inside the trailers");
                }
            }
        }
        while buf.len() < pos + size + 2 {
            if !read_more(s, buf)? {
                bail!("connection closed inside a chunk");
            }
        }
        total += size;
        pos += size + 2;
    }
}

/// A minimal keep-alive HTTP/1.1 client for the sequential timings. It writes each request in one
/// `write` (as Go's net/http and most clients do for small bodies) with TCP_NODELAY, and reconnects
/// when the server closes the connection (the original netmaster answers `Connection: close`, so
/// it pays a TCP connect per request, as it does for every client). A general-purpose client such
/// as ureq adds ~0.1 ms per request on these machines, which would hide the servers' own cost.
pub struct SeqClient {
    addr: SocketAddr,
    host: String,
    conn: Option<TcpStream>,
    buf: Vec<u8>,
}

impl SeqClient {
    pub fn new(addr: SocketAddr) -> Self {
        SeqClient {
            addr,
            host: addr.to_string(),
            conn: None,
            buf: Vec::with_capacity(64 * 1024),
        }
    }

    /// One request; returns the status and the (de-chunked) body. Retries once on a connection
    /// the server closed while idle.
    pub fn call(
        &mut self,
        method: &str,
        path: &str,
        body: Option<&str>,
    ) -> anyhow::Result<(u16, String)> {
        let body = body.unwrap_or("");
        let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {}\r\n", self.host);
        if method != "GET" {
            req.push_str(&format!(
                "Content-Type: application/json\r\nContent-Length: {}\r\n",
                body.len()
            ));
        }
        req.push_str("\r\n");
        req.push_str(body);
        for attempt in 0..2 {
            let fresh = self.conn.is_none();
            let stream = match self.conn.as_mut() {
                Some(s) => s,
                None => self.conn.insert(
                    connect(self.addr).with_context(|| format!("connecting to {}", self.addr))?,
                ),
            };
            match exchange(stream, req.as_bytes(), &mut self.buf) {
                Ok((status, _, keep)) => {
                    let text = response_body(&self.buf)?;
                    if !keep {
                        self.conn = None;
                    }
                    return Ok((status, text));
                }
                Err(e) if !fresh && attempt == 0 => {
                    self.conn = None;
                    let _ = e;
                }
                Err(e) => return Err(e),
            }
        }
        bail!("{method} {path}: no response")
    }
}

/// The body of the response held in `buf` (head included), de-chunked.
fn response_body(buf: &[u8]) -> anyhow::Result<String> {
    let head_end = find(buf, b"\r\n\r\n")
        .map(|i| i + 4)
        .ok_or_else(|| anyhow!("no response head"))?;
    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
    let raw = &buf[head_end..];
    if !head.contains("transfer-encoding: chunked") {
        let n = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse::<usize>().ok())
            .unwrap_or(raw.len());
        return Ok(String::from_utf8_lossy(&raw[..n.min(raw.len())]).into_owned());
    }
    let (mut out, mut pos) = (Vec::new(), 0);
    while let Some(i) = find(&raw[pos..], b"\r\n") {
        let size_str = String::from_utf8_lossy(&raw[pos..pos + i]).into_owned();
        let size = usize::from_str_radix(size_str.split(';').next().unwrap_or("").trim(), 16)
            .context("bad chunk size")?;
        pos += i + 2;
        if size == 0 || pos + size > raw.len() {
            break;
        }
        out.extend_from_slice(&raw[pos..pos + size]);
        pos += size + 2;
    }
    Ok(String::from_utf8_lossy(&out).into_owned())
}
