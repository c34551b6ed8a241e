//! Changes that are not to requests: agents and their keys, terminal sign-in and its
//! tokens. They go through the engine like every other change, so their audit events
//! join the one chain in order; each runs its few statements inside the batch.

use time::OffsetDateTime;

use signoff_app::Event;
use signoff_app::event::{Empty, GrantRevoked, PolicyImported, PolicyMoved, PolicyVersion};
use signoff_app::lifecycle::Entry;
use signoff_app::policy::PolicyDoc;

use super::chain::Chain;
use super::{AdminChange, Answer, ImportReport, access};
use crate::store::{Actor, StoredPolicy, WriteTx, audit_value};
use crate::{Error, Result};

/// What an admin change did: answered, refused (nothing written), or changed the
/// policies (the batch then reloads them).
pub(super) enum Applied {
    Done(Answer),
    Refused(Error),
    PoliciesChanged(Answer),
}

pub(super) async fn apply(
    tx: &mut WriteTx,
    chain: &mut Chain<'_>,
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
        AdminChange::RecordAuditRead { read, by } => {
            chain.record(Entry::new(now, by.clone(), None, Event::AuditExported(read.clone())))?;
            Ok(Applied::Done(Answer::Done(true)))
        }
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
        AdminChange::IssueKey {
            name, new_only: true, ..
        } if tx.agent_by_name(name).await?.is_some() => Ok(Applied::Refused(Error::Conflict {
            code: "agent_exists",
            message: format!("an agent named {name} exists already: rotate its key instead"),
        })),
        other => Ok(Applied::Done(access::apply(tx, chain, now, other).await?)),
    }
}

/// A new version of one policy, or a new policy at the end of the order.
async fn save_policy(
    tx: &mut WriteTx,
    chain: &mut Chain<'_>,
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
    chain: &mut Chain<'_>,
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
    chain: &mut Chain<'_>,
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
