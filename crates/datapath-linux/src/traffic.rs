//! Traffic tools of the test bed (feature `testbed`): iperf3 throughput between two namespaces
//! and a tcpdump capture of the TOS byte in one. Every process is started here and ended by
//! its own pid (killed when its guard drops, also when a test fails).

use std::io::Read;
use std::net::Ipv4Addr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A child process killed (by its pid) and reaped when dropped.
pub struct Guard(Option<Child>);

impl Guard {
    fn spawn(mut cmd: Command) -> Result<Guard, String> {
        cmd.spawn()
            .map(|c| Guard(Some(c)))
            .map_err(|e| format!("spawn {cmd:?}: {e}"))
    }

    /// Stops the process (SIGTERM, so it flushes what it holds; SIGKILL after a second);
    /// returns what it wrote on stdout (when piped).
    fn finish(&mut self) -> String {
        let Some(mut c) = self.0.take() else {
            return String::new();
        };
        if let Ok(pid) = i32::try_from(c.id()) {
            // SAFETY: kill(2) on the pid of our own child, not reaped yet.
            unsafe { libc::kill(pid, libc::SIGTERM) };
            let deadline = Instant::now() + Duration::from_secs(1);
            while Instant::now() < deadline && matches!(c.try_wait(), Ok(None)) {
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        let _ = c.kill();
        let _ = c.wait();
        let mut out = String::new();
        if let Some(mut s) = c.stdout.take() {
            let _ = s.read_to_string(&mut out);
        }
        out
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        self.finish();
    }
}

/// `nsenter --net=<ns> <prog> <args>`.
fn in_ns(ns: &Path, prog: &str, args: &[&str]) -> Command {
    let mut c = Command::new("nsenter");
    c.arg(format!("--net={}", ns.display()))
        .arg(prog)
        .args(args);
    c
}

/// Throughput in bit/s of one TCP stream for `secs` seconds from the client namespace to
/// `server_ip` (an iperf3 server started in `server_ns`); `reverse`: the server sends.
/// Measured as the receiver saw it.
pub fn iperf3(
    server_ns: &Path,
    server_ip: Ipv4Addr,
    client_ns: &Path,
    secs: u32,
    reverse: bool,
) -> Result<f64, String> {
    let mut server = in_ns(server_ns, "iperf3", &["-s", "-1", "-p", "5201"]);
    server.stdout(Stdio::null()).stderr(Stdio::null());
    let _server = Guard::spawn(server)?;
    let ip = server_ip.to_string();
    let secs = secs.to_string();
    let mut args = vec!["-c", &ip, "-p", "5201", "-t", &secs, "-J"];
    if reverse {
        args.push("-R");
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let out = in_ns(client_ns, "iperf3", &args)
            .stderr(Stdio::null())
            .output()
            .map_err(|e| format!("iperf3 client: {e}"))?;
        let v: serde_json::Value =
            serde_json::from_slice(&out.stdout).map_err(|e| format!("iperf3 output: {e}"))?;
        if let Some(bps) = v["end"]["sum_received"]["bits_per_second"].as_f64() {
            return Ok(bps);
        }
        // The server may not listen yet.
        if Instant::now() > deadline {
            return Err(format!("iperf3 failed: {}", v["error"]));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A tcpdump running in a namespace, printing the IPv4 header of every packet it sees (its
/// stderr kept open: tcpdump dies of SIGPIPE on a closed one).
pub struct Capture(Guard, #[allow(dead_code)] std::process::ChildStderr);

impl Capture {
    /// Starts `tcpdump -n -v -l --immediate-mode -i <ifname> <filter>` in `ns` and waits until
    /// it listens.
    pub fn start(ns: &Path, ifname: &str, filter: &str) -> Result<Capture, String> {
        let mut args = vec!["-n", "-v", "-l", "--immediate-mode", "-i", ifname];
        args.extend(filter.split_whitespace());
        let mut c = in_ns(ns, "tcpdump", &args);
        c.stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut g = Guard::spawn(c)?;
        // tcpdump says "listening on ..." on stderr once the socket is open.
        let mut err =
            g.0.as_mut()
                .and_then(|c| c.stderr.take())
                .ok_or("tcpdump has no stderr")?;
        let mut seen = Vec::new();
        let mut buf = [0u8; 256];
        while !String::from_utf8_lossy(&seen).contains("listening on") {
            match err.read(&mut buf) {
                Ok(0) | Err(_) => {
                    return Err(format!(
                        "tcpdump did not start: {}",
                        String::from_utf8_lossy(&seen)
                    ))
                }
                Ok(n) => seen.extend_from_slice(&buf[..n]),
            }
        }
        Ok(Capture(g, err))
    }

    /// Stops the capture; what tcpdump printed (see [`tos_values`]).
    pub fn stop(mut self) -> String {
        // Let the last packets be printed.
        std::thread::sleep(Duration::from_millis(200));
        self.0.finish()
    }
}

/// The `tos 0x..` values of tcpdump's verbose IPv4 lines.
pub fn tos_values(out: &str) -> Vec<u8> {
    out.split("(tos 0x")
        .skip(1)
        .filter_map(|rest| {
            let hex: String = rest.chars().take_while(|c| c.is_ascii_hexdigit()).collect();
            u8::from_str_radix(&hex, 16).ok()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn tos_from_tcpdump_lines() {
        let out = "12:00:00.1 IP (tos 0xb8, ttl 64, id 1, offset 0, flags [DF], proto ICMP (1), length 84)\n    10.1.0.2 > 10.1.0.3: ICMP echo request\n12:00:00.2 IP (tos 0x0, ttl 64, id 2)\n";
        assert_eq!(super::tos_values(out), vec![0xb8, 0]);
    }
}
