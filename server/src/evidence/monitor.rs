//! `audit monitor`: an independent check anyone runs from another machine (from cron):
//! fetch the log's newest signed checkpoint, check its signature, and check that it
//! extends the last one this monitor saw (a consistency proof). A log whose tail was
//! deleted, or that was rewritten or forked, cannot pass: that is what a monitor is for.

use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use signoff_app::evidence::note::{Checkpoint, PublicKey};
use signoff_app::evidence::tree::{hash_from_base64, hash_to_base64, hashes_from_base64, verify_consistency};

use super::{ConsistencyProof, Keys};

/// What a run found.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Consistent with what was seen before (or seen for the first time).
    Agrees { size: u64, first: bool },
    /// Checked, and the log is not what it was: rewound, rewritten or forked.
    Tampered(String),
    /// Could not check (the server, the network, a malformed answer, the state file).
    Unchecked(String),
}

/// What the monitor remembers between runs.
#[derive(Debug, Default, Serialize, Deserialize)]
struct State {
    origin: String,
    size: u64,
    /// Base64.
    root: String,
    /// The verifier keys it trusts.
    keys: Vec<String>,
    /// The checkpoint note it last accepted.
    note: String,
}

/// Checks the log at `url` against the state in `state_file`, and records the newest
/// checkpoint there when it agrees. `pinned` keys, when given, are the only ones trusted;
/// otherwise the keys the log listed at the first run (and any it lists later, which must
/// still sign a consistent log).
pub async fn run(url: &str, state_file: &Path, pinned: &[String]) -> Outcome {
    match check(url.trim_end_matches('/'), state_file, pinned).await {
        Ok(outcome) | Err(outcome) => outcome,
    }
}

async fn check(url: &str, state_file: &Path, pinned: &[String]) -> Result<Outcome, Outcome> {
    let unchecked = |why: String| Outcome::Unchecked(why);
    let previous: Option<State> = match std::fs::read_to_string(state_file) {
        Ok(text) => {
            Some(serde_json::from_str(&text).map_err(|err| unchecked(format!("{}: {err}", state_file.display())))?)
        }
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => None,
        Err(err) => return Err(unchecked(format!("{}: {err}", state_file.display()))),
    };
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .map_err(|err| unchecked(err.to_string()))?;
    let get = |path: String| {
        let http = http.clone();
        async move {
            let response = http
                .get(format!("{url}{path}"))
                .send()
                .await
                .map_err(|err| unchecked(format!("{path}: {err}")))?;
            let status = response.status();
            let text = response
                .text()
                .await
                .map_err(|err| unchecked(format!("{path}: {err}")))?;
            if !status.is_success() {
                return Err(unchecked(format!("{path}: {status}: {}", text.trim())));
            }
            Ok(text)
        }
    };

    let mut trusted: Vec<String> = pinned.to_vec();
    if trusted.is_empty() {
        let listed: Keys = serde_json::from_str(&get("/.well-known/signoff/keys".into()).await?)
            .map_err(|err| unchecked(format!("the key list: {err}")))?;
        trusted.extend(previous.iter().flat_map(|state| state.keys.clone()));
        for key in listed.keys {
            if !trusted.contains(&key.verifier) {
                trusted.push(key.verifier);
            }
        }
    }
    let keys = trusted
        .iter()
        .map(|text| PublicKey::parse(text).map_err(|err| unchecked(format!("key `{text}`: {err}"))))
        .collect::<Result<Vec<_>, _>>()?;
    let note = get("/api/v1/audit/checkpoint".into()).await?;
    let (checkpoint, _) = Checkpoint::open(&note, &keys)
        .map_err(|err| Outcome::Tampered(format!("the newest checkpoint does not verify: {err}")))?;

    let Some(seen) = previous else {
        save(state_file, &checkpoint, &note, &trusted)?;
        return Ok(Outcome::Agrees {
            size: checkpoint.size,
            first: true,
        });
    };
    if checkpoint.origin != seen.origin {
        return Ok(Outcome::Tampered(format!(
            "the checkpoint is for the log `{}`, not `{}`",
            checkpoint.origin, seen.origin
        )));
    }
    let seen_root = hash_from_base64(&seen.root).map_err(|err| unchecked(format!("the state's root: {err}")))?;
    if checkpoint.size < seen.size {
        return Ok(Outcome::Tampered(format!(
            "the log was rewound: its newest checkpoint covers {} events, but this monitor saw one covering {}",
            checkpoint.size, seen.size
        )));
    }
    if checkpoint.size == seen.size {
        if checkpoint.root != seen_root {
            return Ok(Outcome::Tampered(format!(
                "the log forked: two different roots signed for {} events",
                seen.size
            )));
        }
    } else if seen.size > 0 {
        let proof: ConsistencyProof = serde_json::from_str(
            &get(format!(
                "/api/v1/audit/proof/consistency?from={}&to={}",
                seen.size, checkpoint.size
            ))
            .await?,
        )
        .map_err(|err| unchecked(format!("the consistency proof: {err}")))?;
        let hashes =
            hashes_from_base64(&proof.proof).map_err(|err| unchecked(format!("the consistency proof: {err}")))?;
        if verify_consistency(&hashes, checkpoint.size, checkpoint.root, seen.size, seen_root).is_err() {
            return Ok(Outcome::Tampered(format!(
                "the log was rewritten: the checkpoint for {} events does not extend the one seen for {}",
                checkpoint.size, seen.size
            )));
        }
    }
    save(state_file, &checkpoint, &note, &trusted)?;
    Ok(Outcome::Agrees {
        size: checkpoint.size,
        first: false,
    })
}

fn save(state_file: &Path, checkpoint: &Checkpoint, note: &str, keys: &[String]) -> Result<(), Outcome> {
    let state = State {
        origin: checkpoint.origin.clone(),
        size: checkpoint.size,
        root: hash_to_base64(&checkpoint.root),
        keys: keys.to_vec(),
        note: note.to_string(),
    };
    let text = serde_json::to_string_pretty(&state).map_err(|err| Outcome::Unchecked(err.to_string()))?;
    // Written aside and renamed, so a crash never leaves half a state.
    let aside = state_file.with_extension("tmp");
    std::fs::write(&aside, text)
        .and_then(|()| std::fs::rename(&aside, state_file))
        .map_err(|err| Outcome::Unchecked(format!("{}: {err}", state_file.display())))
}
