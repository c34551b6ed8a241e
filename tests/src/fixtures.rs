//! Requests and people used across tests.

use serde_json::{Value, json};
use signoff_app::Identity;

pub const ISSUER: &str = "https://idp.test.example";

/// A reviewer as the provider would describe them.
pub fn reviewer(n: u32) -> Identity {
    Identity {
        issuer: ISSUER.into(),
        subject: format!("reviewer-{n}"),
        email: Some(format!("reviewer{n}@example.com")),
        email_verified: true,
        name: Some(format!("Reviewer {n}")),
        groups: vec!["signoff-reviewers".into()],
    }
}

/// A typical request body.
pub fn request_body(title: &str) -> Value {
    json!({
        "action": "deploy.service",
        "resource": "k8s://prod/payments-api",
        "title": title,
        "reason": "Release train: fixes the refund rounding bug.",
        "labels": {"env": "prod", "team": "payments"},
        "payload": {"image": "payments-api:1.5.0", "strategy": "rolling"},
        "diff": {"before": {"image": "payments-api:1.4.2"}, "after": {"image": "payments-api:1.5.0"}},
        "on_behalf_of": "requester@example.com"
    })
}
