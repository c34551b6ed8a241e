//! What the in-memory table of credentials is loaded from, the counter that says it is
//! out of date, and the writer's check that the credentials behind a batch still stand
//! (see `crate::credentials` and ARCHITECTURE.md, "Who may do what").

use std::collections::HashSet;

use sqlx::{QueryBuilder, Row};
use time::OffsetDateTime;

use super::records::{Agent, agent_from_row, from_json, from_millis, millis};
use super::signin::{TokenRecord, token_from_row};
use super::{Store, WriteConn, WriteTx};
use crate::Result;

/// Every credential that stands now, by hash.
pub struct ActiveCredentials {
    /// The version they were read at, or a later one.
    pub version: i64,
    /// (key hash, agent), the agent's `key_hash` set.
    pub keys: Vec<(String, Agent)>,
    /// (token hash, token).
    pub tokens: Vec<(String, TokenRecord)>,
}

impl Store {
    /// The counter every change to an agent, a key or a terminal token bumps.
    pub async fn credential_version(&self) -> Result<i64> {
        let version = on_read_pool!(self, |pool| {
            sqlx::query_scalar::<_, i64>("SELECT version FROM credential_version WHERE id = 1")
                .fetch_one(pool)
                .await?
        });
        Ok(version)
    }

    /// Every active key with its agent, and every terminal token neither revoked nor
    /// expired at `now`. The version is read first, so a change made meanwhile is seen
    /// again at the next check rather than missed.
    pub async fn active_credentials(&self, now: OffsetDateTime) -> Result<ActiveCredentials> {
        let version = self.credential_version().await?;
        let (keys, tokens) = on_read_pool!(self, |pool| {
            let mut keys = Vec::new();
            for row in sqlx::query(
                "SELECT k.key_hash, a.id, a.name, a.owner, a.created_at FROM api_keys k \
                 JOIN agents a ON a.id = k.agent_id WHERE k.revoked_at IS NULL",
            )
            .fetch_all(pool)
            .await?
            {
                let key_hash: String = row.try_get("key_hash")?;
                let mut agent = agent_from_row!(row);
                agent.key_hash = Some(key_hash.clone());
                keys.push((key_hash, agent));
            }
            let mut tokens = Vec::new();
            for row in sqlx::query(
                "SELECT token_hash, id, identity, client_name, created_at, expires_at FROM terminal_tokens \
                 WHERE revoked_at IS NULL AND expires_at > $1",
            )
            .bind(millis(now))
            .fetch_all(pool)
            .await?
            {
                tokens.push((row.try_get("token_hash")?, token_from_row!(row)));
            }
            (keys, tokens)
        });
        Ok(ActiveCredentials { version, keys, tokens })
    }
}

impl WriteTx {
    /// Of these key and token hashes, the ones that still stand, read in the batch's
    /// transaction (so after every revocation committed before it) in one statement.
    pub async fn standing_credentials(
        &mut self,
        key_hashes: &[&str],
        token_hashes: &[&str],
        now: OffsetDateTime,
    ) -> Result<HashSet<String>> {
        let mut standing = HashSet::new();
        if key_hashes.is_empty() && token_hashes.is_empty() {
            return Ok(standing);
        }
        on_tx!(self, |conn, Db| {
            let mut query = QueryBuilder::<Db>::new(
                "SELECT key_hash AS hash FROM api_keys WHERE revoked_at IS NULL AND key_hash IN (",
            );
            let mut list = query.separated(", ");
            // `IN ()` is not SQL: an empty list holds one hash nothing has.
            list.push_bind("");
            for hash in key_hashes {
                list.push_bind(*hash);
            }
            query.push(
                ") UNION ALL SELECT token_hash AS hash FROM terminal_tokens WHERE revoked_at IS NULL AND expires_at > ",
            );
            query.push_bind(millis(now));
            query.push(" AND token_hash IN (");
            let mut list = query.separated(", ");
            list.push_bind("");
            for hash in token_hashes {
                list.push_bind(*hash);
            }
            query.push(")");
            for row in query.build().fetch_all(&mut *conn).await? {
                standing.insert(row.try_get::<String, _>("hash")?);
            }
        });
        Ok(standing)
    }
}
