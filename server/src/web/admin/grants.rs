//! Grants: who approved what ahead, revoking them.

use signoff_app::{GrantStanding, grant_standing};

use super::*;

/// Where a grant stands: its own terms ([`grant_standing`]), then whether the policy
/// version that allowed it is still in force, since grants hold only under that version.
pub(super) fn grant_state(
    grant: &GrantRecord,
    versions_in_force: &HashMap<String, i64>,
    at: time::OffsetDateTime,
) -> &'static str {
    match grant_standing(grant.revoked_at, grant.expires_at, grant.uses, grant.max_uses, at) {
        GrantStanding::Active if versions_in_force.get(&grant.policy_id) != Some(&grant.policy_version) => {
            "ended: policy changed"
        }
        standing => standing.as_str(),
    }
}

pub(super) async fn render_grants(
    state: &AppState,
    person: &Person,
    notice: Option<Notice>,
    status: StatusCode,
) -> Result<Response, PageError> {
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
    let rows = person
        .admin_desk(&state.service)?
        .grants(None)
        .await?
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

pub(super) async fn grants(State(state): State<AppState>, PageAdmin(person): PageAdmin) -> Result<Response, PageError> {
    render_grants(&state, &person, None, StatusCode::OK).await
}

pub(super) async fn admin_revoke_grant(
    State(state): State<AppState>,
    Path(id): Path<String>,
    ConsoleForm {
        who: PageAdmin(person), ..
    }: ConsoleForm<PageAdmin, NoFields>,
) -> Result<Response, PageError> {
    let (notice, status) = match person.admin_desk(&state.service)?.revoke_grant(&id).await {
        Ok(true) => (
            Notice::good("Grant revoked: it approves nothing from now on."),
            StatusCode::OK,
        ),
        Ok(false) => (Notice::good("That grant had been revoked already."), StatusCode::OK),
        Err(error @ Error::NotFound(_)) => (Notice::bad(error.to_string()), StatusCode::NOT_FOUND),
        Err(error) => return Err(PageError::from(error)),
    };
    render_grants(&state, &person, Some(notice), status).await
}

/// A grantor who is not an admin revokes a grant they gave; the engine checks they did.
pub(super) async fn grantor_revoke_grant(
    State(state): State<AppState>,
    Path(id): Path<String>,
    ConsoleForm {
        who: PageViewer(person),
        ..
    }: ConsoleForm<PageViewer, NoFields>,
) -> Result<Response, PageError> {
    person.desk(&state.service).revoke_given_grant(&id).await?;
    Ok(Redirect::to("/").into_response())
}
