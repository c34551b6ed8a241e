//! `--dev`: a bannered development sign-in with fixed users instead of a provider, and
//! nothing of it without `--dev`.

use reqwest::Method;
use serde_json::json;
use signoff_tests::{Backend, TestServer};

#[tokio::test]
async fn development_sign_in_offers_fixed_users_only_in_dev_mode() {
    let server = TestServer::start_with(Backend::Sqlite, |config| {
        config.dev = true;
        config.oidc.issuer = None;
        config.oidc.client_id = None;
    })
    .await;
    let browser = server.browser();
    let page = browser.get(&format!("{}/auth/login", server.base_url)).await;
    assert!(
        page.url.path().starts_with("/auth/dev"),
        "sign-in goes to the development page: {}",
        page.url
    );
    assert!(page.body.contains("Development mode"), "the banner is on every page");
    for user in ["Riley Reviewer", "Ada Admin", "Reese Requester"] {
        assert!(page.body.contains(user), "{user} offered");
    }
    let csrf_marker = "name=\"csrf\" value=\"";
    let start = page.body.find(csrf_marker).expect("csrf field") + csrf_marker.len();
    let csrf = page.body[start..start + page.body[start..].find('"').expect("end")].to_string();

    let forged = browser
        .post_form("/auth/dev", &[("csrf", "nope"), ("user", "ada"), ("next", "/")])
        .await;
    assert_eq!(forged.status, 403, "the dev sign-in form has CSRF protection too");
    let landed = browser
        .post_form("/auth/dev", &[("csrf", &csrf), ("user", "ada"), ("next", "/")])
        .await;
    assert_eq!(landed.status, 200);
    assert!(landed.body.contains("Queue"), "{}", landed.body);
    let me = browser.api(Method::GET, "/api/v1/me", None, None).await;
    assert_eq!(me.body["identity"]["email"], "ada@example.com");
    assert_eq!(me.body["roles"], json!(["reviewer", "admin"]));
    // Demo requests are on behalf of Reese: Reese sees them but cannot approve them.
    let reese = server.browser();
    let page = reese.get(&format!("{}/auth/dev", server.base_url)).await;
    let start = page.body.find(csrf_marker).expect("csrf") + csrf_marker.len();
    let csrf = page.body[start..start + page.body[start..].find('"').expect("end")].to_string();
    reese
        .post_form("/auth/dev", &[("csrf", &csrf), ("user", "reese"), ("next", "/")])
        .await;
    let queue = reese.api(Method::GET, "/api/v1/requests", None, None).await;
    let own = queue.body["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter(|item| item["on_behalf_of"] == "reese@example.com")
        .count();
    assert!(own >= 2, "demo requests for reese: {:?}", queue.body);
    assert!(
        queue.body["items"]
            .as_array()
            .expect("items")
            .iter()
            .filter(|item| item["on_behalf_of"] == "reese@example.com")
            .all(|item| item["viewer"]["can_decide"] == false)
    );

    // Without --dev there is no development sign-in.
    let production = TestServer::start(Backend::Sqlite).await;
    let page = production
        .browser()
        .get(&format!("{}/auth/dev", production.base_url))
        .await;
    assert_eq!(page.status, 404);
}
