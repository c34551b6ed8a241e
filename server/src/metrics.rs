//! Prometheus metrics: the process-wide recorder, the names and meanings of what Signoff
//! measures, and the small functions the rest of the server records through.
//!
//! The recorder is installed lazily by the first function that needs it, so nothing has to
//! happen in a particular order at start-up, and at most once per process (tests run many
//! servers in one process). If another recorder got there first, recording goes to it and
//! [`render`] has nothing to show.

use std::sync::OnceLock;
use std::time::Duration;

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use metrics::{Unit, counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// HTTP responses, by status code.
pub const HTTP_RESPONSES: &str = "signoff_http_responses_total";
/// Commands the lifecycle engine committed in one batch.
pub const ENGINE_BATCH_SIZE: &str = "signoff_engine_batch_size";
/// How long committing one batch took.
pub const ENGINE_COMMIT_SECONDS: &str = "signoff_engine_commit_seconds";
/// Commands waiting for the lifecycle engine.
pub const ENGINE_QUEUE_DEPTH: &str = "signoff_engine_queue_depth";
/// Batches whose commit failed.
pub const ENGINE_BATCHES_FAILED: &str = "signoff_engine_batches_failed_total";
/// From a decision command's submission to its answer.
pub const DECISION_LATENCY_SECONDS: &str = "signoff_decision_latency_seconds";
/// Agents long-polling for a decision.
pub const WAITING_AGENTS: &str = "signoff_waiting_agents";
/// Open live-event streams (console pages and terminals watching the queue).
pub const LIVE_STREAM_SUBSCRIBERS: &str = "signoff_live_stream_subscribers";

/// Events committed to the audit trail that a channel has not delivered yet, by channel.
pub const CHANNEL_BACKLOG_EVENTS: &str = "signoff_channel_backlog_events";
/// Attempts to deliver an event to a channel, by channel and outcome.
pub const CHANNEL_DELIVERIES: &str = "signoff_channel_deliveries_total";

/// The content type of Prometheus' text exposition format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Buckets for in-process latencies: commits and decisions take milliseconds, so the
/// resolution is there, with a tail up to seconds to show a struggling database.
const LATENCY_BUCKETS_SECONDS: &[f64] = &[
    0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];
/// Powers of two: a batch holds one command when idle and hundreds under load.
const BATCH_SIZE_BUCKETS: &[f64] = &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0];
/// Without an exporter task, histogram samples pile up until someone renders them; this
/// folds them into their buckets when nobody scrapes.
const UPKEEP_INTERVAL: Duration = Duration::from_secs(5);

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs the recorder if this process has none yet; cheap after the first call.
/// Returns the handle to render with, or `None` when another recorder was installed.
pub fn install() -> Option<&'static PrometheusHandle> {
    HANDLE.get_or_init(install_recorder).as_ref()
}

fn install_recorder() -> Option<PrometheusHandle> {
    let builder = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Full(ENGINE_BATCH_SIZE.into()), BATCH_SIZE_BUCKETS)
        .and_then(|builder| {
            builder.set_buckets_for_metric(Matcher::Full(ENGINE_COMMIT_SECONDS.into()), LATENCY_BUCKETS_SECONDS)
        })
        .and_then(|builder| {
            builder.set_buckets_for_metric(Matcher::Full(DECISION_LATENCY_SECONDS.into()), LATENCY_BUCKETS_SECONDS)
        });
    let handle = match builder.and_then(PrometheusBuilder::install_recorder) {
        Ok(handle) => handle,
        Err(err) => {
            tracing::warn!(%err, "metrics recorder not installed; /metrics will have nothing to show");
            return None;
        }
    };
    describe();
    let upkeep = handle.clone();
    let spawned = std::thread::Builder::new()
        .name("metrics-upkeep".into())
        .spawn(move || {
            loop {
                std::thread::sleep(UPKEEP_INTERVAL);
                upkeep.run_upkeep();
            }
        });
    if let Err(err) = spawned {
        tracing::warn!(%err, "no metrics upkeep thread; histogram samples are folded only when scraped");
    }
    Some(handle)
}

/// Says what each metric means and registers the unlabelled ones at zero, so that they are
/// scraped (with their help text) from the start rather than from their first event, and
/// `rate()` sees the first increase.
fn describe() {
    describe_counter!(HTTP_RESPONSES, "HTTP responses, by status code.");
    describe_histogram!(
        ENGINE_BATCH_SIZE,
        "Commands the lifecycle engine committed in one batch."
    );
    describe_histogram!(
        ENGINE_COMMIT_SECONDS,
        Unit::Seconds,
        "Time to commit one batch of the lifecycle engine."
    );
    describe_gauge!(ENGINE_QUEUE_DEPTH, "Commands waiting for the lifecycle engine.");
    describe_counter!(
        ENGINE_BATCHES_FAILED,
        "Batches of the lifecycle engine whose commit failed."
    );
    describe_histogram!(
        DECISION_LATENCY_SECONDS,
        Unit::Seconds,
        "Time from a decision command's submission to its answer."
    );
    describe_gauge!(WAITING_AGENTS, "Agents long-polling for a decision.");
    describe_gauge!(
        LIVE_STREAM_SUBSCRIBERS,
        "Open live-event streams (console pages, terminals)."
    );
    describe_gauge!(
        CHANNEL_BACKLOG_EVENTS,
        "Events committed to the audit trail that a channel has not delivered yet."
    );
    describe_counter!(
        CHANNEL_DELIVERIES,
        "Attempts to deliver an event to a channel, by outcome (delivered, retried, failed)."
    );

    // Registering a histogram is enough for it to render, with empty buckets.
    for name in [ENGINE_BATCH_SIZE, ENGINE_COMMIT_SECONDS, DECISION_LATENCY_SECONDS] {
        let _registered = histogram!(name);
    }
    counter!(ENGINE_BATCHES_FAILED).increment(0);
    // Increments, not sets: other servers in this process may already have moved them.
    gauge!(ENGINE_QUEUE_DEPTH).increment(0.0);
    gauge!(WAITING_AGENTS).increment(0.0);
    gauge!(LIVE_STREAM_SUBSCRIBERS).increment(0.0);
}

/// Everything recorded so far in Prometheus' text format, or `None` when this process
/// records into someone else's recorder.
pub fn render() -> Option<String> {
    install().map(PrometheusHandle::render)
}

/// Counts one HTTP response.
pub fn http_response(status: u16) {
    install();
    // Codes outside the standard classes would only come from a bug; one label value for
    // them keeps the series count bounded whatever happens.
    let status = if (100..=599).contains(&status) {
        status.to_string()
    } else {
        "other".to_string()
    };
    counter!(HTTP_RESPONSES, "status" => status).increment(1);
}

/// Middleware counting every response by status.
pub async fn count_responses(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    http_response(response.status().as_u16());
    response
}

/// A batch of `commands` committed in `commit`.
pub fn batch_committed(commands: usize, commit: Duration) {
    install();
    histogram!(ENGINE_BATCH_SIZE).record(commands as f64);
    histogram!(ENGINE_COMMIT_SECONDS).record(commit.as_secs_f64());
}

/// A batch whose commit failed.
pub fn batch_failed() {
    install();
    counter!(ENGINE_BATCHES_FAILED).increment(1);
}

/// Commands now waiting for the lifecycle engine.
pub fn queue_depth(depth: usize) {
    install();
    gauge!(ENGINE_QUEUE_DEPTH).set(depth as f64);
}

/// A decision command answered `latency` after it was submitted.
pub fn decision_latency(latency: Duration) {
    install();
    histogram!(DECISION_LATENCY_SECONDS).record(latency.as_secs_f64());
}

/// Channel `channel` has `events` committed after its cursor still to deliver.
pub fn channel_backlog(channel: &str, events: i64) {
    install();
    gauge!(CHANNEL_BACKLOG_EVENTS, "channel" => channel.to_string()).set(events.max(0) as f64);
}

/// One attempt to deliver an event to `channel`: `delivered`, `retried` or `failed`.
pub fn channel_delivery(channel: &str, outcome: &'static str) {
    install();
    counter!(CHANNEL_DELIVERIES, "channel" => channel.to_string(), "outcome" => outcome).increment(1);
}

/// Agents now long-polling.
pub fn waiting_agents(waiting: usize) {
    install();
    gauge!(WAITING_AGENTS).set(waiting as f64);
}

/// Counts one open live-event stream for as long as it is kept; keep it inside the stream.
#[must_use = "the stream is counted only while this is kept"]
pub struct LiveStreamSubscriber(());

impl LiveStreamSubscriber {
    pub fn opened() -> Self {
        install();
        gauge!(LIVE_STREAM_SUBSCRIBERS).increment(1.0);
        Self(())
    }
}

impl Drop for LiveStreamSubscriber {
    fn drop(&mut self) {
        gauge!(LIVE_STREAM_SUBSCRIBERS).decrement(1.0);
    }
}
