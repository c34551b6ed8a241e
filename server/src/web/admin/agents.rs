//! Agents and their keys: create, rotate, revoke.

use super::*;

pub(super) async fn render_agents(
    state: &AppState,
    person: &Person,
    mut page: AgentsView,
    status: StatusCode,
) -> Result<Response, PageError> {
    let (agents, last) = person.admin_desk(&state.service)?.agents().await?;
    page.rows = agents
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

pub(super) async fn agents(State(state): State<AppState>, PageAdmin(person): PageAdmin) -> Result<Response, PageError> {
    render_agents(&state, &person, AgentsView::default(), StatusCode::OK).await
}

#[derive(Deserialize)]
pub(super) struct AgentForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    owner: String,
    #[serde(default)]
    description: String,
}

pub(super) async fn create_agent(
    State(state): State<AppState>,
    ConsoleForm {
        who: PageAdmin(person),
        form,
    }: ConsoleForm<PageAdmin, AgentForm>,
) -> Result<Response, PageError> {
    let name = form.name.trim().to_string();
    let mut page = AgentsView {
        name: form.name.clone(),
        owner: form.owner.clone(),
        description: form.description.clone(),
        ..AgentsView::default()
    };
    let owner = Some(form.owner.trim()).filter(|owner| !owner.is_empty());
    match person
        .admin_desk(&state.service)?
        .create_agent(&name, owner, Some(form.description.as_str()))
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
        Err(Error::Conflict {
            code: "agent_exists", ..
        }) => {
            page.notice = Some(Notice::bad(format!(
                "An agent named {name} exists already: rotate its key instead."
            )));
            render_agents(&state, &person, page, StatusCode::CONFLICT).await
        }
        Err(error @ Error::Invalid(_)) => {
            page.notice = Some(Notice::bad(error.to_string()));
            render_agents(&state, &person, page, StatusCode::UNPROCESSABLE_ENTITY).await
        }
        Err(error) => Err(PageError::from(error)),
    }
}

/// A new key for the agent, its old keys revoked: the old ones fail at once, the new one
/// works (ARCHITECTURE.md, "The admin console").
pub(super) async fn rotate_key(
    State(state): State<AppState>,
    Path(name): Path<String>,
    ConsoleForm {
        who: PageAdmin(person), ..
    }: ConsoleForm<PageAdmin, NoFields>,
) -> Result<Response, PageError> {
    let (agent, key, revoked) = person.admin_desk(&state.service)?.rotate_agent_key(&name).await?;
    let page = AgentsView {
        notice: Some(Notice::good(format!(
            "Rotated the key of {}: {} revoked.",
            agent.name,
            keys(revoked, "old key")
        ))),
        new_key: Some((agent.name, key)),
        ..AgentsView::default()
    };
    render_agents(&state, &person, page, StatusCode::OK).await
}

pub(super) async fn revoke_keys(
    State(state): State<AppState>,
    Path(name): Path<String>,
    ConsoleForm {
        who: PageAdmin(person), ..
    }: ConsoleForm<PageAdmin, NoFields>,
) -> Result<Response, PageError> {
    let revoked = person.admin_desk(&state.service)?.revoke_agent_keys(&name).await?;
    let page = AgentsView {
        notice: Some(Notice::good(format!(
            "Revoked {} of {name}: its requests are refused from now on.",
            keys(revoked, "key")
        ))),
        ..AgentsView::default()
    };
    render_agents(&state, &person, page, StatusCode::OK).await
}

/// "1 key", "2 keys".
fn keys(count: u64, noun: &str) -> String {
    format!("{count} {noun}{}", if count == 1 { "" } else { "s" })
}
