//! Policies: which requests need whose approval. A policy matches requests (action and
//! resource globs, label rules, agents, an optional CEL condition) and has an effect
//! (allow, deny, or require approval with its terms). The first enabled policy that
//! matches wins; with none, the default applies (approval, never allow). Everything here
//! is pure: the server stores policies and freezes the match on each request
//! (ARCHITECTURE.md, "Policies").

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

pub use super::condition::{Budget, Condition, DEFAULT_STEPS, PolicyProblem, RequestFacts};
pub use super::route::{BadRoute, DecideIn, Route};
pub use super::rules::{EffectKind, Escalation, GrantTerms, parse_duration};

/// A policy as admins write it (console form, TOML or YAML file).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyDoc {
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    pub enabled: bool,
    #[serde(rename = "match", default)]
    pub matcher: Matcher,
    pub effect: Effect,
}

fn yes() -> bool {
    true
}

fn is_true(value: &bool) -> bool {
    *value
}

/// Which requests a policy is for. Every part given must hold; an empty part holds for
/// every request.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Matcher {
    /// Globs on the dotted action name: `db.*`, `iam.escalate`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub actions: Vec<String>,
    /// Globs on the resource.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resources: Vec<String>,
    /// Label rules, all required: `env=prod`, `env!=dev`, `compliance in [pci, fedramp]`,
    /// or a bare key that must be present.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub labels: Vec<String>,
    /// Agent names (globs); empty for every agent.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub agents: Vec<String>,
    /// A CEL expression over the request, true to match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub condition: Option<String>,
}

/// What a matching policy does.
// Policies are few and built when saved; boxing the terms would buy nothing measurable.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Effect {
    /// Approved at once (still audited, the agent told which policy).
    Allow,
    /// Refused at once, with the reason the agent is told.
    Deny {
        reason: String,
    },
    RequireApproval(Requirement),
}

impl Effect {
    pub fn kind(&self) -> EffectKind {
        match self {
            Effect::Allow => EffectKind::Allow,
            Effect::Deny { .. } => EffectKind::Deny,
            Effect::RequireApproval(_) => EffectKind::RequireApproval,
        }
    }
}

/// The terms of an approval.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Requirement {
    /// Distinct humans who must approve.
    #[serde(default = "one")]
    pub approvals: u32,
    /// Any member of these may approve; empty for the reviewer groups.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub approver_groups: Vec<String>,
    /// At least one approver from each of these groups (a peer and a manager, say).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub one_from_each: Vec<String>,
    /// Approvals need a comment too (denials always do).
    #[serde(default, skip_serializing_if = "is_false")]
    pub comment_required: bool,
    /// How long the request may stay pending, e.g. `30m`; the server's default otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub escalation: Option<Escalation>,
    /// Whether approvers may approve with a grant, and its bounds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grants: Option<GrantTerms>,
    /// Admins (email or subject) who may approve their own request in an emergency.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub break_glass: Vec<String>,
    /// Where its requests' notices go (`slack:#approvals`, `teams:ops`, …), besides the
    /// server's default routes when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notify: Vec<String>,
    /// `console`: chat messages carry a link, never buttons.
    #[serde(default, skip_serializing_if = "DecideIn::is_anywhere")]
    pub decide_in: DecideIn,
    /// A reminder goes to the routes this long before the request expires, e.g. `10m`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remind_before: Option<String>,
}

fn one() -> u32 {
    1
}

fn is_false(value: &bool) -> bool {
    !*value
}

impl Requirement {
    /// `approvals` from the reviewer groups, nothing more: the default.
    pub fn simple(approvals: u32) -> Requirement {
        Requirement {
            approvals,
            approver_groups: Vec::new(),
            one_from_each: Vec::new(),
            comment_required: false,
            ttl: None,
            escalation: None,
            grants: None,
            break_glass: Vec::new(),
            notify: Vec::new(),
            decide_in: DecideIn::Anywhere,
            remind_before: None,
        }
    }
}

fn problem(field: &str, message: impl Into<String>) -> PolicyProblem {
    PolicyProblem {
        field: field.into(),
        message: message.into(),
        position: None,
    }
}

/// The names a condition may use: the request's parts.
pub const CONDITION_VARIABLES: &[&str] = super::condition::VARIABLES;

/// A label rule, parsed.
#[derive(Clone, Debug, PartialEq, Eq)]
enum LabelRule {
    Present(String),
    Equals(String, String),
    NotEquals(String, String),
    OneOf(String, Vec<String>),
}

impl LabelRule {
    fn parse(text: &str) -> Result<LabelRule, String> {
        let text = text.trim();
        let key_ok = |key: &str| !key.is_empty() && !key.contains(char::is_whitespace);
        if let Some((key, values)) = text.split_once(" in ") {
            let key = key.trim();
            let values = values.trim();
            let inner = values
                .strip_prefix('[')
                .and_then(|v| v.strip_suffix(']'))
                .ok_or_else(|| format!("`{text}`: write the values as a list, `{key} in [a, b]`"))?;
            let values: Vec<String> = inner
                .split(',')
                .map(|v| v.trim().trim_matches('"').to_string())
                .filter(|v| !v.is_empty())
                .collect();
            if !key_ok(key) || values.is_empty() {
                return Err(format!("`{text}`: needs a key and at least one value"));
            }
            return Ok(LabelRule::OneOf(key.into(), values));
        }
        if let Some((key, value)) = text.split_once("!=") {
            let key = key.trim();
            return if key_ok(key) {
                Ok(LabelRule::NotEquals(key.into(), value.trim().into()))
            } else {
                Err(format!("`{text}`: needs a key before `!=`"))
            };
        }
        if let Some((key, value)) = text.split_once('=') {
            let key = key.trim();
            return if key_ok(key) {
                Ok(LabelRule::Equals(key.into(), value.trim().into()))
            } else {
                Err(format!("`{text}`: needs a key before `=`"))
            };
        }
        if key_ok(text) {
            Ok(LabelRule::Present(text.into()))
        } else {
            Err(format!(
                "`{text}` is not a label rule: write `key=value`, `key!=value`, `key in [a, b]` or `key`"
            ))
        }
    }

    fn holds(&self, labels: &BTreeMap<String, String>) -> bool {
        match self {
            LabelRule::Present(key) => labels.contains_key(key),
            LabelRule::Equals(key, value) => labels.get(key) == Some(value),
            LabelRule::NotEquals(key, value) => labels.get(key) != Some(value),
            LabelRule::OneOf(key, values) => labels.get(key).is_some_and(|v| values.contains(v)),
        }
    }
}

/// `*` matches any run of characters (dots too), `?` any one; everything else itself.
pub fn glob_matches(pattern: &str, text: &str) -> bool {
    let pattern: Vec<char> = pattern.chars().collect();
    let text: Vec<char> = text.chars().collect();
    // Iterative matching with one backtrack point: linear in practice, never exponential.
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match pattern.get(p) {
            Some('*') => {
                star = Some((p, t));
                p += 1;
            }
            Some('?') => {
                p += 1;
                t += 1;
            }
            Some(c) if *c == text[t] => {
                p += 1;
                t += 1;
            }
            _ => match star {
                Some((star_p, star_t)) => {
                    p = star_p + 1;
                    t = star_t + 1;
                    star = Some((star_p, star_t + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|c| *c == '*')
}

/// A policy ready to match: its text checked, its condition compiled.
#[derive(Clone, Debug)]
pub struct CompiledPolicy {
    pub id: String,
    pub version: i64,
    pub doc: PolicyDoc,
    labels: Vec<LabelRule>,
    condition: Option<Condition>,
    /// Why a stored policy could not be compiled, when it could not: it then fails every
    /// match (closed) instead of taking the server down. See [`CompiledPolicy::stored`].
    refused: Option<String>,
}

impl CompiledPolicy {
    /// Checks `doc` and compiles it; every problem found, each at its field.
    pub fn compile(id: impl Into<String>, version: i64, doc: PolicyDoc) -> Result<Self, Vec<PolicyProblem>> {
        let mut problems = validate_terms(&doc);
        let mut labels = Vec::new();
        for (i, text) in doc.matcher.labels.iter().enumerate() {
            match LabelRule::parse(text) {
                Ok(rule) => labels.push(rule),
                Err(message) => problems.push(problem(&format!("match.labels[{i}]"), message)),
            }
        }
        let condition = match doc.matcher.condition.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(source) => match Condition::compile(source) {
                Ok(condition) => Some(condition),
                Err(found) => {
                    problems.push(found);
                    None
                }
            },
        };
        if problems.is_empty() {
            Ok(CompiledPolicy {
                id: id.into(),
                version,
                doc,
                labels,
                condition,
                refused: None,
            })
        } else {
            Err(problems)
        }
    }

    /// A stored policy, compiled as well as it can be: every save is checked, but a store
    /// may hold what an earlier version accepted (a condition now too deep, say). Such a
    /// policy still matches on its globs and labels and then fails, closed: a match for a
    /// policy that denies or needs approval, none for one that allows. The server starts
    /// and says so, rather than refusing to start or crashing on a request.
    pub fn stored(id: impl Into<String>, version: i64, doc: PolicyDoc) -> (CompiledPolicy, Vec<PolicyProblem>) {
        let id = id.into();
        let problems = match CompiledPolicy::compile(id.clone(), version, doc.clone()) {
            Ok(compiled) => return (compiled, Vec::new()),
            Err(problems) => problems,
        };
        let refused = problems.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ");
        let mut without_condition = doc.clone();
        without_condition.matcher.condition = None;
        let compiled = match CompiledPolicy::compile(id.clone(), version, without_condition) {
            Ok(partial) => CompiledPolicy {
                doc,
                refused: Some(refused),
                ..partial
            },
            Err(_) => CompiledPolicy {
                id,
                version,
                doc,
                labels: Vec::new(),
                condition: None,
                refused: Some(refused),
            },
        };
        (compiled, problems)
    }

    /// Whether the policy is for `request`, and why: `Ok(None)` when it is not;
    /// `Err` when its condition could not be evaluated for this request.
    fn matches(&self, request: &RequestFacts<'_>, budget: &Arc<Budget>) -> Result<Option<Vec<String>>, String> {
        let matcher = &self.doc.matcher;
        let mut why = Vec::new();
        let any = |patterns: &[String], text: &str| patterns.iter().find(|p| glob_matches(p, text)).cloned();
        if !matcher.actions.is_empty() {
            match any(&matcher.actions, request.action) {
                Some(pattern) => why.push(format!("action {} matches `{pattern}`", request.action)),
                None => return Ok(None),
            }
        }
        if !matcher.resources.is_empty() {
            match any(&matcher.resources, request.resource) {
                Some(pattern) => why.push(format!("resource {} matches `{pattern}`", request.resource)),
                None => return Ok(None),
            }
        }
        if !matcher.agents.is_empty() {
            match any(&matcher.agents, request.agent) {
                Some(pattern) => why.push(format!("agent {} matches `{pattern}`", request.agent)),
                None => return Ok(None),
            }
        }
        for (rule, text) in self.labels.iter().zip(&matcher.labels) {
            if !rule.holds(request.labels) {
                return Ok(None);
            }
            why.push(format!("labels satisfy `{}`", text.trim()));
        }
        if let Some(refused) = &self.refused {
            return Err(format!("the stored policy is refused: {refused}"));
        }
        if let Some(condition) = &self.condition {
            match condition.evaluate(request, budget)? {
                true => why.push(format!(
                    "condition `{}` is true",
                    matcher.condition.as_deref().unwrap_or_default().trim()
                )),
                false => return Ok(None),
            }
        }
        if why.is_empty() {
            why.push("matches every request".into());
        }
        Ok(Some(why))
    }
}

/// Entries a policy's list (globs, label rules, groups, admins) may hold: matching walks
/// every list of every policy for each request.
pub const MAX_LIST_ITEMS: usize = 100;
/// Characters an entry of such a list may have.
pub const MAX_ITEM_CHARS: usize = 256;

/// Problems in the parts that need no compiling: names, numbers, durations, groups.
fn validate_terms(doc: &PolicyDoc) -> Vec<PolicyProblem> {
    let mut problems = Vec::new();
    if doc.name.trim().is_empty() {
        problems.push(problem("name", "a policy needs a name"));
    } else if doc.name.chars().count() > 100 {
        problems.push(problem("name", "at most 100 characters"));
    }
    if doc.description.chars().count() > 2000 {
        problems.push(problem("description", "at most 2000 characters"));
    }
    for (field, patterns) in [
        ("match.actions", &doc.matcher.actions),
        ("match.resources", &doc.matcher.resources),
        ("match.agents", &doc.matcher.agents),
    ] {
        if patterns.iter().any(|p| p.trim().is_empty()) {
            problems.push(problem(field, "an empty pattern matches nothing; remove it"));
        }
    }
    let mut lists: Vec<(&str, &Vec<String>)> = vec![
        ("match.actions", &doc.matcher.actions),
        ("match.resources", &doc.matcher.resources),
        ("match.labels", &doc.matcher.labels),
        ("match.agents", &doc.matcher.agents),
    ];
    if let Effect::RequireApproval(terms) = &doc.effect {
        lists.push(("effect.approver_groups", &terms.approver_groups));
        lists.push(("effect.one_from_each", &terms.one_from_each));
        lists.push(("effect.break_glass", &terms.break_glass));
        if let Some(escalation) = &terms.escalation {
            lists.push(("effect.escalation.groups", &escalation.groups));
        }
    }
    for (field, list) in lists {
        if list.len() > MAX_LIST_ITEMS {
            problems.push(problem(field, format!("at most {MAX_LIST_ITEMS} entries")));
        } else if list.iter().any(|item| item.chars().count() > MAX_ITEM_CHARS) {
            problems.push(problem(
                field,
                format!("each entry at most {MAX_ITEM_CHARS} characters"),
            ));
        }
    }
    match &doc.effect {
        Effect::Allow => {}
        Effect::Deny { reason } => {
            if reason.trim().is_empty() {
                problems.push(problem("effect.reason", "a deny tells the agent why: give a reason"));
            }
        }
        Effect::RequireApproval(terms) => {
            if !(1..=20).contains(&terms.approvals) {
                problems.push(problem("effect.approvals", "between 1 and 20 distinct approvers"));
            }
            if terms.one_from_each.len() as u32 > terms.approvals {
                problems.push(problem(
                    "effect.one_from_each",
                    format!(
                        "one approver from each of {} groups needs at least {} approvals",
                        terms.one_from_each.len(),
                        terms.one_from_each.len()
                    ),
                ));
            }
            if let Some(ttl) = &terms.ttl {
                match parse_duration(ttl) {
                    Some(seconds) if (60..=30 * 86_400).contains(&seconds) => {}
                    Some(_) => problems.push(problem("effect.ttl", "between 1m and 30d")),
                    None => problems.push(problem("effect.ttl", "a duration such as `30m`, `8h` or `2d`")),
                }
            }
            if let Some(escalation) = &terms.escalation {
                if escalation.after_minutes == 0 {
                    problems.push(problem("effect.escalation.after_minutes", "at least 1 minute"));
                }
                if escalation.groups.is_empty() {
                    problems.push(problem(
                        "effect.escalation.groups",
                        "name the groups that may approve after escalation",
                    ));
                }
            }
            if let Some(grants) = &terms.grants {
                match parse_duration(&grants.max_duration) {
                    Some(seconds) if (60..=30 * 86_400).contains(&seconds) => {}
                    _ => problems.push(problem(
                        "effect.grants.max_duration",
                        "a duration between 1m and 30d, such as `8h`",
                    )),
                }
                if grants.max_uses == 0 {
                    problems.push(problem("effect.grants.max_uses", "at least 1 use"));
                }
            }
            if terms.break_glass.iter().any(|who| who.trim().is_empty()) {
                problems.push(problem("effect.break_glass", "name each admin by email or subject"));
            }
            problems.extend(route_problems("effect.notify", &terms.notify));
            if let Some(escalation) = &terms.escalation {
                problems.extend(route_problems("effect.escalation.notify", &escalation.notify));
            }
            if let Some(before) = &terms.remind_before {
                match parse_duration(before) {
                    Some(seconds) if (60..=30 * 86_400).contains(&seconds) => {}
                    _ => problems.push(problem(
                        "effect.remind_before",
                        "a duration between 1m and 30d before expiry, such as `10m`",
                    )),
                }
            }
        }
    }
    problems
}

/// Each route that cannot be read, or is named twice.
fn route_problems(field: &str, routes: &[String]) -> Vec<PolicyProblem> {
    let mut problems = Vec::new();
    if routes.len() > 20 {
        problems.push(problem(field, "at most 20 routes"));
    }
    let mut seen = std::collections::HashSet::new();
    for route in routes {
        match route.parse::<Route>() {
            Ok(parsed) if !seen.insert(parsed.clone()) => {
                problems.push(problem(field, format!("`{parsed}` is named twice")));
            }
            Ok(_) => {}
            Err(bad) => problems.push(problem(field, bad.to_string())),
        }
    }
    problems
}

/// Compiles a condition; see [`Condition::compile`].
pub fn compile_condition(source: &str) -> Result<Condition, PolicyProblem> {
    Condition::compile(source)
}

/// The policies in force, in order, and the default for requests none matches.
#[derive(Clone, Debug)]
pub struct PolicySet {
    pub policies: Vec<CompiledPolicy>,
    pub default: Requirement,
    /// Which stored set this is; changes with every saved change.
    pub generation: i64,
}

/// The policy a request matched and why, as frozen on the request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Matched {
    pub policy_id: Option<String>,
    pub name: String,
    pub version: i64,
    pub effect: Effect,
    pub why: Vec<String>,
}

impl PolicySet {
    /// The first enabled policy that matches, else the default. A condition that cannot
    /// be evaluated fails closed: it counts as a match for a policy that denies or needs
    /// approval, and as no match for one that allows.
    /// Whether matching may run a condition (and so is worth moving off the threads that
    /// answer HTTP).
    pub fn has_conditions(&self) -> bool {
        self.policies
            .iter()
            .any(|p| p.doc.enabled && (p.condition.is_some() || p.refused.is_some()))
    }

    pub fn decide(&self, request: &RequestFacts<'_>) -> Matched {
        self.decide_within(request, &Arc::new(Budget::standard()))
    }

    /// [`decide`](Self::decide), spending `budget` on conditions: once it is spent, every
    /// condition left fails (closed).
    pub fn decide_within(&self, request: &RequestFacts<'_>, budget: &Arc<Budget>) -> Matched {
        // Allow policies passed over because their condition failed: the reviewer (and the
        // admin testing a request) should see why the request was not allowed.
        let mut passed_over = Vec::new();
        for policy in self.policies.iter().filter(|p| p.doc.enabled) {
            let mut why = match policy.matches(request, budget) {
                Ok(Some(why)) => why,
                Ok(None) => continue,
                Err(failure) if policy.doc.effect.kind() != EffectKind::Allow => {
                    vec![format!("{failure}; held as a match (fail closed)")]
                }
                Err(failure) => {
                    passed_over.push(format!(
                        "`{}` would allow, but {failure}; not applied (fail closed)",
                        policy.doc.name
                    ));
                    continue;
                }
            };
            why.extend(passed_over);
            return Matched {
                policy_id: Some(policy.id.clone()),
                name: policy.doc.name.clone(),
                version: policy.version,
                effect: policy.doc.effect.clone(),
                why,
            };
        }
        let mut why = vec!["no policy matched: the default applies".to_string()];
        why.extend(passed_over);
        Matched {
            policy_id: None,
            name: "default".into(),
            version: 0,
            effect: Effect::RequireApproval(self.default.clone()),
            why,
        }
    }
}

/// Reads a policy file: `[[policy]]` tables in TOML, or a `policy:` list in YAML,
/// in order.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyFile {
    #[serde(default, rename = "policy")]
    pub policies: Vec<PolicyDoc>,
}

impl PolicyFile {
    /// Every problem of every policy, each prefixed with the policy's place and name;
    /// names must be unique, since they are how a file refers to stored policies.
    pub fn problems(&self) -> Vec<(usize, PolicyProblem)> {
        let mut problems = Vec::new();
        let mut seen: Vec<&str> = Vec::new();
        for (i, doc) in self.policies.iter().enumerate() {
            if seen.contains(&doc.name.trim()) {
                problems.push((
                    i,
                    problem("name", format!("`{}` is used by an earlier policy", doc.name)),
                ));
            }
            seen.push(doc.name.trim());
            if let Err(found) = CompiledPolicy::compile("", 0, doc.clone()) {
                problems.extend(found.into_iter().map(|p| (i, p)));
            }
        }
        problems
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn facts<'a>(
        action: &'a str,
        labels: &'a BTreeMap<String, String>,
        payload: &'a serde_json::Value,
    ) -> RequestFacts<'a> {
        RequestFacts {
            agent: "deploy-bot",
            action,
            resource: "orders",
            labels,
            payload,
            context: None,
            on_behalf_of: None,
            title: "t",
            reason: "r",
        }
    }

    fn doc(name: &str, matcher: Matcher, effect: Effect) -> PolicyDoc {
        PolicyDoc {
            name: name.into(),
            description: String::new(),
            enabled: true,
            matcher,
            effect,
        }
    }

    #[test]
    fn globs_match_dotted_names() {
        assert!(glob_matches("db.*", "db.export"));
        assert!(glob_matches("db.*", "db.export.full"));
        assert!(!glob_matches("db.*", "dbx.export"));
        assert!(glob_matches("*", ""));
        assert!(glob_matches("iam.escalate", "iam.escalate"));
        assert!(!glob_matches("iam.escalate", "iam.escalated"));
        assert!(glob_matches("s3://*/prod/*", "s3://bucket/prod/key"));
        assert!(glob_matches("a?c", "abc"));
        assert!(!glob_matches(&"*a".repeat(30), &"b".repeat(200)));
    }

    #[test]
    fn first_enabled_match_wins_and_the_default_never_allows() {
        let labels: BTreeMap<String, String> = [("env".to_string(), "prod".to_string())].into();
        let payload = json!({"rows": 5000});
        let mut disabled = doc("off", Matcher::default(), Effect::Deny { reason: "never".into() });
        disabled.enabled = false;
        let set = PolicySet {
            policies: vec![
                CompiledPolicy::compile("p0", 1, disabled).expect("valid"),
                CompiledPolicy::compile(
                    "p1",
                    3,
                    doc(
                        "big prod exports",
                        Matcher {
                            actions: vec!["db.*".into()],
                            labels: vec!["env in [prod, staging]".into()],
                            condition: Some("payload.rows > 1000".into()),
                            ..Matcher::default()
                        },
                        Effect::RequireApproval(Requirement::simple(2)),
                    ),
                )
                .expect("valid"),
                CompiledPolicy::compile(
                    "p2",
                    1,
                    doc(
                        "reads",
                        Matcher {
                            actions: vec!["db.*".into()],
                            ..Matcher::default()
                        },
                        Effect::Allow,
                    ),
                )
                .expect("valid"),
            ],
            default: Requirement::simple(1),
            generation: 1,
        };
        let matched = set.decide(&facts("db.export", &labels, &payload));
        assert_eq!(matched.name, "big prod exports");
        assert_eq!(matched.version, 3);
        assert_eq!(matched.why.len(), 3, "{:?}", matched.why);
        let small = json!({"rows": 10});
        assert_eq!(set.decide(&facts("db.export", &labels, &small)).effect, Effect::Allow);
        let other = set.decide(&facts("iam.escalate", &labels, &small));
        assert_eq!(other.policy_id, None);
        assert_eq!(other.effect, Effect::RequireApproval(Requirement::simple(1)));
    }

    #[test]
    fn a_condition_that_fails_is_a_match_unless_the_policy_allows() {
        let labels = BTreeMap::new();
        let payload = json!({});
        let deny = CompiledPolicy::compile(
            "d",
            1,
            doc(
                "deny big",
                Matcher {
                    condition: Some("payload.rows > 10".into()),
                    ..Matcher::default()
                },
                Effect::Deny { reason: "big".into() },
            ),
        )
        .expect("valid");
        let allow = CompiledPolicy::compile(
            "a",
            1,
            doc(
                "allow small",
                Matcher {
                    condition: Some("payload.rows < 10".into()),
                    ..Matcher::default()
                },
                Effect::Allow,
            ),
        )
        .expect("valid");
        let set = |policies| PolicySet {
            policies,
            default: Requirement::simple(1),
            generation: 0,
        };
        let held = set(vec![deny]).decide(&facts("x", &labels, &payload));
        assert_eq!(held.name, "deny big");
        assert!(held.why[0].contains("fail closed"), "{:?}", held.why);
        let not_allowed = set(vec![allow]).decide(&facts("x", &labels, &payload));
        assert_eq!(not_allowed.name, "default");
    }

    #[test]
    fn bad_conditions_are_refused_with_their_position() {
        let refused = compile_condition("payload.rows >").expect_err("incomplete");
        assert_eq!(refused.field, "match.condition");
        assert!(refused.position.is_some(), "{refused:?}");
        let unknown = compile_condition("payload.rows > 1 &&\n  secrets.x == 1").expect_err("unknown name");
        assert_eq!(unknown.position, Some((2, 3)), "{unknown:?}");
        assert!(unknown.message.contains("secrets"), "{unknown:?}");
        compile_condition("payload.items.all(item, item.size < 10) && labels.env == 'prod'")
            .expect("macro variables are fine");
        compile_condition("has(payload.rows) && context.ticket.startsWith('CHG-')").expect("valid");
    }

    #[test]
    fn terms_are_checked_field_by_field() {
        let mut terms = Requirement::simple(0);
        terms.ttl = Some("forever".into());
        terms.one_from_each = vec!["a".into(), "b".into()];
        let problems = CompiledPolicy::compile(
            "x",
            1,
            doc(
                "",
                Matcher {
                    labels: vec!["env in prod".into()],
                    ..Matcher::default()
                },
                Effect::RequireApproval(terms),
            ),
        )
        .expect_err("invalid");
        let fields: Vec<&str> = problems.iter().map(|p| p.field.as_str()).collect();
        for field in [
            "name",
            "effect.approvals",
            "effect.one_from_each",
            "effect.ttl",
            "match.labels[0]",
        ] {
            assert!(fields.contains(&field), "{field} in {fields:?}");
        }
    }

    #[test]
    fn lists_are_bounded() {
        let mut terms = Requirement::simple(1);
        terms.approver_groups = (0..=MAX_LIST_ITEMS).map(|i| format!("g{i}")).collect();
        let problems = CompiledPolicy::compile(
            "x",
            1,
            doc(
                "big",
                Matcher {
                    actions: vec!["a".repeat(MAX_ITEM_CHARS + 1)],
                    ..Matcher::default()
                },
                Effect::RequireApproval(terms),
            ),
        )
        .expect_err("too big");
        let fields: Vec<&str> = problems.iter().map(|p| p.field.as_str()).collect();
        assert_eq!(fields, ["match.actions", "effect.approver_groups"]);
    }

    #[test]
    fn policy_files_read_as_toml() {
        let file: PolicyFile = toml_like();
        assert_eq!(file.policies.len(), 2);
        assert!(file.problems().is_empty(), "{:?}", file.problems());
        assert_eq!(parse_duration("1h30m"), Some(5400));
        assert_eq!(parse_duration("h"), None);
    }

    fn toml_like() -> PolicyFile {
        serde_json::from_value(json!({
            "policy": [
                {"name": "prod", "match": {"actions": ["deploy.*"], "labels": ["env=prod"]},
                 "effect": {"type": "require_approval", "approvals": 2, "one_from_each": ["sre", "leads"],
                            "ttl": "2h", "grants": {"max_duration": "8h", "max_uses": 5}}},
                {"name": "no-drops", "match": {"actions": ["db.drop"]}, "effect": {"type": "deny", "reason": "never"}}
            ]
        }))
        .expect("valid file")
    }
}
