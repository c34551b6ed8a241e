//! Signoff's vocabulary, shared by the server, the console and the terminal client.
//!
//! [`model`] is pure (no IO) and always compiled; the console's views live behind the
//! `ssr` feature so the terminal client never builds them.

pub mod difftext;
pub mod evidence;
#[cfg(feature = "openapi")]
mod exact_json;
pub mod limits;
pub mod model;
#[cfg(feature = "openapi")]
mod openapi;
pub mod timefmt;
#[cfg(feature = "ssr")]
pub mod ui;
pub mod wire;

pub use model::*;
