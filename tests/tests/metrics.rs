//! `/metrics`: responses by status, waiting agents, live streams and the engine's metrics
//! in Prometheus' text format, open without sign-in, and on an address of its own when
//! `metrics_listen` says so.

use std::net::SocketAddr;
use std::time::Duration;

use signoff_tests::fixtures::request_body;
use signoff_tests::{Backend, TestServer};

/// The recorder is one per process and the waiting-agents gauge is set by whichever server
/// was scraped last, so these tests take turns rather than read each other's numbers.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A scrape: status, content type and body.
struct Scrape {
    status: u16,
    content_type: String,
    text: String,
}

impl Scrape {
    /// The value of one series, written as the exporter writes it (`name{label="value"}`).
    fn value(&self, series: &str) -> Option<f64> {
        self.text.lines().find_map(|line| {
            let value = line.strip_prefix(series)?.strip_prefix(' ')?;
            value.trim().parse().ok()
        })
    }
}

async fn scrape(http: &reqwest::Client, url: &str) -> Scrape {
    let response = http.get(url).send().await.expect("GET /metrics");
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let text = response.text().await.expect("metrics body");
    Scrape {
        status,
        content_type,
        text,
    }
}

/// Scrapes until `series` reads `expected`, failing after a few seconds.
async fn until_reads(http: &reqwest::Client, url: &str, series: &str, expected: f64) -> Scrape {
    let mut last = None;
    for _ in 0..100 {
        let scraped = scrape(http, url).await;
        last = scraped.value(series);
        if last == Some(expected) {
            return scraped;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{series} read {last:?}, never {expected}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn responses_waiting_agents_and_the_engine_are_exposed_without_sign_in() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let server = TestServer::start(Backend::Sqlite).await;
    let url = format!("{}/metrics", server.base_url);
    // Counters live as long as the process: compare with what they read before.
    let before = scrape(&server.http, &url).await;
    let created_before = before
        .value(r#"signoff_http_responses_total{status="201"}"#)
        .unwrap_or(0.0);
    let not_found_before = before
        .value(r#"signoff_http_responses_total{status="404"}"#)
        .unwrap_or(0.0);

    let agent = server.agent("bot").await;
    agent.submit(&request_body("first")).await;
    let id = agent.submit(&request_body("second")).await;
    assert_eq!(agent.get("/api/v1/no-such-endpoint").await.status, 404);

    let scraped = scrape(&server.http, &url).await;
    assert_eq!(scraped.status, 200, "no sign-in needed: {}", scraped.text);
    assert!(
        scraped.content_type.starts_with("text/plain; version=0.0.4"),
        "Prometheus' text format: {}",
        scraped.content_type
    );
    let created = scraped.value(r#"signoff_http_responses_total{status="201"}"#);
    assert!(
        created >= Some(created_before + 2.0),
        "both creations counted ({created_before} before): {}",
        scraped.text
    );
    let not_found = scraped.value(r#"signoff_http_responses_total{status="404"}"#);
    assert!(
        not_found >= Some(not_found_before + 1.0),
        "the 404 counted ({not_found_before} before): {}",
        scraped.text
    );
    assert!(
        scraped.text.contains("# HELP signoff_http_responses_total "),
        "{}",
        scraped.text
    );

    // Registered with their help text from the start, before the engine records anything.
    for (name, kind) in [
        ("signoff_engine_batch_size", "histogram"),
        ("signoff_engine_commit_seconds", "histogram"),
        ("signoff_decision_latency_seconds", "histogram"),
        ("signoff_engine_queue_depth", "gauge"),
        ("signoff_engine_batches_failed_total", "counter"),
        ("signoff_waiting_agents", "gauge"),
        ("signoff_live_stream_subscribers", "gauge"),
    ] {
        assert!(
            scraped.text.contains(&format!("# HELP {name} ")),
            "{name} described: {}",
            scraped.text
        );
        assert!(
            scraped.text.contains(&format!("# TYPE {name} {kind}\n")),
            "{name} a {kind}: {}",
            scraped.text
        );
    }
    assert!(
        scraped
            .text
            .contains(r#"signoff_decision_latency_seconds_bucket{le="0.001"}"#),
        "latency buckets at millisecond scale: {}",
        scraped.text
    );
    assert_eq!(scraped.value("signoff_waiting_agents"), Some(0.0), "{}", scraped.text);

    let waiter = {
        let agent = agent.clone();
        tokio::spawn(async move { agent.wait(&id, 5).await })
    };
    until_reads(&server.http, &url, "signoff_waiting_agents", 1.0).await;
    let reply = tokio::time::timeout(Duration::from_secs(15), waiter)
        .await
        .expect("the wait times out")
        .expect("join");
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    until_reads(&server.http, &url, "signoff_waiting_agents", 0.0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn live_streams_are_counted_while_they_are_open() {
    let _turn = ONE_AT_A_TIME.lock().await;
    // Development sign-in: a reviewer without an OpenID Provider.
    let server = TestServer::start_with(Backend::Sqlite, |config| {
        config.dev = true;
        config.oidc.issuer = None;
        config.oidc.client_id = None;
    })
    .await;
    let url = format!("{}/metrics", server.base_url);
    let browser = server.browser();
    let page = browser.get(&format!("{}/auth/dev", server.base_url)).await;
    let marker = "name=\"csrf\" value=\"";
    let start = page.body.find(marker).expect("csrf field") + marker.len();
    let csrf = &page.body[start..start + page.body[start..].find('"').expect("end of csrf")];
    let landed = browser
        .post_form("/auth/dev", &[("csrf", csrf), ("user", "riley"), ("next", "/")])
        .await;
    assert_eq!(landed.status, 200, "{}", landed.body);

    until_reads(&server.http, &url, "signoff_live_stream_subscribers", 0.0).await;
    let stream = browser
        .http
        .get(format!("{}/api/v1/events", server.base_url))
        .send()
        .await
        .expect("events");
    assert_eq!(stream.status(), 200);
    until_reads(&server.http, &url, "signoff_live_stream_subscribers", 1.0).await;
    drop(stream);
    until_reads(&server.http, &url, "signoff_live_stream_subscribers", 0.0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn metrics_listen_moves_metrics_to_their_own_address() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let metrics_address = free_address();
    let server = TestServer::start_with(Backend::Sqlite, |config| {
        config.metrics_listen = Some(metrics_address);
    })
    .await;
    let agent = server.agent("bot").await;
    agent.submit(&request_body("counted")).await;

    let on_main = scrape(&server.http, &format!("{}/metrics", server.base_url)).await;
    assert_eq!(on_main.status, 404, "not on the main listener: {}", on_main.text);
    let own = scrape(&server.http, &format!("http://{metrics_address}/metrics")).await;
    assert_eq!(own.status, 200, "{}", own.text);
    assert!(
        own.content_type.starts_with("text/plain; version=0.0.4"),
        "{}",
        own.content_type
    );
    assert!(
        own.value(r#"signoff_http_responses_total{status="201"}"#) >= Some(1.0),
        "{}",
        own.text
    );
    assert_eq!(own.value("signoff_waiting_agents"), Some(0.0), "{}", own.text);
    let elsewhere = scrape(&server.http, &format!("http://{metrics_address}/healthz")).await;
    assert_eq!(elsewhere.status, 404, "only /metrics on the metrics address");

    server.stop().await;
    assert!(
        server_gone(metrics_address).await,
        "the metrics listener stops with the server"
    );
}

#[test]
fn metrics_listen_comes_from_the_environment_and_must_differ_from_listen() {
    let env = |pairs: &'static [(&'static str, &'static str)]| {
        move |name: &str| {
            pairs
                .iter()
                .find(|(key, _)| *key == name)
                .map(|(_, value)| value.to_string())
        }
    };
    let config = signoff_server::Config::load(
        None,
        env(&[
            ("SIGNOFF_METRICS_LISTEN", "127.0.0.1:9090"),
            ("SIGNOFF_OIDC_ISSUER", "https://sso.example.com"),
        ]),
    )
    .expect("loads");
    assert_eq!(config.metrics_listen, Some(SocketAddr::from(([127, 0, 0, 1], 9090))));
    config.validate().expect("valid");

    let err = signoff_server::Config::load(None, env(&[("SIGNOFF_METRICS_LISTEN", "metrics:9090")]))
        .expect_err("not an address");
    assert!(err.to_string().contains("SIGNOFF_METRICS_LISTEN"), "{err}");

    let same = signoff_server::Config::load(
        None,
        env(&[
            ("SIGNOFF_METRICS_LISTEN", "127.0.0.1:3000"),
            ("SIGNOFF_OIDC_ISSUER", "https://sso.example.com"),
        ]),
    )
    .expect("loads");
    let err = same.validate().expect_err("the main address is taken");
    assert!(err.to_string().contains("metrics_listen"), "{err}");
}

/// A port nobody listens on right now.
fn free_address() -> SocketAddr {
    let probe = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a probe");
    probe.local_addr().expect("probe address")
}

async fn server_gone(address: SocketAddr) -> bool {
    for _ in 0..50 {
        if tokio::net::TcpStream::connect(address).await.is_err() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}
