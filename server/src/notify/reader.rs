//! One reader of the audit trail per channel, from a stored cursor: a restart loses
//! nothing, a channel gets every event it wants in order, at least once, and an event
//! that fails is retried with exponential backoff and jitter. Each channel has its own
//! task, so a dead or slow one holds up nobody but itself, and none runs on the writer
//! (see ARCHITECTURE.md, "Notifications").

use std::collections::VecDeque;
use std::ops::Deref;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use rand::Rng;
use tokio::sync::{Mutex, watch};

use signoff_app::wire::PublishedEvent;
use signoff_app::{Actor, Event, RequestId};

use super::thread::{DeliveryThread, Pace, ServerStore};
use crate::clock::now;
use crate::store::{AuditEvent, DeliveredPage, Delivery, DeliveryStatus, Store, from_millis, millis};
use crate::{Error, Result};

/// Events read from the trail at a time.
const PAGE: i64 = 100;
/// How long a channel's lease lasts without renewal: another replica takes over after.
const LEASE: Duration = Duration::from_secs(10);
/// How long a reader goes on from the cursor it holds before it claims the lease again
/// (every record renews it too): a third of the lease, so it never lapses while held.
const RENEW: Duration = Duration::from_secs(3);
/// How often a replica without the lease looks whether it lapsed.
const LEASE_CHECK: Duration = Duration::from_secs(1);
/// How often an idle reader looks at the trail even without hearing it grew.
const IDLE_CHECK: Duration = Duration::from_secs(5);
/// How long a reader that heard the trail grew lets more events gather before it reads:
/// under load it then reads full pages and records its cursor once per page, instead of
/// waking, reading and writing for every commit and competing with the writer.
const GATHER: Duration = Duration::from_millis(25);
/// Pages of the trail kept for readers that come to the same place a moment later.
const KEPT_PAGES: usize = 4;
/// The most of an answer kept as the last error.
pub const ERROR_CHARS: usize = 300;

/// What became of one event sent to a channel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Sent {
    /// Accepted: the cursor moves past it.
    Accepted,
    /// Nothing to send for it (a request routed elsewhere, or decided by now): the cursor
    /// moves past it, and no delivery is recorded.
    NothingToSend,
    /// Not accepted this time; tried again after a backoff.
    Retry(String),
    /// Refused for good (a channel that does not exist, an event that cannot be read):
    /// recorded as failed, for an admin to see and send again, and the reader goes on.
    GaveUp(String),
}

/// A channel: where some events of the trail go, and how.
#[async_trait::async_trait]
pub trait Sink: Send + Sync + 'static {
    /// Names the channel in the console, the logs, the delivery log and its cursor:
    /// a webhook endpoint by its name, other channels as `slack:`, `teams:ops`, ….
    fn name(&self) -> &str;

    /// What an admin sees of it (never a secret): where it delivers, what it sends.
    fn describe(&self) -> String;

    /// Whether this event concerns the channel at all; events it does not want are passed
    /// over without a delivery row.
    fn wants(&self, event: &AuditEvent) -> bool;

    /// Reads ahead, once, what delivering this page's events will need (a channel that
    /// reads per event does it for the page in a query or two instead); a read that fails
    /// leaves each delivery to read for itself.
    async fn prepare(&self, _events: &[Arc<TrailEvent>]) {}

    /// Sends what this event means to the channel.
    async fn deliver(&self, event: &TrailEvent) -> Sent;

    /// Sends a test message, so an admin sees the channel works.
    async fn test(&self) -> std::result::Result<(), String>;

    /// What the channel posted and must remember but has not stored yet (Slack's
    /// messages, so a retry never posts a request twice and decisions update it): the
    /// reader stores it with its next record of attempts and cursor, in one transaction,
    /// instead of a write of its own per event.
    fn unrecorded(&self) -> Vec<Posted> {
        Vec::new()
    }

    /// These are stored now: the channel may forget them.
    fn recorded(&self, _posted: &[Posted]) {}
}

/// A message a channel posted about a request, to be stored with the deliveries.
pub type Posted = (signoff_app::RequestId, crate::store::SlackMessage);

/// How retries back off.
#[derive(Clone, Copy, Debug)]
pub struct Backoff {
    pub base: Duration,
    pub max: Duration,
}

impl Backoff {
    /// The delay before attempt `attempts + 1`: doubling from the base, at most the
    /// maximum, then between half and all of that at random, so channels that failed
    /// together do not all retry together.
    fn delay(&self, attempts: i32) -> Duration {
        let doubled = self
            .base
            .saturating_mul(2u32.saturating_pow(attempts.saturating_sub(1).clamp(0, 30) as u32));
        doubled.min(self.max).mul_f64(rand::rng().random_range(0.5..=1.0))
    }
}

/// Sets the cursor of each channel new to this store at the trail's present head, so it
/// receives every event committed from now on. Called before the server takes requests.
pub async fn open_cursors(store: &Store, sinks: &[Arc<dyn Sink>]) -> Result<()> {
    for sink in sinks {
        store.open_webhook_cursor(sink.name()).await?;
    }
    Ok(())
}

/// Starts one reader per channel on the deliveries' thread, sharing the pages they read;
/// each stops when `shutdown` turns true.
pub fn start(
    db: &ServerStore,
    head: &watch::Receiver<i64>,
    sinks: &[Arc<dyn Sink>],
    backoff: Backoff,
    pace: Pace,
    shutdown: &watch::Receiver<bool>,
) -> Result<DeliveryThread> {
    let owner = uuid::Uuid::new_v4().to_string();
    let pages = Arc::new(Pages::new(db.clone()));
    let pace = Arc::new(pace);
    let readers = sinks
        .iter()
        .map(|sink| {
            let reader = Reader {
                db: db.clone(),
                pages: Arc::clone(&pages),
                pace: Arc::clone(&pace),
                sink: Arc::clone(sink),
                owner: owner.clone(),
                backoff,
                head: head.clone(),
                shutdown: shutdown.clone(),
                held: None,
            };
            reader.run()
        })
        .collect();
    DeliveryThread::start(readers)
}

/// An event of the trail as the channels share it: read once for all of them, its
/// published form (the body of webhooks and callbacks) built once for all of them.
pub struct TrailEvent {
    event: AuditEvent,
    published: OnceLock<std::result::Result<String, String>>,
}

impl TrailEvent {
    pub fn new(event: AuditEvent) -> TrailEvent {
        TrailEvent {
            event,
            published: OnceLock::new(),
        }
    }

    /// The event as published (`wire::PublishedEvent` in JSON), or why it cannot be.
    pub fn published(&self) -> std::result::Result<&str, &str> {
        self.published
            .get_or_init(|| published(&self.event).map_err(|err| err.to_string()))
            .as_deref()
            .map_err(String::as_str)
    }
}

impl Deref for TrailEvent {
    type Target = AuditEvent;

    fn deref(&self) -> &AuditEvent {
        &self.event
    }
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

/// Events after a cursor, as one read of the trail answered them.
type Page = Arc<[Arc<TrailEvent>]>;

/// The last pages read, shared by every reader: readers that keep up stand at the same
/// cursor, so one read (and one published form of each event) serves them all.
struct Pages {
    db: ServerStore,
    kept: Mutex<VecDeque<KeptPage>>,
}

struct KeptPage {
    after: i64,
    read: Instant,
    events: Page,
}

impl Pages {
    fn new(db: ServerStore) -> Pages {
        Pages {
            db,
            kept: Mutex::new(VecDeque::with_capacity(KEPT_PAGES)),
        }
    }

    /// The events after `after`, at most a page: one kept, when it is full or was read
    /// while this reader gathered (a shorter page only means the rest comes with the next),
    /// or read now. Readers asking at once wait for the one read.
    async fn after(&self, after: i64) -> Result<Page> {
        let mut kept = self.kept.lock().await;
        if let Some(page) = kept
            .iter()
            .find(|page| page.after == after && (page.events.len() as i64 == PAGE || page.read.elapsed() < GATHER))
        {
            return Ok(Arc::clone(&page.events));
        }
        let read = Instant::now();
        let events: Page = self
            .db
            .run(move |store| async move { store.audit_events(after, PAGE).await })
            .await?
            .into_iter()
            .map(|event| Arc::new(TrailEvent::new(event)))
            .collect();
        if !events.is_empty() {
            kept.retain(|page| page.after != after);
            if kept.len() == KEPT_PAGES {
                kept.pop_front();
            }
            kept.push_back(KeptPage {
                after,
                read,
                events: Arc::clone(&events),
            });
        }
        Ok(events)
    }
}

/// Sends one event to a channel again, now, whatever its cursor says (an admin's "send
/// again"), and records the attempt.
pub async fn send_again(store: &Store, sink: &dyn Sink, event: &AuditEvent) -> Result<Delivery> {
    let previous = store
        .webhook_delivery(sink.name(), event.seq)
        .await?
        .map_or(0, |delivery| delivery.attempts);
    let attempted = millis(now());
    let sent = sink.deliver(&TrailEvent::new(event.clone())).await;
    let delivery = delivery(event, previous + 1, attempted, sent);
    let posted = sink.unrecorded();
    store.record_delivery(sink.name(), &delivery, &posted).await?;
    sink.recorded(&posted);
    Ok(delivery)
}

fn delivery(event: &AuditEvent, attempts: i32, attempted: i64, sent: Sent) -> Delivery {
    let (status, last_error, delivered_at) = match sent {
        Sent::Accepted => (DeliveryStatus::Delivered, None, Some(millis(now()))),
        Sent::NothingToSend => (
            DeliveryStatus::Delivered,
            Some("nothing to send: the request is routed elsewhere or decided".into()),
            None,
        ),
        Sent::Retry(error) => (DeliveryStatus::Retrying, Some(error), None),
        Sent::GaveUp(error) => (DeliveryStatus::Failed, Some(error), None),
    };
    Delivery {
        seq: event.seq,
        kind: event.kind.clone(),
        attempts,
        status,
        last_error,
        last_attempt_at: attempted,
        delivered_at,
    }
}

/// One channel's reader of the trail.
struct Reader {
    /// The store, through the server's runtime.
    db: ServerStore,
    pages: Arc<Pages>,
    /// Shared by every reader: they run on one thread.
    pace: Arc<Pace>,
    sink: Arc<dyn Sink>,
    /// This process, as the holder of leases.
    owner: String,
    backoff: Backoff,
    head: watch::Receiver<i64>,
    shutdown: watch::Receiver<bool>,
    /// The cursor while this process holds the lease, and when the lease was last taken
    /// or renewed: no claim (a write) before every page.
    held: Option<(i64, Instant)>,
}

/// Why a reader stopped delivering a page.
enum Stop {
    ShuttingDown,
    LostLease,
}

impl Reader {
    #[tracing::instrument(name = "channel", skip_all, fields(channel = %self.sink.name()))]
    async fn run(mut self) {
        loop {
            if *self.shutdown.borrow() {
                return;
            }
            let cursor = match self.held {
                Some((cursor, renewed)) if renewed.elapsed() < RENEW => Ok(Some(cursor)),
                _ => self.claim().await,
            };
            let cursor = match cursor {
                Ok(Some(cursor)) => cursor,
                Ok(None) => {
                    // Another replica delivers here; look again, in case it stopped.
                    if self.pause(LEASE_CHECK).await {
                        return;
                    }
                    continue;
                }
                Err(err) => {
                    tracing::error!(%err, "could not read the channel's cursor; trying again");
                    if self.pause(Duration::from_secs(1)).await {
                        return;
                    }
                    continue;
                }
            };
            match self.pages.after(cursor).await {
                Ok(events) if events.is_empty() => {
                    self.report_backlog(cursor);
                    if self.idle().await {
                        return;
                    }
                }
                Ok(events) => {
                    let full = events.len() as i64 == PAGE;
                    match self.deliver_page(cursor, events).await {
                        Ok(()) => {}
                        Err(Stop::ShuttingDown) => return,
                        Err(Stop::LostLease) => {
                            self.held = None;
                            tracing::warn!("another process took over this channel");
                        }
                    }
                    // A page that was not full: let the next events gather (see GATHER).
                    if !full && self.pause(GATHER).await {
                        return;
                    }
                }
                Err(err) => {
                    tracing::error!(%err, "could not read the audit trail for a channel; trying again");
                    if self.pause(Duration::from_secs(1)).await {
                        return;
                    }
                }
            }
        }
    }

    /// Takes or renews the lease; the stored cursor while held.
    async fn claim(&mut self) -> Result<Option<i64>> {
        let renewed = Instant::now();
        let now = millis(now());
        let (name, owner) = (self.sink.name().to_string(), self.owner.clone());
        let claimed = self
            .db
            .run(move |store| async move {
                store
                    .claim_webhook(&name, &owner, now, now + LEASE.as_millis() as i64)
                    .await
            })
            .await?;
        self.held = claimed.map(|cursor| (cursor, renewed));
        Ok(claimed)
    }

    /// Delivers a page of events in order, each until accepted or given up, recording as
    /// it goes.
    async fn deliver_page(&mut self, mut cursor: i64, events: Page) -> Result<(), Stop> {
        let mut delivered = DeliveredPage::default();
        self.sink.prepare(&events).await;
        for event in events.iter() {
            if !self.sink.wants(event) {
                cursor = event.seq;
                continue;
            }
            let mut attempts = 0;
            loop {
                attempts += 1;
                self.pace.turn().await;
                let attempted = millis(now());
                let mut shutdown = self.shutdown.clone();
                let sent = tokio::select! {
                    sent = self.sink.deliver(event) => sent,
                    // A delivery cut short is sent again after the restart.
                    _ = shutdown.wait_for(|stopping| *stopping) => return Err(Stop::ShuttingDown),
                };
                let retry = matches!(sent, Sent::Retry(_));
                let channel = self.sink.name();
                match &sent {
                    Sent::NothingToSend => {
                        cursor = event.seq;
                        break;
                    }
                    Sent::Accepted => crate::metrics::channel_delivery(channel, "delivered"),
                    Sent::Retry(error) => {
                        crate::metrics::channel_delivery(channel, "retried");
                        tracing::warn!(seq = event.seq, attempts, %error, "delivery failed; retrying");
                    }
                    Sent::GaveUp(error) => {
                        crate::metrics::channel_delivery(channel, "failed");
                        tracing::error!(seq = event.seq, attempts, %error, "delivery refused for good; going on");
                    }
                }
                if attempts == 1 && sent == Sent::Accepted {
                    delivered.at_once.push(event.seq);
                } else {
                    delivered.attempts.push(delivery(event, attempts, attempted, sent));
                }
                if !retry {
                    cursor = event.seq;
                    break;
                }
                // What was accepted so far is recorded before waiting, with this failure.
                self.record(&mut delivered, cursor).await?;
                if self.pause(self.backoff.delay(attempts)).await {
                    return Err(Stop::ShuttingDown);
                }
            }
        }
        self.record(&mut delivered, cursor).await
    }

    /// Writes what was delivered, what the channel posted, and the cursor, in one
    /// transaction; a lost lease stops this page.
    async fn record(&mut self, delivered: &mut DeliveredPage, cursor: i64) -> Result<(), Stop> {
        let renewed = Instant::now();
        let at = millis(now());
        let lease_until = at + LEASE.as_millis() as i64;
        let posted = self.sink.unrecorded();
        // Taken: whatever the answer, these deliveries are not recorded again.
        let page = DeliveredPage {
            at,
            posted: posted.clone(),
            ..std::mem::take(delivered)
        };
        let (name, owner) = (self.sink.name().to_string(), self.owner.clone());
        let recorded = self
            .db
            .run(move |store| async move { store.record_webhook(&name, &owner, &page, cursor, lease_until).await })
            .await;
        if recorded.is_ok() {
            // Stored whether or not the lease was still held: they were posted.
            self.sink.recorded(&posted);
        }
        match recorded {
            Ok(true) => {
                self.held = Some((cursor, renewed));
                self.report_backlog(cursor);
                Ok(())
            }
            Ok(false) => Err(Stop::LostLease),
            Err(err) => {
                // Delivered but not recorded: sent again later, which receivers
                // deduplicate; the channel keeps what it posted for the next record.
                tracing::error!(%err, "could not record deliveries");
                self.held = None;
                Ok(())
            }
        }
    }

    /// How far behind the trail's head this channel is, for operators: a backlog that
    /// grows under load and falls back to 0 after it is the deliveries' thread yielding.
    fn report_backlog(&self, cursor: i64) {
        crate::metrics::channel_backlog(self.sink.name(), *self.head.borrow() - cursor);
    }

    /// Waits until the trail may have grown (or a while); true when shutting down.
    async fn idle(&mut self) -> bool {
        let grew = tokio::select! {
            _ = self.shutdown.wait_for(|stopping| *stopping) => return true,
            _ = self.head.changed() => true,
            _ = tokio::time::sleep(IDLE_CHECK) => false,
        };
        grew && self.pause(GATHER).await
    }

    /// Waits `delay`; true when shutting down.
    async fn pause(&mut self, delay: Duration) -> bool {
        tokio::select! {
            _ = self.shutdown.wait_for(|stopping| *stopping) => true,
            _ = tokio::time::sleep(delay) => false,
        }
    }
}

/// An HTTP client for channels: bounded in time, never following redirects (a redirect
/// could carry a signed body somewhere else).
pub fn http_client(timeout: Duration, agent: &str) -> Result<reqwest::Client> {
    reqwest::Client::builder()
        .timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(format!("{agent}/{}", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|err| Error::Internal(format!("HTTP client for notifications: {err}")))
}

/// A transport error without the URL, which may carry credentials in its path or query.
pub fn without_url(err: reqwest::Error) -> String {
    let kind = if err.is_timeout() {
        "timed out"
    } else if err.is_connect() {
        "could not connect"
    } else {
        "failed"
    };
    format!("{kind}: {}", err.without_url())
}

/// What an HTTP answer means for a delivery: a 2xx is accepted; a 4xx other than 408 and
/// 429 is refused for good (the same request would be refused again); anything else,
/// transport errors included, is tried again.
pub async fn answered(sent: std::result::Result<reqwest::Response, reqwest::Error>) -> Sent {
    match sent {
        Ok(response) if response.status().is_success() => Sent::Accepted,
        Ok(response) => {
            let status = response.status();
            let error = refusal(response).await;
            if status.is_client_error() && status != 408 && status != 429 {
                Sent::GaveUp(error)
            } else {
                Sent::Retry(error)
            }
        }
        Err(err) => Sent::Retry(without_url(err)),
    }
}

/// A non-2xx answer as the last error: status and the start of the body.
pub async fn refusal(response: reqwest::Response) -> String {
    let status = response.status();
    let text = response.text().await.unwrap_or_default();
    let excerpt: String = text.chars().take(ERROR_CHARS).collect();
    format!("HTTP {status}: {excerpt}")
        .trim_end_matches([' ', ':'])
        .to_string()
}
