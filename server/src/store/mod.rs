//! Storage: one interface over SQLite (embedded default) and Postgres (scale-out).
//!
//! Every query is written once with `$N` placeholders (both dialects accept them) and
//! expanded for each pool by [`on_read_pool!`] and [`in_write_tx!`] (and by `WriteTx`'s
//! own macro for the engine's batches); the few places where
//! the dialects differ are marked. Times are stored as Unix milliseconds, JSON as text.

mod audit;
mod records;

use std::str::FromStr;
use std::time::Duration;

use sqlx::Row;
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};

use signoff_app::RequestId;

pub use audit::{
    Actor, AuditEvent, ChainReport, canonical_event, chain_hash_canonical, chain_hash_of, to_value as audit_value,
};
pub use records::{Agent, AgentSummary, DecisionRecord, NewRecord, StoredRequest, from_millis, millis};

use crate::{Error, Result};
use records::{decision_from_row, request_from_row};

/// Which database, and its pools.
#[derive(Clone, Debug)]
pub enum Store {
    Sqlite(SqliteStore),
    Postgres(PgPool),
}

/// SQLite allows one writer at a time: writes queue on a single connection (fairly, in
/// the pool) instead of spinning on `SQLITE_BUSY`; reads use their own connections.
#[derive(Clone, Debug)]
pub struct SqliteStore {
    writer: SqlitePool,
    reader: SqlitePool,
}

/// Runs `$body` with `$pool` bound to a pool for reads.
macro_rules! on_read_pool {
    ($store:expr, |$pool:ident| $body:expr) => {
        match $store {
            Store::Sqlite(sqlite) => {
                let $pool = &sqlite.reader;
                $body
            }
            Store::Postgres(pg) => {
                let $pool = pg;
                $body
            }
        }
    };
}

/// Runs `$body` in a write transaction `$tx`, committing when it completes (an early
/// `?` return rolls back). Only for rows outside the lifecycle (device codes): every
/// change to requests, decisions and the audit trail goes through the engine.
macro_rules! in_write_tx {
    ($store:expr, |$tx:ident| $body:expr) => {
        match $store {
            Store::Sqlite(sqlite) => {
                let mut $tx = sqlite.writer.begin_with("BEGIN IMMEDIATE").await?;
                let value = $body;
                $tx.commit().await?;
                value
            }
            Store::Postgres(pg) => {
                let mut $tx = pg.begin().await?;
                let value = $body;
                $tx.commit().await?;
                value
            }
        }
    };
}

mod review;
mod signin;
#[macro_use]
mod write;
mod console;
mod credentials;
mod deliveries;
mod evidence;
mod policy;
mod slack;

pub use console::AuditQuery;
pub use credentials::ActiveCredentials;
pub use deliveries::{DeliveredPage, Delivery, DeliveryStatus};
pub use evidence::{CheckpointRow, HeadRow, RawEvent};
pub use policy::{Followup, GrantRecord, PolicyVersion, StoredPolicy};
pub use review::{Cursor, RequestFilter, Voter};
pub use signin::{DeviceCodeInfo, DeviceState, Poll, TokenRecord};
pub use slack::SlackMessage;
pub use write::{AuditRow, DeviceCodeRow, NewRow, NewTokenRow, WriteConn, WriteTx};

const REQUEST_COLUMNS: &str = "r.id, r.agent_id, a.name AS agent_name, a.owner AS agent_owner, \
    r.on_behalf_of, r.action, r.resource, r.title, r.reason, r.labels, r.payload, r.diff, \
    r.context, r.digest, r.status, r.policy, r.approvals, r.created_at, r.expires_at, \
    r.decided_at, r.result, r.body_hash, r.break_glass, r.escalates_at, r.started_at, \
    r.remind_at, r.callback_url, r.receipt, r.receipt_used_at";

const DECISION_COLUMNS: &str = "request_id, reviewer_issuer, reviewer_subject, reviewer_email, \
    reviewer_name, reviewer_groups, verdict, comment, channel, decided_at";

fn select_request() -> String {
    format!("SELECT {REQUEST_COLUMNS} FROM requests r JOIN agents a ON a.id = r.agent_id WHERE r.id = $1")
}

/// What issuing an agent key did besides storing the key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeyIssue {
    /// The agent is new.
    Created,
    /// The agent existed, as it was.
    NewKey,
    /// The agent existed and now has the owner asked for.
    OwnerChanged { previous: Option<String> },
}

/// What the sweeper looks for among pending requests: the column saying when, and the
/// partial index holding exactly the pending requests with one.
const DUE: [(&str, &str); 3] = [
    ("expires_at", "requests_expiry"),
    ("escalates_at", "requests_escalation"),
    ("remind_at", "requests_reminder"),
];

/// `requests r`, read through `index` on SQLite. Its planner has no statistics and takes
/// the equality on `status` (`requests_by_status`) over the partial index, reading every
/// pending request: tens of milliseconds a query at 60,000 pending, every second, and in
/// the writer's transaction when something is due. Postgres's statistics choose well.
fn requests_through(sqlite: bool, index: &str) -> String {
    if sqlite {
        format!("requests r INDEXED BY {index}")
    } else {
        "requests r".to_string()
    }
}

/// Whether some pending request's `column` is at or before `$1`.
fn any_due_sql(sqlite: bool, column: &str, index: &str) -> String {
    let requests = requests_through(sqlite, index);
    format!("SELECT 1 FROM {requests} WHERE r.status = 'pending' AND r.{column} <= $1 LIMIT 1")
}

/// The schema of each dialect: every numbered file of `migrations/<dialect>/`, embedded at
/// build time. A schema change is a new file; a store at any earlier version upgrades in
/// place at start.
pub static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("../migrations/sqlite");
pub static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("../migrations/postgres");

impl Store {
    /// Connects to `url` (`sqlite://…` or `postgres://…`), creating a SQLite file if needed.
    pub async fn connect(url: &str) -> Result<Store> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            // No ping before each use: a broken connection fails its query and is
            // replaced, and the ping would cost every transaction a round trip.
            let pool = PgPoolOptions::new()
                .max_connections(32)
                .test_before_acquire(false)
                .acquire_timeout(Duration::from_secs(10))
                .connect(url)
                .await?;
            return Ok(Store::Postgres(pool));
        }
        if !url.starts_with("sqlite:") {
            return Err(Error::Config(format!(
                "DATABASE_URL must start with sqlite:// or postgres:// (got `{}`)",
                url.split(':').next().unwrap_or_default()
            )));
        }
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // With WAL, NORMAL is durable across application crashes; a power loss may
            // lose the last commits but never corrupts the file.
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true);
        if let Some(parent) = options.get_filename().parent() {
            std::fs::create_dir_all(parent).map_err(|err| {
                Error::Config(format!("cannot create the data directory {}: {err}", parent.display()))
            })?;
        }
        // The one writer keeps the pages it touches (the heads of the tables and indexes it
        // appends to) in its own cache rather than reading them back from the OS at every
        // batch, and keeps the statements of many batch sizes prepared.
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .test_before_acquire(false)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(
                options
                    .clone()
                    .pragma("cache_size", "-65536")
                    .statement_cache_capacity(1024),
            )
            .await?;
        let reader = SqlitePoolOptions::new()
            .max_connections(8)
            .test_before_acquire(false)
            .connect_with(options)
            .await?;
        Ok(Store::Sqlite(SqliteStore { writer, reader }))
    }

    /// The store the lifecycle engine writes through, made on the engine's own thread. On
    /// Postgres, a small pool of its own, connecting lazily, so its connections belong to
    /// that thread's runtime; on SQLite, the one write connection everyone shares (its
    /// worker thread answers any runtime directly).
    pub fn for_engine(&self) -> Store {
        match self {
            Store::Sqlite(sqlite) => Store::Sqlite(sqlite.clone()),
            Store::Postgres(pg) => Store::Postgres(
                PgPoolOptions::new()
                    .max_connections(2)
                    .test_before_acquire(false)
                    .acquire_timeout(Duration::from_secs(10))
                    .connect_lazy_with((*pg.connect_options()).clone()),
            ),
        }
    }

    /// Brings the schema up to date (run at every start; a no-op when current).
    pub async fn migrate(&self) -> Result<()> {
        match self {
            Store::Sqlite(sqlite) => SQLITE_MIGRATIONS.run(&sqlite.writer).await?,
            Store::Postgres(pg) => POSTGRES_MIGRATIONS.run(pg).await?,
        }
        Ok(())
    }

    pub fn is_postgres(&self) -> bool {
        matches!(self, Store::Postgres(_))
    }

    fn is_sqlite(&self) -> bool {
        matches!(self, Store::Sqlite(_))
    }

    pub fn postgres_pool(&self) -> Option<&PgPool> {
        match self {
            Store::Postgres(pg) => Some(pg),
            Store::Sqlite(_) => None,
        }
    }

    pub async fn ping(&self) -> Result<()> {
        on_read_pool!(self, |pool| {
            sqlx::query("SELECT 1").execute(pool).await?;
        });
        Ok(())
    }

    // ----- agents and keys -------------------------------------------------------------

    pub async fn list_agents(&self) -> Result<Vec<AgentSummary>> {
        let agents = on_read_pool!(self, |pool| {
            let rows = sqlx::query(
                "SELECT a.id, a.name, a.owner, a.created_at, a.description, \
                 (SELECT COUNT(*) FROM api_keys k WHERE k.agent_id = a.id AND k.revoked_at IS NULL) AS active_keys \
                 FROM agents a ORDER BY a.name",
            )
            .fetch_all(pool)
            .await?;
            let mut agents = Vec::with_capacity(rows.len());
            for row in rows {
                let active_keys: i64 = row.try_get("active_keys")?;
                agents.push(AgentSummary {
                    description: row.try_get("description")?,
                    agent: records::agent_from_row!(row),
                    active_keys,
                });
            }
            agents
        });
        Ok(agents)
    }

    // ----- requests ----------------------------------------------------------------------

    pub async fn get_request(&self, id: RequestId) -> Result<Option<StoredRequest>> {
        let request = on_read_pool!(self, |pool| {
            match sqlx::query(&select_request())
                .bind(id.to_string())
                .fetch_optional(pool)
                .await?
            {
                Some(row) => Some(request_from_row!(row)),
                None => None,
            }
        });
        Ok(request)
    }

    /// The requests with these ids that exist, in one read (at most a few hundred ids).
    pub async fn requests_by_id(&self, ids: &[RequestId]) -> Result<Vec<StoredRequest>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let requests = on_read_pool!(self, |pool| {
            let mut query = sqlx::QueryBuilder::new(format!(
                "SELECT {REQUEST_COLUMNS} FROM requests r JOIN agents a ON a.id = r.agent_id WHERE r.id IN ("
            ));
            let mut list = query.separated(", ");
            for id in ids {
                list.push_bind(id.to_string());
            }
            query.push(")");
            let mut requests = Vec::with_capacity(ids.len());
            for row in query.build().fetch_all(pool).await? {
                requests.push(request_from_row!(row));
            }
            requests
        });
        Ok(requests)
    }

    pub async fn decisions(&self, id: RequestId) -> Result<Vec<DecisionRecord>> {
        let decisions = on_read_pool!(self, |pool| {
            let rows = sqlx::query(&format!(
                "SELECT {DECISION_COLUMNS} FROM decisions WHERE request_id = $1 ORDER BY decided_at, id"
            ))
            .bind(id.to_string())
            .fetch_all(pool)
            .await?;
            let mut decisions = Vec::with_capacity(rows.len());
            for row in rows {
                decisions.push(decision_from_row!(row));
            }
            decisions
        });
        Ok(decisions)
    }

    /// Whether some pending request is past its time (a read, so an idle sweeper writes
    /// nothing).
    pub async fn any_due(&self, now: time::OffsetDateTime) -> Result<bool> {
        // One query per partial index: an OR of them would scan every pending request.
        for (column, index) in DUE {
            let sql = any_due_sql(self.is_sqlite(), column, index);
            let found = on_read_pool!(self, |pool| {
                sqlx::query(&sql)
                    .bind(records::millis(now))
                    .fetch_optional(pool)
                    .await?
                    .is_some()
            });
            if found {
                return Ok(true);
            }
        }
        Ok(false)
    }

    // ----- audit -------------------------------------------------------------------------

    /// Audit events after `after_seq`, in order, at most `limit`.
    pub async fn audit_events(&self, after_seq: i64, limit: i64) -> Result<Vec<AuditEvent>> {
        let events = on_read_pool!(self, |pool| {
            let rows = sqlx::query(
                "SELECT seq, at, kind, request_id, actor, data, prev_hash, hash FROM audit_events \
                 WHERE seq > $1 ORDER BY seq LIMIT $2",
            )
            .bind(after_seq)
            .bind(limit)
            .fetch_all(pool)
            .await?;
            let mut events = Vec::with_capacity(rows.len());
            for row in rows {
                events.push(audit::event_from_row!(row));
            }
            events
        });
        Ok(events)
    }

    pub async fn audit_events_for(&self, id: RequestId) -> Result<Vec<AuditEvent>> {
        let events = on_read_pool!(self, |pool| {
            let rows = sqlx::query(
                "SELECT seq, at, kind, request_id, actor, data, prev_hash, hash FROM audit_events \
                 WHERE request_id = $1 ORDER BY seq",
            )
            .bind(id.to_string())
            .fetch_all(pool)
            .await?;
            let mut events = Vec::with_capacity(rows.len());
            for row in rows {
                events.push(audit::event_from_row!(row));
            }
            events
        });
        Ok(events)
    }

    /// The chain's head as recorded: (last seq, last hash).
    pub async fn audit_head(&self) -> Result<(i64, String)> {
        let head = on_read_pool!(self, |pool| {
            let row = sqlx::query("SELECT seq, hash FROM audit_head WHERE id = 1")
                .fetch_one(pool)
                .await?;
            (row.try_get::<i64, _>("seq")?, row.try_get::<String, _>("hash")?)
        });
        Ok(head)
    }
}

/// Walks the audit trail, recomputing every hash and link, and compares the end with the
/// recorded head. On a live server the walk covers the trail as it stood when the head
/// was read: every event up to the head committed with it, and events appended during
/// the walk are left for the next check rather than mistaken for a broken end.
pub async fn verify_chain(store: &Store) -> Result<ChainReport> {
    let (head_seq, head_hash) = store.audit_head().await?;
    let mut prev_hash = "0".repeat(64);
    let mut expected_seq = 1;
    'walk: loop {
        let events = store.audit_events(expected_seq - 1, 1000).await?;
        if events.is_empty() {
            break;
        }
        for event in events {
            if event.seq > head_seq && event.seq == expected_seq {
                break 'walk;
            }
            let broken = |reason: &str| {
                Ok(ChainReport::Broken {
                    seq: event.seq,
                    reason: reason.to_string(),
                })
            };
            if event.seq != expected_seq {
                return broken(&format!("expected event {expected_seq}; events are missing"));
            }
            if event.prev_hash != prev_hash {
                return broken("its link to the previous event does not match");
            }
            if event.expected_hash() != event.hash {
                return broken("its content does not match its hash (edited)");
            }
            prev_hash = event.hash;
            expected_seq += 1;
        }
    }
    let events = expected_seq - 1;
    if events != head_seq || prev_hash != head_hash {
        return Ok(ChainReport::Broken {
            seq: events,
            reason: format!("the trail ends at event {events} but the head says {head_seq}: events were removed"),
        });
    }
    Ok(ChainReport::Intact {
        events,
        head: prev_hash,
    })
}

impl Store {
    /// The pools the session store shares: SQLite's reader and writer (sessions are read
    /// on the first and written on the second), or the Postgres pool.
    pub fn session_pools(&self) -> (Option<(&SqlitePool, &SqlitePool)>, Option<&PgPool>) {
        match self {
            Store::Sqlite(sqlite) => (Some((&sqlite.reader, &sqlite.writer)), None),
            Store::Postgres(pg) => (None, Some(pg)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_sweepers_reads_go_through_their_partial_indexes_on_sqlite() {
        let dir = std::env::temp_dir().join(format!("signoff-plan-{}", uuid::Uuid::new_v4()));
        let store = Store::connect(&format!("sqlite://{}/plan.db", dir.display()))
            .await
            .expect("a store");
        store.migrate().await.expect("the schema");
        let Store::Sqlite(sqlite) = &store else {
            panic!("a SQLite store")
        };
        for (column, index) in DUE {
            for sql in [any_due_sql(true, column, index), write::due_sql(true, column, index)] {
                let plan: Vec<String> = sqlx::query(&format!("EXPLAIN QUERY PLAN {sql}"))
                    .fetch_all(&sqlite.reader)
                    .await
                    .expect("a plan")
                    .iter()
                    .map(|step| step.try_get::<String, _>("detail").expect("its detail"))
                    .collect();
                assert!(
                    plan.iter().any(|step| step.contains(&format!(" INDEX {index} "))),
                    "{sql}: {plan:?}"
                );
            }
        }
        let _ = std::fs::remove_dir_all(dir);
    }
}
