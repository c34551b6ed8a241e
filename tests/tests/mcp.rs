//! The MCP tools, used by a real MCP client nobody here wrote (the official Python `mcp`
//! package, `tests/mcp/client.py`), over streamable HTTP at `/mcp` and over stdio through
//! the built `signoff mcp`, while a reviewer decides through the reviewer API. On both stores.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::{Value, json};
use signoff_tests::oidc::Provider;
use signoff_tests::server::read_reply;
use signoff_tests::{Backend, TestServer, on_both_stores};

on_both_stores!(
    tools_are_listed_and_an_approval_reaches_the_client,
    a_denial_reaches_the_client_with_the_reviewers_comment,
    a_long_wait_answers_still_pending_and_check_approval_continues,
    a_bad_key_is_refused,
    another_agents_request_is_not_found,
    an_agent_at_its_wait_cap_is_refused_before_anything_is_created,
    wait_s_defaults_to_45_s_and_is_capped_at_55_s,
    clients_of_both_revisions_are_answered,
);

#[derive(Clone, Copy, Debug)]
enum Transport {
    Http,
    Stdio,
}

const TRANSPORTS: [Transport; 2] = [Transport::Http, Transport::Stdio];

fn python() -> PathBuf {
    let python = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("mcp/.venv/bin/python");
    assert!(
        python.exists(),
        "the MCP test client is not installed: run `just test-deps` (it installs tests/mcp/requirements.txt)"
    );
    python
}

/// A scratch HOME for `signoff mcp` (its log lands there), removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Scratch {
        let root = std::env::temp_dir().join(format!("signoff-mcp-test-{}", uuid::Uuid::now_v7().simple()));
        std::fs::create_dir_all(&root).expect("scratch dir");
        Scratch(root)
    }

    /// `signoff mcp`'s log, which must exist: a check of a log never written checks nothing.
    fn log(&self) -> String {
        let path = self.0.join("state/signoff/signoff.log");
        assert!(path.exists(), "signoff mcp wrote no log at {}", path.display());
        let text = std::fs::read_to_string(&path).expect("read signoff mcp's log");
        assert!(!text.is_empty(), "signoff mcp's log at {} is empty", path.display());
        text
    }

    /// The file the client notes its steps in as they happen.
    fn events(&self) -> PathBuf {
        self.0.join("client-events.jsonl")
    }

    /// Waits (up to 120 s) until the client has noted an event `accept` takes; returns it.
    async fn wait_for_event(&self, what: &str, accept: impl Fn(&Value) -> bool) -> Value {
        let deadline = std::time::Instant::now() + Duration::from_secs(120);
        loop {
            let text = std::fs::read_to_string(self.events()).unwrap_or_default();
            // Only whole lines: the client may be halfway through writing the last one.
            let whole = text.rsplit_once('\n').map(|(done, _)| done).unwrap_or_default();
            if let Some(event) = whole
                .lines()
                .map(|line| serde_json::from_str::<Value>(line).expect("event lines are JSON"))
                .find(|event| accept(event))
            {
                return event;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the MCP client never noted {what}; it noted:\n{text}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs the Python client through `steps` as the agent holding `key`; returns its report.
async fn mcp_client(server: &TestServer, transport: Transport, key: &str, steps: Value, scratch: &Scratch) -> Value {
    mcp_client_in_mode(server, transport, "auto", key, steps, scratch).await
}

/// As `mcp_client`, with the client's `mode`: "auto" (probe `server/discover`, fall back to
/// `initialize`) or "legacy" (the 2025-11-25 handshake only).
async fn mcp_client_in_mode(
    server: &TestServer,
    transport: Transport,
    mode: &str,
    key: &str,
    steps: Value,
    scratch: &Scratch,
) -> Value {
    let plan = match transport {
        Transport::Http => json!({
            "transport": "http",
            "url": format!("{}/mcp", server.base_url),
            "key": key,
            "steps": steps,
        }),
        Transport::Stdio => {
            let dir = |name: &str| scratch.0.join(name).display().to_string();
            json!({
                "transport": "stdio",
                "command": signoff_tests::client_binary().display().to_string(),
                "args": ["mcp"],
                "env": {
                    "SIGNOFF_AGENT_KEY": key,
                    "SIGNOFF_SERVER": server.base_url,
                    // Everything it would say, so "the key is never logged" means something.
                    "SIGNOFF_LOG": "debug",
                    "HOME": dir("home"),
                    "XDG_CONFIG_HOME": dir("config"),
                    "XDG_STATE_HOME": dir("state"),
                },
                "steps": steps,
            })
        }
    };
    let mut plan = plan;
    plan["events"] = json!(scratch.events().display().to_string());
    plan["mode"] = json!(mode);
    let output = tokio::time::timeout(
        Duration::from_secs(180),
        tokio::process::Command::new(python())
            .arg(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("mcp/client.py"))
            .arg(plan.to_string())
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("the MCP client finishes")
    .expect("run the MCP client");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let report: Value = serde_json::from_str(stdout.trim())
        .unwrap_or_else(|err| panic!("the client's report is not JSON ({err}): {stdout}\n{stderr}"));
    if report["ok"] != true {
        eprintln!("{transport:?} client failed: {}\n{stderr}", report["error"]);
    }
    let mut report = report;
    report["stderr"] = json!(stderr);
    report
}

fn request_approval(title: &str, wait_s: u64) -> Value {
    json!({
        "tool": "request_approval",
        "args": {
            "action": "deploy.service",
            "resource": "k8s://prod/payments-api",
            "title": title,
            "reason": "Fixes the refund rounding bug (PAY-1432)",
            "labels": {"env": "prod"},
            "payload": {"image": "payments-api:1.5.0"},
            "diff": {"before": {"image": "payments-api:1.4.2"}, "after": {"image": "payments-api:1.5.0"}},
            "on_behalf_of": "reese@example.com",
            "wait_s": wait_s,
        }
    })
}

/// A server whose reviewers sign in through the test OpenID Provider (kept alive with it).
async fn start_with_reviewers(backend: Backend) -> (Provider, TestServer) {
    let provider = Provider::start().await;
    let server = TestServer::start_with_sso(backend, &provider, |_| {}).await;
    (provider, server)
}

/// A reviewer's terminal token (the reviewer API's credential), through the device flow.
async fn reviewer_token(server: &TestServer) -> String {
    let browser = server.browser();
    let page = browser.sign_in("alice").await;
    assert_eq!(page.status, 200, "alice lands on the console: {}", page.body);
    let post = |path: &str, body: Value| {
        let request = server.http.post(format!("{}{path}", server.base_url)).json(&body);
        async move { read_reply(request.send().await.expect("POST")).await }
    };
    let code = post("/api/v1/device/code", json!({"client_name": "mcp-test"})).await;
    assert_eq!(code.status, 200, "{:?}", code.body);
    let user_code = code.body["user_code"].as_str().expect("user code");
    let done = browser.answer_device_code(user_code, "approve").await;
    assert!(done.body.contains("Terminal signed in"), "{}", done.body);
    let issued = post("/api/v1/device/token", json!({"device_code": code.body["device_code"]})).await;
    assert_eq!(issued.status, 200, "{:?}", issued.body);
    issued.body["access_token"].as_str().expect("token").to_string()
}

/// A reviewer who waits for the pending request titled `title`, then decides it through
/// the reviewer API; answers the request's id.
fn reviewer_decides(
    server: &TestServer,
    token: &str,
    title: &str,
    verdict: &str,
    comment: &str,
) -> tokio::task::JoinHandle<String> {
    let http = server.http.clone();
    let base = server.base_url.clone();
    let token = token.to_string();
    let title = title.to_string();
    let decision = json!({"verdict": verdict, "comment": comment});
    tokio::spawn(async move {
        // As long as the client may take (a busy machine starts Python slowly).
        let deadline = std::time::Instant::now() + Duration::from_secs(170);
        while std::time::Instant::now() < deadline {
            let queue = read_reply(
                http.get(format!("{base}/api/v1/requests?status=pending"))
                    .bearer_auth(&token)
                    .send()
                    .await
                    .expect("queue"),
            )
            .await;
            assert_eq!(queue.status, 200, "{:?}", queue.body);
            let found = queue.body["items"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|item| item["title"] == title.as_str())
                .and_then(|item| item["id"].as_str())
                .map(str::to_string);
            if let Some(id) = found {
                let decided = read_reply(
                    http.post(format!("{base}/api/v1/requests/{id}/decisions"))
                        .bearer_auth(&token)
                        .json(&decision)
                        .send()
                        .await
                        .expect("decide"),
                )
                .await;
                assert_eq!(decided.status, 200, "{:?}", decided.body);
                return id;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("the request {title} never reached the queue");
    })
}

/// Waits until the server holds an agent's wait (on any request).
async fn wait_for_a_waiter(server: &TestServer) {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while server.service.waiting_agents() == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "no agent waited on the server within 60 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A reviewer approves `id` (through the service, as the reviewer API would).
async fn approve(server: &TestServer, id: &str) {
    server
        .service
        .decide(
            &signoff_tests::fixtures::reviewer(1),
            id.parse().expect("id"),
            &signoff_app::wire::DecisionInput {
                verdict: signoff_app::Verdict::Approve,
                comment: "ship it".into(),
                break_glass: false,
                grant: None,
            },
            signoff_app::Channel::Api,
        )
        .await
        .expect("approve");
}

fn step(report: &Value, index: usize) -> &Value {
    assert_eq!(report["ok"], true, "the client failed: {report}");
    &report["steps"][index]
}

fn texts(step: &Value) -> String {
    step["texts"]
        .as_array()
        .map(|texts| texts.iter().filter_map(Value::as_str).collect::<Vec<_>>().join("\n"))
        .unwrap_or_default()
}

async fn tools_are_listed_and_an_approval_reaches_the_client(backend: Backend) {
    let (_provider, server) = start_with_reviewers(backend).await;
    let agent = server.agent("deploy-bot").await;
    let token = reviewer_token(&server).await;
    for transport in TRANSPORTS {
        let scratch = Scratch::new();
        let title = format!("Deploy payments-api 1.5.0 over {transport:?}");
        let reviewer = reviewer_decides(&server, &token, &title, "approve", "ship it");
        let report = mcp_client(
            &server,
            transport,
            &agent.key,
            json!([{"list_tools": true}, request_approval(&title, 30), {"tool": "get_request", "args": {"id": "$id"}}]),
            &scratch,
        )
        .await;
        assert_eq!(
            step(&report, 0)["tools"],
            json!(["check_approval", "get_request", "request_approval"]),
            "{transport:?}"
        );
        let id = reviewer.await.expect("reviewer");
        let approved = step(&report, 1);
        assert_eq!(approved["is_error"], false, "{transport:?}: {approved}");
        assert_eq!(
            approved["structured"]["status"], "approved",
            "{transport:?}: {approved}"
        );
        assert_eq!(approved["structured"]["id"], id.as_str());
        assert_eq!(
            approved["structured"]["decisions"][0]["reviewer"]["email"],
            "alice@example.com"
        );
        assert!(texts(approved).contains("Approved"), "{transport:?}: {approved}");

        let shown = step(&report, 2);
        assert_eq!(shown["is_error"], false, "{transport:?}: {shown}");
        assert_eq!(shown["structured"]["id"], id.as_str());
        assert_eq!(shown["structured"]["status"], "approved");
        assert_eq!(shown["structured"]["payload"], json!({"image": "payments-api:1.5.0"}));
        assert!(
            shown["structured"]["diff"]
                .as_str()
                .is_some_and(|diff| diff.contains("payments-api:1.5.0")),
            "{shown}"
        );
        // The same request as the agent API shows it.
        let via_api = agent.get(&format!("/api/v1/requests/{id}")).await;
        assert_eq!(via_api.body, shown["structured"], "{transport:?}");
        // The key never reaches `signoff mcp`'s log (over HTTP there is no `signoff mcp`).
        if let Transport::Stdio = transport {
            assert!(!scratch.log().contains(&agent.key), "the key was logged");
        }
    }
}

async fn a_denial_reaches_the_client_with_the_reviewers_comment(backend: Backend) {
    let (_provider, server) = start_with_reviewers(backend).await;
    let agent = server.agent("deploy-bot").await;
    let token = reviewer_token(&server).await;
    for transport in TRANSPORTS {
        let scratch = Scratch::new();
        let title = format!("Drop the customers table over {transport:?}");
        let comment = "Not during the freeze: export the table first, then ask again.";
        let reviewer = reviewer_decides(&server, &token, &title, "deny", comment);
        let report = mcp_client(
            &server,
            transport,
            &agent.key,
            json!([request_approval(&title, 30)]),
            &scratch,
        )
        .await;
        let id = reviewer.await.expect("reviewer");
        let denied = step(&report, 0);
        assert_eq!(denied["structured"]["status"], "denied", "{transport:?}: {denied}");
        assert_eq!(denied["structured"]["id"], id.as_str());
        assert_eq!(denied["structured"]["comment"], comment, "{transport:?}: {denied}");
        let text = texts(denied);
        assert!(
            text.contains("Denied") && text.contains(comment),
            "{transport:?}: {text}"
        );
        assert!(text.contains("Do not run the action"), "{text}");
    }
}

async fn a_long_wait_answers_still_pending_and_check_approval_continues(backend: Backend) {
    let (_provider, server) = start_with_reviewers(backend).await;
    let agent = server.agent("deploy-bot").await;
    let token = reviewer_token(&server).await;
    for transport in TRANSPORTS {
        let scratch = Scratch::new();
        let title = format!("Rotate the signing key over {transport:?}");
        // The first call gives up after 6 s with nobody deciding; the reviewer decides
        // only once the client has started to wait again with check_approval.
        let report = {
            let steps = json!([
                request_approval(&title, 6),
                {"tool": "check_approval", "args": {"id": "$id", "wait_s": 40}},
            ]);
            let client = mcp_client(&server, transport, &agent.key, steps, &scratch);
            let reviewer = async {
                // Once check_approval has been called and its wait is held by the server
                // (request_approval's wait ended before its answer was sent).
                scratch
                    .wait_for_event("check_approval being called", |event| {
                        event["step"] == 1 && event["event"] == "started"
                    })
                    .await;
                wait_for_a_waiter(&server).await;
                reviewer_decides(&server, &token, &title, "approve", "")
                    .await
                    .expect("reviewer")
            };
            let (report, id) = tokio::join!(client, reviewer);
            assert_eq!(step(&report, 1)["structured"]["id"], id.as_str(), "{transport:?}");
            report
        };
        let pending = step(&report, 0);
        assert_eq!(pending["is_error"], false, "{transport:?}: {pending}");
        assert_eq!(pending["structured"]["status"], "pending", "{transport:?}: {pending}");
        let id = pending["structured"]["id"].as_str().expect("id").to_string();
        let text = texts(pending);
        assert!(
            text.contains("Still pending") && text.contains("check_approval") && text.contains(&id),
            "{transport:?}: {text}"
        );
        // While waiting, the client heard that the wait goes on (it gave a progress token).
        let progress = pending["progress"].as_array().expect("progress");
        assert!(
            !progress.is_empty(),
            "{transport:?}: no progress notification: {pending}"
        );
        assert_eq!(progress[0]["total"], 6.0);
        assert!(
            progress[0]["message"]
                .as_str()
                .is_some_and(|message| message.contains(&id))
        );

        let approved = step(&report, 1);
        assert_eq!(
            approved["structured"]["status"], "approved",
            "{transport:?}: {approved}"
        );
        assert!(texts(approved).contains("Approved"), "{approved}");
    }
}

async fn a_bad_key_is_refused(backend: Backend) {
    let server = TestServer::start(backend).await;
    let agent = server.agent("deploy-bot").await;
    let revoked = server.agent("retired-bot").await;
    server
        .service
        .revoke_agent_keys("retired-bot", None)
        .await
        .expect("revoke");
    let bad_keys = [
        "so_agent_0000000000000000000000000000000000000000000".to_string(),
        revoked.key.clone(),
    ];

    // Straight over HTTP: 401 before any MCP exchange, and no session.
    let initialize = json!({
        "jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}
    });
    for key in bad_keys.iter().map(String::as_str).chain([""]) {
        let mut request = server
            .http
            .post(format!("{}/mcp", server.base_url))
            .header("Accept", "application/json, text/event-stream")
            .json(&initialize);
        if !key.is_empty() {
            request = request.bearer_auth(key);
        }
        let reply = read_reply(request.send().await.expect("POST /mcp")).await;
        assert_eq!(reply.status, 401, "{:?}", reply.body);
        assert_eq!(reply.error_code(), "unauthorized");
        let expected = if key.is_empty() {
            "missing API key"
        } else {
            "unknown or revoked API key"
        };
        assert!(reply.error_message().contains(expected), "{:?}", reply.body);
        assert!(reply.headers.get("mcp-session-id").is_none());
    }

    // Through the real MCP client: refused for the key, and said so; not any other failure.
    for transport in TRANSPORTS {
        for key in &bad_keys {
            let scratch = Scratch::new();
            let report = mcp_client(&server, transport, key, json!([{"list_tools": true}]), &scratch).await;
            assert_eq!(report["ok"], false, "{transport:?}: a bad key was let in: {report}");
            match transport {
                Transport::Http => {
                    // The MCP library reports "Server returned an error response"; what the
                    // server answered is in the client's record of refusals.
                    let refusals = report["refusals"].as_array().expect("refusals");
                    // (It tries more than one way to start before giving up.)
                    assert!(!refusals.is_empty(), "the server refused nothing: {report}");
                    for refusal in refusals {
                        assert_eq!(refusal["status"], 401, "{report}");
                        let body: Value = serde_json::from_str(refusal["body"].as_str().expect("body"))
                            .expect("the refusal is the API's JSON error");
                        assert_eq!(body["error"]["code"], "unauthorized", "{body}");
                        assert_eq!(body["error"]["message"], "unknown or revoked API key", "{body}");
                    }
                }
                Transport::Stdio => {
                    let stderr = report["stderr"].as_str().unwrap_or_default();
                    assert!(
                        stderr.contains("refused the agent key in SIGNOFF_AGENT_KEY (unknown or revoked)"),
                        "signoff mcp says the key was refused: {stderr}"
                    );
                    assert!(!stderr.contains(key.as_str()), "the key was printed: {stderr}");
                    assert!(!scratch.log().contains(key.as_str()), "the key was logged");
                }
            }
        }
    }

    // `signoff mcp` says why it stopped, with the exit code of a refusal, never the key.
    let scratch = Scratch::new();
    let output = tokio::process::Command::new(signoff_tests::client_binary())
        .arg("mcp")
        .env_clear()
        .env("SIGNOFF_AGENT_KEY", &revoked.key)
        .env("SIGNOFF_SERVER", &server.base_url)
        .env("HOME", scratch.0.join("home"))
        .env("XDG_CONFIG_HOME", scratch.0.join("config"))
        .env("XDG_STATE_HOME", scratch.0.join("state"))
        .stdin(std::process::Stdio::piped())
        .output()
        .await
        .expect("run signoff mcp");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("refused the agent key"), "{stderr}");
    assert!(!stderr.contains(&revoked.key) && output.stdout.is_empty(), "{stderr}");

    // And without a key at all, a usage error.
    let output = tokio::process::Command::new(signoff_tests::client_binary())
        .arg("mcp")
        .env_clear()
        .env("SIGNOFF_SERVER", &server.base_url)
        .env("HOME", scratch.0.join("home"))
        .env("XDG_STATE_HOME", scratch.0.join("state"))
        .output()
        .await
        .expect("run signoff mcp");
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("SIGNOFF_AGENT_KEY"));

    // The good key still works, so the refusals were about the keys.
    let report = mcp_client(
        &server,
        Transport::Http,
        &agent.key,
        json!([{"list_tools": true}]),
        &scratch,
    )
    .await;
    assert_eq!(report["ok"], true, "{report}");
}

async fn another_agents_request_is_not_found(backend: Backend) {
    let server = TestServer::start(backend).await;
    let owner = server.agent("deploy-bot").await;
    let other = server.agent("curious-bot").await;
    let id = owner.submit(&signoff_tests::fixtures::request_body("Not yours")).await;
    // Built before any clock starts: "refused at once" times the refusals, not a build.
    signoff_tests::client_binary();
    // As the request stands pending, then once it is decided (the waits of check_approval
    // then answer at once, from what the decision left, for its owner).
    for state in ["pending", "approved"] {
        if state == "approved" {
            approve(&server, &id).await;
        }
        for transport in TRANSPORTS {
            let scratch = Scratch::new();
            let asked = std::time::Instant::now();
            let report = mcp_client(
                &server,
                transport,
                &other.key,
                json!([
                    {"tool": "get_request", "args": {"id": id}},
                    {"tool": "check_approval", "args": {"id": id, "wait_s": 0}},
                    {"tool": "check_approval", "args": {"id": id, "wait_s": 30}},
                    {"tool": "get_request", "args": {"id": "not-a-request-id"}},
                ]),
                &scratch,
            )
            .await;
            for index in 0..4 {
                let refused = step(&report, index);
                assert_eq!(refused["is_error"], true, "{state}, {transport:?}: {refused}");
                assert_eq!(
                    refused["structured"]["error"]["code"], "not_found",
                    "{state}, {transport:?}: {refused}"
                );
                assert!(texts(refused).contains("not_found"), "{refused}");
                // Nothing of the other agent's request leaks.
                assert!(!refused.to_string().contains("Not yours"), "{refused}");
                assert!(!refused.to_string().contains("approved"), "{refused}");
            }
            assert!(
                asked.elapsed() < Duration::from_secs(30),
                "{state}, {transport:?}: refused at once, not after waiting 30 s: {:?}",
                asked.elapsed()
            );
            // The owner sees it.
            let report = mcp_client(
                &server,
                transport,
                &owner.key,
                json!([
                    {"tool": "get_request", "args": {"id": id}},
                    {"tool": "check_approval", "args": {"id": id, "wait_s": 0}},
                ]),
                &scratch,
            )
            .await;
            for index in 0..2 {
                let seen = step(&report, index);
                assert_eq!(seen["structured"]["title"], "Not yours", "{transport:?}: {seen}");
                assert_eq!(seen["structured"]["status"], state, "{transport:?}: {seen}");
            }
        }
    }
}

async fn wait_s_defaults_to_45_s_and_is_capped_at_55_s(backend: Backend) {
    let server = TestServer::start(backend).await;
    let agent = server.agent("deploy-bot").await;
    for transport in TRANSPORTS {
        let capped = agent
            .submit(&signoff_tests::fixtures::request_body(&format!(
                "Capped over {transport:?}"
            )))
            .await;
        let unsaid = agent
            .submit(&signoff_tests::fixtures::request_body(&format!(
                "Default over {transport:?}"
            )))
            .await;
        let scratch = Scratch::new();
        let steps = json!([
            {"tool": "check_approval", "args": {"id": capped, "wait_s": 56}},
            {"tool": "check_approval", "args": {"id": capped, "wait_s": 55}},
            {"tool": "check_approval", "args": {"id": unsaid}},
        ]);
        let client = mcp_client(&server, transport, &agent.key, steps, &scratch);
        // Each wait is ended by a decision once the client heard it is waiting (the first
        // progress notification, which names how long the wait is).
        let reviewer = async {
            for (index, id) in [(1, &capped), (2, &unsaid)] {
                scratch
                    .wait_for_event(&format!("progress in step {index}"), |event| {
                        event["step"] == index && event["event"] == "progress"
                    })
                    .await;
                approve(&server, id).await;
            }
        };
        let (report, ()) = tokio::join!(client, reviewer);

        let refused = step(&report, 0);
        assert_eq!(refused["is_error"], true, "{transport:?}: {refused}");
        assert_eq!(refused["structured"]["error"]["code"], "invalid", "{refused}");
        assert!(
            texts(refused).contains("wait_s must be at most 55 seconds; call check_approval to wait longer"),
            "{transport:?}: {refused}"
        );
        for (index, total) in [(1, 55.0), (2, 45.0)] {
            let waited = step(&report, index);
            assert_eq!(waited["is_error"], false, "{transport:?}: {waited}");
            assert_eq!(waited["structured"]["status"], "approved", "{transport:?}: {waited}");
            let progress = waited["progress"].as_array().expect("progress");
            assert!(!progress.is_empty(), "{transport:?}: {waited}");
            assert_eq!(progress[0]["total"], total, "{transport:?}: step {index}: {waited}");
        }
    }
}

async fn an_agent_at_its_wait_cap_is_refused_before_anything_is_created(backend: Backend) {
    let server = TestServer::start_with(backend, |config| config.max_waits_per_agent = 1).await;
    let agent = server.agent("deploy-bot").await;
    // The agent's one wait is taken by a long-poll through the agent API.
    let held = agent
        .submit(&json!({"action": "deploy.service", "resource": "k8s://a", "title": "Held"}))
        .await;
    let hold = || {
        let (agent, id) = (agent.clone(), held.clone());
        tokio::spawn(async move { agent.wait(&id, 60).await })
    };
    // Probing takes the slot for a moment too, so the holder may be the one refused:
    // hold again until the probe is refused while the holder still waits.
    let mut holding = hold();
    let mut attempts = 0;
    loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if holding.is_finished() {
            holding = hold();
            continue;
        }
        if agent.wait(&held, 0).await.status == 429 && !holding.is_finished() {
            break;
        }
        attempts += 1;
        assert!(attempts < 200, "the long-poll never took the agent's wait");
    }
    let scratch = Scratch::new();
    let report = mcp_client(
        &server,
        Transport::Http,
        &agent.key,
        json!([request_approval("Refused at the cap", 5)]),
        &scratch,
    )
    .await;
    let refused = step(&report, 0);
    assert_eq!(refused["is_error"], true, "{refused}");
    assert!(texts(refused).contains("waits open"), "{refused}");
    // Nothing was created that no agent is waiting on.
    assert_eq!(server.db.count("requests").await, 1, "only the held request exists");
    holding.abort();
    server.stop().await;
}

/// A client of the stateless 2026-07-28 revision (`server/discover`, `_meta` on every request,
/// no session) and one that knows only the 2025-11-25 handshake both list the tools and wait
/// for a decision, over HTTP and through `signoff mcp`.
async fn clients_of_both_revisions_are_answered(backend: Backend) {
    let (_provider, server) = start_with_reviewers(backend).await;
    let agent = server.agent("deploy-bot").await;
    let token = reviewer_token(&server).await;
    for transport in TRANSPORTS {
        for (mode, revision) in [("auto", "2026-07-28"), ("legacy", "2025-11-25")] {
            let scratch = Scratch::new();
            let title = format!("Rotate the signing key over {transport:?} as {revision}");
            let reviewer = reviewer_decides(&server, &token, &title, "approve", "ship it");
            let steps = json!([
                {"list_tools": true},
                request_approval(&title, 30),
                {"tool": "check_approval", "args": {"id": "$id", "wait_s": 0}},
            ]);
            let report = mcp_client_in_mode(&server, transport, mode, &agent.key, steps, &scratch).await;
            let context = format!("{transport:?}, {revision}: {report}");
            assert_eq!(report["protocol_version"], revision, "{context}");
            assert_eq!(
                step(&report, 0)["tools"],
                json!(["check_approval", "get_request", "request_approval"]),
                "{context}"
            );
            let id = reviewer.await.expect("reviewer");
            assert_eq!(step(&report, 1)["structured"]["status"], "approved", "{context}");
            assert_eq!(step(&report, 1)["structured"]["id"], id.as_str(), "{context}");
            assert_eq!(step(&report, 2)["structured"]["status"], "approved", "{context}");
            if let Transport::Http = transport {
                let methods = report["methods"].as_array().expect("methods").clone();
                if revision == "2026-07-28" {
                    assert_eq!(methods.first(), Some(&json!("server/discover")), "{context}");
                    assert!(!methods.contains(&json!("initialize")), "{context}");
                } else {
                    assert_eq!(methods.first(), Some(&json!("initialize")), "{context}");
                }
                // `/mcp` keeps no session for either: every POST stands on its own key.
                assert_eq!(report["session_ids"], json!([]), "{context}");
            }
        }
    }
}
