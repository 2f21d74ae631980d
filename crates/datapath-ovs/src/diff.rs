//! Converging installed flows on rendered ones: the flow-mods that make a switch's tables equal
//! the desired flows, and nothing else. OVS keeps at most one flow per (table, priority, match),
//! so that triple is a flow's identity: a desired flow not installed is added; one installed with
//! other instructions or another cookie (a new round) is re-added, which replaces it in place;
//! an installed flow nothing desires is deleted strictly. Sent as one bundle, the change is atomic.
//! Pure: no I/O.

use std::collections::BTreeMap;

use contiv_openflow::{Field, FlowMod, FlowModCommand, FlowStats, Match};

/// A flow's identity. Match fields compare as a set: OVS returns them in its own order.
pub(crate) type Key = (u8, u16, Vec<String>);

pub(crate) fn key(table: u8, priority: u16, m: &Match) -> Key {
    let mut fields: Vec<String> = m.0.iter().map(|f: &Field| format!("{f:?}")).collect();
    fields.sort();
    (table, priority, fields)
}

/// The flows a flow-stats reply describes, as flow-mods (what [`diff`] compares).
pub fn installed_from_stats(stats: &[FlowStats]) -> Vec<FlowMod> {
    stats
        .iter()
        .map(|s| {
            let mut f = FlowMod::add(
                s.table_id,
                s.priority,
                s.r#match.clone(),
                s.instructions.clone(),
            );
            f.cookie = s.cookie;
            f
        })
        .collect()
}

/// The flow-mods that turn `installed` into `desired` (adds first, then deletes).
pub fn diff(installed: &[FlowMod], desired: &[FlowMod]) -> Vec<FlowMod> {
    let have: BTreeMap<Key, &FlowMod> = installed
        .iter()
        .map(|f| (key(f.table_id, f.priority, &f.r#match), f))
        .collect();
    let want: BTreeMap<Key, &FlowMod> = desired
        .iter()
        .map(|f| (key(f.table_id, f.priority, &f.r#match), f))
        .collect();
    let mut out = vec![];
    for (k, w) in &want {
        let same = have
            .get(k)
            .is_some_and(|h| h.cookie == w.cookie && h.instructions == w.instructions);
        if !same {
            out.push((*w).clone());
        }
    }
    for (k, h) in &have {
        if !want.contains_key(k) {
            let mut d = FlowMod::add(h.table_id, h.priority, h.r#match.clone(), vec![]);
            d.command = FlowModCommand::DeleteStrict;
            out.push(d);
        }
    }
    out
}

/// A flow-mod [`apply`] cannot model: only what [`diff`] makes (add, strict delete) is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot model flow-mod {command:?} (table {table}, priority {priority}): only add and delete-strict are")]
pub struct UnmodeledCommand {
    pub command: FlowModCommand,
    pub table: u8,
    pub priority: u16,
}

/// What a switch holding `installed` holds after `mods` (a model of OVS's flow table, used to
/// keep the switch's view after a bundle and by tests of [`diff`]): adds replace by identity,
/// strict deletes remove by identity. Any other command is an error (nothing is returned for a
/// guess: a model that guessed would hide a mistake).
pub fn apply(installed: &[FlowMod], mods: &[FlowMod]) -> Result<Vec<FlowMod>, UnmodeledCommand> {
    let mut table: BTreeMap<Key, FlowMod> = installed
        .iter()
        .map(|f| (key(f.table_id, f.priority, &f.r#match), f.clone()))
        .collect();
    for m in mods {
        let k = key(m.table_id, m.priority, &m.r#match);
        match m.command {
            FlowModCommand::Add => {
                table.insert(k, m.clone());
            }
            FlowModCommand::DeleteStrict => {
                table.remove(&k);
            }
            command => {
                return Err(UnmodeledCommand {
                    command,
                    table: m.table_id,
                    priority: m.priority,
                })
            }
        }
    }
    Ok(table.into_values().collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use contiv_openflow::{Field, Match};

    fn flow(priority: u16, port: u32) -> FlowMod {
        FlowMod::add(0, priority, Match(vec![Field::InPort(port)]), vec![])
    }

    #[test]
    fn apply_refuses_commands_diff_never_makes_instead_of_panicking() {
        let have = vec![flow(10, 1)];
        let mut del = flow(10, 1);
        del.command = FlowModCommand::DeleteStrict;
        assert_eq!(apply(&have, &[del]).unwrap(), vec![]);
        assert_eq!(apply(&have, &[flow(10, 2)]).unwrap().len(), 2);
        for command in [FlowModCommand::Delete, FlowModCommand::Modify] {
            let mut m = flow(10, 1);
            m.command = command;
            let e = apply(&have, &[flow(20, 3), m]).unwrap_err();
            assert_eq!(e.command, command);
            assert!(e.to_string().contains("only add and delete-strict"), "{e}");
        }
    }
}
