//! The frame every page shares: head, navigation, the signed-in person, the dev banner.

use leptos::prelude::*;

use super::visible::visible_text;
use crate::wire::Role;

/// The person at the keyboard, as the navigation shows them.
#[derive(Clone, Debug)]
pub struct UserBadge {
    pub name: String,
    pub roles: Vec<Role>,
}

/// Which navigation entry is current.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Nav {
    Queue,
    History,
    Admin,
    Account,
    None,
}

/// What every page needs besides its body.
#[derive(Clone, Debug)]
pub struct Chrome {
    pub title: String,
    pub user: Option<UserBadge>,
    pub dev: bool,
    /// The session's CSRF token, for the sign-out form and the script's API calls.
    pub csrf: Option<String>,
    pub nav: Nav,
}

impl Chrome {
    pub fn new(title: impl Into<String>) -> Self {
        Chrome {
            title: title.into(),
            user: None,
            dev: false,
            csrf: None,
            nav: Nav::None,
        }
    }
}

/// A whole HTML document.
pub fn render(chrome: Chrome, body: impl IntoView + 'static) -> String {
    // A request page is titled by the agent's title.
    let title = format!("{} · Signoff", visible_text(&chrome.title));
    let csrf = chrome.csrf.clone().unwrap_or_default();
    let live_events = crate::wire::LiveEventKind::ALL
        .iter()
        .map(|kind| kind.as_str())
        .chain([crate::wire::RESYNC_EVENT])
        .collect::<Vec<_>>()
        .join(" ");
    let document = view! {
        <html lang="en">
            <head>
                <meta charset="utf-8" />
                <meta name="viewport" content="width=device-width, initial-scale=1" />
                <meta name="color-scheme" content="light dark" />
                <meta name="csrf-token" content=csrf />
                <meta name="live-events" content=live_events />
                <title>{title}</title>
                <link rel="stylesheet" href="/static/signoff.css" />
                <link rel="icon" href="/favicon.ico" type="image/svg+xml" />
                <script src="/static/console.js" defer></script>
            </head>
            <body>
                {chrome.dev.then(|| view! {
                    <div class="dev-banner" role="status">
                        "Development mode: demo data and development sign-in. Never use it for real approvals."
                    </div>
                })}
                {header(&chrome)}
                <main id="main">{body}</main>
            </body>
        </html>
    };
    format!("<!DOCTYPE html>{}", document.to_html())
}

fn header(chrome: &Chrome) -> impl IntoView + use<> {
    let link = |nav: Nav, href: &'static str, label: &'static str, current: Nav| {
        let aria = (nav == current).then_some("page");
        view! { <a href=href aria-current=aria>{label}</a> }
    };
    let current = chrome.nav;
    let signed_in = chrome.user.clone();
    let is_admin = signed_in.as_ref().is_some_and(|user| user.roles.contains(&Role::Admin));
    // Auditors reach the audit trail and nothing else of the admin pages.
    let is_auditor = !is_admin
        && signed_in
            .as_ref()
            .is_some_and(|user| user.roles.contains(&Role::Auditor));
    let csrf = chrome.csrf.clone().unwrap_or_default();
    view! {
        <header class="top">
            <a class="brand" href="/">"Signoff"</a>
            {signed_in.clone().map(|_| view! {
                <nav aria-label="Main">
                    {link(Nav::Queue, "/", "Queue", current)}
                    {link(Nav::History, "/history", "History", current)}
                    {is_admin.then(|| link(Nav::Admin, "/admin", "Admin", current))}
                    {is_auditor.then(|| link(Nav::Admin, "/admin/audit", "Audit trail", current))}
                </nav>
            })}
            <div class="who">
                {match signed_in {
                    Some(user) => view! {
                        <a href="/me" class="person">{user.name}</a>
                        <form method="post" action="/auth/logout" class="inline">
                            <input type="hidden" name="csrf" value=csrf />
                            <button type="submit" class="link">"Sign out"</button>
                        </form>
                    }.into_any(),
                    None => view! { <a href="/auth/login">"Sign in"</a> }.into_any(),
                }}
            </div>
        </header>
    }
}

/// A page with only a heading (sections still being built).
pub fn placeholder_page(chrome: Chrome, heading: &str) -> String {
    let heading = heading.to_string();
    render(chrome, view! { <h1>{heading}</h1> })
}
