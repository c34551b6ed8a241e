//! The admin pages: policies (list, edit, versions and their diffs), what-if over past
//! requests, testing a request, agents and keys, grants, the audit trail, and break-glass
//! follow-ups. The views only show what the server answered: every check and change is
//! the server's (ARCHITECTURE.md, "Who may do what").

use leptos::prelude::*;
use time::OffsetDateTime;

use super::diff::diff_view;
use super::format::timestamp;
use super::shell::{Chrome, render};
use super::textarea::textarea_text;
use super::visible::agent_text;
use crate::difftext;

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

// ----- policies ---------------------------------------------------------------------------

/// A row of the policy list.
#[derive(Clone, Debug)]
pub struct PolicyRow {
    pub id: String,
    pub name: String,
    /// "allow", "deny: reason", "2 approvals from sre".
    pub effect: String,
    pub enabled: bool,
    pub version: i64,
    pub updated_at: OffsetDateTime,
}

pub fn policies_page(chrome: Chrome, rows: Vec<PolicyRow>, notice: Option<Notice>) -> String {
    let csrf = chrome.csrf.clone().unwrap_or_default();
    let count = rows.len();
    let body = view! {
        <div class="page-head">
            <h1>"Policies"</h1>
            <a class="button primary" id="new-policy" href="/admin/policies/new">"New policy"</a>
        </div>
        {admin_nav(AdminSection::Policies)}
        {notice_view(notice)}
        <p class="muted">"The first enabled policy that matches a request decides it; with none, the default applies (approval by reviewers)."</p>
        {if rows.is_empty() {
            view! { <p class="empty">"No policies yet: every request needs the default approval."</p> }.into_any()
        } else {
            view! {
                <table id="policies" class="requests">
                    <thead><tr><th scope="col">"#"</th><th scope="col">"Policy"</th><th scope="col">"Effect"</th><th scope="col">"Enabled"</th>
                        <th scope="col">"Version"</th><th scope="col">"Updated"</th><th scope="col">"Order"</th></tr></thead>
                    <tbody>
                        {rows.into_iter().enumerate().map(|(index, row)| {
                            let edit = format!("/admin/policies/{}", row.id);
                            let versions = format!("/admin/policies/{}/versions", row.id);
                            let move_action = format!("/admin/policies/{}/move", row.id);
                            let class = if row.enabled { "policy" } else { "policy disabled" };
                            view! {
                                <tr class=class data-id=row.id.clone()>
                                    <td>{index + 1}</td>
                                    <td><a class="open" href=edit>{agent_text(row.name)}</a>
                                        <div class="sub"><a href=versions>"versions"</a></div></td>
                                    <td>{agent_text(row.effect)}</td>
                                    <td>{if row.enabled { "yes" } else { "no (disabled)" }}</td>
                                    <td>{row.version}</td>
                                    <td>{timestamp(row.updated_at)}</td>
                                    <td>
                                        <form method="post" action=move_action class="inline move">
                                            {csrf_input(&csrf)}
                                            <button type="submit" name="direction" value="up" class="button" disabled=index == 0 aria-label="Move up">"↑"</button>
                                            <button type="submit" name="direction" value="down" class="button" disabled=index + 1 == count aria-label="Move down">"↓"</button>
                                        </form>
                                    </td>
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

/// A policy as the form shows it: text as typed, lists one per line (or comma separated).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PolicyForm {
    pub name: String,
    pub description: String,
    pub enabled: bool,
    pub actions: String,
    pub resources: String,
    pub labels: String,
    pub agents: String,
    pub condition: String,
    /// `allow`, `deny` or `require_approval`.
    pub effect: String,
    pub deny_reason: String,
    pub approvals: String,
    pub approver_groups: String,
    pub one_from_each: String,
    pub comment_required: bool,
    pub ttl: String,
    pub escalation_after: String,
    pub escalation_groups: String,
    pub grant_max_duration: String,
    pub grant_max_uses: String,
    pub break_glass: String,
}

/// The edit page: the form, with each refusal next to its field.
#[derive(Clone, Debug, Default)]
pub struct PolicyEditView {
    /// None for a new policy.
    pub id: Option<String>,
    pub version: Option<i64>,
    pub form: PolicyForm,
    /// (form field, message), from the server's check.
    pub errors: Vec<(String, String)>,
    pub notice: Option<Notice>,
}

struct Field<'a> {
    key: &'static str,
    label: &'static str,
    hint: &'static str,
    errors: &'a [(String, String)],
}

impl Field<'_> {
    fn messages(&self) -> Vec<String> {
        self.errors
            .iter()
            .filter(|(field, _)| field == self.key)
            .map(|(_, message)| message.clone())
            .collect()
    }

    fn wrap(&self, input: AnyView) -> AnyView {
        let messages = self.messages();
        let class = if messages.is_empty() { "field" } else { "field invalid" };
        let error_id = format!("error-{}", self.key);
        let input_id = format!("field-{}", self.key);
        let hint = self.hint;
        view! {
            <div class=class>
                <label for=input_id>{self.label}</label>
                // Between the label and the input, so it is read and seen with the field.
                {(!messages.is_empty()).then(|| view! {
                    <p class="field-error" id=error_id role="alert">{messages.join(" ")}</p>
                })}
                {input}
                {(!hint.is_empty()).then(|| view! { <span class="hint">{hint}</span> })}
            </div>
        }
        .into_any()
    }

    fn text(&self, value: &str) -> AnyView {
        let invalid = (!self.messages().is_empty()).then_some("true");
        let input = view! {
            <input id=format!("field-{}", self.key) name=self.key value=value.to_string() aria-invalid=invalid />
        };
        self.wrap(input.into_any())
    }

    fn area(&self, value: &str, rows: u32) -> AnyView {
        let invalid = (!self.messages().is_empty()).then_some("true");
        let input = view! {
            <textarea id=format!("field-{}", self.key) name=self.key rows=rows aria-invalid=invalid class="mono">{textarea_text(value)}</textarea>
        };
        self.wrap(input.into_any())
    }
}

/// The label of a form field, for the summary of what to fix.
fn field_label(key: &str) -> &'static str {
    match key {
        "name" => "Name",
        "description" => "Description",
        "actions" => "Actions",
        "resources" => "Resources",
        "labels" => "Labels",
        "agents" => "Agents",
        "condition" => "Condition",
        "deny_reason" => "Deny reason",
        "approvals" => "Approvals",
        "approver_groups" => "Approver groups",
        "one_from_each" => "One from each",
        "ttl" => "Pending for at most",
        "escalation_after" => "Escalate after",
        "escalation_groups" => "Escalation groups",
        "grant_max_duration" => "Grants: longest duration",
        "grant_max_uses" => "Grants: most uses",
        "break_glass" => "Break-glass admins",
        _ => "",
    }
}

pub fn policy_edit_page(chrome: Chrome, page: PolicyEditView) -> String {
    let csrf = chrome.csrf.clone().unwrap_or_default();
    let form = page.form;
    let errors = page.errors;
    let general: Vec<String> = errors
        .iter()
        .filter(|(field, _)| field.is_empty())
        .map(|(_, message)| message.clone())
        .collect();
    let field = |key, label, hint| Field {
        key,
        label,
        hint,
        errors: &errors,
    };
    let (heading, action) = match &page.id {
        Some(id) => (
            format!("Policy {} (version {})", form.name, page.version.unwrap_or_default()),
            format!("/admin/policies/{id}"),
        ),
        None => ("New policy".to_string(), "/admin/policies/new".to_string()),
    };
    let versions = page.id.as_ref().map(|id| format!("/admin/policies/{id}/versions"));
    let effect = form.effect.clone();
    let list_hint = "One per line, or separated by commas.";
    let body = view! {
        <p class="crumbs"><a href="/admin/policies">"← Policies"</a></p>
        <h1>{agent_text(heading)}</h1>
        {admin_nav(AdminSection::Policies)}
        {notice_view(page.notice)}
        {(!errors.is_empty()).then(|| {
            let mut marked: Vec<&'static str> = errors.iter().map(|(field, _)| field_label(field)).filter(|l| !l.is_empty()).collect();
            marked.dedup();
            view! {
                <p class="notice bad" role="alert" id="form-problems">
                    "Not saved: fix the fields marked below"
                    {(!marked.is_empty()).then(|| format!(" ({})", marked.join(", ")))}
                    "."
                </p>
            }
        })}
        {(!general.is_empty()).then(|| view! { <ul class="problems">{general.into_iter().map(|m| view! { <li>{m}</li> }).collect_view()}</ul> })}
        {versions.map(|href| view! { <p><a href=href id="versions-link">"Versions and changes"</a></p> })}
        <form method="post" action=action id="policy-form" class="policy-form">
            {csrf_input(&csrf)}
            <fieldset class="card">
                <legend>"Policy"</legend>
                {field("name", "Name", "").text(&form.name)}
                {field("description", "Description", "").area(&form.description, 2)}
                <div class="field check">
                    <label><input type="checkbox" id="field-enabled" name="enabled" value="on" checked=form.enabled /> " Enabled (a disabled policy matches nothing; saving makes a new version)"</label>
                </div>
            </fieldset>
            <fieldset class="card">
                <legend>"Which requests"</legend>
                <p class="muted small">"Every part given must hold; an empty part holds for every request."</p>
                {field("actions", "Actions", "Globs on the action: db.*, iam.escalate. One per line, or separated by commas.").area(&form.actions, 2)}
                {field("resources", "Resources", "Globs on the resource.").area(&form.resources, 2)}
                {field("labels", "Labels", "env=prod, env!=dev, compliance in [pci, fedramp], or a key. One per line.").area(&form.labels, 2)}
                {field("agents", "Agents", "Agent names (globs). Empty for every agent.").area(&form.agents, 2)}
                {field("condition", "Condition (CEL)", "Over action, resource, labels, payload, context, agent, on_behalf_of, title, reason. Example: payload.replicas > 2").area(&form.condition, 3)}
            </fieldset>
            <fieldset class="card">
                <legend>"What it does"</legend>
                <div class="field">
                    <label for="field-effect">"Effect"</label>
                    <select id="field-effect" name="effect">
                        <option value="require_approval" selected=effect == "require_approval">"Require approval"</option>
                        <option value="allow" selected=effect == "allow">"Allow at once"</option>
                        <option value="deny" selected=effect == "deny">"Deny at once"</option>
                    </select>
                </div>
                {field("deny_reason", "Deny reason (for deny)", "What the agent is told.").text(&form.deny_reason)}
                <h3>"Approval terms (for require approval)"</h3>
                {field("approvals", "Approvals", "Distinct people who must approve (1-20).").text(&form.approvals)}
                {field("approver_groups", "Approver groups", "Empty for the reviewer groups.").area(&form.approver_groups, 2)}
                {field("one_from_each", "One from each of these groups", list_hint).area(&form.one_from_each, 2)}
                <div class="field check">
                    <label><input type="checkbox" id="field-comment_required" name="comment_required" value="on" checked=form.comment_required /> " Approvals need a comment"</label>
                </div>
                {field("ttl", "Pending for at most", "A duration such as 30m, 8h, 2d. Empty for the server's default.").text(&form.ttl)}
                {field("escalation_after", "Escalate after (minutes)", "Empty for no escalation.").text(&form.escalation_after)}
                {field("escalation_groups", "Escalation groups", list_hint).area(&form.escalation_groups, 2)}
                {field("grant_max_duration", "Grants: longest duration", "Empty: approvers cannot grant. Such as 8h.").text(&form.grant_max_duration)}
                {field("grant_max_uses", "Grants: most uses", "").text(&form.grant_max_uses)}
                {field("break_glass", "Break-glass admins", "Admins (email or subject) who may approve their own request in an emergency.").area(&form.break_glass, 2)}
            </fieldset>
            <p><button type="submit" class="button primary" id="save-policy">"Save policy"</button></p>
        </form>
    };
    render(chrome, body)
}

/// One saved version.
#[derive(Clone, Debug)]
pub struct VersionRow {
    pub version: i64,
    pub created_at: OffsetDateTime,
    pub by: String,
}

pub struct VersionsView {
    pub id: String,
    pub name: String,
    pub versions: Vec<VersionRow>,
    /// The two versions compared, and their diff (unified) when both were found.
    pub a: Option<i64>,
    pub b: Option<i64>,
    pub diff: Option<String>,
}

pub fn policy_versions_page(chrome: Chrome, page: VersionsView) -> String {
    let id = page.id.clone();
    let (a, b) = (page.a, page.b);
    let options = |selected: Option<i64>| {
        page.versions
            .iter()
            .map(|row| {
                let version = row.version;
                view! { <option value=version.to_string() selected=selected == Some(version)>{format!("version {version}")}</option> }
            })
            .collect_view()
    };
    let body = view! {
        <p class="crumbs"><a href=format!("/admin/policies/{id}")>{format!("← {}", page.name)}</a></p>
        <h1>{agent_text(format!("Versions of {}", page.name))}</h1>
        {admin_nav(AdminSection::Policies)}
        <table id="versions" class="requests">
            <thead><tr><th scope="col">"Version"</th><th scope="col">"Saved"</th><th scope="col">"By"</th></tr></thead>
            <tbody>
                {page.versions.iter().map(|row| view! {
                    <tr><td>{row.version}</td><td>{timestamp(row.created_at)}</td><td>{agent_text(row.by.clone())}</td></tr>
                }).collect_view()}
            </tbody>
        </table>
        <form method="get" action=format!("/admin/policies/{id}/versions") class="filters" id="compare">
            <label>"From" <select name="a">{options(a)}</select></label>
            <label>"To" <select name="b">{options(b)}</select></label>
            <button type="submit" class="button">"Compare"</button>
        </form>
        {page.diff.map(|diff| {
            let files = difftext::parse(&diff);
            view! {
                <section class="card" id="version-diff">
                    <h2>{format!("Changes from version {} to version {}", a.unwrap_or_default(), b.unwrap_or_default())}</h2>
                    {if files.is_empty() { view! { <p class="muted">"The two versions are the same."</p> }.into_any() } else { diff_view(files, super::DiffMode::Unified).into_any() }}
                </section>
            }
        })}
    };
    render(chrome, body)
}

// ----- what-if and test -------------------------------------------------------------------

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

// ----- agents -----------------------------------------------------------------------------

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

// ----- grants -----------------------------------------------------------------------------

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

// ----- audit ------------------------------------------------------------------------------

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
