//! One host's Open vSwitch as the driver programs it: the bridge (ours, through OVSDB, marked
//! with our `external_ids`), its ports, and its flows over one OpenFlow connection. Every change
//! of flows is rendered → diffed against what the switch holds → sent as one bundle, so it is
//! atomic. On start the agent takes a new round: every flow goes in under the new round's cookie
//! (one bundle), and only when that bundle is committed are the previous rounds' leftovers
//! deleted by cookie mask (Antrea's recipe: traffic never meets a half-programmed table).

use std::time::Duration;

use std::collections::{BTreeMap, BTreeSet};

use contiv_openflow::{
    ConnOptions, FlowMod, FlowModCommand, FlowStats, FlowStatsRequest, GroupMod, GroupModCommand,
    GroupType, Message, MultipartReply, MultipartRequest, Switch,
};
use contiv_ovsdb::vswitch::{BridgeSpec, PortSpec, Vswitch};
use contiv_ovsdb::{Client, ClientOptions};

use crate::diff::{diff, installed_from_stats, key, Key};
use crate::pipeline::COOKIE_ROUND_MASK;
use crate::render::Rendered;

/// Where the host's OVS is and what the agent calls its bridge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SwitchConfig {
    /// ovsdb-server's endpoint (`unix:/var/run/openvswitch/db.sock`, `tcp:127.0.0.1:6640`).
    pub ovsdb: String,
    /// The integration bridge (created if absent; refused if it is not ours).
    pub bridge: String,
    /// The loopback port of the bridge's passive OpenFlow target (`ptcp:PORT:127.0.0.1`).
    pub openflow_port: u16,
    /// The `external_ids:contiv-owner` value marking what the agent owns.
    pub owner: String,
}

/// Why the switch could not be programmed; the message says what to do.
#[derive(Debug, thiserror::Error)]
pub enum SwitchError {
    #[error("ovs: {0}")]
    Ovsdb(#[from] contiv_ovsdb::Error),
    #[error("ovs-vswitchd's OpenFlow target 127.0.0.1:{port} for bridge {bridge}: {source} (is ovs-vswitchd running?)")]
    OpenFlow {
        bridge: String,
        port: u16,
        source: contiv_openflow::ConnError,
    },
    #[error("ovs-vswitchd did not take a flow change: {0}{hint}", hint = lost_hint(.0))]
    Flows(contiv_openflow::ConnError),
    /// The switch's view could not be kept (a flow-mod the model cannot follow).
    #[error("flows sent, but {0}")]
    Model(crate::diff::UnmodeledCommand),
}

/// For a connection that is gone (rather than a change the switch rejected), where to look.
fn lost_hint(e: &contiv_openflow::ConnError) -> &'static str {
    use contiv_openflow::ConnError::*;
    match e {
        Io { .. } | Closed | Timeout(_) => " (is ovs-vswitchd running?)",
        _ => "",
    }
}

/// The programmed switch.
pub struct OvsSwitch {
    cfg: SwitchConfig,
    vsw: Vswitch,
    sw: Switch,
    /// This run's round (in every cookie it installs).
    round: u16,
    /// What the switch holds (read on start, then kept as each bundle commits).
    installed: Vec<FlowMod>,
    /// The groups this run installed (group id → group-mod as sent, command `Add`).
    groups: BTreeMap<u32, GroupMod>,
    /// Group ids the switch held when this run found it (start, reconnect) that it has not
    /// installed since: an earlier run's, deleted once the earlier round's flows are (prune).
    found_groups: BTreeSet<u32>,
    next_bundle: u32,
    /// Whether this start made the bridge (a start that fails later takes it away again).
    created: bool,
}

impl OvsSwitch {
    /// Connects to ovsdb-server, makes sure the bridge exists and is ours, connects to its
    /// OpenFlow target and picks the round after every round the switch holds. Changes nothing
    /// when ovsdb-server is not running or the bridge is someone else's.
    pub async fn start(cfg: SwitchConfig) -> Result<OvsSwitch, SwitchError> {
        let client = Client::connect(&cfg.ovsdb, ClientOptions::default()).await?;
        let vsw = Vswitch::new(client, cfg.owner.clone());
        let target = format!("ptcp:{}:127.0.0.1", cfg.openflow_port);
        let created = vsw
            .ensure_bridge(&BridgeSpec::netdev(&cfg.bridge).controller(&target))
            .await?;
        let sw = match Self::connect(&cfg).await {
            Ok(sw) => sw,
            Err(e) => {
                // Nothing changed on failure: a bridge made just now goes again.
                if created {
                    let _ = vsw.delete_bridge(&cfg.bridge).await;
                }
                return Err(e);
            }
        };
        let mut s = OvsSwitch {
            cfg,
            vsw,
            sw,
            round: 0,
            installed: vec![],
            groups: BTreeMap::new(),
            found_groups: BTreeSet::new(),
            next_bundle: 1,
            created,
        };
        s.installed = s.read_flows().await?;
        s.found_groups = s.read_group_ids().await?;
        let last = s
            .installed
            .iter()
            .map(|f| (f.cookie >> 48) as u16)
            .max()
            .unwrap_or(0);
        // Round 0 is never used, so a switch holding nothing of ours starts at 1.
        s.round = last.checked_add(1).unwrap_or(1);
        Ok(s)
    }

    /// vswitchd opens the bridge's OpenFlow target a moment after the bridge appears: retry
    /// for a few seconds before calling it not running. The bridge's `ptcp:` target first, then
    /// its management socket beside ovsdb-server's ([`mgmt_socket`]): a vswitchd started with
    /// `other_config:flow-restore-wait=true` opens only the latter until the flag is cleared.
    async fn connect(cfg: &SwitchConfig) -> Result<Switch, SwitchError> {
        let mut last = None;
        for _ in 0..50 {
            match Self::connect_once(cfg).await {
                Ok(sw) => return Ok(sw),
                Err(e) => last = Some(e),
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Err(SwitchError::OpenFlow {
            bridge: cfg.bridge.clone(),
            port: cfg.openflow_port,
            source: last.unwrap_or(contiv_openflow::ConnError::Closed),
        })
    }

    /// Undoes [`OvsSwitch::start`] for a caller whose own start-up failed after it: the bridge
    /// goes if this start made it (nothing changed, as if never started).
    pub async fn abandon(self) {
        if self.created {
            let _ = self.vsw.delete_bridge(&self.cfg.bridge).await;
        }
    }

    /// One attempt: the `ptcp:` target, then the management socket if it exists.
    async fn connect_once(cfg: &SwitchConfig) -> Result<Switch, contiv_openflow::ConnError> {
        let addr = format!("127.0.0.1:{}", cfg.openflow_port);
        let opts = ConnOptions::default();
        // Unsolicited messages (packet-ins) are not used: nothing is punted but DNS.
        let tcp = match contiv_openflow::connect(&addr, &opts).await {
            Ok((sw, _events)) => return Ok(sw),
            Err(e) => e,
        };
        match mgmt_socket(cfg).filter(|p| p.exists()) {
            Some(path) => contiv_openflow::connect_unix(&path, &opts)
                .await
                .map(|(sw, _events)| sw),
            None => Err(tcp),
        }
    }

    /// Whether the OpenFlow connection is known dead (ovs-vswitchd exited or restarted).
    pub fn is_disconnected(&self) -> bool {
        self.sw.is_closed()
    }

    /// Connects again (after ovs-vswitchd restarted; one attempt, the caller retries) and reads
    /// what the switch holds now (a restarted vswitchd holds nothing): the next
    /// [`OvsSwitch::apply`] sends every flow again, as one bundle, under this run's round.
    pub async fn reconnect(&mut self) -> Result<(), SwitchError> {
        self.sw = Self::connect_once(&self.cfg)
            .await
            .map_err(|source| SwitchError::OpenFlow {
                bridge: self.cfg.bridge.clone(),
                port: self.cfg.openflow_port,
                source,
            })?;
        self.installed = self.read_flows().await?;
        // A restarted vswitchd holds no group: every one is sent again with the next apply.
        let found = self.read_group_ids().await?;
        self.groups.retain(|id, _| found.contains(id));
        self.found_groups = found
            .into_iter()
            .filter(|id| !self.groups.contains_key(id))
            .collect();
        Ok(())
    }

    /// Clears `other_config:flow-restore-wait` if set (a start script sets it before starting
    /// ovs-vswitchd so it forwards nothing until the agent's flows are in). Returns whether it
    /// was set.
    pub async fn clear_flow_restore_wait(&self) -> Result<bool, SwitchError> {
        Ok(self.vsw.clear_flow_restore_wait().await?)
    }

    /// Whether the switch holds flows of `category` from an earlier round (a previous run's).
    pub fn holds_old(&self, category: crate::pipeline::Category) -> bool {
        let (mine, cat) = (u64::from(self.round) << 48, (category as u64) << 40);
        self.installed.iter().any(|f| {
            f.cookie & COOKIE_ROUND_MASK != mine
                && f.cookie & crate::pipeline::COOKIE_CATEGORY_MASK == cat
        })
    }

    /// The round this run installs under.
    pub fn round(&self) -> u16 {
        self.round
    }

    /// The directory of ovsdb-server's unix socket, where OVS keeps its pidfiles and control
    /// sockets too (`None` over TCP).
    pub fn rundir(&self) -> Option<std::path::PathBuf> {
        let sock = std::path::Path::new(self.cfg.ovsdb.strip_prefix("unix:")?);
        Some(sock.parent()?.to_path_buf())
    }

    pub fn bridge(&self) -> &str {
        &self.cfg.bridge
    }

    pub fn vswitch(&self) -> &Vswitch {
        &self.vsw
    }

    /// Adds or converges a port on the bridge; returns its ofport once vswitchd has one.
    pub async fn ensure_port(&self, spec: &PortSpec) -> Result<u32, SwitchError> {
        self.vsw.ensure_port(spec).await?;
        Ok(self
            .vsw
            .wait_ofport(&spec.name, Duration::from_secs(10))
            .await?)
    }

    /// Removes one of our ports (absent is fine).
    pub async fn remove_port(&self, name: &str) -> Result<(), SwitchError> {
        self.vsw.remove_port(&self.cfg.bridge, name).await?;
        Ok(())
    }

    /// Makes the switch hold exactly `r` (rendered for [`OvsSwitch::round`]): the difference as
    /// one bundle, then, the first time, the older rounds' leftovers deleted by cookie, only now
    /// that the new round is committed. With `prune` false nothing is deleted (a restarted agent
    /// that has not declared everything yet keeps the old round's flows carrying traffic; flows
    /// of this run's round are deleted as usual).
    /// Returns how many flow-mods were sent.
    pub async fn apply(&mut self, r: &Rendered, prune: bool) -> Result<usize, SwitchError> {
        self.apply_holding(r, prune, false).await
    }

    /// [`OvsSwitch::apply`], and with `hold` (only without `prune`) the older rounds' flows are
    /// not replaced either: only flows of keys no older round holds go in. A restarted agent
    /// whose policy is not declared yet keeps the old round judging traffic whole (its source
    /// groups in VLAN, its policy tables) instead of replacing part of it by flows rendered
    /// without policy.
    pub async fn apply_holding(
        &mut self,
        r: &Rendered,
        prune: bool,
        hold: bool,
    ) -> Result<usize, SwitchError> {
        let mut mods = diff(&self.installed, &r.flows);
        if !prune {
            // Only the old rounds' flows are held back; this run's own may go.
            let mine = u64::from(self.round) << 48;
            let old: std::collections::BTreeSet<Key> = self
                .installed
                .iter()
                .filter(|f| f.cookie & COOKIE_ROUND_MASK != mine)
                .map(|f| key(f.table_id, f.priority, &f.r#match))
                .collect();
            mods.retain(|m| {
                (m.command == FlowModCommand::Add && !hold)
                    || !old.contains(&key(m.table_id, m.priority, &m.r#match))
            });
        }
        // Groups: added or replaced (OVS's add-or-modify: a group an earlier run left is
        // converged in place) before the flows that name them, deleted after the flows that
        // named them are gone (OVS deletes the flows naming a deleted group). One bundle.
        let want: BTreeMap<u32, &GroupMod> = r.groups.iter().map(|g| (g.group_id, g)).collect();
        let mut upserts = vec![];
        for (id, g) in &want {
            if self.groups.get(id) != Some(*g) {
                let mut m = (*g).clone();
                m.command = GroupModCommand::AddOrModify;
                upserts.push(m);
            }
        }
        let mut gone: Vec<u32> = self
            .groups
            .keys()
            .filter(|id| !want.contains_key(id))
            .copied()
            .collect();
        if prune {
            gone.extend(self.found_groups.iter().filter(|id| !want.contains_key(id)));
        }
        let deletes: Vec<GroupMod> = gone
            .iter()
            .map(|&group_id| GroupMod {
                command: GroupModCommand::Delete,
                group_type: GroupType::All,
                group_id,
                buckets: vec![],
            })
            .collect();
        let stale = prune
            && self
                .installed
                .iter()
                .any(|f| f.cookie & COOKIE_ROUND_MASK != u64::from(self.round) << 48);
        let sent = mods.len() + upserts.len() + deletes.len();
        if sent > 0 {
            let msgs: Vec<Message> = upserts
                .iter()
                .cloned()
                .map(Message::GroupMod)
                .chain(mods.iter().cloned().map(Message::FlowMod))
                .chain(deletes.iter().cloned().map(Message::GroupMod))
                .collect();
            let id = self.bundle_id();
            self.sw
                .bundle(id, &msgs)
                .await
                .map_err(SwitchError::Flows)?;
        }
        for g in upserts {
            self.found_groups.remove(&g.group_id);
            self.groups.insert(g.group_id, want[&g.group_id].clone());
        }
        for id in &gone {
            self.groups.remove(id);
            self.found_groups.remove(id);
        }
        self.installed = if prune {
            r.flows.clone()
        } else {
            crate::diff::apply(&self.installed, &mods).map_err(SwitchError::Model)?
        };
        if stale {
            // The diff above already replaced or deleted every old flow it knew of; this catches
            // any flow of an old round added behind our back.
            let mut del = vec![];
            for round in self.old_rounds().await? {
                del.push(Message::FlowMod(FlowMod::delete_by_cookie(
                    u64::from(round) << 48,
                    COOKIE_ROUND_MASK,
                )));
            }
            if !del.is_empty() {
                let id = self.bundle_id();
                self.sw.bundle(id, &del).await.map_err(SwitchError::Flows)?;
            }
        }
        Ok(sent)
    }

    /// The ids of every group the switch holds (group description stats).
    pub async fn read_group_ids(&self) -> Result<BTreeSet<u32>, SwitchError> {
        let replies = self
            .sw
            .multipart(MultipartRequest::Other {
                typ: OFPMP_GROUP_DESC,
                flags: 0,
                body: vec![],
            })
            .await
            .map_err(SwitchError::Flows)?;
        let mut ids = BTreeSet::new();
        for r in replies {
            if let MultipartReply::Other { typ, body, .. } = r {
                if typ == OFPMP_GROUP_DESC {
                    ids.extend(group_desc_ids(&body));
                }
            }
        }
        Ok(ids)
    }

    async fn old_rounds(&self) -> Result<Vec<u16>, SwitchError> {
        let mut rounds: Vec<u16> = self
            .read_flows()
            .await?
            .iter()
            .map(|f| (f.cookie >> 48) as u16)
            .filter(|r| *r != self.round)
            .collect();
        rounds.sort_unstable();
        rounds.dedup();
        Ok(rounds)
    }

    fn bundle_id(&mut self) -> u32 {
        self.next_bundle = self.next_bundle.wrapping_add(1).max(1);
        self.next_bundle
    }

    /// Every flow the switch holds now.
    pub async fn read_flows(&self) -> Result<Vec<FlowMod>, SwitchError> {
        Ok(installed_from_stats(&self.flow_stats().await?))
    }

    /// Every flow the switch holds now, with its counters.
    pub async fn flow_stats(&self) -> Result<Vec<FlowStats>, SwitchError> {
        let replies = self
            .sw
            .multipart(MultipartRequest::Flow(FlowStatsRequest::all()))
            .await
            .map_err(SwitchError::Flows)?;
        let stats: Vec<_> = replies
            .into_iter()
            .flat_map(|r| match r {
                MultipartReply::Flow { stats, .. } => stats,
                _ => vec![],
            })
            .collect();
        Ok(stats)
    }
}

/// OFPMP_GROUP_DESC.
const OFPMP_GROUP_DESC: u16 = 7;

/// The group ids of a group description reply's body (`ofp_group_desc`s: length, type, pad,
/// group id, buckets); a truncated entry ends the list.
fn group_desc_ids(body: &[u8]) -> Vec<u32> {
    let mut ids = vec![];
    let mut rest = body;
    while rest.len() >= 8 {
        let len = usize::from(u16::from_be_bytes([rest[0], rest[1]]));
        ids.push(u32::from_be_bytes([rest[4], rest[5], rest[6], rest[7]]));
        if len < 8 || len > rest.len() {
            break;
        }
        rest = &rest[len..];
    }
    ids
}

/// ovs-vswitchd's management socket for the bridge, `<rundir>/<bridge>.mgmt`, where the rundir
/// is the directory of ovsdb-server's unix socket (OVS puts both there); `None` over TCP.
pub fn mgmt_socket(cfg: &SwitchConfig) -> Option<std::path::PathBuf> {
    let sock = std::path::Path::new(cfg.ovsdb.strip_prefix("unix:")?);
    Some(sock.parent()?.join(format!("{}.mgmt", cfg.bridge)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_ids_are_read_from_group_descriptions() {
        let mut body = vec![];
        for (id, len) in [(7u32, 8u16), (0x0123_4567, 24)] {
            body.extend_from_slice(&len.to_be_bytes());
            body.extend_from_slice(&[1, 0]);
            body.extend_from_slice(&id.to_be_bytes());
            body.resize(body.len() + usize::from(len) - 8, 0);
        }
        assert_eq!(group_desc_ids(&body), vec![7, 0x0123_4567]);
        assert_eq!(group_desc_ids(&body[..4]), Vec::<u32>::new());
    }

    #[test]
    fn the_management_socket_sits_beside_ovsdb_servers() {
        let mut cfg = SwitchConfig {
            ovsdb: "unix:/var/run/openvswitch/db.sock".into(),
            bridge: "contivbr".into(),
            openflow_port: 6653,
            owner: "netplugin".into(),
        };
        assert_eq!(
            mgmt_socket(&cfg),
            Some("/var/run/openvswitch/contivbr.mgmt".into())
        );
        cfg.ovsdb = "tcp:127.0.0.1:6640".into();
        assert_eq!(mgmt_socket(&cfg), None);
    }
}
