//! Terminal sign-in: device codes waiting for confirmation, and the bearer tokens they
//! become.

use sqlx::Row;
use time::OffsetDateTime;

use signoff_app::Identity;

use super::Store;
use super::audit::{self, Actor};
use super::records::{from_json, from_millis, millis, to_json};
use crate::Result;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DeviceState {
    Pending,
    Approved,
    Denied,
    Used,
}

impl DeviceState {
    fn parse(text: &str) -> DeviceState {
        match text {
            "approved" => DeviceState::Approved,
            "denied" => DeviceState::Denied,
            "used" => DeviceState::Used,
            _ => DeviceState::Pending,
        }
    }
}

/// A device code as the confirming reviewer sees it.
#[derive(Clone, Debug)]
pub struct DeviceCodeInfo {
    pub user_code: String,
    pub client_name: Option<String>,
    pub client_address: Option<String>,
    pub created_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
    pub state: DeviceState,
}

/// What polling a device code found.
#[derive(Debug)]
pub enum Poll {
    Unknown,
    Expired,
    Denied,
    AlreadyUsed,
    SlowDown,
    Pending,
    /// Confirmed: the token was stored and is returned once.
    Issued {
        token_id: String,
        expires_at: OffsetDateTime,
    },
}

/// A new terminal token's secret parts.
pub struct NewToken<'a> {
    pub token_hash: &'a str,
    pub lifetime: time::Duration,
}

#[derive(Clone, Debug)]
pub struct TokenRecord {
    pub id: String,
    pub identity: Identity,
    pub client_name: Option<String>,
    pub created_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
}

macro_rules! token_from_row {
    ($row:expr) => {{
        let row = &$row;
        TokenRecord {
            id: row.try_get("id")?,
            identity: from_json("identity", &row.try_get::<String, _>("identity")?)?,
            client_name: row.try_get("client_name")?,
            created_at: from_millis(row.try_get("created_at")?)?,
            expires_at: from_millis(row.try_get("expires_at")?)?,
        }
    }};
}

impl Store {
    pub async fn insert_device_code(
        &self,
        code_hash: &str,
        user_code: &str,
        client_name: Option<&str>,
        client_address: Option<&str>,
        now: OffsetDateTime,
        expires_at: OffsetDateTime,
    ) -> Result<()> {
        in_write_tx!(self, |tx, _lock| {
            // Anyone may ask for a code: codes long past their expiry go as new ones come.
            sqlx::query("DELETE FROM device_codes WHERE expires_at < $1")
                .bind(millis(now) - 3_600_000)
                .execute(&mut *tx)
                .await?;
            sqlx::query(
                "INSERT INTO device_codes (code_hash, user_code, client_name, client_address, created_at, expires_at, state) \
                 VALUES ($1, $2, $3, $4, $5, $6, 'pending')",
            )
            .bind(code_hash)
            .bind(user_code)
            .bind(client_name)
            .bind(client_address)
            .bind(millis(now))
            .bind(millis(expires_at))
            .execute(&mut *tx)
            .await?;
        });
        Ok(())
    }

    pub async fn device_code(&self, user_code: &str) -> Result<Option<DeviceCodeInfo>> {
        let info = on_read_pool!(self, |pool| {
            let row = sqlx::query(
                "SELECT user_code, client_name, client_address, created_at, expires_at, state FROM device_codes WHERE user_code = $1",
            )
            .bind(user_code)
            .fetch_optional(pool)
            .await?;
            match row {
                None => None,
                Some(row) => Some(DeviceCodeInfo {
                    user_code: row.try_get("user_code")?,
                    client_name: row.try_get("client_name")?,
                    client_address: row.try_get("client_address")?,
                    created_at: from_millis(row.try_get("created_at")?)?,
                    expires_at: from_millis(row.try_get("expires_at")?)?,
                    state: DeviceState::parse(&row.try_get::<String, _>("state")?),
                }),
            }
        });
        Ok(info)
    }

    /// Records the reviewer's answer to a pending, unexpired code; false if it was not.
    pub async fn answer_device_code(
        &self,
        user_code: &str,
        identity: &Identity,
        approve: bool,
        now: OffsetDateTime,
    ) -> Result<bool> {
        let answered = in_write_tx!(self, |tx, _lock| {
            let state = if approve { "approved" } else { "denied" };
            let changed = sqlx::query(
                "UPDATE device_codes SET state = $1, identity = $2 WHERE user_code = $3 AND state = 'pending' AND expires_at > $4",
            )
            .bind(state)
            .bind(to_json(identity))
            .bind(user_code)
            .bind(millis(now))
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if changed == 1 {
                let kind = if approve {
                    "terminal.sign_in_confirmed"
                } else {
                    "terminal.sign_in_refused"
                };
                let data = serde_json::json!({ "user_code": user_code });
                audit::append!(tx, now, kind, None, &Actor::Reviewer(identity.clone()), &data);
            }
            changed == 1
        });
        Ok(answered)
    }

    /// One poll of the device code with this hash; issues the token once confirmed.
    /// Unknown codes are answered from a read, so guessing costs the writer nothing.
    pub async fn poll_device_code(
        &self,
        code_hash: &str,
        interval: time::Duration,
        token: NewToken<'_>,
        now: OffsetDateTime,
    ) -> Result<Poll> {
        let known = on_read_pool!(self, |pool| {
            sqlx::query("SELECT 1 FROM device_codes WHERE code_hash = $1")
                .bind(code_hash)
                .fetch_optional(pool)
                .await?
                .is_some()
        });
        if !known {
            return Ok(Poll::Unknown);
        }
        let poll = in_write_tx!(self, |tx, _lock| {
            let row = sqlx::query(
                "SELECT user_code, client_name, expires_at, last_polled_at, state, identity FROM device_codes WHERE code_hash = $1",
            )
            .bind(code_hash)
            .fetch_optional(&mut *tx)
            .await?;
            let Some(row) = row else { return Ok(Poll::Unknown) };
            let expires_at = from_millis(row.try_get("expires_at")?)?;
            let last_polled_at: Option<i64> = row.try_get("last_polled_at")?;
            sqlx::query("UPDATE device_codes SET last_polled_at = $1 WHERE code_hash = $2")
                .bind(millis(now))
                .bind(code_hash)
                .execute(&mut *tx)
                .await?;
            let state = DeviceState::parse(&row.try_get::<String, _>("state")?);
            let too_soon =
                last_polled_at.is_some_and(|last| millis(now) - last < (interval.whole_milliseconds() as i64));
            match state {
                DeviceState::Used => Poll::AlreadyUsed,
                DeviceState::Denied => Poll::Denied,
                _ if now >= expires_at => Poll::Expired,
                DeviceState::Pending if too_soon => Poll::SlowDown,
                DeviceState::Pending => Poll::Pending,
                DeviceState::Approved => {
                    // Claimed by a conditional update: of two polls racing here (Postgres
                    // lets both read `approved`), exactly one changes the row.
                    let claimed = sqlx::query(
                        "UPDATE device_codes SET state = 'used' WHERE code_hash = $1 AND state = 'approved'",
                    )
                    .bind(code_hash)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                    if claimed != 1 {
                        return Ok(Poll::AlreadyUsed);
                    }
                    let identity_json: Option<String> = row.try_get("identity")?;
                    let identity: Identity = from_json("identity", identity_json.as_deref().unwrap_or("null"))?;
                    let client_name: Option<String> = row.try_get("client_name")?;
                    let token_id = uuid::Uuid::now_v7().to_string();
                    let expires_at = now + token.lifetime;
                    sqlx::query(
                        "INSERT INTO terminal_tokens (id, token_hash, issuer, subject, identity, client_name, created_at, expires_at) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                    )
                    .bind(&token_id)
                    .bind(token.token_hash)
                    .bind(&identity.issuer)
                    .bind(&identity.subject)
                    .bind(to_json(&identity))
                    .bind(&client_name)
                    .bind(millis(now))
                    .bind(millis(expires_at))
                    .execute(&mut *tx)
                    .await?;
                    let data = serde_json::json!({ "token_id": token_id, "client_name": client_name });
                    audit::append!(
                        tx,
                        now,
                        "terminal.token_issued",
                        None,
                        &Actor::Reviewer(identity),
                        &data
                    );
                    Poll::Issued { token_id, expires_at }
                }
            }
        });
        Ok(poll)
    }

    /// The identity behind an active terminal token.
    pub async fn terminal_token(&self, token_hash: &str, now: OffsetDateTime) -> Result<Option<TokenRecord>> {
        let record = on_read_pool!(self, |pool| {
            let row = sqlx::query(
                "SELECT id, identity, client_name, created_at, expires_at FROM terminal_tokens \
                 WHERE token_hash = $1 AND revoked_at IS NULL AND expires_at > $2",
            )
            .bind(token_hash)
            .bind(millis(now))
            .fetch_optional(pool)
            .await?;
            match row {
                None => None,
                Some(row) => Some(token_from_row!(row)),
            }
        });
        Ok(record)
    }

    /// Active tokens, of one person or (admins) everyone's.
    pub async fn terminal_tokens(&self, owner: Option<(&str, &str)>, now: OffsetDateTime) -> Result<Vec<TokenRecord>> {
        let (issuer, subject) = owner.unwrap_or_default();
        let all = owner.is_none();
        let records = on_read_pool!(self, |pool| {
            let rows = sqlx::query(
                "SELECT id, identity, client_name, created_at, expires_at FROM terminal_tokens \
                 WHERE revoked_at IS NULL AND expires_at > $1 AND ($2 OR (issuer = $3 AND subject = $4)) ORDER BY created_at DESC",
            )
            .bind(millis(now))
            .bind(all)
            .bind(issuer)
            .bind(subject)
            .fetch_all(pool)
            .await?;
            let mut records = Vec::with_capacity(rows.len());
            for row in rows {
                records.push(token_from_row!(row));
            }
            records
        });
        Ok(records)
    }

    /// Revokes a token (of `owner`, or anyone's when `owner` is None); false if none.
    pub async fn revoke_terminal_token(
        &self,
        id: &str,
        owner: Option<(&str, &str)>,
        by: &Identity,
        now: OffsetDateTime,
    ) -> Result<bool> {
        let (issuer, subject) = owner.unwrap_or_default();
        let all = owner.is_none();
        let revoked = in_write_tx!(self, |tx, _lock| {
            let changed = sqlx::query(
                "UPDATE terminal_tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL AND ($3 OR (issuer = $4 AND subject = $5))",
            )
            .bind(millis(now))
            .bind(id)
            .bind(all)
            .bind(issuer)
            .bind(subject)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if changed == 1 {
                let data = serde_json::json!({ "token_id": id });
                audit::append!(
                    tx,
                    now,
                    "terminal.token_revoked",
                    None,
                    &Actor::Reviewer(by.clone()),
                    &data
                );
            }
            changed == 1
        });
        Ok(revoked)
    }
}
