//! Agents' callbacks: a request may name a `callback_url`, and its outcome (approved,
//! denied, expired, cancelled) is POSTed there, signed per Standard Webhooks, so an agent
//! that cannot hold a connection can stop and resume. Where a callback may go is the
//! operator's list (`[callbacks] allowed_hosts`); an address in loopback, private,
//! link-local or shared ranges is refused unless listed as that literal address, and a
//! cloud metadata address always. The address is checked when the request is submitted and
//! again at each delivery, and the connection goes to the address checked, so a name that
//! resolves elsewhere later (DNS rebinding) reaches nothing it should not (see
//! ARCHITECTURE.md, "Notifications").

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::Path;
use std::time::Duration;

use base64::Engine;
use rand::Rng;
use reqwest::Url;

use signoff_app::Kind;

use super::Reading;
use super::reader::{Sent, Sink, TrailEvent, answered};
use crate::config::CallbacksConfig;
use crate::store::AuditEvent;
use crate::{Error, Result};

/// How long resolving a callback's host may take.
const RESOLVE_TIME: Duration = Duration::from_secs(3);
/// The longest callback URL taken.
pub const URL_CHARS: usize = 2048;

/// Where callbacks may go.
#[derive(Clone, Debug, Default)]
pub struct CallbackRules {
    /// Lowercase hosts (names or literal addresses).
    allowed: Vec<String>,
}

impl CallbackRules {
    pub fn from_config(config: &CallbacksConfig) -> CallbackRules {
        CallbackRules {
            allowed: config
                .allowed_hosts
                .iter()
                .map(|host| {
                    host.trim()
                        .trim_start_matches('[')
                        .trim_end_matches(']')
                        .to_ascii_lowercase()
                })
                .filter(|host| !host.is_empty())
                .collect(),
        }
    }

    fn lists(&self, host: &str) -> bool {
        self.allowed.iter().any(|allowed| allowed == host)
    }

    /// The URL, if its form and host are allowed: https (plain http only to a listed
    /// loopback address), no credentials, a listed host.
    pub fn check_url(&self, text: &str) -> std::result::Result<Url, String> {
        if self.allowed.is_empty() {
            return Err("this server takes no callbacks (its operator lists none in [callbacks] allowed_hosts)".into());
        }
        if text.len() > URL_CHARS {
            return Err(format!("at most {URL_CHARS} characters"));
        }
        let url = Url::parse(text.trim()).map_err(|err| format!("not a URL ({err})"))?;
        if !url.username().is_empty() || url.password().is_some() {
            return Err("a callback URL may not carry credentials".into());
        }
        let host = host_of(&url).ok_or("a callback URL needs a host")?;
        if !self.lists(&host) {
            return Err(format!("`{host}` is not on this server's list of callback hosts"));
        }
        match url.scheme() {
            "https" => Ok(url),
            "http" if host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback()) => Ok(url),
            _ => Err("a callback URL must be https".into()),
        }
    }

    /// Refuses addresses a callback must never reach: metadata services always; loopback,
    /// private, link-local, shared and other special ranges unless the host is that very
    /// address, listed by the operator.
    pub fn check_addresses(&self, host: &str, addresses: &[IpAddr]) -> std::result::Result<(), String> {
        if addresses.is_empty() {
            return Err(format!("`{host}` resolves to no address"));
        }
        for address in addresses {
            let address = unmapped(*address);
            if is_metadata(address) {
                return Err(format!("`{host}` resolves to {address}, a cloud metadata address"));
            }
            let listed_literally = host.parse::<IpAddr>().is_ok_and(|literal| unmapped(literal) == address);
            if is_internal(address) && !listed_literally {
                return Err(format!(
                    "`{host}` resolves to {address}, an internal address (list that address itself to allow it)"
                ));
            }
        }
        Ok(())
    }

    /// Checks the URL, resolves its host (within [`RESOLVE_TIME`]) and checks every
    /// address; answers the URL and the address to connect to.
    pub async fn resolve(&self, text: &str) -> std::result::Result<(Url, SocketAddr), String> {
        let url = self.check_url(text)?;
        let host = host_of(&url).ok_or("a callback URL needs a host")?;
        let port = url.port_or_known_default().unwrap_or(443);
        let addresses: Vec<SocketAddr> = match host.parse::<IpAddr>() {
            Ok(ip) => vec![SocketAddr::new(ip, port)],
            Err(_) => tokio::time::timeout(RESOLVE_TIME, tokio::net::lookup_host((host.as_str(), port)))
                .await
                .map_err(|_| format!("resolving `{host}` took too long"))?
                .map_err(|err| format!("`{host}` does not resolve ({err})"))?
                .collect(),
        };
        let ips: Vec<IpAddr> = addresses.iter().map(SocketAddr::ip).collect();
        self.check_addresses(&host, &ips)?;
        let first = addresses
            .first()
            .copied()
            .ok_or_else(|| format!("`{host}` resolves to no address"))?;
        Ok((url, first))
    }
}

fn host_of(url: &Url) -> Option<String> {
    url.host_str()
        .map(|host| host.trim_start_matches('[').trim_end_matches(']').to_ascii_lowercase())
        .filter(|host| !host.is_empty())
}

/// An IPv4-mapped IPv6 address as the IPv4 address it is.
fn unmapped(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(address, IpAddr::V4),
        v4 => v4,
    }
}

fn is_metadata(address: IpAddr) -> bool {
    const AWS_V6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254);
    match address {
        IpAddr::V4(v4) => v4 == Ipv4Addr::new(169, 254, 169, 254) || v4 == Ipv4Addr::new(100, 100, 100, 200),
        IpAddr::V6(v6) => v6 == AWS_V6,
    }
}

fn is_internal(address: IpAddr) -> bool {
    match address {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || a == 0
                || (a == 100 && (64..128).contains(&b)) // shared address space (CGNAT)
                || (a == 198 && (b == 18 || b == 19)) // benchmarking
                || a >= 240
        }
        IpAddr::V6(v6) => {
            let first = v6.segments()[0];
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00 // unique local
                || (first & 0xffc0) == 0xfe80 // link-local
        }
    }
}

/// The callbacks' signing secret: the configured one, or one made at first start in the
/// data dir (`callbacks.key`, readable by the server's user only).
pub fn secret(config: &CallbacksConfig, data_dir: &Path) -> Result<String> {
    if let Some(secret) = &config.secret {
        return Ok(secret.expose().trim().to_string());
    }
    let path = data_dir.join("callbacks.key");
    if let Ok(text) = std::fs::read_to_string(&path) {
        return Ok(text.trim().to_string());
    }
    let made = format!(
        "whsec_{}",
        base64::engine::general_purpose::STANDARD.encode(rand::rng().random::<[u8; 32]>())
    );
    std::fs::create_dir_all(data_dir)
        .map_err(|err| Error::Config(format!("cannot create {}: {err}", data_dir.display())))?;
    crate::keys::write_private(&path, &made)
        .map_err(|err| Error::Config(format!("cannot write {}: {err}", path.display())))?;
    Ok(made)
}

/// The callbacks channel.
pub struct Callbacks {
    rules: CallbackRules,
    signer: standardwebhooks::Webhook,
    timeout: Duration,
    reading: Reading,
}

impl Callbacks {
    pub fn new(rules: CallbackRules, secret: &str, timeout: Duration, reading: Reading) -> Result<Callbacks> {
        let signer = standardwebhooks::Webhook::new(secret)
            .map_err(|_| Error::Config("callbacks.secret must be `whsec_` followed by base64".into()))?;
        Ok(Callbacks {
            rules,
            signer,
            timeout,
            reading,
        })
    }

    async fn post(&self, url: Url, address: SocketAddr, id: &str, body: &str) -> Sent {
        let Some(host) = url.host_str().map(str::to_string) else {
            return Sent::GaveUp("a callback URL needs a host".into());
        };
        // Connect to the address just checked, whatever the name resolves to now.
        let client = match reqwest::Client::builder()
            .timeout(self.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .resolve(&host, address)
            .user_agent(concat!("Signoff-Callbacks/", env!("CARGO_PKG_VERSION")))
            .build()
        {
            Ok(client) => client,
            Err(err) => return Sent::Retry(format!("callback client: {err}")),
        };
        match super::webhook::signed(client.post(url), &self.signer, id, body) {
            Ok(post) => answered(post.send().await).await,
            Err(error) => Sent::GaveUp(error),
        }
    }
}

#[async_trait::async_trait]
impl Sink for Callbacks {
    fn name(&self) -> &str {
        "callbacks:"
    }

    fn describe(&self) -> String {
        format!(
            "agents' callbacks, signed, to {} (outcomes: approved, denied, expired, cancelled)",
            self.rules.allowed.join(", ")
        )
    }

    fn wants(&self, event: &AuditEvent) -> bool {
        matches!(
            Kind::parse(&event.kind),
            Some(Kind::RequestApproved | Kind::RequestDenied | Kind::RequestExpired | Kind::RequestCancelled)
        )
    }

    async fn deliver(&self, event: &TrailEvent) -> Sent {
        let request = match self.reading.request(event).await {
            Ok(request) => request,
            Err(sent) => return sent,
        };
        let Some(callback) = request.callback_url.as_deref() else {
            return Sent::NothingToSend;
        };
        let (url, address) = match self.rules.resolve(callback).await {
            Ok(checked) => checked,
            // The list may have changed since submission: refused for good, not retried.
            Err(why) => return Sent::GaveUp(format!("callback refused: {why}")),
        };
        let body = match event.published() {
            Ok(body) => body,
            Err(err) => return Sent::GaveUp(format!("the event cannot be published: {err}")),
        };
        self.post(url, address, &super::webhook::message_id(event.seq), body)
            .await
    }

    async fn test(&self) -> std::result::Result<(), String> {
        Err("callbacks go to the URL each request names; submit a request with a callback_url to try one".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(hosts: &[&str]) -> CallbackRules {
        CallbackRules::from_config(&CallbacksConfig {
            allowed_hosts: hosts.iter().map(|host| host.to_string()).collect(),
            secret: None,
        })
    }

    #[test]
    fn urls_must_be_https_listed_and_without_credentials() {
        let rules = rules(&["ci.example.com", "127.0.0.1"]);
        assert!(rules.check_url("https://ci.example.com/hooks/1").is_ok());
        assert!(
            rules.check_url("https://CI.example.com/x").is_ok(),
            "hosts compare without case"
        );
        assert!(
            rules.check_url("http://127.0.0.1:8080/cb").is_ok(),
            "plain http only to a listed loopback"
        );
        for refused in [
            "http://ci.example.com/x",
            "https://evil.example.com/x",
            "https://user:pw@ci.example.com/x",
            "ftp://ci.example.com/x",
            "not a url",
        ] {
            assert!(rules.check_url(refused).is_err(), "{refused}");
        }
        assert!(
            CallbackRules::default().check_url("https://ci.example.com").is_err(),
            "no list, no callbacks"
        );
    }

    #[test]
    fn internal_and_metadata_addresses_are_refused_unless_listed_literally() {
        let rules = rules(&["ci.example.com", "10.0.0.7", "169.254.169.254"]);
        let ip = |text: &str| text.parse::<IpAddr>().expect("address");
        assert!(
            rules
                .check_addresses("ci.example.com", &[ip("203.0.113.10").to_canonical()])
                .is_err(),
            "documentation range"
        );
        assert!(rules.check_addresses("ci.example.com", &[ip("93.184.215.14")]).is_ok());
        for internal in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.1.1",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fd12::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.7",
        ] {
            assert!(
                rules.check_addresses("ci.example.com", &[ip(internal)]).is_err(),
                "{internal}"
            );
        }
        assert!(
            rules.check_addresses("10.0.0.7", &[ip("10.0.0.7")]).is_ok(),
            "the operator listed it"
        );
        assert!(
            rules
                .check_addresses("169.254.169.254", &[ip("169.254.169.254")])
                .is_err(),
            "metadata, always"
        );
        assert!(rules.check_addresses("ci.example.com", &[ip("fd00:ec2::254")]).is_err());
        assert!(
            rules
                .check_addresses("ci.example.com", &[ip("93.184.215.14"), ip("10.0.0.7")])
                .is_err(),
            "any address internal refuses the name"
        );
    }
}
