//! Ports and their (single) interfaces: add or update one of ours, remove one, read ofports.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Duration;

use serde_json::{json, Value};

use super::bridge::insert;
use super::{check_name, guarded, row_uuid, still_as_read, Vswitch, DB};
use crate::ops::{self, cond, mutation, Op, Row};
use crate::Error;

/// VXLAN key: `Flow` lets the OpenFlow pipeline set the VNI per packet (`tun_id`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TunnelKey {
    Flow,
    Fixed(u32),
}

/// What kind of interface a port has.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PortKind {
    /// A port whose netdev vswitchd makes (a tap on the netdev datapath).
    Internal,
    /// An existing Linux netdev (a veth end of a workload).
    System,
    /// One end of a patch pair to another bridge; `peer` names the other end.
    Patch { peer: String },
    Vxlan {
        remote_ip: IpAddr,
        local_ip: Option<IpAddr>,
        key: TunnelKey,
    },
}

impl PortKind {
    fn type_and_options(&self) -> (&'static str, BTreeMap<String, String>) {
        let mut o = BTreeMap::new();
        let t = match self {
            PortKind::Internal => "internal",
            PortKind::System => "",
            PortKind::Patch { peer } => {
                o.insert("peer".into(), peer.clone());
                "patch"
            }
            PortKind::Vxlan {
                remote_ip,
                local_ip,
                key,
            } => {
                o.insert("remote_ip".into(), remote_ip.to_string());
                if let Some(l) = local_ip {
                    o.insert("local_ip".into(), l.to_string());
                }
                let key = match key {
                    TunnelKey::Flow => "flow".to_string(),
                    TunnelKey::Fixed(k) => k.to_string(),
                };
                o.insert("key".into(), key);
                "vxlan"
            }
        };
        (t, o)
    }
}

/// A port (with one interface of the same name) the agent wants on `bridge`.
#[derive(Debug, Clone, PartialEq)]
pub struct PortSpec {
    pub bridge: String,
    pub name: String,
    pub kind: PortKind,
    /// The OpenFlow port number to ask for (1-65279); vswitchd picks one if absent.
    pub ofport_request: Option<u16>,
    /// Written on both the port and its interface, beside the owner mark.
    pub external_ids: BTreeMap<String, String>,
    /// The port's access VLAN (`tag`, 1-4094): what an operator sees in `ovs-vsctl show`; it
    /// only steers OVS's NORMAL action, which Contiv's pipeline never uses.
    pub tag: Option<u16>,
}

impl PortSpec {
    pub fn new(bridge: &str, name: &str, kind: PortKind) -> PortSpec {
        PortSpec {
            bridge: bridge.into(),
            name: name.into(),
            kind,
            ofport_request: None,
            external_ids: BTreeMap::new(),
            tag: None,
        }
    }

    fn validate(&self) -> Result<(), Error> {
        check_name("bridge", &self.bridge)?;
        check_name("port", &self.name)?;
        if let PortKind::Patch { peer } = &self.kind {
            check_name("patch peer", peer)?;
        }
        if let PortKind::Vxlan {
            key: TunnelKey::Fixed(k),
            ..
        } = self.kind
        {
            if k >= 1 << 24 {
                return Err(Error::Invalid {
                    what: format!("port {}", self.name),
                    why: format!("VXLAN key {k} is not a 24-bit VNI"),
                });
            }
        }
        if let Some(t) = self.tag {
            if !(1..=4094).contains(&t) {
                return Err(Error::Invalid {
                    what: format!("port {}", self.name),
                    why: format!("VLAN tag {t} outside 1-4094"),
                });
            }
        }
        match self.ofport_request {
            Some(p) if !(1..=65279).contains(&p) => Err(Error::Invalid {
                what: format!("port {}", self.name),
                why: format!("ofport_request {p} outside 1-65279"),
            }),
            _ => Ok(()),
        }
    }
}

/// A port as read back.
#[derive(Debug, Clone, PartialEq)]
pub struct PortInfo {
    pub name: String,
    /// `None` until vswitchd has attached the interface.
    pub ofport: Option<u32>,
    pub external_ids: BTreeMap<String, String>,
    pub ours: bool,
}

impl Vswitch {
    /// Adds port `spec.name` to our bridge `spec.bridge`, or brings one of ours up to `spec`
    /// (its interface's type, options, ofport request and external ids). Returns whether it was
    /// created. Refused, changing nothing: a bridge or port that is not ours, a port on another bridge.
    pub async fn ensure_port(&self, spec: &PortSpec) -> Result<bool, Error> {
        spec.validate()?;
        let bridge = self
            .bridge_row(&spec.bridge)
            .await?
            .ok_or_else(|| Error::NoSuchBridge(spec.bridge.clone()))?;
        self.check_ours("bridge", &spec.bridge, &bridge)?;
        let br_uuid = row_uuid(&bridge)?;
        let (kind, options) = spec.kind.type_and_options();
        let opts = ops::string_map(options.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        let req = ops::set(spec.ofport_request.map(|p| json!(p)).into_iter().collect());
        let ids = self.owned_ids(&spec.external_ids);
        let tag = ops::set(spec.tag.map(|t| json!(t)).into_iter().collect());
        let iface_cols = |ids: Value| {
            [
                ("name", json!(spec.name)),
                ("type", json!(kind)),
                ("options", opts.clone()),
                ("ofport_request", req.clone()),
                ("external_ids", ids),
            ]
        };
        let Some(port) = self.port_row(&spec.name).await? else {
            let ops = [
                still_as_read("Bridge", &br_uuid, &bridge),
                insert("Interface", "iface", iface_cols(ids.clone())),
                insert(
                    "Port",
                    "port",
                    [
                        ("name", json!(spec.name)),
                        ("interfaces", ops::named("iface")),
                        ("external_ids", ids),
                        ("tag", tag),
                    ],
                ),
                Op::Mutate {
                    table: "Bridge".into(),
                    conditions: vec![cond("_uuid", "==", ops::uuid(&br_uuid))],
                    mutations: vec![mutation(
                        "ports",
                        "insert",
                        ops::set(vec![ops::named("port")]),
                    )],
                },
            ];
            guarded(self.client.transact(DB, &ops).await, "bridge", &spec.bridge)?;
            return Ok(true);
        };
        self.check_ours("port", &spec.name, &port)?;
        let port_uuid = row_uuid(&port)?;
        self.check_on_bridge(&spec.name, &port_uuid, &spec.bridge)
            .await?;
        // Ports made by Contiv have exactly one interface.
        let iface = port
            .get("interfaces")
            .map(ops::as_set)
            .unwrap_or_default()
            .first()
            .and_then(|u| ops::as_uuid(u))
            .map(str::to_string)
            .ok_or_else(|| Error::Protocol(format!("port {} has no interface", spec.name)))?;
        let ops = [
            still_as_read("Port", &port_uuid, &port),
            Op::Update {
                table: "Port".into(),
                conditions: vec![cond("_uuid", "==", ops::uuid(&port_uuid))],
                row: [
                    ("external_ids".to_string(), ids.clone()),
                    ("tag".to_string(), tag),
                ]
                .into_iter()
                .collect(),
            },
            Op::Update {
                table: "Interface".into(),
                conditions: vec![cond("_uuid", "==", ops::uuid(&iface))],
                row: iface_cols(ids)
                    .into_iter()
                    .skip(1)
                    .map(|(k, v)| (k.to_string(), v))
                    .collect(),
            },
        ];
        guarded(self.client.transact(DB, &ops).await, "port", &spec.name)?;
        Ok(false)
    }

    /// Removes our port `name` from `bridge` (its interface goes with it). `Ok(false)` if absent.
    pub async fn remove_port(&self, bridge: &str, name: &str) -> Result<bool, Error> {
        check_name("bridge", bridge)?;
        check_name("port", name)?;
        let Some(port) = self.port_row(name).await? else {
            return Ok(false);
        };
        self.check_ours("port", name, &port)?;
        let uuid = row_uuid(&port)?;
        let br = self.check_on_bridge(name, &uuid, bridge).await?;
        let ops = [
            still_as_read("Port", &uuid, &port),
            Op::Mutate {
                table: "Bridge".into(),
                conditions: vec![cond("_uuid", "==", ops::uuid(&br))],
                mutations: vec![mutation(
                    "ports",
                    "delete",
                    ops::set(vec![ops::uuid(&uuid)]),
                )],
            },
        ];
        guarded(self.client.transact(DB, &ops).await, "port", name)?;
        Ok(true)
    }

    /// Interface `name`'s OpenFlow port number: `None` while vswitchd has not attached it, an
    /// [`Error::Interface`] with vswitchd's reason if it could not (`ofport` -1).
    pub async fn ofport(&self, name: &str) -> Result<Option<u32>, Error> {
        let sel = Op::select(
            "Interface",
            vec![cond("name", "==", json!(name))],
            &["ofport", "error"],
        );
        let r = self.client.transact(DB, &[sel]).await?;
        let Some(row) = ops::rows(&r[0]).into_iter().next() else {
            return Err(Error::Invalid {
                what: format!("interface {name}"),
                why: "no such interface".into(),
            });
        };
        match row.get("ofport").and_then(ops::as_opt_i64) {
            Some(-1) => Err(Error::Interface {
                name: name.into(),
                error: row
                    .get("error")
                    .and_then(|e| {
                        ops::as_set(e)
                            .first()
                            .and_then(|s| s.as_str())
                            .map(str::to_string)
                    })
                    .unwrap_or_else(|| "unknown error".into()),
            }),
            Some(n) => Ok(u32::try_from(n).ok().filter(|n| *n > 0)),
            None => Ok(None),
        }
    }

    /// Waits (polling every 20 ms) until vswitchd has given interface `name` its ofport.
    pub async fn wait_ofport(&self, name: &str, timeout: Duration) -> Result<u32, Error> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(p) = self.ofport(name).await? {
                return Ok(p);
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(Error::Timeout(
                    timeout,
                    format!("an ofport for interface {name}"),
                ));
            }
            // Block in ovsdb-server until vswitchd writes the interface's ofport (RFC 7047
            // "wait" until the column differs from empty), at most 200 ms per round, instead of
            // sleeping a fixed period: a CNI ADD waits for this, and a 20 ms poll made it wait
            // ~20 ms for an ofport vswitchd assigns in ~1 ms. A timed-out wait is an error
            // result; either way the ofport is read again above.
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let mut unset = Row::new();
            unset.insert("ofport".into(), json!(["set", []]));
            let wait = Op::Wait {
                table: "Interface".into(),
                conditions: vec![cond("name", "==", json!(name))],
                columns: vec!["ofport".into()],
                equal: false,
                rows: vec![unset],
                timeout_ms: Some(left.min(Duration::from_millis(200)).as_millis() as u64),
            };
            let asked = tokio::time::Instant::now();
            if self.client.transact(DB, &[wait]).await.is_err()
                && asked.elapsed() < Duration::from_millis(10)
            {
                // Refused at once, not timed out: keep a polling pace rather than spin.
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }

    /// Every port of `bridge` with its ofport and external ids (what a reconcile compares).
    pub async fn ports(&self, bridge: &str) -> Result<Vec<PortInfo>, Error> {
        let br = self
            .bridge_row(bridge)
            .await?
            .ok_or_else(|| Error::NoSuchBridge(bridge.into()))?;
        let ports = br.get("ports").cloned().unwrap_or(json!(["set", []]));
        let r = self
            .client
            .transact(
                DB,
                &[
                    // Every port, filtered here: a `_uuid` condition takes one uuid, not a set.
                    Op::select(
                        "Port",
                        vec![],
                        &["_uuid", "name", "interfaces", "external_ids"],
                    ),
                    Op::select("Interface", vec![], &["_uuid", "ofport"]),
                ],
            )
            .await?;
        let ports: Vec<Row> = ops::rows(&r[0])
            .into_iter()
            .filter(|p| ops::as_set(&ports).contains(&p.get("_uuid").unwrap_or(&Value::Null)))
            .collect();
        let ofports: BTreeMap<String, i64> = ops::rows(&r[1])
            .iter()
            .filter_map(|i| {
                Some((
                    ops::as_uuid(i.get("_uuid")?)?.to_string(),
                    i.get("ofport").and_then(ops::as_opt_i64)?,
                ))
            })
            .collect();
        let mut out: Vec<PortInfo> = ports
            .iter()
            .map(|p| {
                let ids = p
                    .get("external_ids")
                    .map(ops::as_string_map)
                    .unwrap_or_default();
                let ofport = p
                    .get("interfaces")
                    .map(ops::as_set)
                    .unwrap_or_default()
                    .first()
                    .and_then(|u| ops::as_uuid(u))
                    .and_then(|u| ofports.get(u))
                    .and_then(|n| u32::try_from(*n).ok())
                    .filter(|n| *n > 0);
                PortInfo {
                    name: p
                        .get("name")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_string(),
                    ofport,
                    ours: ids.get(super::OWNER_KEY) == Some(&self.owner),
                    external_ids: ids,
                }
            })
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    async fn port_row(&self, name: &str) -> Result<Option<Row>, Error> {
        let sel = Op::select(
            "Port",
            vec![cond("name", "==", json!(name))],
            &["_uuid", "external_ids", "interfaces"],
        );
        let r = self.client.transact(DB, &[sel]).await?;
        Ok(ops::rows(&r[0]).into_iter().next())
    }

    /// The uuid of `bridge` if port `uuid` is on it, else [`Error::WrongBridge`].
    async fn check_on_bridge(&self, port: &str, uuid: &str, bridge: &str) -> Result<String, Error> {
        let sel = Op::select(
            "Bridge",
            vec![cond("ports", "includes", ops::set(vec![ops::uuid(uuid)]))],
            &["_uuid", "name"],
        );
        let r = self.client.transact(DB, &[sel]).await?;
        let rows = ops::rows(&r[0]);
        let on = rows.first();
        let name = on
            .and_then(|r| r.get("name"))
            .and_then(Value::as_str)
            .unwrap_or("<none>");
        match on {
            Some(r) if name == bridge => row_uuid(r),
            _ => Err(Error::WrongBridge {
                port: port.into(),
                bridge: bridge.into(),
                on: name.into(),
            }),
        }
    }
}
