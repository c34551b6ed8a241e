//! MCP: the agent's tools (`request_approval`, `check_approval`, `get_request`) over
//! streamable HTTP at `/mcp`, with the agent key as bearer. The tools call the same
//! `Service` methods as the agent API and decide nothing themselves. See ARCHITECTURE.md,
//! "MCP".

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use rmcp::handler::server::common::Extension;
use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{
    CallToolResult, ContentBlock, Implementation, ProgressNotificationParam, RequestMetaObject, ServerCapabilities,
    ServerConfig,
};
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{ErrorData, Peer, RoleServer, ServerHandler, schemars, tool, tool_handler, tool_router};
use serde::Deserialize;
use serde_json::{Value, json};

use signoff_app::wire::{NewRequest, RequestView, limits};
use signoff_app::{Status, Verdict, check_exact_json};

use crate::Error;
use crate::api::AgentAuth;
use crate::door::request_id;
use crate::service::{Service, WaitSlot};
use crate::state::AppState;
use crate::store::Agent;

/// Many MCP clients drop a tool call that blocks for about a minute: the tools wait at most
/// this long, then answer "still pending" and the model calls `check_approval`.
pub const MAX_WAIT_S: u64 = 55;
pub const DEFAULT_WAIT_S: u64 = 45;
/// How often a waiting tool tells the client it is still waiting (when it gave a progress token).
const PROGRESS_EVERY: Duration = Duration::from_secs(5);

/// `/mcp`, behind the agent's bearer key: an unknown or revoked key is a 401 before any
/// MCP exchange. Stateless: each POST carries its own key, so no MCP session outlives or
/// crosses a key.
pub fn router(state: AppState) -> Router<AppState> {
    let service = Arc::clone(&state.service);
    let config = StreamableHttpServerConfig::default()
        .with_legacy_session_mode(false)
        // The Host check protects unauthenticated local servers from DNS rebinding; this one
        // is public and every call carries a key no browser sends by itself.
        .disable_allowed_hosts()
        .with_max_request_body_bytes(limits::BODY_BYTES);
    let mcp = StreamableHttpService::new(
        move || Ok(Tools::new(Arc::clone(&service))),
        Arc::new(LocalSessionManager::default()),
        config,
    );
    Router::new()
        .route_service("/mcp", mcp)
        .route_layer(axum::middleware::from_fn_with_state(state, authenticate))
}

/// Puts the calling agent in the request's extensions, where the tools find it.
async fn authenticate(
    State(_): State<AppState>,
    AgentAuth(agent): AgentAuth,
    mut request: Request,
    next: Next,
) -> Response {
    request.extensions_mut().insert(agent);
    next.run(request).await
}

#[derive(Clone)]
pub struct Tools {
    service: Arc<Service>,
    #[allow(dead_code, reason = "read by the code #[tool_handler] generates")]
    tool_router: ToolRouter<Tools>,
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RequestApproval {
    /// Dotted action name, e.g. `deploy.service` or `db.export`.
    pub action: String,
    /// What the action touches, e.g. `k8s://prod/payments-api`.
    pub resource: String,
    /// A one-line title the reviewer reads first.
    pub title: String,
    /// Why the action is needed.
    #[serde(default)]
    pub reason: String,
    /// The exact command or arguments that will run.
    #[serde(default)]
    pub payload: Option<Value>,
    /// Unified diff text, or `{"before": …, "after": …}` from which the server computes one.
    #[serde(default)]
    pub diff: Option<Value>,
    /// Labels, e.g. `{"env": "prod"}`.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// The person the agent acts for (email or subject).
    #[serde(default)]
    pub on_behalf_of: Option<String>,
    /// Seconds to wait for a decision before answering "still pending" (default 45, at most 55).
    #[serde(default)]
    pub wait_s: Option<u64>,
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckApproval {
    /// The request's id, as `request_approval` answered it.
    pub id: String,
    /// Seconds to wait for a decision before answering "still pending" (default 45, at most 55).
    #[serde(default)]
    pub wait_s: Option<u64>,
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GetRequest {
    /// The request's id.
    pub id: String,
}

/// Who is waiting and how to tell them so.
struct Progress {
    peer: Peer<RoleServer>,
    meta: RequestMetaObject,
}

#[tool_router]
impl Tools {
    pub fn new(service: Arc<Service>) -> Self {
        Tools {
            service,
            tool_router: Self::tool_router(),
        }
    }

    #[tool(
        description = "Ask a human to approve a sensitive action before you run it. Waits up to wait_s seconds \
                       (default 45) for the decision. Answers approved (run the action), denied (do not run it; \
                       the reviewer's comment says why, adapt to it), expired or cancelled; or still pending with \
                       the id: then call check_approval with that id to keep waiting."
    )]
    async fn request_approval(
        &self,
        Parameters(input): Parameters<RequestApproval>,
        Extension(parts): Extension<axum::http::request::Parts>,
        meta: RequestMetaObject,
        peer: Peer<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        let agent = calling_agent(&parts)?;
        let outcome = async {
            let wait = wait_time(input.wait_s)?;
            // The wait's slot first: an agent at its cap is refused before anything is
            // created, never left with a pending request it was not told of.
            let slot = self.service.reserve_wait(agent)?;
            let new_request = NewRequest {
                action: input.action,
                resource: input.resource,
                title: input.title,
                reason: input.reason,
                labels: input.labels,
                payload: input.payload.unwrap_or(Value::Null),
                diff: input.diff,
                context: None,
                on_behalf_of: input.on_behalf_of,
                ttl_s: None,
                callback_url: None,
            };
            refuse_inexact(&new_request)?;
            let (request, _) = self.service.create_request(agent, new_request, None, None).await?;
            self.wait_for_decision(&slot, agent, &request, wait, Progress { peer, meta })
                .await
        }
        .await;
        Ok(decision_result(outcome))
    }

    #[tool(
        description = "Keep waiting for the decision on a request made with request_approval. Waits up to wait_s \
                       seconds (default 45) and answers like request_approval: approved, denied with the \
                       reviewer's comment, expired, cancelled, or still pending (call check_approval again)."
    )]
    async fn check_approval(
        &self,
        Parameters(input): Parameters<CheckApproval>,
        Extension(parts): Extension<axum::http::request::Parts>,
        meta: RequestMetaObject,
        peer: Peer<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        let agent = calling_agent(&parts)?;
        let outcome = async {
            let wait = wait_time(input.wait_s)?;
            let slot = self.service.reserve_wait(agent)?;
            let request = self.service.request_for_agent(agent, request_id(&input.id)?).await?;
            self.wait_for_decision(&slot, agent, &request, wait, Progress { peer, meta })
                .await
        }
        .await;
        Ok(decision_result(outcome))
    }

    #[tool(description = "Read one of your requests as the agent API shows it: status, decisions, diff, digest.")]
    async fn get_request(
        &self,
        Parameters(input): Parameters<GetRequest>,
        Extension(parts): Extension<axum::http::request::Parts>,
    ) -> Result<CallToolResult, ErrorData> {
        let agent = calling_agent(&parts)?;
        let outcome = async { self.service.request_for_agent(agent, request_id(&input.id)?).await }.await;
        Ok(match outcome {
            Ok(request) => {
                let text = summary(&request);
                with_text(CallToolResult::structured(view_json(&request)), text)
            }
            Err(err) => error_result(&err),
        })
    }
}

impl Tools {
    /// The lifecycle's long-poll (`Service::wait`) in slices, so the client hears of the wait
    /// between them. Returns the request as it stands at the end.
    async fn wait_for_decision(
        &self,
        slot: &WaitSlot,
        agent: &Agent,
        request: &RequestView,
        wait: Duration,
        progress: Progress,
    ) -> Result<RequestView, Error> {
        let token = progress.meta.get_progress_token();
        let shutdown = self.service.shutdown_signal();
        let deadline = tokio::time::Instant::now() + wait;
        let mut current = request.clone();
        loop {
            let remaining = deadline.saturating_duration_since(tokio::time::Instant::now());
            if current.status != Status::Pending || remaining.is_zero() || *shutdown.borrow() {
                return Ok(current);
            }
            current = self
                .service
                .wait_holding(slot, agent, request.id, remaining.min(PROGRESS_EVERY))
                .await?;
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if let Some(token) = &token
                && current.status == Status::Pending
                && !left.is_zero()
            {
                let waited = wait.saturating_sub(left);
                let note = ProgressNotificationParam::new(token.clone(), waited.as_secs_f64().floor())
                    .with_total(wait.as_secs_f64())
                    .with_message(format!("waiting for a reviewer to decide request {}", request.id));
                // A client that stopped listening to progress still gets the answer.
                if let Err(err) = progress.peer.notify_progress(note).await {
                    tracing::debug!(%err, "progress notification not delivered");
                }
            }
        }
    }
}

#[tool_handler]
impl ServerHandler for Tools {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("signoff", env!("CARGO_PKG_VERSION")))
            .with_instructions(
                "Signoff holds sensitive actions until a human approves them. Before running one, call \
                 request_approval; run the action only when it answers approved. On denied, read the \
                 reviewer's comment and adapt. On still pending, call check_approval with the id.",
            )
    }
}

/// The agent `authenticate` put on the HTTP request.
fn calling_agent(parts: &axum::http::request::Parts) -> Result<&Agent, ErrorData> {
    parts
        .extensions
        .get::<Agent>()
        .ok_or_else(|| ErrorData::internal_error("the request reached the tools without an agent", None))
}

fn wait_time(wait_s: Option<u64>) -> Result<Duration, Error> {
    let wait_s = wait_s.unwrap_or(DEFAULT_WAIT_S);
    if wait_s > MAX_WAIT_S {
        return Err(Error::Invalid(format!(
            "wait_s must be at most {MAX_WAIT_S} seconds; call check_approval to wait longer"
        )));
    }
    Ok(Duration::from_secs(wait_s))
}

/// The agent API refuses integers the digest could not tell apart; so do the tools. (Duplicate
/// keys are already gone once the MCP layer has parsed the arguments.)
fn refuse_inexact(request: &NewRequest) -> Result<(), Error> {
    let text = serde_json::to_vec(request).map_err(|err| Error::Internal(format!("request as JSON: {err}")))?;
    check_exact_json(&text).map_err(|refusal| Error::Invalid(refusal.to_string()))
}

/// The answer of `request_approval` and `check_approval`: what happened, in words and as JSON.
fn decision_result(outcome: Result<RequestView, Error>) -> CallToolResult {
    let request = match outcome {
        Ok(request) => request,
        Err(err) => return error_result(&err),
    };
    let id = request.id.to_string();
    let denial_comment = request
        .decisions
        .iter()
        .rev()
        .find(|decision| decision.verdict == Verdict::Deny)
        .map(|decision| decision.comment.clone())
        // Denied by policy at once: the policy's reason is what the agent adapts to.
        .or_else(|| {
            request
                .policy
                .deny_reason
                .as_ref()
                .map(|reason| format!("denied by policy `{}`: {reason}", request.policy.name))
        });
    let (text, next) = match request.status {
        Status::Approved => (
            format!("Approved: request {id} was approved. You may run the action now, exactly as submitted."),
            "run the action",
        ),
        Status::Denied => (
            format!(
                "Denied: request {id} was denied. Do not run the action. Reviewer's comment: {}",
                denial_comment.as_deref().unwrap_or("(none)")
            ),
            "do not run the action; adapt to the reviewer's comment",
        ),
        Status::Pending => (
            format!(
                "Still pending: no reviewer has decided request {id} yet. Call check_approval with id \"{id}\" \
                 to keep waiting. Do not run the action until it is approved."
            ),
            "call check_approval with this id",
        ),
        Status::Expired => (
            format!("Expired: request {id} expired before anyone decided. Do not run the action."),
            "do not run the action; ask again if it is still needed",
        ),
        Status::Cancelled => (
            format!("Cancelled: request {id} was cancelled. Do not run the action."),
            "do not run the action",
        ),
        Status::Executed | Status::Failed => (
            format!(
                "Request {id} was approved and has already been run ({}).",
                request.status.as_str()
            ),
            "nothing: the action already ran",
        ),
    };
    let decision = json!({
        "id": id,
        "status": request.status,
        "comment": denial_comment,
        "next": next,
        "title": request.title,
        "action": request.action,
        "resource": request.resource,
        "approvals": request.approvals,
        "decisions": request.decisions,
        "policy": request.policy.name,
        "break_glass": request.break_glass,
        "expires_at": request.expires_at.format(&time::format_description::well_known::Rfc3339).ok(),
    });
    with_text(CallToolResult::structured(decision), text)
}

fn summary(request: &RequestView) -> String {
    format!(
        "Request {} ({}): {} — {} on {}",
        request.id,
        request.status.as_str(),
        request.title,
        request.action,
        request.resource
    )
}

fn view_json(request: &RequestView) -> Value {
    serde_json::to_value(request).unwrap_or_else(|err| json!({"error": format!("request as JSON: {err}")}))
}

/// The human-readable text first, then the JSON (`structured` put it as the only text).
fn with_text(mut result: CallToolResult, text: String) -> CallToolResult {
    result.content.insert(0, ContentBlock::text(text));
    result
}

/// A refusal the model can read and act on (not a protocol error, which clients hide).
fn error_result(err: &Error) -> CallToolResult {
    let (_, code) = err.status_and_code();
    let message = match err {
        // The store's details stay in the log.
        Error::Database(_) | Error::Migrate(_) | Error::Internal(_) | Error::Config(_) | Error::Provider { .. } => {
            tracing::error!(%err, "MCP tool failed");
            "the server failed; try again later".to_string()
        }
        _ => err.to_string(),
    };
    let mut result = CallToolResult::structured_error(json!({"error": {"code": code, "message": message}}));
    result
        .content
        .insert(0, ContentBlock::text(format!("Error ({code}): {message}")));
    result
}
