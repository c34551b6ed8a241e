//! The state every door (API, sign-in, console, MCP) shares: a leaf below them, so no
//! door imports another to reach it.

use std::sync::Arc;

use crate::service::Service;
use crate::sso::AuthState;
use crate::sso::sessions::SessionBackend;
use crate::throttle::Throttle;

#[derive(Clone)]
pub struct AppState {
    pub service: Arc<Service>,
    pub auth: Arc<AuthState>,
    pub throttle: Arc<Throttle>,
    /// Read directly by long-lived streams, to end when their session does.
    pub sessions: SessionBackend,
    /// Where notices go: the console lists, tests and re-sends through these.
    pub channels: Arc<crate::notify::Channels>,
}

impl axum::extract::FromRef<AppState> for Arc<Throttle> {
    fn from_ref(state: &AppState) -> Arc<Throttle> {
        Arc::clone(&state.throttle)
    }
}
