//! Who may decide, and what a decision does: the rules that hold everywhere, as pure
//! functions (see ARCHITECTURE.md).

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::Status;
use super::route::{DecideIn, Route};

/// A person as the OpenID Provider described them at sign-in.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    pub issuer: String,
    pub subject: String,
    pub email: Option<String>,
    /// Whether the provider vouched for `email` (its `email_verified` claim, or the
    /// operator's word for the provider). Identities recorded before this existed read as
    /// unverified, which fails closed.
    #[serde(default)]
    pub email_verified: bool,
    pub name: Option<String>,
    #[serde(default)]
    pub groups: Vec<String>,
}

/// Whether a request's party reference (`on_behalf_of`, the agent's owner) names a person.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PartyMatch {
    Named,
    NotNamed,
    /// The reference is an email address and the person has no verified one: nobody can
    /// tell whether it is them.
    Unknown,
}

impl Identity {
    /// One person is one vote: the same provider account, or the same email address
    /// under another provider account. Any email counts here, verified or not: a false
    /// match can only cost a vote, never add one.
    pub fn same_person(&self, other: &Identity) -> bool {
        (self.issuer == other.issuer && self.subject == other.subject)
            || matches!((&self.email, &other.email), (Some(a), Some(b)) if a.eq_ignore_ascii_case(b))
    }

    /// The email address, only if the provider vouched for it.
    pub fn verified_email(&self) -> Option<&str> {
        self.email.as_deref().filter(|_| self.email_verified)
    }

    /// Whether `reference` (an email address or a subject, as agents write
    /// `on_behalf_of` and as agent owners are recorded) names this person. It fails
    /// closed: any email of theirs that matches names them, but only a verified email
    /// that differs clears them.
    pub fn party_match(&self, reference: &str) -> PartyMatch {
        let reference = reference.trim();
        if reference.is_empty() {
            return PartyMatch::NotNamed;
        }
        let email_matches = self
            .email
            .as_deref()
            .is_some_and(|email| email.trim().eq_ignore_ascii_case(reference));
        if reference == self.subject || email_matches {
            PartyMatch::Named
        } else if self.verified_email().is_some() || !reference.contains('@') {
            PartyMatch::NotNamed
        } else {
            PartyMatch::Unknown
        }
    }

    pub fn display_name(&self) -> &str {
        self.name.as_deref().or(self.email.as_deref()).unwrap_or(&self.subject)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Approve,
    Deny,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Approve => "approve",
            Verdict::Deny => "deny",
        }
    }

    pub fn parse(s: &str) -> Option<Verdict> {
        match s {
            "approve" => Some(Verdict::Approve),
            "deny" => Some(Verdict::Deny),
            _ => None,
        }
    }
}

/// Where a decision was made; recorded with it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    Web,
    Terminal,
    Api,
    /// A button or modal in Slack, by a Slack user linked to their SSO identity.
    Slack,
}

impl Channel {
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Web => "web",
            Channel::Terminal => "terminal",
            Channel::Api => "api",
            Channel::Slack => "slack",
        }
    }

    pub fn parse(s: &str) -> Option<Channel> {
        match s {
            "web" => Some(Channel::Web),
            "terminal" => Some(Channel::Terminal),
            "api" => Some(Channel::Api),
            "slack" => Some(Channel::Slack),
            _ => None,
        }
    }
}

/// The policy that matched a request, frozen on the request when it was created so a
/// later policy edit cannot change what an in-flight request needs. Requests stored
/// before policies existed read with the defaults of the newer fields.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicySnapshot {
    pub name: String,
    pub version: i64,
    pub approvals_required: u32,
    /// Groups whose members may decide. A reviewer in none of them is not eligible.
    pub approver_groups: Vec<String>,
    /// The stored policy's id; none for the default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default)]
    pub effect: EffectKind,
    /// Why it matched: which patterns, labels, condition.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub why: Vec<String>,
    /// What the agent is told when the policy denies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deny_reason: Option<String>,
    /// At least one approver from each of these groups.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub one_from_each: Vec<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub comment_required: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub escalation: Option<Escalation>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grants: Option<GrantTerms>,
    /// Admins (email or subject) who may approve their own request in an emergency.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub break_glass: Vec<String>,
    /// Where the request's notices go; the server's default routes when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notify: Vec<String>,
    #[serde(default, skip_serializing_if = "DecideIn::is_anywhere")]
    pub decide_in: DecideIn,
    /// How long before expiry a reminder goes out, as the policy wrote it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remind_before: Option<String>,
}

impl PolicySnapshot {
    /// `approvals_required` from `approver_groups` and nothing more.
    pub fn simple(name: &str, approvals_required: u32, approver_groups: Vec<String>) -> PolicySnapshot {
        PolicySnapshot {
            name: name.into(),
            version: 0,
            approvals_required,
            approver_groups,
            id: None,
            effect: EffectKind::RequireApproval,
            why: Vec::new(),
            deny_reason: None,
            one_from_each: Vec::new(),
            comment_required: false,
            escalation: None,
            grants: None,
            break_glass: Vec::new(),
            notify: Vec::new(),
            decide_in: DecideIn::Anywhere,
            remind_before: None,
        }
    }

    /// The request's own routes (the policy's), each readable; the server adds its default
    /// routes when there are none.
    pub fn routes(&self) -> Vec<Route> {
        self.notify.iter().filter_map(|route| route.parse().ok()).collect()
    }

    /// Where the escalation notice goes: the escalation's routes, else the request's.
    pub fn escalation_routes(&self) -> Vec<Route> {
        match &self.escalation {
            Some(escalation) if !escalation.notify.is_empty() => escalation
                .notify
                .iter()
                .filter_map(|route| route.parse().ok())
                .collect(),
            _ => self.routes(),
        }
    }

    /// When the reminder before expiry is due, if the policy asks for one and it falls
    /// after `created_at`.
    pub fn remind_at(&self, created_at: OffsetDateTime, expires_at: OffsetDateTime) -> Option<OffsetDateTime> {
        let before = parse_duration(self.remind_before.as_deref()?)?;
        let at = expires_at - time::Duration::seconds(i64::try_from(before).ok()?);
        (at > created_at).then_some(at)
    }

    /// When eligibility widens to the escalation groups, if it does.
    pub fn escalates_at(&self, created_at: OffsetDateTime) -> Option<OffsetDateTime> {
        self.escalation
            .as_ref()
            .map(|escalation| created_at + time::Duration::minutes(i64::from(escalation.after_minutes)))
    }

    /// Whether `reviewer` is one of the admins this policy lets approve their own request.
    pub fn allows_break_glass(&self, reviewer: &Identity) -> bool {
        self.break_glass.iter().any(|named| {
            let named = named.trim();
            named == reviewer.subject
                || reviewer
                    .verified_email()
                    .is_some_and(|email| email.eq_ignore_ascii_case(named))
        })
    }
}

/// What a policy does with a request.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EffectKind {
    Allow,
    Deny,
    #[default]
    RequireApproval,
}

impl EffectKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EffectKind::Allow => "allow",
            EffectKind::Deny => "deny",
            EffectKind::RequireApproval => "require_approval",
        }
    }
}

/// After `after_minutes` pending, members of `groups` may approve too.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Escalation {
    pub after_minutes: u32,
    pub groups: Vec<String>,
    /// Where the escalation notice goes (routes such as `slack:#oncall`); the request's
    /// routes when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notify: Vec<String>,
}

/// How far a grant may reach: at most `max_duration` (e.g. `8h`) and `max_uses` uses.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GrantTerms {
    pub max_duration: String,
    pub max_uses: u32,
}

/// Durations as admins write them: `90s`, `30m`, `8h`, `2d`, or combined `1h30m`.
pub fn parse_duration(text: &str) -> Option<u64> {
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    let mut total: u64 = 0;
    let mut number = String::new();
    for c in text.chars() {
        if c.is_ascii_digit() {
            number.push(c);
            continue;
        }
        let unit = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            ' ' => continue,
            _ => return None,
        };
        let n: u64 = number.parse().ok()?;
        total = total.checked_add(n.checked_mul(unit)?)?;
        number.clear();
    }
    if !number.is_empty() {
        return None;
    }
    Some(total)
}

impl GrantTerms {
    pub fn max_duration_s(&self) -> u64 {
        parse_duration(&self.max_duration).unwrap_or(0)
    }
}

/// The humans a request is for: none of them may decide it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RequestParties {
    pub on_behalf_of: Option<String>,
    pub agent_owner: Option<String>,
}

/// A decision already recorded on the request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ballot {
    pub reviewer: Identity,
    pub verdict: Verdict,
}

/// What recording a decision does to the request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Still pending, with this many distinct approvals counted.
    Pending {
        approvals: u32,
    },
    Approved,
    Denied,
}

impl Outcome {
    pub fn status(self) -> Status {
        match self {
            Outcome::Pending { .. } => Status::Pending,
            Outcome::Approved => Status::Approved,
            Outcome::Denied => Status::Denied,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RuleError {
    #[error("the request is already {0}; only pending requests can be decided")]
    NotPending(Status),
    #[error("the request expired before this decision; expired requests cannot be decided")]
    Expired,
    /// Says nothing of which groups may decide: that is not for outsiders to learn.
    #[error("you are not an approver for this request")]
    NotEligible,
    #[error("you cannot decide a request made for you or by your agent")]
    OwnRequest,
    #[error(
        "Signoff cannot tell whether this request is yours: it names people by email, and your sign-in \
         carries no email address your provider has verified. Ask an administrator to have the provider \
         send a verified email"
    )]
    PartyUnknown,
    #[error("you have already decided this request; one person has one vote")]
    AlreadyDecided,
    #[error("a deny needs a comment saying why")]
    CommentRequired,
    #[error("this request's policy needs a comment with each approval")]
    ApprovalCommentRequired,
    #[error("this request's policy does not let you approve your own request (break-glass is not allowed to you)")]
    BreakGlassNotAllowed,
    #[error("a break-glass approval needs a comment saying why it is an emergency")]
    BreakGlassCommentRequired,
    #[error(
        "break-glass is for your own request only (made for you or by your agent); \
         decide other people's requests as a reviewer"
    )]
    BreakGlassNotOwnRequest,
    #[error("a break-glass approval cannot carry a grant: each emergency is approved on its own")]
    BreakGlassWithGrant,
}

/// The request as a decision sees it.
#[derive(Clone, Copy, Debug)]
pub struct DecisionContext<'a> {
    pub status: Status,
    pub created_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
    pub policy: &'a PolicySnapshot,
    pub parties: &'a RequestParties,
    pub ballots: &'a [Ballot],
}

/// Whether `reviewer` may decide the request at `now`: pending, not expired, not a
/// party to it, an approver under its policy, not voted yet. Admins are not exempt.
pub fn check_eligibility(
    request: DecisionContext<'_>,
    reviewer: &Identity,
    now: OffsetDateTime,
) -> Result<(), RuleError> {
    if request.status != Status::Pending {
        return Err(RuleError::NotPending(request.status));
    }
    if now >= request.expires_at {
        return Err(RuleError::Expired);
    }
    let parties = request.parties;
    let matches: Vec<PartyMatch> = [&parties.on_behalf_of, &parties.agent_owner]
        .into_iter()
        .flatten()
        .map(|party| reviewer.party_match(party))
        .collect();
    if matches.contains(&PartyMatch::Named) {
        return Err(RuleError::OwnRequest);
    }
    if matches.contains(&PartyMatch::Unknown) {
        return Err(RuleError::PartyUnknown);
    }
    if !in_approver_groups(request, reviewer, now) {
        return Err(RuleError::NotEligible);
    }
    if request
        .ballots
        .iter()
        .any(|ballot| ballot.reviewer.same_person(reviewer))
    {
        return Err(RuleError::AlreadyDecided);
    }
    Ok(())
}

/// Whether `reviewer` is in the policy's approver groups, or, once the request has
/// escalated, its escalation groups.
fn in_approver_groups(request: DecisionContext<'_>, reviewer: &Identity, now: OffsetDateTime) -> bool {
    let policy = request.policy;
    let escalated = policy
        .escalates_at(request.created_at)
        .is_some_and(|at| now >= at)
        .then(|| policy.escalation.as_ref().map(|e| e.groups.as_slice()))
        .flatten()
        .unwrap_or_default();
    reviewer
        .groups
        .iter()
        .any(|group| policy.approver_groups.contains(group) || escalated.contains(group))
}

/// Checks every rule for `reviewer` deciding `verdict` at `now`, and says what the
/// decision does. Deny wins: any eligible deny ends the request. Quorum counts distinct
/// people, and nobody is exempt (admins included).
pub fn evaluate(
    request: DecisionContext<'_>,
    reviewer: &Identity,
    verdict: Verdict,
    comment: &str,
    now: OffsetDateTime,
) -> Result<Outcome, RuleError> {
    check_eligibility(request, reviewer, now)?;
    if verdict == Verdict::Deny {
        if comment.trim().is_empty() {
            return Err(RuleError::CommentRequired);
        }
        return Ok(Outcome::Denied);
    }
    if request.policy.comment_required && comment.trim().is_empty() {
        return Err(RuleError::ApprovalCommentRequired);
    }
    let approvals = 1 + count_distinct_approvals(request.ballots);
    let approvers: Vec<&Identity> = request
        .ballots
        .iter()
        .filter(|ballot| ballot.verdict == Verdict::Approve)
        .map(|ballot| &ballot.reviewer)
        .chain([reviewer])
        .collect();
    let each_group_covered = request
        .policy
        .one_from_each
        .iter()
        .all(|group| approvers.iter().any(|approver| approver.groups.contains(group)));
    if approvals >= request.policy.approvals_required.max(1) && each_group_covered {
        Ok(Outcome::Approved)
    } else {
        Ok(Outcome::Pending { approvals })
    }
}

/// A break-glass approval: an admin the policy names approves their own request (made for
/// them or by their agent) in an emergency. It approves at once and needs a comment; the
/// caller marks the request and opens a follow-up for another admin. Everything else still
/// holds: pending, not expired, one vote per person; and it is never for someone else's
/// request, where the policy's quorum stands.
pub fn evaluate_break_glass(
    request: DecisionContext<'_>,
    reviewer: &Identity,
    comment: &str,
    now: OffsetDateTime,
) -> Result<Outcome, RuleError> {
    if request.status != Status::Pending {
        return Err(RuleError::NotPending(request.status));
    }
    if now >= request.expires_at {
        return Err(RuleError::Expired);
    }
    if !request.policy.allows_break_glass(reviewer) {
        return Err(RuleError::BreakGlassNotAllowed);
    }
    // The exception is to "no self-approval", nothing more: on anyone else's request
    // the quorum holds, admins included.
    let own = [&request.parties.on_behalf_of, &request.parties.agent_owner]
        .into_iter()
        .flatten()
        .any(|party| reviewer.party_match(party) == PartyMatch::Named);
    if !own {
        return Err(RuleError::BreakGlassNotOwnRequest);
    }
    if request
        .ballots
        .iter()
        .any(|ballot| ballot.reviewer.same_person(reviewer))
    {
        return Err(RuleError::AlreadyDecided);
    }
    if comment.trim().is_empty() {
        return Err(RuleError::BreakGlassCommentRequired);
    }
    Ok(Outcome::Approved)
}

/// Distinct people among the approvals recorded so far.
pub fn count_distinct_approvals(ballots: &[Ballot]) -> u32 {
    let mut counted: Vec<&Identity> = Vec::new();
    for ballot in ballots.iter().filter(|b| b.verdict == Verdict::Approve) {
        if !counted.iter().any(|seen| seen.same_person(&ballot.reviewer)) {
            counted.push(&ballot.reviewer);
        }
    }
    counted.len() as u32
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use time::Duration;

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

    fn policy(required: u32) -> PolicySnapshot {
        PolicySnapshot::simple("default", required, vec!["reviewers".into()])
    }

    fn now() -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_800_000_000).expect("valid timestamp")
    }

    fn decide(
        policy: &PolicySnapshot,
        parties: &RequestParties,
        ballots: &[Ballot],
        reviewer: &Identity,
        verdict: Verdict,
        comment: &str,
    ) -> Result<Outcome, RuleError> {
        let request = DecisionContext {
            status: Status::Pending,
            created_at: now() - Duration::minutes(5),
            expires_at: now() + Duration::hours(1),
            policy,
            parties,
            ballots,
        };
        evaluate(request, reviewer, verdict, comment, now())
    }

    #[test]
    fn one_approval_approves_a_one_approval_policy() {
        let outcome = decide(
            &policy(1),
            &RequestParties::default(),
            &[],
            &person(1, &["reviewers"]),
            Verdict::Approve,
            "",
        );
        assert_eq!(outcome, Ok(Outcome::Approved));
    }

    #[test]
    fn deny_needs_a_comment_and_wins() {
        let parties = RequestParties::default();
        let ballots = [Ballot {
            reviewer: person(1, &["reviewers"]),
            verdict: Verdict::Approve,
        }];
        let reviewer = person(2, &["reviewers"]);
        assert_eq!(
            decide(&policy(3), &parties, &ballots, &reviewer, Verdict::Deny, "  "),
            Err(RuleError::CommentRequired)
        );
        assert_eq!(
            decide(&policy(3), &parties, &ballots, &reviewer, Verdict::Deny, "too risky"),
            Ok(Outcome::Denied)
        );
    }

    #[test]
    fn nobody_decides_their_own_request_not_even_an_admin() {
        let admin = person(7, &["reviewers", "admins"]);
        let by_email = RequestParties {
            on_behalf_of: Some("USER7@example.com".into()),
            agent_owner: None,
        };
        let by_subject = RequestParties {
            on_behalf_of: Some("user-7".into()),
            agent_owner: None,
        };
        let owner = RequestParties {
            on_behalf_of: None,
            agent_owner: Some("user7@example.com".into()),
        };
        for parties in [by_email, by_subject, owner] {
            assert_eq!(
                decide(&policy(1), &parties, &[], &admin, Verdict::Approve, ""),
                Err(RuleError::OwnRequest)
            );
        }
    }

    #[test]
    fn party_status_fails_closed_without_a_verified_email() {
        let named = RequestParties {
            on_behalf_of: Some("someone@example.com".into()),
            agent_owner: None,
        };
        let mut unverified = person(5, &["reviewers"]);
        unverified.email_verified = false;
        let mut no_email = person(6, &["reviewers"]);
        no_email.email = None;
        for reviewer in [&unverified, &no_email] {
            assert_eq!(
                decide(&policy(1), &named, &[], reviewer, Verdict::Approve, ""),
                Err(RuleError::PartyUnknown)
            );
            // With no party named by email, there is nothing to be unsure of.
            assert_eq!(
                decide(
                    &policy(1),
                    &RequestParties::default(),
                    &[],
                    reviewer,
                    Verdict::Approve,
                    ""
                ),
                Ok(Outcome::Approved)
            );
        }
        // An unverified email that matches still names its holder: claiming it only
        // blocks oneself.
        let own = RequestParties {
            on_behalf_of: Some("User5@Example.com".into()),
            agent_owner: None,
        };
        assert_eq!(
            decide(&policy(1), &own, &[], &unverified, Verdict::Approve, ""),
            Err(RuleError::OwnRequest)
        );
        // A verified email that differs clears the reviewer.
        assert_eq!(
            decide(
                &policy(1),
                &named,
                &[],
                &person(7, &["reviewers"]),
                Verdict::Approve,
                ""
            ),
            Ok(Outcome::Approved)
        );
    }

    #[test]
    fn the_not_eligible_refusal_names_no_groups() {
        let refusal = decide(
            &policy(1),
            &RequestParties::default(),
            &[],
            &person(3, &["staff"]),
            Verdict::Approve,
            "",
        )
        .expect_err("outsider");
        assert!(!refusal.to_string().contains("reviewers"), "{refusal}");
    }

    #[test]
    fn outsiders_and_second_votes_and_late_decisions_are_refused() {
        let parties = RequestParties::default();
        let outsider = person(3, &["staff"]);
        assert!(matches!(
            decide(&policy(1), &parties, &[], &outsider, Verdict::Approve, ""),
            Err(RuleError::NotEligible)
        ));

        let reviewer = person(4, &["reviewers"]);
        let mut same_email = person(99, &["reviewers"]);
        same_email.issuer = "https://other-idp.example.com".into();
        same_email.email = reviewer.email.clone();
        let ballots = [Ballot {
            reviewer: same_email,
            verdict: Verdict::Approve,
        }];
        assert_eq!(
            decide(&policy(2), &parties, &ballots, &reviewer, Verdict::Deny, "no"),
            Err(RuleError::AlreadyDecided)
        );

        let pol = policy(1);
        let late = DecisionContext {
            status: Status::Pending,
            created_at: now() - Duration::hours(1),
            expires_at: now(),
            policy: &pol,
            parties: &parties,
            ballots: &[],
        };
        assert_eq!(
            evaluate(late, &reviewer, Verdict::Approve, "", now()),
            Err(RuleError::Expired)
        );
        let done = DecisionContext {
            status: Status::Denied,
            ..late
        };
        assert_eq!(
            evaluate(done, &reviewer, Verdict::Approve, "", now()),
            Err(RuleError::NotPending(Status::Denied))
        );
    }

    #[test]
    fn one_from_each_group_holds_the_request_until_covered() {
        let mut pol = policy(2);
        pol.approver_groups = vec!["peers".into(), "leads".into()];
        pol.one_from_each = vec!["leads".into()];
        let parties = RequestParties::default();
        let peers = [Ballot {
            reviewer: person(1, &["peers"]),
            verdict: Verdict::Approve,
        }];
        assert_eq!(
            decide(&pol, &parties, &peers, &person(2, &["peers"]), Verdict::Approve, ""),
            Ok(Outcome::Pending { approvals: 2 })
        );
        assert_eq!(
            decide(&pol, &parties, &peers, &person(3, &["leads"]), Verdict::Approve, ""),
            Ok(Outcome::Approved)
        );
    }

    #[test]
    fn a_policy_may_require_a_comment_on_approvals() {
        let mut pol = policy(1);
        pol.comment_required = true;
        let reviewer = person(1, &["reviewers"]);
        let parties = RequestParties::default();
        assert_eq!(
            decide(&pol, &parties, &[], &reviewer, Verdict::Approve, " "),
            Err(RuleError::ApprovalCommentRequired)
        );
        assert_eq!(
            decide(&pol, &parties, &[], &reviewer, Verdict::Approve, "ok"),
            Ok(Outcome::Approved)
        );
    }

    #[test]
    fn escalation_widens_eligibility_only_after_its_time() {
        let mut pol = policy(1);
        pol.escalation = Some(Escalation {
            after_minutes: 10,
            groups: vec!["oncall".into()],
            notify: Vec::new(),
        });
        let parties = RequestParties::default();
        let oncall = person(4, &["oncall"]);
        let context = |created_at| DecisionContext {
            status: Status::Pending,
            created_at,
            expires_at: now() + Duration::hours(1),
            policy: &pol,
            parties: &parties,
            ballots: &[],
        };
        assert_eq!(
            check_eligibility(context(now() - Duration::minutes(9)), &oncall, now()),
            Err(RuleError::NotEligible)
        );
        assert_eq!(
            check_eligibility(context(now() - Duration::minutes(10)), &oncall, now()),
            Ok(())
        );
    }

    #[test]
    fn break_glass_is_for_the_named_with_a_comment() {
        let mut pol = policy(2);
        pol.break_glass = vec!["user1@example.com".into()];
        let parties = RequestParties {
            on_behalf_of: Some("user1@example.com".into()),
            agent_owner: None,
        };
        let context = DecisionContext {
            status: Status::Pending,
            created_at: now(),
            expires_at: now() + Duration::hours(1),
            policy: &pol,
            parties: &parties,
            ballots: &[],
        };
        let named = person(1, &["admins"]);
        assert_eq!(
            evaluate_break_glass(context, &named, "", now()),
            Err(RuleError::BreakGlassCommentRequired)
        );
        assert_eq!(
            evaluate_break_glass(context, &named, "outage", now()),
            Ok(Outcome::Approved)
        );
        assert_eq!(
            evaluate_break_glass(context, &person(2, &["admins"]), "outage", now()),
            Err(RuleError::BreakGlassNotAllowed)
        );
        // An unverified email does not name anyone for break-glass.
        let mut unverified = named.clone();
        unverified.email_verified = false;
        assert_eq!(
            evaluate_break_glass(context, &unverified, "outage", now()),
            Err(RuleError::BreakGlassNotAllowed)
        );
        let expired = DecisionContext {
            expires_at: now(),
            ..context
        };
        assert_eq!(
            evaluate_break_glass(expired, &named, "outage", now()),
            Err(RuleError::Expired)
        );
    }

    #[test]
    fn break_glass_is_for_ones_own_request_only_and_one_vote() {
        let mut pol = policy(3);
        pol.break_glass = vec!["user1@example.com".into()];
        let someone_else = RequestParties {
            on_behalf_of: Some("user7@example.com".into()),
            agent_owner: None,
        };
        let context = DecisionContext {
            status: Status::Pending,
            created_at: now(),
            expires_at: now() + Duration::hours(1),
            policy: &pol,
            parties: &someone_else,
            ballots: &[],
        };
        let named = person(1, &["admins"]);
        assert_eq!(
            evaluate_break_glass(context, &named, "outage", now()),
            Err(RuleError::BreakGlassNotOwnRequest)
        );
        let by_my_agent = RequestParties {
            on_behalf_of: None,
            agent_owner: Some("user1@example.com".into()),
        };
        let mine = DecisionContext {
            parties: &by_my_agent,
            ..context
        };
        assert_eq!(
            evaluate_break_glass(mine, &named, "outage", now()),
            Ok(Outcome::Approved)
        );
        let voted = [Ballot {
            reviewer: named.clone(),
            verdict: Verdict::Approve,
        }];
        let after_my_vote = DecisionContext {
            ballots: &voted,
            ..mine
        };
        assert_eq!(
            evaluate_break_glass(after_my_vote, &named, "outage", now()),
            Err(RuleError::AlreadyDecided)
        );
    }

    proptest! {
        /// However approvals arrive, the request is approved exactly when the number of
        /// distinct eligible people reaches the quorum, never before, and a person's
        /// second attempt is always refused.
        #[test]
        fn quorum_counts_distinct_people(required in 1u32..6, voters in proptest::collection::vec(0u32..8, 1..20)) {
            let pol = policy(required);
            let parties = RequestParties::default();
            let mut ballots: Vec<Ballot> = Vec::new();
            let mut approved = false;
            for voter in voters {
                let reviewer = person(voter, &["reviewers"]);
                let outcome = decide(&pol, &parties, &ballots, &reviewer, Verdict::Approve, "");
                if approved {
                    // The caller stops at approval; the pure rule still refuses repeats.
                    continue;
                }
                let already = ballots.iter().any(|b| b.reviewer.same_person(&reviewer));
                match outcome {
                    Err(RuleError::AlreadyDecided) => prop_assert!(already),
                    Ok(Outcome::Pending { approvals }) => {
                        prop_assert!(!already);
                        prop_assert!(approvals < required);
                        ballots.push(Ballot { reviewer, verdict: Verdict::Approve });
                        prop_assert_eq!(count_distinct_approvals(&ballots), approvals);
                    }
                    Ok(Outcome::Approved) => {
                        prop_assert!(!already);
                        ballots.push(Ballot { reviewer, verdict: Verdict::Approve });
                        prop_assert_eq!(count_distinct_approvals(&ballots), required);
                        approved = true;
                    }
                    other => prop_assert!(false, "unexpected {:?}", other),
                }
            }
            prop_assert_eq!(approved, ballots.len() as u32 >= required);
        }

        /// A deny from any eligible non-party with a comment ends a pending request,
        /// whatever approvals came before.
        #[test]
        fn an_eligible_deny_always_wins(required in 1u32..6, approvers in 0u32..5) {
            let pol = policy(required + approvers);
            let parties = RequestParties::default();
            let ballots: Vec<Ballot> = (0..approvers)
                .map(|n| Ballot { reviewer: person(n, &["reviewers"]), verdict: Verdict::Approve })
                .collect();
            let outcome = decide(&pol, &parties, &ballots, &person(100, &["reviewers"]), Verdict::Deny, "no");
            prop_assert_eq!(outcome, Ok(Outcome::Denied));
        }
    }
}
