//! Changes that are not to requests: agents and their keys, terminal sign-in and its
//! tokens. They go through the engine like every other change, so their audit events
//! join the one chain in order; each runs its few statements inside the batch.

use serde_json::json;
use time::OffsetDateTime;

use signoff_app::{AgentId, Identity};

use super::Answer;
use super::batch::Chain;
use crate::store::{Actor, Agent, DeviceCodeRow, KeyIssue, NewTokenRow, Poll, WriteTx, millis};
use crate::{Error, Result};

/// A change to agents, keys or terminal sign-in.
pub enum AdminChange {
    /// Creates the agent if needed and gives it a key (stored as `key_hash`). An owner
    /// given for an existing agent replaces its owner.
    IssueKey {
        name: String,
        owner: Option<String>,
        key_hash: String,
        key_prefix: String,
    },
    /// Revokes every active key of the named agent.
    RevokeKeys { name: String },
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
) -> Result<Answer> {
    let at = millis(now);
    match change {
        AdminChange::IssueKey {
            name,
            owner,
            key_hash,
            key_prefix,
        } => {
            let (agent, issue) = match tx.agent_by_name(name).await? {
                Some(mut agent) => match owner {
                    Some(owner) if agent.owner.as_deref() != Some(owner.as_str()) => {
                        tx.set_agent_owner(agent.id, owner).await?;
                        let previous = agent.owner.replace(owner.clone());
                        let data = json!({
                            "agent": agent.name, "before": { "owner": previous }, "after": { "owner": owner },
                        });
                        chain.append_value(now, "agent.owner_changed", None, &Actor::Operator, &data)?;
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
                    };
                    tx.insert_agent(&agent).await?;
                    (agent, KeyIssue::Created)
                }
            };
            tx.insert_api_key(agent.id, key_hash, key_prefix, at).await?;
            let kind = if issue == KeyIssue::Created {
                "agent.created"
            } else {
                "agent.key_issued"
            };
            let data = json!({ "agent": agent.name, "owner": agent.owner, "key_prefix": key_prefix });
            chain.append_value(now, kind, None, &Actor::Operator, &data)?;
            Ok(Answer::KeyIssued(agent, issue))
        }
        AdminChange::RevokeKeys { name } => {
            let Some(agent) = tx.agent_by_name(name).await? else {
                return Ok(Answer::KeysRevoked(None));
            };
            let revoked = tx.revoke_api_keys(agent.id, at).await?;
            let data = json!({ "agent": name, "keys_revoked": revoked });
            chain.append_value(now, "agent.keys_revoked", None, &Actor::Operator, &data)?;
            Ok(Answer::KeysRevoked(Some(revoked)))
        }
        AdminChange::AnswerDeviceCode {
            user_code,
            identity,
            approve,
        } => {
            let state = if *approve { "approved" } else { "denied" };
            let answered = tx.answer_device_code(user_code, identity, state, at).await?;
            if answered {
                let kind = if *approve {
                    "terminal.sign_in_confirmed"
                } else {
                    "terminal.sign_in_refused"
                };
                let data = json!({ "user_code": user_code });
                chain.append_value(now, kind, None, &Actor::Reviewer(identity.clone()), &data)?;
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
                    let data = json!({ "token_id": token_id, "client_name": code.client_name });
                    chain.append_value(now, "terminal.token_issued", None, &Actor::Reviewer(identity), &data)?;
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
                let data = json!({ "token_id": id });
                chain.append_value(now, "terminal.token_revoked", None, &Actor::Reviewer(by.clone()), &data)?;
            }
            Ok(Answer::Done(revoked))
        }
    }
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
