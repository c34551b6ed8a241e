//! `audit verify`: recompute the chain and the tree from the events, check every
//! checkpoint's signature and root against them, and name the first thing that does not
//! hold. The same walk checks the database and an auditor's export (offline, with only
//! the file and the public key).

use std::collections::BTreeMap;

use signoff_app::evidence::note::{Checkpoint, PublicKey};
use signoff_app::evidence::tree::{Frontier, hash_to_base64, leaf_hash};

use crate::store::{AuditEvent, CheckpointRow, RawEvent, Store, canonical_event, chain_hash_of};
use crate::{Error, Result};

/// Events read at a time.
pub const PAGE: i64 = 5_000;

/// What a verification found.
#[derive(Debug, PartialEq, Eq)]
pub enum Report {
    Intact {
        /// Events checked.
        events: i64,
        /// Checkpoints whose signature and root held.
        checkpoints: usize,
        /// The last event's hash.
        head: String,
    },
    /// The first problem, at an event's sequence number (or a checkpoint's tree size).
    Broken { seq: i64, reason: String },
}

/// The walk through the log, event by event.
pub struct Walk<'k> {
    keys: &'k [PublicKey],
    origin: Option<String>,
    /// A checkpoint is signed at every multiple of this many events.
    every: Option<u64>,
    next_seq: i64,
    prev_hash: Option<String>,
    frontier: Frontier,
    /// Checkpoints not yet reached, by tree size.
    checkpoints: BTreeMap<i64, CheckpointRow>,
    checked: usize,
    last_checkpoint: Option<i64>,
}

type Broken = (i64, String);

impl<'k> Walk<'k> {
    /// A walk that starts after event `start` (0 for the beginning), whose hash and tree
    /// frontier are given.
    pub fn new(
        keys: &'k [PublicKey],
        origin: Option<String>,
        every: Option<u64>,
        start: i64,
        prev_hash: Option<String>,
        frontier: Frontier,
        checkpoints: Vec<CheckpointRow>,
    ) -> Walk<'k> {
        Walk {
            keys,
            origin,
            every,
            next_seq: start + 1,
            prev_hash,
            frontier,
            checkpoints: checkpoints.into_iter().map(|row| (row.tree_size, row)).collect(),
            checked: 0,
            last_checkpoint: None,
        }
    }

    /// Checks the next event.
    pub fn event(&mut self, event: &AuditEvent) -> std::result::Result<(), Broken> {
        self.entry(event.seq, &event.prev_hash, &event.hash, &event.canonical())
    }

    /// Checks the next event, given its canonical bytes.
    pub fn entry(&mut self, seq: i64, prev_hash: &str, hash: &str, canonical: &str) -> std::result::Result<(), Broken> {
        if seq != self.next_seq {
            return Err((
                self.next_seq,
                format!(
                    "expected event {}; found {seq}: events are missing or out of order",
                    self.next_seq
                ),
            ));
        }
        if let Some(prev) = &self.prev_hash
            && prev_hash != prev
        {
            return Err((seq, "its link to the previous event does not match".into()));
        }
        if chain_hash_of(prev_hash, canonical) != hash {
            return Err((seq, "its content does not match its hash (edited)".into()));
        }
        self.frontier.push(leaf_hash(canonical.as_bytes()));
        self.prev_hash = Some(hash.to_string());
        self.next_seq += 1;
        match self.checkpoints.remove(&seq) {
            Some(checkpoint) => self.checkpoint(&checkpoint)?,
            None if self.every.is_some_and(|every| (seq as u64).is_multiple_of(every)) => {
                return Err((
                    seq,
                    format!(
                        "no checkpoint at tree size {seq}: one is signed at every multiple of {}, so it was removed",
                        self.every.unwrap_or_default()
                    ),
                ));
            }
            None => {}
        }
        Ok(())
    }

    /// Checks a checkpoint of the tree as it now stands.
    fn checkpoint(&mut self, row: &CheckpointRow) -> std::result::Result<(), Broken> {
        let size = row.tree_size;
        let bad = |why: String| Err((size, format!("checkpoint at tree size {size}: {why}")));
        let (signed, _) = match Checkpoint::open(&row.note, self.keys) {
            Ok(opened) => opened,
            Err(err) => return bad(format!("{err} (forged, or signed by a key not trusted here)")),
        };
        if signed.size != size as u64 || hash_to_base64(&signed.root) != row.root {
            return bad("its signed note says something else than its row".into());
        }
        if let Some(origin) = &self.origin
            && &signed.origin != origin
        {
            return bad(format!("signed for the log `{}`, not `{origin}`", signed.origin));
        }
        if signed.root != self.frontier.root() {
            return bad("the events do not have the root it signed: the log was rewritten".into());
        }
        self.checked += 1;
        self.last_checkpoint = Some(size);
        Ok(())
    }

    /// Ends the walk: a checkpoint beyond the last event means the tail was cut.
    pub fn finish(self) -> Report {
        let events = self.next_seq - 1;
        if let Some((size, _)) = self.checkpoints.range(events + 1..).next() {
            return Report::Broken {
                seq: events + 1,
                reason: format!(
                    "a checkpoint was signed for {size} events but the log ends at event {events}: its tail was removed"
                ),
            };
        }
        Report::Intact {
            events,
            checkpoints: self.checked,
            head: self.prev_hash.unwrap_or_default(),
        }
    }

    /// The tree size of the last checkpoint verified.
    pub fn last_checkpoint(&self) -> Option<i64> {
        self.last_checkpoint
    }

    pub fn size(&self) -> i64 {
        self.next_seq - 1
    }

    pub fn root(&self) -> String {
        hash_to_base64(&self.frontier.root())
    }
}

/// Verifies the database's log from event `from` (1 for all of it) against `keys`: the
/// events before `from` are taken as the tree stored them.
pub async fn verify_store(
    store: &Store,
    keys: &[PublicKey],
    origin: &str,
    every: u64,
    from: i64,
    progress: impl Fn(i64, i64),
) -> Result<Report> {
    let head = store.tree_head().await?;
    let start = from.clamp(1, head.seq.max(1)) - 1;
    let (prev_hash, frontier) = if start == 0 {
        (Some("0".repeat(64)), Frontier::default())
    } else {
        let before = store.audit_events(start - 1, 1).await?;
        let prev = before
            .first()
            .filter(|event| event.seq == start)
            .map(|event| event.hash.clone());
        (prev, super::frontier_at(store, start).await?)
    };
    let checkpoints = store.checkpoints(start + 1, i64::MAX).await?;
    let mut walk = Walk::new(
        keys,
        Some(origin.to_string()),
        Some(every),
        start,
        prev_hash,
        frontier,
        checkpoints,
    );
    // Pages are read while the one before is checked: the two cores share the work.
    let (pages, mut checked) = tokio::sync::mpsc::channel::<Result<Vec<RawEvent>>>(2);
    let reader = {
        let store = store.clone();
        let last = head.seq;
        tokio::spawn(async move {
            let mut after = start;
            while after < last {
                let page = store.raw_audit_events(after, PAGE.min(last - after)).await;
                let next = page
                    .as_ref()
                    .ok()
                    .and_then(|events| events.last().map(|event| event.seq));
                if pages.send(page).await.is_err() {
                    return;
                }
                match next {
                    Some(seq) => after = seq,
                    None => return,
                }
            }
        })
    };
    while let Some(page) = checked.recv().await {
        for event in page? {
            let canonical = canonical_event(
                event.seq,
                event.at,
                &event.kind,
                event.request_id.as_deref(),
                &event.actor,
                &event.data,
            );
            if let Err((seq, reason)) = walk.entry(event.seq, &event.prev_hash, &event.hash, &canonical) {
                reader.abort();
                return Ok(Report::Broken { seq, reason });
            }
        }
        progress(walk.size(), head.seq);
    }
    let events = walk.size();
    if events != head.seq {
        return Ok(Report::Broken {
            seq: events + 1,
            reason: format!(
                "the log ends at event {events} but its head says {}: events were removed",
                head.seq
            ),
        });
    }
    if events > 0 && walk.prev_hash.as_deref() != Some(head.hash.as_str()) {
        return Ok(Report::Broken {
            seq: events,
            reason: "the last event is not the head recorded: the head was rewound or replaced".into(),
        });
    }
    let recorded = Frontier::decode(head.tree_size as u64, &head.frontier)
        .map_err(|err| Error::Internal(format!("audit tree: {err}")))?;
    if head.tree_size == head.seq && hash_to_base64(&recorded.root()) != walk.root() {
        return Ok(Report::Broken {
            seq: events,
            reason: "the tree recorded with the head does not match the events".into(),
        });
    }
    Ok(walk.finish())
}
