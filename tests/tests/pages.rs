//! Console pages over HTTP, signed in through the real provider: escaping and security
//! headers, error pages, the decide forms, queue ordering, history filters, pagination
//! and CSV export. (tests/console.rs drives the same pages in real Chromium.)

use reqwest::Method;
use serde_json::json;
use signoff_tests::browser::Browser;
use signoff_tests::fixtures::request_body;
use signoff_tests::oidc::Provider;
use signoff_tests::{Backend, TestServer, on_both_stores};

on_both_stores!(
    pages_escape_agent_text_and_carry_security_headers,
    decide_forms_enforce_the_rules_and_move_on,
    history_filters_paginates_and_exports_csv,
    history_by_reviewer_includes_requests_still_waiting_for_more_approvals,
);

async fn signed_in(server: &TestServer, login: &str) -> (Browser, String) {
    let browser = server.browser();
    let page = browser.sign_in(login).await;
    let csrf = page.csrf();
    (browser, csrf)
}

async fn pages_escape_agent_text_and_carry_security_headers(backend: Backend) {
    let provider = Provider::start().await;
    let server = TestServer::start_with_sso(backend, &provider, |_| {}).await;
    let agent = server.agent("deploy-bot").await;
    let mut body = request_body("<script>alert('title')</script>");
    body["reason"] = json!("<img src=x onerror=alert(1)>");
    body["diff"] = json!("--- a/x.html\n+++ b/x.html\n@@ -1 +1 @@\n-<b>old</b>\n+<script>alert('diff')</script>\n");
    let id = agent.submit(&body).await;
    let mut soon = request_body("Expires soon");
    soon["ttl_s"] = json!(120);
    agent.submit(&soon).await;

    let (alice, _) = signed_in(&server, "alice").await;
    let queue = alice.get(&format!("{}/", server.base_url)).await;
    let csp = queue.headers["content-security-policy"].to_str().unwrap_or_default();
    assert!(
        csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"),
        "{csp}"
    );
    assert_eq!(queue.headers["x-content-type-options"], "nosniff");
    assert!(
        !queue.body.contains("<script>alert"),
        "agent text is escaped in the queue"
    );
    assert!(queue.body.contains("&lt;script&gt;alert("), "and still readable");
    assert!(
        queue.body.contains("<title>(2) Queue · Signoff</title>"),
        "the count is in the tab title"
    );
    // Oldest first by default; by urgency on request.
    let first_row = |body: &str| body.split("<tr data-id=").nth(1).unwrap_or_default().to_string();
    assert!(first_row(&queue.body).contains("alert("), "oldest first");
    let urgent = alice.get(&format!("{}/?order=expiry", server.base_url)).await;
    assert!(first_row(&urgent.body).contains("Expires soon"), "expiring first");

    let page = alice.get(&format!("{}/requests/{id}", server.base_url)).await;
    assert_eq!(page.status, 200);
    assert!(
        !page.body.contains("<script>alert") && !page.body.contains("<img src=x"),
        "nothing from the agent runs"
    );
    assert!(
        page.body.contains("<tr class=\"add\">") && page.body.contains("<tr class=\"del\">"),
        "diff rows are classed"
    );
    let split = alice
        .get(&format!("{}/requests/{id}?view=split", server.base_url))
        .await;
    assert!(split.body.contains("class=\"diff split\""));

    let missing = alice
        .get(&format!(
            "{}/requests/01937a4c-0000-7000-8000-000000000000",
            server.base_url
        ))
        .await;
    assert_eq!(missing.status, 404);
    assert!(
        missing.body.contains("Back to the queue"),
        "an error page with a way back"
    );
    let nowhere = alice
        .http
        .get(format!("{}/nowhere", server.base_url))
        .header("Accept", "text/html")
        .send()
        .await
        .expect("get");
    assert_eq!(nowhere.status(), 404);
    assert!(nowhere.text().await.unwrap_or_default().contains("<!DOCTYPE html>"));
    let api_nowhere = alice.api(Method::GET, "/api/v1/nowhere", None, None).await;
    assert_eq!(api_nowhere.error_code(), "not_found");

    // Pages need a signed-in person; without one the browser is sent to sign in.
    let anonymous = server.browser();
    let redirect = anonymous
        .hop(Method::GET, &format!("{}/requests/{id}", server.base_url), None)
        .await;
    assert_eq!(redirect.status, 303);
    assert!(
        redirect.headers["location"]
            .to_str()
            .unwrap_or_default()
            .starts_with("/auth/login?next=%2Frequests%2F")
    );
    // Someone without a role sees why, not the request.
    let dave = server.browser();
    dave.sign_in("dave").await;
    let refused = dave.get(&format!("{}/requests/{id}", server.base_url)).await;
    assert_eq!(refused.status, 403);
    assert!(
        !refused.body.contains("alert("),
        "no request content for people without a role"
    );
}

async fn decide_forms_enforce_the_rules_and_move_on(backend: Backend) {
    let provider = Provider::start().await;
    let server = TestServer::start_with_sso(backend, &provider, |_| {}).await;
    let agent = server.agent("deploy-bot").await;
    let first = agent.submit(&request_body("First")).await;
    let second = agent.submit(&request_body("Second")).await;
    let (alice, csrf) = signed_in(&server, "alice").await;
    let path = format!("/requests/{first}/decide");

    let silent = alice
        .post_form(&path, &[("csrf", &csrf), ("verdict", "deny"), ("comment", "  ")])
        .await;
    assert_eq!(silent.status, 422);
    assert!(silent.body.contains("a deny needs a comment"), "the page says why");
    let forged = alice
        .post_form(&path, &[("csrf", "forged"), ("verdict", "approve"), ("comment", "")])
        .await;
    assert_eq!(forged.status, 403);
    let status = agent.get(&format!("/api/v1/requests/{first}")).await;
    assert_eq!(status.body["status"], "pending", "refused forms change nothing");

    let landed = alice
        .post_form(
            &path,
            &[("csrf", &csrf), ("verdict", "deny"), ("comment", "not in the freeze")],
        )
        .await;
    assert_eq!(landed.url.path(), "/");
    assert!(landed.body.contains("Denied. The next request is selected."));
    assert!(
        landed
            .body
            .contains(&format!("<tr data-id=\"{second}\" class=\"request selected\">")),
        "the next request is selected"
    );
    let denied = agent.get(&format!("/api/v1/requests/{first}")).await;
    assert_eq!(denied.body["status"], "denied");
    assert_eq!(denied.body["decisions"][0]["comment"], "not in the freeze");
    assert_eq!(denied.body["decisions"][0]["channel"], "web");
    let again = alice
        .post_form(&path, &[("csrf", &csrf), ("verdict", "approve"), ("comment", "")])
        .await;
    assert_eq!(again.status, 409);

    // The account page shows the identity as the provider gave it.
    let me = alice.get(&format!("{}/me", server.base_url)).await;
    assert!(
        me.body.contains("alice@example.com")
            && me.body.contains("signoff-reviewers")
            && me.body.contains(&provider.issuer)
    );
}

async fn history_filters_paginates_and_exports_csv(backend: Backend) {
    let provider = Provider::start().await;
    let server = TestServer::start_with_sso(backend, &provider, |_| {}).await;
    let deploy = server.agent("deploy-bot").await;
    let export = server.agent("export-bot").await;
    let (alice, csrf) = signed_in(&server, "alice").await;

    let mut prod = request_body("=HYPERLINK(\"http://evil\")");
    prod["labels"] = json!({"env": "prod", "team": "core"});
    let approved = deploy.submit(&prod).await;
    alice
        .post_form(
            &format!("/requests/{approved}/decide"),
            &[("csrf", &csrf), ("verdict", "approve"), ("comment", "")],
        )
        .await;
    let mut dev = request_body("Dev export");
    dev["labels"] = json!({"env": "dev"});
    dev["action"] = json!("db.export");
    let cancelled = export.submit(&dev).await;
    export
        .post(&format!("/api/v1/requests/{cancelled}/cancel"), &json!({}))
        .await;
    for n in 0..55 {
        deploy.submit(&request_body(&format!("Bulk {n:02}"))).await;
    }

    let history = |query: &str| {
        let url = format!("{}/history?{query}", server.base_url);
        let alice = &alice;
        async move { alice.get(&url).await }
    };
    let approved_only = history("status=approved").await;
    assert!(
        approved_only.body.contains("HYPERLINK")
            && !approved_only.body.contains("Dev export")
            && !approved_only.body.contains("Bulk")
    );
    assert!(
        approved_only.body.contains("Alice Reviewer (approve)"),
        "deciders are listed"
    );
    let by_agent = history("agent=export-bot").await;
    assert!(by_agent.body.contains("Dev export") && !by_agent.body.contains("Bulk"));
    let by_label = history("label=team%3Dcore").await;
    assert!(by_label.body.contains("HYPERLINK") && !by_label.body.contains("Dev export"));
    let by_reviewer = history("reviewer=alice%40example.com").await;
    assert!(by_reviewer.body.contains("HYPERLINK") && !by_reviewer.body.contains("Bulk"));
    let by_action = history("action=db.export").await;
    assert!(by_action.body.contains("Dev export") && !by_action.body.contains("HYPERLINK"));
    let bad_time = history("from=yesterday").await;
    assert_eq!(bad_time.status, 400);
    assert!(bad_time.body.contains("RFC 3339"));

    // Newest first, 50 a page, then the older ones.
    let first_page = history("").await;
    assert_eq!(first_page.body.matches(" class=\"request\">").count(), 50);
    assert!(first_page.body.contains("Bulk 54") && !first_page.body.contains("Dev export"));
    let start = first_page
        .body
        .find("id=\"next-page\" href=\"")
        .expect("next page link")
        + "id=\"next-page\" href=\"".len();
    let next = first_page.body[start..start + first_page.body[start..].find('"').expect("end")].replace("&amp;", "&");
    let second_page = alice.get(&format!("{}{next}", server.base_url)).await;
    assert_eq!(second_page.body.matches(" class=\"request\">").count(), 7);
    assert!(
        second_page.body.contains("Dev export")
            && second_page.body.contains("HYPERLINK")
            && !second_page.body.contains("Bulk 54")
    );

    // The CSV is the filtered view, every page of it, with formulas defused.
    let csv = alice
        .http
        .get(format!("{}/history.csv?agent=deploy-bot", server.base_url))
        .send()
        .await
        .expect("csv");
    assert_eq!(csv.headers()["content-type"], "text/csv; charset=utf-8");
    let text = csv.text().await.expect("body");
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].starts_with("id,created_at,status,action"));
    assert_eq!(lines.len(), 1 + 56, "header and every deploy-bot request");
    let formula = lines.iter().find(|line| line.contains("HYPERLINK")).expect("row");
    assert!(formula.contains("\"'=HYPERLINK(\"\"http://evil\"\")\""), "{formula}");
    assert!(formula.contains("Alice Reviewer (approve)"));
    let anonymous = server
        .browser()
        .http
        .get(format!("{}/history.csv", server.base_url))
        .send()
        .await
        .expect("csv");
    assert_eq!(anonymous.status(), 401);
}

async fn history_by_reviewer_includes_requests_still_waiting_for_more_approvals(backend: Backend) {
    let provider = Provider::start().await;
    let server = TestServer::start_with_sso(backend, &provider, |config| config.default_approvals = 2).await;
    let deploy = server.agent("deploy-bot").await;
    let (alice, csrf) = signed_in(&server, "alice").await;
    let half_approved = deploy.submit(&request_body("Half approved")).await;
    deploy.submit(&request_body("Untouched")).await;
    let decided = alice
        .post_form(
            &format!("/requests/{half_approved}/decide"),
            &[("csrf", &csrf), ("verdict", "approve"), ("comment", "")],
        )
        .await;
    assert!(decided.status < 400, "{}", decided.body);
    let state = deploy.get(&format!("/api/v1/requests/{half_approved}")).await;
    assert_eq!(state.body["status"], "pending", "one of two approvals");

    let by_reviewer = alice
        .get(&format!("{}/history?reviewer=alice%40example.com", server.base_url))
        .await;
    assert!(
        by_reviewer.body.contains("Half approved") && !by_reviewer.body.contains("Untouched"),
        "{}",
        by_reviewer.body
    );
}
