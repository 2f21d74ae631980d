//! Who owns the client end of a loopback connection, read from the kernel's socket tables
//! (`/proc/net/tcp`, `/proc/net/tcp6`). Used by `--plain-loopback-root-admin`: a connection on
//! the plain loopback listener from a socket of uid 0 acts as `admin` without a token.
//!
//! The client's socket lives on this host (loopback), so its row is in our own network
//! namespace's tables: the row whose local address is the client's and whose remote address is
//! ours. Anything not found or not parsed counts as "owner unknown", which is never root.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// The tables searched, IPv4 first (a plain `127.0.0.1` client), then IPv6 (`::1`, and a
/// dual-stack client socket shows an IPv4 peer as `::ffff:127.0.0.1` there).
const TABLES: [&str; 2] = ["/proc/net/tcp", "/proc/net/tcp6"];

/// The uid owning the client socket of the connection `client` → `server` (both as this
/// process sees them), or `None` when no live socket matches.
pub fn owner_of(client: SocketAddr, server: SocketAddr) -> Option<u32> {
    TABLES
        .iter()
        .find_map(|path| match std::fs::read_to_string(path) {
            Ok(text) => owner_in(&text, client, server),
            Err(e) => {
                tracing::debug!("reading {path}: {e}");
                None
            }
        })
}

/// Searches one table's text (the format of `/proc/net/tcp` and `/proc/net/tcp6`).
pub fn owner_in(table: &str, client: SocketAddr, server: SocketAddr) -> Option<u32> {
    let (client, server) = (canonical(client), canonical(server));
    table.lines().skip(1).find_map(|line| {
        let row = Row::parse(line)?;
        // A socket no process holds any more (TIME_WAIT, orphaned) shows inode 0 and tells
        // nothing about who is calling now.
        (row.local == client && row.remote == server && row.inode != 0).then_some(row.uid)
    })
}

/// An IPv4-mapped IPv6 address as the IPv4 one, so both tables compare alike.
fn canonical(a: SocketAddr) -> SocketAddr {
    SocketAddr::new(a.ip().to_canonical(), a.port())
}

/// The columns of one socket row that matter here.
#[derive(Debug, PartialEq, Eq)]
struct Row {
    local: SocketAddr,
    remote: SocketAddr,
    uid: u32,
    inode: u64,
}

impl Row {
    /// `sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode ...`
    fn parse(line: &str) -> Option<Row> {
        let cols: Vec<&str> = line.split_whitespace().collect();
        if cols.len() < 10 {
            return None;
        }
        Some(Row {
            local: address(cols[1])?,
            remote: address(cols[2])?,
            uid: cols[7].parse().ok()?,
            inode: cols[9].parse().ok()?,
        })
    }
}

/// `HEXADDR:HEXPORT`. The kernel prints the address as 32-bit words in the host's byte order
/// (`0100007F` is 127.0.0.1 on x86) and the port as a plain number.
fn address(text: &str) -> Option<SocketAddr> {
    let (addr, port) = text.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let word = |i: usize| -> Option<[u8; 4]> {
        let hex = addr.get(i * 8..i * 8 + 8)?;
        Some(u32::from_str_radix(hex, 16).ok()?.to_ne_bytes())
    };
    let ip = match addr.len() {
        8 => IpAddr::V4(Ipv4Addr::from(word(0)?)),
        32 => {
            let mut bytes = [0u8; 16];
            for (i, chunk) in bytes.chunks_exact_mut(4).enumerate() {
                chunk.copy_from_slice(&word(i)?);
            }
            IpAddr::V6(Ipv6Addr::from(bytes))
        }
        _ => return None,
    };
    Some(SocketAddr::new(ip.to_canonical(), port))
}

// The fixtures are in x86's byte order, as the kernel prints them there.
#[cfg(all(test, target_endian = "little"))]
mod tests {
    use super::*;

    fn at(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    // Server 127.0.0.1:9999 (270F) listening as uid 0; a client 127.0.0.1:41000 (A028) of
    // uid 65534, the server's accepted end of it, and a TIME_WAIT row of an earlier client
    // 127.0.0.1:41002 (A02A), which the kernel prints as uid 0 with inode 0.
    const TCP: &str = "\
  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:270F 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1001 1 0000000000000000 100 0 0 10 0
   1: 0100007F:A028 0100007F:270F 01 00000000:00000000 00:00000000 00000000 65534        0 1002 1 0000000000000000 20 4 30 10 -1
   2: 0100007F:270F 0100007F:A028 01 00000000:00000000 00:00000000 00000000     0        0 1003 1 0000000000000000 20 4 30 10 -1
   3: 0100007F:A02A 0100007F:270F 06 00000000:00000000 03:000016D1 00000000     0        0 0 3 0000000000000000
";

    // A dual-stack client socket of uid 0 at ::ffff:127.0.0.1:41004 (A02C) talking to the
    // IPv4 server, and a ::1 client of uid 1000 at port 41006 (A02E) talking to [::1]:9999.
    const TCP6: &str = "\
  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0000000000000000FFFF00000100007F:A02C 0000000000000000FFFF00000100007F:270F 01 00000000:00000000 00:00000000 00000000     0        0 2001 1 0000000000000000 20 4 30 10 -1
   1: 00000000000000000000000001000000:A02E 00000000000000000000000001000000:270F 01 00000000:00000000 00:00000000 00000000  1000        0 2002 1 0000000000000000 20 4 30 10 -1
";

    #[test]
    fn ipv4_client_row_gives_its_uid_not_the_server_end() {
        let server = at("127.0.0.1:9999");
        assert_eq!(owner_in(TCP, at("127.0.0.1:41000"), server), Some(65534));
        // The server's own end (local = server) is not the client.
        assert_eq!(owner_in(TCP, server, at("127.0.0.1:41000")), Some(0));
        assert_eq!(owner_in(TCP, at("127.0.0.1:41001"), server), None);
        // Another server port: no match.
        assert_eq!(
            owner_in(TCP, at("127.0.0.1:41000"), at("127.0.0.1:9998")),
            None
        );
    }

    #[test]
    fn time_wait_rows_say_nothing_about_the_owner() {
        assert_eq!(
            owner_in(TCP, at("127.0.0.1:41002"), at("127.0.0.1:9999")),
            None
        );
    }

    #[test]
    fn ipv6_mapped_and_ipv6_loopback_rows() {
        // The server saw an IPv4 peer; the client's row is IPv4-mapped in tcp6.
        assert_eq!(
            owner_in(TCP6, at("127.0.0.1:41004"), at("127.0.0.1:9999")),
            Some(0)
        );
        assert_eq!(
            owner_in(TCP6, at("[::ffff:127.0.0.1]:41004"), at("127.0.0.1:9999")),
            Some(0)
        );
        assert_eq!(
            owner_in(TCP6, at("[::1]:41006"), at("[::1]:9999")),
            Some(1000)
        );
        assert_eq!(
            owner_in(TCP6, at("127.0.0.1:41000"), at("127.0.0.1:9999")),
            None
        );
    }

    #[test]
    fn malformed_rows_are_skipped() {
        let text = "header\n 0: zz:270F 0100007F:270F 01 0 0 0 0 0 1\n 1: 0100007F:A028\n";
        assert_eq!(
            owner_in(text, at("127.0.0.1:41000"), at("127.0.0.1:9999")),
            None
        );
        assert_eq!(address("0100007F:270F"), Some(at("127.0.0.1:9999")));
        assert_eq!(address("0100007F"), None);
        assert_eq!(address("01007F:270F"), None);
    }

    #[test]
    fn own_connection_is_found_in_the_real_tables() {
        // A real loopback connection: the client socket is ours, so its owner is our uid.
        let server = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let client = std::net::TcpStream::connect(server.local_addr().unwrap()).unwrap();
        let (_accepted, peer) = server.accept().unwrap();
        let me = std::os::unix::fs::MetadataExt::uid(&std::fs::metadata("/proc/self").unwrap());
        assert_eq!(owner_of(peer, server.local_addr().unwrap()), Some(me));
        drop(client);
    }
}
