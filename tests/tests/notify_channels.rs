//! Teams and e-mail, end to end on both stores: a Teams Workflows receiver (an HTTP server
//! here that records what arrives) and a real SMTP server (Python `aiosmtpd`, pinned in
//! tests/notify) get a request's facts and its console link, by the policy's routes or the
//! default ones; an escalation goes to the escalation's routes, a reminder to the
//! request's; a receiver down for a while gets the notice once it is back.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::State;
use axum::routing::post;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use signoff_app::policy::PolicyFile;
use signoff_server::Config;
use signoff_server::config::{EmailConfig, Secret, TeamsConfig};
use signoff_server::notify::Channels;
use signoff_server::policy_file::{self, Format};
use signoff_server::store::Actor;
use signoff_tests::{Backend, TestDb, TestServer, on_both_stores};

on_both_stores!(
    teams_and_email_carry_the_facts_and_the_link_by_policy_or_default_routes,
    escalations_and_reminders_reach_their_routes,
    a_mail_server_down_for_a_while_gets_the_notice_when_it_returns,
    channels_that_cannot_work_are_refused_at_start,
);

const POLICIES: &str = r#"
[[policy]]
name = "prod deploys"
[policy.match]
actions = ["deploy.*"]
[policy.effect]
type = "require_approval"
ttl = "30m"
notify = ["teams:ops", "email:lead@example.com"]
remind_before = "10m"
[policy.effect.escalation]
after_minutes = 5
groups = ["signoff-reviewers"]
notify = ["email:escalations@example.com"]
"#;

/// What the Teams receiver got, in order.
#[derive(Clone, Default)]
struct TeamsInbox(Arc<Mutex<Vec<Value>>>);

impl TeamsInbox {
    async fn serve() -> (TeamsInbox, String) {
        let inbox = TeamsInbox::default();
        let app = axum::Router::new()
            .route(
                "/workflows/ops",
                post(|State(inbox): State<TeamsInbox>, Json(body): Json<Value>| async move {
                    inbox.0.lock().expect("inbox").push(body);
                    "accepted"
                }),
            )
            .with_state(inbox.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}/workflows/ops", listener.local_addr().expect("address"));
        tokio::spawn(async move { axum::serve(listener, app).await });
        (inbox, url)
    }

    /// The cards that arrived, each as its text (every TextBlock, fact and action URL).
    fn cards(&self) -> Vec<String> {
        self.0
            .lock()
            .expect("inbox")
            .iter()
            .map(|message| message.to_string())
            .collect()
    }
}

/// One message the SMTP receiver accepted.
#[derive(Clone, Debug, Deserialize)]
struct Mail {
    to: Vec<String>,
    subject: String,
    plain: String,
    html: String,
}

/// The SMTP receiver, running.
struct MailServer {
    port: u16,
    log: PathBuf,
    _child: Child,
}

impl MailServer {
    async fn start() -> MailServer {
        let python = Path::new(env!("CARGO_MANIFEST_DIR")).join("notify/.venv/bin/python");
        assert!(
            python.exists(),
            "the SMTP receiver's Python is missing: run `just test-deps` (it installs tests/notify/requirements.txt)"
        );
        let log = std::env::temp_dir().join(format!("signoff-smtp-{}.jsonl", uuid::Uuid::new_v4()));
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free port")
            .port();
        let mut child = Command::new(python)
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("notify/smtp_receiver.py"))
            .arg(port.to_string())
            .arg(&log)
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("start the SMTP receiver");
        let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let ready = tokio::time::timeout(Duration::from_secs(20), lines.next_line()).await;
        assert!(
            matches!(ready, Ok(Ok(Some(ref line))) if line == "listening"),
            "the SMTP receiver did not start: {ready:?}"
        );
        MailServer {
            port,
            log,
            _child: child,
        }
    }

    fn config(&self) -> EmailConfig {
        EmailConfig {
            smtp_url: Secret::new(format!("smtp://127.0.0.1:{}", self.port)),
            from: "Signoff <signoff@example.com>".into(),
        }
    }

    fn set_down(&self, down: bool) {
        let flag = format!("{}.down", self.log.display());
        if down {
            std::fs::write(flag, "").expect("mark the receiver down");
        } else {
            std::fs::remove_file(flag).expect("mark the receiver up");
        }
    }

    fn mails(&self) -> Vec<Mail> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .map(|line| serde_json::from_str(line).expect("a line the receiver wrote"))
            .collect()
    }
}

impl Drop for MailServer {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.log);
    }
}

/// Waits (at most 15 s) until `found` holds.
async fn until(what: &str, mut found: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while !found() {
        assert!(Instant::now() < deadline, "waited 15 s for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn configure(config: &mut Config, teams_url: &str, mail: &MailServer) {
    config.notify.teams.insert(
        "ops".into(),
        TeamsConfig {
            webhook_url: Secret::new(teams_url),
        },
    );
    config.notify.email = Some(mail.config());
    config.notify.default = vec!["email:oncall@example.com".into()];
    config.notify.retry_base = Duration::from_millis(100);
    config.notify.retry_max = Duration::from_millis(400);
}

async fn with_policies(server: &TestServer) {
    let file: PolicyFile = policy_file::parse(POLICIES, Format::Toml).expect("policies");
    server
        .service
        .import_policies(file, Actor::Operator)
        .await
        .expect("import");
}

async fn submit(server: &TestServer, action: &str, title: &str) -> String {
    let agent = server.agent("deployer").await;
    agent
        .submit(&json!({
            "action": action,
            "resource": "k8s://prod/api",
            "title": title,
            "reason": "release 42 & friends",
            "labels": {"env": "prod"},
            "diff": "--- a/replicas\n+++ b/replicas\n-2\n+3\n",
        }))
        .await
}

async fn teams_and_email_carry_the_facts_and_the_link_by_policy_or_default_routes(backend: Backend) {
    let (teams, teams_url) = TeamsInbox::serve().await;
    let mail = MailServer::start().await;
    let server = TestServer::start_with(backend, |config| configure(config, &teams_url, &mail)).await;
    with_policies(&server).await;
    let routed = submit(&server, "deploy.service", "<script>alert(1)</script> Deploy api").await;
    let link = format!("{}/requests/{routed}", server.base_url);

    until("the Teams card", || !teams.cards().is_empty()).await;
    let card = &teams.cards()[0];
    for fact in [
        "Approval needed",
        "deploy.service",
        "k8s://prod/api",
        "release 42 & friends",
        "prod deploys (version 1)",
        "0 of 1 approvals",
        "env=prod",
        "application/vnd.microsoft.card.adaptive",
        "Action.OpenUrl",
        link.as_str(),
    ] {
        assert!(card.contains(fact), "the card shows {fact}: {card}");
    }
    until("the lead's mail", || {
        mail.mails().iter().any(|m| m.to == ["lead@example.com"])
    })
    .await;
    let lead = mail
        .mails()
        .into_iter()
        .find(|m| m.to == ["lead@example.com"])
        .expect("mail");
    assert!(
        lead.subject.starts_with("[Signoff] Approval needed: "),
        "{}",
        lead.subject
    );
    for fact in [
        "Action: deploy.service",
        "Resource: k8s://prod/api",
        "Policy: prod deploys",
        link.as_str(),
        "+3",
    ] {
        assert!(lead.plain.contains(fact), "the plain text shows {fact}: {}", lead.plain);
    }
    assert!(lead.html.contains(&format!("href=\"{link}\"")), "{}", lead.html);
    assert!(
        lead.html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "{}",
        lead.html
    );
    assert!(!lead.html.contains("<script>"), "the title is escaped: {}", lead.html);
    assert!(lead.plain.contains("replying to this message decides nothing"));

    // A request no policy routes goes to the default route only.
    let other = submit(&server, "db.export", "Export orders").await;
    until("the on-call mail", || {
        mail.mails().iter().any(|m| m.to == ["oncall@example.com"])
    })
    .await;
    let oncall = mail
        .mails()
        .into_iter()
        .find(|m| m.to == ["oncall@example.com"])
        .expect("mail");
    assert!(oncall.plain.contains(&format!("/requests/{other}")), "{}", oncall.plain);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(teams.cards().len(), 1, "Teams is not a default route");
    assert_eq!(mail.mails().len(), 2, "one mail per routed address");
    server.stop().await;
}

async fn escalations_and_reminders_reach_their_routes(backend: Backend) {
    let (teams, teams_url) = TeamsInbox::serve().await;
    let mail = MailServer::start().await;
    let server = TestServer::start_with(backend, |config| configure(config, &teams_url, &mail)).await;
    with_policies(&server).await;
    let id = submit(&server, "deploy.service", "Deploy api").await;
    until("the first notices", || {
        teams.cards().len() == 1 && mail.mails().len() == 1
    })
    .await;
    // Six minutes on: the escalation is due, and goes to the escalation's own route.
    server
        .db
        .execute(&format!(
            "UPDATE requests SET escalates_at = escalates_at - 360000 WHERE id = '{id}'"
        ))
        .await
        .expect("age the escalation");
    until("the escalation mail", || {
        mail.mails().iter().any(|m| m.to == ["escalations@example.com"])
    })
    .await;
    let escalated = mail
        .mails()
        .into_iter()
        .find(|m| m.to == ["escalations@example.com"])
        .expect("mail");
    assert!(escalated.subject.contains("Escalated"), "{}", escalated.subject);
    assert_eq!(teams.cards().len(), 1, "the escalation has its own route");
    // Twenty-one minutes on: the reminder goes to the request's routes.
    server.db.age_request(&id, Duration::from_secs(21 * 60)).await;
    until("the reminder card", || teams.cards().len() == 2).await;
    assert!(
        teams.cards()[1].contains("Reminder: expires in"),
        "{}",
        teams.cards()[1]
    );
    until("the reminder mail", || {
        mail.mails().iter().filter(|m| m.to == ["lead@example.com"]).count() == 2
    })
    .await;
    server.stop().await;
}

async fn a_mail_server_down_for_a_while_gets_the_notice_when_it_returns(backend: Backend) {
    let (_teams, teams_url) = TeamsInbox::serve().await;
    let mail = MailServer::start().await;
    mail.set_down(true);
    let server = TestServer::start_with(backend, |config| configure(config, &teams_url, &mail)).await;
    let id = submit(&server, "db.export", "Export orders").await;
    let store = server.service.store().clone();
    // Refused at least twice, recorded as retrying with the server's answer.
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let deliveries = store.webhook_deliveries("email:", 10).await.expect("deliveries");
        if let Some(delivery) = deliveries.first()
            && delivery.attempts >= 2
        {
            assert!(
                delivery.last_error.as_deref().unwrap_or_default().contains("451"),
                "{delivery:?}"
            );
            break;
        }
        assert!(Instant::now() < deadline, "the mail is retried");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(mail.mails().is_empty());
    mail.set_down(false);
    until("the mail after the server's return", || mail.mails().len() == 1).await;
    assert!(mail.mails()[0].plain.contains(&id));
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(mail.mails().len(), 1, "sent once accepted");
    server.stop().await;
}

async fn channels_that_cannot_work_are_refused_at_start(backend: Backend) {
    let db = TestDb::new(backend).await;
    let store = signoff_server::store::Store::connect(&db.url).await.expect("connect");
    store.migrate().await.expect("migrate");
    let refused = |configure: &dyn Fn(&mut Config)| {
        let mut config = signoff_tests::server::test_config(&db);
        configure(&mut config);
        match Channels::from_config(&config, "http://127.0.0.1:3000", &store) {
            Ok(_) => panic!("accepted"),
            Err(err) => err.to_string(),
        }
    };
    let plain_teams = refused(&|config| {
        config.notify.teams.insert(
            "ops".into(),
            TeamsConfig {
                webhook_url: Secret::new("http://teams.example.com/workflows/sig=s3cret"),
            },
        );
    });
    assert!(
        plain_teams.contains("notify.teams.ops.webhook_url") && plain_teams.contains("https"),
        "{plain_teams}"
    );
    assert!(
        !plain_teams.contains("s3cret"),
        "the URL's signature is never repeated: {plain_teams}"
    );
    let bad_from = refused(&|config| {
        config.notify.email = Some(EmailConfig {
            smtp_url: Secret::new("smtp://127.0.0.1:2525"),
            from: "not an address".into(),
        });
    });
    assert!(bad_from.contains("notify.email: from"), "{bad_from}");
    let cleartext = refused(&|config| {
        config.notify.email = Some(EmailConfig {
            smtp_url: Secret::new("smtp://user:hunter2@mail.example.com:25"),
            from: "signoff@example.com".into(),
        });
    });
    assert!(
        cleartext.contains("?tls=required") && !cleartext.contains("hunter2"),
        "{cleartext}"
    );
    let unrouted = refused(&|config| config.notify.default = vec!["teams:sales".into()]);
    assert!(unrouted.contains("no [notify.teams.sales] is configured"), "{unrouted}");
}
