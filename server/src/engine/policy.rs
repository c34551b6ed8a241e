//! The policies in force, held in memory for matching, and how a match shapes a new
//! request. Callers match with the set they hold (in parallel, off the writer); the
//! writer re-matches only when the stored set changed since (another replica saved a
//! policy), so every request is matched against the set current at its commit.

use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;

use signoff_app::policy::{Budget, CompiledPolicy, DEFAULT_STEPS, Effect, Matched, PolicySet, Requirement};
use signoff_app::{PolicySnapshot, parse_duration};

use crate::store::{StoredPolicy, StoredRequest};
use crate::{Error, Result};

/// The longest one request's matching may take (a condition that runs out fails closed).
pub const MATCH_TIME: Duration = Duration::from_millis(250);
/// The longest the writer spends matching again the creations of one batch, after the
/// set changed under them; once spent, what is left fails closed.
pub const REMATCH_TIME: Duration = Duration::from_millis(250);

/// The set in force, swapped whole when a change commits.
pub struct Policies {
    current: RwLock<Arc<PolicySet>>,
    /// Groups that approve when a policy names none (and under the default).
    reviewer_groups: Vec<String>,
    request_ttl: Duration,
    /// Matches with conditions run on the blocking pool, this many at once at most.
    matching: Arc<Semaphore>,
}

impl Policies {
    pub fn new(default_approvals: u32, reviewer_groups: Vec<String>, request_ttl: Duration) -> Policies {
        Policies {
            current: RwLock::new(Arc::new(PolicySet {
                policies: Vec::new(),
                default: Requirement::simple(default_approvals.max(1)),
                generation: -1,
            })),
            reviewer_groups,
            request_ttl,
            matching: Arc::new(Semaphore::new(
                std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get),
            )),
        }
    }

    pub fn current(&self) -> Arc<PolicySet> {
        Arc::clone(&self.current.read().unwrap_or_else(|poison| poison.into_inner()))
    }

    /// Puts the stored set in force (at start).
    pub async fn load(&self, store: &crate::store::Store) -> Result<()> {
        let generation = store.policy_generation().await?;
        let set = self.compile(store.policies().await?, generation);
        self.install(set);
        Ok(())
    }

    /// Puts `set` in force (it was loaded inside a committed batch).
    pub fn install(&self, set: Arc<PolicySet>) {
        let mut current = self.current.write().unwrap_or_else(|poison| poison.into_inner());
        if set.generation >= current.generation {
            *current = set;
        }
    }

    /// The set `stored` at `generation`, compiled, with this server's default.
    pub fn compile(&self, stored: Vec<StoredPolicy>, generation: i64) -> Arc<PolicySet> {
        Arc::new(compile_set(stored, self.current().default.clone(), generation))
    }

    /// [`frame`](Self::frame) for a new request, where it cannot hold up others: a set
    /// with conditions is matched on the blocking pool, a few at a time, within
    /// [`MATCH_TIME`]; a set without any costs too little to move.
    pub async fn frame_new(
        self: &Arc<Self>,
        set: Arc<PolicySet>,
        mut request: StoredRequest,
        asked_ttl: Option<Duration>,
    ) -> Result<StoredRequest> {
        if !set.has_conditions() {
            self.frame(&set, &mut request, asked_ttl, &Arc::new(Budget::standard()));
            return Ok(request);
        }
        let _turn = self
            .matching
            .acquire()
            .await
            .map_err(|_| Error::Unavailable("the server is stopping".into()))?;
        let policies = Arc::clone(self);
        let budget = Arc::new(Budget::new(DEFAULT_STEPS, Some(Instant::now() + MATCH_TIME)));
        tokio::task::spawn_blocking(move || {
            policies.frame(&set, &mut request, asked_ttl, &budget);
            request
        })
        .await
        .map_err(|err| Error::Internal(format!("matching stopped: {err}")))
    }

    /// Matches `request` under `set` and shapes it: the frozen policy, its status (an
    /// allow or deny decides at once), and its expiry (the policy's TTL, or the agent's
    /// when shorter, or the server's default).
    pub fn frame(
        &self,
        set: &PolicySet,
        request: &mut StoredRequest,
        asked_ttl: Option<Duration>,
        budget: &Arc<Budget>,
    ) {
        let matched = set.decide_within(&request.facts(), budget);
        let ttl = match &matched.effect {
            Effect::RequireApproval(terms) => terms
                .ttl
                .as_deref()
                .and_then(parse_duration)
                .map(Duration::from_secs)
                .map(|policy_ttl| asked_ttl.map_or(policy_ttl, |asked| asked.min(policy_ttl))),
            _ => None,
        }
        .or(asked_ttl)
        .unwrap_or(self.request_ttl);
        request.frame(self.snapshot(matched), ttl);
    }

    /// What a request keeps of the policy it matched.
    pub fn snapshot(&self, matched: Matched) -> PolicySnapshot {
        let mut snapshot = PolicySnapshot::simple(&matched.name, 1, self.reviewer_groups.clone());
        snapshot.id = matched.policy_id;
        snapshot.version = matched.version;
        snapshot.why = matched.why;
        snapshot.effect = matched.effect.kind();
        match matched.effect {
            Effect::Allow => snapshot.approvals_required = 0,
            Effect::Deny { reason } => {
                snapshot.approvals_required = 0;
                snapshot.deny_reason = Some(reason);
            }
            Effect::RequireApproval(terms) => {
                snapshot.approvals_required = terms.approvals.max(1);
                if !terms.approver_groups.is_empty() {
                    snapshot.approver_groups = terms.approver_groups;
                }
                snapshot.one_from_each = terms.one_from_each;
                snapshot.comment_required = terms.comment_required;
                snapshot.escalation = terms.escalation;
                snapshot.grants = terms.grants;
                snapshot.break_glass = terms.break_glass;
                snapshot.notify = terms.notify;
                snapshot.decide_in = terms.decide_in;
                snapshot.remind_before = terms.remind_before;
            }
        }
        snapshot
    }
}

/// Compiles stored policies into a set. A stored policy that no longer compiles (an
/// earlier version accepted it) is kept in its place and fails every match, closed; the
/// server says so and goes on (`CompiledPolicy::stored`).
pub fn compile_set(stored: Vec<StoredPolicy>, default: Requirement, generation: i64) -> PolicySet {
    let mut policies = Vec::with_capacity(stored.len());
    for policy in stored {
        let name = policy.doc.name.clone();
        let (compiled, problems) = CompiledPolicy::stored(policy.id, policy.version, policy.doc);
        if !problems.is_empty() {
            tracing::error!(
                policy = %name,
                problems = %problems.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "),
                "a stored policy is refused: it fails closed for every request it would match until an admin saves a valid version"
            );
        }
        policies.push(compiled);
    }
    PolicySet {
        policies,
        default,
        generation,
    }
}
