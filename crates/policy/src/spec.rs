//! Typed policy values: a Contiv `rule` as the compiler and the datapaths understand it, parsed
//! from the wire object once (with every check a bad rule must fail), and the other inputs of the
//! compiler (networks, groups, endpoints) reduced to what policy needs.

use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

use ipnet::Ipv4Net;
use serde::{Deserialize, Serialize};

/// A rule's identity, `tenant:policy:rule` (the Contiv rule key).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct RuleId {
    pub tenant: String,
    pub policy: String,
    pub rule: String,
}

impl fmt::Display for RuleId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.tenant, self.policy, self.rule)
    }
}

/// What a matching rule decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// Listed first so that sorting puts deny ahead of allow at equal priority.
    Deny,
    Allow,
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Action::Deny => "deny",
            Action::Allow => "allow",
        })
    }
}

/// Which side of a connection a rule governs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// Traffic entering the group's members; matches the source.
    In,
    /// Traffic leaving the group's members; matches the destination.
    Out,
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Direction::In => "in",
            Direction::Out => "out",
        })
    }
}

/// IP protocol of a rule (or of a probe in `explain`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    Any,
    Tcp,
    Udp,
    Icmp,
    /// Any other IP protocol number.
    Number(u8),
}

impl Protocol {
    /// The IP protocol number (`None` for any).
    pub fn number(self) -> Option<u8> {
        match self {
            Protocol::Any => None,
            Protocol::Tcp => Some(6),
            Protocol::Udp => Some(17),
            Protocol::Icmp => Some(1),
            Protocol::Number(n) => Some(n),
        }
    }

    /// Whether the protocol has ports (tcp or udp).
    pub fn has_ports(self) -> bool {
        matches!(self, Protocol::Tcp | Protocol::Udp)
    }

    fn from_number(n: u8) -> Protocol {
        match n {
            6 => Protocol::Tcp,
            17 => Protocol::Udp,
            1 => Protocol::Icmp,
            n => Protocol::Number(n),
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Protocol::Any => f.write_str("any"),
            Protocol::Tcp => f.write_str("tcp"),
            Protocol::Udp => f.write_str("udp"),
            Protocol::Icmp => f.write_str("icmp"),
            Protocol::Number(n) => write!(f, "{n}"),
        }
    }
}

impl FromStr for Protocol {
    type Err = RuleError;
    /// Contiv's forms: `tcp`, `udp`, `icmp`, a protocol number, or empty (any).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "" | "any" => Ok(Protocol::Any),
            "tcp" => Ok(Protocol::Tcp),
            "udp" => Ok(Protocol::Udp),
            "icmp" => Ok(Protocol::Icmp),
            other => match other.parse::<u16>() {
                Ok(n) if n <= 255 => Ok(Protocol::from_number(n as u8)),
                Ok(_) => Err(RuleError::new(format!(
                    "protocol number {s} is outside 0-255"
                ))),
                Err(_) => Err(RuleError::new(format!(
                    "unknown protocol {s:?} (tcp, udp, icmp or a protocol number)"
                ))),
            },
        }
    }
}

/// A set of IPv4 addresses written in a rule: an address, a CIDR, or Contiv's last-octet range
/// `a.b.c.d-e`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum AddrMatch {
    Net(Ipv4Net),
    Range(Ipv4Addr, Ipv4Addr),
}

impl AddrMatch {
    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        match self {
            AddrMatch::Net(n) => n.contains(&ip),
            AddrMatch::Range(a, b) => *a <= ip && ip <= *b,
        }
    }
}

impl fmt::Display for AddrMatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AddrMatch::Net(n) if n.prefix_len() == 32 => write!(f, "{}", n.addr()),
            AddrMatch::Net(n) => write!(f, "{n}"),
            AddrMatch::Range(a, b) => write!(f, "{a}-{b}"),
        }
    }
}

impl FromStr for AddrMatch {
    type Err = RuleError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = |why: &str| RuleError::new(format!("invalid ip address {s:?}: {why}"));
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let (first, last) = match addr.split_once('-') {
            Some((f, l)) => (f, Some(l)),
            None => (addr, None),
        };
        let first: Ipv4Addr = first.parse().map_err(|_| bad("not an IPv4 address"))?;
        if let Some(last) = last {
            if prefix.is_some() {
                return Err(bad("a range takes no prefix length"));
            }
            let last: u8 = last.parse().map_err(|_| bad("range end is not 0-255"))?;
            let o = first.octets();
            let end = Ipv4Addr::new(o[0], o[1], o[2], last);
            if end < first {
                return Err(bad("range end below its start"));
            }
            if end == first {
                // One address: a range of size zero is refused by older nft releases.
                return Ok(AddrMatch::Net(Ipv4Net::from(first)));
            }
            return Ok(AddrMatch::Range(first, end));
        }
        let len = match prefix {
            None => 32,
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|l| (1..=32).contains(l))
                .ok_or_else(|| bad("prefix length must be 1-32"))?,
        };
        let net = Ipv4Net::new(first, len).map_err(|_| bad("prefix length must be 1-32"))?;
        Ok(AddrMatch::Net(net.trunc()))
    }
}

/// The other side a rule matches.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Peer {
    Any,
    /// An endpoint group of the rule's tenant (its members' addresses).
    Group(String),
    /// A network of the rule's tenant (its subnet).
    Network(String),
    Addrs(AddrMatch),
}

/// A bad rule: the message says what is wrong (lower case, no trailing period).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct RuleError(pub String);

impl RuleError {
    pub fn new(msg: impl Into<String>) -> Self {
        RuleError(msg.into())
    }
}

/// A Contiv rule, typed and checked.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RuleSpec {
    pub id: RuleId,
    pub direction: Direction,
    pub action: Action,
    /// 1 (lowest) to 100.
    pub priority: u8,
    pub peer: Peer,
    pub protocol: Protocol,
    /// Destination port; 0 = any (tcp/udp only).
    pub port: u16,
}

impl RuleSpec {
    /// Parses a wire rule (after Contiv's schema checks, which fill the default priority),
    /// refusing what cannot be enforced as written.
    pub fn from_model(r: &contiv_model::Rule) -> Result<RuleSpec, RuleError> {
        let direction = match r.direction.as_str() {
            "in" => Direction::In,
            "out" => Direction::Out,
            d => {
                return Err(RuleError::new(format!(
                    "invalid direction {d:?} (in or out)"
                )))
            }
        };
        let action = match r.action.as_str() {
            "allow" => Action::Allow,
            "deny" => Action::Deny,
            a => {
                return Err(RuleError::new(format!(
                    "invalid action {a:?} (allow or deny)"
                )))
            }
        };
        if !(1..=100).contains(&r.priority) {
            return Err(RuleError::new(format!(
                "priority {} is outside 1-100",
                r.priority
            )));
        }
        let (mine, theirs) = match direction {
            Direction::In => (
                [&r.from_endpoint_group, &r.from_network, &r.from_ip_address],
                [&r.to_endpoint_group, &r.to_network, &r.to_ip_address],
            ),
            Direction::Out => (
                [&r.to_endpoint_group, &r.to_network, &r.to_ip_address],
                [&r.from_endpoint_group, &r.from_network, &r.from_ip_address],
            ),
        };
        if theirs.iter().any(|f| !f.is_empty()) {
            let (side, dir) = match direction {
                Direction::In => ("to", "an incoming"),
                Direction::Out => ("from", "an outgoing"),
            };
            return Err(RuleError::new(format!(
                "can not specify '{side}' parameters in {dir} rule"
            )));
        }
        let [group, network, ip] = mine;
        let peer = match (group.is_empty(), network.is_empty(), ip.is_empty()) {
            (true, true, true) => Peer::Any,
            (false, true, true) => Peer::Group(group.clone()),
            (true, false, true) => Peer::Network(network.clone()),
            (true, true, false) => Peer::Addrs(ip.parse()?),
            _ => {
                return Err(RuleError::new(
                    "a rule matches one of endpoint group, network or ip address",
                ))
            }
        };
        let protocol: Protocol = r.protocol.parse()?;
        let port = u16::try_from(r.port)
            .map_err(|_| RuleError::new(format!("port {} is outside 0-65535", r.port)))?;
        if port != 0 && !protocol.has_ports() {
            return Err(RuleError::new(format!(
                "port {port} needs protocol tcp or udp (protocol is {protocol})"
            )));
        }
        Ok(RuleSpec {
            id: RuleId {
                tenant: r.tenant_name.clone(),
                policy: r.policy_name.clone(),
                rule: r.rule_id.clone(),
            },
            direction,
            action,
            priority: r.priority as u8,
            peer,
            protocol,
            port,
        })
    }
}

/// A network as policy sees it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct NetworkRef {
    pub tenant: String,
    pub name: String,
    pub subnet: Ipv4Net,
}

/// An endpoint group as policy sees it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct GroupRef {
    pub tenant: String,
    pub name: String,
    /// Names of the policies attached (`policies` of the group), in the tenant.
    pub policies: Vec<String>,
}

/// An endpoint as policy sees it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Member {
    /// Endpoint id (unique in the cluster).
    pub id: String,
    pub tenant: String,
    /// Group name, empty when the endpoint has none.
    pub group: String,
    pub ip: Ipv4Addr,
    /// The host it lives on.
    pub host: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(dir: &str, f: impl FnOnce(&mut contiv_model::Rule)) -> contiv_model::Rule {
        let mut r = contiv_model::Rule {
            tenant_name: "t".into(),
            policy_name: "p".into(),
            rule_id: "1".into(),
            direction: dir.into(),
            action: "deny".into(),
            priority: 1,
            ..Default::default()
        };
        f(&mut r);
        r
    }

    fn err(r: contiv_model::Rule) -> String {
        RuleSpec::from_model(&r).expect_err("must be refused").0
    }

    #[test]
    fn parses_every_peer_and_protocol_form() {
        let r = RuleSpec::from_model(&rule("in", |r| {
            r.from_endpoint_group = "web".into();
            r.protocol = "TCP".into();
            r.port = 80;
        }))
        .expect("valid");
        assert_eq!(r.peer, Peer::Group("web".into()));
        assert_eq!((r.protocol, r.port), (Protocol::Tcp, 80));
        assert_eq!(r.id.to_string(), "t:p:1");
        let r = RuleSpec::from_model(&rule("out", |r| r.to_ip_address = "10.1.1.7/24".into()))
            .expect("valid");
        assert_eq!(r.peer, Peer::Addrs("10.1.1.0/24".parse().expect("cidr")));
        let r = RuleSpec::from_model(&rule("out", |r| r.protocol = "17".into())).expect("valid");
        assert_eq!(r.protocol, Protocol::Udp);
        let r = RuleSpec::from_model(&rule("out", |r| r.protocol = "47".into())).expect("valid");
        assert_eq!(r.protocol, Protocol::Number(47));
        let a: AddrMatch = "10.1.1.5-20".parse().expect("range");
        assert!(a.contains(Ipv4Addr::new(10, 1, 1, 20)));
        assert!(!a.contains(Ipv4Addr::new(10, 1, 1, 21)));
        assert_eq!(a.to_string(), "10.1.1.5-10.1.1.20");
        let one: AddrMatch = "10.1.1.5-5".parse().expect("one-address range");
        assert_eq!(
            one.to_string(),
            "10.1.1.5",
            "rendered as an address, not a range"
        );
        assert_eq!(
            "10.1.1.9".parse::<AddrMatch>().expect("host").to_string(),
            "10.1.1.9"
        );
    }

    #[test]
    fn refuses_rules_that_cannot_be_enforced_as_written() {
        let cases = [
            (
                rule("in", |r| r.to_endpoint_group = "db".into()),
                "can not specify 'to' parameters in an incoming rule",
            ),
            (
                rule("out", |r| r.from_network = "n".into()),
                "can not specify 'from' parameters in an outgoing rule",
            ),
            (
                rule("in", |r| r.from_ip_address = "10.1.1.0/33".into()),
                "invalid ip address \"10.1.1.0/33\": prefix length must be 1-32",
            ),
            (
                rule("in", |r| r.from_ip_address = "10.1.1.300".into()),
                "invalid ip address \"10.1.1.300\": not an IPv4 address",
            ),
            (
                rule("in", |r| r.from_ip_address = "10.1.1.9-3".into()),
                "invalid ip address \"10.1.1.9-3\": range end below its start",
            ),
            (
                rule("in", |r| r.priority = 0),
                "priority 0 is outside 1-100",
            ),
            (
                rule("in", |r| r.priority = 101),
                "priority 101 is outside 1-100",
            ),
            (
                rule("in", |r| r.protocol = "sctp".into()),
                "unknown protocol \"sctp\" (tcp, udp, icmp or a protocol number)",
            ),
            (
                rule("in", |r| r.protocol = "300".into()),
                "protocol number 300 is outside 0-255",
            ),
            (
                rule("in", |r| {
                    r.protocol = "icmp".into();
                    r.port = 80
                }),
                "port 80 needs protocol tcp or udp (protocol is icmp)",
            ),
            (
                rule("in", |r| r.port = 80),
                "port 80 needs protocol tcp or udp (protocol is any)",
            ),
            (
                rule("in", |r| {
                    r.protocol = "tcp".into();
                    r.port = 70000
                }),
                "port 70000 is outside 0-65535",
            ),
            (
                rule("in", |r| {
                    r.from_endpoint_group = "a".into();
                    r.from_ip_address = "10.0.0.1".into()
                }),
                "a rule matches one of endpoint group, network or ip address",
            ),
            (
                rule("sideways", |_| {}),
                "invalid direction \"sideways\" (in or out)",
            ),
        ];
        for (r, want) in cases {
            assert_eq!(err(r), want);
        }
    }
}
