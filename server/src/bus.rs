//! The event bus: request created / decided / expired / …, heard by long-polling agents,
//! the sweeper and (later) live views. In-process for one server; through Postgres
//! LISTEN/NOTIFY when several replicas share one database.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use sqlx::postgres::{PgListener, PgPool};
use tokio::sync::{Notify, broadcast, watch};

use signoff_app::event::LiveEventKind;
use signoff_app::{Kind, RequestId, Status};

use crate::Result;
use crate::store::{DecisionRecord, Store, StoredRequest};

const CHANNEL: &str = "signoff_events";

#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    /// What happened, as the audit trail names it.
    pub kind: Kind,
    /// What live views are told of it.
    pub live: LiveEventKind,
    pub request_id: RequestId,
    pub status: Status,
    /// The audit event's sequence number: a position live views can resume from.
    pub seq: Option<i64>,
    /// The request as the change left it, when the change was made in this process: a
    /// waiting agent is answered from it without reading the database again.
    pub snapshot: Option<Arc<Snapshot>>,
}

/// A request and its decisions, as committed.
#[derive(Debug, PartialEq)]
pub struct Snapshot {
    pub request: StoredRequest,
    pub decisions: Vec<DecisionRecord>,
}

#[derive(Clone)]
pub struct EventBus {
    sender: broadcast::Sender<Event>,
    /// The audit trail's last committed sequence number, as this process last heard:
    /// readers of the whole log (webhooks) wait on it, whatever kind of event it was.
    head: Arc<watch::Sender<i64>>,
    /// The pool announcements go through, and the runtime that owns its connections: the
    /// engine publishes from a thread of its own (see `crate::engine`).
    postgres: Option<(PgPool, tokio::runtime::Handle)>,
}

impl EventBus {
    /// A bus for a single server process.
    pub fn in_process() -> Self {
        let (sender, _) = broadcast::channel(4096);
        Self {
            sender,
            head: Arc::new(watch::Sender::new(0)),
            postgres: None,
        }
    }

    /// A bus shared by every replica on `pool`'s database. A writer announces "the log
    /// grew" with one NOTIFY per committed batch; every replica (this one included) then
    /// reads the audit trail forward from the last event it delivered, so what it delivers
    /// is exactly what committed, in order, whoever wrote it.
    pub async fn postgres(pool: PgPool) -> Result<Self> {
        let (sender, _) = broadcast::channel(4096);
        let mut listener = PgListener::connect_with(&pool).await?;
        listener.listen(CHANNEL).await?;
        let store = Store::Postgres(pool.clone());
        let (mut delivered, _) = store.audit_head().await?;
        let forward = sender.clone();
        let head = Arc::new(watch::Sender::new(delivered));
        let grew = Arc::clone(&head);
        tokio::spawn(async move {
            loop {
                match listener.try_recv().await {
                    Ok(Some(notification)) => {
                        if let Ok(seq) = notification.payload().parse::<i64>() {
                            grew.send_if_modified(|known| std::mem::replace(known, seq.max(*known)) != *known);
                        }
                    }
                    // `try_recv` reconnected after a lost connection: notifications sent
                    // meanwhile are gone, but the log is not; catch up from it.
                    Ok(None) => tracing::warn!("event listener reconnected; catching up from the audit trail"),
                    Err(err) => {
                        tracing::error!(%err, "event listener failed; retrying");
                        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                        continue;
                    }
                }
                match deliver_after(&store, delivered, &forward).await {
                    Ok(last) => delivered = last,
                    Err(err) => {
                        tracing::error!(%err, "could not read the audit trail; waking every waiter");
                        let _ = forward.send(Event::resync());
                    }
                }
            }
        });
        Ok(Self {
            sender,
            head,
            postgres: Some((pool, tokio::runtime::Handle::current())),
        })
    }

    /// Delivers the events of a batch that has just committed; `head` is the trail's last
    /// sequence number after it.
    pub fn publish_committed(&self, events: Vec<Event>, head: Option<i64>) {
        if let Some(head) = head {
            self.head
                .send_if_modified(|known| std::mem::replace(known, head.max(*known)) != *known);
        }
        match &self.postgres {
            None => {
                for event in events {
                    // No receiver is not an error: nobody is listening right now.
                    let _ = self.sender.send(event);
                }
            }
            Some((pool, runtime)) => {
                let Some(head) = head else {
                    return;
                };
                let pool = pool.clone();
                // Off the writer's path: the next batch need not wait for the round trip.
                runtime.spawn(async move {
                    if let Err(err) = sqlx::query("SELECT pg_notify($1, $2)")
                        .bind(CHANNEL)
                        .bind(head.to_string())
                        .execute(&pool)
                        .await
                    {
                        // The change is committed; replicas see it at the next notification.
                        tracing::error!(%err, "could not announce committed events");
                    }
                });
            }
        }
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.sender.subscribe()
    }

    /// The trail's last committed sequence number, changing as batches commit.
    pub fn log_head(&self) -> watch::Receiver<i64> {
        self.head.subscribe()
    }
}

/// Sends every request event after `after` in the audit trail; returns the last seq read.
async fn deliver_after(store: &Store, mut after: i64, forward: &broadcast::Sender<Event>) -> Result<i64> {
    loop {
        let page = store.request_events_after(after, 1000).await?;
        let Some(&(last, _, _)) = page.last() else {
            return Ok(after);
        };
        for (seq, kind, request_id) in page {
            if let Some(event) = Event::from_audit(seq, &kind, request_id) {
                let _ = forward.send(event);
            }
        }
        after = last;
    }
}

impl Event {
    /// The live event an audit event stands for (others, such as key management, are not
    /// request events).
    pub fn live(seq: i64, kind: Kind, request_id: RequestId) -> Option<Event> {
        let (live, status) = kind.live()?;
        Some(Event {
            kind,
            live,
            request_id,
            status,
            seq: Some(seq),
            snapshot: None,
        })
    }

    /// The live event of a stored audit event, if it is one.
    pub fn from_audit(seq: i64, kind: &str, request_id: RequestId) -> Option<Event> {
        Event::live(seq, Kind::parse(kind)?, request_id)
    }

    /// A marker meaning "events may have been lost: look again".
    fn resync() -> Self {
        Event {
            kind: Kind::RequestCreated,
            live: LiveEventKind::Reported,
            request_id: RequestId::from(uuid::Uuid::nil()),
            status: Status::Pending,
            seq: None,
            snapshot: None,
        }
    }

    pub fn is_resync(&self) -> bool {
        self.request_id.as_uuid().is_nil()
    }
}

/// Agents long-polling on requests. One task listens to the bus and wakes only the
/// waiters of the request an event is about, so 10,000 waiters cost one wake each.
#[derive(Default)]
pub struct Waiters {
    by_request: Mutex<HashMap<RequestId, Arc<Slot>>>,
}

/// Where the waiters of one request are woken, and the latest snapshot left for them.
#[derive(Default)]
pub struct Slot {
    notify: Notify,
    latest: Mutex<Option<Arc<Snapshot>>>,
}

impl Waiters {
    pub fn start(bus: &EventBus) -> Arc<Self> {
        let waiters = Arc::new(Self::default());
        let mut events = bus.subscribe();
        let dispatch = Arc::clone(&waiters);
        tokio::spawn(async move {
            loop {
                match events.recv().await {
                    Ok(event) if event.is_resync() => dispatch.wake_all(),
                    Ok(event) => dispatch.wake(event.request_id, event.snapshot),
                    // Missed some events: wake everyone to look again.
                    Err(broadcast::error::RecvError::Lagged(_)) => dispatch.wake_all(),
                    Err(broadcast::error::RecvError::Closed) => break,
                }
            }
        });
        waiters
    }

    /// Registers interest in `id`; the registration ends when the handle drops.
    pub fn register(self: &Arc<Self>, id: RequestId) -> Registration {
        let slot = Arc::clone(self.map().entry(id).or_default());
        Registration {
            waiters: Arc::clone(self),
            id,
            slot,
        }
    }

    pub fn waiting(&self) -> usize {
        self.map().len()
    }

    fn wake(&self, id: RequestId, snapshot: Option<Arc<Snapshot>>) {
        if let Some(slot) = self.map().get(&id) {
            // A change without one (from another replica) leaves nothing to answer from.
            *lock(&slot.latest) = snapshot;
            slot.notify.notify_waiters();
        }
    }

    fn wake_all(&self) {
        for slot in self.map().values() {
            slot.notify.notify_waiters();
        }
    }

    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<RequestId, Arc<Slot>>> {
        lock(&self.by_request)
    }
}

/// The maps stay consistent even if a holder panicked: every change is one call.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

pub struct Registration {
    waiters: Arc<Waiters>,
    id: RequestId,
    slot: Arc<Slot>,
}

impl Registration {
    pub fn notify(&self) -> &Notify {
        &self.slot.notify
    }

    /// The request as the latest change made in this process left it, if one did since
    /// the registration.
    pub fn latest(&self) -> Option<Arc<Snapshot>> {
        lock(&self.slot.latest).clone()
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        let mut map = self.waiters.map();
        // Two references left: the map's and ours. Nobody else waits on this request.
        if Arc::strong_count(&self.slot) <= 2 {
            map.remove(&self.id);
        }
    }
}
