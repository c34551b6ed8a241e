//! Where the client keeps its sign-in, and which server and token a command uses.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::error::ClientError;

/// What `signoff login` stores: one server and the token it issued.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Credentials {
    pub server: String,
    pub token: String,
    #[serde(with = "time::serde::rfc3339::option", default)]
    pub expires_at: Option<OffsetDateTime>,
}

/// `dirs::config_dir()/signoff/credentials.json` (`$XDG_CONFIG_HOME` on Linux).
pub fn credentials_path() -> Result<PathBuf, ClientError> {
    dirs::config_dir()
        .map(|dir| dir.join("signoff").join("credentials.json"))
        .ok_or_else(|| ClientError::Local("cannot find a configuration directory".into()))
}

/// `dirs::state_dir()` (or the local data dir) `/signoff/signoff.log`.
pub fn log_path() -> Option<PathBuf> {
    dirs::state_dir()
        .or_else(dirs::data_local_dir)
        .map(|dir| dir.join("signoff").join("signoff.log"))
}

/// The stored sign-in, if any. A file that cannot be read or parsed is an error (so a
/// person learns about a broken file rather than silently being signed out).
pub fn load_credentials(path: &Path) -> Result<Option<Credentials>, ClientError> {
    let text = match fs::read_to_string(path) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(error) => {
            return Err(ClientError::Local(format!("cannot read {}: {error}", path.display())));
        }
    };
    serde_json::from_str(&text).map(Some).map_err(|error| {
        ClientError::Local(format!(
            "{} is not valid ({error}); run `signoff logout` then `signoff login`",
            path.display()
        ))
    })
}

/// Writes the sign-in readable by its owner only (file 0600 in a 0700 directory),
/// replacing any earlier one atomically.
pub fn save_credentials(path: &Path, credentials: &Credentials) -> Result<(), ClientError> {
    let local =
        |what: &str, error: std::io::Error| ClientError::Local(format!("cannot {what} {}: {error}", path.display()));
    let dir = path
        .parent()
        .ok_or_else(|| ClientError::Local(format!("{} has no directory", path.display())))?;
    create_private_dir(dir).map_err(|e| local("create the directory of", e))?;
    let json = serde_json::to_vec_pretty(credentials)
        .map_err(|e| ClientError::Local(format!("cannot encode credentials: {e}")))?;
    let temporary = dir.join(format!(".credentials.{}.tmp", std::process::id()));
    let written = (|| {
        let mut file = private_file(&temporary)?;
        file.write_all(&json)?;
        file.sync_all()?;
        fs::rename(&temporary, path)
    })();
    if let Err(error) = written {
        let _ = fs::remove_file(&temporary);
        return Err(local("write", error));
    }
    Ok(())
}

/// Removes the stored sign-in; `Ok(false)` when there was none.
pub fn delete_credentials(path: &Path) -> Result<bool, ClientError> {
    match fs::remove_file(path) {
        Ok(()) => Ok(true),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(error) => Err(ClientError::Local(format!("cannot delete {}: {error}", path.display()))),
    }
}

#[cfg(unix)]
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
    // An existing directory keeps its mode unless we tighten it.
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
}

#[cfg(not(unix))]
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    fs::create_dir_all(dir)
}

#[cfg(unix)]
fn private_file(path: &Path) -> std::io::Result<fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
}

#[cfg(not(unix))]
fn private_file(path: &Path) -> std::io::Result<fs::File> {
    fs::File::create(path)
}

/// `https://signoff.example.com/` and `https://signoff.example.com` are the same server.
pub fn normalize_server(server: &str) -> String {
    server.trim().trim_end_matches('/').to_string()
}

/// The server and token a command uses: `--server`/`SIGNOFF_SERVER` first, else the
/// stored login's server. The stored token is used only for the server it came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    pub server: String,
    pub token: Option<String>,
}

/// This run's target: `server_flag` over the stored login's server ([`resolve_target`]).
pub fn current_target(server_flag: Option<&str>) -> Result<Target, ClientError> {
    let stored = load_credentials(&credentials_path()?)?;
    resolve_target(server_flag, stored.as_ref(), OffsetDateTime::now_utc())
}

pub fn resolve_target(
    server_flag: Option<&str>,
    stored: Option<&Credentials>,
    now: OffsetDateTime,
) -> Result<Target, ClientError> {
    let server = match (server_flag.map(normalize_server), stored) {
        (Some(server), _) if !server.is_empty() => server,
        (_, Some(stored)) => normalize_server(&stored.server),
        _ => return Err(ClientError::NoServer),
    };
    let token = stored
        .filter(|stored| normalize_server(&stored.server) == server)
        .filter(|stored| stored.expires_at.is_none_or(|at| at > now))
        .map(|stored| stored.token.clone());
    Ok(Target { server, token })
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn stored(server: &str) -> Credentials {
        Credentials {
            server: server.into(),
            token: "tok".into(),
            expires_at: Some(datetime!(2030-01-01 0:00 UTC)),
        }
    }

    #[test]
    fn flag_wins_and_token_only_goes_to_its_own_server() {
        let now = datetime!(2026-01-01 0:00 UTC);
        let creds = stored("https://a.example/");
        let target = resolve_target(None, Some(&creds), now).expect("stored server");
        assert_eq!(target.server, "https://a.example");
        assert_eq!(target.token.as_deref(), Some("tok"));

        let other = resolve_target(Some("https://b.example"), Some(&creds), now).expect("flag");
        assert_eq!(other.server, "https://b.example");
        assert_eq!(other.token, None);

        let same = resolve_target(Some("https://a.example"), Some(&creds), now).expect("flag");
        assert_eq!(same.token.as_deref(), Some("tok"));

        assert_eq!(resolve_target(None, None, now), Err(ClientError::NoServer));
    }

    #[test]
    fn expired_token_is_not_used() {
        let creds = stored("https://a.example");
        let target = resolve_target(None, Some(&creds), datetime!(2031-01-01 0:00 UTC)).expect("server still known");
        assert_eq!(target.token, None);
    }

    #[test]
    fn credentials_round_trip_privately() {
        let dir = std::env::temp_dir().join(format!("signoff-test-{}-{}", std::process::id(), uuid::Uuid::now_v7()));
        let path = dir.join("signoff").join("credentials.json");
        assert_eq!(load_credentials(&path), Ok(None));
        let creds = stored("https://a.example");
        save_credentials(&path, &creds).expect("saved");
        assert_eq!(load_credentials(&path), Ok(Some(creds)));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |p: &Path| fs::metadata(p).map(|m| m.permissions().mode() & 0o777).ok();
            assert_eq!(mode(&path), Some(0o600));
            assert_eq!(mode(&dir.join("signoff")), Some(0o700));
        }
        assert_eq!(delete_credentials(&path), Ok(true));
        assert_eq!(delete_credentials(&path), Ok(false));
        let _ = fs::remove_dir_all(&dir);
    }
}
