//! The JSON API. Each module owns its routes and their wire types; `crate::http`
//! assembles them, and `crate::openapi` describes them.

mod extract;
pub(crate) mod requests;
pub mod reviews;

pub use extract::AgentAuth;
