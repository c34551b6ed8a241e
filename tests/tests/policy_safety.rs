//! What policies, grants, break-glass and waits must refuse as they combine, on both
//! stores: a condition that would exhaust the stack (at save, and stored by an earlier
//! version), one that would run for seconds, comparisons across types, grants reaching a
//! grantor's own request or riding a break-glass approval, break-glass on someone else's
//! request, grants bound to the whole action by default, and a revoked key's waits.

use std::time::Duration;

use serde_json::{Value, json};
use signoff_app::policy::{PolicyDoc, PolicyFile};
use signoff_app::wire::{DecisionInput, GrantInput};
use signoff_app::{Channel, Identity, Verdict};
use signoff_server::Error;
use signoff_server::policy_file::{self, Format};
use signoff_server::store::{Actor, Store};
use signoff_tests::fixtures::reviewer;
use signoff_tests::{AgentClient, Backend, TestDb, TestServer, on_both_stores, run_cli};

on_both_stores!(
    a_condition_too_deep_is_refused_at_save_and_fails_closed_when_stored,
    a_condition_that_runs_out_of_steps_fails_closed,
    unlike_types_never_satisfy_an_allow_policy,
    a_grant_never_approves_a_request_for_one_of_its_grantors,
    a_grant_binds_the_whole_action_unless_widened_on_purpose,
    break_glass_is_for_ones_own_request_and_carries_no_grant,
    a_refused_break_glass_answers_only_its_own_command,
    a_revoked_key_ends_its_waits,
    what_if_pages_through_more_requests_than_a_page,
);

fn file(text: &str) -> PolicyFile {
    policy_file::parse(text, Format::Toml).expect("valid policy file")
}

fn doc(toml_table: &str) -> PolicyDoc {
    file(&format!("[[policy]]\n{toml_table}")).policies.remove(0)
}

async fn import(server: &TestServer, text: &str) {
    server
        .service
        .import_policies(file(text), Actor::Operator)
        .await
        .expect("policies import");
}

fn body(action: &str, payload: Value) -> Value {
    json!({
        "action": action,
        "resource": "orders",
        "title": format!("{action} on orders"),
        "reason": "testing what policies refuse",
        "payload": payload,
    })
}

async fn create(agent: &AgentClient, body: &Value) -> Value {
    let reply = agent.post("/api/v1/requests", body).await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    reply.body
}

fn status(view: &Value) -> &str {
    view["status"].as_str().unwrap_or_default()
}

fn id(view: &Value) -> String {
    view["id"].as_str().expect("id").to_string()
}

fn person(n: u32, groups: &[&str]) -> Identity {
    let mut person = reviewer(n);
    person.groups = groups.iter().map(|g| g.to_string()).collect();
    person
}

async fn decide(
    server: &TestServer,
    who: &Identity,
    id: &str,
    comment: &str,
    break_glass: bool,
    grant: Option<GrantInput>,
) -> Result<Value, Error> {
    let input = DecisionInput {
        verdict: Verdict::Approve,
        comment: comment.into(),
        break_glass,
        grant,
    };
    let view = server
        .service
        .decide(who, id.parse().expect("id"), &input, Channel::Api)
        .await?;
    Ok(serde_json::to_value(view).expect("json"))
}

fn grant(fields: &[&str]) -> GrantInput {
    GrantInput {
        duration: "30m".into(),
        max_uses: 5,
        fields: fields.iter().map(|f| f.to_string()).collect(),
    }
}

/// 1,400 chained `+` (2.8 KB): it once overflowed the evaluator's stack on the first
/// matching request, and again after every restart.
fn too_deep() -> String {
    format!("payload.n{} > 0", "+1".repeat(1400))
}

async fn a_condition_too_deep_is_refused_at_save_and_fails_closed_when_stored(backend: Backend) {
    let server = TestServer::start(backend).await;
    let deep = doc(&format!(
        "name = \"deep\"\n[policy.match]\ncondition = \"{}\"\n[policy.effect]\ntype = \"deny\"\nreason = \"no\"",
        too_deep()
    ));
    let refused = server
        .service
        .save_policy(None, deep.clone(), Actor::Operator)
        .await
        .expect_err("refused at save");
    assert!(
        matches!(&refused, Error::PolicyInvalid(problems) if problems[0].field == "match.condition"
            && problems[0].message.contains("levels deep")),
        "{refused:?}"
    );
    server.stop().await;

    // A store an earlier version wrote, holding such a policy (an allow, and a deny after
    // it): the server starts, and neither is applied, each failing closed.
    let db = TestDb::new(backend).await;
    let store = Store::connect(&db.url).await.expect("connect");
    store.migrate().await.expect("migrate");
    let allow = PolicyDoc {
        name: "deep allow".into(),
        effect: signoff_app::policy::Effect::Allow,
        ..deep.clone()
    };
    for (position, stored) in [(0, &allow), (1, &deep)] {
        let document = serde_json::to_string(stored).expect("json");
        db.execute(&format!(
            "INSERT INTO policies (id, name, position, version, document, updated_at) \
             VALUES ('p{position}', '{}', {position}, 1, '{document}', 1000)",
            stored.name
        ))
        .await
        .expect("store the policy as an earlier version would have");
    }
    db.execute("UPDATE policy_state SET generation = 1 WHERE id = 1")
        .await
        .expect("generation");
    drop(store);
    let server = TestServer::start_on(db, |_| {}).await;
    let agent = server.agent("exporter").await;
    let denied = create(&agent, &body("db.export", json!({"n": 1}))).await;
    assert_eq!(status(&denied), "denied", "the deny holds, closed: {denied}");
    let why = denied["policy"]["why"].to_string();
    assert!(why.contains("refused") && why.contains("fail closed"), "{why}");
    let health = reqwest::get(format!("{}/healthz", server.base_url))
        .await
        .expect("alive");
    assert!(health.status().is_success());
    server.stop().await;
}

async fn a_condition_that_runs_out_of_steps_fails_closed(backend: Backend) {
    let server = TestServer::start(backend).await;
    // Quadratic in the payload: 3,000 items make 9 million steps, far past the budget.
    import(
        &server,
        r#"
[[policy]]
name = "small batches"
[policy.match]
actions = ["batch.*"]
condition = "payload.items.all(a, payload.items.all(b, a + b >= 0))"
[policy.effect]
type = "allow"

[[policy]]
name = "duplicate batches"
[policy.match]
actions = ["dup.*"]
condition = "payload.items.exists(a, payload.items.exists(b, a == b + 1000000))"
[policy.effect]
type = "deny"
reason = "no duplicates"
"#,
    )
    .await;
    let agent = server.agent("batcher").await;
    let items: Vec<u32> = (0..3000).collect();
    let started = std::time::Instant::now();
    let allowed = create(&agent, &body("batch.run", json!({ "items": items }))).await;
    assert_eq!(status(&allowed), "pending", "out of steps is not an allow: {allowed}");
    let denied = create(&agent, &body("dup.run", json!({ "items": items }))).await;
    assert_eq!(status(&denied), "denied", "out of steps is a deny's match");
    assert!(
        denied["policy"]["why"].to_string().contains("ran out"),
        "{}",
        denied["policy"]["why"]
    );
    // A small batch is matched as written.
    let small = create(&agent, &body("batch.run", json!({ "items": [1, 2, 3] }))).await;
    assert_eq!(status(&small), "approved");
    // Not a timing assertion: without a budget these take minutes, and the test's
    // timeout would say so; with one they take a fraction of a second.
    eprintln!("three matches took {:?}", started.elapsed());
    server.stop().await;
}

async fn unlike_types_never_satisfy_an_allow_policy(backend: Backend) {
    let server = TestServer::start(backend).await;
    import(
        &server,
        r#"
[[policy]]
name = "anything but users"
[policy.match]
actions = ["db.export"]
condition = "payload.table != 'users'"
[policy.effect]
type = "allow"
"#,
    )
    .await;
    let agent = server.agent("exporter").await;
    let listed = create(&agent, &body("db.export", json!({"table": ["users"]}))).await;
    assert_eq!(status(&listed), "pending", "a list is not a table name: {listed}");
    let why = listed["policy"]["why"].to_string();
    assert!(why.contains("cannot compare"), "the reviewer is told why: {why}");
    let orders = create(&agent, &body("db.export", json!({"table": "orders"}))).await;
    assert_eq!(status(&orders), "approved");

    // "Test a request" shows the same.
    let set = server.service.policy_set();
    let labels = Default::default();
    let payload = json!({"table": ["users"]});
    let facts = signoff_app::policy::RequestFacts {
        agent: "exporter",
        action: "db.export",
        resource: "orders",
        labels: &labels,
        payload: &payload,
        context: None,
        on_behalf_of: None,
        title: "t",
        reason: "r",
    };
    let (matched, _) = server.service.test_request(&set, &facts);
    assert_eq!(matched.name, "default");
    assert!(
        matched
            .why
            .iter()
            .any(|line| line.contains("anything but users") && line.contains("cannot compare")),
        "{:?}",
        matched.why
    );
    server.stop().await;
}

const GRANTS: &str = r#"
[[policy]]
name = "exports"
[policy.match]
actions = ["db.export"]
[policy.effect]
type = "require_approval"
break_glass = ["reviewer1@example.com"]
[policy.effect.grants]
max_duration = "1h"
max_uses = 5
"#;

async fn a_grant_never_approves_a_request_for_one_of_its_grantors(backend: Backend) {
    let server = TestServer::start(backend).await;
    import(&server, GRANTS).await;
    let agent = server.agent("exporter").await;
    let export = body("db.export", json!({"table": "orders"}));
    let first = create(&agent, &export).await;
    let riley = person(2, &["signoff-reviewers"]);
    let approved = decide(&server, &riley, &id(&first), "", false, Some(grant(&["table"])))
        .await
        .expect("approved with a grant");
    assert_eq!(status(&approved), "approved");

    // The same action for Riley herself: she could not approve it in person.
    let mut for_riley = export.clone();
    for_riley["on_behalf_of"] = json!("reviewer2@example.com");
    let hers = create(&agent, &for_riley).await;
    assert_eq!(status(&hers), "pending", "her grant does not approve her own request");
    let refused = decide(&server, &riley, &id(&hers), "", false, None).await;
    assert!(
        matches!(refused, Err(Error::Rule(signoff_app::RuleError::OwnRequest))),
        "{refused:?}"
    );
    // For anyone else, the grant still holds.
    let mut for_reese = export.clone();
    for_reese["on_behalf_of"] = json!("reese@example.com");
    assert_eq!(status(&create(&agent, &for_reese).await), "approved");
    server.stop().await;
}

async fn a_grant_binds_the_whole_action_unless_widened_on_purpose(backend: Backend) {
    let server = TestServer::start(backend).await;
    import(&server, GRANTS).await;
    let agent = server.agent("exporter").await;
    let export = |payload: Value| body("db.export", payload);
    let first = create(&agent, &export(json!({"table": "orders", "rows": 10}))).await;
    decide(&server, &reviewer(3), &id(&first), "", false, Some(grant(&[])))
        .await
        .expect("approved with a grant naming no fields");
    // Exactly the same action again: covered.
    let same = create(&agent, &export(json!({"table": "orders", "rows": 10}))).await;
    assert_eq!(status(&same), "approved", "{same}");
    // Any other payload, or another diff: not covered.
    let more = create(&agent, &export(json!({"table": "orders", "rows": 10_000_000}))).await;
    assert_eq!(
        status(&more),
        "pending",
        "a grant for this export is not one for every export"
    );
    let mut with_diff = export(json!({"table": "orders", "rows": 10}));
    with_diff["diff"] = json!("--- a\n+++ b\n@@ -1 +1 @@\n-x\n+y\n");
    assert_eq!(status(&create(&agent, &with_diff).await), "pending");
    let grants = server.service.store().grants(None).await.expect("grants");
    assert!(grants[0].fields.contains_key("$digest"), "{:?}", grants[0].fields);

    // `*` widens it to any payload, on purpose; a field name with it is refused.
    let next = create(&agent, &export(json!({"table": "users"}))).await;
    let mixed = decide(
        &server,
        &reviewer(3),
        &id(&next),
        "",
        false,
        Some(grant(&["*", "table"])),
    )
    .await;
    assert!(matches!(mixed, Err(Error::Invalid(_))), "{mixed:?}");
    decide(&server, &reviewer(3), &id(&next), "", false, Some(grant(&["*"])))
        .await
        .expect("approved with a grant for any payload");
    let anything = create(&agent, &export(json!({"table": "payments", "rows": 1}))).await;
    assert_eq!(status(&anything), "approved");
    server.stop().await;
}

async fn break_glass_is_for_ones_own_request_and_carries_no_grant(backend: Backend) {
    let server = TestServer::start(backend).await;
    import(&server, GRANTS).await;
    let agent = server.agent("exporter").await;
    let ada = person(1, &["signoff-reviewers", "signoff-admins"]);
    // Someone else's request: the quorum stands, even for a named admin.
    let mut theirs = body("db.export", json!({"table": "orders"}));
    theirs["on_behalf_of"] = json!("reese@example.com");
    let their_request = create(&agent, &theirs).await;
    let refused = decide(&server, &ada, &id(&their_request), "outage", true, None).await;
    assert!(
        matches!(
            refused,
            Err(Error::Rule(signoff_app::RuleError::BreakGlassNotOwnRequest))
        ),
        "{refused:?}"
    );
    // Her own request, with a grant: refused, and nothing recorded.
    let mut own = body("db.export", json!({"table": "orders"}));
    own["on_behalf_of"] = json!("reviewer1@example.com");
    let own_request = create(&agent, &own).await;
    let with_grant = decide(&server, &ada, &id(&own_request), "outage", true, Some(grant(&[]))).await;
    assert!(
        matches!(
            with_grant,
            Err(Error::Rule(signoff_app::RuleError::BreakGlassWithGrant))
        ),
        "{with_grant:?}"
    );
    assert_eq!(
        server.db.scalar("SELECT COUNT(*) FROM decisions").await,
        0,
        "a refusal records nothing"
    );
    assert_eq!(server.db.count("grants").await, 0);
    // Without the grant it is the emergency approval it should be, and her next own
    // request waits for reviewers again.
    let approved = decide(&server, &ada, &id(&own_request), "outage", true, None)
        .await
        .expect("break-glass");
    assert_eq!(approved["break_glass"], true);
    assert_eq!(status(&create(&agent, &own).await), "pending");
    server.stop().await;
}

async fn a_refused_break_glass_answers_only_its_own_command(backend: Backend) {
    let server = TestServer::start(backend).await;
    import(
        &server,
        r#"
[[policy]]
name = "exports"
[policy.match]
actions = ["db.export"]
[policy.effect]
type = "require_approval"
approvals = 3
break_glass = ["reviewer1@example.com"]
"#,
    )
    .await;
    let agent = server.agent("exporter").await;
    let ada = person(1, &["signoff-reviewers", "signoff-admins"]);
    let request = create(&agent, &body("db.export", json!({"table": "orders"}))).await;
    decide(&server, &ada, &id(&request), "", false, None)
        .await
        .expect("one of three approvals");
    // Her break-glass after her own approval, queued in one batch with another agent's
    // creation: the rule refuses hers, and the creation commits.
    let other = server.agent("other").await;
    let held = server.hold_the_writer().await;
    let service = std::sync::Arc::clone(&server.service);
    let (who, target) = (ada.clone(), id(&request));
    let break_glass = tokio::spawn(async move {
        let input = DecisionInput {
            verdict: Verdict::Approve,
            comment: "outage".into(),
            break_glass: true,
            grant: None,
        };
        service
            .decide(&who, target.parse().expect("id"), &input, Channel::Api)
            .await
    });
    let creation = tokio::spawn({
        let other = other.clone();
        async move {
            other
                .post("/api/v1/requests", &body("db.export", json!({"table": "users"})))
                .await
        }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    drop(held);
    let refused = break_glass.await.expect("task");
    assert!(matches!(refused, Err(Error::Rule(_))), "{refused:?}");
    let created = creation.await.expect("task");
    assert_eq!(created.status, 201, "{}", created.body);
    server.stop().await;
}

async fn a_revoked_key_ends_its_waits(backend: Backend) {
    let server = TestServer::start(backend).await;
    let agent = server.agent("deployer").await;
    let pending = create(&agent, &body("deploy.service", json!({}))).await;
    // Revoked here, while it waits: the wait ends at once, refused.
    let waiting = tokio::spawn({
        let (agent, id) = (agent.clone(), id(&pending));
        async move { agent.wait(&id, 60).await }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    server
        .service
        .revoke_agent_keys("deployer", None)
        .await
        .expect("revoke");
    let ended = tokio::time::timeout(Duration::from_secs(10), waiting)
        .await
        .expect("the wait ends with the key")
        .expect("task");
    assert_eq!(ended.status, 401, "{}", ended.body);

    // Revoked by the command line, another process: the decision that lands afterwards
    // is not answered to the revoked key.
    tokio::task::spawn_blocking(signoff_tests::server_binary)
        .await
        .expect("the command line is built");
    let agent = server.agent("deployer").await;
    let pending = create(&agent, &body("deploy.service", json!({}))).await;
    let waiting = tokio::spawn({
        let (agent, id) = (agent.clone(), id(&pending));
        async move { agent.wait(&id, 300).await }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let url = server.db.url.clone();
    let (code, _, stderr) = tokio::task::block_in_place(|| run_cli(&server.db, &["agents", "revoke", "deployer"]));
    assert_eq!(code, 0, "{stderr} ({url})");
    // The server may already have seen the revocation (it looks every 50 ms) and ended the
    // wait refused; either way the decision below must not reach the revoked key.
    decide(&server, &reviewer(1), &id(&pending), "", false, None)
        .await
        .expect("approved");
    let answered = tokio::time::timeout(Duration::from_secs(10), waiting)
        .await
        .expect("the wait answers")
        .expect("task");
    assert_eq!(
        answered.status, 401,
        "never `approved` to a revoked key: {}",
        answered.body
    );
    server.stop().await;
}

async fn what_if_pages_through_more_requests_than_a_page(backend: Backend) {
    let server = TestServer::start(backend).await;
    let agent = server.agent("exporter").await;
    for n in 0..40 {
        create(&agent, &body("db.export", json!({"table": "orders", "n": n}))).await;
    }
    let draft = signoff_server::service::draft_set(
        &file(
            r#"
[[policy]]
name = "small exports"
[policy.match]
actions = ["db.export"]
condition = "payload.n < 25"
[policy.effect]
type = "allow"
"#,
        ),
        server.service.policy_set().default.clone(),
    )
    .expect("draft");
    let found = server
        .service
        .what_if(std::sync::Arc::new(draft), 1000)
        .await
        .expect("what-if");
    assert_eq!(found.examined, 40);
    assert!(!found.stopped_early);
    assert_eq!(found.changes.len(), 25, "every request below 25, across pages");
    let limited = server
        .service
        .what_if(
            std::sync::Arc::new(
                signoff_server::service::draft_set(&file(""), server.service.policy_set().default.clone())
                    .expect("empty draft"),
            ),
            30,
        )
        .await
        .expect("what-if");
    assert_eq!(limited.examined, 30, "no more than asked");
    server.stop().await;
}
