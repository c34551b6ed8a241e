//! Reads for the admin console: when each agent last asked, and the audit trail searched
//! and paged newest first. Reads only, on the read pool.

use std::collections::HashMap;

use sqlx::Row;
use time::OffsetDateTime;

use signoff_app::AgentId;

use super::Store;
use super::audit::{AuditEvent, event_from_row};
use super::records::{from_millis, parse_id};
use crate::Result;

/// Which audit events to show: a page before or after a sequence number, narrowed.
#[derive(Clone, Debug, Default)]
pub struct AuditQuery {
    /// Events older than this sequence number (the next page down).
    pub before: Option<i64>,
    /// Events newer than this sequence number (the page above).
    pub after: Option<i64>,
    /// Kinds starting with this, e.g. `policy.` or `agent.`.
    pub kind_prefix: String,
    /// Text anywhere in the actor (an email, an agent's name), any case.
    pub actor: String,
    pub request_id: Option<String>,
    pub limit: i64,
}

/// `text` for a LIKE pattern: its own `%`, `_` and `\\` match themselves.
fn like_escaped(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

impl Store {
    /// When each agent's newest request was made (agents that never asked are absent).
    pub async fn agents_last_request(&self) -> Result<HashMap<AgentId, OffsetDateTime>> {
        on_read_pool!(self, |pool| {
            let rows = sqlx::query("SELECT agent_id, MAX(created_at) AS last FROM requests GROUP BY agent_id")
                .fetch_all(pool)
                .await?;
            let mut last = HashMap::with_capacity(rows.len());
            for row in rows {
                let agent: AgentId = parse_id(&row.try_get::<String, _>("agent_id")?)?;
                last.insert(agent, from_millis(row.try_get("last")?)?);
            }
            Ok(last)
        })
    }

    /// One page of the audit trail, newest first.
    pub async fn audit_search(&self, query: &AuditQuery) -> Result<Vec<AuditEvent>> {
        let kind =
            (!query.kind_prefix.trim().is_empty()).then(|| format!("{}%", like_escaped(query.kind_prefix.trim())));
        let actor =
            (!query.actor.trim().is_empty()).then(|| format!("%{}%", like_escaped(&query.actor.trim().to_lowercase())));
        // Paging up reads the oldest events above `after` first, then shows them newest first.
        let order = if query.after.is_some() && query.before.is_none() {
            "ASC"
        } else {
            "DESC"
        };
        let sql = format!(
            "SELECT seq, at, kind, request_id, actor, data, prev_hash, hash FROM audit_events \
             WHERE ($1 IS NULL OR seq < $1) AND ($2 IS NULL OR seq > $2) \
             AND ($3 IS NULL OR kind LIKE $3 ESCAPE '\\') \
             AND ($4 IS NULL OR LOWER(actor) LIKE $4 ESCAPE '\\') \
             AND ($5 IS NULL OR request_id = $5) \
             ORDER BY seq {order} LIMIT $6"
        );
        let mut events = on_read_pool!(self, |pool| {
            let rows = sqlx::query(&sql)
                .bind(query.before)
                .bind(query.after)
                .bind(kind)
                .bind(actor)
                .bind(query.request_id.clone())
                .bind(query.limit)
                .fetch_all(pool)
                .await?;
            let mut events = Vec::with_capacity(rows.len());
            for row in rows {
                events.push(event_from_row!(row));
            }
            events
        });
        if order == "ASC" {
            events.reverse();
        }
        Ok(events)
    }
}
