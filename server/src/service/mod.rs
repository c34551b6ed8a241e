//! The service layer: what every door (agent API, console, terminal) calls. Changes go
//! to the lifecycle engine, which applies the rules; reads go to the store.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::sync::watch;

use signoff_app::wire::{
    Decider, DecisionInput, Eligibility, NewRequest, RequestPage, RequestSummary, RequestView, ResultReport,
    ReviewView, limits,
};
use signoff_app::{AgentId, Channel, Identity, RequestId, Status, action_digest, check_eligibility};

mod admin;
mod channels;
mod desk;

pub use admin::{WHAT_IF_TIME, WhatIf, WhatIfChange, check_file, draft_set, outcome_text};
pub use channels::{ChannelStatus, DELIVERIES_PAGE};
pub use desk::{AdminDesk, AuditDesk, Desk, Overview};

use crate::bus::{EventBus, Waiters};
use crate::credentials::Credentials;
use crate::engine::{AdminChange, Answer, Command, DecisionAsk, Engine, GrantAsk, Held, Policies};
use crate::store::{
    Agent, Cursor, DecisionRecord, KeyIssue, NewRecord, Poll, RequestFilter, Store, StoredRequest, Voter,
};
use crate::{Error, Result, diff, keys};

/// What the service needs to know from the configuration.
#[derive(Clone, Debug)]
pub struct Settings {
    pub request_ttl: Duration,
    pub default_approvals: u32,
    /// Groups whose members may decide when no policy names others.
    pub reviewer_groups: Vec<String>,
    /// Long-polls one agent may hold open at once.
    pub max_waits_per_agent: usize,
    /// The notification channels configured, so a policy naming another is refused.
    pub channels: crate::notify::routes::Configured,
    /// Where agents' callbacks may go.
    pub callbacks: crate::notify::callback::CallbackRules,
    /// The log's key: checkpoints and receipts.
    pub evidence: Arc<crate::evidence::Evidence>,
}

impl Settings {
    /// Fails when the log's signing key cannot be read or made.
    pub fn from_config(config: &crate::Config) -> Result<Settings> {
        Ok(Settings {
            request_ttl: config.request_ttl,
            default_approvals: config.default_approvals,
            reviewer_groups: config.reviewer_groups.clone(),
            max_waits_per_agent: config.max_waits_per_agent,
            channels: crate::notify::routes::Configured::from_config(&config.notify),
            callbacks: crate::notify::callback::CallbackRules::from_config(&config.callbacks),
            evidence: Arc::new(crate::evidence::Evidence::load(config)?),
        })
    }
}

pub struct Service {
    store: Store,
    bus: EventBus,
    engine: Engine,
    policies: Arc<Policies>,
    waiters: Arc<Waiters>,
    /// Long-polls held open, per agent.
    waits_by_agent: Arc<Mutex<HashMap<AgentId, usize>>>,
    /// Who holds which key or token, from memory (see `crate::credentials`).
    credentials: Arc<Credentials>,
    settings: Settings,
    shutdown: watch::Receiver<bool>,
}

/// The current time at the storage's precision (milliseconds), so what is returned is
/// exactly what is stored.
pub use crate::clock::now;

impl Service {
    /// The service over `store`, its credentials loaded from it and kept current.
    pub async fn open(
        store: Store,
        bus: EventBus,
        settings: Settings,
        shutdown: watch::Receiver<bool>,
    ) -> Result<Self> {
        let credentials = Credentials::load(store.clone()).await?;
        credentials.keep_current(shutdown.clone());
        let waiters = Waiters::start(&bus);
        let policies = Arc::new(Policies::new(
            settings.default_approvals,
            settings.reviewer_groups.clone(),
            settings.request_ttl,
        ));
        let engine = Engine::start(
            store.clone(),
            bus.clone(),
            Arc::clone(&policies),
            Arc::clone(&settings.evidence),
            Arc::clone(&credentials),
        )?;
        Ok(Self {
            store,
            bus,
            engine,
            policies,
            waiters,
            waits_by_agent: Arc::default(),
            credentials,
            settings,
            shutdown,
        })
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn bus(&self) -> &EventBus {
        &self.bus
    }

    /// The one writer every change goes through.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Becomes true when the server starts shutting down (long-lived responses end then).
    pub fn shutdown_signal(&self) -> watch::Receiver<bool> {
        self.shutdown.clone()
    }

    /// Agents currently long-polling.
    pub fn waiting_agents(&self) -> usize {
        self.waiters.waiting()
    }

    // ----- agents ------------------------------------------------------------------------

    /// Issues a new API key for `name` (creating the agent if needed). The key is
    /// returned once and stored only as its hash.
    pub async fn issue_agent_key(
        &self,
        name: &str,
        owner: Option<&str>,
        by: Option<&Identity>,
    ) -> Result<(Agent, String, KeyIssue)> {
        self.issue_described_agent_key(name, owner, None, by).await
    }

    /// [`Service::issue_agent_key`], also recording what the agent is for.
    pub async fn issue_described_agent_key(
        &self,
        name: &str,
        owner: Option<&str>,
        description: Option<&str>,
        by: Option<&Identity>,
    ) -> Result<(Agent, String, KeyIssue)> {
        self.issue_key(name, owner, description, by, false).await
    }

    /// A new agent with its first key; `agent_exists` when the name is taken, decided by
    /// the engine in the batch, so two admins creating one name cannot both succeed.
    pub async fn create_agent(
        &self,
        name: &str,
        owner: Option<&str>,
        description: Option<&str>,
        by: &Identity,
    ) -> Result<(Agent, String, KeyIssue)> {
        self.issue_key(name, owner, description, Some(by), true).await
    }

    #[tracing::instrument(skip_all, fields(agent = %name, new_only))]
    async fn issue_key(
        &self,
        name: &str,
        owner: Option<&str>,
        description: Option<&str>,
        by: Option<&Identity>,
        new_only: bool,
    ) -> Result<(Agent, String, KeyIssue)> {
        let description = description.map(str::trim).filter(|d| !d.is_empty());
        let owner = owner.map(str::trim).filter(|o| !o.is_empty());
        // Reviewers read these on the console and operators on a terminal: a control
        // character could drive the terminal or forge a row, an invisible one mislead.
        for (field, text) in [("owner", owner), ("description", description)] {
            if let Some(text) = text {
                signoff_app::check_visible_line(field, text).map_err(Error::Invalid)?;
            }
        }
        if description.is_some_and(|d| d.chars().count() > 500) {
            return Err(Error::Invalid(
                "an agent's description is at most 500 characters".into(),
            ));
        }
        let name = name.trim();
        if name.is_empty() || name.len() > 64 || !name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)) {
            return Err(Error::Invalid(
                "an agent name is 1-64 characters of letters, digits, `-`, `_` and `.`".into(),
            ));
        }
        let key = keys::generate(keys::AGENT_KEY_PREFIX);
        let change = AdminChange::IssueKey {
            name: name.to_string(),
            owner: owner.map(String::from),
            key_hash: keys::hash(&key),
            key_prefix: keys::display_prefix(&key),
            description: description.map(String::from),
            by: by.cloned(),
            new_only,
        };
        match self.engine.submit(Command::Admin(change)).await? {
            Answer::KeyIssued(agent, issue) => Ok((agent, key, issue)),
            other => Err(unexpected(other)),
        }
    }

    /// Revokes every key of the named agent, at once; `None` when there is no such agent.
    #[tracing::instrument(skip_all, fields(agent = %name))]
    pub async fn revoke_agent_keys(&self, name: &str, by: Option<&Identity>) -> Result<Option<u64>> {
        let change = AdminChange::RevokeKeys {
            name: name.to_string(),
            by: by.cloned(),
        };
        match self.engine.submit(Command::Admin(change)).await? {
            Answer::KeysRevoked(revoked) => Ok(revoked),
            other => Err(unexpected(other)),
        }
    }

    /// Replaces every key of the named agent with a new one (returned once), in one
    /// change; `None` when there is no such agent.
    #[tracing::instrument(skip_all, fields(agent = %name))]
    pub async fn rotate_agent_key(&self, name: &str, by: &Identity) -> Result<Option<(Agent, String, u64)>> {
        let key = keys::generate(keys::AGENT_KEY_PREFIX);
        let change = AdminChange::RotateKey {
            name: name.to_string(),
            key_hash: keys::hash(&key),
            key_prefix: keys::display_prefix(&key),
            by: by.clone(),
        };
        match self.engine.submit(Command::Admin(change)).await? {
            Answer::Rotated(rotated) => Ok(rotated.map(|(agent, revoked)| (agent, key, revoked))),
            other => Err(unexpected(other)),
        }
    }

    // ----- terminal sign-in --------------------------------------------------------------

    /// A reviewer confirms or refuses a terminal sign-in; false when the code is unknown,
    /// answered already or expired.
    #[tracing::instrument(skip_all, fields(approve = approve))]
    pub async fn answer_device_code(&self, user_code: &str, identity: &Identity, approve: bool) -> Result<bool> {
        let change = AdminChange::AnswerDeviceCode {
            user_code: user_code.to_string(),
            identity: identity.clone(),
            approve,
        };
        self.done(change).await
    }

    /// One poll of a terminal's device code; once confirmed, issues the token whose hash
    /// is `token_hash`. Unknown codes are answered from a read, so guessing costs the
    /// writer nothing.
    #[tracing::instrument(skip_all)]
    pub async fn poll_device_code(
        &self,
        code_hash: &str,
        interval: time::Duration,
        token_hash: &str,
        lifetime: time::Duration,
    ) -> Result<Poll> {
        if !self.store.device_code_exists(code_hash).await? {
            return Ok(Poll::Unknown);
        }
        let change = AdminChange::PollDeviceCode {
            code_hash: code_hash.to_string(),
            interval,
            token_hash: token_hash.to_string(),
            lifetime,
        };
        match self.engine.submit(Command::Admin(change)).await? {
            Answer::Polled(poll) => Ok(poll),
            other => Err(unexpected(other)),
        }
    }

    /// Revokes a terminal token: `owner`'s (issuer, subject), or anyone's (admins);
    /// false when there is no such active token.
    #[tracing::instrument(skip_all, fields(token = %id))]
    pub async fn revoke_terminal_token(&self, id: &str, owner: Option<(&str, &str)>, by: &Identity) -> Result<bool> {
        let change = AdminChange::RevokeToken {
            id: id.to_string(),
            owner: owner.map(|(issuer, subject)| (issuer.to_string(), subject.to_string())),
            by: by.clone(),
        };
        self.done(change).await
    }

    async fn done(&self, change: AdminChange) -> Result<bool> {
        match self.engine.submit(Command::Admin(change)).await? {
            Answer::Done(changed) => Ok(changed),
            other => Err(unexpected(other)),
        }
    }

    /// The agent holding `key`, or 401. From memory: a known key reads nothing.
    pub async fn authenticate_agent(&self, key: &str) -> Result<Agent> {
        self.credentials
            .agent_now(&keys::hash(key))
            .await?
            .ok_or_else(|| Error::Unauthorized("unknown or revoked API key".into()))
    }

    /// Who holds which key or token.
    pub fn credentials(&self) -> &Credentials {
        &self.credentials
    }

    /// Refuses an agent whose key was revoked since it authenticated (a long-poll outlives
    /// the check made when it started).
    fn still_authenticated(&self, agent: &Agent) -> Result<()> {
        let Some(key_hash) = &agent.key_hash else {
            return Ok(());
        };
        match self.credentials.agent(key_hash) {
            Some(current) if current.id == agent.id => Ok(()),
            _ => Err(Error::Unauthorized(
                "this API key was revoked while the request was waiting".into(),
            )),
        }
    }

    // ----- requests ----------------------------------------------------------------------

    /// Creates a request for `agent`. With an idempotency key, the same key and body
    /// return the request created the first time (`false`: nothing new was created).
    #[tracing::instrument(level = "debug", skip_all, fields(agent = %agent.name, action = %input.action))]
    pub async fn create_request(
        &self,
        agent: &Agent,
        input: NewRequest,
        idempotency_key: Option<String>,
        body_hash: Option<String>,
    ) -> Result<(RequestView, bool)> {
        input.validate().map_err(Error::Invalid)?;
        if let Some(key) = &idempotency_key
            && (key.is_empty()
                || key.len() > limits::IDEMPOTENCY_KEY_CHARS
                || !key.chars().all(|c| c.is_ascii_graphic()))
        {
            return Err(Error::BadRequest(format!(
                "Idempotency-Key must be 1-{} visible ASCII characters",
                limits::IDEMPOTENCY_KEY_CHARS
            )));
        }
        let callback_url = match &input.callback_url {
            Some(url) => Some(
                self.settings
                    .callbacks
                    .resolve(url)
                    .await
                    .map_err(|why| Error::Invalid(format!("callback_url: {why}")))?
                    .0
                    .to_string(),
            ),
            None => None,
        };
        let diff = match input.diff_input().map_err(Error::Invalid)? {
            Some(diff_input) => Some(diff::unified(diff_input).await?),
            None => None,
        };
        let created_at = now();
        let asked_ttl = input.ttl_s.map(Duration::from_secs);
        let digest = action_digest(
            &input.action,
            &input.resource,
            &input.labels,
            &input.payload,
            diff.as_deref(),
        );
        let request = StoredRequest {
            id: RequestId::new(),
            agent: agent.to_ref(),
            on_behalf_of: input.on_behalf_of.map(|person| person.trim().to_string()),
            action: input.action,
            resource: input.resource,
            title: input.title,
            reason: input.reason,
            labels: input.labels,
            payload: input.payload,
            diff,
            context: input.context,
            digest,
            status: Status::Pending,
            policy: signoff_app::PolicySnapshot::simple("default", 1, Vec::new()),
            approvals: 0,
            created_at,
            expires_at: created_at,
            decided_at: None,
            result: None,
            body_hash: idempotency_key.as_ref().and(body_hash),
            break_glass: false,
            escalates_at: None,
            started_at: None,
            remind_at: None,
            callback_url,
            receipt: None,
            receipt_used_at: None,
        };
        // Matched here, in parallel; the writer matches again only if the set changed.
        let set = self.policies.current();
        let generation = set.generation;
        let request = self.policies.frame_new(set, request, asked_ttl).await?;
        let record = NewRecord {
            request,
            idempotency_key,
        };
        match self
            .engine
            .submit_held(Command::create(record, generation, asked_ttl)?, Held::agent(agent))
            .await?
        {
            Answer::Created(request) => Ok((request.into_view(Vec::new()), true)),
            Answer::Replayed(request) => Ok((self.with_decisions(request).await?, false)),
            other => Err(unexpected(other)),
        }
    }

    /// A request as `agent` may see it: its own only.
    pub async fn request_for_agent(&self, agent: &Agent, id: RequestId) -> Result<RequestView> {
        let request = self.own_request(agent, id).await?;
        self.with_decisions(request).await
    }

    /// Any request (for reviewers).
    pub async fn request(&self, id: RequestId) -> Result<RequestView> {
        let request = self.store.get_request(id).await?.ok_or_else(|| not_found(id))?;
        self.with_decisions(request).await
    }

    /// Returns as soon as the request leaves pending, or after `timeout` with it still
    /// pending. Waiting holds no database connection: the bus wakes the waiter.
    pub async fn wait(&self, agent: &Agent, id: RequestId, timeout: Duration) -> Result<RequestView> {
        let slot = self.reserve_wait(agent)?;
        self.wait_holding(&slot, agent, id, timeout).await
    }

    /// [`wait`](Self::wait) in a slot the caller reserved: a caller that waits in several
    /// turns (MCP) holds one slot throughout, taken before it creates anything. The key is
    /// checked again before answering, and a revocation here ends the wait at once.
    #[tracing::instrument(level = "debug", skip_all, fields(agent = %agent.name, request = %id))]
    pub async fn wait_holding(
        &self,
        _slot: &WaitSlot,
        agent: &Agent,
        id: RequestId,
        timeout: Duration,
    ) -> Result<RequestView> {
        let answer = self.wait_for_change(agent, id, timeout).await?;
        // Nothing is answered to a key revoked a moment ago by another process: the table
        // is brought up to the store's counter first.
        Box::pin(self.credentials.reload_if_changed()).await?;
        self.still_authenticated(agent)?;
        Ok(answer)
    }

    async fn wait_for_change(&self, agent: &Agent, id: RequestId, timeout: Duration) -> Result<RequestView> {
        let registration = self.waiters.register(id);
        let mut revocations = self.credentials.changes();
        let deadline = tokio::time::Instant::now() + timeout;
        let mut shutdown = self.shutdown.clone();
        loop {
            // Armed before looking, so a decision landing in between is not missed.
            let notified = registration.notify().notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            // Woken by a change made here: answer from what it committed, no read.
            if let Some(snapshot) = registration.latest()
                && snapshot.request.agent.id == agent.id
                && snapshot.request.status != Status::Pending
            {
                return Ok(snapshot.request.clone().into_view(snapshot.decisions.clone()));
            }
            // The reads are boxed and the request is not kept while parked: a parked wait
            // holds a pointer and its registration, not a database call's state nor the
            // request's text, which matters at 10,000 waiting agents.
            let request = Box::pin(self.own_request(agent, id)).await?;
            if request.status != Status::Pending || *shutdown.borrow() {
                return Box::pin(self.with_decisions(request)).await;
            }
            drop(request);
            tokio::select! {
                _ = &mut notified => {}
                _ = tokio::time::sleep_until(deadline) => return Box::pin(self.request_for_agent(agent, id)).await,
                _ = shutdown.changed() => {}
                _ = revocations.changed() => self.still_authenticated(agent)?,
            }
        }
    }

    /// One of the agent's long-poll slots, held until the returned guard drops; refused
    /// past the configured cap so one agent cannot hold every connection.
    pub fn reserve_wait(&self, agent: &Agent) -> Result<WaitSlot> {
        let mut waits = lock(&self.waits_by_agent);
        let held = waits.entry(agent.id).or_default();
        if *held >= self.settings.max_waits_per_agent {
            return Err(Error::TooManyRequests {
                message: format!(
                    "this agent already holds {held} waits open, the most allowed; wait on fewer requests at once"
                ),
                retry_after_s: 1,
            });
        }
        *held += 1;
        Ok(WaitSlot {
            waits: Arc::clone(&self.waits_by_agent),
            agent: agent.id,
        })
    }

    #[tracing::instrument(level = "debug", skip_all, fields(agent = %agent.name, request = %id))]
    pub async fn cancel(&self, agent: &Agent, id: RequestId) -> Result<RequestView> {
        self.change(Command::Cancel { agent: agent.id, id }, Held::agent(agent))
            .await
    }

    /// The agent is about to run its approved action: recorded once; a second start of
    /// the same approval is refused (`already_started`).
    #[tracing::instrument(level = "debug", skip_all, fields(agent = %agent.name, request = %id))]
    pub async fn start(&self, agent: &Agent, id: RequestId) -> Result<RequestView> {
        self.change(Command::Start { agent: agent.id, id }, Held::agent(agent))
            .await
    }

    /// The agent says what happened when it ran an approved action.
    #[tracing::instrument(level = "debug", skip_all, fields(agent = %agent.name, request = %id))]
    pub async fn report_result(&self, agent: &Agent, id: RequestId, report: ResultReport) -> Result<RequestView> {
        self.change(
            Command::Report {
                agent: agent.id,
                id,
                report,
            },
            Held::agent(agent),
        )
        .await
    }

    /// Records a reviewer's decision under every rule (eligibility, no self-approval,
    /// one vote per person, deny needs a comment, not after expiry).
    pub async fn decide(
        &self,
        reviewer: &Identity,
        id: RequestId,
        input: &DecisionInput,
        channel: Channel,
    ) -> Result<RequestView> {
        self.decide_and_review(reviewer, Held::Nothing, id, input, channel)
            .await
            .map(|review| review.request)
    }

    /// [`Service::decide`], answered as the reviewer then sees the request (with what
    /// they may still do), from what the engine answered: no second read.
    #[tracing::instrument(level = "debug", skip_all, fields(reviewer = %reviewer.subject, request = %id, verdict = ?input.verdict))]
    pub async fn decide_and_review(
        &self,
        reviewer: &Identity,
        held: Held,
        id: RequestId,
        input: &DecisionInput,
        channel: Channel,
    ) -> Result<ReviewView> {
        if input.comment.chars().count() > limits::COMMENT_CHARS {
            return Err(Error::Invalid(format!(
                "the comment is longer than {} characters",
                limits::COMMENT_CHARS
            )));
        }
        let grant = match &input.grant {
            None => None,
            Some(grant) => Some(GrantAsk {
                duration: signoff_app::parse_duration(&grant.duration)
                    .map(Duration::from_secs)
                    .ok_or_else(|| {
                        Error::Invalid(format!(
                            "grant.duration `{}` is not a duration such as `30m` or `8h`",
                            grant.duration
                        ))
                    })?,
                max_uses: grant.max_uses,
                fields: grant.fields.clone(),
            }),
        };
        let command = Command::Decide {
            id,
            ask: DecisionAsk {
                reviewer: reviewer.clone(),
                verdict: input.verdict,
                comment: input.comment.trim().to_string(),
                channel,
                break_glass: input.break_glass,
                grant,
            },
        };
        match self.engine.submit_held(command, held).await? {
            Answer::Changed(request, decisions) => {
                let viewer = eligibility(&request, &decisions, reviewer, now());
                Ok(ReviewView {
                    request: request.into_view(decisions),
                    viewer,
                })
            }
            other => Err(unexpected(other)),
        }
    }

    /// Expires every pending request past its time; returns how many.
    #[tracing::instrument(level = "debug", skip_all)]
    /// Signs a checkpoint of the audit log if it grew since the newest one; answers its
    /// size.
    pub async fn checkpoint(&self) -> Result<Option<i64>> {
        match self.engine.submit(Command::Checkpoint).await? {
            Answer::Checkpointed(size) => Ok(size),
            other => Err(unexpected(other)),
        }
    }

    pub async fn latest_checkpoint(&self) -> Result<Option<crate::store::CheckpointRow>> {
        self.store.latest_checkpoint().await
    }

    pub async fn inclusion_proof(&self, seq: i64, size: i64) -> Result<crate::evidence::InclusionProof> {
        crate::evidence::inclusion(&self.store, seq, size).await
    }

    pub async fn consistency_proof(&self, from: i64, to: i64) -> Result<crate::evidence::ConsistencyProof> {
        crate::evidence::consistency(&self.store, from, to).await
    }

    /// Records that `by` read events `from..=to` out of the trail (as `format`).
    pub async fn record_audit_read(&self, by: crate::store::Actor, from: i64, to: i64, format: &str) -> Result<()> {
        let read = signoff_app::event::AuditExported {
            from,
            to,
            format: format.to_string(),
        };
        self.engine
            .submit(Command::Admin(crate::engine::AdminChange::RecordAuditRead { read, by }))
            .await?;
        Ok(())
    }

    /// The log's key and what it signs.
    pub fn evidence(&self) -> &crate::evidence::Evidence {
        &self.settings.evidence
    }

    pub async fn expire_due(&self) -> Result<usize> {
        const PER_COMMAND: usize = 500;
        if !self.store.any_due(now()).await? {
            return Ok(0);
        }
        let mut expired = 0;
        loop {
            match self.engine.submit(Command::ExpireDue { limit: PER_COMMAND }).await? {
                Answer::Expired(count) => {
                    expired += count;
                    if count < PER_COMMAND {
                        return Ok(expired);
                    }
                }
                other => return Err(unexpected(other)),
            }
        }
    }

    /// Applies a change to one request and shows the request as it then stands.
    async fn change(&self, command: Command, held: Held) -> Result<RequestView> {
        match self.engine.submit_held(command, held).await? {
            Answer::Changed(request, decisions) => Ok(request.into_view(decisions)),
            other => Err(unexpected(other)),
        }
    }

    // ----- reviewers ---------------------------------------------------------------------

    /// A page of the queue or history as `viewer` sees it. With `needs_my_vote`, only
    /// pending requests the viewer may still decide.
    pub async fn list(&self, viewer: &Identity, mut filter: RequestFilter, needs_my_vote: bool) -> Result<RequestPage> {
        if needs_my_vote {
            filter.statuses = vec![Status::Pending];
            filter.open_to = Some(Voter {
                issuer: viewer.issuer.clone(),
                subject: viewer.subject.clone(),
                email: viewer.email.clone(),
            });
        }
        let limit = filter.limit;
        let requests = self.store.list_requests(&filter).await?;
        let next_cursor = (requests.len() as i64 >= limit)
            .then(|| requests.last().map(|last| Cursor::after(last).encode()))
            .flatten();
        let ids: Vec<RequestId> = requests.iter().map(|r| r.id).collect();
        let mut decisions = self.store.decisions_for(&ids).await?;
        let at = now();
        let mut items = Vec::with_capacity(requests.len());
        for request in requests {
            let own: Vec<DecisionRecord> = {
                let (mine, rest): (Vec<_>, Vec<_>) = decisions.into_iter().partition(|d| d.request_id == request.id);
                decisions = rest;
                mine
            };
            let viewer_eligibility = eligibility(&request, &own, viewer, at);
            if needs_my_vote && !viewer_eligibility.can_decide {
                continue;
            }
            items.push(RequestSummary {
                id: request.id,
                status: request.status,
                title: request.title,
                action: request.action,
                resource: request.resource,
                labels: request.labels,
                agent: request.agent.name,
                on_behalf_of: request.on_behalf_of,
                approvals: request.approvals,
                approvals_required: request.policy.approvals_required,
                created_at: request.created_at,
                expires_at: request.expires_at,
                decided_at: request.decided_at,
                deciders: own
                    .iter()
                    .map(|d| Decider {
                        name: d.reviewer.display_name().to_string(),
                        verdict: d.verdict,
                    })
                    .collect(),
                viewer: Some(viewer_eligibility),
                break_glass: request.break_glass,
            });
        }
        Ok(RequestPage { items, next_cursor })
    }

    /// One request with what `viewer` may do with it.
    pub async fn review(&self, viewer: &Identity, id: RequestId) -> Result<ReviewView> {
        Ok(self.review_offering_break_glass(viewer, id).await?.0)
    }

    /// [`review`](Self::review), and whether the viewer may approve it under break-glass
    /// (named by its policy, their own request, pending): the console offers it then.
    pub async fn review_offering_break_glass(&self, viewer: &Identity, id: RequestId) -> Result<(ReviewView, bool)> {
        let request = self.store.get_request(id).await?.ok_or_else(|| not_found(id))?;
        let decisions = self.store.decisions(id).await?;
        let at = now();
        let ballots: Vec<_> = decisions.iter().map(DecisionRecord::ballot).collect();
        let parties = request.parties();
        let break_glass =
            signoff_app::evaluate_break_glass(request.decision_context(&parties, &ballots), viewer, "(offered)", at)
                .is_ok();
        let eligibility = eligibility(&request, &decisions, viewer, at);
        Ok((
            ReviewView {
                request: request.into_view(decisions),
                viewer: eligibility,
            },
            break_glass,
        ))
    }

    async fn own_request(&self, agent: &Agent, id: RequestId) -> Result<StoredRequest> {
        match self.store.get_request(id).await? {
            // Another agent's request does not exist as far as this agent can tell.
            Some(request) if request.agent.id == agent.id => Ok(request),
            _ => Err(not_found(id)),
        }
    }

    async fn with_decisions(&self, request: StoredRequest) -> Result<RequestView> {
        let decisions = if request.approvals > 0 || request.status != Status::Pending {
            self.store.decisions(request.id).await?
        } else {
            Vec::new()
        };
        Ok(request.into_view(decisions))
    }
}

/// Whether `viewer` may decide `request` now, and if not, why not.
fn eligibility(
    request: &StoredRequest,
    decisions: &[DecisionRecord],
    viewer: &Identity,
    at: time::OffsetDateTime,
) -> Eligibility {
    let ballots: Vec<_> = decisions.iter().map(DecisionRecord::ballot).collect();
    let parties = request.parties();
    let context = request.decision_context(&parties, &ballots);
    match check_eligibility(context, viewer, at) {
        Ok(()) => Eligibility {
            can_decide: true,
            reason: None,
        },
        Err(rule) => Eligibility {
            can_decide: false,
            reason: Some(rule.to_string()),
        },
    }
}

fn lock(waits: &Mutex<HashMap<AgentId, usize>>) -> MutexGuard<'_, HashMap<AgentId, usize>> {
    // Each change is one statement, so the map is consistent even after a panic.
    waits.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A held long-poll slot of one agent.
pub struct WaitSlot {
    waits: Arc<Mutex<HashMap<AgentId, usize>>>,
    agent: AgentId,
}

impl Drop for WaitSlot {
    fn drop(&mut self) {
        let mut waits = lock(&self.waits);
        if let Some(held) = waits.get_mut(&self.agent) {
            *held -= 1;
            if *held == 0 {
                waits.remove(&self.agent);
            }
        }
    }
}

fn unexpected(answer: Answer) -> Error {
    Error::Internal(format!("the engine answered {answer:?} to another kind of command"))
}

fn not_found(id: RequestId) -> Error {
    Error::not_found(format_args!("request {id}"))
}
