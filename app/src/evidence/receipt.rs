//! Approval receipts: what an executor checks, offline, before running an approved
//! action. A receipt is a compact JWS (RFC 7515) signed with EdDSA (RFC 8037) by the
//! log's key, over the request, the action's digest, who approved it under which policy,
//! a short execution window and the approval's audit sequence number.
//!
//! Checking one needs only the public key, the receipt and the exact action: recompute
//! the action's digest (`crate::action_digest`), check the signature, the window and that
//! the digests are equal.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::note::{LogKey, PublicKey};

/// The JWS header's `typ`: these tokens are receipts, not access tokens.
pub const RECEIPT_TYPE: &str = "signoff-receipt+jwt";
/// How far clocks may disagree when a window is checked, in seconds.
pub const CLOCK_SKEW_S: i64 = 60;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReceiptClaims {
    /// The log's origin.
    pub iss: String,
    /// The request's id.
    pub sub: String,
    /// The action's digest (SHA-256 hex of its canonical JSON).
    pub digest: String,
    pub action: String,
    pub resource: String,
    /// How it was approved: `quorum`, `policy`, `grant` or `break_glass`.
    pub approved_by: String,
    /// The people whose approvals count (none for a policy's or a grant's approval).
    pub approvers: Vec<Approver>,
    pub policy: ReceiptPolicy,
    /// Issued at (Unix seconds): when the request was approved.
    pub iat: i64,
    /// The end of the execution window (Unix seconds).
    pub exp: i64,
    /// The approval's sequence number in the audit log.
    pub seq: i64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Approver {
    pub issuer: String,
    pub subject: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReceiptPolicy {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub name: String,
    pub version: i64,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ReceiptError {
    #[error("not a receipt: {0}")]
    Malformed(String),
    #[error("signed by a key this check does not know (key id {0})")]
    UnknownKey(String),
    #[error("the signature does not verify")]
    BadSignature,
    #[error("the execution window closed at {exp} (Unix seconds)")]
    Expired { exp: i64 },
    #[error("issued in the future ({iat}, Unix seconds)")]
    NotYetValid { iat: i64 },
    #[error("the receipt approves action digest {approved}, not this action's {actual}")]
    DigestMismatch { approved: String, actual: String },
}

#[derive(Serialize, Deserialize)]
struct Header {
    alg: String,
    kid: String,
    typ: String,
}

/// Signs `claims` as a compact JWS.
pub fn issue(claims: &ReceiptClaims, key: &LogKey) -> String {
    let header = Header {
        alg: "EdDSA".into(),
        kid: key.public().id_hex(),
        typ: RECEIPT_TYPE.into(),
    };
    // Both serialise: plain structs of strings and integers.
    let header = serde_json::to_vec(&header).unwrap_or_default();
    let claims = serde_json::to_vec(claims).unwrap_or_default();
    let signing_input = format!("{}.{}", URL_SAFE_NO_PAD.encode(header), URL_SAFE_NO_PAD.encode(claims));
    let signature = key.sign(signing_input.as_bytes());
    format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(signature))
}

/// Reads a receipt's claims without checking anything (to show what it says).
pub fn peek(token: &str) -> Result<ReceiptClaims, ReceiptError> {
    let (_, claims, _) = split(token)?;
    Ok(claims)
}

/// Checks `token` against `keys`, the action's digest and the time `now` (Unix seconds).
pub fn verify(token: &str, keys: &[PublicKey], actual_digest: &str, now: i64) -> Result<ReceiptClaims, ReceiptError> {
    let (header, claims, signature) = split(token)?;
    if header.alg != "EdDSA" || header.typ != RECEIPT_TYPE {
        return Err(ReceiptError::Malformed(format!(
            "expected alg EdDSA and typ {RECEIPT_TYPE}, found {} and {}",
            header.alg, header.typ
        )));
    }
    let key = keys
        .iter()
        .find(|key| key.id_hex() == header.kid)
        .ok_or_else(|| ReceiptError::UnknownKey(header.kid.clone()))?;
    let signing_input = token
        .rsplit_once('.')
        .map(|(input, _)| input)
        .ok_or_else(|| ReceiptError::Malformed("three parts".into()))?;
    if !key.verifies(signing_input.as_bytes(), &signature) {
        return Err(ReceiptError::BadSignature);
    }
    if claims.digest != actual_digest {
        return Err(ReceiptError::DigestMismatch {
            approved: claims.digest,
            actual: actual_digest.to_string(),
        });
    }
    if now > claims.exp {
        return Err(ReceiptError::Expired { exp: claims.exp });
    }
    if now + CLOCK_SKEW_S < claims.iat {
        return Err(ReceiptError::NotYetValid { iat: claims.iat });
    }
    Ok(claims)
}

fn split(token: &str) -> Result<(Header, ReceiptClaims, Vec<u8>), ReceiptError> {
    let malformed = |why: String| ReceiptError::Malformed(why);
    let mut parts = token.trim().split('.');
    let (Some(header), Some(claims), Some(signature), None) = (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(malformed("a compact JWS has three parts".into()));
    };
    let decode = |part: &str, what: &str| {
        URL_SAFE_NO_PAD
            .decode(part)
            .map_err(|_| malformed(format!("its {what} is not base64url")))
    };
    let header: Header =
        serde_json::from_slice(&decode(header, "header")?).map_err(|err| malformed(format!("its header: {err}")))?;
    let claims: ReceiptClaims =
        serde_json::from_slice(&decode(claims, "claims")?).map_err(|err| malformed(format!("its claims: {err}")))?;
    Ok((header, claims, decode(signature, "signature")?))
}

/// The digest of an action given as JSON: an object with `action`, `resource` and,
/// where the request had them, `labels`, `payload` and `diff` (unified diff text), such
/// as the request as the API returns it.
pub fn digest_of_action(action: &Value) -> Result<String, ReceiptError> {
    let field = |name: &str| action.get(name).filter(|value| !value.is_null());
    let text = |name: &str| {
        field(name)
            .and_then(Value::as_str)
            .ok_or_else(|| ReceiptError::Malformed(format!("the action has no `{name}` text")))
    };
    let labels = match field("labels") {
        None => Default::default(),
        Some(labels) => serde_json::from_value(labels.clone())
            .map_err(|_| ReceiptError::Malformed("`labels` must map names to text".into()))?,
    };
    let diff = match field("diff") {
        None => None,
        Some(Value::String(text)) => Some(text.as_str()),
        Some(_) => {
            return Err(ReceiptError::Malformed(
                "`diff` must be the unified diff text the request shows".into(),
            ));
        }
    };
    Ok(crate::action_digest(
        text("action")?,
        text("resource")?,
        &labels,
        field("payload").unwrap_or(&Value::Null),
        diff,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn claims(digest: &str) -> ReceiptClaims {
        ReceiptClaims {
            iss: "signoff.example.com/audit".into(),
            sub: "0193a4c2-0000-7000-8000-000000000001".into(),
            digest: digest.into(),
            action: "deploy.service".into(),
            resource: "k8s://prod/api".into(),
            approved_by: "quorum".into(),
            approvers: vec![Approver {
                issuer: "https://idp".into(),
                subject: "alice".into(),
                email: Some("alice@example.com".into()),
            }],
            policy: ReceiptPolicy {
                id: Some("p1".into()),
                name: "prod deploys".into(),
                version: 3,
            },
            iat: 1_000,
            exp: 1_600,
            seq: 77,
        }
    }

    #[test]
    fn a_receipt_verifies_only_for_its_action_key_and_window() {
        let action = json!({"action": "deploy.service", "resource": "k8s://prod/api", "labels": {"env": "prod"}, "payload": {"image": "api:2"}});
        let digest = digest_of_action(&action).expect("digest");
        let key = LogKey::from_seed("signoff.example.com/audit", [7; 32]);
        let token = issue(&claims(&digest), &key);
        let keys = [key.public()];
        assert_eq!(verify(&token, &keys, &digest, 1_200), Ok(claims(&digest)));

        let other = LogKey::from_seed("signoff.example.com/audit", [8; 32]);
        assert!(matches!(
            verify(&token, &[other.public()], &digest, 1_200),
            Err(ReceiptError::UnknownKey(_))
        ));
        assert_eq!(
            verify(&token, &keys, &digest, 1_601),
            Err(ReceiptError::Expired { exp: 1_600 })
        );
        let altered = digest_of_action(&json!({"action": "deploy.service", "resource": "k8s://prod/api", "labels": {"env": "prod"}, "payload": {"image": "api:3"}})).expect("digest");
        assert!(matches!(
            verify(&token, &keys, &altered, 1_200),
            Err(ReceiptError::DigestMismatch { .. })
        ));

        // Claims swapped under the same signature.
        let (head, rest) = token.split_once('.').expect("parts");
        let (_, signature) = rest.split_once('.').expect("parts");
        let mut forged = claims(&altered);
        forged.digest = altered.clone();
        let forged = format!(
            "{head}.{}.{signature}",
            URL_SAFE_NO_PAD.encode(serde_json::to_vec(&forged).expect("json"))
        );
        assert_eq!(verify(&forged, &keys, &altered, 1_200), Err(ReceiptError::BadSignature));
    }

    #[test]
    fn the_action_digest_matches_the_servers() {
        let labels = [("env".to_string(), "prod".to_string())].into_iter().collect();
        let expected = crate::action_digest("db.export", "pg://x", &labels, &json!({"q": 1}), Some("-a\n+b\n"));
        let view = json!({"action": "db.export", "resource": "pg://x", "labels": {"env": "prod"}, "payload": {"q": 1}, "diff": "-a\n+b\n", "title": "ignored"});
        assert_eq!(digest_of_action(&view), Ok(expected));
        assert!(digest_of_action(&json!({"resource": "x"})).is_err());
    }
}
