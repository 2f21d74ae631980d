//! Wire types shared by netmaster and the host agent (netplugin): the store key layout, the
//! endpoint record, `/plugin/*` requests and responses, and the agent state stream.

pub mod agent;
mod endpoint;
pub mod keys;
mod netoper;
pub mod plugin;
pub mod policy;

pub use endpoint::EndpointState;
pub use netoper::{NetOper, ServiceOper};
