//! Test helpers: a fake netmaster (canned answers per method and path, every request recorded)
//! and a runner that parses a command line and captures what the command prints.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::thread;

use serde_json::Value;

use crate::error::Result;

/// One request the fake server received.
#[derive(Clone, Debug)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub body: String,
}

impl Recorded {
    /// The body as JSON (`Null` when it is not JSON).
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }
}

type Routes = HashMap<(String, String), (u16, String)>;

/// A fake netmaster on 127.0.0.1; unknown routes answer 404 with an empty body.
pub struct FakeServer {
    pub url: String,
    routes: Arc<Mutex<Routes>>,
    requests: Arc<Mutex<Vec<Recorded>>>,
}

impl FakeServer {
    pub fn start() -> FakeServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind fake netmaster");
        let url = format!("http://{}", listener.local_addr().expect("local addr"));
        let routes: Arc<Mutex<Routes>> = Arc::default();
        let requests: Arc<Mutex<Vec<Recorded>>> = Arc::default();
        let (r, q) = (routes.clone(), requests.clone());
        thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                serve(stream, &r, &q);
            }
        });
        FakeServer {
            url,
            routes,
            requests,
        }
    }

    /// Answers `method path` with `status` and `body` from now on.
    pub fn route(&self, method: &str, path: &str, status: u16, body: &str) -> &Self {
        self.routes.lock().expect("routes").insert(
            (method.to_string(), path.to_string()),
            (status, body.to_string()),
        );
        self
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.requests.lock().expect("requests").clone()
    }

    /// The requests other than GETs.
    pub fn writes(&self) -> Vec<Recorded> {
        self.requests()
            .into_iter()
            .filter(|r| r.method != "GET")
            .collect()
    }
}

fn serve(stream: TcpStream, routes: &Mutex<Routes>, requests: &Mutex<Vec<Recorded>>) {
    let mut reader = BufReader::new(match stream.try_clone() {
        Ok(s) => s,
        Err(_) => return,
    });
    let mut line = String::new();
    if reader.read_line(&mut line).is_err() {
        return;
    }
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or("").to_string();
    let path = parts.next().unwrap_or("").to_string();
    let mut length = 0usize;
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header).is_err() || header.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                length = value.trim().parse().unwrap_or(0);
            }
        }
    }
    let mut body = vec![0u8; length];
    let _ = reader.read_exact(&mut body);
    let body = String::from_utf8_lossy(&body).to_string();
    requests.lock().expect("requests").push(Recorded {
        method: method.clone(),
        path: path.clone(),
        body,
    });
    let (status, answer) = routes
        .lock()
        .expect("routes")
        .get(&(method, path))
        .cloned()
        .unwrap_or((404, String::new()));
    let mut stream = stream;
    let _ = write!(
        stream,
        "HTTP/1.1 {status} X\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{answer}",
        answer.len()
    );
}

/// Parses `netctl --netmaster <url> <args...>`, runs it and returns its result and stdout.
pub fn run_netctl(url: &str, args: &[&str]) -> (Result<()>, String) {
    let mut argv = vec!["netctl", "--netmaster", url];
    argv.extend_from_slice(args);
    let cli = crate::cli::parse(argv).expect("command line parses");
    let mut out = Vec::new();
    let result = super::run(&cli, &mut out);
    (result, String::from_utf8_lossy(&out).to_string())
}

/// Parses a command line without a netmaster flag (for parsing tests).
pub fn parse(args: &[&str]) -> crate::cli::Cli {
    let mut argv = vec!["netctl"];
    argv.extend_from_slice(args);
    match crate::cli::parse(argv) {
        Ok(cli) => cli,
        Err(e) => panic!("{args:?} does not parse: {e}"),
    }
}

/// True when the command line is refused by clap.
pub fn refused(args: &[&str]) -> bool {
    let mut argv = vec!["netctl"];
    argv.extend_from_slice(args);
    crate::cli::parse(argv).is_err()
}
