//! Slack, end to end on both stores: a fake Slack Web API that records every call, signed
//! interactions sent the way Slack signs them, and a real OpenID Provider for linking.
//! A click by an unlinked user gets a one-time link and decides nothing; once linked
//! through SSO, Approve decides under that identity with channel `slack` and the message
//! is updated; Deny opens a modal that asks why; unsigned, stale, replayed and wrongly
//! signed interactions are refused; `decide_in = "console"` posts no buttons; the rules
//! (no self-approval) hold as in the console.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::routing::post;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

use signoff_app::policy::PolicyFile;
use signoff_server::Config;
use signoff_server::config::{Secret, SlackConfig};
use signoff_server::policy_file::{self, Format};
use signoff_server::store::Actor;
use signoff_tests::oidc::Provider;
use signoff_tests::{AgentClient, Backend, TestServer, on_both_stores};

on_both_stores!(
    an_approve_click_decides_only_once_the_slack_user_is_linked_through_sso,
    deny_asks_why_in_a_modal_and_the_console_only_policy_posts_no_buttons,
    unsigned_stale_replayed_and_wrongly_signed_interactions_are_refused,
    a_reminder_replies_in_the_thread_of_the_message_already_posted,
);

const SIGNING_SECRET: &str = "8f742231b10e8888abcd99yyyzzz85a5";
const TEAM: &str = "T0SIGNOFF";
const ALICE: &str = "U0ALICE";

/// Every call the fake Slack got: (method, authorization, body).
#[derive(Clone, Default)]
struct FakeSlack {
    calls: Arc<Mutex<Vec<(String, String, Value)>>>,
    url: String,
}

impl FakeSlack {
    async fn start() -> FakeSlack {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("address"));
        let slack = FakeSlack {
            calls: Arc::default(),
            url,
        };
        let app = axum::Router::new()
            .route("/api/{method}", post(api))
            .route("/respond/{n}", post(respond))
            .with_state(slack.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        slack
    }

    fn calls(&self, method: &str) -> Vec<Value> {
        let calls = self.calls.lock().expect("calls");
        calls
            .iter()
            .filter(|(m, _, _)| m == method)
            .map(|(_, _, body)| body.clone())
            .collect()
    }

    async fn until(&self, method: &str, count: usize) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let calls = self.calls(method);
            if calls.len() >= count {
                return calls;
            }
            assert!(Instant::now() < deadline, "waited for {count} {method}: {calls:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

async fn api(
    State(slack): State<FakeSlack>,
    Path(method): Path<String>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Json<Value> {
    let auth = headers
        .get("authorization")
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_string();
    slack.calls.lock().expect("calls").push((method.clone(), auth, body));
    Json(match method.as_str() {
        "chat.postMessage" => json!({"ok": true, "channel": "C0APPROVALS", "ts": "1700000000.000100"}),
        _ => json!({"ok": true}),
    })
}

async fn respond(State(slack): State<FakeSlack>, Json(body): Json<Value>) -> &'static str {
    slack
        .calls
        .lock()
        .expect("calls")
        .push(("respond".into(), String::new(), body));
    "ok"
}

async fn start(backend: Backend, provider: &Provider, slack: &FakeSlack) -> TestServer {
    let server = TestServer::start_with_sso(backend, provider, to_fake_slack(slack)).await;
    import_policies(
        &server,
        r#"
[[policy]]
name = "databases"
[policy.match]
actions = ["db.*"]
[policy.effect]
type = "require_approval"
decide_in = "console"
"#,
    )
    .await;
    server
}

/// Configures the Slack app against the fake, every request routed to `#approvals`.
fn to_fake_slack(slack: &FakeSlack) -> impl FnOnce(&mut Config) {
    let api_url = format!("{}/api", slack.url);
    move |config| {
        config.notify.slack = Some(SlackConfig {
            bot_token: Secret::new("xoxb-test-token"),
            signing_secret: Secret::new(SIGNING_SECRET),
            api_url,
        });
        config.notify.default = vec!["slack:#approvals".into()];
    }
}

/// Imports the policies of a TOML policy file, as the operator.
async fn import_policies(server: &TestServer, toml: &str) {
    let file: PolicyFile = policy_file::parse(toml, Format::Toml).expect("policies");
    server
        .service
        .import_policies(file, Actor::Operator)
        .await
        .expect("import");
}

/// Slack's signature headers for `body` sent at `timestamp`, signed with `secret`.
fn signed(body: &str, timestamp: i64, secret: &str) -> Vec<(String, String)> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("key");
    mac.update(format!("v0:{timestamp}:{body}").as_bytes());
    vec![
        ("x-slack-request-timestamp".into(), timestamp.to_string()),
        (
            "x-slack-signature".into(),
            format!("v0={}", hex::encode(mac.finalize().into_bytes())),
        ),
    ]
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// The form body Slack posts for a payload.
fn form(payload: &Value) -> String {
    format!("payload={}", signoff_app::ui::url_encode(&payload.to_string()))
}

fn click(slack: &FakeSlack, action: &str, request: &str, n: u32) -> Value {
    json!({
        "type": "block_actions",
        "user": {"id": ALICE, "team_id": TEAM},
        "team": {"id": TEAM},
        "trigger_id": format!("trigger-{n}"),
        "response_url": format!("{}/respond/{n}", slack.url),
        "actions": [{"action_id": action, "value": request}],
    })
}

async fn send(server: &TestServer, body: &str, headers: &[(String, String)]) -> (u16, String) {
    let mut call = server
        .http
        .post(format!("{}/integrations/slack/interactions", server.base_url))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body.to_string());
    for (name, value) in headers {
        call = call.header(name, value);
    }
    let response = call.send().await.expect("send");
    (response.status().as_u16(), response.text().await.unwrap_or_default())
}

async fn interact(server: &TestServer, payload: &Value) -> (u16, String) {
    let body = form(payload);
    send(server, &body, &signed(&body, now(), SIGNING_SECRET)).await
}

async fn status(agent: &AgentClient, id: &str) -> Value {
    agent.get(&format!("/api/v1/requests/{id}")).await.body
}

async fn submit(agent: &AgentClient, action: &str, on_behalf_of: Option<&str>) -> String {
    let mut body =
        json!({"action": action, "resource": "k8s://prod/api", "title": "Deploy api", "reason": "release 42"});
    if let Some(person) = on_behalf_of {
        body["on_behalf_of"] = json!(person);
    }
    agent.submit(&body).await
}

/// Follows the link the ephemeral answer carried, signed in as alice, and confirms it.
async fn link_alice(server: &TestServer, slack: &FakeSlack) {
    let answer = slack.calls("respond").last().cloned().expect("an ephemeral answer");
    let text = answer["text"].as_str().expect("text").to_string();
    assert_eq!(answer["response_type"], "ephemeral");
    assert!(text.contains("Nothing was decided"), "{text}");
    let start = text.find("/integrations/slack/link/").expect("a link");
    let path: String = text[start..].chars().take_while(|c| *c != '|' && *c != '>').collect();
    let browser = server.browser();
    browser.sign_in("alice").await;
    let page = browser.get(&format!("{}{path}", server.base_url)).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(
        page.body.contains(ALICE) && page.body.contains("alice@example.com"),
        "{}",
        page.body
    );
    let done = browser.post_form(&path, &[("csrf", &page.csrf())]).await;
    assert!(done.body.contains("Slack account linked"), "{}", done.body);
    // A link works once.
    let again = browser.get(&format!("{}{path}", server.base_url)).await;
    assert!(again.body.contains("cannot be used"), "{}", again.body);
}

async fn an_approve_click_decides_only_once_the_slack_user_is_linked_through_sso(backend: Backend) {
    let provider = Provider::start().await;
    let slack = FakeSlack::start().await;
    let server = start(backend, &provider, &slack).await;
    let agent = server.agent("deployer").await;
    let id = submit(&agent, "deploy.service", None).await;

    let posted = slack.until("chat.postMessage", 1).await;
    let message = posted[0].to_string();
    assert_eq!(posted[0]["channel"], "#approvals");
    for fact in [
        "Deploy api",
        "deploy.service",
        "k8s://prod/api",
        "release 42",
        "0 of 1 approvals",
        "signoff_approve",
        "signoff_deny",
    ] {
        assert!(message.contains(fact), "the message shows {fact}: {message}");
    }
    assert!(
        message.contains(&format!("{}/requests/{id}", server.base_url)),
        "{message}"
    );
    let auth = slack.calls.lock().expect("calls")[0].1.clone();
    assert_eq!(auth, "Bearer xoxb-test-token");

    // Unlinked: a link, and nothing decided.
    let (code, _) = interact(&server, &click(&slack, "signoff_approve", &id, 1)).await;
    assert_eq!(code, 200);
    slack.until("respond", 1).await;
    assert_eq!(status(&agent, &id).await["status"], "pending");
    link_alice(&server, &slack).await;

    // Linked: the click decides, under alice's SSO identity, from Slack.
    let (code, _) = interact(&server, &click(&slack, "signoff_approve", &id, 2)).await;
    assert_eq!(code, 200);
    let view = status(&agent, &id).await;
    assert_eq!(view["status"], "approved", "{view}");
    assert_eq!(view["decisions"][0]["reviewer"]["subject"], "u-alice");
    assert_eq!(view["decisions"][0]["reviewer"]["email"], "alice@example.com");
    assert_eq!(view["decisions"][0]["channel"], "slack");
    // The message is rewritten in place: who decided, no buttons left.
    let updates = slack.until("chat.update", 1).await;
    let last = slack
        .until("chat.update", updates.len())
        .await
        .last()
        .cloned()
        .expect("an update");
    assert_eq!(last["channel"], "C0APPROVALS");
    assert_eq!(last["ts"], "1700000000.000100");
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let last = slack
            .calls("chat.update")
            .last()
            .cloned()
            .expect("an update")
            .to_string();
        if last.contains("Approved") && last.contains("alice@example.com approved (slack)") {
            assert!(!last.contains("signoff_approve"), "no buttons once decided: {last}");
            break;
        }
        assert!(Instant::now() < deadline, "the message shows the outcome: {last}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    server.stop().await;
}

async fn deny_asks_why_in_a_modal_and_the_console_only_policy_posts_no_buttons(backend: Backend) {
    let provider = Provider::start().await;
    let slack = FakeSlack::start().await;
    let server = start(backend, &provider, &slack).await;
    let agent = server.agent("deployer").await;
    let id = submit(&agent, "deploy.service", None).await;
    slack.until("chat.postMessage", 1).await;
    interact(&server, &click(&slack, "signoff_deny", &id, 1)).await;
    slack.until("respond", 1).await;
    link_alice(&server, &slack).await;

    let (code, _) = interact(&server, &click(&slack, "signoff_deny", &id, 2)).await;
    assert_eq!(code, 200);
    let opened = slack.until("views.open", 1).await;
    assert_eq!(opened[0]["trigger_id"], "trigger-2");
    assert_eq!(opened[0]["view"]["private_metadata"], id.as_str());
    assert_eq!(
        status(&agent, &id).await["status"],
        "pending",
        "a Deny click alone decides nothing"
    );
    let submission = |comment: &str| {
        json!({
            "type": "view_submission",
            "user": {"id": ALICE, "team_id": TEAM},
            "team": {"id": TEAM},
            "view": {"callback_id": "signoff_deny_modal", "private_metadata": id,
                     "state": {"values": {"comment": {"comment": {"type": "plain_text_input", "value": comment}}}}},
        })
    };
    let (code, body) = interact(&server, &submission("")).await;
    assert_eq!(code, 200);
    let answer: Value = serde_json::from_str(&body).expect("errors for the modal");
    assert_eq!(answer["response_action"], "errors", "{body}");
    assert!(
        answer["errors"]["comment"]
            .as_str()
            .unwrap_or_default()
            .contains("comment"),
        "{body}"
    );
    assert_eq!(status(&agent, &id).await["status"], "pending");
    let (code, body) = interact(&server, &submission("not during the freeze")).await;
    assert_eq!((code, body.as_str()), (200, ""));
    let view = status(&agent, &id).await;
    assert_eq!(view["status"], "denied");
    assert_eq!(view["decisions"][0]["comment"], "not during the freeze");
    assert_eq!(view["decisions"][0]["channel"], "slack");

    // Alice may not approve a request made on her behalf, from Slack as anywhere.
    let own = submit(&agent, "deploy.service", Some("alice@example.com")).await;
    slack.until("chat.postMessage", 2).await;
    let before = slack.calls("respond").len();
    interact(&server, &click(&slack, "signoff_approve", &own, 3)).await;
    let answers = slack.until("respond", before + 1).await;
    let said = answers.last().expect("an answer")["text"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(said.starts_with("Not approved:"), "{said}");
    assert_eq!(status(&agent, &own).await["status"], "pending");

    // A console-only policy: a link, never decision buttons.
    submit(&agent, "db.export", None).await;
    let posted = slack.until("chat.postMessage", 3).await;
    let console_only = posted[2].to_string();
    assert!(
        console_only.contains("db.export") && console_only.contains("Open in Signoff"),
        "{console_only}"
    );
    assert!(
        !console_only.contains("signoff_approve") && !console_only.contains("signoff_deny"),
        "{console_only}"
    );
    server.stop().await;
}

async fn unsigned_stale_replayed_and_wrongly_signed_interactions_are_refused(backend: Backend) {
    let provider = Provider::start().await;
    let slack = FakeSlack::start().await;
    let server = start(backend, &provider, &slack).await;
    let agent = server.agent("deployer").await;
    let id = submit(&agent, "deploy.service", None).await;
    // Link alice first, so that any interaction let through would decide.
    interact(&server, &click(&slack, "signoff_approve", &id, 1)).await;
    slack.until("respond", 1).await;
    link_alice(&server, &slack).await;

    let body = form(&click(&slack, "signoff_approve", &id, 2));
    let (code, _) = send(&server, &body, &[]).await;
    assert_eq!(code, 401, "unsigned");
    let (code, _) = send(&server, &body, &signed(&body, now() - 360, SIGNING_SECRET)).await;
    assert_eq!(code, 401, "six minutes old");
    let (code, _) = send(&server, &body, &signed(&body, now(), "another-secret")).await;
    assert_eq!(code, 401, "signed with another secret");
    let tampered = signed(&body, now(), SIGNING_SECRET);
    let (code, _) = send(&server, &body.replace(ALICE, "U0MALLORY"), &tampered).await;
    assert_eq!(code, 401, "a body other than the one signed");
    assert_eq!(
        status(&agent, &id).await["status"],
        "pending",
        "nothing refused decided anything"
    );

    // The same signed request twice: the first decides, the replay is refused.
    let once = signed(&body, now(), SIGNING_SECRET);
    assert_eq!(send(&server, &body, &once).await.0, 200);
    assert_eq!(status(&agent, &id).await["status"], "approved");
    let (code, refusal) = send(&server, &body, &once).await;
    assert_eq!(code, 401, "replayed: {refusal}");
    assert!(refusal.contains("replay"), "{refusal}");
    server.stop().await;
}

async fn a_reminder_replies_in_the_thread_of_the_message_already_posted(backend: Backend) {
    let slack = FakeSlack::start().await;
    let server = TestServer::start_with(backend, to_fake_slack(&slack)).await;
    import_policies(
        &server,
        r#"
[[policy]]
name = "deploys"
[policy.match]
actions = ["deploy.*"]
[policy.effect]
type = "require_approval"
ttl = "30m"
remind_before = "10m"
"#,
    )
    .await;
    let agent = server.agent("deployer").await;
    let id = submit(&agent, "deploy.service", None).await;
    let posted = slack.until("chat.postMessage", 1).await;
    assert!(posted[0]["blocks"].is_array(), "the request's message: {}", posted[0]);

    // Twenty-one minutes on, the reminder is due: it goes to the message's thread (found
    // among the messages stored with the first delivery), not to a second message.
    server.db.age_request(&id, Duration::from_secs(21 * 60)).await;
    let posted = slack.until("chat.postMessage", 2).await;
    let reminder = &posted[1];
    assert_eq!(reminder["thread_ts"], "1700000000.000100", "{reminder}");
    assert_eq!(reminder["channel"], "C0APPROVALS", "{reminder}");
    assert!(
        reminder.get("blocks").is_none(),
        "a reply, not a second message: {reminder}"
    );
    assert!(
        reminder["text"]
            .as_str()
            .is_some_and(|text| text.contains("Deploy api")),
        "{reminder}"
    );
    server.stop().await;
}
