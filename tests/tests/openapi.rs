//! The API's OpenAPI description: served at /api/v1/openapi.json, OpenAPI 3.1, naming every
//! `/api/v1` route the server has. And Schemathesis, a property-based API tester nobody here
//! wrote, run against a real server on both stores as an agent (a real API key), as a
//! reviewer (a real terminal token) and anonymously: no 5xx, and every response with a
//! status, content type, headers and body its operation documents.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use signoff_app::wire::DecisionInput;
use signoff_app::{Channel, Identity, Verdict};
use signoff_tests::fixtures::{ISSUER, request_body, reviewer};
use signoff_tests::server::read_reply;
use signoff_tests::{Backend, TestServer, on_both_stores};

on_both_stores!(
    the_document_is_openapi_3_1_and_describes_every_api_route,
    refusals_made_before_a_handler_runs_are_the_documented_json_error,
    the_api_answers_as_described_under_property_based_testing,
);

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the tests crate lives in the workspace")
        .to_path_buf()
}

async fn fetch_document(server: &TestServer) -> Value {
    let response = server
        .http
        .get(format!("{}/api/v1/openapi.json", server.base_url))
        .send()
        .await
        .expect("GET openapi.json");
    let reply = read_reply(response).await;
    assert_eq!(reply.status, 200, "served without credentials: {:?}", reply.body);
    assert!(
        reply.headers[reqwest::header::CONTENT_TYPE]
            .to_str()
            .is_ok_and(|value| value.starts_with("application/json")),
        "{:?}",
        reply.headers
    );
    reply.body
}

fn documented_operations(document: &Value) -> BTreeSet<(String, String)> {
    let paths = document["paths"].as_object().expect("paths");
    paths
        .iter()
        .flat_map(|(path, item)| {
            let methods = item.as_object().expect("path item");
            methods
                .keys()
                .filter(|method| ["get", "post", "put", "patch", "delete"].contains(&method.as_str()))
                .map(move |method| (method.to_uppercase(), path.clone()))
        })
        .collect()
}

/// Every `/api/v1` route in the server's source: each handler's `#[utoipa::path(method,
/// path = "…")]`, the only way the API registers a route (`utoipa_axum::routes!`). A plain
/// `.route("/api/v1…")` would serve a route the document does not name: none may exist.
fn routes_in_source() -> BTreeSet<(String, String)> {
    fn rust_files(dir: &Path, found: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).expect("read server source").flatten() {
            let path = entry.path();
            if path.is_dir() {
                rust_files(&path, found);
            } else if path.extension().is_some_and(|ext| ext == "rs") {
                found.push(path);
            }
        }
    }
    let mut files = Vec::new();
    rust_files(&workspace_root().join("server/src"), &mut files);
    let mut routes = BTreeSet::new();
    for file in files {
        let source = std::fs::read_to_string(&file).expect("read source file");
        assert!(
            !source.contains(".route(\"/api/v1"),
            "{} registers an /api/v1 route without its OpenAPI description: use #[utoipa::path] and routes!()",
            file.display()
        );
        for (start, _) in source.match_indices("#[utoipa::path(") {
            let attribute = &source[start..];
            let attribute = &attribute[..attribute.find(")]\n").expect("attribute ends")];
            let method = attribute["#[utoipa::path(".len()..]
                .trim_start()
                .split(',')
                .next()
                .expect("method")
                .trim()
                .to_uppercase();
            let path = attribute
                .split("path = \"")
                .nth(1)
                .and_then(|rest| rest.split('"').next())
                .expect("path");
            routes.insert((method, path.to_string()));
        }
    }
    routes
}

async fn the_document_is_openapi_3_1_and_describes_every_api_route(backend: Backend) {
    let server = TestServer::start(backend).await;
    let document = fetch_document(&server).await;
    assert_eq!(document["openapi"], "3.1.0");

    let documented = documented_operations(&document);
    assert_eq!(
        documented,
        routes_in_source(),
        "the document names exactly the routes the server registers"
    );
    for expected in [
        ("POST", "/api/v1/requests"),
        ("GET", "/api/v1/requests/{id}/wait"),
        ("POST", "/api/v1/requests/{id}/decisions"),
        ("GET", "/api/v1/events"),
        ("POST", "/api/v1/device/token"),
    ] {
        assert!(
            documented.contains(&(expected.0.to_string(), expected.1.to_string())),
            "{expected:?} is documented"
        );
    }

    // Each documented operation is served by its handler: not the router's "no such
    // endpoint", nor a method it does not take. (Without credentials most answer 401.)
    let unknown = server
        .http
        .get(format!("{}/api/v1/no-such-route", server.base_url))
        .send()
        .await
        .expect("GET");
    let unknown = read_reply(unknown).await;
    assert_eq!((unknown.status, unknown.error_message()), (404, "no such endpoint"));
    for (method, path) in &documented {
        let url = format!(
            "{}{}",
            server.base_url,
            path.replace("{id}", &uuid::Uuid::now_v7().to_string())
        );
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let reply = read_reply(server.http.request(method.clone(), &url).send().await.expect("request")).await;
        assert_ne!(reply.status, 405, "{method} {path}: {:?}", reply.body);
        assert_ne!(reply.error_message(), "no such endpoint", "{method} {path} is served");
    }

    // The live stream is described as server-sent events, each event's shape included.
    let stream = &document["paths"]["/api/v1/events"]["get"]["responses"]["200"]["content"]["text/event-stream"];
    assert_eq!(stream["schema"]["$ref"], "#/components/schemas/LiveEventMessage");

    // Both kinds of callers' credentials are described, and operations say which they take.
    let schemes = &document["components"]["securitySchemes"];
    assert_eq!(schemes["agent_key"]["scheme"], "bearer");
    assert_eq!(schemes["terminal_token"]["scheme"], "bearer");
    assert_eq!(schemes["session_cookie"]["in"], "cookie");
    let security = |method: &str, path: &str| document["paths"][path][method]["security"].clone();
    assert_eq!(security("post", "/api/v1/requests"), json!([{"agent_key": []}]));
    assert_eq!(
        security("post", "/api/v1/requests/{id}/decisions"),
        json!([{"terminal_token": []}, {"session_cookie": []}])
    );

    // Every error is the one error body, and every protected operation documents its 401.
    for (method, path) in &documented {
        let operation = &document["paths"][path][method.to_lowercase()];
        let responses = operation["responses"].as_object().expect("responses");
        for (status, response) in responses {
            let is_error = status.starts_with('4') || status.starts_with('5');
            let rfc_8628_refusal = path == "/api/v1/device/token" && status == "400";
            if is_error && !rfc_8628_refusal {
                assert_eq!(
                    response["content"]["application/json"]["schema"]["$ref"], "#/components/schemas/ErrorBody",
                    "{method} {path} {status}"
                );
            }
        }
        if operation.get("security").is_some() {
            assert!(responses.contains_key("401"), "{method} {path} documents 401");
        }
    }
    let error = &document["components"]["schemas"]["ErrorDetail"];
    assert_eq!(error["required"], json!(["code", "message"]));
}

/// What the router and body limit answer, not a handler: the same error body as the rest.
async fn refusals_made_before_a_handler_runs_are_the_documented_json_error(backend: Backend) {
    let server = TestServer::start(backend).await;
    let agent = server.agent("big-bot").await;
    let too_large = "a".repeat(signoff_app::wire::limits::BODY_BYTES + 1);
    for path in ["/api/v1/device/code", "/api/v1/device/token", "/api/v1/requests"] {
        let response = server
            .http
            .post(format!("{}{path}", server.base_url))
            .header("content-type", "application/json")
            .bearer_auth(&agent.key)
            .body(too_large.clone())
            .send()
            .await
            .expect("POST");
        let reply = read_reply(response).await;
        assert_eq!(reply.status, 413, "{path}: {:?}", reply.body);
        assert!(
            !reply.error_code().is_empty(),
            "{path} answers the JSON error body: {:?}",
            reply.body
        );
    }
    let wrong_method = server
        .http
        .put(format!("{}/api/v1/me", server.base_url))
        .send()
        .await
        .expect("PUT");
    let wrong_method = read_reply(wrong_method).await;
    assert_eq!(wrong_method.status, 405);
    assert_eq!(wrong_method.headers["allow"], "GET,HEAD");
    assert_eq!(wrong_method.error_code(), "bad_request");
}

/// A real terminal token, through the real sign-in flow over HTTP; the confirmation a
/// reviewer would type in the browser goes through the service, as the console would.
async fn terminal_token(server: &TestServer) -> String {
    let post = |path: &'static str, body: Value| {
        let request = server.http.post(format!("{}{path}", server.base_url)).json(&body);
        async move { read_reply(request.send().await.expect("POST")).await }
    };
    let code = post("/api/v1/device/code", json!({"client_name": "schemathesis"})).await;
    assert_eq!(code.status, 200, "{:?}", code.body);
    let admin = Identity {
        issuer: ISSUER.into(),
        subject: "admin-1".into(),
        email: Some("admin1@example.com".into()),
        email_verified: true,
        name: Some("Admin One".into()),
        groups: vec!["signoff-admins".into(), "signoff-reviewers".into()],
    };
    let confirmed = server
        .service
        .answer_device_code(code.body["user_code"].as_str().expect("user code"), &admin, true)
        .await
        .expect("confirm the code");
    assert!(confirmed);
    let token = post(
        "/api/v1/device/token",
        json!({"device_code": code.body["device_code"].as_str().expect("device code")}),
    )
    .await;
    assert_eq!(token.status, 200, "{:?}", token.body);
    token.body["access_token"].as_str().expect("token").to_string()
}

fn schemathesis() -> PathBuf {
    let binary = workspace_root().join("tests/openapi/.venv/bin/schemathesis");
    assert!(
        binary.exists(),
        "{} is missing: `just test-deps` installs it (tests/openapi/requirements.txt)",
        binary.display()
    );
    binary
}

/// Runs Schemathesis on some of the operations; fails with its report when it finds a
/// problem.
/// Requests the runs work on (`tests/openapi/schemathesis.toml` reads their ids).
struct Fixtures {
    pending: String,
    approved: String,
}

async fn run_schemathesis(
    server: &TestServer,
    fixtures: &Fixtures,
    who: &str,
    credential: Option<&str>,
    selection: &[&str],
) {
    let started = Instant::now();
    let workdir = server.db.dir.join(format!("schemathesis-{}", who.replace(' ', "-")));
    std::fs::create_dir_all(&workdir).expect("work dir");
    // Bounded, so a run stays under a minute a store; raise it for a deeper search.
    let examples = std::env::var("SIGNOFF_OPENAPI_EXAMPLES").unwrap_or_else(|_| "25".into());
    let mut command = tokio::process::Command::new(schemathesis());
    command
        .current_dir(&workdir)
        .arg("--config-file")
        .arg(workspace_root().join("tests/openapi/schemathesis.toml"))
        .arg("run")
        .arg(format!("{}/api/v1/openapi.json", server.base_url))
        .args(["--checks", "all"])
        // Schema-valid data the server refuses is not always a bug: JSON Schema counts 5.0
        // as an integer where the API wants 5, and some rules span fields (a denial needs a
        // comment). `negative_data_rejection` still checks that what the schemas forbid is refused.
        .args(["--exclude-checks", "positive_data_acceptance"])
        .args([
            "--max-examples",
            &examples,
            "--seed",
            "20261202",
            "--request-timeout",
            "10",
            "--workers",
            "2",
        ])
        .args(selection)
        .env("NO_COLOR", "1")
        .env("SIGNOFF_PENDING_REQUEST", &fixtures.pending)
        .env("SIGNOFF_APPROVED_REQUEST", &fixtures.approved)
        .kill_on_drop(true);
    if let Some(credential) = credential {
        command
            .arg("--header")
            .arg(format!("Authorization: Bearer {credential}"));
    }
    let output = tokio::time::timeout(Duration::from_secs(120), command.output())
        .await
        .expect("schemathesis finishes within 2 minutes")
        .expect("run schemathesis");
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let summary = report
        .lines()
        .skip_while(|line| !line.starts_with("Test cases:"))
        .take(2)
        .collect::<Vec<_>>()
        .join(" ");
    eprintln!("schemathesis as {who}, {:?}: {summary}", started.elapsed());
    assert!(
        output.status.success(),
        "schemathesis found problems as {who}:\n{report}"
    );
    assert!(
        report.contains("Tested:"),
        "schemathesis ran no tests as {who}:\n{report}"
    );
    if std::env::var_os("SIGNOFF_OPENAPI_REPORT").is_some() {
        eprintln!("{report}");
    }
}

async fn the_api_answers_as_described_under_property_based_testing(backend: Backend) {
    let server = TestServer::start(backend).await;
    let agent = server.agent("fuzz-bot").await;
    // One token a run that may end it: revoking tokens ends every token it lists. All
    // issued now, before the anonymous run spends this address's sign-in codes.
    let token = terminal_token(&server).await;
    let signing_out_token = terminal_token(&server).await;
    let revoking_token = terminal_token(&server).await;
    // Something in the queue and in history for the reviewer's calls to find, a request to
    // decide and one to report on.
    let pending = agent.submit(&request_body("Deploy payments-api 1.5.0")).await;
    let approved = agent.submit(&request_body("Deploy payments-api 1.4.9")).await;
    server
        .service
        .decide(
            &reviewer(1),
            approved.parse().expect("id"),
            &DecisionInput {
                verdict: Verdict::Approve,
                comment: "fine".into(),
                break_glass: false,
                grant: None,
            },
            Channel::Web,
        )
        .await
        .expect("approved");
    let cancelled = agent.submit(&request_body("Deploy payments-api 1.5.1")).await;
    let reply = agent
        .post(&format!("/api/v1/requests/{cancelled}/cancel"), &json!({}))
        .await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    let fixtures = Fixtures { pending, approved };

    run_schemathesis(
        &server,
        &fixtures,
        "agent",
        Some(&agent.key),
        &["--include-tag", "agent"],
    )
    .await;
    // Revoking tokens ends the ones the runs use, so those run last, each on its own token.
    // (The live stream is read one replayed event at a time: tests/openapi/schemathesis.toml.)
    run_schemathesis(
        &server,
        &fixtures,
        "reviewer",
        Some(&token),
        &[
            "--include-tag",
            "reviewer",
            "--exclude-operation-id",
            "revoke_token",
            "--exclude-operation-id",
            "revoke_own_token",
        ],
    )
    .await;
    // The runs reached real requests, not only unknown ids.
    let decided = agent.get(&format!("/api/v1/requests/{}", fixtures.pending)).await;
    assert_ne!(
        decided.body["status"], "pending",
        "schemathesis decided the pending request"
    );
    let reported = agent.get(&format!("/api/v1/requests/{}", fixtures.approved)).await;
    assert!(
        ["executed", "failed"].contains(&reported.body["status"].as_str().unwrap_or_default()),
        "schemathesis reported on the approved request: {:?}",
        reported.body
    );
    run_schemathesis(
        &server,
        &fixtures,
        "anonymous",
        None,
        &["--include-tag", "terminal sign-in"],
    )
    .await;
    run_schemathesis(
        &server,
        &fixtures,
        "reviewer signing out",
        Some(&signing_out_token),
        &["--include-operation-id", "revoke_own_token"],
    )
    .await;
    run_schemathesis(
        &server,
        &fixtures,
        "admin revoking tokens",
        Some(&revoking_token),
        &[
            "--include-operation-id",
            "list_tokens",
            "--include-operation-id",
            "revoke_token",
        ],
    )
    .await;
}
