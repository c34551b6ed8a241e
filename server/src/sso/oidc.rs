//! The OpenID Provider: authorization code flow with PKCE, nonce and state, and ID
//! token verification (signature via the provider's JWKS, issuer, audience, expiry,
//! nonce).

use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use openidconnect::core::{CoreAuthenticationFlow, CoreClient, CoreIdToken};
use openidconnect::{
    AuthorizationCode, ClaimsVerificationError, ClientId, ClientSecret, CsrfToken, IssuerUrl, LogoutRequest, Nonce,
    PkceCodeChallenge, PkceCodeVerifier, PostLogoutRedirectUrl, ProviderMetadataWithLogout, RedirectUrl, Scope,
    TokenResponse,
};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use tokio::sync::RwLock;

use signoff_app::Identity;

use crate::config::OidcConfig;
use crate::{Error, Result};

const MISCONFIGURED: &str = "the OpenID Provider answered in a way Signoff cannot use; tell your administrator";

/// How long discovered metadata (and so the JWKS) is trusted before it is read again.
const METADATA_TTL: Duration = Duration::from_secs(3600);

pub struct Oidc {
    issuer: IssuerUrl,
    client_id: ClientId,
    client_secret: Option<ClientSecret>,
    redirect: RedirectUrl,
    scopes: Vec<String>,
    groups_claim: String,
    /// The operator vouches for every email this provider sends.
    emails_verified: bool,
    http: openidconnect::reqwest::Client,
    metadata: RwLock<Option<(Instant, Arc<ProviderMetadataWithLogout>)>>,
}

/// What a sign-in in progress keeps in the session until the provider sends the
/// browser back. Used once.
#[derive(Clone, Serialize, Deserialize)]
pub struct PendingLogin {
    pub state: String,
    pub nonce: String,
    pub pkce_verifier: String,
    /// Where to go after signing in (a local path).
    pub next: String,
}

/// A verified sign-in.
#[derive(Clone, Debug)]
pub struct VerifiedLogin {
    pub identity: Identity,
    pub auth_time: Option<OffsetDateTime>,
    /// Kept for RP-initiated logout (`id_token_hint`).
    pub id_token: String,
}

impl Oidc {
    /// `None` when no provider is configured (dev mode).
    pub fn from_config(config: &OidcConfig, public_url: &str) -> Result<Option<Oidc>> {
        let Some(issuer) = &config.issuer else { return Ok(None) };
        let issuer = IssuerUrl::new(issuer.trim_end_matches('/').to_string())
            .map_err(|err| Error::Config(format!("SIGNOFF_OIDC_ISSUER is not a URL: {err}")))?;
        let client_id = config
            .client_id
            .clone()
            .ok_or_else(|| Error::Config("SIGNOFF_OIDC_CLIENT_ID is required with an issuer".into()))?;
        let redirect = RedirectUrl::new(format!("{public_url}/auth/callback"))
            .map_err(|err| Error::Config(format!("SIGNOFF_PUBLIC_URL is not a URL: {err}")))?;
        // Redirects are never followed: a provider endpoint that redirects is refused
        // rather than trusted (SSRF and token leakage).
        let http = openidconnect::reqwest::ClientBuilder::new()
            .redirect(openidconnect::reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|err| Error::Internal(format!("HTTP client: {err}")))?;
        Ok(Some(Oidc {
            issuer,
            client_id: ClientId::new(client_id),
            client_secret: config
                .client_secret
                .as_ref()
                .map(|secret| ClientSecret::new(secret.expose().to_string())),
            redirect,
            scopes: config.scopes.clone(),
            groups_claim: config.groups_claim.clone(),
            emails_verified: config.emails_verified,
            http,
            metadata: RwLock::new(None),
        }))
    }

    async fn metadata(&self, refresh: bool) -> Result<Arc<ProviderMetadataWithLogout>> {
        if !refresh
            && let Some((fetched, metadata)) = self.metadata.read().await.as_ref()
            && fetched.elapsed() < METADATA_TTL
        {
            return Ok(Arc::clone(metadata));
        }
        let metadata = ProviderMetadataWithLogout::discover_async(self.issuer.clone(), &self.http)
            .await
            .map_err(|err| Error::Provider {
                public: "Signoff cannot reach its OpenID Provider right now; try again in a minute, or tell your administrator",
                detail: format!(
                    "cannot read the configuration at {}: {}",
                    self.issuer.as_str(),
                    error_chain(&err)
                ),
            })?;
        let metadata = Arc::new(metadata);
        *self.metadata.write().await = Some((Instant::now(), Arc::clone(&metadata)));
        Ok(metadata)
    }

    fn client(
        &self,
        metadata: &ProviderMetadataWithLogout,
    ) -> CoreClient<
        openidconnect::EndpointSet,
        openidconnect::EndpointNotSet,
        openidconnect::EndpointNotSet,
        openidconnect::EndpointNotSet,
        openidconnect::EndpointMaybeSet,
        openidconnect::EndpointMaybeSet,
    > {
        CoreClient::from_provider_metadata(metadata.clone(), self.client_id.clone(), self.client_secret.clone())
            .set_redirect_uri(self.redirect.clone())
    }

    /// Where to send the browser, and what to remember until it comes back.
    pub async fn begin(&self, next: String) -> Result<(String, PendingLogin)> {
        let metadata = self.metadata(false).await?;
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let client = self.client(&metadata);
        let mut request = client
            .authorize_url(
                CoreAuthenticationFlow::AuthorizationCode,
                CsrfToken::new_random,
                Nonce::new_random,
            )
            .set_pkce_challenge(challenge);
        for scope in self.scopes.iter().filter(|scope| scope.as_str() != "openid") {
            request = request.add_scope(Scope::new(scope.clone()));
        }
        let (url, state, nonce) = request.url();
        let pending = PendingLogin {
            state: state.secret().clone(),
            nonce: nonce.secret().clone(),
            pkce_verifier: verifier.secret().clone(),
            next,
        };
        Ok((url.to_string(), pending))
    }

    /// Exchanges the code (with the PKCE verifier) and verifies the ID token.
    pub async fn finish(&self, code: &str, pending: &PendingLogin) -> Result<VerifiedLogin> {
        let metadata = self.metadata(false).await?;
        let client = self.client(&metadata);
        let response = client
            .exchange_code(AuthorizationCode::new(code.to_string()))
            .map_err(|err| Error::Provider {
                public: MISCONFIGURED,
                detail: format!("the provider has no token endpoint: {err}"),
            })?
            .set_pkce_verifier(PkceCodeVerifier::new(pending.pkce_verifier.clone()))
            .request_async(&self.http)
            .await
            .map_err(|err| Error::Provider {
                public: "the OpenID Provider did not complete this sign-in; start again from the sign-in page",
                detail: format!("the provider refused the sign-in code: {}", error_chain(&err)),
            })?;
        let id_token = response
            .id_token()
            .ok_or_else(|| Error::Provider {
                public: MISCONFIGURED,
                detail: "the provider returned no ID token".into(),
            })?
            .to_string();
        self.verify_id_token(&id_token, &pending.nonce).await
    }

    /// Verifies a raw ID token for this client and this sign-in's nonce.
    pub async fn verify_id_token(&self, raw: &str, nonce: &str) -> Result<VerifiedLogin> {
        let token: CoreIdToken = raw
            .parse()
            .map_err(|_| Error::Unauthorized("the ID token is not a well-formed JWT".into()))?;
        let nonce = Nonce::new(nonce.to_string());
        let metadata = self.metadata(false).await?;
        let verified = match self.check(&token, &metadata, &nonce) {
            // The provider may have rotated its keys: read the JWKS again, once.
            Err(ClaimsVerificationError::SignatureVerification(_)) => {
                let metadata = self.metadata(true).await?;
                self.check(&token, &metadata, &nonce)
            }
            other => other,
        };
        let claims = verified.map_err(|err| Error::Unauthorized(describe(&err)))?;
        let payload = payload_claims(raw)?;
        let groups = match payload.get(&self.groups_claim) {
            Some(serde_json::Value::Array(items)) => {
                items.iter().filter_map(|g| g.as_str().map(String::from)).collect()
            }
            Some(serde_json::Value::String(group)) => vec![group.clone()],
            _ => Vec::new(),
        };
        let email = claims.email().map(|email| email.to_string());
        let identity = Identity {
            issuer: claims.issuer().to_string(),
            subject: claims.subject().to_string(),
            email_verified: email.is_some() && (self.emails_verified || claims.email_verified() == Some(true)),
            email,
            name: claims
                .name()
                .and_then(|name| name.get(None))
                .map(|name| name.to_string()),
            groups,
        };
        let auth_time = claims
            .auth_time()
            .and_then(|at| OffsetDateTime::from_unix_timestamp(at.timestamp()).ok());
        Ok(VerifiedLogin {
            identity,
            auth_time,
            id_token: raw.to_string(),
        })
    }

    fn check<'t>(
        &self,
        token: &'t CoreIdToken,
        metadata: &ProviderMetadataWithLogout,
        nonce: &Nonce,
    ) -> std::result::Result<&'t openidconnect::core::CoreIdTokenClaims, ClaimsVerificationError> {
        let client = self.client(metadata);
        token.claims(&client.id_token_verifier(), nonce)
    }

    /// The provider's end-session URL for RP-initiated logout, when it offers one.
    pub async fn logout_url(&self, id_token: Option<&str>, post_logout: &str) -> Option<String> {
        let metadata = self.metadata(false).await.ok()?;
        let endpoint = metadata.additional_metadata().end_session_endpoint.clone()?;
        let mut request = LogoutRequest::from(endpoint).set_client_id(self.client_id.clone());
        if let Some(token) = id_token.and_then(|raw| raw.parse::<CoreIdToken>().ok()) {
            request = request.set_id_token_hint(&token);
        }
        if let Ok(url) = PostLogoutRedirectUrl::new(post_logout.to_string()) {
            request = request.set_post_logout_redirect_uri(url);
        }
        Some(request.http_get_url().to_string())
    }
}

/// The JWT's payload as JSON (read only after the signature was verified).
fn payload_claims(raw: &str) -> Result<serde_json::Map<String, serde_json::Value>> {
    let payload = raw
        .split('.')
        .nth(1)
        .ok_or_else(|| Error::Unauthorized("malformed ID token".into()))?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .map_err(|_| Error::Unauthorized("malformed ID token payload".into()))?;
    serde_json::from_slice(&bytes).map_err(|_| Error::Unauthorized("malformed ID token claims".into()))
}

fn describe(err: &ClaimsVerificationError) -> String {
    match err {
        ClaimsVerificationError::Expired(_) => "the ID token has expired; sign in again".into(),
        ClaimsVerificationError::InvalidAudience(_) => {
            "the ID token was issued for another client (wrong audience)".into()
        }
        ClaimsVerificationError::InvalidIssuer(_) => "the ID token comes from another issuer".into(),
        ClaimsVerificationError::InvalidNonce(_) => {
            "the ID token does not belong to this sign-in (nonce mismatch)".into()
        }
        ClaimsVerificationError::SignatureVerification(_) => "the ID token's signature does not verify".into(),
        other => format!("the ID token is not valid: {other}"),
    }
}

fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
