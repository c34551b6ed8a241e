//! The lifecycle engine's promises, on both stores: commands in one batch behave as if
//! they came one after the other; a refusal answers only its own command; a batch the
//! database fails answers every caller 503 and stores nothing; and a store made by the
//! previous version upgrades in place.

use std::time::{Duration, Instant};

use serde_json::json;
use signoff_app::wire::DecisionInput;
use signoff_app::{Channel, RuleError, Status, Verdict};
use signoff_server::Error;
use signoff_server::engine::{Answer, Command};
use signoff_server::store::{ChainReport, verify_chain};
use signoff_tests::fixtures::{request_body, reviewer};
use signoff_tests::{Backend, TestServer, on_both_stores};

on_both_stores!(
    commands_in_one_batch_apply_in_order,
    a_failing_batch_answers_every_caller_503_and_stores_nothing,
    a_store_made_by_the_previous_version_upgrades_in_place,
    one_of_two_agents_created_at_once_under_one_name_is_refused,
);

/// Waits until the engine's queue holds `depth` commands.
async fn queued(server: &TestServer, depth: usize) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while server.service.engine().queue_depth() != depth {
        assert!(
            Instant::now() < deadline,
            "the queue holds {} commands, not {depth}",
            server.service.engine().queue_depth()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn decide(server: &TestServer, n: u32, id: &str, verdict: Verdict) -> tokio::task::JoinHandle<Result<Status, Error>> {
    let service = server.service.clone();
    let id = id.parse().expect("id");
    let mut person = reviewer(n);
    if n == 99 {
        person.groups = vec!["marketing".into()];
    }
    tokio::spawn(async move {
        let input = DecisionInput {
            verdict,
            comment: "checked".into(),
            break_glass: false,
            grant: None,
        };
        service
            .decide(&person, id, &input, Channel::Api)
            .await
            .map(|view| view.status)
    })
}

/// Blocks the writer on its lock with a first batch, so that what is submitted next
/// queues up and is taken as one batch when `release` is sent.
async fn block_the_writer(server: &TestServer) -> (tokio::sync::oneshot::Sender<()>, tokio::task::JoinHandle<()>) {
    let release = server.hold_the_writer().await;
    let service = server.service.clone();
    let mut first = Box::pin(async move {
        service
            .engine()
            .submit(Command::ExpireDue { limit: 1 })
            .await
            .expect("the first batch commits once released");
    });
    // Polled once: the command is in the queue...
    tokio::select! {
        biased;
        _ = &mut first => panic!("answered while the writer's lock is held"),
        _ = std::future::ready(()) => {}
    }
    // ...and once the writer has taken it, the writer waits for the lock.
    queued(server, 0).await;
    (release, tokio::spawn(first))
}

async fn commands_in_one_batch_apply_in_order(backend: Backend) {
    let server = TestServer::start_with(backend, |config| {
        config.default_approvals = 2;
        config.sweep_interval = Duration::from_secs(3600);
    })
    .await;
    let agent = server.agent("deploy-bot").await;
    let two_needed = agent.submit(&request_body("Needs two approvals")).await;
    let other = agent.submit(&request_body("Someone outside the approvers tries")).await;

    let (release, first) = block_the_writer(&server).await;
    // Queued one by one, in a known order, all while the writer waits for its lock.
    let mut answers = Vec::new();
    for (n, (who, id, verdict)) in [
        (1, &two_needed, Verdict::Approve),
        (99, &other, Verdict::Approve),
        (2, &two_needed, Verdict::Approve),
        (3, &two_needed, Verdict::Deny),
        (1, &other, Verdict::Approve),
    ]
    .into_iter()
    .enumerate()
    {
        answers.push(decide(&server, who, id, verdict));
        queued(&server, n + 1).await;
    }
    let created = {
        let service = server.service.clone();
        let agent_record = service.authenticate_agent(&agent.key).await.expect("the agent's key");
        tokio::spawn(async move {
            let input = serde_json::from_value(request_body("Created in the same batch")).expect("body");
            service.create_request(&agent_record, input, None, None).await
        })
    };
    queued(&server, 6).await;
    let _ = release.send(());
    first.await.expect("first batch");

    let mut results = Vec::new();
    for answer in answers {
        results.push(answer.await.expect("join"));
    }
    assert!(
        matches!(results[0], Ok(Status::Pending)),
        "one of two: {:?}",
        results[0]
    );
    assert!(
        matches!(results[1], Err(Error::Rule(RuleError::NotEligible))),
        "a refusal answers only its command: {:?}",
        results[1]
    );
    assert!(
        matches!(results[2], Ok(Status::Approved)),
        "two of two: {:?}",
        results[2]
    );
    assert!(
        matches!(results[3], Err(Error::Rule(RuleError::NotPending(Status::Approved)))),
        "the deny came after the approval, in the same batch: {:?}",
        results[3]
    );
    assert!(
        matches!(results[4], Ok(Status::Pending)),
        "the refusal before it did not fail it: {:?}",
        results[4]
    );
    let (view, was_created) = created.await.expect("join").expect("created");
    assert!(was_created && view.status == Status::Pending);

    let events = server
        .service
        .store()
        .audit_events_for(two_needed.parse().expect("id"))
        .await
        .expect("events");
    let kinds: Vec<&str> = events.iter().map(|event| event.kind.as_str()).collect();
    assert_eq!(
        kinds,
        vec![
            "request.created",
            "decision.recorded",
            "decision.recorded",
            "request.approved"
        ]
    );
    assert!(matches!(
        verify_chain(server.service.store()).await.expect("verify"),
        ChainReport::Intact { .. }
    ));
}

async fn a_failing_batch_answers_every_caller_503_and_stores_nothing(backend: Backend) {
    let server = TestServer::start_with(backend, |config| config.sweep_interval = Duration::from_secs(3600)).await;
    let agent = server.agent("deploy-bot").await;
    let existing = agent.submit(&request_body("Decided in the failing batch")).await;
    // The database refuses one row of the coming batch.
    let poison = match backend {
        Backend::Sqlite => vec![
            "CREATE TRIGGER poison BEFORE INSERT ON requests WHEN NEW.title = 'poison' \
             BEGIN SELECT RAISE(ABORT, 'poisoned'); END",
        ],
        Backend::Postgres => vec![
            "CREATE FUNCTION poison() RETURNS trigger AS $$ BEGIN \
             IF NEW.title = 'poison' THEN RAISE EXCEPTION 'poisoned'; END IF; RETURN NEW; END $$ LANGUAGE plpgsql",
            "CREATE TRIGGER poison BEFORE INSERT ON requests FOR EACH ROW EXECUTE FUNCTION poison()",
        ],
    };
    for statement in poison {
        server.db.execute(statement).await.expect("install the trigger");
    }
    let before = server.db.count("audit_events").await;

    let (release, first) = block_the_writer(&server).await;
    let fine = {
        let agent = agent.clone();
        tokio::spawn(async move { agent.post("/api/v1/requests", &request_body("fine")).await })
    };
    queued(&server, 1).await;
    let poisoned = {
        let agent = agent.clone();
        tokio::spawn(async move { agent.post("/api/v1/requests", &request_body("poison")).await })
    };
    queued(&server, 2).await;
    let decided = decide(&server, 1, &existing, Verdict::Approve);
    queued(&server, 3).await;
    let _ = release.send(());
    first.await.expect("first batch");

    for (what, reply) in [
        ("fine", fine.await.expect("join")),
        ("poison", poisoned.await.expect("join")),
    ] {
        assert_eq!(reply.status, 503, "{what}: {:?}", reply.body);
        assert_eq!(reply.error_code(), "unavailable", "{what}");
        assert!(
            !reply.error_message().contains("poisoned"),
            "no internals: {:?}",
            reply.body
        );
    }
    assert!(
        matches!(decided.await.expect("join"), Err(Error::Unavailable(_))),
        "the decision shared the batch's fate"
    );
    assert_eq!(server.db.count("requests").await, 1, "nothing of the batch was stored");
    assert_eq!(server.db.count("decisions").await, 0);
    assert_eq!(server.db.count("audit_events").await, before);
    let now = agent.get(&format!("/api/v1/requests/{existing}")).await;
    assert_eq!(now.body["status"], "pending");

    // The engine goes on.
    agent.submit(&request_body("after the failure")).await;
    match server
        .service
        .engine()
        .submit(Command::ExpireDue { limit: 10 })
        .await
        .expect("engine answers")
    {
        Answer::Expired(0) => {}
        other => panic!("unexpected answer {other:?}"),
    }
    assert!(matches!(
        verify_chain(server.service.store()).await.expect("verify"),
        ChainReport::Intact { .. }
    ));
}

/// The previous version created its schema with a migrator of one embedded migration,
/// version 1 "init". A store it made must open, upgrade and serve, with its data.
async fn a_store_made_by_the_previous_version_upgrades_in_place(backend: Backend) {
    use sqlx::migrate::{Migration, MigrationType, Migrator};
    use std::borrow::Cow;
    let db = signoff_tests::TestDb::new(backend).await;
    let (sql, pool_url) = match backend {
        Backend::Sqlite => (
            include_str!("../../migrations/sqlite/0001_init.sql"),
            format!("{}?mode=rwc", db.url),
        ),
        Backend::Postgres => (include_str!("../../migrations/postgres/0001_init.sql"), db.url.clone()),
    };
    let previous = Migrator {
        migrations: Cow::Owned(vec![Migration::new(
            1,
            Cow::Borrowed("init"),
            MigrationType::Simple,
            Cow::Borrowed(sql),
            false,
        )]),
        ..Migrator::DEFAULT
    };
    let insert_agent = "INSERT INTO agents (id, name, owner, created_at) \
                        VALUES ('0193a4c2-0000-7000-8000-00000000a9e1', 'legacy-bot', 'ops@example.com', 1764000000000)";
    // A pending request as the previous version stored it: its policy snapshot has only
    // the four fields that version knew.
    let insert_request = "INSERT INTO requests (id, agent_id, action, resource, title, reason, labels, payload, \
         digest, status, policy, approvals, created_at, expires_at) VALUES ('0193a4c2-0000-7000-8000-0000000000f1', \
         '0193a4c2-0000-7000-8000-00000000a9e1', 'db.export', 'orders', 'Made before the upgrade', '', '{}', '{}', \
         'abc', 'pending', '{\"name\":\"default\",\"version\":0,\"approvals_required\":1,\"approver_groups\":[\"signoff-reviewers\"]}', \
         0, 1764000000000, 4102444800000)";
    match backend {
        Backend::Sqlite => {
            let pool = sqlx::SqlitePool::connect(&pool_url).await.expect("connect");
            previous.run(&pool).await.expect("the previous schema");
            sqlx::query(insert_agent).execute(&pool).await.expect("old data");
            sqlx::query(insert_request).execute(&pool).await.expect("old request");
            pool.close().await;
        }
        Backend::Postgres => {
            let pool = sqlx::PgPool::connect(&pool_url).await.expect("connect");
            previous.run(&pool).await.expect("the previous schema");
            sqlx::query(insert_agent).execute(&pool).await.expect("old data");
            sqlx::query(insert_request).execute(&pool).await.expect("old request");
            pool.close().await;
        }
    }

    let store = signoff_server::store::Store::connect(&db.url).await.expect("connect");
    store.migrate().await.expect("the store upgrades in place");
    let agents = store.list_agents().await.expect("agents");
    assert_eq!(agents[0].agent.name, "legacy-bot", "old data is there");
    let applied = db.scalar("SELECT COUNT(*) FROM _sqlx_migrations WHERE success").await;
    // Each dialect has its own migrations (Postgres has one SQLite does not need).
    let dialect = match backend {
        Backend::Sqlite => "sqlite",
        Backend::Postgres => "postgres",
    };
    let files = std::fs::read_dir(format!("{}/../migrations/{dialect}", env!("CARGO_MANIFEST_DIR")))
        .expect("migrations")
        .count() as i64;
    assert_eq!(applied, files, "every migration file is applied");

    // And it serves: a new request, decided, on the upgraded store.
    let server = TestServer::start_on(db, |_| {}).await;
    let agent = server.agent("legacy-bot").await;
    let id = agent
        .submit(&json!({"action": "deploy.service", "resource": "k8s://x", "title": "After the upgrade"}))
        .await;
    let input = DecisionInput {
        verdict: Verdict::Approve,
        comment: String::new(),
        break_glass: false,
        grant: None,
    };
    let view = server
        .service
        .decide(&reviewer(1), id.parse().expect("id"), &input, Channel::Api)
        .await
        .expect("decide");
    assert_eq!(view.status, Status::Approved);

    // The request made before the upgrade reads with the new fields' defaults and is
    // decided under the terms it was made with.
    let old = agent.get("/api/v1/requests/0193a4c2-0000-7000-8000-0000000000f1").await;
    assert_eq!(old.status, 200, "{}", old.body);
    assert_eq!(old.body["policy"]["name"], "default");
    assert_eq!(old.body["policy"]["effect"], "require_approval");
    assert!(old.body.get("break_glass").is_none_or(|flag| flag == false));
    let view = server
        .service
        .decide(
            &reviewer(2),
            "0193a4c2-0000-7000-8000-0000000000f1".parse().expect("id"),
            &input,
            Channel::Api,
        )
        .await
        .expect("decide the old request");
    assert_eq!(view.status, Status::Approved);
}

/// Two admins create an agent of one name at once: the engine decides in the batch, so
/// exactly one gets the agent and the other is told it exists (a check before the
/// command could not tell them apart).
async fn one_of_two_agents_created_at_once_under_one_name_is_refused(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin = reviewer(1);
    // Both creations wait behind a held writer, so they land in one batch.
    let (release, blocker) = block_the_writer(&server).await;
    let first = {
        let service = server.service.clone();
        let admin = admin.clone();
        tokio::spawn(async move { service.create_agent("deployer", None, None, &admin).await })
    };
    let second = {
        let service = server.service.clone();
        let admin = admin.clone();
        tokio::spawn(async move { service.create_agent("deployer", None, None, &admin).await })
    };
    queued(&server, 2).await;
    let _ = release.send(());
    blocker.await.expect("the first batch");
    let answers = [first.await.expect("joined"), second.await.expect("joined")];
    let created = answers.iter().filter(|answer| answer.is_ok()).count();
    let refused: Vec<&Error> = answers.iter().filter_map(|answer| answer.as_ref().err()).collect();
    assert_eq!(created, 1, "{answers:?}");
    assert!(
        matches!(
            refused[..],
            [Error::Conflict {
                code: "agent_exists",
                ..
            }]
        ),
        "{answers:?}"
    );
    assert_eq!(server.db.count("api_keys").await, 1, "one key, for the one agent");
    server.stop().await;
}
