//! Signed webhooks, end to end: a real receiver (Python, verifying every delivery with the
//! official Standard Webhooks package) gets the audit trail's events, signed, in order,
//! filtered by kind; one that is down gets everything once it is back, across a SIGKILL
//! of the server; one that hangs holds up nobody else; all of them go out from a thread
//! that yields the CPU to the server's own work.

use std::time::{Duration, Instant};

use serde_json::json;

use signoff_server::Config;
use signoff_server::config::{Secret, WebhookConfig};
use signoff_server::store::DeliveryStatus;
use signoff_tests::fixtures::request_body;
use signoff_tests::receiver::{Accepted, Receiver};
use signoff_tests::{AgentClient, Backend, ServerProcess, TestDb, TestServer, on_both_stores, run_cli};

on_both_stores!(
    events_arrive_signed_in_order_with_the_kinds_asked_for,
    a_wrong_signature_is_refused_by_the_receiver_and_retried,
    an_endpoint_down_for_a_while_gets_everything_in_order_across_a_crash,
    a_hanging_endpoint_does_not_delay_another,
    deliveries_run_on_their_own_thread_below_the_servers_priority,
    a_delivery_log_from_before_pages_upgrades_in_place,
);

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const OTHER_SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";

fn endpoint(name: &str, receiver: &Receiver, secret: &str, events: &[&str]) -> WebhookConfig {
    WebhookConfig {
        name: name.into(),
        url: receiver.url.clone(),
        secret: Secret::new(secret),
        events: events.iter().map(|kind| kind.to_string()).collect(),
    }
}

fn fast_retries(config: &mut Config) {
    config.notify.retry_base = Duration::from_millis(100);
    config.notify.retry_max = Duration::from_millis(400);
}

/// The first delivery of each event, in the order they arrived.
fn first_deliveries(accepted: &[Accepted]) -> Vec<Accepted> {
    let mut seen = std::collections::HashSet::new();
    accepted
        .iter()
        .filter(|delivery| seen.insert(delivery.id.clone()))
        .cloned()
        .collect()
}

fn assert_in_order(deliveries: &[Accepted]) {
    for pair in deliveries.windows(2) {
        assert!(pair[0].seq < pair[1].seq, "out of order: {pair:#?}");
    }
    for delivery in deliveries {
        assert_eq!(
            delivery.id,
            format!("msg_signoff_{}", delivery.seq),
            "a stable id per event"
        );
    }
}

async fn submit(agent: &AgentClient, title: &str) -> String {
    agent.submit(&request_body(title)).await
}

async fn events_arrive_signed_in_order_with_the_kinds_asked_for(backend: Backend) {
    let everything = Receiver::start(SECRET, "ok").await;
    let creations = Receiver::start(OTHER_SECRET, "ok").await;
    let server = TestServer::start_with(backend, |config| {
        config.notify.webhooks = vec![
            endpoint("siem", &everything, SECRET, &[]),
            endpoint("created-only", &creations, OTHER_SECRET, &["request.created"]),
        ];
    })
    .await;
    let agent = server.agent("deployer").await;
    let mut ids = Vec::new();
    for n in 0..3 {
        ids.push(submit(&agent, &format!("Deploy {n}")).await);
    }
    let cancelled = agent
        .post(&format!("/api/v1/requests/{}/cancel", ids[0]), &json!({}))
        .await;
    assert_eq!(cancelled.status, 200, "{:?}", cancelled.body);

    let all = everything
        .wait_until("every event", Duration::from_secs(20), |accepted| {
            accepted.iter().any(|delivery| delivery.kind == "request.cancelled")
        })
        .await;
    assert_in_order(&all);
    let kinds: Vec<&str> = all.iter().map(|delivery| delivery.kind.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "agent.created",
            "request.created",
            "request.created",
            "request.created",
            "request.cancelled"
        ]
    );
    assert_eq!(
        all[0].actor, "operator",
        "the key was issued from the command line's path"
    );
    let created: Vec<String> = all[1..4].iter().filter_map(|d| d.request_id.clone()).collect();
    assert_eq!(created, ids);
    assert_eq!(all[4].request_id.as_deref(), Some(ids[0].as_str()));
    assert_eq!(all[4].actor, "agent");

    let only_created = creations
        .wait_until("the three creations", Duration::from_secs(20), |accepted| {
            accepted.len() >= 3
        })
        .await;
    assert_in_order(&only_created);
    assert!(only_created.iter().all(|delivery| delivery.kind == "request.created"));
    // Nothing more arrives: the cancel is not a kind it asked for.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(creations.accepted().len(), 3);
    assert!(everything.refused().is_empty() && creations.refused().is_empty());

    // The delivery log says what happened to each.
    let log = server
        .service
        .store()
        .webhook_deliveries("siem", 10)
        .await
        .expect("the delivery log");
    assert_eq!(log.len(), 5);
    assert!(
        log.iter()
            .all(|delivery| delivery.status == DeliveryStatus::Delivered && delivery.attempts == 1)
    );
    server.stop().await;
}

async fn a_wrong_signature_is_refused_by_the_receiver_and_retried(backend: Backend) {
    // The receiver knows another secret: the package refuses every delivery, which the
    // server records and retries. (Also the check that the receiver does verify.)
    let receiver = Receiver::start(OTHER_SECRET, "ok").await;
    let server = TestServer::start_with(backend, |config| {
        config.notify.webhooks = vec![endpoint("siem", &receiver, SECRET, &["request.created"])];
        fast_retries(config);
    })
    .await;
    let agent = server.agent("deployer").await;
    submit(&agent, "Deploy").await;
    let started = Instant::now();
    while receiver.refused().len() < 2 {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "no retried delivery was refused"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(receiver.accepted().is_empty());
    assert!(
        receiver.refused()[0].to_lowercase().contains("signature"),
        "{:?}",
        receiver.refused()
    );
    let log = server
        .service
        .store()
        .webhook_deliveries("siem", 10)
        .await
        .expect("the delivery log");
    assert_eq!(log.len(), 1, "{log:?}");
    assert_eq!(log[0].status, DeliveryStatus::Retrying);
    assert!(log[0].attempts >= 1);
    assert!(
        log[0]
            .last_error
            .as_deref()
            .is_some_and(|error| error.starts_with("HTTP 401")),
        "{log:?}"
    );
    server.stop().await;
}

/// `SIGNOFF_NOTIFY_WEBHOOKS` for one endpoint, `siem`, taking creations, at `receiver`.
fn siem_creations(receiver: &Receiver) -> String {
    serde_json::to_string(&json!([
        {"name": "siem", "url": receiver.url, "secret": SECRET, "events": ["request.created"]},
    ]))
    .expect("JSON")
}

async fn an_endpoint_down_for_a_while_gets_everything_in_order_across_a_crash(backend: Backend) {
    let receiver = Receiver::start(SECRET, "down").await;
    let db = TestDb::new(backend).await;
    let hooks = siem_creations(&receiver);
    let env = [
        ("SIGNOFF_NOTIFY_WEBHOOKS", hooks.as_str()),
        ("SIGNOFF_NOTIFY_RETRY_BASE", "100ms"),
        ("SIGNOFF_NOTIFY_RETRY_MAX", "400ms"),
    ];
    let server = ServerProcess::start(&db, &env).await;
    let (code, out, err) = run_cli(&db, &["agents", "create", "--name", "deployer"]);
    assert_eq!(code, 0, "agents create: {err}");
    let key = out.lines().last().expect("the key").to_string();
    let agent = AgentClient::new(&server.base_url, &key);
    let mut ids = Vec::new();
    for n in 0..4 {
        ids.push(submit(&agent, &format!("Before the crash {n}")).await);
    }
    // The receiver is down: it is tried, nothing is accepted, and operators see the
    // channel fall behind by the four creations.
    channel_metrics_until(
        &server.base_url,
        "behind and retrying",
        |backlog, delivered, retried| backlog >= 4.0 && delivered == 0.0 && retried >= 1.0,
    )
    .await;
    assert!(receiver.accepted().is_empty());
    let recorded = Instant::now();
    while db
        .scalar("SELECT COUNT(*) FROM webhook_deliveries WHERE status = 'retrying'")
        .await
        < 1
    {
        assert!(
            recorded.elapsed() < Duration::from_secs(10),
            "the failed attempts are recorded"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    server.kill().await;

    // Back up as the server restarts: the new process delivers what the dead one was
    // still retrying, at its own first attempt.
    receiver.set_mode("ok");
    let server = ServerProcess::start(&db, &env).await;
    let agent = AgentClient::new(&server.base_url, &key);
    for n in 0..3 {
        ids.push(submit(&agent, &format!("After the restart {n}")).await);
    }
    let accepted = receiver
        .wait_until("all seven creations", Duration::from_secs(30), |accepted| {
            first_deliveries(accepted).len() >= 7
        })
        .await;
    let first = first_deliveries(&accepted);
    assert_in_order(&first);
    let delivered: Vec<String> = first.iter().filter_map(|d| d.request_id.clone()).collect();
    assert_eq!(delivered, ids, "every creation, once, in order");
    channel_metrics_until(&server.base_url, "caught up", |backlog, delivered, _| {
        backlog == 0.0 && delivered >= 7.0
    })
    .await;
    // The log says so too: what was still being retried when the server died is
    // recorded as delivered by the process that delivered it.
    assert_eq!(
        db.scalar("SELECT COUNT(*) FROM webhook_deliveries WHERE status <> 'delivered'")
            .await,
        0,
        "no event is left retrying in the log"
    );
    server.kill().await;
}

async fn a_hanging_endpoint_does_not_delay_another(backend: Backend) {
    let hanging = Receiver::start(SECRET, "hang").await;
    let healthy = Receiver::start(SECRET, "ok").await;
    let server = TestServer::start_with(backend, |config| {
        config.notify.webhooks = vec![
            endpoint("stuck", &hanging, SECRET, &["request.created"]),
            endpoint("healthy", &healthy, SECRET, &["request.created"]),
        ];
        config.notify.timeout = Duration::from_secs(60);
    })
    .await;
    let agent = server.agent("deployer").await;
    for n in 0..3 {
        let asked = Instant::now();
        let id = submit(&agent, &format!("Deploy {n}")).await;
        healthy
            .wait_until("the healthy endpoint's delivery", Duration::from_secs(5), |accepted| {
                accepted
                    .iter()
                    .any(|delivery| delivery.request_id.as_deref() == Some(id.as_str()))
            })
            .await;
        assert!(asked.elapsed() < Duration::from_secs(5));
    }
    assert!(hanging.accepted().is_empty());
    server.stop().await;
}

/// Each thread of process `pid`: its name and nice value (`/proc/PID/task/TID/stat`,
/// fields 2 and 19).
fn threads_of(pid: u32) -> Vec<(String, i32)> {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).expect("the server's threads");
    tasks
        .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("stat")).ok())
        .filter_map(|stat| {
            let (head, rest) = stat.rsplit_once(')')?;
            let name = head.split_once('(')?.1.to_string();
            let nice = rest.split_whitespace().nth(16)?.parse().ok()?;
            Some((name, nice))
        })
        .collect()
}

async fn deliveries_run_on_their_own_thread_below_the_servers_priority(backend: Backend) {
    let receiver = Receiver::start(SECRET, "ok").await;
    let db = TestDb::new(backend).await;
    let hooks = siem_creations(&receiver);
    let server = ServerProcess::start(&db, &[("SIGNOFF_NOTIFY_WEBHOOKS", hooks.as_str())]).await;
    let (code, out, err) = run_cli(&db, &["agents", "create", "--name", "deployer"]);
    assert_eq!(code, 0, "agents create: {err}");
    let agent = AgentClient::new(&server.base_url, out.lines().last().expect("the key"));
    let id = submit(&agent, "Deploy").await;
    receiver
        .wait_until("the creation's delivery", Duration::from_secs(10), |accepted| {
            accepted
                .iter()
                .any(|delivery| delivery.request_id.as_deref() == Some(id.as_str()))
        })
        .await;

    let threads = threads_of(server.pid().expect("a running server"));
    let deliveries: Vec<i32> = threads
        .iter()
        .filter(|(name, _)| name == "signoff-notify")
        .map(|(_, nice)| *nice)
        .collect();
    assert_eq!(
        deliveries,
        [10],
        "one deliveries' thread, 10 below the server: {threads:?}"
    );
    let server_threads: Vec<&(String, i32)> = threads
        .iter()
        .filter(|(name, _)| name.starts_with("tokio-rt"))
        .collect();
    assert!(
        !server_threads.is_empty() && server_threads.iter().all(|(_, nice)| *nice == 0),
        "the server's own threads keep their priority: {threads:?}"
    );
    server.kill().await;
}

/// Scrapes `/metrics` until the `siem` channel's backlog and deliveries (delivered,
/// retried) satisfy `wanted`, failing after 20 s.
async fn channel_metrics_until(base_url: &str, what: &str, wanted: impl Fn(f64, f64, f64) -> bool) {
    let http = reqwest::Client::new();
    let series = |text: &str, name: &str, labels: &[&str]| -> f64 {
        text.lines()
            .filter(|line| line.starts_with(&format!("{name}{{")) && labels.iter().all(|label| line.contains(label)))
            .filter_map(|line| line.rsplit_once(' ')?.1.parse::<f64>().ok())
            .sum()
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let text = http
            .get(format!("{base_url}/metrics"))
            .send()
            .await
            .expect("GET /metrics")
            .text()
            .await
            .expect("metrics");
        let channel = r#"channel="siem""#;
        let backlog = series(&text, "signoff_channel_backlog_events", &[channel]);
        let delivered = series(
            &text,
            "signoff_channel_deliveries_total",
            &[channel, r#"outcome="delivered""#],
        );
        let retried = series(
            &text,
            "signoff_channel_deliveries_total",
            &[channel, r#"outcome="retried""#],
        );
        if wanted(backlog, delivered, retried) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the siem channel never read {what}: backlog {backlog}, delivered {delivered}, retried {retried}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn a_delivery_log_from_before_pages_upgrades_in_place(backend: Backend) {
    // A store as the version before delivered pages left it (migrations to 0009): every
    // delivery a row of its own.
    let db = TestDb::new(backend).await;
    db.as_of_migration(
        9,
        &[
            "INSERT INTO webhook_cursors (endpoint, delivered_seq) VALUES ('siem', 0)".to_string(),
            "INSERT INTO webhook_deliveries \
             (endpoint, seq, kind, attempts, status, last_error, last_attempt_at, delivered_at) \
             VALUES ('archive', 1, 'request.created', 1, 'delivered', NULL, 1764000000000, 1764000000000), \
                    ('archive', 2, 'request.created', 3, 'failed', 'HTTP 410: gone', 1764000000500, NULL)"
                .to_string(),
        ],
    )
    .await;
    let receiver = Receiver::start(SECRET, "ok").await;
    let server = TestServer::start_on(db, |config| {
        config.notify.webhooks = vec![endpoint("siem", &receiver, SECRET, &["request.created"])];
    })
    .await;
    let agent = server.agent("deployer").await;
    submit(&agent, "After the upgrade 1").await;
    submit(&agent, "After the upgrade 2").await;
    receiver
        .wait_until("both creations", Duration::from_secs(15), |accepted| {
            accepted.len() >= 2
        })
        .await;
    let store = server.service.store();
    // The old log reads as it did.
    let old = store.webhook_deliveries("archive", 10).await.expect("the old log");
    let old: Vec<(i64, i32, DeliveryStatus)> = old.iter().map(|d| (d.seq, d.attempts, d.status)).collect();
    assert_eq!(old, [(2, 3, DeliveryStatus::Failed), (1, 1, DeliveryStatus::Delivered)]);
    // New deliveries, accepted at once, are in the log, newest first, with their kind,
    // once it records them.
    let deadline = Instant::now() + Duration::from_secs(10);
    let log = loop {
        let log = store.webhook_deliveries("siem", 10).await.expect("the log");
        if log.len() >= 2 || Instant::now() > deadline {
            break log;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(log.len(), 2, "{log:?}");
    assert!(log[0].seq > log[1].seq, "newest first: {log:?}");
    assert!(
        log.iter().all(|d| d.status == DeliveryStatus::Delivered
            && d.attempts == 1
            && d.kind == "request.created"
            && d.delivered_at.is_some()),
        "{log:?}"
    );
    let one = store
        .webhook_delivery("siem", log[1].seq)
        .await
        .expect("read")
        .expect("found through its page");
    assert_eq!(one, log[1]);
    server.stop().await;
}
