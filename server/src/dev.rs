//! `--dev`: demo agents and pending requests, so a newcomer sees a working queue.

use serde_json::json;

use signoff_app::wire::NewRequest;

use crate::Result;
use crate::service::Service;

/// Seeds once: when the database has no agents yet.
pub async fn seed(service: &Service) -> Result<()> {
    if !service.store().list_agents().await?.is_empty() {
        return Ok(());
    }
    let (deploy_bot, deploy_key, _) = service
        .issue_agent_key("deploy-bot", Some("ops@example.com"), None)
        .await?;
    let (exporter, export_key, _) = service
        .issue_agent_key("data-exporter", Some("data@example.com"), None)
        .await?;
    // Printed (not logged): demo keys for a local database, shown once like any key.
    println!("dev: agent deploy-bot key: {deploy_key}");
    println!("dev: agent data-exporter key: {export_key}");

    let demo = [
        (
            &deploy_bot,
            json!({
                "action": "deploy.service", "resource": "k8s://prod/payments-api",
                "title": "Deploy payments-api 1.5.0 to prod",
                "reason": "Release train 2026-47: fixes the refund rounding bug (PAY-1432).",
                "labels": {"env": "prod", "team": "payments"},
                "payload": {"image": "registry.example.com/payments-api:1.5.0", "strategy": "rolling"},
                "diff": {"before": {"image": "payments-api:1.4.2", "replicas": 6}, "after": {"image": "payments-api:1.5.0", "replicas": 6}},
                "on_behalf_of": "reese@example.com",
                "context": {"trace": "https://ci.example.com/runs/8812", "risk": "medium"}
            }),
        ),
        (
            &exporter,
            json!({
                "action": "db.export", "resource": "postgres://prod/customers",
                "title": "Export EU customers for the quarterly audit",
                "reason": "Auditor request AUD-77: customers created in Q3, EU region, no payment data.",
                "labels": {"env": "prod", "compliance": "gdpr"},
                "payload": {"sql": "SELECT id, country, created_at FROM customers WHERE region = 'eu' AND created_at >= '2026-07-01'", "format": "csv"},
                "on_behalf_of": "reese@example.com"
            }),
        ),
        (
            &deploy_bot,
            json!({
                "action": "iam.grant", "resource": "aws://iam/role/billing-readonly",
                "title": "Grant billing-readonly to the finance-reports job",
                "reason": "The monthly finance report job needs read access to billing exports.",
                "labels": {"env": "prod", "compliance": "sox"},
                "payload": {"principal": "arn:aws:iam::123456789012:role/finance-reports", "role": "billing-readonly", "duration": "8h"},
                "diff": "--- a/iam/finance-reports.tf\n+++ b/iam/finance-reports.tf\n@@ -3,4 +3,5 @@\n   role = \"finance-reports\"\n   policies = [\n     \"reports-write\",\n+    \"billing-readonly\",\n   ]\n"
            }),
        ),
    ];
    for (agent, body) in demo {
        let input: NewRequest =
            serde_json::from_value(body).map_err(|err| crate::Error::Internal(format!("demo request: {err}")))?;
        service.create_request(agent, input, None, None).await?;
    }
    tracing::info!("dev: seeded demo agents and pending requests");
    Ok(())
}
