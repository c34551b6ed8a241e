//! `signoff`, the terminal client of Signoff: an interactive queue for on-call reviewers
//! and scripting subcommands, sharing one HTTP client.
//!
//! The interactive part is `State` + pure `update` (state.rs) + pure `view` (view.rs);
//! runtime.rs connects them to the terminal and the network.

pub mod agent;
pub mod bench;
pub mod cli;
pub mod client;
pub mod commands;
pub mod config;
pub mod detail;
pub mod error;
pub mod gate;
pub mod hook;
pub mod keys;
pub mod layout;
pub mod logging;
pub mod mcp;
pub mod runtime;
pub mod sse;
pub mod state;
pub mod text;
pub mod theme;
pub mod view;

pub use error::ClientError;
pub use state::{Command, Msg, State, update};
pub use view::view;
