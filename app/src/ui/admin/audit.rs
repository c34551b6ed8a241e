//! The audit trail.

use super::*;

#[derive(Clone, Debug)]
pub struct AuditRow {
    pub seq: i64,
    pub at: OffsetDateTime,
    pub kind: String,
    /// The event's sentence (`Event::describe`).
    pub what: String,
    pub request_id: Option<String>,
    pub actor: String,
    pub data: String,
}

#[derive(Clone, Debug, Default)]
pub struct AuditFilters {
    pub kind: String,
    pub actor: String,
    pub request: String,
}

pub struct AuditView {
    pub rows: Vec<AuditRow>,
    pub filters: AuditFilters,
    /// Links to the newer and older pages, when there are any.
    pub newer: Option<String>,
    pub older: Option<String>,
}

pub fn audit_page(chrome: Chrome, page: AuditView) -> String {
    let filters = page.filters;
    let body = view! {
        <h1>"Audit trail"</h1>
        {admin_nav(AdminSection::Audit)}
        <form method="get" action="/admin/audit" class="filters" role="search" id="audit-filters">
            <label>"Kind starts with" <input name="kind" value=filters.kind placeholder="policy." /></label>
            <label>"Actor" <input name="actor" value=filters.actor placeholder="alice@example.com" /></label>
            <label>"Request id" <input name="request" value=filters.request /></label>
            <button type="submit" class="button">"Filter"</button>
            <a href="/admin/audit" class="button link">"Clear"</a>
        </form>
        {if page.rows.is_empty() {
            view! { <p class="empty">"No events match."</p> }.into_any()
        } else {
            view! {
                <table id="audit" class="requests">
                    <thead><tr><th scope="col">"#"</th><th scope="col">"When"</th><th scope="col">"Event"</th><th scope="col">"Who"</th><th scope="col">"Details"</th></tr></thead>
                    <tbody>
                        {page.rows.into_iter().map(|row| view! {
                            <tr data-seq=row.seq.to_string()>
                                <td>{row.seq}</td>
                                <td>{timestamp(row.at)}</td>
                                <td>{row.what}<div class="sub"><code>{row.kind}</code></div>
                                    {row.request_id.map(|id| view! { <div class="sub"><a href=format!("/requests/{id}")>"request"</a></div> })}</td>
                                <td>{agent_text(row.actor)}</td>
                                <td><code class="small">{agent_text(row.data)}</code></td>
                            </tr>
                        }).collect_view()}
                    </tbody>
                </table>
            }.into_any()
        }}
        <p class="more">
            {page.newer.map(|href| view! { <a href=href id="newer">"← Newer"</a> })}
            " "
            {page.older.map(|href| view! { <a href=href id="older">"Older →"</a> })}
        </p>
    };
    render(chrome, body)
}
