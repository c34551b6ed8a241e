//! The action digest: what a reviewer approves is exactly what runs.
//!
//! Canonical JSON is RFC 8785 (JCS): object keys sorted by their UTF-16 code units, no
//! whitespace, strings with the minimal escapes, numbers as ECMAScript prints doubles. It
//! is written here directly from the parsed value, without copying or re-serialising it:
//! every request's digest and every audit event go through it. A property test holds it
//! to `serde_jcs`, the reference implementation.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde_json::{Number, Value};
use sha2::{Digest, Sha256};

/// RFC 8785 (JSON Canonicalization Scheme) text of `value`.
pub fn canonical_json(value: &Value) -> String {
    let mut out = String::with_capacity(128);
    write_value(value, &mut out);
    out
}

pub fn sha256_hex(bytes: impl AsRef<[u8]>) -> String {
    hex::encode(Sha256::digest(bytes.as_ref()))
}

/// SHA-256 (lower-case hex) of the canonical JSON of the fields that define an action:
/// `{"action", "diff", "labels", "payload", "resource"}`, written in that (canonical)
/// order without building the object first.
pub fn action_digest(
    action: &str,
    resource: &str,
    labels: &BTreeMap<String, String>,
    payload: &Value,
    diff: Option<&str>,
) -> String {
    let mut out = String::with_capacity(256);
    out.push_str("{\"action\":");
    write_string(action, &mut out);
    out.push_str(",\"diff\":");
    match diff {
        Some(diff) => write_string(diff, &mut out),
        None => out.push_str("null"),
    }
    out.push_str(",\"labels\":");
    let mut entries: Vec<(&String, &String)> = labels.iter().collect();
    entries.sort_by(|a, b| utf16_order(a.0, b.0));
    write_entries(entries, &mut out, |value, out| write_string(value, out));
    out.push_str(",\"payload\":");
    write_value(payload, &mut out);
    out.push_str(",\"resource\":");
    write_string(resource, &mut out);
    out.push('}');
    sha256_hex(out)
}

fn write_value(value: &Value, out: &mut String) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(true) => out.push_str("true"),
        Value::Bool(false) => out.push_str("false"),
        Value::Number(number) => write_number(number, out),
        Value::String(text) => write_string(text, out),
        Value::Array(items) => {
            out.push('[');
            for (n, item) in items.iter().enumerate() {
                if n > 0 {
                    out.push(',');
                }
                write_value(item, out);
            }
            out.push(']');
        }
        Value::Object(fields) => {
            let mut entries: Vec<(&String, &Value)> = fields.iter().collect();
            entries.sort_by(|a, b| utf16_order(a.0, b.0));
            write_entries(entries, out, write_value);
        }
    }
}

fn write_entries<V>(entries: Vec<(&String, V)>, out: &mut String, write: impl Fn(V, &mut String)) {
    out.push('{');
    for (n, (key, value)) in entries.into_iter().enumerate() {
        if n > 0 {
            out.push(',');
        }
        write_string(key, out);
        out.push(':');
        write(value, out);
    }
    out.push('}');
}

/// JCS orders keys by UTF-16 code units; for ASCII that is byte order.
fn utf16_order(a: &str, b: &str) -> Ordering {
    if a.is_ascii() && b.is_ascii() {
        a.cmp(b)
    } else {
        a.encode_utf16().cmp(b.encode_utf16())
    }
}

/// Numbers are IEEE doubles in JCS: integers up to 2^53 print as themselves, the rest as
/// ECMAScript's shortest round-trip form.
fn write_number(number: &Number, out: &mut String) {
    const EXACT: u64 = 1 << 53;
    if let Some(int) = number.as_i64().filter(|int| int.unsigned_abs() <= EXACT) {
        let _ = write!(out, "{int}");
    } else if let Some(int) = number.as_u64().filter(|int| *int <= EXACT) {
        let _ = write!(out, "{int}");
    } else if let Some(double) = number.as_f64() {
        out.push_str(ryu_js::Buffer::new().format(double));
    }
}

/// A JSON string with only the escapes JCS (ECMAScript's `JSON.stringify`) uses.
fn write_string(text: &str, out: &mut String) {
    out.push('"');
    let mut plain = 0;
    for (at, byte) in text.bytes().enumerate() {
        let escape = match byte {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0x08 => "\\b",
            0x0c => "\\f",
            0x00..=0x1f => "",
            _ => continue,
        };
        out.push_str(&text[plain..at]);
        if escape.is_empty() {
            let _ = write!(out, "\\u{byte:04x}");
        } else {
            out.push_str(escape);
        }
        plain = at + 1;
    }
    out.push_str(&text[plain..]);
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            any::<f64>()
                .prop_filter("JSON has no NaN or infinity", |f| f.is_finite())
                .prop_map(Value::from),
            (-1e25..1e25_f64).prop_map(Value::from),
            "\\PC{0,12}".prop_map(Value::from),
            any::<String>().prop_map(Value::from),
        ];
        leaf.prop_recursive(4, 48, 6, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                proptest::collection::btree_map(any::<String>(), inner, 0..6)
                    .prop_map(|fields| Value::Object(fields.into_iter().collect())),
            ]
        })
    }

    proptest! {
        /// The hand-written form is RFC 8785 exactly as the reference writes it, so
        /// digests and audit hashes made before and after it agree.
        #[test]
        fn canonical_json_is_what_serde_jcs_writes(value in json_value()) {
            let reference = serde_jcs::to_string(&value).expect("serde_jcs");
            prop_assert_eq!(canonical_json(&value), reference);
        }

        #[test]
        fn the_digest_is_the_hash_of_the_canonical_subject(
            labels in proptest::collection::btree_map(any::<String>(), any::<String>(), 0..4),
            payload in json_value(),
            action in any::<String>(),
            diff in proptest::option::of(any::<String>()),
        ) {
            let subject = json!({
                "action": action, "resource": "r", "labels": labels, "payload": payload, "diff": diff,
            });
            prop_assert_eq!(
                action_digest(&action, "r", &labels, &payload, diff.as_deref()),
                sha256_hex(serde_jcs::to_string(&subject).expect("serde_jcs"))
            );
        }
    }

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
