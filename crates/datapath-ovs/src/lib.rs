//! Contiv's OpenFlow pipeline for Open vSwitch, as data.
//!
//! [`pipeline`] names the tables, metadata bits, registers and cookie layout in one place;
//! [`render`] turns the desired state into flow-mods (pure functions, no I/O); [`dump`] prints
//! flow-mods the way `ovs-ofctl dump-flows` does, for golden tests and logs; [`diff`] gives the
//! flow-mods that turn what a switch holds into what was rendered; [`switch`] programs one
//! host's OVS (its bridge and ports through OVSDB, flows by diff in one bundle per change, a new
//! cookie round per start).
//!
//! Invariant: every flow carries a cookie of (round, category, object); a table's id, a
//! metadata bit or a register number is written only in [`pipeline`].

pub mod diff;
pub mod driver;
pub mod dump;
pub mod groups;
pub mod pipeline;
pub mod render;
pub mod switch;
pub mod unixctl;

pub use driver::{DnsNetns, OvsConfig, OvsDatapath, OvsPolicy, OvsServices};
pub use groups::{GroupNumbers, GroupNumbersError};
pub use render::{render, Desired, Ports, Rendered};
