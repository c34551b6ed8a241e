//! The real `signoff-server` binary: its subcommands, serving, cross-replica wake-ups
//! (Postgres), refusing unsafe starts, and shutting down cleanly.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use signoff_app::wire::DecisionInput;
use signoff_app::{Channel, Verdict};
use signoff_server::bus::EventBus;
use signoff_server::service::{Service, Settings};
use signoff_server::store::Store;
use signoff_tests::fixtures::{request_body, reviewer};
use signoff_tests::{AgentClient, Backend, ServerProcess, TestDb, on_both_stores, run_cli, server_binary};

on_both_stores!(
    agent_keys_are_managed_from_the_command_line,
    audit_trail_is_append_only_and_verifiable
);

async fn agent_keys_are_managed_from_the_command_line(backend: Backend) {
    let db = TestDb::new(backend).await;
    let (code, out, err) = run_cli(
        &db,
        &[
            "agents",
            "create",
            "--name",
            "deploy-bot",
            "--owner",
            "ops@example.com",
            "--description",
            "Deploys payments",
        ],
    );
    assert_eq!(code, 0, "{err}");
    let key = out.lines().last().expect("key on the last line").to_string();
    assert!(key.starts_with("so_agent_"), "{out}");

    let (code, out, _) = run_cli(&db, &["agents", "list"]);
    assert_eq!(code, 0);
    assert!(
        out.contains("deploy-bot\towner=ops@example.com\tdescription=Deploys payments\tactive_keys=1"),
        "{out}"
    );

    let server = ServerProcess::start(&db, &[]).await;
    let agent = AgentClient::new(&server.base_url, &key);
    let id = agent.submit(&request_body("Deploy from the binary")).await;
    let pending = agent.wait(&id, 1).await;
    assert_eq!(pending.body["status"], "pending");

    if backend == Backend::Postgres {
        // Another replica (this test process) decides; the binary's waiter hears it
        // through LISTEN/NOTIFY.
        let store = Store::connect(&db.url).await.expect("connect");
        let bus = EventBus::postgres(store.postgres_pool().expect("postgres").clone())
            .await
            .expect("listen");
        let settings = Settings {
            request_ttl: Duration::from_secs(3600),
            default_approvals: 1,
            reviewer_groups: vec!["signoff-reviewers".into()],
            max_waits_per_agent: 1_000,
            channels: Default::default(),
            callbacks: Default::default(),
            // Replicas share the log's key (here, its data dir).
            evidence: Arc::new(
                signoff_server::evidence::Evidence::load(&signoff_server::Config {
                    data_dir: db.dir.clone(),
                    ..signoff_server::Config::default()
                })
                .expect("the replica's audit key"),
            ),
        };
        let (_keep, shutdown) = tokio::sync::watch::channel(false);
        let replica = Arc::new(
            Service::open(store, bus, settings, shutdown)
                .await
                .expect("the replica's service"),
        );
        let waiter = {
            let agent = agent.clone();
            let id = id.clone();
            tokio::spawn(async move { agent.wait(&id, 60).await })
        };
        tokio::time::sleep(Duration::from_millis(300)).await;
        let input = DecisionInput {
            verdict: Verdict::Approve,
            comment: String::new(),
            break_glass: false,
            grant: None,
        };
        replica
            .decide(&reviewer(1), id.parse().expect("id"), &input, Channel::Web)
            .await
            .expect("decide");
        let reply = tokio::time::timeout(Duration::from_secs(10), waiter)
            .await
            .expect("woke across replicas")
            .expect("join");
        assert_eq!(reply.body["status"], "approved");
    }

    // Revoking reaches the running server too: its changes at once (tests/tests/credentials.rs),
    // its reads within moments (the server looks for changed credentials every 50 ms).
    let (code, out, _) = run_cli(&db, &["agents", "revoke", "deploy-bot"]);
    assert_eq!(code, 0);
    assert!(out.contains("revoked 1 key"), "{out}");
    let revoked = std::time::Instant::now();
    loop {
        let read = agent.get(&format!("/api/v1/requests/{id}")).await;
        if read.status == 401 {
            break;
        }
        assert_eq!(read.status, 200, "{:?}", read.body);
        assert!(
            revoked.elapsed() < Duration::from_secs(1),
            "reads still allowed after 1 s"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let (code, _, err) = run_cli(&db, &["agents", "revoke", "nobody"]);
    assert_eq!(code, 1);
    assert!(err.contains("no agent named nobody"));

    // A new key re-enables the agent; a waiting agent is answered promptly at shutdown.
    let (_, out, _) = run_cli(&db, &["agents", "create", "--name", "deploy-bot"]);
    let agent = AgentClient::new(&server.base_url, out.lines().last().expect("key"));
    let id = agent.submit(&request_body("In flight at shutdown")).await;
    let waiter = {
        let agent = agent.clone();
        tokio::spawn(async move { agent.wait(&id, 120).await })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let status = server.terminate().await;
    assert!(status.success(), "clean exit on SIGTERM: {status:?}");
    let reply = tokio::time::timeout(Duration::from_secs(5), waiter)
        .await
        .expect("answered at shutdown")
        .expect("join");
    assert_eq!(reply.body["status"], "pending");
}

async fn audit_trail_is_append_only_and_verifiable(backend: Backend) {
    let db = TestDb::new(backend).await;
    let (_, out, _) = run_cli(&db, &["agents", "create", "--name", "bot"]);
    let server = ServerProcess::start(&db, &[]).await;
    let agent = AgentClient::new(&server.base_url, out.lines().last().expect("key"));
    let id = agent.submit(&request_body("Audited")).await;
    agent.post(&format!("/api/v1/requests/{id}/cancel"), &json!({})).await;

    let (code, out, _) = run_cli(&db, &["audit", "verify"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("audit trail intact: 3 events"), "{out}");
    let (_, export, _) = run_cli(&db, &["audit", "export"]);
    let kinds: Vec<String> = export
        .lines()
        .map(|line| serde_json::from_str::<serde_json::Value>(line).expect("json line"))
        .filter(|line| line["type"] == "event")
        .map(|event| event["kind"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(kinds, ["agent.created", "request.created", "request.cancelled"]);

    // The database itself refuses to change or remove history.
    for statement in ["UPDATE audit_events SET kind = 'x'", "DELETE FROM audit_events"] {
        let refused = db.execute(statement).await;
        assert!(
            refused.as_ref().is_err_and(|message| message.contains("append-only")),
            "{statement}: {refused:?}"
        );
    }
    // Someone with the power to bypass the triggers is still caught by the chain.
    let bypass = match backend {
        Backend::Sqlite => "DROP TRIGGER audit_events_no_update",
        Backend::Postgres => "ALTER TABLE audit_events DISABLE TRIGGER audit_events_append_only",
    };
    db.execute(bypass).await.expect("bypass triggers");
    db.execute("UPDATE audit_events SET data = '{\"title\":\"harmless\"}' WHERE seq = 2")
        .await
        .expect("tamper");
    let (code, out, _) = run_cli(&db, &["audit", "verify"]);
    assert_eq!(code, 1);
    assert!(out.contains("BROKEN at event 2"), "{out}");
    server.terminate().await;
}

#[tokio::test]
async fn refuses_to_start_without_a_provider_or_dev_mode() {
    let db = TestDb::new(Backend::Sqlite).await;
    let output = tokio::process::Command::new(server_binary())
        .env_clear()
        .env("DATABASE_URL", &db.url)
        .env("SIGNOFF_LISTEN", "127.0.0.1:0")
        .output()
        .await
        .expect("run");
    assert!(!output.status.success());
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("SIGNOFF_OIDC_ISSUER"),
        "{output:?}"
    );
}

#[tokio::test]
async fn dev_mode_seeds_demo_agents_and_requests() {
    let db = TestDb::new(Backend::Sqlite).await;
    let mut child = tokio::process::Command::new(server_binary())
        .args(["--dev"])
        .env_clear()
        .env("SIGNOFF_DATA_DIR", &db.dir)
        .env("SIGNOFF_LISTEN", "127.0.0.1:0")
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start --dev");
    use tokio::io::AsyncBufReadExt;
    let mut lines = tokio::io::BufReader::new(child.stdout.take().expect("stdout")).lines();
    let (mut key, mut base_url) = (None, None);
    while let Ok(Some(line)) = tokio::time::timeout(Duration::from_secs(60), lines.next_line())
        .await
        .expect("output")
    {
        if let Some(rest) = line.strip_prefix("dev: agent deploy-bot key: ") {
            key = Some(rest.to_string());
        }
        if let Some(url) = line.strip_prefix("signoff-server listening on ") {
            base_url = Some(url.to_string());
            break;
        }
    }
    let agent = AgentClient::new(&base_url.expect("listening"), &key.expect("demo key printed"));
    let unknown = agent.get("/api/v1/requests/01937a4c-0000-7000-8000-000000000000").await;
    assert_eq!(unknown.status, 404, "the demo key authenticates");
    assert_eq!(db.count("requests").await, 3, "demo requests seeded");
    assert_eq!(
        db.scalar("SELECT COUNT(*) FROM requests WHERE status = 'pending'")
            .await,
        3
    );
}
