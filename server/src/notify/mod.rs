//! Reaching people and systems outside: channels (Slack, Teams, e-mail, signed webhooks,
//! agents' callbacks), each a reader of the event log (the audit trail) that delivers
//! what committed, after it committed, and decides nothing itself (see ARCHITECTURE.md,
//! "Notifications").

pub mod notice;
pub mod reader;
pub mod routes;
pub mod webhook;

use std::sync::Arc;

use tokio::sync::watch;

pub use reader::{Sent, Sink};
pub use routes::Routing;

use crate::Result;
use crate::config::Config;
use crate::store::Store;

/// Every channel this server delivers to, checked, built once at start.
pub struct Channels {
    sinks: Vec<Arc<dyn Sink>>,
    backoff: reader::Backoff,
}

impl Channels {
    /// The channels `config` names, each checked; a channel that cannot work stops the
    /// server at start, saying what to change.
    pub fn from_config(config: &Config, public_url: &str) -> Result<Channels> {
        let notify = &config.notify;
        let routing = Arc::new(Routing::from_config(notify, public_url)?);
        let client = reader::http_client(notify.timeout, "Signoff-Webhooks")?;
        let mut sinks: Vec<Arc<dyn Sink>> = Vec::new();
        for endpoint in webhook::check(notify)? {
            sinks.push(Arc::new(webhook::Webhook::new(endpoint, client.clone())));
        }
        // Each channel added here reads `routing` for where a request's notices go.
        let _ = &routing;
        Ok(Channels {
            sinks,
            backoff: reader::Backoff {
                base: notify.retry_base,
                max: notify.retry_max,
            },
        })
    }

    pub fn sinks(&self) -> &[Arc<dyn Sink>] {
        &self.sinks
    }

    /// The channel by name, as the console names it.
    pub fn get(&self, name: &str) -> Option<&Arc<dyn Sink>> {
        self.sinks.iter().find(|sink| sink.name() == name)
    }

    /// Starts each new channel's cursor at the trail's present head.
    pub async fn open_cursors(&self, store: &Store) -> Result<()> {
        reader::open_cursors(store, &self.sinks).await
    }

    /// Starts one reader per channel; each stops when `shutdown` turns true.
    pub fn start(
        &self,
        store: &Store,
        head: &watch::Receiver<i64>,
        shutdown: &watch::Receiver<bool>,
    ) -> Vec<tokio::task::JoinHandle<()>> {
        reader::start(store, head, &self.sinks, self.backoff, shutdown)
    }
}
