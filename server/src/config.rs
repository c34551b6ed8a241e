//! Configuration: a TOML file and `SIGNOFF_*` environment variables, the environment winning.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Deserializer};

use crate::Error;

#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address to bind.
    pub listen: SocketAddr,
    /// When set, `GET /metrics` is served on this address only, not on `listen`, so that
    /// the scrape can stay on an internal network.
    pub metrics_listen: Option<SocketAddr>,
    /// The URL users reach; the OIDC redirect is `public_url/auth/callback`.
    pub public_url: Option<String>,
    /// `sqlite://PATH` or `postgres://…`; a SQLite file in `data_dir` when absent.
    pub database_url: Option<String>,
    pub data_dir: PathBuf,
    /// How long a request stays pending when the agent does not say.
    #[serde(deserialize_with = "duration")]
    pub request_ttl: Duration,
    /// Approvals required when no policy says otherwise.
    pub default_approvals: u32,
    /// How often the sweeper looks for requests past their expiry.
    #[serde(deserialize_with = "duration")]
    pub sweep_interval: Duration,
    pub reviewer_groups: Vec<String>,
    pub admin_groups: Vec<String>,
    /// Groups whose members read and export the audit trail (and nothing else).
    pub auditor_groups: Vec<String>,
    pub oidc: OidcConfig,
    /// Development mode: loopback only, demo data, development sign-in. Only the `--dev`
    /// flag sets it, never a file or the environment.
    #[serde(skip)]
    pub dev: bool,
    /// Reverse proxies (addresses or CIDR ranges) whose `X-Forwarded-For` is believed
    /// when telling a client's address; without any, the peer address is the client's.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// Anonymous calls (sign-in starts, terminal sign-in polls) per client address per
    /// minute.
    pub rate_limit_per_minute: u32,
    /// Terminal sign-in codes one client address may ask for per minute.
    pub device_codes_per_minute: u32,
    /// Long-polls one agent may hold open at once; more are refused with 429.
    pub max_waits_per_agent: usize,
    /// A console session ends after this long without activity...
    #[serde(deserialize_with = "duration")]
    pub session_idle_timeout: Duration,
    /// ...and after this long in any case (then the reviewer signs in again).
    #[serde(deserialize_with = "duration")]
    pub session_lifetime: Duration,
    /// How often a terminal may poll for its sign-in (RFC 8628 `interval`).
    #[serde(deserialize_with = "duration")]
    pub device_poll_interval: Duration,
    /// How long a terminal token lasts.
    #[serde(deserialize_with = "duration")]
    pub terminal_token_lifetime: Duration,
    /// Where notices and events are delivered: Slack, Teams, e-mail, signed webhooks.
    pub notify: NotifyConfig,
    /// Where agents may ask to be called back with a request's outcome.
    pub callbacks: CallbacksConfig,
    /// The audit log's signed checkpoints and the approval receipts.
    pub audit: AuditConfig,
}

/// Evidence (`[audit]`): who signs the log's checkpoints and receipts, and how often.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuditConfig {
    /// The log's name in its checkpoints and its key's name; the public URL's host
    /// followed by `/audit` when absent.
    pub origin: Option<String>,
    /// The Ed25519 key file (its 32-byte seed in base64); `audit.key` in the data dir,
    /// made at first start (readable by the server's user only), when absent.
    pub signing_key: Option<PathBuf>,
    /// Keys this log signed with before (verifier keys, `name+id+base64`), still listed
    /// and trusted; `audit rotate-key` keeps its own list in the data dir.
    pub previous_keys: Vec<String>,
    /// A checkpoint at every multiple of this many events...
    pub checkpoint_every: u64,
    /// ...and this long after the newest one when events came since (and at shutdown).
    #[serde(deserialize_with = "duration")]
    pub checkpoint_interval: Duration,
    /// How long after its approval a receipt lets the action run.
    #[serde(deserialize_with = "duration")]
    pub receipt_window: Duration,
}

impl Default for AuditConfig {
    fn default() -> Self {
        Self {
            origin: None,
            signing_key: None,
            previous_keys: Vec::new(),
            checkpoint_every: 1000,
            checkpoint_interval: Duration::from_secs(60),
            receipt_window: Duration::from_secs(15 * 60),
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NotifyConfig {
    /// Routes (`slack:#approvals`, `email:oncall@example.com`, …) for requests whose
    /// policy names none.
    pub default: Vec<String>,
    pub slack: Option<SlackConfig>,
    /// Teams Workflows webhooks by name (`[notify.teams.ops]` is route `teams:ops`).
    pub teams: BTreeMap<String, TeamsConfig>,
    pub email: Option<EmailConfig>,
    /// Endpoints that receive the audit trail's events, signed (Standard Webhooks).
    pub webhooks: Vec<WebhookConfig>,
    /// The first retry's delay; each later one doubles, with jitter, up to `retry_max`.
    #[serde(deserialize_with = "duration")]
    pub retry_base: Duration,
    #[serde(deserialize_with = "duration")]
    pub retry_max: Duration,
    /// How long one delivery may take before it counts as failed.
    #[serde(deserialize_with = "duration")]
    pub timeout: Duration,
}

impl Default for NotifyConfig {
    fn default() -> Self {
        Self {
            default: Vec::new(),
            slack: None,
            teams: BTreeMap::new(),
            email: None,
            webhooks: Vec::new(),
            retry_base: Duration::from_secs(1),
            retry_max: Duration::from_secs(300),
            timeout: Duration::from_secs(10),
        }
    }
}

/// The Slack app (`[notify.slack]`).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlackConfig {
    /// The bot token (`xoxb-…`): chat.postMessage, chat.update, views.open.
    pub bot_token: Secret,
    /// Verifies that interactions come from Slack.
    pub signing_secret: Secret,
    /// The Web API's base; tests point it at a local fake.
    #[serde(default = "slack_api_url")]
    pub api_url: String,
}

fn slack_api_url() -> String {
    "https://slack.com/api".into()
}

/// A Teams Workflows webhook (`[notify.teams.NAME]`). Its URL carries a signature, so it
/// is a secret.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct TeamsConfig {
    pub webhook_url: Secret,
}

/// Outgoing mail (`[notify.email]`).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmailConfig {
    /// `smtps://host:465` (TLS), `smtp://host:587?tls=required` (STARTTLS), or plain
    /// `smtp://` to this machine only; may carry `user:password@`, so it is a secret.
    pub smtp_url: Secret,
    /// `Signoff <signoff@example.com>`.
    pub from: String,
}

/// Agents' callbacks (`[callbacks]`).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CallbacksConfig {
    /// Hosts a `callback_url` may name; none, and requests with a callback are refused.
    /// A host listed here as an address (`127.0.0.1`) may resolve to a private range.
    pub allowed_hosts: Vec<String>,
    /// Signs callbacks (Standard Webhooks, `whsec_…`); a key is made in the data dir when
    /// absent.
    pub secret: Option<Secret>,
}

/// One webhook endpoint (`[[notify.webhooks]]`).
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// Names the endpoint in routes, logs and the delivery log; its cursor is kept by name.
    pub name: String,
    pub url: String,
    /// `whsec_` and the key in base64, as Standard Webhooks writes it.
    pub secret: Secret,
    /// The event kinds it receives (`request.created`, …); all when empty.
    #[serde(default)]
    pub events: Vec<String>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OidcConfig {
    pub issuer: Option<String>,
    pub client_id: Option<String>,
    pub client_secret: Option<Secret>,
    pub groups_claim: String,
    pub scopes: Vec<String>,
    /// Treat every email this provider sends as verified, for providers that only send
    /// verified addresses but omit the `email_verified` claim.
    pub emails_verified: bool,
}

/// A value that must never reach a log line.
#[derive(Clone, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 3000)),
            metrics_listen: None,
            public_url: None,
            database_url: None,
            data_dir: PathBuf::from("data"),
            request_ttl: Duration::from_secs(3600),
            default_approvals: 1,
            sweep_interval: Duration::from_secs(1),
            reviewer_groups: vec!["signoff-reviewers".into()],
            admin_groups: vec!["signoff-admins".into()],
            auditor_groups: vec!["signoff-auditors".into()],
            oidc: OidcConfig::default(),
            dev: false,
            trusted_proxies: Vec::new(),
            rate_limit_per_minute: 60,
            device_codes_per_minute: 10,
            max_waits_per_agent: 1_000,
            session_idle_timeout: Duration::from_secs(2 * 3600),
            session_lifetime: Duration::from_secs(12 * 3600),
            terminal_token_lifetime: Duration::from_secs(12 * 3600),
            device_poll_interval: Duration::from_secs(5),
            notify: NotifyConfig::default(),
            callbacks: CallbacksConfig::default(),
            audit: AuditConfig::default(),
        }
    }
}

impl Default for OidcConfig {
    fn default() -> Self {
        Self {
            issuer: None,
            client_id: None,
            client_secret: None,
            groups_claim: "groups".into(),
            scopes: vec!["openid".into(), "email".into(), "profile".into(), "groups".into()],
            emails_verified: false,
        }
    }
}

fn duration<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
    let text = String::deserialize(deserializer)?;
    humantime::parse_duration(&text).map_err(serde::de::Error::custom)
}

impl Config {
    /// Reads the optional TOML file, then applies the environment (as read by `env`).
    pub fn load(file: Option<&Path>, env: impl Fn(&str) -> Option<String>) -> Result<Self, Error> {
        let mut config = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|err| Error::Config(format!("cannot read {}: {err}", path.display())))?;
                if toml::from_str::<toml::Table>(&text).is_ok_and(|table| table.contains_key("dev")) {
                    return Err(Error::Config(format!(
                        "{}: development mode is turned on only by the --dev flag, never by a configuration file",
                        path.display()
                    )));
                }
                toml::from_str(&text).map_err(|err| Error::Config(format!("{}: {err}", path.display())))?
            }
            None => Config::default(),
        };
        config.apply_env(env)?;
        Ok(config)
    }

    fn apply_env(&mut self, env: impl Fn(&str) -> Option<String>) -> Result<(), Error> {
        let var = |name: &str| env(name).filter(|value| !value.trim().is_empty());
        if let Some(listen) = var("SIGNOFF_LISTEN") {
            self.listen = listen.parse().map_err(|_| {
                Error::Config(format!(
                    "SIGNOFF_LISTEN `{listen}` is not an address such as 127.0.0.1:3000"
                ))
            })?;
        }
        if let Some(listen) = var("SIGNOFF_METRICS_LISTEN") {
            self.metrics_listen = Some(listen.parse().map_err(|_| {
                Error::Config(format!(
                    "SIGNOFF_METRICS_LISTEN `{listen}` is not an address such as 127.0.0.1:9090"
                ))
            })?);
        }
        if let Some(url) = var("SIGNOFF_PUBLIC_URL") {
            self.public_url = Some(url);
        }
        if let Some(url) = var("DATABASE_URL") {
            self.database_url = Some(url);
        }
        if let Some(dir) = var("SIGNOFF_DATA_DIR") {
            self.data_dir = PathBuf::from(dir);
        }
        if let Some(ttl) = var("SIGNOFF_REQUEST_TTL") {
            self.request_ttl = parse_duration("SIGNOFF_REQUEST_TTL", &ttl)?;
        }
        if let Some(interval) = var("SIGNOFF_SWEEP_INTERVAL") {
            self.sweep_interval = parse_duration("SIGNOFF_SWEEP_INTERVAL", &interval)?;
        }
        if let Some(approvals) = var("SIGNOFF_DEFAULT_APPROVALS") {
            self.default_approvals = approvals
                .trim()
                .parse()
                .map_err(|_| Error::Config(format!("SIGNOFF_DEFAULT_APPROVALS `{approvals}` is not a whole number")))?;
        }
        if let Some(groups) = var("SIGNOFF_REVIEWER_GROUPS") {
            self.reviewer_groups = split_list(&groups);
        }
        if let Some(groups) = var("SIGNOFF_ADMIN_GROUPS") {
            self.admin_groups = split_list(&groups);
        }
        if let Some(groups) = var("SIGNOFF_AUDITOR_GROUPS") {
            self.auditor_groups = split_list(&groups);
        }
        if let Some(issuer) = var("SIGNOFF_OIDC_ISSUER") {
            self.oidc.issuer = Some(issuer);
        }
        if let Some(client_id) = var("SIGNOFF_OIDC_CLIENT_ID") {
            self.oidc.client_id = Some(client_id);
        }
        if let Some(secret) = var("SIGNOFF_OIDC_CLIENT_SECRET") {
            self.oidc.client_secret = Some(Secret(secret));
        }
        if let Some(claim) = var("SIGNOFF_OIDC_GROUPS_CLAIM") {
            self.oidc.groups_claim = claim;
        }
        if let Some(verified) = var("SIGNOFF_OIDC_EMAILS_VERIFIED") {
            self.oidc.emails_verified = parse_bool("SIGNOFF_OIDC_EMAILS_VERIFIED", &verified)?;
        }
        if let Some(proxies) = var("SIGNOFF_TRUSTED_PROXIES") {
            self.trusted_proxies = split_list(&proxies)
                .iter()
                .map(|proxy| parse_network(proxy))
                .collect::<Result<_, _>>()?;
        }
        if let Some(webhooks) = var("SIGNOFF_NOTIFY_WEBHOOKS") {
            self.notify.webhooks = serde_json::from_str(&webhooks).map_err(|err| {
                Error::Config(format!(
                    "SIGNOFF_NOTIFY_WEBHOOKS is not a JSON list of {{\"name\", \"url\", \"secret\", \"events\"}}: {err}"
                ))
            })?;
        }
        if let Some(routes) = var("SIGNOFF_NOTIFY_DEFAULT") {
            self.notify.default = split_list(&routes);
        }
        self.apply_slack_env(&var)?;
        if let Some(teams) = var("SIGNOFF_NOTIFY_TEAMS") {
            self.notify.teams = serde_json::from_str(&teams).map_err(|err| {
                Error::Config(format!(
                    "SIGNOFF_NOTIFY_TEAMS is not a JSON object of {{\"NAME\": {{\"webhook_url\": …}}}}: {err}"
                ))
            })?;
        }
        match (var("SIGNOFF_NOTIFY_EMAIL_SMTP_URL"), var("SIGNOFF_NOTIFY_EMAIL_FROM")) {
            (None, None) => {}
            (smtp_url, from) => {
                let current = self.notify.email.take();
                let smtp_url = smtp_url
                    .map(Secret)
                    .or(current.as_ref().map(|email| email.smtp_url.clone()));
                let from = from.or(current.map(|email| email.from));
                match (smtp_url, from) {
                    (Some(smtp_url), Some(from)) => self.notify.email = Some(EmailConfig { smtp_url, from }),
                    _ => {
                        return Err(Error::Config(
                            "e-mail needs both SIGNOFF_NOTIFY_EMAIL_SMTP_URL and SIGNOFF_NOTIFY_EMAIL_FROM".into(),
                        ));
                    }
                }
            }
        }
        if let Some(hosts) = var("SIGNOFF_CALLBACKS_ALLOWED_HOSTS") {
            self.callbacks.allowed_hosts = split_list(&hosts);
        }
        if let Some(secret) = var("SIGNOFF_CALLBACKS_SECRET") {
            self.callbacks.secret = Some(Secret(secret));
        }
        if let Some(origin) = var("SIGNOFF_AUDIT_ORIGIN") {
            self.audit.origin = Some(origin);
        }
        if let Some(path) = var("SIGNOFF_AUDIT_SIGNING_KEY") {
            self.audit.signing_key = Some(PathBuf::from(path));
        }
        if let Some(keys) = var("SIGNOFF_AUDIT_PREVIOUS_KEYS") {
            self.audit.previous_keys = split_list(&keys);
        }
        if let Some(every) = var("SIGNOFF_AUDIT_CHECKPOINT_EVERY") {
            self.audit.checkpoint_every = every.trim().parse().ok().filter(|every| *every > 0).ok_or_else(|| {
                Error::Config(format!(
                    "SIGNOFF_AUDIT_CHECKPOINT_EVERY `{every}` is not a positive whole number"
                ))
            })?;
        }
        if let Some(interval) = var("SIGNOFF_AUDIT_CHECKPOINT_INTERVAL") {
            self.audit.checkpoint_interval = parse_duration("SIGNOFF_AUDIT_CHECKPOINT_INTERVAL", &interval)?;
        }
        if let Some(window) = var("SIGNOFF_AUDIT_RECEIPT_WINDOW") {
            self.audit.receipt_window = parse_duration("SIGNOFF_AUDIT_RECEIPT_WINDOW", &window)?;
        }
        if let Some(base) = var("SIGNOFF_NOTIFY_RETRY_BASE") {
            self.notify.retry_base = parse_duration("SIGNOFF_NOTIFY_RETRY_BASE", &base)?;
        }
        if let Some(max) = var("SIGNOFF_NOTIFY_RETRY_MAX") {
            self.notify.retry_max = parse_duration("SIGNOFF_NOTIFY_RETRY_MAX", &max)?;
        }
        if let Some(timeout) = var("SIGNOFF_NOTIFY_TIMEOUT") {
            self.notify.timeout = parse_duration("SIGNOFF_NOTIFY_TIMEOUT", &timeout)?;
        }
        if let Some(rate) = var("SIGNOFF_RATE_LIMIT_PER_MINUTE") {
            self.rate_limit_per_minute = parse_number("SIGNOFF_RATE_LIMIT_PER_MINUTE", &rate)?;
        }
        if let Some(rate) = var("SIGNOFF_DEVICE_CODES_PER_MINUTE") {
            self.device_codes_per_minute = parse_number("SIGNOFF_DEVICE_CODES_PER_MINUTE", &rate)?;
        }
        if let Some(waits) = var("SIGNOFF_MAX_WAITS_PER_AGENT") {
            self.max_waits_per_agent = parse_number("SIGNOFF_MAX_WAITS_PER_AGENT", &waits)?;
        }
        Ok(())
    }

    /// `SIGNOFF_NOTIFY_SLACK_*`: each key alone overrides the file; a Slack app from the
    /// environment alone needs the token and the signing secret.
    fn apply_slack_env(&mut self, var: &impl Fn(&str) -> Option<String>) -> Result<(), Error> {
        let token = var("SIGNOFF_NOTIFY_SLACK_BOT_TOKEN");
        let signing = var("SIGNOFF_NOTIFY_SLACK_SIGNING_SECRET");
        let api_url = var("SIGNOFF_NOTIFY_SLACK_API_URL");
        if token.is_none() && signing.is_none() && api_url.is_none() {
            return Ok(());
        }
        let current = self.notify.slack.take();
        let bot_token = token
            .map(Secret)
            .or(current.as_ref().map(|slack| slack.bot_token.clone()));
        let signing_secret = signing
            .map(Secret)
            .or(current.as_ref().map(|slack| slack.signing_secret.clone()));
        let api_url = api_url
            .or(current.map(|slack| slack.api_url))
            .unwrap_or_else(slack_api_url);
        match (bot_token, signing_secret) {
            (Some(bot_token), Some(signing_secret)) => {
                self.notify.slack = Some(SlackConfig {
                    bot_token,
                    signing_secret,
                    api_url,
                });
                Ok(())
            }
            _ => Err(Error::Config(
                "Slack needs both SIGNOFF_NOTIFY_SLACK_BOT_TOKEN and SIGNOFF_NOTIFY_SLACK_SIGNING_SECRET".into(),
            )),
        }
    }

    /// Refuses configurations that cannot work, saying what to change.
    pub fn validate(&self) -> Result<(), Error> {
        if self.default_approvals == 0 {
            return Err(Error::Config("default_approvals must be at least 1".into()));
        }
        if self.request_ttl.is_zero() {
            return Err(Error::Config("request_ttl must be longer than zero".into()));
        }
        if self.rate_limit_per_minute == 0 || self.device_codes_per_minute == 0 || self.max_waits_per_agent == 0 {
            return Err(Error::Config(
                "rate_limit_per_minute, device_codes_per_minute and max_waits_per_agent must be at least 1".into(),
            ));
        }
        if let Some(metrics_listen) = self
            .metrics_listen
            .filter(|address| *address == self.listen && address.port() != 0)
        {
            return Err(Error::Config(format!(
                "metrics_listen {metrics_listen} is the main address; give metrics another port, or unset it \
                 to serve /metrics on the main address"
            )));
        }
        if self.dev {
            if self.oidc.issuer.is_some() {
                return Err(Error::Config(
                    "--dev offers a development sign-in and cannot run with an OpenID Provider configured; \
                     remove SIGNOFF_OIDC_ISSUER (or the [oidc] issuer) or drop --dev"
                        .into(),
                ));
            }
            if !self.listen.ip().is_loopback() {
                return Err(Error::Config(format!(
                    "--dev serves on 127.0.0.1 only; {} is not a loopback address",
                    self.listen
                )));
            }
            if let Some(metrics_listen) = self.metrics_listen.filter(|address| !address.ip().is_loopback()) {
                return Err(Error::Config(format!(
                    "--dev serves on 127.0.0.1 only; metrics_listen {metrics_listen} is not a loopback address"
                )));
            }
        } else if self.oidc.issuer.is_none() {
            return Err(Error::Config(
                "no OpenID Provider configured: set SIGNOFF_OIDC_ISSUER (and the client id and secret), or run with --dev".into(),
            ));
        }
        Ok(())
    }

    /// The URL users reach, without a trailing slash: the configured one, or the address
    /// actually bound (which may differ from `listen` when it asked for port 0).
    pub fn public_url_for(&self, bound: Option<SocketAddr>) -> String {
        match &self.public_url {
            Some(url) => url.trim_end_matches('/').to_string(),
            None => format!("http://{}", bound.unwrap_or(self.listen)),
        }
    }

    /// The database to use: the configured URL, or a SQLite file in the data dir.
    pub fn database_url(&self) -> String {
        match &self.database_url {
            Some(url) => url.clone(),
            None => format!("sqlite://{}", self.data_dir.join("signoff.db").display()),
        }
    }
}

fn parse_duration(name: &str, value: &str) -> Result<Duration, Error> {
    humantime::parse_duration(value.trim())
        .map_err(|err| Error::Config(format!("{name} `{value}` is not a duration such as 1h or 90s: {err}")))
}

fn parse_number<T: std::str::FromStr>(name: &str, value: &str) -> Result<T, Error> {
    value
        .trim()
        .parse()
        .map_err(|_| Error::Config(format!("{name} `{value}` is not a whole number")))
}

fn parse_bool(name: &str, value: &str) -> Result<bool, Error> {
    match value.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" => Ok(true),
        "0" | "false" | "no" => Ok(false),
        _ => Err(Error::Config(format!("{name} `{value}` is not true or false"))),
    }
}

/// An address (`10.0.0.7`) or a range (`10.0.0.0/8`).
fn parse_network(text: &str) -> Result<ipnet::IpNet, Error> {
    text.parse::<ipnet::IpNet>()
        .or_else(|_| text.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
        .map_err(|_| {
            Error::Config(format!(
                "SIGNOFF_TRUSTED_PROXIES: `{text}` is not an address or a CIDR range such as 10.0.0.0/8"
            ))
        })
}

fn split_list(value: &str) -> Vec<String> {
    value
        .split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(String::from)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        move |name| map.get(name).cloned()
    }

    #[test]
    fn environment_wins_over_the_file() {
        let dir = std::env::temp_dir().join(format!("signoff-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let file = dir.join("signoff.toml");
        std::fs::write(
            &file,
            "request_ttl = \"2h\"\ndefault_approvals = 3\n[oidc]\nissuer = \"https://file.example\"\n",
        )
        .expect("write config");
        let config = Config::load(
            Some(&file),
            env(&[
                ("SIGNOFF_DEFAULT_APPROVALS", "2"),
                ("SIGNOFF_REVIEWER_GROUPS", "a, b,,c"),
                ("SIGNOFF_OIDC_CLIENT_SECRET", "hunter2"),
            ]),
        )
        .expect("config loads");
        assert_eq!(config.request_ttl, Duration::from_secs(7200));
        assert_eq!(config.default_approvals, 2);
        assert_eq!(config.reviewer_groups, vec!["a", "b", "c"]);
        assert_eq!(config.oidc.issuer.as_deref(), Some("https://file.example"));
        assert!(
            !format!("{config:?}").contains("hunter2"),
            "secrets never reach Debug output"
        );
        config.validate().expect("valid");
    }

    #[test]
    fn bad_values_are_refused_with_the_variable_named() {
        let err = Config::load(None, env(&[("SIGNOFF_REQUEST_TTL", "soon")])).expect_err("bad ttl");
        assert!(err.to_string().contains("SIGNOFF_REQUEST_TTL"));
        let no_issuer = Config::load(None, env(&[])).expect("loads");
        assert!(
            no_issuer
                .validate()
                .expect_err("needs issuer")
                .to_string()
                .contains("SIGNOFF_OIDC_ISSUER")
        );
        let mut dev_public = Config::load(None, env(&[("SIGNOFF_LISTEN", "0.0.0.0:3000")])).expect("loads");
        dev_public.dev = true;
        assert!(dev_public.validate().is_err());
        let proxies =
            Config::load(None, env(&[("SIGNOFF_TRUSTED_PROXIES", "10.0.0.0/8, 192.168.1.7")])).expect("loads");
        assert_eq!(proxies.trusted_proxies.len(), 2);
        assert!(Config::load(None, env(&[("SIGNOFF_TRUSTED_PROXIES", "proxy.local")])).is_err());
    }

    #[test]
    fn development_mode_comes_only_from_the_flag_and_never_with_a_provider() {
        let dir = std::env::temp_dir().join(format!("signoff-config-dev-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let file = dir.join("signoff.toml");
        std::fs::write(&file, "dev = true\n").expect("write config");
        let err = Config::load(Some(&file), env(&[])).expect_err("a file cannot turn on dev mode");
        assert!(err.to_string().contains("--dev"), "{err}");

        let mut with_provider =
            Config::load(None, env(&[("SIGNOFF_OIDC_ISSUER", "https://sso.example.com")])).expect("loads");
        with_provider.dev = true;
        let err = with_provider.validate().expect_err("dev and a provider do not mix");
        assert!(err.to_string().contains("--dev"), "{err}");
    }
}
