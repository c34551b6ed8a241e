//! The audit chain as a batch continues it: events hashed in memory from the head the
//! batch holds, the rows to write, and the live events to publish after the commit.

use time::OffsetDateTime;

use signoff_app::lifecycle::Entry;
use signoff_app::{Kind, RequestId, canonical_json};

use crate::Result;
use crate::bus::Event;
use crate::store::{AuditRow, audit_value, chain_hash_canonical, millis};

/// The audit chain, continued in memory from the head the batch holds.
pub(super) struct Chain {
    seq: i64,
    hash: String,
    pub(super) rows: Vec<AuditRow>,
    pub(super) events: Vec<Event>,
}

impl Chain {
    /// Continues the chain from the head `(seq, hash)` the batch holds.
    pub(super) fn from_head(seq: i64, hash: String) -> Chain {
        Chain {
            seq,
            hash,
            rows: Vec::new(),
            events: Vec::new(),
        }
    }
}

impl Chain {
    /// Appends an event whose actor and data are already canonical JSON.
    pub(super) fn append_canonical(
        &mut self,
        at: OffsetDateTime,
        kind: Kind,
        request: Option<RequestId>,
        actor: String,
        data: String,
    ) {
        let seq = self.seq + 1;
        let at = millis(at);
        let request_id = request.map(|id| id.to_string());
        let hash = chain_hash_canonical(&self.hash, seq, at, kind.as_str(), request_id.as_deref(), &actor, &data);
        if let Some(id) = request
            && let Some(event) = Event::live(seq, kind, id)
        {
            self.events.push(event);
        }
        self.rows.push(AuditRow {
            seq,
            at,
            kind: kind.as_str(),
            request_id,
            actor,
            data,
            prev_hash: std::mem::replace(&mut self.hash, hash.clone()),
            hash,
        });
        self.seq = seq;
    }

    pub(super) fn record(&mut self, entry: Entry) -> Result<()> {
        let actor = canonical_json(&audit_value(&entry.actor)?);
        let data = canonical_json(&entry.event.data());
        self.append_canonical(entry.at, entry.event.kind(), entry.request, actor, data);
        Ok(())
    }

    pub(super) fn record_all(&mut self, entries: Vec<Entry>) -> Result<()> {
        entries.into_iter().try_for_each(|entry| self.record(entry))
    }
}
