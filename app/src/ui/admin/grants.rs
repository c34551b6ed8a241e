//! Grants.

use super::*;

#[derive(Clone, Debug)]
pub struct GrantRow {
    pub id: String,
    pub request_id: String,
    pub agent: String,
    pub action: String,
    pub resource: String,
    pub fields: String,
    pub grantors: String,
    pub uses: i64,
    pub max_uses: i64,
    pub expires_at: OffsetDateTime,
    pub policy: String,
    /// active, expired, used up, revoked, or ended (the policy changed version).
    pub state: String,
}

pub fn grants_page(chrome: Chrome, rows: Vec<GrantRow>, notice: Option<Notice>) -> String {
    let csrf = chrome.csrf.clone().unwrap_or_default();
    let body = view! {
        <h1>"Grants"</h1>
        {admin_nav(AdminSection::Grants)}
        {notice_view(notice)}
        <p class="muted">"An approval with a grant approves the same agent's later requests for the same action and resource, within its bounds."</p>
        {if rows.is_empty() {
            view! { <p class="empty">"No grants."</p> }.into_any()
        } else {
            view! {
                <table id="grants" class="requests">
                    <thead><tr><th scope="col">"Grant"</th><th scope="col">"Fields"</th><th scope="col">"Granted by"</th><th scope="col">"Uses"</th>
                        <th scope="col">"Expires"</th><th scope="col">"Policy"</th><th scope="col">"State"</th><th scope="col"></th></tr></thead>
                    <tbody>
                        {rows.into_iter().map(|row| {
                            let href = format!("/requests/{}", row.request_id);
                            let revoke = format!("/admin/grants/{}/revoke", row.id);
                            let active = row.state == "active";
                            let class = format!("grant-state {}", row.state.replace(' ', "-"));
                            view! {
                                <tr data-id=row.id.clone()>
                                    <td><a class="open" href=href>{agent_text(row.agent)}</a>
                                        <div class="sub"><code class="action">{agent_text(row.action)}</code> <span class="resource">{agent_text(row.resource)}</span></div></td>
                                    <td><code>{agent_text(row.fields)}</code></td>
                                    <td>{row.grantors}</td>
                                    <td>{format!("{}/{}", row.uses, row.max_uses)}</td>
                                    <td>{timestamp(row.expires_at)}</td>
                                    <td>{agent_text(row.policy)}</td>
                                    <td><span class=class>{row.state}</span></td>
                                    <td>{active.then(|| view! {
                                        <form method="post" action=revoke class="inline">
                                            {csrf_input(&csrf)}
                                            <button type="submit" class="button danger">"Revoke"</button>
                                        </form>
                                    })}</td>
                                </tr>
                            }
                        }).collect_view()}
                    </tbody>
                </table>
            }.into_any()
        }}
    };
    render(chrome, body)
}
