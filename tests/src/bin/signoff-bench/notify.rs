//! The notification figures of `tests/bench/ratios.sh` (ARCHITECTURE.md, "Notifications"):
//! deliveries run off the writer, so creations keep their pace with channels configured, and
//! a committed event reaches a webhook receiver soon after.
//!
//!   signoff-bench receiver [--listen ADDR]
//!       Webhook endpoints (any POST under `/hooks/NAME`, answered 204) and Slack's Web API
//!       (any other call, e.g. `/slack/chat.postMessage`, answered
//!       `{"ok":true,"channel":"C1","ts":"1.1"}`) at one address (127.0.0.1:0 unless given);
//!       verifies nothing, counts what arrives. Prints `receiver listening on http://ADDR`;
//!       `GET /count` answers the counts (and the last arrival's time) as JSON.
//!   signoff-bench notify-latency [STORE=sqlite] [RATE=100] [SECONDS=$BENCH_NOTIFY_SECONDS or 20]
//!       A release server (fresh database) with one webhook endpoint at an in-process
//!       receiver; creations sent at RATE per second (open loop) for SECONDS; for each
//!       `request.created` delivery, the time from the creation's answer (the server answers
//!       after the commit), from its sending, and from the event's recorded time (taken just
//!       before the commit) to the delivery's arrival.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;

use signoff_app::Kind;
use signoff_app::wire::PublishedEvent;

use super::ratios::{round3, summary_ms};
use super::*;

/// The latency run's default length, in seconds (`BENCH_NOTIFY_SECONDS` overrides it).
const LATENCY_SECONDS: u64 = 20;
/// Its warm-up at the same rate, not counted.
const LATENCY_WARM_UP: Duration = Duration::from_secs(1);
/// How long deliveries may still arrive after the last creation's answer.
const DELIVERY_GRACE: Duration = Duration::from_secs(30);

// ----- the receiver -----------------------------------------------------------------------

/// What arrived, as `GET /count` shows it.
#[derive(Default)]
struct Tally {
    webhook: u64,
    slack: u64,
    by_path: BTreeMap<String, u64>,
    last_unix_ms: i64,
}

/// One `request.created` delivery's arrival.
#[derive(Clone, Copy)]
struct Arrival {
    at: Instant,
    /// From the event's recorded time (its `timestamp`, wall clock) to the arrival.
    since_recorded_ms: f64,
}

struct Receiver {
    tally: Mutex<Tally>,
    /// Kept in the latency run only: the first `request.created` arrival per request.
    arrivals: Option<Mutex<HashMap<RequestId, Arrival>>>,
}

impl Receiver {
    fn counts(&self) -> Value {
        let tally = self.tally.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        json!({
            "webhook": tally.webhook, "slack": tally.slack,
            "by_path": tally.by_path, "last_unix_ms": tally.last_unix_ms,
        })
    }

    fn arrival(&self, id: &RequestId) -> Option<Arrival> {
        let arrivals = self.arrivals.as_ref()?;
        arrivals
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .get(id)
            .copied()
    }
}

async fn receive(State(receiver): State<Arc<Receiver>>, method: Method, uri: Uri, body: Bytes) -> Response {
    let arrived = Instant::now();
    let path = uri.path();
    if method == Method::GET && path == "/count" {
        return axum::Json(receiver.counts()).into_response();
    }
    // Whatever is not a webhook is a Slack API call, however the API URL is joined.
    let webhook = method == Method::POST && path.starts_with("/hooks/");
    {
        let mut tally = receiver.tally.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if webhook {
            tally.webhook += 1;
        } else {
            tally.slack += 1;
        }
        *tally.by_path.entry(path.to_string()).or_default() += 1;
        tally.last_unix_ms = unix_ms();
    }
    if !webhook {
        return axum::Json(json!({"ok": true, "channel": "C1", "ts": "1.1"})).into_response();
    }
    if let Some(arrivals) = &receiver.arrivals
        && let Ok(event) = serde_json::from_slice::<PublishedEvent>(&body)
        && event.kind == Kind::RequestCreated.as_str()
        && let Some(id) = event.data.request_id
    {
        let since_recorded_ms = (time::OffsetDateTime::now_utc() - event.timestamp).as_seconds_f64() * 1e3;
        arrivals
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .entry(id)
            .or_insert(Arrival {
                at: arrived,
                since_recorded_ms,
            });
    }
    StatusCode::NO_CONTENT.into_response()
}

fn unix_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| since.as_millis() as i64)
}

/// Serves a receiver on `listen`; its base URL.
async fn serve(listen: &str, keep_arrivals: bool) -> Result<(String, Arc<Receiver>)> {
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("listen on {listen}"))?;
    let addr = listener.local_addr()?;
    let receiver = Arc::new(Receiver {
        tally: Mutex::default(),
        arrivals: keep_arrivals.then(Mutex::default),
    });
    let app = Router::new().fallback(receive).with_state(Arc::clone(&receiver));
    tokio::spawn(async move {
        if let Err(err) = axum::serve(listener, app).await {
            eprintln!("the receiver stopped: {err}");
        }
    });
    Ok((format!("http://{addr}"), receiver))
}

/// `signoff-bench receiver [--listen ADDR]`: serves until stopped.
pub async fn receiver(args: &[String]) -> Result<()> {
    let listen = match args {
        [] => "127.0.0.1:0",
        [flag, addr] if flag == "--listen" => addr.as_str(),
        _ => bail!("usage: signoff-bench receiver [--listen ADDR]"),
    };
    let (url, _receiver) = serve(listen, false).await?;
    {
        use std::io::Write as _;
        let mut stdout = std::io::stdout().lock();
        writeln!(stdout, "receiver listening on {url}")?;
        stdout.flush()?;
    }
    tokio::signal::ctrl_c().await.context("wait for Ctrl-C")?;
    Ok(())
}

/// `SIGNOFF_NOTIFY_WEBHOOKS` for endpoints named `names`, each at `receiver/hooks/NAME`.
fn webhooks_env(receiver: &str, names: &[&str]) -> String {
    let secret = format!(
        "whsec_{}",
        base64::engine::general_purpose::STANDARD.encode("signoff-bench-webhook-secret")
    );
    let endpoints: Vec<Value> = names
        .iter()
        .map(|name| json!({"name": name, "url": format!("{receiver}/hooks/{name}"), "secret": secret}))
        .collect();
    Value::Array(endpoints).to_string()
}

// ----- commit → receiver --------------------------------------------------------------------

/// One paced creation.
struct Created {
    sent: Instant,
    answered: Instant,
    outcome: Result<RequestId, String>,
}

/// Creations at `rate` per second for `duration`, each sent when due whatever the others'
/// answers; each timed. Also how late the sender was at most.
async fn paced(
    client: &reqwest::Client,
    base: &str,
    key: &str,
    rate: u64,
    duration: Duration,
    first: usize,
) -> Result<(Vec<Created>, Duration)> {
    ensure!(rate > 0, "the rate must be positive");
    let interval = Duration::from_nanos(1_000_000_000 / rate);
    let total = (duration.as_secs_f64() * rate as f64).round() as usize;
    let url: Arc<str> = format!("{base}/api/v1/requests").into();
    let start = Instant::now() + Duration::from_millis(20);
    let mut tasks = Vec::with_capacity(total);
    let mut late = Duration::ZERO;
    for n in 0..total {
        let due = start + interval * n as u32;
        tokio::time::sleep_until(due.into()).await;
        late = late.max(due.elapsed());
        let request = client
            .post(&*url)
            .bearer_auth(key)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(serde_json::to_vec(&creation_body(0, first + n))?);
        tasks.push(tokio::spawn(async move {
            let sent = Instant::now();
            let outcome = async {
                let bytes = created(request).await?;
                let reply: Value = serde_json::from_slice(&bytes)?;
                let id = reply["id"]
                    .as_str()
                    .context("a created request came back without an id")?;
                Ok(id.parse::<RequestId>()?)
            }
            .await;
            Created {
                sent,
                answered: Instant::now(),
                outcome: outcome.map_err(|err: anyhow::Error| format!("{err:#}")),
            }
        }));
    }
    let mut created = Vec::with_capacity(total);
    for task in join_all(tasks).await {
        created.push(task.context("a creation panicked")?);
    }
    Ok((created, late))
}

/// Waits until every created request's delivery arrived, or `DELIVERY_GRACE` passed.
async fn await_deliveries(receiver: &Receiver, ids: &[RequestId]) {
    let deadline = Instant::now() + DELIVERY_GRACE;
    while Instant::now() < deadline && ids.iter().any(|id| receiver.arrival(id).is_none()) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// `signoff-bench notify-latency [STORE] [RATE] [SECONDS]`: one JSON line.
pub async fn latency(args: &[String]) -> Result<Value> {
    let backend = match args.first().map(String::as_str).unwrap_or("sqlite") {
        "sqlite" => Backend::Sqlite,
        "postgres" => Backend::Postgres,
        other => bail!("`{other}` is not a store: sqlite | postgres"),
    };
    let number = |index: usize, default: u64| -> Result<u64> {
        args.get(index).map_or(Ok(default), |value| {
            value.parse().with_context(|| format!("not a number: {value}"))
        })
    };
    let default_seconds = std::env::var("BENCH_NOTIFY_SECONDS")
        .ok()
        .and_then(|seconds| seconds.parse().ok())
        .unwrap_or(LATENCY_SECONDS);
    let (rate, seconds) = (number(1, 100)?, number(2, default_seconds)?);
    ensure!(rate > 0 && seconds > 0, "rate and seconds must be positive");
    if backend == Backend::Postgres && !postgres_available().await {
        bail!("no Postgres answers at {}", postgres_admin_url());
    }

    let binary = server_binary()?;
    let dir = report_dir(&binary);
    std::fs::create_dir_all(&dir).with_context(|| format!("create {}", dir.display()))?;
    let log = dir.join(format!("notify-latency-{}.log", store_name(backend).to_lowercase()));
    let (receiver_url, receiver) = serve("127.0.0.1:0", true).await?;
    let db = TestDb::new(backend).await;
    let key = create_agent(&binary, &db, "bench").await?;
    let mut command = server_command(&binary, &db);
    command.env("SIGNOFF_NOTIFY_WEBHOOKS", webhooks_env(&receiver_url, &["latency"]));
    let server = ServerProcess::start_command(command, &log).await?;

    let client = http_client(64)?;
    // Connections opened, the store and the channel's reader warm, before the clock starts.
    let (warm, _) = paced(&client, &server.base_url, &key, rate, LATENCY_WARM_UP, 0).await?;
    let warm_ids: Vec<RequestId> = warm.iter().filter_map(|created| created.outcome.clone().ok()).collect();
    await_deliveries(&receiver, &warm_ids).await;

    let (created, late) = paced(
        &client,
        &server.base_url,
        &key,
        rate,
        Duration::from_secs(seconds),
        warm.len(),
    )
    .await?;
    let ids: Vec<RequestId> = created
        .iter()
        .filter_map(|created| created.outcome.clone().ok())
        .collect();
    await_deliveries(&receiver, &ids).await;
    let (status, _) = server.terminate().await?;
    if !status.success() {
        eprintln!("signoff-server exited with {status}; its log: {}", log.display());
    }

    let (mut from_answer, mut from_sent, mut from_recorded, mut calls) = (vec![], vec![], vec![], vec![]);
    let (mut errors, mut first_error, mut missing, mut before_answer) = (0, None, 0, 0);
    for one in &created {
        let id = match &one.outcome {
            Ok(id) => id,
            Err(err) => {
                errors += 1;
                first_error.get_or_insert_with(|| err.clone());
                continue;
            }
        };
        calls.push((one.answered - one.sent).as_secs_f64() * 1e3);
        let Some(arrival) = receiver.arrival(id) else {
            missing += 1;
            continue;
        };
        // The delivery may arrive before the answer does: negative.
        let signed_ms = |from: Instant| {
            if arrival.at >= from {
                (arrival.at - from).as_secs_f64() * 1e3
            } else {
                -((from - arrival.at).as_secs_f64() * 1e3)
            }
        };
        let answer_to_arrival = signed_ms(one.answered);
        before_answer += usize::from(answer_to_arrival < 0.0);
        from_answer.push(answer_to_arrival);
        from_sent.push(signed_ms(one.sent));
        from_recorded.push(arrival.since_recorded_ms);
    }
    for samples in [&mut from_answer, &mut from_sent, &mut from_recorded, &mut calls] {
        samples.sort_unstable_by(f64::total_cmp);
    }
    Ok(json!({
        "store": store_name(backend), "rate": rate, "seconds": seconds,
        "created": ids.len(), "delivered": from_answer.len(), "missing": missing,
        "errors": errors, "first_error": first_error,
        "answer_to_delivery": summary_ms(&from_answer),
        "sent_to_delivery": summary_ms(&from_sent),
        "recorded_to_delivery": summary_ms(&from_recorded),
        "create_call": summary_ms(&calls),
        "delivered_before_answer": before_answer,
        "sender_late_max_ms": round3(late.as_secs_f64() * 1e3),
        "receiver": receiver.counts(),
    }))
}
