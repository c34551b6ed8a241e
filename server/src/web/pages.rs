//! Console pages: the queue, a request, history (and its CSV), the account, and the
//! place where admin pages will live. Every action is a plain HTML form.

use axum::Router;
use axum::body::Body;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use futures_util::stream;
use serde::Deserialize;

use signoff_app::ui::{
    self, DiffMode, HistoryFilters, HistoryView, Nav, QueueFilters, QueueView, RequestPageView, TimelineEntry,
    signin_page,
};
use signoff_app::wire::{DecisionInput, Me, RequestSummary, TokenInfo};
use signoff_app::{RequestId, Verdict};

use crate::auth::Person;
use crate::door::{ConsoleForm, MaybeSignedIn, NoFields, PageError, PageViewer, chrome, sign_in_redirect};
use crate::door::{ListParams, encode_query, no_access, request_id};
use crate::service::now;
use crate::state::AppState;
use crate::store::{AuditEvent, Cursor};
use crate::{Error, store};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(queue))
        .route("/fragments/queue", get(queue_fragment))
        .route("/requests/{id}", get(request))
        .route("/requests/{id}/decide", post(decide))
        .route("/history", get(history))
        .route("/history.csv", get(history_csv))
        .route("/me", get(account))
        .route("/me/tokens/{id}/revoke", post(revoke_token))
}

/// Query parameters of a page; malformed ones are an error page that says which.
fn query<T>(params: Result<Query<T>, QueryRejection>) -> Result<T, PageError> {
    params
        .map(|Query(params)| params)
        .map_err(|rejection| PageError::from(Error::BadRequest(rejection.body_text())))
}

#[derive(Deserialize, Default)]
struct QueueParams {
    action: Option<String>,
    agent: Option<String>,
    label: Option<String>,
    mine: Option<bool>,
    /// `expiry` sorts by urgency.
    order: Option<String>,
    cursor: Option<String>,
    /// The request just decided: select the one after it.
    after: Option<String>,
    done: Option<String>,
}

impl QueueParams {
    fn filters(&self) -> QueueFilters {
        QueueFilters {
            action: self.action.clone().unwrap_or_default(),
            agent: self.agent.clone().unwrap_or_default(),
            label: self.label.clone().unwrap_or_default(),
            mine: self.mine.unwrap_or(false),
            by_expiry: self.order.as_deref() == Some("expiry"),
        }
    }

    fn list_params(&self) -> ListParams {
        ListParams {
            status: Some("pending".into()),
            action: self.action.clone(),
            agent: self.agent.clone(),
            label: self.label.clone(),
            cursor: self.cursor.clone(),
            order: self.order.clone(),
            limit: Some(QUEUE_PAGE),
            ..ListParams::default()
        }
    }

    fn query_string(&self) -> String {
        let filters = self.filters();
        let mut pairs: Vec<(&str, String)> = Vec::new();
        for (name, value) in [
            ("action", filters.action),
            ("agent", filters.agent),
            ("label", filters.label),
        ] {
            if !value.is_empty() {
                pairs.push((name, value));
            }
        }
        if filters.mine {
            pairs.push(("mine", "true".into()));
        }
        if filters.by_expiry {
            pairs.push(("order", "expiry".into()));
        }
        encode_query(&pairs)
    }
}

const QUEUE_PAGE: i64 = 100;

async fn queue_items(
    state: &AppState,
    person: &Person,
    params: &QueueParams,
) -> Result<(Vec<RequestSummary>, Option<String>), Error> {
    let filter = params.list_params().filter()?;
    let page = person
        .desk(&state.service)
        .list(filter, params.mine.unwrap_or(false))
        .await?;
    Ok((page.items, page.next_cursor))
}

fn selected_after(items: &[RequestSummary], after: Option<&str>) -> Option<usize> {
    let after: RequestId = after?.parse().ok()?;
    // Ids are time-ordered (UUIDv7), like the queue: the next item is the first newer id.
    items
        .iter()
        .position(|item| item.id > after)
        .or(if items.is_empty() { None } else { Some(0) })
}

async fn queue(
    State(state): State<AppState>,
    person: Option<Person>,
    params: Result<Query<QueueParams>, QueryRejection>,
) -> Result<Response, PageError> {
    let params = query(params)?;
    let Some(person) = person else {
        let page = signin_page(chrome(&state, None, "Sign in", Nav::None), "/", state.auth.dev);
        return Ok(Html(page).into_response());
    };
    let desk = person.desk(&state.service);
    if desk.may_read().is_err() {
        return Ok(no_access(&state, &person));
    }
    let (items, next_cursor) = queue_items(&state, &person, &params).await?;
    let pending_total = desk.pending_count().await?;
    let flash = match params.done.as_deref() {
        Some("approve") => Some("Approved. The next request is selected.".to_string()),
        Some("deny") => Some("Denied. The next request is selected.".to_string()),
        _ => None,
    };
    let followups = crate::web::admin::followup_items(desk.open_followups().await?);
    let query = params.query_string();
    let more = next_cursor.map(|cursor| format!("/?{query}{}cursor={cursor}", if query.is_empty() { "" } else { "&" }));
    let view = QueueView {
        selected: selected_after(&items, params.after.as_deref()).or(Some(0)),
        items,
        pending_total,
        filters: params.filters(),
        more,
        flash,
        now: now(),
        followups,
    };
    Ok(Html(ui::queue_page(chrome(&state, Some(&person), "Queue", Nav::Queue), view)).into_response())
}

/// The queue table alone (the page script refreshes it on live events).
async fn queue_fragment(
    State(state): State<AppState>,
    person: Option<Person>,
    params: Result<Query<QueueParams>, QueryRejection>,
) -> Result<Response, Error> {
    let Query(params) = params.map_err(|rejection| Error::BadRequest(rejection.body_text()))?;
    let person = person.ok_or_else(|| Error::Unauthorized("sign in again".into()))?;
    let (items, _) = queue_items(&state, &person, &params).await?;
    let total = person.desk(&state.service).pending_count().await?;
    let html = ui::queue_fragment(items, None, now(), !params.filters().is_empty());
    let mut response = Html(html).into_response();
    if let Ok(value) = HeaderValue::from_str(&total.to_string()) {
        response.headers_mut().insert("x-pending-count", value);
    }
    Ok(response)
}

#[derive(Deserialize, Default)]
struct RequestParams {
    view: Option<String>,
}

async fn request(
    State(state): State<AppState>,
    PageViewer(person): PageViewer,
    Path(id): Path<String>,
    params: Result<Query<RequestParams>, QueryRejection>,
) -> Result<Response, PageError> {
    let params = query(params)?;
    let mode = if params.view.as_deref() == Some("split") {
        DiffMode::Split
    } else {
        DiffMode::Unified
    };
    render_request(&state, &person, &id, mode, None, String::new(), StatusCode::OK).await
}

async fn render_request(
    state: &AppState,
    person: &Person,
    id: &str,
    diff_mode: DiffMode,
    notice: Option<(Verdict, String)>,
    comment: String,
    status: StatusCode,
) -> Result<Response, PageError> {
    let id = request_id(id)?;
    let desk = person.desk(&state.service);
    let (review, break_glass) = desk.review(id).await?;
    let timeline = desk.timeline(id).await?.into_iter().map(timeline_entry).collect();
    let title = review.request.title.clone();
    let page = RequestPageView {
        review,
        timeline,
        diff_mode,
        notice,
        comment,
        now: now(),
        break_glass,
    };
    Ok((
        status,
        Html(ui::request_page(chrome(state, Some(person), &title, Nav::Queue), page)),
    )
        .into_response())
}

fn timeline_entry(event: AuditEvent) -> TimelineEntry {
    let what = event.describe();
    let who = event
        .actor()
        .map_or_else(|| "by someone unknown".to_string(), |actor| actor.describe());
    TimelineEntry {
        at: store::from_millis(event.at).unwrap_or_else(|_| now()),
        what,
        who,
    }
}

#[derive(Deserialize)]
struct DecideForm {
    verdict: String,
    #[serde(default)]
    comment: String,
    /// "on" when an admin approves their own request under break-glass.
    break_glass: Option<String>,
    /// A grant with the approval: how long, how many uses, which payload fields.
    #[serde(default)]
    grant_duration: String,
    grant_uses: Option<u32>,
    #[serde(default)]
    grant_fields: String,
}

impl DecideForm {
    fn grant(&self) -> Option<signoff_app::wire::GrantInput> {
        let duration = self.grant_duration.trim();
        (!duration.is_empty()).then(|| signoff_app::wire::GrantInput {
            duration: duration.to_string(),
            max_uses: self.grant_uses.unwrap_or(1),
            fields: self
                .grant_fields
                .split(',')
                .map(|field| field.trim().to_string())
                .filter(|field| !field.is_empty())
                .collect(),
        })
    }
}

async fn decide(
    State(state): State<AppState>,
    Path(id): Path<String>,
    ConsoleForm {
        who: PageViewer(person),
        form,
    }: ConsoleForm<PageViewer, DecideForm>,
) -> Result<Response, PageError> {
    let verdict = Verdict::parse(&form.verdict)
        .ok_or_else(|| PageError::from(Error::BadRequest("the verdict must be approve or deny".into())))?;
    let request = request_id(&id)?;
    let break_glass = form.break_glass.as_deref() == Some("on");
    let input = DecisionInput {
        verdict,
        comment: form.comment.clone(),
        break_glass,
        grant: form.grant(),
    };
    match person
        .desk(&state.service)
        .decide(request, &input, person.channel)
        .await
    {
        Ok(_) => Ok(Redirect::to(&format!("/?after={request}&done={}", verdict.as_str())).into_response()),
        Err(error @ (Error::Rule(_) | Error::Invalid(_))) => {
            let (status, _) = error.status_and_code();
            render_request(
                &state,
                &person,
                &id,
                DiffMode::Unified,
                Some((verdict, error.to_string())),
                form.comment,
                status,
            )
            .await
        }
        Err(error) => Err(PageError::from(error)),
    }
}

#[derive(Deserialize, Default)]
struct HistoryParams {
    status: Option<String>,
    agent: Option<String>,
    action: Option<String>,
    reviewer: Option<String>,
    label: Option<String>,
    from: Option<String>,
    until: Option<String>,
    cursor: Option<String>,
}

impl HistoryParams {
    fn list_params(&self, limit: i64) -> ListParams {
        let status = self
            .status
            .clone()
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "all".into());
        ListParams {
            status: Some(status),
            action: self.action.clone(),
            agent: self.agent.clone(),
            label: self.label.clone(),
            reviewer: self.reviewer.clone(),
            from: self.from.clone(),
            until: self.until.clone(),
            cursor: self.cursor.clone(),
            limit: Some(limit),
            ..ListParams::default()
        }
    }

    fn filters(&self) -> HistoryFilters {
        let value = |v: &Option<String>| v.clone().unwrap_or_default();
        HistoryFilters {
            status: value(&self.status),
            agent: value(&self.agent),
            action: value(&self.action),
            reviewer: value(&self.reviewer),
            label: value(&self.label),
            from: value(&self.from),
            until: value(&self.until),
        }
    }

    fn query_string(&self) -> String {
        let f = self.filters();
        let pairs: Vec<(&str, String)> = [
            ("status", f.status),
            ("agent", f.agent),
            ("action", f.action),
            ("reviewer", f.reviewer),
            ("label", f.label),
            ("from", f.from),
            ("until", f.until),
        ]
        .into_iter()
        .filter(|(_, v)| !v.is_empty())
        .collect();
        encode_query(&pairs)
    }
}

async fn history(
    State(state): State<AppState>,
    PageViewer(person): PageViewer,
    params: Result<Query<HistoryParams>, QueryRejection>,
) -> Result<Response, PageError> {
    let params = query(params)?;
    let filter = params.list_params(50).filter()?;
    let page = person.desk(&state.service).list(filter, false).await?;
    let view = HistoryView {
        items: page.items,
        filters: params.filters(),
        query: params.query_string(),
        next_cursor: page.next_cursor,
        now: now(),
    };
    Ok(Html(ui::history_page(
        chrome(&state, Some(&person), "History", Nav::History),
        view,
    ))
    .into_response())
}

/// Rows in one CSV export at most; past it the file says it was cut.
const CSV_MAX_ROWS: usize = 1_000_000;
const CSV_PAGE: i64 = 500;

/// The filtered history as CSV, streamed page by page.
async fn history_csv(
    State(state): State<AppState>,
    person: Option<Person>,
    params: Result<Query<HistoryParams>, QueryRejection>,
) -> Result<Response, Error> {
    let Query(params) = params.map_err(|rejection| Error::BadRequest(rejection.body_text()))?;
    let person = person.ok_or_else(|| Error::Unauthorized("sign in first".into()))?;
    // Refused before the file starts, not part way through it.
    person.desk(&state.service).may_read()?;
    let filter = params.list_params(CSV_PAGE).filter()?;
    let header = "id,created_at,status,action,resource,title,agent,on_behalf_of,approvals,approvals_required,decided_at,deciders\n".to_string();
    struct Export {
        state: AppState,
        person: Person,
        filter: crate::store::RequestFilter,
        rows: usize,
        done: bool,
    }
    let export = Export {
        state,
        person,
        filter,
        rows: 0,
        done: false,
    };
    let body = stream::unfold((Some(header), export), |(header, mut export)| async move {
        if let Some(header) = header {
            return Some((Ok::<_, std::io::Error>(header), (None, export)));
        }
        if export.done {
            return None;
        }
        let page = match export
            .person
            .desk(&export.state.service)
            .list(export.filter.clone(), false)
            .await
        {
            Ok(page) => page,
            Err(err) => {
                tracing::error!(%err, "CSV export failed part way");
                export.done = true;
                return Some((
                    Ok("# export interrupted by a server error\n".to_string()),
                    (None, export),
                ));
            }
        };
        let mut chunk = String::new();
        for item in &page.items {
            chunk.push_str(&csv_row(item));
        }
        export.rows += page.items.len();
        match page.next_cursor {
            Some(cursor) if export.rows < CSV_MAX_ROWS => {
                export.filter.after = Cursor::decode(&cursor).ok();
            }
            Some(_) => {
                chunk.push_str("# cut at 1,000,000 rows: narrow the filters\n");
                export.done = true;
            }
            None => export.done = true,
        }
        Some((Ok(chunk), (None, export)))
    });
    let mut response = Body::from_stream(body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    headers.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_static("attachment; filename=\"signoff-history.csv\""),
    );
    Ok(response)
}

fn csv_row(item: &RequestSummary) -> String {
    let deciders = item
        .deciders
        .iter()
        .map(|d| format!("{} ({})", d.name, d.verdict.as_str()))
        .collect::<Vec<_>>()
        .join("; ");
    let fields = [
        item.id.to_string(),
        item.created_at.to_string(),
        item.status.to_string(),
        item.action.clone(),
        item.resource.clone(),
        item.title.clone(),
        item.agent.clone(),
        item.on_behalf_of.clone().unwrap_or_default(),
        item.approvals.to_string(),
        item.approvals_required.to_string(),
        item.decided_at.map(|at| at.to_string()).unwrap_or_default(),
        deciders,
    ];
    let mut line = fields
        .iter()
        .map(|field| csv_field(field))
        .collect::<Vec<_>>()
        .join(",");
    line.push('\n');
    line
}

/// Quotes a CSV field (always: a spreadsheet may split cells on `;`, tabs or `|` as well as
/// `,`), and defuses formulas: where a cell could start (the field's start, or after any of
/// those separators or a line break, spaces skipped) a formula character gets a `'` before it.
fn csv_field(value: &str) -> String {
    let mut field = String::with_capacity(value.len() + 2);
    field.push('"');
    let mut cell_start = true;
    for c in value.chars() {
        if cell_start && matches!(c, '=' | '+' | '-' | '@' | '\t' | '\r') {
            field.push('\'');
        }
        if c == '"' {
            field.push('"');
        }
        field.push(c);
        cell_start = matches!(c, ',' | ';' | '\t' | '|' | '\n' | '\r') || (cell_start && c == ' ');
    }
    field.push('"');
    field
}

async fn account(State(state): State<AppState>, person: Option<Person>) -> Result<Response, PageError> {
    let Some(person) = person else {
        return Ok(sign_in_redirect("/me"));
    };
    let tokens = person.desk(&state.service).tokens(false).await?;
    let tokens = tokens
        .into_iter()
        .map(|record| TokenInfo {
            id: record.id,
            client_name: record.client_name,
            owner: record.identity.email.clone().unwrap_or_default(),
            created_at: record.created_at,
            expires_at: record.expires_at,
        })
        .collect();
    let me = Me {
        identity: person.identity.clone(),
        roles: person.roles.clone(),
        auth_time: person.auth_time,
    };
    Ok(Html(ui::account_page(
        chrome(&state, Some(&person), "Account", Nav::Account),
        me,
        tokens,
    ))
    .into_response())
}

async fn revoke_token(
    State(state): State<AppState>,
    Path(id): Path<String>,
    ConsoleForm {
        who: MaybeSignedIn(person),
        ..
    }: ConsoleForm<MaybeSignedIn, NoFields>,
) -> Result<Response, PageError> {
    let Some(person) = person else {
        return Ok(sign_in_redirect("/me"));
    };
    let revoked = person.desk(&state.service).revoke_own_token(&id).await?;
    if !revoked {
        return Err(PageError::from(Error::NotFound("no such active token of yours".into())));
    }
    Ok(Redirect::to("/me").into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_are_quoted_and_formulas_defused() {
        assert_eq!(csv_field("plain"), "\"plain\"");
        assert_eq!(csv_field(""), "\"\"");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
        assert_eq!(csv_field("-1"), "\"'-1\"");
        // With `;` as the spreadsheet's separator, the middle cell would be a live formula.
        assert_eq!(csv_field("x;=cmd|' /C calc'!A0;y"), "\"x;'=cmd|' /C calc'!A0;y\"");
        assert_eq!(csv_field("a|@SUM(A1)"), "\"a|'@SUM(A1)\"");
        assert_eq!(csv_field("a\n+1\r\n-2"), "\"a\n'+1\r\n'-2\"");
        assert_eq!(csv_field("a\t=1"), "\"a\t'=1\"");
        assert_eq!(csv_field("ok; =1"), "\"ok; '=1\"");
        assert_eq!(csv_field("\t=1"), "\"'\t'=1\"");
        // Formula characters inside a cell are left alone.
        assert_eq!(csv_field("a - b = c"), "\"a - b = c\"");
        assert_eq!(
            csv_field("2026-01-01 12:00:00.0 +00:00:00"),
            "\"2026-01-01 12:00:00.0 +00:00:00\""
        );
    }
}
