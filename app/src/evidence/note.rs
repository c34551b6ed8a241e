//! Signed checkpoints in the C2SP formats (`c2sp.org/tlog-checkpoint`,
//! `c2sp.org/signed-note`), the ones Go's checksum database, Sigstore and the static CT
//! logs publish, so their tools and ours read each other's:
//!
//! ```text
//! signoff.example.com/audit        <- origin
//! 1234                             <- tree size
//! 3q2+7w…=                         <- root hash, base64
//!
//! — signoff.example.com/audit AbCd…  <- key name, base64(key id ‖ Ed25519 signature)
//! ```
//!
//! A key is named by its verifier string, `name+keyid+base64(0x01 ‖ public key)`, where
//! the key id is the first four bytes of SHA-256(name ‖ "\n" ‖ 0x01 ‖ public key).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};

use super::tree::Hash;

/// The Ed25519 algorithm byte of signed-note keys.
const ED25519: u8 = 0x01;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum NoteError {
    #[error("malformed key: {0}")]
    MalformedKey(String),
    #[error("malformed checkpoint: {0}")]
    Malformed(String),
    #[error("no signature by a known key")]
    UnknownKey,
    #[error("the signature by {0} does not verify")]
    BadSignature(String),
}

/// The log's signing key.
pub struct LogKey {
    name: String,
    signing: SigningKey,
}

impl LogKey {
    pub fn from_seed(name: &str, seed: [u8; 32]) -> LogKey {
        LogKey {
            name: name.to_string(),
            signing: SigningKey::from_bytes(&seed),
        }
    }

    pub fn public(&self) -> PublicKey {
        PublicKey {
            name: self.name.clone(),
            key: self.signing.verifying_key(),
        }
    }

    pub fn sign(&self, message: &[u8]) -> [u8; 64] {
        self.signing.sign(message).to_bytes()
    }
}

impl std::fmt::Debug for LogKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogKey")
            .field("public", &self.public().verifier())
            .finish()
    }
}

/// A public key with its name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublicKey {
    pub name: String,
    pub key: VerifyingKey,
}

impl PublicKey {
    pub fn id(&self) -> u32 {
        let digest = Sha256::new()
            .chain_update(self.name.as_bytes())
            .chain_update(b"\n")
            .chain_update([ED25519])
            .chain_update(self.key.as_bytes())
            .finalize();
        u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]])
    }

    pub fn id_hex(&self) -> String {
        format!("{:08x}", self.id())
    }

    /// `name+keyid+base64(0x01 ‖ key)`, the signed-note verifier key.
    pub fn verifier(&self) -> String {
        let mut bytes = vec![ED25519];
        bytes.extend_from_slice(self.key.as_bytes());
        format!("{}+{}+{}", self.name, self.id_hex(), STANDARD.encode(bytes))
    }

    /// Reads a verifier key (see [`PublicKey::verifier`]), checking its key id.
    pub fn parse(verifier: &str) -> Result<PublicKey, NoteError> {
        let bad = |why: &str| NoteError::MalformedKey(why.to_string());
        // Names never hold `+`; base64 may.
        let mut parts = verifier.trim().splitn(3, '+');
        let (Some(name), Some(id), Some(key)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(bad("expected name+keyid+key"));
        };
        let bytes = STANDARD.decode(key).map_err(|_| bad("the key is not base64"))?;
        let [ED25519, rest @ ..] = bytes.as_slice() else {
            return Err(bad("not an Ed25519 key"));
        };
        let raw: [u8; 32] = rest.try_into().map_err(|_| bad("an Ed25519 key is 32 bytes"))?;
        let key = VerifyingKey::from_bytes(&raw).map_err(|_| bad("not a valid Ed25519 point"))?;
        let parsed = PublicKey {
            name: name.to_string(),
            key,
        };
        if parsed.id_hex() != id {
            return Err(bad("the key id does not match the key"));
        }
        Ok(parsed)
    }

    /// Whether `signature` is this key's over `message` (strict: no malleable forms).
    pub fn verifies(&self, message: &[u8], signature: &[u8]) -> bool {
        let Ok(signature) = <[u8; 64]>::try_from(signature) else {
            return false;
        };
        self.key
            .verify_strict(message, &Signature::from_bytes(&signature))
            .is_ok()
    }
}

/// A tree head: the log's origin, its size and root.
#[derive(Clone, Debug, PartialEq)]
pub struct Checkpoint {
    pub origin: String,
    pub size: u64,
    pub root: Hash,
}

impl Checkpoint {
    /// The signed note's text.
    pub fn body(&self) -> String {
        format!("{}\n{}\n{}\n", self.origin, self.size, STANDARD.encode(self.root.0))
    }

    /// The checkpoint as a note signed by `key`.
    pub fn sign(&self, key: &LogKey) -> String {
        let body = self.body();
        let mut signature = key.public().id().to_be_bytes().to_vec();
        signature.extend_from_slice(&key.sign(body.as_bytes()));
        format!("{body}\n\u{2014} {} {}\n", key.name, STANDARD.encode(signature))
    }

    /// Reads a signed checkpoint note and checks it is signed by one of `keys`; answers
    /// the checkpoint and the key that signed it. A signature by a key not in `keys` is
    /// ignored; a failing one by a known key refuses the note.
    pub fn open<'k>(note: &str, keys: &'k [PublicKey]) -> Result<(Checkpoint, &'k PublicKey), NoteError> {
        let malformed = |why: &str| NoteError::Malformed(why.to_string());
        let split = note
            .find("\n\n")
            .ok_or_else(|| malformed("no blank line before the signatures"))?;
        let (body, signatures) = (&note[..=split], &note[split + 2..]);
        let parsed = tlog_tiles::Checkpoint::from_bytes(body.as_bytes()).map_err(|_| malformed("not a checkpoint"))?;
        let checkpoint = Checkpoint {
            origin: parsed.origin().to_string(),
            size: parsed.size(),
            root: *parsed.hash(),
        };
        let mut verified = None;
        for line in signatures.lines().filter(|line| !line.is_empty()) {
            let rest = line
                .strip_prefix("\u{2014} ")
                .ok_or_else(|| malformed("a signature line must start with an em dash"))?;
            let (name, signature) = rest
                .split_once(' ')
                .ok_or_else(|| malformed("a signature line names its key"))?;
            let bytes = STANDARD
                .decode(signature)
                .map_err(|_| malformed("a signature is base64"))?;
            if bytes.len() < 4 {
                return Err(malformed("a signature too short to hold a key id"));
            }
            let id = u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
            let Some(key) = keys.iter().find(|key| key.name == name && key.id() == id) else {
                continue;
            };
            if !key.verifies(body.as_bytes(), &bytes[4..]) {
                return Err(NoteError::BadSignature(key.verifier()));
            }
            verified.get_or_insert(key);
        }
        verified.map(|key| (checkpoint, key)).ok_or(NoteError::UnknownKey)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::evidence::tree::leaf_hash;

    fn key(seed: u8) -> LogKey {
        LogKey::from_seed("signoff.example.com/audit", [seed; 32])
    }

    #[test]
    fn a_signed_checkpoint_opens_with_its_key_only() {
        let checkpoint = Checkpoint {
            origin: "signoff.example.com/audit".into(),
            size: 42,
            root: leaf_hash(b"root"),
        };
        let note = checkpoint.sign(&key(1));
        assert!(note.starts_with("signoff.example.com/audit\n42\n"));
        let public = vec![key(1).public()];
        let (opened, by) = Checkpoint::open(&note, &public).expect("opens");
        assert_eq!(opened, checkpoint);
        assert_eq!(by, &public[0]);

        assert_eq!(Checkpoint::open(&note, &[key(2).public()]), Err(NoteError::UnknownKey));
        let forged = note.replace("\n42\n", "\n41\n");
        assert!(matches!(
            Checkpoint::open(&forged, &public),
            Err(NoteError::BadSignature(_))
        ));
    }

    #[test]
    fn verifier_keys_round_trip_and_their_id_is_checked() {
        for seed in 0..32 {
            let public = key(seed).public();
            assert_eq!(
                PublicKey::parse(&public.verifier()).as_ref(),
                Ok(&public),
                "seed {seed}"
            );
        }
        let public = key(3).public();
        let text = public.verifier();
        assert_eq!(PublicKey::parse(&text).expect("parses"), public);
        let wrong_id = text.replacen(&public.id_hex(), "00000000", 1);
        assert!(PublicKey::parse(&wrong_id).is_err());
        assert!(PublicKey::parse("nonsense").is_err());
    }

    /// The example key of `c2sp.org/signed-note`.
    #[test]
    fn the_specification_s_example_key_parses() {
        let key = PublicKey::parse("example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k")
            .expect("the spec's key");
        assert_eq!(key.name, "example.com/foo");
        let note = "This is an example message.\n\n\u{2014} example.com/foo Uw2QOkn8srV1yJGh2VYRlL1Tnagv1YEq6TfXppzi2ONncAlTgK7Ztg1ERYNZXsYjOBH3mFXmRKuwHjG1Yu72IneyaQM=\n";
        let (text, signatures) = note.split_once("\n\n").expect("blank line");
        let signature = STANDARD
            .decode(signatures.trim().rsplit(' ').next().expect("signature"))
            .expect("base64");
        assert_eq!(&signature[..4], &key.id().to_be_bytes());
        assert!(key.verifies(format!("{text}\n").as_bytes(), &signature[4..]));
    }
}
