//! What reviewers see is what is signed (issue 8): the CSV export cannot smuggle a
//! spreadsheet formula, the digest never covers a body the console shows differently, and
//! the console shows every line of a diff and every invisible character an agent sent.

use reqwest::Method;
use serde_json::json;
use signoff_tests::browser::Browser;
use signoff_tests::fixtures::request_body;
use signoff_tests::oidc::Provider;
use signoff_tests::server::read_reply;
use signoff_tests::{AgentClient, Backend, Reply, TestServer, on_both_stores};

on_both_stores!(
    csv_export_defuses_formulas_after_any_separator,
    bodies_the_digest_cannot_tell_apart_are_refused,
    request_page_shows_every_diff_line_and_hidden_character,
);

async fn signed_in(server: &TestServer, login: &str) -> (Browser, String) {
    let browser = server.browser();
    let page = browser.sign_in(login).await;
    let csrf = page.csrf();
    (browser, csrf)
}

/// The value of the first `attribute="…"` after `marker` in `html`, unescaped.
fn attribute_after(html: &str, marker: &str, attribute: &str) -> String {
    let from = html.find(marker).unwrap_or_else(|| panic!("{marker} in {html}"));
    let key = format!("{attribute}=\"");
    let start = from + html[from..].find(&key).expect("attribute") + key.len();
    let end = start + html[start..].find('"').expect("end of attribute");
    html[start..end].replace("&amp;", "&")
}

async fn csv_export_defuses_formulas_after_any_separator(backend: Backend) {
    let provider = Provider::start().await;
    let server = TestServer::start_with_sso(backend, &provider, |_| {}).await;
    let agent = server.agent("deploy-bot").await;
    let title = "x;=cmd|' /C calc'!A0;y";
    let id = agent.submit(&request_body(title)).await;
    let (alice, _) = signed_in(&server, "alice").await;

    // The export the history page links to.
    let history = alice.get(&format!("{}/history?status=all", server.base_url)).await;
    assert_eq!(history.status, 200);
    let link = attribute_after(&history.body, "id=\"csv\"", "href");
    assert!(link.starts_with("/history.csv"), "{link}");
    let csv = alice.get(&format!("{}{link}", server.base_url)).await;
    assert_eq!(csv.status, 200);
    let row = csv
        .body
        .lines()
        .find(|line| line.contains(&id))
        .unwrap_or_else(|| panic!("a row for {id}: {}", csv.body));
    assert!(
        row.contains("\"x;'=cmd|' /C calc'!A0;y\""),
        "the title is quoted and the formula after `;` defused: {row}"
    );
    // Every field quoted: 12 of them, so 11 `","` between and a quote at each end.
    assert!(row.starts_with('"') && row.ends_with('"'), "{row}");
    assert_eq!(row.matches("\",\"").count(), 11, "{row}");
}

/// Posts `body` as raw JSON text, as an agent could write it by hand.
async fn post_raw(agent: &AgentClient, body: &str) -> Reply {
    let response = agent
        .http
        .post(agent.url("/api/v1/requests"))
        .bearer_auth(&agent.key)
        .header("Content-Type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .expect("POST");
    read_reply(response).await
}

async fn bodies_the_digest_cannot_tell_apart_are_refused(backend: Backend) {
    let provider = Provider::start().await;
    let server = TestServer::start_with_sso(backend, &provider, |_| {}).await;
    let agent = server.agent("deploy-bot").await;

    // 2^53 + 1: RFC 8785 would write it as 2^53, while the console shows it exactly.
    let mut big = request_body("Big number");
    big["payload"] = json!({"n": 9_007_199_254_740_993_u64});
    let refused = agent.post("/api/v1/requests", &big).await;
    assert_eq!(refused.status, 422, "{:?}", refused.body);
    assert_eq!(refused.error_code(), "invalid");
    assert!(
        refused
            .error_message()
            .starts_with("payload.n: the integer 9007199254740993 is beyond ±2^53"),
        "{}",
        refused.error_message()
    );
    let mut nested = request_body("Nested big number");
    nested["payload"] = json!({"items": [{"id": 1}, {"id": -9_007_199_254_740_993_i64}]});
    let refused = agent.post("/api/v1/requests", &nested).await;
    assert_eq!(refused.status, 422, "{:?}", refused.body);
    assert!(
        refused.error_message().starts_with("payload.items[1].id:"),
        "{}",
        refused.error_message()
    );

    // A duplicate key: the parsed body would keep only the last value.
    let duplicate = r#"{"action": "deploy.service", "resource": "k8s://prod/payments-api", "title": "Twice",
        "payload": {"image": "payments-api:1.5.0", "image": "payments-api:evil"}}"#;
    let refused = post_raw(&agent, duplicate).await;
    assert_eq!(refused.status, 422, "{:?}", refused.body);
    assert_eq!(refused.error_message(), "payload: the key `image` appears twice");
    let labels = r#"{"action": "deploy.service", "resource": "r", "title": "Labels twice",
        "labels": {"env": "dev", "env": "prod"}}"#;
    let refused = post_raw(&agent, labels).await;
    assert_eq!(refused.status, 422, "{:?}", refused.body);
    assert_eq!(refused.error_message(), "labels: the key `env` appears twice");
    // Malformed JSON is still a 400.
    let malformed = post_raw(&agent, r#"{"title": "#).await;
    assert_eq!(malformed.status, 400, "{:?}", malformed.body);

    // Nothing was created; 2^53 itself is exact and fine.
    let (alice, _) = signed_in(&server, "alice").await;
    let listed = alice.api(Method::GET, "/api/v1/requests?status=all", None, None).await;
    assert_eq!(listed.status, 200, "{:?}", listed.body);
    assert_eq!(listed.body["items"], json!([]), "{:?}", listed.body);
    let mut edge = request_body("Exactly 2^53");
    edge["payload"] = json!({"n": 9_007_199_254_740_992_u64});
    agent.submit(&edge).await;
}

/// A mode change, a rename, an edited file, a binary patch and a binary file, as git
/// writes them, and a line carrying a right-to-left override.
const GIT_DIFF: &str = "\
diff --git a/deploy.sh b/deploy.sh
old mode 100644
new mode 100755
diff --git a/config/old.yaml b/config/new.yaml
similarity index 92%
rename from config/old.yaml
rename to config/new.yaml
index 1111111..2222222 100644
--- a/config/old.yaml
+++ b/config/new.yaml
@@ -1,2 +1,2 @@
 name: payments
-replicas: 2
+replicas: 3 # \u{202E}3 = replicas
diff --git a/bin/agent b/bin/agent
index 3333333..4444444 100755
GIT binary patch
literal 12
TcmZ?wbhEHbRA5kG00000

literal 0
HcmV?d00001

diff --git a/logo.png b/logo.png
deleted file mode 100644
Binary files a/logo.png and /dev/null differ
";

async fn request_page_shows_every_diff_line_and_hidden_character(backend: Backend) {
    let provider = Provider::start().await;
    let server = TestServer::start_with_sso(backend, &provider, |_| {}).await;
    let agent = server.agent("deploy-bot").await;
    let mut body = request_body("Rotate keys \u{202E}exe.tnemyap");
    body["reason"] = json!("Routine\u{202E} rotation\u{200B}, approved\u{2066} before");
    body["resource"] = json!("k8s://prod/\u{202E}ipa-stnemyap");
    body["labels"] = json!({"env": "prod\u{202E}"});
    body["payload"] = json!({"command": "rm -rf /tmp/cache\u{202E} --no-preserve-root"});
    body["context"] = json!({"origin": "chat\u{202E}", "note": "\u{FEFF}hidden"});
    body["on_behalf_of"] = json!("reese\u{202E}@example.com");
    body["diff"] = json!(GIT_DIFF);
    let id = agent.submit(&body).await;
    let (alice, csrf) = signed_in(&server, "alice").await;

    for view in ["", "?view=split"] {
        let page = alice.get(&format!("{}/requests/{id}{view}", server.base_url)).await;
        assert_eq!(page.status, 200);
        for line in [
            "old mode 100644",
            "new mode 100755",
            "similarity index 92%",
            "rename from config/old.yaml",
            "rename to config/new.yaml",
            "index 1111111..2222222 100644",
            "GIT binary patch",
            "literal 12",
            "TcmZ?wbhEHbRA5kG00000",
            "HcmV?d00001",
            "deleted file mode 100644",
            "Binary files a/logo.png and /dev/null differ",
            "replicas: 2",
            "config/old.yaml → config/new.yaml",
        ] {
            assert!(page.body.contains(line), "{view:?} shows {line:?}: {}", page.body);
        }
        assert!(
            !page.body.contains('\u{202E}'),
            "{view:?}: a raw right-to-left override reached the page"
        );
        for hidden in ['\u{200B}', '\u{2066}', '\u{FEFF}'] {
            assert!(
                !page.body.contains(hidden),
                "{view:?}: a raw {hidden:?} reached the page"
            );
        }
        for marker in ["⟨U+202E⟩", "⟨U+200B⟩", "⟨U+2066⟩", "⟨U+FEFF⟩", "RIGHT-TO-LEFT OVERRIDE"] {
            assert!(page.body.contains(marker), "{view:?} shows {marker}");
        }
        assert!(
            page.body.contains("Rotate keys ") && page.body.contains("exe.tnemyap"),
            "the title is still readable"
        );
    }

    // The queue, the history and a reviewer's comment show hidden characters too.
    let queue = alice.get(&format!("{}/", server.base_url)).await;
    assert!(queue.body.contains(&id) && queue.body.contains("⟨U+202E⟩"));
    assert!(!queue.body.contains('\u{202E}'), "a raw override reached the queue");
    let decided = alice
        .post_form(
            &format!("/requests/{id}/decide"),
            &[("csrf", &csrf), ("verdict", "deny"), ("comment", "no\u{202E}pe")],
        )
        .await;
    assert_eq!(decided.status, 200, "{}", decided.body);
    let page = alice.get(&format!("{}/requests/{id}", server.base_url)).await;
    assert!(page.body.contains("denied"), "{}", page.body);
    assert!(
        page.body.contains("⟨U+202E⟩</span>pe"),
        "the comment shows the override"
    );
    assert!(!page.body.contains('\u{202E}'), "a raw override in the comment");
    let history = alice.get(&format!("{}/history?status=all", server.base_url)).await;
    assert!(history.body.contains(&id) && history.body.contains("⟨U+202E⟩"));
    assert!(!history.body.contains('\u{202E}'), "a raw override reached the history");
}
