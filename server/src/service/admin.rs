//! What admins do: policies (save, order, import, what-if, test a request), grants and
//! break-glass follow-ups. Every change goes through the engine; checks that need no
//! lock (does the policy compile?) are made here first, so the writer never pays them.

use std::sync::Arc;
use std::time::{Duration, Instant};

use signoff_app::policy::{
    Budget, CompiledPolicy, DEFAULT_STEPS, Effect, Matched, PolicyDoc, PolicyFile, PolicyProblem, PolicySet,
    RequestFacts,
};
use signoff_app::{EffectKind, Identity, PolicySnapshot, RequestId};

use super::{Service, unexpected};
use crate::engine::policy::MATCH_TIME;
use crate::engine::{AdminChange, Answer, Command, ImportReport};
use crate::store::{Actor, StoredPolicy, StoredRequest};
use crate::{Error, Result};

/// What replaying a draft policy set over past requests found.
#[derive(Clone, Debug)]
pub struct WhatIf {
    pub examined: usize,
    pub changes: Vec<WhatIfChange>,
    pub elapsed: Duration,
    /// It ran out of time before `limit` requests.
    pub stopped_early: bool,
}

/// Rows read per page of a what-if replay: a request may carry a 1 MiB payload.
const WHAT_IF_PAGE: usize = 16;
/// The longest a what-if replay runs.
pub const WHAT_IF_TIME: Duration = Duration::from_secs(20);

/// One past request whose outcome the draft would change.
#[derive(Clone, Debug)]
pub struct WhatIfChange {
    pub request: RequestId,
    pub title: String,
    pub action: String,
    pub agent: String,
    /// The policy it matched, and what that meant.
    pub before_policy: String,
    pub before: String,
    pub after_policy: String,
    pub after: String,
}

/// What an outcome means, in a few words: "allowed", "denied", "2 approvals from sre".
pub fn outcome_text(snapshot: &PolicySnapshot) -> String {
    match snapshot.effect {
        EffectKind::Allow => "allowed at once".into(),
        EffectKind::Deny => "denied at once".into(),
        EffectKind::RequireApproval => {
            let mut text = format!(
                "{} approval{} from {}",
                snapshot.approvals_required,
                if snapshot.approvals_required == 1 { "" } else { "s" },
                snapshot.approver_groups.join(" or ")
            );
            if !snapshot.one_from_each.is_empty() {
                text.push_str(&format!(", one from each of {}", snapshot.one_from_each.join(", ")));
            }
            text
        }
    }
}

impl Service {
    /// Puts the stored policies in force (at start).
    pub async fn load_policies(&self) -> Result<()> {
        self.policies.load(&self.store).await
    }

    /// The policy set in force.
    pub fn policy_set(&self) -> Arc<PolicySet> {
        self.policies.current()
    }

    /// Saves a policy (a new version of `id`, or a new policy at the end), refusing one
    /// that does not compile with every problem at its field.
    #[tracing::instrument(skip_all, fields(policy = ?id))]
    pub async fn save_policy(&self, id: Option<&str>, doc: PolicyDoc, by: Actor) -> Result<StoredPolicy> {
        let doc = tidy(doc);
        CompiledPolicy::compile("", 0, doc.clone()).map_err(Error::PolicyInvalid)?;
        let unrouted = self.unrouted(&doc);
        if !unrouted.is_empty() {
            return Err(Error::PolicyInvalid(unrouted));
        }
        let change = AdminChange::SavePolicy {
            id: id.map(String::from),
            doc: Box::new(doc),
            by,
        };
        match self.engine.submit(Command::Admin(change)).await? {
            Answer::Policy(policy) => Ok(policy),
            other => Err(unexpected(other)),
        }
    }

    /// Moves a policy one place earlier or later; false when it is at that end already.
    #[tracing::instrument(skip_all, fields(policy = %id, earlier = earlier))]
    pub async fn move_policy(&self, id: &str, earlier: bool, by: &Identity) -> Result<bool> {
        let change = AdminChange::MovePolicy {
            id: id.to_string(),
            earlier,
            by: by.clone(),
        };
        self.done(change).await
    }

    /// Makes the stored policies what `file` says, all or nothing: nothing is stored
    /// unless every policy in it is valid.
    #[tracing::instrument(skip_all)]
    pub async fn import_policies(&self, file: PolicyFile, by: Actor) -> Result<ImportReport> {
        let file = PolicyFile {
            policies: file.policies.into_iter().map(tidy).collect(),
        };
        check_file(&file)?;
        let unrouted: Vec<PolicyProblem> = file
            .policies
            .iter()
            .enumerate()
            .flat_map(|(index, doc)| {
                self.unrouted(doc).into_iter().map(move |mut problem| {
                    problem.field = format!("policy {} (`{}`): {}", index + 1, doc.name, problem.field);
                    problem
                })
            })
            .collect();
        if !unrouted.is_empty() {
            return Err(Error::PolicyInvalid(unrouted));
        }
        let change = AdminChange::ImportPolicies {
            docs: file.policies,
            by,
        };
        match self.engine.submit(Command::Admin(change)).await? {
            Answer::Imported(report) => Ok(report),
            other => Err(unexpected(other)),
        }
    }

    /// Replays `draft` over the last `limit` requests and lists those whose outcome it
    /// would change: allowed, denied, needing approval, or needing other approvers. It
    /// reads a page at a time and matches each page on the blocking pool, each request
    /// within the matching budget; past [`WHAT_IF_TIME`] it stops and says how far it got.
    #[tracing::instrument(skip_all, fields(limit = limit))]
    pub async fn what_if(&self, draft: Arc<PolicySet>, limit: usize) -> Result<WhatIf> {
        let started = Instant::now();
        let deadline = started + WHAT_IF_TIME;
        let wanted = limit.clamp(1, 100_000);
        let with_payload = draft.has_conditions();
        let mut found = WhatIf {
            examined: 0,
            changes: Vec::new(),
            elapsed: Duration::ZERO,
            stopped_early: false,
        };
        let mut before = None;
        while found.examined < wanted {
            if Instant::now() >= deadline {
                found.stopped_early = true;
                break;
            }
            let page_size = (wanted - found.examined).min(WHAT_IF_PAGE) as i64;
            let page = self.store.replay_page(before, page_size, with_payload).await?;
            let Some(last) = page.last() else { break };
            before = Some((last.created_at, last.id));
            let (draft, policies) = (Arc::clone(&draft), Arc::clone(&self.policies));
            let replayed = tokio::task::spawn_blocking(move || {
                let mut changes = Vec::new();
                for request in &page {
                    let budget = Arc::new(Budget::new(
                        DEFAULT_STEPS,
                        Some(deadline.min(Instant::now() + MATCH_TIME)),
                    ));
                    let after = policies.snapshot(draft.decide_within(&request.facts(), &budget));
                    changes.extend(changed_outcome(request, &after));
                }
                (page.len(), changes)
            })
            .await
            .map_err(|err| Error::Internal(format!("what-if stopped: {err}")))?;
            found.examined += replayed.0;
            found.changes.extend(replayed.1);
        }
        found.elapsed = started.elapsed();
        Ok(found)
    }

    /// Which policy `request` would match now, and why.
    pub fn test_request(&self, set: &PolicySet, request: &RequestFacts<'_>) -> (Matched, PolicySnapshot) {
        let budget = Arc::new(Budget::new(DEFAULT_STEPS, Some(Instant::now() + MATCH_TIME)));
        let matched = set.decide_within(request, &budget);
        let snapshot = self.policies.snapshot(matched.clone());
        (matched, snapshot)
    }

    /// Ends a grant at once (its grantors, or an admin); false when it had ended already.
    #[tracing::instrument(skip_all, fields(grant = %id))]
    pub async fn revoke_grant(&self, id: &str, by: &Identity, admin: bool) -> Result<bool> {
        let change = AdminChange::RevokeGrant {
            id: id.to_string(),
            by: by.clone(),
            admin,
        };
        self.done(change).await
    }

    /// Another admin acknowledges a break-glass approval; false when already done.
    #[tracing::instrument(skip_all, fields(request = %request))]
    pub async fn acknowledge_followup(&self, request: RequestId, by: &Identity) -> Result<bool> {
        let change = AdminChange::AcknowledgeFollowup {
            request,
            by: by.clone(),
        };
        self.done(change).await
    }
}

/// Every problem of every policy in `file`, as one refusal; `Ok` when it is valid.
pub fn check_file(file: &PolicyFile) -> Result<()> {
    let problems = file.problems();
    if problems.is_empty() {
        return Ok(());
    }
    Err(Error::PolicyInvalid(
        problems
            .into_iter()
            .map(|(i, mut problem)| {
                let name = file.policies.get(i).map(|p| p.name.as_str()).unwrap_or_default();
                problem.field = format!("policy {} (`{name}`): {}", i + 1, problem.field);
                problem
            })
            .collect(),
    ))
}

/// The draft set a file describes, compiled (ids are the names: nothing is stored).
pub fn draft_set(file: &PolicyFile, default: signoff_app::policy::Requirement) -> Result<PolicySet> {
    check_file(file)?;
    let mut policies = Vec::with_capacity(file.policies.len());
    for doc in &file.policies {
        let compiled = CompiledPolicy::compile(doc.name.clone(), 0, tidy(doc.clone())).map_err(Error::PolicyInvalid)?;
        policies.push(compiled);
    }
    Ok(PolicySet {
        policies,
        default,
        generation: 0,
    })
}

/// Trims what admins type, so `" db.* "` and `"db.*"` are one policy.
impl Service {
    /// The routes `doc` names that no configured channel would deliver, each at its field.
    fn unrouted(&self, doc: &PolicyDoc) -> Vec<PolicyProblem> {
        let Effect::RequireApproval(terms) = &doc.effect else {
            return Vec::new();
        };
        let escalation = terms.escalation.iter().flat_map(|escalation| &escalation.notify);
        let named = terms
            .notify
            .iter()
            .map(|route| ("effect.notify", route))
            .chain(escalation.map(|route| ("effect.escalation.notify", route)));
        named
            .filter_map(|(field, text)| {
                let route = text.parse().ok()?;
                let missing = self.settings.channels.unconfigured(&route)?;
                Some(PolicyProblem {
                    field: field.to_string(),
                    message: format!("`{route}`: {missing}"),
                    position: None,
                })
            })
            .collect()
    }
}

fn tidy(mut doc: PolicyDoc) -> PolicyDoc {
    let trim_all = |list: &mut Vec<String>| {
        for item in list.iter_mut() {
            *item = item.trim().to_string();
        }
        list.retain(|item| !item.is_empty());
    };
    doc.name = doc.name.trim().to_string();
    doc.description = doc.description.trim().to_string();
    trim_all(&mut doc.matcher.actions);
    trim_all(&mut doc.matcher.resources);
    trim_all(&mut doc.matcher.labels);
    trim_all(&mut doc.matcher.agents);
    doc.matcher.condition = doc
        .matcher
        .condition
        .map(|c| c.trim().to_string())
        .filter(|c| !c.is_empty());
    if let signoff_app::policy::Effect::RequireApproval(terms) = &mut doc.effect {
        trim_all(&mut terms.approver_groups);
        trim_all(&mut terms.one_from_each);
        trim_all(&mut terms.break_glass);
    }
    doc
}

/// How `after` differs from what `request` got, if it does in outcome or approvers.
fn changed_outcome(request: &StoredRequest, after: &PolicySnapshot) -> Option<WhatIfChange> {
    let before = &request.policy;
    let same = before.effect == after.effect
        && (before.effect != EffectKind::RequireApproval
            || (before.approvals_required == after.approvals_required
                && sorted(&before.approver_groups) == sorted(&after.approver_groups)
                && sorted(&before.one_from_each) == sorted(&after.one_from_each)));
    (!same).then(|| WhatIfChange {
        request: request.id,
        title: request.title.clone(),
        action: request.action.clone(),
        agent: request.agent.name.clone(),
        before_policy: before.name.clone(),
        before: outcome_text(before),
        after_policy: after.name.clone(),
        after: outcome_text(after),
    })
}

fn sorted(list: &[String]) -> Vec<&str> {
    let mut list: Vec<&str> = list.iter().map(String::as_str).collect();
    list.sort_unstable();
    list
}
