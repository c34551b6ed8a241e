//! The lifecycle engine: every change to a request goes through here.
//!
//! Callers hand the engine a [`Command`] and await its answer. One writer task takes the
//! commands queued (up to [`MAX_BATCH`]) and applies them as one batch in one transaction
//! (group commit): it locks the audit chain's head, reads what the batch needs in a few
//! statements, applies the rules of `signoff_app` to each command in order in memory (so
//! two decisions on one request in one batch behave exactly as if they came one after
//! the other), writes the rows with multi-row statements, chains the audit events from
//! the head it holds, commits, and only then answers each caller and publishes the
//! events. A rule refusal answers its own command only; a database failure fails the
//! batch, and each of its callers gets a 503. See ARCHITECTURE.md, "The write path".

mod access;
mod admin;
mod batch;
mod chain;
mod held;
pub mod policy;
mod pressure;

pub use held::Held;
pub use policy::Policies;
pub use pressure::Pressure;

use std::sync::Arc;
use std::time::{Duration, Instant};

use time::OffsetDateTime;
use tokio::sync::{mpsc, oneshot};
use tracing::Instrument;

use signoff_app::lifecycle::created_event;
pub use signoff_app::lifecycle::{DecisionAsk, GrantAsk};
use signoff_app::lifecycle::{GrantRefusal, Refusal};
use signoff_app::policy::PolicyDoc;
use signoff_app::wire::ResultReport;
use signoff_app::{AgentId, Identity, RequestId, canonical_json};

use crate::bus::EventBus;
use crate::credentials::Credentials;
use crate::evidence::Evidence;
use crate::store::{Actor, Agent, DecisionRecord, KeyIssue, NewRecord, Poll, Store, StoredRequest, WriteConn};
use crate::{Error, Result};

/// Commands per batch at most.
pub const MAX_BATCH: usize = 256;
/// Commands waiting beyond the batch being applied; callers wait for room past it.
const QUEUE: usize = 4 * MAX_BATCH;
/// How long the writer keeps its connection from batch to batch while commands keep
/// coming: whoever writes outside the lifecycle (sessions, delivery records) waits at most
/// about this long for SQLite's one write connection.
const KEEP_CONNECTION: Duration = Duration::from_millis(50);

/// A change someone asks for.
pub enum Command {
    /// A new request, its audit event prepared by the caller (see [`Command::create`]).
    Create(Box<NewRequest>),
    /// A reviewer's decision on a request.
    Decide {
        id: RequestId,
        ask: DecisionAsk,
    },
    Cancel {
        agent: AgentId,
        id: RequestId,
    },
    /// The agent is about to run its approved action: recorded once, so one approval
    /// runs once even when the agent is retried elsewhere.
    Start {
        agent: AgentId,
        id: RequestId,
    },
    Report {
        agent: AgentId,
        id: RequestId,
        report: ResultReport,
    },
    /// Expires up to `limit` pending requests past their time.
    ExpireDue {
        limit: usize,
    },
    /// Agents, keys and terminal sign-in.
    Admin(AdminChange),
    /// Signs a checkpoint of the audit log as it stands, if it grew since the newest
    /// (after a quiet interval, and at shutdown).
    Checkpoint,
}

/// What importing a policy file changed, by policy name.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ImportReport {
    pub created: Vec<String>,
    pub updated: Vec<String>,
    pub disabled: Vec<String>,
    pub unchanged: Vec<String>,
}

/// A change to agents, keys or terminal sign-in.
pub enum AdminChange {
    /// Creates the agent if needed and gives it a key (stored as `key_hash`). An owner
    /// given for an existing agent replaces its owner.
    IssueKey {
        name: String,
        owner: Option<String>,
        key_hash: String,
        key_prefix: String,
        /// What the agent is for; given for an existing agent, it replaces the old one.
        description: Option<String>,
        /// The admin who asked, or `None` for the operator's command line.
        by: Option<Identity>,
        /// Only a new agent: refused, inside the batch, when one has the name already.
        new_only: bool,
    },
    /// Revokes every active key of the named agent.
    RevokeKeys { name: String, by: Option<Identity> },
    /// Replaces every active key of the named agent with a new one, in one change: there
    /// is no moment with no key, nor one with the old keys and the new.
    RotateKey {
        name: String,
        key_hash: String,
        key_prefix: String,
        by: Identity,
    },
    /// Saves a new version of a policy (`id`), or a new policy (at the end of the order).
    /// The document was checked by the caller.
    SavePolicy {
        id: Option<String>,
        doc: Box<PolicyDoc>,
        by: Actor,
    },
    /// Moves a policy one place earlier or later in the order.
    MovePolicy { id: String, earlier: bool, by: Identity },
    /// Makes the stored set what the file says, all or nothing: policies by name,
    /// in the file's order; stored ones the file does not name are disabled.
    ImportPolicies { docs: Vec<PolicyDoc>, by: Actor },
    /// Someone read the audit trail out: the reading is itself in the trail.
    RecordAuditRead {
        read: signoff_app::event::AuditExported,
        by: Actor,
    },
    /// Ends a grant at once: by one of its grantors, or an admin.
    RevokeGrant { id: String, by: Identity, admin: bool },
    /// Another admin has looked at a break-glass approval.
    AcknowledgeFollowup { request: RequestId, by: Identity },
    /// A reviewer confirms (or refuses) the terminal sign-in with this user code.
    AnswerDeviceCode {
        user_code: String,
        identity: Identity,
        approve: bool,
    },
    /// A terminal polls its device code; once confirmed, the token (stored as
    /// `token_hash`) is issued, once.
    PollDeviceCode {
        code_hash: String,
        interval: time::Duration,
        token_hash: String,
        lifetime: time::Duration,
    },
    /// Revokes a terminal token: of `owner` (issuer, subject), or anyone's.
    RevokeToken {
        id: String,
        owner: Option<(String, String)>,
        by: Identity,
    },
}

/// A request to store, matched against the policy set of `generation` and with its
/// `request.created` event's actor and data already in canonical JSON: that work is
/// done by the caller, in parallel, not by the one writer.
pub struct NewRequest {
    pub record: NewRecord,
    /// The policy set it was matched under; the writer matches again if that changed.
    generation: i64,
    /// The TTL the agent asked for, to apply again if it is matched again.
    asked_ttl: Option<Duration>,
    actor: String,
    data: String,
}

impl Command {
    pub fn create(record: NewRecord, generation: i64, asked_ttl: Option<Duration>) -> Result<Command> {
        let request = &record.request;
        let actor = crate::store::audit_value(&Actor::agent(request.agent.id, &request.agent.name))?;
        Ok(Command::Create(Box::new(NewRequest {
            actor: canonical_json(&actor),
            data: canonical_json(&created_event(request).data()),
            generation,
            asked_ttl,
            record,
        })))
    }

    /// What kind of change this is, for traces and logs.
    pub fn name(&self) -> &'static str {
        match self {
            Command::Create(_) => "create",
            Command::Decide { .. } => "decide",
            Command::Cancel { .. } => "cancel",
            Command::Start { .. } => "start",
            Command::Report { .. } => "report",
            Command::ExpireDue { .. } => "expire_due",
            Command::Admin(_) => "admin",
            Command::Checkpoint => "checkpoint",
        }
    }

    fn is_decision(&self) -> bool {
        matches!(self, Command::Decide { .. })
    }

    /// Whether it may change who holds which key or token.
    fn changes_credentials(&self) -> bool {
        matches!(
            self,
            Command::Admin(
                AdminChange::IssueKey { .. }
                    | AdminChange::RevokeKeys { .. }
                    | AdminChange::RotateKey { .. }
                    | AdminChange::PollDeviceCode { .. }
                    | AdminChange::RevokeToken { .. }
            )
        )
    }
}

/// What a command did.
#[derive(Debug)]
pub enum Answer {
    /// Stored, as it now stands.
    Created(StoredRequest),
    /// The agent sent this `Idempotency-Key` and body before: that request, unchanged.
    Replayed(StoredRequest),
    /// Decided, cancelled, started or reported: the request as it now stands, with its
    /// decisions.
    Changed(StoredRequest, Vec<DecisionRecord>),
    /// How many requests expired.
    Expired(usize),
    /// An agent's new key was stored (the agent as it now is).
    KeyIssued(Agent, KeyIssue),
    /// How many keys were revoked; `None` when there is no such agent.
    KeysRevoked(Option<u64>),
    /// A terminal sign-in poll's answer.
    Polled(Poll),
    /// Whether the change found something to change (a code to answer, a token to revoke).
    Done(bool),
    /// The agent whose keys were replaced, and how many old ones were revoked; `None`
    /// when there is no such agent.
    Rotated(Option<(Agent, u64)>),
    /// A policy as saved.
    Policy(crate::store::StoredPolicy),
    /// What a policy import changed.
    Imported(ImportReport),
    /// The size of the checkpoint signed; `None` when the log had not grown.
    Checkpointed(Option<i64>),
}

struct Job {
    command: Command,
    held: Held,
    submitted: Instant,
    reply: oneshot::Sender<Result<Answer>>,
}

/// Who waits on a command's answer, while the batch takes the command itself.
struct Caller {
    submitted: Instant,
    decision: bool,
    reply: oneshot::Sender<Result<Answer>>,
}

impl Job {
    fn split(self) -> ((Command, Held), Caller) {
        let caller = Caller {
            submitted: self.submitted,
            decision: self.command.is_decision(),
            reply: self.reply,
        };
        ((self.command, self.held), caller)
    }
}

/// The handle callers submit commands through.
#[derive(Clone)]
pub struct Engine {
    queue: mpsc::Sender<Job>,
    pressure: Pressure,
}

impl Engine {
    /// Starts the writer on `store`, on a thread of its own; it stops when the last handle
    /// is dropped.
    ///
    /// Its own thread, because every command waits on it and each batch is a dozen round
    /// trips to the database: on the server's runtime, each answer from the database would
    /// queue behind the requests being parsed and answered (see ARCHITECTURE.md, "The
    /// write path").
    pub fn start(
        store: Store,
        bus: EventBus,
        policies: Arc<Policies>,
        evidence: Arc<Evidence>,
        credentials: Arc<Credentials>,
    ) -> Result<Engine> {
        let (queue, jobs) = mpsc::channel(QUEUE);
        let pressure = Pressure::default();
        let writer = write(store, bus, policies, evidence, credentials, pressure.clone(), jobs);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|err| Error::Internal(format!("the writer's runtime: {err}")))?;
        std::thread::Builder::new()
            .name("signoff-writer".into())
            .spawn(move || runtime.block_on(writer))
            .map_err(|err| Error::Internal(format!("the writer's thread: {err}")))?;
        Ok(Engine { queue, pressure })
    }

    /// Applies `command` and answers once it has committed (or was refused).
    pub async fn submit(&self, command: Command) -> Result<Answer> {
        self.submit_held(command, Held::Nothing).await
    }

    /// [`Engine::submit`] for a command asked with `held`, refused if that no longer
    /// stands when the batch applies it.
    #[tracing::instrument(level = "debug", skip_all, fields(command = command.name()))]
    pub async fn submit_held(&self, command: Command, held: Held) -> Result<Answer> {
        let (reply, answer) = oneshot::channel();
        let job = Job {
            command,
            held,
            submitted: Instant::now(),
            reply,
        };
        self.queue.send(job).await.map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }

    /// Commands waiting for the writer.
    pub fn queue_depth(&self) -> usize {
        self.queue.max_capacity() - self.queue.capacity()
    }

    /// Whether callers are queueing behind commits now, for work that should yield to them.
    pub fn pressure(&self) -> Pressure {
        self.pressure.clone()
    }
}

fn stopped() -> Error {
    Error::Unavailable("the server is stopping; try again".into())
}

/// The writer: one batch at a time, each answered after its commit.
async fn write(
    store: Store,
    bus: EventBus,
    policies: Arc<Policies>,
    evidence: Arc<Evidence>,
    credentials: Arc<Credentials>,
    pressure: Pressure,
    mut queue: mpsc::Receiver<Job>,
) {
    // Connections opened on this thread's runtime, so their answers wake it directly.
    let store = store.for_engine();
    let mut jobs: Vec<Job> = Vec::with_capacity(MAX_BATCH);
    // The connection and when the writer took it from the pool.
    let mut kept: Option<(WriteConn, Instant)> = None;
    while queue.recv_many(&mut jobs, MAX_BATCH).await > 0 {
        crate::metrics::queue_depth(queue.len());
        let started = Instant::now();
        let reload_credentials = jobs.iter().any(|job| job.command.changes_credentials());
        let (commands, callers): (Vec<(Command, Held)>, Vec<Caller>) = jobs.drain(..).map(Job::split).unzip();
        let (conn, taken) = match kept.take() {
            Some(kept) => kept,
            None => match WriteConn::acquire(&store).await {
                Ok(conn) => (conn, started),
                Err(err) => {
                    fail(callers, &err);
                    continue;
                }
            },
        };
        let span = tracing::debug_span!("batch", commands = commands.len());
        match batch::apply(conn, &policies, &evidence, commands)
            .instrument(span)
            .await
        {
            Ok((applied, conn)) => {
                if !queue.is_empty() && taken.elapsed() < KEEP_CONNECTION {
                    kept = Some((conn, taken));
                }
                crate::metrics::batch_committed(callers.len(), started.elapsed());
                pressure.batch(callers.len());
                if let Some(changed) = applied.policies {
                    // In force from the next batch on; callers read it once answered.
                    policies.install(changed);
                }
                if reload_credentials && let Err(err) = credentials.reload().await {
                    // Commands are still checked in each batch; reads catch up at the next look.
                    tracing::error!(%err, "could not load the credentials again after changing them");
                }
                for (caller, answer) in callers.into_iter().zip(applied.answers) {
                    if caller.decision {
                        crate::metrics::decision_latency(caller.submitted.elapsed());
                    }
                    let _ = caller.reply.send(answer);
                }
                bus.publish_committed(applied.events, applied.head);
            }
            Err(err) => fail(callers, &err),
        }
    }
}

/// A batch that stored nothing: each of its callers is told so.
fn fail(callers: Vec<Caller>, err: &Error) {
    crate::metrics::batch_failed();
    tracing::error!(%err, commands = callers.len(), "a batch failed; nothing of it was stored");
    for caller in callers {
        let _ = caller.reply.send(Err(Error::Unavailable(
            "the change could not be stored just now; nothing was changed, try again".into(),
        )));
    }
}

/// The time a batch is applied at, at the storage's precision: taken once the batch holds
/// the lock, so nothing is decided at a time earlier than its commit's order says.
fn batch_time() -> OffsetDateTime {
    crate::clock::now()
}

/// A refusal as the API answers it.
fn refused(id: RequestId, refusal: Refusal) -> Error {
    match refusal {
        Refusal::Rule(rule) => rule.into(),
        Refusal::Transition(transition) => transition.into(),
        Refusal::NotYours => not_found(id),
        Refusal::AlreadyStarted(_) => Error::Conflict {
            code: "already_started",
            message: refusal.to_string(),
        },
        Refusal::NotApproved(_) => Error::Conflict {
            code: "not_approved",
            message: refusal.to_string(),
        },
        Refusal::BreakGlassDenial | Refusal::NotThisReceipt => Error::Invalid(refusal.to_string()),
        Refusal::ReceiptUsed(_) => Error::Conflict {
            code: "receipt_used",
            message: refusal.to_string(),
        },
        Refusal::Grant(grant) => match grant {
            GrantRefusal::NotAllowed(_) => Error::Forbidden(grant.to_string()),
            GrantRefusal::NeedsQuorum => Error::Conflict {
                code: "grant_needs_quorum",
                message: grant.to_string(),
            },
            GrantRefusal::NotAnApproval
            | GrantRefusal::TooLong(_)
            | GrantRefusal::TooManyUses(_)
            | GrantRefusal::NotAField(_)
            | GrantRefusal::NoSuchField(_) => Error::Invalid(grant.to_string()),
        },
    }
}

fn not_found(id: RequestId) -> Error {
    Error::not_found(format_args!("request {id}"))
}
