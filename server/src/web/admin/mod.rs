//! The admin console: policies, what-if, testing a request, agents and keys, grants, the
//! audit trail and break-glass follow-ups. Every route takes [`PageAdmin`], and every form
//! [`ConsoleForm`] (a console session with its CSRF token), so no admin handler can be
//! written without the checks; every change goes through the service and
//! the engine, and the pages show what they answered (ARCHITECTURE.md, "The admin console").

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use axum::Router;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::Value;

use signoff_app::policy::{
    DecideIn, Effect, Escalation, GrantTerms, Matcher, PolicyDoc, PolicyFile, RequestFacts, Requirement,
};
use signoff_app::ui::{
    self, AdminCounts, AgentRow, AgentsView, AuditFilters, AuditRow, AuditView, FollowupItem, GrantRow, Nav, Notice,
    PolicyEditView, PolicyForm, PolicyRow, TestResult, TestView, VersionRow, VersionsView, WhatIfResult, WhatIfRow,
    WhatIfView,
};
use signoff_app::{Identity, PolicySnapshot, RequestId};

use crate::Error;
use crate::auth::Person;
use crate::door::encode_query;
use crate::door::{ConsoleForm, NoFields, PageAdmin, PageError, PageViewer, chrome};
use crate::policy_file::{self, Format};
use crate::service::{AdminDesk, draft_set, now, outcome_text};
use crate::state::AppState;
use crate::store::{Actor, AuditEvent, AuditQuery, Followup, GrantRecord, PolicyVersion};

mod agents;
mod audit;
mod channels;
mod grants;
mod policies;
mod what_if;

use audit::actor_text;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/admin", get(index))
        .route("/admin/followups/{request}/acknowledge", post(acknowledge))
        .route("/admin/policies", get(policies::policies))
        .route(
            "/admin/policies/new",
            get(policies::new_policy).post(policies::create_policy),
        )
        .route(
            "/admin/policies/{id}",
            get(policies::edit_policy).post(policies::update_policy),
        )
        .route("/admin/policies/{id}/move", post(policies::move_policy))
        .route("/admin/policies/{id}/versions", get(policies::versions))
        .route("/admin/what-if", get(what_if::what_if_form).post(what_if::what_if))
        .route("/admin/test", get(what_if::test_form).post(what_if::test_request))
        .route("/admin/agents", get(agents::agents).post(agents::create_agent))
        .route("/admin/agents/{name}/rotate", post(agents::rotate_key))
        .route("/admin/agents/{name}/revoke", post(agents::revoke_keys))
        .route("/admin/grants", get(grants::grants))
        .route("/admin/grants/{id}/revoke", post(grants::admin_revoke_grant))
        .route("/admin/channels", get(channels::channels))
        .route("/admin/channels/{name}/test", post(channels::test_channel))
        .route("/admin/channels/{name}/deliveries", get(channels::deliveries))
        .route(
            "/admin/channels/{name}/deliveries/{seq}/send",
            post(channels::send_again),
        )
        .route("/admin/audit", get(audit::audit))
        .route("/admin/audit/export", get(audit::export))
        .route("/grants/{id}/revoke", post(grants::grantor_revoke_grant))
}

/// A page's shell, for an admin.
fn admin_chrome(state: &AppState, person: &Person, title: &str) -> ui::Chrome {
    chrome(state, Some(person), title, Nav::Admin)
}

fn html(status: StatusCode, page: String) -> Response {
    (status, Html(page)).into_response()
}

/// How a person is named on the admin pages: their email, else their name or subject.
fn who(identity: &Identity) -> String {
    identity
        .email
        .clone()
        .unwrap_or_else(|| identity.display_name().to_string())
}

// ----- overview and break-glass follow-ups ----------------------------------------------------

pub fn followup_items(followups: Vec<Followup>) -> Vec<FollowupItem> {
    followups
        .into_iter()
        .map(|followup| FollowupItem {
            request_id: followup.request_id.to_string(),
            title: followup.title,
            opened_at: followup.opened_at,
            opened_by: who(&followup.opened_by),
            acknowledged: followup.acknowledged_at.zip(followup.acknowledged_by.as_ref().map(who)),
        })
        .collect()
}

async fn index(State(state): State<AppState>, PageAdmin(person): PageAdmin) -> Result<Response, PageError> {
    render_index(&state, &person, None, StatusCode::OK).await
}

async fn render_index(
    state: &AppState,
    person: &Person,
    notice: Option<Notice>,
    status: StatusCode,
) -> Result<Response, PageError> {
    let overview = person.admin_desk(&state.service)?.overview().await?;
    let followups = overview.followups;
    let counts = AdminCounts {
        policies: overview.policies.len(),
        enabled_policies: overview.policies.iter().filter(|p| p.doc.enabled).count(),
        active_grants: overview.active_grants,
        open_followups: followups.iter().filter(|f| f.acknowledged_at.is_none()).count(),
        agents: overview.agents,
    };
    let page = ui::admin_page(
        admin_chrome(state, person, "Admin"),
        counts,
        followup_items(followups),
        notice,
    );
    Ok(html(status, page))
}

async fn acknowledge(
    State(state): State<AppState>,
    Path(request): Path<String>,
    ConsoleForm {
        who: PageAdmin(person), ..
    }: ConsoleForm<PageAdmin, NoFields>,
) -> Result<Response, PageError> {
    let request: RequestId = request
        .parse()
        .map_err(|_| PageError::from(Error::NotFound("no such request".into())))?;
    let (notice, status) = match person.admin_desk(&state.service)?.acknowledge_followup(request).await {
        Ok(true) => (
            Notice::good("Acknowledged: the break-glass approval leaves every admin's queue."),
            StatusCode::OK,
        ),
        Ok(false) => (
            Notice::good("Another admin had acknowledged it already."),
            StatusCode::OK,
        ),
        Err(error @ (Error::Forbidden(_) | Error::NotFound(_))) => {
            let (status, _) = error.status_and_code();
            (Notice::bad(error.to_string()), status)
        }
        Err(error) => return Err(PageError::from(error)),
    };
    render_index(&state, &person, Some(notice), status).await
}
