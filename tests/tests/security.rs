//! The attack paths of the security review, each tried as an attacker would, on both
//! stores where storage is involved: work an agent can impose, terminal tokens minting
//! themselves, one-click device phishing, open redirects, unverified emails, dev mode,
//! anonymous writes, races with the write lock, live streams outliving their credential,
//! headers and cookies, agent ownership, credentials at the wrong door (console forms
//! take console sessions only), HSTS, sign-out's CSRF check, body limits, and what
//! `agents list` prints.

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use reqwest::Method;
use serde_json::{Value, json};
use signoff_app::wire::DecisionInput;
use signoff_app::{Channel, RuleError, Verdict};
use signoff_server::Error;
use signoff_server::store::{ChainReport, verify_chain};
use signoff_tests::browser::Browser;
use signoff_tests::fixtures::{request_body, reviewer};
use signoff_tests::oidc::Provider;
use signoff_tests::server::read_reply;
use signoff_tests::{Backend, Reply, TestServer, on_both_stores, run_cli, server_binary};

on_both_stores!(
    a_huge_diff_cannot_stall_the_server,
    terminal_tokens_cannot_mint_terminal_tokens,
    device_sign_in_needs_the_code_typed_and_says_where_it_started,
    party_status_needs_a_verified_email,
    decisions_and_cancels_take_their_time_inside_the_lock,
    a_device_code_is_redeemed_once_under_concurrent_polls,
    audit_verify_on_a_live_server_sees_a_consistent_trail,
    live_streams_end_with_their_token_or_session,
    agents_create_sets_a_new_owner_and_audits_it,
    bearer_credentials_drive_no_console_form,
    credentials_are_refused_where_they_do_not_belong,
    agent_owners_and_descriptions_refuse_hidden_characters,
    agents_list_marks_control_characters_stored_before,
    secrets_are_stored_as_hashes_and_never_logged,
);

async fn signed_in(server: &TestServer, login: &str) -> (Browser, String) {
    let browser = server.browser();
    let page = browser.sign_in(login).await;
    assert_eq!(page.status, 200, "{login} lands on the console: {}", page.body);
    let csrf = page.csrf();
    (browser, csrf)
}

async fn post_json(server: &TestServer, path: &str, body: &Value) -> Reply {
    read_reply(
        server
            .http
            .post(format!("{}{path}", server.base_url))
            .json(body)
            .send()
            .await
            .expect("POST"),
    )
    .await
}

/// A device code asked for through a proxy that says the client is `forwarded_for`.
async fn device_code_via(server: &TestServer, forwarded_for: &str, body: Value) -> Reply {
    read_reply(
        server
            .http
            .post(format!("{}/api/v1/device/code", server.base_url))
            .header("X-Forwarded-For", forwarded_for)
            .json(&body)
            .send()
            .await
            .expect("code"),
    )
    .await
}

/// A terminal token for `browser`'s person, through the device flow.
async fn terminal_token(server: &TestServer, browser: &Browser, client_name: &str) -> String {
    let code = post_json(server, "/api/v1/device/code", &json!({ "client_name": client_name })).await;
    assert_eq!(code.status, 200, "{:?}", code.body);
    let user_code = code.body["user_code"].as_str().expect("user code");
    let done = browser.answer_device_code(user_code, "approve").await;
    assert!(done.body.contains("Terminal signed in"), "{}", done.body);
    let issued = post_json(
        server,
        "/api/v1/device/token",
        &json!({ "device_code": code.body["device_code"] }),
    )
    .await;
    assert_eq!(issued.status, 200, "{:?}", issued.body);
    issued.body["access_token"].as_str().expect("token").to_string()
}

// ----- 1. one agent request cannot stall the server ---------------------------------------

/// The huge-diff test's two store variants run one after the other: each measures how the
/// server answers under its attack, which the other's attack would distort.
static ONE_ATTACK_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Asks `/healthz` over and over from a thread and runtime of its own, so it measures how
/// long the server takes to answer, even when every thread of the test's runtime (which
/// the in-process server shares) is busy.
struct HealthProbe {
    samples: std::sync::Arc<std::sync::Mutex<Vec<Duration>>>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: std::thread::JoinHandle<()>,
}

impl HealthProbe {
    fn start(base_url: &str) -> HealthProbe {
        let url = format!("{base_url}/healthz");
        let samples = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (kept, stopped) = (std::sync::Arc::clone(&samples), std::sync::Arc::clone(&stop));
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("the probe's runtime");
            runtime.block_on(async {
                // Open loop: a new question every 10 ms whether or not the last was answered,
                // so a server that stops answering for a while leaves many slow answers, not
                // one.
                let http = reqwest::Client::new();
                let mut asking = tokio::task::JoinSet::new();
                let mut tick = tokio::time::interval(Duration::from_millis(10));
                while !stopped.load(std::sync::atomic::Ordering::SeqCst) {
                    tick.tick().await;
                    let (http, url, kept) = (http.clone(), url.clone(), std::sync::Arc::clone(&kept));
                    asking.spawn(async move {
                        let asked = Instant::now();
                        let health = http.get(&url).send().await.expect("healthz");
                        assert_eq!(health.status(), 200);
                        kept.lock().expect("samples").push(asked.elapsed());
                    });
                }
                while let Some(done) = asking.join_next().await {
                    done.unwrap_or_else(|failed| std::panic::resume_unwind(failed.into_panic()));
                }
            })
        });
        HealthProbe { samples, stop, thread }
    }

    /// Stops once it has at least `count` answers (a probe that fails fails the test);
    /// returns how long each took.
    async fn stop_after(self, count: usize) -> Vec<Duration> {
        while self.samples.lock().expect("samples").len() < count && !self.thread.is_finished() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        let thread = self.thread;
        tokio::task::spawn_blocking(move || thread.join())
            .await
            .expect("join the probe")
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        std::mem::take(&mut *self.samples.lock().expect("samples"))
    }
}

/// The `p`th percentile (0-100) of `samples`.
fn percentile(samples: &[Duration], p: usize) -> Duration {
    assert!(!samples.is_empty(), "no samples");
    let mut sorted = samples.to_vec();
    sorted.sort();
    sorted[(sorted.len() - 1) * p / 100]
}

/// `/healthz` answers (from a probe of its own) while four copies of `body` are posted at
/// once by `agent`; returns how long they took, and the replies.
async fn health_under(
    server: &TestServer,
    agent: &signoff_tests::AgentClient,
    body: &Value,
) -> (Vec<Duration>, Vec<Reply>) {
    let probe = HealthProbe::start(&server.base_url);
    // The probe is asking before the posts start.
    while probe.samples.lock().expect("samples").len() < 3 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let posts: Vec<_> = (0..4)
        .map(|_| {
            let (agent, body) = (agent.clone(), body.clone());
            tokio::spawn(async move { agent.post("/api/v1/requests", &body).await })
        })
        .collect();
    let mut replies = Vec::new();
    for post in posts {
        replies.push(post.await.expect("join"));
    }
    (probe.stop_after(0).await, replies)
}

async fn a_huge_diff_cannot_stall_the_server(backend: Backend) {
    let _alone = ONE_ATTACK_AT_A_TIME.lock().await;
    let server = TestServer::start(backend).await;
    let attacker = server.agent("attacker").await;
    let honest = server.agent("honest").await;

    // The yardstick: the most any agent may send, about 600 KB of JSON to parse, digest
    // and store (the same arrays, as the payload): how this server, debug build on a
    // shared machine, answers meanwhile.
    let mut heavy = request_body("As large as a request may be");
    heavy["payload"] = json!({"before": vec![0; 150_000], "after": vec![1; 150_000]});
    let (yardstick, replies) = health_under(&server, &honest, &heavy).await;
    for reply in replies {
        assert_eq!(reply.status, 201, "{:?}", reply.body);
    }

    // The attack: the same arrays as a diff's two sides, 150,000 lines a side to compare.
    let mut huge = request_body("A diff nobody can compute in time");
    huge["diff"] = json!({"before": vec![0; 150_000], "after": vec![1; 150_000]});
    let (attacked, replies) = health_under(&server, &attacker, &huge).await;
    for reply in replies {
        assert_eq!(reply.status, 413, "{:?}", reply.body);
        assert!(
            reply.error_message().contains("per side"),
            "the refusal names the bound: {}",
            reply.error_message()
        );
    }
    honest.submit(&request_body("An ordinary deploy")).await;

    // A diff costs the server's threads no more than any body of its size: it is bounded
    // before it is computed, and computed elsewhere. Slower for the busy machine is
    // expected, a stall behind the diff's work (half a second or more each) is not.
    let (usual, under_attack) = (percentile(&yardstick, 90), percentile(&attacked, 90));
    eprintln!(
        "/healthz p90: {usual:?} beside the largest requests ({} answers), {under_attack:?} beside the attack ({} answers)",
        yardstick.len(),
        attacked.len()
    );
    assert!(
        under_attack <= usual * 3 / 2 + Duration::from_millis(200),
        "/healthz p90 was {under_attack:?} under the attack, {usual:?} beside requests of its size: {attacked:?}"
    );
    assert_eq!(
        server.db.count("requests").await,
        5,
        "the four large requests and the ordinary one, none of the attack"
    );

    // Within the bounds, a diff of two wholly different sides still ends on its deadline.
    let mut wide = request_body("Every line changes");
    wide["diff"] = json!({"before": vec![0; 19_000], "after": vec![1; 19_000]});
    let asked = Instant::now();
    let reply = attacker.post("/api/v1/requests", &wide).await;
    assert_eq!(reply.status, 201, "{:?}", reply.body);
    assert!(asked.elapsed() < Duration::from_secs(20), "took {:?}", asked.elapsed());
}

// ----- 2. a terminal token cannot mint terminal tokens -------------------------------------

async fn terminal_tokens_cannot_mint_terminal_tokens(backend: Backend) {
    let provider = Provider::start().await;
    let server = TestServer::start_with_sso(backend, &provider, |_| {}).await;
    let (alice, alice_csrf) = signed_in(&server, "alice").await;
    let parent = terminal_token(&server, &alice, "laptop").await;

    // The token tries to confirm a code of its own making.
    let code = post_json(&server, "/api/v1/device/code", &json!({"client_name": "child"})).await;
    let user_code = code.body["user_code"].as_str().expect("code").to_string();
    let as_token = |method: Method, path: &str| {
        server
            .http
            .request(method, format!("{}{path}", server.base_url))
            .bearer_auth(&parent)
    };
    let page = as_token(Method::GET, "/device").send().await.expect("GET /device");
    assert_eq!(page.status(), 403, "the confirmation page is for browsers");
    let answered = as_token(Method::POST, "/device")
        .form(&[("user_code", user_code.as_str()), ("answer", "approve")])
        .send()
        .await
        .expect("POST /device");
    assert_eq!(answered.status(), 403);
    let body = answered.text().await.expect("body");
    assert!(body.contains("browser"), "the refusal says where to confirm: {body}");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let poll = post_json(
        &server,
        "/api/v1/device/token",
        &json!({ "device_code": code.body["device_code"] }),
    )
    .await;
    assert_eq!(
        poll.body["error"], "authorization_pending",
        "no child token: {:?}",
        poll.body
    );

    // Revoking the parent leaves alice with no token at all.
    let tokens = alice.api(Method::GET, "/api/v1/tokens", None, None).await;
    let id = tokens.body[0]["id"].as_str().expect("token id").to_string();
    assert_eq!(tokens.body.as_array().map(Vec::len), Some(1));
    let revoked = alice
        .api(Method::DELETE, &format!("/api/v1/tokens/{id}"), Some(&alice_csrf), None)
        .await;
    assert_eq!(revoked.status, 204);
    let left = alice.api(Method::GET, "/api/v1/tokens", None, None).await;
    assert_eq!(left.body, json!([]), "no descendant survives");
    let dead = as_token(Method::GET, "/api/v1/me").send().await.expect("me");
    assert_eq!(dead.status(), 401);
    assert_eq!(
        server
            .db
            .scalar("SELECT COUNT(*) FROM terminal_tokens WHERE revoked_at IS NULL")
            .await,
        0
    );
}

// ----- 3. one-click phishing through the device flow ---------------------------------------

async fn device_sign_in_needs_the_code_typed_and_says_where_it_started(backend: Backend) {
    let provider = Provider::start().await;
    let server = TestServer::start_with_sso(backend, &provider, |config| {
        config.trusted_proxies = vec!["127.0.0.1/32".parse().expect("network")];
        config.device_codes_per_minute = 3;
    })
    .await;
    let (alice, _) = signed_in(&server, "alice").await;
    // The attacker's terminal, behind our (trusted) proxy, names itself after the victim's.
    let code = device_code_via(
        &server,
        "198.51.100.66, 203.0.113.9",
        json!({"client_name": "alice-laptop"}),
    )
    .await;
    assert_eq!(code.status, 200, "{:?}", code.body);
    assert!(
        code.body.get("verification_uri_complete").is_none(),
        "no link carries the code: {:?}",
        code.body
    );
    let user_code = code.body["user_code"].as_str().expect("user code").to_string();

    // A link with the code in it does not pre-fill it, and offers nothing to click.
    let lured = alice
        .get(&format!("{}/device?user_code={user_code}", server.base_url))
        .await;
    assert_eq!(lured.status, 200);
    assert!(
        !lured.body.contains(&user_code),
        "the code is not pre-filled: {}",
        lured.body
    );
    assert!(
        !lured.body.contains("value=\"approve\""),
        "no confirm button before typing"
    );
    assert!(lured.body.contains("does not take codes from links"), "{}", lured.body);

    // Typed, the page says where and when the sign-in started, and that the name is a claim.
    let confirm = alice.type_device_code(&user_code).await;
    assert!(confirm.body.contains(&user_code), "{}", confirm.body);
    assert!(
        confirm.body.contains("203.0.113.9"),
        "the address the trusted proxy saw: {}",
        confirm.body
    );
    assert!(
        !confirm.body.contains("198.51.100.66"),
        "not what the client wrote itself"
    );
    assert!(confirm.body.contains("alice-laptop") && confirm.body.contains("as the terminal claims it"));
    assert!(confirm.body.contains("Started at"));
    // A cross-site form cannot skip the typing: the confirmation needs the page's token.
    let forged = alice
        .post_form(
            "/device",
            &[("csrf", "forged"), ("user_code", &user_code), ("answer", "approve")],
        )
        .await;
    assert_eq!(forged.status, 403);

    // Without trusted proxies, a client's own X-Forwarded-For is ignored.
    let direct = TestServer::start_with_sso(backend, &provider, |_| {}).await;
    let code = device_code_via(&direct, "203.0.113.9", json!({})).await;
    let (bob, _) = signed_in(&direct, "bob").await;
    let confirm = bob
        .type_device_code(code.body["user_code"].as_str().expect("code"))
        .await;
    assert!(confirm.body.contains("127.0.0.1"), "{}", confirm.body);
    assert!(!confirm.body.contains("203.0.113.9"));

    // Code creation is limited per client address (three a minute here; one used above).
    let mut statuses = Vec::new();
    let mut retry_after = None;
    for _ in 0..3 {
        let reply = device_code_via(&server, "203.0.113.9", json!({})).await;
        statuses.push(reply.status);
        retry_after = retry_after.or(reply.headers.get("retry-after").cloned());
    }
    assert_eq!(statuses, vec![200, 200, 429]);
    assert!(retry_after.is_some(), "429 says when to retry");
    let other = device_code_via(&server, "203.0.113.10", json!({})).await;
    assert_eq!(other.status, 200, "another address has its own allowance");
}

// ----- 4. open redirect after sign-in ------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sign_in_returns_only_to_local_paths() {
    let provider = Provider::start().await;
    let server = TestServer::start_with_sso(Backend::Sqlite, &provider, |_| {}).await;
    let browser = server.browser();
    for next in [
        "%2F%09%2Fevil.example",
        "%2F%0A%2Fevil.example",
        "%5Cevil.example",
        "%2F%5Cevil.example",
        "%2F%252F%252Fevil.example",
        "%2F%40evil.example",
        "%2F%2Fevil.example",
    ] {
        let callback = browser
            .sign_in_from_until_callback(&format!("/auth/login?next={next}"), "alice")
            .await;
        let landed = browser.hop(Method::GET, &callback, None).await;
        assert_eq!(landed.status, 303, "{next}: {}", landed.body);
        let location = landed.header("location");
        assert_eq!(location, "/", "next={next} is not followed");
    }
    let callback = browser
        .sign_in_from_until_callback("/auth/login?next=%2Fhistory%3Fstatus%3Dall", "alice")
        .await;
    let landed = browser.hop(Method::GET, &callback, None).await;
    assert_eq!(
        landed.header("location"),
        "/history?status=all",
        "a local path is followed"
    );
}

// ----- 5. self-approval cannot rest on an unverified or missing email -----------------------

async fn decide(browser: &Browser, csrf: &str, id: &str) -> Reply {
    browser
        .api(
            Method::POST,
            &format!("/api/v1/requests/{id}/decisions"),
            Some(csrf),
            Some(&json!({"verdict": "approve"})),
        )
        .await
}

async fn party_status_needs_a_verified_email(backend: Backend) {
    let provider = Provider::start().await;
    let server = TestServer::start_with_sso(backend, &provider, |_| {}).await;
    let agent = server.agent_owned_by("deploy-bot", Some("owner@example.com")).await;
    let named = agent.submit(&request_body("Names its people by email")).await;

    // Uma's provider does not vouch for her email; Nia's sends none. Neither can be
    // cleared of being the requester, so neither may decide.
    for login in ["uma", "nia"] {
        let (browser, csrf) = signed_in(&server, login).await;
        let view = browser
            .api(Method::GET, &format!("/api/v1/requests/{named}"), None, None)
            .await;
        assert_eq!(view.body["viewer"]["can_decide"], false, "{login}: {:?}", view.body);
        let refused = decide(&browser, &csrf, &named).await;
        assert_eq!(refused.status, 403, "{login}: {:?}", refused.body);
        assert_eq!(refused.error_code(), "party_unknown");
        assert!(
            refused.error_message().contains("verified email"),
            "says why: {}",
            refused.error_message()
        );
        // A request that names nobody by email is theirs to decide.
        let unowned = server.agent(&format!("plain-{login}")).await;
        let plain = unowned
            .submit(&json!({"action": "deploy.service", "resource": "k8s://x", "title": "No parties"}))
            .await;
        assert_eq!(decide(&browser, &csrf, &plain).await.status, 200, "{login}");
        // The agent's owner is a party too, even with nobody named on the request.
        let owned = agent
            .submit(&json!({"action": "deploy.service", "resource": "k8s://x", "title": "Owned agent"}))
            .await;
        assert_eq!(
            decide(&browser, &csrf, &owned).await.error_code(),
            "party_unknown",
            "{login}"
        );
    }

    // Case differences do not hide the requester.
    let shouting = {
        let mut body = request_body("For Alice, in capitals");
        body["on_behalf_of"] = json!("ALICE@Example.COM");
        agent.submit(&body).await
    };
    let (alice, alice_csrf) = signed_in(&server, "alice").await;
    let own = decide(&alice, &alice_csrf, &shouting).await;
    assert_eq!(own.error_code(), "own_request", "{:?}", own.body);
    // A verified email that differs clears a reviewer.
    assert_eq!(decide(&alice, &alice_csrf, &named).await.status, 200);

    // The operator may vouch for the provider's emails.
    let trusting = TestServer::start_with_sso(backend, &provider, |config| config.oidc.emails_verified = true).await;
    let agent = trusting.agent("deploy-bot").await;
    let id = agent.submit(&request_body("Uma may decide here")).await;
    let (uma, uma_csrf) = signed_in(&trusting, "uma").await;
    assert_eq!(decide(&uma, &uma_csrf, &id).await.status, 200);
}

// ----- 6. development sign-in only by the flag ----------------------------------------------

#[tokio::test]
async fn development_mode_needs_the_flag_and_no_provider() {
    let dir = std::env::temp_dir().join(format!("signoff-dev-{}", uuid::Uuid::now_v7().simple()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let run = |args: &[&str], env: &[(&str, &str)]| {
        let mut command = std::process::Command::new(server_binary());
        command
            .args(args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("SIGNOFF_DATA_DIR", &dir)
            .env("SIGNOFF_LISTEN", "127.0.0.1:0");
        for (name, value) in env {
            command.env(name, value);
        }
        let output = command.output().expect("run signoff-server");
        (
            output.status.success(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    };
    let (started, stderr) = run(
        &["--dev", "serve"],
        &[
            ("SIGNOFF_OIDC_ISSUER", "https://sso.example.com"),
            ("SIGNOFF_OIDC_CLIENT_ID", "x"),
        ],
    );
    assert!(!started, "--dev with a provider must not start");
    assert!(stderr.contains("--dev"), "{stderr}");

    let file = dir.join("signoff.toml");
    std::fs::write(&file, "dev = true\n").expect("config");
    let (started, stderr) = run(&["--config", file.to_str().expect("path"), "serve"], &[]);
    assert!(!started, "a configuration file cannot turn on dev mode");
    assert!(stderr.contains("only by the --dev flag"), "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}

// ----- 7. anonymous writes are limited and unknown codes cost no write -----------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn anonymous_endpoints_are_rate_limited_per_address() {
    let provider = Provider::start().await;
    let server = TestServer::start_with_sso(Backend::Sqlite, &provider, |config| {
        config.rate_limit_per_minute = 4;
    })
    .await;
    let browser = server.browser();
    let mut statuses = Vec::new();
    for _ in 0..5 {
        statuses.push(
            browser
                .hop(Method::GET, &format!("{}/auth/login", server.base_url), None)
                .await,
        );
    }
    let codes: Vec<u16> = statuses.iter().map(|page| page.status).collect();
    assert_eq!(codes, vec![303, 303, 303, 303, 429], "sign-in starts");
    let limited = &statuses[4];
    let retry: u64 = limited.header("retry-after").parse().expect("Retry-After");
    assert!((1..=16).contains(&retry), "retry after {retry}s");
    assert!(limited.body.contains("too many requests"), "{}", limited.body);

    let mut polls = Vec::new();
    for _ in 0..5 {
        polls.push(
            post_json(
                &server,
                "/api/v1/device/token",
                &json!({"device_code": "so_device_guess"}),
            )
            .await,
        );
    }
    let codes: Vec<u16> = polls.iter().map(|reply| reply.status).collect();
    assert_eq!(codes, vec![400, 400, 400, 400, 429], "token polls");
    assert_eq!(polls[4].error_code(), "rate_limited");
}

/// On SQLite every write queues for the one writer: a poll for a code nobody issued must
/// not join that queue. Another connection holds the write lock while guesses arrive.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn unknown_device_codes_are_answered_without_the_writer() {
    use sqlx::Connection;
    let server = TestServer::start(Backend::Sqlite).await;
    let mut holder = sqlx::SqliteConnection::connect(&server.db.url).await.expect("connect");
    sqlx::query("BEGIN IMMEDIATE")
        .execute(&mut holder)
        .await
        .expect("hold the write lock");
    let asked = Instant::now();
    let guess = post_json(
        &server,
        "/api/v1/device/token",
        &json!({"device_code": "so_device_guess"}),
    )
    .await;
    let took = asked.elapsed();
    sqlx::query("ROLLBACK").execute(&mut holder).await.expect("release");
    assert_eq!(guess.body["error"], "invalid_grant", "{:?}", guess.body);
    assert!(
        took < Duration::from_secs(3),
        "the guess waited for the writer: {took:?}"
    );
}

// ----- 10. races: times inside the lock, codes redeemed once, a consistent audit walk -------

async fn decisions_and_cancels_take_their_time_inside_the_lock(backend: Backend) {
    let server = TestServer::start_with(backend, |config| {
        // The sweeper must not get there first and make the race moot.
        config.sweep_interval = Duration::from_secs(3600);
    })
    .await;
    let agent = server.agent("deploy-bot").await;
    let mut body = request_body("Expires while the decision waits for the lock");
    // Time enough to send the change before expiry on a busy machine.
    body["ttl_s"] = json!(3);
    let created = agent.post("/api/v1/requests", &body).await;
    let (id, expires_at) = id_and_expiry(&created);
    let release = server.hold_the_writer().await;
    let service = server.service.clone();
    let parsed = id.parse().expect("id");
    let decision = tokio::spawn(async move {
        let approve = DecisionInput {
            verdict: Verdict::Approve,
            comment: String::new(),
            break_glass: false,
            grant: None,
        };
        let sent = time::OffsetDateTime::now_utc();
        (sent, service.decide(&reviewer(1), parsed, &approve, Channel::Api).await)
    });
    // Held at the lock until the request's time has passed.
    until_past(expires_at).await;
    assert!(
        !decision.is_finished(),
        "the decision waits for the lock the test holds"
    );
    let _ = release.send(());
    let (sent, decided) = decision.await.expect("join");
    assert!(
        sent < expires_at,
        "the decision was sent at {sent}, not before the expiry at {expires_at}: the race did not happen"
    );
    assert!(
        matches!(decided, Err(Error::Rule(RuleError::Expired))),
        "an approval sent before expiry that got the lock after it is refused: {decided:?}"
    );
    let now = agent.get(&format!("/api/v1/requests/{id}")).await;
    assert_eq!(now.body["status"], "expired");

    let created = agent.post("/api/v1/requests", &body).await;
    let (id, expires_at) = id_and_expiry(&created);
    let release = server.hold_the_writer().await;
    let cancel = {
        let agent = agent.clone();
        let id = id.clone();
        tokio::spawn(async move {
            let sent = time::OffsetDateTime::now_utc();
            (
                sent,
                agent.post(&format!("/api/v1/requests/{id}/cancel"), &json!({})).await,
            )
        })
    };
    until_past(expires_at).await;
    assert!(!cancel.is_finished(), "the cancel waits for the lock the test holds");
    let _ = release.send(());
    let (sent, cancelled) = cancel.await.expect("join");
    assert!(
        sent < expires_at,
        "the cancel was sent at {sent}, not before the expiry at {expires_at}: the race did not happen"
    );
    assert_eq!(cancelled.status, 409, "{:?}", cancelled.body);
    let now = agent.get(&format!("/api/v1/requests/{id}")).await;
    assert_eq!(now.body["status"], "expired", "what really happened is recorded");
}

/// The id and `expires_at` of a request just created.
fn id_and_expiry(created: &Reply) -> (String, time::OffsetDateTime) {
    assert_eq!(created.status, 201, "{:?}", created.body);
    let expires_at = time::OffsetDateTime::parse(
        created.body["expires_at"].as_str().expect("expires_at"),
        &time::format_description::well_known::Rfc3339,
    )
    .expect("timestamp");
    (created.body["id"].as_str().expect("id").to_string(), expires_at)
}

/// Returns once the clock has passed `instant` (by a few milliseconds, the stored times'
/// precision and more).
async fn until_past(instant: time::OffsetDateTime) {
    loop {
        let left = instant + time::Duration::milliseconds(20) - time::OffsetDateTime::now_utc();
        if left.is_negative() {
            return;
        }
        tokio::time::sleep(left.try_into().unwrap_or(Duration::from_millis(1))).await;
    }
}

async fn a_device_code_is_redeemed_once_under_concurrent_polls(backend: Backend) {
    let provider = Provider::start().await;
    let server = TestServer::start_with_sso(backend, &provider, |_| {}).await;
    let (alice, _) = signed_in(&server, "alice").await;
    let code = post_json(&server, "/api/v1/device/code", &json!({"client_name": "laptop"})).await;
    let user_code = code.body["user_code"].as_str().expect("code");
    alice.answer_device_code(user_code, "approve").await;
    let device_code = code.body["device_code"].clone();
    let polls: Vec<_> = (0..8)
        .map(|_| {
            let url = format!("{}/api/v1/device/token", server.base_url);
            let http = server.http.clone();
            let body = json!({ "device_code": device_code });
            tokio::spawn(async move { read_reply(http.post(url).json(&body).send().await.expect("poll")).await })
        })
        .collect();
    let mut issued = 0;
    for poll in polls {
        let reply = poll.await.expect("join");
        if reply.status == 200 {
            issued += 1;
        } else {
            assert_eq!(reply.body["error"], "invalid_grant", "{:?}", reply.body);
        }
    }
    assert_eq!(issued, 1, "one confirmation, one token");
    assert_eq!(server.db.count("terminal_tokens").await, 1);
}

async fn audit_verify_on_a_live_server_sees_a_consistent_trail(backend: Backend) {
    let server = TestServer::start(backend).await;
    let agent = server.agent("busy-bot").await;
    // Enough events that the walk reads several pages.
    let creators: Vec<_> = (0..4)
        .map(|n| {
            let agent = agent.clone();
            tokio::spawn(async move {
                for i in 0..300 {
                    agent.submit(&request_body(&format!("Seed {n}-{i}"))).await;
                }
            })
        })
        .collect();
    for creator in creators {
        creator.await.expect("seed");
    }
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let writer = {
        let agent = agent.clone();
        tokio::spawn(async move {
            let mut written = 0;
            while !*stopped.borrow() {
                agent.submit(&request_body("Written during the walk")).await;
                written += 1;
            }
            written
        })
    };
    let store = server.service.store().clone();
    for _ in 0..5 {
        let report = verify_chain(&store).await.expect("verify");
        assert!(matches!(report, ChainReport::Intact { .. }), "{report:?}");
    }
    let _ = stop.send(true);
    let written = writer.await.expect("writer");
    assert!(written > 0, "writes landed during the walks");
    assert!(matches!(
        verify_chain(&store).await.expect("verify"),
        ChainReport::Intact { .. }
    ));
}

// ----- 12. live streams, headers, cookies, long-poll caps, provider errors ---------------------

/// Reads the stream until it ends; panics if it is still open after `limit`.
async fn ends_within(response: reqwest::Response, limit: Duration) {
    let mut stream = response.bytes_stream();
    let ended = tokio::time::timeout(limit, async {
        while let Some(chunk) = stream.next().await {
            if chunk.is_err() {
                break;
            }
        }
    })
    .await;
    assert!(ended.is_ok(), "the stream was still open after {limit:?}");
}

async fn live_streams_end_with_their_token_or_session(backend: Backend) {
    let provider = Provider::start().await;
    let server = TestServer::start_with_sso(backend, &provider, |_| {}).await;
    let (alice, alice_csrf) = signed_in(&server, "alice").await;
    let token = terminal_token(&server, &alice, "laptop").await;
    let stream = server
        .http
        .get(format!("{}/api/v1/events", server.base_url))
        .bearer_auth(&token)
        .send()
        .await
        .expect("events");
    assert_eq!(stream.status(), 200);
    let revoke = server
        .http
        .post(format!("{}/api/v1/tokens/revoke", server.base_url))
        .bearer_auth(&token)
        .send()
        .await
        .expect("revoke");
    assert_eq!(revoke.status(), 204);
    ends_within(stream, Duration::from_secs(8)).await;

    let stream = alice
        .http
        .get(format!("{}/api/v1/events", server.base_url))
        .send()
        .await
        .expect("events");
    assert_eq!(stream.status(), 200);
    let out = alice.post_form("/auth/logout", &[("csrf", &alice_csrf)]).await;
    assert!(out.status < 500, "{}", out.body);
    ends_within(stream, Duration::from_secs(8)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn https_deployments_get_hsts_host_cookies_and_a_narrow_form_action() {
    let provider = Provider::start().await;
    let server = TestServer::start_with_sso(Backend::Sqlite, &provider, |config| {
        config.public_url = Some("https://signoff.example.test".into());
    })
    .await;
    let start = server
        .browser()
        .hop(Method::GET, &format!("{}/auth/login", server.base_url), None)
        .await;
    assert_eq!(start.status, 303);
    let cookie = start.header("set-cookie").to_string();
    assert!(cookie.starts_with("__Host-signoff_session="), "{cookie}");
    assert!(
        cookie.contains("Secure") && cookie.contains("Path=/") && !cookie.contains("Domain"),
        "{cookie}"
    );
    let hsts = start.header("strict-transport-security");
    assert!(hsts.contains("max-age="), "{hsts:?}");
    let csp = start.header("content-security-policy").to_string();
    assert!(
        csp.contains(&format!("form-action 'self' {};", provider.issuer)),
        "forms go only to us and the provider: {csp}"
    );
    assert!(!csp.contains("https: http:"), "no longer any site at all: {csp}");

    let plain = TestServer::start_with_sso(Backend::Sqlite, &provider, |_| {}).await;
    let start = plain
        .browser()
        .hop(Method::GET, &format!("{}/auth/login", plain.base_url), None)
        .await;
    assert!(start.header("strict-transport-security").is_empty());
    let cookie = start.header("set-cookie");
    assert!(cookie.starts_with("signoff_session="), "{cookie}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_agent_cannot_hold_every_long_poll() {
    let server = TestServer::start_with(Backend::Sqlite, |config| config.max_waits_per_agent = 2).await;
    let greedy = server.agent("greedy").await;
    let other = server.agent("other").await;
    let ids = [
        greedy.submit(&request_body("one")).await,
        greedy.submit(&request_body("two")).await,
        greedy.submit(&request_body("three")).await,
    ];
    let held: Vec<_> = ids[..2]
        .iter()
        .map(|id| {
            let greedy = greedy.clone();
            let id = id.clone();
            tokio::spawn(async move { greedy.wait(&id, 3).await })
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(5);
    while server.service.waiting_agents() < 2 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let refused = greedy.wait(&ids[2], 1).await;
    assert_eq!(refused.status, 429, "{:?}", refused.body);
    assert!(refused.headers.get("retry-after").is_some());
    let id = other.submit(&request_body("someone else")).await;
    assert_eq!(other.wait(&id, 1).await.status, 200, "other agents are not affected");
    for wait in held {
        assert_eq!(wait.await.expect("join").status, 200);
    }
    assert_eq!(greedy.wait(&ids[2], 1).await.status, 200, "slots come back");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn provider_failures_show_people_no_internals() {
    // The test configuration names a provider on a closed port.
    let server = TestServer::start(Backend::Sqlite).await;
    let page = server.browser().get(&format!("{}/auth/login", server.base_url)).await;
    assert_eq!(page.status, 502, "{}", page.body);
    assert!(page.body.contains("OpenID Provider"), "{}", page.body);
    for internal in [
        "127.0.0.1:9",
        "error sending request",
        "onnection refused",
        ".well-known",
    ] {
        assert!(
            !page.body.contains(internal),
            "the page shows {internal:?}: {}",
            page.body
        );
    }
    // What a provider writes in the callback URL is not repeated beyond its error code.
    let provider = Provider::start().await;
    let server = TestServer::start_with_sso(Backend::Sqlite, &provider, |_| {}).await;
    let browser = server.browser();
    let started = browser
        .hop(Method::GET, &format!("{}/auth/login", server.base_url), None)
        .await;
    assert_eq!(started.status, 303);
    let callback = browser
        .hop(
            Method::GET,
            &format!(
                "{}/auth/callback?error=access_denied&error_description=see%20http%3A%2F%2Finternal.example%2Fdebug",
                server.base_url
            ),
            None,
        )
        .await;
    assert_eq!(callback.status, 401, "{}", callback.body);
    assert!(callback.body.contains("access_denied"), "{}", callback.body);
    assert!(!callback.body.contains("internal.example"), "{}", callback.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_not_eligible_refusal_does_not_list_approver_groups() {
    let server = TestServer::start(Backend::Sqlite).await;
    let agent = server.agent("deploy-bot").await;
    let id = agent.submit(&request_body("Only for reviewers")).await;
    let mut outsider = reviewer(9);
    outsider.groups = vec!["marketing".into()];
    let approve = DecisionInput {
        verdict: Verdict::Approve,
        comment: String::new(),
        break_glass: false,
        grant: None,
    };
    let refused = server
        .service
        .decide(&outsider, id.parse().expect("id"), &approve, Channel::Web)
        .await
        .expect_err("not an approver");
    assert!(matches!(refused, Error::Rule(RuleError::NotEligible)), "{refused:?}");
    assert!(!refused.to_string().contains("signoff-reviewers"), "{refused}");
}

// ----- 13. agents create --owner on an existing agent ---------------------------------------

async fn agents_create_sets_a_new_owner_and_audits_it(backend: Backend) {
    let db = signoff_tests::TestDb::new(backend).await;
    let (code, out, err) = run_cli(
        &db,
        &["agents", "create", "--name", "bot", "--owner", "ann@example.com"],
    );
    assert_eq!(code, 0, "{out}{err}");
    let (code, out, err) = run_cli(
        &db,
        &["agents", "create", "--name", "bot", "--owner", "ben@example.com"],
    );
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("owner changed from ann@example.com to ben@example.com"),
        "the operator is told: {out}"
    );
    let (_, list, _) = run_cli(&db, &["agents", "list"]);
    assert!(list.contains("owner=ben@example.com"), "{list}");
    let (_, trail, _) = run_cli(&db, &["audit", "export"]);
    let change = trail
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .find(|event| event["kind"] == "agent.owner_changed")
        .expect("the change is audited");
    assert_eq!(change["data"]["before"]["owner"], "ann@example.com");
    assert_eq!(change["data"]["after"]["owner"], "ben@example.com");
    // Without --owner the owner stays.
    let (_, out, _) = run_cli(&db, &["agents", "create", "--name", "bot"]);
    assert!(out.contains("issued it a new key"), "{out}");
    let (_, list, _) = run_cli(&db, &["agents", "list"]);
    assert!(list.contains("owner=ben@example.com"), "{list}");
    let (code, out, _) = run_cli(&db, &["audit", "verify"]);
    assert_eq!(code, 0, "{out}");
}

// ----- 7. credentials on the wrong door ----------------------------------------------------

/// Every form a console page posts, with fields that would change something: an
/// allow-everything policy, a new agent, a key rotated or revoked, a decision, a sign-out,
/// a terminal sign-in approved, a token revoked.
fn console_forms(
    policy: &str,
    request: &str,
    token_id: &str,
    user_code: &str,
) -> Vec<(String, Vec<(&'static str, String)>)> {
    let allow_all = || {
        vec![
            ("name", "allow everything".to_string()),
            ("enabled", "on".to_string()),
            ("effect", "allow".to_string()),
        ]
    };
    vec![
        ("/admin/policies/new".into(), allow_all()),
        (format!("/admin/policies/{policy}"), allow_all()),
        (
            format!("/admin/policies/{policy}/move"),
            vec![("direction", "up".into())],
        ),
        (
            "/admin/what-if".into(),
            vec![("draft", String::new()), ("last", "10".into())],
        ),
        (
            "/admin/test".into(),
            vec![("agent", "deploy-bot".into()), ("body", "{}".into())],
        ),
        (
            "/admin/agents".into(),
            vec![("name", "token-bot".into()), ("owner", "eve@example.com".into())],
        ),
        ("/admin/agents/deploy-bot/rotate".into(), vec![]),
        ("/admin/agents/deploy-bot/revoke".into(), vec![]),
        ("/admin/grants/g-1/revoke".into(), vec![]),
        (format!("/admin/followups/{request}/acknowledge"), vec![]),
        ("/grants/g-1/revoke".into(), vec![]),
        (
            format!("/requests/{request}/decide"),
            vec![("verdict", "approve".into()), ("comment", "looks fine".into())],
        ),
        ("/auth/logout".into(), vec![]),
        (
            "/device".into(),
            vec![("user_code", user_code.to_string()), ("answer", "approve".into())],
        ),
        (format!("/me/tokens/{token_id}/revoke"), vec![]),
    ]
}

async fn bearer_credentials_drive_no_console_form(backend: Backend) {
    let provider = Provider::start().await;
    let server = TestServer::start_with_sso(backend, &provider, |_| {}).await;
    let agent = server.agent("deploy-bot").await;
    let request = agent.submit(&request_body("Deploy payments")).await;
    let policy = server
        .service
        .save_policy(
            None,
            signoff_app::policy::PolicyDoc {
                name: "no drops".into(),
                description: String::new(),
                enabled: true,
                matcher: signoff_app::policy::Matcher {
                    actions: vec!["db.drop".into()],
                    ..Default::default()
                },
                effect: signoff_app::policy::Effect::Deny { reason: "never".into() },
            },
            signoff_server::store::Actor::Operator,
        )
        .await
        .expect("policy saved")
        .id;
    // An admin with a console session and a terminal token; the session's CSRF token is
    // sent too, as a thief who read a page would.
    let (carol, csrf) = signed_in(&server, "carol").await;
    let token = terminal_token(&server, &carol, "laptop").await;
    let tokens = carol.api(Method::GET, "/api/v1/tokens", None, None).await;
    let token_id = tokens.body[0]["id"].as_str().expect("token id").to_string();
    let code = post_json(&server, "/api/v1/device/code", &json!({"client_name": "stranger"})).await;
    let user_code = code.body["user_code"].as_str().expect("user code").to_string();

    let events = server.db.count("audit_events").await;
    for (credential, key) in [("terminal token", &token), ("agent key", &agent.key)] {
        for (path, mut fields) in console_forms(&policy, &request, &token_id, &user_code) {
            fields.push(("csrf", csrf.clone()));
            let page = server
                .http
                .post(format!("{}{path}", server.base_url))
                .bearer_auth(key)
                .header("Origin", &server.base_url)
                .form(&fields)
                .send()
                .await
                .expect("POST");
            let status = page.status().as_u16();
            let body = page.text().await.expect("body");
            assert_eq!(status, 403, "POST {path} with an admin's {credential}: {body}");
            assert!(
                body.contains("console forms take a signed-in browser session only"),
                "POST {path} with an admin's {credential} says why: {body}"
            );
        }
    }

    // Nothing changed: no event, no policy, no agent; the keys, the token, the request and
    // the terminal sign-in are as they were.
    assert_eq!(server.db.count("audit_events").await, events, "nothing was recorded");
    assert_eq!(server.db.count("policies").await, 1);
    assert_eq!(server.db.count("agents").await, 1);
    let shown = agent.get(&format!("/api/v1/requests/{request}")).await;
    assert_eq!(shown.status, 200, "the agent's key still works");
    assert_eq!(shown.body["status"], "pending");
    let me = server
        .http
        .get(format!("{}/api/v1/me", server.base_url))
        .bearer_auth(&token)
        .send()
        .await
        .expect("me");
    assert_eq!(me.status(), 200, "the token was not revoked");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let poll = post_json(
        &server,
        "/api/v1/device/token",
        &json!({ "device_code": code.body["device_code"] }),
    )
    .await;
    assert_eq!(poll.body["error"], "authorization_pending", "{:?}", poll.body);
    let admin = carol.get(&format!("{}/admin/policies", server.base_url)).await;
    assert!(!admin.body.contains("allow everything"), "{}", admin.body);
}

/// The MCP client's first message.
fn mcp_initialize() -> Value {
    json!({
        "jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}
    })
}

async fn credentials_are_refused_where_they_do_not_belong(backend: Backend) {
    let provider = Provider::start().await;
    let server = TestServer::start_with_sso(backend, &provider, |_| {}).await;
    let agent = server.agent("deploy-bot").await;
    let request = agent.submit(&request_body("Deploy payments")).await;
    let (alice, _) = signed_in(&server, "alice").await;
    let token = terminal_token(&server, &alice, "laptop").await;
    let url = |path: &str| format!("{}{path}", server.base_url);
    let decision = json!({"verdict": "approve", "comment": "ok"});

    // Each credential at its own door works.
    assert_eq!(agent.get(&format!("/api/v1/requests/{request}")).await.status, 200);
    let own = |request: reqwest::RequestBuilder| async move { request.send().await.expect("call").status().as_u16() };
    assert_eq!(own(server.http.get(url("/api/v1/me")).bearer_auth(&token)).await, 200);
    assert_eq!(own(alice.http.get(url("/api/v1/me"))).await, 200);
    let mcp = |request: reqwest::RequestBuilder| {
        request
            .header("Accept", "application/json, text/event-stream")
            .json(&mcp_initialize())
    };
    assert_eq!(
        own(mcp(server.http.post(url("/mcp")).bearer_auth(&agent.key))).await,
        200
    );

    // An agent key at the people's doors: the reviewer API, the console.
    for (method, path, body) in [
        (Method::GET, "/api/v1/requests".to_string(), None),
        (Method::GET, "/api/v1/me".into(), None),
        (Method::GET, "/api/v1/events".into(), None),
        (Method::GET, "/api/v1/tokens".into(), None),
        (
            Method::POST,
            format!("/api/v1/requests/{request}/decisions"),
            Some(&decision),
        ),
        (Method::GET, "/".into(), None),
        (Method::GET, "/admin/agents".into(), None),
    ] {
        let mut call = server.http.request(method.clone(), url(&path)).bearer_auth(&agent.key);
        if let Some(body) = body {
            call = call.json(body);
        }
        assert_eq!(own(call).await, 401, "{method} {path} with an agent key");
    }

    // A terminal token and a console session at the agents' doors: the agent API, /mcp.
    let submit = request_body("Smuggled in");
    for (name, person) in [
        ("terminal token", server.http.clone()),
        ("console session", alice.http.clone()),
    ] {
        let with = |call: reqwest::RequestBuilder| {
            let call = call.header("Origin", &server.base_url);
            if name == "terminal token" {
                call.bearer_auth(&token)
            } else {
                call
            }
        };
        for (method, path) in [
            (Method::POST, "/api/v1/requests".to_string()),
            (Method::GET, format!("/api/v1/requests/{request}/wait?timeout_s=1")),
            (Method::POST, format!("/api/v1/requests/{request}/cancel")),
            (Method::POST, format!("/api/v1/requests/{request}/result")),
        ] {
            let call = with(person.request(method.clone(), url(&path))).json(&submit);
            assert_eq!(own(call).await, 401, "{method} {path} with a {name}");
        }
        let call = mcp(with(person.post(url("/mcp"))));
        assert_eq!(own(call).await, 401, "POST /mcp with a {name}");
    }
    assert_eq!(server.db.count("requests").await, 1, "nothing was submitted");
    let shown = agent.get(&format!("/api/v1/requests/{request}")).await;
    assert_eq!(shown.body["status"], "pending", "nothing was cancelled or decided");
}

// ----- 8. HSTS, sign-out, body limits ------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn https_puts_hsts_on_every_response() {
    let provider = Provider::start().await;
    let server = TestServer::start_with_sso(Backend::Sqlite, &provider, |config| {
        config.public_url = Some("https://signoff.example.test".into());
    })
    .await;
    let agent = server.agent("deploy-bot").await;
    let url = |path: &str| format!("{}{path}", server.base_url);
    let huge = json!({"title": "x".repeat(1_500_000)});
    // Redirects are not followed: the redirect itself is the response checked.
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let calls = [
        ("healthz", http.get(url("/healthz"))),
        ("readyz", http.get(url("/readyz"))),
        ("metrics", http.get(url("/metrics"))),
        ("stylesheet", http.get(url("/static/signoff.css"))),
        ("favicon", http.get(url("/favicon.ico"))),
        ("openapi", http.get(url("/api/v1/openapi.json"))),
        ("queue redirect", http.get(url("/"))),
        ("sign-in redirect", http.get(url("/auth/login"))),
        ("signed out page", http.get(url("/auth/logged-out"))),
        ("404 page", http.get(url("/nowhere")).header("Accept", "text/html")),
        ("404 JSON", http.get(url("/api/v1/nowhere"))),
        ("405", http.delete(url("/healthz"))),
        ("401 agent API", http.post(url("/api/v1/requests")).json(&json!({}))),
        ("401 reviewer API", http.get(url("/api/v1/me"))),
        ("401 MCP", http.post(url("/mcp")).json(&mcp_initialize())),
        (
            "201 agent API",
            http.post(url("/api/v1/requests"))
                .bearer_auth(&agent.key)
                .json(&request_body("hsts")),
        ),
        (
            "413 agent API",
            http.post(url("/api/v1/requests")).bearer_auth(&agent.key).json(&huge),
        ),
        ("device code", http.post(url("/api/v1/device/code")).json(&json!({}))),
        ("anonymous form", http.post(url("/admin/agents")).form(&[("name", "x")])),
    ];
    for (what, call) in calls {
        let response = call.send().await.expect("call");
        let status = response.status().as_u16();
        let hsts = response
            .headers()
            .get("strict-transport-security")
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let body = response.text().await.unwrap_or_default();
        assert!(
            hsts.contains("max-age=31536000"),
            "{what} ({status}) carries HSTS: {hsts:?} {body}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn signing_out_needs_the_csrf_token() {
    let provider = Provider::start().await;
    let server = TestServer::start_with_sso(Backend::Sqlite, &provider, |_| {}).await;
    let (alice, csrf) = signed_in(&server, "alice").await;
    let logout = format!("{}/auth/logout", server.base_url);
    for (what, form) in [("no token", vec![]), ("another token", vec![("csrf", "not-the-token")])] {
        let out = alice.hop(Method::POST, &logout, Some(&form)).await;
        assert_eq!(out.status, 403, "signing out with {what}: {}", out.body);
        let still = alice.api(Method::GET, "/api/v1/me", None, None).await;
        assert_eq!(still.status, 200, "after a sign-out with {what}, the session survives");
    }
    let out = alice.hop(Method::POST, &logout, Some(&[("csrf", csrf.as_str())])).await;
    assert_eq!(out.status, 303, "{}", out.body);
    let gone = alice.api(Method::GET, "/api/v1/me", None, None).await;
    assert_eq!(gone.status, 401, "signed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn console_forms_and_mcp_take_at_most_1_mib() {
    let provider = Provider::start().await;
    let server = TestServer::start_with_sso(Backend::Sqlite, &provider, |_| {}).await;
    let agent = server.agent("deploy-bot").await;
    let request = agent.submit(&request_body("Deploy payments")).await;
    let (carol, csrf) = signed_in(&server, "carol").await;
    let over = "x".repeat(1_500_000);
    let under = "x".repeat(1_000_000);

    let refused = [
        (
            "/admin/what-if".to_string(),
            vec![("draft", over.as_str()), ("last", "10")],
        ),
        (
            "/admin/agents".into(),
            vec![("name", "big-bot"), ("description", over.as_str())],
        ),
        (
            format!("/requests/{request}/decide"),
            vec![("verdict", "approve"), ("comment", over.as_str())],
        ),
    ];
    for (path, mut fields) in refused {
        fields.push(("csrf", &csrf));
        let page = carol.post_form(&path, &fields).await;
        assert_eq!(page.status, 413, "POST {path} of 1.5 MB");
        assert!(page.body.contains("<!DOCTYPE html>"), "a page says why: {}", page.body);
    }
    let fits = carol
        .post_form("/admin/what-if", &[("csrf", &csrf), ("draft", &under), ("last", "10")])
        .await;
    assert_eq!(fits.status, 422, "a form under 1 MiB is read (and this draft refused)");
    assert_eq!(server.db.count("agents").await, 1, "no agent was made");
    let shown = agent.get(&format!("/api/v1/requests/{request}")).await;
    assert_eq!(shown.body["status"], "pending", "nothing was decided");

    let call = json!({
        "jsonrpc": "2.0", "id": 2, "method": "tools/call",
        "params": {"name": "request_approval", "arguments": {
            "action": "deploy.service", "resource": "k8s://prod/x", "title": "big", "reason": over, "wait_s": 0
        }}
    });
    let reply = server
        .http
        .post(format!("{}/mcp", server.base_url))
        .bearer_auth(&agent.key)
        .header("Accept", "application/json, text/event-stream")
        .json(&call)
        .send()
        .await
        .expect("POST /mcp");
    assert_eq!(reply.status(), 413, "/mcp refuses a body of 1.5 MB");
    assert_eq!(
        server.db.count("requests").await,
        1,
        "nothing was submitted through /mcp"
    );
}

// ----- 9. what agents list prints ----------------------------------------------------------

async fn agent_owners_and_descriptions_refuse_hidden_characters(backend: Backend) {
    let db = signoff_tests::TestDb::new(backend).await;
    for (flag, value, field) in [
        ("--owner", "ops\u{1b}[2J@example.com", "owner"),
        ("--owner", "moc.elpmaxe@\u{202E}ops", "owner"),
        ("--description", "Deploys\nforged\trow", "description"),
        ("--description", "Deploys\u{200B} payments", "description"),
    ] {
        let (code, out, err) = run_cli(&db, &["agents", "create", "--name", "bot", flag, value]);
        assert_ne!(code, 0, "{flag} {value:?} is refused: {out}");
        assert!(
            err.contains(&format!("{field} may not hold control or invisible characters")),
            "the error names the field: {err}"
        );
    }
    let (_, list, _) = run_cli(&db, &["agents", "list"]);
    assert!(list.contains("no agents yet"), "nothing was stored: {list}");

    // The console's form is refused the same way, saying which field.
    let provider = Provider::start().await;
    let server = TestServer::start_with_sso(backend, &provider, |_| {}).await;
    let (carol, csrf) = signed_in(&server, "carol").await;
    for (field, value) in [("owner", "ops\u{7}@example.com"), ("description", "Left\u{202E}right")] {
        let page = carol
            .post_form("/admin/agents", &[("csrf", &csrf), ("name", "bot"), (field, value)])
            .await;
        assert_eq!(page.status, 422, "{field} {value:?}: {}", page.body);
        assert!(
            page.body
                .contains(&format!("{field} may not hold control or invisible characters")),
            "{}",
            page.body
        );
    }
    assert_eq!(server.db.count("agents").await, 0);
}

async fn agents_list_marks_control_characters_stored_before(backend: Backend) {
    let db = signoff_tests::TestDb::new(backend).await;
    let (code, out, err) = run_cli(
        &db,
        &["agents", "create", "--name", "bot", "--owner", "ops@example.com"],
    );
    assert_eq!(code, 0, "{out}{err}");
    // As a value stored before owners and descriptions were checked.
    db.execute("UPDATE agents SET owner = 'ops\u{1b}[2J\nforged\trow=1', description = 'abc\u{202E}fed'")
        .await
        .expect("update");
    let (code, list, err) = run_cli(&db, &["agents", "list"]);
    assert_eq!(code, 0, "{err}");
    assert!(!list.contains('\u{1b}') && !list.contains('\u{202E}'), "{list:?}");
    assert_eq!(list.lines().count(), 1, "one agent, one line: {list:?}");
    assert_eq!(list.matches('\t').count(), 4, "only the columns' tabs: {list:?}");
    assert!(
        list.contains("owner=ops⟨U+001B⟩[2J⟨U+000A⟩forged⟨U+0009⟩row=1\t")
            && list.contains("description=abc⟨U+202E⟩fed\t"),
        "{list}"
    );
}

/// The SHA-256 of `secret` in hex, as the server stores keys and tokens.
fn sha256_hex(secret: &str) -> String {
    use sha2::Digest;
    format!("{:x}", sha2::Sha256::digest(secret.as_bytes()))
}

/// Agent keys, terminal tokens and device codes are stored only as hashes, and the
/// server's own log, at debug, never holds one of them nor the OIDC client secret, while
/// each is used the ways it can be.
async fn secrets_are_stored_as_hashes_and_never_logged(backend: Backend) {
    let provider = Provider::start().await;
    let db = signoff_tests::TestDb::new(backend).await;
    let (code, out, err) = run_cli(&db, &["agents", "create", "--name", "deploy-bot"]);
    assert_eq!(code, 0, "{out}{err}");
    let key = out.lines().last().expect("the key").trim().to_string();
    assert!(key.starts_with("so_agent_"), "{out}");
    let client_secret = "signoff-web-secret";
    let log = db.dir.join("signoff-server.log");
    let server = signoff_tests::ServerProcess::start_logging_to(
        &db,
        &[
            ("SIGNOFF_OIDC_ISSUER", provider.issuer.as_str()),
            ("SIGNOFF_OIDC_CLIENT_ID", "signoff-web"),
            ("SIGNOFF_OIDC_CLIENT_SECRET", client_secret),
            ("RUST_LOG", "debug"),
        ],
        &log,
    )
    .await;
    let base = server.base_url.clone();
    let http = reqwest::Client::new();

    // The agent key: the API, a long-poll, MCP, and a report.
    let agent = signoff_tests::AgentClient::new(&base, &key);
    let id = agent.submit(&request_body("Deploy payments-api 1.5.0")).await;
    assert_eq!(agent.wait(&id, 0).await.status, 200);
    let mcp = read_reply(
        http.post(format!("{base}/mcp"))
            .bearer_auth(&key)
            .header("Accept", "application/json, text/event-stream")
            .json(&json!({
                "jsonrpc": "2.0", "id": 1, "method": "initialize",
                "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}
            }))
            .send()
            .await
            .expect("POST /mcp"),
    )
    .await;
    assert_eq!(mcp.status, 200, "{:?}", mcp.body);

    // The client secret: a reviewer signs in (the code is exchanged with it). The terminal
    // token and its device code: the device flow, then the reviewer API and its stream.
    let alice = Browser::new(&base);
    let page = alice.sign_in("alice").await;
    assert_eq!(page.status, 200, "{}", page.body);
    let code = read_reply(
        http.post(format!("{base}/api/v1/device/code"))
            .json(&json!({"client_name": "laptop"}))
            .send()
            .await
            .expect("code"),
    )
    .await;
    let device_code = code.body["device_code"].as_str().expect("device code").to_string();
    let done = alice
        .answer_device_code(code.body["user_code"].as_str().expect("user code"), "approve")
        .await;
    assert!(done.body.contains("Terminal signed in"), "{}", done.body);
    let issued = read_reply(
        http.post(format!("{base}/api/v1/device/token"))
            .json(&json!({ "device_code": device_code }))
            .send()
            .await
            .expect("token"),
    )
    .await;
    assert_eq!(issued.status, 200, "{:?}", issued.body);
    let token = issued.body["access_token"].as_str().expect("token").to_string();
    let queue = http
        .get(format!("{base}/api/v1/requests?status=pending"))
        .bearer_auth(&token)
        .send()
        .await
        .expect("queue");
    assert_eq!(queue.status(), 200);
    let mut events = http
        .get(format!("{base}/api/v1/events"))
        .bearer_auth(&token)
        .send()
        .await
        .expect("events");
    assert_eq!(events.status(), 200);
    let decided = read_reply(
        http.post(format!("{base}/api/v1/requests/{id}/decisions"))
            .bearer_auth(&token)
            .json(&json!({"verdict": "approve", "comment": "ok"}))
            .send()
            .await
            .expect("decide"),
    )
    .await;
    assert_eq!(decided.body["status"], "approved", "{:?}", decided.body);
    let first_event = tokio::time::timeout(Duration::from_secs(30), events.chunk())
        .await
        .expect("the stream speaks")
        .expect("read the stream");
    assert!(first_event.is_some(), "the stream sent something");
    drop(events);
    let reported = agent
        .post(&format!("/api/v1/requests/{id}/result"), &json!({"status": "executed"}))
        .await;
    assert_eq!(reported.body["status"], "executed", "{:?}", reported.body);
    // Wrong credentials are logged as refusals, still without the credential.
    let wrong = signoff_tests::AgentClient::new(&base, &format!("{key}x"));
    assert_eq!(wrong.get(&format!("/api/v1/requests/{id}")).await.status, 401);

    let exit = server.terminate().await;
    assert!(exit.success(), "the server stops cleanly: {exit:?}");

    let secrets = [
        ("the agent key", key.as_str()),
        ("the terminal token", token.as_str()),
        ("the device code", device_code.as_str()),
        ("the OIDC client secret", client_secret),
    ];
    // The log, which must be there and at debug for its silence to mean something.
    let text = std::fs::read_to_string(&log).expect("the server's log");
    assert!(
        text.contains("DEBUG") && text.contains("signoff-server listening"),
        "the log is the server's, at debug:\n{text}"
    );
    for (what, secret) in secrets {
        assert!(!text.contains(secret), "{what} is in the server's log");
    }

    // On SQLite, not in the files either (free pages, the write-ahead log).
    if backend == Backend::Sqlite {
        for entry in std::fs::read_dir(&db.dir).expect("the data dir").flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if !name.starts_with("signoff.db") {
                continue;
            }
            // (Read before anything else opens the database, which may remove its -wal.)
            let bytes = std::fs::read(entry.path()).expect("read the database file");
            for (what, secret) in secrets {
                assert!(
                    !bytes.windows(secret.len()).any(|window| window == secret.as_bytes()),
                    "{what} is in {name}"
                );
            }
        }
    }

    // The tables: each secret is there as its hash, and nowhere as itself.
    let rows = db.all_rows().await;
    let holding = |needle: &str| -> Vec<&str> {
        rows.iter()
            .filter(|(_, row)| row.contains(needle))
            .map(|(table, _)| table.as_str())
            .collect()
    };
    assert_eq!(holding(&sha256_hex(&key)), ["api_keys"], "the key's hash is stored");
    assert_eq!(
        holding(&sha256_hex(&token)),
        ["terminal_tokens"],
        "the token's hash is stored"
    );
    assert_eq!(
        holding(&sha256_hex(&device_code)),
        ["device_codes"],
        "the device code's hash is stored"
    );
    for (what, secret) in secrets {
        assert!(
            holding(secret).is_empty(),
            "{what} is stored as itself in {:?}",
            holding(secret)
        );
    }
}
