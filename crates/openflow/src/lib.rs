//! OpenFlow 1.3 for Contiv's Open vSwitch datapath.
//!
//! Owns the wire format: typed messages ([`Message`]), matches ([`Match`], OXM plus the NXM
//! register and conntrack fields), instructions and actions (with the Nicira `resubmit`,
//! `reg_load`, `reg_move`, `ct` and `nat`), ONF bundles (extension 230, what Open vSwitch accepts
//! in OpenFlow 1.3), and a small tokio connection (`conn`).
//!
//! Invariant: decoding returns [`DecodeError`] on any malformed input and never panics; encoding
//! of what decoding produced gives back the same bytes for the modelled messages.

mod action;
mod buf;
pub mod conn;
mod error;
mod flow;
mod message;
pub mod oxm;

pub use action::*;
pub use conn::{connect, connect_retry, connect_unix, ConnError, ConnOptions, Switch};
pub use error::DecodeError;
pub use flow::*;
pub use message::*;
pub use oxm::{ct_state, Field, Mac, Match};
