//! `signoff mcp-gateway` between a real MCP client and a real MCP server, neither written
//! here: the official Python `mcp` package's client (`tests/mcp/client.py`) talks to the
//! built `signoff mcp-gateway`, which starts (or connects to) an upstream written with the
//! same package's server (`tests/mcp/upstream.py`: a read-only `read_note` and a
//! destructive `delete_note` that appends to the file in `UPSTREAM_LOG`). A reviewer
//! decides through the reviewer API; the upstream's file says what really ran. On both
//! stores.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Value, json};
use signoff_tests::server::read_reply;
use signoff_tests::{Backend, Reply, TestServer, on_both_stores};

on_both_stores!(
    each_call_waits_for_signoff_and_only_approved_calls_reach_the_upstream,
    a_call_nobody_decides_in_time_is_cancelled_and_never_reaches_the_upstream,
    clients_of_both_revisions_pass_through_the_gateway,
);

const READS_ALLOWED: &str = r#"
[[policy]]
name = "mcp reads"
[policy.match]
actions = ["mcp.*"]
labels = ["mcp.read_only=true"]
[policy.effect]
type = "allow"
"#;

fn mcp_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("mcp")
}

fn python() -> PathBuf {
    let python = mcp_dir().join(".venv/bin/python");
    assert!(
        python.exists(),
        "the MCP test client is not installed: run `just test-deps` (it installs tests/mcp/requirements.txt)"
    );
    python
}

/// A scratch directory: the gateway's HOME (its log lands there) and the upstream's file.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Scratch {
        let root = std::env::temp_dir().join(format!("signoff-gateway-test-{}", uuid::Uuid::now_v7().simple()));
        std::fs::create_dir_all(&root).expect("scratch dir");
        Scratch(root)
    }

    fn path(&self, name: &str) -> String {
        self.0.join(name).display().to_string()
    }

    /// What the upstream's destructive tool has done: one line per run.
    fn upstream_log(&self) -> String {
        std::fs::read_to_string(self.0.join("upstream.log")).unwrap_or_default()
    }

    /// The gateway's own log, which must exist: a check of a log never written checks nothing.
    fn gateway_log(&self) -> String {
        let path = self.0.join("state/signoff/signoff.log");
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|err| panic!("signoff mcp-gateway wrote no log at {}: {err}", path.display()));
        assert!(!text.is_empty(), "the gateway's log is empty");
        text
    }

    /// The environment the MCP client starts the gateway with.
    fn env(&self, server: &TestServer, key: &str) -> Value {
        json!({
            "SIGNOFF_AGENT_KEY": key,
            "SIGNOFF_SERVER": server.base_url,
            "SIGNOFF_LOG": "debug",
            "HOME": self.path("home"),
            "XDG_CONFIG_HOME": self.path("config"),
            "XDG_STATE_HOME": self.path("state"),
            "UPSTREAM_LOG": self.path("upstream.log"),
            "PATH": std::env::var("PATH").unwrap_or_default(),
        })
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs the Python MCP client through `steps` against `signoff ARGS`; returns its report.
async fn mcp_client(args: Vec<String>, env: Value, steps: Value) -> Value {
    mcp_client_in_mode("auto", args, env, steps).await
}

/// As `mcp_client`, with the client's `mode`: "auto" (probe `server/discover`, fall back to
/// `initialize`) or "legacy" (the 2025-11-25 handshake only).
async fn mcp_client_in_mode(mode: &str, args: Vec<String>, env: Value, steps: Value) -> Value {
    let plan = json!({
        "transport": "stdio",
        "mode": mode,
        "command": signoff_tests::client_binary().display().to_string(),
        "args": args,
        "env": env,
        "steps": steps,
    });
    let output = tokio::time::timeout(
        Duration::from_secs(180),
        tokio::process::Command::new(python())
            .arg(mcp_dir().join("client.py"))
            .arg(plan.to_string())
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("the MCP client finishes")
    .expect("run the MCP client");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let mut report: Value = serde_json::from_str(stdout.trim())
        .unwrap_or_else(|err| panic!("the client's report is not JSON ({err}): {stdout}\n{stderr}"));
    assert_eq!(report["ok"], true, "the MCP client failed: {report}\n{stderr}");
    report["stderr"] = json!(stderr);
    report
}

/// `signoff mcp-gateway [FLAGS] -- python upstream.py`.
fn gateway_over_child(flags: &[&str]) -> Vec<String> {
    let mut args = vec!["mcp-gateway".to_string()];
    args.extend(flags.iter().map(|flag| flag.to_string()));
    args.push("--".into());
    args.push(python().display().to_string());
    args.push(mcp_dir().join("upstream.py").display().to_string());
    args
}

fn texts(step: &Value) -> String {
    step["texts"]
        .as_array()
        .map(|texts| texts.iter().filter_map(Value::as_str).collect::<Vec<_>>().join("\n"))
        .unwrap_or_default()
}

fn call(tool: &str, name: &str) -> Value {
    json!({"tool": tool, "args": {"name": name}})
}

/// A reviewer using the reviewer API with a terminal token (signed in through the device
/// flow; the browser's confirmation made through the service).
#[derive(Clone)]
struct Reviewer {
    base_url: String,
    token: String,
    http: reqwest::Client,
}

impl Reviewer {
    async fn sign_in(server: &TestServer, n: u32) -> Reviewer {
        Reviewer {
            base_url: server.base_url.clone(),
            token: server.terminal_token(n, "gateway tests").await,
            http: reqwest::Client::new(),
        }
    }

    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Reply {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base_url))
            .bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        read_reply(request.send().await.expect("reviewer API")).await
    }

    /// Waits (up to 120 s: Python starts slowly on a busy machine) for the pending request
    /// whose payload is `payload`; returns it in full.
    async fn pending_with(&self, payload: &Value) -> Value {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let queue = self.call(Method::GET, "/api/v1/requests?status=pending", None).await;
            assert_eq!(queue.status, 200, "{:?}", queue.body);
            let found = queue.body["items"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|item| item["id"].as_str())
                .map(str::to_string)
                .collect::<Vec<_>>();
            for id in found {
                let request = self.request(&id).await;
                if &request["payload"] == payload {
                    return request;
                }
            }
            assert!(Instant::now() < deadline, "no pending request for {payload}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn request(&self, id: &str) -> Value {
        let reply = self.call(Method::GET, &format!("/api/v1/requests/{id}"), None).await;
        assert_eq!(reply.status, 200, "{:?}", reply.body);
        reply.body
    }

    /// Every request with this action, in full.
    async fn requests_for(&self, action: &str) -> Vec<Value> {
        let reply = self
            .call(
                Method::GET,
                &format!("/api/v1/requests?status=all&action={action}"),
                None,
            )
            .await;
        assert_eq!(reply.status, 200, "{:?}", reply.body);
        let mut full = Vec::new();
        for item in reply.body["items"].as_array().cloned().unwrap_or_default() {
            full.push(self.request(item["id"].as_str().expect("id")).await);
        }
        full
    }

    async fn decide(&self, id: &str, verdict: &str, comment: &str) {
        let reply = self
            .call(
                Method::POST,
                &format!("/api/v1/requests/{id}/decisions"),
                Some(json!({"verdict": verdict, "comment": comment})),
            )
            .await;
        assert_eq!(reply.status, 200, "{:?}", reply.body);
    }
}

async fn import_policies(server: &TestServer, text: &str) {
    server
        .service
        .import_policies(
            signoff_server::policy_file::parse(text, signoff_server::policy_file::Format::Toml).expect("policy file"),
            signoff_server::store::Actor::Operator,
        )
        .await
        .expect("import");
}

async fn each_call_waits_for_signoff_and_only_approved_calls_reach_the_upstream(backend: Backend) {
    let server = TestServer::start(backend).await;
    import_policies(&server, READS_ALLOWED).await;
    let agent = server.agent("notes-agent").await;
    let reviewer = Reviewer::sign_in(&server, 1).await;
    let scratch = Scratch::new();

    // The reviewer: the destructive call waits in the queue, and has not run, until they
    // approve it; the second one they deny with a comment.
    let deciding = {
        let reviewer = reviewer.clone();
        let upstream_log = scratch.0.join("upstream.log");
        tokio::spawn(async move {
            let groceries = reviewer.pending_with(&json!({"name": "groceries"})).await;
            // Held: still pending a while later, and the upstream has not seen it.
            tokio::time::sleep(Duration::from_secs(1)).await;
            let id = groceries["id"].as_str().expect("id").to_string();
            assert_eq!(reviewer.request(&id).await["status"], "pending");
            assert!(
                !upstream_log.exists(),
                "the destructive call ran before anyone approved it"
            );
            reviewer.decide(&id, "approve", "fine, it is a test note").await;
            let receipts = reviewer.pending_with(&json!({"name": "receipts"})).await;
            let denied = receipts["id"].as_str().expect("id").to_string();
            reviewer
                .decide(&denied, "deny", "keep the receipts: the auditors need them")
                .await;
            (groceries, denied)
        })
    };
    let report = mcp_client(
        gateway_over_child(&[]),
        scratch.env(&server, &agent.key),
        json!([
            {"list_tools": true},
            call("read_note", "groceries"),
            call("delete_note", "groceries"),
            call("delete_note", "receipts"),
        ]),
    )
    .await;
    let (groceries, denied_id) = deciding.await.expect("the reviewer");
    let steps = &report["steps"];

    // The upstream's tools, as the upstream lists them.
    assert_eq!(steps[0]["tools"], json!(["delete_note", "read_note"]), "{report}");
    assert_eq!(
        steps[0]["annotations"],
        json!({
            "read_note": {"readOnlyHint": true, "openWorldHint": false},
            "delete_note": {"readOnlyHint": false, "destructiveHint": true},
        })
    );

    // The read-only call: allowed at once by the policy, with nobody deciding; the request
    // is on record with the policy that allowed it, and reported executed.
    assert_eq!(steps[1]["is_error"], false, "{}", steps[1]);
    assert_eq!(texts(&steps[1]), "note groceries: buy milk");
    let reads = reviewer.requests_for("mcp.notes-server.read_note").await;
    assert_eq!(reads.len(), 1, "{reads:?}");
    let read = &reads[0];
    assert_eq!(read["status"], "executed", "{read}");
    assert_eq!(read["policy"]["name"], "mcp reads");
    assert_eq!(read["decisions"], json!([]));
    assert_eq!(read["resource"], "mcp://notes-server/read_note");
    assert_eq!(read["payload"], json!({"name": "groceries"}));
    assert_eq!(
        read["labels"],
        json!({"mcp.read_only": "true", "mcp.open_world": "false"})
    );
    assert_eq!(read["result"]["status"], "executed");

    // The destructive call: held for a reviewer (not allowed by the read-only policy),
    // then run once, and its result is the upstream's.
    assert_eq!(groceries["action"], "mcp.notes-server.delete_note");
    assert_eq!(groceries["resource"], "mcp://notes-server/delete_note");
    assert_eq!(
        groceries["labels"],
        json!({"mcp.read_only": "false", "mcp.destructive": "true"})
    );
    assert!(
        groceries["title"]
            .as_str()
            .is_some_and(|title| title.contains("delete_note")),
        "{groceries}"
    );
    assert_eq!(steps[2]["is_error"], false, "{}", steps[2]);
    assert_eq!(texts(&steps[2]), "deleted groceries");
    let approved = reviewer.request(groceries["id"].as_str().expect("id")).await;
    assert_eq!(approved["status"], "executed", "{approved}");
    assert!(approved["started_at"].is_string(), "{approved}");

    // The denied call: the client gets a tool error with the reviewer's comment, and the
    // upstream never saw it.
    assert_eq!(steps[3]["is_error"], true, "{}", steps[3]);
    assert!(
        texts(&steps[3]).contains("keep the receipts: the auditors need them"),
        "{}",
        steps[3]
    );
    assert_eq!(reviewer.request(&denied_id).await["status"], "denied");
    assert_eq!(
        scratch.upstream_log(),
        "deleted groceries\n",
        "only the approved call ran, once"
    );

    // The key stays out of what the gateway says and writes.
    let log = scratch.gateway_log();
    for (what, text) in [
        ("log", log.as_str()),
        ("stderr", report["stderr"].as_str().unwrap_or("")),
    ] {
        assert!(!text.contains(&agent.key), "the agent key is in the gateway's {what}");
    }
    assert!(
        !report.to_string().contains(&agent.key),
        "the agent key reached the client"
    );
}

async fn a_call_nobody_decides_in_time_is_cancelled_and_never_reaches_the_upstream(backend: Backend) {
    let server = TestServer::start(backend).await;
    import_policies(&server, READS_ALLOWED).await;
    let agent = server.agent("notes-agent").await;
    let reviewer = Reviewer::sign_in(&server, 1).await;
    let scratch = Scratch::new();

    // The upstream over streamable HTTP this time, started by the test.
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
        listener.local_addr().expect("address").port()
    };
    let _upstream = tokio::process::Command::new(python())
        .arg(mcp_dir().join("upstream.py"))
        .args(["--http", &port.to_string()])
        .env("UPSTREAM_LOG", scratch.path("upstream.log"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start the upstream");
    let deadline = Instant::now() + Duration::from_secs(60);
    while tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_err() {
        assert!(Instant::now() < deadline, "the upstream never listened");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let url = format!("http://127.0.0.1:{port}/mcp");

    let report = mcp_client(
        vec![
            "mcp-gateway".into(),
            "--upstream-url".into(),
            url,
            "--timeout".into(),
            "3s".into(),
        ],
        scratch.env(&server, &agent.key),
        json!([call("read_note", "groceries"), call("delete_note", "groceries")]),
    )
    .await;
    let steps = &report["steps"];
    assert_eq!(steps[0]["is_error"], false, "{}", steps[0]);
    assert_eq!(texts(&steps[0]), "note groceries: buy milk");

    assert_eq!(steps[1]["is_error"], true, "{}", steps[1]);
    assert!(
        texts(&steps[1]).contains("No decision in Signoff within 3s"),
        "{}",
        steps[1]
    );
    let deletes = reviewer.requests_for("mcp.notes-server.delete_note").await;
    assert_eq!(deletes.len(), 1, "{deletes:?}");
    assert_eq!(
        deletes[0]["status"], "cancelled",
        "nobody can approve what will not run"
    );
    assert_eq!(scratch.upstream_log(), "", "the upstream never saw the call");
}

/// A client of the stateless 2026-07-28 revision and one of 2025-11-25 both see the
/// upstream's tools through the gateway, and both are gated: the read-only call runs at once
/// under the policy, the destructive one waits for a reviewer's approval.
async fn clients_of_both_revisions_pass_through_the_gateway(backend: Backend) {
    let server = TestServer::start(backend).await;
    import_policies(&server, READS_ALLOWED).await;
    let agent = server.agent("notes-agent").await;
    let reviewer = Reviewer::sign_in(&server, 1).await;
    for (mode, revision) in [("auto", "2026-07-28"), ("legacy", "2025-11-25")] {
        let scratch = Scratch::new();
        let note = format!("note-{mode}");
        let deciding = {
            let reviewer = reviewer.clone();
            let payload = json!({"name": note});
            tokio::spawn(async move {
                let held = reviewer.pending_with(&payload).await;
                let id = held["id"].as_str().expect("id").to_string();
                reviewer.decide(&id, "approve", "fine").await;
            })
        };
        let report = mcp_client_in_mode(
            mode,
            gateway_over_child(&[]),
            scratch.env(&server, &agent.key),
            json!([{"list_tools": true}, call("read_note", "groceries"), call("delete_note", &note)]),
        )
        .await;
        deciding.await.expect("the reviewer");
        let steps = &report["steps"];
        assert_eq!(report["protocol_version"], revision, "{report}");
        assert_eq!(steps[0]["tools"], json!(["delete_note", "read_note"]), "{report}");
        assert_eq!(texts(&steps[1]), "note groceries: buy milk", "{revision}: {}", steps[1]);
        assert_eq!(steps[2]["is_error"], false, "{revision}: {}", steps[2]);
        assert_eq!(texts(&steps[2]), format!("deleted {note}"), "{revision}");
        assert_eq!(scratch.upstream_log(), format!("deleted {note}\n"), "{revision}");
    }
}
