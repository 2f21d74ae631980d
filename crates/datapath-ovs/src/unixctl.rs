//! ovs-vswitchd's control socket (what `ovs-appctl` speaks: JSON-RPC over
//! `<rundir>/ovs-vswitchd.<pid>.ctl`), for the one thing OpenFlow 1.3 on OVS 3.1 cannot do:
//! drop the conntrack entries of single connections. Service balancing uses it when a provider
//! leaves: connections that picked it but never got an answer are forgotten, so their next
//! retransmission is balanced anew (as the Linux driver does with ctnetlink).

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The control socket of the ovs-vswitchd whose pidfile is in `rundir`.
pub fn ctl_socket(rundir: &Path) -> std::io::Result<PathBuf> {
    let pid = std::fs::read_to_string(rundir.join("ovs-vswitchd.pid"))?;
    Ok(rundir.join(format!("ovs-vswitchd.{}.ctl", pid.trim())))
}

fn err(what: impl std::fmt::Display) -> std::io::Error {
    std::io::Error::other(format!("ovs-vswitchd control socket: {what}"))
}

/// Runs one command (`dpctl/dump-conntrack`, ...) and returns its text output.
pub async fn call(sock: &Path, method: &str, params: &[String]) -> std::io::Result<String> {
    let mut s = tokio::net::UnixStream::connect(sock).await?;
    let req = serde_json::json!({"method": method, "params": params, "id": 0});
    s.write_all(req.to_string().as_bytes()).await?;
    let mut buf = vec![];
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut chunk))
            .await
            .map_err(|_| err("no answer in 5 s"))??;
        if n == 0 {
            return Err(err("closed before answering"));
        }
        buf.extend_from_slice(&chunk[..n]);
        match serde_json::from_slice::<serde_json::Value>(&buf) {
            Ok(v) => {
                if let Some(e) = v.get("error").filter(|e| !e.is_null()) {
                    return Err(err(format!("{method}: {e}")));
                }
                return Ok(v
                    .get("result")
                    .and_then(|r| r.as_str())
                    .unwrap_or_default()
                    .to_string());
            }
            Err(e) if e.is_eof() => continue,
            Err(e) => return Err(err(e)),
        }
    }
}

/// One connection as `dpctl/dump-conntrack` prints it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CtEntry {
    pub proto: u8,
    pub orig: (Ipv4Addr, Ipv4Addr, u16, u16),
    pub reply: (Ipv4Addr, Ipv4Addr, u16, u16),
    /// `protoinfo=(state=...)` (TCP only).
    pub state: Option<String>,
}

impl CtEntry {
    /// Parses `tcp,orig=(src=A,dst=B,sport=1,dport=2),reply=(...),zone=1,protoinfo=(state=X)`;
    /// `None` for anything else (other protocols, IPv6).
    pub fn parse(line: &str) -> Option<CtEntry> {
        let proto = match line.split(',').next()? {
            "tcp" => 6,
            "udp" => 17,
            _ => return None,
        };
        let tuple = |key: &str| -> Option<(Ipv4Addr, Ipv4Addr, u16, u16)> {
            let start = line.find(&format!("{key}=("))? + key.len() + 2;
            let inner = &line[start..start + line[start..].find(')')?];
            let field = |k: &str| {
                inner
                    .split(',')
                    .find_map(|kv| kv.strip_prefix(k)?.strip_prefix('='))
            };
            Some((
                field("src")?.parse().ok()?,
                field("dst")?.parse().ok()?,
                field("sport")?.parse().ok()?,
                field("dport")?.parse().ok()?,
            ))
        };
        let state = line
            .find("state=")
            .map(|i| &line[i + 6..])
            .and_then(|s| s.split([')', ',']).next())
            .map(str::to_string);
        Some(CtEntry {
            proto,
            orig: tuple("orig")?,
            reply: tuple("reply")?,
            state,
        })
    }

    /// `dpctl/flush-conntrack`'s origin tuple of this connection.
    pub fn origin_tuple(&self) -> String {
        let (src, dst, sport, dport) = self.orig;
        format!(
            "ct_nw_src={src},ct_nw_dst={dst},ct_nw_proto={},ct_tp_src={sport},ct_tp_dst={dport}",
            self.proto
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conntrack_lines_as_ovs_appctl_prints_them() {
        let tcp = "tcp,orig=(src=10.61.0.7,dst=10.61.0.2,sport=46532,dport=80),reply=(src=10.61.0.3,dst=10.61.0.7,sport=8080,dport=46532),zone=1,protoinfo=(state=SYN_SENT)";
        let e = CtEntry::parse(tcp).unwrap();
        assert_eq!(e.proto, 6);
        assert_eq!(e.orig.1, Ipv4Addr::new(10, 61, 0, 2));
        assert_eq!((e.reply.0, e.reply.2), (Ipv4Addr::new(10, 61, 0, 3), 8080));
        assert_eq!(e.state.as_deref(), Some("SYN_SENT"));
        assert_eq!(
            e.origin_tuple(),
            "ct_nw_src=10.61.0.7,ct_nw_dst=10.61.0.2,ct_nw_proto=6,ct_tp_src=46532,ct_tp_dst=80"
        );
        let udp = "udp,orig=(src=10.61.0.7,dst=10.61.0.2,sport=36241,dport=53),reply=(src=10.61.0.3,dst=10.61.0.7,sport=5353,dport=36241),zone=1";
        let u = CtEntry::parse(udp).unwrap();
        assert_eq!((u.proto, u.state), (17, None));
        assert_eq!(CtEntry::parse("icmp,orig=(src=1.1.1.1)"), None);
        assert_eq!(CtEntry::parse("tcp,orig=(src=x"), None);
    }
}
