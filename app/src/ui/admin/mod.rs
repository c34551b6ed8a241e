//! The admin pages: policies (list, edit, versions and their diffs), what-if over past
//! requests, testing a request, agents and keys, grants, the audit trail, and break-glass
//! follow-ups. The views only show what the server answered: every check and change is
//! the server's (ARCHITECTURE.md, "Who may do what").

use leptos::prelude::*;
use time::OffsetDateTime;

use super::diff::diff_view;
use super::format::timestamp;
use super::shell::{Chrome, render};
use super::signin::url_encode;
use super::textarea::textarea_text;
use super::visible::agent_text;
use crate::difftext;

mod agents;
mod audit;
mod channels;
mod grants;
mod policies;
mod what_if;

pub use agents::*;
pub use audit::*;
pub use channels::*;
pub use grants::*;
pub use policies::*;
pub use what_if::*;

/// A message at the top of a page after a form: good news or a refusal.
#[derive(Clone, Debug)]
pub struct Notice {
    pub good: bool,
    pub text: String,
}

impl Notice {
    pub fn good(text: impl Into<String>) -> Notice {
        Notice {
            good: true,
            text: text.into(),
        }
    }

    pub fn bad(text: impl Into<String>) -> Notice {
        Notice {
            good: false,
            text: text.into(),
        }
    }
}

fn notice_view(notice: Option<Notice>) -> impl IntoView {
    notice.map(|notice| {
        if notice.good {
            view! { <p class="notice good" role="status">{notice.text}</p> }.into_any()
        } else {
            view! { <p class="notice bad" role="alert">{notice.text}</p> }.into_any()
        }
    })
}

/// Which admin page is current, for the admin navigation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AdminSection {
    Overview,
    Policies,
    WhatIf,
    Test,
    Agents,
    Grants,
    Channels,
    Audit,
}

fn admin_nav(current: AdminSection) -> impl IntoView {
    let entries = [
        (AdminSection::Overview, "/admin", "Overview"),
        (AdminSection::Policies, "/admin/policies", "Policies"),
        (AdminSection::WhatIf, "/admin/what-if", "What-if"),
        (AdminSection::Test, "/admin/test", "Test a request"),
        (AdminSection::Agents, "/admin/agents", "Agents"),
        (AdminSection::Grants, "/admin/grants", "Grants"),
        (AdminSection::Channels, "/admin/channels", "Channels"),
        (AdminSection::Audit, "/admin/audit", "Audit trail"),
    ];
    view! {
        <nav class="admin-nav" aria-label="Admin">
            {entries.into_iter().map(|(section, href, label)| {
                let aria = (section == current).then_some("page");
                view! { <a href=href aria-current=aria>{label}</a> }
            }).collect_view()}
        </nav>
    }
}

fn csrf_input(csrf: &str) -> impl IntoView + use<> {
    let csrf = csrf.to_string();
    view! { <input type="hidden" name="csrf" value=csrf /> }
}

// ----- overview and follow-ups ------------------------------------------------------------

/// A break-glass approval another admin has yet to acknowledge (or has).
#[derive(Clone, Debug)]
pub struct FollowupItem {
    pub request_id: String,
    pub title: String,
    pub opened_at: OffsetDateTime,
    pub opened_by: String,
    /// When and by whom it was acknowledged.
    pub acknowledged: Option<(OffsetDateTime, String)>,
}

/// The open break-glass follow-ups, at the top of the queue and of `/admin`: they stay in
/// every admin's queue until another admin acknowledges them.
pub fn followups_panel(csrf: &str, followups: Vec<FollowupItem>) -> impl IntoView + use<> {
    let open: Vec<FollowupItem> = followups.into_iter().filter(|f| f.acknowledged.is_none()).collect();
    let csrf = csrf.to_string();
    (!open.is_empty()).then(|| {
        view! {
            <section class="card followups" id="followups" aria-labelledby="followups-heading">
                <h2 id="followups-heading"><span class="badge break-glass">"BREAK-GLASS"</span> " "
                    {format!("{} approval{} to acknowledge", open.len(), if open.len() == 1 { "" } else { "s" })}</h2>
                <p class="muted small">"An admin approved their own request in an emergency. Another admin looks at each and acknowledges it."</p>
                <ul class="followup-list">
                    {open.into_iter().map(|item| {
                        let href = format!("/requests/{}", item.request_id);
                        let action = format!("/admin/followups/{}/acknowledge", item.request_id);
                        view! {
                            <li>
                                <a href=href>{agent_text(item.title)}</a>
                                <span class="muted small">{format!(" approved by {} at {}", item.opened_by, timestamp(item.opened_at))}</span>
                                <form method="post" action=action class="inline">
                                    {csrf_input(&csrf)}
                                    <button type="submit" class="button">"Acknowledge"</button>
                                </form>
                            </li>
                        }
                    }).collect_view()}
                </ul>
            </section>
        }
    })
}

/// What `/admin` counts.
#[derive(Clone, Debug, Default)]
pub struct AdminCounts {
    pub policies: usize,
    pub enabled_policies: usize,
    pub active_grants: usize,
    pub open_followups: usize,
    pub agents: usize,
}

pub fn admin_page(chrome: Chrome, counts: AdminCounts, followups: Vec<FollowupItem>, notice: Option<Notice>) -> String {
    let csrf = chrome.csrf.clone().unwrap_or_default();
    let acknowledged: Vec<FollowupItem> = followups.iter().filter(|f| f.acknowledged.is_some()).cloned().collect();
    let body = view! {
        <h1>"Admin"</h1>
        {admin_nav(AdminSection::Overview)}
        {notice_view(notice)}
        {followups_panel(&csrf, followups)}
        <div class="admin-cards">
            <a class="card stat" href="/admin/policies"><span class="number" id="count-policies">{counts.policies}</span>
                <span>"Policies"</span><span class="muted small">{format!("{} enabled", counts.enabled_policies)}</span></a>
            <a class="card stat" href="/admin/grants"><span class="number" id="count-grants">{counts.active_grants}</span>
                <span>"Active grants"</span></a>
            <a class="card stat" href="/admin"><span class="number" id="count-followups">{counts.open_followups}</span>
                <span>"Open break-glass follow-ups"</span></a>
            <a class="card stat" href="/admin/agents"><span class="number" id="count-agents">{counts.agents}</span>
                <span>"Agents"</span></a>
        </div>
        <section class="card">
            <h2>"Manage"</h2>
            <ul class="admin-links">
                <li><a href="/admin/policies">"Policies"</a> " — which actions need whose approval, in order; edit, reorder, versions."</li>
                <li><a href="/admin/what-if">"What-if"</a> " — replay a draft policy set over recent requests."</li>
                <li><a href="/admin/test">"Test a request"</a> " — which policy a request would match, and why."</li>
                <li><a href="/admin/agents">"Agents"</a> " — create, rotate and revoke API keys."</li>
                <li><a href="/admin/grants">"Grants"</a> " — standing approvals, and revoking them."</li>
                <li><a href="/admin/audit">"Audit trail"</a> " — every change, newest first."</li>
            </ul>
        </section>
        {(!acknowledged.is_empty()).then(|| view! {
            <section class="card">
                <h2>"Acknowledged break-glass approvals"</h2>
                <ul class="followup-list">
                    {acknowledged.into_iter().map(|item| {
                        let href = format!("/requests/{}", item.request_id);
                        let (at, by) = item.acknowledged.unwrap_or((item.opened_at, String::new()));
                        view! {
                            <li><a href=href>{agent_text(item.title)}</a>
                                <span class="muted small">{format!(" approved by {}, acknowledged by {by} at {}", item.opened_by, timestamp(at))}</span></li>
                        }
                    }).collect_view()}
                </ul>
            </section>
        })}
    };
    render(chrome, body)
}
