//! Changes that are not to requests: agents and their keys, terminal sign-in and its
//! tokens. They go through the engine like every other change, so their audit events
//! join the one chain in order; each runs its few statements inside the batch.

use time::OffsetDateTime;

use signoff_app::event::{
    AgentKey, AgentKeyRotated, AgentKeysRevoked, AgentOwnerChanged, Empty, GrantRevoked, Owner, PolicyImported,
    PolicyMoved, PolicyVersion, SignIn, TokenIssued, TokenRevoked,
};
use signoff_app::lifecycle::Entry;
use signoff_app::policy::PolicyDoc;
use signoff_app::{AgentId, Event, Identity, RequestId};

use super::Answer;
use super::batch::Chain;
use crate::store::{
    Actor, Agent, DeviceCodeRow, KeyIssue, NewTokenRow, Poll, StoredPolicy, WriteTx, audit_value, millis,
};
use crate::{Error, Result};

/// What an admin change did: answered, refused (nothing written), or changed the
/// policies (the batch then reloads them).
pub(super) enum Applied {
    Done(Answer),
    Refused(Error),
    PoliciesChanged(Answer),
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

pub(super) async fn apply(
    tx: &mut WriteTx,
    chain: &mut Chain,
    now: OffsetDateTime,
    change: &AdminChange,
) -> Result<Applied> {
    match change {
        AdminChange::SavePolicy { id, doc, by } => save_policy(tx, chain, now, id.as_deref(), doc, by).await,
        AdminChange::MovePolicy { id, earlier, by } => {
            let mut order: Vec<String> = tx.policies().await?.into_iter().map(|p| p.id).collect();
            let Some(at) = order.iter().position(|p| p == id) else {
                return Ok(Applied::Refused(Error::not_found(format_args!("policy {id}"))));
            };
            let to = if *earlier {
                at.checked_sub(1)
            } else {
                Some(at + 1).filter(|to| *to < order.len())
            };
            let Some(to) = to else {
                return Ok(Applied::Done(Answer::Done(false)));
            };
            order.swap(at, to);
            tx.set_policy_positions(&order).await?;
            let moved = Event::PolicyMoved(PolicyMoved {
                policy: id.clone(),
                before: at,
                after: to,
            });
            chain.record(Entry::new(now, Actor::Reviewer(by.clone()), None, moved))?;
            Ok(Applied::PoliciesChanged(Answer::Done(true)))
        }
        AdminChange::ImportPolicies { docs, by } => import_policies(tx, chain, now, docs, by).await,
        AdminChange::RevokeGrant { id, by, admin } => {
            let Some(grant) = tx.grant(id).await? else {
                return Ok(Applied::Refused(Error::not_found(format_args!("grant {id}"))));
            };
            if !admin && !grant.granted_by.iter().any(|who| who.same_person(by)) {
                return Ok(Applied::Refused(Error::Forbidden(
                    "only the people who granted it, or an admin, can revoke a grant".into(),
                )));
            }
            if grant.revoked_at.is_some() {
                return Ok(Applied::Done(Answer::Done(false)));
            }
            tx.revoke_grant(id, by, now).await?;
            let revoked = Event::GrantRevoked(GrantRevoked {
                grant: id.clone(),
                uses: grant.uses,
                max_uses: grant.max_uses,
            });
            chain.record(Entry::new(
                now,
                Actor::Reviewer(by.clone()),
                Some(grant.request_id),
                revoked,
            ))?;
            Ok(Applied::Done(Answer::Done(true)))
        }
        AdminChange::AcknowledgeFollowup { request, by } => {
            let Some((opener, open)) = tx.followup(*request).await? else {
                return Ok(Applied::Refused(Error::not_found(format_args!(
                    "follow-up for request {request}"
                ))));
            };
            if opener.same_person(by) {
                return Ok(Applied::Refused(Error::Forbidden(
                    "another admin must acknowledge a break-glass approval, not the one who made it".into(),
                )));
            }
            if !open {
                return Ok(Applied::Done(Answer::Done(false)));
            }
            tx.acknowledge_followup(*request, by, now).await?;
            let acknowledged = Event::FollowupAcknowledged(Empty {});
            chain.record(Entry::new(
                now,
                Actor::Reviewer(by.clone()),
                Some(*request),
                acknowledged,
            ))?;
            Ok(Applied::Done(Answer::Done(true)))
        }
        other => Ok(Applied::Done(apply_access(tx, chain, now, other).await?)),
    }
}

/// Agents, keys and terminal sign-in.
async fn apply_access(
    tx: &mut WriteTx,
    chain: &mut Chain,
    now: OffsetDateTime,
    change: &AdminChange,
) -> Result<Answer> {
    let at = millis(now);
    match change {
        AdminChange::IssueKey {
            name,
            owner,
            key_hash,
            key_prefix,
            description,
            by,
        } => {
            let actor = by.clone().map_or(Actor::Operator, Actor::Reviewer);
            let (agent, issue) = match tx.agent_by_name(name).await? {
                Some(mut agent) => match owner {
                    Some(owner) if agent.owner.as_deref() != Some(owner.as_str()) => {
                        tx.set_agent_owner(agent.id, owner).await?;
                        let previous = agent.owner.replace(owner.clone());
                        let changed = Event::AgentOwnerChanged(AgentOwnerChanged {
                            agent: agent.name.clone(),
                            before: Owner {
                                owner: previous.clone(),
                            },
                            after: Owner {
                                owner: Some(owner.clone()),
                            },
                        });
                        chain.record(Entry::new(now, actor.clone(), None, changed))?;
                        (agent, KeyIssue::OwnerChanged { previous })
                    }
                    _ => (agent, KeyIssue::NewKey),
                },
                None => {
                    let agent = Agent {
                        id: AgentId::new(),
                        name: name.clone(),
                        owner: owner.clone(),
                        created_at: now,
                        key_hash: None,
                    };
                    tx.insert_agent(&agent).await?;
                    (agent, KeyIssue::Created)
                }
            };
            if let Some(description) = description {
                tx.set_agent_description(agent.id, description).await?;
            }
            tx.insert_api_key(agent.id, key_hash, key_prefix, at).await?;
            let key = AgentKey {
                agent: agent.name.clone(),
                owner: agent.owner.clone(),
                description: description.clone(),
                key_prefix: key_prefix.clone(),
            };
            let issued = if issue == KeyIssue::Created {
                Event::AgentCreated(key)
            } else {
                Event::AgentKeyIssued(key)
            };
            chain.record(Entry::new(now, actor, None, issued))?;
            Ok(Answer::KeyIssued(agent, issue))
        }
        AdminChange::RevokeKeys { name, by } => {
            let actor = by.clone().map_or(Actor::Operator, Actor::Reviewer);
            let Some(agent) = tx.agent_by_name(name).await? else {
                return Ok(Answer::KeysRevoked(None));
            };
            let revoked = tx.revoke_api_keys(agent.id, at).await?;
            let revoked_keys = Event::AgentKeysRevoked(AgentKeysRevoked {
                agent: name.clone(),
                keys_revoked: revoked,
            });
            chain.record(Entry::new(now, actor, None, revoked_keys))?;
            Ok(Answer::KeysRevoked(Some(revoked)))
        }
        AdminChange::RotateKey {
            name,
            key_hash,
            key_prefix,
            by,
        } => {
            let Some(agent) = tx.agent_by_name(name).await? else {
                return Ok(Answer::Rotated(None));
            };
            let revoked = tx.revoke_api_keys(agent.id, at).await?;
            tx.insert_api_key(agent.id, key_hash, key_prefix, at).await?;
            let rotated = Event::AgentKeyRotated(AgentKeyRotated {
                agent: name.clone(),
                keys_revoked: revoked,
                key_prefix: key_prefix.clone(),
            });
            chain.record(Entry::new(now, Actor::Reviewer(by.clone()), None, rotated))?;
            Ok(Answer::Rotated(Some((agent, revoked))))
        }
        AdminChange::AnswerDeviceCode {
            user_code,
            identity,
            approve,
        } => {
            let state = if *approve { "approved" } else { "denied" };
            let answered = tx.answer_device_code(user_code, identity, state, at).await?;
            if answered {
                let sign_in = SignIn {
                    user_code: user_code.clone(),
                };
                let answer = if *approve {
                    Event::TerminalSignInConfirmed(sign_in)
                } else {
                    Event::TerminalSignInRefused(sign_in)
                };
                chain.record(Entry::new(now, Actor::Reviewer(identity.clone()), None, answer))?;
            }
            Ok(Answer::Done(answered))
        }
        AdminChange::PollDeviceCode {
            code_hash,
            interval,
            token_hash,
            lifetime,
        } => {
            let Some(code) = tx.poll_device_code(code_hash, at).await? else {
                return Ok(Answer::Polled(Poll::Unknown));
            };
            let poll = match poll_outcome(&code, *interval, at) {
                PollOutcome::Answer(poll) => poll,
                PollOutcome::Issue => {
                    if !tx.claim_device_code(code_hash).await? {
                        return Ok(Answer::Polled(Poll::AlreadyUsed));
                    }
                    let identity: Identity = code
                        .identity
                        .as_deref()
                        .and_then(|text| serde_json::from_str(text).ok())
                        .ok_or_else(|| Error::Internal("a confirmed device code has no identity".into()))?;
                    let token_id = uuid::Uuid::now_v7().to_string();
                    let expires_at = now + *lifetime;
                    tx.insert_terminal_token(&NewTokenRow {
                        id: &token_id,
                        token_hash,
                        identity: &identity,
                        client_name: code.client_name.as_deref(),
                        created_at: at,
                        expires_at: millis(expires_at),
                    })
                    .await?;
                    let issued = Event::TerminalTokenIssued(TokenIssued {
                        token_id: token_id.clone(),
                        client_name: code.client_name.clone(),
                    });
                    chain.record(Entry::new(now, Actor::Reviewer(identity), None, issued))?;
                    Poll::Issued { token_id, expires_at }
                }
            };
            Ok(Answer::Polled(poll))
        }
        AdminChange::RevokeToken { id, owner, by } => {
            let owner = owner
                .as_ref()
                .map(|(issuer, subject)| (issuer.as_str(), subject.as_str()));
            let revoked = tx.revoke_terminal_token(id, owner, at).await?;
            if revoked {
                let revoked = Event::TerminalTokenRevoked(TokenRevoked { token_id: id.clone() });
                chain.record(Entry::new(now, Actor::Reviewer(by.clone()), None, revoked))?;
            }
            Ok(Answer::Done(revoked))
        }
        _ => Err(Error::Internal("not an access change".into())),
    }
}

/// A new version of one policy, or a new policy at the end of the order.
async fn save_policy(
    tx: &mut WriteTx,
    chain: &mut Chain,
    now: OffsetDateTime,
    id: Option<&str>,
    doc: &PolicyDoc,
    by: &Actor,
) -> Result<Applied> {
    let stored = tx.policies().await?;
    if stored
        .iter()
        .any(|p| p.doc.name.trim() == doc.name.trim() && Some(p.id.as_str()) != id)
    {
        return Ok(Applied::Refused(Error::Conflict {
            code: "policy_name_taken",
            message: format!("another policy is already named `{}`", doc.name.trim()),
        }));
    }
    let (saved, before) = match id {
        Some(id) => {
            let Some(current) = stored.iter().find(|p| p.id == id) else {
                return Ok(Applied::Refused(Error::not_found(format_args!("policy {id}"))));
            };
            if current.doc == *doc {
                return Ok(Applied::Done(Answer::Policy(current.clone())));
            }
            let saved = StoredPolicy {
                version: current.version + 1,
                doc: doc.clone(),
                updated_at: now,
                ..current.clone()
            };
            (saved, Some(current.doc.clone()))
        }
        None => (
            StoredPolicy {
                id: uuid::Uuid::now_v7().to_string(),
                position: stored.iter().map(|p| p.position + 1).max().unwrap_or(0),
                version: 1,
                doc: doc.clone(),
                updated_at: now,
            },
            None,
        ),
    };
    record_version(tx, chain, now, &saved, before, by).await?;
    Ok(Applied::PoliciesChanged(Answer::Policy(saved)))
}

/// Stores a policy version with its audit event (before and after).
async fn record_version(
    tx: &mut WriteTx,
    chain: &mut Chain,
    now: OffsetDateTime,
    saved: &StoredPolicy,
    before: Option<PolicyDoc>,
    by: &Actor,
) -> Result<()> {
    tx.save_policy(saved, &audit_value(by)?).await?;
    let version = PolicyVersion {
        policy: saved.id.clone(),
        name: saved.doc.name.clone(),
        version: saved.version,
        before: before.as_ref().map(audit_value).transpose()?,
        after: audit_value(&saved.doc)?,
    };
    let event = if saved.version == 1 {
        Event::PolicyCreated(version)
    } else {
        Event::PolicyUpdated(version)
    };
    chain.record(Entry::new(now, by.clone(), None, event))
}

async fn import_policies(
    tx: &mut WriteTx,
    chain: &mut Chain,
    now: OffsetDateTime,
    docs: &[PolicyDoc],
    by: &Actor,
) -> Result<Applied> {
    let stored = tx.policies().await?;
    let mut report = ImportReport::default();
    let mut order: Vec<String> = Vec::new();
    for doc in docs {
        let name = doc.name.trim();
        match stored.iter().find(|p| p.doc.name.trim() == name) {
            Some(current) if current.doc == *doc => {
                report.unchanged.push(name.to_string());
                order.push(current.id.clone());
            }
            Some(current) => {
                let saved = StoredPolicy {
                    version: current.version + 1,
                    doc: doc.clone(),
                    updated_at: now,
                    ..current.clone()
                };
                record_version(tx, chain, now, &saved, Some(current.doc.clone()), by).await?;
                report.updated.push(name.to_string());
                order.push(saved.id);
            }
            None => {
                let saved = StoredPolicy {
                    id: uuid::Uuid::now_v7().to_string(),
                    position: 1_000_000 + order.len() as i64,
                    version: 1,
                    doc: doc.clone(),
                    updated_at: now,
                };
                record_version(tx, chain, now, &saved, None, by).await?;
                report.created.push(name.to_string());
                order.push(saved.id);
            }
        }
    }
    for current in &stored {
        if docs.iter().any(|doc| doc.name.trim() == current.doc.name.trim()) {
            continue;
        }
        if current.doc.enabled {
            let mut doc = current.doc.clone();
            doc.enabled = false;
            let saved = StoredPolicy {
                version: current.version + 1,
                doc,
                updated_at: now,
                ..current.clone()
            };
            record_version(tx, chain, now, &saved, Some(current.doc.clone()), by).await?;
            report.disabled.push(current.doc.name.clone());
        }
        order.push(current.id.clone());
    }
    tx.set_policy_positions(&order).await?;
    let imported = Event::PolicyImported(PolicyImported {
        created: report.created.clone(),
        updated: report.updated.clone(),
        disabled: report.disabled.clone(),
        unchanged: report.unchanged.clone(),
    });
    chain.record(Entry::new(now, by.clone(), None, imported))?;
    Ok(Applied::PoliciesChanged(Answer::Imported(report)))
}

enum PollOutcome {
    Answer(Poll),
    /// Confirmed: issue the token.
    Issue,
}

/// What a poll of `code` at `now` (Unix ms) answers, by RFC 8628's rules.
fn poll_outcome(code: &DeviceCodeRow, interval: time::Duration, now: i64) -> PollOutcome {
    let too_soon = code
        .last_polled_at
        .is_some_and(|last| now - last < interval.whole_milliseconds() as i64);
    let expired = now >= code.expires_at;
    PollOutcome::Answer(match code.state.as_str() {
        "used" => Poll::AlreadyUsed,
        "denied" => Poll::Denied,
        _ if expired => Poll::Expired,
        "pending" if too_soon => Poll::SlowDown,
        "pending" => Poll::Pending,
        _ => return PollOutcome::Issue,
    })
}
