//! Reviewers sign in through a real OpenID Provider; decisions are recorded under that
//! identity; the terminal signs in through the server-brokered device flow; and every
//! attack and mistake is refused with a clear reason. Both stores.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};
use signoff_app::wire::Role;
use signoff_tests::browser::Browser;
use signoff_tests::fixtures::request_body;
use signoff_tests::oidc::Provider;
use signoff_tests::{Backend, TestServer, on_both_stores};

on_both_stores!(
    two_reviewers_approve_and_the_waiter_wakes,
    roles_come_from_groups_and_others_have_no_access,
    decisions_over_http_refuse_what_the_rules_forbid,
    tampered_replayed_and_invalid_sign_ins_are_refused,
    terminal_signs_in_through_the_device_flow,
    live_events_stream_and_resume,
    sessions_end_when_idle_and_after_their_lifetime,
    forged_id_tokens_are_refused,
);

async fn sessions_end_when_idle_and_after_their_lifetime(backend: Backend) {
    let provider = Provider::start().await;
    let idle = TestServer::start_with_sso(backend, &provider, |config| {
        config.session_idle_timeout = Duration::from_secs(2)
    })
    .await;
    let (alice, _) = signed_in(&idle, "alice").await;
    assert_eq!(alice.api(Method::GET, "/api/v1/me", None, None).await.status, 200);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(
        alice.api(Method::GET, "/api/v1/me", None, None).await.status,
        401,
        "idle too long"
    );

    // Long enough to sign in on a busy machine; the session is used all along (so it is
    // never idle) and ends at its lifetime, not before.
    let lifetime = Duration::from_secs(8);
    let short = TestServer::start_with_sso(backend, &provider, move |config| config.session_lifetime = lifetime).await;
    let before_sign_in = std::time::Instant::now();
    let (bob, _) = signed_in(&short, "bob").await;
    loop {
        let status = bob.api(Method::GET, "/api/v1/me", None, None).await.status;
        if status == 401 {
            break;
        }
        assert_eq!(status, 200, "the session works until it ends");
        assert!(
            before_sign_in.elapsed() < lifetime + Duration::from_secs(30),
            "the session outlived its lifetime of {lifetime:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        before_sign_in.elapsed() >= lifetime,
        "the session ended after {:?}, before its lifetime of {lifetime:?}",
        before_sign_in.elapsed()
    );
    let page = bob
        .hop(
            Method::GET,
            &format!("{}/requests/01937a4c-0000-7000-8000-000000000000", short.base_url),
            None,
        )
        .await;
    let location = page
        .headers
        .get("location")
        .and_then(|l| l.to_str().ok())
        .unwrap_or_default();
    assert!(
        location.starts_with("/auth/login?next="),
        "an expired session is sent to sign in again: {location}"
    );
}

async fn signed_in(server: &TestServer, login: &str) -> (Browser, String) {
    let browser = server.browser();
    let page = browser.sign_in(login).await;
    assert_eq!(page.status, 200, "{login} lands on the console: {}", page.body);
    let csrf = page.csrf();
    (browser, csrf)
}

async fn two_reviewers_approve_and_the_waiter_wakes(backend: Backend) {
    let provider = Provider::start().await;
    let server = TestServer::start_with_sso(backend, &provider, |config| config.default_approvals = 2).await;
    let agent = server.agent("deploy-bot").await;
    let id = agent.submit(&request_body("Deploy payments-api 1.5.0")).await;
    let waiter = {
        let agent = agent.clone();
        let id = id.clone();
        tokio::spawn(async move { agent.wait(&id, 60).await })
    };

    let (alice, alice_csrf) = signed_in(&server, "alice").await;
    let me = alice.api(Method::GET, "/api/v1/me", None, None).await;
    assert_eq!(me.body["identity"]["email"], "alice@example.com");
    assert_eq!(me.body["identity"]["issuer"], provider.issuer.as_str());
    assert_eq!(me.body["roles"], json!(["reviewer"]));

    let queue = alice
        .api(Method::GET, "/api/v1/requests?status=pending", None, None)
        .await;
    assert_eq!(queue.body["items"][0]["id"], id.as_str());
    assert_eq!(queue.body["items"][0]["viewer"]["can_decide"], true);

    let approve = json!({"verdict": "approve", "comment": "diff matches the release notes"});
    let first = alice
        .api(
            Method::POST,
            &format!("/api/v1/requests/{id}/decisions"),
            Some(&alice_csrf),
            Some(&approve),
        )
        .await;
    assert_eq!(first.status, 200, "{:?}", first.body);
    assert_eq!(
        (first.body["status"].as_str(), first.body["approvals"].as_u64()),
        (Some("pending"), Some(1))
    );
    assert_eq!(first.body["viewer"]["can_decide"], false, "one person, one vote");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!waiter.is_finished(), "one approval of two does not release the agent");

    let (bob, bob_csrf) = signed_in(&server, "bob").await;
    let second = bob
        .api(
            Method::POST,
            &format!("/api/v1/requests/{id}/decisions"),
            Some(&bob_csrf),
            Some(&json!({"verdict": "approve"})),
        )
        .await;
    assert_eq!(second.body["status"], "approved", "{:?}", second.body);

    let reply = tokio::time::timeout(Duration::from_secs(10), waiter)
        .await
        .expect("waiter wakes")
        .expect("join");
    assert_eq!(reply.body["status"], "approved");
    let decisions = reply.body["decisions"].as_array().expect("decisions");
    let who: Vec<(&str, &str, &str)> = decisions
        .iter()
        .map(|d| {
            (
                d["reviewer"]["subject"].as_str().unwrap_or(""),
                d["reviewer"]["name"].as_str().unwrap_or(""),
                d["channel"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        who,
        [("u-alice", "Alice Reviewer", "web"), ("u-bob", "Bob Reviewer", "web")]
    );
    assert_eq!(decisions[0]["reviewer"]["groups"], json!(["signoff-reviewers"]));
    assert_eq!(decisions[0]["comment"], "diff matches the release notes");

    // The audit trail names the same people.
    let events = server
        .service
        .store()
        .audit_events_for(id.parse().expect("id"))
        .await
        .expect("audit");
    let recorded: Vec<&Value> = events
        .iter()
        .filter(|e| e.kind == "decision.recorded")
        .map(|e| &e.actor)
        .collect();
    assert_eq!(recorded[0]["type"], "reviewer");
    assert_eq!(recorded[0]["email"], "alice@example.com");
    assert_eq!(recorded[1]["subject"], "u-bob");
}

async fn roles_come_from_groups_and_others_have_no_access(backend: Backend) {
    let provider = Provider::start().await;
    let server = TestServer::start_with_sso(backend, &provider, |_| {}).await;
    let agent = server.agent("deploy-bot").await;
    let id = agent.submit(&request_body("Deploy")).await;

    let (carol, _) = signed_in(&server, "carol").await;
    let me = carol.api(Method::GET, "/api/v1/me", None, None).await;
    let roles: Vec<Role> = serde_json::from_value(me.body["roles"].clone()).expect("roles");
    assert_eq!(roles, [Role::Reviewer, Role::Admin]);

    // Dave is signed in but no group of his maps to a role: he sees why, and nothing else.
    let dave = server.browser();
    let page = dave.sign_in("dave").await;
    assert_eq!(page.status, 403);
    assert!(page.body.contains("You have no access to Signoff"), "{}", page.body);
    assert!(page.body.contains("staff"), "shows the groups seen");
    let csrf = page.csrf();
    for (method, path, body) in [
        (Method::GET, "/api/v1/requests".to_string(), None),
        (Method::GET, format!("/api/v1/requests/{id}"), None),
        (Method::GET, "/api/v1/events".to_string(), None),
        (
            Method::POST,
            format!("/api/v1/requests/{id}/decisions"),
            Some(json!({"verdict": "approve"})),
        ),
    ] {
        let reply = dave.api(method.clone(), &path, Some(&csrf), body.as_ref()).await;
        assert_eq!(reply.status, 403, "{method} {path}: {:?}", reply.body);
    }
    let me = dave.api(Method::GET, "/api/v1/me", None, None).await;
    assert_eq!(me.body["roles"], json!([]));

    // Nobody signed in: the API says 401, the console offers sign-in.
    let anonymous = server.browser();
    let reply = anonymous.api(Method::GET, "/api/v1/requests", None, None).await;
    assert_eq!(reply.status, 401);
    let reply = anonymous
        .api(Method::GET, &format!("/api/v1/requests/{id}"), None, None)
        .await;
    assert_eq!(reply.status, 401);
    let page = anonymous.get(&format!("{}/", server.base_url)).await;
    assert!(page.body.contains("Sign in with SSO"));
    // An agent key is not a person.
    let as_agent = agent.get("/api/v1/requests").await;
    assert_eq!(as_agent.status, 401);
}

async fn decisions_over_http_refuse_what_the_rules_forbid(backend: Backend) {
    let provider = Provider::start().await;
    let server = TestServer::start_with_sso(backend, &provider, |_| {}).await;
    let agent = server.agent_owned_by("deploy-bot", Some("carol@example.com")).await;
    let mut body = request_body("Export customers");
    body["on_behalf_of"] = json!("erin@example.com");
    let id = agent.submit(&body).await;
    let path = format!("/api/v1/requests/{id}/decisions");
    let approve = json!({"verdict": "approve"});

    let (erin, erin_csrf) = signed_in(&server, "erin").await;
    let own = erin.api(Method::POST, &path, Some(&erin_csrf), Some(&approve)).await;
    assert_eq!((own.status, own.error_code()), (403, "own_request"), "{:?}", own.body);
    let view = erin
        .api(Method::GET, &format!("/api/v1/requests/{id}"), None, None)
        .await;
    assert_eq!(view.body["viewer"]["can_decide"], false);
    assert!(
        view.body["viewer"]["reason"]
            .as_str()
            .unwrap_or("")
            .contains("made for you"),
        "{:?}",
        view.body["viewer"]
    );

    let (carol, carol_csrf) = signed_in(&server, "carol").await;
    let owner = carol.api(Method::POST, &path, Some(&carol_csrf), Some(&approve)).await;
    assert_eq!(
        (owner.status, owner.error_code()),
        (403, "own_request"),
        "the agent's owner, an admin, is not exempt"
    );

    let (alice, alice_csrf) = signed_in(&server, "alice").await;
    let silent_deny = alice
        .api(
            Method::POST,
            &path,
            Some(&alice_csrf),
            Some(&json!({"verdict": "deny"})),
        )
        .await;
    assert_eq!(
        (silent_deny.status, silent_deny.error_code()),
        (422, "comment_required")
    );
    let no_csrf = alice.api(Method::POST, &path, None, Some(&approve)).await;
    assert_eq!(no_csrf.status, 403, "cookie-borne changes need the CSRF token");
    assert!(no_csrf.error_message().contains("CSRF"));
    let cross_site = alice
        .http
        .post(format!("{}{path}", server.base_url))
        .header("Origin", "https://evil.example")
        .header("X-CSRF-Token", &alice_csrf)
        .json(&approve)
        .send()
        .await
        .expect("send");
    assert_eq!(cross_site.status(), 403, "a cross-site post is refused");
    let bad_verdict = alice
        .api(
            Method::POST,
            &path,
            Some(&alice_csrf),
            Some(&json!({"verdict": "maybe"})),
        )
        .await;
    assert_eq!(bad_verdict.status, 422);

    let (bob, bob_csrf) = signed_in(&server, "bob").await;
    let ok = alice.api(Method::POST, &path, Some(&alice_csrf), Some(&approve)).await;
    assert_eq!(ok.body["status"], "approved", "{:?}", ok.body);
    let again = alice.api(Method::POST, &path, Some(&alice_csrf), Some(&approve)).await;
    assert_eq!(again.status, 409);
    let late = bob.api(Method::POST, &path, Some(&bob_csrf), Some(&approve)).await;
    assert_eq!((late.status, late.error_code()), (409, "not_pending"));

    // An expired request cannot be approved.
    let mut short = request_body("Short-lived");
    short["ttl_s"] = json!(1);
    let expiring = agent.submit(&short).await;
    tokio::time::sleep(Duration::from_millis(1300)).await;
    let expired = bob
        .api(
            Method::POST,
            &format!("/api/v1/requests/{expiring}/decisions"),
            Some(&bob_csrf),
            Some(&approve),
        )
        .await;
    assert_eq!(expired.status, 409, "{:?}", expired.body);
    let unknown = bob
        .api(
            Method::POST,
            "/api/v1/requests/01937a4c-0000-7000-8000-000000000000/decisions",
            Some(&bob_csrf),
            Some(&approve),
        )
        .await;
    assert_eq!(unknown.status, 404);
}

async fn tampered_replayed_and_invalid_sign_ins_are_refused(backend: Backend) {
    let provider = Provider::start().await;
    let server = TestServer::start_with_sso(backend, &provider, |_| {}).await;

    // Tampered state: refused, and the real callback cannot be used afterwards either.
    let browser = server.browser();
    let callback = browser.sign_in_until_callback("alice").await;
    let tampered = callback.replace("state=", "state=x");
    let page = browser.get(&tampered).await;
    assert_eq!(page.status, 400, "{}", page.body);
    assert!(page.body.contains("state mismatch"), "{}", page.body);
    let replay = browser.get(&callback).await;
    assert_eq!(replay.status, 400);
    assert!(replay.body.contains("already completed or has expired"));

    // A completed sign-in cannot be replayed; the session id changes at sign-in and the
    // cookie is HttpOnly and SameSite.
    let browser = server.browser();
    let login = browser
        .hop(Method::GET, &format!("{}/auth/login", server.base_url), None)
        .await;
    let before = session_cookie(&login.headers).expect("a session holds the sign-in state");
    let callback = browser.sign_in_until_callback("alice").await;
    let landed = browser.hop(Method::GET, &callback, None).await;
    assert_eq!(landed.status, 303);
    let set_cookie = landed
        .headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("signoff_session="))
        .expect("session cookie")
        .to_string();
    assert!(
        set_cookie.contains("HttpOnly") && set_cookie.contains("SameSite=Lax"),
        "{set_cookie}"
    );
    assert_ne!(
        session_cookie(&landed.headers),
        Some(before),
        "session id rotated at sign-in"
    );
    let replayed = browser.get(&callback).await;
    assert_eq!(replayed.status, 400, "a callback works once");

    // An expired ID token (the provider's clock is two hours behind).
    provider.set_clock_offset(-7200).await;
    let browser = server.browser();
    let page = browser.sign_in("bob").await;
    provider.set_clock_offset(0).await;
    assert_eq!(page.status, 401, "{}", page.body);
    assert!(page.body.contains("expired"), "{}", page.body);

    // A server that trusts another issuer name refuses this provider.
    let wrong_issuer = provider.issuer.replace("127.0.0.1", "localhost");
    let strict = TestServer::start_with_sso(backend, &provider, move |config| {
        config.oidc.issuer = Some(wrong_issuer)
    })
    .await;
    let page = strict.browser().get(&format!("{}/auth/login", strict.base_url)).await;
    assert_eq!(page.status, 502, "{}", page.body);
    assert!(page.body.contains("OpenID Provider"), "{}", page.body);

    // ID tokens for another client, or for another sign-in, do not verify.
    let (other_token, other_nonce) = token_for_client(&provider, "signoff-other", "signoff-other-secret").await;
    let verifier = signoff_server::sso::oidc::Oidc::from_config(
        &signoff_server::config::OidcConfig {
            issuer: Some(provider.issuer.clone()),
            client_id: Some("signoff-web".into()),
            client_secret: Some(signoff_server::config::Secret::new("signoff-web-secret")),
            ..Default::default()
        },
        &server.base_url,
    )
    .expect("config")
    .expect("configured");
    let audience = verifier
        .verify_id_token(&other_token, &other_nonce)
        .await
        .expect_err("wrong audience");
    assert!(audience.to_string().contains("audience"), "{audience}");
    let (own_token, _) = token_for_client(&provider, "signoff-web", "signoff-web-secret").await;
    let nonce = verifier
        .verify_id_token(&own_token, "another-sign-in")
        .await
        .expect_err("wrong nonce");
    assert!(nonce.to_string().contains("nonce"), "{nonce}");
    let mut forged = own_token.clone();
    forged.replace_range(forged.len() - 6.., "AAAAAA");
    let signature = verifier.verify_id_token(&forged, "n").await.expect_err("bad signature");
    assert!(
        signature.to_string().contains("signature") || signature.to_string().contains("JWT"),
        "{signature}"
    );

    // Signing out ends the session and hands over to the provider's logout.
    let (alice, csrf) = signed_in(&server, "alice").await;
    let out = alice
        .hop(
            Method::POST,
            &format!("{}/auth/logout", server.base_url),
            Some(&[("csrf", csrf.as_str())]),
        )
        .await;
    assert_eq!(out.status, 303);
    let location = out
        .headers
        .get("location")
        .and_then(|l| l.to_str().ok())
        .unwrap_or_default()
        .to_string();
    assert!(
        location.starts_with(&provider.issuer) && location.contains("id_token_hint"),
        "{location}"
    );
    assert_eq!(alice.api(Method::GET, "/api/v1/me", None, None).await.status, 401);
}

fn session_cookie(headers: &reqwest::header::HeaderMap) -> Option<String> {
    headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| {
            v.strip_prefix("signoff_session=")
                .map(|rest| rest.split(';').next().unwrap_or_default().to_string())
        })
}

/// Signs alice in at the provider as `client_id` directly (the test acting as that
/// client) and returns its ID token and the nonce it asked for.
async fn token_for_client(provider: &Provider, client_id: &str, secret: &str) -> (String, String) {
    let redirect = "http://127.0.0.1:1/auth/callback";
    let nonce = format!("n-{}", uuid::Uuid::now_v7().simple());
    let verifier = "a-pkce-verifier-that-is-long-enough-0123456789-abcdefghij";
    let challenge = {
        use base64::Engine;
        use sha2::Digest;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(verifier.as_bytes()))
    };
    let browser = Browser::new(&provider.issuer);
    let auth = format!(
        "{}/auth?client_id={client_id}&response_type=code&scope=openid%20email%20profile%20groups&redirect_uri={}&state=s&nonce={nonce}&code_challenge={challenge}&code_challenge_method=S256",
        provider.issuer,
        urlencode(redirect)
    );
    let form = browser
        .follow(Method::GET, &auth, None, Some(redirect))
        .await
        .expect("login form");
    let start = form.body.find("action=\"").expect("form") + 8;
    let end = form.body[start..].find('"').expect("end");
    let action = form.url.join(&form.body[start..start + end]).expect("url").to_string();
    let back = browser
        .follow(
            Method::POST,
            &action,
            Some(&[("login", "alice"), ("password", "pw")]),
            Some(redirect),
        )
        .await
        .expect_err("redirected back");
    let code = reqwest::Url::parse(&back)
        .expect("url")
        .query_pairs()
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.into_owned())
        .expect("code");
    let tokens: Value = reqwest::Client::new()
        .post(format!("{}/token", provider.issuer))
        .basic_auth(client_id, Some(secret))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", redirect),
            ("code_verifier", verifier),
        ])
        .send()
        .await
        .expect("token request")
        .json()
        .await
        .expect("token response");
    (tokens["id_token"].as_str().expect("id token").to_string(), nonce)
}

fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            other => format!("%{other:02X}"),
        })
        .collect()
}

async fn terminal_signs_in_through_the_device_flow(backend: Backend) {
    let provider = Provider::start().await;
    let server = TestServer::start_with_sso(backend, &provider, |_| {}).await;
    let http = reqwest::Client::new();
    let post = |path: &str, body: Value| {
        let http = http.clone();
        let url = format!("{}{path}", server.base_url);
        async move { signoff_tests::server::read_reply(http.post(url).json(&body).send().await.expect("send")).await }
    };

    let code = post("/api/v1/device/code", json!({"client_name": "oncall-laptop"})).await;
    assert_eq!(code.status, 200, "{:?}", code.body);
    let device_code = code.body["device_code"].as_str().expect("device code").to_string();
    let user_code = code.body["user_code"].as_str().expect("user code").to_string();
    assert_eq!(code.body["verification_uri"], format!("{}/device", server.base_url));

    let poll = || post("/api/v1/device/token", json!({ "device_code": device_code }));
    let pending = poll().await;
    assert_eq!(
        (pending.status, pending.body["error"].as_str()),
        (400, Some("authorization_pending"))
    );
    let fast = poll().await;
    assert_eq!(fast.body["error"], "slow_down", "polling faster than the interval");

    // The reviewer types the code in the browser and sees the terminal and the code.
    let (alice, _) = signed_in(&server, "alice").await;
    let confirm = alice.type_device_code(&user_code.to_lowercase().replace('-', "")).await;
    assert!(
        confirm.body.contains(&user_code) && confirm.body.contains("oncall-laptop"),
        "{}",
        confirm.body
    );
    let csrf = confirm.csrf();
    let forged = alice
        .post_form(
            "/device",
            &[("csrf", "forged"), ("user_code", &user_code), ("answer", "approve")],
        )
        .await;
    assert_eq!(forged.status, 403, "the confirmation form needs its CSRF token");
    let done = alice
        .post_form(
            "/device",
            &[("csrf", &csrf), ("user_code", &user_code), ("answer", "approve")],
        )
        .await;
    assert!(done.body.contains("Terminal signed in"), "{}", done.body);

    tokio::time::sleep(Duration::from_millis(1100)).await;
    let issued = poll().await;
    assert_eq!(issued.status, 200, "{:?}", issued.body);
    let token = issued.body["access_token"].as_str().expect("token").to_string();
    assert!(token.starts_with("so_term_"));
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let reused = poll().await;
    assert_eq!(reused.body["error"], "invalid_grant", "a device code works once");

    // The token acts as alice, and her decisions say they came from the terminal.
    let terminal = |method: Method, path: &str| {
        http.request(method, format!("{}{path}", server.base_url))
            .bearer_auth(&token)
    };
    let me: Value = terminal(Method::GET, "/api/v1/me")
        .send()
        .await
        .expect("me")
        .json()
        .await
        .expect("json");
    assert_eq!(me["identity"]["email"], "alice@example.com");
    let agent = server.agent("deploy-bot").await;
    let id = agent.submit(&request_body("From the terminal")).await;
    let decided = terminal(Method::POST, &format!("/api/v1/requests/{id}/decisions"))
        .json(&json!({"verdict": "approve"}))
        .send()
        .await
        .expect("decide");
    assert_eq!(decided.status(), 200);
    let decided: Value = decided.json().await.expect("json");
    assert_eq!(decided["decisions"][0]["channel"], "terminal");

    // Listed for its owner and for admins; revocable by both; dead at once when revoked.
    let mine: Value = terminal(Method::GET, "/api/v1/tokens")
        .send()
        .await
        .expect("list")
        .json()
        .await
        .expect("json");
    assert_eq!(mine[0]["client_name"], "oncall-laptop");
    let token_id = mine[0]["id"].as_str().expect("id").to_string();
    let (bob, bob_csrf) = signed_in(&server, "bob").await;
    let bobs = bob.api(Method::GET, "/api/v1/tokens", None, None).await;
    assert_eq!(bobs.body, json!([]), "bob sees only his own tokens");
    let not_his = bob
        .api(
            Method::DELETE,
            &format!("/api/v1/tokens/{token_id}"),
            Some(&bob_csrf),
            None,
        )
        .await;
    assert_eq!(not_his.status, 404);
    let everyone = bob.api(Method::GET, "/api/v1/tokens?all=true", None, None).await;
    assert_eq!(everyone.status, 403);
    let (carol, carol_csrf) = signed_in(&server, "carol").await;
    let all = carol.api(Method::GET, "/api/v1/tokens?all=true", None, None).await;
    assert_eq!(all.body[0]["owner"], "alice@example.com");
    let revoked = carol
        .api(
            Method::DELETE,
            &format!("/api/v1/tokens/{token_id}"),
            Some(&carol_csrf),
            None,
        )
        .await;
    assert_eq!(revoked.status, 204);
    let dead = terminal(Method::GET, "/api/v1/me").send().await.expect("me");
    assert_eq!(dead.status(), 401);

    // Refused and expired codes.
    let code = post("/api/v1/device/code", json!({})).await;
    let (refused_code, refused_user) = (
        code.body["device_code"].as_str().expect("code").to_string(),
        code.body["user_code"].as_str().expect("code").to_string(),
    );
    alice.answer_device_code(&refused_user, "deny").await;
    let denied = post("/api/v1/device/token", json!({ "device_code": refused_code })).await;
    assert_eq!(denied.body["error"], "access_denied");
    let code = post("/api/v1/device/code", json!({})).await;
    server
        .db
        .execute("UPDATE device_codes SET expires_at = 0 WHERE state = 'pending'")
        .await
        .expect("age the code");
    let expired = post(
        "/api/v1/device/token",
        json!({ "device_code": code.body["device_code"] }),
    )
    .await;
    assert_eq!(expired.body["error"], "expired_token");
    let unknown = post("/api/v1/device/token", json!({ "device_code": "so_device_nope" })).await;
    assert_eq!(unknown.body["error"], "invalid_grant");
    let stale = alice
        .type_device_code(code.body["user_code"].as_str().unwrap_or(""))
        .await;
    assert!(stale.body.contains("unknown, already used or expired"));

    // `signoff logout` revokes the token it holds.
    let code = post("/api/v1/device/code", json!({"client_name": "second"})).await;
    let user_code = code.body["user_code"].as_str().expect("code").to_string();
    alice.answer_device_code(&user_code, "approve").await;
    let token = post(
        "/api/v1/device/token",
        json!({ "device_code": code.body["device_code"] }),
    )
    .await
    .body["access_token"]
        .as_str()
        .expect("token")
        .to_string();
    let out = http
        .post(format!("{}/api/v1/tokens/revoke", server.base_url))
        .bearer_auth(&token)
        .send()
        .await
        .expect("revoke");
    assert_eq!(out.status(), 204);
    let after = http
        .get(format!("{}/api/v1/me", server.base_url))
        .bearer_auth(&token)
        .send()
        .await
        .expect("me");
    assert_eq!(after.status(), 401);
}

async fn live_events_stream_and_resume(backend: Backend) {
    use futures_util::StreamExt;
    let provider = Provider::start().await;
    let server = TestServer::start_with_sso(backend, &provider, |_| {}).await;
    let agent = server.agent("deploy-bot").await;
    let (alice, csrf) = signed_in(&server, "alice").await;

    let response = alice
        .http
        .get(format!("{}/api/v1/events", server.base_url))
        .send()
        .await
        .expect("events");
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap_or("")
            .starts_with("text/event-stream")
    );
    let mut stream = response.bytes_stream();
    let id = agent.submit(&request_body("Live")).await;
    let mut text = String::new();
    while !text.contains(&id) {
        let chunk = tokio::time::timeout(Duration::from_secs(10), stream.next())
            .await
            .expect("event arrives")
            .expect("stream open")
            .expect("bytes");
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(text.contains("event: created"), "{text}");
    let last_id: String = text
        .lines()
        .filter_map(|l| l.strip_prefix("id: "))
        .next_back()
        .expect("event id")
        .to_string();
    drop(stream);

    // While disconnected, the request is decided; on reconnect the client catches up.
    alice
        .api(
            Method::POST,
            &format!("/api/v1/requests/{id}/decisions"),
            Some(&csrf),
            Some(&json!({"verdict": "approve"})),
        )
        .await;
    let resumed = alice
        .http
        .get(format!("{}/api/v1/events", server.base_url))
        .header("Last-Event-ID", &last_id)
        .send()
        .await
        .expect("resume");
    let mut stream = resumed.bytes_stream();
    let mut text = String::new();
    while !text.contains("\"approved\"") {
        let chunk = tokio::time::timeout(Duration::from_secs(10), stream.next())
            .await
            .expect("replayed")
            .expect("open")
            .expect("bytes");
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(text.contains("event: decided"), "{text}");
    assert!(
        !text.contains("event: created"),
        "only what was missed is replayed: {text}"
    );
}

/// The sentence an error page shows (`<p class="message">`), as a person reads it.
fn page_message(body: &str) -> String {
    let start = body
        .find("<p class=\"message\">")
        .map(|at| at + "<p class=\"message\">".len())
        .unwrap_or_else(|| panic!("an error page with a message: {body}"));
    let end = body[start..].find("</p>").expect("end of the message") + start;
    body[start..end]
        .replace("&#39;", "'")
        .replace("&#x27;", "'")
        .replace("&quot;", "\"")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// ID tokens a provider (or someone between it and us) could forge, each signed or not so
/// as to pass a careless verifier, are refused at the callback with the sentence for that
/// failure, and nobody is signed in.
async fn forged_id_tokens_are_refused(backend: Backend) {
    use signoff_tests::forged_op::{CLIENT_ID, CLIENT_SECRET, ForgedProvider, Forgery};
    let provider = ForgedProvider::start().await;
    let issuer = provider.issuer.clone();
    let server = TestServer::start_with(backend, move |config| {
        config.oidc.issuer = Some(issuer);
        config.oidc.client_id = Some(CLIENT_ID.into());
        config.oidc.client_secret = Some(signoff_server::config::Secret::new(CLIENT_SECRET));
    })
    .await;

    // The control: the same provider, signing honestly, signs Mallory in.
    provider.forge(Forgery::None);
    let browser = server.browser();
    let landed = browser.get(&format!("{}/auth/login", server.base_url)).await;
    assert_eq!(landed.status, 200, "{}", landed.body);
    let me = browser.api(Method::GET, "/api/v1/me", None, None).await;
    assert_eq!(me.status, 200, "{:?}", me.body);
    assert_eq!(me.body["identity"]["email"], "mallory@example.com");
    assert_eq!(me.body["identity"]["issuer"], provider.issuer.as_str());

    for (forgery, sentence) in [
        (Forgery::WrongIssuer, "the ID token comes from another issuer"),
        (
            Forgery::WrongAudience,
            "the ID token was issued for another client (wrong audience)",
        ),
        (Forgery::AlgNone, "the ID token's signature does not verify"),
        (
            Forgery::HmacWithThePublicKey,
            "the ID token's signature does not verify",
        ),
    ] {
        provider.forge(forgery);
        let browser = server.browser();
        let page = browser.get(&format!("{}/auth/login", server.base_url)).await;
        assert!(
            page.url.path() == "/auth/callback",
            "{forgery:?}: refused at the callback, not before: {}",
            page.url
        );
        assert_eq!(page.status, 401, "{forgery:?}: {}", page.body);
        assert_eq!(page_message(&page.body), sentence, "{forgery:?}");
        let me = browser.api(Method::GET, "/api/v1/me", None, None).await;
        assert_eq!(me.status, 401, "{forgery:?}: nobody is signed in: {:?}", me.body);
        let queue = browser.api(Method::GET, "/api/v1/requests", None, None).await;
        assert_eq!(queue.status, 401, "{forgery:?}: {:?}", queue.body);
    }
}
