//! The auditors' export: a range of the audit trail with what it takes to verify it
//! offline, with no database — the state of the log just before the range, every
//! checkpoint inside it, and the first checkpoint at or after its end with a consistency
//! proof to it. `audit verify --file` reads it back.
//!
//! JSON lines, each with a `type`: one `header`, the `event`s in order, the
//! `checkpoint`s, and at most one `consistency` proof. CSV carries the events alone, for
//! reading; only JSON lines verify.

use std::io::{BufRead, Write};

use serde::{Deserialize, Serialize};

use signoff_app::evidence::note::{Checkpoint, PublicKey};
use signoff_app::evidence::tree::{Frontier, hash_from_base64, hashes_from_base64, verify_consistency};

use super::verify::{Report, Walk};
use super::{ConsistencyProof, consistency, frontier_at};
use crate::store::{AuditEvent, CheckpointRow, Store};
use crate::{Error, Result};

/// Events read at a time.
const PAGE: i64 = 5_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Jsonl,
    Csv,
}

impl Format {
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Jsonl => "jsonl",
            Format::Csv => "csv",
        }
    }
}

/// The first line: where the range starts and the log's state just before it.
#[derive(Debug, Serialize, Deserialize)]
struct Header {
    origin: String,
    /// The first and last sequence numbers exported.
    from: i64,
    to: i64,
    /// The hash of event `from - 1` (zeros for the first).
    prev_hash: String,
    /// The tree's frontier after event `from - 1` (base64).
    frontier: String,
    /// Checkpoints are signed at every multiple of this many events.
    checkpoint_every: u64,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Line {
    Header(Header),
    Event(AuditEvent),
    Checkpoint(CheckpointRow),
    Consistency(ConsistencyProof),
}

/// Writes events `from..=to` to `out`; answers how many were written.
pub async fn export(
    store: &Store,
    evidence: &super::Evidence,
    from: i64,
    to: i64,
    format: Format,
    out: &mut impl Write,
) -> Result<i64> {
    let io = |err: std::io::Error| Error::Internal(format!("cannot write the export: {err}"));
    let start = from - 1;
    if format == Format::Csv {
        writeln!(out, "seq,at,kind,description,request_id,actor,data,prev_hash,hash").map_err(io)?;
    } else {
        let prev_hash = if start == 0 {
            "0".repeat(64)
        } else {
            store
                .audit_events(start - 1, 1)
                .await?
                .first()
                .map(|event| event.hash.clone())
                .unwrap_or_default()
        };
        let header = Line::Header(Header {
            origin: evidence.origin.clone(),
            from,
            to,
            prev_hash,
            frontier: frontier_at(store, start).await?.encode(),
            checkpoint_every: evidence.checkpoint_every,
        });
        write_line(out, &header)?;
    }
    let mut after = start;
    let mut written = 0;
    while after < to {
        let events = store.audit_events(after, PAGE.min(to - after)).await?;
        let Some(last) = events.last().map(|event| event.seq) else {
            break;
        };
        for event in &events {
            match format {
                Format::Jsonl => write_line(out, &Line::Event(event.clone()))?,
                Format::Csv => writeln!(out, "{}", csv_row(event)).map_err(io)?,
            }
        }
        written += events.len() as i64;
        after = last;
    }
    if format == Format::Jsonl {
        for checkpoint in store.checkpoints(from, to).await? {
            write_line(out, &Line::Checkpoint(checkpoint))?;
        }
        if let Some(anchor) = store.checkpoint_covering(to).await?
            && anchor.tree_size > to
        {
            let proof = consistency(store, to, anchor.tree_size).await?;
            write_line(out, &Line::Checkpoint(anchor))?;
            write_line(out, &Line::Consistency(proof))?;
        }
    }
    out.flush().map_err(io)?;
    Ok(written)
}

fn write_line(out: &mut impl Write, line: &Line) -> Result<()> {
    let text = serde_json::to_string(line).map_err(|err| Error::Internal(format!("export: {err}")))?;
    writeln!(out, "{text}").map_err(|err| Error::Internal(format!("cannot write the export: {err}")))
}

fn csv_row(event: &AuditEvent) -> String {
    let field = |text: &str| format!("\"{}\"", text.replace('"', "\"\""));
    [
        event.seq.to_string(),
        event.at.to_string(),
        field(&event.kind),
        field(&event.describe()),
        field(event.request_id.as_deref().unwrap_or_default()),
        field(&signoff_app::canonical_json(&event.actor)),
        field(&signoff_app::canonical_json(&event.data)),
        event.prev_hash.clone(),
        event.hash.clone(),
    ]
    .join(",")
}

/// Verifies an export offline with the log's public keys: the chain and tree of its
/// events, every checkpoint in it, and that a signed checkpoint covers its end.
pub fn verify_file(input: impl BufRead, keys: &[PublicKey]) -> Result<Report> {
    let bad = |line: usize, why: String| Error::Invalid(format!("line {line}: {why}"));
    let mut lines = input.lines().enumerate();
    let header = match lines.next() {
        Some((_, Ok(text))) => match serde_json::from_str::<Line>(&text) {
            Ok(Line::Header(header)) => header,
            _ => return Err(bad(1, "the first line must be the export's header (JSON lines)".into())),
        },
        Some((_, Err(err))) => return Err(bad(1, err.to_string())),
        None => return Err(Error::Invalid("the export is empty".into())),
    };
    let start = header.from - 1;
    let frontier = Frontier::decode(start.max(0) as u64, &header.frontier).map_err(|err| bad(1, err.to_string()))?;
    let mut events = Vec::new();
    let mut checkpoints = Vec::new();
    let mut proof = None;
    for (at, text) in lines {
        let text = text.map_err(|err| bad(at + 1, err.to_string()))?;
        if text.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<Line>(&text).map_err(|err| bad(at + 1, err.to_string()))? {
            Line::Event(event) => events.push(event),
            Line::Checkpoint(checkpoint) => checkpoints.push(checkpoint),
            Line::Consistency(consistency) => proof = Some(consistency),
            Line::Header(_) => return Err(bad(at + 1, "a second header".into())),
        }
    }
    let (inside, beyond): (Vec<_>, Vec<_>) = checkpoints.into_iter().partition(|c| c.tree_size <= header.to);
    let mut walk = Walk::new(
        keys,
        Some(header.origin.clone()),
        Some(header.checkpoint_every),
        start,
        Some(header.prev_hash.clone()),
        frontier,
        inside,
    );
    for event in &events {
        if let Err((seq, reason)) = walk.event(event) {
            return Ok(Report::Broken { seq, reason });
        }
    }
    if walk.size() != header.to {
        return Ok(Report::Broken {
            seq: walk.size() + 1,
            reason: format!(
                "the export says it ends at event {} but holds events up to {}",
                header.to,
                walk.size()
            ),
        });
    }
    // The range's end must be covered by a signed checkpoint: its own, or a later one
    // the range's tree is proved a prefix of.
    let root = walk.root();
    let anchored = match (beyond.first(), proof) {
        (Some(anchor), Some(proof)) if proof.from == header.to && proof.to == anchor.tree_size => {
            let (signed, _) = match Checkpoint::open(&anchor.note, keys) {
                Ok(opened) => opened,
                Err(err) => {
                    return Ok(Report::Broken {
                        seq: anchor.tree_size,
                        reason: format!("checkpoint at tree size {}: {err}", anchor.tree_size),
                    });
                }
            };
            let hashes = hashes_from_base64(&proof.proof).map_err(|err| Error::Invalid(err.to_string()))?;
            let ours = hash_from_base64(&root).map_err(|err| Error::Invalid(err.to_string()))?;
            signed.origin == header.origin
                && signed.size == anchor.tree_size as u64
                && verify_consistency(&hashes, signed.size, signed.root, header.to as u64, ours).is_ok()
        }
        _ => walk.last_checkpoint() == Some(header.to),
    };
    let report = walk.finish();
    if !anchored && matches!(report, Report::Intact { .. }) {
        return Ok(Report::Broken {
            seq: header.to,
            reason: "no signed checkpoint covers the export's last event (or its proof does not hold)".into(),
        });
    }
    Ok(report)
}
