//! The agent API end to end: create, read, wait, decide (service layer), cancel, start,
//! report; idempotency; expiry; and every kind of bad input, on both stores.

use std::time::{Duration, Instant};

use serde_json::json;
use signoff_app::wire::DecisionInput;
use signoff_app::{Channel, RuleError, Verdict};
use signoff_server::Error;
use signoff_tests::fixtures::{request_body, reviewer};
use signoff_tests::{Backend, TestServer, on_both_stores};

on_both_stores!(
    a_decision_wakes_the_waiting_agent,
    waiting_without_a_decision_times_out_pending,
    idempotency_key_returns_the_same_request_or_conflicts,
    pending_requests_expire_and_wake_their_waiters,
    agents_cancel_and_report_within_the_lifecycle,
    bad_input_is_refused_clearly_and_changes_nothing,
    decisions_enforce_the_rules,
    an_approval_starts_once,
    a_store_from_before_starts_upgrades_in_place,
    labels_from_before_the_upgrade_and_after_it_filter_the_queue,
    another_agents_request_cannot_be_waited_on_or_reported_on,
    decisions_and_the_audit_trail_refuse_update_and_delete,
);

fn approve() -> DecisionInput {
    DecisionInput {
        verdict: Verdict::Approve,
        comment: "looks right".into(),
        break_glass: false,
        grant: None,
    }
}

async fn a_decision_wakes_the_waiting_agent(backend: Backend) {
    let server = TestServer::start(backend).await;
    let agent = server.agent("deploy-bot").await;
    let id = agent.submit(&request_body("Deploy 1.5.0")).await;

    let waiter = {
        let agent = agent.clone();
        let id = id.clone();
        tokio::spawn(async move { agent.wait(&id, 60).await })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !waiter.is_finished(),
        "the waiter returns only once the request is decided"
    );

    let decided_at = Instant::now();
    server
        .service
        .decide(&reviewer(1), id.parse().expect("id"), &approve(), Channel::Web)
        .await
        .expect("decision recorded");
    let reply = tokio::time::timeout(Duration::from_secs(10), waiter)
        .await
        .expect("waiter wakes")
        .expect("join");
    eprintln!("waiter woke {:?} after the decision", decided_at.elapsed());
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body["status"], "approved");
    assert_eq!(reply.body["approvals"], 1);
    let decision = &reply.body["decisions"][0];
    assert_eq!(decision["reviewer"]["email"], "reviewer1@example.com");
    assert_eq!(decision["verdict"], "approve");
    assert_eq!(decision["channel"], "web");

    // The agent runs the action and says how it went.
    let reported = agent
        .post(
            &format!("/api/v1/requests/{id}/result"),
            &json!({"status": "executed", "detail": {"rollout": "done"}}),
        )
        .await;
    assert_eq!(reported.status, 200, "{:?}", reported.body);
    let shown = agent.get(&format!("/api/v1/requests/{id}")).await;
    assert_eq!(shown.body["status"], "executed");
    assert_eq!(shown.body["result"]["detail"]["rollout"], "done");
}

async fn waiting_without_a_decision_times_out_pending(backend: Backend) {
    let server = TestServer::start(backend).await;
    let agent = server.agent("deploy-bot").await;
    let id = agent.submit(&request_body("Deploy")).await;
    let started = Instant::now();
    let reply = agent.wait(&id, 1).await;
    assert!(started.elapsed() >= Duration::from_secs(1), "waited the full timeout");
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body["status"], "pending");
}

async fn idempotency_key_returns_the_same_request_or_conflicts(backend: Backend) {
    let server = TestServer::start(backend).await;
    let agent = server.agent("deploy-bot").await;
    let send = |key: &'static str, body: String| {
        let agent = agent.clone();
        async move {
            let response = agent
                .http
                .post(agent.url("/api/v1/requests"))
                .bearer_auth(&agent.key)
                .header("Idempotency-Key", key)
                .header("Content-Type", "application/json")
                .body(body)
                .send()
                .await
                .expect("send");
            signoff_tests::server::read_reply(response).await
        }
    };
    let first = send("deploy-42", request_body("Deploy").to_string()).await;
    assert_eq!(first.status, 201);
    // Same body, other formatting: the same request comes back, nothing new is made.
    let pretty = serde_json::to_string_pretty(&request_body("Deploy")).expect("json");
    let again = send("deploy-42", pretty).await;
    assert_eq!(again.status, 200);
    assert_eq!(again.body["id"], first.body["id"]);
    assert_eq!(
        again.headers.get("idempotent-replayed").map(|v| v.to_str().ok()),
        Some(Some("true"))
    );
    // Same key, other body: refused, and nothing is stored.
    let other = send("deploy-42", request_body("Something else").to_string()).await;
    assert_eq!(other.status, 409);
    assert_eq!(other.error_code(), "idempotency_key_reused");
    assert_eq!(server.db.count("requests").await, 1);

    // Many concurrent sends of one key create exactly one request.
    let attempts: Vec<_> = (0..16)
        .map(|_| tokio::spawn(send("burst-7", request_body("Burst").to_string())))
        .collect();
    let mut ids = Vec::new();
    for attempt in attempts {
        let reply = attempt.await.expect("join");
        assert!(reply.status == 201 || reply.status == 200, "{reply:?}");
        ids.push(reply.body["id"].clone());
    }
    ids.dedup();
    assert_eq!(ids.len(), 1, "every concurrent send got the same request");
    assert_eq!(server.db.count("requests").await, 2);
}

async fn pending_requests_expire_and_wake_their_waiters(backend: Backend) {
    let server = TestServer::start(backend).await;
    let agent = server.agent("deploy-bot").await;
    let mut body = request_body("Short-lived");
    body["ttl_s"] = json!(1);
    let id = agent.submit(&body).await;
    let reply = tokio::time::timeout(Duration::from_secs(10), agent.wait(&id, 30))
        .await
        .expect("wakes on expiry");
    assert_eq!(reply.body["status"], "expired");

    let late = server
        .service
        .decide(&reviewer(1), id.parse().expect("id"), &approve(), Channel::Web)
        .await;
    assert!(matches!(late, Err(Error::Rule(RuleError::NotPending(_)))), "{late:?}");
    let cancel = agent.post(&format!("/api/v1/requests/{id}/cancel"), &json!({})).await;
    assert_eq!(cancel.status, 409);

    // The default TTL applies when the agent gives none.
    let server = TestServer::start_with(backend, |config| config.request_ttl = Duration::from_secs(1)).await;
    let agent = server.agent("deploy-bot").await;
    let id = agent.submit(&request_body("Default TTL")).await;
    let reply = tokio::time::timeout(Duration::from_secs(10), agent.wait(&id, 30))
        .await
        .expect("wakes on expiry");
    assert_eq!(reply.body["status"], "expired");
}

async fn agents_cancel_and_report_within_the_lifecycle(backend: Backend) {
    let server = TestServer::start(backend).await;
    let agent = server.agent("deploy-bot").await;

    let id = agent.submit(&request_body("To cancel")).await;
    let early = agent
        .post(&format!("/api/v1/requests/{id}/result"), &json!({"status": "executed"}))
        .await;
    assert_eq!(
        (early.status, early.error_code()),
        (409, "illegal_transition"),
        "no result before approval"
    );
    let cancelled = agent.post(&format!("/api/v1/requests/{id}/cancel"), &json!({})).await;
    assert_eq!(cancelled.body["status"], "cancelled");
    let twice = agent.post(&format!("/api/v1/requests/{id}/cancel"), &json!({})).await;
    assert_eq!(twice.status, 409);
    assert!(twice.error_message().contains("cancelled"), "{:?}", twice.body);

    let id = agent.submit(&request_body("To run")).await;
    server
        .service
        .decide(&reviewer(1), id.parse().expect("id"), &approve(), Channel::Api)
        .await
        .expect("approve");
    let cancel_after = agent.post(&format!("/api/v1/requests/{id}/cancel"), &json!({})).await;
    assert_eq!(cancel_after.status, 409, "an approved request cannot be cancelled");
    let failed = agent
        .post(
            &format!("/api/v1/requests/{id}/result"),
            &json!({"status": "failed", "detail": "timeout"}),
        )
        .await;
    assert_eq!(failed.body["status"], "failed");
    let again = agent
        .post(&format!("/api/v1/requests/{id}/result"), &json!({"status": "executed"}))
        .await;
    assert_eq!(again.status, 409);
}

async fn bad_input_is_refused_clearly_and_changes_nothing(backend: Backend) {
    let server = TestServer::start(backend).await;
    let agent = server.agent("deploy-bot").await;
    let other_agent = server.agent("other-bot").await;
    let own = agent.submit(&request_body("Mine")).await;
    let revoked = server.agent("old-bot").await;
    server.service.revoke_agent_keys("old-bot", None).await.expect("revoke");

    let tables = ["requests", "decisions", "audit_events", "agents", "api_keys"];
    let mut before = Vec::new();
    for table in tables {
        before.push(server.db.count(table).await);
    }

    let raw = |body: String, content_type: Option<&'static str>, key: Option<String>| {
        let agent = agent.clone();
        async move {
            let mut request = agent.http.post(agent.url("/api/v1/requests")).body(body);
            if let Some(content_type) = content_type {
                request = request.header("Content-Type", content_type);
            }
            if let Some(key) = key {
                request = request.bearer_auth(key);
            }
            signoff_tests::server::read_reply(request.send().await.expect("send")).await
        }
    };
    let key = Some(agent.key.clone());
    let json_ct = Some("application/json");
    let with = |field: &str, value: serde_json::Value| {
        let mut body = request_body("Bad");
        body[field] = value;
        body.to_string()
    };
    let huge_diff = "+x\n".repeat(90_000);
    // Within the per-side bounds (20,000 lines, 512 KiB), but its diff is over 256 KiB.
    let huge_document: Vec<String> = (0..19_000).map(|n| format!("line number {n:08}")).collect();
    let too_long_document: Vec<String> = (0..30_000).map(|n| format!("line {n}")).collect();

    let cases = vec![
        (
            "malformed JSON",
            raw("{\"action\":".into(), json_ct, key.clone()).await,
            400,
            "bad_request",
            "not valid JSON",
        ),
        (
            "unknown field",
            raw(with("titel", json!("typo")), json_ct, key.clone()).await,
            422,
            "invalid",
            "unknown field `titel`",
        ),
        (
            "wrong type",
            raw(with("title", json!(5)), json_ct, key.clone()).await,
            422,
            "invalid",
            "invalid type",
        ),
        (
            "missing field",
            raw(
                json!({"action": "a.b", "resource": "r"}).to_string(),
                json_ct,
                key.clone(),
            )
            .await,
            422,
            "invalid",
            "missing field `title`",
        ),
        (
            "bad action",
            raw(with("action", json!("Drop Everything")), json_ct, key.clone()).await,
            422,
            "invalid",
            "action must be",
        ),
        (
            "bad diff",
            raw(with("diff", json!([1, 2])), json_ct, key.clone()).await,
            422,
            "invalid",
            "diff must be",
        ),
        (
            "not JSON",
            raw(request_body("x").to_string(), Some("text/plain"), key.clone()).await,
            415,
            "unsupported_media_type",
            "application/json",
        ),
        (
            "no key",
            raw(request_body("x").to_string(), json_ct, None).await,
            401,
            "unauthorized",
            "missing API key",
        ),
        (
            "unknown key",
            raw(request_body("x").to_string(), json_ct, Some("so_agent_nope".into())).await,
            401,
            "unauthorized",
            "unknown or revoked",
        ),
        (
            "revoked key",
            raw(request_body("x").to_string(), json_ct, Some(revoked.key.clone())).await,
            401,
            "unauthorized",
            "unknown or revoked",
        ),
        (
            "body over 1 MiB",
            raw(with("reason", json!("x".repeat(1_100_000))), json_ct, key.clone()).await,
            413,
            "payload_too_large",
            "1 MiB",
        ),
        (
            "diff over 256 KiB",
            raw(with("diff", json!(huge_diff)), json_ct, key.clone()).await,
            413,
            "payload_too_large",
            "256 KiB",
        ),
        (
            "computed diff side over 20,000 lines",
            raw(
                with("diff", json!({"before": "", "after": too_long_document.join("\n")})),
                json_ct,
                key.clone(),
            )
            .await,
            413,
            "payload_too_large",
            "20000 lines per side",
        ),
        (
            "computed diff over 256 KiB",
            raw(
                with("diff", json!({"before": "", "after": huge_document.join("\n")})),
                json_ct,
                key.clone(),
            )
            .await,
            413,
            "payload_too_large",
            "256 KiB",
        ),
        (
            "unknown id",
            agent.get("/api/v1/requests/01937a4c-0000-7000-8000-000000000000").await,
            404,
            "not_found",
            "no request",
        ),
        (
            "not an id",
            agent.get("/api/v1/requests/robert'); DROP TABLE requests;--").await,
            404,
            "not_found",
            "no request",
        ),
        (
            "another agent's request",
            other_agent.get(&format!("/api/v1/requests/{own}")).await,
            404,
            "not_found",
            "no request",
        ),
        (
            "another agent cancels",
            other_agent
                .post(&format!("/api/v1/requests/{own}/cancel"), &json!({}))
                .await,
            404,
            "not_found",
            "no request",
        ),
        (
            "wait too long",
            agent.wait(&own, 301).await,
            400,
            "bad_request",
            "at most 300",
        ),
        (
            "wait nonsense",
            agent.get(&format!("/api/v1/requests/{own}/wait?timeout_s=soon")).await,
            400,
            "bad_request",
            "timeout_s",
        ),
        (
            "result before approval",
            agent
                .post(
                    &format!("/api/v1/requests/{own}/result"),
                    &json!({"status": "executed"}),
                )
                .await,
            409,
            "illegal_transition",
            "pending",
        ),
        (
            "result of unknown shape",
            agent
                .post(&format!("/api/v1/requests/{own}/result"), &json!({"status": "done"}))
                .await,
            422,
            "invalid",
            "unknown variant",
        ),
        (
            "no such endpoint",
            agent.get("/api/v1/nothing").await,
            404,
            "not_found",
            "no such endpoint",
        ),
    ];
    for (what, reply, status, code, message) in cases {
        assert_eq!(reply.status, status, "{what}: {:?}", reply.body);
        assert_eq!(reply.error_code(), code, "{what}: {:?}", reply.body);
        assert!(
            reply.error_message().contains(message),
            "{what}: {:?} should say {message:?}",
            reply.error_message()
        );
    }
    let long_key = agent
        .http
        .post(agent.url("/api/v1/requests"))
        .bearer_auth(&agent.key)
        .header("Idempotency-Key", "k".repeat(300))
        .json(&request_body("x"))
        .send()
        .await
        .expect("send");
    assert_eq!(long_key.status(), 400);
    let wrong_method = agent
        .http
        .delete(agent.url("/api/v1/requests"))
        .send()
        .await
        .expect("send");
    assert_eq!(wrong_method.status(), 405);

    for (table, count) in tables.iter().zip(before) {
        assert_eq!(
            server.db.count(table).await,
            count,
            "{table} unchanged by refused input"
        );
    }
    let health = agent.http.get(agent.url("/readyz")).send().await.expect("readyz");
    assert_eq!(health.status(), 200);
}

async fn decisions_enforce_the_rules(backend: Backend) {
    let server = TestServer::start_with(backend, |config| config.default_approvals = 2).await;
    let agent = server.agent_owned_by("deploy-bot", Some("owner@example.com")).await;
    let id: signoff_app::RequestId = agent.submit(&request_body("Deploy")).await.parse().expect("id");
    let service = &server.service;
    let deny_silently = DecisionInput {
        verdict: Verdict::Deny,
        comment: "  ".into(),
        break_glass: false,
        grant: None,
    };

    let mut requester = reviewer(9);
    requester.email = Some("Requester@Example.com".into());
    let mut owner = reviewer(8);
    owner.email = Some("owner@example.com".into());
    let mut outsider = reviewer(7);
    outsider.groups = vec!["staff".into()];
    let mut admin = reviewer(6);
    admin.groups.push("signoff-admins".into());
    admin.email = Some("requester@example.com".into());

    let refusals = [
        (
            service.decide(&requester, id, &approve(), Channel::Web).await,
            "own request (on behalf of)",
        ),
        (service.decide(&owner, id, &approve(), Channel::Web).await, "own agent"),
        (
            service.decide(&admin, id, &approve(), Channel::Web).await,
            "admins are not exempt",
        ),
        (
            service.decide(&outsider, id, &approve(), Channel::Web).await,
            "not an approver",
        ),
        (
            service.decide(&reviewer(1), id, &deny_silently, Channel::Web).await,
            "deny without comment",
        ),
    ];
    let expected = [RuleError::OwnRequest, RuleError::OwnRequest, RuleError::OwnRequest];
    for ((result, what), rule) in refusals.iter().take(3).zip(expected) {
        assert!(
            matches!(result, Err(Error::Rule(r)) if *r == rule),
            "{what}: {result:?}"
        );
    }
    assert!(
        matches!(refusals[3].0, Err(Error::Rule(RuleError::NotEligible))),
        "{:?}",
        refusals[3].0
    );
    assert!(
        matches!(refusals[4].0, Err(Error::Rule(RuleError::CommentRequired))),
        "{:?}",
        refusals[4].0
    );
    assert_eq!(server.db.count("decisions").await, 0, "refusals record nothing");

    let first = service
        .decide(&reviewer(1), id, &approve(), Channel::Web)
        .await
        .expect("first approval");
    assert_eq!(
        (first.status.as_str(), first.approvals),
        ("pending", 1),
        "quorum of two not yet met"
    );
    let twice = service.decide(&reviewer(1), id, &approve(), Channel::Terminal).await;
    assert!(
        matches!(twice, Err(Error::Rule(RuleError::AlreadyDecided))),
        "{twice:?}"
    );
    let second = service
        .decide(&reviewer(2), id, &approve(), Channel::Terminal)
        .await
        .expect("second approval");
    assert_eq!(second.status.as_str(), "approved");
    let after = service.decide(&reviewer(3), id, &approve(), Channel::Web).await;
    assert!(matches!(after, Err(Error::Rule(RuleError::NotPending(_)))), "{after:?}");

    // Deny wins at once, whatever the quorum.
    let id: signoff_app::RequestId = agent.submit(&request_body("Risky")).await.parse().expect("id");
    let denied = service
        .decide(
            &reviewer(4),
            id,
            &DecisionInput {
                verdict: Verdict::Deny,
                comment: "not during the freeze".into(),
                break_glass: false,
                grant: None,
            },
            Channel::Web,
        )
        .await
        .expect("deny");
    assert_eq!(denied.status.as_str(), "denied");
    assert_eq!(denied.decisions[0].comment, "not during the freeze");
    let erased = server.db.execute("DELETE FROM decisions").await;
    assert!(
        erased.is_err_and(|message| message.contains("append-only")),
        "decisions cannot be erased"
    );
}

/// `other` is told `id` does not exist, and nothing of it leaks.
fn assert_not_found(reply: &signoff_tests::Reply, what: &str) {
    assert_eq!(
        (reply.status, reply.error_code()),
        (404, "not_found"),
        "{what}: {:?}",
        reply.body
    );
    assert!(reply.error_message().contains("no request"), "{what}: {:?}", reply.body);
    assert!(
        !reply.body.to_string().contains("Not yours"),
        "{what}: the other agent's request leaks: {:?}",
        reply.body
    );
}

async fn another_agents_request_cannot_be_waited_on_or_reported_on(backend: Backend) {
    let server = TestServer::start(backend).await;
    let owner = server.agent("deploy-bot").await;
    let other = server.agent("curious-bot").await;
    let id = owner.submit(&request_body("Not yours")).await;
    let result = format!("/api/v1/requests/{id}/result");

    // Pending: waiting on it or reporting on it is answered as for an unknown id, at once.
    let asked = Instant::now();
    assert_not_found(&other.wait(&id, 30).await, "wait on a pending request");
    assert!(
        asked.elapsed() < Duration::from_secs(10),
        "refused at once, not after the wait: {:?}",
        asked.elapsed()
    );
    assert_not_found(
        &other.post(&result, &json!({"status": "executed"})).await,
        "result on a pending request",
    );

    // Decided while the owner and the other agent both wait on it. A decision made here
    // leaves its outcome with the request's waiters, so a wait registered in that moment
    // answers from it without reading the request: the other agent keeps asking across the
    // decision, from more connections than the server has database readers (so some of
    // its waits are always registered, queued for a reader), and is refused every time.
    let owners_wait = {
        let owner = owner.clone();
        let id = id.clone();
        tokio::spawn(async move { owner.wait(&id, 60).await })
    };
    let waiting_started = Instant::now();
    while server.service.waiting_agents() == 0 {
        assert!(
            waiting_started.elapsed() < Duration::from_secs(30),
            "the owner never waited"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let decided = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    const ASKERS: usize = 64;
    const ROUNDS_AFTER: usize = 40;
    let askers: Vec<_> = (0..ASKERS)
        .map(|_| {
            let other = other.clone();
            let id = id.clone();
            let decided = std::sync::Arc::clone(&decided);
            tokio::spawn(async move {
                let mut replies = Vec::new();
                // Until well after the decision: the owner's waiter has long answered.
                let mut after = 0;
                while after < ROUNDS_AFTER {
                    if decided.load(std::sync::atomic::Ordering::SeqCst) {
                        after += 1;
                    }
                    replies.push(other.wait(&id, 30).await);
                }
                replies
            })
        })
        .collect();
    server
        .service
        .decide(&reviewer(1), id.parse().expect("id"), &approve(), Channel::Api)
        .await
        .expect("approve");
    decided.store(true, std::sync::atomic::Ordering::SeqCst);
    let owners = tokio::time::timeout(Duration::from_secs(10), owners_wait)
        .await
        .expect("the owner's wait answers")
        .expect("join");
    assert_eq!(owners.body["status"], "approved", "{:?}", owners.body);
    let mut asked = 0;
    for asker in askers {
        for reply in asker.await.expect("join") {
            assert_not_found(&reply, "wait across the decision");
            asked += 1;
        }
    }
    assert!(asked >= ASKERS * ROUNDS_AFTER, "{asked}");

    // Decided: waiting and reporting are still refused, and the report changes nothing.
    assert_not_found(&other.wait(&id, 30).await, "wait on a decided request");
    assert_not_found(
        &other
            .post(&result, &json!({"status": "failed", "detail": "sabotage"}))
            .await,
        "result on an approved request",
    );
    let seen = owner.get(&format!("/api/v1/requests/{id}")).await;
    assert_eq!(seen.body["status"], "approved", "{:?}", seen.body);
    let reported = owner.post(&result, &json!({"status": "executed"})).await;
    assert_eq!(
        reported.body["status"], "executed",
        "the owner still reports: {:?}",
        reported.body
    );
    assert_not_found(&other.wait(&id, 30).await, "wait on an executed request");
}

async fn decisions_and_the_audit_trail_refuse_update_and_delete(backend: Backend) {
    let server = TestServer::start(backend).await;
    let agent = server.agent("deploy-bot").await;
    let id = agent.submit(&request_body("Recorded for good")).await;
    server
        .service
        .decide(&reviewer(1), id.parse().expect("id"), &approve(), Channel::Api)
        .await
        .expect("approve");
    let as_made = format!("SELECT COUNT(*) FROM decisions WHERE request_id = '{id}' AND comment = 'looks right'");
    assert_eq!(server.db.scalar(&as_made).await, 1, "the decision is stored as made");
    let events = server.db.count("audit_events").await;
    assert!(events >= 3, "{events} audit events");
    let kinds = "SELECT COUNT(*) FROM audit_events WHERE kind = 'request.approved'";
    assert_eq!(server.db.scalar(kinds).await, 1);

    for statement in [
        "UPDATE decisions SET comment = 'rubber-stamped'".to_string(),
        "UPDATE decisions SET verdict = 'deny'".to_string(),
        format!("UPDATE decisions SET request_id = request_id WHERE request_id = '{id}'"),
        "DELETE FROM decisions".to_string(),
        "UPDATE audit_events SET kind = 'request.denied' WHERE kind = 'request.approved'".to_string(),
        "UPDATE audit_events SET data = data".to_string(),
        "DELETE FROM audit_events WHERE kind = 'request.approved'".to_string(),
    ] {
        let refused = server.db.execute(&statement).await;
        assert!(
            refused.as_ref().is_err_and(|message| message.contains("append-only")),
            "{statement}: {refused:?}"
        );
    }
    assert_eq!(server.db.scalar(&as_made).await, 1, "the decision is unchanged");
    assert_eq!(server.db.count("decisions").await, 1);
    assert_eq!(server.db.count("audit_events").await, events);
    assert_eq!(server.db.scalar(kinds).await, 1, "the trail is unchanged");
    assert!(matches!(
        signoff_server::store::verify_chain(server.service.store()).await,
        Ok(signoff_server::store::ChainReport::Intact { .. })
    ));
}

/// `POST /api/v1/requests/{id}/start`, with no body, as an agent sends it.
async fn start(agent: &signoff_tests::AgentClient, id: &str) -> signoff_tests::Reply {
    let response = agent
        .http
        .post(agent.url(&format!("/api/v1/requests/{id}/start")))
        .bearer_auth(&agent.key)
        .send()
        .await
        .expect("POST start");
    signoff_tests::server::read_reply(response).await
}

async fn an_approval_starts_once(backend: Backend) {
    let server = TestServer::start(backend).await;
    let agent = server.agent("deploy-bot").await;
    let other = server.agent("other-bot").await;
    let id = agent.submit(&request_body("Deploy 1.5.0")).await;

    let early = start(&agent, &id).await;
    assert_eq!(
        (early.status, early.error_code()),
        (409, "not_approved"),
        "{:?}",
        early.body
    );
    server
        .service
        .decide(&reviewer(1), id.parse().expect("id"), &approve(), Channel::Api)
        .await
        .expect("approve");
    assert!(
        agent
            .get(&format!("/api/v1/requests/{id}"))
            .await
            .body
            .get("started_at")
            .is_none()
    );

    let not_mine = start(&other, &id).await;
    assert_eq!(not_mine.status, 404, "another agent's request does not exist for it");
    let started = start(&agent, &id).await;
    assert_eq!(started.status, 200, "{:?}", started.body);
    assert_eq!(started.body["status"], "approved");
    let started_at = started.body["started_at"].as_str().expect("started_at").to_string();
    let again = start(&agent, &id).await;
    assert_eq!(
        (again.status, again.error_code()),
        (409, "already_started"),
        "{:?}",
        again.body
    );
    assert!(again.error_message().contains("not started again"), "{:?}", again.body);
    let events = server
        .db
        .scalar(&format!(
            "SELECT COUNT(*) FROM audit_events WHERE kind = 'request.started' AND request_id = '{id}'"
        ))
        .await;
    assert_eq!(events, 1, "one start, audited once");

    // The result is reported as before, and the start stays on the request.
    let done = agent
        .post(&format!("/api/v1/requests/{id}/result"), &json!({"status": "executed"}))
        .await;
    assert_eq!(done.body["status"], "executed", "{:?}", done.body);
    assert_eq!(done.body["started_at"], started_at.as_str());
    let after = start(&agent, &id).await;
    assert_eq!((after.status, after.error_code()), (409, "already_started"));
}

/// The version before `started_at` created its schema with migrations 0001 and 0002. A
/// store it made upgrades in place, and an approval it stored can be started once.
async fn a_store_from_before_starts_upgrades_in_place(backend: Backend) {
    use sqlx::migrate::{Migration, MigrationType, Migrator};
    use std::borrow::Cow;
    let db = signoff_tests::TestDb::new(backend).await;
    let (init, policies, pool_url) = match backend {
        Backend::Sqlite => (
            include_str!("../../migrations/sqlite/0001_init.sql"),
            include_str!("../../migrations/sqlite/0002_policies.sql"),
            format!("{}?mode=rwc", db.url),
        ),
        Backend::Postgres => (
            include_str!("../../migrations/postgres/0001_init.sql"),
            include_str!("../../migrations/postgres/0002_policies.sql"),
            db.url.clone(),
        ),
    };
    let migration = |version, name, sql| {
        Migration::new(
            version,
            Cow::Borrowed(name),
            MigrationType::Simple,
            Cow::Borrowed(sql),
            false,
        )
    };
    let previous = Migrator {
        migrations: Cow::Owned(vec![migration(1, "init", init), migration(2, "policies", policies)]),
        ..Migrator::DEFAULT
    };
    let insert_agent = "INSERT INTO agents (id, name, owner, created_at) \
                        VALUES ('0193a4c2-0000-7000-8000-00000000a9e2', 'legacy-bot', NULL, 1764000000000)";
    let id = "0193a4c2-0000-7000-8000-0000000000f2";
    let insert_request = format!(
        "INSERT INTO requests (id, agent_id, action, resource, title, reason, labels, payload, \
         digest, status, policy, approvals, created_at, expires_at, decided_at) VALUES ('{id}', \
         '0193a4c2-0000-7000-8000-00000000a9e2', 'deploy.service', 'k8s://prod/api', 'Approved before the upgrade', \
         '', '{{}}', '{{}}', 'abc', 'approved', \
         '{{\"name\":\"default\",\"version\":0,\"approvals_required\":1,\"approver_groups\":[\"signoff-reviewers\"]}}', \
         1, 1764000000000, 4102444800000, 1764000001000)"
    );
    match backend {
        Backend::Sqlite => {
            let pool = sqlx::SqlitePool::connect(&pool_url).await.expect("connect");
            previous.run(&pool).await.expect("the previous schema");
            sqlx::query(insert_agent).execute(&pool).await.expect("old agent");
            sqlx::query(&insert_request).execute(&pool).await.expect("old request");
            pool.close().await;
        }
        Backend::Postgres => {
            let pool = sqlx::PgPool::connect(&pool_url).await.expect("connect");
            previous.run(&pool).await.expect("the previous schema");
            sqlx::query(insert_agent).execute(&pool).await.expect("old agent");
            sqlx::query(&insert_request).execute(&pool).await.expect("old request");
            pool.close().await;
        }
    }

    let store = signoff_server::store::Store::connect(&db.url).await.expect("connect");
    store.migrate().await.expect("the store upgrades in place");
    let server = TestServer::start_on(db, |_| {}).await;
    let agent = server.agent("legacy-bot").await;
    let old = agent.get(&format!("/api/v1/requests/{id}")).await;
    assert_eq!(old.status, 200, "{:?}", old.body);
    assert_eq!(old.body["status"], "approved");
    assert!(old.body.get("started_at").is_none(), "not started: {:?}", old.body);
    let started = start(&agent, id).await;
    assert_eq!(started.status, 200, "{:?}", started.body);
    assert!(started.body["started_at"].is_string());
    let again = start(&agent, id).await;
    assert_eq!((again.status, again.error_code()), (409, "already_started"));
}

/// Postgres's migration 0011 drops the labels' foreign key (the engine writes labels only
/// with their request). A store the version before made, with a labelled request in it,
/// upgrades in place; labels written before the upgrade and after it both filter the queue.
async fn labels_from_before_the_upgrade_and_after_it_filter_the_queue(backend: Backend) {
    let db = signoff_tests::TestDb::new(backend).await;
    let old = "0193a4c2-0000-7000-8000-0000000000f3";
    let [agent, request] = signoff_tests::TestDb::old_pending_request(
        "0193a4c2-0000-7000-8000-00000000a9e3",
        "legacy-bot",
        old,
        "Labelled before the upgrade",
        r#"{"env":"prod"}"#,
    );
    let label = format!(
        "INSERT INTO request_labels (request_id, key, value, created_at) \
         VALUES ('{old}', 'env', 'prod', 1764000000000)"
    );
    db.as_of_migration(10, &[agent, request, label]).await;
    let server = TestServer::start_on(db, |_| {}).await;
    let agent = server.agent("deploy-bot").await;
    let mut labelled = request_body("Labelled after the upgrade");
    labelled["labels"] = json!({"env": "prod", "team": "core"});
    let new = agent.submit(&labelled).await;
    let mut other = request_body("Labelled otherwise");
    other["labels"] = json!({"env": "dev"});
    let dev = agent.submit(&other).await;

    let reviewer = signoff_tests::AgentClient::new(&server.base_url, &server.terminal_token(1, "upgrade tests").await);
    let queue = |label: &'static str| {
        let reviewer = &reviewer;
        async move {
            let page = reviewer
                .get(&format!("/api/v1/requests?status=pending&label={label}"))
                .await;
            assert_eq!(page.status, 200, "{:?}", page.body);
            let mut ids: Vec<String> = page.body["items"]
                .as_array()
                .expect("items")
                .iter()
                .map(|item| item["id"].as_str().expect("id").to_string())
                .collect();
            ids.sort();
            ids
        }
    };
    let mut both = vec![old.to_string(), new.clone()];
    both.sort();
    assert_eq!(queue("env%3Dprod").await, both, "before and after the upgrade");
    assert_eq!(queue("team%3Dcore").await, [new]);
    assert_eq!(queue("env%3Ddev").await, [dev]);
    server.stop().await;
}
