//! Where a request's notices go: routes as admins write them (`slack:#approvals`,
//! `teams:ops`, `email:oncall@example.com`, `webhook:siem`), and where a request may be
//! decided (ARCHITECTURE.md, "Notifications").

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// One destination for a request's notices.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Route {
    /// A Slack channel (`#approvals`) or channel id (`C0123…`).
    Slack(String),
    /// A Teams Workflows webhook, by its name under `[notify.teams.NAME]`.
    Teams(String),
    /// An e-mail address.
    Email(String),
    /// A signed webhook endpoint, by its name under `[[notify.webhooks]]`.
    Webhook(String),
}

/// Why a route cannot be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("`{route}` is not a route: {reason}")]
pub struct BadRoute {
    pub route: String,
    pub reason: &'static str,
}

impl Route {
    /// The channel kind: `slack`, `teams`, `email`, `webhook`.
    pub fn kind(&self) -> &'static str {
        match self {
            Route::Slack(_) => "slack",
            Route::Teams(_) => "teams",
            Route::Email(_) => "email",
            Route::Webhook(_) => "webhook",
        }
    }

    /// The part after the colon.
    pub fn target(&self) -> &str {
        match self {
            Route::Slack(target) | Route::Teams(target) | Route::Email(target) | Route::Webhook(target) => target,
        }
    }
}

impl FromStr for Route {
    type Err = BadRoute;

    fn from_str(text: &str) -> Result<Route, BadRoute> {
        let text = text.trim();
        let bad = |reason| BadRoute {
            route: text.chars().take(80).collect(),
            reason,
        };
        let (kind, target) = text
            .split_once(':')
            .ok_or_else(|| bad("write `slack:#channel`, `teams:NAME`, `email:ADDRESS` or `webhook:NAME`"))?;
        let target = target.trim();
        if target.is_empty() || target.len() > 254 {
            return Err(bad("the part after `:` must be 1 to 254 characters"));
        }
        if target.chars().any(|c| c.is_control() || c.is_whitespace()) {
            return Err(bad("the part after `:` may not hold spaces or control characters"));
        }
        let name_like = |name: &str| {
            name.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
                && name.len() <= 64
        };
        match kind.trim() {
            "slack" => {
                let channel = target.strip_prefix('#').unwrap_or(target);
                if channel.is_empty() || !channel.chars().all(|c| c.is_alphanumeric() || "-_.".contains(c)) {
                    return Err(bad("a Slack channel is `#name` or a channel id"));
                }
                Ok(Route::Slack(target.to_string()))
            }
            "teams" if name_like(target) => Ok(Route::Teams(target.to_string())),
            "teams" => Err(bad(
                "a Teams route names a `[notify.teams.NAME]` in lowercase letters, digits, `-`, `_`",
            )),
            "email" => match target.split_once('@') {
                Some((local, domain))
                    if !local.is_empty()
                        && domain.contains('.')
                        && !domain.starts_with('.')
                        && !target.contains(['<', '>', ',', ';']) =>
                {
                    Ok(Route::Email(target.to_string()))
                }
                _ => Err(bad("an e-mail route is `email:someone@example.com`")),
            },
            "webhook" if name_like(target) => Ok(Route::Webhook(target.to_string())),
            "webhook" => Err(bad("a webhook route names a `[[notify.webhooks]]` endpoint")),
            _ => Err(bad("the kind before `:` must be slack, teams, email or webhook")),
        }
    }
}

impl fmt::Display for Route {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.kind(), self.target())
    }
}

impl Serialize for Route {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Route {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Route, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// Where reviewers may decide a request.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DecideIn {
    /// Anywhere a reviewer can: console, terminal, chat buttons.
    #[default]
    Anywhere,
    /// Only in the console (and the terminal, which signs in the same way): chat messages
    /// carry a link, never buttons, for actions where a chat click is not enough assurance.
    Console,
}

impl DecideIn {
    pub fn is_anywhere(&self) -> bool {
        *self == DecideIn::Anywhere
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_read_and_print_as_admins_write_them() {
        for text in [
            "slack:#approvals",
            "slack:C0123ABC",
            "teams:ops",
            "email:oncall@example.com",
            "webhook:siem",
        ] {
            let route: Route = text.parse().expect("a route");
            assert_eq!(route.to_string(), text);
        }
        assert_eq!(
            "slack:#approvals".parse::<Route>().expect("a route"),
            Route::Slack("#approvals".into())
        );
    }

    #[test]
    fn malformed_routes_are_refused_with_the_reason() {
        for text in [
            "approvals",
            "slack:",
            "slack:#",
            "slack:#a b",
            "teams:Ops Team",
            "email:nobody",
            "email:a@b.com,c@d.com",
            "webhook:SIEM",
            "pager:oncall",
            "email:x@y.com\r\nBcc: z@w.com",
        ] {
            let refused = text.parse::<Route>().expect_err(text);
            assert!(!refused.reason.is_empty(), "{text}");
        }
    }

    #[test]
    fn routes_travel_as_strings() {
        let routes: Vec<Route> = serde_json::from_str(r#"["teams:ops","webhook:siem"]"#).expect("routes");
        assert_eq!(routes, vec![Route::Teams("ops".into()), Route::Webhook("siem".into())]);
        assert_eq!(
            serde_json::to_string(&routes).expect("json"),
            r#"["teams:ops","webhook:siem"]"#
        );
        assert!(serde_json::from_str::<Vec<Route>>(r#"["nowhere"]"#).is_err());
    }
}
