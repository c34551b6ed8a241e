//! The audit log as an RFC 6962 Merkle tree (the tree Certificate Transparency and Go's
//! checksum database use): leaves are the events' canonical bytes, so any event's
//! inclusion and any two sizes' consistency are provable in O(log n) hashes.
//!
//! Storage follows Go's `tlog` layout: appending record `n` stores its leaf hash and the
//! hash of every subtree it completes (under two per record on average). The writer keeps
//! only the [`Frontier`] (the roots of the perfect subtrees that make up the tree) to
//! append without reading anything. Proofs are `tlog_tiles`' (a port of Go's `tlog`):
//! [`needed_for_inclusion`] and [`needed_for_consistency`] say which stored hashes a proof
//! reads, the caller fetches them, and [`prove_inclusion`] / [`prove_consistency`] build it.

use std::cell::RefCell;
use std::collections::HashMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

pub use tlog_tiles::{EMPTY_HASH, Hash};
use tlog_tiles::{HashReader, node_hash, record_hash, split_stored_hash_index};

/// The leaf hash of an event: SHA-256 over 0x00 and its canonical bytes.
pub fn leaf_hash(canonical: &[u8]) -> Hash {
    record_hash(canonical)
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TreeError {
    #[error("the stored tree state is unreadable: {0}")]
    Unreadable(String),
    #[error("the proof does not hold")]
    InvalidProof,
    #[error("{0}")]
    Invalid(String),
}

impl From<tlog_tiles::Error> for TreeError {
    fn from(err: tlog_tiles::Error) -> TreeError {
        match err {
            tlog_tiles::Error::InvalidProof => TreeError::InvalidProof,
            other => TreeError::Invalid(other.to_string()),
        }
    }
}

/// The roots of the perfect subtrees that make up a tree of `size` leaves, largest
/// (leftmost) first: one per bit set in `size`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Frontier {
    size: u64,
    nodes: Vec<Hash>,
}

impl Frontier {
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Appends a leaf and returns the hashes to store for it: the leaf's, then each
    /// subtree's it completes, lowest first (`tlog`'s stored hashes of record `size`).
    pub fn push(&mut self, leaf: Hash) -> Vec<Hash> {
        let mut stored = vec![leaf];
        let mut hash = leaf;
        let mut completes = self.size;
        while completes & 1 == 1 {
            let Some(left) = self.nodes.pop() else { break };
            hash = node_hash(left, hash);
            stored.push(hash);
            completes >>= 1;
        }
        self.nodes.push(hash);
        self.size += 1;
        stored
    }

    /// The frontier of a tree of `size` leaves from its subtree roots (as
    /// [`needed_for_frontier`] lists them).
    pub fn from_nodes(size: u64, nodes: Vec<Hash>) -> Result<Frontier, TreeError> {
        if nodes.len() != size.count_ones() as usize {
            return Err(TreeError::Unreadable(format!(
                "a tree of {size} leaves has {} subtree roots",
                size.count_ones()
            )));
        }
        Ok(Frontier { size, nodes })
    }

    /// The tree's root hash (RFC 6962's MTH).
    pub fn root(&self) -> Hash {
        let mut nodes = self.nodes.iter().rev();
        let Some(&last) = nodes.next() else {
            return EMPTY_HASH;
        };
        nodes.fold(last, |right, &left| node_hash(left, right))
    }

    /// Base64 of the subtree roots, as the head row keeps them.
    pub fn encode(&self) -> String {
        STANDARD.encode(self.nodes.iter().flat_map(|hash| hash.0).collect::<Vec<u8>>())
    }

    /// Reads [`Frontier::encode`]'s text for a tree of `size` leaves.
    pub fn decode(size: u64, text: &str) -> Result<Frontier, TreeError> {
        let bytes = STANDARD
            .decode(text)
            .map_err(|err| TreeError::Unreadable(err.to_string()))?;
        let expected = size.count_ones() as usize;
        if bytes.len() != expected * 32 {
            return Err(TreeError::Unreadable(format!(
                "a tree of {size} leaves has {expected} subtree roots, found {} bytes",
                bytes.len()
            )));
        }
        let nodes = bytes.chunks_exact(32).map(hash_from).collect::<Result<_, _>>()?;
        Ok(Frontier { size, nodes })
    }
}

fn hash_from(bytes: &[u8]) -> Result<Hash, TreeError> {
    <[u8; 32]>::try_from(bytes)
        .map(Hash)
        .map_err(|_| TreeError::Unreadable(format!("a hash of {} bytes", bytes.len())))
}

/// The hashes stored for one record, concatenated (its row in the store).
pub fn join(hashes: &[Hash]) -> Vec<u8> {
    hashes.iter().flat_map(|hash| hash.0).collect()
}

/// Where a stored hash lives: the record (0-based) that stored it, and its position
/// among that record's hashes (its level).
pub fn locate(stored_index: u64) -> (u64, usize) {
    let (level, n) = split_stored_hash_index(stored_index);
    (((n + 1) << level) - 1, usize::from(level))
}

/// The stored-hash index of leaf `index` (0-based).
pub fn leaf_index(index: u64) -> u64 {
    tlog_tiles::stored_hash_index(0, index)
}

/// Picks stored hash `stored_index` out of its record's joined hashes.
pub fn pick(record_hashes: &[u8], stored_index: u64) -> Result<Hash, TreeError> {
    let (_, level) = locate(stored_index);
    record_hashes
        .get(level * 32..(level + 1) * 32)
        .ok_or_else(|| TreeError::Unreadable(format!("no level {level} hash stored")))
        .and_then(hash_from)
}

/// Records which stored hashes a proof reads, then refuses (the first of two passes).
struct Recorder(RefCell<Vec<u64>>);

impl HashReader for Recorder {
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, tlog_tiles::Error> {
        self.0.borrow_mut().extend_from_slice(indexes);
        Err(tlog_tiles::Error::InvalidInput("only recording".into()))
    }
}

/// Answers from hashes fetched beforehand (the second pass).
struct Fetched<'a>(&'a HashMap<u64, Hash>);

impl HashReader for Fetched<'_> {
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, tlog_tiles::Error> {
        indexes
            .iter()
            .map(|index| self.0.get(index).copied().ok_or(tlog_tiles::Error::IndexesNotInTree))
            .collect()
    }
}

fn recorded(run: impl FnOnce(&Recorder)) -> Vec<u64> {
    let recorder = Recorder(RefCell::new(Vec::new()));
    run(&recorder);
    recorder.0.into_inner()
}

/// The stored hashes that are the frontier of a tree of `size` leaves, largest first.
pub fn needed_for_frontier(size: u64) -> Vec<u64> {
    let mut needed = Vec::new();
    let mut start = 0;
    for level in (0..64u8).rev() {
        let width = 1u64 << level;
        if size & width != 0 {
            needed.push(tlog_tiles::stored_hash_index(level, start >> level));
            start += width;
        }
    }
    needed
}

/// The stored hashes an inclusion proof of leaf `index` in a tree of `size` reads.
pub fn needed_for_inclusion(index: u64, size: u64) -> Vec<u64> {
    recorded(|reader| {
        let _ = tlog_tiles::prove_record(size, index, reader);
    })
}

/// The stored hashes a consistency proof from `old` to `new` leaves reads.
pub fn needed_for_consistency(old: u64, new: u64) -> Vec<u64> {
    recorded(|reader| {
        let _ = tlog_tiles::prove_tree(new, old, reader);
    })
}

/// The stored hashes the root of a tree of `size` leaves reads.
pub fn needed_for_root(size: u64) -> Vec<u64> {
    recorded(|reader| {
        let _ = tlog_tiles::tree_hash(size, reader);
    })
}

pub fn prove_inclusion(index: u64, size: u64, hashes: &HashMap<u64, Hash>) -> Result<Vec<Hash>, TreeError> {
    Ok(tlog_tiles::prove_record(size, index, &Fetched(hashes))?)
}

pub fn prove_consistency(old: u64, new: u64, hashes: &HashMap<u64, Hash>) -> Result<Vec<Hash>, TreeError> {
    Ok(tlog_tiles::prove_tree(new, old, &Fetched(hashes))?)
}

pub fn root_from(size: u64, hashes: &HashMap<u64, Hash>) -> Result<Hash, TreeError> {
    Ok(tlog_tiles::tree_hash(size, &Fetched(hashes))?)
}

/// Whether `proof` shows leaf `index` (with hash `leaf`) in the tree of `size` with `root`.
pub fn verify_inclusion(proof: &[Hash], size: u64, root: Hash, index: u64, leaf: Hash) -> Result<(), TreeError> {
    Ok(tlog_tiles::check_record(&proof.to_vec(), size, root, index, leaf)?)
}

/// Whether `proof` shows the tree of `old` leaves (`old_root`) is a prefix of the tree
/// of `new` leaves (`new_root`).
pub fn verify_consistency(proof: &[Hash], new: u64, new_root: Hash, old: u64, old_root: Hash) -> Result<(), TreeError> {
    if old == new {
        return if old_root == new_root && proof.is_empty() {
            Ok(())
        } else {
            Err(TreeError::InvalidProof)
        };
    }
    Ok(tlog_tiles::check_tree(&proof.to_vec(), new, new_root, old, old_root)?)
}

pub fn hash_to_base64(hash: &Hash) -> String {
    STANDARD.encode(hash.0)
}

/// A proof as the API sends it: base64 hashes.
pub fn hashes_from_base64(texts: &[String]) -> Result<Vec<Hash>, TreeError> {
    texts.iter().map(|text| hash_from_base64(text)).collect()
}

pub fn hash_from_base64(text: &str) -> Result<Hash, TreeError> {
    let bytes = STANDARD
        .decode(text)
        .map_err(|err| TreeError::Invalid(format!("not a base64 hash: {err}")))?;
    hash_from(&bytes).map_err(|_| TreeError::Invalid("a hash is 32 bytes".into()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// RFC 6962's MTH, straight from its definition.
    fn reference_root(leaves: &[Hash]) -> Hash {
        match leaves.len() {
            0 => EMPTY_HASH,
            1 => leaves[0],
            n => {
                let k = 1 << (usize::BITS - 1 - (n - 1).leading_zeros());
                node_hash(reference_root(&leaves[..k]), reference_root(&leaves[k..]))
            }
        }
    }

    fn leaves(n: u64) -> Vec<Hash> {
        (0..n).map(|i| leaf_hash(format!("event {i}").as_bytes())).collect()
    }

    /// Appends `n` leaves, keeping every stored hash by its index, as the store would.
    fn grown(n: u64) -> (Frontier, HashMap<u64, Hash>, Vec<Hash>) {
        let mut frontier = Frontier::default();
        let mut stored = HashMap::new();
        let leaves = leaves(n);
        for (record, leaf) in leaves.iter().enumerate() {
            let start = tlog_tiles::stored_hash_index(0, record as u64);
            for (offset, hash) in frontier.push(*leaf).into_iter().enumerate() {
                stored.insert(start + offset as u64, hash);
            }
        }
        (frontier, stored, leaves)
    }

    #[test]
    fn the_frontier_gives_rfc_6962_roots_and_survives_encoding() {
        for n in [0, 1, 2, 3, 5, 8, 13, 64, 100] {
            let (frontier, stored, leaves) = grown(n);
            assert_eq!(frontier.root(), reference_root(&leaves), "size {n}");
            if n > 0 {
                assert_eq!(root_from(n, &stored).expect("root"), frontier.root());
            }
            let again = Frontier::decode(n, &frontier.encode()).expect("decodes");
            assert_eq!(again, frontier);
            let nodes = needed_for_frontier(n).iter().map(|index| stored[index]).collect();
            assert_eq!(Frontier::from_nodes(n, nodes).expect("from stored"), frontier);
        }
        assert!(Frontier::decode(3, &Frontier::default().encode()).is_err());
    }

    #[test]
    fn stored_hashes_are_where_tlog_looks_for_them() {
        let (_, stored, leaves) = grown(37);
        let mut frontier = Frontier::default();
        let rows: Vec<Vec<u8>> = leaves.iter().map(|leaf| join(&frontier.push(*leaf))).collect();
        for (&index, hash) in &stored {
            let (record, _) = locate(index);
            assert_eq!(pick(&rows[record as usize], index).expect("stored"), *hash);
        }
    }

    proptest! {
        #[test]
        fn proofs_hold_and_tampering_breaks_them(size in 1u64..300, index_seed in 0u64..1000, old_seed in 0u64..1000) {
            let (frontier, stored, leaves) = grown(size);
            let root = frontier.root();
            let index = index_seed % size;
            let needed = needed_for_inclusion(index, size);
            prop_assert!(needed.iter().all(|i| stored.contains_key(i)));
            let proof = prove_inclusion(index, size, &stored).expect("inclusion");
            prop_assert!(verify_inclusion(&proof, size, root, index, leaves[index as usize]).is_ok());
            let other = leaf_hash(b"not this event");
            prop_assert!(verify_inclusion(&proof, size, root, index, other).is_err());

            let old = 1 + old_seed % size;
            let old_root = reference_root(&leaves[..old as usize]);
            let proof = prove_consistency(old, size, &stored).expect("consistency");
            prop_assert!(verify_consistency(&proof, size, root, old, old_root).is_ok());
            if old < size {
                let forged = reference_root(&leaves[..old as usize].iter().rev().copied().collect::<Vec<_>>());
                if forged != old_root {
                    prop_assert!(verify_consistency(&proof, size, root, old, forged).is_err());
                }
            }
        }
    }
}
