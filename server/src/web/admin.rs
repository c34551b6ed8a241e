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

use signoff_app::policy::{Effect, Escalation, GrantTerms, Matcher, PolicyDoc, PolicyFile, RequestFacts, Requirement};
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
use crate::service::{draft_set, now, outcome_text};
use crate::state::AppState;
use crate::store::{Actor, AuditEvent, AuditQuery, Followup, GrantRecord, PolicyVersion, StoredPolicy};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/admin", get(index))
        .route("/admin/followups/{request}/acknowledge", post(acknowledge))
        .route("/admin/policies", get(policies))
        .route("/admin/policies/new", get(new_policy).post(create_policy))
        .route("/admin/policies/{id}", get(edit_policy).post(update_policy))
        .route("/admin/policies/{id}/move", post(move_policy))
        .route("/admin/policies/{id}/versions", get(versions))
        .route("/admin/what-if", get(what_if_form).post(what_if))
        .route("/admin/test", get(test_form).post(test_request))
        .route("/admin/agents", get(agents).post(create_agent))
        .route("/admin/agents/{name}/rotate", post(rotate_key))
        .route("/admin/agents/{name}/revoke", post(revoke_keys))
        .route("/admin/grants", get(grants))
        .route("/admin/grants/{id}/revoke", post(admin_revoke_grant))
        .route("/admin/audit", get(audit))
        .route("/grants/{id}/revoke", post(grantor_revoke_grant))
}

/// A page's shell, for an admin.
fn admin_chrome(state: &AppState, person: &Person, title: &str) -> ui::Chrome {
    chrome(state, Some(person), title, Nav::Admin)
}

fn page_error<'a>(state: &'a AppState, person: &'a Person) -> impl Fn(Error) -> PageError + 'a {
    move |error| PageError::new(error, state, Some(person))
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
    let fail = page_error(state, person);
    let store = state.service.store();
    let policies = store.policies().await.map_err(&fail)?;
    let active_grants = store.grants(Some(now())).await.map_err(&fail)?.len();
    let followups = store.followups(false).await.map_err(&fail)?;
    let agents = store.list_agents().await.map_err(&fail)?.len();
    let counts = AdminCounts {
        policies: policies.len(),
        enabled_policies: policies.iter().filter(|p| p.doc.enabled).count(),
        active_grants,
        open_followups: followups.iter().filter(|f| f.acknowledged_at.is_none()).count(),
        agents,
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
    let fail = page_error(&state, &person);
    let request: RequestId = request
        .parse()
        .map_err(|_| fail(Error::NotFound("no such request".into())))?;
    let (notice, status) = match state.service.acknowledge_followup(request, &person.identity).await {
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
        Err(error) => return Err(fail(error)),
    };
    render_index(&state, &person, Some(notice), status).await
}

// ----- policies ---------------------------------------------------------------------------

/// What a policy does, in a few words.
pub fn effect_summary(effect: &Effect) -> String {
    match effect {
        Effect::Allow => "allow at once".into(),
        Effect::Deny { reason } => format!("deny: {reason}"),
        Effect::RequireApproval(terms) => {
            let groups = if terms.approver_groups.is_empty() {
                "reviewers".to_string()
            } else {
                terms.approver_groups.join(" or ")
            };
            let mut text = format!(
                "{} approval{} from {groups}",
                terms.approvals,
                if terms.approvals == 1 { "" } else { "s" }
            );
            if !terms.one_from_each.is_empty() {
                text.push_str(&format!(", one from each of {}", terms.one_from_each.join(", ")));
            }
            text
        }
    }
}

/// `?saved=` carries a policy's id, never text: the notice is written from the stored
/// policy, so a link cannot put words of its own on an admin page.
#[derive(Deserialize, Default)]
struct PoliciesParams {
    saved: Option<String>,
}

async fn policies(
    State(state): State<AppState>,
    PageAdmin(person): PageAdmin,
    params: Result<Query<PoliciesParams>, QueryRejection>,
) -> Result<Response, PageError> {
    let params = params.map(|Query(p)| p).unwrap_or_default();
    let notice = match params.saved {
        Some(id) => find_policy(&state, &id).await.ok().map(|policy| {
            Notice::good(format!(
                "Saved {}: version {} is in force.",
                policy.doc.name, policy.version
            ))
        }),
        None => None,
    };
    render_policies(&state, &person, notice).await
}

async fn render_policies(state: &AppState, person: &Person, notice: Option<Notice>) -> Result<Response, PageError> {
    let fail = page_error(state, person);
    let rows = state
        .service
        .store()
        .policies()
        .await
        .map_err(&fail)?
        .into_iter()
        .map(|policy| PolicyRow {
            effect: effect_summary(&policy.doc.effect),
            id: policy.id,
            name: policy.doc.name,
            enabled: policy.doc.enabled,
            version: policy.version,
            updated_at: policy.updated_at,
        })
        .collect();
    Ok(html(
        StatusCode::OK,
        ui::policies_page(admin_chrome(state, person, "Policies"), rows, notice),
    ))
}

#[derive(Deserialize)]
struct MoveForm {
    direction: String,
}

async fn move_policy(
    State(state): State<AppState>,
    Path(id): Path<String>,
    ConsoleForm {
        who: PageAdmin(person),
        form,
    }: ConsoleForm<PageAdmin, MoveForm>,
) -> Result<Response, PageError> {
    let fail = page_error(&state, &person);
    let earlier = match form.direction.as_str() {
        "up" => true,
        "down" => false,
        _ => return Err(fail(Error::BadRequest("move a policy up or down".into()))),
    };
    state
        .service
        .move_policy(&id, earlier, &person.identity)
        .await
        .map_err(&fail)?;
    Ok(Redirect::to("/admin/policies").into_response())
}

async fn find_policy(state: &AppState, id: &str) -> Result<StoredPolicy, Error> {
    state
        .service
        .store()
        .policies()
        .await?
        .into_iter()
        .find(|policy| policy.id == id)
        .ok_or_else(|| Error::not_found(format_args!("policy {id}")))
}

async fn new_policy(State(state): State<AppState>, PageAdmin(person): PageAdmin) -> Response {
    let form = PolicyForm {
        enabled: true,
        effect: "require_approval".into(),
        approvals: "1".into(),
        ..PolicyForm::default()
    };
    let page = PolicyEditView {
        form,
        ..PolicyEditView::default()
    };
    html(
        StatusCode::OK,
        ui::policy_edit_page(admin_chrome(&state, &person, "New policy"), page),
    )
}

/// `?saved=` carries the version just saved: the notice shows only while it is the one in
/// force, and never repeats text from the link.
#[derive(Deserialize)]
struct EditParams {
    saved: Option<String>,
}

async fn edit_policy(
    State(state): State<AppState>,
    PageAdmin(person): PageAdmin,
    Path(id): Path<String>,
    params: Result<Query<EditParams>, QueryRejection>,
) -> Result<Response, PageError> {
    let fail = page_error(&state, &person);
    let policy = find_policy(&state, &id).await.map_err(&fail)?;
    let saved = params
        .ok()
        .and_then(|Query(p)| p.saved)
        .and_then(|saved| saved.parse::<i64>().ok())
        == Some(policy.version);
    let page = PolicyEditView {
        id: Some(policy.id.clone()),
        version: Some(policy.version),
        form: form_from_doc(&policy.doc),
        errors: Vec::new(),
        notice: saved.then(|| Notice::good(format!("Saved: version {} is in force.", policy.version))),
    };
    Ok(html(
        StatusCode::OK,
        ui::policy_edit_page(admin_chrome(&state, &person, &policy.doc.name), page),
    ))
}

/// The policy form as posted: every field text, checkboxes present when ticked.
#[derive(Deserialize, Default)]
#[serde(default)]
struct PolicyInput {
    name: String,
    description: String,
    enabled: Option<String>,
    actions: String,
    resources: String,
    labels: String,
    agents: String,
    condition: String,
    effect: String,
    deny_reason: String,
    approvals: String,
    approver_groups: String,
    one_from_each: String,
    comment_required: Option<String>,
    ttl: String,
    escalation_after: String,
    escalation_groups: String,
    grant_max_duration: String,
    grant_max_uses: String,
    break_glass: String,
}

impl PolicyInput {
    fn into_form(self) -> PolicyForm {
        PolicyForm {
            name: self.name,
            description: self.description,
            enabled: self.enabled.is_some(),
            actions: self.actions,
            resources: self.resources,
            labels: self.labels,
            agents: self.agents,
            condition: self.condition,
            effect: self.effect,
            deny_reason: self.deny_reason,
            approvals: self.approvals,
            approver_groups: self.approver_groups,
            one_from_each: self.one_from_each,
            comment_required: self.comment_required.is_some(),
            ttl: self.ttl,
            escalation_after: self.escalation_after,
            escalation_groups: self.escalation_groups,
            grant_max_duration: self.grant_max_duration,
            grant_max_uses: self.grant_max_uses,
            break_glass: self.break_glass,
        }
    }
}

async fn create_policy(
    State(state): State<AppState>,
    ConsoleForm {
        who: PageAdmin(person),
        form: input,
    }: ConsoleForm<PageAdmin, PolicyInput>,
) -> Result<Response, PageError> {
    save_policy(&state, &person, None, input).await
}

async fn update_policy(
    State(state): State<AppState>,
    Path(id): Path<String>,
    ConsoleForm {
        who: PageAdmin(person),
        form: input,
    }: ConsoleForm<PageAdmin, PolicyInput>,
) -> Result<Response, PageError> {
    save_policy(&state, &person, Some(id), input).await
}

async fn save_policy(
    state: &AppState,
    person: &Person,
    id: Option<String>,
    input: PolicyInput,
) -> Result<Response, PageError> {
    let fail = page_error(state, person);
    let form = input.into_form();
    let refused = |errors: Vec<(String, String)>, status: StatusCode, version: Option<i64>| {
        let title = if form.name.trim().is_empty() {
            "Policy".to_string()
        } else {
            form.name.clone()
        };
        let page = PolicyEditView {
            id: id.clone(),
            version,
            form: form.clone(),
            errors,
            notice: None,
        };
        html(status, ui::policy_edit_page(admin_chrome(state, person, &title), page))
    };
    let version = match &id {
        Some(id) => Some(find_policy(state, id).await.map_err(&fail)?.version),
        None => None,
    };
    let doc = match doc_from_form(&form) {
        Ok(doc) => doc,
        Err(errors) => return Ok(refused(errors, StatusCode::UNPROCESSABLE_ENTITY, version)),
    };
    let by = Actor::Reviewer(person.identity.clone());
    match state.service.save_policy(id.as_deref(), doc, by).await {
        Ok(saved) => Ok(Redirect::to(&format!("/admin/policies/{}?saved={}", saved.id, saved.version)).into_response()),
        Err(Error::PolicyInvalid(problems)) => {
            let errors = problems
                .iter()
                .map(|problem| {
                    let message = match problem.position {
                        Some((line, column)) => format!("Line {line}, column {column}: {}", problem.message),
                        None => problem.message.clone(),
                    };
                    (form_field(&problem.field).to_string(), message)
                })
                .collect();
            Ok(refused(errors, StatusCode::UNPROCESSABLE_ENTITY, version))
        }
        Err(error @ Error::Conflict { .. }) => Ok(refused(
            vec![("name".into(), error.to_string())],
            StatusCode::CONFLICT,
            version,
        )),
        Err(error @ (Error::Invalid(_) | Error::BadRequest(_))) => {
            let (status, _) = error.status_and_code();
            Ok(refused(vec![(String::new(), error.to_string())], status, version))
        }
        Err(error) => Err(fail(error)),
    }
}

/// The form field a problem of the policy concerns (`match.labels[1]` is the labels
/// field); "" for the form as a whole.
fn form_field(problem_field: &str) -> &'static str {
    match problem_field.split('[').next().unwrap_or_default() {
        "name" => "name",
        "description" => "description",
        "match.actions" => "actions",
        "match.resources" => "resources",
        "match.labels" => "labels",
        "match.agents" => "agents",
        "match.condition" => "condition",
        "effect.reason" => "deny_reason",
        "effect.approvals" => "approvals",
        "effect.approver_groups" => "approver_groups",
        "effect.one_from_each" => "one_from_each",
        "effect.ttl" => "ttl",
        "effect.escalation" | "effect.escalation.after_minutes" => "escalation_after",
        "effect.escalation.groups" => "escalation_groups",
        "effect.grants" | "effect.grants.max_duration" => "grant_max_duration",
        "effect.grants.max_uses" => "grant_max_uses",
        "effect.break_glass" => "break_glass",
        _ => "",
    }
}

/// A list as admins type it: one per line, or separated by commas outside brackets (so
/// `compliance in [pci, fedramp]` stays one label rule).
fn split_list(text: &str) -> Vec<String> {
    let mut items = Vec::new();
    let mut current = String::new();
    let mut depth = 0usize;
    for c in text.chars() {
        match c {
            '[' => {
                depth += 1;
                current.push(c);
            }
            ']' => {
                depth = depth.saturating_sub(1);
                current.push(c);
            }
            ',' if depth == 0 => items.push(std::mem::take(&mut current)),
            '\n' | '\r' => {
                items.push(std::mem::take(&mut current));
                depth = 0;
            }
            _ => current.push(c),
        }
    }
    items.push(current);
    items
        .into_iter()
        .map(|item| item.trim().to_string())
        .filter(|item| !item.is_empty())
        .collect()
}

fn join_list(items: &[String]) -> String {
    items.join("\n")
}

/// The form's text as a policy; what is not even a number is refused here, at its field,
/// and everything else is the service's to check.
fn doc_from_form(form: &PolicyForm) -> Result<PolicyDoc, Vec<(String, String)>> {
    let mut errors = Vec::new();
    let mut number = |key: &str, text: &str, default: Option<u32>| -> u32 {
        match (text.trim(), default) {
            ("", Some(default)) => default,
            (text, _) => text.parse().unwrap_or_else(|_| {
                errors.push((key.to_string(), "a whole number".to_string()));
                0
            }),
        }
    };
    let effect =
        match form.effect.as_str() {
            "allow" => Effect::Allow,
            "deny" => Effect::Deny {
                reason: form.deny_reason.trim().to_string(),
            },
            "require_approval" => {
                let approvals = number("approvals", &form.approvals, Some(1));
                let escalation_groups = split_list(&form.escalation_groups);
                let escalation =
                    (!form.escalation_after.trim().is_empty() || !escalation_groups.is_empty()).then(|| Escalation {
                        after_minutes: number("escalation_after", &form.escalation_after, None),
                        groups: escalation_groups,
                    });
                let grants = (!form.grant_max_duration.trim().is_empty() || !form.grant_max_uses.trim().is_empty())
                    .then(|| GrantTerms {
                        max_duration: form.grant_max_duration.trim().to_string(),
                        max_uses: number("grant_max_uses", &form.grant_max_uses, Some(1)),
                    });
                Effect::RequireApproval(Requirement {
                    approvals,
                    approver_groups: split_list(&form.approver_groups),
                    one_from_each: split_list(&form.one_from_each),
                    comment_required: form.comment_required,
                    ttl: Some(form.ttl.trim().to_string()).filter(|ttl| !ttl.is_empty()),
                    escalation,
                    grants,
                    break_glass: split_list(&form.break_glass),
                })
            }
            _ => {
                errors.push((
                    String::new(),
                    "choose an effect: allow, deny or require approval".into(),
                ));
                Effect::Allow
            }
        };
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(PolicyDoc {
        name: form.name.trim().to_string(),
        description: form.description.trim().to_string(),
        enabled: form.enabled,
        matcher: Matcher {
            actions: split_list(&form.actions),
            resources: split_list(&form.resources),
            // Label rules may hold commas (`k in [a, b]`): one per line, or comma separated.
            labels: split_list(&form.labels),
            agents: split_list(&form.agents),
            condition: Some(form.condition.trim().to_string()).filter(|c| !c.is_empty()),
        },
        effect,
    })
}

fn form_from_doc(doc: &PolicyDoc) -> PolicyForm {
    let mut form = PolicyForm {
        name: doc.name.clone(),
        description: doc.description.clone(),
        enabled: doc.enabled,
        actions: join_list(&doc.matcher.actions),
        resources: join_list(&doc.matcher.resources),
        labels: join_list(&doc.matcher.labels),
        agents: join_list(&doc.matcher.agents),
        condition: doc.matcher.condition.clone().unwrap_or_default(),
        approvals: "1".into(),
        ..PolicyForm::default()
    };
    match &doc.effect {
        Effect::Allow => form.effect = "allow".into(),
        Effect::Deny { reason } => {
            form.effect = "deny".into();
            form.deny_reason = reason.clone();
        }
        Effect::RequireApproval(terms) => {
            form.effect = "require_approval".into();
            form.approvals = terms.approvals.to_string();
            form.approver_groups = join_list(&terms.approver_groups);
            form.one_from_each = join_list(&terms.one_from_each);
            form.comment_required = terms.comment_required;
            form.ttl = terms.ttl.clone().unwrap_or_default();
            if let Some(escalation) = &terms.escalation {
                form.escalation_after = escalation.after_minutes.to_string();
                form.escalation_groups = join_list(&escalation.groups);
            }
            if let Some(grants) = &terms.grants {
                form.grant_max_duration = grants.max_duration.clone();
                form.grant_max_uses = grants.max_uses.to_string();
            }
            form.break_glass = join_list(&terms.break_glass);
        }
    }
    form
}

#[derive(Deserialize, Default)]
struct VersionsParams {
    a: Option<i64>,
    b: Option<i64>,
}

/// One version as TOML, the way `signoff-server policies export` writes it.
fn toml_of(doc: &PolicyDoc) -> Result<String, Error> {
    policy_file::render(
        &PolicyFile {
            policies: vec![doc.clone()],
        },
        Format::Toml,
    )
}

async fn versions(
    State(state): State<AppState>,
    PageAdmin(person): PageAdmin,
    Path(id): Path<String>,
    params: Result<Query<VersionsParams>, QueryRejection>,
) -> Result<Response, PageError> {
    let fail = page_error(&state, &person);
    let Query(params) = params.map_err(|rejection| fail(Error::BadRequest(rejection.body_text())))?;
    let policy = find_policy(&state, &id).await.map_err(&fail)?;
    let versions: Vec<PolicyVersion> = state.service.store().policy_versions(&id).await.map_err(&fail)?;
    // By default, the newest change: the version before the newest against the newest.
    let newest = versions.first().map(|v| v.version);
    let b = params.b.or(newest);
    let a = params.a.or(b.map(|b| (b - 1).max(1)));
    let doc_of = |version: Option<i64>| versions.iter().find(|v| Some(v.version) == version).map(|v| &v.doc);
    let diff = match (doc_of(a), doc_of(b)) {
        (Some(old), Some(new)) => {
            let (old, new) = (toml_of(old).map_err(&fail)?, toml_of(new).map_err(&fail)?);
            let a_name = format!("version {}", a.unwrap_or_default());
            let b_name = format!("version {}", b.unwrap_or_default());
            Some(crate::diff::texts(old, new, a_name, b_name).await.map_err(&fail)?)
        }
        _ => None,
    };
    let rows = versions
        .iter()
        .map(|version| VersionRow {
            version: version.version,
            created_at: version.created_at,
            by: actor_text(&version.created_by),
        })
        .collect();
    let page = VersionsView {
        id: policy.id.clone(),
        name: policy.doc.name.clone(),
        versions: rows,
        a,
        b,
        diff,
    };
    Ok(html(
        StatusCode::OK,
        ui::policy_versions_page(admin_chrome(&state, &person, &policy.doc.name), page),
    ))
}

// ----- what-if and test a request ---------------------------------------------------------

const WHAT_IF_DEFAULT: usize = 1_000;

async fn current_file_text(state: &AppState) -> Result<String, Error> {
    let policies = state.service.store().policies().await?;
    policy_file::render(
        &PolicyFile {
            policies: policies.into_iter().map(|p| p.doc).collect(),
        },
        Format::Toml,
    )
}

async fn what_if_form(State(state): State<AppState>, PageAdmin(person): PageAdmin) -> Result<Response, PageError> {
    let draft = current_file_text(&state).await.map_err(page_error(&state, &person))?;
    let page = WhatIfView {
        draft,
        last: WHAT_IF_DEFAULT.to_string(),
        ..WhatIfView::default()
    };
    Ok(html(
        StatusCode::OK,
        ui::what_if_page(admin_chrome(&state, &person, "What-if"), page),
    ))
}

#[derive(Deserialize)]
struct WhatIfForm {
    #[serde(default)]
    draft: String,
    #[serde(default)]
    last: String,
}

async fn what_if(
    State(state): State<AppState>,
    ConsoleForm {
        who: PageAdmin(person),
        form,
    }: ConsoleForm<PageAdmin, WhatIfForm>,
) -> Result<Response, PageError> {
    let fail = page_error(&state, &person);
    let mut page = WhatIfView {
        draft: form.draft.clone(),
        last: form.last.clone(),
        ..WhatIfView::default()
    };
    let last = match form.last.trim() {
        "" => Ok(WHAT_IF_DEFAULT),
        text => text
            .replace([',', '_'], "")
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=100_000).contains(n))
            .ok_or("“last N requests” is a number from 1 to 100,000".to_string()),
    };
    let draft = policy_file::parse(&form.draft, Format::Toml)
        .and_then(|file| draft_set(&file, state.service.policy_set().default.clone()));
    match (last, draft) {
        (Ok(last), Ok(draft)) => {
            let found = state.service.what_if(Arc::new(draft), last).await.map_err(&fail)?;
            page.result = Some(WhatIfResult {
                examined: found.examined,
                elapsed_ms: found.elapsed.as_millis(),
                stopped_early: found.stopped_early,
                changes: found
                    .changes
                    .into_iter()
                    .map(|change| WhatIfRow {
                        request_id: change.request.to_string(),
                        title: change.title,
                        action: change.action,
                        agent: change.agent,
                        before_policy: change.before_policy,
                        before: change.before,
                        after_policy: change.after_policy,
                        after: change.after,
                    })
                    .collect(),
            });
        }
        (last, draft) => {
            if let Err(message) = last {
                page.problems.push(message);
            }
            match draft {
                Err(Error::PolicyInvalid(problems)) => page.problems.extend(problems.iter().map(ToString::to_string)),
                Err(error @ (Error::Invalid(_) | Error::BadRequest(_))) => page.problems.push(error.to_string()),
                Err(error) => return Err(fail(error)),
                Ok(_) => {}
            }
        }
    }
    let status = if page.problems.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    Ok(html(
        status,
        ui::what_if_page(admin_chrome(&state, &person, "What-if"), page),
    ))
}

const TEST_EXAMPLE: &str = r#"{
  "action": "deploy.service",
  "resource": "k8s://prod/payments-api",
  "title": "Deploy payments-api 1.5.0",
  "reason": "Fixes the refund rounding bug",
  "labels": {"env": "prod"},
  "payload": {"image": "payments-api:1.5.0"},
  "on_behalf_of": "reese@example.com"
}"#;

async fn test_form(State(state): State<AppState>, PageAdmin(person): PageAdmin) -> Response {
    let page = TestView {
        agent: "deploy-bot".into(),
        body: TEST_EXAMPLE.into(),
        ..TestView::default()
    };
    html(
        StatusCode::OK,
        ui::test_request_page(admin_chrome(&state, &person, "Test a request"), page),
    )
}

#[derive(Deserialize)]
struct TestForm {
    #[serde(default)]
    agent: String,
    #[serde(default)]
    body: String,
}

/// A request as agents POST it (fields the policies do not read, like `diff`, are let be).
#[derive(Deserialize)]
struct TestBody {
    action: String,
    resource: String,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default = "empty_object")]
    payload: Value,
    #[serde(default)]
    context: Option<Value>,
    #[serde(default)]
    on_behalf_of: Option<String>,
    #[serde(default)]
    title: String,
    #[serde(default)]
    reason: String,
}

fn empty_object() -> Value {
    Value::Object(serde_json::Map::new())
}

async fn test_request(
    State(state): State<AppState>,
    ConsoleForm {
        who: PageAdmin(person),
        form,
    }: ConsoleForm<PageAdmin, TestForm>,
) -> Result<Response, PageError> {
    let mut page = TestView {
        agent: form.agent.clone(),
        body: form.body.clone(),
        ..TestView::default()
    };
    match serde_json::from_str::<TestBody>(&form.body) {
        Err(err) => page
            .problems
            .push(format!("The request is not valid JSON for a request: {err}")),
        Ok(body) => {
            let facts = RequestFacts {
                agent: form.agent.trim(),
                action: &body.action,
                resource: &body.resource,
                labels: &body.labels,
                payload: &body.payload,
                context: body.context.as_ref(),
                on_behalf_of: body.on_behalf_of.as_deref(),
                title: &body.title,
                reason: &body.reason,
            };
            let (matched, snapshot) = state.service.test_request(&state.service.policy_set(), &facts);
            page.result = Some(TestResult {
                policy: matched.name.clone(),
                version: matched.version,
                outcome: outcome_text(&snapshot),
                why: matched.why.clone(),
                terms: terms_of(&matched.effect, &snapshot),
            });
        }
    }
    let status = if page.problems.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    Ok(html(
        status,
        ui::test_request_page(admin_chrome(&state, &person, "Test a request"), page),
    ))
}

/// A matched policy's terms, in words.
fn terms_of(effect: &Effect, snapshot: &PolicySnapshot) -> Vec<(String, String)> {
    let mut terms = Vec::new();
    match effect {
        Effect::Allow => terms.push(("Effect".into(), "allow".into())),
        Effect::Deny { reason } => {
            terms.push(("Effect".into(), "deny".into()));
            terms.push(("Reason".into(), reason.clone()));
        }
        Effect::RequireApproval(requirement) => {
            terms.push(("Effect".into(), "require approval".into()));
            terms.push(("Approvals".into(), snapshot.approvals_required.to_string()));
            terms.push(("Approver groups".into(), snapshot.approver_groups.join(", ")));
            if !snapshot.one_from_each.is_empty() {
                terms.push(("One from each of".into(), snapshot.one_from_each.join(", ")));
            }
            if snapshot.comment_required {
                terms.push(("Comment".into(), "required with an approval".into()));
            }
            if let Some(ttl) = &requirement.ttl {
                terms.push(("Pending for at most".into(), ttl.clone()));
            }
            if let Some(escalation) = &snapshot.escalation {
                terms.push((
                    "Escalation".into(),
                    format!(
                        "after {} min to {}",
                        escalation.after_minutes,
                        escalation.groups.join(", ")
                    ),
                ));
            }
            if let Some(grants) = &snapshot.grants {
                terms.push((
                    "Grants".into(),
                    format!("up to {} and {} uses", grants.max_duration, grants.max_uses),
                ));
            }
            if !snapshot.break_glass.is_empty() {
                terms.push(("Break-glass".into(), snapshot.break_glass.join(", ")));
            }
        }
    }
    terms
}

// ----- agents -----------------------------------------------------------------------------

async fn render_agents(
    state: &AppState,
    person: &Person,
    mut page: AgentsView,
    status: StatusCode,
) -> Result<Response, PageError> {
    let fail = page_error(state, person);
    let store = state.service.store();
    let last: HashMap<_, _> = store.agents_last_request().await.map_err(&fail)?;
    page.rows = store
        .list_agents()
        .await
        .map_err(&fail)?
        .into_iter()
        .map(|summary| AgentRow {
            last_request: last.get(&summary.agent.id).copied(),
            name: summary.agent.name,
            owner: summary.agent.owner,
            description: summary.description,
            active_keys: summary.active_keys,
            created_at: summary.agent.created_at,
        })
        .collect();
    Ok(html(
        status,
        ui::agents_page(admin_chrome(state, person, "Agents"), page),
    ))
}

async fn agents(State(state): State<AppState>, PageAdmin(person): PageAdmin) -> Result<Response, PageError> {
    render_agents(&state, &person, AgentsView::default(), StatusCode::OK).await
}

#[derive(Deserialize)]
struct AgentForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    owner: String,
    #[serde(default)]
    description: String,
}

async fn create_agent(
    State(state): State<AppState>,
    ConsoleForm {
        who: PageAdmin(person),
        form,
    }: ConsoleForm<PageAdmin, AgentForm>,
) -> Result<Response, PageError> {
    let fail = page_error(&state, &person);
    let name = form.name.trim().to_string();
    let mut page = AgentsView {
        name: form.name.clone(),
        owner: form.owner.clone(),
        description: form.description.clone(),
        ..AgentsView::default()
    };
    let exists = state
        .service
        .store()
        .list_agents()
        .await
        .map_err(&fail)?
        .iter()
        .any(|summary| summary.agent.name == name);
    if exists {
        page.notice = Some(Notice::bad(format!(
            "An agent named {name} exists already: rotate its key instead."
        )));
        return render_agents(&state, &person, page, StatusCode::CONFLICT).await;
    }
    let owner = Some(form.owner.trim()).filter(|owner| !owner.is_empty());
    match state
        .service
        .issue_described_agent_key(&name, owner, Some(form.description.as_str()), Some(&person.identity))
        .await
    {
        Ok((agent, key, _)) => {
            page = AgentsView {
                new_key: Some((agent.name.clone(), key)),
                notice: Some(Notice::good(format!("Created {}.", agent.name))),
                ..AgentsView::default()
            };
            render_agents(&state, &person, page, StatusCode::OK).await
        }
        Err(error @ Error::Invalid(_)) => {
            page.notice = Some(Notice::bad(error.to_string()));
            render_agents(&state, &person, page, StatusCode::UNPROCESSABLE_ENTITY).await
        }
        Err(error) => Err(fail(error)),
    }
}

/// A new key for the agent, its old keys revoked: the old ones fail at once, the new one
/// works (ARCHITECTURE.md, "The admin console").
async fn rotate_key(
    State(state): State<AppState>,
    Path(name): Path<String>,
    ConsoleForm {
        who: PageAdmin(person), ..
    }: ConsoleForm<PageAdmin, NoFields>,
) -> Result<Response, PageError> {
    let fail = page_error(&state, &person);
    let (agent, key, revoked) = state
        .service
        .rotate_agent_key(&name, &person.identity)
        .await
        .map_err(&fail)?
        .ok_or_else(|| fail(Error::not_found(format_args!("agent {name}"))))?;
    let page = AgentsView {
        notice: Some(Notice::good(format!(
            "Rotated the key of {}: {revoked} old key{} revoked.",
            agent.name,
            if revoked == 1 { "" } else { "s" }
        ))),
        new_key: Some((agent.name, key)),
        ..AgentsView::default()
    };
    render_agents(&state, &person, page, StatusCode::OK).await
}

async fn revoke_keys(
    State(state): State<AppState>,
    Path(name): Path<String>,
    ConsoleForm {
        who: PageAdmin(person), ..
    }: ConsoleForm<PageAdmin, NoFields>,
) -> Result<Response, PageError> {
    let fail = page_error(&state, &person);
    let revoked = state
        .service
        .revoke_agent_keys(&name, Some(&person.identity))
        .await
        .map_err(&fail)?
        .ok_or_else(|| fail(Error::not_found(format_args!("agent {name}"))))?;
    let page = AgentsView {
        notice: Some(Notice::good(format!(
            "Revoked {revoked} key{} of {name}: its requests are refused from now on.",
            if revoked == 1 { "" } else { "s" }
        ))),
        ..AgentsView::default()
    };
    render_agents(&state, &person, page, StatusCode::OK).await
}

// ----- grants -----------------------------------------------------------------------------

/// Where a grant stands: only an active one approves anything.
fn grant_state(
    grant: &GrantRecord,
    versions_in_force: &HashMap<String, i64>,
    at: time::OffsetDateTime,
) -> &'static str {
    if grant.revoked_at.is_some() {
        "revoked"
    } else if grant.uses >= grant.max_uses {
        "used up"
    } else if at >= grant.expires_at {
        "expired"
    } else if versions_in_force.get(&grant.policy_id) != Some(&grant.policy_version) {
        // Grants hold only under the policy version that allowed them.
        "ended: policy changed"
    } else {
        "active"
    }
}

async fn render_grants(
    state: &AppState,
    person: &Person,
    notice: Option<Notice>,
    status: StatusCode,
) -> Result<Response, PageError> {
    let fail = page_error(state, person);
    let in_force: HashMap<String, i64> = state
        .service
        .policy_set()
        .policies
        .iter()
        .filter(|policy| policy.doc.enabled)
        .map(|policy| (policy.id.clone(), policy.version))
        .collect();
    let names: HashMap<String, String> = state
        .service
        .policy_set()
        .policies
        .iter()
        .map(|policy| (policy.id.clone(), policy.doc.name.clone()))
        .collect();
    let at = now();
    let rows = state
        .service
        .store()
        .grants(None)
        .await
        .map_err(&fail)?
        .into_iter()
        .map(|grant| GrantRow {
            state: grant_state(&grant, &in_force, at).to_string(),
            id: grant.id.clone(),
            request_id: grant.request_id.to_string(),
            agent: grant.agent_name.clone(),
            action: grant.action.clone(),
            resource: grant.resource.clone(),
            fields: match grant.fields.get("$digest").and_then(Value::as_str) {
                Some(digest) => format!("the whole action (digest {})", digest.get(..12).unwrap_or(digest)),
                None if grant.fields.is_empty() => "any payload".into(),
                None => serde_json::to_string(&grant.fields).unwrap_or_default(),
            },
            grantors: grant.granted_by.iter().map(who).collect::<Vec<_>>().join(", "),
            uses: grant.uses,
            max_uses: grant.max_uses,
            expires_at: grant.expires_at,
            policy: format!(
                "{} (version {})",
                names
                    .get(&grant.policy_id)
                    .cloned()
                    .unwrap_or_else(|| grant.policy_id.clone()),
                grant.policy_version
            ),
        })
        .collect();
    Ok(html(
        status,
        ui::grants_page(admin_chrome(state, person, "Grants"), rows, notice),
    ))
}

async fn grants(State(state): State<AppState>, PageAdmin(person): PageAdmin) -> Result<Response, PageError> {
    render_grants(&state, &person, None, StatusCode::OK).await
}

async fn admin_revoke_grant(
    State(state): State<AppState>,
    Path(id): Path<String>,
    ConsoleForm {
        who: PageAdmin(person), ..
    }: ConsoleForm<PageAdmin, NoFields>,
) -> Result<Response, PageError> {
    let fail = page_error(&state, &person);
    let (notice, status) = match state.service.revoke_grant(&id, &person.identity, true).await {
        Ok(true) => (
            Notice::good("Grant revoked: it approves nothing from now on."),
            StatusCode::OK,
        ),
        Ok(false) => (Notice::good("That grant had been revoked already."), StatusCode::OK),
        Err(error @ Error::NotFound(_)) => (Notice::bad(error.to_string()), StatusCode::NOT_FOUND),
        Err(error) => return Err(fail(error)),
    };
    render_grants(&state, &person, Some(notice), status).await
}

/// A grantor who is not an admin revokes a grant they gave; the engine checks they did.
async fn grantor_revoke_grant(
    State(state): State<AppState>,
    Path(id): Path<String>,
    ConsoleForm {
        who: PageViewer(person),
        ..
    }: ConsoleForm<PageViewer, NoFields>,
) -> Result<Response, PageError> {
    let fail = page_error(&state, &person);
    state
        .service
        .revoke_grant(&id, &person.identity, false)
        .await
        .map_err(&fail)?;
    Ok(Redirect::to("/").into_response())
}

// ----- audit ------------------------------------------------------------------------------

const AUDIT_PAGE: i64 = 100;

#[derive(Deserialize, Default)]
#[serde(default)]
struct AuditParams {
    kind: String,
    actor: String,
    request: String,
    before: String,
    after: String,
}

/// Who an audit actor (or a policy version's author) was, in a few words.
fn actor_text(actor: &Value) -> String {
    serde_json::from_value::<Actor>(actor.clone()).map_or_else(|_| "someone unknown".into(), |actor| actor.name())
}

fn audit_row(event: AuditEvent) -> AuditRow {
    let mut data = serde_json::to_string(&event.data).unwrap_or_default();
    if data.chars().count() > 400 {
        data = data.chars().take(400).collect::<String>() + "…";
    }
    // An event this version cannot read still shows, by its stored kind.
    let what = event
        .event()
        .map_or_else(|_| event.kind.clone(), |event| event.describe());
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

async fn audit(
    State(state): State<AppState>,
    PageAdmin(person): PageAdmin,
    params: Result<Query<AuditParams>, QueryRejection>,
) -> Result<Response, PageError> {
    let fail = page_error(&state, &person);
    let Query(params) = params.map_err(|rejection| fail(Error::BadRequest(rejection.body_text())))?;
    let seq = |text: &str, name: &str| -> Result<Option<i64>, PageError> {
        match text.trim() {
            "" => Ok(None),
            text => text
                .parse()
                .map(Some)
                .map_err(|_| fail(Error::BadRequest(format!("`{name}` is an event number")))),
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
    let mut events = state.service.store().audit_search(&query).await.map_err(&fail)?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_split_on_lines_and_commas_but_not_inside_brackets() {
        assert_eq!(
            split_list("env=prod, compliance in [pci, fedramp]\nteam\r\n\n"),
            vec!["env=prod", "compliance in [pci, fedramp]", "team"]
        );
        assert!(split_list("  ,\n").is_empty());
    }

    #[test]
    fn problems_land_on_their_form_fields() {
        assert_eq!(form_field("match.condition"), "condition");
        assert_eq!(form_field("match.labels[2]"), "labels");
        assert_eq!(form_field("effect.grants.max_uses"), "grant_max_uses");
        assert_eq!(form_field("something new"), "");
    }

    #[test]
    fn the_form_and_the_policy_round_trip() {
        let doc = PolicyDoc {
            name: "prod deploys".into(),
            description: "two people".into(),
            enabled: false,
            matcher: Matcher {
                actions: vec!["deploy.*".into()],
                resources: Vec::new(),
                labels: vec!["env=prod".into(), "tier in [a, b]".into()],
                agents: Vec::new(),
                condition: Some("payload.replicas > 2".into()),
            },
            effect: Effect::RequireApproval(Requirement {
                approvals: 2,
                approver_groups: vec!["sre".into()],
                one_from_each: vec!["leads".into()],
                comment_required: true,
                ttl: Some("2h".into()),
                escalation: Some(Escalation {
                    after_minutes: 30,
                    groups: vec!["managers".into()],
                }),
                grants: Some(GrantTerms {
                    max_duration: "8h".into(),
                    max_uses: 5,
                }),
                break_glass: vec!["carol@example.com".into()],
            }),
        };
        assert_eq!(doc_from_form(&form_from_doc(&doc)), Ok(doc));
        let mut bad = form_from_doc(&PolicyDoc {
            name: "x".into(),
            description: String::new(),
            enabled: true,
            matcher: Matcher::default(),
            effect: Effect::Allow,
        });
        bad.effect = "require_approval".into();
        bad.approvals = "two".into();
        assert_eq!(
            doc_from_form(&bad).map_err(|errors| errors[0].0.clone()),
            Err("approvals".to_string())
        );
    }
}
