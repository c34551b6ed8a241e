//! Who is asking (the client's address, as seen through trusted proxies) and how often
//! they may: per-address rate limits on the endpoints anyone can call without signing in.

use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{ConnectInfo, FromRef, FromRequestParts};
use axum::http::HeaderMap;
use axum::http::request::Parts;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use ipnet::IpNet;

use crate::{Config, Error};

/// What an anonymous call is for; each has its own allowance per address.
#[derive(Clone, Copy, Debug)]
pub enum Bucket {
    /// `/auth/login`: each start writes a session.
    SignIn,
    /// `POST /api/v1/device/code`: each writes a code someone may be lured to confirm.
    DeviceCode,
    /// `POST /api/v1/device/token`.
    DevicePoll,
    /// The log's public evidence: keys, checkpoint, proofs (each proof reads the store).
    Evidence,
}

pub struct Throttle {
    trusted_proxies: Vec<IpNet>,
    sign_in: DefaultKeyedRateLimiter<IpAddr>,
    device_code: DefaultKeyedRateLimiter<IpAddr>,
    device_poll: DefaultKeyedRateLimiter<IpAddr>,
    evidence: DefaultKeyedRateLimiter<IpAddr>,
}

fn per_minute(count: u32) -> Quota {
    Quota::per_minute(NonZeroU32::new(count).unwrap_or(NonZeroU32::MIN))
}

impl Throttle {
    pub fn new(config: &Config) -> Throttle {
        Throttle {
            trusted_proxies: config.trusted_proxies.clone(),
            sign_in: RateLimiter::keyed(per_minute(config.rate_limit_per_minute)),
            device_code: RateLimiter::keyed(per_minute(config.device_codes_per_minute)),
            device_poll: RateLimiter::keyed(per_minute(config.rate_limit_per_minute)),
            evidence: RateLimiter::keyed(per_minute(config.rate_limit_per_minute)),
        }
    }

    /// Counts one call from `client`; refused with 429 (and when to retry) past the limit.
    pub fn check(&self, bucket: Bucket, client: IpAddr) -> Result<(), Error> {
        let limiter = match bucket {
            Bucket::SignIn => &self.sign_in,
            Bucket::DeviceCode => &self.device_code,
            Bucket::DevicePoll => &self.device_poll,
            Bucket::Evidence => &self.evidence,
        };
        limiter.check_key(&rate_key(client)).map_err(|not_until| {
            let retry_after_s = not_until.wait_time_from(DefaultClock::default().now()).as_secs() + 1;
            tracing::warn!(%client, ?bucket, "rate limited");
            Error::TooManyRequests {
                message: format!("too many requests from your address; try again in {retry_after_s} s"),
                retry_after_s,
            }
        })
    }

    /// Forgets addresses whose allowance is full again, so the limiters' memory stays
    /// proportional to recent callers.
    pub fn forget_idle(&self) {
        for limiter in [&self.sign_in, &self.device_code, &self.device_poll, &self.evidence] {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
    }

    /// Runs [`Throttle::forget_idle`] every minute for as long as the server runs.
    pub fn spawn_cleanup(throttle: std::sync::Arc<Throttle>, mut shutdown: tokio::sync::watch::Receiver<bool>) {
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(Duration::from_secs(60));
            loop {
                tokio::select! {
                    _ = ticker.tick() => throttle.forget_idle(),
                    _ = shutdown.changed() => return,
                }
            }
        });
    }

    /// The client's address: the peer's, unless the peer is a trusted proxy; then the
    /// nearest address in `X-Forwarded-For` that is not a trusted proxy (entries further
    /// left could have been written by the client itself).
    pub fn client_address(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        client_address(peer, headers, &self.trusted_proxies)
    }
}

fn client_address(peer: IpAddr, headers: &HeaderMap, trusted: &[IpNet]) -> IpAddr {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(&peer) {
        return peer;
    }
    let forwarded = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .collect::<Vec<_>>();
    let mut client = peer;
    for entry in forwarded.iter().rev() {
        match entry.parse::<IpAddr>() {
            Ok(ip) if is_trusted(&ip) => client = ip,
            Ok(ip) => return ip,
            // A malformed hop: the last address we could vouch for is the answer.
            Err(_) => return client,
        }
    }
    client
}

/// What a limit counts: an IPv4 address, or an IPv6 address's /64. One IPv6 host is
/// usually given a whole /64, so counting full addresses would let it pick a fresh one
/// for every call.
fn rate_key(client: IpAddr) -> IpAddr {
    match client {
        IpAddr::V4(_) => client,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(std::net::Ipv6Addr::from(u128::from(v6) & !u128::from(u64::MAX))),
        },
    }
}

/// The calling client's address (see [`Throttle::client_address`]).
pub struct ClientAddress(pub IpAddr);

/// For any router state that holds the throttle, so this module need not know the doors'
/// state.
impl<S> FromRequestParts<S> for ClientAddress
where
    S: Send + Sync,
    Arc<Throttle>: FromRef<S>,
{
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let throttle = Arc::<Throttle>::from_ref(state);
        let ConnectInfo(peer) = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .cloned()
            .ok_or_else(|| Error::Internal("the server was started without peer addresses".into()))?;
        Ok(ClientAddress(throttle.client_address(peer.ip(), &parts.headers)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(forwarded: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert("x-forwarded-for", HeaderValue::from_str(forwarded).expect("header"));
        headers
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("address")
    }

    #[test]
    fn forwarded_addresses_count_only_through_trusted_proxies() {
        let trusted: Vec<IpNet> = vec!["10.0.0.0/8".parse().expect("net")];
        // A client talking to us directly cannot claim another address.
        assert_eq!(
            client_address(ip("203.0.113.9"), &headers("198.51.100.1"), &trusted),
            ip("203.0.113.9")
        );
        // Through our proxy: the address the proxy saw, not what the client wrote.
        assert_eq!(
            client_address(ip("10.0.0.2"), &headers("1.2.3.4, 203.0.113.9"), &trusted),
            ip("203.0.113.9")
        );
        // Through two proxies of ours.
        assert_eq!(
            client_address(ip("10.0.0.2"), &headers("203.0.113.9, 10.0.0.3"), &trusted),
            ip("203.0.113.9")
        );
        assert_eq!(
            client_address(ip("10.0.0.2"), &headers("garbage, 10.0.0.3"), &trusted),
            ip("10.0.0.3")
        );
        assert_eq!(
            client_address(ip("10.0.0.2"), &HeaderMap::new(), &trusted),
            ip("10.0.0.2")
        );
        assert_eq!(
            client_address(ip("10.0.0.2"), &headers("203.0.113.9"), &[]),
            ip("10.0.0.2")
        );
    }

    #[test]
    fn past_the_allowance_calls_are_refused_with_a_retry_time() {
        let config = Config {
            device_codes_per_minute: 3,
            ..Config::default()
        };
        let throttle = Throttle::new(&config);
        let client = ip("203.0.113.9");
        for _ in 0..3 {
            throttle
                .check(Bucket::DeviceCode, client)
                .expect("within the allowance");
        }
        let refused = throttle.check(Bucket::DeviceCode, client).expect_err("over it");
        assert!(matches!(refused, Error::TooManyRequests { retry_after_s, .. } if (1..=21).contains(&retry_after_s)));
        throttle
            .check(Bucket::DeviceCode, ip("203.0.113.10"))
            .expect("another address has its own allowance");
        throttle
            .check(Bucket::SignIn, client)
            .expect("another bucket has its own allowance");
    }

    #[test]
    fn an_ipv6_host_counts_as_its_slash_64() {
        let config = Config {
            device_codes_per_minute: 2,
            ..Config::default()
        };
        let throttle = Throttle::new(&config);
        for host in ["2001:db8:1:2::1", "2001:db8:1:2::2"] {
            throttle
                .check(Bucket::DeviceCode, ip(host))
                .expect("within the allowance");
        }
        // A third address of the same /64 is the same client.
        throttle
            .check(Bucket::DeviceCode, ip("2001:db8:1:2:ffff::9"))
            .expect_err("the /64's allowance is spent");
        throttle
            .check(Bucket::DeviceCode, ip("2001:db8:1:3::1"))
            .expect("another /64 has its own");
        // An IPv4 address written as IPv6 is that IPv4 address.
        assert_eq!(rate_key(ip("::ffff:203.0.113.9")), ip("203.0.113.9"));
    }
}
