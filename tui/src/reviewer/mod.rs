//! The reviewer's client: the interactive queue (state + `update(msg)` + `view(state)`, with
//! IO in tasks: `runtime`, `client`, `sse`), its keymap and layout, the request detail, and
//! the reviewer's subcommands (`commands`: sign in and out, list, show, approve, deny).

pub mod bench;
pub mod client;
pub mod commands;
pub mod detail;
pub mod keys;
pub mod layout;
pub mod runtime;
pub mod sse;
pub mod state;
pub mod theme;
pub mod view;
