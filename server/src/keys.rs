//! Secrets handed to programs (API keys, later terminal tokens): random, shown once,
//! stored only as SHA-256.

use std::path::Path;

use rand::RngCore;

/// Agent API keys start with this, so a glance (or a secret scanner) tells them apart.
pub const AGENT_KEY_PREFIX: &str = "so_agent_";

/// A new secret with a recognisable prefix, e.g. `so_agent_…`.
pub fn generate(prefix: &str) -> String {
    let mut bytes = [0_u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!("{prefix}{}", hex::encode(bytes))
}

pub fn hash(secret: &str) -> String {
    signoff_app::sha256_hex(secret.as_bytes())
}

/// The part of a key that is safe to show in listings and logs.
pub fn display_prefix(secret: &str) -> String {
    secret.chars().take(14).collect()
}

/// Writes a new file readable by the server's user only (0600); refuses to replace one.
#[cfg(unix)]
pub fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(text.as_bytes())
}

/// Writes a new file (no permissions to narrow on this platform).
#[cfg(not(unix))]
pub fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    std::fs::write(path, text)
}

#[cfg(test)]
mod tests {
    #[test]
    fn keys_are_random_and_hashes_do_not_reveal_them() {
        let a = super::generate("so_agent_");
        let b = super::generate("so_agent_");
        assert_ne!(a, b);
        assert!(a.starts_with("so_agent_") && a.len() == 9 + 64);
        assert_eq!(super::hash(&a).len(), 64);
        assert!(!super::hash(&a).contains(&a[9..]));
    }
}
