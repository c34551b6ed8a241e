//! The write side of the store: SQL primitives over one open transaction, used by the
//! lifecycle engine for a whole batch. They read and write rows; they decide nothing.
//! Rows are written with multi-row statements, so a batch costs a handful of round trips
//! whatever its size (see ARCHITECTURE.md, "The write path").

use sqlx::pool::PoolConnection;
use sqlx::{Database, Postgres, QueryBuilder, Row, Sqlite, TransactionManager};

use signoff_app::{AgentId, Identity, RequestId};

use super::records::{
    Agent, DecisionRecord, StoredRequest, agent_from_row, decision_from_row, millis, request_from_row, to_json,
};
use super::{DECISION_COLUMNS, REQUEST_COLUMNS, Store};
use crate::{Error, Result};

/// Rows per multi-row statement: well under SQLite's 32,766 bound parameters.
const ROWS_PER_STATEMENT: usize = 500;

/// An open write transaction on either store.
/// Rolled back when dropped uncommitted, like `sqlx::Transaction`, but over a connection
/// it hands back at commit, so the engine can keep it for the next batch.
pub struct WriteTx(Option<WriteConn>);

/// A connection to write through: SQLite's one writer, or one of Postgres's pool. The
/// engine keeps it from batch to batch while commands keep coming, instead of handing it
/// back to the pool (which pings it first) and waiting for it again each time (see
/// ARCHITECTURE.md, "The write path").
pub enum WriteConn {
    Sqlite(PoolConnection<Sqlite>),
    Postgres(PoolConnection<Postgres>),
}

impl WriteConn {
    /// Waits for a connection to write through.
    pub async fn acquire(store: &Store) -> Result<WriteConn> {
        Ok(match store {
            Store::Sqlite(sqlite) => WriteConn::Sqlite(sqlite.writer.acquire().await?),
            Store::Postgres(pg) => WriteConn::Postgres(pg.acquire().await?),
        })
    }
}

/// Runs `$body` with `$conn` the transaction's connection and `$Db` its database type.
macro_rules! on_tx {
    ($tx:expr, |$conn:ident, $Db:ident| $body:expr) => {
        match $tx.open()? {
            WriteConn::Sqlite(pooled) => {
                #[allow(dead_code)]
                type $Db = sqlx::Sqlite;
                let $conn = &mut **pooled;
                $body
            }
            WriteConn::Postgres(pooled) => {
                #[allow(dead_code)]
                type $Db = sqlx::Postgres;
                let $conn = &mut **pooled;
                $body
            }
        }
    };
}

/// Pending requests whose `column` is at or before `$1`, soonest first, at most `$2`.
pub(super) fn due_sql(sqlite: bool, column: &str, index: &str) -> String {
    let requests = super::requests_through(sqlite, index);
    format!(
        "SELECT {REQUEST_COLUMNS} FROM {requests} JOIN agents a ON a.id = r.agent_id \
         WHERE r.status = 'pending' AND r.{column} <= $1 ORDER BY r.{column} LIMIT $2"
    )
}

/// One audit event, hashed and ready to store.
#[derive(Clone, Debug)]
pub struct AuditRow {
    pub seq: i64,
    pub at: i64,
    pub kind: &'static str,
    pub request_id: Option<String>,
    /// Canonical JSON.
    pub actor: String,
    /// Canonical JSON.
    pub data: String,
    pub prev_hash: String,
    pub hash: String,
}

/// A new request row and the idempotency key it was created under.
pub struct NewRow<'a> {
    pub request: &'a StoredRequest,
    pub idempotency_key: Option<&'a str>,
}

impl WriteTx {
    /// Opens a write transaction on `conn`: on SQLite it holds the database's one write lock.
    pub async fn begin(mut conn: WriteConn) -> Result<WriteTx> {
        match &mut conn {
            WriteConn::Sqlite(conn) => {
                <Sqlite as Database>::TransactionManager::begin(&mut **conn, Some("BEGIN IMMEDIATE".into())).await?
            }
            WriteConn::Postgres(conn) => <Postgres as Database>::TransactionManager::begin(&mut **conn, None).await?,
        }
        Ok(WriteTx(Some(conn)))
    }

    /// Commits, and hands the connection back for the next transaction.
    pub async fn commit(mut self) -> Result<WriteConn> {
        match self.open()? {
            WriteConn::Sqlite(conn) => <Sqlite as Database>::TransactionManager::commit(&mut **conn).await?,
            WriteConn::Postgres(conn) => <Postgres as Database>::TransactionManager::commit(&mut **conn).await?,
        }
        self.0.take().ok_or_else(ended)
    }

    /// The connection, while the transaction is open.
    pub(super) fn open(&mut self) -> Result<&mut WriteConn> {
        self.0.as_mut().ok_or_else(ended)
    }

    pub(super) fn is_sqlite(&self) -> bool {
        matches!(self.0, Some(WriteConn::Sqlite(_)))
    }

    /// The requests with these ids (those that exist).
    pub async fn requests(&mut self, ids: &[RequestId]) -> Result<Vec<StoredRequest>> {
        let mut found = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(ROWS_PER_STATEMENT) {
            on_tx!(self, |conn, Db| {
                let mut query = QueryBuilder::<Db>::new(format!(
                    "SELECT {REQUEST_COLUMNS} FROM requests r JOIN agents a ON a.id = r.agent_id WHERE r.id IN ("
                ));
                let mut list = query.separated(", ");
                for id in chunk {
                    list.push_bind(id.to_string());
                }
                query.push(")");
                for row in query.build().fetch_all(&mut *conn).await? {
                    found.push(request_from_row!(row));
                }
            });
        }
        Ok(found)
    }

    /// The decisions recorded on these requests.
    pub async fn decisions(&mut self, ids: &[RequestId]) -> Result<Vec<DecisionRecord>> {
        let mut found = Vec::new();
        for chunk in ids.chunks(ROWS_PER_STATEMENT) {
            on_tx!(self, |conn, Db| {
                let mut query = QueryBuilder::<Db>::new(format!(
                    "SELECT {DECISION_COLUMNS} FROM decisions WHERE request_id IN ("
                ));
                let mut list = query.separated(", ");
                for id in chunk {
                    list.push_bind(id.to_string());
                }
                query.push(") ORDER BY decided_at, id");
                for row in query.build().fetch_all(&mut *conn).await? {
                    found.push(decision_from_row!(row));
                }
            });
        }
        Ok(found)
    }

    /// Requests created under these (agent, idempotency key) pairs, with their keys.
    pub async fn idempotent(&mut self, keys: &[(AgentId, &str)]) -> Result<Vec<(StoredRequest, String)>> {
        let mut found = Vec::new();
        for chunk in keys.chunks(ROWS_PER_STATEMENT / 2) {
            on_tx!(self, |conn, Db| {
                let mut query = QueryBuilder::<Db>::new(format!(
                    "SELECT {REQUEST_COLUMNS}, r.idempotency_key FROM requests r JOIN agents a ON a.id = r.agent_id WHERE "
                ));
                for (n, (agent, key)) in chunk.iter().enumerate() {
                    if n > 0 {
                        query.push(" OR ");
                    }
                    query.push("(r.agent_id = ");
                    query.push_bind(agent.to_string());
                    query.push(" AND r.idempotency_key = ");
                    query.push_bind(*key);
                    query.push(")");
                }
                for row in query.build().fetch_all(&mut *conn).await? {
                    let key: String = row.try_get("idempotency_key")?;
                    found.push((request_from_row!(row), key));
                }
            });
        }
        Ok(found)
    }

    /// Pending requests past their time, then those whose escalation or reminder is due
    /// (each read by its own partial index), at most `limit` in all.
    pub async fn due(&mut self, now: i64, limit: usize) -> Result<Vec<StoredRequest>> {
        let mut due: Vec<StoredRequest> = Vec::new();
        for (column, index) in super::DUE {
            let room = limit.saturating_sub(due.len());
            if room == 0 {
                break;
            }
            let sql = due_sql(self.is_sqlite(), column, index);
            let found: Vec<StoredRequest> = on_tx!(self, |conn, Db| {
                let rows = sqlx::query(&sql)
                    .bind(now)
                    .bind(room as i64)
                    .fetch_all(&mut *conn)
                    .await?;
                let mut found = Vec::with_capacity(rows.len());
                for row in rows {
                    found.push(request_from_row!(row));
                }
                found
            });
            for request in found {
                if !due.iter().any(|seen| seen.id == request.id) {
                    due.push(request);
                }
            }
        }
        Ok(due)
    }

    pub async fn insert_requests(&mut self, rows: &[NewRow<'_>]) -> Result<()> {
        for chunk in rows.chunks(ROWS_PER_STATEMENT / 2) {
            on_tx!(self, |conn, Db| {
                let mut query = QueryBuilder::<Db>::new(
                    "INSERT INTO requests (id, agent_id, on_behalf_of, action, resource, title, reason, labels, payload, \
                     diff, context, digest, status, policy, approvals, created_at, expires_at, decided_at, result, \
                     idempotency_key, body_hash, break_glass, escalates_at, started_at, remind_at, callback_url, \
                     receipt, receipt_used_at) ",
                );
                query.push_values(chunk, |mut row, new| {
                    let request = new.request;
                    row.push_bind(request.id.to_string())
                        .push_bind(request.agent.id.to_string())
                        .push_bind(request.on_behalf_of.as_deref())
                        .push_bind(request.action.as_str())
                        .push_bind(request.resource.as_str())
                        .push_bind(request.title.as_str())
                        .push_bind(request.reason.as_str())
                        .push_bind(to_json(&request.labels))
                        .push_bind(to_json(&request.payload))
                        .push_bind(request.diff.as_deref())
                        .push_bind(request.context.as_ref().map(to_json))
                        .push_bind(request.digest.as_str())
                        .push_bind(request.status.as_str())
                        .push_bind(to_json(&request.policy))
                        .push_bind(i64::from(request.approvals))
                        .push_bind(millis(request.created_at))
                        .push_bind(millis(request.expires_at))
                        .push_bind(request.decided_at.map(millis))
                        .push_bind(request.result.as_ref().map(to_json))
                        .push_bind(new.idempotency_key)
                        .push_bind(request.body_hash.as_deref())
                        .push_bind(i64::from(request.break_glass))
                        .push_bind(request.escalates_at.map(millis))
                        .push_bind(request.started_at.map(millis))
                        .push_bind(request.remind_at.map(millis))
                        .push_bind(request.callback_url.as_deref())
                        .push_bind(request.receipt.as_deref())
                        .push_bind(request.receipt_used_at.map(millis));
                });
                query.build().execute(&mut *conn).await?;
            });
        }
        let labels: Vec<(&StoredRequest, &String, &String)> = rows
            .iter()
            .flat_map(|new| new.request.labels.iter().map(|(key, value)| (new.request, key, value)))
            .collect();
        for chunk in labels.chunks(ROWS_PER_STATEMENT) {
            on_tx!(self, |conn, Db| {
                let mut query =
                    QueryBuilder::<Db>::new("INSERT INTO request_labels (request_id, key, value, created_at) ");
                query.push_values(chunk, |mut row, (request, key, value)| {
                    row.push_bind(request.id.to_string())
                        .push_bind(key.as_str())
                        .push_bind(value.as_str())
                        .push_bind(millis(request.created_at));
                });
                query.build().execute(&mut *conn).await?;
            });
        }
        Ok(())
    }

    /// Writes the changing columns of requests that already exist, many rows per
    /// statement (`UPDATE … FROM (VALUES …)`; SQLite names the columns `columnN`).
    pub async fn update_requests(&mut self, requests: &[&StoredRequest]) -> Result<()> {
        let (set, alias) = if self.is_sqlite() {
            (
                "UPDATE requests SET status = v.column2, approvals = v.column3, decided_at = v.column4, \
                 result = v.column5, break_glass = v.column6, escalates_at = v.column7, \
                 started_at = v.column8, remind_at = v.column9, receipt = v.column10, \
                 receipt_used_at = v.column11 FROM (",
                ") AS v WHERE requests.id = v.column1",
            )
        } else {
            (
                "UPDATE requests SET status = v.status, approvals = v.approvals, decided_at = v.decided_at, \
                 result = v.result, break_glass = v.break_glass, escalates_at = v.escalates_at, \
                 started_at = v.started_at, remind_at = v.remind_at, receipt = v.receipt, \
                 receipt_used_at = v.receipt_used_at FROM (",
                ") AS v (id, status, approvals, decided_at, result, break_glass, escalates_at, started_at, remind_at, \
                 receipt, receipt_used_at) \
                 WHERE requests.id = v.id",
            )
        };
        for chunk in requests.chunks(ROWS_PER_STATEMENT / 2) {
            on_tx!(self, |conn, Db| {
                let mut query = QueryBuilder::<Db>::new(set);
                query.push_values(chunk, |mut row, request| {
                    row.push_bind(request.id.to_string())
                        .push_bind(request.status.as_str())
                        .push_bind(i64::from(request.approvals))
                        .push_bind(request.decided_at.map(millis))
                        .push_bind(request.result.as_ref().map(to_json))
                        .push_bind(i64::from(request.break_glass))
                        .push_bind(request.escalates_at.map(millis))
                        .push_bind(request.started_at.map(millis))
                        .push_bind(request.remind_at.map(millis))
                        .push_bind(request.receipt.as_deref())
                        .push_bind(request.receipt_used_at.map(millis));
                });
                query.push(alias);
                query.build().execute(&mut *conn).await?;
            });
        }
        Ok(())
    }

    pub async fn insert_decisions(&mut self, decisions: &[&DecisionRecord]) -> Result<()> {
        for chunk in decisions.chunks(ROWS_PER_STATEMENT / 2) {
            on_tx!(self, |conn, Db| {
                let mut query = QueryBuilder::<Db>::new(format!("INSERT INTO decisions (id, {DECISION_COLUMNS}) "));
                query.push_values(chunk, |mut row, decision| {
                    let reviewer = &decision.reviewer;
                    row.push_bind(uuid::Uuid::now_v7().to_string())
                        .push_bind(decision.request_id.to_string())
                        .push_bind(reviewer.issuer.as_str())
                        .push_bind(reviewer.subject.as_str())
                        .push_bind(reviewer.email.as_deref())
                        .push_bind(reviewer.name.as_deref())
                        .push_bind(to_json(&reviewer.groups))
                        .push_bind(decision.verdict.as_str())
                        .push_bind(decision.comment.as_str())
                        .push_bind(decision.channel.as_str())
                        .push_bind(millis(decision.decided_at));
                });
                query.build().execute(&mut *conn).await?;
            });
        }
        Ok(())
    }

    pub async fn insert_audit(&mut self, events: &[AuditRow]) -> Result<()> {
        for chunk in events.chunks(ROWS_PER_STATEMENT) {
            on_tx!(self, |conn, Db| {
                let mut query = QueryBuilder::<Db>::new(
                    "INSERT INTO audit_events (seq, at, kind, request_id, actor, data, prev_hash, hash) ",
                );
                query.push_values(chunk, |mut row, event| {
                    row.push_bind(event.seq)
                        .push_bind(event.at)
                        .push_bind(event.kind)
                        .push_bind(event.request_id.as_deref())
                        .push_bind(event.actor.as_str())
                        .push_bind(event.data.as_str())
                        .push_bind(event.prev_hash.as_str())
                        .push_bind(event.hash.as_str());
                });
                query.build().execute(&mut *conn).await?;
            });
        }
        Ok(())
    }
}

/// A device code as a poll sees it.
pub struct DeviceCodeRow {
    pub client_name: Option<String>,
    pub expires_at: i64,
    pub last_polled_at: Option<i64>,
    pub state: String,
    /// JSON of the confirming reviewer's identity, once confirmed.
    pub identity: Option<String>,
}

/// A terminal token to store.
pub struct NewTokenRow<'a> {
    pub id: &'a str,
    pub token_hash: &'a str,
    pub identity: &'a Identity,
    pub client_name: Option<&'a str>,
    pub created_at: i64,
    pub expires_at: i64,
}

impl WriteTx {
    pub async fn agent_by_name(&mut self, name: &str) -> Result<Option<Agent>> {
        on_tx!(self, |conn, Db| {
            let row = sqlx::query("SELECT id, name, owner, created_at FROM agents WHERE name = $1")
                .bind(name)
                .fetch_optional(&mut *conn)
                .await?;
            Ok(match row {
                Some(row) => Some(agent_from_row!(row)),
                None => None,
            })
        })
    }

    pub async fn insert_agent(&mut self, agent: &Agent) -> Result<()> {
        on_tx!(self, |conn, Db| {
            sqlx::query("INSERT INTO agents (id, name, owner, created_at) VALUES ($1, $2, $3, $4)")
                .bind(agent.id.to_string())
                .bind(&agent.name)
                .bind(&agent.owner)
                .bind(millis(agent.created_at))
                .execute(&mut *conn)
                .await?;
        });
        Ok(())
    }

    pub async fn set_agent_description(&mut self, agent: AgentId, description: &str) -> Result<()> {
        on_tx!(self, |conn, Db| {
            sqlx::query("UPDATE agents SET description = $1 WHERE id = $2")
                .bind(description)
                .bind(agent.to_string())
                .execute(&mut *conn)
                .await?;
        });
        Ok(())
    }

    pub async fn set_agent_owner(&mut self, agent: AgentId, owner: &str) -> Result<()> {
        on_tx!(self, |conn, Db| {
            sqlx::query("UPDATE agents SET owner = $1 WHERE id = $2")
                .bind(owner)
                .bind(agent.to_string())
                .execute(&mut *conn)
                .await?;
        });
        Ok(())
    }

    pub async fn insert_api_key(&mut self, agent: AgentId, key_hash: &str, key_prefix: &str, now: i64) -> Result<()> {
        on_tx!(self, |conn, Db| {
            sqlx::query(
                "INSERT INTO api_keys (id, agent_id, key_hash, key_prefix, created_at) VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(uuid::Uuid::now_v7().to_string())
            .bind(agent.to_string())
            .bind(key_hash)
            .bind(key_prefix)
            .bind(now)
            .execute(&mut *conn)
            .await?;
        });
        Ok(())
    }

    /// Revokes the agent's active keys; returns how many.
    pub async fn revoke_api_keys(&mut self, agent: AgentId, now: i64) -> Result<u64> {
        on_tx!(self, |conn, Db| {
            Ok(
                sqlx::query("UPDATE api_keys SET revoked_at = $1 WHERE agent_id = $2 AND revoked_at IS NULL")
                    .bind(now)
                    .bind(agent.to_string())
                    .execute(&mut *conn)
                    .await?
                    .rows_affected(),
            )
        })
    }

    /// Records the answer to a pending, unexpired code; false when it was not.
    pub async fn answer_device_code(
        &mut self,
        user_code: &str,
        identity: &Identity,
        state: &str,
        now: i64,
    ) -> Result<bool> {
        on_tx!(self, |conn, Db| {
            let changed = sqlx::query(
                "UPDATE device_codes SET state = $1, identity = $2 WHERE user_code = $3 AND state = 'pending' AND expires_at > $4",
            )
            .bind(state)
            .bind(to_json(identity))
            .bind(user_code)
            .bind(now)
            .execute(&mut *conn)
            .await?
            .rows_affected();
            Ok(changed == 1)
        })
    }

    /// Reads a device code for a poll and records the poll's time.
    pub async fn poll_device_code(&mut self, code_hash: &str, now: i64) -> Result<Option<DeviceCodeRow>> {
        on_tx!(self, |conn, Db| {
            let row = sqlx::query(
                "SELECT client_name, expires_at, last_polled_at, state, identity FROM device_codes WHERE code_hash = $1",
            )
            .bind(code_hash)
            .fetch_optional(&mut *conn)
            .await?;
            let Some(row) = row else { return Ok(None) };
            sqlx::query("UPDATE device_codes SET last_polled_at = $1 WHERE code_hash = $2")
                .bind(now)
                .bind(code_hash)
                .execute(&mut *conn)
                .await?;
            Ok(Some(DeviceCodeRow {
                client_name: row.try_get("client_name")?,
                expires_at: row.try_get("expires_at")?,
                last_polled_at: row.try_get("last_polled_at")?,
                state: row.try_get("state")?,
                identity: row.try_get("identity")?,
            }))
        })
    }

    /// Marks a confirmed code used. Of two polls racing to it, exactly one gets true.
    pub async fn claim_device_code(&mut self, code_hash: &str) -> Result<bool> {
        on_tx!(self, |conn, Db| {
            let claimed =
                sqlx::query("UPDATE device_codes SET state = 'used' WHERE code_hash = $1 AND state = 'approved'")
                    .bind(code_hash)
                    .execute(&mut *conn)
                    .await?
                    .rows_affected();
            Ok(claimed == 1)
        })
    }

    pub async fn insert_terminal_token(&mut self, token: &NewTokenRow<'_>) -> Result<()> {
        on_tx!(self, |conn, Db| {
            sqlx::query(
                "INSERT INTO terminal_tokens (id, token_hash, issuer, subject, identity, client_name, created_at, expires_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(token.id)
            .bind(token.token_hash)
            .bind(&token.identity.issuer)
            .bind(&token.identity.subject)
            .bind(to_json(token.identity))
            .bind(token.client_name)
            .bind(token.created_at)
            .bind(token.expires_at)
            .execute(&mut *conn)
            .await?;
        });
        Ok(())
    }

    /// Revokes an active token (of `owner` (issuer, subject), or anyone's); false if none.
    pub async fn revoke_terminal_token(&mut self, id: &str, owner: Option<(&str, &str)>, now: i64) -> Result<bool> {
        let (issuer, subject) = owner.unwrap_or_default();
        on_tx!(self, |conn, Db| {
            let changed = sqlx::query(
                "UPDATE terminal_tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL AND ($3 OR (issuer = $4 AND subject = $5))",
            )
            .bind(now)
            .bind(id)
            .bind(owner.is_none())
            .bind(issuer)
            .bind(subject)
            .execute(&mut *conn)
            .await?
            .rows_affected();
            Ok(changed == 1)
        })
    }
}

impl Drop for WriteTx {
    /// Rolls back a transaction that was not committed (the batch failed): the rollback is
    /// queued on the connection before anything else can use it, as `sqlx::Transaction` does.
    fn drop(&mut self) {
        match &mut self.0 {
            Some(WriteConn::Sqlite(conn)) => <Sqlite as Database>::TransactionManager::start_rollback(&mut **conn),
            Some(WriteConn::Postgres(conn)) => <Postgres as Database>::TransactionManager::start_rollback(&mut **conn),
            None => {}
        }
    }
}

fn ended() -> Error {
    Error::Internal("the write transaction has ended".into())
}
