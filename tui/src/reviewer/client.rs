//! The HTTP client of the Signoff API, shared by the interactive client and the scripting
//! subcommands.

use std::time::Duration;

use reqwest::{Method, RequestBuilder, Response, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;
use signoff_app::wire::{
    DecisionInput, DeviceCode, DeviceCodeRequest, DeviceToken, DeviceTokenError, DeviceTokenRequest, Me, RequestPage,
    RequestSummary, ReviewView,
};
use signoff_app::{RequestId, Verdict};

use crate::error::{ClientError, refusal_from};

/// Decisions made here are recorded as made in the terminal.
pub const CHANNEL_HEADER: &str = "X-Signoff-Channel";
pub const CHANNEL: &str = "terminal";

/// How long an ordinary call may take in all.
const CALL_TIMEOUT: Duration = Duration::from_secs(20);
/// The events stream sends a comment every ~15 s; silence this long means it is dead.
const READ_TIMEOUT: Duration = Duration::from_secs(45);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Page size asked of `GET /api/v1/requests`.
pub const PAGE_LIMIT: u32 = 500;

/// Which requests to list.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ListQuery {
    /// `pending` (the queue) or `decided` (history).
    pub status: ListStatus,
    pub needs_my_vote: bool,
    pub action: Option<String>,
    pub agent: Option<String>,
    pub limit: u32,
    pub cursor: Option<String>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ListStatus {
    #[default]
    Pending,
    Decided,
}

impl ListStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ListStatus::Pending => "pending",
            ListStatus::Decided => "decided",
        }
    }
}

/// One answer of the device-token poll.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DevicePoll {
    Granted(DeviceToken),
    /// Not confirmed yet: keep polling.
    Pending,
    /// Polling too fast: add 5 s to the interval.
    SlowDown,
    /// Over: `expired_token`, `access_denied`, `invalid_grant` or something unknown.
    Failed(DeviceTokenError),
}

#[derive(Clone, Debug)]
pub struct Client {
    http: reqwest::Client,
    server: String,
    token: Option<String>,
}

impl Client {
    /// A client of `server` (no trailing slash), signed in with `token` when given.
    pub fn new(server: &str, token: Option<String>) -> Result<Self, ClientError> {
        let http = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .read_timeout(READ_TIMEOUT)
            .user_agent(concat!("signoff/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ClientError::Local(format!("cannot set up HTTP: {e}")))?;
        Ok(Client {
            http,
            server: crate::config::normalize_server(server),
            token,
        })
    }

    pub fn server(&self) -> &str {
        &self.server
    }

    pub fn has_token(&self) -> bool {
        self.token.is_some()
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.server)
    }

    fn request(&self, method: Method, path: &str) -> Result<RequestBuilder, ClientError> {
        let token = self.token.as_ref().ok_or_else(|| ClientError::NotSignedIn {
            server: self.server.clone(),
        })?;
        Ok(self
            .http
            .request(method, self.url(path))
            .bearer_auth(token)
            .timeout(CALL_TIMEOUT))
    }

    pub async fn me(&self) -> Result<Me, ClientError> {
        let request = self.request(Method::GET, "/api/v1/me")?;
        self.json(request).await
    }

    pub async fn list(&self, query: &ListQuery) -> Result<RequestPage, ClientError> {
        let mut params: Vec<(&str, String)> = vec![("status", query.status.as_str().into())];
        if query.limit > 0 {
            params.push(("limit", query.limit.to_string()));
        }
        if query.needs_my_vote {
            params.push(("needs_my_vote", "true".into()));
        }
        if let Some(action) = &query.action {
            params.push(("action", action.clone()));
        }
        if let Some(agent) = &query.agent {
            params.push(("agent", agent.clone()));
        }
        if let Some(cursor) = &query.cursor {
            params.push(("cursor", cursor.clone()));
        }
        let request = self.request(Method::GET, "/api/v1/requests")?.query(&params);
        self.json(request).await
    }

    /// Every page of a listing, up to `max_items`; `on_page` sees each page as it arrives.
    /// Returns whether the listing was cut at `max_items`.
    pub async fn list_all(
        &self,
        query: &ListQuery,
        max_items: usize,
        mut on_page: impl FnMut(Vec<RequestSummary>, bool),
    ) -> Result<bool, ClientError> {
        let mut query = query.clone();
        let mut seen = 0usize;
        loop {
            let page = self.list(&query).await?;
            seen += page.items.len();
            let truncated = seen >= max_items && page.next_cursor.is_some();
            let last = page.next_cursor.is_none() || truncated || page.items.is_empty();
            on_page(page.items, last);
            if last {
                return Ok(truncated);
            }
            query.cursor = page.next_cursor;
        }
    }

    pub async fn get(&self, id: RequestId) -> Result<ReviewView, ClientError> {
        let request = self.request(Method::GET, &format!("/api/v1/requests/{id}"))?;
        self.json(request).await
    }

    pub async fn decide(&self, id: RequestId, verdict: Verdict, comment: &str) -> Result<ReviewView, ClientError> {
        let body = DecisionInput {
            verdict,
            comment: comment.to_string(),
            break_glass: false,
            grant: None,
        };
        let request = self
            .request(Method::POST, &format!("/api/v1/requests/{id}/decisions"))?
            .header(CHANNEL_HEADER, CHANNEL)
            .json(&body);
        self.json(request).await
    }

    /// Opens `GET /api/v1/events`; the caller reads the body as a stream.
    pub async fn events(&self, last_event_id: Option<&str>) -> Result<Response, ClientError> {
        let token = self.token.as_ref().ok_or_else(|| ClientError::NotSignedIn {
            server: self.server.clone(),
        })?;
        // No overall timeout here: the stream is meant to stay open; the read timeout
        // catches a dead connection.
        let mut request = self
            .http
            .get(self.url("/api/v1/events"))
            .bearer_auth(token)
            .header(reqwest::header::ACCEPT, "text/event-stream");
        if let Some(id) = last_event_id {
            request = request.header("Last-Event-ID", id);
        }
        let response = request.send().await.map_err(|e| self.transport(e))?;
        self.check(response).await
    }

    /// `POST /api/v1/tokens/revoke`: the stored token stops working at once.
    pub async fn revoke(&self) -> Result<(), ClientError> {
        let request = self.request(Method::POST, "/api/v1/tokens/revoke")?;
        let response = request.send().await.map_err(|e| self.transport(e))?;
        self.check(response).await.map(drop)
    }

    pub async fn device_code(&self, client_name: &str) -> Result<DeviceCode, ClientError> {
        let body = DeviceCodeRequest {
            client_name: Some(client_name.to_string()),
        };
        self.anonymous_json(Method::POST, "/api/v1/device/code", &body)
            .await
            .map_err(|error| match error {
                // Not "no such request": the server has no terminal sign-in at all.
                ClientError::Refused { status: 404, .. } => ClientError::Protocol(format!(
                    "{} does not offer terminal sign-in (no /api/v1/device/code); is it a recent Signoff server?",
                    self.server
                )),
                other => other,
            })
    }

    pub async fn device_token(&self, device_code: &str) -> Result<DevicePoll, ClientError> {
        let body = DeviceTokenRequest {
            device_code: device_code.to_string(),
        };
        let response = self
            .http
            .post(self.url("/api/v1/device/token"))
            .timeout(CALL_TIMEOUT)
            .json(&body)
            .send()
            .await
            .map_err(|e| self.transport(e))?;
        let status = response.status();
        if status.is_success() {
            return read_json(response).await.map(DevicePoll::Granted);
        }
        if status == StatusCode::BAD_REQUEST || status == StatusCode::UNAUTHORIZED {
            let bytes = response.bytes().await.map_err(|e| self.transport(e))?;
            if let Ok(refusal) = serde_json::from_slice::<DeviceTokenError>(&bytes) {
                return Ok(match refusal.error.as_str() {
                    "authorization_pending" => DevicePoll::Pending,
                    "slow_down" => DevicePoll::SlowDown,
                    _ => DevicePoll::Failed(refusal),
                });
            }
            return Err(refusal_from(status, &bytes, &self.server));
        }
        Err(self
            .check(response)
            .await
            .err()
            .unwrap_or_else(|| ClientError::Protocol(format!("unexpected status {status} from device/token"))))
    }

    async fn anonymous_json<B: Serialize, T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: &B,
    ) -> Result<T, ClientError> {
        let request = self
            .http
            .request(method, self.url(path))
            .timeout(CALL_TIMEOUT)
            .json(body);
        self.json(request).await
    }

    async fn json<T: DeserializeOwned>(&self, request: RequestBuilder) -> Result<T, ClientError> {
        let response = request.send().await.map_err(|e| self.transport(e))?;
        let response = self.check(response).await?;
        read_json(response).await
    }

    /// Turns a non-success answer into the error it means.
    async fn check(&self, response: Response) -> Result<Response, ClientError> {
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let bytes = response.bytes().await.unwrap_or_default();
        Err(refusal_from(status, &bytes, &self.server))
    }

    fn transport(&self, error: reqwest::Error) -> ClientError {
        if error.is_decode() {
            return ClientError::Protocol(error.to_string());
        }
        crate::error::unreachable(&self.server, &error)
    }
}

async fn read_json<T: DeserializeOwned>(response: Response) -> Result<T, ClientError> {
    let bytes = response
        .bytes()
        .await
        .map_err(|e| ClientError::Protocol(format!("reading the answer: {e}")))?;
    serde_json::from_slice(&bytes)
        .map_err(|e| ClientError::Protocol(format!("the answer is not what was expected: {e}")))
}
