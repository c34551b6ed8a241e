//! `signoff`, the terminal client of Signoff: an interactive queue for on-call reviewers
//! and scripting subcommands, and the agent side's tools.
//!
//! Two sides that do not import each other: `reviewer`, the interactive queue (`State` +
//! pure `update` + pure `view`, connected to the terminal and the network by
//! `reviewer::runtime`) and the reviewer's subcommands, and `agent`, the agent API from the
//! agent's side (the gate, the Claude Code hook and the MCP proxy). `commands` hands the
//! command line (`cli`) to one of them; `config`, `error`, `logging` and `text` serve both.

pub mod agent;
pub mod cli;
pub mod commands;
pub mod config;
pub mod error;
pub mod logging;
pub mod reviewer;
pub mod text;

pub use error::ClientError;
pub use reviewer::state::{Command, Msg, State, update};
pub use reviewer::view::view;
