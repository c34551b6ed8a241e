//! Policies, their versions, grants and break-glass follow-ups: reads on the store, and
//! the write primitives the engine uses inside its batch (they decide nothing).

use serde_json::Value;
use sqlx::Row;
use time::OffsetDateTime;

use signoff_app::policy::PolicyDoc;
use signoff_app::{AgentId, Identity, RequestId, grant_is_active};

use super::records::{from_json, from_millis, millis, parse_id, request_from_row, to_json};
use super::{Store, WriteConn, WriteTx};
use crate::Result;

/// A policy as it stands: its current version, in order.
#[derive(Clone, Debug)]
pub struct StoredPolicy {
    pub id: String,
    pub position: i64,
    pub version: i64,
    pub doc: PolicyDoc,
    pub updated_at: OffsetDateTime,
}

/// One saved version of a policy.
#[derive(Clone, Debug)]
pub struct PolicyVersion {
    pub policy_id: String,
    pub version: i64,
    pub doc: PolicyDoc,
    pub created_at: OffsetDateTime,
    /// Who saved it (the audit actor, as JSON).
    pub created_by: Value,
}

pub use signoff_app::Grant as GrantRecord;

/// A break-glass approval waiting for another admin to look at it.
#[derive(Clone, Debug)]
pub struct Followup {
    pub request_id: RequestId,
    pub title: String,
    pub opened_at: OffsetDateTime,
    pub opened_by: Identity,
    pub acknowledged_at: Option<OffsetDateTime>,
    pub acknowledged_by: Option<Identity>,
}

const POLICY_COLUMNS: &str = "id, position, version, document, updated_at";
const GRANT_COLUMNS: &str = "g.id, g.request_id, g.policy_id, g.policy_version, g.agent_id, a.name AS agent_name, \
    g.action, g.resource, g.fields, g.granted_by, g.created_at, g.expires_at, g.max_uses, g.uses, g.revoked_at, \
    g.revoked_by";

macro_rules! policy_from_row {
    ($row:expr) => {{
        let row = &$row;
        StoredPolicy {
            id: row.try_get("id")?,
            position: row.try_get("position")?,
            version: row.try_get("version")?,
            doc: from_json("document", &row.try_get::<String, _>("document")?)?,
            updated_at: from_millis(row.try_get("updated_at")?)?,
        }
    }};
}

macro_rules! grant_from_row {
    ($row:expr) => {{
        let row = &$row;
        GrantRecord {
            id: row.try_get("id")?,
            request_id: parse_id(&row.try_get::<String, _>("request_id")?)?,
            policy_id: row.try_get("policy_id")?,
            policy_version: row.try_get("policy_version")?,
            agent_id: parse_id(&row.try_get::<String, _>("agent_id")?)?,
            agent_name: row.try_get("agent_name")?,
            action: row.try_get("action")?,
            resource: row.try_get("resource")?,
            fields: from_json("fields", &row.try_get::<String, _>("fields")?)?,
            granted_by: from_json("granted_by", &row.try_get::<String, _>("granted_by")?)?,
            created_at: from_millis(row.try_get("created_at")?)?,
            expires_at: from_millis(row.try_get("expires_at")?)?,
            max_uses: row.try_get("max_uses")?,
            uses: row.try_get("uses")?,
            revoked_at: row
                .try_get::<Option<i64>, _>("revoked_at")?
                .map(from_millis)
                .transpose()?,
            revoked_by: row
                .try_get::<Option<String>, _>("revoked_by")?
                .map(|text| from_json("revoked_by", &text))
                .transpose()?,
        }
    }};
}

/// [`grant_is_active`] for a stored grant.
fn is_active(grant: &GrantRecord, at: OffsetDateTime) -> bool {
    grant_is_active(grant.revoked_at, grant.expires_at, grant.uses, grant.max_uses, at)
}

impl Store {
    /// A page of past requests for a what-if replay, newest first, older than `before`
    /// (its `created_at` and id) when given: only what matching and its report read. The
    /// diff and result are never read, and the payload and context only `with_payload`
    /// (when a condition may read them), so a replay holds a page of rows, not the table.
    pub async fn replay_page(
        &self,
        before: Option<(OffsetDateTime, RequestId)>,
        limit: i64,
        with_payload: bool,
    ) -> Result<Vec<crate::store::StoredRequest>> {
        let payload = if with_payload {
            "r.payload, r.context"
        } else {
            "'{}' AS payload, NULL AS context"
        };
        let columns = format!(
            "r.id, r.agent_id, a.name AS agent_name, a.owner AS agent_owner, r.on_behalf_of, \
             r.action, r.resource, r.title, r.reason, r.labels, {payload}, NULL AS diff, r.digest, \
             r.status, r.policy, r.approvals, r.created_at, r.expires_at, r.decided_at, \
             NULL AS result, r.body_hash, r.break_glass, r.escalates_at, r.started_at, \
             r.remind_at, r.callback_url, NULL AS receipt, NULL AS receipt_used_at"
        );
        let after = if before.is_some() {
            "WHERE r.created_at < $2 OR (r.created_at = $2 AND r.id < $3)"
        } else {
            ""
        };
        let sql = format!(
            "SELECT {columns} FROM requests r JOIN agents a ON a.id = r.agent_id {after} \
             ORDER BY r.created_at DESC, r.id DESC LIMIT $1"
        );
        on_read_pool!(self, |pool| {
            let mut query = sqlx::query(&sql).bind(limit);
            if let Some((at, id)) = before {
                query = query.bind(millis(at)).bind(id.to_string());
            }
            let rows = query.fetch_all(pool).await?;
            let mut requests = Vec::with_capacity(rows.len());
            for row in rows {
                requests.push(request_from_row!(row));
            }
            Ok(requests)
        })
    }

    /// Every policy, in evaluation order.
    pub async fn policies(&self) -> Result<Vec<StoredPolicy>> {
        let sql = format!("SELECT {POLICY_COLUMNS} FROM policies ORDER BY position, id");
        on_read_pool!(self, |pool| {
            let rows = sqlx::query(&sql).fetch_all(pool).await?;
            let mut policies = Vec::with_capacity(rows.len());
            for row in rows {
                policies.push(policy_from_row!(row));
            }
            Ok(policies)
        })
    }

    pub async fn policy_generation(&self) -> Result<i64> {
        on_read_pool!(self, |pool| {
            Ok(sqlx::query_scalar("SELECT generation FROM policy_state WHERE id = 1")
                .fetch_one(pool)
                .await?)
        })
    }

    /// Every version of a policy, newest first.
    pub async fn policy_versions(&self, policy_id: &str) -> Result<Vec<PolicyVersion>> {
        on_read_pool!(self, |pool| {
            let rows = sqlx::query(
                "SELECT policy_id, version, document, created_at, created_by FROM policy_versions \
                 WHERE policy_id = $1 ORDER BY version DESC",
            )
            .bind(policy_id)
            .fetch_all(pool)
            .await?;
            let mut versions = Vec::with_capacity(rows.len());
            for row in rows {
                versions.push(PolicyVersion {
                    policy_id: row.try_get("policy_id")?,
                    version: row.try_get("version")?,
                    doc: from_json("document", &row.try_get::<String, _>("document")?)?,
                    created_at: from_millis(row.try_get("created_at")?)?,
                    created_by: from_json("created_by", &row.try_get::<String, _>("created_by")?)?,
                });
            }
            Ok(versions)
        })
    }

    /// Grants, newest first (500 at most): all, or only those active at `active_at`
    /// ([`grant_is_active`] decides; the query only skips the expired, which never come back).
    pub async fn grants(&self, active_at: Option<OffsetDateTime>) -> Result<Vec<GrantRecord>> {
        const SHOWN: usize = 500;
        let sql = format!(
            "SELECT {GRANT_COLUMNS} FROM grants g JOIN agents a ON a.id = g.agent_id \
             WHERE ($1 IS NULL OR g.expires_at > $1) ORDER BY g.created_at DESC LIMIT $2"
        );
        // Unfiltered, the newest 500 are the answer; filtered, inactive rows must not take
        // the places of active ones.
        let limit = if active_at.is_some() { i64::MAX } else { SHOWN as i64 };
        on_read_pool!(self, |pool| {
            let rows = sqlx::query(&sql)
                .bind(active_at.map(millis))
                .bind(limit)
                .fetch_all(pool)
                .await?;
            let mut grants = Vec::with_capacity(rows.len().min(SHOWN));
            for row in rows {
                let grant = grant_from_row!(row);
                if active_at.is_none_or(|at| is_active(&grant, at)) {
                    grants.push(grant);
                }
                if grants.len() == SHOWN {
                    break;
                }
            }
            Ok(grants)
        })
    }

    /// Break-glass follow-ups, open ones first then the newest.
    pub async fn followups(&self, open_only: bool) -> Result<Vec<Followup>> {
        on_read_pool!(self, |pool| {
            let rows = sqlx::query(
                "SELECT f.request_id, r.title, f.opened_at, f.opened_by, f.acknowledged_at, f.acknowledged_by \
                 FROM followups f JOIN requests r ON r.id = f.request_id \
                 WHERE ($1 = 0 OR f.acknowledged_at IS NULL) \
                 ORDER BY (f.acknowledged_at IS NULL) DESC, f.opened_at DESC LIMIT 500",
            )
            .bind(i64::from(open_only))
            .fetch_all(pool)
            .await?;
            let mut followups = Vec::with_capacity(rows.len());
            for row in rows {
                followups.push(Followup {
                    request_id: parse_id(&row.try_get::<String, _>("request_id")?)?,
                    title: row.try_get("title")?,
                    opened_at: from_millis(row.try_get("opened_at")?)?,
                    opened_by: from_json("opened_by", &row.try_get::<String, _>("opened_by")?)?,
                    acknowledged_at: row
                        .try_get::<Option<i64>, _>("acknowledged_at")?
                        .map(from_millis)
                        .transpose()?,
                    acknowledged_by: row
                        .try_get::<Option<String>, _>("acknowledged_by")?
                        .map(|text| from_json("acknowledged_by", &text))
                        .transpose()?,
                });
            }
            Ok(followups)
        })
    }
}

impl WriteTx {
    pub async fn policy_generation(&mut self) -> Result<i64> {
        on_tx!(self, |conn, Db| {
            Ok(sqlx::query_scalar("SELECT generation FROM policy_state WHERE id = 1")
                .fetch_one(&mut *conn)
                .await?)
        })
    }

    /// Marks the policy set changed; answers the new generation.
    pub async fn bump_policy_generation(&mut self) -> Result<i64> {
        on_tx!(self, |conn, Db| {
            Ok(sqlx::query_scalar(
                "UPDATE policy_state SET generation = generation + 1 WHERE id = 1 RETURNING generation",
            )
            .fetch_one(&mut *conn)
            .await?)
        })
    }

    pub async fn policies(&mut self) -> Result<Vec<StoredPolicy>> {
        let sql = format!("SELECT {POLICY_COLUMNS} FROM policies ORDER BY position, id");
        on_tx!(self, |conn, Db| {
            let rows = sqlx::query(&sql).fetch_all(&mut *conn).await?;
            let mut policies = Vec::with_capacity(rows.len());
            for row in rows {
                policies.push(policy_from_row!(row));
            }
            Ok(policies)
        })
    }

    /// Stores a policy's new current version (a new policy when `version` is 1), and the
    /// version itself, kept forever.
    pub async fn save_policy(&mut self, policy: &StoredPolicy, created_by: &Value) -> Result<()> {
        let document = to_json(&policy.doc);
        let at = millis(policy.updated_at);
        on_tx!(self, |conn, Db| {
            if policy.version == 1 {
                sqlx::query(
                    "INSERT INTO policies (id, name, position, version, document, updated_at) \
                     VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(&policy.id)
                .bind(policy.doc.name.trim())
                .bind(policy.position)
                .bind(policy.version)
                .bind(&document)
                .bind(at)
                .execute(&mut *conn)
                .await?;
            } else {
                sqlx::query(
                    "UPDATE policies SET name = $2, position = $3, version = $4, document = $5, updated_at = $6 \
                     WHERE id = $1",
                )
                .bind(&policy.id)
                .bind(policy.doc.name.trim())
                .bind(policy.position)
                .bind(policy.version)
                .bind(&document)
                .bind(at)
                .execute(&mut *conn)
                .await?;
            }
            sqlx::query(
                "INSERT INTO policy_versions (policy_id, version, document, created_at, created_by) \
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(&policy.id)
            .bind(policy.version)
            .bind(&document)
            .bind(at)
            .bind(to_json(created_by))
            .execute(&mut *conn)
            .await?;
        });
        Ok(())
    }

    /// Sets the evaluation order: each policy id at its index.
    pub async fn set_policy_positions(&mut self, ids: &[String]) -> Result<()> {
        on_tx!(self, |conn, Db| {
            // Out of the way first, so no two rows share a position mid-way.
            sqlx::query("UPDATE policies SET position = position + 1000000")
                .execute(&mut *conn)
                .await?;
            for (position, id) in ids.iter().enumerate() {
                sqlx::query("UPDATE policies SET position = $2 WHERE id = $1")
                    .bind(id)
                    .bind(position as i64)
                    .execute(&mut *conn)
                    .await?;
            }
        });
        Ok(())
    }

    /// Grants for one agent, action and resource that are active at `now` (the query only
    /// skips the expired; [`grant_is_active`] decides).
    pub async fn usable_grants(
        &mut self,
        agent: AgentId,
        action: &str,
        resource: &str,
        now: OffsetDateTime,
    ) -> Result<Vec<GrantRecord>> {
        let sql = format!(
            "SELECT {GRANT_COLUMNS} FROM grants g JOIN agents a ON a.id = g.agent_id \
             WHERE g.agent_id = $1 AND g.action = $2 AND g.resource = $3 AND g.expires_at > $4 \
             ORDER BY g.created_at"
        );
        on_tx!(self, |conn, Db| {
            let rows = sqlx::query(&sql)
                .bind(agent.to_string())
                .bind(action)
                .bind(resource)
                .bind(millis(now))
                .fetch_all(&mut *conn)
                .await?;
            let mut grants = Vec::with_capacity(rows.len());
            for row in rows {
                let grant = grant_from_row!(row);
                if is_active(&grant, now) {
                    grants.push(grant);
                }
            }
            Ok(grants)
        })
    }

    pub async fn grant(&mut self, id: &str) -> Result<Option<GrantRecord>> {
        let sql = format!("SELECT {GRANT_COLUMNS} FROM grants g JOIN agents a ON a.id = g.agent_id WHERE g.id = $1");
        on_tx!(self, |conn, Db| {
            match sqlx::query(&sql).bind(id).fetch_optional(&mut *conn).await? {
                Some(row) => Ok(Some(grant_from_row!(row))),
                None => Ok(None),
            }
        })
    }

    pub async fn insert_grant(&mut self, grant: &GrantRecord) -> Result<()> {
        on_tx!(self, |conn, Db| {
            sqlx::query(
                "INSERT INTO grants (id, request_id, policy_id, policy_version, agent_id, action, resource, fields, \
                 granted_by, created_at, expires_at, max_uses, uses) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, 0)",
            )
            .bind(&grant.id)
            .bind(grant.request_id.to_string())
            .bind(&grant.policy_id)
            .bind(grant.policy_version)
            .bind(grant.agent_id.to_string())
            .bind(&grant.action)
            .bind(&grant.resource)
            .bind(to_json(&grant.fields))
            .bind(to_json(&grant.granted_by))
            .bind(millis(grant.created_at))
            .bind(millis(grant.expires_at))
            .bind(grant.max_uses)
            .execute(&mut *conn)
            .await?;
        });
        Ok(())
    }

    /// Counts uses of grants, each id once per use.
    pub async fn use_grants(&mut self, ids: &[&str]) -> Result<()> {
        on_tx!(self, |conn, Db| {
            for id in ids {
                sqlx::query("UPDATE grants SET uses = uses + 1 WHERE id = $1")
                    .bind(*id)
                    .execute(&mut *conn)
                    .await?;
            }
        });
        Ok(())
    }

    pub async fn revoke_grant(&mut self, id: &str, by: &Identity, now: OffsetDateTime) -> Result<()> {
        on_tx!(self, |conn, Db| {
            sqlx::query("UPDATE grants SET revoked_at = $2, revoked_by = $3 WHERE id = $1 AND revoked_at IS NULL")
                .bind(id)
                .bind(millis(now))
                .bind(to_json(by))
                .execute(&mut *conn)
                .await?;
        });
        Ok(())
    }

    pub async fn insert_followups(&mut self, opened: &[(RequestId, &Identity, OffsetDateTime)]) -> Result<()> {
        on_tx!(self, |conn, Db| {
            for (request, by, at) in opened {
                sqlx::query("INSERT INTO followups (request_id, opened_at, opened_by) VALUES ($1, $2, $3)")
                    .bind(request.to_string())
                    .bind(millis(*at))
                    .bind(to_json(by))
                    .execute(&mut *conn)
                    .await?;
            }
        });
        Ok(())
    }

    /// The follow-up's opener and whether it is still open; `None` when there is none.
    pub async fn followup(&mut self, request: RequestId) -> Result<Option<(Identity, bool)>> {
        on_tx!(self, |conn, Db| {
            let row = sqlx::query("SELECT opened_by, acknowledged_at FROM followups WHERE request_id = $1")
                .bind(request.to_string())
                .fetch_optional(&mut *conn)
                .await?;
            match row {
                Some(row) => Ok(Some((
                    from_json("opened_by", &row.try_get::<String, _>("opened_by")?)?,
                    row.try_get::<Option<i64>, _>("acknowledged_at")?.is_none(),
                ))),
                None => Ok(None),
            }
        })
    }

    pub async fn acknowledge_followup(&mut self, request: RequestId, by: &Identity, now: OffsetDateTime) -> Result<()> {
        on_tx!(self, |conn, Db| {
            sqlx::query(
                "UPDATE followups SET acknowledged_at = $2, acknowledged_by = $3 \
                 WHERE request_id = $1 AND acknowledged_at IS NULL",
            )
            .bind(request.to_string())
            .bind(millis(now))
            .bind(to_json(by))
            .execute(&mut *conn)
            .await?;
        });
        Ok(())
    }
}
