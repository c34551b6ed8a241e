//! Who people are: the OpenID Provider client, console sessions, and the settings sign-in
//! needs (roles from groups, the public URL, lifetimes). Below the doors: it imports
//! none of them.

pub mod oidc;
pub mod sessions;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use signoff_app::Identity;
use signoff_app::wire::Role;

/// Terminal tokens carry this prefix, so a glance (or a secret scanner) tells them apart.
pub const TERMINAL_TOKEN_PREFIX: &str = "so_term_";

/// What a console session remembers about its person.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SessionUser {
    pub identity: Identity,
    #[serde(with = "time::serde::rfc3339::option", default)]
    pub auth_time: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339")]
    pub signed_in_at: OffsetDateTime,
    pub id_token: Option<String>,
}

/// Which groups give which role.
#[derive(Clone, Debug)]
pub struct RoleMap {
    pub reviewer_groups: Vec<String>,
    pub admin_groups: Vec<String>,
    pub auditor_groups: Vec<String>,
}

impl RoleMap {
    pub fn roles(&self, groups: &[String]) -> Vec<Role> {
        let member = |wanted: &[String]| groups.iter().any(|group| wanted.contains(group));
        let mut roles = Vec::new();
        if member(&self.reviewer_groups) {
            roles.push(Role::Reviewer);
        }
        if member(&self.admin_groups) {
            roles.push(Role::Admin);
        }
        if member(&self.auditor_groups) {
            roles.push(Role::Auditor);
        }
        roles
    }

    /// Every group that gives some role, for the "no access" page.
    pub fn granting_groups(&self) -> Vec<String> {
        let mut groups: Vec<String> = self
            .reviewer_groups
            .iter()
            .chain(&self.admin_groups)
            .chain(&self.auditor_groups)
            .cloned()
            .collect();
        groups.sort();
        groups.dedup();
        groups
    }
}

/// Settings the auth layer needs.
pub struct AuthState {
    pub oidc: Option<oidc::Oidc>,
    pub roles: RoleMap,
    pub public_url: String,
    pub dev: bool,
    pub session_lifetime: time::Duration,
    pub terminal_token_lifetime: time::Duration,
    pub device_poll_interval: time::Duration,
    /// The Content-Security-Policy of every response (forms may go to us and the provider).
    pub content_security_policy: axum::http::HeaderValue,
}

impl AuthState {
    /// Whether people reach us over https (then cookies are Secure and HSTS is sent).
    pub fn is_https(&self) -> bool {
        self.public_url.starts_with("https://")
    }

    /// A strict policy: no inline script or style, no framing, and forms (sign-out
    /// redirects to the provider included) only to ourselves and the provider's origin.
    pub fn content_security_policy_for(provider_issuer: Option<&str>) -> axum::http::HeaderValue {
        let provider_origin = provider_issuer
            .and_then(|issuer| openidconnect::url::Url::parse(issuer).ok())
            .map(|url| url.origin().ascii_serialization())
            .filter(|origin| origin != "null");
        let form_action = match provider_origin {
            Some(origin) => format!("'self' {origin}"),
            None => "'self'".to_string(),
        };
        let policy = format!(
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; \
             form-action {form_action}; frame-ancestors 'none'; base-uri 'none'"
        );
        axum::http::HeaderValue::from_str(&policy)
            .unwrap_or_else(|_| axum::http::HeaderValue::from_static("default-src 'none'; form-action 'self'"))
    }

    /// `scheme://host[:port]` of the public URL: what a same-site browser sends as Origin.
    pub fn public_origin(&self) -> &str {
        let url = self.public_url.as_str();
        let after_scheme = url.find("://").map(|i| i + 3).unwrap_or(0);
        match url[after_scheme..].find('/') {
            Some(slash) => &url[..after_scheme + slash],
            None => url,
        }
    }
}
