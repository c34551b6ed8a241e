//! The policies pages: the ordered list, the edit form, versions.

use super::*;

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
    pub notify: String,
    pub escalation_notify: String,
    /// `anywhere` or `console`.
    pub decide_in: String,
    pub remind_before: String,
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
pub(super) fn field_label(key: &str) -> &'static str {
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
        "notify" => "Notify",
        "escalation_notify" => "Escalation notifies",
        "decide_in" => "Decide in",
        "remind_before" => "Remind before expiry",
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
            <fieldset class="card">
                <legend>"Who hears of it (for require approval)"</legend>
                {field("notify", "Notify", "Routes such as slack:#approvals, teams:ops, email:oncall@example.com, webhook:siem. Empty for the server's default routes.").area(&form.notify, 2)}
                {field("escalation_notify", "Escalation notifies", "Routes for the escalation notice. Empty for the routes above.").area(&form.escalation_notify, 2)}
                <div class="field">
                    <label for="field-decide_in">"Decide in"</label>
                    <select id="field-decide_in" name="decide_in">
                        <option value="anywhere" selected=form.decide_in != "console">"Anywhere (console, terminal, chat buttons)"</option>
                        <option value="console" selected=form.decide_in == "console">"The console only: chat messages carry a link, never buttons"</option>
                    </select>
                </div>
                {field("remind_before", "Remind before expiry", "A duration such as 10m: a reminder goes to the routes this long before the request expires. Empty for none.").text(&form.remind_before)}
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
                    {if files.is_empty() { view! { <p class="muted">"The two versions are the same."</p> }.into_any() } else { diff_view(files, crate::ui::DiffMode::Unified).into_any() }}
                </section>
            }
        })}
    };
    render(chrome, body)
}
