//! Fixed data and a fixed clock for the update and view tests.
#![allow(dead_code)]

use std::collections::BTreeMap;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use serde_json::json;
use signoff_app::wire::{
    AgentRef, Decider, DecisionView, Eligibility, Me, RequestSummary, RequestView, ReviewView, Role,
};
use signoff_app::{AgentId, Channel, Identity, PolicySnapshot, RequestId, Status, Verdict};
use signoff_tui::reviewer::state::{Msg, QueuePage, State, Viewport, update};
use signoff_tui::reviewer::theme::Theme;
use time::macros::datetime;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

pub const NOW: OffsetDateTime = datetime!(2026-03-02 09:00:00 UTC);
pub const SERVER: &str = "https://signoff.example.com";

/// A stable id from a small number.
pub fn id(n: u128) -> RequestId {
    RequestId::from(Uuid::from_u128(0x0195_5a00_0000_7000_8000_0000_0000_0000 + n))
}

pub fn key(code: KeyCode) -> Msg {
    Msg::Key(KeyEvent::new(code, KeyModifiers::NONE))
}

pub fn char_key(c: char) -> Msg {
    key(KeyCode::Char(c))
}

pub fn ctrl(c: char) -> Msg {
    Msg::Key(KeyEvent::new(KeyCode::Char(c), KeyModifiers::CONTROL))
}

pub fn identity(name: &str, email: &str) -> Identity {
    Identity {
        issuer: "https://id.example.com".into(),
        subject: email.split('@').next().unwrap_or(email).into(),
        email: Some(email.into()),
        email_verified: true,
        name: Some(name.into()),
        groups: vec!["sre".into()],
    }
}

pub fn me() -> Me {
    Me {
        identity: identity("Dana On-call", "dana@example.com"),
        roles: vec![Role::Reviewer],
        auth_time: Some(NOW - Duration::hours(1)),
    }
}

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

pub fn can_decide() -> Option<Eligibility> {
    Some(Eligibility {
        can_decide: true,
        reason: None,
    })
}

pub fn cannot(reason: &str) -> Option<Eligibility> {
    Some(Eligibility {
        can_decide: false,
        reason: Some(reason.into()),
    })
}

#[allow(clippy::too_many_arguments)]
pub fn summary(
    n: u128,
    title: &str,
    action: &str,
    resource: &str,
    env: Option<&str>,
    agent: &str,
    age_min: i64,
    left_min: i64,
    approvals: (u32, u32),
    viewer: Option<Eligibility>,
) -> RequestSummary {
    let mut label_pairs = vec![];
    if let Some(env) = env {
        label_pairs.push(("env", env));
    }
    RequestSummary {
        id: id(n),
        status: Status::Pending,
        title: title.into(),
        action: action.into(),
        resource: resource.into(),
        labels: labels(&label_pairs),
        agent: agent.into(),
        on_behalf_of: Some("alice@example.com".into()),
        approvals: approvals.0,
        approvals_required: approvals.1,
        created_at: NOW - Duration::minutes(age_min),
        expires_at: NOW + Duration::minutes(left_min),
        decided_at: None,
        deciders: vec![],
        viewer,
        break_glass: false,
    }
}

/// The queue: oldest first, with rows the viewer may and may not decide.
pub fn queue() -> Vec<RequestSummary> {
    vec![
        summary(
            1,
            "Export customers table to the analytics bucket for the quarterly churn report",
            "db.export",
            "postgres://prod/customers",
            Some("prod"),
            "export-bot",
            190,
            3,
            (0, 2),
            can_decide(),
        ),
        summary(
            2,
            "Scale checkout to 6 replicas",
            "k8s.scale",
            "k8s://prod-eu/checkout",
            Some("prod"),
            "autoscaler",
            42,
            78,
            (1, 2),
            cannot("you already approved"),
        ),
        summary(
            3,
            "Grant admin on billing to Bob",
            "iam.grant",
            "iam://billing/admin",
            Some("prod"),
            "access-bot",
            30,
            90,
            (0, 1),
            can_decide(),
        ),
        summary(
            4,
            "Rotate staging DB password",
            "secrets.rotate",
            "vault://staging/db",
            Some("staging"),
            "rotator",
            12,
            1428,
            (0, 1),
            cannot("you asked for this request (own request)"),
        ),
        summary(
            5,
            "Apply terraform plan: network changes",
            "infra.apply",
            "tf://core/network",
            None,
            "terraform-agent",
            3,
            57,
            (0, 1),
            can_decide(),
        ),
        summary(
            6,
            "Delete old log buckets",
            "s3.delete",
            "s3://logs-2019",
            Some("prod"),
            "janitor",
            1,
            0,
            (0, 1),
            can_decide(),
        ),
    ]
}

pub fn history() -> Vec<RequestSummary> {
    let decided = |n, title: &str, action: &str, status, minutes_ago, deciders: Vec<(&str, Verdict)>| {
        let mut row = summary(
            n,
            title,
            action,
            "prod/thing",
            Some("prod"),
            "bot",
            minutes_ago + 30,
            -5,
            (1, 1),
            cannot("the request is no longer pending"),
        );
        row.status = status;
        row.decided_at = Some(NOW - Duration::minutes(minutes_ago));
        row.deciders = deciders
            .into_iter()
            .map(|(name, verdict)| Decider {
                name: name.into(),
                verdict,
            })
            .collect();
        row
    };
    vec![
        decided(
            20,
            "Restart payments workers",
            "k8s.restart",
            Status::Approved,
            4,
            vec![("Carol", Verdict::Approve)],
        ),
        decided(
            21,
            "Drop table sessions_old",
            "db.ddl",
            Status::Denied,
            25,
            vec![("Dana On-call", Verdict::Deny)],
        ),
        decided(
            22,
            "Export invoices",
            "db.export",
            Status::Executed,
            70,
            vec![("Carol", Verdict::Approve), ("Erin", Verdict::Approve)],
        ),
        decided(
            23,
            "Open firewall port 22",
            "net.firewall",
            Status::Expired,
            300,
            vec![],
        ),
        decided(24, "Reindex search", "search.reindex", Status::Cancelled, 2000, vec![]),
    ]
}

/// A long diff over three files.
pub fn long_diff() -> String {
    let mut diff = String::from(
        "diff --git a/deploy/checkout.yaml b/deploy/checkout.yaml\nindex 3b1..9f2 100644\n--- a/deploy/checkout.yaml\n+++ b/deploy/checkout.yaml\n@@ -1,8 +1,8 @@\n apiVersion: apps/v1\n kind: Deployment\n metadata:\n   name: checkout\n spec:\n-  replicas: 3\n+  replicas: 6\n   template:\n     spec:\n",
    );
    diff.push_str("--- a/db/migrations/042_orders.sql\n+++ b/db/migrations/042_orders.sql\n@@ -0,0 +1,30 @@\n");
    for i in 0..30 {
        diff.push_str(&format!("+ALTER TABLE orders ADD COLUMN note_{i:02} text; -- a rather long comment so that this line needs wrapping on a narrow terminal\n"));
    }
    diff.push_str("--- a/config/flags.toml\n+++ b/config/flags.toml\n@@ -1,3 +1,3 @@\n [checkout]\n-new_flow = false\n+new_flow = true\n retries = 3\n");
    diff
}

pub fn review(n: u128, diff: Option<String>, viewer: Eligibility) -> ReviewView {
    let row = queue()
        .into_iter()
        .find(|row| row.id == id(n))
        .unwrap_or_else(|| queue()[0].clone());
    ReviewView {
        request: RequestView {
            id: row.id,
            status: row.status,
            agent: AgentRef {
                id: AgentId::from(Uuid::from_u128(99)),
                name: row.agent.clone(),
                owner: Some("bob@example.com".into()),
            },
            on_behalf_of: row.on_behalf_of.clone(),
            action: row.action.clone(),
            resource: row.resource.clone(),
            title: row.title.clone(),
            reason: "Black Friday traffic is forecast at 3x last week. The checkout service saturates at 4 replicas in load tests; scaling to 6 keeps p99 under 300 ms. Rollback: scale back to 3.".into(),
            labels: labels(&[("env", "prod"), ("team", "payments")]),
            payload: json!({"namespace": "checkout", "replicas": 6, "cluster": "prod-eu"}),
            diff,
            context: Some(json!({"trace": "https://trace.example.com/t/8f2e", "risk": "medium"})),
            digest: "3f9a1c2b7d4e5f60718293a4b5c6d7e8f90123456789abcdef0123456789abcd".into(),
            policy: PolicySnapshot {
                version: 3,
                ..PolicySnapshot::simple(
                    "prod-changes",
                    row.approvals_required,
                    vec!["sre".into(), "payments-leads".into()],
                )
            },
            approvals: row.approvals,
            decisions: if row.approvals > 0 {
                vec![DecisionView {
                    reviewer: identity("Carol Reviewer", "carol@example.com"),
                    verdict: Verdict::Approve,
                    comment: "Load test numbers check out.".into(),
                    channel: Channel::Web,
                    decided_at: NOW - Duration::minutes(20),
                }]
            } else {
                vec![]
            },
            created_at: row.created_at,
            expires_at: row.expires_at,
            decided_at: None,
            result: None,
            break_glass: false,
            started_at: None,
            receipt: None,
        },
        viewer,
    }
}

pub fn eligible() -> Eligibility {
    Eligibility {
        can_decide: true,
        reason: None,
    }
}

/// A state at `width` x `height` with the queue loaded and the fixed clock.
pub fn loaded(width: u16, height: u16, items: Vec<RequestSummary>) -> State {
    let mut state = State::new(SERVER, NOW, Theme::COLOR, Viewport { width, height });
    state.me = Some(me());
    let generation = state.queue.generation;
    update(
        &mut state,
        Msg::QueueLoaded {
            generation,
            result: Ok(QueuePage {
                items,
                first: true,
                last: true,
                truncated: false,
            }),
        },
    );
    update(&mut state, Msg::StreamUp);
    state
}
