//! The agent API from the agent's side: submit a request, wait for its decision, cancel
//! it, start it, report how the action went. `signoff request` (the CLI gate) and
//! `signoff hook claude-code` call it; neither decides anything, they act on what the
//! server answers (ARCHITECTURE.md, "A request, end to end"). Every answer is held to
//! what was submitted: the same request id, the digest computed here.
//!
//! The agent key comes from `SIGNOFF_AGENT_KEY` only, and is never printed or logged. It
//! goes over https, or over plain http to this machine only, unless the user opts in
//! with `SIGNOFF_ALLOW_INSECURE_HTTP=1`.

pub mod gate;
pub mod gateway;
pub mod hook;
pub mod mcp;
pub mod receipt;

use std::fmt;
use std::time::{Duration, Instant};

use reqwest::{Method, RequestBuilder, StatusCode};
use serde::de::DeserializeOwned;
use signoff_app::wire::{NewRequest, RequestView, ResultReport, limits};
use signoff_app::{RequestId, Status};

use crate::error::{ClientError, refusal_from};

/// Where the agent key is read from.
pub const KEY_ENV: &str = "SIGNOFF_AGENT_KEY";
/// Set to `1` to allow plain `http://` to a server that is not on this machine.
pub const INSECURE_HTTP_ENV: &str = "SIGNOFF_ALLOW_INSECURE_HTTP";

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long an ordinary call may take in all.
const CALL_TIMEOUT: Duration = Duration::from_secs(20);
/// One long-poll asks for at most this long: short enough that proxies and load
/// balancers do not cut an idle connection, long enough to cost nothing.
const WAIT_CHUNK: Duration = Duration::from_secs(50);
/// How many times a submission is sent when the server cannot be reached; the
/// `Idempotency-Key` makes every attempt the same request.
const SUBMIT_ATTEMPTS: u32 = 4;
/// While waiting, an unreachable server is retried until the request's expiry plus this.
const UNREACHABLE_GRACE: Duration = Duration::from_secs(60);

/// A client of the agent API, holding the agent's key.
#[derive(Clone)]
pub struct AgentApi {
    http: reqwest::Client,
    server: String,
    key: String,
}

impl fmt::Debug for AgentApi {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the key.
        f.debug_struct("AgentApi")
            .field("server", &self.server)
            .finish_non_exhaustive()
    }
}

/// How waiting ended.
#[derive(Clone, Debug, PartialEq)]
pub enum Waited {
    /// No longer pending: approved, denied, expired, cancelled (or already reported).
    Decided(RequestView),
    /// Still pending when the caller's deadline came.
    TimedOut(RequestView),
}

impl AgentApi {
    /// The server from `--server`/`SIGNOFF_SERVER`, the key from `SIGNOFF_AGENT_KEY`.
    pub fn from_env(server: Option<&str>) -> Result<AgentApi, ClientError> {
        let server = server
            .map(str::trim)
            .filter(|server| !server.is_empty())
            .ok_or_else(|| ClientError::Usage("which server? pass --server URL or set SIGNOFF_SERVER".into()))?;
        let key = std::env::var(KEY_ENV).unwrap_or_default();
        AgentApi::new(server, key.trim(), insecure_http_allowed())
    }

    /// A client for `server` with `key`; plain http to another machine only with
    /// `allow_insecure_http` (see [`agent_server`]).
    pub fn new(server: &str, key: &str, allow_insecure_http: bool) -> Result<AgentApi, ClientError> {
        if key.is_empty() {
            return Err(ClientError::NoAgentKey);
        }
        if !key.chars().all(|c| c.is_ascii_graphic()) {
            return Err(ClientError::AgentKeyRefused {
                server: server.to_string(),
                detail: "the key holds characters no key has".into(),
            });
        }
        let server = agent_server(server, allow_insecure_http)?;
        let http = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .user_agent(concat!("signoff/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ClientError::Local(format!("cannot set up HTTP: {e}")))?;
        Ok(AgentApi {
            http,
            server,
            key: key.to_string(),
        })
    }

    pub fn server(&self) -> &str {
        &self.server
    }

    /// The console page where reviewers decide the request.
    pub fn console_url(&self, id: RequestId) -> String {
        format!("{}/requests/{id}", self.server)
    }

    /// `POST /api/v1/requests`. Sent again, with the same key, when the server cannot be
    /// reached or answers with a server error: the `Idempotency-Key` makes a retry the
    /// same request, never a second one. The answer's digest must be the one computed
    /// here from what was sent: anything else is not the action this agent asked for.
    pub async fn submit(&self, request: &NewRequest, idempotency_key: &str) -> Result<RequestView, ClientError> {
        let digest = request.expected_digest().ok_or_else(|| {
            ClientError::Usage("a before/after diff cannot be checked here: send the diff as text".into())
        })?;
        let mut attempt = 1;
        loop {
            let call = self
                .call(Method::POST, "/api/v1/requests", CALL_TIMEOUT)
                .header("Idempotency-Key", idempotency_key)
                .json(request);
            match self.json::<RequestView>(call).await {
                Ok(answer) if answer.digest != digest => {
                    return Err(ClientError::Mismatch(format!(
                        "the server answered with digest {} for the action submitted as {digest}",
                        sanitize_hex(&answer.digest)
                    )));
                }
                Err(error) if is_transient(&error) && attempt < SUBMIT_ATTEMPTS => {
                    tracing::warn!(%error, attempt, "submitting failed; sending again");
                    tokio::time::sleep(Duration::from_millis(500) * 2u32.pow(attempt - 1)).await;
                    attempt += 1;
                }
                outcome => return outcome,
            }
        }
    }

    /// One `GET /api/v1/requests/{id}/wait`: answers when the request is decided, or after
    /// `timeout` (whole seconds, at least 1, at most the API's limit) still pending.
    pub async fn wait(&self, id: RequestId, timeout: Duration) -> Result<RequestView, ClientError> {
        let seconds = timeout.as_secs_f64().ceil().clamp(1.0, limits::MAX_WAIT_S as f64) as u64;
        let call = self
            .call(
                Method::GET,
                &format!("/api/v1/requests/{id}/wait"),
                Duration::from_secs(seconds) + CALL_TIMEOUT,
            )
            .query(&[("timeout_s", seconds)]);
        self.json(call).await
    }

    /// `GET /api/v1/requests/{id}`.
    pub async fn get(&self, id: RequestId) -> Result<RequestView, ClientError> {
        let call = self.call(Method::GET, &format!("/api/v1/requests/{id}"), CALL_TIMEOUT);
        self.json(call).await
    }

    /// `POST /api/v1/requests/{id}/cancel`: nobody can approve it any more.
    pub async fn cancel(&self, id: RequestId) -> Result<RequestView, ClientError> {
        let call = self.call(Method::POST, &format!("/api/v1/requests/{id}/cancel"), CALL_TIMEOUT);
        self.json(call).await
    }

    /// `POST /api/v1/requests/{id}/start`: recorded before the approved action runs; the
    /// server refuses a second start of the same approval (409 `already_started`).
    pub async fn start(&self, id: RequestId) -> Result<RequestView, ClientError> {
        let call = self.call(Method::POST, &format!("/api/v1/requests/{id}/start"), CALL_TIMEOUT);
        self.json(call).await
    }

    /// `POST /api/v1/requests/{id}/result`: how running the approved action went.
    pub async fn report(&self, id: RequestId, report: &ResultReport) -> Result<RequestView, ClientError> {
        let call = self
            .call(Method::POST, &format!("/api/v1/requests/{id}/result"), CALL_TIMEOUT)
            .json(report);
        self.json(call).await
    }

    /// Long-polls until `request` is no longer pending or `deadline` passes. A server
    /// that cannot be reached is retried (`on_retry` hears of each failure) until the
    /// deadline, or until the request would have expired anyway. Every answer must be
    /// `request` (its id and digest), else [`ClientError::Mismatch`].
    pub async fn wait_for_decision(
        &self,
        mut request: RequestView,
        deadline: Option<Instant>,
        mut on_retry: impl FnMut(&ClientError),
    ) -> Result<Waited, ClientError> {
        let submitted = request.clone();
        let expires_in = (request.expires_at - time::OffsetDateTime::now_utc())
            .try_into()
            .unwrap_or(Duration::ZERO);
        let give_up = Instant::now() + expires_in + UNREACHABLE_GRACE;
        let mut backoff = Duration::from_millis(500);
        loop {
            if request.status != Status::Pending {
                return Ok(Waited::Decided(request));
            }
            let remaining = deadline.map(|deadline| deadline.saturating_duration_since(Instant::now()));
            if remaining == Some(Duration::ZERO) {
                return Ok(Waited::TimedOut(request));
            }
            let chunk = remaining.map_or(WAIT_CHUNK, |remaining| remaining.min(WAIT_CHUNK));
            match self.wait(request.id, chunk).await {
                Ok(answer) => {
                    request = same_request(&submitted, answer)?;
                    backoff = Duration::from_millis(500);
                }
                Err(error) if is_transient(&error) && Instant::now() < give_up => {
                    on_retry(&error);
                    let pause = remaining.map_or(backoff, |remaining| remaining.min(backoff));
                    tokio::time::sleep(pause).await;
                    backoff = (backoff * 2).min(Duration::from_secs(10));
                }
                Err(error) => return Err(error),
            }
        }
    }

    fn call(&self, method: Method, path: &str, timeout: Duration) -> RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.server))
            .bearer_auth(&self.key)
            .timeout(timeout)
    }

    async fn json<T: DeserializeOwned>(&self, call: RequestBuilder) -> Result<T, ClientError> {
        let response = call.send().await.map_err(|e| self.transport(e))?;
        let status = response.status();
        let bytes = response.bytes().await.map_err(|e| self.transport(e))?;
        if !status.is_success() {
            return Err(self.refusal(status, &bytes));
        }
        serde_json::from_slice(&bytes)
            .map_err(|e| ClientError::Protocol(format!("the answer is not what was expected: {e}")))
    }

    fn refusal(&self, status: StatusCode, body: &[u8]) -> ClientError {
        match refusal_from(status, body, &self.server) {
            // The reviewers' "run signoff login" does not help an agent.
            ClientError::Unauthorized { server, detail } => ClientError::AgentKeyRefused { server, detail },
            other => other,
        }
    }

    fn transport(&self, error: reqwest::Error) -> ClientError {
        crate::error::unreachable(&self.server, &error)
    }
}

/// `answer` if it is the request that was submitted (same id, same digest), else
/// [`ClientError::Mismatch`]: an approval of anything else approves nothing this agent
/// asked for.
pub fn same_request(submitted: &RequestView, answer: RequestView) -> Result<RequestView, ClientError> {
    if answer.id != submitted.id {
        return Err(ClientError::Mismatch(format!(
            "the server answered for request {} while this is request {}",
            answer.id, submitted.id
        )));
    }
    if answer.digest != submitted.digest {
        return Err(ClientError::Mismatch(format!(
            "the server answered with digest {} for request {} submitted with digest {}",
            sanitize_hex(&answer.digest),
            submitted.id,
            submitted.digest
        )));
    }
    Ok(answer)
}

/// A digest from the server, fit to print (it may be anything).
fn sanitize_hex(text: &str) -> String {
    let shown: String = text.chars().take(64).filter(char::is_ascii_alphanumeric).collect();
    if shown.is_empty() { "(none)".into() } else { shown }
}

/// Whether `SIGNOFF_ALLOW_INSECURE_HTTP=1` is set.
pub fn insecure_http_allowed() -> bool {
    std::env::var(INSECURE_HTTP_ENV).is_ok_and(|value| value.trim() == "1")
}

/// The server URL the agent side may send its key to: `https://`, or `http://` to this
/// machine (127.0.0.0/8, ::1, localhost) only, since the key and the approval travel in
/// the clear and could be read or forged on the way. `allow_insecure_http` lifts that.
pub fn agent_server(server: &str, allow_insecure_http: bool) -> Result<String, ClientError> {
    let server = crate::config::normalize_server(server);
    let url = reqwest::Url::parse(&server)
        .map_err(|e| ClientError::Usage(format!("the server `{server}` is not a URL: {e}")))?;
    match url.scheme() {
        "https" => Ok(server),
        "http" if allow_insecure_http || is_loopback(&url) => Ok(server),
        "http" => Err(ClientError::Usage(format!(
            "refusing plain http:// to {}: the agent key and the approval would cross the network unprotected; \
             use https://, or set {INSECURE_HTTP_ENV}=1 to allow it anyway",
            url.host_str().unwrap_or_default()
        ))),
        _ => Err(ClientError::Usage(format!(
            "the server must be an http:// or https:// URL, not `{server}`"
        ))),
    }
}

fn is_loopback(url: &reqwest::Url) -> bool {
    // The URL parser has already turned every spelling of an address into its usual one.
    let Some(host) = url.host_str() else {
        return false;
    };
    let address = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost") || address.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Worth trying again: the server could not be reached, or failed on its side.
fn is_transient(error: &ClientError) -> bool {
    matches!(error, ClientError::Unreachable { .. } | ClientError::Protocol(_))
}

/// An idempotency key nobody else will send.
pub fn fresh_idempotency_key() -> String {
    format!("signoff-{}", uuid::Uuid::now_v7())
}

/// Text a field of a request may hold: characters the API refuses (control characters
/// other than newline and tab) become `�`, and text past `max_chars` is cut with `…`.
pub fn field_text(text: &str, max_chars: usize) -> String {
    let cleaned: String = text
        .chars()
        .map(|c| {
            if c.is_control() && !matches!(c, '\n' | '\t' | '\r') {
                '\u{FFFD}'
            } else {
                c
            }
        })
        .collect();
    if cleaned.chars().count() <= max_chars {
        return cleaned;
    }
    let mut cut: String = cleaned.chars().take(max_chars.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_is_required_and_never_shown() {
        assert_eq!(
            AgentApi::new("https://s", "", false).expect_err("no key"),
            ClientError::NoAgentKey
        );
        let api = AgentApi::new("https://s/", "so_agent_secret", false).expect("client");
        assert!(!format!("{api:?}").contains("so_agent_secret"));
        assert_eq!(api.server(), "https://s");
    }

    #[test]
    fn plain_http_only_to_this_machine_unless_allowed() {
        for local in [
            "http://127.0.0.1:3000",
            "http://127.8.9.10",
            "http://[::1]:3000/",
            "http://localhost:3000",
            "HTTP://LOCALHOST",
        ] {
            assert!(agent_server(local, false).is_ok(), "{local}");
        }
        for remote in [
            "http://signoff.example.com",
            "http://10.0.0.5:3000",
            "http://[2001:db8::1]",
            "http://localhost.example.com",
            "http://127.0.0.1.nip.io",
        ] {
            let refused = agent_server(remote, false).expect_err(remote);
            assert_eq!(refused.exit_code(), crate::error::exit::USAGE);
            assert!(refused.to_string().contains(INSECURE_HTTP_ENV), "{refused}");
            assert!(agent_server(remote, true).is_ok(), "{remote}");
        }
        assert!(agent_server("https://signoff.example.com", false).is_ok());
        assert!(agent_server("ftp://signoff.example.com", true).is_err());
        assert!(agent_server("signoff.example.com", true).is_err());
    }

    #[test]
    fn field_text_fits_the_api() {
        assert_eq!(field_text("rm -rf /\u{1b}[31m", 100), "rm -rf /\u{FFFD}[31m");
        assert_eq!(field_text("abcdef", 4), "abc…");
        assert_eq!(field_text("a\nb", 4), "a\nb");
    }
}
