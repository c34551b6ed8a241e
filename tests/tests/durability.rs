//! Durability and multi-replica operation, seen only through the public surfaces (the
//! HTTP API, the `signoff-server` binary and its CLI, and what the database holds): a
//! server killed with SIGKILL under load loses nothing it acknowledged and leaves nothing
//! half-written; two replicas on one Postgres database share one audit chain and wake each
//! other's waiting agents.

use std::collections::{BTreeMap, HashMap};
use std::os::unix::process::ExitStatusExt;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use futures_util::future::join_all;
use reqwest::Method;
use serde_json::{Value, json};
use signoff_tests::browser::Browser;
use signoff_tests::fixtures::request_body;
use signoff_tests::oidc::Provider;
use signoff_tests::{Backend, Reply, ServerProcess, TestDb, on_both_stores, run_cli};
use sqlx::{Connection, Row};

on_both_stores!(
    crash_loses_nothing_acknowledged;
    postgres_only: two_replicas_share_one_chain_and_wake_the_right_waiters,
);

/// The load tests take turns: each alone keeps a small machine busy, timings (wake-up
/// latency) mean something only without the others, and together their server processes
/// (up to 32 Postgres connections each) would exceed Postgres's default 100 connections.
static ONE_LOAD_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Reviewers of the test provider who may decide `request_body` requests.
const REVIEWERS: [&str; 4] = ["alice", "bob", "carol", "erin"];

/// Generous: a call answered this late under load is still answered.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

// ----- the crash ---------------------------------------------------------------------------

/// Agents in the crash test (created with the CLI before the server starts).
const CRASH_AGENTS: usize = 6;
/// Concurrent clients: half agents creating (some also long-polling), half reviewers.
const CREATORS: usize = 32;
const DECIDERS: usize = 32;
/// The load runs at least this long before the kill, and then until enough has been
/// acknowledged, but never longer than the limit.
const MIN_LOAD: Duration = Duration::from_secs(3);
const MAX_LOAD: Duration = Duration::from_secs(20);
const ENOUGH_CREATIONS: usize = 60;
const ENOUGH_DECISIONS: usize = 20;
const ENOUGH_WAKE_UPS: usize = 3;

/// A creation the server answered 201.
#[derive(Clone, Debug)]
struct Creation {
    id: String,
    digest: String,
    idempotency_key: Option<String>,
}

/// A decision the server answered 200, with the status it answered.
#[derive(Clone, Debug)]
struct Decision {
    request_id: String,
    subject: String,
    verdict: &'static str,
    status: String,
}

/// An idempotent creation: who sent it with which key and body, and the id the server
/// answered every time it answered (none when every send died with the server).
#[derive(Clone, Debug)]
struct IdempotentSend {
    agent: usize,
    key: String,
    body: Value,
    answered_ids: Vec<String>,
}

/// What the server acknowledged during the load.
#[derive(Default)]
struct Acknowledged {
    creations: Vec<Creation>,
    idempotent: Vec<IdempotentSend>,
    decisions: Vec<Decision>,
    /// Decided statuses waiting agents were told: (request id, status).
    woken: Vec<(String, String)>,
    /// Answers a healthy server does not give to these calls.
    unexpected: Vec<String>,
}

/// Shared by the clients of the load.
#[derive(Default)]
struct Load {
    stop: AtomicBool,
    in_flight: AtomicUsize,
    /// Calls that got no complete answer (the server died under them).
    unanswered: AtomicUsize,
    acked: Mutex<Acknowledged>,
}

impl Load {
    fn stopped(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    fn record(&self, change: impl FnOnce(&mut Acknowledged)) {
        change(&mut self.acked.lock().expect("the log is never poisoned"));
    }

    fn counts(&self) -> (usize, usize, usize) {
        let acked = self.acked.lock().expect("the log is never poisoned");
        (acked.creations.len(), acked.decisions.len(), acked.woken.len())
    }

    /// One call, counted while in flight.
    async fn call(&self, request: reqwest::RequestBuilder, timeout: Duration) -> Option<Reply> {
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        let reply = call(request, timeout).await;
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
        if reply.is_none() {
            self.unanswered.fetch_add(1, Ordering::SeqCst);
        }
        reply
    }
}

async fn crash_loses_nothing_acknowledged(backend: Backend) {
    let _turn = ONE_LOAD_AT_A_TIME.lock().await;
    let started = Instant::now();
    let provider = Provider::start().await;
    let db = TestDb::new(backend).await;
    let keys = create_agents(&db, CRASH_AGENTS);
    let server = ServerProcess::start_with_provider(&db, &provider, &[]).await;
    let mut reviewers = Vec::new();
    for login in REVIEWERS {
        reviewers.push(Arc::new(Reviewer::sign_in(&server.base_url, login).await));
    }

    let load = Arc::new(Load::default());
    let mut clients = Vec::new();
    for worker in 0..CREATORS {
        let agent = worker % CRASH_AGENTS;
        clients.push(tokio::spawn(create_and_wait(
            Arc::clone(&load),
            server.base_url.clone(),
            agent,
            keys[agent].clone(),
            worker,
        )));
    }
    for worker in 0..DECIDERS {
        let reviewer = Arc::clone(&reviewers[worker % reviewers.len()]);
        clients.push(tokio::spawn(decide_pending(Arc::clone(&load), reviewer, worker)));
    }

    // Kill once the load has run a while and acknowledged enough to be worth checking.
    let load_started = Instant::now();
    loop {
        let (created, decided, woken) = load.counts();
        let enough = created >= ENOUGH_CREATIONS && decided >= ENOUGH_DECISIONS && woken >= ENOUGH_WAKE_UPS;
        if (enough && load_started.elapsed() >= MIN_LOAD) || load_started.elapsed() >= MAX_LOAD {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let in_flight_at_kill = load.in_flight.load(Ordering::SeqCst);
    let killed = server.kill().await;
    // Killed by our SIGKILL, not dead of something else before it.
    assert_eq!(
        killed.signal(),
        Some(9),
        "the server was running until the kill: {killed:?}"
    );
    load.stop.store(true, Ordering::SeqCst);
    tokio::time::timeout(Duration::from_secs(60), join_all(clients))
        .await
        .expect("every client stops within 60 s of the kill")
        .into_iter()
        .for_each(|joined| joined.expect("client task"));
    let acked = std::mem::take(&mut *load.acked.lock().expect("the log is never poisoned"));
    eprintln!(
        "{backend:?}: killed ({killed:?}) after {:?} of load with {in_flight_at_kill} calls in flight; \
         acknowledged {} creations, {} idempotent sends, {} decisions, {} wake-ups; {} calls unanswered",
        load_started.elapsed(),
        acked.creations.len(),
        acked.idempotent.len(),
        acked.decisions.len(),
        acked.woken.len(),
        load.unanswered.load(Ordering::SeqCst),
    );
    assert!(
        acked.unexpected.is_empty(),
        "answers no healthy server gives under load ({}):\n{}",
        acked.unexpected.len(),
        listed(&acked.unexpected)
    );
    assert!(
        acked.creations.len() >= ENOUGH_CREATIONS
            && acked.decisions.len() >= ENOUGH_DECISIONS
            && acked.woken.len() >= ENOUGH_WAKE_UPS,
        "the load acknowledged too little in {MAX_LOAD:?} to be a test: {} creations, {} decisions, {} wake-ups",
        acked.creations.len(),
        acked.decisions.len(),
        acked.woken.len()
    );
    assert!(in_flight_at_kill > 0, "the kill landed in the middle of the load");

    let server = ServerProcess::start_with_provider(&db, &provider, &[]).await;
    let stored = Stored::read(&db).await;
    let mut problems = Vec::new();
    check_acknowledged_survived(&acked, &stored, &mut problems);
    check_nothing_half_there(&stored, &mut problems);
    assert!(
        problems.is_empty(),
        "{backend:?}: {} problems in the database after the crash:\n{}",
        problems.len(),
        listed(&problems)
    );
    let (code, out, err) = run_cli(&db, &["audit", "verify"]);
    assert_eq!(code, 0, "the audit chain is intact after the crash: {out}{err}");

    // Agents come back: waiting tells them what the database holds, and an acknowledged
    // decision is what they are told.
    let agent_keys = agent_keys_by_id(&db, &keys).await;
    let http = reqwest::Client::new();
    let waits = futures_util::stream::iter(stored.requests.iter())
        .map(|(id, row)| {
            let request = http
                .get(format!("{}/api/v1/requests/{id}/wait?timeout_s=0", server.base_url))
                .bearer_auth(&agent_keys[&row.agent_id]);
            async move { (id.clone(), call(request, CALL_TIMEOUT).await) }
        })
        .buffer_unordered(16)
        .collect::<Vec<_>>()
        .await;
    // Each request's status, and who decided it, as the agents are told after the restart.
    let mut told: HashMap<String, (String, Vec<String>)> = HashMap::new();
    for (id, reply) in waits {
        let reply = reply.expect("the restarted server answers");
        let status = reply.body["status"].as_str().unwrap_or_default().to_string();
        if reply.status != 200 || status != stored.requests[&id].status {
            problems.push(format!(
                "waiting on {id} after the restart answered {} {} but the database holds {}",
                reply.status, reply.body, stored.requests[&id].status
            ));
        }
        let deciders = reply.body["decisions"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|decision| decision["reviewer"]["subject"].as_str().map(str::to_string))
            .collect();
        told.insert(id, (status, deciders));
    }
    for decision in &acked.decisions {
        let told = told.get(&decision.request_id);
        if !told.is_some_and(|(status, deciders)| status == &decision.status && deciders.contains(&decision.subject)) {
            problems.push(format!(
                "{decision:?} was acknowledged; after the restart its agent is told {told:?}"
            ));
        }
    }

    // Agents retry their idempotent creations: what was acknowledged comes back as it was,
    // what died in flight is created at most once.
    for send in &acked.idempotent {
        if send
            .answered_ids
            .iter()
            .any(|answered| answered != &send.answered_ids[0])
        {
            problems.push(format!(
                "key {} was answered with several ids: {:?}",
                send.key, send.answered_ids
            ));
        }
        let request = http
            .post(format!("{}/api/v1/requests", server.base_url))
            .bearer_auth(&keys[send.agent])
            .header("Idempotency-Key", &send.key)
            .json(&send.body);
        let reply = call(request, CALL_TIMEOUT).await.expect("the restarted server answers");
        let id = reply.body["id"].as_str().unwrap_or_default();
        match send.answered_ids.first() {
            Some(acked_id) if reply.status != 200 || id != acked_id => problems.push(format!(
                "retrying key {} after the restart answered {} {id}, not 200 with the acknowledged {acked_id}",
                send.key, reply.status
            )),
            None if !matches!(reply.status, 200 | 201) => problems.push(format!(
                "retrying the unanswered key {} after the restart answered {} {}",
                send.key, reply.status, reply.body
            )),
            _ => {}
        }
    }
    let after_retries = Stored::read(&db).await;
    let mut requests_per_key: HashMap<(&str, &str), usize> = HashMap::new();
    for row in after_retries.requests.values() {
        let key = &agent_keys[&row.agent_id];
        *requests_per_key.entry((key, &row.idempotency_key)).or_default() += 1;
    }
    for send in &acked.idempotent {
        let count = requests_per_key
            .get(&(keys[send.agent].as_str(), send.key.as_str()))
            .copied()
            .unwrap_or(0);
        if count != 1 {
            problems.push(format!(
                "key {} has {count} requests after the retry, not one",
                send.key
            ));
        }
    }
    assert!(
        problems.is_empty(),
        "{backend:?}: {} problems seen by agents after the restart:\n{}",
        problems.len(),
        listed(&problems)
    );

    // The restarted server decides and wakes as before: a request made before the crash and
    // still pending (or a new one) is approved, and its waiting agent wakes.
    let (id, key) = match stored.requests.iter().find(|(_, row)| row.status == "pending") {
        Some((id, row)) => (id.clone(), agent_keys[&row.agent_id].clone()),
        None => {
            let body = request_body("After the restart");
            let request = reqwest_json(
                http.post(format!("{}/api/v1/requests", server.base_url)),
                &keys[0],
                &body,
            );
            let created = call(request, CALL_TIMEOUT).await.expect("the restarted server answers");
            assert_eq!(created.status, 201, "{}", created.body);
            (created.body["id"].as_str().expect("id").to_string(), keys[0].clone())
        }
    };
    let waiter = {
        let request = http
            .get(format!("{}/api/v1/requests/{id}/wait?timeout_s=60", server.base_url))
            .bearer_auth(key);
        tokio::spawn(call(request, Duration::from_secs(90)))
    };
    let alice = Reviewer::sign_in(&server.base_url, "alice").await;
    let approved = alice
        .decide(&id, &json!({"verdict": "approve"}))
        .await
        .expect("the restarted server answers");
    assert_eq!(approved.status, 200, "{}", approved.body);
    let woke = tokio::time::timeout(Duration::from_secs(10), waiter)
        .await
        .expect("the waiter wakes within 10 s of the approval")
        .expect("join")
        .expect("the waiter is answered");
    assert_eq!(woke.body["status"], "approved", "{}", woke.body);
    eprintln!(
        "{backend:?}: {} requests, {} decisions and {} audit events after the restart; {:?} in all",
        stored.requests.len(),
        stored.decisions.len(),
        stored.events.len(),
        started.elapsed()
    );
}

/// An agent creating requests one after another (a third of them with an
/// `Idempotency-Key`, each sent twice as a retrying client would), and long-polling on
/// each one (half of them).
async fn create_and_wait(load: Arc<Load>, base_url: String, agent: usize, key: String, worker: usize) {
    let http = reqwest::Client::new();
    let idempotent = worker.is_multiple_of(3);
    let waits = worker % 2 == 1;
    let mut n = 0;
    while !load.stopped() {
        n += 1;
        let mut body = request_body(&format!("Load w{worker} n{n}"));
        // Every request its own action digest.
        body["payload"]["build"] = json!(format!("{worker}-{n}"));
        let idempotency_key = idempotent.then(|| format!("w{worker}-n{n}"));
        let mut created = None;
        let mut answered_ids = Vec::new();
        for attempt in 0..if idempotent { 2 } else { 1 } {
            let mut request = reqwest_json(http.post(format!("{base_url}/api/v1/requests")), &key, &body);
            if let Some(idempotency_key) = &idempotency_key {
                request = request.header("Idempotency-Key", idempotency_key);
            }
            let Some(reply) = load.call(request, CALL_TIMEOUT).await else {
                break;
            };
            let id = reply.body["id"].as_str().unwrap_or_default().to_string();
            let replayed = reply.headers.get("idempotent-replayed").is_some();
            match (reply.status, attempt) {
                (201, 0) if !replayed => {
                    let creation = Creation {
                        id: id.clone(),
                        digest: reply.body["digest"].as_str().unwrap_or_default().to_string(),
                        idempotency_key: idempotency_key.clone(),
                    };
                    load.record(|acked| acked.creations.push(creation));
                    created = Some(id.clone());
                    answered_ids.push(id);
                }
                (200, 1) if replayed => answered_ids.push(id),
                _ => load.record(|acked| {
                    acked.unexpected.push(format!(
                        "creation (attempt {attempt}, key {idempotency_key:?}) answered {} {}",
                        reply.status, reply.body
                    ))
                }),
            }
        }
        if let Some(idempotency_key) = idempotency_key {
            let send = IdempotentSend {
                agent,
                key: idempotency_key,
                body: body.clone(),
                answered_ids,
            };
            load.record(|acked| acked.idempotent.push(send));
        }
        let Some(id) = created.filter(|_| waits) else {
            continue;
        };
        let request = http
            .get(format!("{base_url}/api/v1/requests/{id}/wait?timeout_s=2"))
            .bearer_auth(&key);
        match load.call(request, CALL_TIMEOUT).await {
            None => {}
            Some(reply) if reply.status == 200 => {
                let status = reply.body["status"].as_str().unwrap_or_default().to_string();
                if status != "pending" {
                    load.record(|acked| acked.woken.push((id, status)));
                }
            }
            Some(reply) => load.record(|acked| {
                acked
                    .unexpected
                    .push(format!("waiting on {id} answered {} {}", reply.status, reply.body))
            }),
        }
    }
}

/// A reviewer taking pending requests from the queue and approving (two in three) or
/// denying them.
async fn decide_pending(load: Arc<Load>, reviewer: Arc<Reviewer>, worker: usize) {
    let mut n = worker;
    while !load.stopped() {
        n += 1;
        let Some(queue) = load
            .call(
                reviewer.request(Method::GET, "/api/v1/requests?status=pending&limit=50"),
                CALL_TIMEOUT,
            )
            .await
        else {
            continue;
        };
        let ids: Vec<String> = queue.body["items"]
            .as_array()
            .map(|items| {
                items
                    .iter()
                    .filter_map(|item| item["id"].as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        if queue.status != 200 {
            load.record(|acked| {
                acked
                    .unexpected
                    .push(format!("the queue answered {} {}", queue.status, queue.body))
            });
            continue;
        }
        if ids.is_empty() {
            // Nothing to decide yet: let the agents catch up.
            tokio::time::sleep(Duration::from_millis(20)).await;
            continue;
        }
        // Reviewers spread over the queue, so not all of them race for its head.
        let id = &ids[n * 7 % ids.len()];
        let (verdict, body) = if n.is_multiple_of(3) {
            ("deny", json!({"verdict": "deny", "comment": "not during the freeze"}))
        } else {
            ("approve", json!({"verdict": "approve"}))
        };
        let decide = reviewer.request(Method::POST, &format!("/api/v1/requests/{id}/decisions"));
        match load.call(decide.json(&body), CALL_TIMEOUT).await {
            None => {}
            Some(reply) if reply.status == 200 => {
                let decision = Decision {
                    request_id: id.clone(),
                    subject: reviewer.subject.clone(),
                    verdict,
                    status: reply.body["status"].as_str().unwrap_or_default().to_string(),
                };
                load.record(|acked| acked.decisions.push(decision));
            }
            // Another reviewer decided it first.
            Some(reply) if reply.status == 409 && reply.error_code() == "not_pending" => {}
            Some(reply) => load.record(|acked| {
                acked.unexpected.push(format!(
                    "{} deciding {id} ({verdict}) answered {} {}",
                    reviewer.login, reply.status, reply.body
                ))
            }),
        }
    }
}

/// Every acknowledged creation is stored with the digest answered; every acknowledged
/// decision is recorded and the request's status is the one answered; every decided status
/// told to a waiting agent is the stored one; nothing was made twice.
fn check_acknowledged_survived(acked: &Acknowledged, stored: &Stored, problems: &mut Vec<String>) {
    for creation in &acked.creations {
        match stored.requests.get(&creation.id) {
            None => problems.push(format!("acknowledged creation {creation:?} is gone")),
            Some(row) if row.digest != creation.digest => problems.push(format!(
                "{} was acknowledged with digest {}, the database holds {}",
                creation.id, creation.digest, row.digest
            )),
            Some(row)
                if creation
                    .idempotency_key
                    .as_deref()
                    .is_some_and(|key| key != row.idempotency_key) =>
            {
                problems.push(format!(
                    "{} was created with key {:?}, the database holds {:?}",
                    creation.id, creation.idempotency_key, row.idempotency_key
                ))
            }
            Some(_) => {}
        }
    }
    let mut acked_decisions: HashMap<&str, Vec<&Decision>> = HashMap::new();
    for decision in &acked.decisions {
        acked_decisions.entry(&decision.request_id).or_default().push(decision);
        let recorded = stored.decisions.iter().any(|row| {
            row.request_id == decision.request_id && row.subject == decision.subject && row.verdict == decision.verdict
        });
        if !recorded {
            problems.push(format!("acknowledged decision {decision:?} is not in `decisions`"));
        }
        let status = stored.requests.get(&decision.request_id).map(|row| row.status.as_str());
        let expected = if decision.verdict == "approve" {
            "approved"
        } else {
            "denied"
        };
        if decision.status != expected || status != Some(expected) {
            problems.push(format!(
                "decision {decision:?} should leave the request {expected}; the database holds {status:?}"
            ));
        }
    }
    for (id, decisions) in acked_decisions {
        // One approval ends a request: a second acknowledged decision is a double decision.
        if decisions.len() > 1 {
            problems.push(format!("{id} was decided {} times: {decisions:?}", decisions.len()));
        }
    }
    for (id, status) in &acked.woken {
        let stored_status = stored.requests.get(id).map(|row| row.status.as_str());
        if stored_status != Some(status.as_str()) {
            problems.push(format!(
                "a waiting agent was told {id} is {status}; the database holds {stored_status:?}"
            ));
        }
    }
    let mut titles: HashMap<&str, usize> = HashMap::new();
    for row in stored.requests.values() {
        *titles.entry(&row.title).or_default() += 1;
    }
    for (title, count) in titles {
        if count > 1 {
            problems.push(format!(
                "\"{title}\" was sent once (or with one idempotency key) but stored {count} times"
            ));
        }
    }
}

/// Every change is whole: a request with its `request.created` event, a decided request
/// with its decision and its `request.approved`/`request.denied` event, as many
/// `decision.recorded` events as decisions, and the chain numbered 1..N.
fn check_nothing_half_there(stored: &Stored, problems: &mut Vec<String>) {
    let mut events_of: HashMap<&str, Vec<&str>> = HashMap::new();
    for event in &stored.events {
        if !event.request_id.is_empty() {
            events_of.entry(&event.request_id).or_default().push(&event.kind);
        }
    }
    let mut decisions_of: HashMap<&str, Vec<&str>> = HashMap::new();
    for decision in &stored.decisions {
        decisions_of
            .entry(&decision.request_id)
            .or_default()
            .push(&decision.verdict);
    }
    for (id, row) in &stored.requests {
        let events = events_of.get(id.as_str()).cloned().unwrap_or_default();
        let verdicts = decisions_of.get(id.as_str()).cloned().unwrap_or_default();
        let count = |kind: &str| events.iter().filter(|event| **event == kind).count();
        if count("request.created") != 1 {
            problems.push(format!(
                "{id} ({}) has events {events:?}, not one request.created",
                row.status
            ));
        }
        if count("decision.recorded") != verdicts.len() {
            problems.push(format!("{id} has decisions {verdicts:?} but events {events:?}"));
        }
        let whole = match row.status.as_str() {
            // One approval is required: a pending request has no decision yet.
            "pending" => verdicts.is_empty() && count("request.approved") + count("request.denied") == 0,
            "approved" => {
                verdicts.contains(&"approve") && count("request.approved") == 1 && count("request.denied") == 0
            }
            "denied" => verdicts.contains(&"deny") && count("request.denied") == 1 && count("request.approved") == 0,
            _ => false,
        };
        if !whole {
            problems.push(format!(
                "{id} is {} with decisions {verdicts:?} and events {events:?}",
                row.status
            ));
        }
    }
    for id in events_of.keys() {
        if !stored.requests.contains_key(*id) {
            problems.push(format!("events {:?} name {id}, which is not stored", events_of[id]));
        }
    }
    let recorded = stored
        .events
        .iter()
        .filter(|event| event.kind == "decision.recorded")
        .count();
    if recorded != stored.decisions.len() {
        problems.push(format!(
            "{} decisions but {recorded} decision.recorded events",
            stored.decisions.len()
        ));
    }
    problems.extend(gaps_in_the_chain(&stored.events));
}

/// Each stored agent id with its key (the agents are named `load-bot-N`, key N).
async fn agent_keys_by_id(db: &TestDb, keys: &[String]) -> HashMap<String, String> {
    text_rows(db, "SELECT id, name FROM agents")
        .await
        .into_iter()
        .map(|row| {
            let n: usize = row[1]
                .strip_prefix("load-bot-")
                .and_then(|n| n.parse().ok())
                .expect("a load-bot-N agent");
            (row[0].clone(), keys[n].clone())
        })
        .collect()
}

// ----- two replicas ------------------------------------------------------------------------

/// Agents, and concurrent creating clients on each replica, each making this many requests.
const REPLICA_AGENTS: usize = 4;
const CREATORS_PER_REPLICA: usize = 12;
const REQUESTS_PER_CREATOR: usize = 4;
/// How long a waiting agent may take to hear of its decision.
const WAKE_WITHIN: Duration = Duration::from_secs(5);
/// Reviewers read a request this long before deciding, so its agent is already waiting.
const READING_TIME: Duration = Duration::from_millis(500);

/// One long-poll: where it waited, when it was sent and answered, and the answer.
struct Wait {
    id: String,
    created_on: usize,
    waited_on: usize,
    sent: Instant,
    answered: Instant,
    reply: Option<Reply>,
}

/// A decision as a reviewer on one replica sent it and had it answered.
#[derive(Clone, Debug)]
struct ReplicaDecision {
    subject: String,
    replica: usize,
    status: String,
    sent: Instant,
    answered: Instant,
}

async fn two_replicas_share_one_chain_and_wake_the_right_waiters() {
    let _turn = ONE_LOAD_AT_A_TIME.lock().await;
    let started = Instant::now();
    let provider = Provider::start().await;
    let db = TestDb::new(Backend::Postgres).await;
    let keys = create_agents(&db, REPLICA_AGENTS);
    let (a, b) = tokio::join!(
        ServerProcess::start_with_provider(&db, &provider, &[]),
        ServerProcess::start_with_provider(&db, &provider, &[]),
    );
    let replicas = [a.base_url.clone(), b.base_url.clone()];
    // Alice and Bob review on replica A, Carol and Erin on B; each decides the requests
    // made on the other replica.
    let mut reviewers = Vec::new();
    for (n, login) in REVIEWERS.into_iter().enumerate() {
        let replica = n / 2;
        reviewers.push((replica, Arc::new(Reviewer::sign_in(&replicas[replica], login).await)));
    }

    // Control: waiters on requests nobody decides hear nothing and time out pending.
    let http = reqwest::Client::new();
    let mut controls = Vec::new();
    for (replica, base_url) in replicas.iter().enumerate() {
        let mut body = request_body("Nobody decides this one");
        body["labels"]["replica"] = json!("none");
        let created = call(
            reqwest_json(http.post(format!("{base_url}/api/v1/requests")), &keys[replica], &body),
            CALL_TIMEOUT,
        )
        .await
        .expect("created");
        assert_eq!(created.status, 201, "{}", created.body);
        let id = created.body["id"].as_str().expect("id").to_string();
        let request = http
            .get(format!("{base_url}/api/v1/requests/{id}/wait?timeout_s=4"))
            .bearer_auth(&keys[replica]);
        controls.push(tokio::spawn(async move {
            let sent = Instant::now();
            let reply = call(request, CALL_TIMEOUT).await;
            (id, sent.elapsed(), reply)
        }));
    }

    let load_started = Instant::now();
    let total = 2 * CREATORS_PER_REPLICA * REQUESTS_PER_CREATOR;
    let decided: Arc<Mutex<HashMap<String, Vec<ReplicaDecision>>>> = Arc::default();
    let refusals: Arc<Mutex<Vec<String>>> = Arc::default();
    let first_seen: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let mut deciders = Vec::new();
    for (worker, (replica, reviewer)) in reviewers.iter().cycle().take(4 * reviewers.len()).enumerate() {
        let reviewer = Arc::clone(reviewer);
        let (replica, decided, refusals, first_seen) = (
            *replica,
            Arc::clone(&decided),
            Arc::clone(&refusals),
            Arc::clone(&first_seen),
        );
        deciders.push(tokio::spawn(async move {
            let other = ["a", "b"][1 - replica];
            let queue = format!("/api/v1/requests?status=pending&label=replica%3D{other}&limit=200");
            let mut n = worker;
            while decided.lock().expect("not poisoned").len() < total
                && load_started.elapsed() < Duration::from_secs(60)
            {
                n += 1;
                let reply = call(reviewer.request(Method::GET, &queue), CALL_TIMEOUT)
                    .await
                    .expect("the queue answers");
                assert_eq!(reply.status, 200, "the queue: {}", reply.body);
                let ready: Vec<String> = {
                    let mut seen = first_seen.lock().expect("not poisoned");
                    reply.body["items"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|item| item["id"].as_str())
                        .filter(|id| seen.entry(id.to_string()).or_insert_with(Instant::now).elapsed() >= READING_TIME)
                        .map(str::to_string)
                        .collect()
                };
                if ready.is_empty() {
                    tokio::time::sleep(Duration::from_millis(25)).await;
                    continue;
                }
                let id = &ready[n * 7 % ready.len()];
                let body = if n.is_multiple_of(2) {
                    json!({"verdict": "approve"})
                } else {
                    json!({"verdict": "deny", "comment": "wrong window"})
                };
                let sent = Instant::now();
                let decide = reviewer.request(Method::POST, &format!("/api/v1/requests/{id}/decisions"));
                let reply = call(decide.json(&body), CALL_TIMEOUT)
                    .await
                    .expect("the decision answers");
                let answered = Instant::now();
                match reply.status {
                    200 => {
                        let decision = ReplicaDecision {
                            subject: reviewer.subject.clone(),
                            replica,
                            status: reply.body["status"].as_str().unwrap_or_default().to_string(),
                            sent,
                            answered,
                        };
                        decided
                            .lock()
                            .expect("not poisoned")
                            .entry(id.clone())
                            .or_default()
                            .push(decision);
                    }
                    409 if reply.error_code() == "not_pending" => {}
                    _ => refusals.lock().expect("not poisoned").push(format!(
                        "{} deciding {id} answered {} {}",
                        reviewer.login, reply.status, reply.body
                    )),
                }
            }
        }));
    }

    // Agents create on both replicas at once and wait, mostly where they created.
    let mut creators = Vec::new();
    for worker in 0..2 * CREATORS_PER_REPLICA {
        let created_on = worker % 2;
        let agent = (worker / 2) % REPLICA_AGENTS;
        let (key, replicas) = (keys[agent].clone(), replicas.clone());
        creators.push(tokio::spawn(async move {
            let http = reqwest::Client::new();
            let mut waits = Vec::new();
            for n in 0..REQUESTS_PER_CREATOR {
                let mut body = request_body(&format!("Replica {} w{worker} n{n}", ["A", "B"][created_on]));
                body["labels"]["replica"] = json!(["a", "b"][created_on]);
                let url = format!("{}/api/v1/requests", replicas[created_on]);
                let created = call(reqwest_json(http.post(url), &key, &body), CALL_TIMEOUT)
                    .await
                    .expect("the creation answers");
                assert_eq!(
                    created.status, 201,
                    "creating on replica {created_on}: {}",
                    created.body
                );
                let id = created.body["id"].as_str().expect("id").to_string();
                // Every third waits on the other replica than it created on.
                let waited_on = if (worker + n).is_multiple_of(3) {
                    1 - created_on
                } else {
                    created_on
                };
                let request = http
                    .get(format!(
                        "{}/api/v1/requests/{id}/wait?timeout_s=30",
                        replicas[waited_on]
                    ))
                    .bearer_auth(&key);
                waits.push(tokio::spawn(async move {
                    let sent = Instant::now();
                    let reply = call(request, Duration::from_secs(45)).await;
                    Wait {
                        id,
                        created_on,
                        waited_on,
                        sent,
                        answered: Instant::now(),
                        reply,
                    }
                }));
            }
            waits
        }));
    }
    let mut waits = Vec::new();
    for creator in creators {
        waits.extend(creator.await.expect("creator"));
    }
    let waits: Vec<Wait> = tokio::time::timeout(Duration::from_secs(60), join_all(waits))
        .await
        .expect("every waiter is answered within 60 s")
        .into_iter()
        .map(|joined| joined.expect("waiter"))
        .collect();
    for decider in deciders {
        decider.await.expect("decider");
    }
    let decided = std::mem::take(&mut *decided.lock().expect("not poisoned"));
    let refusals = std::mem::take(&mut *refusals.lock().expect("not poisoned"));
    assert!(refusals.is_empty(), "unexpected refusals:\n{}", listed(&refusals));

    let mut problems = Vec::new();
    let mut latencies: BTreeMap<(usize, usize), Vec<Duration>> = BTreeMap::new();
    let mut parked = 0;
    for wait in &waits {
        let Some(decisions) = decided.get(&wait.id) else {
            problems.push(format!("{} was never decided", wait.id));
            continue;
        };
        if decisions.len() != 1 {
            problems.push(format!(
                "{} was decided {} times: {decisions:?}",
                wait.id,
                decisions.len()
            ));
            continue;
        }
        let decision = &decisions[0];
        let Some(reply) = &wait.reply else {
            problems.push(format!("the waiter on {} got no answer", wait.id));
            continue;
        };
        if reply.status != 200
            || reply.body["id"] != wait.id.as_str()
            || reply.body["status"] != decision.status.as_str()
            || reply.body["decisions"][0]["reviewer"]["subject"] != decision.subject.as_str()
        {
            problems.push(format!(
                "the waiter on {} (created on {}, waiting on {}) was answered {} {}; the decision on {} answered {}",
                wait.id, wait.created_on, wait.waited_on, reply.status, reply.body, decision.replica, decision.status
            ));
            continue;
        }
        let latency = wait.answered.saturating_duration_since(decision.answered);
        if latency > WAKE_WITHIN {
            problems.push(format!(
                "the waiter on {} (created on {}, waiting on {}) woke {latency:?} after its decision (on {}) was answered",
                wait.id, wait.created_on, wait.waited_on, decision.replica
            ));
        }
        latencies
            .entry((wait.waited_on, decision.replica))
            .or_default()
            .push(latency);
        if wait.sent + Duration::from_millis(200) <= decision.sent {
            parked += 1;
        }
    }
    assert!(
        problems.is_empty(),
        "{} of {} waiters went wrong:\n{}",
        problems.len(),
        waits.len(),
        listed(&problems)
    );
    // The test means something only if agents were waiting when the decisions came.
    assert!(
        parked * 4 >= waits.len() * 3,
        "only {parked} of {} waiters were waiting 200 ms before their decision",
        waits.len()
    );
    for ((waited_on, decided_on), mut times) in latencies {
        times.sort();
        eprintln!(
            "waiting on replica {waited_on}, decided on {decided_on}: {} wake-ups, median {:?}, max {:?}",
            times.len(),
            times[times.len() / 2],
            times[times.len() - 1]
        );
    }
    let control_count = controls.len();
    for control in controls {
        let (id, took, reply) = control.await.expect("control waiter");
        let reply = reply.expect("the control waiter is answered");
        assert!(
            reply.status == 200 && reply.body["status"] == "pending" && took >= Duration::from_secs(4),
            "the undecided {id} was answered after {took:?}: {} {}",
            reply.status,
            reply.body
        );
    }

    // One chain for both replicas: intact, numbered without gaps, and holding exactly the
    // acknowledged changes, each request's in order.
    let (code, out, err) = run_cli(&db, &["audit", "verify"]);
    assert_eq!(code, 0, "the shared audit chain is intact: {out}{err}");
    let stored = Stored::read(&db).await;
    let mut problems = gaps_in_the_chain(&stored.events);
    let approvals = decided.values().filter(|d| d[0].status == "approved").count();
    let denials = decided.values().filter(|d| d[0].status == "denied").count();
    let expected: BTreeMap<&str, usize> = BTreeMap::from([
        ("agent.created", REPLICA_AGENTS),
        ("request.created", total + control_count),
        ("decision.recorded", total),
        ("request.approved", approvals),
        ("request.denied", denials),
    ]);
    let mut kinds: BTreeMap<&str, usize> = BTreeMap::new();
    for event in &stored.events {
        *kinds.entry(&event.kind).or_default() += 1;
    }
    if kinds != expected {
        problems.push(format!("audit events by kind {kinds:?}, expected {expected:?}"));
    }
    let mut events_of: HashMap<&str, Vec<&str>> = HashMap::new();
    for event in &stored.events {
        events_of.entry(&event.request_id).or_default().push(&event.kind);
    }
    for (id, decisions) in &decided {
        let ended = if decisions[0].status == "approved" {
            "request.approved"
        } else {
            "request.denied"
        };
        let events = events_of.get(id.as_str()).cloned().unwrap_or_default();
        if events != ["request.created", "decision.recorded", ended] {
            problems.push(format!("{id} ({}) has events {events:?}", decisions[0].status));
        }
        if stored.requests.get(id).map(|row| row.status.as_str()) != Some(decisions[0].status.as_str()) {
            problems.push(format!(
                "{id} was answered {} but is stored otherwise",
                decisions[0].status
            ));
        }
    }
    if stored.decisions.len() != total {
        problems.push(format!(
            "{} decision rows for {total} decided requests",
            stored.decisions.len()
        ));
    }
    assert!(
        problems.is_empty(),
        "{} problems in the shared chain:\n{}",
        problems.len(),
        listed(&problems)
    );
    eprintln!(
        "two replicas: {total} requests decided across replicas, {} audit events, {parked} waiters parked; {:?} in all",
        stored.events.len(),
        started.elapsed()
    );
}

// ----- shared helpers ----------------------------------------------------------------------

/// Creates `count` agents with the CLI; returns their keys.
fn create_agents(db: &TestDb, count: usize) -> Vec<String> {
    (0..count)
        .map(|n| {
            let (code, out, err) = run_cli(db, &["agents", "create", "--name", &format!("load-bot-{n}")]);
            assert_eq!(code, 0, "agents create: {err}");
            out.lines().last().expect("the key on the last line").to_string()
        })
        .collect()
}

/// A reviewer signed in on one server: the browser holding the session, and its CSRF token.
struct Reviewer {
    login: &'static str,
    subject: String,
    browser: Browser,
    csrf: String,
}

impl Reviewer {
    async fn sign_in(base_url: &str, login: &'static str) -> Reviewer {
        let browser = Browser::new(base_url);
        let page = browser.sign_in(login).await;
        assert_eq!(page.status, 200, "{login} lands on the console: {}", page.body);
        let csrf = page.csrf();
        let me = browser.api(Method::GET, "/api/v1/me", None, None).await;
        let subject = me.body["identity"]["subject"].as_str().expect("subject").to_string();
        Reviewer {
            login,
            subject,
            browser,
            csrf,
        }
    }

    /// A call with the session, as the console makes it.
    fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.browser
            .http
            .request(method, format!("{}{path}", self.browser.origin))
            .header("Origin", &self.browser.origin)
            .header("X-CSRF-Token", &self.csrf)
    }

    async fn decide(&self, id: &str, body: &Value) -> Option<Reply> {
        let path = format!("/api/v1/requests/{id}/decisions");
        call(self.request(Method::POST, &path).json(body), CALL_TIMEOUT).await
    }
}

fn reqwest_json(request: reqwest::RequestBuilder, key: &str, body: &Value) -> reqwest::RequestBuilder {
    request.bearer_auth(key).json(body)
}

/// Sends one call; `None` when no complete answer came back (the server died under it).
async fn call(request: reqwest::RequestBuilder, timeout: Duration) -> Option<Reply> {
    let response = request.timeout(timeout).send().await.ok()?;
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let text = response.text().await.ok()?;
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    Some(Reply { status, headers, body })
}

/// The first problems, enough to see what went wrong.
fn listed(problems: &[String]) -> String {
    let mut shown: Vec<&str> = problems.iter().take(15).map(String::as_str).collect();
    let more = format!("... and {} more", problems.len().saturating_sub(15));
    if problems.len() > 15 {
        shown.push(&more);
    }
    shown.join("\n")
}

/// A stored request, as far as these tests look.
struct StoredRequest {
    digest: String,
    status: String,
    agent_id: String,
    idempotency_key: String,
    title: String,
}

struct StoredDecision {
    request_id: String,
    subject: String,
    verdict: String,
}

struct StoredEvent {
    seq: i64,
    kind: String,
    request_id: String,
}

/// What the database holds.
struct Stored {
    requests: BTreeMap<String, StoredRequest>,
    decisions: Vec<StoredDecision>,
    events: Vec<StoredEvent>,
}

impl Stored {
    async fn read(db: &TestDb) -> Stored {
        let requests = text_rows(
            db,
            "SELECT id, digest, status, agent_id, COALESCE(idempotency_key, ''), title FROM requests",
        )
        .await
        .into_iter()
        .map(|mut row| {
            let title = row.pop().unwrap_or_default();
            let idempotency_key = row.pop().unwrap_or_default();
            let agent_id = row.pop().unwrap_or_default();
            let status = row.pop().unwrap_or_default();
            let digest = row.pop().unwrap_or_default();
            let id = row.pop().unwrap_or_default();
            (
                id,
                StoredRequest {
                    digest,
                    status,
                    agent_id,
                    idempotency_key,
                    title,
                },
            )
        })
        .collect();
        let decisions = text_rows(db, "SELECT request_id, reviewer_subject, verdict FROM decisions")
            .await
            .into_iter()
            .map(|mut row| {
                let verdict = row.pop().unwrap_or_default();
                let subject = row.pop().unwrap_or_default();
                let request_id = row.pop().unwrap_or_default();
                StoredDecision {
                    request_id,
                    subject,
                    verdict,
                }
            })
            .collect();
        let events = text_rows(
            db,
            "SELECT CAST(seq AS TEXT) AS seq_text, kind, COALESCE(request_id, '') FROM audit_events ORDER BY seq",
        )
        .await
        .into_iter()
        .map(|mut row| {
            let request_id = row.pop().unwrap_or_default();
            let kind = row.pop().unwrap_or_default();
            let seq = row.pop().unwrap_or_default().parse().expect("seq is a number");
            StoredEvent { seq, kind, request_id }
        })
        .collect();
        Stored {
            requests,
            decisions,
            events,
        }
    }
}

/// The chain is numbered 1, 2, … N: no event lost or skipped.
fn gaps_in_the_chain(events: &[StoredEvent]) -> Vec<String> {
    events
        .iter()
        .zip(1_i64..)
        .find(|(event, expected)| event.seq != *expected)
        .map(|(event, expected)| {
            vec![format!(
                "audit_events jumps to seq {} where {expected} belongs ({} events)",
                event.seq,
                events.len()
            )]
        })
        .unwrap_or_default()
}

/// Rows of `sql`, every column text (the queries cast what is not).
async fn text_rows(db: &TestDb, sql: &str) -> Vec<Vec<String>> {
    fn texts<R: Row>(rows: Vec<R>) -> Vec<Vec<String>>
    where
        usize: sqlx::ColumnIndex<R>,
        for<'r> String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    {
        rows.iter()
            .map(|row| {
                (0..row.len())
                    .map(|i| row.try_get::<String, _>(i).expect("a text column"))
                    .collect()
            })
            .collect()
    }
    match db.backend {
        Backend::Sqlite => {
            let mut conn = sqlx::SqliteConnection::connect(&db.url).await.expect("connect");
            texts(sqlx::query(sql).fetch_all(&mut conn).await.expect("query"))
        }
        Backend::Postgres => {
            let mut conn = sqlx::PgConnection::connect(&db.url).await.expect("connect");
            texts(sqlx::query(sql).fetch_all(&mut conn).await.expect("query"))
        }
    }
}
