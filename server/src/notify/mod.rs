//! Reaching people and systems outside: readers of the event log (the audit trail) that
//! deliver what committed, after it committed, and decide nothing themselves (see
//! ARCHITECTURE.md, "Notifications").

pub mod webhook;
