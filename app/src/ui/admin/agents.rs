//! Agents and their keys.

use super::*;

#[derive(Clone, Debug)]
pub struct AgentRow {
    pub name: String,
    pub owner: Option<String>,
    pub description: Option<String>,
    pub active_keys: i64,
    pub created_at: OffsetDateTime,
    pub last_request: Option<OffsetDateTime>,
}

#[derive(Clone, Debug, Default)]
pub struct AgentsView {
    pub rows: Vec<AgentRow>,
    /// (agent, key): shown once, right after it was issued.
    pub new_key: Option<(String, String)>,
    pub notice: Option<Notice>,
    pub name: String,
    pub owner: String,
    pub description: String,
}

pub fn agents_page(chrome: Chrome, page: AgentsView) -> String {
    let csrf = chrome.csrf.clone().unwrap_or_default();
    let body = view! {
        <h1>"Agents"</h1>
        {admin_nav(AdminSection::Agents)}
        {notice_view(page.notice)}
        {page.new_key.map(|(agent, key)| view! {
            <section class="card key-once" id="new-key" role="status">
                <h2>{agent_text(format!("The new API key of {agent}"))}</h2>
                <p>"Copy it now: it is shown this once, and Signoff keeps only its hash."</p>
                <pre class="code" id="api-key">{key}</pre>
            </section>
        })}
        <table id="agents" class="requests">
            <thead><tr><th scope="col">"Agent"</th><th scope="col">"Owner"</th><th scope="col">"Description"</th><th scope="col">"Active keys"</th>
                <th scope="col">"Created"</th><th scope="col">"Last request"</th><th scope="col"></th></tr></thead>
            <tbody>
                {page.rows.into_iter().map(|row| {
                    let rotate = format!("/admin/agents/{}/rotate", row.name);
                    let revoke = format!("/admin/agents/{}/revoke", row.name);
                    let data_agent = row.name.clone();
                    view! {
                        <tr data-agent=data_agent>
                            <td>{agent_text(row.name)}</td>
                            <td>{agent_text(row.owner.unwrap_or_default())}</td>
                            <td>{agent_text(row.description.unwrap_or_default())}</td>
                            <td class="keys">{row.active_keys}</td>
                            <td>{timestamp(row.created_at)}</td>
                            <td>{row.last_request.map(timestamp).unwrap_or_else(|| "never".into())}</td>
                            <td class="row-actions">
                                <form method="post" action=rotate class="inline">
                                    {csrf_input(&csrf)}
                                    <button type="submit" class="button">"Rotate key"</button>
                                </form>
                                " "
                                <form method="post" action=revoke class="inline">
                                    {csrf_input(&csrf)}
                                    <button type="submit" class="button danger" disabled=row.active_keys == 0>"Revoke keys"</button>
                                </form>
                            </td>
                        </tr>
                    }
                }).collect_view()}
            </tbody>
        </table>
        <form method="post" action="/admin/agents" class="card filters" id="create-agent">
            {csrf_input(&csrf)}
            <label>"Name" <input name="name" value=page.name placeholder="deploy-bot" /></label>
            <label>"Owner (email)" <input name="owner" value=page.owner placeholder="ops@example.com" /></label>
            <label>"Description" <input name="description" value=page.description maxlength="500" placeholder="Deploys the payments services" /></label>
            <button type="submit" class="button primary">"Create agent and key"</button>
        </form>
    };
    render(chrome, body)
}
