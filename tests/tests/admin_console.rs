//! The admin console over HTTP, signed in through the real provider: every admin page and
//! form refuses reviewers (a 403 page) and anonymous callers (to sign-in); what-if over
//! past requests; testing a request; agents and their keys; grants; break-glass
//! follow-ups. The policy form is also driven in real Chromium. Both stores.

use reqwest::Method;
use serde_json::{Value, json};
use signoff_app::policy::{Effect, GrantTerms, Matcher, PolicyDoc, Requirement};
use signoff_app::wire::{DecisionInput, GrantInput};
use signoff_app::{Channel, Identity, Verdict};
use signoff_server::store::Actor;
use signoff_tests::browser::Browser;
use signoff_tests::fixtures::request_body;
use signoff_tests::oidc::Provider;
use signoff_tests::{AgentClient, Backend, TestServer, on_both_stores};

on_both_stores!(
    admin_pages_refuse_reviewers_and_anonymous_callers,
    what_if_shows_the_requests_a_draft_would_change,
    test_a_request_shows_the_matching_policy_and_why,
    agent_keys_are_shown_once_rotated_and_revoked,
    grants_are_listed_and_revoked,
    break_glass_followups_need_another_admin,
    the_audit_trail_pages_newest_first,
    auditors_read_and_export_the_trail_and_nothing_else,
    policies_are_edited_in_the_browser,
    typed_markup_stays_text_on_every_admin_form,
    policies_move_up_and_down_and_any_two_versions_compare,
);

/// Every admin page (GET) and form (POST), with a plausible id where one is needed.
const ADMIN_GETS: &[&str] = &[
    "/admin",
    "/admin/policies",
    "/admin/policies/new",
    "/admin/policies/p-1",
    "/admin/policies/p-1/versions?a=1&b=2",
    "/admin/what-if",
    "/admin/test",
    "/admin/agents",
    "/admin/grants",
    "/admin/audit?kind=agent.",
    "/admin/audit/export?format=csv",
    "/admin/channels",
];
const ADMIN_POSTS: &[&str] = &[
    "/admin/followups/01937a4c-0000-7000-8000-000000000000/acknowledge",
    "/admin/policies/new",
    "/admin/policies/p-1",
    "/admin/policies/p-1/move",
    "/admin/what-if",
    "/admin/test",
    "/admin/agents",
    "/admin/agents/deploy-bot/rotate",
    "/admin/agents/deploy-bot/revoke",
    "/admin/grants/g-1/revoke",
    "/admin/channels/siem/test",
    "/admin/channels/siem/deliveries/1/send",
];

async fn signed_in(server: &TestServer, login: &str) -> (Browser, String) {
    let browser = server.browser();
    let page = browser.sign_in(login).await;
    let csrf = page.csrf();
    (browser, csrf)
}

fn policy(name: &str, matcher: Matcher, effect: Effect) -> PolicyDoc {
    PolicyDoc {
        name: name.into(),
        description: String::new(),
        enabled: true,
        matcher,
        effect,
    }
}

fn actions(patterns: &[&str]) -> Matcher {
    Matcher {
        actions: patterns.iter().map(|p| p.to_string()).collect(),
        ..Matcher::default()
    }
}

fn body_with(title: &str, fields: Value) -> Value {
    let mut body = request_body(title);
    for (key, value) in fields.as_object().expect("fields").clone() {
        body[key] = value;
    }
    body
}

/// The text between `start` and the next `end` after it.
fn between<'a>(text: &'a str, start: &str, end: &str) -> &'a str {
    let from = text.find(start).map(|i| i + start.len()).unwrap_or(text.len());
    let to = text[from..].find(end).map_or(text.len(), |i| from + i);
    &text[from..to]
}

async fn admin_pages_refuse_reviewers_and_anonymous_callers(backend: Backend) {
    let provider = Provider::start().await;
    let server = TestServer::start_with_sso(backend, &provider, |_| {}).await;
    let agent = server.agent("deploy-bot").await;
    let submitted = agent.submit(&request_body("Deploy payments")).await;

    let anonymous = server.browser();
    for path in ADMIN_GETS {
        let page = anonymous
            .hop(Method::GET, &format!("{}{path}", server.base_url), None)
            .await;
        assert_eq!(page.status, 303, "GET {path} sends an anonymous caller to sign in");
        let location = page.header("location");
        assert!(
            location.starts_with("/auth/login?next=%2Fadmin"),
            "GET {path}: {location}"
        );
    }
    for path in ADMIN_POSTS {
        let page = anonymous
            .hop(
                Method::POST,
                &format!("{}{path}", server.base_url),
                Some(&[("csrf", "x"), ("name", "evil")]),
            )
            .await;
        assert_eq!(page.status, 303, "POST {path} sends an anonymous caller to sign in");
        assert_eq!(page.header("location"), "/auth/login?next=%2Fadmin", "POST {path}");
    }

    let (alice, csrf) = signed_in(&server, "alice").await;
    for path in ADMIN_GETS {
        let page = alice.get(&format!("{}{path}", server.base_url)).await;
        assert_eq!(page.status, 403, "GET {path} refuses a reviewer");
        assert!(
            page.body.contains("<!DOCTYPE html>") && page.body.contains("the admin pages need the admin role"),
            "GET {path}: a page that says why"
        );
    }
    for path in ADMIN_POSTS {
        let page = alice
            .post_form(path, &[("csrf", &csrf), ("name", "sneaky-bot"), ("direction", "up")])
            .await;
        assert_eq!(page.status, 403, "POST {path} refuses a reviewer");
        assert!(page.body.contains("the admin pages need the admin role"), "POST {path}");
    }
    // The refused forms changed nothing: the agent's key still works, no agent was made.
    assert_eq!(agent.get(&format!("/api/v1/requests/{submitted}")).await.status, 200);
    let agents = server.service.store().list_agents().await.expect("agents");
    assert_eq!(agents.len(), 1, "no agent made by a reviewer");
    // Reviewers see no Admin link; someone with no role sees the no-access page.
    let queue = alice.get(&format!("{}/", server.base_url)).await;
    assert!(!queue.body.contains("href=\"/admin\""));
    let dave = server.browser();
    dave.sign_in("dave").await;
    let refused = dave.get(&format!("{}/admin/policies", server.base_url)).await;
    assert_eq!(refused.status, 403);
    assert!(refused.body.contains("No access") || refused.body.contains("no access"));

    // An admin is let in, and a form without the CSRF token is refused.
    let (carol, carol_csrf) = signed_in(&server, "carol").await;
    for path in ADMIN_GETS.iter().filter(|p| !p.contains("p-1")) {
        let page = carol.get(&format!("{}{path}", server.base_url)).await;
        assert_eq!(page.status, 200, "GET {path} for an admin");
    }
    let forged = carol
        .post_form("/admin/agents", &[("csrf", "forged"), ("name", "forged-bot")])
        .await;
    assert_eq!(forged.status, 403);
    assert!(!carol_csrf.is_empty());
    let agents = server.service.store().list_agents().await.expect("agents");
    assert_eq!(agents.len(), 1, "no agent made by a forged form");
}

async fn what_if_shows_the_requests_a_draft_would_change(backend: Backend) {
    let provider = Provider::start().await;
    let server = TestServer::start_with_sso(backend, &provider, |_| {}).await;
    let agent = server.agent("db-bot").await;
    let drop_id = agent
        .submit(&body_with("Drop the old orders table", json!({"action": "db.drop"})))
        .await;
    let deploy_id = agent.submit(&request_body("Deploy payments")).await;
    let export_id = agent
        .submit(&body_with("Export the customers", json!({"action": "db.export"})))
        .await;

    let (carol, csrf) = signed_in(&server, "carol").await;
    let form = carol.get(&format!("{}/admin/what-if", server.base_url)).await;
    assert_eq!(form.status, 200);
    assert!(
        form.body.contains("value=\"1000\""),
        "the last 1,000 requests by default"
    );

    let draft = r#"
[[policy]]
name = "no drops"
[policy.match]
actions = ["db.drop"]
[policy.effect]
type = "deny"
reason = "tables are never dropped by agents"

[[policy]]
name = "exports need two"
[policy.match]
actions = ["db.export"]
[policy.effect]
type = "require_approval"
approvals = 2
"#;
    let page = carol
        .post_form("/admin/what-if", &[("csrf", &csrf), ("draft", draft), ("last", "1000")])
        .await;
    assert_eq!(page.status, 200, "{}", page.body);
    let result = between(&page.body, "id=\"what-if-result\"", "</section>");
    assert!(result.contains("2 of 3 requests would change"), "{result}");
    assert!(result.contains(&format!("/requests/{drop_id}")) && result.contains("denied at once"));
    assert!(result.contains(&format!("/requests/{export_id}")) && result.contains("2 approvals"));
    assert!(result.contains("no drops") && result.contains("exports need two"));
    assert!(
        !result.contains(&format!("/requests/{deploy_id}")),
        "an unchanged outcome is not listed"
    );
    assert!(result.contains("Examined 3 requests in"), "{result}");
    assert!(
        page.body.contains("tables are never dropped"),
        "the draft stays in the form"
    );

    // Only the newest request when asked for one.
    let one = carol
        .post_form("/admin/what-if", &[("csrf", &csrf), ("draft", draft), ("last", "1")])
        .await;
    assert!(one.body.contains("1 of 1 requests would change"), "{}", one.body);

    // An invalid draft shows its problems and nothing else.
    let bad = carol
        .post_form(
            "/admin/what-if",
            &[
                ("csrf", &csrf),
                (
                    "draft",
                    "[[policy]]\nname = \"x\"\n[policy.match]\ncondition = \"payload.rows >\"\n[policy.effect]\ntype = \"deny\"\nreason = \"no\"\n",
                ),
            ],
        )
        .await;
    assert_eq!(bad.status, 422);
    assert!(bad.body.contains("match.condition"), "{}", bad.body);
    assert!(!bad.body.contains("id=\"what-if-result\""));
    let broken = carol
        .post_form("/admin/what-if", &[("csrf", &csrf), ("draft", "[[policy]\nname=")])
        .await;
    assert_eq!(broken.status, 422);
    assert!(broken.body.contains("the policy file is not valid"), "{}", broken.body);
    // Nothing was saved.
    assert!(server.service.store().policies().await.expect("policies").is_empty());
}

async fn test_a_request_shows_the_matching_policy_and_why(backend: Backend) {
    let provider = Provider::start().await;
    let server = TestServer::start_with_sso(backend, &provider, |_| {}).await;
    let mut terms = Requirement::simple(2);
    terms.ttl = Some("2h".into());
    let matcher = Matcher {
        actions: vec!["deploy.*".into()],
        labels: vec!["env=prod".into()],
        ..Matcher::default()
    };
    let saved = server
        .service
        .save_policy(
            None,
            policy("prod deploys", matcher, Effect::RequireApproval(terms)),
            Actor::Operator,
        )
        .await
        .expect("saved");

    let (carol, csrf) = signed_in(&server, "carol").await;
    let body = request_body("Deploy payments").to_string();
    let page = carol
        .post_form(
            "/admin/test",
            &[("csrf", &csrf), ("agent", "deploy-bot"), ("body", &body)],
        )
        .await;
    assert_eq!(page.status, 200, "{}", page.body);
    let result = between(&page.body, "id=\"test-result\"", "</section>");
    assert!(
        result.contains("prod deploys") && result.contains("(version 1)"),
        "{result}"
    );
    assert!(result.contains("action deploy.service matches `deploy.*`"), "{result}");
    assert!(result.contains("env=prod"), "the label rule is in why: {result}");
    assert!(result.contains("2 approvals"), "{result}");
    assert!(result.contains("2h"), "the terms: {result}");

    // Another environment: no policy matches, the default applies.
    let staging = body_with("Deploy to staging", json!({"labels": {"env": "staging"}})).to_string();
    let page = carol
        .post_form(
            "/admin/test",
            &[("csrf", &csrf), ("agent", "deploy-bot"), ("body", &staging)],
        )
        .await;
    let result = between(&page.body, "id=\"test-result\"", "</section>");
    assert!(
        result.contains("default") && result.contains("no policy matched"),
        "{result}"
    );

    let broken = carol
        .post_form(
            "/admin/test",
            &[("csrf", &csrf), ("agent", "x"), ("body", "{\"action\": 1")],
        )
        .await;
    assert_eq!(broken.status, 422);
    assert!(broken.body.contains("not valid JSON"));

    // Disabled through its form (the box unticked): a new version, which matches nothing.
    let edit = format!("/admin/policies/{}", saved.id);
    let disabled = carol
        .post_form(
            &edit,
            &[
                ("csrf", &csrf),
                ("name", "prod deploys"),
                ("actions", "deploy.*"),
                ("labels", "env=prod"),
                ("effect", "require_approval"),
                ("approvals", "2"),
                ("ttl", "2h"),
            ],
        )
        .await;
    assert_eq!(disabled.status, 200, "{}", disabled.body);
    assert!(disabled.body.contains("version 2 is in force"));
    let page = carol
        .post_form(
            "/admin/test",
            &[("csrf", &csrf), ("agent", "deploy-bot"), ("body", &body)],
        )
        .await;
    let result = between(&page.body, "id=\"test-result\"", "</section>");
    assert!(
        result.contains("no policy matched"),
        "a disabled policy matches nothing: {result}"
    );
    let versions = carol.get(&format!("{}{edit}/versions", server.base_url)).await;
    let diff = between(&versions.body, "id=\"version-diff\"", "</section>");
    assert!(diff.contains("enabled = false"), "{diff}");
}

/// The text of the element with this id (up to its first child tag).
fn element_text(body: &str, id: &str) -> String {
    let rest = between(body, &format!("id=\"{id}\""), "</");
    rest.split_once('>')
        .map(|(_, text)| text.to_string())
        .unwrap_or_default()
}

fn shown_key(body: &str) -> String {
    element_text(body, "api-key")
}

async fn agent_keys_are_shown_once_rotated_and_revoked(backend: Backend) {
    let provider = Provider::start().await;
    let server = TestServer::start_with_sso(backend, &provider, |_| {}).await;
    let (carol, csrf) = signed_in(&server, "carol").await;

    let created = carol
        .post_form(
            "/admin/agents",
            &[
                ("csrf", &csrf),
                ("name", "ci-bot"),
                ("owner", "ops@example.com"),
                ("description", "Runs the nightly migrations"),
            ],
        )
        .await;
    assert_eq!(created.status, 200, "{}", created.body);
    let key = shown_key(&created.body);
    assert!(key.starts_with("sk_") || key.len() > 20, "a key is shown: {key:?}");
    assert!(created.header("cache-control").contains("no-store"));
    let ci = AgentClient::new(&server.base_url, &key);
    let reply = ci.post("/api/v1/requests", &request_body("From the new agent")).await;
    assert_eq!(
        reply.status, 201,
        "the key works against the agent API: {:?}",
        reply.body
    );
    let mine = format!("/api/v1/requests/{}", reply.body["id"].as_str().unwrap_or_default());

    let list = carol.get(&format!("{}/admin/agents", server.base_url)).await;
    assert!(!list.body.contains(&key), "the key is shown once only");
    let row = between(&list.body, "data-agent=\"ci-bot\"", "</tr>");
    assert!(
        row.contains("ops@example.com")
            && row.contains("Runs the nightly migrations")
            && row.contains("<td class=\"keys\">1</td>"),
        "{row}"
    );
    assert!(!row.contains("never"), "its last request is shown: {row}");

    let again = carol
        .post_form("/admin/agents", &[("csrf", &csrf), ("name", "ci-bot")])
        .await;
    assert_eq!(again.status, 409, "creating an existing agent is refused");
    let bad = carol
        .post_form("/admin/agents", &[("csrf", &csrf), ("name", "no spaces allowed")])
        .await;
    assert_eq!(bad.status, 422);

    let rotated = carol.post_form("/admin/agents/ci-bot/rotate", &[("csrf", &csrf)]).await;
    assert_eq!(rotated.status, 200, "{}", rotated.body);
    let new_key = shown_key(&rotated.body);
    assert_ne!(new_key, key);
    assert_eq!(ci.get(&mine).await.status, 401, "the old key fails at once");
    let renewed = AgentClient::new(&server.base_url, &new_key);
    assert_eq!(renewed.get(&mine).await.status, 200, "the new key works");

    let revoked = carol.post_form("/admin/agents/ci-bot/revoke", &[("csrf", &csrf)]).await;
    assert_eq!(revoked.status, 200);
    assert!(revoked.body.contains("Revoked 1 key of ci-bot"), "{}", revoked.body);
    assert_eq!(renewed.get(&mine).await.status, 401, "revoked at once");

    let missing = carol.post_form("/admin/agents/nobody/revoke", &[("csrf", &csrf)]).await;
    assert_eq!(missing.status, 404);

    // All of it is in the audit trail, newest first, and filters by kind.
    let audit = carol
        .get(&format!("{}/admin/audit?kind=agent.key", server.base_url))
        .await;
    assert_eq!(audit.status, 200);
    for kind in ["agent.key_rotated", "agent.keys_revoked"] {
        assert_eq!(
            audit.body.matches(&format!("<code>{kind}</code>")).count(),
            1,
            "{kind}: {}",
            audit.body
        );
    }
    assert!(!audit.body.contains("<code>agent.created</code>"), "filtered by kind");
    assert!(audit.body.contains("carol@example.com"));
    let by_nobody = carol
        .get(&format!("{}/admin/audit?actor=nobody-at-all", server.base_url))
        .await;
    assert!(by_nobody.body.contains("No events match"));
}

async fn grants_are_listed_and_revoked(backend: Backend) {
    let provider = Provider::start().await;
    let server = TestServer::start_with_sso(backend, &provider, |_| {}).await;
    let mut terms = Requirement::simple(1);
    terms.grants = Some(GrantTerms {
        max_duration: "8h".into(),
        max_uses: 5,
    });
    server
        .service
        .save_policy(
            None,
            policy(
                "restarts",
                actions(&["service.restart"]),
                Effect::RequireApproval(terms),
            ),
            Actor::Operator,
        )
        .await
        .expect("saved");
    let agent = server.agent("ops-bot").await;
    let restart = || {
        body_with(
            "Restart payments",
            json!({"action": "service.restart", "on_behalf_of": null}),
        )
    };
    let first = agent.submit(&restart()).await;

    // Alice approves with a grant, through the request page's grant fields.
    let (alice, alice_csrf) = signed_in(&server, "alice").await;
    let page = alice.get(&format!("{}/requests/{first}", server.base_url)).await;
    assert!(
        page.body.contains("name=\"grant_duration\""),
        "the policy allows grants"
    );
    assert!(page.body.contains("id=\"policy-why\""), "the policy's why is shown");
    assert!(page.body.contains("service.restart matches"), "{}", page.body);
    let approved = alice
        .post_form(
            &format!("/requests/{first}/decide"),
            &[
                ("csrf", &alice_csrf),
                ("verdict", "approve"),
                ("comment", ""),
                ("grant_duration", "1h"),
                ("grant_uses", "3"),
                ("grant_fields", ""),
            ],
        )
        .await;
    assert_eq!(approved.status, 200, "{}", approved.body);
    let second = agent.submit(&restart()).await;
    let status = agent.get(&format!("/api/v1/requests/{second}")).await;
    assert_eq!(status.body["status"], "approved", "the grant approves the next one");

    let (carol, csrf) = signed_in(&server, "carol").await;
    let list = carol.get(&format!("{}/admin/grants", server.base_url)).await;
    assert_eq!(list.status, 200);
    let grant_id = between(&list.body, "<tr data-id=\"", "\"").to_string();
    let row = between(&list.body, &format!("data-id=\"{grant_id}\""), "</tr>");
    assert!(row.contains("ops-bot") && row.contains("alice@example.com"), "{row}");
    assert!(row.contains("1/3") && row.contains("restarts (version 1)"), "{row}");
    assert!(row.contains(">active<"), "{row}");

    // Bob gave no grant and is no admin: he cannot revoke it.
    let (bob, bob_csrf) = signed_in(&server, "bob").await;
    let refused = bob
        .post_form(&format!("/grants/{grant_id}/revoke"), &[("csrf", &bob_csrf)])
        .await;
    assert_eq!(refused.status, 403, "{}", refused.body);

    let revoked = carol
        .post_form(&format!("/admin/grants/{grant_id}/revoke"), &[("csrf", &csrf)])
        .await;
    assert_eq!(revoked.status, 200);
    assert!(revoked.body.contains("Grant revoked"));
    let row = between(&revoked.body, &format!("data-id=\"{grant_id}\""), "</tr>");
    assert!(row.contains(">revoked<"), "{row}");
    let third = agent.submit(&restart()).await;
    let status = agent.get(&format!("/api/v1/requests/{third}")).await;
    assert_eq!(status.body["status"], "pending", "a revoked grant approves nothing");

    // A grantor who is no admin revokes their own grant.
    let fourth_input = DecisionInput {
        verdict: Verdict::Approve,
        comment: String::new(),
        break_glass: false,
        grant: Some(GrantInput {
            duration: "1h".into(),
            max_uses: 2,
            fields: Vec::new(),
        }),
    };
    let bob_identity = server
        .service
        .store()
        .grants(None)
        .await
        .expect("grants")
        .into_iter()
        .flat_map(|g| g.granted_by)
        .next()
        .map(|alice_identity| Identity {
            subject: "u-bob".into(),
            email: Some("bob@example.com".into()),
            name: Some("Bob Reviewer".into()),
            ..alice_identity
        })
        .expect("a grantor's identity");
    server
        .service
        .decide(&bob_identity, third.parse().expect("id"), &fourth_input, Channel::Web)
        .await
        .expect("bob approves with a grant");
    let bobs_grant = server
        .service
        .store()
        .grants(Some(signoff_server::service::now()))
        .await
        .expect("grants")
        .into_iter()
        .next()
        .expect("bob's grant");
    let own = bob
        .hop(
            Method::POST,
            &format!("{}/grants/{}/revoke", server.base_url, bobs_grant.id),
            Some(&[("csrf", &bob_csrf)]),
        )
        .await;
    assert_eq!(own.status, 303, "{}", own.body);
    let active = server
        .service
        .store()
        .grants(Some(signoff_server::service::now()))
        .await
        .expect("grants");
    assert!(active.is_empty(), "bob's grant is revoked");
}

async fn break_glass_followups_need_another_admin(backend: Backend) {
    let provider = Provider::start().await;
    let server = TestServer::start_with_sso(backend, &provider, |_| {}).await;
    let mut terms = Requirement::simple(1);
    terms.break_glass = vec!["carol@example.com".into(), "zoe@example.com".into()];
    server
        .service
        .save_policy(
            None,
            policy("emergency access", actions(&["iam.*"]), Effect::RequireApproval(terms)),
            Actor::Operator,
        )
        .await
        .expect("saved");
    let agent = server.agent("iam-bot").await;
    let carols = agent
        .submit(&body_with(
            "Grant Carol prod access",
            json!({"action": "iam.escalate", "on_behalf_of": "carol@example.com"}),
        ))
        .await;

    // Carol may not approve her own request, except by breaking glass, with a comment.
    let (carol, csrf) = signed_in(&server, "carol").await;
    let page = carol.get(&format!("{}/requests/{carols}", server.base_url)).await;
    assert!(
        page.body.contains("id=\"break-glass-choice\""),
        "the admin is offered break-glass"
    );
    let (alice, alice_csrf) = signed_in(&server, "alice").await;
    let for_alice = alice.get(&format!("{}/requests/{carols}", server.base_url)).await;
    assert!(!for_alice.body.contains("break-glass-choice"), "reviewers are not");
    // A reviewer who sends the choice anyway is refused, and nothing is recorded.
    let forged = alice
        .post_form(
            &format!("/requests/{carols}/decide"),
            &[
                ("csrf", &alice_csrf),
                ("verdict", "approve"),
                ("comment", "let me"),
                ("break_glass", "on"),
            ],
        )
        .await;
    assert_eq!(forged.status, 403, "{}", forged.body);
    let still = agent.get(&format!("/api/v1/requests/{carols}")).await;
    assert_eq!(still.body["status"], "pending");
    let silent = carol
        .post_form(
            &format!("/requests/{carols}/decide"),
            &[
                ("csrf", &csrf),
                ("verdict", "approve"),
                ("comment", ""),
                ("break_glass", "on"),
            ],
        )
        .await;
    assert_eq!(silent.status, 422, "break-glass needs a comment");
    let broke = carol
        .post_form(
            &format!("/requests/{carols}/decide"),
            &[
                ("csrf", &csrf),
                ("verdict", "approve"),
                ("comment", "Outage INC-42: nobody else is awake"),
                ("break_glass", "on"),
            ],
        )
        .await;
    assert_eq!(broke.status, 200, "{}", broke.body);
    let page = carol.get(&format!("{}/requests/{carols}", server.base_url)).await;
    assert!(page.body.contains("BREAK-GLASS"), "marked on the request page");
    let history = alice.get(&format!("{}/history", server.base_url)).await;
    let row = between(&history.body, "Grant Carol prod access", "</tr>");
    assert!(row.contains("BREAK-GLASS"), "and in history, for everyone: {row}");

    // It stays at the top of the queue and of /admin until another admin acknowledges.
    let queue = carol.get(&format!("{}/", server.base_url)).await;
    let panel = between(&queue.body, "id=\"followups\"", "</section>");
    assert!(panel.contains("Grant Carol prod access"), "{panel}");
    let admin = carol.get(&format!("{}/admin", server.base_url)).await;
    assert!(admin.body.contains("id=\"followups\""));
    assert_eq!(element_text(&admin.body, "count-followups"), "1");
    let own = carol
        .post_form(&format!("/admin/followups/{carols}/acknowledge"), &[("csrf", &csrf)])
        .await;
    assert_eq!(own.status, 403, "not by the admin who broke glass");
    assert!(own.body.contains("another admin must acknowledge"), "{}", own.body);
    assert!(own.body.contains("id=\"followups\""), "still open");

    // Zoe, another admin, breaks glass on her own request (through the API)...
    let zoe = Identity {
        issuer: provider.issuer.clone(),
        subject: "u-zoe".into(),
        email: Some("zoe@example.com".into()),
        email_verified: true,
        name: Some("Zoe Admin".into()),
        groups: vec!["signoff-admins".into(), "signoff-reviewers".into()],
    };
    let zoes = agent
        .submit(&body_with(
            "Grant Zoe prod access",
            json!({"action": "iam.escalate", "on_behalf_of": "zoe@example.com"}),
        ))
        .await;
    let input = DecisionInput {
        verdict: Verdict::Approve,
        comment: "Outage INC-43".into(),
        break_glass: true,
        grant: None,
    };
    server
        .service
        .decide(&zoe, zoes.parse().expect("id"), &input, Channel::Web)
        .await
        .expect("zoe breaks glass");
    // ... and Carol acknowledges it: it leaves the queue; hers stays.
    let acknowledged = carol
        .post_form(&format!("/admin/followups/{zoes}/acknowledge"), &[("csrf", &csrf)])
        .await;
    assert_eq!(acknowledged.status, 200, "{}", acknowledged.body);
    assert!(acknowledged.body.contains("Acknowledged"));
    let queue = carol.get(&format!("{}/", server.base_url)).await;
    let panel = between(&queue.body, "id=\"followups\"", "</section>");
    assert!(!panel.contains("Grant Zoe prod access"), "{panel}");
    assert!(panel.contains("Grant Carol prod access"), "{panel}");
    let open = server.service.store().followups(true).await.expect("followups");
    assert_eq!(open.len(), 1);
    let audit = carol
        .get(&format!("{}/admin/audit?kind=followup.", server.base_url))
        .await;
    assert!(audit.body.contains("followup.acknowledged"), "{}", audit.body);
}

async fn the_audit_trail_pages_newest_first(backend: Backend) {
    let provider = Provider::start().await;
    let server = TestServer::start_with_sso(backend, &provider, |_| {}).await;
    let agent = server.agent("busy-bot").await;
    let mut ids = Vec::new();
    for n in 0..120 {
        ids.push(agent.submit(&request_body(&format!("Request {n}"))).await);
    }
    let (carol, _) = signed_in(&server, "carol").await;
    let seqs = |body: &str| -> Vec<i64> {
        body.split("data-seq=\"")
            .skip(1)
            .filter_map(|rest| rest.split('"').next()?.parse().ok())
            .collect()
    };
    let first = carol
        .get(&format!("{}/admin/audit?kind=request.created", server.base_url))
        .await;
    let newest = seqs(&first.body);
    assert_eq!(newest.len(), 100, "100 a page");
    assert!(newest.windows(2).all(|w| w[0] > w[1]), "newest first");
    assert!(!first.body.contains("id=\"newer\""), "nothing newer on the first page");
    let older_link = between(&first.body, "href=\"/admin/audit?", "\"").replace("&amp;", "&");
    assert!(older_link.contains("before="), "{older_link}");
    let second = carol
        .get(&format!("{}/admin/audit?{older_link}", server.base_url))
        .await;
    let older = seqs(&second.body);
    assert_eq!(older.len(), 20, "the rest");
    assert!(older[0] < newest[99], "older events");
    assert!(second.body.contains("id=\"newer\""));
    // Filtered by request: that request's one creation event, linked to it.
    let one = carol
        .get(&format!("{}/admin/audit?request={}", server.base_url, ids[7]))
        .await;
    assert_eq!(seqs(&one.body).len(), 1);
    assert!(one.body.contains(&format!("/requests/{}", ids[7])));
    assert!(one.body.contains("agent busy-bot"), "the actor");
}

/// An auditor (mapped from the provider's `signoff-auditors` group) reads the trail, its
/// newest checkpoint and proofs, and downloads it in a form that verifies offline; every
/// read is recorded; the other admin pages refuse them.
async fn auditors_read_and_export_the_trail_and_nothing_else(backend: Backend) {
    use signoff_server::evidence::{export::verify_file, verify::Report};
    let provider = Provider::start().await;
    let server = TestServer::start_with_sso(backend, &provider, |_| {}).await;
    let agent = server.agent("audited-bot").await;
    for n in 0..3 {
        agent.submit(&request_body(&format!("Audited {n}"))).await;
    }
    server.service.checkpoint().await.expect("checkpoint");
    let (olga, _) = signed_in(&server, "olga").await;
    let page = olga.get(&format!("{}/admin/audit", server.base_url)).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("Newest signed checkpoint"), "{}", page.body);
    assert!(page.body.contains("the stored log still has this root"));
    assert!(
        page.body.contains("/api/v1/audit/proof/inclusion?seq=1&amp;size="),
        "a proof on demand"
    );
    assert!(
        !page.body.contains("href=\"/admin/policies\""),
        "no links to pages an auditor cannot open"
    );
    for path in ["/admin", "/admin/policies", "/admin/agents"] {
        let refused = olga.get(&format!("{}{path}", server.base_url)).await;
        assert_eq!(refused.status, 403, "{path} refuses an auditor");
    }

    let download = olga
        .get(&format!("{}/admin/audit/export?format=jsonl", server.base_url))
        .await;
    assert_eq!(download.status, 200, "{}", download.body);
    assert!(download.header("content-disposition").contains("signoff-audit.jsonl"));
    let keys = server.service.evidence().keys().to_vec();
    match verify_file(std::io::Cursor::new(download.body.clone()), &keys).expect("readable") {
        Report::Intact { events, .. } => assert!(events >= 4, "{events}"),
        broken => panic!("the download verifies offline: {broken:?}"),
    }
    let csv = olga
        .get(&format!("{}/admin/audit/export?format=csv", server.base_url))
        .await;
    assert_eq!(csv.status, 200);
    assert!(csv.body.starts_with("seq,at,kind,description"), "{}", csv.body);
    let bad = olga
        .get(&format!("{}/admin/audit/export?format=pdf", server.base_url))
        .await;
    assert_eq!(bad.status, 400, "{}", bad.body);
    let reads = server
        .db
        .scalar("SELECT COUNT(*) FROM audit_events WHERE kind = 'audit.exported' AND actor LIKE '%olga@example.com%'")
        .await;
    assert!(reads >= 3, "the page and both downloads are recorded: {reads}");
}

/// The policy form in real Chromium: a bad condition is refused next to its field with
/// its line and column, keeping what was typed; a good one saves; a second save makes
/// version 2, whose diff the versions page shows. A reviewer gets the refusal page.
async fn policies_are_edited_in_the_browser(backend: Backend) {
    use signoff_tests::chrome::signed_in as chromium_as;

    let provider = Provider::start().await;
    let server = TestServer::start_with_sso(backend, &provider, |_| {}).await;
    let carol = chromium_as(&server, "carol").await;
    carol.goto("/admin/policies").await;
    carol.click("#new-policy").await;
    carol.wait_for("#policy-form", 10).await;
    carol.type_into("#field-name", "prod deploys").await;
    carol.type_into("#field-actions", "deploy.*").await;
    carol.type_into("#field-labels", "env=prod").await;
    carol.type_into("#field-condition", "payload.replicas >").await;
    carol.click("#save-policy").await;
    let error = carol.wait_for("#error-condition", 10).await.text().await;
    assert!(error.contains("Line 1, column"), "the CEL error's position: {error}");
    let kept = carol.find("#field-name").await.prop("value").await;
    assert_eq!(kept, json!("prod deploys"), "what was typed is kept");
    assert!(
        carol.try_find("#error-name").await.is_none(),
        "only the condition is marked"
    );
    let summary = carol.find("#form-problems").await.text().await;
    assert!(summary.contains("(Condition)"), "{summary}");
    // Focusing the field brings it, and its error, into view for the screenshot.
    carol.find("#field-condition").await.click().await;
    carol.screenshot(&shot(backend, "admin-policy-refused")).await;

    carol.find("#field-condition").await.clear().await;
    carol.type_into("#field-condition", "payload.replicas > 2").await;
    carol.click("#save-policy").await;
    carol.wait_text("version 1 is in force", 10).await;
    carol.find("#field-approvals").await.clear().await;
    carol.type_into("#field-approvals", "2").await;
    carol.click("#save-policy").await;
    carol.wait_text("version 2 is in force", 10).await;
    carol.click("#versions-link").await;
    let diff = carol.wait_for("#version-diff", 10).await.text().await;
    assert!(diff.contains("approvals = 2"), "{diff}");
    assert!(diff.contains("from version 1 to version 2"), "{diff}");
    carol.screenshot(&shot(backend, "admin-policy-versions")).await;
    carol.goto("/admin/policies").await;
    let list = carol.find("#policies").await.text().await;
    assert!(list.contains("prod deploys") && list.contains("2 approvals"), "{list}");

    let alice = chromium_as(&server, "alice").await;
    alice.goto("/admin/policies").await;
    assert_eq!(alice.page_status().await, 403);
    let text = alice.page_text().await;
    assert!(text.contains("Not allowed") && text.contains("admin role"), "{text}");
    assert!(!text.contains("prod deploys"));
}

fn shot(backend: Backend, name: &str) -> String {
    match backend {
        Backend::Sqlite => name.to_string(),
        Backend::Postgres => format!("{name}-postgres"),
    }
}

// ----- what people type stays text ---------------------------------------------------------

/// Markup typed into a form to break out of a textarea, a double-quoted attribute and a
/// single-quoted one: a refresh to another site, and a button that would post the page's
/// CSRF token to revoke an agent's keys.
const BREAKOUTS: [&str; 3] = [
    "</textarea><meta http-equiv=refresh content=\"0;url=https://evil.example\"><button formaction=/admin/agents/x/revoke>",
    "\"><meta http-equiv=refresh content=\"0;url=https://evil.example\"><button formaction=/admin/agents/x/revoke>",
    "'><meta http-equiv=refresh content='0;url=https://evil.example'><button formaction=/admin/agents/x/revoke>",
];

/// Every text field of the policy form.
const POLICY_FIELDS: [&str; 17] = [
    "name",
    "description",
    "actions",
    "resources",
    "labels",
    "agents",
    "condition",
    "deny_reason",
    "approvals",
    "approver_groups",
    "one_from_each",
    "ttl",
    "escalation_after",
    "escalation_groups",
    "grant_max_duration",
    "grant_max_uses",
    "break_glass",
];

/// Nothing typed became an element; with `shown`, the page shows it, escaped.
fn assert_inert(page: &signoff_tests::browser::Page, what: &str, shown: bool) {
    let lower = page.body.to_ascii_lowercase();
    assert!(
        !lower.contains("<meta http-equiv"),
        "{what} ({}): a meta refresh was injected: {}",
        page.status,
        page.body
    );
    assert!(
        !lower.contains("<button formaction"),
        "{what} ({}): a button was injected: {}",
        page.status,
        page.body
    );
    assert!(page.status < 500, "{what}: {}", page.body);
    if shown {
        assert!(
            page.body.contains("&lt;meta http-equiv=refresh"),
            "{what} ({}): what was typed is shown, escaped: {}",
            page.status,
            page.body
        );
    }
}

async fn typed_markup_stays_text_on_every_admin_form(backend: Backend) {
    let provider = Provider::start().await;
    let server = TestServer::start_with_sso(backend, &provider, |_| {}).await;
    let agent = server.agent("deploy-bot").await;
    let decided = agent.submit(&request_body("Deploy payments")).await;
    server
        .service
        .decide(
            &signoff_tests::fixtures::reviewer(1),
            decided.parse().expect("id"),
            &DecisionInput {
                verdict: Verdict::Deny,
                comment: "not now".into(),
                break_glass: false,
                grant: None,
            },
            Channel::Api,
        )
        .await
        .expect("denied");
    let base = server
        .service
        .save_policy(
            None,
            policy("base", actions(&["db.*"]), Effect::Deny { reason: "no".into() }),
            Actor::Operator,
        )
        .await
        .expect("saved")
        .id;
    let (carol, csrf) = signed_in(&server, "carol").await;

    for (v, typed) in BREAKOUTS.iter().enumerate() {
        // The policy form, new and existing, each field in turn: refused ones re-render
        // what was typed, saved ones show it from the store.
        for (f, field) in POLICY_FIELDS.iter().enumerate() {
            let effect = if *field == "deny_reason" {
                "deny"
            } else {
                "require_approval"
            };
            for (path, name) in [
                ("/admin/policies/new".to_string(), format!("p-{v}-{f}")),
                (format!("/admin/policies/{base}"), "base".to_string()),
            ] {
                let mut form = vec![
                    ("csrf", csrf.clone()),
                    ("name", name),
                    ("enabled", "on".to_string()),
                    ("effect", effect.to_string()),
                    ("approvals", "1".to_string()),
                ];
                form.retain(|(key, _)| key != field);
                form.push((field, typed.to_string()));
                let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
                let page = carol.post_form(&path, &form).await;
                assert_inert(&page, &format!("POST {path} with {field} = {typed}"), true);
            }
        }
        for (field, other) in [("draft", ("last", "10")), ("last", ("draft", ""))] {
            let page = carol
                .post_form("/admin/what-if", &[("csrf", &csrf), (field, typed), other])
                .await;
            assert_inert(&page, &format!("what-if {field} = {typed}"), true);
        }
        let body = request_body("Test").to_string();
        for (field, other) in [("agent", ("body", body.as_str())), ("body", ("agent", "deploy-bot"))] {
            let page = carol
                .post_form("/admin/test", &[("csrf", &csrf), (field, typed), other])
                .await;
            assert_inert(&page, &format!("test {field} = {typed}"), true);
        }
        for (field, name) in [
            ("name", "unused"),
            ("owner", "owned-bot"),
            ("description", "described-bot"),
        ] {
            let name = format!("{name}-{v}");
            let form = if field == "name" {
                vec![("csrf", csrf.as_str()), ("name", *typed)]
            } else {
                vec![("csrf", csrf.as_str()), ("name", name.as_str()), (field, *typed)]
            };
            let page = carol.post_form("/admin/agents", &form).await;
            assert_inert(&page, &format!("agents {field} = {typed}"), true);
        }
        let page = carol
            .post_form(
                &format!("/admin/policies/{base}/move"),
                &[("csrf", &csrf), ("direction", typed)],
            )
            .await;
        assert_inert(&page, "move", false);
        for verdict in ["approve", "deny"] {
            // Refused (the request was decided), so the form comes back with the comment.
            let page = carol
                .post_form(
                    &format!("/requests/{decided}/decide"),
                    &[("csrf", &csrf), ("verdict", verdict), ("comment", typed)],
                )
                .await;
            assert_eq!(page.status, 409, "{}", page.body);
            assert_inert(&page, &format!("{verdict} comment"), true);
        }
        // The forms that search: what was typed comes back in their fields.
        for field in ["kind", "actor", "request"] {
            let url = reqwest::Url::parse_with_params(&format!("{}/admin/audit", server.base_url), &[(field, typed)])
                .expect("url");
            assert_inert(&carol.get(url.as_str()).await, &format!("audit {field}"), true);
        }
        let url = reqwest::Url::parse_with_params(
            &format!("{}/admin/policies/{base}/versions", server.base_url),
            &[("a", *typed)],
        )
        .expect("url");
        assert_inert(&carol.get(url.as_str()).await, "versions", false);
    }

    // Every page that shows what was stored shows it as text.
    let mut pages = vec![
        "/admin".to_string(),
        "/admin/policies".into(),
        "/admin/agents".into(),
        "/admin/grants".into(),
        "/admin/audit".into(),
        "/admin/what-if".into(),
        "/history".into(),
    ];
    for stored in server.service.store().policies().await.expect("policies") {
        pages.push(format!("/admin/policies/{}", stored.id));
        pages.push(format!("/admin/policies/{}/versions", stored.id));
    }
    for path in &pages {
        let page = carol.get(&format!("{}{path}", server.base_url)).await;
        assert_eq!(page.status, 200, "{path}");
        assert_inert(&page, path, false);
    }
    let what_if = carol.get(&format!("{}/admin/what-if", server.base_url)).await;
    assert_inert(&what_if, "the draft of the stored policies", true);
    // Nothing was revoked: the injected buttons never existed.
    assert_eq!(agent.get(&format!("/api/v1/requests/{decided}")).await.status, 200);
}

/// What a stored policy holds, in real Chromium: no refresh to another site, no injected
/// button, and the field shows exactly what was typed.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn stored_policy_text_stays_text_in_chromium() {
    use signoff_tests::chrome::signed_in as chromium_as;

    let provider = Provider::start().await;
    let server = TestServer::start_with_sso(Backend::Sqlite, &provider, |_| {}).await;
    let mut doc = policy(
        "inert",
        actions(&["db.*"]),
        Effect::Deny {
            reason: BREAKOUTS[2].into(),
        },
    );
    doc.description = BREAKOUTS[0].into();
    let id = server
        .service
        .save_policy(None, doc, Actor::Operator)
        .await
        .expect("saved")
        .id;
    let carol = chromium_as(&server, "carol").await;
    for path in [format!("/admin/policies/{id}"), "/admin/what-if".to_string()] {
        carol.goto(&path).await;
        tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
        assert_eq!(carol.current_path().await, path, "no refresh took the page elsewhere");
        let injected = carol
            .execute(
                "return document.querySelectorAll('meta[http-equiv], button[formaction]').length;",
                vec![],
            )
            .await;
        assert_eq!(injected, json!(0), "{path}: nothing was injected");
    }
    carol.goto(&format!("/admin/policies/{id}")).await;
    let description = carol.find("#field-description").await.prop("value").await;
    assert_eq!(description, json!(BREAKOUTS[0]), "shown exactly as typed");
    let reason = carol.find("#field-deny_reason").await.prop("value").await;
    assert_eq!(reason, json!(BREAKOUTS[2]));
    carol.goto("/admin/what-if").await;
    let draft = carol.find("#draft").await.prop("value").await;
    assert!(
        draft
            .as_str()
            .unwrap_or_default()
            .contains("</textarea><meta http-equiv=refresh"),
        "the draft shows the policy as text: {draft}"
    );
}

// ----- notices ----------------------------------------------------------------------------

/// `?saved=` names a stored policy by id; any other text in the link is never shown.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn notices_name_what_was_saved_never_text_from_the_link() {
    let provider = Provider::start().await;
    let server = TestServer::start_with_sso(Backend::Sqlite, &provider, |_| {}).await;
    let saved = server
        .service
        .save_policy(
            None,
            policy("prod deploys", actions(&["deploy.*"]), Effect::Allow),
            Actor::Operator,
        )
        .await
        .expect("saved");
    let (carol, _) = signed_in(&server, "carol").await;
    let lie = "Your session expired: sign in again at https://evil.example";
    let url = |path: &str, params: &[(&str, &str)]| {
        reqwest::Url::parse_with_params(&format!("{}{path}", server.base_url), params)
            .expect("url")
            .to_string()
    };
    let edit = format!("/admin/policies/{}", saved.id);
    for (path, saved_param) in [
        ("/admin/policies", lie),
        ("/admin/policies", "p-unknown"),
        (edit.as_str(), lie),
        (edit.as_str(), "7"),
        ("/", lie),
    ] {
        let params: &[(&str, &str)] = if path == "/" {
            &[("done", saved_param)]
        } else {
            &[("saved", saved_param)]
        };
        let page = carol.get(&url(path, params)).await;
        assert_eq!(page.status, 200, "{path}");
        assert!(!page.body.contains("evil.example"), "{path}: the link's text is shown");
        assert!(
            !page.body.contains("role=\"status\""),
            "{path} ?{saved_param}: no notice"
        );
    }
    let page = carol.get(&url("/admin/policies", &[("saved", &saved.id)])).await;
    assert!(
        page.body.contains("Saved prod deploys: version 1 is in force."),
        "the notice names the stored policy: {}",
        page.body
    );
    let page = carol.get(&url(&edit, &[("saved", "1")])).await;
    assert!(page.body.contains("Saved: version 1 is in force."), "{}", page.body);
}

/// The policies page's rows, in order: their names.
fn policy_order(body: &str) -> Vec<String> {
    let table = between(body, "<table id=\"policies\"", "</table>");
    table
        .split("<tr data-id=")
        .skip(1)
        .map(|row| {
            between(between(row, "class=\"open\"", "</a>"), ">", "<")
                .trim()
                .to_string()
        })
        .collect()
}

/// Moving a policy changes which one decides a request; the versions page compares any
/// two versions of a policy, in either direction.
async fn policies_move_up_and_down_and_any_two_versions_compare(backend: Backend) {
    let provider = Provider::start().await;
    let server = TestServer::start_with_sso(backend, &provider, |_| {}).await;
    let agent = server.agent("deploy-bot").await;
    let save = |id: Option<String>, doc: PolicyDoc| {
        let service = std::sync::Arc::clone(&server.service);
        async move {
            service
                .save_policy(id.as_deref(), doc, Actor::Operator)
                .await
                .expect("saved")
        }
    };
    let careful = save(
        None,
        policy(
            "careful deploys",
            actions(&["deploy.*"]),
            Effect::RequireApproval(Requirement::simple(2)),
        ),
    )
    .await;
    let exports = save(
        None,
        policy(
            "no exports",
            actions(&["db.export"]),
            Effect::Deny {
                reason: "exports go through the data team".into(),
            },
        ),
    )
    .await;
    let trusted = save(None, policy("trusted deploys", actions(&["deploy.*"]), Effect::Allow)).await;

    let (carol, csrf) = signed_in(&server, "carol").await;
    let listed = |carol: &Browser| {
        let url = format!("{}/admin/policies", server.base_url);
        let carol = carol.http.clone();
        async move {
            let response = carol.get(url).send().await.expect("GET /admin/policies");
            assert_eq!(response.status(), 200);
            policy_order(&response.text().await.expect("body"))
        }
    };
    assert_eq!(
        listed(&carol).await,
        ["careful deploys", "no exports", "trusted deploys"]
    );
    let deploy = || async {
        let created = agent.post("/api/v1/requests", &request_body("Deploy payments")).await;
        assert_eq!(created.status, 201, "{:?}", created.body);
        (
            created.body["status"].as_str().unwrap_or_default().to_string(),
            created.body["policy"]["name"].as_str().unwrap_or_default().to_string(),
        )
    };
    assert_eq!(deploy().await, ("pending".into(), "careful deploys".into()));

    let moved = |id: String, direction: &'static str| {
        let carol = &carol;
        let csrf = csrf.clone();
        async move {
            let page = carol
                .post_form(
                    &format!("/admin/policies/{id}/move"),
                    &[("csrf", csrf.as_str()), ("direction", direction)],
                )
                .await;
            assert_eq!(page.status, 200, "moving {direction}: {}", page.body);
            policy_order(&page.body)
        }
    };
    // Up twice: the allow policy now comes first, and decides deploys at once.
    assert_eq!(
        moved(trusted.id.clone(), "up").await,
        ["careful deploys", "trusted deploys", "no exports"]
    );
    assert_eq!(
        moved(trusted.id.clone(), "up").await,
        ["trusted deploys", "careful deploys", "no exports"]
    );
    assert_eq!(deploy().await, ("approved".into(), "trusted deploys".into()));
    // Already first: up changes nothing.
    assert_eq!(
        moved(trusted.id.clone(), "up").await,
        ["trusted deploys", "careful deploys", "no exports"]
    );
    // Down, below the careful one: approval is needed again.
    assert_eq!(
        moved(trusted.id.clone(), "down").await,
        ["careful deploys", "trusted deploys", "no exports"]
    );
    assert_eq!(deploy().await, ("pending".into(), "careful deploys".into()));
    assert_eq!(
        moved(exports.id.clone(), "down").await,
        ["careful deploys", "trusted deploys", "no exports"],
        "already last"
    );
    let sideways = carol
        .post_form(
            &format!("/admin/policies/{}/move", trusted.id),
            &[("csrf", csrf.as_str()), ("direction", "sideways")],
        )
        .await;
    assert_eq!(sideways.status, 400, "{}", sideways.body);
    // Each move that moved is audited, by who and from where to where.
    let moves = server
        .db
        .scalar("SELECT COUNT(*) FROM audit_events WHERE kind = 'policy.moved' AND actor LIKE '%carol@example.com%'")
        .await;
    assert_eq!(moves, 3, "one event per move that moved (up, up, down)");

    // Versions: 1 as saved, 2 with three approvals, 3 with a TTL too.
    let mut terms = Requirement::simple(3);
    let edit = |terms: Requirement| {
        policy(
            "careful deploys",
            actions(&["deploy.*"]),
            Effect::RequireApproval(terms),
        )
    };
    save(Some(careful.id.clone()), edit(terms.clone())).await;
    terms.ttl = Some("4h".into());
    save(Some(careful.id.clone()), edit(terms)).await;
    let compare = |query: &str| {
        let url = format!("{}/admin/policies/{}/versions{query}", server.base_url, careful.id);
        let carol = carol.http.clone();
        async move {
            let response = carol.get(url).send().await.expect("GET versions");
            assert_eq!(response.status(), 200);
            let body = response.text().await.expect("body");
            between(&body, "id=\"version-diff\"", "</section>").to_string()
        }
    };
    let one_to_three = compare("?a=1&b=3").await;
    for line in [
        "version 1",
        "version 3",
        "approvals = 2",
        "approvals = 3",
        "ttl = \"4h\"",
    ] {
        assert!(one_to_three.contains(line), "{line:?} in {one_to_three}");
    }
    let three_to_one = compare("?a=3&b=1").await;
    assert!(
        three_to_one.find("version 3") < three_to_one.find("version 1"),
        "from 3 to 1: {three_to_one}"
    );
    let newest = compare("").await;
    assert!(
        newest.contains("version 2") && newest.contains("version 3") && !newest.contains("approvals = 2"),
        "by default the newest change, 2 to 3: {newest}"
    );
    let one_to_two = compare("?a=1&b=2").await;
    assert!(
        one_to_two.contains("approvals = 3") && !one_to_two.contains("4h"),
        "{one_to_two}"
    );
}
