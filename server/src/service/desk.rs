//! Role-carrying handles: what a signed-in person may read and do, handed out by the
//! service, so the role rules live here and the doors never reach the store. A door gets a
//! [`Desk`] for anyone with a role and an [`AdminDesk`] only through the admin extractor
//! (see ARCHITECTURE.md, "Who may do what").

use std::collections::HashMap;

use time::OffsetDateTime;

use signoff_app::wire::{DecisionInput, ReviewView, Role};
use signoff_app::{AgentId, Channel, Identity, RequestId};

use super::{Service, now};
use crate::store::{
    AgentSummary, AuditEvent, AuditQuery, DeviceCodeInfo, Followup, GrantRecord, PolicyVersion, StoredPolicy,
    TokenRecord,
};
use crate::{Error, Result};

/// A person with a role in Signoff, at the service.
pub struct Desk<'a> {
    service: &'a Service,
    who: &'a Identity,
    reviewer: bool,
    admin: bool,
}

/// An admin, at the service.
pub struct AdminDesk<'a> {
    service: &'a Service,
}

impl Service {
    /// The desk of `who`, with the roles they hold.
    pub fn desk<'a>(&'a self, who: &'a Identity, roles: &[Role]) -> Desk<'a> {
        Desk {
            service: self,
            who,
            reviewer: roles.contains(&Role::Reviewer),
            admin: roles.contains(&Role::Admin),
        }
    }

    /// An admin's desk. Only the admin extractors (which checked the role) call this.
    pub fn admin_desk(&self) -> AdminDesk<'_> {
        AdminDesk { service: self }
    }
}

impl Service {
    /// The terminal token `token` stands for, if it is valid now.
    pub async fn terminal_token(&self, token: &str) -> Result<Option<TokenRecord>> {
        self.terminal_token_by_hash(&crate::keys::hash(token)).await
    }

    /// [`Service::terminal_token`], from the token's hash.
    pub async fn terminal_token_by_hash(&self, token_hash: &str) -> Result<Option<TokenRecord>> {
        self.store().terminal_token(token_hash, now()).await
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

impl Desk<'_> {
    /// Decides a request under every rule of the lifecycle; break-glass only for admins.
    pub async fn decide(&self, id: RequestId, input: &DecisionInput, channel: Channel) -> Result<ReviewView> {
        if !self.reviewer {
            return Err(Error::Forbidden("deciding needs the reviewer role".into()));
        }
        if input.break_glass && !self.admin {
            return Err(Error::Forbidden(
                "break-glass is for admins the request's policy names".into(),
            ));
        }
        self.service.decide_and_review(self.who, id, input, channel).await
    }

    /// A request and what this person may do with it, and whether break-glass is theirs
    /// to offer (only ever for an admin).
    pub async fn review(&self, id: RequestId) -> Result<(ReviewView, bool)> {
        let (review, break_glass) = self.service.review_offering_break_glass(self.who, id).await?;
        Ok((review, break_glass && self.admin))
    }

    /// A request's audit events, oldest first.
    pub async fn timeline(&self, id: RequestId) -> Result<Vec<AuditEvent>> {
        self.service.store().audit_events_for(id).await
    }

    /// How many requests wait.
    pub async fn pending_count(&self) -> Result<i64> {
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

    /// Terminal tokens: one's own, or (admins only) everyone's.
    pub async fn tokens(&self, everyone: bool) -> Result<Vec<TokenRecord>> {
        if everyone && !self.admin {
            return Err(Error::Forbidden(
                "listing everyone's tokens needs the admin role".into(),
            ));
        }
        let owner = (!everyone).then_some((self.who.issuer.as_str(), self.who.subject.as_str()));
        self.service.store().terminal_tokens(owner, now()).await
    }

    /// Request events after `seq` (for a live view resuming), up to `limit`.
    pub async fn events_after(&self, seq: i64, limit: i64) -> Result<Vec<(i64, String, RequestId)>> {
        self.service.store().request_events_after(seq, limit).await
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

    /// Every stored version of a policy, newest first.
    pub async fn policy_versions(&self, id: &str) -> Result<Vec<PolicyVersion>> {
        self.service.store().policy_versions(id).await
    }

    /// Grants, all of them or those active at `at`.
    pub async fn grants(&self, active_at: Option<OffsetDateTime>) -> Result<Vec<GrantRecord>> {
        self.service.store().grants(active_at).await
    }

    pub async fn audit(&self, query: &AuditQuery) -> Result<Vec<AuditEvent>> {
        self.service.store().audit_search(query).await
    }

    /// The agents, and when each last asked for something.
    pub async fn agents(&self) -> Result<(Vec<AgentSummary>, HashMap<AgentId, OffsetDateTime>)> {
        let store = self.service.store();
        Ok((store.list_agents().await?, store.agents_last_request().await?))
    }
}
