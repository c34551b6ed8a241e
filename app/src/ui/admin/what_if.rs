//! What-if and testing a request.

use super::*;

#[derive(Clone, Debug)]
pub struct WhatIfRow {
    pub request_id: String,
    pub title: String,
    pub action: String,
    pub agent: String,
    pub before_policy: String,
    pub before: String,
    pub after_policy: String,
    pub after: String,
}

#[derive(Clone, Debug)]
pub struct WhatIfResult {
    pub examined: usize,
    pub elapsed_ms: u128,
    /// The replay hit its time limit before the requests asked for.
    pub stopped_early: bool,
    pub changes: Vec<WhatIfRow>,
}

#[derive(Clone, Debug, Default)]
pub struct WhatIfView {
    pub draft: String,
    pub last: String,
    pub problems: Vec<String>,
    pub result: Option<WhatIfResult>,
}

pub fn what_if_page(chrome: Chrome, page: WhatIfView) -> String {
    let csrf = chrome.csrf.clone().unwrap_or_default();
    let body = view! {
        <h1>"What-if"</h1>
        {admin_nav(AdminSection::WhatIf)}
        <p class="muted">"Edit the policy set below (TOML, in evaluation order) and replay it over recent requests: nothing is saved."</p>
        {(!page.problems.is_empty()).then(|| view! {
            <section class="card" id="problems">
                <p class="notice bad" role="alert">"The draft is not valid:"</p>
                <ul class="problems">{page.problems.iter().map(|p| view! { <li>{p.clone()}</li> }).collect_view()}</ul>
            </section>
        })}
        {page.result.map(|result| view! {
            <section class="card" id="what-if-result">
                <h2>{format!("{} of {} requests would change", result.changes.len(), result.examined)}</h2>
                <p class="muted small" id="what-if-stats">{format!(
                    "Examined {} requests in {} ms.{}",
                    result.examined,
                    result.elapsed_ms,
                    if result.stopped_early { " Stopped at the time limit: replay fewer requests for a full answer." } else { "" }
                )}</p>
                {if result.changes.is_empty() {
                    view! { <p class="empty">"No outcome would change."</p> }.into_any()
                } else {
                    view! {
                        <table id="changes" class="requests">
                            <thead><tr><th scope="col">"Request"</th><th scope="col">"Before"</th><th scope="col">"After"</th></tr></thead>
                            <tbody>
                                {result.changes.into_iter().map(|row| {
                                    let href = format!("/requests/{}", row.request_id);
                                    view! {
                                        <tr>
                                            <td><a class="open" href=href>{agent_text(row.title)}</a>
                                                <div class="sub"><code class="action">{agent_text(row.action)}</code> <span>{agent_text(row.agent)}</span></div></td>
                                            <td>{row.before} <div class="sub">{agent_text(row.before_policy)}</div></td>
                                            <td>{row.after} <div class="sub">{agent_text(row.after_policy)}</div></td>
                                        </tr>
                                    }
                                }).collect_view()}
                            </tbody>
                        </table>
                    }.into_any()
                }}
            </section>
        })}
        <form method="post" action="/admin/what-if" class="card stack-wide" id="what-if-form">
            {csrf_input(&csrf)}
            <label for="draft">"Draft policy set (TOML)"</label>
            <textarea id="draft" name="draft" rows="20" class="mono">{textarea_text(&page.draft)}</textarea>
            <label for="last">"Replay the last N requests"</label>
            <input id="last" name="last" value=page.last inputmode="numeric" />
            <p><button type="submit" class="button primary">"Run"</button></p>
        </form>
    };
    render(chrome, body)
}

#[derive(Clone, Debug)]
pub struct TestResult {
    pub policy: String,
    pub version: i64,
    pub outcome: String,
    pub why: Vec<String>,
    /// Terms in words: ("TTL", "2h"), ("Approvers", "sre").
    pub terms: Vec<(String, String)>,
}

#[derive(Clone, Debug, Default)]
pub struct TestView {
    pub agent: String,
    pub body: String,
    pub problems: Vec<String>,
    pub result: Option<TestResult>,
}

pub fn test_request_page(chrome: Chrome, page: TestView) -> String {
    let csrf = chrome.csrf.clone().unwrap_or_default();
    let body = view! {
        <h1>"Test a request"</h1>
        {admin_nav(AdminSection::Test)}
        <p class="muted">"Paste a request as an agent would POST it; see which policy in force would match it, and why. Nothing is stored."</p>
        {(!page.problems.is_empty()).then(|| view! {
            <section class="card" id="problems">
                <ul class="problems">{page.problems.iter().map(|p| view! { <li class="notice bad">{p.clone()}</li> }).collect_view()}</ul>
            </section>
        })}
        {page.result.map(|result| view! {
            <section class="card" id="test-result">
                <h2>"Matches " <span id="matched-policy">{agent_text(result.policy)}</span> {format!(" (version {})", result.version)}</h2>
                <p id="outcome"><strong>{result.outcome}</strong></p>
                <h3>"Why"</h3>
                <ul id="why">{result.why.into_iter().map(|line| view! { <li>{agent_text(line)}</li> }).collect_view()}</ul>
                {(!result.terms.is_empty()).then(|| view! {
                    <h3>"Terms"</h3>
                    <dl class="facts" id="terms">
                        {result.terms.into_iter().map(|(name, value)| view! { <dt>{name}</dt><dd>{agent_text(value)}</dd> }).collect_view()}
                    </dl>
                })}
            </section>
        })}
        <form method="post" action="/admin/test" class="card stack-wide" id="test-form">
            {csrf_input(&csrf)}
            <label for="agent">"Agent"</label>
            <input id="agent" name="agent" value=page.agent placeholder="deploy-bot" />
            <label for="body">"Request (JSON)"</label>
            <textarea id="body" name="body" rows="14" class="mono">{textarea_text(&page.body)}</textarea>
            <p><button type="submit" class="button primary">"Test"</button></p>
        </form>
    };
    render(chrome, body)
}
