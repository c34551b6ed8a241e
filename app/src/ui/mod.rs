//! The console's pages, rendered on the server with Leptos. Every action is a plain
//! HTML form; `/static/console.js` only adds live updates and keyboard triage.
//!
//! All text from agents is untrusted: Leptos escapes every text node and attribute, and
//! no page uses inline script or style (the Content-Security-Policy forbids both).

mod shell;
mod signin;

pub use shell::{Chrome, Nav, UserBadge, placeholder_page, render};
pub use signin::{
    DevUser, DeviceCodeView, DevicePage, dev_signin_page, device_page, error_page, no_access_page, signed_out_page,
    signin_page,
};
