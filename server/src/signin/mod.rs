//! Sign-in's doors: the console's sign-in and sign-out (`routes`) and the terminal's
//! device sign-in (`device`).

pub mod device;
pub mod routes;
