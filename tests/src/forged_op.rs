//! A small OpenID Provider that lies: it serves discovery, a JWKS with one RSA key, an
//! authorization endpoint that sends the browser straight back with a code, and a token
//! endpoint whose ID token is forged the way the test asks. A test peer for the attacks on
//! ID token verification, which the real provider (`oidc.rs`) would never make.
//!
//! Its signing key (`tests/fixtures/forged-op/signing-key.pem`) exists only for these tests.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::{Form, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine as _;
use rsa::pkcs8::{DecodePrivateKey, EncodePublicKey, LineEnding};
use rsa::traits::PublicKeyParts;
use rsa::{Pkcs1v15Sign, RsaPrivateKey};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// The client the server under test is configured as.
pub const CLIENT_ID: &str = "signoff-web";
pub const CLIENT_SECRET: &str = "signoff-web-secret";

/// What the next ID token is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Forgery {
    /// Correct in every way: the control that shows this provider can sign someone in.
    None,
    /// Signed with the provider's key, naming another issuer.
    WrongIssuer,
    /// Signed with the provider's key, for another client.
    WrongAudience,
    /// `alg: none`, no signature.
    AlgNone,
    /// `alg: HS256`, an HMAC keyed with the bytes of the provider's RSA public key (PEM):
    /// the key confusion that fools verifiers using the JWKS key for whatever `alg` says.
    HmacWithThePublicKey,
}

struct Shared {
    issuer: String,
    key: RsaPrivateKey,
    forgery: Mutex<Forgery>,
    /// The nonce of each code handed out, for the ID token of its exchange.
    nonces: Mutex<HashMap<String, String>>,
}

pub struct ForgedProvider {
    pub issuer: String,
    shared: Arc<Shared>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for ForgedProvider {
    fn drop(&mut self) {
        self.server.abort();
    }
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// HMAC-SHA256 (RFC 2104).
fn hmac_sha256(key: &[u8], message: &[u8]) -> Vec<u8> {
    let mut block = [0u8; 64];
    if key.len() > 64 {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let pad = |byte: u8| block.iter().map(|k| k ^ byte).collect::<Vec<u8>>();
    let inner = Sha256::new().chain_update(pad(0x36)).chain_update(message).finalize();
    Sha256::new()
        .chain_update(pad(0x5c))
        .chain_update(inner)
        .finalize()
        .to_vec()
}

impl ForgedProvider {
    pub async fn start() -> ForgedProvider {
        let pem = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/forged-op/signing-key.pem"),
        )
        .expect("read the forged provider's key");
        let key = RsaPrivateKey::from_pkcs8_pem(&pem).expect("a PKCS#8 RSA key");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let issuer = format!("http://{}", listener.local_addr().expect("address"));
        let shared = Arc::new(Shared {
            issuer: issuer.clone(),
            key,
            forgery: Mutex::new(Forgery::None),
            nonces: Mutex::new(HashMap::new()),
        });
        let app = Router::new()
            .route("/.well-known/openid-configuration", get(discovery))
            .route("/jwks", get(jwks))
            .route("/authorize", get(authorize))
            .route("/token", post(token))
            .with_state(Arc::clone(&shared));
        let server = tokio::spawn(async move {
            axum::serve(listener, app).await.expect("the forged provider serves");
        });
        ForgedProvider { issuer, shared, server }
    }

    /// Makes the next ID tokens this way.
    pub fn forge(&self, forgery: Forgery) {
        *self.shared.forgery.lock().expect("lock") = forgery;
    }
}

async fn discovery(State(shared): State<Arc<Shared>>) -> Json<Value> {
    let issuer = &shared.issuer;
    Json(json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{issuer}/authorize"),
        "token_endpoint": format!("{issuer}/token"),
        "jwks_uri": format!("{issuer}/jwks"),
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
    }))
}

async fn jwks(State(shared): State<Arc<Shared>>) -> Json<Value> {
    let public = shared.key.to_public_key();
    Json(json!({"keys": [{
        "kty": "RSA",
        "kid": "forged-op-1",
        "use": "sig",
        "alg": "RS256",
        "n": b64(&public.n().to_bytes_be()),
        "e": b64(&public.e().to_bytes_be()),
    }]}))
}

async fn authorize(State(shared): State<Arc<Shared>>, Query(query): Query<HashMap<String, String>>) -> Response {
    let code = format!("code-{}", uuid::Uuid::now_v7().simple());
    let nonce = query.get("nonce").cloned().unwrap_or_default();
    shared.nonces.lock().expect("lock").insert(code.clone(), nonce);
    let mut back =
        reqwest::Url::parse(query.get("redirect_uri").map(String::as_str).unwrap_or_default()).expect("a redirect_uri");
    back.query_pairs_mut()
        .append_pair("code", &code)
        .append_pair("state", query.get("state").map(String::as_str).unwrap_or_default());
    Redirect::to(back.as_str()).into_response()
}

async fn token(State(shared): State<Arc<Shared>>, Form(form): Form<HashMap<String, String>>) -> Response {
    let code = form.get("code").cloned().unwrap_or_default();
    let Some(nonce) = shared.nonces.lock().expect("lock").remove(&code) else {
        return (
            axum::http::StatusCode::BAD_REQUEST,
            Json(json!({"error": "invalid_grant"})),
        )
            .into_response();
    };
    let forgery = *shared.forgery.lock().expect("lock");
    Json(json!({
        "access_token": format!("at-{}", uuid::Uuid::now_v7().simple()),
        "token_type": "Bearer",
        "expires_in": 300,
        "id_token": id_token(&shared, forgery, &nonce),
    }))
    .into_response()
}

fn id_token(shared: &Shared, forgery: Forgery, nonce: &str) -> String {
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let claims = json!({
        "iss": if forgery == Forgery::WrongIssuer { "https://idp.attacker.example".to_string() } else { shared.issuer.clone() },
        "sub": "u-mallory",
        "aud": if forgery == Forgery::WrongAudience { "another-client" } else { CLIENT_ID },
        "iat": now,
        "exp": now + 300,
        "auth_time": now,
        "nonce": nonce,
        "email": "mallory@example.com",
        "email_verified": true,
        "name": "Mallory Forger",
        "groups": ["signoff-reviewers", "signoff-admins"],
    });
    let header = match forgery {
        Forgery::AlgNone => json!({"alg": "none", "typ": "JWT"}),
        Forgery::HmacWithThePublicKey => json!({"alg": "HS256", "typ": "JWT", "kid": "forged-op-1"}),
        _ => json!({"alg": "RS256", "typ": "JWT", "kid": "forged-op-1"}),
    };
    let signed = format!(
        "{}.{}",
        b64(header.to_string().as_bytes()),
        b64(claims.to_string().as_bytes())
    );
    let signature = match forgery {
        Forgery::AlgNone => Vec::new(),
        Forgery::HmacWithThePublicKey => {
            let public_pem = shared
                .key
                .to_public_key()
                .to_public_key_pem(LineEnding::LF)
                .expect("public key as PEM");
            hmac_sha256(public_pem.as_bytes(), signed.as_bytes())
        }
        _ => {
            // RS256: PKCS#1 v1.5 over SHA-256, with the DigestInfo prefix written out.
            const SHA256_DIGEST_INFO: [u8; 19] = [
                0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00,
                0x04, 0x20,
            ];
            let mut digest_info = SHA256_DIGEST_INFO.to_vec();
            digest_info.extend_from_slice(&Sha256::digest(signed.as_bytes()));
            shared
                .key
                .sign(Pkcs1v15Sign::new_unprefixed(), &digest_info)
                .expect("sign")
        }
    };
    format!("{signed}.{}", b64(&signature))
}
