//! `signoff mcp`: an MCP server on standard input and output for agents that start their
//! tools as programs. It forwards `tools/list` and `tools/call` (and the progress of a call)
//! to the server's `/mcp` over streamable HTTP, with the agent key as bearer, so the tools
//! exist once, on the server. See ARCHITECTURE.md, "MCP".

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, ClientRequest, ListToolsResult, PaginatedRequestParams,
    ProgressNotificationParam, ProgressToken, Request, ResultType, ServerCapabilities, ServerConfig, ServerResult,
};
use rmcp::service::{NotificationContext, PeerRequestOptions, RequestContext, RunningService};
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::{ClientHandler, ErrorData, Peer, RoleClient, RoleServer, ServerHandler, ServiceExt};

use crate::agent::{KEY_ENV, agent_server, insecure_http_allowed};
use crate::error::{ClientError, exit};

/// Where a progress notification of an upstream call goes: the token the local client gave,
/// and the local client.
type ProgressRoutes = Arc<Mutex<HashMap<ProgressToken, (ProgressToken, Peer<RoleServer>)>>>;

/// `signoff mcp`: the agent key from `SIGNOFF_AGENT_KEY`, and the rule every agent-side
/// client keeps (https, or http to this machine), then [`serve_stdio`].
pub async fn run(server: &str) -> Result<u8, ClientError> {
    let key = std::env::var(KEY_ENV)
        .ok()
        .filter(|key| !key.trim().is_empty())
        .ok_or_else(|| ClientError::Usage("set SIGNOFF_AGENT_KEY to the agent's API key".into()))?;
    let upstream = agent_server(server, insecure_http_allowed())?;
    serve_stdio(&upstream, key.trim()).await
}

/// Serves MCP on stdio until the local client closes it. `key` is the agent key; it goes
/// only into the Authorization header, never to a log or an answer.
pub async fn serve_stdio(server: &str, key: &str) -> Result<u8, ClientError> {
    // reqwest's rustls needs a process-wide crypto provider; another one already installed
    // serves as well.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let endpoint = format!("{}/mcp", server.trim_end_matches('/'));
    let routes = ProgressRoutes::default();
    let transport = StreamableHttpClientTransport::from_config(
        StreamableHttpClientTransportConfig::with_uri(endpoint).auth_header(key),
    );
    let upstream = Upstream {
        routes: Arc::clone(&routes),
    }
    .serve(transport)
    .await
    .map_err(|err| upstream_refusal(server, &err.to_string()))?;
    let proxy = Proxy {
        info: local_info(&upstream),
        upstream: upstream.peer().clone(),
        routes,
    };
    let local = proxy
        .serve(rmcp::transport::stdio())
        .await
        .map_err(|err| ClientError::Local(format!("cannot serve MCP on standard input and output: {err}")))?;
    let reason = local.waiting().await;
    tracing::info!(?reason, "the MCP client closed standard input");
    let _ = upstream.cancel().await;
    Ok(exit::OK)
}

/// The connection to the server's `/mcp`.
struct Upstream {
    routes: ProgressRoutes,
}

impl ClientHandler for Upstream {
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
}

/// What the local client talks to.
struct Proxy {
    upstream: Peer<RoleClient>,
    routes: ProgressRoutes,
    info: ServerConfig,
}

impl ServerHandler for Proxy {
    fn get_info(&self) -> ServerConfig {
        self.info.clone()
    }

    async fn list_tools(
        &self,
        request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        let mut tools = self.upstream.list_tools(request).await.map_err(upstream_error)?;
        // Parsing drops the wire's result type; clients of the current protocol require it.
        tools.result_type.get_or_insert(ResultType::COMPLETE);
        Ok(tools)
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let local_token = context.meta.get_progress_token();
        let mut params = CallToolRequestParams::new(request.name);
        params.arguments = request.arguments;
        let handle = self
            .upstream
            .send_cancellable_request(
                ClientRequest::CallToolRequest(Request::new(params)),
                PeerRequestOptions::no_options(),
            )
            .await
            .map_err(upstream_error)?;
        let upstream_token = handle.progress_token.clone();
        if let Some(local_token) = local_token {
            self.routes
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(upstream_token.clone(), (local_token, context.peer.clone()));
        }
        let answer = tokio::select! {
            answer = handle.await_response() => answer.map_err(upstream_error),
            _ = context.ct.cancelled() => Err(ErrorData::internal_error("the call was cancelled", None)),
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
            _ => Err(ErrorData::internal_error(
                "the server answered a tool call with something else",
                None,
            )),
        }
    }
}

/// The server's name and instructions, offered as this server's.
fn local_info(upstream: &RunningService<RoleClient, Upstream>) -> ServerConfig {
    let mut info = ServerConfig::new(ServerCapabilities::builder().enable_tools().build());
    if let Some(peer) = upstream.peer_info() {
        if let Some(server_info) = &peer.server_info {
            info = info.with_server_info(server_info.clone());
        }
        if let Some(instructions) = &peer.instructions {
            info = info.with_instructions(instructions.clone());
        }
    }
    info
}

fn upstream_error(err: rmcp::ServiceError) -> ErrorData {
    ErrorData::internal_error(format!("the Signoff server did not answer: {err}"), None)
}

/// Why the connection to `/mcp` failed, with the exit code a script sees.
fn upstream_refusal(server: &str, detail: &str) -> ClientError {
    let lowercase = detail.to_ascii_lowercase();
    if lowercase.contains("auth required") || lowercase.contains("401") || lowercase.contains("unauthorized") {
        ClientError::Refused {
            status: 401,
            code: "agent_key_refused".into(),
            message: format!("{server} refused the agent key in SIGNOFF_AGENT_KEY (unknown or revoked)"),
        }
    } else {
        ClientError::Unreachable {
            server: server.to_string(),
            detail: detail.to_string(),
        }
    }
}
