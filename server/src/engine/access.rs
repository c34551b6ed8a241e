//! Agents, their keys and terminal sign-in: the admin changes that are about access.
//! Each runs its few statements inside the batch and records its event in the chain.

use time::OffsetDateTime;

use signoff_app::event::{
    AgentKey, AgentKeyRotated, AgentKeysRevoked, AgentOwnerChanged, Owner, SignIn, TokenIssued, TokenRevoked,
};
use signoff_app::lifecycle::Entry;
use signoff_app::{AgentId, Event, Identity};

use super::chain::Chain;
use super::{AdminChange, Answer};
use crate::store::{Actor, Agent, DeviceCodeRow, KeyIssue, NewTokenRow, Poll, WriteTx, millis};
use crate::{Error, Result};

/// Agents, keys and terminal sign-in.
pub(super) async fn apply(
    tx: &mut WriteTx,
    chain: &mut Chain<'_>,
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
            ..
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
