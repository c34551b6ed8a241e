//! The reviewer's client: the interactive queue (state + `update(msg)` + `view(state)`, with
//! IO in tasks: `runtime`, `client`, `sse`), its keymap and layout, and the request detail.

pub mod bench;
pub mod client;
pub mod detail;
pub mod keys;
pub mod layout;
pub mod runtime;
pub mod sse;
pub mod state;
pub mod theme;
pub mod view;
