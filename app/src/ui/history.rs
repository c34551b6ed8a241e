//! History: every request, filtered, newest first, page by page; CSV of the same view.

use leptos::prelude::*;
use time::OffsetDateTime;

use super::format::timestamp;
use super::request::status_badge;
use super::shell::{Chrome, render};
use super::visible::agent_text;
use crate::wire::RequestSummary;

/// Filters, as they appear in the URL (and in the CSV link).
#[derive(Clone, Debug, Default)]
pub struct HistoryFilters {
    pub status: String,
    pub agent: String,
    pub action: String,
    pub reviewer: String,
    pub label: String,
    pub from: String,
    pub until: String,
}

pub struct HistoryView {
    pub items: Vec<RequestSummary>,
    pub filters: HistoryFilters,
    /// The same filters as a query string (for the CSV link and the next page).
    pub query: String,
    pub next_cursor: Option<String>,
    pub now: OffsetDateTime,
}

pub fn history_page(chrome: Chrome, view: HistoryView) -> String {
    let filters = view.filters.clone();
    let csv = format!("/history.csv?{}", view.query);
    let next = view
        .next_cursor
        .map(|cursor| format!("/history?{}&cursor={cursor}", view.query));
    let statuses = [
        "",
        "decided",
        "pending",
        "approved",
        "denied",
        "expired",
        "cancelled",
        "executed",
        "failed",
    ];
    let body = view! {
        <div class="page-head">
            <h1>"History"</h1>
            <p><a class="button" id="csv" href=csv>"Export CSV"</a></p>
        </div>
        <form id="history-filters" method="get" action="/history" class="filters" role="search">
            <label>"Status"
                <select name="status">
                    {statuses.into_iter().map(|status| {
                        let label = if status.is_empty() { "any".to_string() } else { status.to_string() };
                        let selected = filters.status == status;
                        view! { <option value=status selected=selected>{label}</option> }
                    }).collect_view()}
                </select>
            </label>
            <label>"Agent" <input name="agent" value=filters.agent.clone() /></label>
            <label>"Action" <input name="action" value=filters.action.clone() /></label>
            <label>"Reviewer" <input name="reviewer" value=filters.reviewer.clone() placeholder="email" /></label>
            <label>"Label" <input name="label" value=filters.label.clone() placeholder="env=prod" /></label>
            <label>"From" <input name="from" value=filters.from.clone() placeholder="2026-11-01T00:00:00Z" /></label>
            <label>"Until" <input name="until" value=filters.until.clone() placeholder="2026-12-01T00:00:00Z" /></label>
            <button type="submit" class="button">"Filter"</button>
            <a href="/history" class="button link">"Clear"</a>
        </form>
        {if view.items.is_empty() {
            view! { <p class="empty">"No requests match these filters."</p> }.into_any()
        } else {
            view! {
                <table id="history" class="requests">
                    <thead>
                        <tr>
                            <th scope="col">"Request"</th>
                            <th scope="col">"Status"</th>
                            <th scope="col" class="wide">"Agent"</th>
                            <th scope="col" class="wide">"Decided by"</th>
                            <th scope="col">"Created"</th>
                        </tr>
                    </thead>
                    <tbody>
                        {view.items.into_iter().map(|item| {
                            let href = format!("/requests/{}", item.id);
                            let deciders = item.deciders.iter().map(|d| format!("{} ({})", d.name, d.verdict.as_str())).collect::<Vec<_>>().join(", ");
                            view! {
                                <tr class="request" data-id=item.id.to_string()>
                                    <td><a class="open" href=href>{agent_text(item.title)}</a><div class="sub"><code class="action">{agent_text(item.action)}</code> <span class="resource">{agent_text(item.resource)}</span></div></td>
                                    <td>{status_badge(item.status)}{item.break_glass.then(|| view! { <span class="badge break-glass">"BREAK-GLASS"</span> })}</td>
                                    <td class="wide">{agent_text(item.agent)}</td>
                                    <td class="wide">{if deciders.is_empty() { "—".to_string().into_any() } else { agent_text(deciders) }}</td>
                                    <td>{timestamp(item.created_at)}</td>
                                </tr>
                            }
                        }).collect_view()}
                    </tbody>
                </table>
            }.into_any()
        }}
        {next.map(|href| view! { <p class="more"><a id="next-page" href=href>"Older →"</a></p> })}
    };
    let _ = view.now;
    render(chrome, body)
}
