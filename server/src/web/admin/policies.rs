//! Policies: the ordered list, the edit form (one field per part), moving, versions and their comparison.

use super::*;

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
pub(super) struct PoliciesParams {
    saved: Option<String>,
}

pub(super) async fn policies(
    State(state): State<AppState>,
    PageAdmin(person): PageAdmin,
    params: Result<Query<PoliciesParams>, QueryRejection>,
) -> Result<Response, PageError> {
    let params = params.map(|Query(p)| p).unwrap_or_default();
    let notice = match params.saved {
        Some(id) => person.admin_desk(&state.service)?.policy(&id).await.ok().map(|policy| {
            Notice::good(format!(
                "Saved {}: version {} is in force.",
                policy.doc.name, policy.version
            ))
        }),
        None => None,
    };
    render_policies(&state, &person, notice).await
}

pub(super) async fn render_policies(
    state: &AppState,
    person: &Person,
    notice: Option<Notice>,
) -> Result<Response, PageError> {
    let rows = person
        .admin_desk(&state.service)?
        .policies()
        .await?
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
pub(super) struct MoveForm {
    direction: String,
}

pub(super) async fn move_policy(
    State(state): State<AppState>,
    Path(id): Path<String>,
    ConsoleForm {
        who: PageAdmin(person),
        form,
    }: ConsoleForm<PageAdmin, MoveForm>,
) -> Result<Response, PageError> {
    let earlier = match form.direction.as_str() {
        "up" => true,
        "down" => false,
        _ => return Err(PageError::from(Error::BadRequest("move a policy up or down".into()))),
    };
    person.admin_desk(&state.service)?.move_policy(&id, earlier).await?;
    Ok(Redirect::to("/admin/policies").into_response())
}

pub(super) async fn new_policy(State(state): State<AppState>, PageAdmin(person): PageAdmin) -> Response {
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
pub(super) struct EditParams {
    saved: Option<String>,
}

pub(super) async fn edit_policy(
    State(state): State<AppState>,
    PageAdmin(person): PageAdmin,
    Path(id): Path<String>,
    params: Result<Query<EditParams>, QueryRejection>,
) -> Result<Response, PageError> {
    let policy = person.admin_desk(&state.service)?.policy(&id).await?;
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
pub(super) struct PolicyInput {
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
    notify: String,
    escalation_notify: String,
    decide_in: String,
    remind_before: String,
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
            notify: self.notify,
            escalation_notify: self.escalation_notify,
            decide_in: self.decide_in,
            remind_before: self.remind_before,
        }
    }
}

pub(super) async fn create_policy(
    State(state): State<AppState>,
    ConsoleForm {
        who: PageAdmin(person),
        form: input,
    }: ConsoleForm<PageAdmin, PolicyInput>,
) -> Result<Response, PageError> {
    save_policy(&state, &person, None, input).await
}

pub(super) async fn update_policy(
    State(state): State<AppState>,
    Path(id): Path<String>,
    ConsoleForm {
        who: PageAdmin(person),
        form: input,
    }: ConsoleForm<PageAdmin, PolicyInput>,
) -> Result<Response, PageError> {
    save_policy(&state, &person, Some(id), input).await
}

pub(super) async fn save_policy(
    state: &AppState,
    person: &Person,
    id: Option<String>,
    input: PolicyInput,
) -> Result<Response, PageError> {
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
        Some(id) => Some(person.admin_desk(&state.service)?.policy(id).await?.version),
        None => None,
    };
    let doc = match doc_from_form(&form) {
        Ok(doc) => doc,
        Err(errors) => return Ok(refused(errors, StatusCode::UNPROCESSABLE_ENTITY, version)),
    };
    match person.admin_desk(&state.service)?.save_policy(id.as_deref(), doc).await {
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
        Err(error) => Err(PageError::from(error)),
    }
}

/// The form field a problem of the policy concerns (`match.labels[1]` is the labels
/// field); "" for the form as a whole.
pub(super) fn form_field(problem_field: &str) -> &'static str {
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
        "effect.notify" => "notify",
        "effect.escalation.notify" => "escalation_notify",
        "effect.remind_before" => "remind_before",
        _ => "",
    }
}

/// A list as admins type it: one per line, or separated by commas outside brackets (so
/// `compliance in [pci, fedramp]` stays one label rule).
pub(super) fn split_list(text: &str) -> Vec<String> {
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

pub(super) fn join_list(items: &[String]) -> String {
    items.join("\n")
}

/// The form's text as a policy; what is not even a number is refused here, at its field,
/// and everything else is the service's to check.
pub(super) fn doc_from_form(form: &PolicyForm) -> Result<PolicyDoc, Vec<(String, String)>> {
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
                let escalation_notify = split_list(&form.escalation_notify);
                let escalation = (!form.escalation_after.trim().is_empty()
                    || !escalation_groups.is_empty()
                    || !escalation_notify.is_empty())
                .then(|| Escalation {
                    after_minutes: number("escalation_after", &form.escalation_after, None),
                    groups: escalation_groups,
                    notify: escalation_notify,
                });
                let decide_in = match form.decide_in.as_str() {
                    "console" => DecideIn::Console,
                    // The select offers only these two; anything else is the default.
                    _ => DecideIn::Anywhere,
                };
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
                    notify: split_list(&form.notify),
                    decide_in,
                    remind_before: Some(form.remind_before.trim().to_string()).filter(|before| !before.is_empty()),
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

pub(super) fn form_from_doc(doc: &PolicyDoc) -> PolicyForm {
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
                form.escalation_notify = join_list(&escalation.notify);
            }
            form.notify = join_list(&terms.notify);
            form.decide_in = match terms.decide_in {
                DecideIn::Anywhere => "anywhere".into(),
                DecideIn::Console => "console".into(),
            };
            form.remind_before = terms.remind_before.clone().unwrap_or_default();
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
pub(super) struct VersionsParams {
    a: Option<i64>,
    b: Option<i64>,
}

/// One version as TOML, the way `signoff-server policies export` writes it.
pub(super) fn toml_of(doc: &PolicyDoc) -> Result<String, Error> {
    policy_file::render(
        &PolicyFile {
            policies: vec![doc.clone()],
        },
        Format::Toml,
    )
}

pub(super) async fn versions(
    State(state): State<AppState>,
    PageAdmin(person): PageAdmin,
    Path(id): Path<String>,
    params: Result<Query<VersionsParams>, QueryRejection>,
) -> Result<Response, PageError> {
    let Query(params) = params.map_err(|rejection| PageError::from(Error::BadRequest(rejection.body_text())))?;
    let policy = person.admin_desk(&state.service)?.policy(&id).await?;
    let versions: Vec<PolicyVersion> = person.admin_desk(&state.service)?.policy_versions(&id).await?;
    // By default, the newest change: the version before the newest against the newest.
    let newest = versions.first().map(|v| v.version);
    let b = params.b.or(newest);
    let a = params.a.or(b.map(|b| (b - 1).max(1)));
    let doc_of = |version: Option<i64>| versions.iter().find(|v| Some(v.version) == version).map(|v| &v.doc);
    let diff = match (doc_of(a), doc_of(b)) {
        (Some(old), Some(new)) => {
            let (old, new) = (toml_of(old)?, toml_of(new)?);
            let a_name = format!("version {}", a.unwrap_or_default());
            let b_name = format!("version {}", b.unwrap_or_default());
            Some(crate::diff::texts(old, new, a_name, b_name).await?)
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
                    notify: vec!["slack:#oncall".into()],
                }),
                grants: Some(GrantTerms {
                    max_duration: "8h".into(),
                    max_uses: 5,
                }),
                break_glass: vec!["carol@example.com".into()],
                notify: vec!["teams:ops".into(), "email:oncall@example.com".into()],
                decide_in: DecideIn::Console,
                remind_before: Some("10m".into()),
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
