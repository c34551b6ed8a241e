//! Without a subcommand, Signoff's own report: request creations per second,
//! decision-to-waiting-agent wake-up latency and the memory of 10,000 waiting agents, against
//! a release build on 127.0.0.1, on SQLite and (when one answers) Postgres. Prints a Markdown
//! report and writes it to `target/bench/report.md`.
//!
//! The real `signoff-server` binary (next to this one in `target/release`) serves the
//! creation, cancel and 10,000-waiter runs. Reviewer decisions over HTTP need SSO, so the
//! decision wake-up is measured through the service layer of a server built in this
//! process (the same release code, the same HTTP path for the waiting agent).
//!
//! With a subcommand, it is one instrument of `tests/bench/ratios.sh` (`just bench`), which
//! measures Signoff beside the reference baseline and prints the ratios; each prints one
//! JSON line (or, `tokens` and `seed`, one value a line) on stdout:
//!
//!   signoff-bench tokens DATABASE_URL N            N reviewer terminal tokens, inserted directly
//!   signoff-bench seed URL KEY N BODY_FILE [WHO]   N pending requests (on behalf of WHO); their ids
//!   signoff-bench wake URL KEY TOKEN [N=1000]      decision (HTTP, terminal token) → waiting agent
//!   signoff-bench open-loop URL KEY BODY_FILE [RATE=1000] [SECONDS=60] [CONNECTIONS=64]
//!   signoff-bench hold URL KEY PID IDS_FILE        park one long-poll per id, read the server's RSS
//!   signoff-bench receiver [--listen ADDR]         a webhook and Slack receiver that counts (notify.rs)
//!   signoff-bench notify-latency [STORE] [RATE=100] [SECONDS=20]   commit → webhook receiver

use std::fmt::Write as _;
use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{ExitCode, ExitStatus, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail, ensure};
use futures_util::future::join_all;
use serde_json::{Value, json};
use sqlx::Connection;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;

use signoff_app::wire::DecisionInput;
use signoff_app::{Channel, RequestId, Verdict};
use signoff_tests::db::{postgres_admin_url, postgres_available};
use signoff_tests::fixtures::reviewer;
use signoff_tests::{Backend, TestDb, TestServer};

/// Concurrent HTTP/1.1 connections creating requests, one client (one connection) each;
/// `SIGNOFF_BENCH_CONNECTIONS` overrides it when exploring.
const CREATE_CONNECTIONS: usize = 64;

fn create_connections() -> usize {
    std::env::var("SIGNOFF_BENCH_CONNECTIONS")
        .ok()
        .and_then(|n| n.parse().ok())
        .filter(|&n| (1..=1024).contains(&n))
        .unwrap_or(CREATE_CONNECTIONS)
}
const WARM_UP: Duration = Duration::from_secs(1);
const MEASURE: Duration = Duration::from_secs(10);
/// Waits measured per wake-up line, in batches of concurrent waiters decided one by one.
const WAITS: usize = 1_000;
const WAIT_BATCH: usize = 50;
/// Concurrent waiting agents, each on its own connection.
const MANY_WAITERS: usize = 10_000;
/// How many of them are cancelled (and must wake) before the server is stopped.
const CANCEL_SAMPLE: usize = 100;
/// Connections being opened at once (below the listener's accept backlog of 1024).
const CONNECTING_AT_ONCE: usize = 256;
/// Long enough that no wait ends by itself while the run lasts.
const LONG_WAIT_S: u64 = 120;
/// What a phase left out by `SIGNOFF_BENCH_PHASES` shows.
const NOT_SELECTED: &str = "not run (SIGNOFF_BENCH_PHASES)";

/// Whether `SIGNOFF_BENCH_<what>` (a comma-separated list; all when unset) names `item`.
/// `SIGNOFF_BENCH_STORES=sqlite,postgres` and `SIGNOFF_BENCH_PHASES=create,decide,many`
/// narrow a run when profiling; a plain run runs everything.
fn selected(what: &str, item: &str) -> bool {
    std::env::var(format!("SIGNOFF_BENCH_{what}")).map_or(true, |list| {
        list.split(',').any(|entry| entry.trim().eq_ignore_ascii_case(item))
    })
}

#[path = "signoff-bench/notify.rs"]
mod notify;

#[tokio::main]
async fn main() -> ExitCode {
    if let Err(err) = rlimit::increase_nofile_limit(u64::MAX) {
        eprintln!("could not raise the open-files limit: {err}");
    }
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Some(command) = args.first() {
        return match ratios::run(command, &args[1..]).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(err) => {
                eprintln!("signoff-bench {command}: {err:#}");
                ExitCode::FAILURE
            }
        };
    }
    let started = Instant::now();
    let binary = match server_binary() {
        Ok(binary) => binary,
        Err(err) => {
            eprintln!("signoff-bench: {err:#}");
            return ExitCode::FAILURE;
        }
    };
    let context = machine_context(&binary).await;
    eprintln!("{context}");

    let mut stores = Vec::new();
    for backend in [Backend::Sqlite, Backend::Postgres] {
        if !selected("STORES", &store_name(backend).to_lowercase()) {
            continue;
        }
        if backend == Backend::Postgres && !postgres_available().await {
            stores.push(StoreReport::skipped(
                backend,
                format!("no Postgres answers at {}", postgres_admin_url()),
            ));
            continue;
        }
        stores.push(bench_store(&binary, backend, &report_dir(&binary)).await);
    }

    let report = render(&context, &stores, started.elapsed());
    println!("{report}");
    let path = report_dir(&binary).join("report.md");
    match path
        .parent()
        .map(std::fs::create_dir_all)
        .transpose()
        .and_then(|_| std::fs::write(&path, &report))
    {
        Ok(()) => eprintln!("report written to {}", path.display()),
        Err(err) => eprintln!("could not write {}: {err}", path.display()),
    }
    if stores.iter().any(StoreReport::failed) {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

// ----- one store -------------------------------------------------------------------------

struct StoreReport {
    backend: Backend,
    version: String,
    skipped: Option<String>,
    /// What the servers for this store wrote to stderr.
    log: Option<ServerLog>,
    create: Result<CreateRun, String>,
    decide_wake: Result<WakeRun, String>,
    cancel_wake: Result<WakeRun, String>,
    many: Result<ManyRun, String>,
}

impl StoreReport {
    fn skipped(backend: Backend, why: String) -> Self {
        StoreReport {
            backend,
            version: String::new(),
            skipped: Some(why),
            log: None,
            create: Err("skipped".into()),
            decide_wake: Err("skipped".into()),
            cancel_wake: Err("skipped".into()),
            many: Err("skipped".into()),
        }
    }

    fn failed(&self) -> bool {
        fn failed<T>(result: &Result<T, String>) -> bool {
            result.as_ref().is_err_and(|err| err != NOT_SELECTED)
        }
        self.skipped.is_none()
            && (failed(&self.create) || failed(&self.decide_wake) || failed(&self.cancel_wake) || failed(&self.many))
    }
}

fn store_name(backend: Backend) -> &'static str {
    match backend {
        Backend::Sqlite => "SQLite",
        Backend::Postgres => "Postgres",
    }
}

fn keep<T>(phase: &str, backend: Backend, result: Result<T>) -> Result<T, String> {
    result.map_err(|err| {
        let message = format!("{err:#}");
        eprintln!("{} {phase} failed: {message}", store_name(backend));
        message
    })
}

async fn bench_store(binary: &Path, backend: Backend, dir: &Path) -> StoreReport {
    let name = store_name(backend);
    let log = dir.join(format!("server-{}.log", name.to_lowercase()));
    if let Err(err) = std::fs::create_dir_all(dir).and_then(|()| std::fs::write(&log, "")) {
        eprintln!("cannot write {}: {err}", log.display());
    }
    let version = store_version(backend)
        .await
        .unwrap_or_else(|err| format!("? ({err:#})"));
    eprintln!("== {name} {version}");

    // A fresh database and server: creations per second, then the cancel wake-up.
    eprintln!(
        "{name}: creations over {} connections ({WARM_UP:?} warm-up, {MEASURE:?} measured)",
        create_connections()
    );
    let (create, cancel_wake) = if !selected("PHASES", "create") {
        (Err(NOT_SELECTED.into()), Err(NOT_SELECTED.into()))
    } else {
        match creation_and_cancel(binary, backend, &log).await {
            Ok((create, cancel)) => (Ok(create), keep("wake-up on cancel", backend, cancel)),
            Err(err) => (
                keep("creation", backend, Err(err)),
                Err("not run: the creation run failed".into()),
            ),
        }
    };

    let decide_wake = if selected("PHASES", "decide") {
        eprintln!("{name}: wake-up on decision (in-process service), {WAITS} waits");
        // On its own task: the harness panics when a server does not build.
        let decided = tokio::spawn(decision_wakeups(backend)).await;
        keep(
            "wake-up on decision",
            backend,
            decided.unwrap_or_else(|panicked| Err(anyhow!("the in-process server failed: {panicked}"))),
        )
    } else {
        Err(NOT_SELECTED.into())
    };

    let many = if selected("PHASES", "many") {
        eprintln!("{name}: {MANY_WAITERS} concurrent waiting agents");
        keep("many waiters", backend, many_waiters(binary, backend, &log).await)
    } else {
        Err(NOT_SELECTED.into())
    };

    StoreReport {
        backend,
        version,
        skipped: None,
        log: ServerLog::read(&log),
        create,
        decide_wake,
        cancel_wake,
        many,
    }
}

async fn creation_and_cancel(binary: &Path, backend: Backend, log: &Path) -> Result<(CreateRun, Result<WakeRun>)> {
    let db = TestDb::new(backend).await;
    let key = create_agent(binary, &db, "bench").await?;
    let server = ServerProcess::start(binary, &db, log).await?;
    let create = create_load(
        &server,
        &key,
        Until::Window {
            warm_up: WARM_UP,
            measure: MEASURE,
        },
    )
    .await;
    let cancel = match &create {
        Ok(_) => {
            eprintln!(
                "{}: wake-up on cancel (real binary), {WAITS} waits",
                store_name(backend)
            );
            cancel_wakeups(&server, &key).await
        }
        Err(_) => Err(anyhow!("not run")),
    };
    let (status, _) = server.terminate().await?;
    ensure!(status.success(), "signoff-server exited with {status}");
    Ok((create?, cancel))
}

// ----- the server binary -----------------------------------------------------------------

/// `signoff-server` from the same build as this program (`target/release`).
fn server_binary() -> Result<PathBuf> {
    let exe = std::env::current_exe().context("where this program is")?;
    let binary = exe
        .parent()
        .context("this program has no directory")?
        .join("signoff-server");
    ensure!(
        binary.is_file(),
        "{} is missing: build it with `cargo build --release -p signoff-server -p signoff-tests --bins` (`just bench` does)",
        binary.display()
    );
    Ok(binary)
}

/// `target/bench`, next to the profile directory this program runs from.
fn report_dir(binary: &Path) -> PathBuf {
    binary
        .parent()
        .and_then(Path::parent)
        .map(|target| target.join("bench"))
        .unwrap_or_else(|| PathBuf::from("bench"))
}

/// The harness's server command, with what the benchmark needs on top.
fn server_command(binary: &Path, db: &TestDb) -> Command {
    let mut command = signoff_tests::server_command(binary, db);
    // One agent holds every one of the 10,000 waits measured here.
    command.env("SIGNOFF_MAX_WAITS_PER_AGENT", "100000");
    // Allocator experiments (e.g. MALLOC_ARENA_MAX=2, MIMALLOC_PURGE_DELAY=0) reach the server.
    for (name, value) in
        std::env::vars().filter(|(name, _)| name.starts_with("MALLOC_") || name.starts_with("MIMALLOC_"))
    {
        command.env(name, value);
    }
    command
}

/// `signoff-server agents create --name NAME`: the key is the last line it prints.
async fn create_agent(binary: &Path, db: &TestDb, name: &str) -> Result<String> {
    let output = server_command(binary, db)
        .args(["agents", "create", "--name", name])
        .output()
        .await
        .context("run signoff-server agents create")?;
    ensure!(
        output.status.success(),
        "agents create failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .last()
        .map(|key| key.trim().to_string())
        .filter(|key| !key.is_empty())
        .context("agents create printed no key")
}

/// The release binary serving on 127.0.0.1:0, started by the harness.
struct ServerProcess {
    base_url: String,
    addr: SocketAddr,
    pid: u32,
    child: Child,
}

impl ServerProcess {
    /// Starts the server; its log (stderr) is appended to `log`.
    async fn start(binary: &Path, db: &TestDb, log: &Path) -> Result<ServerProcess> {
        Self::start_command(server_command(binary, db), log).await
    }

    /// As [`ServerProcess::start`], from a [`server_command`] with more environment on top.
    async fn start_command(command: Command, log: &Path) -> Result<ServerProcess> {
        let stderr = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .with_context(|| format!("open {}", log.display()))?;
        let server = signoff_tests::ServerProcess::launch(command, Stdio::from(stderr))
            .await
            .map_err(|err| anyhow!(err))?;
        let pid = server.pid().context("signoff-server has no pid")?;
        Ok(ServerProcess {
            base_url: server.base_url,
            addr: server.addr,
            pid,
            child: server.child,
        })
    }

    fn send_sigterm(&self) -> Result<()> {
        let status = std::process::Command::new("kill")
            .args(["-TERM", &self.pid.to_string()])
            .status()
            .context("run kill")?;
        ensure!(status.success(), "kill -TERM {} failed", self.pid);
        Ok(())
    }

    /// SIGTERM, then waits for the exit (at most 30 s); returns the status and how long.
    async fn terminate(mut self) -> Result<(ExitStatus, Duration)> {
        let sent = Instant::now();
        self.send_sigterm()?;
        self.wait_exit(sent).await
    }

    async fn wait_exit(&mut self, since: Instant) -> Result<(ExitStatus, Duration)> {
        let status = tokio::time::timeout(Duration::from_secs(30), self.child.wait())
            .await
            .context("signoff-server did not exit within 30 s of SIGTERM")??;
        Ok((status, since.elapsed()))
    }
}

/// Sends a creation and answers its body, or says why it was not created.
async fn created(request: reqwest::RequestBuilder) -> Result<axum::body::Bytes> {
    let response = request.send().await?;
    let status = response.status();
    let bytes = response.bytes().await?;
    ensure!(
        status == reqwest::StatusCode::CREATED,
        "HTTP {status}: {}",
        String::from_utf8_lossy(&bytes[..bytes.len().min(200)])
    );
    Ok(bytes)
}

fn http_client(connections: usize) -> Result<reqwest::Client> {
    reqwest::Client::builder()
        .http1_only()
        .pool_max_idle_per_host(connections)
        .timeout(Duration::from_secs(30))
        .build()
        .context("build HTTP client")
}

// ----- creations per second --------------------------------------------------------------

enum Until {
    /// Run for `warm_up + measure`; count what completes in the measured window.
    Window { warm_up: Duration, measure: Duration },
    /// Create exactly this many requests and keep their ids.
    Count(usize),
}

struct CreateRun {
    created: usize,
    errors: usize,
    first_error: Option<String>,
    window: Duration,
    latencies: Vec<Duration>,
    ids: Vec<String>,
    connections: usize,
    /// CPU the server, this load generator and the whole machine used in the window,
    /// in cores.
    server_cores: f64,
    client_cores: f64,
    machine_cores: f64,
}

impl CreateRun {
    fn per_second(&self) -> f64 {
        self.created as f64 / self.window.as_secs_f64()
    }
}

#[derive(Default)]
struct WorkerRun {
    created: usize,
    errors: usize,
    first_error: Option<String>,
    latencies: Vec<Duration>,
    ids: Vec<String>,
}

/// A realistic request: who, why, labels, the exact payload and a before/after diff.
fn creation_body(worker: usize, n: usize) -> Value {
    let version = format!("1.{}.{}", 5 + worker % 7, n);
    json!({
        "action": "deploy.service",
        "resource": format!("k8s://prod/payments-api-{}", worker % 8),
        "title": format!("Deploy payments-api {version}"),
        "reason": "Release train: fixes the refund rounding bug (PAY-1432) and raises the \
                   connection pool for the settlement batch; canary was green for 2 h.",
        "labels": {"env": "prod", "team": "payments", "region": "eu-west-1", "risk": "medium"},
        "payload": {
            "image": format!("registry.example.com/payments-api:{version}"),
            "replicas": 6,
            "strategy": "rolling",
            "max_unavailable": 1,
            "command": ["kubectl", "rollout", "restart", "deployment/payments-api"]
        },
        "diff": {
            "before": {
                "image": "registry.example.com/payments-api:1.4.2",
                "replicas": 4,
                "env": {"DB_POOL_SIZE": "20", "LOG_LEVEL": "info", "REFUNDS_V2": "false"}
            },
            "after": {
                "image": format!("registry.example.com/payments-api:{version}"),
                "replicas": 6,
                "env": {"DB_POOL_SIZE": "40", "LOG_LEVEL": "info", "REFUNDS_V2": "true"}
            }
        },
        "context": {"ticket": "PAY-1432", "trace": format!("https://traces.example.com/t/{worker}-{n}")},
        "on_behalf_of": "reese@example.com"
    })
}

async fn create_load(server: &ServerProcess, key: &str, until: Until) -> Result<CreateRun> {
    let start = Instant::now();
    let (measure_from, stop_at, window, quota) = match until {
        Until::Window { warm_up, measure } => (start + warm_up, Some(start + warm_up + measure), measure, None),
        Until::Count(count) => (start, None, Duration::ZERO, Some(count)),
    };
    let keep_ids = quota.is_some();
    let quota = Arc::new(AtomicUsize::new(quota.unwrap_or(usize::MAX)));
    // Bounded even in count mode.
    let hard_stop = stop_at.unwrap_or(start + Duration::from_secs(120));
    let url: Arc<str> = format!("{}/api/v1/requests", server.base_url).into();
    let key: Arc<str> = key.into();

    // Midway through the window, count the connections really open to the server; and
    // how much CPU the server and this program use over the window.
    let port = server.addr.port();
    let pid = server.pid;
    let sampler = tokio::spawn(async move {
        let cpu = || -> Result<(u64, u64, u64)> {
            Ok((cpu_ticks(pid)?, cpu_ticks(std::process::id())?, machine_busy_ticks()?))
        };
        tokio::time::sleep_until(measure_from.into()).await;
        let before = cpu()?;
        tokio::time::sleep_until((measure_from + window / 2).into()).await;
        let connections = tcp_sockets(port)?.client_side;
        tokio::time::sleep_until((measure_from + window).into()).await;
        let after = cpu()?;
        let cores = |ticks: u64| ticks as f64 / clock_ticks_per_second() / window.as_secs_f64();
        anyhow::Ok((
            connections,
            cores(after.0 - before.0),
            cores(after.1 - before.1),
            cores(after.2 - before.2),
        ))
    });

    let connections = create_connections();
    let mut workers = Vec::with_capacity(connections);
    for worker in 0..connections {
        let client = http_client(1)?;
        let url = Arc::clone(&url);
        let key = Arc::clone(&key);
        let quota = Arc::clone(&quota);
        workers.push(tokio::spawn(async move {
            let mut run = WorkerRun::default();
            for n in 0.. {
                if Instant::now() >= hard_stop
                    || quota
                        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |left| left.checked_sub(1))
                        .is_err()
                {
                    break;
                }
                let body = serde_json::to_vec(&creation_body(worker, n)).unwrap_or_default();
                let sent = Instant::now();
                let outcome = async {
                    let response = client
                        .post(&*url)
                        .bearer_auth(&*key)
                        .header(reqwest::header::CONTENT_TYPE, "application/json")
                        .body(body)
                        .send()
                        .await?;
                    let status = response.status();
                    let bytes = response.bytes().await?;
                    ensure!(
                        status == reqwest::StatusCode::CREATED,
                        "HTTP {status}: {}",
                        String::from_utf8_lossy(&bytes[..bytes.len().min(200)])
                    );
                    Ok(bytes)
                }
                .await;
                let done = Instant::now();
                if done < measure_from || stop_at.is_some_and(|stop| done > stop) {
                    continue;
                }
                match outcome {
                    Ok(bytes) => {
                        run.created += 1;
                        run.latencies.push(done - sent);
                        if keep_ids {
                            let id = serde_json::from_slice::<Value>(&bytes)
                                .ok()
                                .and_then(|body| body["id"].as_str().map(String::from));
                            match id {
                                Some(id) => run.ids.push(id),
                                None => bail!("a created request came back without an id"),
                            }
                        }
                    }
                    Err(err) => {
                        run.errors += 1;
                        run.first_error.get_or_insert_with(|| format!("{err:#}"));
                    }
                }
            }
            Ok(run)
        }));
    }

    let mut total = CreateRun {
        created: 0,
        errors: 0,
        first_error: None,
        window,
        latencies: Vec::new(),
        ids: Vec::new(),
        connections: 0,
        server_cores: 0.0,
        client_cores: 0.0,
        machine_cores: 0.0,
    };
    for worker in join_all(workers).await {
        let run = worker.context("creation worker panicked")??;
        total.created += run.created;
        total.errors += run.errors;
        total.latencies.extend(run.latencies);
        total.ids.extend(run.ids);
        if total.first_error.is_none() {
            total.first_error = run.first_error;
        }
    }
    if keep_ids {
        total.window = start.elapsed();
    }
    if window.is_zero() {
        sampler.abort();
        total.connections = connections;
    } else {
        (
            total.connections,
            total.server_cores,
            total.client_cores,
            total.machine_cores,
        ) = sampler.await.context("sampler")??;
    }
    total.latencies.sort_unstable();
    Ok(total)
}

// ----- wake-up latency -------------------------------------------------------------------

struct WakeRun {
    /// Trigger (decision or cancel) started → the waiter's whole response read.
    latencies: Vec<Duration>,
    /// How long the trigger call itself took.
    triggers: Vec<Duration>,
    /// The trigger call's answer → the waiter's whole response read, in ms; negative when
    /// the waiter was answered first.
    after_trigger_ms: Vec<f64>,
    /// The decision's recorded time → the waiter's whole response read, in ms (wall clock).
    since_decided_ms: Vec<f64>,
}

/// An agent talking to a server over HTTP.
struct Agent {
    base_url: String,
    key: String,
    http: reqwest::Client,
}

impl Agent {
    async fn submit(&self, worker: usize, n: usize) -> Result<String> {
        let response = self
            .http
            .post(format!("{}/api/v1/requests", self.base_url))
            .bearer_auth(&self.key)
            .json(&creation_body(worker, n))
            .send()
            .await?;
        let status = response.status();
        let body: Value = response.json().await?;
        ensure!(status == reqwest::StatusCode::CREATED, "create: HTTP {status}: {body}");
        body["id"]
            .as_str()
            .map(String::from)
            .context("a created request came back without an id")
    }

    /// Long-polls `id`; returns when the whole answer is read, the request's status, and
    /// the milliseconds from the decision's recorded time (`decided_at`, taken in the
    /// engine's batch, before its commit; whole ms) to the answer's end.
    fn spawn_wait(&self, id: &str) -> JoinHandle<Result<(Instant, String, Option<f64>)>> {
        let request = self
            .http
            .get(format!("{}/api/v1/requests/{id}/wait?timeout_s=60", self.base_url))
            .bearer_auth(&self.key)
            .timeout(Duration::from_secs(70));
        tokio::spawn(async move {
            let response = request.send().await?;
            let status = response.status();
            let bytes = response.bytes().await?;
            let at = Instant::now();
            let wall = time::OffsetDateTime::now_utc();
            ensure!(status == reqwest::StatusCode::OK, "wait: HTTP {status}");
            let body: Value = serde_json::from_slice(&bytes)?;
            let since_decided = body["decided_at"]
                .as_str()
                .and_then(|at| time::OffsetDateTime::parse(at, &time::format_description::well_known::Rfc3339).ok())
                .map(|decided| (wall - decided).as_seconds_f64() * 1e3);
            Ok((
                at,
                body["status"].as_str().unwrap_or_default().to_string(),
                since_decided,
            ))
        })
    }
}

/// `waits` waits in batches of `WAIT_BATCH` concurrent waiters: each batch is created,
/// its waiters are started, `in_flight` confirms they are parked, then `trigger` ends
/// each request in turn and the time until its waiter's answer is recorded.
async fn wake_batches<R, T>(
    agent: &Agent,
    waits: usize,
    in_flight: impl Fn(usize) -> R,
    trigger: impl Fn(String) -> T,
    expect: &str,
) -> Result<WakeRun>
where
    R: Future<Output = Result<()>>,
    T: Future<Output = Result<()>>,
{
    let started = Instant::now();
    let mut run = WakeRun {
        latencies: Vec::with_capacity(waits),
        triggers: Vec::with_capacity(waits),
        after_trigger_ms: Vec::with_capacity(waits),
        since_decided_ms: Vec::with_capacity(waits),
    };
    let limit = Duration::from_secs(60).max(Duration::from_millis(60 * waits as u64));
    for batch in 0..waits.div_ceil(WAIT_BATCH) {
        ensure!(started.elapsed() < limit, "wake-up batches took more than {limit:?}");
        let ids = join_all((0..WAIT_BATCH).map(|n| agent.submit(1000 + batch, n)))
            .await
            .into_iter()
            .collect::<Result<Vec<_>>>()?;
        let waiters: Vec<_> = ids.iter().map(|id| agent.spawn_wait(id)).collect();
        in_flight(WAIT_BATCH).await?;
        ensure!(
            waiters.iter().all(|waiter| !waiter.is_finished()),
            "a waiter returned before its request was decided"
        );
        let mut triggered = Vec::with_capacity(WAIT_BATCH);
        for id in &ids {
            let t0 = Instant::now();
            trigger(id.clone()).await?;
            let took = t0.elapsed();
            run.triggers.push(took);
            triggered.push((t0, t0 + took));
        }
        let answers = tokio::time::timeout(Duration::from_secs(10), join_all(waiters))
            .await
            .context("waiters did not wake within 10 s")?;
        for (answer, (t0, answered)) in answers.into_iter().zip(triggered) {
            let (at, status, since_decided) = answer.context("waiter panicked")??;
            ensure!(status == expect, "a waiter woke to `{status}`, not `{expect}`");
            run.latencies.push(at.saturating_duration_since(t0));
            run.since_decided_ms.extend(since_decided);
            run.after_trigger_ms.push(if at >= answered {
                (at - answered).as_secs_f64() * 1e3
            } else {
                -(answered - at).as_secs_f64() * 1e3
            });
        }
    }
    run.latencies.sort_unstable();
    run.triggers.sort_unstable();
    run.after_trigger_ms.sort_unstable_by(f64::total_cmp);
    run.since_decided_ms.sort_unstable_by(f64::total_cmp);
    Ok(run)
}

/// Decisions through the service layer of a server in this process; the agent waits
/// over HTTP.
async fn decision_wakeups(backend: Backend) -> Result<WakeRun> {
    let server = TestServer::start(backend).await;
    let (_, key, _) = server
        .service
        .issue_agent_key("bench-waiter", None, None)
        .await
        .map_err(|err| anyhow!("issue key: {err}"))?;
    let agent = Agent {
        base_url: server.base_url.clone(),
        key,
        http: http_client(WAIT_BATCH * 2)?,
    };
    let service = Arc::clone(&server.service);
    let reviewer = reviewer(1);
    let approve = DecisionInput {
        verdict: Verdict::Approve,
        comment: String::new(),
        break_glass: false,
        grant: None,
    };
    let run = wake_batches(
        &agent,
        WAITS,
        |count| {
            let service = Arc::clone(&service);
            async move {
                let deadline = Instant::now() + Duration::from_secs(10);
                while service.waiting_agents() < count {
                    ensure!(
                        Instant::now() < deadline,
                        "only {} of {count} waiters registered within 10 s",
                        service.waiting_agents()
                    );
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
                // Registered before their first look at the request: let them park.
                tokio::time::sleep(Duration::from_millis(20)).await;
                Ok(())
            }
        },
        |id| {
            let service = Arc::clone(&service);
            let reviewer = reviewer.clone();
            let approve = approve.clone();
            async move {
                let id: RequestId = id.parse().map_err(|_| anyhow!("bad id {id}"))?;
                service
                    .decide(&reviewer, id, &approve, Channel::Api)
                    .await
                    .map_err(|err| anyhow!("decide: {err}"))?;
                Ok(())
            }
        },
        "approved",
    )
    .await;
    drop(agent);
    server.stop().await;
    run
}

/// The agent's own cancel (same event bus) as the trigger, against the real binary.
async fn cancel_wakeups(server: &ServerProcess, key: &str) -> Result<WakeRun> {
    let agent = Agent {
        base_url: server.base_url.clone(),
        key: key.to_string(),
        http: http_client(WAIT_BATCH * 2)?,
    };
    let canceller = http_client(1)?;
    wake_batches(
        &agent,
        WAITS,
        // No waiter count outside the process: give the batch time to park.
        |_| async {
            tokio::time::sleep(Duration::from_millis(100)).await;
            Ok(())
        },
        |id| {
            let request = canceller
                .post(format!("{}/api/v1/requests/{id}/cancel", server.base_url))
                .bearer_auth(key);
            async move {
                let response = request.send().await?;
                let status = response.status();
                response.bytes().await?;
                ensure!(status == reqwest::StatusCode::OK, "cancel: HTTP {status}");
                Ok(())
            }
        },
        "cancelled",
    )
    .await
}

// ----- 10,000 waiting agents -------------------------------------------------------------

struct ManyRun {
    created_per_second: f64,
    open_time: Duration,
    established: usize,
    returned_early: usize,
    rss_before_kb: u64,
    rss_kb: u64,
    hwm_kb: u64,
    sample_woke: usize,
    sample_max: Duration,
    remaining: usize,
    answered_on_shutdown: usize,
    answered_within: Duration,
    exit: String,
}

/// When a raw long-poll was answered, its HTTP status and the request's status.
type RawAnswer = (Instant, u16, String);

/// One long-poll on its own raw HTTP/1.1 connection.
async fn raw_wait(
    addr: SocketAddr,
    request: Arc<str>,
    connecting: Arc<Semaphore>,
    sent: Arc<AtomicUsize>,
    answered: Arc<AtomicUsize>,
) -> Result<RawAnswer> {
    let permit = connecting.acquire_owned().await?;
    let mut stream = TcpStream::connect(addr).await.context("connect")?;
    stream.write_all(request.as_bytes()).await.context("send")?;
    drop(permit);
    sent.fetch_add(1, Ordering::Relaxed);
    let mut reply = Vec::new();
    tokio::time::timeout(Duration::from_secs(LONG_WAIT_S + 30), stream.read_to_end(&mut reply))
        .await
        .context("no answer")?
        .context("read")?;
    let at = Instant::now();
    answered.fetch_add(1, Ordering::Relaxed);
    let text = String::from_utf8_lossy(&reply);
    let (head, body) = text.split_once("\r\n\r\n").context("no complete answer")?;
    let code = head
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .context("no status line")?;
    let status = serde_json::from_str::<Value>(body)
        .ok()
        .and_then(|body| body["status"].as_str().map(String::from))
        .unwrap_or_default();
    Ok((at, code, status))
}

async fn many_waiters(binary: &Path, backend: Backend, log: &Path) -> Result<ManyRun> {
    let (open_files, _) = rlimit::getrlimit(rlimit::Resource::NOFILE).context("open-files limit")?;
    ensure!(
        open_files >= MANY_WAITERS as u64 + 1_000,
        "this process may open only {open_files} files; {MANY_WAITERS} waiters need more (raise the hard limit, `ulimit -Hn`)"
    );
    let db = TestDb::new(backend).await;
    let key = create_agent(binary, &db, "bench-many").await?;
    let mut server = ServerProcess::start(binary, &db, log).await?;

    let created = create_load(&server, &key, Until::Count(MANY_WAITERS)).await?;
    ensure!(
        created.ids.len() == MANY_WAITERS,
        "created {} of {MANY_WAITERS} requests ({} errors: {})",
        created.ids.len(),
        created.errors,
        created.first_error.as_deref().unwrap_or("-")
    );
    let rss_before_kb = memory(server.pid)?.0;

    // Open every long-poll, each on its own connection.
    let opened = Instant::now();
    let connecting = Arc::new(Semaphore::new(CONNECTING_AT_ONCE));
    let sent = Arc::new(AtomicUsize::new(0));
    let answered = Arc::new(AtomicUsize::new(0));
    let mut waiters: Vec<Option<JoinHandle<Result<RawAnswer>>>> = created
        .ids
        .iter()
        .map(|id| {
            let request: Arc<str> = format!(
                "GET /api/v1/requests/{id}/wait?timeout_s={LONG_WAIT_S} HTTP/1.1\r\n\
                 Host: {}\r\nAuthorization: Bearer {key}\r\nConnection: close\r\n\r\n",
                server.addr
            )
            .into();
            Some(tokio::spawn(raw_wait(
                server.addr,
                request,
                Arc::clone(&connecting),
                Arc::clone(&sent),
                Arc::clone(&answered),
            )))
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(60);
    while sent.load(Ordering::Relaxed) < MANY_WAITERS {
        if Instant::now() > deadline || waiters.iter().flatten().any(JoinHandle::is_finished) {
            // A finished task here is a failed connect or an early answer.
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let open_time = opened.elapsed();
    ensure!(
        sent.load(Ordering::Relaxed) == MANY_WAITERS,
        "only {} of {MANY_WAITERS} waits could be sent within 60 s ({} answered)",
        sent.load(Ordering::Relaxed),
        answered.load(Ordering::Relaxed)
    );

    // In flight: every connection accepted, every request read, the server idle.
    let port = server.addr.port();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut cpu = cpu_ticks(server.pid)?;
    let established = loop {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let sockets = tcp_sockets(port)?;
        let now_cpu = cpu_ticks(server.pid)?;
        let idle = now_cpu.saturating_sub(cpu) <= 1;
        cpu = now_cpu;
        if sockets.server_side >= MANY_WAITERS && sockets.server_unread == 0 && idle {
            break sockets.server_side;
        }
        ensure!(
            Instant::now() < deadline,
            "waiters not settled within 30 s: {} connections accepted, {} bytes unread, server {}",
            sockets.server_side,
            sockets.server_unread,
            if idle { "idle" } else { "busy" }
        );
    };
    let returned_early = answered.load(Ordering::Relaxed);
    ensure!(
        returned_early == 0,
        "{returned_early} waits returned before their timeout"
    );
    let (rss_kb, hwm_kb) = memory(server.pid)?;
    eprintln!(
        "{}: {MANY_WAITERS} waiters in flight after {open_time:?}; server RSS {} MB (peak {} MB)",
        store_name(backend),
        rss_kb / 1024,
        hwm_kb / 1024
    );

    // Cancel a sample: those waiters, and only those, wake.
    let step = MANY_WAITERS / CANCEL_SAMPLE;
    let sample: Vec<usize> = (0..CANCEL_SAMPLE).map(|n| n * step).collect();
    let canceller = http_client(16)?;
    let t0 = Instant::now();
    let cancels = join_all(sample.iter().map(|&index| {
        canceller
            .post(format!(
                "{}/api/v1/requests/{}/cancel",
                server.base_url, created.ids[index]
            ))
            .bearer_auth(&key)
            .send()
    }))
    .await;
    for cancel in cancels {
        let status = cancel.context("cancel")?.status();
        ensure!(status == reqwest::StatusCode::OK, "cancel: HTTP {status}");
    }
    let sampled: Vec<_> = sample.iter().filter_map(|&index| waiters[index].take()).collect();
    let woken = tokio::time::timeout(Duration::from_secs(10), join_all(sampled))
        .await
        .context("cancelled waiters did not wake within 10 s")?;
    let mut sample_woke = 0;
    let mut sample_max = Duration::ZERO;
    for waiter in woken {
        let (at, code, status) = waiter.context("waiter panicked")??;
        if code == 200 && status == "cancelled" {
            sample_woke += 1;
            sample_max = sample_max.max(at.saturating_duration_since(t0));
        }
    }
    drop(canceller);
    let early = answered.load(Ordering::Relaxed) - sample_woke;
    ensure!(
        early == 0,
        "{early} waiters answered although their requests were not cancelled"
    );

    // Stop the server: every remaining waiter is answered with its request, pending.
    let remaining: Vec<_> = waiters.into_iter().flatten().collect();
    let stopping = Instant::now();
    server.send_sigterm()?;
    let answers = tokio::time::timeout(Duration::from_secs(30), join_all(remaining))
        .await
        .context("remaining waiters were not answered within 30 s of SIGTERM")?;
    let remaining = answers.len();
    let mut answered_on_shutdown = 0;
    let mut answered_within = Duration::ZERO;
    let mut first_problem = None;
    for answer in answers {
        match answer.context("waiter panicked")? {
            Ok((at, 200, status)) if status == "pending" => {
                answered_on_shutdown += 1;
                answered_within = answered_within.max(at.saturating_duration_since(stopping));
            }
            Ok((_, code, status)) => {
                first_problem.get_or_insert(format!("HTTP {code} `{status}`"));
            }
            Err(err) => {
                first_problem.get_or_insert(format!("{err:#}"));
            }
        }
    }
    let (status, _) = server.wait_exit(stopping).await?;
    let mut exit = match status.code() {
        Some(code) => format!("exit code {code}"),
        None => format!("{status}"),
    };
    if let Some(problem) = first_problem {
        write!(exit, "; first unanswered: {problem}")?;
    }
    Ok(ManyRun {
        created_per_second: created.per_second(),
        open_time,
        established,
        returned_early,
        rss_before_kb,
        rss_kb,
        hwm_kb,
        sample_woke,
        sample_max,
        remaining,
        answered_on_shutdown,
        answered_within,
        exit,
    })
}

// ----- /proc -----------------------------------------------------------------------------

#[derive(Default)]
struct Sockets {
    /// Established connections the server accepted on its port.
    server_side: usize,
    /// Bytes received on them that the server has not read yet.
    server_unread: u64,
    /// Established connections clients opened to the port.
    client_side: usize,
}

fn tcp_sockets(port: u16) -> Result<Sockets> {
    let table = std::fs::read_to_string("/proc/net/tcp").context("read /proc/net/tcp")?;
    let port_of = |address: &str| {
        address
            .rsplit_once(':')
            .and_then(|(_, port)| u16::from_str_radix(port, 16).ok())
    };
    let mut sockets = Sockets::default();
    for line in table.lines().skip(1) {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let [_, local, remote, state, queues, ..] = fields.as_slice() else {
            continue;
        };
        if *state != "01" {
            continue;
        }
        if port_of(local) == Some(port) {
            sockets.server_side += 1;
            sockets.server_unread += queues
                .split_once(':')
                .and_then(|(_, rx)| u64::from_str_radix(rx, 16).ok())
                .unwrap_or(0);
        } else if port_of(remote) == Some(port) {
            sockets.client_side += 1;
        }
    }
    Ok(sockets)
}

/// VmRSS and VmHWM of `pid`, in kB.
fn memory(pid: u32) -> Result<(u64, u64)> {
    let status =
        std::fs::read_to_string(format!("/proc/{pid}/status")).with_context(|| format!("read /proc/{pid}/status"))?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|value| value.split_whitespace().next())
            .and_then(|kb| kb.parse::<u64>().ok())
            .with_context(|| format!("no {name} in /proc/{pid}/status"))
    };
    Ok((field("VmRSS:")?, field("VmHWM:")?))
}

/// Busy time of all CPUs (user, nice, system, irq, softirq, steal), in clock ticks.
fn machine_busy_ticks() -> Result<u64> {
    let stat = std::fs::read_to_string("/proc/stat").context("read /proc/stat")?;
    let line = stat.lines().next().context("empty /proc/stat")?;
    let fields: Vec<u64> = line.split_whitespace().skip(1).filter_map(|v| v.parse().ok()).collect();
    ensure!(fields.len() >= 8, "unexpected /proc/stat");
    // user nice system idle iowait irq softirq steal
    Ok(fields[0] + fields[1] + fields[2] + fields[5] + fields[6] + fields[7])
}

/// `getconf CLK_TCK` (100 on Linux almost everywhere).
fn clock_ticks_per_second() -> f64 {
    static TICKS: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|output| String::from_utf8_lossy(&output.stdout).trim().parse().ok())
            .unwrap_or(100.0)
    })
}

/// What the server wrote to stderr (RUST_LOG=warn): counts and the first lines.
struct ServerLog {
    path: PathBuf,
    warnings: usize,
    errors: usize,
    first: Vec<String>,
}

impl ServerLog {
    fn read(path: &Path) -> Option<ServerLog> {
        let text = std::fs::read_to_string(path).ok()?;
        let mut log = ServerLog {
            path: path.to_path_buf(),
            warnings: 0,
            errors: 0,
            first: Vec::new(),
        };
        let mut seen = std::collections::BTreeSet::new();
        for line in text.lines() {
            let plain = strip_ansi(line);
            let level = if plain.contains(" WARN ") {
                &mut log.warnings
            } else if plain.contains(" ERROR ") {
                &mut log.errors
            } else {
                continue;
            };
            *level += 1;
            // The message without its timestamp and fields, to list each kind once.
            let message = plain.split_once(' ').map_or(plain.as_str(), |(_, rest)| rest.trim());
            let kind: String = message.chars().take(90).collect();
            if log.first.len() < 3 && seen.insert(kind) {
                log.first.push(message.chars().take(200).collect());
            }
        }
        Some(log)
    }
}

fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // ESC [ ... letter
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// User + system CPU time of `pid`, in clock ticks.
fn cpu_ticks(pid: u32) -> Result<u64> {
    let stat =
        std::fs::read_to_string(format!("/proc/{pid}/stat")).with_context(|| format!("read /proc/{pid}/stat"))?;
    let after_name = stat.rsplit_once(')').map(|(_, rest)| rest).unwrap_or("");
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // Fields 14 and 15 of proc(5); the state (field 3) is the first after the name.
    let tick = |index: usize| {
        fields
            .get(index)
            .and_then(|value| value.parse::<u64>().ok())
            .context("unexpected /proc/PID/stat")
    };
    Ok(tick(11)? + tick(12)?)
}

// ----- context and report ----------------------------------------------------------------

async fn store_version(backend: Backend) -> Result<String> {
    match backend {
        Backend::Sqlite => {
            let mut conn = sqlx::SqliteConnection::connect("sqlite::memory:").await?;
            let version: String = sqlx::query_scalar("SELECT sqlite_version()")
                .fetch_one(&mut conn)
                .await?;
            Ok(format!("{version} (WAL, synchronous=NORMAL)"))
        }
        Backend::Postgres => {
            let mut conn = sqlx::PgConnection::connect(&postgres_admin_url()).await?;
            let version: String = sqlx::query_scalar("SHOW server_version").fetch_one(&mut conn).await?;
            Ok(format!("{version} (127.0.0.1:5432, same machine)"))
        }
    }
}

async fn machine_context(binary: &Path) -> String {
    let read = |path: &str| std::fs::read_to_string(path).unwrap_or_default();
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let cpuinfo = read("/proc/cpuinfo");
    let model = cpuinfo
        .lines()
        .find_map(|line| line.strip_prefix("model name"))
        .and_then(|rest| rest.split_once(':'))
        .map_or("unknown", |(_, model)| model.trim());
    let memory_mb = read("/proc/meminfo")
        .lines()
        .find_map(|line| line.strip_prefix("MemTotal:"))
        .and_then(|value| value.split_whitespace().next()?.parse::<u64>().ok())
        .map_or(0, |kb| kb / 1024);
    let kernel = read("/proc/sys/kernel/osrelease");
    let load = read("/proc/loadavg");
    let profile = if cfg!(debug_assertions) {
        "debug (numbers are not meaningful)"
    } else {
        "release"
    };
    let mut text = String::new();
    let _ = writeln!(
        text,
        "- Machine: {cores} cores ({model}), {memory_mb} MB RAM, Linux {}; load average at start {}",
        kernel.trim(),
        load.split_whitespace().take(3).collect::<Vec<_>>().join(" ")
    );
    let _ = writeln!(
        text,
        "- Build: {profile}; server `{}`; load generator and server share the same cores over 127.0.0.1",
        binary.display()
    );
    let _ = write!(
        text,
        "- Runs: creations over {} HTTP/1.1 connections for {}s after {}s warm-up; \
         {WAITS} waits per wake-up line in batches of {WAIT_BATCH}; {MANY_WAITERS} long-polls (timeout_s={LONG_WAIT_S}) on their own connections",
        create_connections(),
        MEASURE.as_secs(),
        WARM_UP.as_secs()
    );
    text
}

fn ms(duration: Duration) -> String {
    format!("{:.2} ms", duration.as_secs_f64() * 1000.0)
}

/// Nearest-rank percentile of sorted samples.
fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn spread(sorted: &[Duration]) -> String {
    format!(
        "{} / {} / {}",
        ms(percentile(sorted, 50.0)),
        ms(percentile(sorted, 99.0)),
        ms(sorted.last().copied().unwrap_or_default())
    )
}

fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn mb(kb: u64) -> String {
    format!("{:.1} MB", kb as f64 / 1024.0)
}

fn verdict(pass: bool) -> &'static str {
    if pass { "met" } else { "**missed**" }
}

fn render(context: &str, stores: &[StoreReport], took: Duration) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# Signoff benchmark\n\n{context}\n");
    for store in stores {
        let _ = match &store.skipped {
            Some(why) => writeln!(out, "- {}: skipped, {why}", store_name(store.backend)),
            None => writeln!(out, "- {}: {}", store_name(store.backend), store.version),
        };
    }
    let _ = write!(out, "\n| Measure |");
    for store in stores {
        let _ = write!(out, " {} |", store_name(store.backend));
    }
    let _ = write!(out, " Target |\n|---|");
    for _ in stores {
        let _ = write!(out, "---|");
    }
    out.push_str("---|\n");

    let mut row = |label: &str, target: &str, cell: &dyn Fn(&StoreReport) -> String| {
        let _ = write!(out, "| {label} |");
        for store in stores {
            let text = if store.skipped.is_some() {
                "skipped".to_string()
            } else {
                cell(store)
            };
            let _ = write!(out, " {text} |");
        }
        let _ = writeln!(out, " {target} |");
    };
    fn show<T>(result: &Result<T, String>, f: impl Fn(&T) -> String) -> String {
        match result {
            Ok(value) => f(value),
            Err(err) if err == NOT_SELECTED => "not run".into(),
            Err(err) => format!("error: {}", err.replace('|', "/")),
        }
    }

    row("Request creations per second", "≥ 3,000/s (SQLite)", &|s| {
        show(&s.create, |c| {
            let rate = c.per_second();
            let mark = if s.backend == Backend::Sqlite {
                format!(" ({})", verdict(rate >= 3000.0))
            } else {
                String::new()
            };
            format!("**{}/s**{mark}", thousands(rate.round() as u64))
        })
    });
    row("Creation latency p50 / p99 / max", "", &|s| {
        show(&s.create, |c| spread(&c.latencies))
    });
    row("Creations measured / errors", "0 errors", &|s| {
        show(&s.create, |c| {
            let mut text = format!("{} / {}", thousands(c.created as u64), c.errors);
            if let Some(err) = &c.first_error {
                let _ = write!(text, " (first: {})", err.replace('|', "/"));
            }
            text
        })
    });
    row(
        "Client connections open mid-run",
        &create_connections().to_string(),
        &|s| show(&s.create, |c| c.connections.to_string()),
    );
    row(
        "CPU in the window: server / load generator / rest of the machine, Postgres included (cores)",
        "",
        &|s| {
            show(&s.create, |c| {
                format!(
                    "{:.2} / {:.2} / {:.2} ({:.2} ms server CPU per creation)",
                    c.server_cores,
                    c.client_cores,
                    (c.machine_cores - c.server_cores - c.client_cores).max(0.0),
                    c.server_cores * 1000.0 / c.per_second().max(1.0)
                )
            })
        },
    );
    row(
        "Wake-up on decision (service.decide, in-process) p50 / p99 / max",
        "p99 ≤ 10 ms",
        &|s| {
            show(&s.decide_wake, |w| {
                format!(
                    "**{}** ({})",
                    spread(&w.latencies),
                    verdict(percentile(&w.latencies, 99.0) <= Duration::from_millis(10))
                )
            })
        },
    );
    row("of which the decide() call p50 / p99 / max", "", &|s| {
        show(&s.decide_wake, |w| spread(&w.triggers))
    });
    row(
        "Wake-up on cancel, real binary p50 / p99 / max",
        "p99 ≤ 10 ms",
        &|s| {
            show(&s.cancel_wake, |w| {
                format!(
                    "**{}** ({})",
                    spread(&w.latencies),
                    verdict(percentile(&w.latencies, 99.0) <= Duration::from_millis(10))
                )
            })
        },
    );
    row("of which the cancel call p50 / p99 / max", "", &|s| {
        show(&s.cancel_wake, |w| spread(&w.triggers))
    });
    row("10,000 waiters: requests created (64 connections)", "", &|s| {
        show(&s.many, |m| {
            format!("{}/s", thousands(m.created_per_second.round() as u64))
        })
    });
    row("10,000 waiters: long-polls in flight", "10,000", &|s| {
        show(&s.many, |m| {
            format!(
                "{} connections, all read, {} returned early; opened in {:.1} s",
                thousands(m.established as u64),
                m.returned_early,
                m.open_time.as_secs_f64()
            )
        })
    });
    row("10,000 waiters: server RSS (VmRSS / VmHWM)", "≤ 256 MB", &|s| {
        show(&s.many, |m| {
            format!(
                "**{} / {}** ({}); {} before the waits",
                mb(m.rss_kb),
                mb(m.hwm_kb),
                verdict(m.hwm_kb <= 256 * 1024),
                mb(m.rss_before_kb)
            )
        })
    });
    row(
        "10,000 waiters: sampled cancels woke",
        &format!("{CANCEL_SAMPLE} of {CANCEL_SAMPLE}"),
        &|s| {
            show(&s.many, |m| {
                format!("{} of {CANCEL_SAMPLE}, all within {}", m.sample_woke, ms(m.sample_max))
            })
        },
    );
    row("10,000 waiters: answered on SIGTERM", "all, pending", &|s| {
        show(&s.many, |m| {
            format!(
                "{} of {} within {}; {}",
                thousands(m.answered_on_shutdown as u64),
                thousands(m.remaining as u64),
                ms(m.answered_within),
                m.exit
            )
        })
    });
    for store in stores {
        if let Some(log) = &store.log {
            let _ = write!(
                out,
                "\n{} server log ({}): {} warnings, {} errors",
                store_name(store.backend),
                log.path.display(),
                log.warnings,
                log.errors
            );
            for line in &log.first {
                let _ = write!(out, "\n    {line}");
            }
            out.push('\n');
        }
    }
    let _ = writeln!(
        out,
        "\nWake-up latency runs from the start of the decision (or cancel) call to the end of \
         the waiting agent's HTTP response, so it includes the decision's own transaction. \
         Whole run: {:.0} s.",
        took.as_secs_f64()
    );
    out
}

// ----- instruments of tests/bench/ratios.sh ----------------------------------------------

/// The subcommands `tests/bench/ratios.sh` runs against servers it started itself.
mod ratios {
    use std::io::{Read as _, Write as _};

    use super::*;

    /// Reviewer tokens identify as this issuer's people (the placeholder provider the
    /// script configures; the agent and reviewer APIs never contact it).
    const ISSUER: &str = "http://127.0.0.1:9";
    /// Connections the `seed` and `hold` cancellations use at once.
    const SEED_CONNECTIONS: usize = 64;
    /// Open-loop requests allowed in flight before the sender counts new ones as errors.
    const OPEN_LOOP_MAX_IN_FLIGHT: usize = 10_000;

    pub async fn run(command: &str, args: &[String]) -> Result<()> {
        let arg = |i: usize, what: &str| {
            args.get(i)
                .map(String::as_str)
                .with_context(|| format!("missing {what} (see the top of signoff-bench.rs)"))
        };
        let num = |i: usize, default: Option<u64>| -> Result<u64> {
            match (args.get(i), default) {
                (Some(value), _) => value.parse().with_context(|| format!("not a number: {value}")),
                (None, Some(default)) => Ok(default),
                (None, None) => bail!("missing argument {} (see the top of signoff-bench.rs)", i + 1),
            }
        };
        let out = match command {
            "tokens" => {
                let tokens = tokens(arg(0, "DATABASE_URL")?, num(1, Some(8))? as usize).await?;
                return print_lines(&tokens);
            }
            "seed" => {
                let ids = seed(
                    arg(0, "URL")?,
                    arg(1, "KEY")?,
                    num(2, None)? as usize,
                    arg(3, "BODY_FILE")?,
                    args.get(4).map(String::as_str),
                )
                .await?;
                return print_lines(&ids);
            }
            "wake" => {
                wake(
                    arg(0, "URL")?,
                    arg(1, "KEY")?,
                    arg(2, "TOKEN")?,
                    num(3, Some(1000))? as usize,
                )
                .await?
            }
            "open-loop" => {
                open_loop(
                    arg(0, "URL")?,
                    arg(1, "KEY")?,
                    arg(2, "BODY_FILE")?,
                    num(3, Some(1000))?,
                    num(4, Some(60))?,
                    num(5, Some(64))? as usize,
                )
                .await?
            }
            "hold" => {
                hold(
                    arg(0, "URL")?,
                    arg(1, "KEY")?,
                    num(2, None)? as u32,
                    arg(3, "IDS_FILE")?,
                )
                .await?
            }
            "receiver" => return notify::receiver(args).await,
            "notify-latency" => notify::latency(args).await?,
            _ => bail!(
                "unknown subcommand `{command}`: tokens | seed | wake | open-loop | hold | receiver | notify-latency"
            ),
        };
        println!("{out}");
        Ok(())
    }

    fn print_lines(lines: &[String]) -> Result<()> {
        let mut stdout = std::io::BufWriter::new(std::io::stdout().lock());
        for line in lines {
            writeln!(stdout, "{line}")?;
        }
        stdout.flush()?;
        Ok(())
    }

    fn unix_ms() -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |since| since.as_millis() as i64)
    }

    fn random_hex() -> Result<String> {
        let mut bytes = [0_u8; 32];
        std::fs::File::open("/dev/urandom")
            .and_then(|mut random| random.read_exact(&mut bytes))
            .context("read /dev/urandom")?;
        Ok(bytes.iter().map(|byte| format!("{byte:02x}")).collect())
    }

    /// Terminal tokens for `count` reviewers (group `signoff-reviewers`, verified emails),
    /// written straight into `terminal_tokens`: the benchmark's stand-in for `signoff login`.
    async fn tokens(url: &str, count: usize) -> Result<Vec<String>> {
        let now = unix_ms();
        let mut tokens = Vec::with_capacity(count);
        let mut rows = Vec::with_capacity(count);
        for n in 0..count {
            let token = format!("{}{}", signoff_server::auth::TERMINAL_TOKEN_PREFIX, random_hex()?);
            let subject = format!("bench-reviewer-{n}");
            let identity = json!({
                "issuer": ISSUER,
                "subject": subject,
                "email": format!("reviewer-{n}@bench.example"),
                "email_verified": true,
                "name": format!("Bench reviewer {n}"),
                "groups": ["signoff-reviewers"],
            });
            rows.push((
                uuid::Uuid::now_v7().to_string(),
                signoff_app::sha256_hex(token.as_bytes()),
                subject,
                identity.to_string(),
            ));
            tokens.push(token);
        }
        const INSERT: &str = "INSERT INTO terminal_tokens \
             (id, token_hash, issuer, subject, identity, client_name, created_at, expires_at, revoked_at) \
             VALUES ($1, $2, $3, $4, $5, 'signoff-bench', $6, $7, NULL)";
        macro_rules! insert_all {
            ($conn:expr) => {{
                let mut conn = $conn;
                for (id, hash, subject, identity) in &rows {
                    sqlx::query(INSERT)
                        .bind(id)
                        .bind(hash)
                        .bind(ISSUER)
                        .bind(subject)
                        .bind(identity)
                        .bind(now)
                        .bind(now + 24 * 3600 * 1000)
                        .execute(&mut conn)
                        .await
                        .context("insert a terminal token")?;
                }
            }};
        }
        if url.starts_with("sqlite:") {
            insert_all!(
                sqlx::SqliteConnection::connect(url)
                    .await
                    .with_context(|| format!("open {url}"))?
            );
        } else {
            insert_all!(
                sqlx::PgConnection::connect(url)
                    .await
                    .with_context(|| format!("open {url}"))?
            );
        }
        Ok(tokens)
    }

    /// Creates `count` requests with the body in `body_file` (its `on_behalf_of` replaced by
    /// `on_behalf_of`) over 64 connections; their ids.
    async fn seed(
        base: &str,
        key: &str,
        count: usize,
        body_file: &str,
        on_behalf_of: Option<&str>,
    ) -> Result<Vec<String>> {
        let mut body: Value =
            serde_json::from_slice(&std::fs::read(body_file).with_context(|| format!("read {body_file}"))?)?;
        if let Some(who) = on_behalf_of {
            body["on_behalf_of"] = json!(who);
        }
        let body = serde_json::to_vec(&body)?;
        let started = Instant::now();
        let left = Arc::new(AtomicUsize::new(count));
        let url: Arc<str> = format!("{base}/api/v1/requests").into();
        let mut workers = Vec::new();
        for _ in 0..SEED_CONNECTIONS.min(count.max(1)) {
            let (client, url, left, body, key) = (
                http_client(1)?,
                Arc::clone(&url),
                Arc::clone(&left),
                body.clone(),
                key.to_string(),
            );
            workers.push(tokio::spawn(async move {
                let mut ids = Vec::new();
                while left
                    .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |left| left.checked_sub(1))
                    .is_ok()
                {
                    let response = client
                        .post(&*url)
                        .bearer_auth(&key)
                        .header(reqwest::header::CONTENT_TYPE, "application/json")
                        .body(body.clone())
                        .send()
                        .await?;
                    let status = response.status();
                    let bytes = response.bytes().await?;
                    ensure!(
                        status == reqwest::StatusCode::CREATED,
                        "create: HTTP {status}: {}",
                        String::from_utf8_lossy(&bytes[..bytes.len().min(300)])
                    );
                    let reply: Value = serde_json::from_slice(&bytes)?;
                    ids.push(
                        reply["id"]
                            .as_str()
                            .context("a created request came back without an id")?
                            .to_string(),
                    );
                }
                anyhow::Ok(ids)
            }));
        }
        let mut ids = Vec::with_capacity(count);
        for worker in join_all(workers).await {
            ids.extend(worker.context("seed worker panicked")??);
        }
        let took = started.elapsed().as_secs_f64();
        eprintln!(
            "seeded {} requests in {took:.1} s ({:.0}/s)",
            ids.len(),
            ids.len() as f64 / took
        );
        Ok(ids)
    }

    /// Agents long-polling now, from `/metrics`.
    async fn waiting_agents(client: &reqwest::Client, base: &str) -> Result<usize> {
        let text = client
            .get(format!("{base}/metrics"))
            .send()
            .await?
            .error_for_status()?
            .text()
            .await?;
        let value = text
            .lines()
            .find_map(|line| line.strip_prefix("signoff_waiting_agents "))
            .and_then(|value| value.trim().parse::<f64>().ok())
            .unwrap_or(0.0);
        Ok(value as usize)
    }

    pub(super) fn round3(x: f64) -> f64 {
        (x * 1000.0).round() / 1000.0
    }

    /// p50 / p99 / max (and min) of samples sorted ascending, in ms.
    pub(super) fn summary_ms(sorted: &[f64]) -> Value {
        let at = |p: f64| {
            if sorted.is_empty() {
                return 0.0;
            }
            let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
            round3(sorted[rank.clamp(1, sorted.len()) - 1])
        };
        json!({ "p50_ms": at(50.0), "p99_ms": at(99.0), "p999_ms": at(99.9), "max_ms": at(100.0),
                "min_ms": sorted.first().copied().map_or(0.0, round3) })
    }

    fn durations_ms(sorted: &[Duration]) -> Vec<f64> {
        sorted.iter().map(|d| d.as_secs_f64() * 1e3).collect()
    }

    /// Decision over HTTP (a reviewer's terminal token) → the waiting agent's response, in
    /// batches of 50 parked waiters decided one after the other.
    async fn wake(base: &str, key: &str, token: &str, waits: usize) -> Result<Value> {
        let agent = Agent {
            base_url: base.to_string(),
            key: key.to_string(),
            http: http_client(WAIT_BATCH * 2)?,
        };
        let reviewer = http_client(1)?;
        let metrics = http_client(1)?;
        // Warm the reviewer's connection and the token's row.
        reviewer
            .get(format!("{base}/api/v1/me"))
            .bearer_auth(token)
            .send()
            .await?
            .error_for_status()
            .context("the reviewer token is refused")?;
        let run = wake_batches(
            &agent,
            waits,
            |count| {
                let metrics = metrics.clone();
                async move {
                    let deadline = Instant::now() + Duration::from_secs(10);
                    loop {
                        let waiting = waiting_agents(&metrics, base).await?;
                        if waiting >= count {
                            break;
                        }
                        ensure!(
                            Instant::now() < deadline,
                            "only {waiting} of {count} waiters registered within 10 s"
                        );
                        tokio::time::sleep(Duration::from_millis(1)).await;
                    }
                    // Registered before their first look at the request: let them park.
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    Ok(())
                }
            },
            |id| {
                let request = reviewer
                    .post(format!("{base}/api/v1/requests/{id}/decisions"))
                    .bearer_auth(token)
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .body(r#"{"verdict":"approve"}"#);
                async move {
                    let response = request.send().await?;
                    let status = response.status();
                    let bytes = response.bytes().await?;
                    ensure!(
                        status == reqwest::StatusCode::OK,
                        "decide: HTTP {status}: {}",
                        String::from_utf8_lossy(&bytes[..bytes.len().min(300)])
                    );
                    Ok(())
                }
            },
            "approved",
        )
        .await?;
        let before_reply = run.after_trigger_ms.iter().filter(|&&ms| ms < 0.0).count();
        Ok(json!({
            "waits": run.latencies.len(),
            "decision_sent_to_waiter": summary_ms(&durations_ms(&run.latencies)),
            "decision_recorded_to_waiter": summary_ms(&run.since_decided_ms),
            "decision_reply_to_waiter": summary_ms(&run.after_trigger_ms),
            "decision_call": summary_ms(&durations_ms(&run.triggers)),
            "waiter_before_decision_reply": before_reply,
        }))
    }

    /// Creations sent at a fixed rate whatever the answers (open loop): each request is
    /// timed from the moment it was due, so a stalled server shows as latency, not as a
    /// lower rate.
    async fn open_loop(
        base: &str,
        key: &str,
        body_file: &str,
        rate: u64,
        seconds: u64,
        connections: usize,
    ) -> Result<Value> {
        ensure!(rate > 0 && seconds > 0, "rate and seconds must be positive");
        let body = std::fs::read(body_file).with_context(|| format!("read {body_file}"))?;
        let client = reqwest::Client::builder()
            .http1_only()
            .pool_max_idle_per_host(OPEN_LOOP_MAX_IN_FLIGHT)
            .timeout(Duration::from_secs(10))
            .build()?;
        // Open the connections before the clock starts.
        for reply in join_all((0..connections.max(1)).map(|_| client.get(format!("{base}/healthz")).send())).await {
            reply?.error_for_status()?;
        }
        let port = base
            .rsplit_once(':')
            .and_then(|(_, port)| port.trim_end_matches('/').parse::<u16>().ok())
            .context("no port in the URL")?;
        let url: Arc<str> = format!("{base}/api/v1/requests").into();
        let total = rate * seconds;
        let interval = Duration::from_nanos(1_000_000_000 / rate);
        let start = Instant::now() + Duration::from_millis(20);
        let in_flight = Arc::new(AtomicUsize::new(0));
        let sampler = tokio::spawn(async move {
            let mut most = 0;
            loop {
                tokio::time::sleep(Duration::from_millis(500)).await;
                most = most.max(tcp_sockets(port).map_or(0, |sockets| sockets.client_side));
                if start.elapsed() >= Duration::from_secs(seconds) {
                    return most;
                }
            }
        });
        let mut tasks = Vec::with_capacity(total as usize);
        let (mut refused, mut lag_max) = (0_u64, Duration::ZERO);
        for n in 0..total {
            let due = start + interval * n as u32;
            tokio::time::sleep_until(due.into()).await;
            lag_max = lag_max.max(due.elapsed());
            if in_flight.load(Ordering::Relaxed) >= OPEN_LOOP_MAX_IN_FLIGHT {
                refused += 1;
                continue;
            }
            in_flight.fetch_add(1, Ordering::Relaxed);
            let request = client
                .post(&*url)
                .bearer_auth(key)
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body.clone());
            let in_flight = Arc::clone(&in_flight);
            tasks.push(tokio::spawn(async move {
                let outcome = created(request).await.map(drop);
                in_flight.fetch_sub(1, Ordering::Relaxed);
                (due.elapsed(), outcome.map_err(|err| format!("{err:#}")))
            }));
        }
        let sending = start.elapsed();
        let mut latencies = Vec::with_capacity(tasks.len());
        let (mut errors, mut first_error) = (refused, None);
        if refused > 0 {
            first_error = Some(format!(
                "{refused} not sent: {OPEN_LOOP_MAX_IN_FLIGHT} already in flight"
            ));
        }
        for task in join_all(tasks).await {
            match task.context("open-loop request panicked")? {
                (took, Ok(())) => latencies.push(took.as_secs_f64() * 1e3),
                (_, Err(err)) => {
                    errors += 1;
                    first_error.get_or_insert(err);
                }
            }
        }
        let connections_seen = sampler.await.unwrap_or(0);
        latencies.sort_unstable_by(f64::total_cmp);
        let mut out = summary_ms(&latencies);
        out["rate"] = json!(rate);
        out["seconds"] = json!(seconds);
        out["scheduled"] = json!(total);
        out["ok"] = json!(latencies.len());
        out["errors"] = json!(errors);
        out["first_error"] = json!(first_error);
        out["sent_per_second"] = json!(((total - refused) as f64 / sending.as_secs_f64()).round());
        out["sender_late_max_ms"] = json!(round3(lag_max.as_secs_f64() * 1e3));
        out["connections_max"] = json!(connections_seen);
        Ok(out)
    }

    /// The equivalent of the baseline's `wakebench hold`: one long-poll per id in `ids_file`,
    /// each on its own connection; once the server counts them all as waiting (or every wait
    /// not waiting has ended: `ended_early`), its VmRSS and VmHWM; then every request is
    /// cancelled and each waiter must wake to `cancelled`, or counts as an error.
    async fn hold(base: &str, key: &str, pid: u32, ids_file: &str) -> Result<Value> {
        let ids: Vec<String> = std::fs::read_to_string(ids_file)
            .with_context(|| format!("read {ids_file}"))?
            .lines()
            .map(str::trim)
            .filter(|line| !line.is_empty())
            .map(String::from)
            .collect();
        let n = ids.len();
        let addr: SocketAddr = base
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .parse()
            .with_context(|| format!("not http://ADDRESS:PORT: {base}"))?;
        let metrics = http_client(1)?;
        let waiting_before = waiting_agents(&metrics, base).await?;
        let (rss_idle, _) = memory(pid)?;
        let started = Instant::now();
        let connecting = Arc::new(Semaphore::new(CONNECTING_AT_ONCE));
        let sent = Arc::new(AtomicUsize::new(0));
        let answered = Arc::new(AtomicUsize::new(0));
        let waiters: Vec<JoinHandle<Result<RawAnswer>>> = ids
            .iter()
            .map(|id| {
                let request: Arc<str> = format!(
                    "GET /api/v1/requests/{id}/wait?timeout_s={LONG_WAIT_S} HTTP/1.1\r\n\
                     Host: {addr}\r\nAuthorization: Bearer {key}\r\nConnection: close\r\n\r\n"
                )
                .into();
                tokio::spawn(raw_wait(
                    addr,
                    request,
                    Arc::clone(&connecting),
                    Arc::clone(&sent),
                    Arc::clone(&answered),
                ))
            })
            .collect();
        let deadline = Instant::now() + Duration::from_secs(60);
        let (parked, ended_early) = loop {
            let waiting = waiting_agents(&metrics, base).await?.saturating_sub(waiting_before);
            // Answered or failed before anything woke them.
            let ended = waiters.iter().filter(|waiter| waiter.is_finished()).count();
            if waiting + ended >= n {
                break (waiting, ended);
            }
            ensure!(
                Instant::now() < deadline,
                "only {waiting} of {n} waiters parked after 60 s ({} sent, {ended} ended)",
                sent.load(Ordering::Relaxed)
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        let ramp = started.elapsed();
        let (rss_parked, hwm) = memory(pid)?;

        let woke_at = Instant::now();
        let next = Arc::new(AtomicUsize::new(0));
        let ids = Arc::new(ids);
        let mut cancellers = Vec::new();
        for _ in 0..SEED_CONNECTIONS {
            let (client, next, ids, base, key) = (
                http_client(1)?,
                Arc::clone(&next),
                Arc::clone(&ids),
                base.to_string(),
                key.to_string(),
            );
            cancellers.push(tokio::spawn(async move {
                let mut errors = 0;
                loop {
                    let index = next.fetch_add(1, Ordering::Relaxed);
                    let Some(id) = ids.get(index) else { break };
                    let ok = client
                        .post(format!("{base}/api/v1/requests/{id}/cancel"))
                        .bearer_auth(&key)
                        .send()
                        .await
                        .is_ok_and(|response| response.status() == reqwest::StatusCode::OK);
                    errors += usize::from(!ok);
                }
                errors
            }));
        }
        let mut errors = 0;
        for canceller in join_all(cancellers).await {
            errors += canceller.unwrap_or(1);
        }
        let answers = tokio::time::timeout(Duration::from_secs(60), join_all(waiters))
            .await
            .context("cancelled waiters were not all answered within 60 s")?;
        let mut first_error = None;
        for answer in answers {
            let problem = match answer {
                Ok(Ok((_, 200, status))) if status == "cancelled" => continue,
                Ok(Ok((_, code, status))) => format!("HTTP {code} `{status}`"),
                Ok(Err(err)) => format!("{err:#}"),
                Err(err) => format!("{err}"),
            };
            errors += 1;
            first_error.get_or_insert(problem);
        }
        let mb = |kb: u64| (kb as f64 / 1024.0 * 10.0).round() / 10.0;
        Ok(json!({
            "waiters": n, "parked": parked, "ended_early": ended_early,
            "ramp_s": (ramp.as_secs_f64() * 100.0).round() / 100.0,
            "rss_idle_mb": mb(rss_idle), "rss_parked_mb": mb(rss_parked), "hwm_mb": mb(hwm),
            "wake_all_s": (woke_at.elapsed().as_secs_f64() * 100.0).round() / 100.0, "errors": errors,
            "first_error": first_error,
        }))
    }
}
