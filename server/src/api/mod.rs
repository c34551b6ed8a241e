//! The JSON API. Each module owns its routes and their wire types; `crate::http`
//! assembles them.

mod extract;
pub mod openapi;
pub(crate) mod requests;
pub mod reviews;

pub use extract::AgentAuth;
