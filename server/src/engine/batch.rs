//! One batch: read what it needs, apply each command in order in memory, write it all,
//! commit. Nothing here is answered or published; the writer does that after the commit.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use serde_json::{Value, json};
use time::OffsetDateTime;

use signoff_app::policy::{Budget, DEFAULT_STEPS, PolicySet};
use signoff_app::{
    AgentId, Identity, Outcome, RequestId, RuleError, Status, TransitionError, Verdict, canonical_json,
    check_eligibility, evaluate, evaluate_break_glass,
};

use super::policy::REMATCH_TIME;
use super::{Answer, Command, GrantAsk, NewRequest, Policies, admin, batch_time, created_event};
use crate::bus::{Event, Snapshot};
use crate::store::{
    Actor, AuditRow, DecisionRecord, GrantRecord, NewRow, Store, StoredRequest, WriteTx, audit_value,
    chain_hash_canonical, millis,
};
use crate::{Error, Result};

/// What a committed batch answers and announces.
pub(super) struct Applied {
    /// One per command, in order.
    pub answers: Vec<Result<Answer>>,
    pub events: Vec<Event>,
    /// The policy set as this batch left it, when it changed it.
    pub policies: Option<Arc<PolicySet>>,
}

/// A request as the batch sees it: as stored (or created in this batch), with every
/// change of earlier commands applied.
struct Loaded {
    request: StoredRequest,
    decisions: Vec<DecisionRecord>,
    /// Created in this batch (inserted in its final state rather than updated).
    new: bool,
    changed: bool,
}

/// The audit chain, continued in memory from the head the batch holds.
pub(super) struct Chain {
    seq: i64,
    hash: String,
    rows: Vec<AuditRow>,
    events: Vec<Event>,
}

impl Chain {
    fn append(
        &mut self,
        at: OffsetDateTime,
        kind: &'static str,
        request: Option<RequestId>,
        actor: String,
        data: String,
    ) {
        let seq = self.seq + 1;
        let at = millis(at);
        let request_id = request.map(|id| id.to_string());
        let hash = chain_hash_canonical(&self.hash, seq, at, kind, request_id.as_deref(), &actor, &data);
        if let Some(id) = request
            && let Some(event) = Event::from_audit(seq, kind, id)
        {
            self.events.push(event);
        }
        self.rows.push(AuditRow {
            seq,
            at,
            kind,
            request_id,
            actor,
            data,
            prev_hash: std::mem::replace(&mut self.hash, hash.clone()),
            hash,
        });
        self.seq = seq;
    }

    pub(super) fn append_value(
        &mut self,
        at: OffsetDateTime,
        kind: &'static str,
        request: Option<RequestId>,
        actor: &Actor,
        data: &Value,
    ) -> Result<()> {
        let actor = canonical_json(&audit_value(actor)?);
        self.append(at, kind, request, actor, canonical_json(data));
        Ok(())
    }
}

pub(super) async fn apply(store: &Store, policies: &Policies, commands: &[&Command]) -> Result<Applied> {
    let mut tx = WriteTx::begin(store).await?;
    let (seq, hash) = tx.lock_head().await?;
    let now = batch_time();
    let mut batch = Batch {
        now,
        policies: policies.current(),
        policy_changed: false,
        rematch_budget: None,
        grants: HashMap::new(),
        grant_uses: HashMap::new(),
        new_grants: Vec::new(),
        followups: Vec::new(),
        requests: HashMap::new(),
        by_key: HashMap::new(),
        due: Vec::new(),
        decisions: Vec::new(),
        created: Vec::new(),
        chain: Chain {
            seq,
            hash,
            rows: Vec::new(),
            events: Vec::new(),
        },
    };
    batch.load(&mut tx, policies, commands).await?;
    let mut answers = Vec::with_capacity(commands.len());
    for command in commands {
        answers.push(match command {
            // Its statements run now, in the batch's transaction; a failure fails the batch.
            Command::Admin(change) => match admin::apply(&mut tx, &mut batch.chain, now, change).await? {
                admin::Applied::Done(answer) => Ok(answer),
                admin::Applied::Refused(refusal) => Err(refusal),
                admin::Applied::PoliciesChanged(answer) => {
                    let generation = tx.bump_policy_generation().await?;
                    batch.policies = policies.compile(tx.policies().await?, generation);
                    batch.policy_changed = true;
                    Ok(answer)
                }
            },
            other => batch.apply(policies, other),
        });
    }
    batch.write(&mut tx).await?;
    tx.commit().await?;
    let changed = batch.policy_changed.then(|| Arc::clone(&batch.policies));
    Ok(Applied {
        answers,
        events: batch.events_with_snapshots(),
        policies: changed,
    })
}

struct Batch {
    now: OffsetDateTime,
    /// The policy set requests created in this batch are matched under.
    policies: Arc<PolicySet>,
    policy_changed: bool,
    /// What matching again may still spend in this batch, once it starts.
    rematch_budget: Option<Arc<Budget>>,
    /// Usable grants by (agent, action, resource), for requests created in this batch.
    grants: HashMap<(AgentId, String, String), Vec<GrantRecord>>,
    /// Uses of grants in this batch.
    grant_uses: HashMap<String, i64>,
    new_grants: Vec<GrantRecord>,
    /// Break-glass follow-ups opened in this batch.
    followups: Vec<(RequestId, Identity, OffsetDateTime)>,
    requests: HashMap<RequestId, Loaded>,
    /// Requests by (agent, idempotency key), stored or created in this batch.
    by_key: HashMap<(AgentId, String), RequestId>,
    /// Pending requests past their time, for `ExpireDue`.
    due: Vec<RequestId>,
    /// Decisions recorded in this batch.
    decisions: Vec<DecisionRecord>,
    /// Requests created in this batch, in order, with their idempotency keys.
    created: Vec<(RequestId, Option<String>)>,
    chain: Chain,
}

impl Batch {
    /// Reads, in a few statements, every row the commands will look at.
    async fn load(&mut self, tx: &mut WriteTx, policies: &Policies, commands: &[&Command]) -> Result<()> {
        let mut ids: Vec<RequestId> = Vec::new();
        let mut keys: Vec<(AgentId, &str)> = Vec::new();
        let mut expire_limit = 0;
        let creates = commands.iter().any(|command| matches!(command, Command::Create(_)));
        if creates {
            // Another replica may have changed the policies since this one loaded them.
            let generation = tx.policy_generation().await?;
            if generation != self.policies.generation {
                self.policies = policies.compile(tx.policies().await?, generation);
                self.policy_changed = true;
            }
        }
        let mut grant_keys: Vec<(AgentId, String, String)> = Vec::new();
        for command in commands {
            match command {
                Command::Create(new) => {
                    if let Some(key) = &new.record.idempotency_key {
                        keys.push((new.record.request.agent.id, key.as_str()));
                    }
                    let request = &new.record.request;
                    // Grants can only matter where a policy allowing them may match.
                    if self.policies.policies.iter().any(|p| allows_grants(&p.doc.effect)) {
                        grant_keys.push((request.agent.id, request.action.clone(), request.resource.clone()));
                    }
                }
                Command::Decide { id, .. }
                | Command::Cancel { id, .. }
                | Command::Start { id, .. }
                | Command::Report { id, .. } => ids.push(*id),
                Command::ExpireDue { limit } => expire_limit += limit,
                Command::Admin(_) => {}
            }
        }
        ids.sort_unstable();
        ids.dedup();
        if !ids.is_empty() {
            let mut found = tx.requests(&ids).await?;
            let mut decisions: HashMap<RequestId, Vec<DecisionRecord>> = HashMap::new();
            for decision in tx.decisions(&ids).await? {
                decisions.entry(decision.request_id).or_default().push(decision);
            }
            for request in found.drain(..) {
                let id = request.id;
                self.requests.insert(
                    id,
                    Loaded {
                        request,
                        decisions: decisions.remove(&id).unwrap_or_default(),
                        new: false,
                        changed: false,
                    },
                );
            }
        }
        if !keys.is_empty() {
            for (request, key) in tx.idempotent(&keys).await? {
                let id = request.id;
                self.by_key.insert((request.agent.id, key), id);
                self.requests.entry(id).or_insert(Loaded {
                    request,
                    decisions: Vec::new(),
                    new: false,
                    changed: false,
                });
            }
        }
        grant_keys.sort_unstable();
        grant_keys.dedup();
        for key in grant_keys {
            let usable = tx.usable_grants(key.0, &key.1, &key.2, self.now).await?;
            if !usable.is_empty() {
                self.grants.insert(key, usable);
            }
        }
        if expire_limit > 0 {
            for request in tx.due(millis(self.now), expire_limit).await? {
                let id = request.id;
                self.due.push(id);
                // Its decisions do not matter to an expiry.
                self.requests.entry(id).or_insert(Loaded {
                    request,
                    decisions: Vec::new(),
                    new: false,
                    changed: false,
                });
            }
        }
        Ok(())
    }

    fn apply(&mut self, policies: &Policies, command: &Command) -> Result<Answer> {
        match command {
            Command::Create(new) => self.create(policies, new),
            Command::Decide {
                id,
                reviewer,
                verdict,
                comment,
                channel,
                break_glass,
                grant,
            } => self.decide(*id, reviewer, *verdict, comment, *channel, *break_glass, grant.as_ref()),
            Command::Cancel { agent, id } => self.agent_transition(*agent, *id, Status::Cancelled, None),
            Command::Start { agent, id } => self.start(*agent, *id),
            Command::Report { agent, id, report } => {
                self.agent_transition(*agent, *id, report.status.status(), Some(report))
            }
            Command::Admin(_) => Err(Error::Internal("admin changes are applied by `admin::apply`".into())),
            Command::ExpireDue { limit } => {
                let due: Vec<RequestId> = self.due.drain(..self.due.len().min(*limit)).collect();
                let mut expired = 0;
                for id in due {
                    let Some(loaded) = self.requests.get_mut(&id) else {
                        continue;
                    };
                    if loaded.request.status != Status::Pending {
                        continue;
                    }
                    if self.now >= loaded.request.expires_at {
                        expire(&mut self.chain, loaded, self.now)?;
                        expired += 1;
                    } else if loaded.request.escalates_at.is_some_and(|at| self.now >= at) {
                        escalate(&mut self.chain, loaded, self.now)?;
                    }
                }
                Ok(Answer::Expired(expired))
            }
        }
    }

    fn create(&mut self, policies: &Policies, new: &NewRequest) -> Result<Answer> {
        let key = new.record.idempotency_key.clone();
        let asked = &new.record.request;
        if let Some(key) = &key
            && let Some(existing) = self.by_key.get(&(asked.agent.id, key.clone()))
            && let Some(existing) = self.requests.get(existing)
        {
            // The same key again: the same body is a replay, another body a conflict.
            return if existing.request.body_hash == asked.body_hash {
                Ok(Answer::Replayed(existing.request.clone()))
            } else {
                Err(Error::Conflict {
                    code: "idempotency_key_reused",
                    message: "this Idempotency-Key was already used with a different request body".into(),
                })
            };
        }
        let mut reframed = None;
        if new.generation != self.policies.generation {
            // Matched under an older set: match again under the one in force now, within
            // one budget for the whole batch, since every command waits on the writer.
            let budget = self
                .rematch_budget
                .get_or_insert_with(|| Arc::new(Budget::new(4 * DEFAULT_STEPS, Some(Instant::now() + REMATCH_TIME))));
            let mut request = asked.clone();
            policies.frame(&self.policies, &mut request, new.asked_ttl, budget);
            reframed = Some(request);
        }
        let request = reframed.as_ref().unwrap_or(asked);
        let id = request.id;
        let data = match &reframed {
            Some(request) => created_event(request),
            None => new.data.clone(),
        };
        let mut request = request.clone();
        self.chain
            .append(request.created_at, "request.created", Some(id), new.actor.clone(), data);
        match request.status {
            Status::Approved => {
                let data = json!({ "policy": request.policy.name, "version": request.policy.version, "why": request.policy.why });
                self.chain
                    .append_value(request.created_at, "request.approved", Some(id), &Actor::System, &data)?;
            }
            Status::Denied => {
                let data = json!({
                    "policy": request.policy.name, "version": request.policy.version,
                    "why": request.policy.why, "reason": request.policy.deny_reason,
                });
                self.chain
                    .append_value(request.created_at, "request.denied", Some(id), &Actor::System, &data)?;
            }
            _ => self.approve_by_grant(&mut request)?,
        }
        if let Some(key) = &key {
            self.by_key.insert((request.agent.id, key.clone()), id);
        }
        self.created.push((id, key));
        self.requests.insert(
            id,
            Loaded {
                request: request.clone(),
                decisions: Vec::new(),
                new: true,
                changed: false,
            },
        );
        Ok(Answer::Created(request))
    }

    /// Approves a new pending request under a grant its policy version allowed, if one
    /// covers it: same agent, action and resource, the granted payload fields equal,
    /// unexpired, unrevoked and with uses left. The use is audited with the grantors.
    fn approve_by_grant(&mut self, request: &mut StoredRequest) -> Result<()> {
        let Some(policy_id) = request.policy.id.clone() else {
            return Ok(());
        };
        if request.policy.grants.is_none() {
            return Ok(());
        }
        let key = (request.agent.id, request.action.clone(), request.resource.clone());
        let Some(candidates) = self.grants.get(&key) else {
            return Ok(());
        };
        let parties = request.parties();
        let context = request.decision_context(&parties, &[]);
        let grant = candidates.iter().find(|grant| {
            let used = self.grant_uses.get(&grant.id).copied().unwrap_or(0);
            grant.policy_id == policy_id
                && grant.policy_version == request.policy.version
                && grant.uses + used < grant.max_uses
                && binding_holds(&grant.fields, request)
                // A grant approves only what each of its grantors could approve in person:
                // never a request made for one of them or by their agent.
                && grant
                    .granted_by
                    .iter()
                    .all(|grantor| check_eligibility(context, grantor, self.now).is_ok())
        });
        let Some(grant) = grant.cloned() else {
            return Ok(());
        };
        let uses = self.grant_uses.entry(grant.id.clone()).or_insert(0);
        *uses += 1;
        let now = request.created_at;
        request.status = Status::Approved;
        request.decided_at = Some(now);
        request.policy.why.push(format!(
            "approved under grant {} by {}",
            grant.id,
            grant
                .granted_by
                .iter()
                .map(|who| who.display_name().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ));
        let data = json!({
            "grant": grant.id,
            "granted_by": grant.granted_by,
            "use": grant.uses + *uses,
            "max_uses": grant.max_uses,
            "granted_on": grant.request_id,
        });
        self.chain
            .append_value(now, "grant.used", Some(request.id), &Actor::System, &data)?;
        self.chain.append_value(
            now,
            "request.approved",
            Some(request.id),
            &Actor::System,
            &json!({ "grant": grant.id }),
        )?;
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn decide(
        &mut self,
        id: RequestId,
        reviewer: &signoff_app::Identity,
        verdict: Verdict,
        comment: &str,
        channel: signoff_app::Channel,
        break_glass: bool,
        grant: Option<&GrantAsk>,
    ) -> Result<Answer> {
        let now = self.now;
        let loaded = self.requests.get_mut(&id).ok_or_else(|| not_found(id))?;
        let ballots: Vec<_> = loaded.decisions.iter().map(DecisionRecord::ballot).collect();
        let parties = loaded.request.parties();
        let context = loaded.request.decision_context(&parties, &ballots);
        let ruled = if break_glass {
            if verdict != Verdict::Approve {
                return Err(Error::Invalid("break-glass is for approving; deny as usual".into()));
            }
            if grant.is_some() {
                return Err(RuleError::BreakGlassWithGrant.into());
            }
            evaluate_break_glass(context, reviewer, comment, now)
        } else {
            evaluate(context, reviewer, verdict, comment, now)
        };
        let new_grant = match (grant, &ruled) {
            (Some(ask), Ok(outcome)) => Some(grant_for(
                &loaded.request,
                &loaded.decisions,
                reviewer,
                verdict,
                *outcome,
                ask,
                now,
            )?),
            _ => None,
        };
        let outcome = match ruled {
            Ok(outcome) => outcome,
            Err(RuleError::Expired) => {
                // Found past its time: record what really happened, then refuse.
                expire(&mut self.chain, loaded, now)?;
                return Err(RuleError::Expired.into());
            }
            Err(refusal) => return Err(refusal.into()),
        };
        let decision = DecisionRecord {
            request_id: id,
            reviewer: reviewer.clone(),
            verdict,
            comment: comment.to_string(),
            channel,
            decided_at: now,
        };
        let request = &mut loaded.request;
        request.approvals = match outcome {
            Outcome::Pending { approvals } => approvals,
            _ => request.approvals + u32::from(verdict == Verdict::Approve),
        };
        request.break_glass |= break_glass;
        request.status = outcome.status();
        if request.status != Status::Pending {
            request.decided_at = Some(now);
        }
        let data = json!({
            "verdict": verdict,
            "comment": comment,
            "channel": channel,
            "digest": request.digest,
            "approvals": request.approvals,
            "approvals_required": request.policy.approvals_required,
            "break_glass": break_glass,
        });
        self.chain.append_value(
            now,
            "decision.recorded",
            Some(id),
            &Actor::Reviewer(reviewer.clone()),
            &data,
        )?;
        if break_glass {
            let data = json!({ "comment": comment, "policy": request.policy.name, "version": request.policy.version });
            self.chain.append_value(
                now,
                "request.break_glass",
                Some(id),
                &Actor::Reviewer(reviewer.clone()),
                &data,
            )?;
            self.followups.push((id, reviewer.clone(), now));
        }
        if request.status != Status::Pending {
            let kind = if request.status == Status::Approved {
                "request.approved"
            } else {
                "request.denied"
            };
            self.chain.append_value(
                now,
                kind,
                Some(id),
                &Actor::System,
                &json!({ "approvals": request.approvals }),
            )?;
        }
        if let Some(grant) = new_grant {
            let data = json!({
                "grant": grant.id, "granted_by": grant.granted_by, "action": grant.action,
                "resource": grant.resource, "fields": grant.fields, "expires_at": millis(grant.expires_at),
                "max_uses": grant.max_uses, "policy": grant.policy_id, "version": grant.policy_version,
            });
            self.chain.append_value(
                now,
                "grant.created",
                Some(id),
                &Actor::Reviewer(reviewer.clone()),
                &data,
            )?;
            self.new_grants.push(grant);
        }
        loaded.changed = true;
        loaded.decisions.push(decision.clone());
        self.decisions.push(decision);
        Ok(Answer::Changed(loaded.request.clone(), loaded.decisions.clone()))
    }

    /// Cancel (`to` cancelled) or a result report (executed or failed), by the request's
    /// own agent only: another agent's request does not exist as far as it can tell.
    fn agent_transition(
        &mut self,
        agent: AgentId,
        id: RequestId,
        to: Status,
        report: Option<&signoff_app::wire::ResultReport>,
    ) -> Result<Answer> {
        let now = self.now;
        let loaded = self
            .requests
            .get_mut(&id)
            .filter(|loaded| loaded.request.agent.id == agent)
            .ok_or_else(|| not_found(id))?;
        if loaded.request.status == Status::Pending && to == Status::Cancelled && now >= loaded.request.expires_at {
            // Its time ran out before the cancel arrived: record what really happened.
            expire(&mut self.chain, loaded, now)?;
            return Err(TransitionError {
                from: Status::Expired,
                to,
            }
            .into());
        }
        let request = &mut loaded.request;
        request.status = request.status.transition(to)?;
        if report.is_some() {
            request.result = report.cloned();
        }
        request.decided_at.get_or_insert(now);
        let kind = match to {
            Status::Cancelled => "request.cancelled",
            Status::Executed => "request.executed",
            _ => "request.failed",
        };
        let actor = Actor::agent(&request.agent);
        self.chain
            .append_value(now, kind, Some(id), &actor, &json!({ "result": report }))?;
        loaded.changed = true;
        Ok(Answer::Changed(loaded.request.clone(), loaded.decisions.clone()))
    }

    /// The agent starts its approved action: only its own request, only approved, and only
    /// once. The start is stored before anything runs, so a retried agent (the same
    /// `Idempotency-Key`, on this machine or another) is refused instead of running the
    /// action a second time on one approval.
    fn start(&mut self, agent: AgentId, id: RequestId) -> Result<Answer> {
        let now = self.now;
        let loaded = self
            .requests
            .get_mut(&id)
            .filter(|loaded| loaded.request.agent.id == agent)
            .ok_or_else(|| not_found(id))?;
        let request = &mut loaded.request;
        if let Some(started_at) = request.started_at {
            return Err(Error::Conflict {
                code: "already_started",
                message: format!(
                    "this approval was already used: the action was started at {}; it is not started again",
                    started_at
                        .format(&time::format_description::well_known::Rfc3339)
                        .unwrap_or_else(|_| millis(started_at).to_string())
                ),
            });
        }
        if request.status != Status::Approved {
            return Err(Error::Conflict {
                code: "not_approved",
                message: format!(
                    "the request is {}: only an approved request can be started",
                    request.status
                ),
            });
        }
        request.started_at = Some(now);
        let actor = Actor::agent(&request.agent);
        self.chain.append_value(
            now,
            "request.started",
            Some(id),
            &actor,
            &json!({ "digest": request.digest }),
        )?;
        loaded.changed = true;
        Ok(Answer::Changed(loaded.request.clone(), loaded.decisions.clone()))
    }

    /// The batch's events, each change's carrying the request as the batch left it (new
    /// requests have nobody waiting on them yet, so theirs carry none).
    fn events_with_snapshots(self) -> Vec<Event> {
        let mut snapshots: HashMap<RequestId, Arc<Snapshot>> = HashMap::new();
        let mut events = self.chain.events;
        for event in &mut events {
            let Some(loaded) = self.requests.get(&event.request_id).filter(|loaded| loaded.changed) else {
                continue;
            };
            let snapshot = snapshots.entry(event.request_id).or_insert_with(|| {
                Arc::new(Snapshot {
                    request: loaded.request.clone(),
                    decisions: loaded.decisions.clone(),
                })
            });
            event.snapshot = Some(Arc::clone(snapshot));
        }
        events
    }

    /// Writes the batch: new requests in their final state, changes to stored ones,
    /// decisions, the audit events and the new head.
    async fn write(&self, tx: &mut WriteTx) -> Result<()> {
        let created: Vec<NewRow<'_>> = self
            .created
            .iter()
            .filter_map(|(id, key)| {
                self.requests.get(id).map(|loaded| NewRow {
                    request: &loaded.request,
                    idempotency_key: key.as_deref(),
                })
            })
            .collect();
        if !created.is_empty() {
            tx.insert_requests(&created).await?;
        }
        let changed: Vec<&StoredRequest> = self
            .requests
            .values()
            .filter(|loaded| loaded.changed && !loaded.new)
            .map(|loaded| &loaded.request)
            .collect();
        if !changed.is_empty() {
            tx.update_requests(&changed).await?;
        }
        if !self.decisions.is_empty() {
            let decisions: Vec<&DecisionRecord> = self.decisions.iter().collect();
            tx.insert_decisions(&decisions).await?;
        }
        for grant in &self.new_grants {
            tx.insert_grant(grant).await?;
        }
        let used: Vec<&str> = self
            .grant_uses
            .iter()
            .flat_map(|(id, uses)| std::iter::repeat_n(id.as_str(), *uses as usize))
            .collect();
        if !used.is_empty() {
            tx.use_grants(&used).await?;
        }
        if !self.followups.is_empty() {
            let opened: Vec<(RequestId, &Identity, OffsetDateTime)> =
                self.followups.iter().map(|(id, who, at)| (*id, who, *at)).collect();
            tx.insert_followups(&opened).await?;
        }
        if let Some(last) = self.chain.rows.last() {
            tx.insert_audit(&self.chain.rows).await?;
            tx.set_head(last.seq, &last.hash).await?;
        }
        Ok(())
    }
}

/// Announces that a pending request's escalation groups may now approve it: the event
/// reaches live views (and, through the audit trail, anything that notifies people).
fn escalate(chain: &mut Chain, loaded: &mut Loaded, now: OffsetDateTime) -> Result<()> {
    let request = &mut loaded.request;
    request.escalates_at = None;
    loaded.changed = true;
    let groups = request
        .policy
        .escalation
        .as_ref()
        .map(|escalation| escalation.groups.clone())
        .unwrap_or_default();
    let data = json!({ "groups": groups, "policy": request.policy.name });
    chain.append_value(now, "request.escalated", Some(request.id), &Actor::System, &data)
}

/// Marks a pending request expired, with its audit event.
fn expire(chain: &mut Chain, loaded: &mut Loaded, now: OffsetDateTime) -> Result<()> {
    let request = &mut loaded.request;
    request.status = Status::Expired;
    request.decided_at = Some(now);
    loaded.changed = true;
    let data = json!({ "expires_at": millis(request.expires_at) });
    chain.append_value(now, "request.expired", Some(request.id), &Actor::System, &data)
}

fn allows_grants(effect: &signoff_app::policy::Effect) -> bool {
    matches!(effect, signoff_app::policy::Effect::RequireApproval(terms) if terms.grants.is_some())
}

/// The key under which a grant binds the whole action: its digest, which covers the
/// payload, the diff and the labels. Not a payload path: those never start with `$`.
const WHOLE_ACTION: &str = "$digest";
/// What an approver names to let a grant cover any payload, on purpose.
const ANY_PAYLOAD: &str = "*";

/// What a grant binds later requests to. By default the whole action (payload, diff and
/// labels, through the digest): a grant for "this export" is not one for every export. An
/// approver may name payload fields instead (only those must stay equal), or `*` for any
/// payload, each a deliberate widening.
fn grant_binding(request: &StoredRequest, asked: &[String]) -> Result<std::collections::BTreeMap<String, Value>> {
    let mut fields = std::collections::BTreeMap::new();
    match asked {
        [] => {
            fields.insert(WHOLE_ACTION.to_string(), Value::String(request.digest.clone()));
        }
        [any] if any == ANY_PAYLOAD => {}
        paths => {
            for path in paths {
                if path == ANY_PAYLOAD || path.starts_with('$') {
                    return Err(Error::Invalid(format!(
                        "`{path}` is not a payload field: name fields, or `*` alone for any payload"
                    )));
                }
                let value = field(&request.payload, path)
                    .ok_or_else(|| Error::Invalid(format!("the payload has no field `{path}` to bind the grant to")))?;
                fields.insert(path.clone(), value.clone());
            }
        }
    }
    Ok(fields)
}

/// Whether `request` is what a grant's binding allows (see [`grant_binding`]).
fn binding_holds(fields: &std::collections::BTreeMap<String, Value>, request: &StoredRequest) -> bool {
    fields.iter().all(|(path, value)| match path.as_str() {
        WHOLE_ACTION => value.as_str() == Some(request.digest.as_str()),
        path => field(&request.payload, path) == Some(value),
    })
}

/// A payload field by dotted path (`table`, `target.region`).
fn field<'a>(payload: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(payload, |value, key| value.get(key))
}

/// The grant an approval asks for, checked against the policy's terms: only with the
/// approval that approves the request, within the policy's bounds, on fields the
/// payload has. Its grantors are every approver of the request.
fn grant_for(
    request: &StoredRequest,
    decisions: &[DecisionRecord],
    reviewer: &Identity,
    verdict: Verdict,
    outcome: Outcome,
    ask: &GrantAsk,
    now: OffsetDateTime,
) -> Result<GrantRecord> {
    let policy = &request.policy;
    let (Some(terms), Some(policy_id)) = (&policy.grants, &policy.id) else {
        return Err(Error::Forbidden(format!(
            "the policy `{}` does not allow approving with a grant",
            policy.name
        )));
    };
    if verdict != Verdict::Approve {
        return Err(Error::Invalid("only an approval can come with a grant".into()));
    }
    if outcome != Outcome::Approved {
        return Err(Error::Conflict {
            code: "grant_needs_quorum",
            message: "a grant comes with the approval that approves the request; more approvals are needed first"
                .into(),
        });
    }
    let max = std::time::Duration::from_secs(terms.max_duration_s());
    if ask.duration.is_zero() || ask.duration > max {
        return Err(Error::Invalid(format!(
            "a grant lasts at most {} under this policy",
            terms.max_duration
        )));
    }
    if ask.max_uses == 0 || ask.max_uses > terms.max_uses {
        return Err(Error::Invalid(format!(
            "a grant covers 1 to {} uses under this policy",
            terms.max_uses
        )));
    }
    let fields = grant_binding(request, &ask.fields)?;
    let mut granted_by: Vec<Identity> = decisions
        .iter()
        .filter(|d| d.verdict == Verdict::Approve)
        .map(|d| d.reviewer.clone())
        .collect();
    granted_by.push(reviewer.clone());
    Ok(GrantRecord {
        id: uuid::Uuid::now_v7().to_string(),
        request_id: request.id,
        policy_id: policy_id.clone(),
        policy_version: policy.version,
        agent_id: request.agent.id,
        agent_name: request.agent.name.clone(),
        action: request.action.clone(),
        resource: request.resource.clone(),
        fields,
        granted_by,
        created_at: now,
        expires_at: now + ask.duration,
        max_uses: i64::from(ask.max_uses),
        uses: 0,
        revoked_at: None,
        revoked_by: None,
    })
}

fn not_found(id: RequestId) -> Error {
    Error::not_found(format_args!("request {id}"))
}
