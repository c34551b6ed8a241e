//! Terminal sign-in: device codes waiting for confirmation, and the bearer tokens they
//! become.

use sqlx::Row;
use time::OffsetDateTime;

use signoff_app::Identity;

use super::Store;
use super::records::{from_json, from_millis, millis};
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
pub(super) use token_from_row;

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
        in_write_tx!(self, |tx| {
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

    /// Whether a device code with this hash was ever issued (and not yet purged).
    pub async fn device_code_exists(&self, code_hash: &str) -> Result<bool> {
        let known = on_read_pool!(self, |pool| {
            sqlx::query("SELECT 1 FROM device_codes WHERE code_hash = $1")
                .bind(code_hash)
                .fetch_optional(pool)
                .await?
                .is_some()
        });
        Ok(known)
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
}
