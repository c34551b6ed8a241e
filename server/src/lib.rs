//! Signoff's server: the agent API, decisions, storage and the background work around them.

pub mod config;
mod error;
pub mod store;

pub use config::Config;
pub use error::{Error, Result};
