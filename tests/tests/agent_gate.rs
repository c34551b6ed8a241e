//! Agents asking in one line: the real `signoff` binary as a CLI gate
//! (`signoff request … -- CMD`) and as a Claude Code `PreToolUse` hook (`signoff hook
//! claude-code`, fed recorded hook inputs from `tests/fixtures/claude-code/`), against a
//! real server, with a reviewer deciding through the reviewer API while they wait; and the
//! README's "Integrate in 5 minutes" followed as written on a `signoff-server --dev`.
//! Both stores.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Value, json};
use signoff_tests::browser::Browser;
use signoff_tests::fixtures::reviewer;
use signoff_tests::server::read_reply;
use signoff_tests::{AgentClient, Backend, Reply, TestDb, TestServer, on_both_stores, server_binary};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};

on_both_stores!(
    the_gate_runs_the_command_only_after_approval,
    a_denial_never_runs_the_command_and_says_why,
    expiry_and_timeout_never_run_the_command,
    ctrl_c_while_waiting_cancels_the_request,
    the_hook_answers_claude_code_from_the_reviewers_decision,
    the_five_minute_integration_works_as_written,
);

/// Generous: the machine running the tests may be busy building.
const FINISH_TIMEOUT: Duration = Duration::from_secs(60);

// ----- the binary, an agent's environment, a reviewer ---------------------------------

/// Where an agent runs `signoff`: its own working directory and home, its key and server
/// in the environment and nothing else inherited but PATH.
struct AgentShell {
    dir: PathBuf,
    env: Vec<(String, String)>,
}

/// What a run ended with.
#[derive(Debug)]
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
    took: Duration,
}

impl AgentShell {
    fn new(server: &str, key: &str) -> AgentShell {
        let dir = std::env::temp_dir().join(format!("signoff-gate-{}", uuid::Uuid::now_v7().simple()));
        std::fs::create_dir_all(dir.join("home")).expect("create the agent's directory");
        let env = vec![
            ("PATH".into(), std::env::var("PATH").unwrap_or_default()),
            ("HOME".into(), dir.join("home").display().to_string()),
            ("XDG_CONFIG_HOME".into(), dir.join("home/.config").display().to_string()),
            ("XDG_STATE_HOME".into(), dir.join("home/.state").display().to_string()),
            ("SIGNOFF_SERVER".into(), server.to_string()),
            ("SIGNOFF_AGENT_KEY".into(), key.to_string()),
        ];
        AgentShell { dir, env }
    }

    fn without(mut self, name: &str) -> AgentShell {
        self.env.retain(|(variable, _)| variable != name);
        self
    }

    fn with(mut self, name: &str, value: &str) -> AgentShell {
        self.env.retain(|(variable, _)| variable != name);
        self.env.push((name.into(), value.into()));
        self
    }

    /// The file the gated commands create: it exists only if a command ran.
    fn marker(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    fn start(&self, args: &[&str], stdin: Stdio) -> (Child, Instant) {
        let child = Command::new(signoff_tests::client_binary())
            .args(args)
            .current_dir(&self.dir)
            .env_clear()
            .envs(self.env.iter().cloned())
            .stdin(stdin)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("start signoff");
        (child, Instant::now())
    }

    /// `signoff request ARGS`, left running.
    fn gate(&self, args: &[&str]) -> (Child, Instant) {
        let mut all = vec!["request"];
        all.extend_from_slice(args);
        self.start(&all, Stdio::null())
    }

    /// `signoff hook claude-code ARGS` with a recorded hook input on standard input.
    async fn hook(&self, fixture: &str, args: &[&str]) -> (Child, Instant) {
        let mut all = vec!["hook", "claude-code"];
        all.extend_from_slice(args);
        let (mut child, started) = self.start(&all, Stdio::piped());
        let input = std::fs::read(fixture_path(fixture)).expect("read the recorded hook input");
        let mut stdin = child.stdin.take().expect("stdin");
        stdin.write_all(&input).await.expect("write the hook input");
        drop(stdin);
        (child, started)
    }
}

impl Drop for AgentShell {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn fixture_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/claude-code")
        .join(name)
}

fn fixture(name: &str) -> Value {
    serde_json::from_slice(&std::fs::read(fixture_path(name)).expect("read fixture")).expect("fixture is JSON")
}

async fn finish((child, started): (Child, Instant)) -> Run {
    let output = tokio::time::timeout(FINISH_TIMEOUT, child.wait_with_output())
        .await
        .expect("signoff finishes")
        .expect("wait for signoff");
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        took: started.elapsed(),
    }
}

/// The request id the gate announced on standard error.
fn announced_id(stderr: &str) -> String {
    let start = stderr.find("request ").expect("the request is announced") + "request ".len();
    stderr[start..start + 36].to_string()
}

/// A reviewer using the reviewer API with a terminal token.
struct Reviewer {
    base_url: String,
    token: String,
    http: reqwest::Client,
}

impl Reviewer {
    /// Terminal sign-in over HTTP; the browser's confirmation is made through the service
    /// (the sign-in itself is what `tests/terminal.rs` covers).
    async fn sign_in(server: &TestServer, n: u32) -> Reviewer {
        let http = reqwest::Client::new();
        let url = |path: &str| format!("{}{path}", server.base_url);
        let code = read_reply(
            http.post(url("/api/v1/device/code"))
                .json(&json!({"client_name": "gate tests"}))
                .send()
                .await
                .expect("device code"),
        )
        .await;
        assert_eq!(code.status, 200, "{:?}", code.body);
        let confirmed = server
            .service
            .answer_device_code(code.body["user_code"].as_str().expect("user code"), &reviewer(n), true)
            .await
            .expect("confirm");
        assert!(confirmed);
        let token = read_reply(
            http.post(url("/api/v1/device/token"))
                .json(&json!({"device_code": code.body["device_code"]}))
                .send()
                .await
                .expect("device token"),
        )
        .await;
        assert_eq!(token.status, 200, "{:?}", token.body);
        Reviewer {
            base_url: server.base_url.clone(),
            token: token.body["access_token"].as_str().expect("token").to_string(),
            http,
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

    /// The one pending request, once an agent has submitted it.
    async fn next_pending(&self) -> Value {
        pending_request(|| self.call(Method::GET, "/api/v1/requests?status=pending", None)).await
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

/// Polls a queue listing until it holds a request; returns the newest.
async fn pending_request<F, Fut>(list: F) -> Value
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Reply>,
{
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let reply = list().await;
        assert_eq!(reply.status, 200, "{:?}", reply.body);
        if let Some(newest) = reply.body["items"].as_array().and_then(|items| items.last()) {
            return newest.clone();
        }
        assert!(Instant::now() < deadline, "no request was submitted");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn still_running(child: &mut (Child, Instant)) -> bool {
    child.0.try_wait().expect("check the gate").is_none()
}

async fn status_of(agent: &AgentClient, id: &str) -> Value {
    agent.get(&format!("/api/v1/requests/{id}")).await.body
}

const DEPLOY: &[&str] = &[
    "--action",
    "deploy.service",
    "--resource",
    "k8s://prod/payments-api",
    "--reason",
    "Release 1.5.0: fixes the refund rounding bug",
    "--label",
    "env=prod",
];

fn deploy_then(command: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = DEPLOY.iter().map(|arg| arg.to_string()).collect();
    if !command.is_empty() {
        args.push("--".into());
        args.extend(command.iter().map(|arg| arg.to_string()));
    }
    args
}

fn strs(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}

// ----- the CLI gate -------------------------------------------------------------------

async fn the_gate_runs_the_command_only_after_approval(backend: Backend) {
    let server = TestServer::start(backend).await;
    let agent = server.agent("ci-bot").await;
    let reviewer = Reviewer::sign_in(&server, 1).await;
    let shell = AgentShell::new(&server.base_url, &agent.key);

    let args = deploy_then(&["sh", "-c", "echo deployed; touch ran; exit 7"]);
    let mut gate = shell.gate(&strs(&args));
    let pending = reviewer.next_pending().await;
    let id = pending["id"].as_str().expect("id").to_string();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(still_running(&mut gate), "the gate waits for the decision");
    assert!(!shell.marker("ran").exists(), "nothing runs before approval");
    // Reviewers approve exactly the command that will run.
    let submitted = status_of(&agent, &id).await;
    assert_eq!(
        submitted["payload"],
        json!({"command": ["sh", "-c", "echo deployed; touch ran; exit 7"]})
    );
    assert_eq!(submitted["title"], "Run sh -c 'echo deployed; touch ran; exit 7'");
    assert_eq!(submitted["labels"]["env"], "prod");

    reviewer.decide(&id, "approve", "ship it").await;
    let run = finish(gate).await;
    assert_eq!(run.code, 7, "the command's exit code is passed through: {run:?}");
    assert!(shell.marker("ran").exists(), "the command ran once approved");
    assert_eq!(run.stdout, "deployed\n", "standard output is the command's alone");
    assert!(
        run.stderr.contains(&format!("{}/requests/{id}", server.base_url)),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("waiting for approval"), "{}", run.stderr);
    assert!(run.stderr.contains("Reviewer 1"), "{}", run.stderr);
    assert!(!run.stderr.contains(&agent.key), "the key is never printed");
    let reported = status_of(&agent, &id).await;
    assert_eq!(reported["status"], "failed", "a non-zero exit is reported as failed");
    assert_eq!(reported["result"]["detail"]["exit_code"], 7);

    // A command that succeeds is reported as executed.
    let mut gate = shell.gate(&strs(&deploy_then(&["touch", "ran-ok"])));
    let id = reviewer.next_pending().await["id"].as_str().expect("id").to_string();
    assert!(still_running(&mut gate));
    reviewer.decide(&id, "approve", "").await;
    let run = finish(gate).await;
    assert_eq!(run.code, 0, "{run:?}");
    assert!(shell.marker("ran-ok").exists());
    assert_eq!(status_of(&agent, &id).await["status"], "executed");

    // A retried job resumes its request with --idempotency-key, and a request runs at
    // most once.
    let mut args = deploy_then(&[]);
    args.extend(["--idempotency-key", "ci-job-42", "--", "sh", "-c", "echo x >> ran-once"].map(String::from));
    let gate = shell.gate(&strs(&args));
    let id = reviewer.next_pending().await["id"].as_str().expect("id").to_string();
    reviewer.decide(&id, "approve", "").await;
    assert_eq!(finish(gate).await.code, 0);
    let again = finish(shell.gate(&strs(&args))).await;
    assert_eq!(again.code, 1, "{again:?}");
    assert_eq!(announced_id(&again.stderr), id, "the same request");
    assert!(again.stderr.contains("not run again"), "{}", again.stderr);
    let runs = std::fs::read_to_string(shell.marker("ran-once")).expect("ran");
    assert_eq!(runs.lines().count(), 1, "ran once");

    // Without a command, approval is exit code 0, for `signoff request … && deploy.sh`;
    // a diff file goes to reviewers as it is.
    let diff =
        "--- a/values.yaml\n+++ b/values.yaml\n@@ -1 +1 @@\n-image: payments-api:1.4.2\n+image: payments-api:1.5.0\n";
    std::fs::write(shell.marker("change.diff"), diff).expect("write the diff");
    let mut args = deploy_then(&[]);
    args.extend(["--diff-file", "change.diff", "--title", "Deploy payments-api 1.5.0"].map(String::from));
    let gate = shell.gate(&strs(&args));
    let id = reviewer.next_pending().await["id"].as_str().expect("id").to_string();
    let submitted = status_of(&agent, &id).await;
    assert_eq!(submitted["title"], "Deploy payments-api 1.5.0");
    assert!(
        submitted["diff"]
            .as_str()
            .is_some_and(|text| text.contains("+image: payments-api:1.5.0")),
        "{submitted}"
    );
    reviewer.decide(&id, "approve", "").await;
    let run = finish(gate).await;
    assert_eq!((run.code, run.stdout.as_str()), (0, ""), "{run:?}");
    assert_eq!(status_of(&agent, &id).await["status"], "approved");
}

async fn a_denial_never_runs_the_command_and_says_why(backend: Backend) {
    let server = TestServer::start(backend).await;
    let agent = server.agent("ci-bot").await;
    let reviewer = Reviewer::sign_in(&server, 1).await;
    let shell = AgentShell::new(&server.base_url, &agent.key);

    let gate = shell.gate(&strs(&deploy_then(&["touch", "ran"])));
    let id = reviewer.next_pending().await["id"].as_str().expect("id").to_string();
    reviewer.decide(&id, "deny", "Not during the release freeze").await;
    let run = finish(gate).await;
    assert_eq!(run.code, 10, "denied has its own exit code: {run:?}");
    assert!(run.stderr.contains("Not during the release freeze"), "{}", run.stderr);
    assert!(run.stderr.contains("Reviewer 1"), "{}", run.stderr);
    assert_eq!(run.stdout, "");
    assert!(!shell.marker("ran").exists(), "a denied command never runs");
    assert_eq!(status_of(&agent, &id).await["status"], "denied");

    // No key, or a key the server does not know: the command does not run either.
    let run = finish(
        AgentShell::new(&server.base_url, "")
            .without("SIGNOFF_AGENT_KEY")
            .gate(&strs(&deploy_then(&["touch", "ran"]))),
    )
    .await;
    assert_eq!(run.code, 3, "{run:?}");
    assert!(run.stderr.contains("SIGNOFF_AGENT_KEY"), "{}", run.stderr);
    let run = finish(
        AgentShell::new(&server.base_url, "so_agent_not-a-real-key").gate(&strs(&deploy_then(&["touch", "ran"]))),
    )
    .await;
    assert_eq!(run.code, 3, "{run:?}");
    assert!(!run.stderr.contains("so_agent_not-a-real-key"), "{}", run.stderr);
}

async fn expiry_and_timeout_never_run_the_command(backend: Backend) {
    let server = TestServer::start(backend).await;
    let agent = server.agent("ci-bot").await;
    let shell = AgentShell::new(&server.base_url, &agent.key);

    // Nobody decides within the request's lifetime.
    let mut args = deploy_then(&[]);
    args.extend(["--ttl", "1s", "--", "touch", "ran"].map(String::from));
    let run = finish(shell.gate(&strs(&args))).await;
    assert_eq!(run.code, 11, "expired has its own exit code: {run:?}");
    assert!(run.stderr.contains("expired"), "{}", run.stderr);
    assert!(!shell.marker("ran").exists());
    assert_eq!(status_of(&agent, &announced_id(&run.stderr)).await["status"], "expired");

    // The gate's own timeout cancels the request: nobody can approve it afterwards.
    let mut args = deploy_then(&[]);
    args.extend(["--timeout", "2s", "--", "touch", "ran"].map(String::from));
    let run = finish(shell.gate(&strs(&args))).await;
    assert_eq!(run.code, 13, "timed out has its own exit code: {run:?}");
    assert!(run.took >= Duration::from_secs(2), "waited the timeout: {:?}", run.took);
    assert!(run.stderr.contains("cancelled"), "{}", run.stderr);
    assert!(!shell.marker("ran").exists());
    assert_eq!(
        status_of(&agent, &announced_id(&run.stderr)).await["status"],
        "cancelled"
    );
}

async fn ctrl_c_while_waiting_cancels_the_request(backend: Backend) {
    let server = TestServer::start(backend).await;
    let agent = server.agent("ci-bot").await;
    let reviewer = Reviewer::sign_in(&server, 1).await;
    let shell = AgentShell::new(&server.base_url, &agent.key);

    let gate = shell.gate(&strs(&deploy_then(&["touch", "ran"])));
    let id = reviewer.next_pending().await["id"].as_str().expect("id").to_string();
    let pid = gate.0.id().expect("pid").to_string();
    let sent = std::process::Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .expect("send SIGINT");
    assert!(sent.success());
    let run = finish(gate).await;
    assert_eq!(run.code, 130, "{run:?}");
    assert!(!shell.marker("ran").exists());
    assert_eq!(status_of(&agent, &id).await["status"], "cancelled");
}

// ----- the Claude Code hook -----------------------------------------------------------

fn hook_decision(run: &Run) -> (String, String) {
    assert_eq!(run.code, 0, "{run:?}");
    let output: Value = serde_json::from_str(run.stdout.trim()).expect("the hook prints JSON");
    let specific = &output["hookSpecificOutput"];
    assert_eq!(specific["hookEventName"], "PreToolUse", "{output}");
    (
        specific["permissionDecision"].as_str().expect("decision").to_string(),
        specific["permissionDecisionReason"]
            .as_str()
            .expect("reason")
            .to_string(),
    )
}

async fn the_hook_answers_claude_code_from_the_reviewers_decision(backend: Backend) {
    let server = TestServer::start(backend).await;
    let agent = server.agent("claude-code").await;
    let reviewer = Reviewer::sign_in(&server, 1).await;
    let shell = AgentShell::new(&server.base_url, &agent.key);

    // A Bash call, approved: allow.
    let hook = shell.hook("bash.json", &[]).await;
    let pending = reviewer.next_pending().await;
    let id = pending["id"].as_str().expect("id").to_string();
    let request = status_of(&agent, &id).await;
    let recorded = fixture("bash.json");
    assert_eq!(request["action"], "claude_code.bash");
    assert_eq!(request["resource"], recorded["tool_input"]["command"]);
    assert_eq!(request["reason"], recorded["tool_input"]["description"]);
    assert_eq!(
        request["payload"], recorded["tool_input"],
        "the tool input is the payload"
    );
    assert_eq!(request["context"]["cwd"], "/home/dev/payments");
    assert_eq!(request["context"]["session_id"], recorded["session_id"]);
    reviewer.decide(&id, "approve", "ok, config map is merged").await;
    let (decision, reason) = hook_decision(&finish(hook).await);
    assert_eq!(decision, "allow");
    assert!(reason.contains("ok, config map is merged"), "{reason}");

    // An edit, denied: deny, with the reviewer's comment for Claude to adapt to.
    let hook = shell.hook("edit.json", &[]).await;
    let id = reviewer.next_pending().await["id"].as_str().expect("id").to_string();
    let request = status_of(&agent, &id).await;
    assert_eq!(request["action"], "claude_code.write");
    assert_eq!(request["resource"], "/home/dev/payments/deploy/prod/values.yaml");
    reviewer
        .decide(&id, "deny", "Two replicas cannot carry prod traffic; keep 6")
        .await;
    let (decision, reason) = hook_decision(&finish(hook).await);
    assert_eq!(decision, "deny");
    assert!(
        reason.contains("Two replicas cannot carry prod traffic; keep 6"),
        "{reason}"
    );
    assert!(reason.contains("Reviewer 1"), "{reason}");

    // An MCP tool nobody decides on in time: deny, and the request is cancelled.
    let run = finish(shell.hook("mcp.json", &["--timeout", "2s"]).await).await;
    let (decision, reason) = hook_decision(&run);
    assert_eq!(decision, "deny");
    assert!(reason.contains("No decision"), "{reason}");
    let id = announced_id(&run.stderr);
    let request = status_of(&agent, &id).await;
    assert_eq!(request["action"], "claude_code.mcp__github__merge_pull_request");
    assert_eq!(request["status"], "cancelled");

    // It fails closed: no key, or no server, blocks the tool call (exit code 2).
    let no_key = AgentShell::new(&server.base_url, "").without("SIGNOFF_AGENT_KEY");
    let run = finish(no_key.hook("write.json", &[]).await).await;
    assert_eq!((run.code, run.stdout.as_str()), (2, ""), "{run:?}");
    assert!(run.stderr.contains("SIGNOFF_AGENT_KEY"), "{}", run.stderr);
    let no_server = AgentShell::new("http://127.0.0.1:9", &agent.key);
    let run = finish(no_server.hook("write.json", &[]).await).await;
    assert_eq!((run.code, run.stdout.as_str()), (2, ""), "{run:?}");
    assert!(run.stderr.contains("blocked"), "{}", run.stderr);
    let not_json = AgentShell::new(&server.base_url, &agent.key).with("SIGNOFF_SERVER", &server.base_url);
    let (mut child, started) = not_json.start(&["hook", "claude-code"], Stdio::piped());
    let mut stdin = child.stdin.take().expect("stdin");
    stdin.write_all(b"not json").await.expect("write");
    drop(stdin);
    let run = finish((child, started)).await;
    assert_eq!((run.code, run.stdout.as_str()), (2, ""), "{run:?}");
}

// ----- README: Integrate in 5 minutes -------------------------------------------------

/// The steps of the README's "Integrate in 5 minutes", as written, against the real
/// `signoff-server --dev`: create an agent key with the server's command line, submit
/// and wait with plain HTTP, gate a command, put a Claude Code tool call behind the hook;
/// a reviewer signs in with the development sign-in and decides in the console's API.
async fn the_five_minute_integration_works_as_written(backend: Backend) {
    let db = TestDb::new(backend).await;
    let dir = db.dir.display().to_string();
    let server_env = [
        ("SIGNOFF_DATA_DIR", dir.as_str()),
        ("DATABASE_URL", db.url.as_str()),
        ("SIGNOFF_LISTEN", "127.0.0.1:0"),
        ("RUST_LOG", "warn"),
    ];
    // 1. `signoff-server --dev`
    let mut server = Command::new(server_binary())
        .arg("--dev")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(server_env)
        .stdout(Stdio::piped())
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start signoff-server --dev");
    let mut lines = BufReader::new(server.stdout.take().expect("stdout")).lines();
    let base_url = tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(line) = lines.next_line().await.expect("read stdout") {
            if let Some(url) = line.strip_prefix("signoff-server listening on ") {
                return url.trim().to_string();
            }
        }
        panic!("signoff-server --dev exited before listening");
    })
    .await
    .expect("listening within 60 s");
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });

    // 2. `signoff-server --dev agents create --name ci-bot --owner you@example.com`
    let created = Command::new(server_binary())
        .args([
            "--dev",
            "agents",
            "create",
            "--name",
            "ci-bot",
            "--owner",
            "you@example.com",
        ])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(server_env)
        .output()
        .await
        .expect("agents create");
    assert!(created.status.success(), "{created:?}");
    let key = String::from_utf8_lossy(&created.stdout)
        .lines()
        .last()
        .expect("the key on the last line")
        .to_string();

    // A reviewer: Riley, through the development sign-in.
    let riley = Browser::new(&base_url);
    let form = riley.get(&format!("{base_url}/auth/dev")).await;
    let marker = "name=\"csrf\" value=\"";
    let start = form.body.find(marker).expect("csrf field") + marker.len();
    let form_csrf = form.body[start..start + form.body[start..].find('"').expect("end")].to_string();
    let landed = riley
        .post_form("/auth/dev", &[("csrf", &form_csrf), ("user", "riley"), ("next", "/")])
        .await;
    let csrf = landed.csrf();
    let newest_of_ci_bot = || async {
        pending_request(|| riley.api(Method::GET, "/api/v1/requests?status=pending&agent=ci-bot", None, None))
            .await["id"]
            .as_str()
            .expect("id")
            .to_string()
    };
    let decide = |id: String, verdict: &'static str| {
        let csrf = csrf.clone();
        let riley = &riley;
        async move {
            let reply = riley
                .api(
                    Method::POST,
                    &format!("/api/v1/requests/{id}/decisions"),
                    Some(&csrf),
                    Some(&json!({"verdict": verdict, "comment": "ok"})),
                )
                .await;
            assert_eq!(reply.status, 200, "{:?}", reply.body);
        }
    };

    // 3. curl: create, then wait (the README's body, sent as is).
    let agent = AgentClient::new(&base_url, &key);
    let id = agent
        .submit(&json!({
            "action": "deploy.service",
            "resource": "k8s://prod/payments-api",
            "title": "Deploy payments-api 1.5.0",
            "reason": "Fixes the refund rounding bug",
            "payload": {"image": "payments-api:1.5.0"}
        }))
        .await;
    let waiting = {
        let agent = agent.clone();
        let id = id.clone();
        tokio::spawn(async move { agent.wait(&id, 60).await })
    };
    decide(newest_of_ci_bot().await, "approve").await;
    let answered = tokio::time::timeout(Duration::from_secs(20), waiting)
        .await
        .expect("the wait answers")
        .expect("join");
    assert_eq!(answered.body["status"], "approved");

    // 4. The CLI gate.
    let shell = AgentShell::new(&base_url, &key);
    let gate = shell.gate(&[
        "--action",
        "deploy.service",
        "--resource",
        "k8s://prod/payments-api",
        "--reason",
        "Release 1.5.0",
        "--timeout",
        "10m",
        "--",
        "sh",
        "-c",
        "echo deployed 1.5.0",
    ]);
    decide(newest_of_ci_bot().await, "approve").await;
    let run = finish(gate).await;
    assert_eq!((run.code, run.stdout.as_str()), (0, "deployed 1.5.0\n"), "{run:?}");

    // 5. The Claude Code hook.
    let hook = shell.hook("bash.json", &[]).await;
    decide(newest_of_ci_bot().await, "approve").await;
    let (decision, _) = hook_decision(&finish(hook).await);
    assert_eq!(decision, "allow");
}
