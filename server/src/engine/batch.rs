//! One batch: read what it needs, apply each command in order in memory, write it all,
//! commit. The rules and the transitions are `signoff_app::lifecycle`'s; the batch loads
//! the requests they act on, records the events they answer in the audit chain, and
//! writes what changed. Nothing here is answered or published; the writer does that
//! after the commit.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use time::OffsetDateTime;

use signoff_app::lifecycle::{Case, DecisionAsk, Entry, Refusal};
use signoff_app::policy::{Budget, DEFAULT_STEPS, PolicySet};
use signoff_app::{AgentId, Identity, Kind, RequestId, Status};

mod write;

use super::chain::Chain;
use super::held::{Held, standing};
use super::policy::REMATCH_TIME;
use super::{Answer, Command, NewRequest, Policies, admin, batch_time, not_found, refused};
use crate::bus::{Event, Snapshot};
use crate::evidence::Evidence;
use crate::store::{DecisionRecord, GrantRecord, NewRecord, WriteConn, WriteTx, millis};
use crate::{Error, Result};

/// What a committed batch answers and announces.
pub(super) struct Applied {
    /// One per command, in order.
    pub answers: Vec<Result<Answer>>,
    pub events: Vec<Event>,
    /// The audit trail's last sequence number after the batch, if it wrote any event.
    pub head: Option<i64>,
    /// The policy set as this batch left it, when it changed it.
    pub policies: Option<Arc<PolicySet>>,
}

/// A request as the batch sees it: as stored (or created in this batch), with every
/// change of earlier commands applied.
struct Loaded {
    case: Case,
    /// Created in this batch (inserted in its final state rather than updated).
    new: bool,
    changed: bool,
}

impl Loaded {
    fn stored(case: Case) -> Loaded {
        Loaded {
            case,
            new: false,
            changed: false,
        }
    }
}

/// Applies the batch in one transaction on `conn`, and hands the connection back with
/// what the batch answers once it committed.
pub(super) async fn apply(
    conn: WriteConn,
    policies: &Policies,
    evidence: &Evidence,
    asked: Vec<(Command, Held)>,
) -> Result<(Applied, WriteConn)> {
    let mut tx = WriteTx::begin(conn).await?;
    let head = tx.lock_head().await?;
    let chain = Chain::from_head(&mut tx, head, evidence).await?;
    let now = batch_time();
    let standing = standing(&mut tx, &asked, now).await?;
    let commands: Vec<&Command> = asked
        .iter()
        .zip(&standing)
        .filter(|(_, stands)| **stands)
        .map(|((command, _), _)| command)
        .collect();
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
        chain,
        evidence,
        checkpointed: None,
    };
    batch.load(&mut tx, policies, &commands).await?;
    let mut answers = Vec::with_capacity(asked.len());
    for ((command, held), stands) in asked.into_iter().zip(standing) {
        if !stands {
            answers.push(Answered::Now(Err(held.refusal())));
            continue;
        }
        answers.push(match command {
            // Its statements run now, in the batch's transaction; a failure fails the batch.
            Command::Admin(change) => {
                Answered::Now(match admin::apply(&mut tx, &mut batch.chain, now, &change).await? {
                    admin::Applied::Done(answer) => Ok(answer),
                    admin::Applied::Refused(refusal) => Err(refusal),
                    admin::Applied::PoliciesChanged(answer) => {
                        let generation = tx.bump_policy_generation().await?;
                        batch.policies = policies.compile(tx.policies().await?, generation);
                        batch.policy_changed = true;
                        Ok(answer)
                    }
                })
            }
            Command::Checkpoint => Answered::Now(batch.checkpoint(&mut tx).await),
            other => batch.apply(policies, other),
        });
    }
    batch.write(&mut tx).await?;
    let conn = tx.commit().await?;
    let changed = batch.policy_changed.then(|| Arc::clone(&batch.policies));
    let head = batch.chain.rows.last().map(|row| row.seq);
    let events = batch.events_with_snapshots();
    let applied = Applied {
        head,
        answers: batch.answers(answers),
        events,
        policies: changed,
    };
    Ok((applied, conn))
}

/// A command's answer; a new request's is taken from the batch once it is written, rather
/// than copied while the batch still needs it (the writer is the one step every command
/// waits on).
#[allow(clippy::large_enum_variant)] // As large as the answers themselves, one vector per batch.
enum Answered {
    Now(Result<Answer>),
    Created(RequestId),
}

struct Batch<'e> {
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
    chain: Chain<'e>,
    /// Signs checkpoints and receipts.
    evidence: &'e Evidence,
    /// The newest checkpoint's size, once a `Checkpoint` command asked.
    checkpointed: Option<i64>,
}

impl Batch<'_> {
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
                Command::Admin(_) | Command::Checkpoint => {}
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
                    Loaded::stored(Case::new(request, decisions.remove(&id).unwrap_or_default())),
                );
            }
        }
        if !keys.is_empty() {
            for (request, key) in tx.idempotent(&keys).await? {
                let id = request.id;
                self.by_key.insert((request.agent.id, key), id);
                self.requests
                    .entry(id)
                    .or_insert_with(|| Loaded::stored(Case::new(request, Vec::new())));
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
                self.requests
                    .entry(id)
                    .or_insert_with(|| Loaded::stored(Case::new(request, Vec::new())));
            }
        }
        Ok(())
    }

    fn apply(&mut self, policies: &Policies, command: Command) -> Answered {
        let answer = match command {
            Command::Create(new) => {
                return self
                    .create(policies, *new)
                    .unwrap_or_else(|err| Answered::Now(Err(err)));
            }
            Command::Decide { id, ask } => self.decide(id, &ask),
            Command::Cancel { agent, id } => self.transition(id, |case, now, out| case.cancel(agent, now, out)),
            Command::Start { agent, id } => self.transition(id, |case, now, out| case.start(agent, now, out)),
            Command::Report { agent, id, report } => {
                self.transition(id, |case, now, out| case.report(agent, &report, now, out))
            }
            Command::Admin(_) | Command::Checkpoint => Err(Error::Internal(
                "admin changes and checkpoints are applied by `apply`".into(),
            )),
            Command::ExpireDue { limit } => {
                let due: Vec<RequestId> = self.due.drain(..self.due.len().min(limit)).collect();
                let mut expired = 0;
                for id in due {
                    let Some(loaded) = self.requests.get_mut(&id) else {
                        continue;
                    };
                    let mut out = Vec::new();
                    expired += usize::from(loaded.case.sweep(self.now, &mut out));
                    loaded.changed |= !out.is_empty();
                    if let Err(err) = self.chain.record_all(out) {
                        return Answered::Now(Err(err));
                    }
                }
                Ok(Answer::Expired(expired))
            }
        };
        Answered::Now(answer)
    }

    fn create(&mut self, policies: &Policies, new: NewRequest) -> Result<Answered> {
        let NewRequest {
            record: NewRecord {
                mut request,
                idempotency_key: key,
            },
            generation,
            asked_ttl,
            actor,
            data,
        } = new;
        if let Some(key) = &key
            && let Some(existing) = self.by_key.get(&(request.agent.id, key.clone()))
            && let Some(existing) = self.requests.get(existing)
        {
            // The same key again: the same body is a replay, another body a conflict.
            return Ok(Answered::Now(if existing.case.request.body_hash == request.body_hash {
                Ok(Answer::Replayed(existing.case.request.clone()))
            } else {
                Err(Error::Conflict {
                    code: "idempotency_key_reused",
                    message: "this Idempotency-Key was already used with a different request body".into(),
                })
            }));
        }
        let reframed = generation != self.policies.generation;
        if reframed {
            // Matched under an older set: match again under the one in force now, within
            // one budget for the whole batch, since every command waits on the writer.
            let budget = self
                .rematch_budget
                .get_or_insert_with(|| Arc::new(Budget::new(4 * DEFAULT_STEPS, Some(Instant::now() + REMATCH_TIME))));
            policies.frame(&self.policies, &mut request, asked_ttl, budget);
        }
        let id = request.id;
        let (mut case, mut entries) = Case::open(request);
        let key_of = (
            case.request.agent.id,
            case.request.action.clone(),
            case.request.resource.clone(),
        );
        if let Some(candidates) = self.grants.get(&key_of) {
            let uses = &self.grant_uses;
            if let Some(grant) = case.approve_by_grant(
                candidates,
                |id| uses.get(id).copied().unwrap_or(0),
                self.now,
                &mut entries,
            ) {
                *self.grant_uses.entry(grant.id.clone()).or_insert(0) += 1;
            }
        }
        let mut entries = entries.into_iter();
        let created = entries
            .next()
            .ok_or_else(|| Error::Internal("a new request without its event".into()))?;
        if reframed {
            self.chain.record(created)?;
        } else {
            // The caller prepared this event's JSON, off the writer (see `Command::create`).
            self.chain
                .append_canonical(created.at, Kind::RequestCreated, Some(id), actor, data);
        }
        self.chain.record_all(entries.collect())?;
        issue_receipt(&self.chain, self.evidence, &mut case, self.now);
        if let Some(key) = &key {
            self.by_key.insert((case.request.agent.id, key.clone()), id);
        }
        self.created.push((id, key));
        self.requests.insert(
            id,
            Loaded {
                case,
                new: true,
                changed: false,
            },
        );
        Ok(Answered::Created(id))
    }

    fn decide(&mut self, id: RequestId, ask: &DecisionAsk) -> Result<Answer> {
        let now = self.now;
        let loaded = self.requests.get_mut(&id).ok_or_else(|| not_found(id))?;
        let mut out = Vec::new();
        let decided = loaded.case.decide(ask, now, &mut out);
        loaded.changed |= !out.is_empty();
        self.chain.record_all(out)?;
        issue_receipt(&self.chain, self.evidence, &mut loaded.case, now);
        let effects = decided.map_err(|refusal| refused(id, refusal))?;
        if let Some(grant) = effects.grant {
            self.new_grants.push(grant);
        }
        if effects.break_glass {
            self.followups.push((id, ask.reviewer.clone(), now));
        }
        if let Some(decision) = loaded.case.decisions.last() {
            self.decisions.push(decision.clone());
        }
        Ok(Answer::Changed(
            loaded.case.request.clone(),
            loaded.case.decisions.clone(),
        ))
    }

    /// An agent's change to its own request (cancel, start, report): another agent's
    /// request does not exist as far as it can tell.
    fn transition(
        &mut self,
        id: RequestId,
        change: impl FnOnce(&mut Case, OffsetDateTime, &mut Vec<Entry>) -> std::result::Result<(), Refusal>,
    ) -> Result<Answer> {
        let loaded = self.requests.get_mut(&id).ok_or_else(|| not_found(id))?;
        let mut out = Vec::new();
        let changed = change(&mut loaded.case, self.now, &mut out);
        loaded.changed |= !out.is_empty();
        self.chain.record_all(out)?;
        changed.map_err(|refusal| refused(id, refusal))?;
        Ok(Answer::Changed(
            loaded.case.request.clone(),
            loaded.case.decisions.clone(),
        ))
    }

    /// Signs the log as it stands, when it grew since the newest checkpoint; answers the
    /// checkpoint's size.
    async fn checkpoint(&mut self, tx: &mut WriteTx) -> Result<Answer> {
        let newest = match self.checkpointed {
            Some(size) => size,
            None => tx.checkpointed_size().await?,
        };
        let (seq, _, _) = self.chain.head();
        if seq <= newest {
            return Ok(Answer::Checkpointed(None));
        }
        self.chain.checkpoint(millis(self.now));
        self.checkpointed = Some(seq);
        Ok(Answer::Checkpointed(Some(seq)))
    }

    /// The batch's events, each change's carrying the request as the batch left it (new
    /// requests have nobody waiting on them yet, so theirs carry none).
    fn events_with_snapshots(&mut self) -> Vec<Event> {
        let mut snapshots: HashMap<RequestId, Arc<Snapshot>> = HashMap::new();
        let mut events = std::mem::take(&mut self.chain.events);
        for event in &mut events {
            let Some(loaded) = self.requests.get(&event.request_id).filter(|loaded| loaded.changed) else {
                continue;
            };
            let snapshot = snapshots.entry(event.request_id).or_insert_with(|| {
                Arc::new(Snapshot {
                    request: loaded.case.request.clone(),
                    decisions: loaded.case.decisions.clone(),
                })
            });
            event.snapshot = Some(Arc::clone(snapshot));
        }
        events
    }

    /// Each command's answer, new requests taken from the batch as it wrote them.
    fn answers(mut self, answered: Vec<Answered>) -> Vec<Result<Answer>> {
        answered
            .into_iter()
            .map(|answered| match answered {
                Answered::Now(answer) => answer,
                Answered::Created(id) => self
                    .requests
                    .remove(&id)
                    .map(|loaded| Answer::Created(loaded.case.request))
                    .ok_or_else(|| Error::Internal(format!("request {id} left the batch before its answer"))),
            })
            .collect()
    }
}

/// Issues the receipt of a request this batch approved (by quorum, policy, grant or
/// break-glass): signed over what was approved and the approval's place in the log.
fn issue_receipt(chain: &Chain<'_>, evidence: &Evidence, case: &mut Case, now: OffsetDateTime) {
    if case.request.status != Status::Approved || case.request.receipt.is_some() {
        return;
    }
    let Some(seq) = chain.newest(case.request.id, &[Kind::RequestApproved, Kind::RequestBreakGlass]) else {
        return;
    };
    case.request.receipt = Some(evidence.receipt(&case.request, &case.decisions, seq, now));
}

fn allows_grants(effect: &signoff_app::policy::Effect) -> bool {
    matches!(effect, signoff_app::policy::Effect::RequireApproval(terms) if terms.grants.is_some())
}
