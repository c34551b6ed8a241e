//! The queue: pending requests, oldest first, filterable, live.

use leptos::prelude::*;
use time::OffsetDateTime;

use super::shell::{Chrome, render};
use super::visible::agent_text;
use crate::timefmt::{Style, ago, time_left};
use crate::wire::RequestSummary;

/// Filters, as they appear in the URL.
#[derive(Clone, Debug, Default)]
pub struct QueueFilters {
    pub action: String,
    pub agent: String,
    pub label: String,
    pub mine: bool,
    /// Soonest expiry first instead of oldest first.
    pub by_expiry: bool,
}

impl QueueFilters {
    pub fn is_empty(&self) -> bool {
        self.action.is_empty() && self.agent.is_empty() && self.label.is_empty() && !self.mine
    }
}

pub struct QueueView {
    pub items: Vec<RequestSummary>,
    /// All pending requests, for the heading and the tab title.
    pub pending_total: i64,
    pub filters: QueueFilters,
    /// The row to select (after a decision: the next one).
    pub selected: Option<usize>,
    /// A link to the next page, when there is more.
    pub more: Option<String>,
    pub flash: Option<String>,
    pub now: OffsetDateTime,
    /// Open break-glass follow-ups (admins only): they stay at the top until acknowledged.
    pub followups: Vec<super::admin::FollowupItem>,
}

pub fn queue_page(mut chrome: Chrome, view: QueueView) -> String {
    chrome.title = format!("({}) Queue", view.pending_total);
    let csrf = chrome.csrf.clone().unwrap_or_default();
    let filters = view.filters.clone();
    let shown = view.items.len();
    let body = view! {
        <div class="page-head">
            <h1>"Queue" <span class="count" id="pending-count">{view.pending_total}</span></h1>
            <p class="muted">{if filters.by_expiry { "Pending requests, expiring first. " } else { "Pending requests, oldest first. " }} <kbd>"?"</kbd> " shows the keys."</p>
        </div>
        {view.flash.map(|flash| view! { <p class="notice good" role="status">{agent_text(flash)}</p> })}
        {super::admin::followups_panel(&csrf, view.followups)}
        {filter_form(&filters)}
        {queue_rows(view.items, view.selected, view.now, !filters.is_empty())}
        {view.more.map(|href| view! { <p class="more"><a href=href>{format!("Showing the oldest {shown}; next page")}</a></p> })}
        {keys_dialog()}
    };
    render(chrome, body)
}

fn filter_form(filters: &QueueFilters) -> impl IntoView + use<> {
    let filters = filters.clone();
    view! {
        <form id="filters" method="get" action="/" class="filters" role="search">
            <label>"Action" <input name="action" value=filters.action placeholder="db.export" /></label>
            <label>"Agent" <input name="agent" value=filters.agent placeholder="deploy-bot" /></label>
            <label>"Label" <input name="label" value=filters.label placeholder="env=prod" /></label>
            <label class="check"><input type="checkbox" name="mine" value="true" checked=filters.mine /> "Needs my vote"</label>
            <label>"Order"
                <select name="order">
                    <option value="created" selected=!filters.by_expiry>"Oldest first"</option>
                    <option value="expiry" selected=filters.by_expiry>"Expiring first"</option>
                </select>
            </label>
            <button type="submit" class="button">"Filter"</button>
            <a href="/" class="button link">"Clear"</a>
        </form>
    }
}

/// The table (also served alone, for live updates).
pub fn queue_rows(
    items: Vec<RequestSummary>,
    selected: Option<usize>,
    now: OffsetDateTime,
    filtered: bool,
) -> impl IntoView + use<> {
    if items.is_empty() {
        let message = if filtered {
            "Nothing is waiting that matches these filters."
        } else {
            "Nothing is waiting. New requests appear here as agents submit them."
        };
        return view! { <div id="queue-body"><p class="empty">{message}</p></div> }.into_any();
    }
    view! {
        <div id="queue-body">
            <table id="queue" class="requests">
                <thead>
                    <tr>
                        <th scope="col">"Request"</th>
                        <th scope="col" class="wide">"Agent"</th>
                        <th scope="col">"Age"</th>
                        <th scope="col">"Expires"</th>
                        <th scope="col">"Approvals"</th>
                    </tr>
                </thead>
                <tbody>
                    {items.into_iter().enumerate().map(|(index, item)| row(item, selected == Some(index), now)).collect_view()}
                </tbody>
            </table>
        </div>
    }
    .into_any()
}

fn row(item: RequestSummary, selected: bool, now: OffsetDateTime) -> impl IntoView {
    let href = format!("/requests/{}", item.id);
    let class = if selected { "request selected" } else { "request" };
    let labels = item
        .labels
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect::<Vec<_>>();
    let can_decide = item.viewer.as_ref().is_some_and(|viewer| viewer.can_decide);
    let urgent = (item.expires_at - now).whole_minutes() < 10;
    view! {
        <tr class=class data-id=item.id.to_string()>
            <td>
                <a class="open" href=href>{agent_text(item.title)}</a>
                {item.break_glass.then(|| view! { <span class="badge break-glass">"BREAK-GLASS"</span> })}
                <div class="sub">
                    <code class="action">{agent_text(item.action)}</code>
                    <span class="resource">{agent_text(item.resource)}</span>
                    {labels.into_iter().map(|(key, value)| {
                        let class = if key == "env" && value == "prod" { "label hot" } else { "label" };
                        view! { <span class=class>{agent_text(format!("{key}={value}"))}</span> }
                    }).collect_view()}
                </div>
            </td>
            <td class="wide">
                <span class="agent">{agent_text(item.agent)}</span>
                {item.on_behalf_of.map(|person| view! { <div class="sub">"for " {agent_text(person)}</div> })}
            </td>
            <td>{ago(now, item.created_at, Style::Spaced)}</td>
            <td class=if urgent { "urgent" } else { "" }>{time_left(now, item.expires_at, Style::Spaced)}</td>
            <td>
                <span class="approvals">{format!("{}/{}", item.approvals, item.approvals_required)}</span>
                {can_decide.then(|| view! { <span class="badge mine">"your vote"</span> })}
            </td>
        </tr>
    }
}

pub(super) fn keys_dialog() -> impl IntoView {
    view! {
        <dialog id="keys" aria-label="Keyboard shortcuts">
            <h2>"Keys"</h2>
            <dl class="keys">
                <dt><kbd>"j"</kbd> " / " <kbd>"k"</kbd></dt><dd>"next / previous request"</dd>
                <dt><kbd>"Enter"</kbd></dt><dd>"open the selected request"</dd>
                <dt><kbd>"a"</kbd></dt><dd>"on a request: approve (focus the comment)"</dd>
                <dt><kbd>"d"</kbd></dt><dd>"on a request: deny (focus the comment)"</dd>
                <dt><kbd>"u"</kbd></dt><dd>"on a request: back to the queue"</dd>
                <dt><kbd>"/"</kbd></dt><dd>"filter"</dd>
                <dt><kbd>"?"</kbd></dt><dd>"show or hide this list"</dd>
            </dl>
            <form method="dialog"><button class="button">"Close"</button></form>
        </dialog>
    }
}

/// The queue table alone, for the page script's live refresh.
pub fn queue_fragment(
    items: Vec<RequestSummary>,
    selected: Option<usize>,
    now: OffsetDateTime,
    filtered: bool,
) -> String {
    queue_rows(items, selected, now, filtered).to_html()
}
