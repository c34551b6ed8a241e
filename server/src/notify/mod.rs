//! Reaching people and systems outside: channels (Slack, Teams, e-mail, signed webhooks,
//! agents' callbacks), each a reader of the event log (the audit trail) that delivers
//! what committed, after it committed, and decides nothing itself (see ARCHITECTURE.md,
//! "Notifications").

pub mod callback;
pub mod email;
pub mod notice;
pub mod reader;
pub mod routes;
pub mod slack;
pub mod teams;
pub mod thread;
pub mod webhook;

use std::sync::Arc;

use tokio::sync::watch;

use signoff_app::{Kind, RequestId, Route, Status};

pub use notice::Notice;
pub use reader::{Sent, Sink, TrailEvent};
pub use routes::Routing;

use crate::Result;
use crate::clock::now;
use crate::config::Config;
use crate::engine::Pressure;
use crate::store::{AuditEvent, Store};
use thread::{DeliveryThread, Pace, ServerStore};

/// Every channel this server delivers to, checked, built once at start.
pub struct Channels {
    sinks: Vec<Arc<dyn Sink>>,
    backoff: reader::Backoff,
    slack: Option<SlackApp>,
}

/// What Slack's interactions need: the Web API and the secret their signatures use.
pub struct SlackApp {
    pub api: Arc<slack::SlackApi>,
    pub signing_secret: crate::config::Secret,
}

impl Channels {
    /// The channels `config` names, each checked; a channel that cannot work stops the
    /// server at start, saying what to change.
    pub fn from_config(config: &Config, public_url: &str, store: &Store) -> Result<Channels> {
        let notify = &config.notify;
        let reading = Reading {
            store: ServerStore::new(store.clone())?,
            routing: Arc::new(Routing::from_config(notify, public_url)?),
        };
        let client = reader::http_client(notify.timeout, "Signoff-Webhooks")?;
        let mut sinks: Vec<Arc<dyn Sink>> = Vec::new();
        for endpoint in webhook::check(notify)? {
            sinks.push(Arc::new(webhook::Webhook::new(endpoint, client.clone())));
        }
        let notices = reader::http_client(notify.timeout, "Signoff")?;
        for (name, teams) in &notify.teams {
            sinks.push(Arc::new(teams::Teams::new(
                name,
                teams,
                notices.clone(),
                reading.clone(),
            )?));
        }
        if let Some(email) = &notify.email {
            sinks.push(Arc::new(email::Email::new(email, notify.timeout, reading.clone())?));
        }
        let rules = callback::CallbackRules::from_config(&config.callbacks);
        if !config.callbacks.allowed_hosts.is_empty() {
            let secret = callback::secret(&config.callbacks, &config.data_dir)?;
            sinks.push(Arc::new(callback::Callbacks::new(
                rules,
                &secret,
                notify.timeout,
                reading.clone(),
            )?));
        }
        let slack = match &notify.slack {
            Some(config) => {
                let api = Arc::new(slack::SlackApi::new(config, notices.clone())?);
                sinks.push(Arc::new(slack::Slack::new(Arc::clone(&api), reading.clone())));
                Some(SlackApp {
                    api,
                    signing_secret: config.signing_secret.clone(),
                })
            }
            None => None,
        };
        Ok(Channels {
            slack,
            sinks,
            backoff: reader::Backoff {
                base: notify.retry_base,
                max: notify.retry_max,
            },
        })
    }

    /// The Slack app, when one is configured.
    pub fn slack(&self) -> Option<&SlackApp> {
        self.slack.as_ref()
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

    /// Starts one reader per channel on the deliveries' thread, paced while `pressure`
    /// says the writer is busy; each stops when `shutdown` turns true. Called on the
    /// server's runtime.
    pub fn start(
        &self,
        store: &Store,
        head: &watch::Receiver<i64>,
        pressure: Pressure,
        shutdown: &watch::Receiver<bool>,
    ) -> Result<DeliveryThread> {
        reader::start(
            &ServerStore::new(store.clone())?,
            head,
            &self.sinks,
            self.backoff,
            Pace::new(pressure),
            shutdown,
        )
    }
}

/// What a channel of notices (Teams, e-mail, Slack) reads besides the event: the request
/// as stored now, and where its notices go.
#[derive(Clone)]
pub struct Reading {
    store: ServerStore,
    routing: Arc<Routing>,
}

/// Whether an event of `kind` tells reviewers something to act on: a new request, an
/// escalation, a reminder.
pub fn calls_for_notice(kind: &str) -> bool {
    matches!(
        Kind::parse(kind),
        Some(Kind::RequestCreated | Kind::RequestEscalated | Kind::RequestReminded)
    )
}

impl Reading {
    /// The notice `event` calls for and its routes that `pick` keeps, or why there is
    /// none: the request is decided by now (a notice would ask for a decision already
    /// made), or none of its routes is this channel's.
    pub async fn notice<T>(
        &self,
        event: &AuditEvent,
        pick: impl Fn(&Route) -> Option<T>,
    ) -> std::result::Result<(Notice, Vec<T>), Sent> {
        Kind::parse(&event.kind).ok_or(Sent::NothingToSend)?;
        let request = self.request(event).await?;
        self.notice_of(event, request, pick)
    }

    /// [`Reading::notice`] about `request`, already read.
    pub fn notice_of<T>(
        &self,
        event: &AuditEvent,
        request: signoff_app::Request,
        pick: impl Fn(&Route) -> Option<T>,
    ) -> std::result::Result<(Notice, Vec<T>), Sent> {
        let kind = Kind::parse(&event.kind).ok_or(Sent::NothingToSend)?;
        if request.status != Status::Pending {
            return Err(Sent::NothingToSend);
        }
        let targets: Vec<T> = self.routing.routes(&request, kind).iter().filter_map(pick).collect();
        if targets.is_empty() {
            return Err(Sent::NothingToSend);
        }
        let link = self.routing.link(&request);
        Ok((Notice::new(&request, kind, link, now()), targets))
    }

    /// The request `event` is about, as stored now.
    pub async fn request(&self, event: &AuditEvent) -> std::result::Result<signoff_app::Request, Sent> {
        let id: RequestId = event
            .request_id
            .as_deref()
            .and_then(|id| id.parse().ok())
            .ok_or_else(|| Sent::GaveUp(format!("audit event {} names no request", event.seq)))?;
        match self
            .store
            .run(move |store| async move { store.get_request(id).await })
            .await
        {
            Ok(Some(request)) => Ok(request),
            Ok(None) => Err(Sent::GaveUp(format!("request {id} is not stored"))),
            Err(err) => Err(Sent::Retry(format!("could not read request {id}: {err}"))),
        }
    }

    /// The request's page in the console.
    pub fn link(&self, request: &signoff_app::Request) -> String {
        self.routing.link(request)
    }

    /// The console's address, for test messages.
    pub fn public_url(&self) -> &str {
        self.routing.public_url()
    }
}
