//! The audit trail: an append-only hash chain written in the same transaction as every
//! state change, so the trail cannot disagree with the data or be edited unnoticed.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use signoff_app::{Event, UnreadableEvent, canonical_json, sha256_hex};

use crate::{Error, Result};

pub use signoff_app::Actor;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AuditEvent {
    pub seq: i64,
    /// Unix milliseconds.
    pub at: i64,
    pub kind: String,
    pub request_id: Option<String>,
    pub actor: Value,
    pub data: Value,
    pub prev_hash: String,
    pub hash: String,
}

impl AuditEvent {
    /// The event this row records, typed.
    pub fn event(&self) -> std::result::Result<Event, UnreadableEvent> {
        Event::from_stored(&self.kind, self.data.clone())
    }

    /// Its sentence: the event's own, or, for one this version cannot read, its kind's
    /// (or the kind as stored, for a kind it does not know).
    pub fn describe(&self) -> String {
        match self.event() {
            Ok(event) => event.describe(),
            Err(_) => signoff_app::Kind::parse(&self.kind)
                .map_or_else(|| self.kind.clone(), |kind| kind.describe().to_string()),
        }
    }

    /// Who caused it, typed; `None` when the stored actor cannot be read.
    pub fn actor(&self) -> Option<Actor> {
        serde_json::from_value(self.actor.clone()).ok()
    }

    /// Its canonical bytes (its leaf in the Merkle tree), from the stored JSON.
    pub fn canonical(&self) -> String {
        canonical_event(
            self.seq,
            self.at,
            &self.kind,
            self.request_id.as_deref(),
            &canonical_json(&self.actor),
            &canonical_json(&self.data),
        )
    }

    /// The hash this event must carry, given the one before it.
    pub fn expected_hash(&self) -> String {
        chain_hash(
            &self.prev_hash,
            self.seq,
            self.at,
            &self.kind,
            self.request_id.as_deref(),
            &self.actor,
            &self.data,
        )
    }
}

pub fn chain_hash(
    prev_hash: &str,
    seq: i64,
    at: i64,
    kind: &str,
    request_id: Option<&str>,
    actor: &Value,
    data: &Value,
) -> String {
    chain_hash_canonical(
        prev_hash,
        seq,
        at,
        kind,
        request_id,
        &canonical_json(actor),
        &canonical_json(data),
    )
}

/// [`chain_hash`] from the canonical JSON of the actor and data, as the writer has them.
pub fn chain_hash_canonical(
    prev_hash: &str,
    seq: i64,
    at: i64,
    kind: &str,
    request_id: Option<&str>,
    actor: &str,
    data: &str,
) -> String {
    chain_hash_of(prev_hash, &canonical_event(seq, at, kind, request_id, actor, data))
}

/// An event's canonical bytes: the RFC 8785 text of `{actor, at, data, kind, request_id,
/// seq}` (keys in that order, which is the canonical one), assembled from the canonical
/// JSON of the actor and data without serialising them again. The chain hashes them after
/// the previous hash; they are the event's leaf in the Merkle tree.
pub fn canonical_event(seq: i64, at: i64, kind: &str, request_id: Option<&str>, actor: &str, data: &str) -> String {
    let text = |value: &str| canonical_json(&Value::String(value.to_string()));
    let request_id = request_id.map_or_else(|| "null".to_string(), text);
    format!(
        "{{\"actor\":{actor},\"at\":{at},\"data\":{data},\"kind\":{},\"request_id\":{request_id},\"seq\":{seq}}}",
        text(kind)
    )
}

/// The chain's link: SHA-256 (hex) of the previous hash, a newline and the event's bytes.
pub fn chain_hash_of(prev_hash: &str, canonical: &str) -> String {
    sha256_hex(format!("{prev_hash}\n{canonical}"))
}

pub fn to_value<T: Serialize>(value: &T) -> Result<Value> {
    serde_json::to_value(value).map_err(|err| Error::Internal(format!("audit event: {err}")))
}

/// What `audit verify` found.
#[derive(Debug, PartialEq, Eq)]
pub enum ChainReport {
    Intact { events: i64, head: String },
    Broken { seq: i64, reason: String },
}

/// Reads a row of audit_events into an [`AuditEvent`].
macro_rules! event_from_row {
    ($row:expr) => {{
        let row = &$row;
        $crate::store::audit::AuditEvent {
            seq: row.try_get("seq")?,
            at: row.try_get("at")?,
            kind: row.try_get("kind")?,
            request_id: row.try_get("request_id")?,
            actor: $crate::store::records::from_json("actor", &row.try_get::<String, _>("actor")?)?,
            data: $crate::store::records::from_json("data", &row.try_get::<String, _>("data")?)?,
            prev_hash: row.try_get("prev_hash")?,
            hash: row.try_get("hash")?,
        }
    }};
}
pub(crate) use event_from_row;

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_writer_and_the_verifier_hash_alike() {
        let actor = json!({"type": "reviewer", "email": "a\"b@example.com", "groups": ["x", "ä"]});
        let data = json!({"verdict": "approve", "comment": "line\nbreak \u{202e}", "approvals": 2, "z": null});
        let body = json!({
            "seq": 7, "at": 1_800_000_000_123_i64, "kind": "decision.recorded",
            "request_id": "0193a4c2-0000-7000-8000-000000000001", "actor": actor, "data": data,
        });
        let expected = sha256_hex(format!("prev\n{}", canonical_json(&body)));
        assert_eq!(
            chain_hash(
                "prev",
                7,
                1_800_000_000_123,
                "decision.recorded",
                Some("0193a4c2-0000-7000-8000-000000000001"),
                &actor,
                &data
            ),
            expected
        );
        let without_request =
            json!({"seq": 1, "at": 5, "kind": "agent.created", "request_id": null, "actor": actor, "data": data});
        assert_eq!(
            chain_hash("0", 1, 5, "agent.created", None, &actor, &data),
            sha256_hex(format!("0\n{}", canonical_json(&without_request)))
        );
    }
}
