//! The audit trail, newest first, filtered.

use super::*;

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
    PageAdmin(person): PageAdmin,
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
    let mut events = person.admin_desk(&state.service)?.audit(&query).await?;
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
    };
    Ok(html(
        StatusCode::OK,
        ui::audit_page(admin_chrome(&state, &person, "Audit trail"), page),
    ))
}
