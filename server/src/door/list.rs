//! The query parameters of the queue and history, shared by the reviewer API and the
//! console.

use serde::Deserialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use signoff_app::Status;

use crate::Error;
use crate::store::{Cursor, RequestFilter};

/// Query parameters of the queue and history.
#[derive(Deserialize, Default, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    /// `pending` (the queue, oldest first), `decided` (history, newest first), `all`, or one status.
    pub status: Option<String>,
    pub action: Option<String>,
    pub agent: Option<String>,
    /// `key=value`
    pub label: Option<String>,
    /// Email or subject of someone who decided.
    pub reviewer: Option<String>,
    pub needs_my_vote: Option<bool>,
    /// RFC 3339 bounds on the creation time.
    pub from: Option<String>,
    pub until: Option<String>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// Rows per page, 1 to 200 (default 50; values outside are clamped).
    pub limit: Option<i64>,
    /// `created` (default) or `expiry` (soonest expiry first, pending queue only, no cursor).
    pub order: Option<String>,
}

impl ListParams {
    /// The store filter these parameters describe.
    pub fn filter(&self) -> Result<RequestFilter, Error> {
        let (statuses, newest_first) = match self.status.as_deref().unwrap_or("pending") {
            "pending" => (vec![Status::Pending], false),
            "decided" => (Status::ALL.into_iter().filter(|s| *s != Status::Pending).collect(), true),
            "all" => (Vec::new(), true),
            other => (vec![other.parse().map_err(|_| {
                Error::BadRequest(format!("unknown status `{other}`: use pending, decided, all, or one of approved, denied, expired, cancelled, executed, failed"))
            })?], true),
        };
        let label = match self.label.as_deref().filter(|l| !l.is_empty()) {
            None => None,
            Some(label) => {
                let (key, value) = label
                    .split_once('=')
                    .ok_or_else(|| Error::BadRequest("label must look like key=value".into()))?;
                Some((key.to_string(), value.to_string()))
            }
        };
        let time = |name: &str, value: &Option<String>| -> Result<Option<OffsetDateTime>, Error> {
            match value.as_deref().filter(|v| !v.is_empty()) {
                None => Ok(None),
                Some(text) => OffsetDateTime::parse(text, &Rfc3339).map(Some).map_err(|_| {
                    Error::BadRequest(format!("{name} must be an RFC 3339 time such as 2026-11-21T09:00:00Z"))
                }),
            }
        };
        let non_empty = |value: &Option<String>| value.clone().filter(|v| !v.trim().is_empty());
        Ok(RequestFilter {
            statuses,
            action: non_empty(&self.action),
            agent: non_empty(&self.agent),
            label,
            decided_by: non_empty(&self.reviewer),
            created_from: time("from", &self.from)?,
            created_until: time("until", &self.until)?,
            open_to: None,
            by_expiry: match self.order.as_deref() {
                None | Some("") | Some("created") => false,
                Some("expiry") => true,
                Some(other) => {
                    return Err(Error::BadRequest(format!(
                        "unknown order `{other}`: use created or expiry"
                    )));
                }
            },
            newest_first,
            after: self
                .cursor
                .as_deref()
                .filter(|c| !c.is_empty())
                .map(Cursor::decode)
                .transpose()?,
            limit: self.limit.unwrap_or(50).clamp(1, 200),
        })
    }
}
