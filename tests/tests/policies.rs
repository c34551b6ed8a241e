//! Policies end to end, on both stores: which policy a request matches (in order), what
//! each effect does, quorum with "one from each of", the default, escalation, TTL,
//! grants, break-glass and its follow-up, versions, what-if, policy files through the
//! `signoff-server policies` command, and bad CEL refused with its position.

use serde_json::{Value, json};
use signoff_app::policy::{PolicyDoc, PolicyFile};
use signoff_app::wire::{DecisionInput, GrantInput};
use signoff_app::{Channel, Identity, Verdict};
use signoff_server::Error;
use signoff_server::policy_file::{self, Format};
use signoff_server::store::Actor;
use signoff_tests::fixtures::reviewer;
use signoff_tests::{AgentClient, run_cli};
use signoff_tests::{Backend, TestServer, on_both_stores};

on_both_stores!(
    the_first_matching_policy_decides_with_its_effect,
    quorum_needs_one_approver_from_each_named_group,
    saved_versions_leave_requests_on_the_version_they_matched,
    escalation_widens_eligibility_and_the_policy_ttl_bounds_the_wait,
    a_reminder_goes_out_once_before_expiry_and_only_while_pending,
    a_store_from_before_reminders_upgrades_in_place,
    a_policy_routing_to_a_channel_not_configured_is_refused_at_the_field,
    grants_approve_later_requests_within_their_bounds,
    break_glass_approves_own_request_and_waits_for_another_admin,
    bad_policies_are_refused_at_the_field_with_the_position,
    what_if_lists_the_requests_a_draft_would_change,
    policy_files_round_trip_through_the_command_line,
);

const POLICIES: &str = r#"
[[policy]]
name = "no drops"
[policy.match]
actions = ["db.drop"]
[policy.effect]
type = "deny"
reason = "agents never drop tables"

[[policy]]
name = "big prod deploys"
[policy.match]
actions = ["deploy.*"]
labels = ["env=prod"]
condition = "payload.replicas > 2"
[policy.effect]
type = "require_approval"
approvals = 2
ttl = "2h"

[[policy]]
name = "deploys"
[policy.match]
actions = ["deploy.*"]
[policy.effect]
type = "allow"

[[policy]]
name = "reader reads"
[policy.match]
actions = ["db.read"]
agents = ["reader-*"]
[policy.effect]
type = "allow"
"#;

fn file(text: &str) -> PolicyFile {
    policy_file::parse(text, Format::Toml).expect("valid policy file")
}

fn doc(toml_table: &str) -> PolicyDoc {
    let mut parsed = file(&format!("[[policy]]\n{toml_table}")).policies;
    parsed.remove(0)
}

async fn import(server: &TestServer, text: &str) {
    server
        .service
        .import_policies(file(text), Actor::Operator)
        .await
        .expect("policies import");
}

fn body(action: &str, labels: Value, payload: Value) -> Value {
    json!({
        "action": action,
        "resource": "orders",
        "title": format!("{action} on orders"),
        "reason": "testing policies",
        "labels": labels,
        "payload": payload,
    })
}

async fn create(agent: &AgentClient, body: &Value) -> Value {
    let reply = agent.post("/api/v1/requests", body).await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    reply.body
}

fn person(n: u32, groups: &[&str]) -> Identity {
    let mut person = reviewer(n);
    person.groups = groups.iter().map(|g| g.to_string()).collect();
    person
}

async fn decide_with(
    server: &TestServer,
    who: &Identity,
    id: &str,
    verdict: Verdict,
    comment: &str,
    break_glass: bool,
    grant: Option<GrantInput>,
) -> Result<Value, Error> {
    let input = DecisionInput {
        verdict,
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

/// Reviewer `n` approves request `id` with a grant of `duration` and `uses` on the payload's
/// `table`.
async fn approve_with_grant(server: &TestServer, n: u32, id: &str, duration: &str, uses: u32) -> Result<Value, Error> {
    let grant = GrantInput {
        duration: duration.into(),
        max_uses: uses,
        fields: vec!["table".into()],
    };
    decide_with(server, &reviewer(n), id, Verdict::Approve, "", false, Some(grant)).await
}

async fn approve(server: &TestServer, who: &Identity, id: &str) -> Result<Value, Error> {
    decide_with(server, who, id, Verdict::Approve, "", false, None).await
}

fn status(view: &Value) -> &str {
    view["status"].as_str().unwrap_or_default()
}

async fn audit_kinds(server: &TestServer, request: &str) -> Vec<String> {
    let events = server.service.store().audit_events(0, 10_000).await.expect("audit");
    events
        .into_iter()
        .filter(|event| event.request_id.as_deref() == Some(request))
        .map(|event| event.kind)
        .collect()
}

async fn the_first_matching_policy_decides_with_its_effect(backend: Backend) {
    let server = TestServer::start(backend).await;
    import(&server, POLICIES).await;
    let agent = server.agent("deploy-bot").await;

    let dropped = create(&agent, &body("db.drop", json!({}), json!({}))).await;
    assert_eq!(status(&dropped), "denied", "{dropped}");
    assert_eq!(dropped["policy"]["name"], "no drops");
    assert_eq!(dropped["policy"]["deny_reason"], "agents never drop tables");
    assert_eq!(dropped["policy"]["effect"], "deny");
    let id = dropped["id"].as_str().expect("id");
    assert_eq!(audit_kinds(&server, id).await, ["request.created", "request.denied"]);

    // The big-deploy policy comes first and its condition holds: approval it is.
    let big = create(
        &agent,
        &body("deploy.service", json!({"env": "prod"}), json!({"replicas": 5})),
    )
    .await;
    assert_eq!(status(&big), "pending");
    assert_eq!(big["policy"]["name"], "big prod deploys");
    assert_eq!(big["policy"]["approvals_required"], 2);
    let why: Vec<&str> = big["policy"]["why"]
        .as_array()
        .expect("why")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(why.iter().any(|line| line.contains("deploy.*")), "{why:?}");
    assert!(why.iter().any(|line| line.contains("env=prod")), "{why:?}");
    assert!(why.iter().any(|line| line.contains("payload.replicas > 2")), "{why:?}");

    // Its condition fails: the next policy, which allows, decides.
    let small = create(
        &agent,
        &body("deploy.service", json!({"env": "prod"}), json!({"replicas": 1})),
    )
    .await;
    assert_eq!(status(&small), "approved", "{small}");
    assert_eq!(small["policy"]["name"], "deploys");
    let id = small["id"].as_str().expect("id");
    assert_eq!(audit_kinds(&server, id).await, ["request.created", "request.approved"]);
    // An allowed request can be run and reported like any approved one.
    let reported = agent
        .post(&format!("/api/v1/requests/{id}/result"), &json!({"status": "executed"}))
        .await;
    assert_eq!(reported.status, 200, "{}", reported.body);

    // Agent patterns: only reader-* agents are allowed to read.
    let reader = server.agent("reader-7").await;
    let read = create(&reader, &body("db.read", json!({}), json!({}))).await;
    assert_eq!(status(&read), "approved");
    let other = create(&agent, &body("db.read", json!({}), json!({}))).await;
    assert_eq!(status(&other), "pending", "the default never allows");
    assert_eq!(other["policy"]["name"], "default");
    assert_eq!(other["policy"]["approvals_required"], 1);
    assert_eq!(other["policy"]["approver_groups"], json!(["signoff-reviewers"]));
    approve(&server, &reviewer(1), other["id"].as_str().expect("id"))
        .await
        .expect("the default takes one reviewer");
    server.stop().await;
}

async fn quorum_needs_one_approver_from_each_named_group(backend: Backend) {
    let server = TestServer::start(backend).await;
    import(
        &server,
        r#"
[[policy]]
name = "peer and lead"
[policy.match]
actions = ["iam.*"]
[policy.effect]
type = "require_approval"
approvals = 2
approver_groups = ["peers", "leads"]
one_from_each = ["leads"]
comment_required = true
"#,
    )
    .await;
    let agent = server.agent("iam-bot").await;
    let id = create(&agent, &body("iam.escalate", json!({}), json!({}))).await["id"]
        .as_str()
        .expect("id")
        .to_string();
    let peer = |n| person(n, &["peers"]);
    let refused = approve(&server, &peer(1), &id).await.expect_err("needs a comment");
    assert!(refused.to_string().contains("comment"), "{refused}");
    let outsider = approve(&server, &person(9, &["signoff-reviewers"]), &id).await;
    assert!(
        outsider
            .expect_err("not in the groups")
            .to_string()
            .contains("not an approver")
    );

    let first = decide_with(&server, &peer(1), &id, Verdict::Approve, "ok", false, None)
        .await
        .expect("first peer");
    assert_eq!(status(&first), "pending");
    // Two approvals but no lead among them: still pending.
    let second = decide_with(&server, &peer(2), &id, Verdict::Approve, "ok", false, None)
        .await
        .expect("second peer");
    assert_eq!(status(&second), "pending", "{second}");
    assert_eq!(second["approvals"], 2);
    let lead = decide_with(
        &server,
        &person(3, &["leads"]),
        &id,
        Verdict::Approve,
        "ok",
        false,
        None,
    )
    .await
    .expect("lead");
    assert_eq!(status(&lead), "approved");
    server.stop().await;
}

async fn saved_versions_leave_requests_on_the_version_they_matched(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin = Actor::Reviewer(person(50, &["signoff-admins"]));
    let one = doc(
        "name = \"exports\"\n[policy.match]\nactions = [\"db.export\"]\n[policy.effect]\ntype = \"require_approval\"\napprovals = 1\n",
    );
    let saved = server
        .service
        .save_policy(None, one.clone(), admin.clone())
        .await
        .expect("saved");
    assert_eq!(saved.version, 1);
    let agent = server.agent("exporter").await;
    let early = create(&agent, &body("db.export", json!({}), json!({}))).await;
    assert_eq!(early["policy"]["version"], 1);
    assert_eq!(early["policy"]["id"], saved.id.as_str());

    let mut two = one.clone();
    two.effect = doc("name = \"x\"\n[policy.effect]\ntype = \"require_approval\"\napprovals = 2\n").effect;
    let saved = server
        .service
        .save_policy(Some(&saved.id), two, admin.clone())
        .await
        .expect("new version");
    assert_eq!(saved.version, 2);
    let late = create(&agent, &body("db.export", json!({}), json!({}))).await;
    assert_eq!(late["policy"]["version"], 2);
    assert_eq!(late["policy"]["approvals_required"], 2);

    // The request made under version 1 keeps its terms: one approval approves it.
    let approved = approve(&server, &reviewer(1), early["id"].as_str().expect("id"))
        .await
        .expect("one approval");
    assert_eq!(status(&approved), "approved");
    let still = approve(&server, &reviewer(1), late["id"].as_str().expect("id"))
        .await
        .expect("one of two");
    assert_eq!(status(&still), "pending");

    let versions = server
        .service
        .store()
        .policy_versions(&saved.id)
        .await
        .expect("versions");
    assert_eq!(versions.iter().map(|v| v.version).collect::<Vec<_>>(), [2, 1]);
    assert_eq!(versions[1].doc, one, "old versions stay readable");
    // Saving the same document again makes no new version.
    let again = server
        .service
        .save_policy(Some(&saved.id), versions[0].doc.clone(), admin)
        .await
        .expect("unchanged");
    assert_eq!(again.version, 2);
    let kinds: Vec<String> = server
        .service
        .store()
        .audit_events(0, 1000)
        .await
        .expect("audit")
        .into_iter()
        .map(|e| e.kind)
        .filter(|kind| kind.starts_with("policy."))
        .collect();
    assert_eq!(kinds, ["policy.created", "policy.updated"]);
    server.stop().await;
}

async fn escalation_widens_eligibility_and_the_policy_ttl_bounds_the_wait(backend: Backend) {
    let server = TestServer::start(backend).await;
    import(
        &server,
        r#"
[[policy]]
name = "dba changes"
[policy.match]
actions = ["db.migrate"]
[policy.effect]
type = "require_approval"
approver_groups = ["dba"]
ttl = "10m"
[policy.effect.escalation]
after_minutes = 5
groups = ["signoff-reviewers"]
"#,
    )
    .await;
    let agent = server.agent("migrator").await;
    let request = create(&agent, &body("db.migrate", json!({}), json!({}))).await;
    let id = request["id"].as_str().expect("id").to_string();
    let lifetime = |view: &Value| {
        let at = |field: &str| {
            time::OffsetDateTime::parse(
                view[field].as_str().expect("time"),
                &time::format_description::well_known::Rfc3339,
            )
            .expect("rfc3339")
        };
        (at("expires_at") - at("created_at")).whole_seconds()
    };
    assert_eq!(lifetime(&request), 600, "the policy's TTL");
    // An agent may ask for less, never for more.
    let mut short = body("db.migrate", json!({}), json!({}));
    short["ttl_s"] = json!(120);
    assert_eq!(lifetime(&create(&agent, &short).await), 120);
    let mut long = body("db.migrate", json!({}), json!({}));
    long["ttl_s"] = json!(7200);
    assert_eq!(lifetime(&create(&agent, &long).await), 600);

    let refused = approve(&server, &reviewer(1), &id).await.expect_err("not a dba yet");
    assert!(refused.to_string().contains("not an approver"), "{refused}");
    // Six minutes later (moved in the database), the reviewers may approve too, and the
    // sweeper announces the escalation to live views once.
    server
        .db
        .execute(&format!(
            "UPDATE requests SET created_at = created_at - 360000, escalates_at = escalates_at - 360000 \
             WHERE id = '{id}'"
        ))
        .await
        .expect("age the request");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !audit_kinds(&server, &id)
        .await
        .contains(&"request.escalated".to_string())
    {
        assert!(std::time::Instant::now() < deadline, "the escalation is announced");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let announced = audit_kinds(&server, &id).await;
    assert_eq!(
        announced.iter().filter(|kind| *kind == "request.escalated").count(),
        1,
        "{announced:?}"
    );
    let approved = approve(&server, &reviewer(1), &id).await.expect("escalated");
    assert_eq!(status(&approved), "approved");
    server.stop().await;
}

const REMINDING: &str = r#"
[[policy]]
name = "exports"
[policy.match]
actions = ["db.export"]
[policy.effect]
type = "require_approval"
ttl = "30m"
remind_before = "10m"
"#;

/// Waits until `request` has `count` events of `kind` in the trail, then a moment more
/// to show there is no further one.
async fn await_events(server: &TestServer, request: &str, kind: &str, count: usize) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let seen = || async { audit_kinds(server, request).await.iter().filter(|k| *k == kind).count() };
    while seen().await < count {
        assert!(std::time::Instant::now() < deadline, "{kind} ×{count} for {request}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    // Two sweeps later, still exactly `count`.
    tokio::time::sleep(std::time::Duration::from_millis(2_500)).await;
    assert_eq!(seen().await, count, "{kind} for {request}");
}

async fn a_reminder_goes_out_once_before_expiry_and_only_while_pending(backend: Backend) {
    let server = TestServer::start(backend).await;
    import(&server, REMINDING).await;
    let agent = server.agent("exporter").await;
    let waiting = create(&agent, &body("db.export", json!({}), json!({}))).await["id"]
        .as_str()
        .expect("id")
        .to_string();
    let decided = create(&agent, &body("db.export", json!({}), json!({}))).await["id"]
        .as_str()
        .expect("id")
        .to_string();
    approve(&server, &reviewer(1), &decided).await.expect("approved");
    assert!(
        !audit_kinds(&server, &waiting)
            .await
            .contains(&"request.reminded".to_string())
    );
    // Twenty-one minutes later (moved in the database): ten minutes before expiry.
    for id in [&waiting, &decided] {
        server.db.age_request(id, std::time::Duration::from_secs(21 * 60)).await;
    }
    await_events(&server, &waiting, "request.reminded", 1).await;
    assert_eq!(
        audit_kinds(&server, &decided)
            .await
            .iter()
            .filter(|k| *k == "request.reminded")
            .count(),
        0
    );
    let pending = agent.get(&format!("/api/v1/requests/{waiting}")).await;
    assert_eq!(status(&pending.body), "pending", "a reminder decides nothing");
    server.stop().await;
}

async fn a_policy_routing_to_a_channel_not_configured_is_refused_at_the_field(backend: Backend) {
    let server = TestServer::start_with(backend, |config| {
        config.notify.teams.insert(
            "ops".into(),
            signoff_server::config::TeamsConfig {
                webhook_url: signoff_server::config::Secret::new("http://127.0.0.1:9/teams"),
            },
        );
    })
    .await;
    let routed = |routes: &str| {
        doc(&format!(
            "name = \"routed\"\n[policy.match]\nactions = [\"deploy.*\"]\n[policy.effect]\ntype = \"require_approval\"\nnotify = [{routes}]\n"
        ))
    };
    let refused = server
        .service
        .save_policy(
            None,
            routed(r#""teams:ops", "teams:sales", "email:oncall@example.com""#),
            Actor::Operator,
        )
        .await
        .expect_err("two routes have no channel");
    let Error::PolicyInvalid(problems) = refused else {
        panic!("{refused}")
    };
    let said: Vec<(String, String)> = problems.into_iter().map(|p| (p.field, p.message)).collect();
    assert_eq!(
        said,
        [
            (
                "effect.notify".to_string(),
                "`teams:sales`: no [notify.teams.sales] is configured".to_string()
            ),
            (
                "effect.notify".to_string(),
                "`email:oncall@example.com`: no [notify.email] is configured".to_string()
            ),
        ]
    );
    let malformed = server
        .service
        .save_policy(None, routed(r#""pager:oncall""#), Actor::Operator)
        .await
        .expect_err("not a route");
    assert!(
        malformed.to_string().contains("slack, teams, email or webhook"),
        "{malformed}"
    );
    server
        .service
        .save_policy(None, routed(r#""teams:ops""#), Actor::Operator)
        .await
        .expect("a configured route is accepted");
    server.stop().await;
}

/// The version before reminders and callbacks made its schema with migrations 0001 to
/// 0004. A store it made upgrades in place: its pending request still decides, and new
/// requests are reminded.
async fn a_store_from_before_reminders_upgrades_in_place(backend: Backend) {
    let db = signoff_tests::TestDb::new(backend).await;
    let id = "0193a4c2-0000-7000-8000-0000000000f5";
    let [agent, request] = signoff_tests::TestDb::old_pending_request(
        "0193a4c2-0000-7000-8000-00000000a9e5",
        "legacy-exporter",
        id,
        "Pending before the upgrade",
        "{}",
    );
    let cursor = "INSERT INTO webhook_cursors (endpoint, delivered_seq) VALUES ('siem', 0)".to_string();
    db.as_of_migration(4, &[agent, request, cursor]).await;
    let store = signoff_server::store::Store::connect(&db.url).await.expect("connect");
    store.migrate().await.expect("the store upgrades in place");
    assert_eq!(
        store.webhook_cursor("siem").await.expect("cursor"),
        Some(0),
        "cursors kept"
    );
    let server = TestServer::start_on(db, |_| {}).await;
    let approved = approve(&server, &reviewer(1), id)
        .await
        .expect("the old request decides");
    assert_eq!(status(&approved), "approved");
    import(&server, REMINDING).await;
    let agent = server.agent("exporter").await;
    let new = create(&agent, &body("db.export", json!({}), json!({}))).await["id"]
        .as_str()
        .expect("id")
        .to_string();
    server
        .db
        .execute(&format!("UPDATE requests SET remind_at = 1 WHERE id = '{new}'"))
        .await
        .expect("make the reminder due");
    await_events(&server, &new, "request.reminded", 1).await;
    server.stop().await;
}

async fn grants_approve_later_requests_within_their_bounds(backend: Backend) {
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
[policy.effect.grants]
max_duration = "1h"
max_uses = 2

[[policy]]
name = "deletes"
[policy.match]
actions = ["db.delete"]
[policy.effect]
type = "require_approval"
"#,
    )
    .await;
    let agent = server.agent("exporter").await;
    let export = |table: &str| body("db.export", json!({}), json!({"table": table, "rows": 10}));
    let first = create(&agent, &export("orders")).await;
    let first_id = first["id"].as_str().expect("id");
    // Beyond the policy's bounds, or on a policy without grants: refused.
    let too_long = approve_with_grant(&server, 1, first_id, "2h", 1).await;
    assert!(matches!(too_long, Err(Error::Invalid(_))), "{too_long:?}");
    let too_many = approve_with_grant(&server, 1, first_id, "30m", 3).await;
    assert!(matches!(too_many, Err(Error::Invalid(_))), "{too_many:?}");
    let delete = create(&agent, &body("db.delete", json!({}), json!({"table": "orders"}))).await;
    let no_grants = approve_with_grant(&server, 1, delete["id"].as_str().expect("id"), "30m", 1).await;
    assert!(matches!(no_grants, Err(Error::Forbidden(_))), "{no_grants:?}");

    let approved = approve_with_grant(&server, 1, first_id, "30m", 2)
        .await
        .expect("approved with a grant");
    assert_eq!(status(&approved), "approved");
    let grants = server.service.store().grants(None).await.expect("grants");
    assert_eq!(grants.len(), 1);
    let grant_id = grants[0].id.clone();
    assert_eq!(grants[0].granted_by[0].subject, "reviewer-1");

    // The same agent, action, resource and table: approved at once, twice.
    let second = create(&agent, &export("orders")).await;
    assert_eq!(status(&second), "approved", "{second}");
    let second_id = second["id"].as_str().expect("id");
    assert!(
        second["policy"]["why"].to_string().contains(&grant_id),
        "{}",
        second["policy"]["why"]
    );
    assert_eq!(
        audit_kinds(&server, second_id).await,
        ["request.created", "grant.used", "request.approved"]
    );
    // Another table is not covered.
    assert_eq!(status(&create(&agent, &export("users")).await), "pending");
    // Another agent is not covered.
    let other = server.agent("other-exporter").await;
    assert_eq!(status(&create(&other, &export("orders")).await), "pending");
    assert_eq!(status(&create(&agent, &export("orders")).await), "approved");
    // Two uses were granted: the third waits for a human.
    assert_eq!(status(&create(&agent, &export("orders")).await), "pending");
    let used = server.service.store().grants(None).await.expect("grants");
    assert_eq!(used[0].uses, 2);

    // A new grant, revoked: only by a grantor or an admin.
    let next = create(&agent, &export("orders")).await;
    approve_with_grant(&server, 2, next["id"].as_str().expect("id"), "30m", 2)
        .await
        .expect("approved with a grant");
    let fresh = server
        .service
        .store()
        .grants(Some(signoff_server::service::now()))
        .await
        .expect("grants");
    assert_eq!(fresh.len(), 1);
    let fresh_id = fresh[0].id.clone();
    let stranger = server.service.revoke_grant(&fresh_id, &reviewer(3), false).await;
    assert!(matches!(stranger, Err(Error::Forbidden(_))), "{stranger:?}");
    assert!(
        server
            .service
            .revoke_grant(&fresh_id, &reviewer(2), false)
            .await
            .expect("grantor revokes")
    );
    assert_eq!(
        status(&create(&agent, &export("orders")).await),
        "pending",
        "revoked at once"
    );

    // An expired grant covers nothing.
    let next = create(&agent, &export("orders")).await;
    approve_with_grant(&server, 1, next["id"].as_str().expect("id"), "30m", 2)
        .await
        .expect("approved with a grant");
    server
        .db
        .execute("UPDATE grants SET expires_at = 1000 WHERE revoked_at IS NULL")
        .await
        .expect("expire grants");
    assert_eq!(status(&create(&agent, &export("orders")).await), "pending", "expired");

    // A grant never outlives the policy version that allowed it.
    let next = create(&agent, &export("orders")).await;
    approve_with_grant(&server, 1, next["id"].as_str().expect("id"), "30m", 2)
        .await
        .expect("approved with a grant");
    assert_eq!(status(&create(&agent, &export("orders")).await), "approved");
    import(&server, POLICIES_WITH_LONGER_GRANTS).await;
    assert_eq!(
        status(&create(&agent, &export("orders")).await),
        "pending",
        "new version"
    );
    server.stop().await;
}

const POLICIES_WITH_LONGER_GRANTS: &str = r#"
[[policy]]
name = "exports"
[policy.match]
actions = ["db.export"]
[policy.effect]
type = "require_approval"
[policy.effect.grants]
max_duration = "2h"
max_uses = 2
"#;

async fn break_glass_approves_own_request_and_waits_for_another_admin(backend: Backend) {
    let server = TestServer::start(backend).await;
    import(
        &server,
        r#"
[[policy]]
name = "prod access"
[policy.match]
actions = ["iam.*"]
[policy.effect]
type = "require_approval"
approvals = 2
break_glass = ["reviewer1@example.com"]
"#,
    )
    .await;
    let agent = server.agent("access-bot").await;
    let mut own = body("iam.grant", json!({}), json!({}));
    own["on_behalf_of"] = json!("reviewer1@example.com");
    let request = create(&agent, &own).await;
    let id = request["id"].as_str().expect("id").to_string();
    let ada = person(1, &["signoff-reviewers", "signoff-admins"]);
    let refused = approve(&server, &ada, &id).await.expect_err("own request");
    assert!(refused.to_string().contains("made for you"), "{refused}");
    let no_comment = decide_with(&server, &ada, &id, Verdict::Approve, " ", true, None).await;
    assert!(
        no_comment
            .expect_err("needs a comment")
            .to_string()
            .contains("emergency")
    );
    // Someone the policy does not name cannot break glass, not even on their own request.
    let mut theirs = body("iam.grant", json!({}), json!({}));
    theirs["on_behalf_of"] = json!("reviewer2@example.com");
    let their_id = create(&agent, &theirs).await["id"].as_str().expect("id").to_string();
    let bob = person(2, &["signoff-reviewers", "signoff-admins"]);
    let not_named = decide_with(&server, &bob, &their_id, Verdict::Approve, "outage", true, None).await;
    assert!(not_named.expect_err("not named").to_string().contains("break-glass"));

    let approved = decide_with(
        &server,
        &ada,
        &id,
        Verdict::Approve,
        "payments outage, INC-42",
        true,
        None,
    )
    .await
    .expect("break-glass");
    assert_eq!(status(&approved), "approved", "one break-glass approval is enough");
    assert_eq!(approved["break_glass"], true);
    let fetched = agent.get(&format!("/api/v1/requests/{id}")).await;
    assert_eq!(fetched.body["break_glass"], true, "the agent sees it too");
    assert!(
        audit_kinds(&server, &id)
            .await
            .contains(&"request.break_glass".to_string())
    );

    let open = server.service.store().followups(true).await.expect("follow-ups");
    assert_eq!(open.len(), 1);
    assert_eq!(open[0].request_id.to_string(), id);
    let request_id = id.parse().expect("id");
    let self_ack = server.service.acknowledge_followup(request_id, &ada).await;
    assert!(matches!(self_ack, Err(Error::Forbidden(_))), "{self_ack:?}");
    assert_eq!(server.service.store().followups(true).await.expect("open").len(), 1);
    assert!(
        server
            .service
            .acknowledge_followup(request_id, &bob)
            .await
            .expect("another admin")
    );
    assert!(server.service.store().followups(true).await.expect("open").is_empty());
    let all = server.service.store().followups(false).await.expect("all");
    assert_eq!(
        all[0].acknowledged_by.as_ref().map(|who| who.subject.as_str()),
        Some("reviewer-2")
    );
    server.stop().await;
}

async fn bad_policies_are_refused_at_the_field_with_the_position(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin = Actor::Reviewer(person(50, &["signoff-admins"]));
    let bad = doc(
        "name = \"broken\"\n[policy.match]\ncondition = \"payload.rows > 10 &&\\n  secret.key == 'x'\"\n[policy.effect]\ntype = \"allow\"\n",
    );
    let refused = server.service.save_policy(None, bad, admin.clone()).await;
    let Err(Error::PolicyInvalid(problems)) = refused else {
        panic!("refused with problems, not {refused:?}");
    };
    assert_eq!(problems[0].field, "match.condition");
    assert_eq!(problems[0].position, Some((2, 3)), "{problems:?}");
    assert!(problems[0].message.contains("secret"), "{problems:?}");
    let syntax =
        doc("name = \"broken\"\n[policy.match]\ncondition = \"payload.rows >\"\n[policy.effect]\ntype = \"allow\"\n");
    let Err(Error::PolicyInvalid(problems)) = server.service.save_policy(None, syntax, admin.clone()).await else {
        panic!("a syntax error is refused");
    };
    assert!(problems[0].position.is_some(), "{problems:?}");
    assert!(
        server.service.store().policies().await.expect("policies").is_empty(),
        "nothing saved"
    );
    // Names are unique.
    let ok = doc("name = \"one\"\n[policy.effect]\ntype = \"allow\"\n");
    server
        .service
        .save_policy(None, ok.clone(), admin.clone())
        .await
        .expect("saved");
    let taken = server.service.save_policy(None, ok, admin).await;
    assert!(matches!(taken, Err(Error::Conflict { .. })), "{taken:?}");
    server.stop().await;
}

async fn what_if_lists_the_requests_a_draft_would_change(backend: Backend) {
    let server = TestServer::start(backend).await;
    let agent = server.agent("deploy-bot").await;
    let mut ids = Vec::new();
    for (action, replicas) in [("deploy.service", 5), ("deploy.service", 1), ("db.read", 0)] {
        let made = create(
            &agent,
            &body(action, json!({"env": "prod"}), json!({"replicas": replicas})),
        )
        .await;
        ids.push(made["id"].as_str().expect("id").to_string());
    }
    let draft = signoff_server::service::draft_set(&file(POLICIES), server.service.policy_set().default.clone())
        .expect("valid draft");
    let what_if = server
        .service
        .what_if(std::sync::Arc::new(draft), 1000)
        .await
        .expect("what-if");
    assert_eq!(what_if.examined, 3);
    let changed: Vec<(String, String, String)> = what_if
        .changes
        .iter()
        .map(|c| (c.request.to_string(), c.after_policy.clone(), c.after.clone()))
        .collect();
    assert_eq!(changed.len(), 2, "{changed:?}");
    assert!(changed.contains(&(
        ids[0].clone(),
        "big prod deploys".into(),
        "2 approvals from signoff-reviewers".into()
    )));
    assert!(changed.contains(&(ids[1].clone(), "deploys".into(), "allowed at once".into())));
    // A draft with problems is refused, as a whole.
    let broken = file("[[policy]]\nname = \"x\"\n[policy.effect]\ntype = \"deny\"\nreason = \"\"\n");
    assert!(matches!(
        signoff_server::service::draft_set(&broken, server.service.policy_set().default.clone()),
        Err(Error::PolicyInvalid(_))
    ));
    server.stop().await;
}

async fn policy_files_round_trip_through_the_command_line(backend: Backend) {
    let server = TestServer::start(backend).await;
    let agent = server.agent("deploy-bot").await;
    create(
        &agent,
        &body("deploy.service", json!({"env": "prod"}), json!({"replicas": 1})),
    )
    .await;
    let dir = &server.db.dir;
    let path = |name: &str| dir.join(name).to_string_lossy().into_owned();
    std::fs::write(path("policies.toml"), POLICIES).expect("write");

    let (code, out, err) = run_cli(&server.db, &["policies", "check", &path("policies.toml")]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("4 policies, valid"), "{out}");
    assert!(out.contains("1 would change outcome"), "{out}");
    assert!(out.contains("allowed at once [deploys]"), "{out}");

    let broken = POLICIES.replace("payload.replicas > 2", "payload.replicas >");
    std::fs::write(path("broken.toml"), broken).expect("write");
    let (code, out, err) = run_cli(&server.db, &["policies", "check", &path("broken.toml")]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(err.contains("match.condition (line 1, column"), "{err}");
    let (code, _, err) = run_cli(&server.db, &["policies", "import", &path("broken.toml")]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("nothing was imported"), "{err}");
    assert!(server.service.store().policies().await.expect("policies").is_empty());

    let (code, out, err) = run_cli(&server.db, &["policies", "import", &path("policies.toml")]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("created: no drops, big prod deploys, deploys, reader reads"),
        "{out}"
    );
    for (name, format) in [("export.yaml", Format::Yaml), ("export.toml", Format::Toml)] {
        let (code, out, err) = run_cli(&server.db, &["policies", "export", &path(name)]);
        assert_eq!(code, 0, "{out}{err}");
        let exported = std::fs::read_to_string(path(name)).expect("exported");
        assert_eq!(
            policy_file::parse(&exported, format).expect("reads back"),
            file(POLICIES)
        );
    }
    // Importing a file without one policy disables it; importing the same file again
    // changes nothing.
    let without_reads = POLICIES
        .split("[[policy]]\nname = \"reader reads\"")
        .next()
        .expect("split");
    std::fs::write(path("fewer.toml"), without_reads).expect("write");
    let (code, out, err) = run_cli(&server.db, &["policies", "import", &path("fewer.toml")]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("disabled: reader reads"), "{out}");
    assert!(out.contains("unchanged: no drops, big prod deploys, deploys"), "{out}");
    let stored = server.service.store().policies().await.expect("policies");
    assert!(
        !stored
            .iter()
            .find(|p| p.doc.name == "reader reads")
            .expect("kept")
            .doc
            .enabled
    );
    // The running server uses what the command imported.
    let reader = server.agent("reader-1").await;
    assert_eq!(
        status(&create(&reader, &body("db.read", json!({}), json!({}))).await),
        "pending"
    );
    assert_eq!(
        status(&create(&agent, &body("db.drop", json!({}), json!({}))).await),
        "denied"
    );
    server.stop().await;
}
