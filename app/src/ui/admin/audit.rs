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
    /// The newest signed checkpoint, once there is one.
    pub checkpoint: Option<CheckpointView>,
    /// The viewer is an admin (an auditor sees no links to the other admin pages).
    pub admin: bool,
}

/// The newest signed checkpoint, as the audit page shows it.
#[derive(Clone, Debug)]
pub struct CheckpointView {
    pub size: i64,
    /// Base64.
    pub root: String,
    pub at: OffsetDateTime,
    pub key_id: String,
    /// Whether the tree as stored now still has the root that was signed.
    pub agrees: bool,
}

pub fn audit_page(chrome: Chrome, page: AuditView) -> String {
    let filters = page.filters;
    let size = page.checkpoint.as_ref().map_or(0, |checkpoint| checkpoint.size);
    let checkpoint = page.checkpoint.map(|checkpoint| {
        let (class, verdict) = if checkpoint.agrees {
            ("ok", "the stored log still has this root")
        } else {
            (
                "bad",
                "the stored log no longer has this root: run `signoff-server audit verify`",
            )
        };
        view! {
            <section id="checkpoint" class="panel">
                <h2>"Newest signed checkpoint"</h2>
                <p>{format!("{} events, root ", checkpoint.size)}<code>{checkpoint.root}</code>
                    ", signed " {timestamp(checkpoint.at)} " by key " <code>{checkpoint.key_id}</code></p>
                <p class=class>{verdict}</p>
                <p class="sub">"Monitors check it from elsewhere: "
                    <code>"signoff-server audit monitor --url URL --state FILE"</code>
                    " · " <a href="/api/v1/audit/checkpoint">"checkpoint"</a>
                    " · " <a href="/.well-known/signoff/keys">"public keys"</a></p>
            </section>
        }
    });
    let body = view! {
        <h1>"Audit trail"</h1>
        {page.admin.then(|| admin_nav(AdminSection::Audit))}
        {checkpoint}
        <form method="get" action="/admin/audit/export" class="filters" id="audit-export">
            <label>"From" <input type="date" name="since" /></label>
            <label>"Before" <input type="date" name="until" /></label>
            <label>"Format" <select name="format">
                <option value="jsonl">"JSON lines (verifies offline)"</option>
                <option value="csv">"CSV"</option>
            </select></label>
            <button type="submit" class="button">"Download"</button>
        </form>
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
                                    {row.request_id.map(|id| view! { <div class="sub"><a href=format!("/requests/{id}")>"request"</a></div> })}
                                    {(row.seq <= size).then(|| view! { <div class="sub"><a class="proof" href=format!("/api/v1/audit/proof/inclusion?seq={}&size={size}", row.seq)>"inclusion proof"</a></div> })}</td>
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
