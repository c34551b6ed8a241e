//! What-if replays and testing one request against the policies.

use super::*;

pub(super) const WHAT_IF_DEFAULT: usize = 1_000;

pub(super) async fn current_file_text(desk: &AdminDesk<'_>) -> Result<String, Error> {
    let policies = desk.policies().await?;
    policy_file::render(
        &PolicyFile {
            policies: policies.into_iter().map(|p| p.doc).collect(),
        },
        Format::Toml,
    )
}

pub(super) async fn what_if_form(
    State(state): State<AppState>,
    PageAdmin(person): PageAdmin,
) -> Result<Response, PageError> {
    let draft = current_file_text(&person.admin_desk(&state.service)?).await?;
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
pub(super) struct WhatIfForm {
    #[serde(default)]
    draft: String,
    #[serde(default)]
    last: String,
}

pub(super) async fn what_if(
    State(state): State<AppState>,
    ConsoleForm {
        who: PageAdmin(person),
        form,
    }: ConsoleForm<PageAdmin, WhatIfForm>,
) -> Result<Response, PageError> {
    let desk = person.admin_desk(&state.service)?;
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
        .and_then(|file| draft_set(&file, desk.policy_set().default.clone()));
    match (last, draft) {
        (Ok(last), Ok(draft)) => {
            let found = desk.what_if(Arc::new(draft), last).await?;
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
                Err(error) => return Err(PageError::from(error)),
                Ok(_) => {}
            }
        }
    }
    Ok(html(
        refused_if(&page.problems),
        ui::what_if_page(admin_chrome(&state, &person, "What-if"), page),
    ))
}

pub(super) const TEST_EXAMPLE: &str = r#"{
  "action": "deploy.service",
  "resource": "k8s://prod/payments-api",
  "title": "Deploy payments-api 1.5.0",
  "reason": "Fixes the refund rounding bug",
  "labels": {"env": "prod"},
  "payload": {"image": "payments-api:1.5.0"},
  "on_behalf_of": "reese@example.com"
}"#;

pub(super) async fn test_form(State(state): State<AppState>, PageAdmin(person): PageAdmin) -> Response {
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
pub(super) struct TestForm {
    #[serde(default)]
    agent: String,
    #[serde(default)]
    body: String,
}

/// A request as agents POST it (fields the policies do not read, like `diff`, are let be).
#[derive(Deserialize)]
pub(super) struct TestBody {
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

pub(super) fn empty_object() -> Value {
    Value::Object(serde_json::Map::new())
}

pub(super) async fn test_request(
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
            let (matched, snapshot) = person.admin_desk(&state.service)?.test_request(&facts);
            page.result = Some(TestResult {
                policy: matched.name.clone(),
                version: matched.version,
                outcome: outcome_text(&snapshot),
                why: matched.why.clone(),
                terms: terms_of(&matched.effect, &snapshot),
            });
        }
    }
    Ok(html(
        refused_if(&page.problems),
        ui::test_request_page(admin_chrome(&state, &person, "Test a request"), page),
    ))
}

/// A matched policy's terms, in words.
pub(super) fn terms_of(effect: &Effect, snapshot: &PolicySnapshot) -> Vec<(String, String)> {
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

/// A form with problems answers 422, so a script can tell it was refused.
fn refused_if<T>(problems: &[T]) -> StatusCode {
    if problems.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    }
}
