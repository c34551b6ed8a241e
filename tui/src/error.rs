//! What can go wrong talking to the server, the exit code a script sees for it, and what
//! the server's error answers mean (for the reviewer's client and the agent side alike).

use std::fmt;

use reqwest::StatusCode;
use signoff_app::wire::ErrorBody;

/// Exit codes of `signoff`, relied upon by scripts (listed in `signoff --help`).
pub mod exit {
    /// Done.
    pub const OK: u8 = 0;
    /// The server refused: not eligible, own request, already decided, expired, not found…
    pub const REFUSED: u8 = 1;
    /// Bad arguments (clap uses 2 as well).
    pub const USAGE: u8 = 2;
    /// Not signed in, or the sign-in is no longer valid: run `signoff login`.
    pub const AUTH: u8 = 3;
    /// The server could not be reached or answered with a server error.
    pub const UNREACHABLE: u8 = 4;
    /// A local problem: the credentials file or the terminal could not be used.
    pub const LOCAL: u8 = 5;

    // `signoff request` (the CLI gate): how a request ended when its command did not run.
    /// A reviewer denied the request.
    pub const DENIED: u8 = 10;
    /// Nobody decided before the request expired.
    pub const EXPIRED: u8 = 11;
    /// The request was cancelled (by this agent elsewhere, or an earlier run).
    pub const CANCELLED: u8 = 12;
    /// No decision within `--timeout`; the gate cancelled the request.
    pub const TIMED_OUT: u8 = 13;
    /// The server's answer was for another request or another action (its id or digest
    /// is not what was submitted): it approves nothing that was asked for.
    pub const MISMATCH: u8 = 14;
    /// This approval was already started (by an earlier run with the same
    /// `--idempotency-key`, here or elsewhere): one approval runs once.
    pub const ALREADY_STARTED: u8 = 15;
    /// The approved command could not be started (as shells say: not executable).
    pub const CANNOT_RUN: u8 = 126;
    /// The approved command was not found (as shells say).
    pub const COMMAND_NOT_FOUND: u8 = 127;
    /// Interrupted (Ctrl-C, SIGINT) while waiting; the request was cancelled.
    pub const INTERRUPTED: u8 = 130;
    /// Terminated (SIGTERM) while waiting; the request was cancelled.
    pub const TERMINATED: u8 = 143;
}

/// Errors of the client, plain enough to show to a person as they are.
///
/// Every variant carries text only so that errors can travel in messages and be compared
/// in tests.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ClientError {
    #[error("no server chosen: pass --server URL, set SIGNOFF_SERVER, or run `signoff login --server URL`")]
    NoServer,
    #[error("not signed in to {server}: run `signoff login --server {server}`")]
    NotSignedIn { server: String },
    #[error("your sign-in to {server} is no longer valid ({detail}): run `signoff login`")]
    Unauthorized { server: String, detail: String },
    /// The terminal sign-in did not complete (denied, expired, invalid code).
    #[error("sign-in failed: {0}")]
    SignInFailed(String),
    /// The server understood and said no; `code` is the API's error code.
    #[error("{}", Refusal { code, message })]
    Refused { status: u16, code: String, message: String },
    #[error("no agent key: set SIGNOFF_AGENT_KEY to the key `signoff-server agents create` printed")]
    NoAgentKey,
    #[error("{server} refused the agent key ({detail}): check SIGNOFF_AGENT_KEY")]
    AgentKeyRefused { server: String, detail: String },
    #[error("cannot reach {server}: {detail}")]
    Unreachable { server: String, detail: String },
    #[error("unexpected answer from the server: {0}")]
    Protocol(String),
    /// The server answered about another request or action than the one submitted.
    #[error("the server's answer does not match what was submitted ({0}): it is not acted on")]
    Mismatch(String),
    #[error("{0}")]
    Usage(String),
    #[error("{0}")]
    Local(String),
}

impl ClientError {
    pub fn exit_code(&self) -> u8 {
        match self {
            ClientError::Refused { .. } => exit::REFUSED,
            ClientError::Usage(_) => exit::USAGE,
            // No server named and no stored login: signing in is the remedy.
            ClientError::NoServer
            | ClientError::NotSignedIn { .. }
            | ClientError::Unauthorized { .. }
            | ClientError::SignInFailed(_)
            | ClientError::NoAgentKey
            | ClientError::AgentKeyRefused { .. } => exit::AUTH,
            ClientError::Unreachable { .. } | ClientError::Protocol(_) => exit::UNREACHABLE,
            ClientError::Mismatch(_) => exit::MISMATCH,
            ClientError::Local(_) => exit::LOCAL,
        }
    }

    /// The API error code when the server refused, e.g. `not_eligible`.
    pub fn code(&self) -> Option<&str> {
        match self {
            ClientError::Refused { code, .. } => Some(code),
            _ => None,
        }
    }

    pub fn is_auth(&self) -> bool {
        matches!(self, ClientError::NotSignedIn { .. } | ClientError::Unauthorized { .. })
    }

    pub fn is_unreachable(&self) -> bool {
        matches!(self, ClientError::Unreachable { .. })
    }
}

/// A refusal in a reviewer's words, followed by the server's own message when it adds
/// something.
struct Refusal<'a> {
    code: &'a str,
    message: &'a str,
}

impl fmt::Display for Refusal<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let headline = refusal_headline(self.code);
        match headline {
            Some(headline) if self.message.is_empty() || self.message == headline => f.write_str(headline),
            Some(headline) => write!(f, "{headline} ({})", self.message),
            None if self.message.is_empty() => write!(f, "refused: {}", self.code),
            None => f.write_str(self.message),
        }
    }
}

/// What an API error code means for the person deciding.
pub fn refusal_headline(code: &str) -> Option<&'static str> {
    Some(match code {
        "not_pending" => "This request is no longer pending.",
        "expired" => "This request has expired; it can no longer be approved.",
        "already_decided" => "This request was already decided (by you or another reviewer).",
        "not_eligible" => "You are not an eligible approver for this request.",
        "own_request" => "You cannot decide a request made by you or on your behalf.",
        "comment_required" => "A comment is required.",
        "unauthorized" => "Your sign-in is no longer valid: run `signoff login`.",
        "not_found" => "No such request.",
        "forbidden" => "You are not allowed to do this.",
        _ => return None,
    })
}

/// What an error status and its `{"error": {...}}` body mean.
pub fn refusal_from(status: StatusCode, body: &[u8], server: &str) -> ClientError {
    let parsed = serde_json::from_slice::<ErrorBody>(body).ok();
    let (code, message) = match parsed {
        Some(body) => (body.error.code, body.error.message),
        None => (String::new(), String::new()),
    };
    if status == StatusCode::UNAUTHORIZED {
        return ClientError::Unauthorized {
            server: server.to_string(),
            detail: if message.is_empty() {
                "token unknown, revoked or expired".into()
            } else {
                message
            },
        };
    }
    if status.is_server_error() {
        return ClientError::Protocol(format!("server error {}", status.as_u16()));
    }
    if code.is_empty() {
        return ClientError::Refused {
            status: status.as_u16(),
            code: match status {
                StatusCode::NOT_FOUND => "not_found".into(),
                StatusCode::FORBIDDEN => "forbidden".into(),
                _ => format!("http_{}", status.as_u16()),
            },
            message,
        };
    }
    ClientError::Refused {
        status: status.as_u16(),
        code,
        message,
    }
}

/// A server that could not be reached, saying why without the URL (reqwest's Display
/// names it); the innermost cause says why.
pub fn unreachable(server: &str, error: &reqwest::Error) -> ClientError {
    let detail = if error.is_timeout() {
        "timed out".to_string()
    } else if error.is_connect() {
        "connection failed".to_string()
    } else {
        let mut source: &dyn std::error::Error = error;
        while let Some(inner) = source.source() {
            source = inner;
        }
        source.to_string()
    };
    ClientError::Unreachable {
        server: server.to_string(),
        detail,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_read_plainly_and_exit_with_1() {
        let error = ClientError::Refused {
            status: 403,
            code: "not_eligible".into(),
            message: "approver groups: dba".into(),
        };
        assert_eq!(
            error.to_string(),
            "You are not an eligible approver for this request. (approver groups: dba)"
        );
        assert_eq!(error.exit_code(), exit::REFUSED);
        let unknown = ClientError::Refused {
            status: 409,
            code: "weird".into(),
            message: "".into(),
        };
        assert_eq!(unknown.to_string(), "refused: weird");
    }

    #[test]
    fn exit_codes_follow_the_documented_table() {
        assert_eq!(ClientError::NoServer.exit_code(), exit::AUTH);
        assert_eq!(ClientError::Usage("x".into()).exit_code(), exit::USAGE);
        assert_eq!(ClientError::NotSignedIn { server: "s".into() }.exit_code(), exit::AUTH);
        assert_eq!(
            ClientError::Unreachable {
                server: "s".into(),
                detail: "refused".into()
            }
            .exit_code(),
            exit::UNREACHABLE
        );
        assert_eq!(ClientError::Local("disk".into()).exit_code(), exit::LOCAL);
    }

    #[test]
    fn error_bodies_become_refusals_and_401_means_sign_in_again() {
        let body = br#"{"error":{"code":"own_request","message":"you asked for this"}}"#;
        let error = refusal_from(StatusCode::FORBIDDEN, body, "https://s");
        assert_eq!(error.code(), Some("own_request"));
        let unauthorized = refusal_from(StatusCode::UNAUTHORIZED, b"", "https://s");
        assert!(unauthorized.is_auth());
        assert!(unauthorized.to_string().contains("signoff login"));
        let missing = refusal_from(StatusCode::NOT_FOUND, b"<html>", "https://s");
        assert_eq!(missing.code(), Some("not_found"));
        let broken = refusal_from(StatusCode::BAD_GATEWAY, b"", "https://s");
        assert_eq!(broken.exit_code(), exit::UNREACHABLE);
    }
}
