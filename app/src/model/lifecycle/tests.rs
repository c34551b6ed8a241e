//! The lifecycle without a database: each transition's state, events and refusals.

use std::collections::BTreeMap;
use std::time::Duration as StdDuration;

use proptest::prelude::*;
use serde_json::json;
use time::Duration;

use super::*;
use crate::model::event::Kind;
use crate::model::request::ExecutionStatus;
use crate::model::rules::{Escalation, GrantTerms};

const ISSUER: &str = "https://idp.example.com";

fn person(n: u32, groups: &[&str]) -> Identity {
    Identity {
        issuer: ISSUER.into(),
        subject: format!("user-{n}"),
        email: Some(format!("user{n}@example.com")),
        email_verified: true,
        name: Some(format!("User {n}")),
        groups: groups.iter().map(|g| g.to_string()).collect(),
    }
}

fn reviewer(n: u32) -> Identity {
    person(n, &["reviewers"])
}

fn created() -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_800_000_000).expect("valid timestamp")
}

/// Five minutes after creation: well within the hour a request lives.
fn now() -> OffsetDateTime {
    created() + Duration::minutes(5)
}

fn agent() -> AgentRef {
    AgentRef {
        id: AgentId::from(uuid::Uuid::from_u128(7)),
        name: "deployer".into(),
        owner: Some("owner@example.com".into()),
    }
}

fn other_agent() -> AgentId {
    AgentId::from(uuid::Uuid::from_u128(8))
}

fn policy(approvals: u32) -> PolicySnapshot {
    PolicySnapshot::simple("prod", approvals, vec!["reviewers".into()])
}

fn request_under(policy: PolicySnapshot) -> Request {
    let mut request = Request {
        id: RequestId::from(uuid::Uuid::from_u128(1)),
        agent: agent(),
        on_behalf_of: Some("alice@example.com".into()),
        action: "db.export".into(),
        resource: "db/customers".into(),
        title: "Export customers".into(),
        reason: "quarterly report".into(),
        labels: BTreeMap::new(),
        payload: json!({"table": "customers", "rows": 10}),
        diff: None,
        context: None,
        digest: "d1".into(),
        status: Status::Pending,
        policy: PolicySnapshot::simple("unframed", 1, Vec::new()),
        approvals: 0,
        created_at: created(),
        expires_at: created(),
        decided_at: None,
        result: None,
        body_hash: None,
        break_glass: false,
        escalates_at: None,
        started_at: None,
        remind_at: None,
        callback_url: None,
        receipt: None,
        receipt_used_at: None,
    };
    request.frame(policy, StdDuration::from_secs(3600));
    request
}

fn pending(approvals: u32) -> Case {
    Case::open(request_under(policy(approvals))).0
}

fn ask(who: Identity, verdict: Verdict, comment: &str) -> DecisionAsk {
    DecisionAsk {
        reviewer: who,
        verdict,
        comment: comment.into(),
        channel: Channel::Web,
        break_glass: false,
        grant: None,
    }
}

fn approve(who: Identity) -> DecisionAsk {
    ask(who, Verdict::Approve, "")
}

fn kinds(entries: &[Entry]) -> Vec<Kind> {
    entries.iter().map(|entry| entry.event.kind()).collect()
}

fn granting_policy() -> PolicySnapshot {
    let mut policy = policy(1);
    policy.id = Some("p1".into());
    policy.version = 3;
    policy.grants = Some(GrantTerms {
        max_duration: "8h".into(),
        max_uses: 5,
    });
    policy
}

fn grant_ask(fields: &[&str]) -> GrantAsk {
    GrantAsk {
        duration: StdDuration::from_secs(3600),
        max_uses: 3,
        fields: fields.iter().map(|f| f.to_string()).collect(),
    }
}

/// A grant given by approving a request under `granting_policy`, binding `fields`.
fn grant_from_approval(fields: &[&str]) -> Grant {
    let mut case = Case::open(request_under(granting_policy())).0;
    let mut approval = approve(reviewer(1));
    approval.grant = Some(grant_ask(fields));
    let effects = case
        .decide(&approval, now(), &mut Vec::new())
        .expect("approved with a grant");
    effects.grant.expect("a grant")
}

fn later_request() -> Request {
    let mut request = request_under(granting_policy());
    request.id = RequestId::from(uuid::Uuid::from_u128(2));
    request.created_at = now();
    request.expires_at = now() + Duration::hours(1);
    request
}

// ----- opening -----------------------------------------------------------------------------

#[test]
fn a_request_needing_approval_opens_pending_with_its_ttl() {
    let (case, entries) = Case::open(request_under(policy(2)));
    assert_eq!(case.request.status, Status::Pending);
    assert_eq!(case.request.expires_at, created() + Duration::hours(1));
    assert_eq!(case.request.decided_at, None);
    assert_eq!(kinds(&entries), [Kind::RequestCreated]);
    assert!(matches!(&entries[0].actor, Actor::Agent { name, .. } if name == "deployer"));
}

#[test]
fn an_allow_policy_approves_at_creation_naming_itself() {
    let mut allow = policy(1);
    allow.effect = EffectKind::Allow;
    allow.why = vec!["action `db.export`".into()];
    let (case, entries) = Case::open(request_under(allow));
    assert_eq!(case.request.status, Status::Approved);
    assert_eq!(case.request.decided_at, Some(created()));
    assert_eq!(kinds(&entries), [Kind::RequestCreated, Kind::RequestApproved]);
    assert_eq!(entries[1].actor, Actor::System);
    assert_eq!(
        entries[1].event.data(),
        json!({"policy": "prod", "version": 0, "why": ["action `db.export`"]})
    );
}

#[test]
fn a_deny_policy_denies_at_creation_with_its_reason() {
    let mut deny = policy(1);
    deny.effect = EffectKind::Deny;
    deny.deny_reason = Some("never on Fridays".into());
    let (case, entries) = Case::open(request_under(deny));
    assert_eq!(case.request.status, Status::Denied);
    assert_eq!(kinds(&entries), [Kind::RequestCreated, Kind::RequestDenied]);
    assert_eq!(entries[1].event.data()["reason"], "never on Fridays");
}

#[test]
fn escalation_is_scheduled_only_for_pending_requests() {
    let mut escalating = policy(1);
    escalating.escalation = Some(Escalation {
        after_minutes: 30,
        groups: vec!["leads".into()],
        notify: Vec::new(),
    });
    let pending = request_under(escalating.clone());
    assert_eq!(pending.escalates_at, Some(created() + Duration::minutes(30)));
    escalating.effect = EffectKind::Allow;
    assert_eq!(request_under(escalating).escalates_at, None);
}

#[test]
fn the_created_event_carries_the_frozen_policy_and_expiry() {
    let (_, entries) = Case::open(request_under(policy(2)));
    let data = entries[0].event.data();
    assert_eq!(data["policy"]["approvals_required"], 2);
    assert_eq!(data["expires_at"], unix_millis(created() + Duration::hours(1)));
    assert_eq!(data["status"], "pending");
}

// ----- deciding ----------------------------------------------------------------------------

#[test]
fn one_approval_approves_a_one_approval_request() {
    let mut case = pending(1);
    let mut out = Vec::new();
    case.decide(&approve(reviewer(1)), now(), &mut out).expect("approved");
    assert_eq!(case.request.status, Status::Approved);
    assert_eq!(case.request.approvals, 1);
    assert_eq!(case.request.decided_at, Some(now()));
    assert_eq!(case.decisions.len(), 1);
    assert_eq!(kinds(&out), [Kind::DecisionRecorded, Kind::RequestApproved]);
    assert_eq!(out[1].event.data(), json!({"approvals": 1}));
}

#[test]
fn a_quorum_of_two_waits_for_a_second_person() {
    let mut case = pending(2);
    let mut out = Vec::new();
    case.decide(&approve(reviewer(1)), now(), &mut out).expect("recorded");
    assert_eq!(case.request.status, Status::Pending);
    assert_eq!(case.request.approvals, 1);
    assert_eq!(case.request.decided_at, None);
    assert_eq!(kinds(&out), [Kind::DecisionRecorded]);
    out.clear();
    case.decide(&approve(reviewer(2)), now(), &mut out).expect("approved");
    assert_eq!(case.request.status, Status::Approved);
    assert_eq!(case.request.approvals, 2);
    assert_eq!(kinds(&out), [Kind::DecisionRecorded, Kind::RequestApproved]);
}

#[test]
fn the_same_person_cannot_vote_twice() {
    let mut case = pending(2);
    case.decide(&approve(reviewer(1)), now(), &mut Vec::new())
        .expect("recorded");
    let mut out = Vec::new();
    let refused = case.decide(&approve(reviewer(1)), now(), &mut out);
    assert_eq!(refused, Err(Refusal::Rule(RuleError::AlreadyDecided)));
    assert!(out.is_empty(), "a refusal records nothing");
    assert_eq!(case.decisions.len(), 1);
}

#[test]
fn a_deny_with_a_comment_denies() {
    let mut case = pending(2);
    let mut out = Vec::new();
    case.decide(&ask(reviewer(1), Verdict::Deny, "not now"), now(), &mut out)
        .expect("denied");
    assert_eq!(case.request.status, Status::Denied);
    assert_eq!(kinds(&out), [Kind::DecisionRecorded, Kind::RequestDenied]);
    assert_eq!(out[0].event.data()["comment"], "not now");
}

#[test]
fn a_deny_without_a_comment_is_refused() {
    let mut case = pending(1);
    let refused = case.decide(&ask(reviewer(1), Verdict::Deny, " "), now(), &mut Vec::new());
    assert_eq!(refused, Err(Refusal::Rule(RuleError::CommentRequired)));
    assert_eq!(case.request.status, Status::Pending);
}

#[test]
fn nobody_decides_a_request_made_for_them() {
    let mut case = pending(1);
    let mut alice = reviewer(9);
    alice.email = Some("alice@example.com".into());
    let refused = case.decide(&approve(alice), now(), &mut Vec::new());
    assert_eq!(refused, Err(Refusal::Rule(RuleError::OwnRequest)));
}

#[test]
fn the_agents_owner_cannot_approve_its_requests() {
    let mut case = pending(1);
    let mut owner = reviewer(9);
    owner.email = Some("owner@example.com".into());
    let refused = case.decide(&approve(owner), now(), &mut Vec::new());
    assert_eq!(refused, Err(Refusal::Rule(RuleError::OwnRequest)));
}

#[test]
fn someone_outside_the_approver_groups_is_not_eligible() {
    let mut case = pending(1);
    let refused = case.decide(&approve(person(3, &["sales"])), now(), &mut Vec::new());
    assert_eq!(refused, Err(Refusal::Rule(RuleError::NotEligible)));
}

#[test]
fn a_decided_request_takes_no_more_decisions() {
    let mut case = pending(1);
    case.decide(&approve(reviewer(1)), now(), &mut Vec::new())
        .expect("approved");
    let refused = case.decide(&approve(reviewer(2)), now(), &mut Vec::new());
    assert_eq!(refused, Err(Refusal::Rule(RuleError::NotPending(Status::Approved))));
}

#[test]
fn a_decision_after_expiry_records_the_expiry_and_is_refused() {
    let mut case = pending(1);
    let late = created() + Duration::hours(2);
    let mut out = Vec::new();
    let refused = case.decide(&approve(reviewer(1)), late, &mut out);
    assert_eq!(refused, Err(Refusal::Rule(RuleError::Expired)));
    assert_eq!(case.request.status, Status::Expired);
    assert_eq!(case.request.decided_at, Some(late));
    assert_eq!(kinds(&out), [Kind::RequestExpired]);
    assert!(case.decisions.is_empty());
}

#[test]
fn the_decision_event_names_the_reviewer_and_the_digest() {
    let mut case = pending(1);
    let mut out = Vec::new();
    case.decide(&approve(reviewer(4)), now(), &mut out).expect("approved");
    assert_eq!(out[0].actor, Actor::Reviewer(reviewer(4)));
    assert_eq!(out[0].event.data()["digest"], "d1");
    assert_eq!(out[0].request, Some(case.request.id));
    assert_eq!(out[0].at, now());
}

// ----- break-glass -------------------------------------------------------------------------

fn break_glass_case() -> (Case, Identity) {
    let mut admin = person(5, &["admins"]);
    admin.email = Some("alice@example.com".into());
    let mut terms = policy(2);
    terms.break_glass = vec!["alice@example.com".into()];
    (Case::open(request_under(terms)).0, admin)
}

#[test]
fn break_glass_approves_ones_own_request_at_once_and_opens_a_follow_up() {
    let (mut case, admin) = break_glass_case();
    let mut emergency = ask(admin, Verdict::Approve, "prod is down");
    emergency.break_glass = true;
    let mut out = Vec::new();
    let effects = case.decide(&emergency, now(), &mut out).expect("approved");
    assert!(effects.break_glass);
    assert!(case.request.break_glass);
    assert_eq!(case.request.status, Status::Approved);
    assert_eq!(
        kinds(&out),
        [Kind::DecisionRecorded, Kind::RequestBreakGlass, Kind::RequestApproved]
    );
}

#[test]
fn break_glass_cannot_deny() {
    let (mut case, admin) = break_glass_case();
    let mut emergency = ask(admin, Verdict::Deny, "no");
    emergency.break_glass = true;
    assert_eq!(
        case.decide(&emergency, now(), &mut Vec::new()),
        Err(Refusal::BreakGlassDenial)
    );
}

#[test]
fn break_glass_never_carries_a_grant() {
    let (mut case, admin) = break_glass_case();
    let mut emergency = ask(admin, Verdict::Approve, "prod is down");
    emergency.break_glass = true;
    emergency.grant = Some(grant_ask(&[]));
    assert_eq!(
        case.decide(&emergency, now(), &mut Vec::new()),
        Err(Refusal::Rule(RuleError::BreakGlassWithGrant))
    );
    assert_eq!(case.request.status, Status::Pending);
}

#[test]
fn break_glass_needs_a_comment() {
    let (mut case, admin) = break_glass_case();
    let mut emergency = ask(admin, Verdict::Approve, "");
    emergency.break_glass = true;
    assert_eq!(
        case.decide(&emergency, now(), &mut Vec::new()),
        Err(Refusal::Rule(RuleError::BreakGlassCommentRequired))
    );
}

// ----- grants ------------------------------------------------------------------------------

#[test]
fn an_approval_with_a_grant_binds_the_whole_action_by_default() {
    let grant = grant_from_approval(&[]);
    assert_eq!(grant.fields, BTreeMap::from([("$digest".to_string(), json!("d1"))]));
    assert_eq!(grant.granted_by, vec![reviewer(1)]);
    assert_eq!(grant.expires_at, now() + Duration::hours(1));
    assert_eq!((grant.policy_id.as_str(), grant.policy_version), ("p1", 3));
}

#[test]
fn a_grant_may_bind_named_payload_fields_or_any_payload() {
    let by_table = grant_from_approval(&["table"]);
    assert_eq!(
        by_table.fields,
        BTreeMap::from([("table".to_string(), json!("customers"))])
    );
    assert!(grant_from_approval(&["*"]).fields.is_empty());
}

#[test]
fn a_grant_is_refused_where_the_policy_allows_none() {
    let mut case = pending(1);
    let mut approval = approve(reviewer(1));
    approval.grant = Some(grant_ask(&[]));
    let mut out = Vec::new();
    let refused = case.decide(&approval, now(), &mut out);
    assert_eq!(refused, Err(Refusal::Grant(GrantRefusal::NotAllowed("prod".into()))));
    assert!(out.is_empty());
    assert_eq!(
        case.request.status,
        Status::Pending,
        "the approval is refused with its grant"
    );
}

#[test]
fn a_grant_beyond_the_policys_bounds_is_refused() {
    let mut case = Case::open(request_under(granting_policy())).0;
    let mut approval = approve(reviewer(1));
    approval.grant = Some(GrantAsk {
        duration: StdDuration::from_secs(9 * 3600),
        ..grant_ask(&[])
    });
    assert_eq!(
        case.decide(&approval, now(), &mut Vec::new()),
        Err(Refusal::Grant(GrantRefusal::TooLong("8h".into())))
    );
    approval.grant = Some(GrantAsk {
        max_uses: 6,
        ..grant_ask(&[])
    });
    assert_eq!(
        case.decide(&approval, now(), &mut Vec::new()),
        Err(Refusal::Grant(GrantRefusal::TooManyUses(5)))
    );
}

#[test]
fn a_grant_comes_only_with_the_approval_that_approves() {
    let mut two = granting_policy();
    two.approvals_required = 2;
    let mut case = Case::open(request_under(two)).0;
    let mut approval = approve(reviewer(1));
    approval.grant = Some(grant_ask(&[]));
    assert_eq!(
        case.decide(&approval, now(), &mut Vec::new()),
        Err(Refusal::Grant(GrantRefusal::NeedsQuorum))
    );
}

#[test]
fn a_grant_on_a_missing_or_reserved_field_is_refused() {
    let mut case = Case::open(request_under(granting_policy())).0;
    let mut approval = approve(reviewer(1));
    approval.grant = Some(grant_ask(&["region"]));
    assert_eq!(
        case.decide(&approval, now(), &mut Vec::new()),
        Err(Refusal::Grant(GrantRefusal::NoSuchField("region".into())))
    );
    approval.grant = Some(grant_ask(&["$digest"]));
    assert_eq!(
        case.decide(&approval, now(), &mut Vec::new()),
        Err(Refusal::Grant(GrantRefusal::NotAField("$digest".into())))
    );
}

#[test]
fn a_grant_approves_a_later_identical_request_and_counts_the_use() {
    let grant = grant_from_approval(&[]);
    let (mut case, mut out) = Case::open(later_request());
    let used = case.approve_by_grant(std::slice::from_ref(&grant), |_| 1, now(), &mut out);
    assert_eq!(used.map(|g| g.id.as_str()), Some(grant.id.as_str()));
    assert_eq!(case.request.status, Status::Approved);
    assert_eq!(
        kinds(&out),
        [Kind::RequestCreated, Kind::GrantUsed, Kind::RequestApproved]
    );
    assert_eq!(
        out[1].event.data()["use"],
        2,
        "one earlier use in this batch, this is the second"
    );
    assert!(case.request.policy.why.last().is_some_and(|why| why.contains("User 1")));
}

#[test]
fn a_grant_does_not_cover_a_different_payload() {
    let grant = grant_from_approval(&[]);
    let mut request = later_request();
    request.digest = "d2".into();
    let (mut case, mut out) = Case::open(request);
    assert!(
        case.approve_by_grant(std::slice::from_ref(&grant), |_| 0, now(), &mut out)
            .is_none()
    );
    assert_eq!(case.request.status, Status::Pending);
    assert_eq!(kinds(&out), [Kind::RequestCreated]);
}

#[test]
fn a_grant_is_spent_once_its_uses_are_used() {
    let grant = grant_from_approval(&[]);
    let (mut case, mut out) = Case::open(later_request());
    assert!(
        case.approve_by_grant(std::slice::from_ref(&grant), |_| 3, now(), &mut out)
            .is_none()
    );
}

#[test]
fn a_grant_of_an_older_policy_version_does_not_apply() {
    let grant = grant_from_approval(&[]);
    let mut request = later_request();
    request.policy.version = 4;
    let (mut case, mut out) = Case::open(request);
    assert!(
        case.approve_by_grant(std::slice::from_ref(&grant), |_| 0, now(), &mut out)
            .is_none()
    );
}

#[test]
fn a_grant_never_approves_a_request_made_for_its_grantor() {
    let grant = grant_from_approval(&[]);
    let mut request = later_request();
    request.on_behalf_of = Some("user1@example.com".into());
    let (mut case, mut out) = Case::open(request);
    assert!(
        case.approve_by_grant(std::slice::from_ref(&grant), |_| 0, now(), &mut out)
            .is_none()
    );
    assert_eq!(case.request.status, Status::Pending);
}

#[test]
fn a_grant_is_active_until_revoked_expired_or_used_up() {
    let mut grant = grant_from_approval(&[]);
    assert!(grant.active(now()));
    assert!(!grant.active(grant.expires_at));
    grant.uses = grant.max_uses;
    assert!(!grant.active(now()));
    grant.uses = 0;
    grant.revoked_at = Some(now());
    assert!(!grant.active(now()));
}

// ----- the agent's side --------------------------------------------------------------------

#[test]
fn the_agent_cancels_its_pending_request() {
    let mut case = pending(1);
    let mut out = Vec::new();
    case.cancel(agent().id, now(), &mut out).expect("cancelled");
    assert_eq!(case.request.status, Status::Cancelled);
    assert_eq!(case.request.decided_at, Some(now()));
    assert_eq!(kinds(&out), [Kind::RequestCancelled]);
    assert_eq!(out[0].event.data(), json!({"result": null}));
}

#[test]
fn another_agent_cannot_cancel_start_or_report() {
    let mut case = pending(1);
    let mut out = Vec::new();
    assert_eq!(case.cancel(other_agent(), now(), &mut out), Err(Refusal::NotYours));
    assert_eq!(case.start(other_agent(), now(), &mut out), Err(Refusal::NotYours));
    let report = ResultReport {
        status: ExecutionStatus::Executed,
        detail: None,
        receipt: None,
    };
    assert_eq!(
        case.report(other_agent(), &report, now(), &mut out),
        Err(Refusal::NotYours)
    );
    assert!(out.is_empty());
    assert_eq!(case.request.status, Status::Pending);
}

#[test]
fn a_cancel_after_expiry_records_the_expiry_instead() {
    let mut case = pending(1);
    let late = created() + Duration::hours(2);
    let mut out = Vec::new();
    let refused = case.cancel(agent().id, late, &mut out);
    assert!(matches!(
        refused,
        Err(Refusal::Transition(TransitionError {
            from: Status::Expired,
            ..
        }))
    ));
    assert_eq!(case.request.status, Status::Expired);
    assert_eq!(kinds(&out), [Kind::RequestExpired]);
}

#[test]
fn an_approved_request_starts_once() {
    let mut case = pending(1);
    case.decide(&approve(reviewer(1)), now(), &mut Vec::new())
        .expect("approved");
    let mut out = Vec::new();
    case.start(agent().id, now(), &mut out).expect("started");
    assert_eq!(case.request.started_at, Some(now()));
    assert_eq!(kinds(&out), [Kind::RequestStarted]);
    let again = case.start(agent().id, now() + Duration::seconds(1), &mut Vec::new());
    assert_eq!(again, Err(Refusal::AlreadyStarted(now())));
    assert!(again.expect_err("refused").to_string().contains("already used"));
}

#[test]
fn a_pending_request_cannot_start() {
    let mut case = pending(1);
    assert_eq!(
        case.start(agent().id, now(), &mut Vec::new()),
        Err(Refusal::NotApproved(Status::Pending))
    );
}

#[test]
fn a_report_records_the_result_on_an_approved_request() {
    let mut case = pending(1);
    case.decide(&approve(reviewer(1)), now(), &mut Vec::new())
        .expect("approved");
    let report = ResultReport {
        status: ExecutionStatus::Failed,
        detail: Some(json!({"exit": 3})),
        receipt: None,
    };
    let mut out = Vec::new();
    case.report(agent().id, &report, now(), &mut out).expect("reported");
    assert_eq!(case.request.status, Status::Failed);
    assert_eq!(case.request.result, Some(report));
    assert_eq!(case.request.decided_at, Some(now()), "the decision time stays");
    assert_eq!(kinds(&out), [Kind::RequestFailed]);
}

#[test]
fn a_pending_request_cannot_be_reported_executed() {
    let mut case = pending(1);
    let report = ResultReport {
        status: ExecutionStatus::Executed,
        detail: None,
        receipt: None,
    };
    let refused = case.report(agent().id, &report, now(), &mut Vec::new());
    assert!(matches!(refused, Err(Refusal::Transition(_))));
    assert_eq!(case.request.result, None);
}

// ----- the sweeper -------------------------------------------------------------------------

#[test]
fn the_sweeper_expires_a_request_past_its_time() {
    let mut case = pending(1);
    let late = created() + Duration::hours(1);
    let mut out = Vec::new();
    assert!(case.sweep(late, &mut out));
    assert_eq!(case.request.status, Status::Expired);
    assert_eq!(out[0].event.data(), json!({"expires_at": unix_millis(late)}));
}

#[test]
fn the_sweeper_leaves_a_request_in_time_alone() {
    let mut case = pending(1);
    let mut out = Vec::new();
    assert!(!case.sweep(now(), &mut out));
    assert!(out.is_empty());
    assert_eq!(case.request.status, Status::Pending);
}

#[test]
fn the_sweeper_announces_an_escalation_once() {
    let mut escalating = policy(1);
    escalating.escalation = Some(Escalation {
        after_minutes: 30,
        groups: vec!["leads".into()],
        notify: Vec::new(),
    });
    let mut case = Case::open(request_under(escalating)).0;
    let mut out = Vec::new();
    let after = created() + Duration::minutes(31);
    assert!(!case.sweep(after, &mut out));
    assert_eq!(kinds(&out), [Kind::RequestEscalated]);
    assert_eq!(out[0].event.data(), json!({"groups": ["leads"], "policy": "prod"}));
    assert_eq!(case.request.escalates_at, None);
    out.clear();
    case.sweep(after + Duration::minutes(1), &mut out);
    assert!(out.is_empty(), "announced once");
}

#[test]
fn the_sweeper_reminds_once_before_expiry() {
    let mut reminding = policy(1);
    reminding.remind_before = Some("10m".into());
    let mut case = Case::open(request_under(reminding)).0;
    // One hour to live, reminded ten minutes before the end.
    assert_eq!(case.request.remind_at, Some(created() + Duration::minutes(50)));
    let mut out = Vec::new();
    assert!(!case.sweep(created() + Duration::minutes(49), &mut out));
    assert!(out.is_empty(), "not yet");
    assert!(!case.sweep(created() + Duration::minutes(51), &mut out));
    assert_eq!(kinds(&out), [Kind::RequestReminded]);
    assert_eq!(case.request.remind_at, None);
    out.clear();
    case.sweep(created() + Duration::minutes(52), &mut out);
    assert!(out.is_empty(), "reminded once");
}

#[test]
fn no_reminder_for_decided_requests_or_before_creation() {
    let mut reminding = policy(1);
    reminding.remind_before = Some("2h".into());
    assert_eq!(
        request_under(reminding.clone()).remind_at,
        None,
        "would fall before creation"
    );
    reminding.remind_before = Some("10m".into());
    let mut case = Case::open(request_under(reminding)).0;
    case.decide(&approve(reviewer(1)), now(), &mut Vec::new())
        .expect("approved");
    let mut out = Vec::new();
    case.sweep(created() + Duration::minutes(55), &mut out);
    assert!(out.is_empty());
}

#[test]
fn the_sweeper_ignores_decided_requests() {
    let mut case = pending(1);
    case.decide(&approve(reviewer(1)), now(), &mut Vec::new())
        .expect("approved");
    let mut out = Vec::new();
    assert!(!case.sweep(created() + Duration::hours(5), &mut out));
    assert!(out.is_empty());
    assert_eq!(case.request.status, Status::Approved);
}

// ----- properties --------------------------------------------------------------------------

#[derive(Clone, Debug)]
enum Step {
    Approve(u32),
    Deny(u32),
    Cancel,
    Start,
    Report(bool),
    Sweep(i64),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        (1u32..5).prop_map(Step::Approve),
        (1u32..5).prop_map(Step::Deny),
        Just(Step::Cancel),
        Just(Step::Start),
        any::<bool>().prop_map(Step::Report),
        (0i64..120).prop_map(Step::Sweep),
    ]
}

proptest! {
    /// Whatever agents, reviewers and the sweeper do, in any order: a transition changes
    /// the request exactly when it emits events, a final status never changes again, and
    /// the approvals never exceed the distinct approvers.
    #[test]
    fn any_sequence_keeps_the_lifecycle_invariants(steps in proptest::collection::vec(step(), 1..12)) {
        let mut case = pending(2);
        let mut at = now();
        for step in steps {
            at += Duration::minutes(1);
            let before = case.clone();
            let mut out = Vec::new();
            let _ = match &step {
                Step::Approve(n) => case.decide(&approve(reviewer(*n)), at, &mut out).map(|_| ()),
                Step::Deny(n) => case.decide(&ask(reviewer(*n), Verdict::Deny, "no"), at, &mut out).map(|_| ()),
                Step::Cancel => case.cancel(agent().id, at, &mut out),
                Step::Start => case.start(agent().id, at, &mut out),
                Step::Report(ok) => {
                    let status = if *ok { ExecutionStatus::Executed } else { ExecutionStatus::Failed };
                    case.report(agent().id, &ResultReport { status, detail: None, receipt: None }, at, &mut out)
                }
                Step::Sweep(minutes) => {
                    case.sweep(at + Duration::minutes(*minutes), &mut out);
                    Ok(())
                }
            };
            prop_assert_eq!(before != case, !out.is_empty(), "{:?}: changed iff events", step);
            if before.request.status.is_final() {
                prop_assert_eq!(before.request.status, case.request.status);
            }
            let approvers: std::collections::HashSet<&str> = case
                .decisions
                .iter()
                .filter(|d| d.verdict == Verdict::Approve)
                .map(|d| d.reviewer.subject.as_str())
                .collect();
            prop_assert!(case.request.approvals as usize <= approvers.len());
            for entry in &out {
                prop_assert_eq!(entry.request, Some(case.request.id));
            }
        }
    }
}
