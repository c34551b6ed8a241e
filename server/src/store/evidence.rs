//! The audit log's Merkle tree and checkpoints as stored: the frontier beside the chain's
//! head, each event's stored hashes (`audit_tree`) and the signed checkpoints. Written by
//! the engine in the batch that appends the events; read for proofs and verification.

use std::collections::HashMap;

use sqlx::{QueryBuilder, Row};

use super::{AuditEvent, Store, WriteConn, WriteTx};
use crate::Result;

/// The chain's head and the tree's frontier, as one row holds them.
pub struct HeadRow {
    pub seq: i64,
    pub hash: String,
    /// How many events the frontier covers: `seq` once the tree is built.
    pub tree_size: i64,
    pub frontier: String,
}

/// An audit event as stored: its actor and data as the canonical JSON text the writer
/// hashed (verification hashes the text itself, without parsing it).
pub struct RawEvent {
    pub seq: i64,
    pub at: i64,
    pub kind: String,
    pub request_id: Option<String>,
    pub actor: String,
    pub data: String,
    pub prev_hash: String,
    pub hash: String,
}

/// One signed checkpoint.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CheckpointRow {
    pub tree_size: i64,
    /// Base64 of the root hash.
    pub root: String,
    /// Unix milliseconds.
    pub at: i64,
    /// The signing key's id (hex).
    pub key_id: String,
    /// The C2SP signed note.
    pub note: String,
}

const CHECKPOINT_COLUMNS: &str = "tree_size, root, at, key_id, note";

const HEAD: &str = "SELECT seq, hash, tree_size, frontier FROM audit_head WHERE id = 1";

macro_rules! head_from_row {
    ($row:expr) => {{
        let row = &$row;
        HeadRow {
            seq: row.try_get("seq")?,
            hash: row.try_get("hash")?,
            tree_size: row.try_get("tree_size")?,
            frontier: row.try_get("frontier")?,
        }
    }};
}

macro_rules! checkpoint_from_row {
    ($row:expr) => {{
        let row = &$row;
        CheckpointRow {
            tree_size: row.try_get("tree_size")?,
            root: row.try_get("root")?,
            at: row.try_get("at")?,
            key_id: row.try_get("key_id")?,
            note: row.try_get("note")?,
        }
    }};
}

impl WriteTx {
    /// The chain's head and the tree's frontier, locked until commit: every writer (of any
    /// replica) appends one after another, so neither the chain nor the tree forks.
    pub async fn lock_head(&mut self) -> Result<HeadRow> {
        let lock = if self.is_sqlite() { "" } else { " FOR UPDATE" };
        let sql = format!("{HEAD}{lock}");
        on_tx!(self, |conn, Db| {
            let row = sqlx::query(&sql).fetch_one(&mut *conn).await?;
            Ok(head_from_row!(row))
        })
    }

    /// Moves the head: the chain's last event and the tree's frontier, which covers it.
    pub async fn set_head(&mut self, seq: i64, hash: &str, frontier: &str) -> Result<()> {
        on_tx!(self, |conn, Db| {
            sqlx::query("UPDATE audit_head SET seq = $1, hash = $2, tree_size = $1, frontier = $3 WHERE id = 1")
                .bind(seq)
                .bind(hash)
                .bind(frontier)
                .execute(&mut *conn)
                .await?;
        });
        Ok(())
    }

    /// Records the frontier after building the tree of events stored before it existed.
    pub async fn set_tree(&mut self, tree_size: i64, frontier: &str) -> Result<()> {
        on_tx!(self, |conn, Db| {
            sqlx::query("UPDATE audit_head SET tree_size = $1, frontier = $2 WHERE id = 1")
                .bind(tree_size)
                .bind(frontier)
                .execute(&mut *conn)
                .await?;
        });
        Ok(())
    }

    /// Each event's stored hashes, by sequence number.
    pub async fn insert_tree(&mut self, rows: &[(i64, Vec<u8>)]) -> Result<()> {
        for chunk in rows.chunks(500) {
            on_tx!(self, |conn, Db| {
                let mut query = QueryBuilder::<Db>::new("INSERT INTO audit_tree (seq, hashes) ");
                query.push_values(chunk, |mut row, (seq, hashes)| {
                    row.push_bind(*seq).push_bind(hashes.as_slice());
                });
                query.build().execute(&mut *conn).await?;
            });
        }
        Ok(())
    }

    pub async fn insert_checkpoints(&mut self, checkpoints: &[CheckpointRow]) -> Result<()> {
        for checkpoint in checkpoints {
            on_tx!(self, |conn, Db| {
                sqlx::query(
                    "INSERT INTO audit_checkpoints (tree_size, root, at, key_id, note) VALUES ($1, $2, $3, $4, $5) \
                     ON CONFLICT (tree_size) DO NOTHING",
                )
                .bind(checkpoint.tree_size)
                .bind(checkpoint.root.as_str())
                .bind(checkpoint.at)
                .bind(checkpoint.key_id.as_str())
                .bind(checkpoint.note.as_str())
                .execute(&mut *conn)
                .await?;
            });
        }
        Ok(())
    }

    /// The newest checkpoint's tree size (0 when there is none).
    pub async fn checkpointed_size(&mut self) -> Result<i64> {
        on_tx!(self, |conn, Db| {
            let row = sqlx::query("SELECT COALESCE(MAX(tree_size), 0) AS size FROM audit_checkpoints")
                .fetch_one(&mut *conn)
                .await?;
            Ok(row.try_get("size")?)
        })
    }

    /// Events after `after`, up to `limit` of them, in order (building the tree of a
    /// store from before it existed).
    pub async fn audit_events_after(&mut self, after: i64, limit: i64) -> Result<Vec<AuditEvent>> {
        on_tx!(self, |conn, Db| {
            let rows = sqlx::query(
                "SELECT seq, at, kind, request_id, actor, data, prev_hash, hash FROM audit_events \
                 WHERE seq > $1 ORDER BY seq LIMIT $2",
            )
            .bind(after)
            .bind(limit)
            .fetch_all(&mut *conn)
            .await?;
            let mut events = Vec::with_capacity(rows.len());
            for row in rows {
                events.push(super::audit::event_from_row!(row));
            }
            Ok(events)
        })
    }
}

impl Store {
    /// Events after `after`, up to `limit`, as stored. The database assembles the page as
    /// one JSON array, so it crosses from the database's thread once rather than once per
    /// row: row by row, those hand-offs were most of a full verification's time.
    pub async fn raw_audit_events(&self, after: i64, limit: i64) -> Result<Vec<RawEvent>> {
        const COLUMNS: &str = "seq, at, kind, request_id, actor, data, prev_hash, hash";
        let sql = match self {
            Store::Sqlite(_) => format!(
                "SELECT json_group_array(json_array({COLUMNS})) AS page FROM \
                 (SELECT {COLUMNS} FROM audit_events WHERE seq > $1 ORDER BY seq LIMIT $2)"
            ),
            Store::Postgres(_) => format!(
                "SELECT COALESCE(json_agg(json_build_array({COLUMNS}) ORDER BY seq), '[]')::text AS page FROM \
                 (SELECT {COLUMNS} FROM audit_events WHERE seq > $1 ORDER BY seq LIMIT $2) AS events"
            ),
        };
        let page: String = on_read_pool!(self, |pool| {
            sqlx::query(&sql)
                .bind(after)
                .bind(limit)
                .fetch_one(pool)
                .await?
                .try_get("page")?
        });
        type Row = (i64, i64, String, Option<String>, String, String, String, String);
        let rows: Vec<Row> = serde_json::from_str(&page)
            .map_err(|err| crate::Error::Internal(format!("a page of the audit trail: {err}")))?;
        let mut events: Vec<RawEvent> = rows
            .into_iter()
            .map(|(seq, at, kind, request_id, actor, data, prev_hash, hash)| RawEvent {
                seq,
                at,
                kind,
                request_id,
                actor,
                data,
                prev_hash,
                hash,
            })
            .collect();
        // SQLite keeps the inner order in practice; this holds it whatever it does.
        events.sort_by_key(|event| event.seq);
        Ok(events)
    }

    /// The newest checkpoint.
    pub async fn latest_checkpoint(&self) -> Result<Option<CheckpointRow>> {
        let found = on_read_pool!(self, |pool| {
            let sql = format!("SELECT {CHECKPOINT_COLUMNS} FROM audit_checkpoints ORDER BY tree_size DESC LIMIT 1");
            match sqlx::query(&sql).fetch_optional(pool).await? {
                Some(row) => Some(checkpoint_from_row!(row)),
                None => None,
            }
        });
        Ok(found)
    }

    /// Checkpoints of sizes in `from..=to`, in order of size.
    pub async fn checkpoints(&self, from: i64, to: i64) -> Result<Vec<CheckpointRow>> {
        let found = on_read_pool!(self, |pool| {
            let sql = format!(
                "SELECT {CHECKPOINT_COLUMNS} FROM audit_checkpoints WHERE tree_size >= $1 AND tree_size <= $2 \
                 ORDER BY tree_size"
            );
            let rows = sqlx::query(&sql).bind(from).bind(to).fetch_all(pool).await?;
            let mut found = Vec::with_capacity(rows.len());
            for row in rows {
                found.push(checkpoint_from_row!(row));
            }
            found
        });
        Ok(found)
    }

    /// The smallest checkpoint covering at least `size` events.
    pub async fn checkpoint_covering(&self, size: i64) -> Result<Option<CheckpointRow>> {
        let found = on_read_pool!(self, |pool| {
            let sql = format!(
                "SELECT {CHECKPOINT_COLUMNS} FROM audit_checkpoints WHERE tree_size >= $1 ORDER BY tree_size LIMIT 1"
            );
            match sqlx::query(&sql).bind(size).fetch_optional(pool).await? {
                Some(row) => Some(checkpoint_from_row!(row)),
                None => None,
            }
        });
        Ok(found)
    }

    /// The stored hashes of these events (by sequence number), as each stored them.
    pub async fn tree_hashes(&self, seqs: &[i64]) -> Result<HashMap<i64, Vec<u8>>> {
        let mut found = HashMap::with_capacity(seqs.len());
        for chunk in seqs.chunks(500) {
            on_read_pool!(self, |pool| {
                let mut query = QueryBuilder::new("SELECT seq, hashes FROM audit_tree WHERE seq IN (");
                let mut list = query.separated(", ");
                for seq in chunk {
                    list.push_bind(*seq);
                }
                query.push(")");
                for row in query.build().fetch_all(pool).await? {
                    found.insert(row.try_get::<i64, _>("seq")?, row.try_get::<Vec<u8>, _>("hashes")?);
                }
            });
        }
        Ok(found)
    }

    /// The first and last sequence numbers of events at or after `since` and before
    /// `until` (Unix milliseconds); `(1, 0)` when there are none.
    pub async fn audit_range(&self, since: Option<i64>, until: Option<i64>) -> Result<(i64, i64)> {
        let range = on_read_pool!(self, |pool| {
            let row = sqlx::query(
                "SELECT COALESCE(MIN(seq), 1) AS first, COALESCE(MAX(seq), 0) AS last FROM audit_events \
                 WHERE at >= $1 AND at < $2",
            )
            .bind(since.unwrap_or(i64::MIN))
            .bind(until.unwrap_or(i64::MAX))
            .fetch_one(pool)
            .await?;
            (row.try_get::<i64, _>("first")?, row.try_get::<i64, _>("last")?)
        });
        Ok(range)
    }

    /// The head and the tree's frontier as committed.
    pub async fn tree_head(&self) -> Result<HeadRow> {
        let head = on_read_pool!(self, |pool| {
            let row = sqlx::query(HEAD).fetch_one(pool).await?;
            head_from_row!(row)
        });
        Ok(head)
    }
}
