//! Races: reviewers deciding at the same instant, and decisions racing expiry, yield
//! exactly one outcome on both stores; the audit chain stays intact throughout.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use signoff_app::wire::DecisionInput;
use signoff_app::{Channel, RequestId, RuleError, Status, Verdict};
use signoff_server::Error;
use signoff_server::store::{ChainReport, verify_chain};
use signoff_tests::fixtures::{request_body, reviewer};
use signoff_tests::{Backend, TestServer, on_both_stores};

on_both_stores!(
    concurrent_decisions_yield_exactly_one_outcome,
    a_decision_racing_expiry_yields_one_outcome,
    many_waiters_all_wake
);

async fn concurrent_decisions_yield_exactly_one_outcome(backend: Backend) {
    let server = TestServer::start_with(backend, |config| config.default_approvals = 2).await;
    let agent = server.agent("deploy-bot").await;
    for round in 0..12 {
        let id: RequestId = agent
            .submit(&request_body(&format!("Race {round}")))
            .await
            .parse()
            .expect("id");
        // Eight reviewers at once; every third one denies.
        let attempts: Vec<_> = (0..8)
            .map(|n| {
                let service = Arc::clone(&server.service);
                tokio::spawn(async move {
                    let input = if n % 3 == 2 {
                        DecisionInput {
                            verdict: Verdict::Deny,
                            comment: "no".into(),
                            break_glass: false,
                            grant: None,
                        }
                    } else {
                        DecisionInput {
                            verdict: Verdict::Approve,
                            comment: String::new(),
                            break_glass: false,
                            grant: None,
                        }
                    };
                    (
                        input.verdict,
                        service.decide(&reviewer(n), id, &input, Channel::Web).await,
                    )
                })
            })
            .collect();
        let mut accepted = Vec::new();
        for attempt in attempts {
            let (verdict, result) = attempt.await.expect("join");
            match result {
                Ok(_) => accepted.push(verdict),
                Err(Error::Rule(RuleError::NotPending(_))) => {}
                Err(other) => panic!("unexpected refusal: {other:?}"),
            }
        }
        let request = server.service.request(id).await.expect("request");
        let approvals = accepted.iter().filter(|v| **v == Verdict::Approve).count();
        let denials = accepted.len() - approvals;
        // Accepted decisions are exactly those recorded, and they end the request once.
        assert_eq!(request.decisions.len(), accepted.len(), "round {round}");
        assert_eq!(request.approvals as usize, approvals, "round {round}");
        match request.status {
            Status::Approved => {
                assert_eq!((approvals, denials), (2, 0), "round {round}: {accepted:?}")
            }
            Status::Denied => assert!(denials == 1 && approvals <= 1, "round {round}: {accepted:?}"),
            other => panic!("round {round}: ended {other}"),
        }
    }
    assert!(matches!(
        verify_chain(server.service.store()).await,
        Ok(ChainReport::Intact { .. })
    ));
}

async fn a_decision_racing_expiry_yields_one_outcome(backend: Backend) {
    // The sweeper is slowed down so the test controls when expiry runs.
    let server = TestServer::start_with(backend, |config| config.sweep_interval = Duration::from_secs(3600)).await;
    let agent = server.agent("deploy-bot").await;
    let mut outcomes = std::collections::HashMap::new();
    // A round races only if both the decision and the sweep reach the service within this
    // much of the expiry instant; a round the machine was too busy to fire in time is
    // played again rather than counted.
    let window = time::Duration::milliseconds(25);
    let (mut raced, mut attempts) = (0, 0);
    while raced < 16 {
        attempts += 1;
        assert!(
            attempts <= 64,
            "only {raced} of {attempts} rounds fired within {window} of the expiry: too busy a machine to race"
        );
        let round = attempts;
        let mut body = request_body(&format!("Expiring {round}"));
        body["ttl_s"] = json!(1);
        let created = agent.post("/api/v1/requests", &body).await;
        let id: RequestId = created.body["id"].as_str().expect("id").parse().expect("id");
        let expires_at = time::OffsetDateTime::parse(
            created.body["expires_at"].as_str().expect("expires_at"),
            &time::format_description::well_known::Rfc3339,
        )
        .expect("timestamp");
        // Fire both within a few milliseconds of the expiry instant, either side of it.
        let until = expires_at - time::OffsetDateTime::now_utc() - time::Duration::milliseconds(3 - round % 6);
        tokio::time::sleep(until.try_into().unwrap_or_default()).await;
        let sweeper = {
            let service = Arc::clone(&server.service);
            tokio::spawn(async move {
                let fired = time::OffsetDateTime::now_utc();
                (fired, service.expire_due().await)
            })
        };
        let decision = {
            let service = Arc::clone(&server.service);
            tokio::spawn(async move {
                let fired = time::OffsetDateTime::now_utc();
                let decided = service
                    .decide(
                        &reviewer(1),
                        id,
                        &DecisionInput {
                            verdict: Verdict::Approve,
                            comment: String::new(),
                            break_glass: false,
                            grant: None,
                        },
                        Channel::Web,
                    )
                    .await;
                (fired, decided)
            })
        };
        let (decision_fired, decision) = decision.await.expect("join");
        let (sweep_fired, swept) = sweeper.await.expect("join");
        swept.expect("sweep");
        server.service.expire_due().await.expect("sweep");
        let request = server.service.request(id).await.expect("request");
        let events = server.service.store().audit_events_for(id).await.expect("audit");
        let event_at = |kind: &str| {
            events
                .iter()
                .find(|e| e.kind == kind)
                .map(|e| time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(e.at) * 1_000_000).expect("time"))
        };
        // Whatever the order, the outcome is one, and true to the clock under the lock.
        match (&decision, request.status) {
            (Ok(_), Status::Approved) => {
                assert_eq!(request.decisions.len(), 1);
                let approved = event_at("request.approved").expect("an approval event");
                assert!(
                    approved < expires_at,
                    "round {round}: approved at {approved}, after the expiry {expires_at}"
                );
            }
            (Err(Error::Rule(RuleError::Expired | RuleError::NotPending(Status::Expired))), Status::Expired) => {
                assert!(request.decisions.is_empty(), "an expired request has no decision");
                let expired = event_at("request.expired").expect("an expiry event");
                assert!(
                    expired >= expires_at,
                    "round {round}: expired at {expired}, before {expires_at}"
                );
            }
            other => panic!("round {round}: inconsistent outcome {other:?}"),
        }
        let expired_events = events.iter().filter(|e| e.kind == "request.expired").count();
        assert_eq!(
            expired_events,
            usize::from(request.status == Status::Expired),
            "round {round}"
        );
        // Did this round race? Both reached the service close to the expiry instant.
        if [decision_fired, sweep_fired]
            .iter()
            .all(|fired| (*fired - expires_at).abs() <= window)
        {
            raced += 1;
            *outcomes.entry(request.status).or_insert(0) += 1;
        }
    }
    eprintln!("race outcomes: {outcomes:?} in {attempts} rounds");
    assert!(matches!(
        verify_chain(server.service.store()).await,
        Ok(ChainReport::Intact { .. })
    ));
}

async fn many_waiters_all_wake(backend: Backend) {
    let server = TestServer::start(backend).await;
    let agent = server.agent("deploy-bot").await;
    let mut ids = Vec::new();
    for n in 0..40 {
        ids.push(agent.submit(&request_body(&format!("Batch {n}"))).await);
    }
    let waiters: Vec<_> = ids
        .iter()
        .map(|id| {
            let agent = agent.clone();
            let id = id.clone();
            tokio::spawn(async move { agent.wait(&id, 60).await })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    for (n, id) in ids.iter().enumerate() {
        let input = if n % 2 == 0 {
            DecisionInput {
                verdict: Verdict::Approve,
                comment: String::new(),
                break_glass: false,
                grant: None,
            }
        } else {
            DecisionInput {
                verdict: Verdict::Deny,
                comment: "not now".into(),
                break_glass: false,
                grant: None,
            }
        };
        server
            .service
            .decide(&reviewer(1), id.parse().expect("id"), &input, Channel::Web)
            .await
            .expect("decide");
    }
    for (n, waiter) in waiters.into_iter().enumerate() {
        let reply = tokio::time::timeout(Duration::from_secs(10), waiter)
            .await
            .expect("woke")
            .expect("join");
        assert_eq!(reply.body["status"], if n % 2 == 0 { "approved" } else { "denied" });
    }
    assert_eq!(server.service.waiting_agents(), 0, "registrations are cleaned up");
}
