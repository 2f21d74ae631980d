//! OVSDB for Contiv's Open vSwitch datapath (RFC 7047 JSON-RPC).
//!
//! Layers, each usable alone: [`framing`] splits the byte stream into JSON texts, [`rpc`] turns
//! them into messages, [`ops`] and [`monitor`] build and read transactions and monitor updates
//! (all pure data, no I/O); [`client`] is the tokio connection; [`vswitch`] the typed
//! `Open_vSwitch` helpers the agent uses (bridges, ports, interfaces, ofports).
//!
//! Invariant: the helpers in [`vswitch`] change only bridges and ports that carry Contiv's owner
//! mark in `external_ids`, and check that mark inside the same transaction that changes them.

pub mod client;
mod error;
pub mod framing;
pub mod monitor;
pub mod ops;
pub mod rpc;
pub mod vswitch;

pub use client::{Client, ClientOptions, Endpoint};
pub use error::Error;
pub use monitor::{MonitorRequests, RowUpdate, TableUpdates};
pub use ops::{Op, Row};
