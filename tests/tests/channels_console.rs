//! The console's channel pages, on both stores: an admin sees each channel and where it
//! stands (never its secret or its URL's token), sends a test that arrives, reads the
//! delivery log (a failing endpoint's retries with the last error), and sends an event
//! again, which the receiver gets a second time with the same `webhook-id`. Forms without
//! the session's CSRF token change nothing. (Anonymous, no-role and reviewer callers are
//! refused with every other admin page in tests/tests/admin_console.rs.)

use std::time::{Duration, Instant};

use signoff_server::config::{Secret, WebhookConfig};
use signoff_server::store::DeliveryStatus;
use signoff_tests::fixtures::request_body;
use signoff_tests::oidc::Provider;
use signoff_tests::receiver::Receiver;
use signoff_tests::{Backend, TestServer, on_both_stores};

on_both_stores!(an_admin_sees_tests_and_resends_deliveries_without_seeing_secrets);

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

async fn an_admin_sees_tests_and_resends_deliveries_without_seeing_secrets(backend: Backend) {
    let provider = Provider::start().await;
    let receiver = Receiver::start(SECRET, "ok").await;
    let down = Receiver::start(SECRET, "down").await;
    let siem_url = format!("{}?token=s3cr3t-path-token", receiver.url);
    let (siem, broken) = (siem_url.clone(), down.url.clone());
    let server = TestServer::start_with_sso(backend, &provider, move |config| {
        config.notify.webhooks = vec![
            WebhookConfig {
                name: "siem".into(),
                url: siem,
                secret: Secret::new(SECRET),
                events: vec!["request.created".into()],
            },
            WebhookConfig {
                name: "broken".into(),
                url: broken,
                secret: Secret::new(SECRET),
                events: vec!["request.created".into()],
            },
        ];
        config.notify.retry_base = Duration::from_millis(100);
        config.notify.retry_max = Duration::from_millis(300);
    })
    .await;
    let agent = server.agent("deploy-bot").await;
    let id = agent.submit(&request_body("Deploy payments")).await;
    receiver
        .wait_until("the event", Duration::from_secs(15), |accepted| accepted.len() == 1)
        .await;
    let store = server.service.store().clone();
    let deadline = Instant::now() + Duration::from_secs(15);
    while store
        .webhook_deliveries("broken", 1)
        .await
        .expect("log")
        .first()
        .is_none_or(|d| d.attempts < 2)
    {
        assert!(Instant::now() < deadline, "the broken endpoint is retried");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let carol = server.browser();
    let csrf = carol.sign_in("carol").await.csrf();
    let page = carol.get(&format!("{}/admin/channels", server.base_url)).await;
    assert_eq!(page.status, 200);
    assert!(
        page.body.contains("data-name=\"siem\"") && page.body.contains("data-name=\"broken\""),
        "{}",
        page.body
    );
    assert!(
        page.body.contains("HTTP 503"),
        "the failing endpoint's last error: {}",
        page.body
    );
    for secret in [SECRET, "s3cr3t-path-token", "/hooks"] {
        assert!(!page.body.contains(secret), "the page never shows {secret}");
    }

    // A test arrives at the receiver, signed.
    let tested = carol.post_form("/admin/channels/siem/test", &[("csrf", &csrf)]).await;
    assert!(tested.body.contains("Test sent to siem"), "{}", tested.body);
    let accepted = receiver
        .wait_until("the test", Duration::from_secs(10), |accepted| accepted.len() == 2)
        .await;
    assert_eq!(accepted[1].kind, "signoff.test");
    let failed = carol.post_form("/admin/channels/broken/test", &[("csrf", &csrf)]).await;
    assert!(
        failed.body.contains("The test to broken failed: HTTP 503"),
        "{}",
        failed.body
    );

    // The log, and sending an event again: same webhook-id, a second arrival.
    let log = carol
        .get(&format!("{}/admin/channels/siem/deliveries", server.base_url))
        .await;
    let seq = accepted[0].seq;
    assert!(
        log.body.contains(&format!("data-seq=\"{seq}\"")) && log.body.contains(&id),
        "{}",
        log.body
    );
    assert!(log.body.contains("submitted (request.created)"), "{}", log.body);
    let broken_log = carol
        .get(&format!("{}/admin/channels/broken/deliveries", server.base_url))
        .await;
    assert!(
        broken_log.body.contains("retrying") && broken_log.body.contains("HTTP 503"),
        "{}",
        broken_log.body
    );

    let forged = carol
        .post_form(
            &format!("/admin/channels/siem/deliveries/{seq}/send"),
            &[("csrf", "forged")],
        )
        .await;
    assert_eq!(forged.status, 403, "{}", forged.body);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(receiver.accepted().len(), 2, "a forged form sends nothing");
    let again = carol
        .post_form(
            &format!("/admin/channels/siem/deliveries/{seq}/send"),
            &[("csrf", &csrf)],
        )
        .await;
    assert!(
        again
            .body
            .contains(&format!("Event {seq} sent again to siem: accepted")),
        "{}",
        again.body
    );
    let accepted = receiver
        .wait_until("the event again", Duration::from_secs(10), |accepted| {
            accepted.len() == 3
        })
        .await;
    assert_eq!(
        accepted[2].id, accepted[0].id,
        "the same webhook-id, so receivers deduplicate"
    );
    let delivery = store
        .webhook_delivery("siem", seq)
        .await
        .expect("read")
        .expect("recorded");
    assert_eq!((delivery.status, delivery.attempts), (DeliveryStatus::Delivered, 2));
    let unknown = carol
        .get(&format!("{}/admin/channels/nowhere/deliveries", server.base_url))
        .await;
    assert_eq!(unknown.status, 404);
    server.stop().await;
}
