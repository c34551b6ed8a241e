//! Reading requests as reviewers do: the queue and history, filtered and paginated.

use sqlx::Row;
use time::OffsetDateTime;

use signoff_app::{RequestId, Status};

use super::records::{DecisionRecord, StoredRequest, decision_from_row, millis, request_from_row};
use super::{DECISION_COLUMNS, REQUEST_COLUMNS, Store};
use crate::{Error, Result};

/// Which requests, in which order, from where.
#[derive(Clone, Debug, Default)]
pub struct RequestFilter {
    /// Any of these statuses; all when empty.
    pub statuses: Vec<Status>,
    pub action: Option<String>,
    /// Agent name.
    pub agent: Option<String>,
    pub label: Option<(String, String)>,
    /// Someone (email or subject) who decided it.
    pub decided_by: Option<String>,
    pub created_from: Option<OffsetDateTime>,
    pub created_until: Option<OffsetDateTime>,
    /// Leave out what this person has decided or is a party to ("needs my vote").
    pub open_to: Option<Voter>,
    pub newest_first: bool,
    /// Soonest expiry first (the queue's "by urgency"); no cursor then.
    pub by_expiry: bool,
    pub after: Option<Cursor>,
    pub limit: i64,
}

#[derive(Clone, Debug)]
pub struct Voter {
    pub issuer: String,
    pub subject: String,
    pub email: Option<String>,
}

/// A position in a listing: the last row's creation time and id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cursor {
    pub created_at: i64,
    pub id: String,
}

impl Cursor {
    pub fn after(request: &StoredRequest) -> Cursor {
        Cursor {
            created_at: millis(request.created_at),
            id: request.id.to_string(),
        }
    }

    pub fn encode(&self) -> String {
        format!("{}.{}", self.created_at, self.id)
    }

    pub fn decode(text: &str) -> Result<Cursor> {
        let invalid = || Error::BadRequest("the cursor is not one this server gave out".into());
        let (at, id) = text.split_once('.').ok_or_else(invalid)?;
        let id: RequestId = id.parse().map_err(|_| invalid())?;
        Ok(Cursor {
            created_at: at.parse().map_err(|_| invalid())?,
            id: id.to_string(),
        })
    }
}

enum Arg {
    Text(String),
    Int(i64),
}

/// SQL text and its arguments, numbered as they are added.
struct Sql {
    text: String,
    args: Vec<Arg>,
}

impl Sql {
    fn arg(&mut self, arg: Arg) -> String {
        self.args.push(arg);
        format!("${}", self.args.len())
    }

    fn text(&mut self, value: &str) -> String {
        self.arg(Arg::Text(value.to_string()))
    }

    fn int(&mut self, value: i64) -> String {
        self.arg(Arg::Int(value))
    }
}

/// Builds a query from `$sql` with its arguments bound in order.
macro_rules! bound_query {
    ($sql:expr) => {{
        let mut query = sqlx::query(&$sql.text);
        for arg in &$sql.args {
            query = match arg {
                Arg::Text(text) => query.bind(text.as_str()),
                Arg::Int(value) => query.bind(*value),
            };
        }
        query
    }};
}

impl Store {
    /// A page of requests matching `filter`.
    pub async fn list_requests(&self, filter: &RequestFilter) -> Result<Vec<StoredRequest>> {
        // With a label, the scan is driven by the label index (key, value, created_at),
        // newest first, so rare and common labels are both read in order.
        let (from, order_at, order_id) = match &filter.label {
            Some(_) => (
                "request_labels l JOIN requests r ON r.id = l.request_id JOIN agents a ON a.id = r.agent_id",
                "l.created_at",
                "l.request_id",
            ),
            None => ("requests r JOIN agents a ON a.id = r.agent_id", "r.created_at", "r.id"),
        };
        let mut sql = Sql {
            text: format!("SELECT {REQUEST_COLUMNS} FROM {from} WHERE 1 = 1"),
            args: Vec::new(),
        };
        if !filter.statuses.is_empty() {
            let list: Vec<String> = filter.statuses.iter().map(|status| sql.text(status.as_str())).collect();
            sql.text += &format!(" AND r.status IN ({})", list.join(", "));
            if !filter.statuses.contains(&Status::Pending) {
                // Said as a constant too, so even a generic plan of this statement can use
                // Postgres' index of decided requests (`requests_history`).
                sql.text += " AND r.status <> 'pending'";
            }
        }
        if let Some(action) = &filter.action {
            let p = sql.text(action);
            sql.text += &format!(" AND r.action = {p}");
        }
        if let Some(agent) = &filter.agent {
            let p = sql.text(agent);
            sql.text += &format!(" AND a.name = {p}");
        }
        if let Some((key, value)) = &filter.label {
            let (k, v) = (sql.text(key), sql.text(value));
            sql.text += &format!(" AND l.key = {k} AND l.value = {v}");
        }
        if let Some(person) = &filter.decided_by {
            // An email address names people by email, anything else by subject: one
            // indexed column either way.
            let column = if person.contains('@') {
                "d.reviewer_email"
            } else {
                "d.reviewer_subject"
            };
            let p = sql.text(person);
            // A pending request with a decision has an approval (a deny decides it), so
            // pending requests without one, the newest rows of every store, are passed over
            // without looking for decisions: 10,000 waiting cost 10,000 lookups before.
            sql.text += &format!(
                " AND (r.status <> 'pending' OR r.approvals > 0) \
                 AND EXISTS (SELECT 1 FROM decisions d WHERE d.request_id = r.id AND {column} = {p})"
            );
        }
        if let Some(from) = filter.created_from {
            let p = sql.int(millis(from));
            sql.text += &format!(" AND r.created_at >= {p}");
        }
        if let Some(until) = filter.created_until {
            let p = sql.int(millis(until));
            sql.text += &format!(" AND r.created_at < {p}");
        }
        if let Some(voter) = &filter.open_to {
            let (issuer, subject) = (sql.text(&voter.issuer), sql.text(&voter.subject));
            let email = sql.text(&voter.email.as_deref().unwrap_or_default().to_lowercase());
            sql.text += &format!(
                " AND NOT EXISTS (SELECT 1 FROM decisions d WHERE d.request_id = r.id AND d.reviewer_issuer = {issuer} AND d.reviewer_subject = {subject}) \
                 AND (r.on_behalf_of IS NULL OR (LOWER(r.on_behalf_of) <> {email} AND r.on_behalf_of <> {subject})) \
                 AND (a.owner IS NULL OR (LOWER(a.owner) <> {email} AND a.owner <> {subject}))"
            );
        }
        if filter.by_expiry {
            let limit = sql.int(filter.limit.clamp(1, 500));
            sql.text += &format!(" ORDER BY r.expires_at, r.id LIMIT {limit}");
        } else {
            let (order, compare) = if filter.newest_first {
                ("DESC", "<")
            } else {
                ("ASC", ">")
            };
            if let Some(cursor) = &filter.after {
                // A row-value comparison: both stores walk the (created_at, id) index from it.
                let (at, id) = (sql.int(cursor.created_at), sql.text(&cursor.id));
                sql.text += &format!(" AND ({order_at}, {order_id}) {compare} ({at}, {id})");
            }
            let limit = sql.int(filter.limit.clamp(1, 500));
            sql.text += &format!(" ORDER BY {order_at} {order}, {order_id} {order} LIMIT {limit}");
        }

        let requests = on_read_pool!(self, |pool| {
            let rows = bound_query!(sql).fetch_all(pool).await?;
            let mut requests = Vec::with_capacity(rows.len());
            for row in rows {
                requests.push(request_from_row!(row));
            }
            requests
        });
        Ok(requests)
    }

    /// The decisions on each of `ids`, in one query.
    pub async fn decisions_for(&self, ids: &[RequestId]) -> Result<Vec<DecisionRecord>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut sql = Sql {
            text: String::new(),
            args: Vec::new(),
        };
        let list: Vec<String> = ids.iter().map(|id| sql.text(&id.to_string())).collect();
        sql.text = format!(
            "SELECT {DECISION_COLUMNS} FROM decisions WHERE request_id IN ({}) ORDER BY decided_at, id",
            list.join(", ")
        );
        let decisions = on_read_pool!(self, |pool| {
            let rows = bound_query!(sql).fetch_all(pool).await?;
            let mut decisions = Vec::with_capacity(rows.len());
            for row in rows {
                decisions.push(decision_from_row!(row));
            }
            decisions
        });
        Ok(decisions)
    }

    /// Request events after audit position `after_seq` (to resume a live view):
    /// (seq, audit kind, request id).
    pub async fn request_events_after(&self, after_seq: i64, limit: i64) -> Result<Vec<(i64, String, RequestId)>> {
        let events = on_read_pool!(self, |pool| {
            let rows = sqlx::query(
                "SELECT seq, kind, request_id FROM audit_events WHERE seq > $1 AND request_id IS NOT NULL ORDER BY seq LIMIT $2",
            )
            .bind(after_seq)
            .bind(limit)
            .fetch_all(pool)
            .await?;
            let mut events = Vec::with_capacity(rows.len());
            for row in rows {
                let id: String = row.try_get("request_id")?;
                events.push((
                    row.try_get("seq")?,
                    row.try_get("kind")?,
                    super::records::parse_id(&id)?,
                ));
            }
            events
        });
        Ok(events)
    }
}

impl Store {
    /// How many requests are pending (the queue's size).
    pub async fn count_pending(&self) -> Result<i64> {
        let count = on_read_pool!(self, |pool| {
            sqlx::query("SELECT COUNT(*) AS pending FROM requests WHERE status = 'pending'")
                .fetch_one(pool)
                .await?
                .try_get::<i64, _>("pending")?
        });
        Ok(count)
    }
}
