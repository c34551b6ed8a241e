//! One batch: read what it needs, apply each command in order in memory, write it all,
//! commit. Nothing here is answered or published; the writer does that after the commit.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::{Value, json};
use time::OffsetDateTime;

use signoff_app::{AgentId, RequestId, RuleError, Status, TransitionError, Verdict, canonical_json, evaluate};

use super::{Answer, Command, NewRequest, admin, batch_time};
use crate::bus::{Event, Snapshot};
use crate::store::{
    Actor, AuditRow, DecisionRecord, NewRow, Store, StoredRequest, WriteTx, audit_value, chain_hash_canonical, millis,
};
use crate::{Error, Result};

/// What a committed batch answers and announces.
pub(super) struct Applied {
    /// One per command, in order.
    pub answers: Vec<Result<Answer>>,
    pub events: Vec<Event>,
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

pub(super) async fn apply(store: &Store, commands: &[&Command]) -> Result<Applied> {
    let mut tx = WriteTx::begin(store).await?;
    let (seq, hash) = tx.lock_head().await?;
    let now = batch_time();
    let mut batch = Batch {
        now,
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
    batch.load(&mut tx, commands).await?;
    let mut answers = Vec::with_capacity(commands.len());
    for command in commands {
        answers.push(match command {
            // Its statements run now, in the batch's transaction; a failure fails the batch.
            Command::Admin(change) => Ok(admin::apply(&mut tx, &mut batch.chain, now, change).await?),
            other => batch.apply(other),
        });
    }
    batch.write(&mut tx).await?;
    tx.commit().await?;
    Ok(Applied {
        answers,
        events: batch.events_with_snapshots(),
    })
}

struct Batch {
    now: OffsetDateTime,
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
    async fn load(&mut self, tx: &mut WriteTx, commands: &[&Command]) -> Result<()> {
        let mut ids: Vec<RequestId> = Vec::new();
        let mut keys: Vec<(AgentId, &str)> = Vec::new();
        let mut expire_limit = 0;
        for command in commands {
            match command {
                Command::Create(new) => {
                    if let Some(key) = &new.record.idempotency_key {
                        keys.push((new.record.request.agent.id, key.as_str()));
                    }
                }
                Command::Decide { id, .. } | Command::Cancel { id, .. } | Command::Report { id, .. } => ids.push(*id),
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

    fn apply(&mut self, command: &Command) -> Result<Answer> {
        match command {
            Command::Create(new) => self.create(new),
            Command::Decide {
                id,
                reviewer,
                verdict,
                comment,
                channel,
            } => self.decide(*id, reviewer, *verdict, comment, *channel),
            Command::Cancel { agent, id } => self.agent_transition(*agent, *id, Status::Cancelled, None),
            Command::Report { agent, id, report } => {
                self.agent_transition(*agent, *id, report.status.status(), Some(report))
            }
            Command::Admin(_) => Err(Error::Internal("admin changes are applied by `admin::apply`".into())),
            Command::ExpireDue { limit } => {
                let due: Vec<RequestId> = self.due.drain(..self.due.len().min(*limit)).collect();
                let mut expired = 0;
                for id in due {
                    if let Some(loaded) = self.requests.get_mut(&id)
                        && loaded.request.status == Status::Pending
                        && self.now >= loaded.request.expires_at
                    {
                        expire(&mut self.chain, loaded, self.now)?;
                        expired += 1;
                    }
                }
                Ok(Answer::Expired(expired))
            }
        }
    }

    fn create(&mut self, new: &NewRequest) -> Result<Answer> {
        let request = &new.record.request;
        let key = new.record.idempotency_key.clone();
        if let Some(key) = &key
            && let Some(existing) = self.by_key.get(&(request.agent.id, key.clone()))
            && let Some(existing) = self.requests.get(existing)
        {
            // The same key again: the same body is a replay, another body a conflict.
            return if existing.request.body_hash == request.body_hash {
                Ok(Answer::Replayed(existing.request.clone()))
            } else {
                Err(Error::Conflict {
                    code: "idempotency_key_reused",
                    message: "this Idempotency-Key was already used with a different request body".into(),
                })
            };
        }
        let id = request.id;
        self.chain.append(
            request.created_at,
            "request.created",
            Some(id),
            new.actor.clone(),
            new.data.clone(),
        );
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
        Ok(Answer::Created(request.clone()))
    }

    fn decide(
        &mut self,
        id: RequestId,
        reviewer: &signoff_app::Identity,
        verdict: Verdict,
        comment: &str,
        channel: signoff_app::Channel,
    ) -> Result<Answer> {
        let now = self.now;
        let loaded = self.requests.get_mut(&id).ok_or_else(|| not_found(id))?;
        let ballots: Vec<_> = loaded.decisions.iter().map(DecisionRecord::ballot).collect();
        let parties = loaded.request.parties();
        let context = loaded.request.decision_context(&parties, &ballots);
        let outcome = match evaluate(context, reviewer, verdict, comment, now) {
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
            signoff_app::Outcome::Pending { approvals } => approvals,
            _ => request.approvals + u32::from(verdict == Verdict::Approve),
        };
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
        });
        self.chain.append_value(
            now,
            "decision.recorded",
            Some(id),
            &Actor::Reviewer(reviewer.clone()),
            &data,
        )?;
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
        if let Some(last) = self.chain.rows.last() {
            tx.insert_audit(&self.chain.rows).await?;
            tx.set_head(last.seq, &last.hash).await?;
        }
        Ok(())
    }
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

fn not_found(id: RequestId) -> Error {
    Error::not_found(format_args!("request {id}"))
}
