//! One request, everything a reviewer needs on one screen, and the forms to decide.

use leptos::prelude::*;
use time::OffsetDateTime;

pub use super::diff::DiffMode;
use super::diff::diff_view;
use super::format::timestamp;
use super::queue::keys_dialog;
use super::shell::{Chrome, render};
use super::textarea::textarea_text;
use super::visible::agent_text;
use crate::difftext;
use crate::timefmt::{Style, ago, time_left};
use crate::wire::{DecisionView, ReviewView};
use crate::{Status, Verdict};

/// One line of the request's audit timeline.
#[derive(Clone, Debug)]
pub struct TimelineEntry {
    pub at: OffsetDateTime,
    pub what: String,
    pub who: String,
}

pub struct RequestPageView {
    pub review: ReviewView,
    pub timeline: Vec<TimelineEntry>,
    pub diff_mode: DiffMode,
    /// A refusal to show (e.g. "a deny needs a comment"), with the verdict it was for.
    pub notice: Option<(Verdict, String)>,
    /// What the reviewer typed, kept when a decision is refused.
    pub comment: String,
    pub now: OffsetDateTime,
    /// The viewer is an admin the policy names and this is their own pending request:
    /// offered break-glass.
    pub break_glass: bool,
}

pub fn status_badge(status: Status) -> impl IntoView {
    let class = format!("status {}", status.as_str());
    view! { <span class=class>{status.as_str()}</span> }
}

pub fn request_page(chrome: Chrome, page: RequestPageView) -> String {
    let csrf = chrome.csrf.clone().unwrap_or_default();
    let request = page.review.request;
    let viewer = page.review.viewer;
    let id = request.id.to_string();
    let labels: Vec<(String, String)> = request.labels.clone().into_iter().collect();
    let context = request.context.clone();
    let trace = context
        .as_ref()
        .and_then(|c| c.get("trace"))
        .and_then(|t| t.as_str())
        .filter(|t| t.starts_with("https://") || t.starts_with("http://"))
        .map(String::from);
    let origin = context
        .as_ref()
        .and_then(|c| c.get("origin").or_else(|| c.get("session")))
        .and_then(|o| o.as_str())
        .map(String::from);
    let payload = serde_json::to_string_pretty(&request.payload).unwrap_or_default();
    let context_text = context
        .as_ref()
        .map(|c| serde_json::to_string_pretty(c).unwrap_or_default());
    let files = request.diff.as_deref().map(difftext::parse).unwrap_or_default();
    let mode_link = match page.diff_mode {
        DiffMode::Unified => (format!("/requests/{id}?view=split"), "Side by side"),
        DiffMode::Split => (format!("/requests/{id}"), "Unified"),
    };
    let policy = request.policy.clone();
    let body = view! {
        <p class="crumbs"><a href="/">"← Queue"</a></p>
        <div class="request-head">
            <h1>{agent_text(request.title.clone())}</h1>
            <div class="meta">
                {status_badge(request.status)}
                {request.break_glass.then(|| view! { <span class="badge break-glass" id="break-glass">"BREAK-GLASS"</span> })}
                <span class="approvals">{format!("{}/{} approvals", request.approvals, request.policy.approvals_required)}</span>
                <code class="action">{agent_text(request.action.clone())}</code>
                <span class="resource">{agent_text(request.resource.clone())}</span>
                {labels.into_iter().map(|(key, value)| view! { <span class="label">{agent_text(format!("{key}={value}"))}</span> }).collect_view()}
            </div>
        </div>
        <div class="request-grid">
            <div class="main-col">
                <section class="card">
                    <h2>"Why"</h2>
                    <p id="reason" class="reason">{if request.reason.is_empty() { "The agent gave no reason.".into_any() } else { agent_text(request.reason.clone()) }}</p>
                    <dl class="facts">
                        <dt>"Agent"</dt>
                        <dd>{agent_text(request.agent.name.clone())} {request.agent.owner.clone().map(|owner| view! { <span class="muted">{agent_text(format!(" (owner {owner})"))}</span> })}</dd>
                        <dt>"On behalf of"</dt><dd>{request.on_behalf_of.clone().map_or_else(|| "nobody named".into_any(), agent_text)}</dd>
                        {origin.map(|origin| view! { <dt>"Origin"</dt><dd>{agent_text(origin)}</dd> })}
                        {trace.map(|trace| view! { <dt>"Trace"</dt><dd><a href=trace.clone() rel="noreferrer noopener" target="_blank">{agent_text(trace.clone())}</a></dd> })}
                        <dt>"Created"</dt><dd>{format!("{} ({})", timestamp(request.created_at), ago(page.now, request.created_at, Style::Spaced))}</dd>
                        <dt>"Expires"</dt><dd>{format!("{} ({})", timestamp(request.expires_at), time_left(page.now, request.expires_at, Style::Spaced))}</dd>
                    </dl>
                </section>
                <section class="card" id="diff">
                    <div class="section-head">
                        <h2>"Diff"</h2>
                        {(!files.is_empty()).then(|| view! { <a id="diff-mode" href=mode_link.0>{mode_link.1}</a> })}
                    </div>
                    {diff_view(files, page.diff_mode)}
                </section>
                <section class="card">
                    <h2>"Payload"</h2>
                    <pre id="payload" class="code">{agent_text(payload)}</pre>
                </section>
                {context_text.map(|text| view! { <section class="card"><h2>"Context"</h2><pre class="code">{agent_text(text)}</pre></section> })}
            </div>
            <aside class="side-col">
                {decide_panel(&id, &csrf, viewer.can_decide, viewer.reason.clone(), page.notice, page.comment, DecideOptions {
                    break_glass: page.break_glass,
                    grants: policy.grants.clone(),
                })}
                <section class="card">
                    <h2>"Decisions"</h2>
                    {decisions_list(request.decisions.clone())}
                </section>
                <section class="card">
                    <h2>"Policy"</h2>
                    <dl class="facts">
                        <dt>"Matched"</dt><dd id="policy-name">{agent_text(format!("{} (version {})", policy.name, policy.version))}</dd>
                        <dt>"Needs"</dt><dd>{format!("{} approval(s) from {}", policy.approvals_required, policy.approver_groups.join(", "))}</dd>
                        {(!policy.one_from_each.is_empty()).then(|| view! { <dt>"One from each"</dt><dd>{policy.one_from_each.join(", ")}</dd> })}
                        <dt>"Why"</dt>
                        <dd>{if policy.why.is_empty() {
                            view! { <p>{if policy.name == "default" { "No specific policy matched; the default applies to every action.".to_string() } else { format!("Policy {} matched this action.", policy.name) }}</p> }.into_any()
                        } else {
                            view! { <ul id="policy-why" class="why">{policy.why.clone().into_iter().map(|line| view! { <li>{agent_text(line)}</li> }).collect_view()}</ul> }.into_any()
                        }}</dd>
                    </dl>
                    <h3>"Action digest"</h3>
                    <p><code id="digest" class="digest">{request.digest.clone()}</code></p>
                    <p class="muted small">"SHA-256 of the canonical action, resource, labels, payload and diff: what is approved is exactly what runs."</p>
                </section>
                <section class="card">
                    <h2>"Timeline"</h2>
                    <ol class="timeline">
                        {page.timeline.into_iter().map(|entry| view! {
                            <li><span class="when">{timestamp(entry.at)}</span> " " <strong>{agent_text(entry.what)}</strong> " " <span class="muted">{agent_text(entry.who)}</span></li>
                        }).collect_view()}
                    </ol>
                </section>
            </aside>
        </div>
        {keys_dialog()}
    };
    render(chrome, body)
}

/// What the approve form offers besides a comment.
struct DecideOptions {
    /// An admin the policy names may approve their own request, in an emergency.
    break_glass: bool,
    /// The policy lets approvers grant, within these bounds.
    grants: Option<crate::GrantTerms>,
}

fn decide_panel(
    id: &str,
    csrf: &str,
    can_decide: bool,
    reason: Option<String>,
    notice: Option<(Verdict, String)>,
    comment: String,
    options: DecideOptions,
) -> impl IntoView + use<> {
    let action = format!("/requests/{id}/decide");
    let csrf = csrf.to_string();
    let (approve_notice, deny_notice) = match notice {
        Some((Verdict::Approve, text)) => (Some(text), None),
        Some((Verdict::Deny, text)) => (None, Some(text)),
        None => (None, None),
    };
    let disabled = !can_decide;
    // Break-glass is for an admin's own request, which ordinary eligibility refuses.
    let approve_disabled = disabled && !options.break_glass;
    let deny_comment = if deny_notice.is_some() {
        comment.clone()
    } else {
        String::new()
    };
    let approve_comment = if approve_notice.is_some() {
        comment
    } else {
        String::new()
    };
    view! {
        <section class="card decide" id="decide">
            <h2>"Decide"</h2>
            {reason.map(|reason| view! { <p class="ineligible" role="note">{reason}</p> })}
            <form id="approve-form" method="post" action=action.clone()>
                <input type="hidden" name="csrf" value=csrf.clone() />
                <input type="hidden" name="verdict" value="approve" />
                {approve_notice.map(|text| view! { <p class="notice bad" role="alert">{text}</p> })}
                <label for="approve-comment">"Comment (optional)"</label>
                <textarea id="approve-comment" name="comment" rows="2" maxlength="4096" disabled=approve_disabled>{textarea_text(&approve_comment)}</textarea>
                {options.grants.map(|terms| view! {
                    <fieldset class="grant" disabled=disabled>
                        <legend>"Grant (optional)"</legend>
                        <p class="muted small">{format!("Also approve this agent's later requests for the same action and resource: up to {} and {} uses.", terms.max_duration, terms.max_uses)}</p>
                        <label for="grant-duration">"For how long (e.g. 2h)"</label>
                        <input id="grant-duration" name="grant_duration" />
                        <label for="grant-uses">"How many uses"</label>
                        <input id="grant-uses" name="grant_uses" inputmode="numeric" />
                        <label for="grant-fields">"Payload fields that must stay the same (comma separated)"</label>
                        <input id="grant-fields" name="grant_fields" aria-describedby="grant-fields-help" />
                        <p id="grant-fields-help" class="muted small">"Left empty, later requests must match this one exactly: the whole payload, diff and labels. Name fields to let the rest differ, or write * to allow any payload."</p>
                    </fieldset>
                })}
                {options.break_glass.then(|| view! {
                    <label class="check break-glass-choice"><input type="checkbox" id="break-glass-choice" name="break_glass" value="on" />
                        " Break-glass: approve my own request (needs a comment; no grant; another admin must acknowledge it)"</label>
                })}
                <button id="approve" type="submit" class="button primary" disabled=approve_disabled>"Approve"</button>
            </form>
            <form id="deny-form" method="post" action=action>
                <input type="hidden" name="csrf" value=csrf />
                <input type="hidden" name="verdict" value="deny" />
                {deny_notice.map(|text| view! { <p class="notice bad" role="alert">{text}</p> })}
                <label for="deny-comment">"Why deny? (required)"</label>
                <textarea id="deny-comment" name="comment" rows="2" maxlength="4096" disabled=disabled>{textarea_text(&deny_comment)}</textarea>
                <button id="deny" type="submit" class="button danger" disabled=disabled>"Deny"</button>
            </form>
            <p class="muted small">"Keys: " <kbd>"a"</kbd> " approve, " <kbd>"d"</kbd> " deny."</p>
        </section>
    }
}

fn decisions_list(decisions: Vec<DecisionView>) -> impl IntoView {
    if decisions.is_empty() {
        return view! { <p id="decisions" class="muted">"No decisions yet."</p> }.into_any();
    }
    view! {
        <ul id="decisions" class="decisions">
            {decisions.into_iter().map(|decision| {
                let verdict = decision.verdict.as_str();
                let class = format!("verdict {verdict}");
                let who = decision.reviewer.display_name().to_string();
                let email = decision.reviewer.email.clone().unwrap_or_default();
                view! {
                    <li>
                        <span class=class>{if verdict == "approve" { "approved" } else { "denied" }}</span>
                        " " <strong>{agent_text(who)}</strong> " " <span class="muted">{agent_text(email)}</span>
                        <div class="muted small">{format!("{} · via {}", timestamp(decision.decided_at), decision.channel.as_str())}</div>
                        {(!decision.comment.is_empty()).then(|| view! { <blockquote>{agent_text(decision.comment.clone())}</blockquote> })}
                    </li>
                }
            }).collect_view()}
        </ul>
    }
    .into_any()
}

#[cfg(test)]
mod tests {
    use super::super::diff::*;
    use super::*;

    const GIT_DIFF: &str = "\
diff --git a/run.sh b/run.sh
old mode 100644
new mode 100755
diff --git a/x.bin b/x.bin
Binary files a/x.bin and b/x.bin differ
diff --git a/a.txt b/a.txt
index 1..2 100644
--- a/a.txt
+++ b/a.txt
@@ -1 +1 @@ fn main\u{202E}
-a
+b
stray text
";

    #[test]
    fn both_modes_show_what_is_outside_hunks() {
        for mode in [DiffMode::Unified, DiffMode::Split] {
            let html = view! { <div>{diff_view(difftext::parse(GIT_DIFF), mode)}</div> }.to_html();
            for shown in [
                "old mode 100644",
                "new mode 100755",
                "Binary files a/x.bin and b/x.bin differ",
                "index 1..2 100644",
                "@@ -1 +1 @@ fn main",
                "stray text",
            ] {
                assert!(html.contains(shown), "{mode:?} shows {shown:?}: {html}");
            }
            assert!(!html.contains('\u{202E}'), "{mode:?}: {html}");
            assert!(html.contains("⟨U+202E⟩"), "{mode:?}: {html}");
        }
    }
}
