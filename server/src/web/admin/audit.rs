//! The audit trail, newest first, filtered; its newest checkpoint; downloads that verify
//! offline. For admins and auditors; every page and download read is itself recorded.

use super::*;
use crate::door::PageAuditor;
use crate::evidence::export::Format as ExportFormat;
use signoff_app::ui::CheckpointView;

pub(super) const AUDIT_PAGE: i64 = 100;

#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct AuditParams {
    kind: String,
    actor: String,
    request: String,
    before: String,
    after: String,
}

/// Who an audit actor (or a policy version's author) was, in a few words.
pub(super) fn actor_text(actor: &Value) -> String {
    serde_json::from_value::<Actor>(actor.clone()).map_or_else(|_| "someone unknown".into(), |actor| actor.name())
}

pub(super) fn audit_row(event: AuditEvent) -> AuditRow {
    let mut data = serde_json::to_string(&event.data).unwrap_or_default();
    if data.chars().count() > 400 {
        data = data.chars().take(400).collect::<String>() + "…";
    }
    let what = event.describe();
    AuditRow {
        seq: event.seq,
        at: crate::store::from_millis(event.at).unwrap_or_else(|_| now()),
        what,
        kind: event.kind,
        request_id: event.request_id,
        actor: actor_text(&event.actor),
        data,
    }
}

pub(super) async fn audit(
    State(state): State<AppState>,
    PageAuditor(person): PageAuditor,
    params: Result<Query<AuditParams>, QueryRejection>,
) -> Result<Response, PageError> {
    let Query(params) = params.map_err(|rejection| PageError::from(Error::BadRequest(rejection.body_text())))?;
    let seq = |text: &str, name: &str| -> Result<Option<i64>, PageError> {
        match text.trim() {
            "" => Ok(None),
            text => text
                .parse()
                .map(Some)
                .map_err(|_| PageError::from(Error::BadRequest(format!("`{name}` is an event number")))),
        }
    };
    let (before, after) = (seq(&params.before, "before")?, seq(&params.after, "after")?);
    let query = AuditQuery {
        before,
        after,
        kind_prefix: params.kind.clone(),
        actor: params.actor.clone(),
        request_id: Some(params.request.trim().to_string()).filter(|r| !r.is_empty()),
        limit: AUDIT_PAGE + 1,
    };
    let desk = person.desk(&state.service);
    let desk = desk.audit()?;
    let mut events = desk.audit(&query).await?;
    let checkpoint = desk.checkpoint().await?.map(|(row, agrees)| CheckpointView {
        size: row.tree_size,
        root: row.root,
        at: crate::store::from_millis(row.at).unwrap_or_else(|_| now()),
        key_id: row.key_id,
        agrees,
    });
    let paging_up = after.is_some() && before.is_none();
    let more = events.len() as i64 > AUDIT_PAGE;
    if more {
        // One more than a page was read to learn whether there is another page.
        if paging_up {
            events.remove(0);
        } else {
            events.pop();
        }
    }
    let (has_newer, has_older) = if paging_up {
        (more, true)
    } else {
        (before.is_some(), more)
    };
    let filters = AuditFilters {
        kind: params.kind.clone(),
        actor: params.actor.clone(),
        request: params.request.clone(),
    };
    let base = encode_query(
        &[
            ("kind", filters.kind.clone()),
            ("actor", filters.actor.clone()),
            ("request", filters.request.clone()),
        ]
        .into_iter()
        .filter(|(_, value)| !value.is_empty())
        .collect::<Vec<_>>(),
    );
    let link = |name: &str, seq: i64| {
        let joiner = if base.is_empty() { "" } else { "&" };
        format!("/admin/audit?{base}{joiner}{name}={seq}")
    };
    let newer = has_newer
        .then(|| events.first().map(|e| link("after", e.seq)))
        .flatten();
    let older = has_older
        .then(|| events.last().map(|e| link("before", e.seq)))
        .flatten();
    let page = AuditView {
        rows: events.into_iter().map(audit_row).collect(),
        filters,
        newer,
        older,
        checkpoint,
        admin: person.admin_desk(&state.service).is_ok(),
    };
    Ok(html(
        StatusCode::OK,
        ui::audit_page(admin_chrome(&state, &person, "Audit trail"), page),
    ))
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct ExportParams {
    format: String,
    since: String,
    until: String,
}

/// `GET /admin/audit/export`: a download of the trail (JSON lines that verify offline, or
/// CSV), between two dates.
pub(super) async fn export(
    State(state): State<AppState>,
    PageAuditor(person): PageAuditor,
    params: Result<Query<ExportParams>, QueryRejection>,
) -> Result<Response, PageError> {
    let Query(params) = params.map_err(|rejection| PageError::from(Error::BadRequest(rejection.body_text())))?;
    let format = match params.format.as_str() {
        "" | "jsonl" => ExportFormat::Jsonl,
        "csv" => ExportFormat::Csv,
        other => return Err(Error::BadRequest(format!("`{other}` is not a format: jsonl or csv")).into()),
    };
    let date = |text: &str, name: &str| -> Result<Option<i64>, PageError> {
        match text.trim() {
            "" => Ok(None),
            text => time::Date::parse(text, time::macros::format_description!("[year]-[month]-[day]"))
                .map(|date| Some(crate::store::millis(date.midnight().assume_utc())))
                .map_err(|_| Error::BadRequest(format!("`{name}` is a date such as 2026-12-01")).into()),
        }
    };
    let (since, until) = (date(&params.since, "since")?, date(&params.until, "until")?);
    let desk = person.desk(&state.service);
    let body = desk.audit()?.export(since, until, format).await?;
    let (content_type, extension) = match format {
        ExportFormat::Jsonl => ("application/jsonl; charset=utf-8", "jsonl"),
        ExportFormat::Csv => ("text/csv; charset=utf-8", "csv"),
    };
    let name = format!("signoff-audit.{extension}");
    Ok((
        [
            (axum::http::header::CONTENT_TYPE, content_type.to_string()),
            (
                axum::http::header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}\""),
            ),
        ],
        body,
    )
        .into_response())
}
