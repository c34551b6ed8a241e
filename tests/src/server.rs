//! Servers under test, and clients for them.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use signoff_server::service::Service;
use signoff_server::{Application, Config};

use crate::db::{Backend, TestDb};

/// The server in this process, serving real HTTP on 127.0.0.1:0.
pub struct TestServer {
    pub base_url: String,
    pub service: Arc<Service>,
    pub db: TestDb,
    pub http: reqwest::Client,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

/// The configuration tests start from: fast sweeps, no demo data.
pub fn test_config(db: &TestDb) -> Config {
    let mut config = Config {
        database_url: Some(db.url.clone()),
        data_dir: db.dir.clone(),
        sweep_interval: Duration::from_millis(100),
        ..Config::default()
    };
    // Not contacted by the agent API; the SSO tests configure a real provider.
    config.oidc.issuer = Some("http://127.0.0.1:9".into());
    config.oidc.client_id = Some("signoff-web".into());
    config
}

impl TestServer {
    pub async fn start(backend: Backend) -> TestServer {
        Self::start_with(backend, |_| {}).await
    }

    pub async fn start_with(backend: Backend, configure: impl FnOnce(&mut Config)) -> TestServer {
        Self::start_on(TestDb::new(backend).await, configure).await
    }

    /// A server on an existing database (one a test prepared, say as an older version
    /// left it).
    pub async fn start_on(db: TestDb, configure: impl FnOnce(&mut Config)) -> TestServer {
        let mut config = test_config(&db);
        configure(&mut config);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let app = Application::build(config, listener).await.expect("server builds");
        let base_url = format!("http://{}", app.local_addr().expect("address"));
        let service = app.service();
        let (shutdown, stop) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            app.run_until(async {
                let _ = stop.await;
            })
            .await
            .expect("server runs");
        });
        TestServer {
            base_url,
            service,
            db,
            http: reqwest::Client::new(),
            shutdown: Some(shutdown),
            task: Some(task),
        }
    }

    /// A server signing people in with `provider` (client `signoff-web`).
    pub async fn start_with_sso(
        backend: Backend,
        provider: &crate::oidc::Provider,
        configure: impl FnOnce(&mut Config),
    ) -> TestServer {
        let issuer = provider.issuer.clone();
        Self::start_with(backend, move |config| {
            config.oidc.issuer = Some(issuer);
            config.oidc.client_id = Some("signoff-web".into());
            config.oidc.client_secret = Some(signoff_server::config::Secret::new("signoff-web-secret"));
            config.device_poll_interval = Duration::from_secs(1);
            configure(config);
        })
        .await
    }

    /// A browser for this server.
    pub fn browser(&self) -> crate::browser::Browser {
        crate::browser::Browser::new(&self.base_url)
    }

    /// A terminal token of reviewer `n`, signed in over HTTP with the device flow; the
    /// browser's confirmation is made through the service (`tests/terminal.rs` covers that).
    pub async fn terminal_token(&self, n: u32, client_name: &str) -> String {
        let http = reqwest::Client::new();
        let url = |path: &str| format!("{}{path}", self.base_url);
        let code = read_reply(
            http.post(url("/api/v1/device/code"))
                .json(&serde_json::json!({"client_name": client_name}))
                .send()
                .await
                .expect("device code"),
        )
        .await;
        assert_eq!(code.status, 200, "{:?}", code.body);
        let confirmed = self
            .service
            .answer_device_code(
                code.body["user_code"].as_str().expect("user code"),
                &crate::fixtures::reviewer(n),
                true,
            )
            .await
            .expect("confirm");
        assert!(confirmed);
        let token = read_reply(
            http.post(url("/api/v1/device/token"))
                .json(&serde_json::json!({"device_code": code.body["device_code"]}))
                .send()
                .await
                .expect("device token"),
        )
        .await;
        assert_eq!(token.status, 200, "{:?}", token.body);
        token.body["access_token"].as_str().expect("token").to_string()
    }

    /// A new agent with a fresh key.
    pub async fn agent(&self, name: &str) -> AgentClient {
        self.agent_owned_by(name, None).await
    }

    pub async fn agent_owned_by(&self, name: &str, owner: Option<&str>) -> AgentClient {
        let (_, key, _) = self
            .service
            .issue_agent_key(name, owner, None)
            .await
            .expect("issue key");
        AgentClient::new(&self.base_url, &key)
    }

    /// Holds the lock every write of the server begins with (SQLite's write lock, or the
    /// audit head's row on Postgres) until the returned sender is used or dropped, so a
    /// test can make changes wait, and pile up, at a moment of its choosing.
    pub async fn hold_the_writer(&self) -> tokio::sync::oneshot::Sender<()> {
        use sqlx::Connection;
        let (release, released) = tokio::sync::oneshot::channel::<()>();
        let (held, is_held) = tokio::sync::oneshot::channel::<()>();
        let url = self.db.url.clone();
        match self.db.backend {
            Backend::Sqlite => {
                tokio::spawn(async move {
                    let mut conn = sqlx::SqliteConnection::connect(&url).await.expect("connect");
                    sqlx::query("BEGIN IMMEDIATE").execute(&mut conn).await.expect("lock");
                    let _ = held.send(());
                    let _ = released.await;
                    sqlx::query("COMMIT").execute(&mut conn).await.expect("unlock");
                });
            }
            Backend::Postgres => {
                tokio::spawn(async move {
                    let mut conn = sqlx::PgConnection::connect(&url).await.expect("connect");
                    let mut tx = conn.begin().await.expect("begin");
                    sqlx::query("SELECT seq FROM audit_head WHERE id = 1 FOR UPDATE")
                        .execute(&mut *tx)
                        .await
                        .expect("lock");
                    let _ = held.send(());
                    let _ = released.await;
                    tx.commit().await.expect("unlock");
                });
            }
        }
        is_held.await.expect("lock taken");
        release
    }

    /// Stops serving and waits for the server to finish. A server that failed or panicked
    /// (while serving or shutting down) fails the test here, with its own message.
    pub async fn stop(mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(task) = self.task.take() {
            match tokio::time::timeout(Duration::from_secs(60), task).await {
                Ok(Ok(())) => {}
                Ok(Err(failed)) if failed.is_panic() => std::panic::resume_unwind(failed.into_panic()),
                Ok(Err(failed)) => panic!("the server task did not finish: {failed}"),
                Err(_) => panic!("the server did not stop within 60 s of being asked to"),
            }
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }
}

/// An agent calling the API with its key.
#[derive(Clone)]
pub struct AgentClient {
    pub base_url: String,
    pub key: String,
    pub http: reqwest::Client,
}

/// A response, read whole.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Reply {
    pub fn error_code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or_default()
    }

    pub fn error_message(&self) -> &str {
        self.body["error"]["message"].as_str().unwrap_or_default()
    }
}

pub async fn read_reply(response: reqwest::Response) -> Reply {
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let text = response.text().await.expect("read body");
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    Reply { status, headers, body }
}

impl AgentClient {
    pub fn new(base_url: &str, key: &str) -> AgentClient {
        AgentClient {
            base_url: base_url.to_string(),
            key: key.to_string(),
            http: reqwest::Client::new(),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    pub async fn post(&self, path: &str, body: &Value) -> Reply {
        let response = self
            .http
            .post(self.url(path))
            .bearer_auth(&self.key)
            .json(body)
            .send()
            .await
            .expect("POST");
        read_reply(response).await
    }

    pub async fn get(&self, path: &str) -> Reply {
        let response = self
            .http
            .get(self.url(path))
            .bearer_auth(&self.key)
            .send()
            .await
            .expect("GET");
        read_reply(response).await
    }

    /// Submits a request and returns its id, asserting it was created.
    pub async fn submit(&self, body: &Value) -> String {
        let reply = self.post("/api/v1/requests", body).await;
        assert_eq!(reply.status, 201, "create failed: {:?}", reply.body);
        reply.body["id"].as_str().expect("id").to_string()
    }

    pub async fn wait(&self, id: &str, timeout_s: u64) -> Reply {
        self.get(&format!("/api/v1/requests/{id}/wait?timeout_s={timeout_s}"))
            .await
    }
}

/// The directory the binaries under test are in, once both are built (once per test
/// process). The server and the terminal client are built by one `cargo build`, so their
/// shared dependencies are resolved with one set of features: built by two commands, each
/// would rebuild what the other just built (TLS, HTTP), a minute each on a busy machine,
/// inside whatever a test was timing.
fn built_binaries() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        // target/debug/deps/<test> -> target/debug
        let exe = std::env::current_exe().expect("test executable path");
        let dir = exe.parent().and_then(|deps| deps.parent()).expect("target dir");
        let status = std::process::Command::new(env!("CARGO"))
            .args([
                "build",
                "--quiet",
                "-p",
                "signoff-server",
                "--bin",
                "signoff-server",
                "-p",
                "signoff-tui",
                "--bin",
                "signoff",
            ])
            .status()
            .expect("run cargo build");
        assert!(status.success(), "building signoff-server and signoff failed");
        for binary in ["signoff-server", "signoff"] {
            assert!(
                dir.join(binary).exists(),
                "{} was not built",
                dir.join(binary).display()
            );
        }
        dir.to_path_buf()
    })
}

/// The `signoff-server` binary, built once per test process (see [`built_binaries`]).
pub fn server_binary() -> PathBuf {
    built_binaries().join("signoff-server")
}

/// `binary` run against `db`: a clean environment with the database, the data dir, a
/// placeholder provider (never contacted by the agent API) and warnings-only logs. Tests
/// and the benchmark start every server process from this.
pub fn server_command(binary: &Path, db: &TestDb) -> Command {
    let mut command = Command::new(binary);
    command
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DATABASE_URL", &db.url)
        .env("SIGNOFF_DATA_DIR", &db.dir)
        .env("SIGNOFF_OIDC_ISSUER", "http://127.0.0.1:9")
        .env("SIGNOFF_OIDC_CLIENT_ID", "signoff-web")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .kill_on_drop(true);
    command
}

/// The real binary, serving on 127.0.0.1:0 with the given environment.
pub struct ServerProcess {
    pub base_url: String,
    pub addr: std::net::SocketAddr,
    pub child: Child,
}

impl ServerProcess {
    pub async fn start(db: &TestDb, env: &[(&str, &str)]) -> ServerProcess {
        Self::spawn(db, env, Stdio::inherit()).await
    }

    /// As [`ServerProcess::start`], with the server's log (its stderr) written to `log`.
    pub async fn start_logging_to(db: &TestDb, env: &[(&str, &str)], log: &std::path::Path) -> ServerProcess {
        let file = std::fs::File::create(log).expect("create the server's log file");
        Self::spawn(db, env, Stdio::from(file)).await
    }

    async fn spawn(db: &TestDb, env: &[(&str, &str)], stderr: Stdio) -> ServerProcess {
        let mut command = server_command(&server_binary(), db);
        for (name, value) in env {
            command.env(name, value);
        }
        Self::launch(command, stderr)
            .await
            .unwrap_or_else(|err| panic!("{err}"))
    }

    /// Runs `command serve` on 127.0.0.1:0 and waits (at most 60 s) until it says where
    /// it listens; its stderr goes to `stderr`.
    pub async fn launch(mut command: Command, stderr: Stdio) -> Result<ServerProcess, String> {
        command
            .arg("serve")
            .env("SIGNOFF_LISTEN", "127.0.0.1:0")
            .stdout(Stdio::piped())
            .stderr(stderr);
        let mut child = command.spawn().map_err(|err| format!("start signoff-server: {err}"))?;
        let stdout = child.stdout.take().ok_or("signoff-server has no stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        let base_url = tokio::time::timeout(Duration::from_secs(60), async {
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(url) = line.strip_prefix("signoff-server listening on ") {
                    return Ok(url.trim().to_string());
                }
            }
            Err("signoff-server exited before listening".to_string())
        })
        .await
        .map_err(|_| "signoff-server did not listen within 60 s".to_string())??;
        // Keep draining stdout so the server never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        let addr = base_url
            .trim_start_matches("http://")
            .parse()
            .map_err(|_| format!("signoff-server printed an odd address: {base_url}"))?;
        Ok(ServerProcess { base_url, addr, child })
    }

    /// The process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// The binary signing reviewers in with `provider` (client `signoff-web`), with `env`
    /// on top.
    pub async fn start_with_provider(
        db: &TestDb,
        provider: &crate::oidc::Provider,
        env: &[(&str, &str)],
    ) -> ServerProcess {
        let mut all = vec![
            ("SIGNOFF_OIDC_ISSUER", provider.issuer.as_str()),
            ("SIGNOFF_OIDC_CLIENT_ID", "signoff-web"),
            ("SIGNOFF_OIDC_CLIENT_SECRET", "signoff-web-secret"),
        ];
        all.extend_from_slice(env);
        Self::start(db, &all).await
    }

    /// Kills the process with SIGKILL, as a crash or an OOM kill would: it gets no chance
    /// to finish anything. Returns once the process is gone.
    pub async fn kill(mut self) -> std::process::ExitStatus {
        tokio::time::timeout(Duration::from_secs(15), async {
            self.child.kill().await.expect("send SIGKILL");
            self.child.wait().await.expect("wait for exit")
        })
        .await
        .expect("gone within 15 s of SIGKILL")
    }

    /// Sends SIGTERM and waits for a clean exit.
    pub async fn terminate(mut self) -> std::process::ExitStatus {
        if let Some(pid) = self.child.id() {
            let _ = std::process::Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status();
        }
        tokio::time::timeout(Duration::from_secs(15), self.child.wait())
            .await
            .expect("exits within 15 s of SIGTERM")
            .expect("wait for exit")
    }
}

/// The terminal client's binary (`signoff`), built once per test process (see
/// [`built_binaries`]).
pub fn client_binary() -> PathBuf {
    built_binaries().join("signoff")
}

/// Runs a `signoff-server` subcommand against `db`; returns (exit code, stdout, stderr).
pub fn run_cli(db: &TestDb, args: &[&str]) -> (i32, String, String) {
    let output = std::process::Command::new(server_binary())
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DATABASE_URL", &db.url)
        .env("SIGNOFF_DATA_DIR", &db.dir)
        .env("RUST_LOG", "warn")
        .output()
        .expect("run signoff-server");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}
