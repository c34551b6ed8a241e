//! Evidence (ARCHITECTURE.md, "Evidence"): the log's signing key and what it signs —
//! checkpoints of the audit log's Merkle tree and approval receipts — plus the checks
//! anyone runs against them ([`verify`], [`monitor`]) and the auditors' export
//! ([`export`]). The formats and the pure checks are `signoff_app::evidence`'s.

pub mod export;
pub mod monitor;
pub mod verify;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use rand::Rng as _;
use time::OffsetDateTime;

use signoff_app::evidence::note::{Checkpoint, LogKey, PublicKey};
use signoff_app::evidence::receipt::{self, Approver, ReceiptClaims, ReceiptPolicy};
use signoff_app::evidence::tree::{self, Hash, hash_to_base64};
use signoff_app::{Decision, Request, Verdict};

use crate::config::Config;
use crate::store::Store;
use crate::{Error, Result};

/// The data dir's list of keys `audit rotate-key` retired, one verifier key per line.
const RETIRED_KEYS: &str = "audit-retired.keys";

/// The log's key and the settings of what it signs.
pub struct Evidence {
    pub origin: String,
    key: LogKey,
    /// Every key this log is known by, the current one first.
    keys: Vec<PublicKey>,
    pub checkpoint_every: u64,
    pub checkpoint_interval: Duration,
    receipt_window: time::Duration,
}

impl std::fmt::Debug for Evidence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Evidence")
            .field("origin", &self.origin)
            .field("keys", &self.keys)
            .finish()
    }
}

impl Evidence {
    /// Loads the signing key (made at first start when the operator supplied none) and
    /// the keys it replaced.
    pub fn load(config: &Config) -> Result<Evidence> {
        let (origin, seed) = key_file(config, true)?;
        let key = LogKey::from_seed(&origin, seed);
        let mut keys = vec![key.public()];
        for verifier in config
            .audit
            .previous_keys
            .iter()
            .chain(&retired_keys(&config.data_dir)?)
        {
            let previous = PublicKey::parse(verifier)
                .map_err(|err| Error::Config(format!("audit previous key `{verifier}`: {err}")))?;
            if !keys.contains(&previous) {
                keys.push(previous);
            }
        }
        Ok(Evidence {
            origin,
            key,
            keys,
            checkpoint_every: config.audit.checkpoint_every.max(1),
            checkpoint_interval: config.audit.checkpoint_interval,
            receipt_window: time::Duration::try_from(config.audit.receipt_window)
                .map_err(|_| Error::Config("audit.receipt_window is too long".into()))?,
        })
    }

    /// Every key this log is known by, the current one first.
    pub fn keys(&self) -> &[PublicKey] {
        &self.keys
    }

    /// The signed checkpoint of the tree of `size` events with `root`, as stored (`at`:
    /// Unix milliseconds).
    pub fn checkpoint(&self, size: i64, root: Hash, at: i64) -> crate::store::CheckpointRow {
        let note = Checkpoint {
            origin: self.origin.clone(),
            size: size as u64,
            root,
        }
        .sign(&self.key);
        crate::store::CheckpointRow {
            tree_size: size,
            root: hash_to_base64(&root),
            at,
            key_id: self.keys[0].id_hex(),
            note,
        }
    }

    /// The receipt of a request approved at `approved_at`, the approval being audit event
    /// `seq`.
    pub fn receipt(&self, request: &Request, decisions: &[Decision], seq: i64, approved_at: OffsetDateTime) -> String {
        let approvers = decisions
            .iter()
            .filter(|decision| decision.verdict == Verdict::Approve)
            .map(|decision| Approver {
                issuer: decision.reviewer.issuer.clone(),
                subject: decision.reviewer.subject.clone(),
                email: decision.reviewer.email.clone(),
            })
            .collect::<Vec<_>>();
        let approved_by = if request.break_glass {
            "break_glass"
        } else if !approvers.is_empty() {
            "quorum"
        } else if request.policy.effect == signoff_app::EffectKind::Allow {
            "policy"
        } else {
            "grant"
        };
        let claims = ReceiptClaims {
            iss: self.origin.clone(),
            sub: request.id.to_string(),
            digest: request.digest.clone(),
            action: request.action.clone(),
            resource: request.resource.clone(),
            approved_by: approved_by.into(),
            approvers,
            policy: ReceiptPolicy {
                id: request.policy.id.clone(),
                name: request.policy.name.clone(),
                version: request.policy.version,
            },
            iat: approved_at.unix_timestamp(),
            exp: (approved_at + self.receipt_window).unix_timestamp(),
            seq,
        };
        receipt::issue(&claims, &self.key)
    }
}

/// Retires the current key (listing it in the data dir, so it stays trusted and listed)
/// and makes a new one; answers (retired, new) verifier keys. Only for the key the server
/// made itself: an operator's key file is the operator's to replace.
pub fn rotate_key(config: &Config) -> Result<(String, String)> {
    if config.audit.signing_key.is_some() {
        return Err(Error::Config(
            "audit.signing_key is the operator's: replace that file and list its old key in audit.previous_keys".into(),
        ));
    }
    let path = key_path(config);
    let (origin, seed) = key_file(config, false)?;
    let old = LogKey::from_seed(&origin, seed).public().verifier();
    let retired = config.data_dir.join(RETIRED_KEYS);
    let mut list = std::fs::read_to_string(&retired).unwrap_or_default();
    list.push_str(&old);
    list.push('\n');
    std::fs::write(&retired, list)
        .map_err(|err| Error::Config(format!("cannot write {}: {err}", retired.display())))?;
    std::fs::remove_file(&path).map_err(|err| Error::Config(format!("cannot replace {}: {err}", path.display())))?;
    let (origin, seed) = key_file(config, true)?;
    let new = LogKey::from_seed(&origin, seed).public().verifier();
    Ok((old, new))
}

/// The log's name: configured, or the public URL's host followed by `/audit`.
fn origin(config: &Config) -> Result<String> {
    let origin = match &config.audit.origin {
        Some(origin) => origin.trim().to_string(),
        None => {
            let url = config
                .public_url
                .clone()
                .unwrap_or_else(|| format!("http://{}", config.listen));
            let host = url
                .split_once("://")
                .map_or(url.as_str(), |(_, rest)| rest)
                .split('/')
                .next()
                .unwrap_or_default()
                .to_string();
            format!("{host}/audit")
        }
    };
    if origin.is_empty() || origin.contains(char::is_whitespace) || origin.contains('+') {
        return Err(Error::Config(format!(
            "audit.origin `{origin}` must be non-empty, without spaces or `+` (it names the signing key)"
        )));
    }
    Ok(origin)
}

fn key_path(config: &Config) -> PathBuf {
    config
        .audit
        .signing_key
        .clone()
        .unwrap_or_else(|| config.data_dir.join("audit.key"))
}

/// The key file: the key's name (the log's origin, fixed when the key is made, so a
/// later change of address does not rename the log) on its first line, then the base64
/// of its 32-byte Ed25519 seed. A file holding only the seed takes the configured origin.
/// Made, readable by the server's user only, when `make` and absent.
fn key_file(config: &Config, make: bool) -> Result<(String, [u8; 32])> {
    let path = key_path(config);
    let unreadable = |why: String| Error::Config(format!("audit signing key {}: {why}", path.display()));
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let lines: Vec<&str> = text.lines().map(str::trim).filter(|line| !line.is_empty()).collect();
            let (name, seed) = match lines.as_slice() {
                [seed] => (origin(config)?, *seed),
                [name, seed] => (name.to_string(), *seed),
                _ => return Err(unreadable("expected the key's name, then its seed".into())),
            };
            if let Some(configured) = &config.audit.origin
                && configured.trim() != name
            {
                return Err(unreadable(format!(
                    "the key is named `{name}` but audit.origin says `{configured}`: rotate the key to rename the log"
                )));
            }
            let seed = STANDARD
                .decode(seed)
                .ok()
                .and_then(|bytes| <[u8; 32]>::try_from(bytes).ok())
                .ok_or_else(|| unreadable("expected the base64 of a 32-byte Ed25519 seed".into()))?;
            Ok((name, seed))
        }
        Err(err) if err.kind() == std::io::ErrorKind::NotFound && make => {
            let name = origin(config)?;
            let seed: [u8; 32] = rand::rng().random();
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir).map_err(|err| unreadable(err.to_string()))?;
            }
            match crate::keys::write_private(&path, &format!("{name}\n{}\n", STANDARD.encode(seed))) {
                Ok(()) => Ok((name, seed)),
                // Another process made it first: that one is the key.
                Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => key_file(config, false),
                Err(err) => Err(unreadable(err.to_string())),
            }
        }
        Err(err) => Err(unreadable(err.to_string())),
    }
}

fn retired_keys(data_dir: &Path) -> Result<Vec<String>> {
    match std::fs::read_to_string(data_dir.join(RETIRED_KEYS)) {
        Ok(text) => Ok(text
            .lines()
            .map(str::trim)
            .filter(|line| !line.is_empty())
            .map(String::from)
            .collect()),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(err) => Err(Error::Config(format!("cannot read the retired audit keys: {err}"))),
    }
}

/// `GET /.well-known/signoff/keys`: every key the log is known by, current first.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct Keys {
    pub origin: String,
    pub keys: Vec<KeyView>,
}

#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct KeyView {
    pub name: String,
    /// Hex, as the checkpoint signatures and receipts (`kid`) name it.
    pub key_id: String,
    /// The signed-note verifier key: `name+key_id+base64(0x01 ‖ Ed25519 public key)`.
    pub verifier: String,
    /// Signs new checkpoints and receipts (the others signed before a rotation).
    pub current: bool,
}

/// An event's inclusion in the tree of `size` events.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct InclusionProof {
    pub seq: i64,
    pub size: i64,
    /// Base64 of the event's leaf hash.
    pub leaf_hash: String,
    /// Base64 hashes, from the leaf up (RFC 6962's audit path).
    pub proof: Vec<String>,
}

/// That the tree of `from` events is a prefix of the tree of `to`.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct ConsistencyProof {
    pub from: i64,
    pub to: i64,
    /// Base64 hashes (RFC 6962's consistency proof).
    pub proof: Vec<String>,
}

/// The stored hashes `needed` (by stored-hash index), read from the events that stored them.
async fn stored_hashes(store: &Store, needed: &[u64]) -> Result<HashMap<u64, Hash>> {
    let seqs: Vec<i64> = needed.iter().map(|index| tree::locate(*index).0 as i64 + 1).collect();
    let rows = store.tree_hashes(&seqs).await?;
    needed
        .iter()
        .zip(&seqs)
        .map(|(index, seq)| {
            let hashes = rows
                .get(seq)
                .ok_or_else(|| Error::Internal(format!("the audit tree has no hashes for event {seq}")))?;
            let hash = tree::pick(hashes, *index).map_err(|err| Error::Internal(format!("audit tree: {err}")))?;
            Ok((*index, hash))
        })
        .collect()
}

/// The committed tree's size (the head's, once the tree is built).
async fn tree_size(store: &Store) -> Result<i64> {
    Ok(store.tree_head().await?.tree_size)
}

pub async fn inclusion(store: &Store, seq: i64, size: i64) -> Result<InclusionProof> {
    let built = tree_size(store).await?;
    if seq < 1 || seq > size || size > built {
        return Err(Error::BadRequest(format!(
            "an inclusion proof needs 1 <= seq <= size <= {built} (the log's size)"
        )));
    }
    let (index, size_u) = (seq as u64 - 1, size as u64);
    let mut needed = tree::needed_for_inclusion(index, size_u);
    let leaf_index = tree::leaf_index(index);
    needed.push(leaf_index);
    let hashes = stored_hashes(store, &needed).await?;
    let proof = tree::prove_inclusion(index, size_u, &hashes).map_err(|err| Error::Internal(err.to_string()))?;
    Ok(InclusionProof {
        seq,
        size,
        leaf_hash: hash_to_base64(&hashes[&leaf_index]),
        proof: proof.iter().map(hash_to_base64).collect(),
    })
}

pub async fn consistency(store: &Store, from: i64, to: i64) -> Result<ConsistencyProof> {
    let built = tree_size(store).await?;
    if from < 1 || from > to || to > built {
        return Err(Error::BadRequest(format!(
            "a consistency proof needs 1 <= from <= to <= {built} (the log's size)"
        )));
    }
    let needed = tree::needed_for_consistency(from as u64, to as u64);
    let hashes = stored_hashes(store, &needed).await?;
    let proof =
        tree::prove_consistency(from as u64, to as u64, &hashes).map_err(|err| Error::Internal(err.to_string()))?;
    Ok(ConsistencyProof {
        from,
        to,
        proof: proof.iter().map(hash_to_base64).collect(),
    })
}

/// The frontier of the tree of the first `size` events, from the stored hashes.
pub async fn frontier_at(store: &Store, size: i64) -> Result<tree::Frontier> {
    let needed = tree::needed_for_frontier(size as u64);
    let hashes = stored_hashes(store, &needed).await?;
    let nodes = needed.iter().map(|index| hashes[index]).collect();
    tree::Frontier::from_nodes(size as u64, nodes).map_err(|err| Error::Internal(err.to_string()))
}

/// The root of the tree of the first `size` events, from the stored hashes.
pub async fn root_at(store: &Store, size: i64) -> Result<Hash> {
    if size == 0 {
        return Ok(tree::EMPTY_HASH);
    }
    let hashes = stored_hashes(store, &tree::needed_for_root(size as u64)).await?;
    tree::root_from(size as u64, &hashes).map_err(|err| Error::Internal(err.to_string()))
}
