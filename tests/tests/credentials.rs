//! Credentials answered from memory, never stale where it matters. A key or terminal token
//! revoked by another process (the operator's command line; a plain SQL update, as another
//! replica's writer would make it) creates, decides and cancels nothing once the revocation
//! has committed, even before this server's table has heard of it: the writer checks every
//! command's credential in its batch. Reads see the revocation within moments, and a key the
//! command line makes works at once. On both stores.

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Value, json};
use signoff_app::Channel;
use signoff_app::wire::{DecisionInput, NewRequest, Role};
use signoff_server::Error;
use signoff_server::engine::Held;
use signoff_tests::fixtures::{request_body, reviewer};
use signoff_tests::server::read_reply;
use signoff_tests::{AgentClient, Backend, Reply, TestDb, TestServer, on_both_stores, run_cli};

on_both_stores!(
    a_key_revoked_by_the_command_line_creates_and_cancels_nothing_more,
    a_token_revoked_elsewhere_decides_nothing_more,
    reads_see_a_revocation_made_elsewhere_within_moments,
    a_key_made_by_the_command_line_works_at_once,
    credentials_from_before_the_table_still_work_after_the_upgrade,
);

fn new_request(title: &str) -> NewRequest {
    serde_json::from_value(request_body(title)).expect("a request body")
}

fn is_unauthorized<T: std::fmt::Debug>(result: &Result<T, Error>) -> bool {
    matches!(result, Err(Error::Unauthorized(_)))
}

async fn a_key_revoked_by_the_command_line_creates_and_cancels_nothing_more(backend: Backend) {
    let server = TestServer::start(backend).await;
    let client = server.agent("deploy-bot").await;
    let pending = client.submit(&request_body("Made before the revocation")).await;
    // The agent as this server authenticated it, from its table: what a call already past
    // authentication holds.
    let agent = server
        .service
        .authenticate_agent(&client.key)
        .await
        .expect("the key works");

    let (code, out, err) = run_cli(&server.db, &["agents", "revoke", "deploy-bot"]);
    assert_eq!(code, 0, "{out}{err}");

    // Straight after the command line's commit, before this server need have looked: the
    // writer refuses, whatever the table says.
    let created = server
        .service
        .create_request(&agent, new_request("Made after the revocation"), None, None)
        .await;
    assert!(is_unauthorized(&created), "{created:?}");
    let cancelled = server.service.cancel(&agent, pending.parse().expect("id")).await;
    assert!(is_unauthorized(&cancelled), "{cancelled:?}");
    // And over HTTP.
    let refused = client.post("/api/v1/requests", &request_body("Also after")).await;
    assert_eq!(refused.status, 401, "{:?}", refused.body);

    // Nothing was created or cancelled: one request, still pending.
    assert_eq!(server.db.count("requests").await, 1);
    let stored = server
        .service
        .request(pending.parse().expect("id"))
        .await
        .expect("the request");
    assert_eq!(stored.status, signoff_app::Status::Pending);
}

async fn as_reviewer(server: &TestServer, token: &str, method: Method, path: &str, body: Option<Value>) -> Reply {
    let mut request = reqwest::Client::new()
        .request(method, format!("{}{path}", server.base_url))
        .bearer_auth(token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    read_reply(request.send().await.expect("reviewer API")).await
}

async fn a_token_revoked_elsewhere_decides_nothing_more(backend: Backend) {
    let server = TestServer::start(backend).await;
    let client = server.agent("deploy-bot").await;
    let id = client.submit(&request_body("Waits for a reviewer")).await;
    let token = server.terminal_token(1, "credentials tests").await;
    let queue = as_reviewer(&server, &token, Method::GET, "/api/v1/requests?status=pending", None).await;
    assert_eq!(queue.status, 200, "{:?}", queue.body);

    // Revoked by another writer (here the test's own SQL, as another replica's engine
    // would commit it): this server's engine made no such change.
    server
        .db
        .execute("UPDATE terminal_tokens SET revoked_at = 1764000000000 WHERE revoked_at IS NULL")
        .await
        .expect("revoke elsewhere");

    // A decision already past authentication, holding the token: refused by the writer.
    let identity = reviewer(1);
    let desk = server
        .service
        .desk(&identity, &[Role::Reviewer])
        .holding(Held::TerminalToken(signoff_server::keys::hash(&token)));
    let input = DecisionInput {
        verdict: signoff_app::Verdict::Approve,
        comment: "ship it".into(),
        break_glass: false,
        grant: None,
    };
    let decided = desk.decide(id.parse().expect("id"), &input, Channel::Terminal).await;
    assert!(is_unauthorized(&decided), "{decided:?}");
    // And over HTTP.
    let refused = as_reviewer(
        &server,
        &token,
        Method::POST,
        &format!("/api/v1/requests/{id}/decisions"),
        Some(json!({"verdict": "approve", "comment": "ship it"})),
    )
    .await;
    assert_eq!(refused.status, 401, "{:?}", refused.body);
    assert_eq!(server.db.count("decisions").await, 0);
    assert_eq!(
        client.get(&format!("/api/v1/requests/{id}")).await.body["status"],
        "pending"
    );
}

async fn reads_see_a_revocation_made_elsewhere_within_moments(backend: Backend) {
    let server = TestServer::start(backend).await;
    let client = server.agent("deploy-bot").await;
    let id = client.submit(&request_body("Read until revoked")).await;
    let path = format!("/api/v1/requests/{id}");
    assert_eq!(client.get(&path).await.status, 200);

    let (code, out, err) = run_cli(&server.db, &["agents", "revoke", "deploy-bot"]);
    assert_eq!(code, 0, "{out}{err}");
    let revoked = Instant::now();
    loop {
        let reply = client.get(&path).await;
        if reply.status == 401 {
            break;
        }
        assert_eq!(reply.status, 200, "{:?}", reply.body);
        // The table looks every 50 ms; a second leaves room for a busy machine.
        assert!(
            revoked.elapsed() < Duration::from_secs(1),
            "a read still succeeded {:?} after the revocation committed",
            revoked.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    eprintln!(
        "reads refused {:?} after the command line's revocation",
        revoked.elapsed()
    );
}

async fn a_key_made_by_the_command_line_works_at_once(backend: Backend) {
    let server = TestServer::start(backend).await;
    // The table is loaded once the server has started; the key is made after that.
    let (code, out, err) = run_cli(&server.db, &["agents", "create", "--name", "late-bot"]);
    assert_eq!(code, 0, "{err}");
    let key = out.lines().last().expect("the key").to_string();
    let client = AgentClient::new(&server.base_url, &key);
    let created = client
        .post("/api/v1/requests", &request_body("Right after the key"))
        .await;
    assert_eq!(created.status, 201, "{:?}", created.body);
}

async fn credentials_from_before_the_table_still_work_after_the_upgrade(backend: Backend) {
    // A store as the version before the table of credentials left it (migrations to 0007),
    // with an agent's key in it.
    let db = TestDb::new(backend).await;
    let key = signoff_server::keys::generate("so_agent_");
    let statements = [
        "INSERT INTO agents (id, name, owner, created_at) \
         VALUES ('0193a4c2-0000-7000-8000-00000000c0de', 'old-bot', NULL, 1764000000000)"
            .to_string(),
        format!(
            "INSERT INTO api_keys (id, agent_id, key_hash, key_prefix, created_at) \
             VALUES ('0193a4c2-0000-7000-8000-00000000c0df', '0193a4c2-0000-7000-8000-00000000c0de', '{}', 'so_agent_old', 1764000000000)",
            signoff_server::keys::hash(&key)
        ),
    ];
    db.as_of_migration(7, &statements).await;

    let server = TestServer::start_on(db, |_| {}).await;
    let client = AgentClient::new(&server.base_url, &key);
    let created = client
        .post("/api/v1/requests", &request_body("After the upgrade"))
        .await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    // And its revocation from the command line reaches the upgraded store's table.
    let (code, out, err) = run_cli(&server.db, &["agents", "revoke", "old-bot"]);
    assert_eq!(code, 0, "{out}{err}");
    let refused = client
        .post("/api/v1/requests", &request_body("After the revocation"))
        .await;
    assert_eq!(refused.status, 401, "{:?}", refused.body);
}
