//! What the swarm e2e needs beyond a dockerd per host ([`crate::dockerd`]): a [`relay::Relay`]
//! so that an agent inside a simulated host reaches netmaster, and netplugin installed as
//! dockerd's managed plugin by scripts/docker-plugin.sh ([`plugin`]).

pub mod plugin;
pub mod relay;
