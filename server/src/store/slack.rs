//! Slack's rows: the message posted per request and route, the Slack users linked to an
//! identity, the one-time links that bind them, and the interaction signatures already
//! taken. Operational rows outside the lifecycle and the audit chain: decisions made from
//! Slack go through the engine like any other.

use sqlx::Row;

use signoff_app::{Identity, RequestId};

use super::Store;
use super::records::{from_json, to_json};
use crate::Result;

/// A Slack message about a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SlackMessage {
    /// The route it was posted for (`#approvals`).
    pub route: String,
    pub channel_id: String,
    pub ts: String,
}

/// Records posted messages (the columns, then one row of values per message, then
/// [`ON_SLACK_MESSAGE_CONFLICT`]); the first one for a request and route stays.
pub(super) const INSERT_SLACK_MESSAGES: &str = "INSERT INTO slack_messages (request_id, route, channel_id, ts) ";
pub(super) const ON_SLACK_MESSAGE_CONFLICT: &str = " ON CONFLICT (request_id, route) DO NOTHING";

impl Store {
    /// The messages posted about these requests, in one read (at most a few hundred ids).
    pub async fn slack_messages_of(&self, requests: &[RequestId]) -> Result<Vec<(RequestId, SlackMessage)>> {
        if requests.is_empty() {
            return Ok(Vec::new());
        }
        on_read_pool!(self, |pool| {
            let mut query = sqlx::QueryBuilder::new(
                "SELECT request_id, route, channel_id, ts FROM slack_messages WHERE request_id IN (",
            );
            let mut list = query.separated(", ");
            for request in requests {
                list.push_bind(request.to_string());
            }
            query.push(") ORDER BY request_id, route");
            query
                .build()
                .fetch_all(pool)
                .await?
                .iter()
                .map(|row| {
                    let request: String = row.try_get("request_id")?;
                    let request = request
                        .parse()
                        .map_err(|_| crate::Error::Internal(format!("slack_messages names request `{request}`")))?;
                    Ok((
                        request,
                        SlackMessage {
                            route: row.try_get("route")?,
                            channel_id: row.try_get("channel_id")?,
                            ts: row.try_get("ts")?,
                        },
                    ))
                })
                .collect()
        })
    }

    /// The messages posted about `request`, one per route.
    pub async fn slack_messages(&self, request: RequestId) -> Result<Vec<SlackMessage>> {
        on_read_pool!(self, |pool| {
            let rows =
                sqlx::query("SELECT route, channel_id, ts FROM slack_messages WHERE request_id = $1 ORDER BY route")
                    .bind(request.to_string())
                    .fetch_all(pool)
                    .await?;
            rows.iter()
                .map(|row| {
                    Ok(SlackMessage {
                        route: row.try_get("route")?,
                        channel_id: row.try_get("channel_id")?,
                        ts: row.try_get("ts")?,
                    })
                })
                .collect()
        })
    }

    /// The identity a Slack user is linked to, if linked since `linked_after` (millis).
    pub async fn slack_identity(&self, team: &str, user: &str, linked_after: i64) -> Result<Option<Identity>> {
        let found = on_read_pool!(self, |pool| {
            sqlx::query("SELECT identity FROM slack_users WHERE team_id = $1 AND user_id = $2 AND linked_at > $3")
                .bind(team)
                .bind(user)
                .bind(linked_after)
                .fetch_optional(pool)
                .await?
                .map(|row| row.try_get::<String, _>("identity"))
                .transpose()?
        });
        found.map(|text| from_json("identity", &text)).transpose()
    }

    /// Stores a one-time link for a Slack user, by its hash.
    pub async fn open_slack_link(&self, token_hash: &str, team: &str, user: &str, expires_at: i64) -> Result<()> {
        in_write_tx!(self, |tx| {
            sqlx::query("DELETE FROM slack_link_tokens WHERE expires_at < $1")
                .bind(expires_at - 86_400_000)
                .execute(&mut *tx)
                .await?;
            sqlx::query(
                "INSERT INTO slack_link_tokens (token_hash, team_id, user_id, expires_at) VALUES ($1, $2, $3, $4)",
            )
            .bind(token_hash)
            .bind(team)
            .bind(user)
            .bind(expires_at)
            .execute(&mut *tx)
            .await?;
        });
        Ok(())
    }

    /// The Slack user (team, user) an unexpired link is for, without using it.
    pub async fn slack_link(&self, token_hash: &str, now: i64) -> Result<Option<(String, String)>> {
        let found = on_read_pool!(self, |pool| {
            sqlx::query("SELECT team_id, user_id FROM slack_link_tokens WHERE token_hash = $1 AND expires_at > $2")
                .bind(token_hash)
                .bind(now)
                .fetch_optional(pool)
                .await?
                .map(|row| -> Result<(String, String)> { Ok((row.try_get("team_id")?, row.try_get("user_id")?)) })
                .transpose()?
        });
        Ok(found)
    }

    /// Uses a link once: binds its Slack user to `identity`. False when the link is
    /// unknown, used or expired.
    pub async fn use_slack_link(&self, token_hash: &str, identity: &Identity, now: i64) -> Result<bool> {
        let linked = in_write_tx!(self, |tx| {
            let link = sqlx::query(
                "DELETE FROM slack_link_tokens WHERE token_hash = $1 AND expires_at > $2 RETURNING team_id, user_id",
            )
            .bind(token_hash)
            .bind(now)
            .fetch_optional(&mut *tx)
            .await?;
            match link {
                None => false,
                Some(row) => {
                    let team: String = row.try_get("team_id")?;
                    let user: String = row.try_get("user_id")?;
                    sqlx::query(
                        "INSERT INTO slack_users (team_id, user_id, identity, linked_at) VALUES ($1, $2, $3, $4) \
                         ON CONFLICT (team_id, user_id) DO UPDATE SET identity = excluded.identity, \
                         linked_at = excluded.linked_at",
                    )
                    .bind(team)
                    .bind(user)
                    .bind(to_json(identity))
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                    true
                }
            }
        });
        Ok(linked)
    }

    /// Takes an interaction's signature once: false when it was taken before (a replay).
    /// Signatures older than `forget_before` (millis) are forgotten: their timestamps are
    /// refused as stale anyway.
    pub async fn take_slack_signature(&self, signature: &str, now: i64, forget_before: i64) -> Result<bool> {
        let fresh = in_write_tx!(self, |tx| {
            sqlx::query("DELETE FROM slack_replays WHERE seen_at < $1")
                .bind(forget_before)
                .execute(&mut *tx)
                .await?;
            sqlx::query(
                "INSERT INTO slack_replays (signature, seen_at) VALUES ($1, $2) ON CONFLICT (signature) DO NOTHING",
            )
            .bind(signature)
            .bind(now)
            .execute(&mut *tx)
            .await?
            .rows_affected()
                == 1
        });
        Ok(fresh)
    }
}
