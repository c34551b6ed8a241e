//! The event bus: request created / decided / expired / …, heard by long-polling agents,
//! the sweeper and (later) live views. In-process for one server; through Postgres
//! LISTEN/NOTIFY when several replicas share one database.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use serde::{Deserialize, Serialize};
use sqlx::postgres::{PgListener, PgPool};
use tokio::sync::{Notify, broadcast};

use signoff_app::{RequestId, Status};

use crate::Result;

const CHANNEL: &str = "signoff_events";

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    Created,
    Decided,
    Expired,
    Cancelled,
    Reported,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    pub kind: EventKind,
    pub request_id: RequestId,
    pub status: Status,
    /// The audit event's sequence number: a position live views can resume from.
    pub seq: Option<i64>,
}

#[derive(Clone)]
pub struct EventBus {
    sender: broadcast::Sender<Event>,
    postgres: Option<PgPool>,
}

impl EventBus {
    /// A bus for a single server process.
    pub fn in_process() -> Self {
        let (sender, _) = broadcast::channel(4096);
        Self { sender, postgres: None }
    }

    /// A bus shared by every replica on `pool`'s database: events are published with
    /// NOTIFY and every replica (this one included) hears them through LISTEN.
    pub async fn postgres(pool: PgPool) -> Result<Self> {
        let (sender, _) = broadcast::channel(4096);
        let mut listener = PgListener::connect_with(&pool).await?;
        listener.listen(CHANNEL).await?;
        let forward = sender.clone();
        tokio::spawn(async move {
            loop {
                // `try_recv` reconnects by itself and returns None after a lost
                // connection: the events sent meanwhile are gone, so wake everyone to
                // look again.
                match listener.try_recv().await {
                    Ok(Some(notification)) => match serde_json::from_str::<Event>(notification.payload()) {
                        Ok(event) => {
                            let _ = forward.send(event);
                        }
                        Err(err) => {
                            tracing::warn!(%err, "ignoring a malformed event notification")
                        }
                    },
                    Ok(None) => {
                        tracing::warn!("event listener reconnected; waking every waiter");
                        let _ = forward.send(Event::resync());
                    }
                    Err(err) => {
                        tracing::error!(%err, "event listener failed; retrying");
                        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                    }
                }
            }
        });
        Ok(Self {
            sender,
            postgres: Some(pool),
        })
    }

    pub async fn publish(&self, event: Event) {
        match &self.postgres {
            None => {
                // No receiver is not an error: nobody is listening right now.
                let _ = self.sender.send(event);
            }
            Some(pool) => {
                let payload = serde_json::to_string(&event).unwrap_or_default();
                if let Err(err) = sqlx::query("SELECT pg_notify($1, $2)")
                    .bind(CHANNEL)
                    .bind(payload)
                    .execute(pool)
                    .await
                {
                    // The change is committed; waiters will see it when they look again.
                    tracing::error!(%err, "could not publish an event");
                }
            }
        }
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.sender.subscribe()
    }
}

impl Event {
    /// A marker meaning "events may have been lost: look again".
    fn resync() -> Self {
        Event {
            kind: EventKind::Reported,
            request_id: RequestId::from(uuid::Uuid::nil()),
            status: Status::Pending,
            seq: None,
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
    by_request: Mutex<HashMap<RequestId, Arc<Notify>>>,
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
                    Ok(event) => dispatch.wake(event.request_id),
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
        let notify = Arc::clone(self.map().entry(id).or_default());
        Registration {
            waiters: Arc::clone(self),
            id,
            notify,
        }
    }

    pub fn waiting(&self) -> usize {
        self.map().len()
    }

    fn wake(&self, id: RequestId) {
        if let Some(notify) = self.map().get(&id) {
            notify.notify_waiters();
        }
    }

    fn wake_all(&self) {
        for notify in self.map().values() {
            notify.notify_waiters();
        }
    }

    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<RequestId, Arc<Notify>>> {
        // The map stays consistent even if a holder panicked: every change is one call.
        self.by_request.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

pub struct Registration {
    waiters: Arc<Waiters>,
    id: RequestId,
    notify: Arc<Notify>,
}

impl Registration {
    pub fn notify(&self) -> &Notify {
        &self.notify
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        let mut map = self.waiters.map();
        // Two references left: the map's and ours. Nobody else waits on this request.
        if Arc::strong_count(&self.notify) <= 2 {
            map.remove(&self.id);
        }
    }
}
