//! Agents' callbacks, end to end on both stores: the outcome is POSTed to the request's
//! `callback_url`, signed (checked by a receiver using the official Standard Webhooks
//! package); a URL off the operator's list, one resolving to loopback, a metadata address
//! or plain http to another host is refused at submission, and nothing is stored.

use std::time::Duration;

use serde_json::json;

use signoff_app::Channel;
use signoff_app::Verdict;
use signoff_app::wire::DecisionInput;
use signoff_server::config::Secret;
use signoff_tests::fixtures::reviewer;
use signoff_tests::receiver::Receiver;
use signoff_tests::{Backend, TestServer, on_both_stores};

on_both_stores!(
    the_outcome_is_called_back_signed,
    callbacks_off_the_list_or_to_internal_addresses_are_refused_at_submission,
);

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

async fn the_outcome_is_called_back_signed(backend: Backend) {
    let receiver = Receiver::start(SECRET, "ok").await;
    let server = TestServer::start_with(backend, |config| {
        config.callbacks.allowed_hosts = vec!["127.0.0.1".into()];
        config.callbacks.secret = Some(Secret::new(SECRET));
        config.notify.retry_base = Duration::from_millis(100);
    })
    .await;
    let agent = server.agent("ci-runner").await;
    let id = agent
        .submit(
            &json!({"action": "deploy.service", "resource": "k8s://prod/api", "title": "Deploy api",
                        "callback_url": receiver.url}),
        )
        .await;
    let other = agent
        .submit(&json!({"action": "deploy.service", "resource": "k8s://prod/web", "title": "Deploy web"}))
        .await;
    let approve = DecisionInput {
        verdict: Verdict::Approve,
        comment: String::new(),
        break_glass: false,
        grant: None,
    };
    for request in [&id, &other] {
        server
            .service
            .decide(&reviewer(1), request.parse().expect("id"), &approve, Channel::Web)
            .await
            .expect("approved");
    }
    let called = receiver
        .wait_until("the callback", Duration::from_secs(15), |accepted| !accepted.is_empty())
        .await;
    assert_eq!(called[0].kind, "request.approved");
    assert_eq!(called[0].request_id.as_deref(), Some(id.as_str()));
    assert_eq!(called[0].id, format!("msg_signoff_{}", called[0].seq));
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        receiver.accepted().len(),
        1,
        "only the request that asked is called back"
    );
    assert!(
        receiver.refused().is_empty(),
        "every callback verifies: {:?}",
        receiver.refused()
    );
    server.stop().await;

    // Without a configured secret, one is made at first start, for the server's user only.
    let made = TestServer::start_with(backend, |config| {
        config.callbacks.allowed_hosts = vec!["127.0.0.1".into()]
    })
    .await;
    let key = made.db.dir.join("callbacks.key");
    let text = std::fs::read_to_string(&key).expect("a secret was made");
    assert!(text.starts_with("whsec_"), "{text}");
    let (code, printed, _) = signoff_tests::run_cli(&made.db, &["callbacks", "secret"]);
    assert_eq!(
        (code, printed.trim()),
        (0, text.trim()),
        "the command line prints the secret agents verify with"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key).expect("metadata").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
    made.stop().await;
}

async fn callbacks_off_the_list_or_to_internal_addresses_are_refused_at_submission(backend: Backend) {
    let server = TestServer::start_with(backend, |config| {
        config.callbacks.allowed_hosts = vec!["ci.example.com".into(), "localhost".into(), "169.254.169.254".into()];
    })
    .await;
    let agent = server.agent("ci-runner").await;
    for (url, said) in [
        ("https://elsewhere.example.com/hook", "not on this server's list"),
        ("https://localhost/hook", "internal address"),
        ("https://169.254.169.254/latest/meta-data", "metadata"),
        ("http://ci.example.com/hook", "must be https"),
        ("https://user:pw@ci.example.com/hook", "credentials"),
    ] {
        let reply = agent
            .post(
                "/api/v1/requests",
                &json!({"action": "deploy.service", "resource": "r", "title": "t", "callback_url": url}),
            )
            .await;
        assert_eq!(reply.status, 422, "{url}: {}", reply.body);
        assert!(reply.error_message().contains(said), "{url}: {}", reply.body);
        assert!(reply.error_message().contains("callback_url"), "{url}: {}", reply.body);
    }
    let stored = server
        .db
        .execute("UPDATE requests SET title = title")
        .await
        .expect("count");
    assert_eq!(stored, 0, "nothing refused was stored");
    server.stop().await;

    let without = TestServer::start(backend).await;
    let agent = without.agent("ci-runner").await;
    let reply = agent
        .post(
            "/api/v1/requests",
            &json!({"action": "deploy.service", "resource": "r", "title": "t", "callback_url": "https://ci.example.com/x"}),
        )
        .await;
    assert_eq!(reply.status, 422);
    assert!(reply.error_message().contains("allowed_hosts"), "{}", reply.body);
    without.stop().await;
}
