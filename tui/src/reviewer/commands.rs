//! The reviewer's subcommands: the interactive client, signing in and out, and the
//! scripting commands (`list`, `show`, `approve`, `deny`). Output for people goes to
//! standard output, problems to standard error; the returned exit code is what scripts see.

use std::io::Write;
use std::time::{Duration, Instant};

use clap::Args;
use signoff_app::timefmt::{Style, span, time_left};
use signoff_app::wire::{RequestSummary, ReviewView};
use signoff_app::{RequestId, Status, Verdict};
use time::OffsetDateTime;

use crate::config::{self, Credentials, Target};
use crate::error::{ClientError, exit};
use crate::reviewer::client::{Client, DevicePoll, ListQuery, ListStatus, PAGE_LIMIT};
use crate::reviewer::detail::{self, digest_prefix};
use crate::reviewer::runtime;
use crate::reviewer::theme::Theme;
use crate::text::{fit, fit_right, sanitize, timestamp};

/// `signoff list`'s options.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// Print JSON (an array of requests) instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Decided requests, newest first, instead of the queue.
    #[arg(long)]
    pub history: bool,
    /// Only requests that need my vote.
    #[arg(long)]
    pub mine: bool,
    /// Only this action, e.g. db.export.
    #[arg(long)]
    pub action: Option<String>,
    /// Only this agent.
    #[arg(long)]
    pub agent: Option<String>,
    /// At most this many requests.
    #[arg(long, default_value_t = 500)]
    pub limit: usize,
}

/// `signoff`: the interactive queue, until the reviewer quits.
pub async fn interactive(server: Option<&str>) -> Result<u8, ClientError> {
    let client = signed_in_client(&config::current_target(server)?)?;
    runtime::run(client, Theme::from_env()).await?;
    Ok(exit::OK)
}

/// `signoff list`: the queue, or the history, as a table or JSON.
pub async fn list(server: Option<&str>, args: ListArgs) -> Result<u8, ClientError> {
    let client = signed_in_client(&config::current_target(server)?)?;
    let query = ListQuery {
        status: if args.history {
            ListStatus::Decided
        } else {
            ListStatus::Pending
        },
        needs_my_vote: args.mine,
        action: args.action,
        agent: args.agent,
        limit: PAGE_LIMIT.min(args.limit.max(1) as u32),
        cursor: None,
    };
    let mut items = Vec::new();
    client
        .list_all(&query, args.limit, |page, _| items.extend(page))
        .await?;
    items.truncate(args.limit);
    if args.json {
        print_json(&items)?;
    } else {
        print_list(&items, args.history);
    }
    Ok(exit::OK)
}

/// `signoff show`: one request as the detail screen reads, in plain text, or as JSON.
pub async fn show(server: Option<&str>, id: &str, json: bool) -> Result<u8, ClientError> {
    let client = signed_in_client(&config::current_target(server)?)?;
    let review = client.get(parse_id(id)?).await?;
    if json {
        print_json(&review)?;
    } else {
        print!("{}", detail::document(&review, 100, &Theme::MONO).plain());
    }
    Ok(exit::OK)
}

/// `signoff approve`.
pub async fn approve(
    server: Option<&str>,
    id: &str,
    comment: Option<String>,
    digest: Option<&str>,
) -> Result<u8, ClientError> {
    decide(server, id, Verdict::Approve, &comment.unwrap_or_default(), digest).await
}

/// `signoff deny`: a deny needs a comment saying why.
pub async fn deny(server: Option<&str>, id: &str, comment: &str, digest: Option<&str>) -> Result<u8, ClientError> {
    if comment.trim().is_empty() {
        return Err(ClientError::Usage(
            "a deny needs a comment: signoff deny ID -m \"why\"".into(),
        ));
    }
    decide(server, id, Verdict::Deny, comment, digest).await
}

fn signed_in_client(target: &Target) -> Result<Client, ClientError> {
    if target.token.is_none() {
        return Err(ClientError::NotSignedIn {
            server: target.server.clone(),
        });
    }
    Client::new(&target.server, target.token.clone())
}

fn parse_id(id: &str) -> Result<RequestId, ClientError> {
    id.trim().parse().map_err(|e| ClientError::Usage(format!("{e}")))
}

fn print_json<T: serde::Serialize>(value: &T) -> Result<(), ClientError> {
    let text =
        serde_json::to_string_pretty(value).map_err(|e| ClientError::Local(format!("cannot encode JSON: {e}")))?;
    println!("{text}");
    Ok(())
}

fn print_list(items: &[RequestSummary], history: bool) {
    let now = OffsetDateTime::now_utc();
    let mut out = std::io::stdout().lock();
    if history {
        let _ = writeln!(
            out,
            "{} {} {} {} TITLE",
            fit("ID", 36),
            fit("STATUS", 9),
            fit_right("WHEN", 5),
            fit("ACTION", 20)
        );
    } else {
        let _ = writeln!(
            out,
            "{} {} {} {} {} TITLE",
            fit("ID", 36),
            fit_right("AGE", 5),
            fit_right("LEFT", 7),
            fit_right("APPR", 5),
            fit("ACTION", 20)
        );
    }
    for item in items {
        let title = sanitize(&item.title, false);
        let action = fit(&sanitize(&item.action, false), 20);
        let line = if history {
            let when = item
                .decided_at
                .map(|at| span(now - at, Style::Compact))
                .unwrap_or_else(|| "-".into());
            format!(
                "{} {} {} {action} {title}",
                item.id,
                fit(item.status.as_str(), 9),
                fit_right(&when, 5)
            )
        } else {
            format!(
                "{} {} {} {} {action} {title}",
                item.id,
                fit_right(&span(now - item.created_at, Style::Compact), 5),
                fit_right(&time_left(now, item.expires_at, Style::Compact), 7),
                fit_right(&format!("{}/{}", item.approvals, item.approvals_required), 5),
            )
        };
        if writeln!(out, "{line}").is_err() {
            break; // e.g. piped into `head`
        }
    }
}

async fn decide(
    server: Option<&str>,
    id: &str,
    verdict: Verdict,
    comment: &str,
    expected_digest: Option<&str>,
) -> Result<u8, ClientError> {
    let id = parse_id(id)?;
    let client = signed_in_client(&config::current_target(server)?)?;
    if let Some(expected) = expected_digest {
        let review = client.get(id).await?;
        let expected = expected.trim().to_ascii_lowercase();
        if expected.is_empty() || !review.request.digest.starts_with(&expected) {
            return Err(ClientError::Refused {
                status: 0,
                code: "digest_mismatch".into(),
                message: format!(
                    "the request's digest is {}…, not {expected}: it is not what you reviewed",
                    digest_prefix(&review.request.digest)
                ),
            });
        }
    }
    let review = client.decide(id, verdict, comment).await?;
    println!("{}", decision_summary(&review, verdict));
    Ok(exit::OK)
}

/// One line saying what the decision did.
fn decision_summary(review: &ReviewView, verdict: Verdict) -> String {
    let request = &review.request;
    let done = match verdict {
        Verdict::Approve => "Approved",
        Verdict::Deny => "Denied",
    };
    let state = match request.status {
        Status::Pending => format!(
            "{} of {} approvals, still pending",
            request.approvals, request.policy.approvals_required
        ),
        status => format!("now {status}"),
    };
    format!(
        "{done} “{}” ({}): {state}; digest {}…",
        sanitize(&request.title, false),
        request.id,
        digest_prefix(&request.digest)
    )
}

fn host_name() -> String {
    ["/proc/sys/kernel/hostname", "/etc/hostname"]
        .iter()
        .find_map(|path| std::fs::read_to_string(path).ok())
        .map(|name| name.trim().to_string())
        .filter(|name| !name.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "terminal".into())
}

/// `signoff login`: the device flow, then the token stored privately.
pub async fn login(server: Option<&str>) -> Result<u8, ClientError> {
    let path = config::credentials_path()?;
    // A broken credentials file must not stand in the way of signing in again.
    let stored = config::load_credentials(&path).ok().flatten();
    let server = server
        .map(config::normalize_server)
        .filter(|server| !server.is_empty())
        .or_else(|| stored.map(|stored| config::normalize_server(&stored.server)))
        .ok_or_else(|| ClientError::Usage("which server? signoff login --server URL".into()))?;
    if !(server.starts_with("https://") || server.starts_with("http://")) {
        return Err(ClientError::Usage(format!(
            "--server must be an http:// or https:// URL, not `{server}`"
        )));
    }
    let client = Client::new(&server, None)?;
    let code = client.device_code(&host_name()).await?;
    println!("To sign in to {server}, open this address in a browser and type the code:");
    println!("Open: {}", sanitize(&code.verification_uri, false));
    println!("Code: {}", sanitize(&code.user_code, false));
    println!(
        "Waiting for confirmation (the code expires in {})…",
        span(time::Duration::seconds(code.expires_in as i64), Style::Compact)
    );
    let _ = std::io::stdout().flush();

    let deadline = Instant::now() + Duration::from_secs(code.expires_in.max(1));
    let mut interval = Duration::from_secs(code.interval.max(1));
    let token = loop {
        tokio::time::sleep(interval).await;
        if Instant::now() >= deadline {
            return Err(ClientError::SignInFailed(
                "the code expired before it was confirmed; run `signoff login` again".into(),
            ));
        }
        match client.device_token(&code.device_code).await {
            Ok(DevicePoll::Granted(token)) => break token,
            Ok(DevicePoll::Pending) => {}
            Ok(DevicePoll::SlowDown) => interval += Duration::from_secs(5),
            Ok(DevicePoll::Failed(refusal)) => {
                let why = match refusal.error.as_str() {
                    "expired_token" => {
                        "the code expired before it was confirmed; run `signoff login` again".to_string()
                    }
                    "access_denied" => "the sign-in was denied in the browser".to_string(),
                    "invalid_grant" => "the server no longer accepts this code; run `signoff login` again".to_string(),
                    other => format!(
                        "{other}{}",
                        refusal
                            .error_description
                            .map(|d| format!(": {}", sanitize(&d, false)))
                            .unwrap_or_default()
                    ),
                };
                return Err(ClientError::SignInFailed(why));
            }
            // A blip while waiting is no reason to give up; the deadline still holds.
            Err(error @ (ClientError::Unreachable { .. } | ClientError::Protocol(_))) => {
                tracing::warn!(%error, "polling for the device token failed; retrying");
            }
            Err(error) => return Err(error),
        }
    };

    let credentials = Credentials {
        server: server.clone(),
        token: token.access_token,
        expires_at: Some(OffsetDateTime::now_utc() + time::Duration::seconds(token.expires_in as i64)),
    };
    config::save_credentials(&path, &credentials)?;
    let client = Client::new(&server, Some(credentials.token.clone()))?;
    match client.me().await {
        Ok(me) => println!(
            "Signed in to {server} as {}.",
            sanitize(me.identity.display_name(), false)
        ),
        Err(_) => println!("Signed in to {server}."),
    }
    Ok(exit::OK)
}

/// `signoff logout`: the token revoked on the server and forgotten here.
pub async fn logout() -> Result<u8, ClientError> {
    let path = config::credentials_path()?;
    let stored = match config::load_credentials(&path) {
        Ok(stored) => stored,
        Err(error) => {
            // Unreadable: it cannot be revoked, but it can be removed.
            eprintln!("signoff: {error}");
            config::delete_credentials(&path)?;
            println!("Removed the stored credentials ({}).", path.display());
            return Ok(exit::LOCAL);
        }
    };
    let Some(credentials) = stored else {
        println!("Not signed in; nothing to do.");
        return Ok(exit::OK);
    };
    let client = Client::new(&credentials.server, Some(credentials.token.clone()))?;
    let revoked = client.revoke().await;
    config::delete_credentials(&path)?;
    let server = &credentials.server;
    match revoked {
        Ok(()) => {
            println!("Signed out of {server}: the token is revoked and the stored credentials are deleted.");
            Ok(exit::OK)
        }
        Err(ClientError::Unauthorized { .. }) => {
            println!("Signed out: the token was already invalid on {server}; the stored credentials are deleted.");
            Ok(exit::OK)
        }
        Err(error) => {
            let until = credentials
                .expires_at
                .map(|at| format!(" until {}", timestamp(at)))
                .unwrap_or_default();
            eprintln!("signoff: could not revoke the token ({error}); it stays valid on {server}{until}.");
            println!("The stored credentials are deleted all the same.");
            Ok(error.exit_code())
        }
    }
}
