//! Signed webhooks: one reader of the audit trail per endpoint, from a stored cursor, so
//! a restart loses nothing and an endpoint gets every event it asked for, in order, at
//! least once, each with a stable `webhook-id` to deduplicate by. An endpoint that fails
//! is retried with exponential backoff and jitter, and holds up nobody but itself: each
//! endpoint has its own task, and none runs on the writer (see ARCHITECTURE.md,
//! "Notifications").

use std::collections::HashSet;
use std::net::IpAddr;
use std::time::Duration;

use rand::Rng;
use reqwest::Url;
use tokio::sync::watch;

use signoff_app::wire::PublishedEvent;
use signoff_app::{Actor, Event, Kind, RequestId};

use crate::clock::now;
use crate::config::{NotifyConfig, WebhookConfig};
use crate::store::{AuditEvent, Delivery, DeliveryStatus, Store, from_millis, millis};
use crate::{Error, Result};

/// Events read from the trail at a time.
const PAGE: i64 = 100;
/// How long an endpoint's lease lasts without renewal: another replica takes over after.
const LEASE: Duration = Duration::from_secs(10);
/// How often a replica without the lease looks whether it lapsed.
const LEASE_CHECK: Duration = Duration::from_secs(1);
/// How often an idle reader looks at the trail even without hearing it grew.
const IDLE_CHECK: Duration = Duration::from_secs(5);
/// The most of an endpoint's answer kept as the last error.
const ERROR_CHARS: usize = 300;

/// An endpoint, checked: where, how to sign, which kinds.
pub struct Endpoint {
    pub name: String,
    url: Url,
    signer: standardwebhooks::Webhook,
    /// `None`: every kind.
    kinds: Option<HashSet<Kind>>,
}

impl Endpoint {
    /// Checks an endpoint's configuration, saying what to change.
    pub fn from_config(config: &WebhookConfig) -> Result<Endpoint> {
        let name = config.name.trim();
        let refuse = |what: String| Error::Config(format!("notify.webhooks `{name}`: {what}"));
        if name.is_empty()
            || name.len() > 64
            || !name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
        {
            return Err(Error::Config(format!(
                "notify.webhooks: `{name}` is not a name of 1 to 64 lowercase letters, digits, `-` or `_`"
            )));
        }
        let url = Url::parse(config.url.trim()).map_err(|err| refuse(format!("url `{}`: {err}", config.url)))?;
        let host = url.host_str().unwrap_or_default();
        let loopback = host == "localhost"
            || host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .parse::<IpAddr>()
                .is_ok_and(|ip| ip.is_loopback());
        match url.scheme() {
            "https" => {}
            "http" if loopback => {}
            _ => return Err(refuse("url must be https (plain http only to this machine)".into())),
        }
        let secret = config.secret.expose().trim();
        if !secret.starts_with("whsec_") || secret.len() < "whsec_".len() + 24 {
            return Err(refuse(
                "secret must be `whsec_` and at least 18 random bytes in base64".into(),
            ));
        }
        let signer = standardwebhooks::Webhook::new(secret)
            .map_err(|_| refuse("secret must be `whsec_` followed by base64".into()))?;
        let kinds = if config.events.is_empty() {
            None
        } else {
            let mut kinds = HashSet::new();
            for kind in &config.events {
                let known = Kind::parse(kind.trim()).ok_or_else(|| {
                    refuse(format!(
                        "`{kind}` is not an event kind; kinds are {}",
                        Kind::ALL
                            .iter()
                            .map(|kind| kind.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ))
                })?;
                kinds.insert(known);
            }
            Some(kinds)
        };
        Ok(Endpoint {
            name: name.to_string(),
            url,
            signer,
            kinds,
        })
    }

    fn wants(&self, kind: &str) -> bool {
        match (&self.kinds, Kind::parse(kind)) {
            (None, _) => true,
            (Some(kinds), Some(kind)) => kinds.contains(&kind),
            // A kind this version does not know: sent only to endpoints that take all.
            (Some(_), None) => false,
        }
    }
}

/// Checks every endpoint of the configuration: names unique, each usable.
pub fn check(config: &NotifyConfig) -> Result<Vec<Endpoint>> {
    let mut names = HashSet::new();
    config
        .webhooks
        .iter()
        .map(|webhook| {
            let endpoint = Endpoint::from_config(webhook)?;
            if !names.insert(endpoint.name.clone()) {
                return Err(Error::Config(format!(
                    "notify.webhooks: two endpoints are named `{}`",
                    endpoint.name
                )));
            }
            Ok(endpoint)
        })
        .collect()
}

/// Sets the cursor of each endpoint new to this store at the trail's present head, so it
/// receives every event committed from now on. Called before the server takes requests.
pub async fn open_cursors(store: &Store, config: &NotifyConfig) -> Result<()> {
    for endpoint in check(config)? {
        store.open_webhook_cursor(&endpoint.name).await?;
    }
    Ok(())
}

/// Starts one reader per endpoint; each stops when `shutdown` turns true.
pub fn start(
    store: &Store,
    head: &watch::Receiver<i64>,
    config: &NotifyConfig,
    shutdown: &watch::Receiver<bool>,
) -> Result<Vec<tokio::task::JoinHandle<()>>> {
    let client = reqwest::Client::builder()
        .timeout(config.timeout)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("Signoff-Webhooks/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|err| Error::Internal(format!("webhook client: {err}")))?;
    let owner = uuid::Uuid::new_v4().to_string();
    Ok(check(config)?
        .into_iter()
        .map(|endpoint| {
            let reader = Reader {
                store: store.clone(),
                client: client.clone(),
                endpoint,
                owner: owner.clone(),
                retry_base: config.retry_base,
                retry_max: config.retry_max,
                head: head.clone(),
                shutdown: shutdown.clone(),
            };
            tokio::spawn(reader.run())
        })
        .collect())
}

/// One endpoint's reader of the trail.
struct Reader {
    store: Store,
    client: reqwest::Client,
    endpoint: Endpoint,
    /// This process, as the holder of leases.
    owner: String,
    retry_base: Duration,
    retry_max: Duration,
    head: watch::Receiver<i64>,
    shutdown: watch::Receiver<bool>,
}

/// Why a reader stopped delivering a page.
enum Stop {
    ShuttingDown,
    LostLease,
}

impl Reader {
    #[tracing::instrument(name = "webhook", skip_all, fields(endpoint = %self.endpoint.name))]
    async fn run(mut self) {
        loop {
            if *self.shutdown.borrow() {
                return;
            }
            let cursor = match self.claim().await {
                Ok(Some(cursor)) => cursor,
                Ok(None) => {
                    // Another replica delivers here; look again, in case it stopped.
                    if self.pause(LEASE_CHECK).await {
                        return;
                    }
                    continue;
                }
                Err(err) => {
                    tracing::error!(%err, "could not read the webhook cursor; trying again");
                    if self.pause(Duration::from_secs(1)).await {
                        return;
                    }
                    continue;
                }
            };
            match self.store.audit_events(cursor, PAGE).await {
                Ok(events) if events.is_empty() => {
                    if self.idle().await {
                        return;
                    }
                }
                Ok(events) => match self.deliver_page(cursor, events).await {
                    Ok(()) => {}
                    Err(Stop::ShuttingDown) => return,
                    Err(Stop::LostLease) => tracing::warn!("another process took over this endpoint"),
                },
                Err(err) => {
                    tracing::error!(%err, "could not read the audit trail for webhooks; trying again");
                    if self.pause(Duration::from_secs(1)).await {
                        return;
                    }
                }
            }
        }
    }

    async fn claim(&self) -> Result<Option<i64>> {
        let now = millis(now());
        self.store
            .claim_webhook(&self.endpoint.name, &self.owner, now, now + LEASE.as_millis() as i64)
            .await
    }

    /// Delivers a page of events in order, each until accepted, recording as it goes.
    async fn deliver_page(&mut self, mut cursor: i64, events: Vec<AuditEvent>) -> Result<(), Stop> {
        let mut accepted: Vec<Delivery> = Vec::new();
        for event in events {
            if !self.endpoint.wants(&event.kind) {
                cursor = event.seq;
                continue;
            }
            let body = match published(&event) {
                Ok(body) => body,
                Err(err) => {
                    // Never stall the endpoint on one event: say so, and go on.
                    tracing::error!(seq = event.seq, %err, "an audit event cannot be published; skipped");
                    cursor = event.seq;
                    continue;
                }
            };
            let mut attempts = 0;
            loop {
                attempts += 1;
                let attempted = millis(now());
                let mut shutdown = self.shutdown.clone();
                let sent = tokio::select! {
                    sent = self.send(event.seq, &body) => sent,
                    // A delivery cut short is sent again after the restart.
                    _ = shutdown.wait_for(|stopping| *stopping) => return Err(Stop::ShuttingDown),
                };
                match sent {
                    Ok(()) => {
                        accepted.push(Delivery {
                            seq: event.seq,
                            kind: event.kind.clone(),
                            attempts,
                            status: DeliveryStatus::Delivered,
                            last_error: None,
                            last_attempt_at: attempted,
                            delivered_at: Some(millis(now())),
                        });
                        cursor = event.seq;
                        break;
                    }
                    Err(error) => {
                        tracing::warn!(seq = event.seq, attempts, %error, "webhook delivery failed; retrying");
                        let failed = Delivery {
                            seq: event.seq,
                            kind: event.kind.clone(),
                            attempts,
                            status: DeliveryStatus::Retrying,
                            last_error: Some(error),
                            last_attempt_at: attempted,
                            delivered_at: None,
                        };
                        // What was accepted so far is recorded before waiting, with this failure.
                        accepted.push(failed);
                        self.record(&mut accepted, cursor).await?;
                        if self.pause(self.backoff(attempts)).await {
                            return Err(Stop::ShuttingDown);
                        }
                    }
                }
            }
        }
        self.record(&mut accepted, cursor).await
    }

    /// Writes the attempts and the cursor; a lost lease stops this page.
    async fn record(&self, attempts: &mut Vec<Delivery>, cursor: i64) -> Result<(), Stop> {
        let lease_until = millis(now()) + LEASE.as_millis() as i64;
        match self
            .store
            .record_webhook(&self.endpoint.name, &self.owner, attempts, cursor, lease_until)
            .await
        {
            Ok(true) => {
                attempts.clear();
                Ok(())
            }
            Ok(false) => Err(Stop::LostLease),
            Err(err) => {
                // Delivered but not recorded: sent again later, with the same webhook-id.
                tracing::error!(%err, "could not record webhook deliveries");
                attempts.clear();
                Ok(())
            }
        }
    }

    /// One signed POST; `Err` says why it was not accepted.
    async fn send(&self, seq: i64, body: &str) -> std::result::Result<(), String> {
        let id = message_id(seq);
        let timestamp = now().unix_timestamp();
        let signature = self
            .endpoint
            .signer
            .sign(&id, timestamp, body.as_bytes())
            .map_err(|err| format!("signing failed: {err}"))?;
        let response = self
            .client
            .post(self.endpoint.url.clone())
            .header("content-type", "application/json")
            .header("webhook-id", &id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .body(body.to_string())
            .send()
            .await
            .map_err(without_url)?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let text = response.text().await.unwrap_or_default();
        let excerpt: String = text.chars().take(ERROR_CHARS).collect();
        Err(format!("HTTP {status}: {excerpt}")
            .trim_end_matches([' ', ':'])
            .to_string())
    }

    /// The delay before attempt `attempts + 1`: doubling from the base, at most the
    /// maximum, then between half and all of that at random, so endpoints that failed
    /// together do not all retry together.
    fn backoff(&self, attempts: i32) -> Duration {
        let doubled = self
            .retry_base
            .saturating_mul(2u32.saturating_pow(attempts.saturating_sub(1).clamp(0, 30) as u32));
        let capped = doubled.min(self.retry_max);
        capped.mul_f64(rand::rng().random_range(0.5..=1.0))
    }

    /// Waits until the trail may have grown (or a while); true when shutting down.
    async fn idle(&mut self) -> bool {
        tokio::select! {
            _ = self.shutdown.wait_for(|stopping| *stopping) => true,
            _ = self.head.changed() => false,
            _ = tokio::time::sleep(IDLE_CHECK) => false,
        }
    }

    /// Waits `delay`; true when shutting down.
    async fn pause(&mut self, delay: Duration) -> bool {
        tokio::select! {
            _ = self.shutdown.wait_for(|stopping| *stopping) => true,
            _ = tokio::time::sleep(delay) => false,
        }
    }
}

/// The stable id of an event's message: receivers deduplicate by it.
fn message_id(seq: i64) -> String {
    format!("msg_signoff_{seq}")
}

/// The event as published: typed from the trail, never assembled by hand.
fn published(event: &AuditEvent) -> Result<String> {
    let typed: Event = event.event().map_err(|err| Error::Internal(err.to_string()))?;
    let actor: Actor = event
        .actor()
        .ok_or_else(|| Error::Internal(format!("audit event {} has an unreadable actor", event.seq)))?;
    let request_id = event
        .request_id
        .as_deref()
        .map(str::parse::<RequestId>)
        .transpose()
        .map_err(|_| Error::Internal(format!("audit event {} names no valid request", event.seq)))?;
    let message = PublishedEvent::new(event.seq, from_millis(event.at)?, request_id, actor, &typed);
    serde_json::to_string(&message).map_err(|err| Error::Internal(format!("webhook body: {err}")))
}

/// A transport error without the URL, which may carry credentials in its query.
fn without_url(err: reqwest::Error) -> String {
    let kind = if err.is_timeout() {
        "timed out"
    } else if err.is_connect() {
        "could not connect"
    } else {
        "failed"
    };
    format!("{kind}: {}", err.without_url())
}
