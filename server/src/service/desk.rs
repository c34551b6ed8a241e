//! Role-carrying handles: what a signed-in person may read and do, handed out by the
//! service, so the role rules live here and the doors never reach the store. A door gets a
//! [`Desk`] for anyone with a role and an [`AdminDesk`] only through the admin extractor
//! (see ARCHITECTURE.md, "Who may do what").

use std::collections::HashMap;
use std::sync::Arc;

use time::OffsetDateTime;

use signoff_app::policy::{Matched, PolicyDoc, PolicySet, RequestFacts};
use signoff_app::wire::{DecisionInput, RequestPage, ReviewView, Role};
use signoff_app::{AgentId, Channel, Identity, PolicySnapshot, RequestId};

use super::{Service, WhatIf, now};
use crate::engine::Held;
use crate::store::{
    Actor, Agent, AgentSummary, AuditEvent, AuditQuery, DeviceCodeInfo, Followup, GrantRecord, KeyIssue, PolicyVersion,
    RequestFilter, StoredPolicy, TokenRecord,
};
use crate::{Error, Result};

/// A signed-in person at the service, with the roles they hold: every read and change a
/// person makes goes through it, and it refuses what their roles do not allow.
pub struct Desk<'a> {
    service: &'a Service,
    who: &'a Identity,
    reviewer: bool,
    admin: bool,
    auditor: bool,
    /// The credential this person called with, checked again by the writer.
    held: Held,
}

/// Someone who may read the audit trail out (an admin or an auditor): only
/// [`Desk::audit`] hands one out. Every read it makes is itself recorded.
pub struct AuditDesk<'a> {
    service: &'a Service,
    who: &'a Identity,
}

/// The most events one console export holds; larger ranges are for `audit export`.
pub const CONSOLE_EXPORT_EVENTS: i64 = 100_000;

/// An admin at the service: only [`Desk::admin`] hands one out, to a person with the
/// admin role.
pub struct AdminDesk<'a> {
    pub(super) service: &'a Service,
    pub(super) who: &'a Identity,
}

impl Service {
    /// The desk of `who`, with the roles they hold.
    pub fn desk<'a>(&'a self, who: &'a Identity, roles: &[Role]) -> Desk<'a> {
        Desk {
            service: self,
            who,
            reviewer: roles.contains(&Role::Reviewer),
            admin: roles.contains(&Role::Admin),
            auditor: roles.contains(&Role::Auditor),
            held: Held::Nothing,
        }
    }

    /// Whether the database answers (for readiness probes).
    pub async fn ping(&self) -> Result<()> {
        self.store().ping().await
    }
}

impl Service {
    /// The terminal token `token` stands for, if it is valid now.
    pub async fn terminal_token(&self, token: &str) -> Result<Option<TokenRecord>> {
        self.terminal_token_by_hash(&crate::keys::hash(token)).await
    }

    /// [`Service::terminal_token`], from the token's hash. From memory: a known token
    /// reads nothing.
    pub async fn terminal_token_by_hash(&self, token_hash: &str) -> Result<Option<TokenRecord>> {
        self.credentials().terminal_token_now(token_hash, now()).await
    }

    /// Starts a terminal sign-in: stores the device code (by its hash) and the user code.
    pub async fn open_device_code(
        &self,
        device_code: &str,
        user_code: &str,
        client_name: Option<&str>,
        client_address: &str,
        lifetime: time::Duration,
    ) -> Result<()> {
        let created = now();
        self.store()
            .insert_device_code(
                &crate::keys::hash(device_code),
                user_code,
                client_name,
                Some(client_address),
                created,
                created + lifetime,
            )
            .await
    }

    /// What a user code stands for, for the person confirming it.
    pub async fn device_code_info(&self, user_code: &str) -> Result<Option<DeviceCodeInfo>> {
        self.store().device_code(user_code).await
    }
}

impl<'a> Desk<'a> {
    /// This desk for a person who called with `held`: their changes are refused once it
    /// no longer stands.
    pub fn holding(self, held: Held) -> Desk<'a> {
        Desk { held, ..self }
    }

    /// The admin's desk, for a person with the admin role.
    pub fn admin(&self) -> Result<AdminDesk<'a>> {
        if !self.admin {
            return Err(Error::Forbidden("this needs the admin role".into()));
        }
        Ok(AdminDesk {
            service: self.service,
            who: self.who,
        })
    }

    /// The audit trail's desk, for admins and auditors.
    pub fn audit(&self) -> Result<AuditDesk<'a>> {
        if !(self.admin || self.auditor) {
            return Err(Error::Forbidden(
                "the audit trail needs the admin or auditor role".into(),
            ));
        }
        Ok(AuditDesk {
            service: self.service,
            who: self.who,
        })
    }

    /// Reading requests needs a role: reviewers and admins read them all.
    pub fn may_read(&self) -> Result<()> {
        if self.reviewer || self.admin {
            Ok(())
        } else {
            Err(Error::Forbidden("you have no role in Signoff".into()))
        }
    }

    /// Deciding needs the reviewer role (and then each request's policy decides).
    pub fn may_decide(&self) -> Result<()> {
        if self.reviewer {
            Ok(())
        } else {
            Err(Error::Forbidden("deciding needs the reviewer role".into()))
        }
    }

    /// Decides a request under every rule of the lifecycle; break-glass only for admins.
    pub async fn decide(&self, id: RequestId, input: &DecisionInput, channel: Channel) -> Result<ReviewView> {
        self.may_decide()?;
        if input.break_glass && !self.admin {
            return Err(Error::Forbidden(
                "break-glass is for admins the request's policy names".into(),
            ));
        }
        self.service
            .decide_and_review(self.who, self.held.clone(), id, input, channel)
            .await
    }

    /// A page of the queue or history as this person sees it; with `needs_my_vote`, only
    /// pending requests they may still decide.
    pub async fn list(&self, filter: RequestFilter, needs_my_vote: bool) -> Result<RequestPage> {
        self.may_read()?;
        self.service.list(self.who, filter, needs_my_vote).await
    }

    /// A request and what this person may do with it.
    pub async fn request(&self, id: RequestId) -> Result<ReviewView> {
        Ok(self.review(id).await?.0)
    }

    /// A request and what this person may do with it, and whether break-glass is theirs
    /// to offer (only ever for an admin).
    pub async fn review(&self, id: RequestId) -> Result<(ReviewView, bool)> {
        self.may_read()?;
        let (review, break_glass) = self.service.review_offering_break_glass(self.who, id).await?;
        Ok((review, break_glass && self.admin))
    }

    /// A request's audit events, oldest first.
    pub async fn timeline(&self, id: RequestId) -> Result<Vec<AuditEvent>> {
        self.may_read()?;
        self.service.store().audit_events_for(id).await
    }

    /// How many requests wait.
    pub async fn pending_count(&self) -> Result<i64> {
        self.may_read()?;
        self.service.store().count_pending().await
    }

    /// Break-glass approvals no other admin acknowledged yet: admins see them at the top
    /// of their queue, others nothing.
    pub async fn open_followups(&self) -> Result<Vec<Followup>> {
        if !self.admin {
            return Ok(Vec::new());
        }
        self.service.store().followups(true).await
    }

    /// Request events after `seq` (for a live view resuming), up to `limit`.
    pub async fn events_after(&self, seq: i64, limit: i64) -> Result<Vec<(i64, String, RequestId)>> {
        self.may_read()?;
        self.service.store().request_events_after(seq, limit).await
    }

    /// Ends a grant this person gave (the engine checks they did); false when it had
    /// ended already.
    pub async fn revoke_given_grant(&self, id: &str) -> Result<bool> {
        self.may_read()?;
        self.service.revoke_grant(id, self.who, false).await
    }

    /// Terminal tokens: one's own, or (admins only) everyone's.
    pub async fn tokens(&self, everyone: bool) -> Result<Vec<TokenRecord>> {
        if everyone && !self.admin {
            return Err(Error::Forbidden(
                "listing everyone's tokens needs the admin role".into(),
            ));
        }
        let owner = (!everyone).then(|| self.owner());
        self.service.store().terminal_tokens(owner, now()).await
    }

    /// Revokes a terminal token of one's own; false when there is no such active token.
    pub async fn revoke_own_token(&self, id: &str) -> Result<bool> {
        self.service
            .revoke_terminal_token(id, Some(self.owner()), self.who)
            .await
    }

    /// Revokes a terminal token: an admin anyone's, anyone else only their own.
    pub async fn revoke_token(&self, id: &str) -> Result<bool> {
        let owner = (!self.admin).then(|| self.owner());
        self.service.revoke_terminal_token(id, owner, self.who).await
    }

    /// Whose tokens are this person's: (issuer, subject).
    fn owner(&self) -> (&'a str, &'a str) {
        (self.who.issuer.as_str(), self.who.subject.as_str())
    }
}

/// What the admin overview counts.
pub struct Overview {
    pub policies: Vec<StoredPolicy>,
    pub active_grants: usize,
    pub followups: Vec<Followup>,
    pub agents: usize,
}

impl AdminDesk<'_> {
    /// What the admin pages open on: policies, active grants, follow-ups, agents.
    pub async fn overview(&self) -> Result<Overview> {
        let store = self.service.store();
        Ok(Overview {
            policies: store.policies().await?,
            active_grants: store.grants(Some(now())).await?.len(),
            followups: store.followups(false).await?,
            agents: store.list_agents().await?.len(),
        })
    }

    /// The policies, in order.
    pub async fn policies(&self) -> Result<Vec<StoredPolicy>> {
        self.service.store().policies().await
    }

    /// One policy as it stands.
    pub async fn policy(&self, id: &str) -> Result<StoredPolicy> {
        self.policies()
            .await?
            .into_iter()
            .find(|policy| policy.id == id)
            .ok_or_else(|| Error::not_found(format_args!("policy {id}")))
    }

    /// Every stored version of a policy, newest first.
    pub async fn policy_versions(&self, id: &str) -> Result<Vec<PolicyVersion>> {
        self.service.store().policy_versions(id).await
    }

    /// Grants, all of them or those active at `at`.
    pub async fn grants(&self, active_at: Option<OffsetDateTime>) -> Result<Vec<GrantRecord>> {
        self.service.store().grants(active_at).await
    }

    /// The agents, and when each last asked for something.
    pub async fn agents(&self) -> Result<(Vec<AgentSummary>, HashMap<AgentId, OffsetDateTime>)> {
        let store = self.service.store();
        Ok((store.list_agents().await?, store.agents_last_request().await?))
    }

    /// The policy set in force.
    pub fn policy_set(&self) -> Arc<PolicySet> {
        self.service.policy_set()
    }

    /// Saves a policy: a new version of `id`, or a new policy at the end.
    pub async fn save_policy(&self, id: Option<&str>, doc: PolicyDoc) -> Result<StoredPolicy> {
        self.service
            .save_policy(id, doc, Actor::Reviewer(self.who.clone()))
            .await
    }

    /// Moves a policy one place earlier or later; false at the end it moves towards.
    pub async fn move_policy(&self, id: &str, earlier: bool) -> Result<bool> {
        self.service.move_policy(id, earlier, self.who).await
    }

    /// What a draft policy set would change over the last `limit` requests.
    pub async fn what_if(&self, draft: Arc<PolicySet>, limit: usize) -> Result<WhatIf> {
        self.service.what_if(draft, limit).await
    }

    /// Which policy in force a request would match now, and why.
    pub fn test_request(&self, request: &RequestFacts<'_>) -> (Matched, PolicySnapshot) {
        self.service.test_request(&self.service.policy_set(), request)
    }

    /// Ends any grant at once; false when it had ended already.
    pub async fn revoke_grant(&self, id: &str) -> Result<bool> {
        self.service.revoke_grant(id, self.who, true).await
    }

    /// Acknowledges another admin's break-glass approval; false when already done.
    pub async fn acknowledge_followup(&self, request: RequestId) -> Result<bool> {
        self.service.acknowledge_followup(request, self.who).await
    }

    /// A new agent with its first key.
    pub async fn create_agent(
        &self,
        name: &str,
        owner: Option<&str>,
        description: Option<&str>,
    ) -> Result<(Agent, String, KeyIssue)> {
        self.service.create_agent(name, owner, description, self.who).await
    }

    /// A new key for the named agent, and how many old keys that revoked.
    pub async fn rotate_agent_key(&self, name: &str) -> Result<(Agent, String, u64)> {
        let rotated = self.service.rotate_agent_key(name, self.who).await?;
        rotated.ok_or_else(|| no_agent(name))
    }

    /// Revokes every key of the named agent: how many.
    pub async fn revoke_agent_keys(&self, name: &str) -> Result<u64> {
        let revoked = self.service.revoke_agent_keys(name, Some(self.who)).await?;
        revoked.ok_or_else(|| no_agent(name))
    }
}

fn no_agent(name: &str) -> Error {
    Error::not_found(format_args!("agent {name}"))
}

impl AuditDesk<'_> {
    /// A page of the trail, recorded as read.
    pub async fn audit(&self, query: &AuditQuery) -> Result<Vec<AuditEvent>> {
        let events = self.service.store().audit_search(query).await?;
        if let (Some(first), Some(last)) = (events.iter().map(|e| e.seq).min(), events.iter().map(|e| e.seq).max()) {
            self.record(first, last, "page").await?;
        }
        Ok(events)
    }

    /// Events at or after `since` and before `until` (Unix milliseconds) in `format`, with
    /// what verifies them offline; recorded as read. Refused past [`CONSOLE_EXPORT_EVENTS`].
    pub async fn export(
        &self,
        since: Option<i64>,
        until: Option<i64>,
        format: crate::evidence::export::Format,
    ) -> Result<Vec<u8>> {
        self.service.checkpoint().await?;
        let store = self.service.store();
        let (from, to) = store.audit_range(since, until).await?;
        if to - from + 1 > CONSOLE_EXPORT_EVENTS {
            return Err(Error::Invalid(format!(
                "that range holds {} events; a download holds at most {CONSOLE_EXPORT_EVENTS}: narrow it, or use `signoff-server audit export`",
                to - from + 1
            )));
        }
        let mut out = Vec::new();
        if to >= from {
            crate::evidence::export::export(store, self.service.evidence(), from, to, format, &mut out).await?;
            self.record(from, to, format.as_str()).await?;
        }
        Ok(out)
    }

    /// The newest checkpoint, and whether the stored tree still has its root.
    pub async fn checkpoint(&self) -> Result<Option<(crate::store::CheckpointRow, bool)>> {
        let store = self.service.store();
        let Some(latest) = store.latest_checkpoint().await? else {
            return Ok(None);
        };
        let root = crate::evidence::root_at(store, latest.tree_size).await?;
        let agrees = signoff_app::evidence::tree::hash_to_base64(&root) == latest.root;
        Ok(Some((latest, agrees)))
    }

    async fn record(&self, from: i64, to: i64, format: &str) -> Result<()> {
        self.service
            .record_audit_read(Actor::Reviewer(self.who.clone()), from, to, format)
            .await
    }
}
