//! Where a request's notices go: its policy's routes, else the server's default routes;
//! an escalation's own routes for the escalation notice (see ARCHITECTURE.md,
//! "Notifications").

use signoff_app::{Kind, Request, Route};

use crate::config::NotifyConfig;
use crate::{Error, Result};

/// The routes every request falls back to, and where the console is.
pub struct Routing {
    default: Vec<Route>,
    public_url: String,
}

impl Routing {
    /// Reads `[notify] default`, refusing a route that cannot be read or names a channel
    /// that is not configured.
    pub fn from_config(config: &NotifyConfig, public_url: &str) -> Result<Routing> {
        let configured = Configured::from_config(config);
        let mut default = Vec::new();
        for text in &config.default {
            let route: Route = text
                .parse()
                .map_err(|err| Error::Config(format!("notify.default: {err}")))?;
            if let Some(missing) = configured.unconfigured(&route) {
                return Err(Error::Config(format!("notify.default: `{route}`: {missing}")));
            }
            default.push(route);
        }
        Ok(Routing {
            default,
            public_url: public_url.trim_end_matches('/').to_string(),
        })
    }

    /// Where the notice of an event of `kind` about `request` goes: the escalation's
    /// routes for an escalation, else the request's own, else the default.
    pub fn routes(&self, request: &Request, kind: Kind) -> Vec<Route> {
        let policy = &request.policy;
        let routes = match kind {
            Kind::RequestEscalated => policy.escalation_routes(),
            _ => policy.routes(),
        };
        if routes.is_empty() {
            self.default.clone()
        } else {
            routes
        }
    }

    /// The request's page in the console (through sign-in when needed).
    pub fn link(&self, request: &Request) -> String {
        format!("{}/requests/{}", self.public_url, request.id)
    }

    /// The console's address, without a trailing slash.
    pub fn public_url(&self) -> &str {
        &self.public_url
    }
}

/// Which channels this server has configured, to tell an admin when a policy names a
/// route no channel would deliver.
#[derive(Clone, Debug, Default)]
pub struct Configured {
    slack: bool,
    email: bool,
    teams: std::collections::BTreeSet<String>,
    webhooks: std::collections::BTreeSet<String>,
}

impl Configured {
    pub fn from_config(config: &NotifyConfig) -> Configured {
        Configured {
            slack: config.slack.is_some(),
            email: config.email.is_some(),
            teams: config.teams.keys().cloned().collect(),
            webhooks: config
                .webhooks
                .iter()
                .map(|webhook| webhook.name.trim().to_string())
                .collect(),
        }
    }

    /// Why `route` cannot be delivered with this configuration, if it cannot.
    pub fn unconfigured(&self, route: &Route) -> Option<String> {
        match route {
            Route::Slack(_) if !self.slack => Some("no [notify.slack] is configured".into()),
            Route::Teams(name) if !self.teams.contains(name) => Some(format!("no [notify.teams.{name}] is configured")),
            Route::Email(_) if !self.email => Some("no [notify.email] is configured".into()),
            Route::Webhook(name) if !self.webhooks.contains(name) => {
                Some(format!("no [[notify.webhooks]] is named `{name}`"))
            }
            _ => None,
        }
    }
}
