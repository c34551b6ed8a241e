//! Where each webhook endpoint's reader of the audit trail has got to, and what happened
//! to each event sent. Operational rows, outside the lifecycle: written here, never by
//! the engine, and never part of the audit chain.
//!
//! An event accepted at its first attempt is recorded with its page (one row in
//! `webhook_delivered_pages` per page of the trail a reader delivered); one that needed
//! more, was refused, or was sent again has a row of its own in `webhook_deliveries`,
//! which wins over its page. The delivery log reads both.

use std::collections::{BTreeMap, HashSet};

use sqlx::{QueryBuilder, Row};

use signoff_app::RequestId;

use super::slack::{INSERT_SLACK_MESSAGES, ON_SLACK_MESSAGE_CONFLICT};
use super::{SlackMessage, Store};
use crate::Result;

/// One event's delivery to one endpoint, as last tried.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivery {
    pub seq: i64,
    pub kind: String,
    pub attempts: i32,
    pub status: DeliveryStatus,
    pub last_error: Option<String>,
    /// Unix milliseconds.
    pub last_attempt_at: i64,
    pub delivered_at: Option<i64>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeliveryStatus {
    /// Accepted (a 2xx answer).
    Delivered,
    /// Not yet accepted; it is tried again.
    Retrying,
    /// Refused for good; sent again only when an admin asks.
    Failed,
}

impl DeliveryStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Delivered => "delivered",
            DeliveryStatus::Retrying => "retrying",
            DeliveryStatus::Failed => "failed",
        }
    }

    fn parse(text: &str) -> DeliveryStatus {
        match text {
            "delivered" => DeliveryStatus::Delivered,
            "failed" => DeliveryStatus::Failed,
            _ => DeliveryStatus::Retrying,
        }
    }
}

/// Records deliveries' latest attempts: the columns, then one row of values per delivery,
/// then [`ON_DELIVERY_CONFLICT`].
const INSERT_DELIVERIES: &str = "INSERT INTO webhook_deliveries \
     (endpoint, seq, kind, attempts, status, last_error, last_attempt_at, delivered_at) ";
const ON_DELIVERY_CONFLICT: &str = " ON CONFLICT (endpoint, seq) DO UPDATE SET attempts = excluded.attempts, \
     status = excluded.status, last_error = excluded.last_error, \
     last_attempt_at = excluded.last_attempt_at, delivered_at = excluded.delivered_at";
/// Deliveries written by one statement (8 values each, far below either store's limit).
const DELIVERIES_PER_STATEMENT: usize = 500;
/// Slack messages written by one statement (4 values each).
const MESSAGES_PER_STATEMENT: usize = 500;

/// Writes `attempts` (one per event, see [`latest_per_event`]) and the Slack messages
/// `posted` in `tx`, a statement per few hundred rows, not one each: every statement is a
/// hand-off to the database while the transaction holds SQLite's one writer.
macro_rules! write_deliveries {
    ($tx:ident, $endpoint:expr, $attempts:expr, $posted:expr) => {
        for chunk in $attempts.chunks(DELIVERIES_PER_STATEMENT) {
            let mut insert = QueryBuilder::new(INSERT_DELIVERIES);
            insert.push_values(chunk, |mut row, attempt| {
                row.push_bind($endpoint)
                    .push_bind(attempt.seq)
                    .push_bind(attempt.kind.as_str())
                    .push_bind(attempt.attempts)
                    .push_bind(attempt.status.as_str())
                    .push_bind(attempt.last_error.as_deref())
                    .push_bind(attempt.last_attempt_at)
                    .push_bind(attempt.delivered_at);
            });
            insert.push(ON_DELIVERY_CONFLICT);
            insert.build().execute(&mut *$tx).await?;
        }
        for chunk in $posted.chunks(MESSAGES_PER_STATEMENT) {
            let mut insert = QueryBuilder::new(INSERT_SLACK_MESSAGES);
            insert.push_values(chunk, |mut row, (request, message)| {
                row.push_bind(request.to_string())
                    .push_bind(message.route.as_str())
                    .push_bind(message.channel_id.as_str())
                    .push_bind(message.ts.as_str());
            });
            insert.push(ON_SLACK_MESSAGE_CONFLICT);
            insert.build().execute(&mut *$tx).await?;
        }
    };
}

/// What a reader delivered since its last record, written with its cursor in one
/// transaction.
#[derive(Clone, Debug, Default)]
pub struct DeliveredPage {
    /// Events accepted at their first attempt, ascending.
    pub at_once: Vec<i64>,
    /// When they were (all within one page's delivery), Unix milliseconds.
    pub at: i64,
    /// Every other attempt: retried, refused, or accepted after a retry.
    pub attempts: Vec<Delivery>,
    /// The Slack messages posted meanwhile.
    pub posted: Vec<(RequestId, SlackMessage)>,
}

/// The sequence numbers of a page's row, as stored.
fn join_seqs(seqs: &[i64]) -> String {
    seqs.iter().map(i64::to_string).collect::<Vec<_>>().join(",")
}

/// The stored sequence numbers; none when unreadable (never written so).
fn split_seqs(seqs: &str) -> Vec<i64> {
    seqs.split(',').filter_map(|seq| seq.parse().ok()).collect()
}

/// An event accepted at its first attempt, as its page recorded it.
fn delivered_at_once(seq: i64, kind: String, at: i64) -> Delivery {
    Delivery {
        seq,
        kind,
        attempts: 1,
        status: DeliveryStatus::Delivered,
        last_error: None,
        last_attempt_at: at,
        delivered_at: Some(at),
    }
}

/// Reads a row of webhook_deliveries, for either store.
macro_rules! delivery_from_row {
    ($row:expr) => {{
        let row = &$row;
        Ok::<_, crate::Error>(Delivery {
            seq: row.try_get("seq")?,
            kind: row.try_get("kind")?,
            attempts: row.try_get("attempts")?,
            status: DeliveryStatus::parse(row.try_get("status")?),
            last_error: row.try_get("last_error")?,
            last_attempt_at: row.try_get("last_attempt_at")?,
            delivered_at: row.try_get("delivered_at")?,
        })
    }};
}

/// Starts an endpoint's cursor at the trail's present head, unless it has one.
const OPEN_CURSOR: &str = "INSERT INTO webhook_cursors (endpoint, delivered_seq) SELECT $1, seq FROM audit_head WHERE id = 1 \
     ON CONFLICT (endpoint) DO NOTHING";

impl Store {
    /// Starts `endpoint`'s cursor at the trail's present head, unless it has one.
    pub async fn open_webhook_cursor(&self, endpoint: &str) -> Result<()> {
        in_write_tx!(self, |tx| {
            sqlx::query(OPEN_CURSOR).bind(endpoint).execute(&mut *tx).await?;
        });
        Ok(())
    }

    /// Takes (or keeps) the lease on `endpoint` for `owner` until `lease_until`, and
    /// answers the last sequence number delivered there; `None` while another process
    /// holds an unexpired lease. An endpoint seen for the first time starts at the trail's
    /// present head: it receives what happens from now on. A SQLite store has one server,
    /// so a lease there is always taken over (a restart after a crash need not wait).
    pub async fn claim_webhook(&self, endpoint: &str, owner: &str, now: i64, lease_until: i64) -> Result<Option<i64>> {
        let now = match self {
            Store::Sqlite(_) => i64::MAX,
            Store::Postgres(_) => now,
        };
        let claimed = in_write_tx!(self, |tx| {
            sqlx::query(OPEN_CURSOR).bind(endpoint).execute(&mut *tx).await?;
            sqlx::query(
                "UPDATE webhook_cursors SET owner = $1, lease_until = $2 \
                 WHERE endpoint = $3 AND (owner = $1 OR owner IS NULL OR lease_until < $4) \
                 RETURNING delivered_seq",
            )
            .bind(owner)
            .bind(lease_until)
            .bind(endpoint)
            .bind(now)
            .fetch_optional(&mut *tx)
            .await?
            .map(|row| row.try_get::<i64, _>("delivered_seq"))
            .transpose()?
        });
        Ok(claimed)
    }

    /// Records what was delivered (see [`DeliveredPage`]) and moves the cursor to
    /// `delivered_seq` if `owner` still holds the lease, in one transaction. Answers
    /// whether the lease was still held.
    pub async fn record_webhook(
        &self,
        endpoint: &str,
        owner: &str,
        page: &DeliveredPage,
        delivered_seq: i64,
        lease_until: i64,
    ) -> Result<bool> {
        let latest = latest_per_event(&page.attempts);
        let postgres = self.is_postgres();
        let held = in_write_tx!(self, |tx| {
            if postgres {
                // This commit need not wait for its flush to disk, nor make the requests'
                // commits wait behind it: only a crash of Postgres itself could lose it,
                // and then the events are delivered again (see ARCHITECTURE.md, "Notifications").
                sqlx::query("SET LOCAL synchronous_commit = off")
                    .execute(&mut *tx)
                    .await?;
            }
            write_deliveries!(tx, endpoint, latest, page.posted);
            if !page.at_once.is_empty() {
                // An event tried by an earlier process (before a restart, or before another
                // replica took over) already has a row: that row is brought up to date
                // instead, and the page leaves the event out.
                let mut earlier = QueryBuilder::new(
                    "UPDATE webhook_deliveries SET attempts = attempts + 1, status = 'delivered', \
                     last_error = NULL, last_attempt_at = ",
                );
                earlier
                    .push_bind(page.at)
                    .push(", delivered_at = ")
                    .push_bind(page.at)
                    .push(" WHERE endpoint = ")
                    .push_bind(endpoint)
                    .push(" AND status <> 'delivered' AND seq IN (");
                let mut seqs = earlier.separated(", ");
                for seq in &page.at_once {
                    seqs.push_bind(*seq);
                }
                earlier.push(") RETURNING seq");
                let had_rows: HashSet<i64> = earlier
                    .build()
                    .fetch_all(&mut *tx)
                    .await?
                    .iter()
                    .map(|row| row.try_get::<i64, _>("seq"))
                    .collect::<std::result::Result<_, _>>()?;
                let at_once: Vec<i64> = page
                    .at_once
                    .iter()
                    .copied()
                    .filter(|seq| !had_rows.contains(seq))
                    .collect();
                if let (Some(first), Some(last)) = (at_once.first(), at_once.last()) {
                    sqlx::query(
                        "INSERT INTO webhook_delivered_pages (endpoint, last_seq, first_seq, seqs, events, delivered_at) \
                         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (endpoint, last_seq) DO NOTHING",
                    )
                    .bind(endpoint)
                    .bind(*last)
                    .bind(*first)
                    .bind(join_seqs(&at_once))
                    .bind(at_once.len() as i32)
                    .bind(page.at)
                    .execute(&mut *tx)
                    .await?;
                }
            }
            sqlx::query(
                "UPDATE webhook_cursors \
                 SET delivered_seq = CASE WHEN delivered_seq < $1 THEN $1 ELSE delivered_seq END, lease_until = $2 \
                 WHERE endpoint = $3 AND owner = $4",
            )
            .bind(delivered_seq)
            .bind(lease_until)
            .bind(endpoint)
            .bind(owner)
            .execute(&mut *tx)
            .await?
            .rows_affected()
                == 1
        });
        Ok(held)
    }

    /// The endpoint's latest deliveries, newest first.
    pub async fn webhook_deliveries(&self, endpoint: &str, limit: i64) -> Result<Vec<Delivery>> {
        self.deliveries_page(endpoint, i64::MAX, limit).await
    }

    /// A page of the endpoint's deliveries, newest first, before event `before`: the
    /// newest `limit` of its own rows and of its pages' events, merged.
    pub async fn deliveries_page(&self, endpoint: &str, before: i64, limit: i64) -> Result<Vec<Delivery>> {
        let (rows, pages) = on_read_pool!(self, |pool| {
            let rows = sqlx::query(
                "SELECT seq, kind, attempts, status, last_error, last_attempt_at, delivered_at \
                 FROM webhook_deliveries WHERE endpoint = $1 AND seq < $2 ORDER BY seq DESC LIMIT $3",
            )
            .bind(endpoint)
            .bind(before)
            .bind(limit)
            .fetch_all(pool)
            .await?
            .iter()
            .map(|row| delivery_from_row!(row))
            .collect::<Result<Vec<_>>>()?;
            // Each page holds at least one event, so `limit` pages hold enough.
            let pages = sqlx::query(
                "SELECT seqs, delivered_at FROM webhook_delivered_pages \
                 WHERE endpoint = $1 AND first_seq < $2 ORDER BY last_seq DESC LIMIT $3",
            )
            .bind(endpoint)
            .bind(before)
            .bind(limit)
            .fetch_all(pool)
            .await?
            .iter()
            .map(|row| {
                Ok((
                    row.try_get::<String, _>("seqs")?,
                    row.try_get::<i64, _>("delivered_at")?,
                ))
            })
            .collect::<Result<Vec<_>>>()?;
            (rows, pages)
        });
        let limit = usize::try_from(limit).unwrap_or(0);
        let mut newest: BTreeMap<i64, Option<Delivery>> = BTreeMap::new();
        let mut at_once = Vec::new();
        for (seqs, at) in &pages {
            for seq in split_seqs(seqs).into_iter().filter(|seq| *seq < before) {
                newest.insert(seq, None);
                at_once.push((seq, *at));
            }
        }
        for row in rows {
            newest.insert(row.seq, Some(row));
        }
        let newest: Vec<(i64, Option<Delivery>)> = newest.into_iter().rev().take(limit).collect();
        let wanted: Vec<i64> = newest
            .iter()
            .filter(|(_, row)| row.is_none())
            .map(|(seq, _)| *seq)
            .collect();
        let kinds = self.kinds_of(&wanted).await?;
        let at: BTreeMap<i64, i64> = at_once.into_iter().collect();
        Ok(newest
            .into_iter()
            .map(|(seq, row)| {
                row.unwrap_or_else(|| {
                    let kind = kinds.get(&seq).cloned().unwrap_or_default();
                    delivered_at_once(seq, kind, at.get(&seq).copied().unwrap_or_default())
                })
            })
            .collect())
    }

    /// The kinds of these events of the trail.
    async fn kinds_of(&self, seqs: &[i64]) -> Result<BTreeMap<i64, String>> {
        if seqs.is_empty() {
            return Ok(BTreeMap::new());
        }
        on_read_pool!(self, |pool| {
            let mut query = QueryBuilder::new("SELECT seq, kind FROM audit_events WHERE seq IN (");
            let mut list = query.separated(", ");
            for seq in seqs {
                list.push_bind(*seq);
            }
            query.push(")");
            query
                .build()
                .fetch_all(pool)
                .await?
                .iter()
                .map(|row| Ok((row.try_get::<i64, _>("seq")?, row.try_get::<String, _>("kind")?)))
                .collect()
        })
    }

    /// How many of the endpoint's deliveries are in each status, and the latest error.
    pub async fn delivery_counts(&self, endpoint: &str) -> Result<(Vec<(DeliveryStatus, i64)>, Option<String>)> {
        on_read_pool!(self, |pool| {
            let mut counts = sqlx::query(
                "SELECT status, COUNT(*) AS n FROM webhook_deliveries WHERE endpoint = $1 GROUP BY status ORDER BY status",
            )
            .bind(endpoint)
            .fetch_all(pool)
            .await?
            .iter()
            .map(|row| Ok((DeliveryStatus::parse(row.try_get("status")?), row.try_get::<i64, _>("n")?)))
            .collect::<Result<Vec<_>>>()?;
            let at_once: i64 = sqlx::query(
                "SELECT CAST(COALESCE(SUM(events), 0) AS BIGINT) AS n FROM webhook_delivered_pages WHERE endpoint = $1",
            )
            .bind(endpoint)
            .fetch_one(pool)
            .await?
            .try_get("n")?;
            counts.push((DeliveryStatus::Delivered, at_once));
            let last_error = sqlx::query(
                "SELECT last_error FROM webhook_deliveries WHERE endpoint = $1 AND last_error IS NOT NULL \
                 AND status <> 'delivered' ORDER BY last_attempt_at DESC LIMIT 1",
            )
            .bind(endpoint)
            .fetch_optional(pool)
            .await?
            .map(|row| row.try_get::<String, _>("last_error"))
            .transpose()?;
            Ok((counts, last_error))
        })
    }

    /// Records one attempt outside the reader (an admin's "send again") and the Slack
    /// messages it posted; the cursor stays.
    pub async fn record_delivery(
        &self,
        endpoint: &str,
        attempt: &Delivery,
        posted: &[(RequestId, SlackMessage)],
    ) -> Result<()> {
        in_write_tx!(self, |tx| {
            write_deliveries!(tx, endpoint, [attempt], posted);
        });
        Ok(())
    }

    /// One event's delivery to the endpoint, if it was tried.
    pub async fn webhook_delivery(&self, endpoint: &str, seq: i64) -> Result<Option<Delivery>> {
        let (row, page) = on_read_pool!(self, |pool| {
            let row = sqlx::query(
                "SELECT seq, kind, attempts, status, last_error, last_attempt_at, delivered_at \
                 FROM webhook_deliveries WHERE endpoint = $1 AND seq = $2",
            )
            .bind(endpoint)
            .bind(seq)
            .fetch_optional(pool)
            .await?
            .map(|row| delivery_from_row!(row))
            .transpose()?;
            // Pages do not overlap: the first ending at or after the event is the only one
            // that may hold it.
            let page = sqlx::query(
                "SELECT seqs, delivered_at FROM webhook_delivered_pages \
                 WHERE endpoint = $1 AND last_seq >= $2 ORDER BY last_seq LIMIT 1",
            )
            .bind(endpoint)
            .bind(seq)
            .fetch_optional(pool)
            .await?
            .map(|row| {
                Ok::<_, crate::Error>((
                    row.try_get::<String, _>("seqs")?,
                    row.try_get::<i64, _>("delivered_at")?,
                ))
            })
            .transpose()?;
            (row, page)
        });
        if row.is_some() {
            return Ok(row);
        }
        match page {
            Some((seqs, at)) if split_seqs(&seqs).contains(&seq) => {
                let kind = self.kinds_of(&[seq]).await?.remove(&seq).unwrap_or_default();
                Ok(Some(delivered_at_once(seq, kind, at)))
            }
            _ => Ok(None),
        }
    }

    /// Where the endpoint's reader has got to; `None` before its first start.
    pub async fn webhook_cursor(&self, endpoint: &str) -> Result<Option<i64>> {
        let seq = on_read_pool!(self, |pool| {
            sqlx::query("SELECT delivered_seq FROM webhook_cursors WHERE endpoint = $1")
                .bind(endpoint)
                .fetch_optional(pool)
                .await?
                .map(|row| row.try_get::<i64, _>("delivered_seq"))
                .transpose()?
        });
        Ok(seq)
    }
}

/// The last attempt recorded for each event, in order: one statement may not update the
/// same row twice (Postgres refuses it).
fn latest_per_event(attempts: &[Delivery]) -> Vec<&Delivery> {
    let mut seen = HashSet::with_capacity(attempts.len());
    let mut latest: Vec<&Delivery> = attempts
        .iter()
        .rev()
        .filter(|attempt| seen.insert(attempt.seq))
        .collect();
    latest.reverse();
    latest
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attempt(seq: i64, attempts: i32, status: DeliveryStatus) -> Delivery {
        Delivery {
            seq,
            kind: "request.created".into(),
            attempts,
            status,
            last_error: None,
            last_attempt_at: 0,
            delivered_at: None,
        }
    }

    #[test]
    fn a_pages_events_read_back_as_written() {
        let seqs = [3, 4, 17, 1_000_000_000_001];
        assert_eq!(split_seqs(&join_seqs(&seqs)), seqs);
        assert_eq!(split_seqs(""), Vec::<i64>::new());
    }

    #[test]
    fn only_the_last_attempt_of_each_event_is_written() {
        let attempts = [
            attempt(5, 1, DeliveryStatus::Retrying),
            attempt(6, 1, DeliveryStatus::Delivered),
            attempt(5, 2, DeliveryStatus::Delivered),
        ];
        let latest: Vec<(i64, i32)> = latest_per_event(&attempts)
            .iter()
            .map(|attempt| (attempt.seq, attempt.attempts))
            .collect();
        assert_eq!(latest, [(6, 1), (5, 2)]);
    }
}
