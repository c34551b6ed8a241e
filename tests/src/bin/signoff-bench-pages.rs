//! Console page timings with a large database (10,000 pending requests and 1,000,000 in
//! history), on both stores, against a release build; and the terminal client's first
//! frame with 5,000 pending. Part of `just bench`; prints a Markdown report.
//!
//! Rows are bulk-inserted with SQL (the API would take minutes to create a million); the
//! server then serves them as it would any others.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use signoff_server::Application;
use signoff_tests::browser::Browser;
use signoff_tests::server::test_config;
use signoff_tests::{Backend, TestDb};

const HISTORY_ROWS: i64 = 1_000_000;
const PENDING_ROWS: i64 = 10_000;
const SAMPLES: usize = 40;

#[tokio::main]
async fn main() {
    let mut report = String::from("## Console pages (server render + loopback, warm)\n\n");
    report.push_str(&format!(
        "{PENDING_ROWS} pending and {HISTORY_ROWS} decided requests; {SAMPLES} requests per page after 5 warm-ups.\n\n"
    ));
    report.push_str("| store | page | p50 ms | p99 ms | bytes |\n|---|---|---:|---:|---:|\n");
    let mut first_frame = String::new();
    for backend in [Backend::Sqlite, Backend::Postgres] {
        if backend == Backend::Postgres && !signoff_tests::db::postgres_available().await {
            report.push_str("| postgres | skipped: no server | | | |\n");
            continue;
        }
        match run(backend, &mut report).await {
            Ok(Some(frame)) => first_frame = frame,
            Ok(None) => {}
            Err(err) => report.push_str(&format!("| {backend:?} | failed: {err} | | | |\n")),
        }
    }
    report.push_str("\n## Terminal client\n\n");
    report.push_str(&first_frame);
    println!("{report}");
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/bench");
    let _ = std::fs::create_dir_all(&dir);
    let _ = std::fs::write(dir.join("pages.md"), &report);
}

async fn run(backend: Backend, report: &mut String) -> Result<Option<String>, String> {
    let db = TestDb::new(backend).await;
    let mut config = test_config(&db);
    config.dev = true;
    config.oidc.issuer = None;
    config.oidc.client_id = None;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| e.to_string())?;
    let app = Application::build(config, listener).await.map_err(|e| e.to_string())?;
    let base = app.public_url().to_string();
    let server = tokio::spawn(app.run_until(std::future::pending()));

    let seeded = Instant::now();
    seed(&db).await?;
    eprintln!("{backend:?}: seeded in {:.1} s", seeded.elapsed().as_secs_f64());

    let browser = Browser::new(&base);
    let page = browser.get(&format!("{base}/auth/dev")).await;
    let csrf = field(&page.body, "name=\"csrf\" value=\"").ok_or("no csrf on the dev sign-in page")?;
    browser
        .post_form("/auth/dev", &[("csrf", &csrf), ("user", "riley"), ("next", "/")])
        .await;

    let deep_cursor = format!(
        "{}.00000000-0000-7000-8000-{:012x}",
        1_700_000_000_000_i64 + 500_000 * 60_000,
        500_000
    );
    let pending_id = format!("00000000-0000-7000-9000-{:012x}", 5);
    let pages = [
        ("queue /", "/".to_string()),
        ("queue, needs my vote", "/?mine=true".to_string()),
        ("queue fragment (live refresh)", "/fragments/queue".to_string()),
        ("request page", format!("/requests/{pending_id}")),
        ("history, newest", "/history".to_string()),
        ("history, status=approved", "/history?status=approved".to_string()),
        ("history, agent", "/history?agent=bench-agent-2".to_string()),
        ("history, label env=prod", "/history?label=env%3Dprod".to_string()),
        (
            "history, reviewer",
            "/history?reviewer=reviewer3%40example.com".to_string(),
        ),
        ("history, deep page", format!("/history?cursor={deep_cursor}")),
    ];
    for (name, path) in pages {
        let url = format!("{base}{path}");
        let mut timings = Vec::with_capacity(SAMPLES);
        let mut bytes = 0;
        for round in 0..SAMPLES + 5 {
            let started = Instant::now();
            let response = browser.http.get(&url).send().await.map_err(|e| e.to_string())?;
            let status = response.status();
            let body = response.text().await.map_err(|e| e.to_string())?;
            let elapsed = started.elapsed();
            if !status.is_success() {
                return Err(format!("{path} answered {status}"));
            }
            bytes = body.len();
            if round >= 5 {
                timings.push(elapsed);
            }
        }
        timings.sort();
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        let p50 = timings[timings.len() / 2];
        let p99 = timings[(timings.len() * 99 / 100).min(timings.len() - 1)];
        report.push_str(&format!(
            "| {backend:?} | {name} | {:.1} | {:.1} | {bytes} |\n",
            ms(p50),
            ms(p99)
        ));
    }

    let frame = if backend == Backend::Sqlite {
        Some(first_frame(&base, &browser).await?)
    } else {
        None
    };
    server.abort();
    Ok(frame)
}

/// The terminal client's first frame, against this server (10,000 pending: the client
/// loads up to its limit), through a real terminal token.
async fn first_frame(base: &str, browser: &Browser) -> Result<String, String> {
    let http = reqwest::Client::new();
    let code: serde_json::Value = http
        .post(format!("{base}/api/v1/device/code"))
        .json(&serde_json::json!({"client_name": "bench"}))
        .send()
        .await
        .map_err(|e| e.to_string())?
        .json()
        .await
        .map_err(|e| e.to_string())?;
    let user_code = code["user_code"].as_str().ok_or("no user code")?;
    let page = browser.get(&format!("{base}/device?user_code={user_code}")).await;
    let csrf = field(&page.body, "name=\"csrf\" value=\"").ok_or("no csrf on /device")?;
    browser
        .post_form(
            "/device",
            &[("csrf", &csrf), ("user_code", user_code), ("answer", "approve")],
        )
        .await;
    let token: serde_json::Value = http
        .post(format!("{base}/api/v1/device/token"))
        .json(&serde_json::json!({"device_code": code["device_code"]}))
        .send()
        .await
        .map_err(|e| e.to_string())?
        .json()
        .await
        .map_err(|e| e.to_string())?;
    let token = token["access_token"].as_str().ok_or("no token")?;
    let home = std::env::temp_dir().join(format!("signoff-bench-tui-{}", std::process::id()));
    let config_dir = home.join("config/signoff");
    std::fs::create_dir_all(&config_dir).map_err(|e| e.to_string())?;
    std::fs::write(
        config_dir.join("credentials.json"),
        serde_json::json!({"server": base, "token": token}).to_string(),
    )
    .map_err(|e| e.to_string())?;
    let binary = std::env::current_exe()
        .map_err(|e| e.to_string())?
        .with_file_name("signoff");
    let mut lines = String::new();
    for _ in 0..3 {
        let output = std::process::Command::new(&binary)
            .args(["--bench-first-frame", "--server", base])
            .env("XDG_CONFIG_HOME", home.join("config"))
            .env("XDG_STATE_HOME", home.join("state"))
            .env("HOME", &home)
            .output()
            .map_err(|e| format!("run {}: {e}", binary.display()))?;
        lines = String::from_utf8_lossy(&output.stdout).trim().replace('\n', ", ");
        if !output.status.success() {
            return Err(format!(
                "signoff --bench-first-frame failed: {}",
                String::from_utf8_lossy(&output.stderr)
            ));
        }
    }
    let _ = std::fs::remove_dir_all(&home);
    Ok(format!(
        "`signoff --bench-first-frame` (release, SQLite server with {PENDING_ROWS} pending, third run): {lines}\n"
    ))
}

fn field(html: &str, marker: &str) -> Option<String> {
    let start = html.find(marker)? + marker.len();
    Some(html[start..start + html[start..].find('"')?].to_string())
}

/// Bulk rows: 1,000,000 decided over the past year and 10,000 pending, three agents,
/// labels in both places, and a decision on every fourth decided request.
async fn seed(db: &TestDb) -> Result<(), String> {
    let policy = r#"{"name":"default","version":0,"approvals_required":1,"approver_groups":["signoff-reviewers"]}"#;
    let (series, hex_id, pending_hex_id, concat) = match db.backend {
        Backend::Sqlite => (
            format!(
                "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < {}) ",
                HISTORY_ROWS - 1
            ),
            "printf('00000000-0000-7000-8000-%012x', i)",
            "printf('00000000-0000-7000-9000-%012x', i)",
            "||",
        ),
        Backend::Postgres => (
            String::new(),
            "'00000000-0000-7000-8000-' || lpad(to_hex(i), 12, '0')",
            "'00000000-0000-7000-9000-' || lpad(to_hex(i), 12, '0')",
            "||",
        ),
    };
    let from = |rows: i64| match db.backend {
        Backend::Sqlite => "FROM n".to_string(),
        Backend::Postgres => format!("FROM generate_series(0::bigint, {}) AS i", rows - 1),
    };
    let pending_series = match db.backend {
        Backend::Sqlite => format!(
            "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < {}) ",
            PENDING_ROWS - 1
        ),
        Backend::Postgres => String::new(),
    };
    // Pending requests were created over the last few hours and expire in a day.
    let now_ms = (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64;
    let pending_from = now_ms - PENDING_ROWS * 1000;
    let pending_until = now_ms + 86_400_000;
    let status = "CASE i % 4 WHEN 0 THEN 'approved' WHEN 1 THEN 'denied' WHEN 2 THEN 'expired' ELSE 'executed' END";
    let env = "CASE WHEN i % 3 = 0 THEN 'prod' ELSE 'dev' END";
    let statements = vec![
        "INSERT INTO agents (id, name, owner, created_at) VALUES \
         ('00000000-0000-7000-a000-000000000000', 'bench-agent-0', NULL, 0), \
         ('00000000-0000-7000-a000-000000000001', 'bench-agent-1', NULL, 0), \
         ('00000000-0000-7000-a000-000000000002', 'bench-agent-2', NULL, 0)"
            .to_string(),
        format!(
            "{series}INSERT INTO requests (id, agent_id, on_behalf_of, action, resource, title, reason, labels, payload, diff, context, digest, status, policy, approvals, created_at, expires_at, decided_at) \
             SELECT {hex_id}, '00000000-0000-7000-a000-00000000000' {concat} (i % 3), 'someone@example.com', 'deploy.service', 'k8s://prod/service-' {concat} (i % 100), \
             'Historic request ' {concat} i, 'bench', '{{\"env\":\"' {concat} {env} {concat} '\"}}', '{{}}', NULL, NULL, 'digest', {status}, '{policy}', 1, \
             1700000000000 + i * 60000, 1700000000000 + i * 60000 + 3600000, 1700000000000 + i * 60000 + 1000 {}",
            from(HISTORY_ROWS)
        ),
        format!(
            "{series}INSERT INTO request_labels (request_id, key, value, created_at) SELECT {hex_id}, 'env', {env}, 1700000000000 + i * 60000 {}",
            from(HISTORY_ROWS)
        ),
        format!(
            "{series}INSERT INTO decisions (id, request_id, reviewer_issuer, reviewer_subject, reviewer_email, reviewer_name, reviewer_groups, verdict, comment, channel, decided_at) \
             SELECT 'd' {concat} {hex_id}, {hex_id}, 'bench', 'reviewer-' {concat} (i % 7), 'reviewer' {concat} (i % 7) {concat} '@example.com', 'Reviewer', '[]', 'approve', '', 'web', 1700000000000 + i * 60000 + 1000 \
             {} WHERE i % 4 = 0",
            from(HISTORY_ROWS)
        ),
        format!(
            "{pending_series}INSERT INTO requests (id, agent_id, on_behalf_of, action, resource, title, reason, labels, payload, diff, context, digest, status, policy, approvals, created_at, expires_at) \
             SELECT {pending_hex_id}, '00000000-0000-7000-a000-00000000000' {concat} (i % 3), 'someone@example.com', 'db.export', 'postgres://prod/table-' {concat} (i % 50), \
             'Pending request ' {concat} i, 'bench', '{{\"env\":\"prod\"}}', '{{\"limit\":10}}', '--- a/x\n+++ b/x\n@@ -1 +1 @@\n-old\n+new\n', NULL, 'digest', 'pending', '{policy}', 0, \
             {pending_from} + i * 1000, {pending_until} {}",
            from(PENDING_ROWS)
        ),
    ];
    for statement in statements {
        db.execute(&statement).await.map_err(|err| format!("seeding: {err}"))?;
    }
    db.execute("ANALYZE").await.map_err(|err| format!("analyze: {err}"))?;
    Ok(())
}
