//! Evidence on both stores: the audit log as a Merkle tree with signed checkpoints, the
//! proofs anyone can check, `audit verify` naming each kind of tampering, the monitor
//! catching a rewound log, exports that verify offline, and approval receipts.

use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};

use signoff_app::evidence::note::{Checkpoint, PublicKey};
use signoff_app::evidence::tree::{hash_from_base64, leaf_hash, verify_consistency, verify_inclusion};
use signoff_app::wire::DecisionInput;
use signoff_app::{Channel, RequestId, Verdict};
use signoff_tests::fixtures::{request_body, reviewer};
use signoff_tests::{
    AgentClient, Backend, ServerProcess, TestDb, TestServer, client_binary, on_both_stores, server_binary,
};

on_both_stores!(
    checkpoints_and_proofs_hold_and_the_monitor_catches_a_rewound_log,
    verify_names_each_kind_of_tampering,
    an_export_verifies_offline_with_only_the_public_key,
    receipts_verify_offline_and_are_used_once,
    a_store_from_before_the_tree_upgrades_in_place;
    postgres_only: two_servers_and_eight_writers_keep_one_valid_log,
);

/// Checkpoints at every multiple of this many events, in these tests.
const EVERY: &str = "4";

/// `signoff-server ARGS` against `db` with the tests' checkpoint spacing and `env`.
fn cli(db: &TestDb, env: &[(&str, &str)], args: &[&str]) -> (i32, String, String) {
    let output = std::process::Command::new(server_binary())
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DATABASE_URL", &db.url)
        .env("SIGNOFF_DATA_DIR", &db.dir)
        .env("SIGNOFF_AUDIT_CHECKPOINT_EVERY", EVERY)
        .env("RUST_LOG", "warn")
        .envs(env.iter().copied())
        .output()
        .expect("run signoff-server");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// A server on `db` (which outlives it), checkpointing every [`EVERY`] events.
async fn server(db: &TestDb) -> TestServer {
    TestServer::start_on(db.handle(), |config| config.audit.checkpoint_every = 4).await
}

async fn approve(server: &TestServer, id: &str) -> Value {
    let input = DecisionInput {
        verdict: Verdict::Approve,
        comment: "checked".into(),
        break_glass: false,
        grant: None,
    };
    let id: RequestId = id.parse().expect("id");
    let view = server
        .service
        .decide(&reviewer(1), id, &input, Channel::Api)
        .await
        .expect("approved");
    serde_json::to_value(view).expect("json")
}

/// A log of some twenty events: an agent, requests created, approved, cancelled.
async fn seeded(backend: Backend) -> TestDb {
    let db = TestDb::new(backend).await;
    let server = server(&db).await;
    let agent = server.agent("deployer").await;
    for n in 0..6 {
        let id = agent.submit(&request_body(&format!("Deploy {n}"))).await;
        if n % 2 == 0 {
            approve(&server, &id).await;
        } else {
            agent.post(&format!("/api/v1/requests/{id}/cancel"), &json!({})).await;
        }
    }
    server.stop().await;
    db
}

fn keys_of(body: &Value) -> Vec<PublicKey> {
    body["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .map(|key| PublicKey::parse(key["verifier"].as_str().expect("verifier")).expect("a verifier key"))
        .collect()
}

async fn get(http: &reqwest::Client, url: String) -> (u16, String) {
    let response = http.get(url).send().await.expect("GET");
    (response.status().as_u16(), response.text().await.expect("body"))
}

/// Drops the append-only guards, as someone with full database access could.
async fn bypass_guards(db: &TestDb) {
    let statements: &[&str] = match db.backend {
        Backend::Sqlite => &[
            "DROP TRIGGER audit_events_no_update",
            "DROP TRIGGER audit_events_no_delete",
            "DROP TRIGGER audit_checkpoints_no_update",
            "DROP TRIGGER audit_checkpoints_no_delete",
            "DROP TRIGGER audit_tree_no_delete",
        ],
        Backend::Postgres => &[
            "ALTER TABLE audit_events DISABLE TRIGGER USER",
            "ALTER TABLE audit_checkpoints DISABLE TRIGGER USER",
            "ALTER TABLE audit_tree DISABLE TRIGGER USER",
        ],
    };
    for statement in statements {
        db.execute(statement).await.expect("bypass the guards");
    }
}

async fn checkpoints_and_proofs_hold_and_the_monitor_catches_a_rewound_log(backend: Backend) {
    let db = seeded(backend).await;
    let server = server(&db).await;
    let http = reqwest::Client::new();
    let (status, body) = get(&http, format!("{}/.well-known/signoff/keys", server.base_url)).await;
    assert_eq!(status, 200, "{body}");
    let keys = keys_of(&serde_json::from_str(&body).expect("json"));
    let (status, note) = get(&http, format!("{}/api/v1/audit/checkpoint", server.base_url)).await;
    assert_eq!(status, 200, "{note}");
    let (checkpoint, _) = Checkpoint::open(&note, &keys).expect("signed by the listed key");
    let events = server.db.count("audit_events").await as u64;
    assert_eq!(
        checkpoint.size, events,
        "the server signs the log as it finds it at start"
    );

    // Every event's inclusion, from its own bytes, against the signed root.
    let (_, export, _) = cli(&server.db, &[], &["audit", "export"]);
    let exported: Vec<Value> = export
        .lines()
        .map(|line| serde_json::from_str(line).expect("json line"))
        .filter(|line: &Value| line["type"] == "event")
        .collect();
    assert_eq!(exported.len() as u64, events);
    for event in &exported {
        let seq = event["seq"].as_u64().expect("seq");
        let canonical = signoff_server::store::canonical_event(
            seq as i64,
            event["at"].as_i64().expect("at"),
            event["kind"].as_str().expect("kind"),
            event["request_id"].as_str(),
            &signoff_app::canonical_json(&event["actor"]),
            &signoff_app::canonical_json(&event["data"]),
        );
        let (status, body) = get(
            &http,
            format!(
                "{}/api/v1/audit/proof/inclusion?seq={seq}&size={}",
                server.base_url, checkpoint.size
            ),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        let proof: Value = serde_json::from_str(&body).expect("json");
        let hashes: Vec<_> = proof["proof"]
            .as_array()
            .expect("proof")
            .iter()
            .map(|hash| hash_from_base64(hash.as_str().expect("base64")).expect("hash"))
            .collect();
        let leaf = leaf_hash(canonical.as_bytes());
        assert_eq!(proof["leaf_hash"], signoff_app::evidence::tree::hash_to_base64(&leaf));
        verify_inclusion(&hashes, checkpoint.size, checkpoint.root, seq - 1, leaf).expect("included");
        let other = leaf_hash(b"another event");
        assert!(verify_inclusion(&hashes, checkpoint.size, checkpoint.root, seq - 1, other).is_err());
    }
    let (status, body) = get(
        &http,
        format!("{}/api/v1/audit/proof/inclusion?seq=1&size=9999", server.base_url),
    )
    .await;
    assert_eq!(status, 400, "beyond the log: {body}");

    // The monitor: a first look, then a grown log that still extends it.
    let state = server.db.dir.join("monitor.json");
    let state_arg = state.to_str().expect("path");
    let (code, out, err) = cli(
        &server.db,
        &[],
        &["audit", "monitor", "--url", &server.base_url, "--state", state_arg],
    );
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("first look"), "{out}");
    let agent = server.agent("later").await;
    for n in 0..3 {
        agent.submit(&request_body(&format!("Later {n}"))).await;
    }
    server.service.checkpoint().await.expect("checkpoint");
    let (_, note) = get(&http, format!("{}/api/v1/audit/checkpoint", server.base_url)).await;
    let (grown, _) = Checkpoint::open(&note, &keys).expect("signed");
    assert!(grown.size > checkpoint.size);
    let (status, body) = get(
        &http,
        format!(
            "{}/api/v1/audit/proof/consistency?from={}&to={}",
            server.base_url, checkpoint.size, grown.size
        ),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let proof: Vec<_> = serde_json::from_str::<Value>(&body).expect("json")["proof"]
        .as_array()
        .expect("proof")
        .iter()
        .map(|hash| hash_from_base64(hash.as_str().expect("base64")).expect("hash"))
        .collect();
    verify_consistency(&proof, grown.size, grown.root, checkpoint.size, checkpoint.root).expect("consistent");
    assert!(verify_consistency(&proof, grown.size, grown.root, checkpoint.size, leaf_hash(b"x")).is_err());
    let (code, out, err) = cli(
        &server.db,
        &[],
        &["audit", "monitor", "--url", &server.base_url, "--state", state_arg],
    );
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("agrees"), "{out}");
    server.stop().await;

    // Someone with the database deletes the newest events and every trace of them: the
    // tail, its tree hashes and checkpoints, and rewinds the head. Locally it all adds
    // up; the monitor, which saw the longer log, does not agree.
    bypass_guards(&db).await;
    let keep = checkpoint.size as i64;
    for statement in [
        format!("DELETE FROM audit_events WHERE seq > {keep}"),
        format!("DELETE FROM audit_tree WHERE seq > {keep}"),
        format!("DELETE FROM audit_checkpoints WHERE tree_size > {keep}"),
    ] {
        db.execute(&statement).await.expect("tamper");
    }
    let store = signoff_server::store::Store::connect(&db.url).await.expect("connect");
    let frontier = signoff_server::evidence::frontier_at(&store, keep)
        .await
        .expect("frontier")
        .encode();
    let hash = store.audit_events(keep - 1, 1).await.expect("event")[0].hash.clone();
    db.execute(&format!(
        "UPDATE audit_head SET seq = {keep}, hash = '{hash}', tree_size = {keep}, frontier = '{frontier}'"
    ))
    .await
    .expect("rewind the head");
    let (code, out, _) = cli(&db, &[], &["audit", "verify"]);
    assert_eq!(code, 0, "a consistent rewind passes a local check: {out}");
    let server = ServerProcess::start(&db, &[("SIGNOFF_AUDIT_CHECKPOINT_EVERY", EVERY)]).await;
    let (code, out, err) = cli(
        &db,
        &[],
        &["audit", "monitor", "--url", &server.base_url, "--state", state_arg],
    );
    assert_eq!(code, 2, "the monitor catches it: {out}{err}");
    assert!(out.contains("TAMPERED") && out.contains("rewound"), "{out}");
    server.terminate().await;
}

async fn verify_names_each_kind_of_tampering(backend: Backend) {
    let verify = |db: &TestDb| cli(db, &[], &["audit", "verify"]);
    // Intact first.
    let db = seeded(backend).await;
    let (code, out, err) = verify(&db);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("audit trail intact") && out.contains("checkpoints verified"),
        "{out}"
    );
    let events = db.count("audit_events").await;
    assert!(events >= 16, "{events} events");

    let cases: Vec<(&str, Vec<String>, &str)> = vec![
        (
            "a field changed",
            vec!["UPDATE audit_events SET data = '{\"title\":\"harmless\"}' WHERE seq = 5".into()],
            "BROKEN at event 5: its content does not match its hash",
        ),
        (
            "an event deleted",
            vec!["DELETE FROM audit_events WHERE seq = 6".into()],
            "BROKEN at event 6: expected event 6",
        ),
        (
            "two events swapped",
            vec![
                "UPDATE audit_events SET seq = -7 WHERE seq = 7".into(),
                "UPDATE audit_events SET seq = 7 WHERE seq = 8".into(),
                "UPDATE audit_events SET seq = 8 WHERE seq = -7".into(),
            ],
            "BROKEN at event 7",
        ),
        (
            "the tail cut and the head rewound",
            vec![
                "DELETE FROM audit_events WHERE seq > 13".into(),
                "UPDATE audit_head SET seq = 13, hash = (SELECT hash FROM audit_events WHERE seq = 13)".into(),
            ],
            "BROKEN at event 14: a checkpoint was signed for 16 events but the log ends at event 13",
        ),
        (
            "a checkpoint forged",
            vec!["UPDATE audit_checkpoints SET note = REPLACE(note, '\n8\n', '\n9\n') WHERE tree_size = 8".into()],
            "BROKEN at event 8: checkpoint at tree size 8",
        ),
        (
            "a checkpoint removed",
            vec!["DELETE FROM audit_checkpoints WHERE tree_size = 12".into()],
            "BROKEN at event 12: no checkpoint at tree size 12",
        ),
    ];
    for (case, statements, expected) in cases {
        let db = seeded(backend).await;
        bypass_guards(&db).await;
        for statement in &statements {
            db.execute(statement)
                .await
                .unwrap_or_else(|err| panic!("{case}: {statement}: {err}"));
        }
        let (code, out, err) = verify(&db);
        assert_eq!(code, 1, "{case}: {out}{err}");
        assert!(out.contains(expected), "{case}: expected `{expected}`, got {out}");
    }

    // A checkpoint signed by a key the log does not have.
    let db = seeded(backend).await;
    let stranger = signoff_app::evidence::note::LogKey::from_seed("127.0.0.1/audit", [9; 32]);
    let forged = Checkpoint {
        origin: "127.0.0.1/audit".into(),
        size: 9,
        root: leaf_hash(b"a root"),
    }
    .sign(&stranger);
    bypass_guards(&db).await;
    db.execute("DELETE FROM audit_checkpoints WHERE tree_size = 8")
        .await
        .expect("remove");
    db.execute(&format!(
        "INSERT INTO audit_checkpoints (tree_size, root, at, key_id, note) VALUES (8, 'x', 0, 'x', '{forged}')"
    ))
    .await
    .expect("insert a forgery");
    let (code, out, _) = verify(&db);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("checkpoint at tree size 8") && out.contains("forged"),
        "{out}"
    );
}

async fn an_export_verifies_offline_with_only_the_public_key(backend: Backend) {
    let db = seeded(backend).await;
    let (_, keys, _) = cli(&db, &[], &["audit", "keys"]);
    let key = keys.lines().next().expect("a key").to_string();
    let (code, export, err) = cli(&db, &[], &["audit", "export"]);
    assert_eq!(code, 0, "{err}");
    let (code, csv, _) = cli(&db, &[], &["audit", "export", "--format", "csv"]);
    assert_eq!(code, 0);
    assert!(csv.starts_with("seq,at,kind,description"), "{csv}");
    assert!(
        csv.contains("created agent `deployer` with a key"),
        "sentences, not raw kinds only: {csv}"
    );

    // Another machine: a directory with the file, and nothing else.
    let offline = tempdir("offline");
    let file = offline.join("export.jsonl");
    std::fs::write(&file, &export).expect("write");
    let verify_offline = |file: &Path, key: &str| {
        let output = std::process::Command::new(server_binary())
            .args(["audit", "verify", "--file", file.to_str().expect("path"), "--key", key])
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("SIGNOFF_DATA_DIR", offline.join("nothing"))
            .env("DATABASE_URL", "postgres://nobody@127.0.0.1:9/none")
            .current_dir(&offline)
            .output()
            .expect("run");
        (
            output.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&output.stdout).into_owned(),
        )
    };
    let (code, out) = verify_offline(&file, &key);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("audit trail intact"), "{out}");

    // Another key: nothing verifies.
    let stranger = signoff_app::evidence::note::LogKey::from_seed("x/audit", [3; 32])
        .public()
        .verifier();
    let (code, out) = verify_offline(&file, &stranger);
    assert_eq!(code, 1, "{out}");

    // An edited event in the file.
    let edited = export.replacen("\"title\":\"Deploy 2\"", "\"title\":\"Deploy two\"", 1);
    assert_ne!(edited, export);
    let tampered = offline.join("tampered.jsonl");
    std::fs::write(&tampered, edited).expect("write");
    let (code, out) = verify_offline(&tampered, &key);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("BROKEN at event"), "{out}");

    // A range in the middle: anchored by a later checkpoint and a consistency proof.
    let mut times = Vec::new();
    for seq in [3, 10] {
        let millis = db
            .scalar(&format!("SELECT at FROM audit_events WHERE seq = {seq}"))
            .await;
        times.push(
            time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(millis) * 1_000_000)
                .expect("time")
                .format(&time::format_description::well_known::Rfc3339)
                .expect("format"),
        );
    }
    let (since, until) = (times[0].clone(), times[1].clone());
    let (code, middle, err) = cli(&db, &[], &["audit", "export", "--since", &since, "--until", &until]);
    assert_eq!(code, 0, "{err}");
    let header: Value = serde_json::from_str(middle.lines().next().expect("header")).expect("json");
    assert!(
        header["from"].as_i64().expect("from") <= 3 && header["to"].as_i64().expect("to") < 10,
        "{header}"
    );
    let part = offline.join("middle.jsonl");
    std::fs::write(&part, &middle).expect("write");
    let (code, out) = verify_offline(&part, &key);
    assert_eq!(code, 0, "{out}");

    // Reading the trail out is itself in the trail.
    let (_, again, _) = cli(&db, &[], &["audit", "export"]);
    let reads = again
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|line| line["kind"] == "audit.exported")
        .count();
    assert!(reads >= 3, "each export is recorded: {reads}");
}

async fn receipts_verify_offline_and_are_used_once(backend: Backend) {
    let server = TestServer::start_with(backend, |config| {
        config.audit.receipt_window = Duration::from_secs(3);
    })
    .await;
    // Built before the window starts: it is short.
    let _ = client_binary();
    let agent = server.agent("deployer").await;
    let id = agent.submit(&request_body("Deploy with a receipt")).await;
    let pending = agent.get(&format!("/api/v1/requests/{id}")).await;
    assert!(pending.body.get("receipt").is_none(), "no receipt before approval");
    approve(&server, &id).await;
    let approved = agent.wait(&id, 5).await;
    assert_eq!(approved.body["status"], "approved");
    let receipt = approved.body["receipt"]
        .as_str()
        .expect("a receipt once approved")
        .to_string();
    assert_eq!(
        agent.get(&format!("/api/v1/requests/{id}")).await.body["receipt"],
        receipt.as_str()
    );

    let (_, keys, _) = cli(&server.db, &[], &["audit", "keys"]);
    let key = keys.lines().next().expect("key").to_string();
    let dir = tempdir("receipt");
    let action = dir.join("action.json");
    std::fs::write(&action, approved.body.to_string()).expect("write");
    let check = |action: &Path, key: &str, receipt: &str| {
        let output = std::process::Command::new(client_binary())
            .args([
                "verify-receipt",
                receipt,
                "--action",
                action.to_str().expect("path"),
                "--key",
                key,
            ])
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", &dir)
            .output()
            .expect("run signoff");
        (
            output.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&output.stdout).into_owned(),
        )
    };
    let (code, out) = check(&action, &key, &receipt);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains(&id) && out.contains("reviewer1@example.com"), "{out}");

    let stranger = signoff_app::evidence::note::LogKey::from_seed("x/audit", [4; 32])
        .public()
        .verifier();
    let (code, out) = check(&action, &stranger, &receipt);
    assert_eq!(code, 1, "another key: {out}");

    let mut other = approved.body.clone();
    other["payload"]["image"] = json!("payments-api:6.6.6");
    let altered = dir.join("altered.json");
    std::fs::write(&altered, other.to_string()).expect("write");
    let (code, out) = check(&altered, &key, &receipt);
    assert_eq!(code, 1, "another action: {out}");
    assert!(out.contains("not this action"), "{out}");

    // Reporting with the receipt uses it; another receipt, or the same again, is refused.
    let wrong = agent
        .post(
            &format!("/api/v1/requests/{id}/result"),
            &json!({"status": "executed", "receipt": format!("{receipt}x")}),
        )
        .await;
    assert_eq!(wrong.status, 422, "{:?}", wrong.body);
    let used = agent
        .post(
            &format!("/api/v1/requests/{id}/result"),
            &json!({"status": "executed", "receipt": receipt}),
        )
        .await;
    assert_eq!(used.status, 200, "{:?}", used.body);
    assert!(
        used.body["result"].get("receipt").is_none(),
        "never kept with the result"
    );
    let again = agent
        .post(
            &format!("/api/v1/requests/{id}/result"),
            &json!({"status": "executed", "receipt": receipt}),
        )
        .await;
    assert_eq!(again.status, 409, "{:?}", again.body);
    assert_eq!(again.error_code(), "receipt_used");
    let trail = server
        .db
        .scalar(&format!(
            "SELECT COUNT(*) FROM audit_events WHERE data LIKE '%{}%'",
            &receipt[receipt.len() - 20..]
        ))
        .await;
    assert_eq!(trail, 0, "the receipt is not in the audit trail");

    // A policy's allow approves at once, and the receipt says so.
    let allow = signoff_server::policy_file::parse(
        "[[policy]]\nname = \"reads\"\n[policy.match]\nactions = [\"db.read\"]\n[policy.effect]\ntype = \"allow\"\n",
        signoff_server::policy_file::Format::Toml,
    )
    .expect("policy file");
    server
        .service
        .import_policies(allow, signoff_server::store::Actor::Operator)
        .await
        .expect("import");
    let mut read = request_body("Read the orders");
    read["action"] = json!("db.read");
    let created = agent.post("/api/v1/requests", &read).await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    assert_eq!(created.body["status"], "approved");
    let token = created.body["receipt"]
        .as_str()
        .expect("a receipt for a policy's allow");
    let claims = signoff_app::evidence::receipt::peek(token).expect("claims");
    assert_eq!(
        (claims.approved_by.as_str(), claims.policy.name.as_str()),
        ("policy", "reads")
    );
    assert!(claims.approvers.is_empty());

    // Its window closes.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let (code, out) = check(&action, &key, &receipt);
    assert_eq!(code, 1, "expired: {out}");
    assert!(out.contains("window closed"), "{out}");
    server.stop().await;
}

async fn a_store_from_before_the_tree_upgrades_in_place(backend: Backend) {
    use signoff_server::store::chain_hash_canonical;
    let db = TestDb::new(backend).await;
    // Nine events chained as the previous version chained them.
    let mut statements = Vec::new();
    let mut prev = "0".repeat(64);
    for seq in 1..=9_i64 {
        let data = format!("{{\"agent\":\"legacy-{seq}\",\"description\":null,\"owner\":null}}");
        let actor = "{\"type\":\"operator\"}";
        let hash = chain_hash_canonical(&prev, seq, 1_764_000_000_000 + seq, "agent.created", None, actor, &data);
        statements.push(format!(
            "INSERT INTO audit_events (seq, at, kind, request_id, actor, data, prev_hash, hash) \
             VALUES ({seq}, {}, 'agent.created', NULL, '{actor}', '{data}', '{prev}', '{hash}')",
            1_764_000_000_000 + seq
        ));
        prev = hash;
    }
    statements.push(format!("UPDATE audit_head SET seq = 9, hash = '{prev}'"));
    // The schema of the version before the tree: migrations 0001 to 0006.
    db.as_of_migration(6, &statements).await;
    let (code, out, _) = cli(&db, &[], &["audit", "verify"]);
    assert_eq!(
        code, 1,
        "before the server built the tree, checkpoints are missing: {out}"
    );
    let server = server(&db).await;
    assert_eq!(server.db.count("audit_tree").await, 9, "the old events joined the tree");
    let sizes = server
        .db
        .scalar("SELECT COUNT(*) FROM audit_checkpoints WHERE tree_size IN (4, 8, 9)")
        .await;
    assert_eq!(
        sizes, 3,
        "signed at 4 and 8 as if it had always been, and the head at start"
    );
    let agent = server.agent("new").await;
    let id = agent.submit(&request_body("After the upgrade")).await;
    approve(&server, &id).await;
    let (code, out, err) = cli(&server.db, &[], &["audit", "verify"]);
    assert_eq!(code, 0, "{out}{err}");
    server.stop().await;
}

async fn two_servers_and_eight_writers_keep_one_valid_log() {
    let db = TestDb::new(Backend::Postgres).await;
    let (_, out, _) = cli(&db, &[], &["agents", "create", "--name", "writer"]);
    let key = out.lines().last().expect("key").to_string();
    let env = [("SIGNOFF_AUDIT_CHECKPOINT_EVERY", "100")];
    let first = ServerProcess::start(&db, &env).await;
    let second = ServerProcess::start(&db, &env).await;
    let writers: Vec<_> = (0..8)
        .map(|writer| {
            let base = if writer % 2 == 0 {
                first.base_url.clone()
            } else {
                second.base_url.clone()
            };
            let agent = AgentClient::new(&base, &key);
            tokio::spawn(async move {
                for n in 0..1_000 {
                    let reply = agent
                        .post("/api/v1/requests", &request_body(&format!("Writer {writer} #{n}")))
                        .await;
                    assert_eq!(reply.status, 201, "{:?}", reply.body);
                }
            })
        })
        .collect();
    for writer in writers {
        writer.await.expect("writer");
    }
    assert!(db.count("audit_events").await >= 8_001);
    first.terminate().await;
    second.terminate().await;
    let (code, out, err) = cli(&db, &[("SIGNOFF_AUDIT_CHECKPOINT_EVERY", "100")], &["audit", "verify"]);
    assert_eq!(code, 0, "{out}{err}");
    // Proofs from the shared tree hold against the last checkpoint.
    let server = ServerProcess::start(&db, &env).await;
    let http = reqwest::Client::new();
    let (_, keys) = get(&http, format!("{}/.well-known/signoff/keys", server.base_url)).await;
    let keys = keys_of(&serde_json::from_str(&keys).expect("json"));
    let (_, note) = get(&http, format!("{}/api/v1/audit/checkpoint", server.base_url)).await;
    let (head, _) = Checkpoint::open(&note, &keys).expect("signed");
    for old in [1, 100, 4_000, head.size - 1] {
        let (status, body) = get(
            &http,
            format!(
                "{}/api/v1/audit/proof/consistency?from={old}&to={}",
                server.base_url, head.size
            ),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        let proof: Vec<_> = serde_json::from_str::<Value>(&body).expect("json")["proof"]
            .as_array()
            .expect("proof")
            .iter()
            .map(|hash| hash_from_base64(hash.as_str().expect("base64")).expect("hash"))
            .collect();
        let store = signoff_server::store::Store::connect(&db.url).await.expect("connect");
        let old_root = signoff_server::evidence::root_at(&store, old as i64)
            .await
            .expect("root");
        verify_consistency(&proof, head.size, head.root, old, old_root).expect("consistent");
    }
    server.terminate().await;
}

fn tempdir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("signoff-{name}-{}", uuid::Uuid::now_v7()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}
