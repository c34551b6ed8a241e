//! `signoff mcp-gateway -- UPSTREAM_CMD ARGS…`: an MCP server on standard input and output
//! in front of another MCP server, the upstream, which it starts as its child (or reaches
//! over streamable HTTP with `--upstream-url`). The agent sees one MCP server, the
//! upstream's tools as the upstream lists them, and reaches the upstream only through the
//! gateway: every `tools/call` becomes a Signoff request through the agent API, and goes
//! upstream only once that very request is approved (by reviewers, a grant or an `allow`
//! policy) and its start recorded; then its outcome is reported. A denial, an expiry, a
//! cancellation or a timeout answers the agent with a tool error and the upstream never
//! sees the call. See ARCHITECTURE.md, "MCP".
//!
//! The request: action `mcp.<server>.<tool>` (both names fitted to the action alphabet,
//! [`action_for`]), resource `mcp://<server>/<tool>` (the tool's exact name), the call's
//! arguments as payload (exactly what goes upstream), and the tool's own hints
//! (`readOnlyHint`, `destructiveHint`, `openWorldHint`) as labels `mcp.read_only`,
//! `mcp.destructive`, `mcp.open_world`. The hints are the upstream's claims: a policy that
//! allows by them trusts the upstream.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, CancelledNotificationParam, ClientCapabilities,
    ClientConfig, ClientRequest, ContentBlock, Implementation, ListToolsResult, PaginatedRequestParams,
    ProgressNotificationParam, ProgressToken, Request, ResultType, ServerCapabilities, ServerConfig, ServerResult,
    Tool,
};
use rmcp::service::{NotificationContext, PeerRequestOptions, RequestContext};
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::transport::{StreamableHttpClientTransport, TokioChildProcess};
use rmcp::{ClientHandler, ErrorData, Peer, RoleClient, RoleServer, ServerHandler, ServiceError, ServiceExt};
use serde_json::{Map, Value, json};
use signoff_app::wire::{ExecutionStatus, NewRequest, RequestView, ResultReport, limits};
use signoff_app::{RequestId, Status, Verdict};

use crate::agent::gate::{Ending, Signals, comments, give_up};
use crate::agent::hook::resource_for;
use crate::agent::{AgentApi, KEY_ENV, Waited, field_text, fresh_idempotency_key, same_request};
use crate::error::{ClientError, exit};

pub const AFTER_HELP: &str = "\
Every tools/call of the agent becomes a Signoff request and reaches the upstream only once
approved (by reviewers, or at once by an allow policy); denied, expired, cancelled or timed
out, the agent gets a tool error (with the reviewers' comment) and the upstream is not called.

  action    mcp.<server>.<tool>  (the upstream's serverInfo.name, or --name; lower case,
            other characters than a-z 0-9 _ - become _)
  resource  mcp://<server>/<tool>
  payload   the call's arguments, exactly as they go upstream
  labels    mcp.read_only, mcp.destructive, mcp.open_world = true|false, from the tool's
            readOnlyHint, destructiveHint, openWorldHint when it has them

Environment:
  SIGNOFF_AGENT_KEY  the agent's key (required; never printed, and not passed to the upstream)
  SIGNOFF_SERVER     the server, unless --server: https://, or http:// to this machine
  SIGNOFF_ALLOW_INSECURE_HTTP=1  allow http:// to another machine

Exit codes: 0 when the MCP client closes standard input; 2 usage; 3 SIGNOFF_AGENT_KEY
missing or refused; 4 server unreachable; 5 the upstream could not be started; 130/143
interrupted (SIGINT/SIGTERM), with every request still waiting cancelled.

Example (an MCP client's configuration starts this):
  signoff mcp-gateway -- npx -y @modelcontextprotocol/server-filesystem /srv/data";

/// What `signoff mcp-gateway` is given.
#[derive(Debug, Clone, clap::Args)]
#[command(group(clap::ArgGroup::new("upstream").required(true).args(["upstream_url", "command"])))]
pub struct GatewayArgs {
    /// Connect to this MCP server over streamable HTTP instead of starting one.
    #[arg(long, value_name = "URL")]
    pub upstream_url: Option<String>,
    /// The server's name in actions and resources, instead of the one it gives itself
    /// (its serverInfo.name).
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
    /// Give up waiting for a decision after this long (e.g. 90s, 10m): the request is
    /// cancelled and the call answers an error. Default: wait until decided or expired.
    #[arg(long, value_name = "DURATION")]
    pub timeout: Option<humantime::Duration>,
    /// The upstream MCP server to start (no shell), after `--`; it talks MCP on its
    /// standard input and output.
    #[arg(last = true, value_name = "UPSTREAM_CMD")]
    pub command: Vec<String>,
}

/// How often a waiting call tells the client it still waits (when it gave a progress token).
const PROGRESS_EVERY: Duration = Duration::from_secs(15);
/// At most this many characters of an action name are the server's.
const SERVER_SEGMENT_CHARS: usize = 40;

/// Where a progress notification of an upstream call goes: the token the local client gave,
/// and the local client.
type ProgressRoutes = Arc<Mutex<HashMap<ProgressToken, (ProgressToken, Peer<RoleServer>)>>>;

/// Runs `signoff mcp-gateway` until the MCP client closes standard input; `Ok` carries the
/// exit code.
pub async fn run(args: GatewayArgs, server: &str) -> Result<u8, ClientError> {
    // reqwest's rustls needs a process-wide crypto provider; another one already installed
    // serves as well.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let api = AgentApi::from_env(Some(server))?;
    check_key(&api).await?;
    // From here on a signal cancels every request still waiting, then ends the gateway.
    let mut signals = Signals::listen()?;
    let routes = ProgressRoutes::default();
    let local_peer = Arc::new(OnceLock::new());
    let upstream_client = UpstreamClient {
        routes: Arc::clone(&routes),
        local: Arc::clone(&local_peer),
    };
    let upstream = match (&args.upstream_url, args.command.split_first()) {
        (Some(url), _) => {
            let transport =
                StreamableHttpClientTransport::from_config(StreamableHttpClientTransportConfig::with_uri(url.as_str()));
            upstream_client
                .serve(transport)
                .await
                .map_err(|err| ClientError::Local(format!("the upstream MCP server at {url} did not answer: {err}")))?
        }
        (None, Some((program, arguments))) => {
            let mut command = tokio::process::Command::new(program);
            // The upstream acts with its own rights, never the agent's: it does not get the key.
            command.args(arguments).env_remove(KEY_ENV);
            let transport = TokioChildProcess::new(command)
                .map_err(|err| ClientError::Local(format!("cannot start the upstream MCP server {program}: {err}")))?;
            upstream_client.serve(transport).await.map_err(|err| {
                ClientError::Local(format!("the upstream MCP server {program} did not start MCP: {err}"))
            })?
        }
        (None, None) => {
            return Err(ClientError::Usage(
                "name the upstream MCP server: `-- UPSTREAM_CMD ARGS…` or --upstream-url URL".into(),
            ));
        }
    };
    let upstream_info = upstream.peer_info();
    let server_info = upstream_info.as_ref().and_then(|info| info.server_info.clone());
    let display_name = args
        .name
        .clone()
        .or_else(|| server_info.as_ref().map(|info| info.name.clone()))
        .filter(|name| !name.trim().is_empty())
        .unwrap_or_else(|| "upstream".into());
    let mut capabilities = ServerCapabilities::builder().enable_tools().build();
    if let Some(tools) = &mut capabilities.tools {
        tools.list_changed = upstream_info
            .as_ref()
            .and_then(|info| info.capabilities.tools.as_ref())
            .and_then(|tools| tools.list_changed);
    }
    let mut info = ServerConfig::new(capabilities);
    if let Some(server_info) = server_info.clone() {
        info = info.with_server_info(server_info);
    }
    if let Some(instructions) = upstream_info.as_ref().and_then(|info| info.instructions.clone()) {
        info = info.with_instructions(instructions);
    }
    tracing::info!(
        upstream = %display_name,
        server = %api.server(),
        "serving the upstream's tools behind Signoff"
    );
    let pending = Pending::default();
    let gateway = Gateway {
        api: api.clone(),
        upstream: upstream.peer().clone(),
        routes,
        info,
        server: UpstreamName::new(&display_name, server_info.as_ref()),
        timeout: args.timeout.map(Duration::from),
        pending: pending.clone(),
    };
    let local = gateway
        .serve(rmcp::transport::stdio())
        .await
        .map_err(|err| ClientError::Local(format!("cannot serve MCP on standard input and output: {err}")))?;
    let _ = local_peer.set(local.peer().clone());
    let code = tokio::select! {
        reason = local.waiting() => {
            tracing::info!(?reason, "the MCP client closed standard input");
            exit::OK
        }
        interrupt = signals.next() => {
            tracing::info!(?interrupt, "stopped by a signal");
            interrupt.exit_code()
        }
    };
    // Nothing still waiting will be run: nobody should approve it.
    for id in pending.take() {
        if let Err(error) = api.cancel(id).await {
            tracing::warn!(%id, %error, "cancelling a waiting request failed");
        }
    }
    let _ = upstream.cancel().await;
    Ok(code)
}

/// The key works on this server: an unknown request is "not found" to a known key, and a
/// refused key is a 401. Checked before the upstream starts, so a bad key ends the gateway
/// at once (exit code 3) rather than failing every call.
async fn check_key(api: &AgentApi) -> Result<(), ClientError> {
    match api.get(RequestId::from(uuid::Uuid::nil())).await {
        Ok(_) => Ok(()),
        Err(ClientError::Refused { status: 404, .. }) => Ok(()),
        Err(error) => Err(error),
    }
}

/// The requests calls are waiting on, cancelled when the gateway stops.
#[derive(Clone, Default)]
struct Pending(Arc<Mutex<HashSet<RequestId>>>);

impl Pending {
    fn insert(&self, id: RequestId) {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).insert(id);
    }

    fn remove(&self, id: RequestId) {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).remove(&id);
    }

    fn take(&self) -> Vec<RequestId> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).drain().collect()
    }
}

/// The gateway as a client of the upstream: passes the progress of forwarded calls, and
/// the upstream's "the tools changed", to the local client.
struct UpstreamClient {
    routes: ProgressRoutes,
    local: Arc<OnceLock<Peer<RoleServer>>>,
}

impl ClientHandler for UpstreamClient {
    fn get_info(&self) -> ClientConfig {
        ClientConfig::new(
            ClientCapabilities::default(),
            Implementation::new("signoff-mcp-gateway", env!("CARGO_PKG_VERSION")),
        )
    }

    async fn on_progress(&self, params: ProgressNotificationParam, _context: NotificationContext<RoleClient>) {
        let route = self
            .routes
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&params.progress_token)
            .cloned();
        if let Some((local_token, local_client)) = route {
            let mut params = params;
            params.progress_token = local_token;
            if let Err(err) = local_client.notify_progress(params).await {
                tracing::debug!(%err, "progress not delivered to the MCP client");
            }
        }
    }

    async fn on_tool_list_changed(&self, _context: NotificationContext<RoleClient>) {
        if let Some(local) = self.local.get()
            && let Err(err) = local.notify_tool_list_changed().await
        {
            tracing::debug!(%err, "tool list change not delivered to the MCP client");
        }
    }
}

/// The upstream server's name: as it gave it (for people), and as an action segment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UpstreamName {
    pub display: String,
    pub segment: String,
    pub version: Option<String>,
}

impl UpstreamName {
    pub fn new(display: &str, info: Option<&Implementation>) -> UpstreamName {
        UpstreamName {
            display: field_text(display.trim(), limits::LABEL_VALUE_CHARS),
            segment: action_segment(display.trim(), SERVER_SEGMENT_CHARS),
            version: info.map(|info| info.version.clone()),
        }
    }
}

/// `name` as one part of a dotted action: lower case, each character other than `a-z`,
/// `0-9`, `_`, `-` as `_`; past `max_chars`, its start, `-` and the start of its SHA-256
/// (so two long names stay apart).
pub fn action_segment(name: &str, max_chars: usize) -> String {
    let segment: String = name
        .chars()
        .map(|c| c.to_ascii_lowercase())
        .map(|c| {
            if c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if segment.is_empty() {
        return "unnamed".into();
    }
    if segment.len() <= max_chars {
        return segment;
    }
    let digest = signoff_app::sha256_hex(name.as_bytes());
    let keep = max_chars.saturating_sub(9);
    format!("{}-{}", &segment[..keep], &digest[..8])
}

/// The action for `tool` of the upstream `server`: `mcp.<server>.<tool>`.
pub fn action_for(server: &UpstreamName, tool: &str) -> String {
    let room = limits::ACTION_CHARS - "mcp.".len() - server.segment.len() - ".".len();
    format!("mcp.{}.{}", server.segment, action_segment(tool, room))
}

/// The request a call of `tool` (as the upstream lists it, when it does) becomes.
pub fn request_for(server: &UpstreamName, call: &CallToolRequestParams, tool: Option<&Tool>) -> NewRequest {
    let name = call.name.as_ref();
    let arguments = call.arguments.clone().map(Value::Object).unwrap_or_else(|| json!({}));
    let mut labels = BTreeMap::new();
    if let Some(annotations) = tool.and_then(|tool| tool.annotations.as_ref()) {
        for (label, hint) in [
            ("mcp.read_only", annotations.read_only_hint),
            ("mcp.destructive", annotations.destructive_hint),
            ("mcp.open_world", annotations.open_world_hint),
        ] {
            if let Some(hint) = hint {
                labels.insert(label.to_string(), hint.to_string());
            }
        }
    }
    let shown_arguments = serde_json::to_string(&arguments).unwrap_or_default();
    let title = format!("{}: {name} {shown_arguments}", server.display);
    let mut reason = format!(
        "The agent calls the tool `{name}` of the MCP server `{}` (through signoff mcp-gateway).",
        server.display
    );
    if let Some(description) = tool
        .and_then(|tool| tool.description.as_deref())
        .map(str::trim)
        .filter(|description| !description.is_empty())
    {
        reason.push_str(&format!("\n\nThe tool says of itself: {description}"));
    }
    let mut mcp = Map::new();
    mcp.insert("server".into(), json!(server.display));
    if let Some(version) = &server.version {
        mcp.insert("server_version".into(), json!(version));
    }
    mcp.insert("tool".into(), json!(name));
    if let Some(tool) = tool {
        if let Some(title) = tool.title.as_ref().or_else(|| {
            tool.annotations
                .as_ref()
                .and_then(|annotations| annotations.title.as_ref())
        }) {
            mcp.insert("tool_title".into(), json!(title));
        }
        if let Some(annotations) = &tool.annotations {
            mcp.insert("annotations".into(), json!(annotations));
        }
    } else {
        mcp.insert("listed".into(), json!(false));
    }
    NewRequest {
        action: action_for(server, name),
        resource: resource_for(&format!("mcp://{}/{name}", server.segment)),
        title: field_text(&title, limits::TITLE_CHARS),
        reason: field_text(&reason, limits::REASON_CHARS),
        labels,
        payload: arguments,
        diff: None,
        context: Some(json!({ "via": "signoff mcp-gateway", "mcp": mcp })),
        on_behalf_of: None,
        ttl_s: None,
        callback_url: None,
    }
}

/// A tool error the agent reads: the call did not go through.
fn tool_error(text: String) -> CallToolResponse {
    CallToolResponse::Complete(CallToolResult::error(vec![ContentBlock::text(text)]))
}

/// Why the agent's call was not made, in words for the model.
pub fn refusal_text(request: &RequestView) -> String {
    let named = |verdict| {
        comments(request, verdict)
            .into_iter()
            .map(|(name, comment)| {
                if comment.is_empty() {
                    name
                } else {
                    format!("{name}: {comment}")
                }
            })
            .collect::<Vec<_>>()
            .join("; ")
    };
    match request.status {
        Status::Denied => {
            let by_reviewers = named(Verdict::Deny);
            if !by_reviewers.is_empty() {
                format!("Denied in Signoff by {by_reviewers}. The tool was not called.")
            } else {
                let reason = request
                    .policy
                    .deny_reason
                    .as_deref()
                    .map(str::trim)
                    .filter(|reason| !reason.is_empty())
                    .unwrap_or("no reason given");
                format!(
                    "Denied by the Signoff policy \"{}\": {reason}. The tool was not called.",
                    request.policy.name
                )
            }
        }
        Status::Expired => "No reviewer decided in time: the Signoff request expired. The tool was not called.".into(),
        Status::Cancelled => "The Signoff request was cancelled. The tool was not called.".into(),
        Status::Pending => "The Signoff request is still pending. The tool was not called.".into(),
        Status::Approved | Status::Executed | Status::Failed => {
            format!(
                "This Signoff request is already {}: it is not run again.",
                request.status
            )
        }
    }
}

/// What the local client talks to.
struct Gateway {
    api: AgentApi,
    upstream: Peer<RoleClient>,
    routes: ProgressRoutes,
    info: ServerConfig,
    server: UpstreamName,
    timeout: Option<Duration>,
    pending: Pending,
}

impl ServerHandler for Gateway {
    fn get_info(&self) -> ServerConfig {
        self.info.clone()
    }

    async fn list_tools(
        &self,
        request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        let mut tools = self.upstream.list_tools(request).await.map_err(|err| {
            ErrorData::internal_error(format!("the upstream MCP server did not list its tools: {err}"), None)
        })?;
        // Parsing drops the wire's result type; clients of the current protocol require it.
        tools.result_type.get_or_insert(ResultType::COMPLETE);
        Ok(tools)
    }

    async fn call_tool(
        &self,
        call: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let tool = self.listed_tool(&call.name).await;
        let request = request_for(&self.server, &call, tool.as_ref());
        if let Err(problem) = request.validate() {
            return Ok(tool_error(format!(
                "This call cannot be put to Signoff for approval ({problem}). The tool was not called."
            )));
        }
        let submitted = match self.api.submit(&request, &fresh_idempotency_key()).await {
            Ok(submitted) => submitted,
            Err(error) => {
                tracing::warn!(tool = %call.name, %error, "submitting a tool call failed");
                return Ok(tool_error(format!(
                    "Signoff could not take the request for approval ({error}). The tool was not called."
                )));
            }
        };
        let id = submitted.id;
        tracing::info!(%id, action = %submitted.action, "tool call submitted");
        self.pending.insert(id);
        let decided = self.decision(submitted, &context).await;
        self.pending.remove(id);
        let approved = match decided? {
            Ok(request) if request.status == Status::Approved => request,
            Ok(request) => {
                tracing::info!(%id, status = %request.status, "tool call not approved");
                return Ok(tool_error(refusal_text(&request)));
            }
            Err(text) => return Ok(tool_error(text)),
        };
        // Recorded on the server before the upstream sees the call: one approval, one call.
        if let Err(error) = self
            .api
            .start(id)
            .await
            .and_then(|started| same_request(&approved, started))
        {
            return Ok(tool_error(format!(
                "Approved in Signoff, but its start could not be recorded ({error}). The tool was not called."
            )));
        }
        tracing::info!(%id, "approved; calling the upstream");
        let forwarded = self.forward(call, &context).await;
        let (status, detail) = match &forwarded {
            Ok(CallToolResponse::Complete(result)) if result.is_error == Some(true) => {
                (ExecutionStatus::Failed, json!({ "is_error": true }))
            }
            Ok(CallToolResponse::Complete(_)) => (ExecutionStatus::Executed, json!({ "is_error": false })),
            Ok(_) => (
                ExecutionStatus::Failed,
                json!({ "error": "the upstream answered with something other than a result" }),
            ),
            Err(error) => (ExecutionStatus::Failed, json!({ "error": error.message })),
        };
        let report = ResultReport {
            status,
            detail: Some(detail),
            receipt: approved.receipt.clone(),
        };
        if let Err(error) = self.api.report(id, &report).await {
            tracing::warn!(%id, %error, "reporting the result failed");
        }
        match forwarded {
            Ok(CallToolResponse::Complete(result)) => Ok(CallToolResponse::Complete(result)),
            Ok(_) => Ok(tool_error(
                "The upstream MCP server asked for more input, which the Signoff gateway does not pass on.".into(),
            )),
            Err(error) => Err(error),
        }
    }
}

impl Gateway {
    /// The tool as the upstream lists it now (its hints become labels), if it does.
    async fn listed_tool(&self, name: &str) -> Option<Tool> {
        match self.upstream.list_all_tools().await {
            Ok(tools) => tools.into_iter().find(|tool| tool.name == name),
            Err(error) => {
                tracing::warn!(%error, "the upstream did not list its tools");
                None
            }
        }
    }

    /// Waits for the decision on `submitted`, telling the client it waits (when it gave a
    /// progress token). `Ok(Ok(request))`: no longer pending; `Ok(Err(text))`: no decision
    /// to act on, in words for the model; `Err`: the client cancelled the call.
    async fn decision(
        &self,
        submitted: RequestView,
        context: &RequestContext<RoleServer>,
    ) -> Result<Result<RequestView, String>, ErrorData> {
        let id = submitted.id;
        let deadline = self.timeout.map(|timeout| Instant::now() + timeout);
        let progress_token = context.meta.get_progress_token();
        let console = self.api.console_url(id);
        let waiting = self.api.wait_for_decision(submitted, deadline, |error| {
            tracing::warn!(%id, %error, "waiting: the server did not answer; trying again");
        });
        tokio::pin!(waiting);
        let mut ticks = tokio::time::interval(PROGRESS_EVERY);
        let mut told = 0u32;
        let waited = loop {
            tokio::select! {
                waited = &mut waiting => break waited,
                () = context.ct.cancelled() => {
                    if let Err(error) = self.api.cancel(id).await {
                        tracing::warn!(%id, %error, "cancelling after the client cancelled failed");
                    }
                    return Err(ErrorData::internal_error("the call was cancelled; so is its Signoff request", None));
                }
                _ = ticks.tick() => {
                    if let Some(token) = &progress_token {
                        told += 1;
                        let note = ProgressNotificationParam::new(token.clone(), f64::from(told))
                            .with_message(format!("waiting for approval in Signoff: {console}"));
                        if let Err(err) = context.peer.notify_progress(note).await {
                            tracing::debug!(%err, "progress not delivered to the MCP client");
                        }
                    }
                }
            }
        };
        let outcome = match waited {
            Ok(Waited::Decided(request)) => Ok(request),
            Ok(Waited::TimedOut(request)) => match give_up(&self.api, request).await {
                Ok(Ending::Decided(request)) => Ok(request),
                Ok(_) => Err(format!(
                    "No decision in Signoff within {}: the request was cancelled. The tool was not called.",
                    humantime::format_duration(self.timeout.unwrap_or_default())
                )),
                Err(error) => Err(format!(
                    "No decision in Signoff in time, and cancelling the request failed ({error}). The tool was not called."
                )),
            },
            Err(error) => {
                // It will never run from here: nobody should approve it.
                let _ = self.api.cancel(id).await;
                Err(format!(
                    "Waiting for the decision in Signoff failed ({error}). The tool was not called."
                ))
            }
        };
        Ok(outcome)
    }

    /// Sends the approved call upstream as it came, passing its progress on.
    async fn forward(
        &self,
        call: CallToolRequestParams,
        context: &RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let local_token = context.meta.get_progress_token();
        let mut params = CallToolRequestParams::new(call.name);
        params.arguments = call.arguments;
        let handle = self
            .upstream
            .send_cancellable_request(
                ClientRequest::CallToolRequest(Request::new(params)),
                PeerRequestOptions::no_options(),
            )
            .await
            .map_err(upstream_error)?;
        let upstream_token = handle.progress_token.clone();
        let upstream_id = handle.id.clone();
        if let Some(local_token) = local_token {
            self.routes
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(upstream_token.clone(), (local_token, context.peer.clone()));
        }
        let answer = tokio::select! {
            answer = handle.await_response() => answer.map_err(upstream_error),
            () = context.ct.cancelled() => {
                let cancelled = CancelledNotificationParam::new(Some(upstream_id), Some("cancelled by the client".into()));
                let _ = self.upstream.notify_cancelled(cancelled).await;
                Err(ErrorData::internal_error("the call was cancelled", None))
            }
        };
        self.routes
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&upstream_token);
        match answer? {
            ServerResult::CallToolResult(mut result) => {
                result.result_type.get_or_insert(ResultType::COMPLETE);
                Ok(CallToolResponse::Complete(result))
            }
            ServerResult::InputRequiredResult(result) => Ok(CallToolResponse::InputRequired(result)),
            _ => Err(ErrorData::internal_error(
                "the upstream MCP server answered a tool call with something else",
                None,
            )),
        }
    }
}

/// The upstream's own error as it gave it; anything else in words.
fn upstream_error(err: ServiceError) -> ErrorData {
    match err {
        ServiceError::McpError(error) => error,
        other => ErrorData::internal_error(format!("the upstream MCP server did not answer: {other}"), None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rmcp::model::ToolAnnotations;

    fn server(name: &str) -> UpstreamName {
        UpstreamName::new(name, None)
    }

    fn call(name: &str, arguments: Value) -> CallToolRequestParams {
        let mut call = CallToolRequestParams::new(name.to_string());
        call.arguments = arguments.as_object().cloned();
        call
    }

    #[test]
    fn names_fit_the_action_alphabet() {
        assert_eq!(
            action_for(&server("notes-server"), "delete_note"),
            "mcp.notes-server.delete_note"
        );
        assert_eq!(
            action_for(&server("GitHub MCP"), "mergePullRequest"),
            "mcp.github_mcp.mergepullrequest"
        );
        assert_eq!(action_for(&server("a.b"), "x.y/z"), "mcp.a_b.x_y_z");
        assert_eq!(action_for(&server(""), ""), "mcp.unnamed.unnamed");
        let long = "t".repeat(300);
        let other = format!("{}u", "t".repeat(299));
        let (one, two) = (action_for(&server(&long), &long), action_for(&server(&long), &other));
        assert_ne!(one, two);
        for action in [one, two] {
            assert!(action.len() <= limits::ACTION_CHARS, "{action}");
        }
    }

    #[test]
    fn a_call_becomes_a_request_with_its_hints_as_labels() {
        let mut tool = Tool::default();
        tool.name = "delete_note".into();
        tool.description = Some("Delete a note for good.".into());
        tool.annotations = Some(ToolAnnotations::from_raw(None, Some(false), Some(true), None, None));
        let request = request_for(
            &server("notes-server"),
            &call("delete_note", json!({"name": "groceries"})),
            Some(&tool),
        );
        assert_eq!(request.validate(), Ok(()));
        assert_eq!(request.action, "mcp.notes-server.delete_note");
        assert_eq!(request.resource, "mcp://notes-server/delete_note");
        assert_eq!(request.payload, json!({"name": "groceries"}));
        assert_eq!(
            request.labels,
            BTreeMap::from([
                ("mcp.destructive".to_string(), "true".to_string()),
                ("mcp.read_only".to_string(), "false".to_string()),
            ])
        );
        assert_eq!(request.title, r#"notes-server: delete_note {"name":"groceries"}"#);
        assert!(request.reason.contains("Delete a note for good."), "{}", request.reason);

        let unlisted = request_for(&server("notes-server"), &call("nope", Value::Null), None);
        assert_eq!(unlisted.validate(), Ok(()));
        assert!(unlisted.labels.is_empty());
        assert_eq!(unlisted.payload, json!({}));
    }
}
