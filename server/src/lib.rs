//! Signoff's server: the agent API, decisions, storage and the background work around them.

pub mod api;
pub mod audit_api;
pub mod auth;
pub mod bus;
pub mod clock;
pub mod config;
pub mod credentials;
mod dev;
pub mod diff;
pub mod door;
pub mod engine;
mod error;
pub mod evidence;
pub mod http;
pub mod integrations;
pub mod keys;
pub mod mcp;
pub mod metrics;
pub mod notify;
pub mod openapi;
pub mod policy_file;
pub mod service;
pub mod signin;
pub mod sso;
pub mod startup;
pub mod state;
pub mod store;
pub mod throttle;
pub mod web;

pub use config::Config;
pub use error::{Error, Result};
pub use startup::Application;
