//! The audit log as a batch continues it: events hashed in memory from the head the
//! batch holds, both as a chain (each event's hash covers the one before) and as a Merkle
//! tree (each event a leaf; the frontier kept beside the head), checkpoints signed at
//! every multiple of the configured count, the rows to write, and the live events to
//! publish after the commit. See ARCHITECTURE.md, "Evidence".

use time::OffsetDateTime;

use signoff_app::evidence::tree::{self, Frontier, leaf_hash};
use signoff_app::lifecycle::Entry;
use signoff_app::{Kind, RequestId, canonical_json};

use crate::Result;
use crate::bus::Event;
use crate::evidence::Evidence;
use crate::store::{AuditRow, CheckpointRow, HeadRow, WriteTx, audit_value, canonical_event, chain_hash_of, millis};

/// Events read at a time when building the tree of a store from before it existed.
const CATCH_UP_PAGE: i64 = 2_000;

/// The audit log, continued in memory from the head the batch holds.
pub(super) struct Chain<'e> {
    seq: i64,
    hash: String,
    frontier: Frontier,
    evidence: &'e Evidence,
    pub(super) rows: Vec<AuditRow>,
    /// Each new event's stored tree hashes, by sequence number.
    pub(super) tree: Vec<(i64, Vec<u8>)>,
    pub(super) checkpoints: Vec<CheckpointRow>,
    pub(super) events: Vec<Event>,
}

impl<'e> Chain<'e> {
    /// Continues the log from the head the batch locked, building the tree of events
    /// stored before it existed first (once, after an upgrade).
    pub(super) async fn from_head(tx: &mut WriteTx, head: HeadRow, evidence: &'e Evidence) -> Result<Chain<'e>> {
        let frontier = if head.tree_size == head.seq {
            Frontier::decode(head.tree_size as u64, &head.frontier)
                .map_err(|err| crate::Error::Internal(format!("audit tree: {err}")))?
        } else {
            catch_up(tx, &head, evidence).await?
        };
        Ok(Chain {
            seq: head.seq,
            hash: head.hash,
            frontier,
            evidence,
            rows: Vec::new(),
            tree: Vec::new(),
            checkpoints: Vec::new(),
            events: Vec::new(),
        })
    }

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
        let canonical = canonical_event(seq, at, kind.as_str(), request_id.as_deref(), &actor, &data);
        let hash = chain_hash_of(&self.hash, &canonical);
        let stored = self.frontier.push(leaf_hash(canonical.as_bytes()));
        self.tree.push((seq, tree::join(&stored)));
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
        if (seq as u64).is_multiple_of(self.evidence.checkpoint_every) {
            self.checkpoint(at);
        }
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

    /// Signs the tree as it stands now (at `at`, Unix milliseconds).
    pub(super) fn checkpoint(&mut self, at: i64) {
        if self.checkpoints.last().is_some_and(|last| last.tree_size == self.seq) || self.seq == 0 {
            return;
        }
        self.checkpoints
            .push(self.evidence.checkpoint(self.seq, self.frontier.root(), at));
    }

    /// The head as the batch leaves it: last sequence number, last hash, the frontier.
    pub(super) fn head(&self) -> (i64, &str, String) {
        (self.seq, &self.hash, self.frontier.encode())
    }

    /// The sequence number of the newest event of `kind` on request `id` in this batch.
    pub(super) fn newest(&self, id: RequestId, kinds: &[Kind]) -> Option<i64> {
        let id = id.to_string();
        self.rows
            .iter()
            .rev()
            .find(|row| {
                row.request_id.as_deref() == Some(id.as_str()) && kinds.iter().any(|kind| kind.as_str() == row.kind)
            })
            .map(|row| row.seq)
    }
}

/// Builds the tree of the events a store held before the tree existed, and signs a
/// checkpoint at each multiple of the configured count among them, so the log verifies
/// the same from its first event.
async fn catch_up(tx: &mut WriteTx, head: &HeadRow, evidence: &Evidence) -> Result<Frontier> {
    let mut frontier = Frontier::decode(head.tree_size as u64, &head.frontier)
        .map_err(|err| crate::Error::Internal(format!("audit tree: {err}")))?;
    tracing::info!(
        events = head.seq - head.tree_size,
        "building the audit log's Merkle tree"
    );
    let now = millis(crate::clock::now());
    let mut after = head.tree_size;
    while after < head.seq {
        let events = tx.audit_events_after(after, CATCH_UP_PAGE).await?;
        let Some(last) = events.last().map(|event| event.seq) else {
            break;
        };
        let mut rows = Vec::with_capacity(events.len());
        let mut checkpoints = Vec::new();
        for event in events.iter().filter(|event| event.seq <= head.seq) {
            let stored = frontier.push(leaf_hash(event.canonical().as_bytes()));
            rows.push((event.seq, tree::join(&stored)));
            if (event.seq as u64).is_multiple_of(evidence.checkpoint_every) {
                checkpoints.push(evidence.checkpoint(event.seq, frontier.root(), now));
            }
        }
        tx.insert_tree(&rows).await?;
        tx.insert_checkpoints(&checkpoints).await?;
        after = last;
    }
    tx.set_tree(frontier.size() as i64, &frontier.encode()).await?;
    Ok(frontier)
}
