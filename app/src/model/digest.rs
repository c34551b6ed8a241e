//! The action digest: what a reviewer approves is exactly what runs.

use std::collections::BTreeMap;

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// RFC 8785 (JSON Canonicalization Scheme) text of `value`.
pub fn canonical_json(value: &Value) -> String {
    // Serialising a `serde_json::Value` cannot fail: its keys are always strings.
    serde_jcs::to_string(value).unwrap_or_default()
}

pub fn sha256_hex(bytes: impl AsRef<[u8]>) -> String {
    hex::encode(Sha256::digest(bytes.as_ref()))
}

/// SHA-256 (lower-case hex) of the canonical JSON of the fields that define an action.
pub fn action_digest(
    action: &str,
    resource: &str,
    labels: &BTreeMap<String, String>,
    payload: &Value,
    diff: Option<&str>,
) -> String {
    let subject = json!({
        "action": action,
        "resource": resource,
        "labels": labels,
        "payload": payload,
        "diff": diff,
    });
    sha256_hex(canonical_json(&subject))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_form_sorts_keys_and_drops_whitespace() {
        let value: Value = serde_json::from_str(r#"{ "b": 1, "a": [true, null, "x"], "c": {"z": 1.0, "y": 1e3} }"#)
            .expect("valid json");
        assert_eq!(
            canonical_json(&value),
            r#"{"a":[true,null,"x"],"b":1,"c":{"y":1000,"z":1}}"#
        );
    }

    #[test]
    fn digest_is_stable_and_covers_every_field() {
        let labels = BTreeMap::from([("env".to_string(), "prod".to_string())]);
        let payload = json!({"sql": "select 1", "limit": 10});
        let base = action_digest("db.export", "db/customers", &labels, &payload, Some("-a\n+b\n"));
        // Key order in the payload does not matter; content does.
        let reordered = json!({"limit": 10, "sql": "select 1"});
        assert_eq!(
            base,
            action_digest("db.export", "db/customers", &labels, &reordered, Some("-a\n+b\n"))
        );
        assert_eq!(base.len(), 64);
        let other_labels = BTreeMap::from([("env".to_string(), "dev".to_string())]);
        for changed in [
            action_digest("db.import", "db/customers", &labels, &payload, Some("-a\n+b\n")),
            action_digest("db.export", "db/orders", &labels, &payload, Some("-a\n+b\n")),
            action_digest("db.export", "db/customers", &other_labels, &payload, Some("-a\n+b\n")),
            action_digest(
                "db.export",
                "db/customers",
                &labels,
                &json!({"sql": "select 2", "limit": 10}),
                Some("-a\n+b\n"),
            ),
            action_digest("db.export", "db/customers", &labels, &payload, None),
        ] {
            assert_ne!(base, changed);
        }
    }
}
