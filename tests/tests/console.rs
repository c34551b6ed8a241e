//! The web console in real Chromium (headless, through chromedriver) against the real
//! server and the real test OpenID Provider: people sign in on the provider's own page,
//! see requests arrive live, read them, decide by mouse or keyboard; hostile text from
//! agents stays inert and cross-site posts are refused. Both stores.
//!
//! Screenshots land in `target/screenshots/` (`queue.png`, `request.png`, … from the
//! SQLite runs, `…-postgres.png` from the Postgres ones).

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use signoff_tests::chrome::{Browser, ENTER, ESCAPE, signed_in};
use signoff_tests::fixtures::request_body;
use signoff_tests::oidc::Provider;
use signoff_tests::{AgentClient, Backend, TestServer, on_both_stores};

on_both_stores!(
    sign_in_shows_the_console,
    a_request_arrives_live_is_read_and_approved,
    deny_needs_a_comment,
    a_second_reviewer_completes_the_quorum,
    hostile_text_from_agents_stays_inert,
    a_cross_site_form_post_is_refused,
    own_request_cannot_be_decided,
    keyboard_triage,
    filters_live_in_the_url,
    moving_between_pages_never_stalls,
    an_escalation_refreshes_the_queue_of_who_may_now_approve,
);

/// A unified diff whose line numbers differ between the old and new side.
const DIFF: &str = "\
--- a/deploy/payments-api.yaml
+++ b/deploy/payments-api.yaml
@@ -10,4 +10,5 @@
 name: payments-api
-image: payments-api:1.4.2
+image: payments-api:1.5.0
+canary: true
 replicas: 3
 strategy: rolling
";

/// How long live updates may take here (the product aims at about a second).
const LIVE_S: u64 = 5;

/// Screenshot names: plain for SQLite, suffixed for Postgres.
fn shot(backend: Backend, name: &str) -> String {
    match backend {
        Backend::Sqlite => name.to_string(),
        Backend::Postgres => format!("{name}-postgres"),
    }
}

fn body_with(title: &str, fields: Value) -> Value {
    let mut body = request_body(title);
    for (key, value) in fields.as_object().expect("fields").clone() {
        body[key] = value;
    }
    body
}

/// The request's status as its agent sees it.
async fn status_of(agent: &AgentClient, id: &str) -> String {
    let reply = agent.get(&format!("/api/v1/requests/{id}")).await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    reply.body["status"].as_str().unwrap_or_default().to_string()
}

fn compact(text: &str) -> String {
    text.chars().filter(|c| !c.is_whitespace()).collect()
}

fn row(id: &str) -> String {
    format!("table#queue tr.request[data-id=\"{id}\"]")
}

/// The queue after a decision: `/`, maybe with `?after=<id>`.
fn is_queue(path: &str) -> bool {
    path == "/" || path.starts_with("/?")
}

/// The data-ids of the queue's rows, in page order.
async fn queue_ids(browser: &Browser) -> Vec<String> {
    let ids = browser
        .execute(
            "return [...document.querySelectorAll('table#queue tr.request')].map(r => r.dataset.id);",
            vec![],
        )
        .await;
    serde_json::from_value(ids).expect("ids")
}

/// The diff's rows: (classes, line-number cells' text, row text).
async fn diff_rows(browser: &Browser, table: &str) -> Vec<(String, Vec<String>, String)> {
    let rows = browser
        .execute(
            "return [...document.querySelectorAll(arguments[0] + ' tr')].map(tr => [
                tr.className,
                [...tr.querySelectorAll('td.ln')].map(td => td.textContent.trim()),
                tr.textContent,
            ]);",
            vec![json!(table)],
        )
        .await;
    serde_json::from_value(rows).expect("diff rows")
}

/// The one row of `class` whose text contains `text`.
fn diff_row<'a>(
    rows: &'a [(String, Vec<String>, String)],
    class: &str,
    text: &str,
) -> &'a (String, Vec<String>, String) {
    let found: Vec<_> = rows
        .iter()
        .filter(|(classes, _, row)| classes.split_whitespace().any(|c| c == class) && row.contains(text))
        .collect();
    assert_eq!(found.len(), 1, "one tr.{class} row with {text:?}; rows: {rows:#?}");
    found[0]
}

fn line_numbers(row: &(String, Vec<String>, String)) -> Vec<&str> {
    row.1.iter().map(String::as_str).filter(|n| !n.is_empty()).collect()
}

/// Headers and body of a console page fetched with the browser's own cookies.
async fn fetch_as(browser: &Browser, path: &str) -> (reqwest::header::HeaderMap, String) {
    let response = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
        .get(format!("{}{path}", browser.base_url))
        .header("Cookie", browser.cookie_header().await)
        .send()
        .await
        .expect("GET");
    assert_eq!(response.status(), 200, "GET {path} with the browser's session");
    let headers = response.headers().clone();
    (headers, response.text().await.expect("body"))
}

/// The page has a strict script policy: `script-src 'self'`, nothing inline or eval.
fn assert_strict_csp(headers: &reqwest::header::HeaderMap, what: &str) {
    let csp = headers
        .get("content-security-policy")
        .unwrap_or_else(|| panic!("{what} has no Content-Security-Policy"))
        .to_str()
        .expect("CSP text");
    let script_src = csp
        .split(';')
        .map(str::trim)
        .find(|d| d.starts_with("script-src"))
        .unwrap_or_else(|| panic!("{what}: no script-src in {csp:?}"));
    assert_eq!(script_src, "script-src 'self'", "{what}: {csp:?}");
}

/// The browser reported no CSP violation (the console's own script and style load).
async fn assert_no_csp_violation(browser: &Browser, what: &str) {
    let blocked: Vec<_> = browser
        .console_messages_through_probe()
        .await
        .into_iter()
        .filter(|(_, text)| text.contains("Content Security Policy") || text.contains("Content-Security-Policy"))
        .collect();
    assert!(
        blocked.is_empty(),
        "{what}: the browser blocked something: {blocked:#?}"
    );
}

async fn sign_in_shows_the_console(backend: Backend) {
    let provider = Provider::start().await;
    let server = TestServer::start_with_sso(backend, &provider, |_| {}).await;
    let alice = signed_in(&server, "alice").await;

    let person = alice.find("header a.person").await;
    assert_eq!(person.attr("href").await.as_deref(), Some("/me"));
    assert_eq!(person.text().await, "Alice Reviewer");
    let nav: Vec<(String, String)> = serde_json::from_value(
        alice
            .execute(
                "return [...document.querySelectorAll('header nav a')].map(a => [a.textContent.trim(), a.getAttribute('href')]);",
                vec![],
            )
            .await,
    )
    .expect("nav links");
    assert!(nav.contains(&("Queue".into(), "/".into())), "{nav:?}");
    assert!(nav.contains(&("History".into(), "/history".into())), "{nav:?}");
    alice.find("form[action=\"/auth/logout\"][method=post]").await;
    let csrf = alice.find("meta[name=csrf-token]").await.attr("content").await;
    assert!(csrf.is_some_and(|token| token.len() >= 16), "a CSRF token in the page");
    assert!(alice.title().await.ends_with(" · Signoff"), "{}", alice.title().await);
    assert_no_csp_violation(&alice, "the queue").await;

    // And a violation would be seen: an inline script, added to the page, is refused by
    // its policy and the browser says so on the console this check reads.
    alice
        .execute(
            "const s = document.createElement('script'); s.textContent = 'window.inlineRan = true;'; document.body.appendChild(s);",
            vec![],
        )
        .await;
    let messages = alice.console_messages_through_probe().await;
    assert!(
        messages
            .iter()
            .any(|(_, text)| text.contains("Content Security Policy") && text.contains("inline")),
        "the refused inline script shows on the console: {messages:#?}"
    );
    assert_eq!(
        alice.execute("return window.inlineRan === true;", vec![]).await,
        json!(false),
        "the inline script did not run"
    );
}

async fn a_request_arrives_live_is_read_and_approved(backend: Backend) {
    let provider = Provider::start().await;
    let server = TestServer::start_with_sso(backend, &provider, |_| {}).await;
    let agent = server.agent("deploy-bot").await;
    let alice = signed_in(&server, "alice").await;

    alice.goto("/").await;
    let empty = alice.wait_for(".empty", 10).await;
    assert!(
        empty.text().await.contains("Nothing is waiting"),
        "{}",
        empty.text().await
    );
    let title = alice.title().await;
    assert!(
        title.starts_with("(0) ") && title.ends_with(" · Signoff"),
        "queue title with its count: {title:?}"
    );
    // Anything that reloads the page would drop this.
    alice
        .execute("window.__sameDocument = 'yes'; return true;", vec![])
        .await;

    let id = agent
        .submit(&body_with("Deploy payments-api 1.5.0", json!({ "diff": DIFF })))
        .await;
    let submitted = Instant::now();
    let waiter = {
        let agent = agent.clone();
        let id = id.clone();
        tokio::spawn(async move { agent.wait(&id, 60).await })
    };

    alice.wait_for(&row(&id), LIVE_S).await;
    println!(
        "request appeared in the queue {:?} after it was created",
        submitted.elapsed()
    );
    alice
        .wait_title("the tab title to count 1", LIVE_S, |t| t.starts_with("(1) "))
        .await;
    let same = alice.execute("return window.__sameDocument || null;", vec![]).await;
    assert_eq!(same, json!("yes"), "the request arrived without a reload");
    assert!(alice.try_find(".empty").await.is_none(), "the empty state left");
    let link = alice.find(&format!("{} a.open", row(&id))).await;
    assert_eq!(link.attr("href").await, Some(format!("/requests/{id}")));
    assert!(
        alice
            .find(&row(&id))
            .await
            .text()
            .await
            .contains("Deploy payments-api 1.5.0")
    );
    let queue_png = alice.screenshot(&shot(backend, "queue")).await;
    println!("screenshot: {}", queue_png.display());
    let (headers, _) = fetch_as(&alice, "/").await;
    assert_strict_csp(&headers, "the queue");

    link.click().await;
    alice
        .wait_path("the request page", 10, |p| p == format!("/requests/{id}"))
        .await;
    assert_eq!(alice.find("h1").await.text().await, "Deploy payments-api 1.5.0");
    assert!(
        alice
            .find("#reason")
            .await
            .text()
            .await
            .contains("fixes the refund rounding bug")
    );
    let digest = server
        .service
        .request(id.parse().expect("id"))
        .await
        .expect("request")
        .digest;
    assert!(
        alice.find("#digest").await.text().await.contains(&digest),
        "the digest {digest} is shown"
    );

    let rows = diff_rows(&alice, "#diff table.diff").await;
    let removed = diff_row(&rows, "del", "image: payments-api:1.4.2");
    assert_eq!(line_numbers(removed), ["11"], "the removed line is old line 11");
    let added = diff_row(&rows, "add", "image: payments-api:1.5.0");
    assert_eq!(line_numbers(added), ["11"], "the added line is new line 11");
    let canary = diff_row(&rows, "add", "canary: true");
    assert_eq!(line_numbers(canary), ["12"], "the second added line is new line 12");
    let context = diff_row(&rows, "ctx", "replicas: 3");
    let numbers = line_numbers(context);
    assert!(
        numbers == ["12", "13"] || numbers == ["13"],
        "context line: old 12, new 13; got {numbers:?}"
    );
    let request_png = alice.screenshot(&shot(backend, "request")).await;
    println!("screenshot: {}", request_png.display());
    let (headers, _) = fetch_as(&alice, &format!("/requests/{id}")).await;
    assert_strict_csp(&headers, "the request page");
    assert_no_csp_violation(&alice, "the queue and the request page").await;

    // Side by side, and back.
    alice.click("a#diff-mode").await;
    alice.wait_for("#diff table.diff.split", 10).await;
    assert!(
        alice.current_path().await.contains("view=split"),
        "{}",
        alice.current_path().await
    );
    // Side by side: the old and the new line of a change face each other on one row.
    let split = diff_rows(&alice, "#diff table.diff.split").await;
    let paired: Vec<_> = split
        .iter()
        .filter(|(_, _, text)| text.contains("image: payments-api:1.4.2") && text.contains("image: payments-api:1.5.0"))
        .collect();
    assert_eq!(paired.len(), 1, "the changed line, old beside new: {split:#?}");
    assert_eq!(
        line_numbers(paired[0]),
        ["11", "11"],
        "old and new line numbers side by side"
    );
    assert!(
        split.iter().any(|(_, _, text)| text.contains("canary: true")),
        "{split:#?}"
    );
    alice.screenshot(&shot(backend, "request-split")).await;
    alice.click("a#diff-mode").await;
    alice.wait_gone("#diff table.diff.split", 10).await;
    alice.find("#diff table.diff").await;

    assert!(!waiter.is_finished(), "nobody has decided yet");
    alice
        .type_into("form#approve-form textarea[name=comment]", "Matches the release notes")
        .await;
    alice.click("button#approve").await;
    alice.wait_path("the queue after approving", 10, is_queue).await;
    alice.wait_for(".empty", LIVE_S).await;
    assert!(
        alice.try_find(&row(&id)).await.is_none(),
        "the decided request left the queue"
    );
    alice
        .wait_title("the tab title to count 0", LIVE_S, |t| t.starts_with("(0) "))
        .await;

    let reply = tokio::time::timeout(Duration::from_secs(10), waiter)
        .await
        .expect("the agent's waiter wakes")
        .expect("join");
    assert_eq!(reply.body["status"], "approved", "{:?}", reply.body);
    let decision = &reply.body["decisions"][0];
    assert_eq!(decision["verdict"], "approve");
    assert_eq!(decision["channel"], "web");
    assert_eq!(decision["comment"], "Matches the release notes");
    assert_eq!(decision["reviewer"]["subject"], "u-alice");
}

async fn deny_needs_a_comment(backend: Backend) {
    let provider = Provider::start().await;
    let server = TestServer::start_with_sso(backend, &provider, |_| {}).await;
    let agent = server.agent("deploy-bot").await;
    let id = agent.submit(&request_body("Deploy during the freeze")).await;
    let alice = signed_in(&server, "alice").await;
    alice.goto(&format!("/requests/{id}")).await;
    alice.wait_for("form#deny-form", 10).await;
    assert!(alice.try_find(".notice.bad").await.is_none());

    // A browser enforcing `required` stops the empty deny before it leaves; the server
    // must refuse it all the same, so the test then sends it the way a browser without
    // that check would.
    let comment = alice.find("form#deny-form textarea[name=comment]").await;
    if comment.attr("required").await.is_some() {
        alice.click("button#deny").await;
        let missing = alice
            .execute(
                "return document.querySelector('form#deny-form textarea[name=comment]').validity.valueMissing;",
                vec![],
            )
            .await;
        assert_eq!(missing, json!(true));
        assert_eq!(
            alice.current_path().await,
            format!("/requests/{id}"),
            "the browser kept the form"
        );
        alice
            .execute(
                "const f = document.querySelector('form#deny-form'); f.noValidate = true;
                 f.querySelectorAll('[required]').forEach(e => e.removeAttribute('required')); return true;",
                vec![],
            )
            .await;
    }
    alice.click("button#deny").await;
    let notice = alice.wait_for(".notice.bad", 10).await;
    let message = notice.text().await;
    assert!(
        message.to_lowercase().contains("comment"),
        "the refusal says why: {message:?}"
    );
    assert_eq!(alice.page_status().await, 422, "a refused decision is a 422 page");
    assert_eq!(status_of(&agent, &id).await, "pending");
    alice.screenshot(&shot(backend, "deny-refused")).await;

    alice
        .type_into("form#deny-form textarea[name=comment]", "Not during the change freeze")
        .await;
    alice.click("button#deny").await;
    alice.wait_path("the queue after denying", 10, is_queue).await;
    let reply = agent.get(&format!("/api/v1/requests/{id}")).await;
    assert_eq!(reply.body["status"], "denied", "{:?}", reply.body);
    assert_eq!(reply.body["decisions"][0]["verdict"], "deny");
    assert_eq!(reply.body["decisions"][0]["comment"], "Not during the change freeze");
    assert_eq!(reply.body["decisions"][0]["channel"], "web");
}

async fn a_second_reviewer_completes_the_quorum(backend: Backend) {
    let provider = Provider::start().await;
    let server = TestServer::start_with_sso(backend, &provider, |config| config.default_approvals = 2).await;
    let agent = server.agent("deploy-bot").await;
    let id = agent.submit(&request_body("Grant prod read to the data team")).await;
    let waiter = {
        let agent = agent.clone();
        let id = id.clone();
        tokio::spawn(async move { agent.wait(&id, 60).await })
    };
    let (alice, bob) = tokio::join!(signed_in(&server, "alice"), signed_in(&server, "bob"));

    alice.goto(&format!("/requests/{id}")).await;
    alice
        .type_into("form#approve-form textarea[name=comment]", "Scoped to read-only")
        .await;
    alice.click("button#approve").await;
    alice.wait_path("alice back on the queue", 10, is_queue).await;
    let alice_row = alice.wait_for(&row(&id), 10).await;
    let text = compact(&alice_row.text().await);
    assert!(text.contains("1/2"), "one approval of two shows on the queue: {text:?}");
    assert_eq!(status_of(&agent, &id).await, "pending");

    alice.goto(&format!("/requests/{id}")).await;
    assert!(
        alice.find("#decisions").await.text().await.contains("Alice Reviewer"),
        "her decision is listed"
    );
    assert_eq!(
        alice.find("button#approve").await.prop("disabled").await,
        json!(true),
        "one vote each"
    );
    assert!(!alice.find(".ineligible").await.text().await.trim().is_empty());
    assert!(!waiter.is_finished(), "one approval of two does not release the agent");

    // Alice watches the queue while Bob finishes.
    alice.goto("/").await;
    alice.wait_for(&row(&id), 10).await;
    alice
        .wait_title("alice's title to count 1", LIVE_S, |t| t.starts_with("(1) "))
        .await;

    bob.goto(&format!("/requests/{id}")).await;
    let decisions = compact(&bob.find("#decisions").await.text().await);
    assert!(
        decisions.contains("AliceReviewer"),
        "bob sees alice's approval: {decisions:?}"
    );
    assert!(
        compact(&bob.page_text().await).contains("1/2"),
        "the request page shows 1/2"
    );
    bob.type_into("form#approve-form textarea[name=comment]", "Agreed")
        .await;
    bob.click("button#approve").await;
    bob.wait_path("bob back on the queue", 10, is_queue).await;

    let reply = tokio::time::timeout(Duration::from_secs(10), waiter)
        .await
        .expect("the waiter wakes")
        .expect("join");
    assert_eq!(reply.body["status"], "approved", "{:?}", reply.body);
    let who: Vec<(&str, &str)> = reply.body["decisions"]
        .as_array()
        .expect("decisions")
        .iter()
        .map(|d| {
            (
                d["reviewer"]["subject"].as_str().unwrap_or(""),
                d["channel"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(who, [("u-alice", "web"), ("u-bob", "web")]);

    // And it leaves Alice's queue without a reload.
    alice.wait_gone(&row(&id), LIVE_S).await;
    alice
        .wait_title("alice's title to count 0", LIVE_S, |t| t.starts_with("(0) "))
        .await;
}

const XSS_TITLE: &str =
    "<img src=x onerror=\"document.title='pwned'\">Rotate keys<script>document.title='pwned'</script>";
const XSS_REASON: &str = "<script>document.title='pwned'</script><img src=x onerror=alert('xss-reason')>";
const XSS_DIFF: &str = "\
--- a/index.html
+++ b/index.html
@@ -1,2 +1,2 @@
 <html>
-<p onclick=\"alert('xss-old')\">old</p>
+<img src=x onerror=\"document.title='pwned'\"><script>alert('xss-diff')</script>
";

/// Nothing the agent wrote became markup or ran.
async fn assert_inert(browser: &Browser, page: &str) {
    assert_eq!(browser.alert_text().await, None, "{page}: an alert opened");
    let title = browser.title().await;
    assert_ne!(title, "pwned", "{page}: a script ran and set the title");
    let injected = browser
        .execute(
            "return [...document.querySelectorAll('img, main script, main [onerror], main [onclick], main iframe')]
                .map(e => e.outerHTML);",
            vec![],
        )
        .await;
    assert_eq!(injected, json!([]), "{page}: agent text became elements");
}

async fn hostile_text_from_agents_stays_inert(backend: Backend) {
    let provider = Provider::start().await;
    let server = TestServer::start_with_sso(backend, &provider, |_| {}).await;
    let agent = server.agent("deploy-bot").await;
    let alice = signed_in(&server, "alice").await;
    alice.goto("/").await;
    alice.wait_for(".empty", 10).await;

    let unified = agent
        .submit(&body_with(XSS_TITLE, json!({"reason": XSS_REASON, "diff": XSS_DIFF})))
        .await;
    let structured = agent
        .submit(&body_with(
            "Config <b>change</b>",
            json!({
                "reason": "<svg onload=alert('xss-svg')>",
                "diff": {
                    "before": {"banner": "<b>hello</b>"},
                    "after": {"banner": "<img src=x onerror=alert('xss-json')>"}
                }
            }),
        ))
        .await;

    // Arriving live (built by the page's script) and rendered by the server.
    alice.wait_for(&row(&unified), LIVE_S).await;
    alice.wait_for(&row(&structured), LIVE_S).await;
    let live_row = alice.find(&row(&unified)).await.text().await;
    assert!(
        live_row.contains(XSS_TITLE),
        "the title shows as text in the live row: {live_row:?}"
    );
    assert_inert(&alice, "the queue, live").await;
    alice.reload().await;
    alice.wait_for(&row(&unified), 10).await;
    let row_text = alice.find(&row(&unified)).await.text().await;
    assert!(row_text.contains(XSS_TITLE), "the title shows as text: {row_text:?}");
    assert!(
        alice
            .find(&row(&structured))
            .await
            .text()
            .await
            .contains("Config <b>change</b>")
    );
    assert_inert(&alice, "the queue").await;
    alice.screenshot(&shot(backend, "xss-queue")).await;

    for view in ["", "?view=split"] {
        let page = format!("/requests/{unified}{view}");
        alice.goto(&page).await;
        alice.wait_for("#diff table.diff", 10).await;
        assert_eq!(alice.find("h1").await.text().await, XSS_TITLE);
        assert!(alice.find("#reason").await.text().await.contains(XSS_REASON));
        let diff = alice.find("#diff").await.text().await;
        assert!(
            diff.contains("<img src=x onerror=\"document.title='pwned'\"><script>alert('xss-diff')</script>"),
            "the diff shows the markup as text: {diff:?}"
        );
        assert!(diff.contains("<p onclick=\"alert('xss-old')\">old</p>"), "{diff:?}");
        assert_inert(&alice, &page).await;
        let (headers, html) = fetch_as(&alice, &page).await;
        assert_strict_csp(&headers, &page);
        assert!(
            !html.contains("<script>document.title"),
            "{page}: the script tag reached the HTML unescaped"
        );
        assert!(
            !html.contains("<img src=x"),
            "{page}: the img tag reached the HTML unescaped"
        );
    }
    alice.screenshot(&shot(backend, "xss-request")).await;

    alice.goto(&format!("/requests/{structured}")).await;
    alice.wait_for("#diff table.diff", 10).await;
    assert!(
        alice
            .find("#reason")
            .await
            .text()
            .await
            .contains("<svg onload=alert('xss-svg')>")
    );
    let diff = alice.find("#diff").await.text().await;
    assert!(diff.contains("<img src=x onerror=alert('xss-json')>"), "{diff:?}");
    assert_inert(&alice, "the before/after request").await;
    let svg = alice
        .execute("return document.querySelectorAll('main svg[onload]').length;", vec![])
        .await;
    assert_eq!(svg, json!(0));
    assert_no_csp_violation(&alice, "the hostile pages").await;
}

/// Serves `html` to every request on another port of 127.0.0.1: another origin, the same
/// site. Returns its URL.
async fn serve_page(html: String) -> (String, tokio::task::JoinHandle<()>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}/", listener.local_addr().expect("address"));
    let task = tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let html = html.clone();
            tokio::spawn(async move {
                let mut request = Vec::new();
                let mut buffer = [0u8; 4096];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buffer).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buffer[..n]),
                    }
                }
                let response = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{html}",
                    html.len()
                );
                let _ = stream.write_all(response.as_bytes()).await;
            });
        }
    });
    (url, task)
}

fn attack_page(action: &str, csrf: Option<&str>) -> String {
    let csrf = csrf
        .map(|token| format!("<input type=hidden name=csrf value=\"{token}\">"))
        .unwrap_or_default();
    format!(
        "<!DOCTYPE html><html><head><title>Win a prize</title></head><body>\
         <form id=f method=post action=\"{action}\">\
         <input type=hidden name=verdict value=approve>\
         <input type=hidden name=comment value=\"lgtm\">{csrf}</form>\
         <script>document.getElementById('f').submit()</script></body></html>"
    )
}

/// Lands on the server after a page elsewhere auto-submitted its form; returns the status.
async fn wait_for_post_result(browser: &Browser, action: &str) -> u16 {
    browser
        .wait_until("the forged form to reach Signoff", 10, async || {
            let url = browser.current_url().await;
            let loaded = browser.execute("return document.readyState;", vec![]).await == json!("complete");
            (url.starts_with(&browser.base_url) && loaded).then_some(())
        })
        .await;
    let status = browser.page_status().await;
    println!(
        "cross-site post to {action} answered {status} at {}",
        browser.current_url().await
    );
    status
}

async fn a_cross_site_form_post_is_refused(backend: Backend) {
    let provider = Provider::start().await;
    let server = TestServer::start_with_sso(backend, &provider, |_| {}).await;
    let agent = server.agent("deploy-bot").await;
    let id = agent.submit(&request_body("Deploy payments-api 1.5.0")).await;
    let alice = signed_in(&server, "alice").await;
    alice.goto(&format!("/requests/{id}")).await;
    let csrf = alice
        .find("meta[name=csrf-token]")
        .await
        .attr("content")
        .await
        .expect("csrf token");
    let action = format!("{}/requests/{id}/decide", server.base_url);

    // Another origin on the same site: the session cookie (SameSite=Lax) goes along, so
    // only the server's own checks stand in the way; first without the token, as a real
    // attacker, then even with Alice's token (as if it had leaked).
    for token in [None, Some(csrf.as_str())] {
        let (url, page) = serve_page(attack_page(&action, token)).await;
        alice.goto(&url).await;
        let status = wait_for_post_result(&alice, &action).await;
        assert_eq!(status, 403, "a cross-site post (token: {}) is refused", token.is_some());
        assert_eq!(
            status_of(&agent, &id).await,
            "pending",
            "the forged approval did nothing"
        );
        page.abort();
    }

    // A page with an opaque origin (data: URL).
    let encoded: String = attack_page(&action, Some(&csrf))
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    alice.goto(&format!("data:text/html,{encoded}")).await;
    wait_for_post_result(&alice, &action).await;
    assert_eq!(
        status_of(&agent, &id).await,
        "pending",
        "the post from a data: page did nothing"
    );

    // The real form still works.
    alice.goto(&format!("/requests/{id}")).await;
    alice.type_into("form#approve-form textarea[name=comment]", "ok").await;
    alice.click("button#approve").await;
    alice.wait_path("the queue", 10, is_queue).await;
    assert_eq!(status_of(&agent, &id).await, "approved");
}

async fn own_request_cannot_be_decided(backend: Backend) {
    let provider = Provider::start().await;
    let server = TestServer::start_with_sso(backend, &provider, |_| {}).await;
    let agent = server.agent("deploy-bot").await;
    let id = agent
        .submit(&body_with(
            "Give erin prod access",
            json!({"on_behalf_of": "erin@example.com"}),
        ))
        .await;
    let erin = signed_in(&server, "erin").await;
    erin.goto(&format!("/requests/{id}")).await;
    erin.wait_for("form#approve-form", 10).await;
    assert_eq!(erin.find("button#approve").await.prop("disabled").await, json!(true));
    assert_eq!(erin.find("button#deny").await.prop("disabled").await, json!(true));
    let why = erin.find(".ineligible").await;
    assert!(why.is_displayed().await, "the reason is visible");
    let reason = why.text().await;
    let says_why = ["own", "for you", "on your behalf", "yourself"]
        .iter()
        .any(|words| reason.to_lowercase().contains(words));
    assert!(says_why, "says it is erin's own request: {reason:?}");
    erin.screenshot(&shot(backend, "own-request")).await;

    // Forcing the button does not help: the server decides eligibility.
    erin.execute(
        "document.querySelectorAll('form#approve-form [disabled]').forEach(e => e.disabled = false); return true;",
        vec![],
    )
    .await;
    erin.type_into("form#approve-form textarea[name=comment]", "me, myself")
        .await;
    erin.click("button#approve").await;
    erin.wait_until("the forced approval to be answered", 10, async || {
        let path = erin.current_path().await;
        let loaded = erin.execute("return document.readyState;", vec![]).await == json!("complete");
        (path != format!("/requests/{id}") && loaded).then_some(())
    })
    .await;
    let status = erin.page_status().await;
    assert!((400..500).contains(&status), "refused with a 4xx page, got {status}");
    assert_eq!(status_of(&agent, &id).await, "pending");
}

async fn keyboard_triage(backend: Backend) {
    let provider = Provider::start().await;
    let server = TestServer::start_with_sso(backend, &provider, |_| {}).await;
    let agent = server.agent("deploy-bot").await;
    for title in ["First", "Second", "Third"] {
        agent.submit(&request_body(title)).await;
    }
    let alice = signed_in(&server, "alice").await;
    alice.goto("/").await;
    alice
        .wait_until("three rows", 10, async || {
            (queue_ids(&alice).await.len() == 3).then_some(())
        })
        .await;
    let ids = queue_ids(&alice).await;
    let selected = async || -> Option<usize> {
        let chosen = alice.find_all("table#queue tr.request.selected").await;
        assert!(chosen.len() <= 1, "at most one row is selected");
        let id = chosen.first()?.attr("data-id").await?;
        ids.iter().position(|i| *i == id)
    };

    alice.press("j").await;
    let first = alice
        .wait_until("a selected row after j", 5, async || selected().await)
        .await;
    assert!(first <= 1, "j selects the first or the next row, got row {first}");
    alice.press("j").await;
    alice
        .wait_until("j to move down", 5, async || {
            (selected().await == Some(first + 1)).then_some(())
        })
        .await;
    alice.press("k").await;
    alice
        .wait_until("k to move up", 5, async || {
            (selected().await == Some(first)).then_some(())
        })
        .await;
    alice.press("j").await;
    alice
        .wait_until("j to move down again", 5, async || {
            (selected().await == Some(first + 1)).then_some(())
        })
        .await;
    let chosen = ids[first + 1].clone();
    alice.press(ENTER).await;
    alice
        .wait_path("Enter to open the selected request", 10, |p| {
            p == format!("/requests/{chosen}")
        })
        .await;

    // On the request page, `a` and `d` go to the approve and deny comment boxes.
    let focused = async |css: &str| {
        let script = "return document.activeElement === document.querySelector(arguments[0]);";
        alice.execute(script, vec![json!(css)]).await == json!(true)
    };
    alice.wait_for("form#approve-form", 10).await;
    alice.press("a").await;
    alice
        .wait_until("a to focus the approve comment", 5, async || {
            focused("form#approve-form textarea[name=comment]").await.then_some(())
        })
        .await;
    alice.press(ESCAPE).await;
    alice.press("d").await;
    alice
        .wait_until("d to focus the deny comment", 5, async || {
            focused("form#deny-form textarea[name=comment]").await.then_some(())
        })
        .await;

    alice.goto("/").await;
    alice.wait_for(&row(&chosen), 10).await;
    let help_shown = async || match alice.try_find("#keys").await {
        Some(keys) => keys.is_displayed().await,
        None => false,
    };
    assert!(!help_shown().await, "the key list is hidden at first");
    alice.press("?").await;
    alice
        .wait_until("? to show the keys", 5, async || help_shown().await.then_some(()))
        .await;
    let help = alice.find("#keys").await.text().await;
    for key in ["j", "k", "Enter", "?"] {
        assert!(help.contains(key), "the help lists {key:?}: {help:?}");
    }
    alice.screenshot(&shot(backend, "keys")).await;
    alice.press("?").await;
    alice
        .wait_until("? to hide the keys again", 5, async || {
            (!help_shown().await).then_some(())
        })
        .await;
}

async fn filters_live_in_the_url(backend: Backend) {
    let provider = Provider::start().await;
    let server = TestServer::start_with_sso(backend, &provider, |_| {}).await;
    let deploy_bot = server.agent("deploy-bot").await;
    let export_bot = server.agent("export-bot").await;
    let deploy = deploy_bot.submit(&request_body("Deploy payments-api 1.5.0")).await;
    let export = export_bot
        .submit(&body_with(
            "Export customers to the warehouse",
            json!({"action": "db.export", "resource": "pg://prod/customers", "labels": {"env": "staging"}}),
        ))
        .await;
    let mine = deploy_bot
        .submit(&body_with(
            "Alice's own deploy",
            json!({"on_behalf_of": "alice@example.com"}),
        ))
        .await;
    let alice = signed_in(&server, "alice").await;
    alice.goto("/").await;
    alice
        .wait_until("three rows", 10, async || {
            (queue_ids(&alice).await.len() == 3).then_some(())
        })
        .await;

    alice.type_into("form#filters input[name=action]", "db.export").await;
    alice.type_into("form#filters input[name=action]", ENTER).await;
    alice
        .wait_path("the action filter in the URL", 10, |p| p.contains("action=db.export"))
        .await;
    assert_eq!(queue_ids(&alice).await, vec![export.clone()]);
    assert_eq!(
        alice.find("form#filters input[name=action]").await.prop("value").await,
        json!("db.export"),
        "the form shows the filter"
    );

    let mut sorted = vec![deploy.clone(), mine.clone()];
    sorted.sort();
    for (query, expected) in [
        ("/?agent=export-bot", vec![export.clone()]),
        ("/?label=env%3Dstaging", vec![export.clone()]),
        ("/?agent=deploy-bot", sorted),
    ] {
        alice.goto(query).await;
        alice.wait_for("table#queue, .empty", 10).await;
        let mut ids = queue_ids(&alice).await;
        ids.sort();
        assert_eq!(ids, expected, "{query}");
    }

    // "Needs my vote": not Alice's own request.
    alice.goto("/").await;
    alice.wait_for("form#filters input[name=mine]", 10).await;
    alice.click("form#filters input[name=mine]").await;
    alice.type_into("form#filters input[name=action]", ENTER).await;
    alice.wait_path("mine in the URL", 10, |p| p.contains("mine=")).await;
    let mut ids = queue_ids(&alice).await;
    ids.sort();
    let mut expected = vec![deploy, export];
    expected.sort();
    assert_eq!(ids, expected, "needs my vote leaves out alice's own request {mine}");
}

/// Every console page with live updates holds a stream from `/api/v1/events`. A browser
/// opens at most six connections to one server, and Chrome keeps pages one has left alive
/// in its back/forward cache: a page must let go of its stream when it is left (and take
/// it up again if it is shown from the cache), or after a few pages the next one waits
/// for a free connection.
async fn moving_between_pages_never_stalls(backend: Backend) {
    let provider = Provider::start().await;
    let server = TestServer::start_with_sso(backend, &provider, |_| {}).await;
    let agent = server.agent("deploy-bot").await;
    let id = agent.submit(&request_body("Deploy payments-api 1.5.0")).await;
    let alice = signed_in(&server, "alice").await;
    let limit = Duration::from_secs(10);
    alice.set_page_load_timeout(limit).await;
    let pages = [
        "/".to_string(),
        format!("/requests/{id}"),
        "/?agent=deploy-bot".to_string(),
        format!("/requests/{id}?view=split"),
        "/?action=deploy.service".to_string(),
        "/?label=env%3Dprod".to_string(),
        "/?agent=deploy-bot&action=deploy.service".to_string(),
        "/?action=deploy.service&label=env%3Dprod".to_string(),
        format!("/requests/{id}"),
        "/".to_string(),
    ];
    for (n, page) in pages.iter().enumerate() {
        let started = Instant::now();
        if let Err(e) = alice.try_goto(page).await {
            panic!(
                "page {} of {} ({page}) did not load within {limit:?} ({e}): are the pages left \
                 behind still holding their /api/v1/events streams?",
                n + 1,
                pages.len()
            );
        }
        let took = started.elapsed();
        assert!(took < limit, "page {} ({page}) took {took:?}", n + 1);
    }

    // A queue page shown again from the back/forward cache still updates live.
    alice.wait_for(&row(&id), 10).await;
    alice.click(&format!("{} a.open", row(&id))).await;
    alice
        .wait_path("the request page", 10, |p| p == format!("/requests/{id}"))
        .await;
    alice.back().await;
    alice.wait_path("back on the queue", 10, |p| p == "/").await;
    let second = agent.submit(&request_body("Deploy ledger 2.0.1")).await;
    alice.wait_for(&row(&second), LIVE_S).await;
    alice
        .wait_title("the tab title to count 2", LIVE_S, |t| t.starts_with("(2) "))
        .await;
}

/// The console's script subscribes to the live event kinds the page names, so an
/// escalation (a kind the script once left out) refreshes the queue of a reviewer it makes
/// eligible, with nothing else happening.
async fn an_escalation_refreshes_the_queue_of_who_may_now_approve(backend: Backend) {
    let provider = Provider::start().await;
    let server = TestServer::start_with_sso(backend, &provider, |_| {}).await;
    let policies = signoff_server::policy_file::parse(
        r#"
[[policy]]
name = "dba changes"
[policy.match]
actions = ["db.migrate"]
[policy.effect]
type = "require_approval"
approver_groups = ["dba"]
[policy.effect.escalation]
after_minutes = 5
groups = ["signoff-reviewers"]
"#,
        signoff_server::policy_file::Format::Toml,
    )
    .expect("policy");
    server
        .service
        .import_policies(policies, signoff_server::store::Actor::Operator)
        .await
        .expect("import");
    let agent = server.agent("migrator").await;
    let id = agent
        .submit(&body_with("Migrate the orders schema", json!({"action": "db.migrate"})))
        .await;
    let alice = signed_in(&server, "alice").await;
    alice.goto("/?mine=true").await;
    alice.wait_for("table#queue, .empty", 10).await;
    assert!(queue_ids(&alice).await.is_empty(), "not hers to decide yet");

    // Five minutes on (moved in the database, which tells no page): the sweeper announces
    // the escalation, and only that event can bring the request to her queue.
    server
        .db
        .execute(&format!(
            "UPDATE requests SET created_at = created_at - 360000, escalates_at = escalates_at - 360000 \
             WHERE id = '{id}'"
        ))
        .await
        .expect("age the request");
    alice
        .wait_until("the escalated request in alice's queue", LIVE_S + 5, async || {
            (queue_ids(&alice).await == vec![id.clone()]).then_some(())
        })
        .await;
}
