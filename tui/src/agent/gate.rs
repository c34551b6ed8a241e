//! `signoff request … -- CMD ARGS…`: the CLI gate. Submits a request through the agent
//! API, waits for the decision, and runs CMD only once the server says that very request
//! (its id, and the digest computed here) is approved and has recorded its start; then
//! reports how it went. Progress goes to standard error, so standard output is CMD's
//! alone. Exit codes: `crate::error::exit` (documented in `--help` and the README).

use std::collections::BTreeMap;
use std::io::Read;
use std::path::PathBuf;
use std::process::ExitStatus;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use signoff_app::wire::ExecutionStatus;
use signoff_app::wire::{NewRequest, RequestView, ResultReport, limits};
use signoff_app::{Status, Verdict};

use crate::agent::{AgentApi, KEY_ENV, Waited, field_text, fresh_idempotency_key, same_request};
use crate::error::{ClientError, exit};
use crate::text::sanitize;

pub const REQUEST_AFTER_HELP: &str = "\
Exit codes:
  without CMD: 0 approved; with CMD: CMD's own exit code (128+N if a signal N ended it)
  1-5  as for every signoff command (1 refused by the server, 2 usage, 3 SIGNOFF_AGENT_KEY
       missing or refused, 4 server unreachable, 5 local problem); CMD was not run
  10   denied (the reviewers' comments are printed)
  11   expired before anyone decided
  12   cancelled
  13   no decision within --timeout: the request is cancelled
  14   the server answered for another request or action (its id or digest is not what
       was submitted): nothing was run
  15   this approval was already started by an earlier run (the same --idempotency-key,
       here or on another machine): nothing was run again
  126  CMD could not be started, 127 CMD not found (reported as failed)
  130  interrupted (Ctrl-C) while waiting, 143 terminated (SIGTERM) while waiting: the
       request is cancelled
  CMD runs only after approval, and at most once per approval: the gate records the
  start on the server before running it. Without CMD, exit code 0 is that start.

Environment:
  SIGNOFF_AGENT_KEY  the agent's key (required; never printed, and not passed to CMD)
  SIGNOFF_SERVER     the server, unless --server: https://, or http:// to this machine
  SIGNOFF_ALLOW_INSECURE_HTTP=1  allow http:// to another machine (the key travels in
                     the clear)

Standard output carries CMD's output only; progress goes to standard error.

Example:
  signoff request --action deploy.service --resource k8s://prod/api \\
    --reason \"Release 1.5.0\" --timeout 30m -- ./deploy.sh 1.5.0";

/// What `signoff request` asks for.
#[derive(Debug, Clone, clap::Args)]
pub struct RequestArgs {
    /// Dotted action name policies and reviewers know, e.g. deploy.service.
    #[arg(long)]
    pub action: String,
    /// What the action touches, e.g. k8s://prod/payments-api.
    #[arg(long)]
    pub resource: String,
    /// Why: the justification reviewers read.
    #[arg(long)]
    pub reason: String,
    /// One line for the queue; default: the command, or the action and resource.
    #[arg(long)]
    pub title: Option<String>,
    /// A unified diff of what would change (`-` reads standard input).
    #[arg(long, value_name = "FILE")]
    pub diff_file: Option<PathBuf>,
    /// The action's arguments as JSON. With CMD the payload is
    /// {"command": [CMD, ARGS…], "payload": JSON}.
    #[arg(long, value_name = "JSON")]
    pub payload_json: Option<String>,
    /// A label, key=value (repeatable), e.g. --label env=prod.
    #[arg(long = "label", value_name = "KEY=VALUE", value_parser = parse_label)]
    pub labels: Vec<(String, String)>,
    /// The person the agent acts for (email); they cannot approve it themselves.
    #[arg(long, value_name = "EMAIL")]
    pub on_behalf_of: Option<String>,
    /// Give up waiting after this long (e.g. 90s, 10m, 1h): the request is cancelled.
    /// Default: wait until it is decided or expires.
    #[arg(long, value_name = "DURATION")]
    pub timeout: Option<humantime::Duration>,
    /// How long reviewers may take before the request expires (default: the server's).
    #[arg(long, value_name = "DURATION")]
    pub ttl: Option<humantime::Duration>,
    /// Resume the same request when this command is run again (e.g. a retried CI job);
    /// default: a fresh key, so each run is a new request.
    #[arg(long, value_name = "KEY")]
    pub idempotency_key: Option<String>,
    /// The command to run once approved (no shell), after `--`.
    #[arg(last = true, value_name = "CMD")]
    pub command: Vec<String>,
}

fn parse_label(text: &str) -> Result<(String, String), String> {
    let (key, value) = text
        .split_once('=')
        .ok_or_else(|| format!("a label is KEY=VALUE, not `{text}`"))?;
    Ok((key.trim().to_string(), value.to_string()))
}

impl RequestArgs {
    /// The request to submit, checked against the API's rules before anything is sent.
    pub fn new_request(&self) -> Result<NewRequest, ClientError> {
        let diff = match &self.diff_file {
            None => None,
            Some(path) => Some(Value::String(read_diff(path)?)),
        };
        let given_payload = match &self.payload_json {
            None => None,
            Some(text) => Some(
                serde_json::from_str::<Value>(text)
                    .map_err(|e| ClientError::Usage(format!("--payload-json is not JSON: {e}")))?,
            ),
        };
        // With a command, the payload names it exactly: the digest reviewers approve
        // covers what will run.
        let payload = match (self.command.is_empty(), given_payload) {
            (true, payload) => payload.unwrap_or(Value::Null),
            (false, None) => json!({ "command": self.command }),
            (false, Some(payload)) => json!({ "command": self.command, "payload": payload }),
        };
        let title = match &self.title {
            Some(title) => title.clone(),
            None if !self.command.is_empty() => format!("Run {}", shell_words(&self.command)),
            None => format!("{} {}", self.action, self.resource),
        };
        // Nothing that differs between machines: a CI job retried elsewhere with the same
        // --idempotency-key must send the same body to resume its request.
        let context = json!({ "via": "signoff request" });
        let request = NewRequest {
            action: self.action.clone(),
            resource: self.resource.clone(),
            title: field_text(&title, limits::TITLE_CHARS),
            reason: self.reason.clone(),
            labels: self.labels.iter().cloned().collect::<BTreeMap<_, _>>(),
            payload,
            diff,
            context: Some(context),
            on_behalf_of: self.on_behalf_of.clone(),
            ttl_s: self.ttl.map(|ttl| Duration::from(ttl).as_secs().max(1)),
            callback_url: None,
        };
        request.validate().map_err(ClientError::Usage)?;
        Ok(request)
    }
}

fn read_diff(path: &PathBuf) -> Result<String, ClientError> {
    let mut text = String::new();
    let read = if path.as_os_str() == "-" {
        std::io::stdin().read_to_string(&mut text).map(drop)
    } else {
        std::fs::read_to_string(path).map(|read| text = read)
    };
    read.map_err(|e| ClientError::Usage(format!("cannot read the diff {}: {e}", path.display())))?;
    Ok(text)
}

/// A command line as a person would type it (for titles and messages, never run).
pub fn shell_words(argv: &[String]) -> String {
    argv.iter()
        .map(|word| {
            let plain = !word.is_empty()
                && word
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_./:=@,+%".contains(c));
            if plain {
                word.clone()
            } else {
                format!("'{}'", word.replace('\'', r"'\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Runs `signoff request`; `Ok` carries the exit code.
pub async fn run(args: RequestArgs, server: Option<&str>) -> Result<u8, ClientError> {
    let request = args.new_request()?;
    let api = AgentApi::from_env(server)?;
    // Listening before submitting: a Ctrl-C from here on cancels the request.
    let mut signals = Signals::listen()?;
    let idempotency_key = args.idempotency_key.clone().unwrap_or_else(fresh_idempotency_key);
    let submitted = api.submit(&request, &idempotency_key).await?;
    say(&format!(
        "request {} submitted; reviewers decide at {}",
        submitted.id,
        api.console_url(submitted.id)
    ));
    let timeout = args.timeout.map(Duration::from);
    let ending = wait_or_interrupt(&api, submitted, timeout, &mut signals, say).await?;
    let request = match ending {
        Ending::Decided(request) => request,
        Ending::TimedOut(_) => {
            say(&format!(
                "no decision within {}: the request is cancelled and nothing was run",
                humantime::format_duration(timeout.unwrap_or_default())
            ));
            return Ok(exit::TIMED_OUT);
        }
        Ending::Interrupted(interrupt) => {
            say("interrupted: the request is cancelled and nothing was run");
            return Ok(interrupt.exit_code());
        }
    };
    match request.status {
        Status::Approved => {}
        Status::Denied => {
            say("denied: nothing was run");
            for (name, comment) in comments(&request, Verdict::Deny) {
                say(&format!("  {name}: {comment}"));
            }
            return Ok(exit::DENIED);
        }
        Status::Expired => {
            say("the request expired before anyone decided: nothing was run");
            return Ok(exit::EXPIRED);
        }
        Status::Cancelled => {
            say("the request was cancelled: nothing was run");
            return Ok(exit::CANCELLED);
        }
        status @ (Status::Executed | Status::Failed | Status::Pending) => {
            // Only a resumed request (--idempotency-key) can already have run.
            return Err(ClientError::Refused {
                status: 409,
                code: "already_run".into(),
                message: format!("this request is {status}: it is not run again"),
            });
        }
    }
    let approvers = comments(&request, Verdict::Approve)
        .into_iter()
        .map(|(name, comment)| {
            if comment.is_empty() {
                name
            } else {
                format!("{name} (“{comment}”)")
            }
        })
        .collect::<Vec<_>>()
        .join(", ");
    // Recorded on the server before anything runs: a retry of this job (the same
    // --idempotency-key, here or elsewhere) finds the approval used and runs nothing.
    match api
        .start(request.id)
        .await
        .and_then(|started| same_request(&request, started))
    {
        Ok(_) => {}
        Err(ClientError::Refused { code, message, .. }) if code == "already_started" => {
            say(&format!(
                "approved, but {message}: nothing was run (one approval runs once; ask again with another --idempotency-key)"
            ));
            return Ok(exit::ALREADY_STARTED);
        }
        Err(error) => return Err(error),
    }
    if args.command.is_empty() {
        say(&format!("approved by {approvers}"));
        return Ok(exit::OK);
    }
    say(&format!(
        "approved by {approvers}; running {}",
        shell_words(&args.command)
    ));
    let (code, report) = run_command(&args.command, &mut signals).await;
    if let Err(error) = api.report(request.id, &report).await {
        say(&format!("could not report the result to the server: {error}"));
    }
    Ok(code)
}

/// How waiting ended, once the gate has done its part (cancelling when it gave up).
#[derive(Debug)]
pub enum Ending {
    /// No longer pending; act on its status.
    Decided(RequestView),
    /// The caller's timeout passed; the request is cancelled.
    TimedOut(RequestView),
    /// A signal came; the request is cancelled (if the server still allowed it).
    Interrupted(Interrupt),
}

/// Waits for the decision until `timeout`, or until a signal. Either way out cancels
/// the request, so nobody approves something that will never run; when the decision
/// beat the cancellation, a timed-out wait still acts on it.
pub async fn wait_or_interrupt(
    api: &AgentApi,
    request: RequestView,
    timeout: Option<Duration>,
    signals: &mut Signals,
    mut progress: impl FnMut(&str),
) -> Result<Ending, ClientError> {
    let id = request.id;
    let deadline = timeout.map(|timeout| Instant::now() + timeout);
    match timeout {
        Some(timeout) => progress(&format!(
            "waiting for approval (up to {})…",
            humantime::format_duration(timeout)
        )),
        None => progress("waiting for approval…"),
    }
    let mut unreachable_said = false;
    let waited = tokio::select! {
        waited = api.wait_for_decision(request, deadline, |error| {
            if !unreachable_said {
                progress(&format!("{error}; still trying"));
                unreachable_said = true;
            }
        }) => waited?,
        interrupt = signals.next() => {
            // Its answer is not acted on: nothing runs after an interrupt.
            if let Err(error) = api.cancel(id).await {
                tracing::warn!(%error, "cancelling after an interrupt failed");
            }
            return Ok(Ending::Interrupted(interrupt));
        }
    };
    match waited {
        Waited::Decided(request) => Ok(Ending::Decided(request)),
        Waited::TimedOut(request) => give_up(api, request).await,
    }
}

/// Cancels `request`, which the caller stopped waiting for; when a decision beat the
/// cancellation, that decision stands ([`Ending::Decided`]).
pub async fn give_up(api: &AgentApi, request: RequestView) -> Result<Ending, ClientError> {
    match api.cancel(request.id).await {
        Ok(cancelled) => Ok(Ending::TimedOut(same_request(&request, cancelled)?)),
        // Decided between the last wait and the cancellation: that decision stands.
        Err(ClientError::Refused { status: 409, .. }) => {
            let current = same_request(&request, api.get(request.id).await?)?;
            if current.status == Status::Pending {
                Ok(Ending::TimedOut(request))
            } else {
                Ok(Ending::Decided(current))
            }
        }
        Err(error) => Err(error),
    }
}

/// Reviewers' names and comments with the given verdict, made safe for a terminal.
pub fn comments(request: &RequestView, verdict: Verdict) -> Vec<(String, String)> {
    request
        .decisions
        .iter()
        .filter(|decision| decision.verdict == verdict)
        .map(|decision| {
            (
                sanitize(decision.reviewer.display_name(), false),
                sanitize(decision.comment.trim(), false),
            )
        })
        .collect()
}

fn say(message: &str) {
    eprintln!("signoff: {message}");
}

/// Runs the approved command with this process's standard streams; returns the exit
/// code to pass on and the report for the server. SIGTERM is passed on to the command;
/// Ctrl-C reaches it from the terminal as usual.
async fn run_command(argv: &[String], signals: &mut Signals) -> (u8, ResultReport) {
    let Some((program, arguments)) = argv.split_first() else {
        return (exit::OK, report(ExecutionStatus::Executed, json!({})));
    };
    // The command acts with its own rights, never the agent's: it does not get the key.
    let mut child = match tokio::process::Command::new(program)
        .args(arguments)
        .env_remove(KEY_ENV)
        .spawn()
    {
        Ok(child) => child,
        Err(error) => {
            let code = if error.kind() == std::io::ErrorKind::NotFound {
                exit::COMMAND_NOT_FOUND
            } else {
                exit::CANNOT_RUN
            };
            say(&format!("cannot run {program}: {error}"));
            let detail = json!({ "error": format!("cannot run {program}: {error}"), "exit_code": code });
            return (code, report(ExecutionStatus::Failed, detail));
        }
    };
    let status = loop {
        tokio::select! {
            status = child.wait() => break status,
            interrupt = signals.next() => {
                if interrupt == Interrupt::Terminate {
                    forward_terminate(&child);
                }
            }
        }
    };
    match status {
        Ok(status) => {
            let (code, detail) = exit_of(status);
            let outcome = if code == 0 {
                ExecutionStatus::Executed
            } else {
                ExecutionStatus::Failed
            };
            (code, report(outcome, detail))
        }
        Err(error) => {
            say(&format!("lost track of {program}: {error}"));
            let detail = json!({ "error": format!("lost track of the command: {error}") });
            (exit::LOCAL, report(ExecutionStatus::Failed, detail))
        }
    }
}

fn report(status: ExecutionStatus, detail: Value) -> ResultReport {
    ResultReport {
        status,
        detail: Some(detail),
        receipt: None,
    }
}

/// The exit code to pass on (128+N for signal N, as shells do) and what to report.
fn exit_of(status: ExitStatus) -> (u8, Value) {
    if let Some(code) = status.code() {
        return ((code & 0xff) as u8, json!({ "exit_code": code }));
    }
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        if let Some(signal) = status.signal() {
            return ((128 + signal).clamp(0, 255) as u8, json!({ "signal": signal }));
        }
    }
    (exit::LOCAL, json!({ "error": "ended without an exit code" }))
}

#[cfg(unix)]
fn forward_terminate(child: &tokio::process::Child) {
    use nix::sys::signal::{Signal, kill};
    use nix::unistd::Pid;
    if let Some(pid) = child.id().and_then(|pid| i32::try_from(pid).ok()) {
        let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
    }
}

#[cfg(not(unix))]
fn forward_terminate(_child: &tokio::process::Child) {}

/// A signal that asks the gate to stop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Interrupt {
    /// SIGINT, Ctrl-C.
    Interrupt,
    /// SIGTERM, e.g. a cancelled CI job.
    Terminate,
}

impl Interrupt {
    pub fn exit_code(self) -> u8 {
        match self {
            Interrupt::Interrupt => exit::INTERRUPTED,
            Interrupt::Terminate => exit::TERMINATED,
        }
    }
}

/// SIGINT and SIGTERM, caught from the moment this exists (so none is missed while a
/// submission is in flight).
pub struct Signals {
    #[cfg(unix)]
    interrupt: tokio::signal::unix::Signal,
    #[cfg(unix)]
    terminate: tokio::signal::unix::Signal,
}

impl Signals {
    pub fn listen() -> Result<Signals, ClientError> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let listen = |kind| signal(kind).map_err(|e| ClientError::Local(format!("cannot catch signals: {e}")));
            Ok(Signals {
                interrupt: listen(SignalKind::interrupt())?,
                terminate: listen(SignalKind::terminate())?,
            })
        }
        #[cfg(not(unix))]
        Ok(Signals {})
    }

    /// The next signal; never returns if none comes.
    pub async fn next(&mut self) -> Interrupt {
        #[cfg(unix)]
        {
            tokio::select! {
                Some(()) = self.interrupt.recv() => Interrupt::Interrupt,
                Some(()) = self.terminate.recv() => Interrupt::Terminate,
                else => std::future::pending().await,
            }
        }
        #[cfg(not(unix))]
        {
            match tokio::signal::ctrl_c().await {
                Ok(()) => Interrupt::Interrupt,
                Err(_) => std::future::pending().await,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn parse(args: &[&str]) -> RequestArgs {
        let mut argv = vec!["signoff", "request"];
        argv.extend_from_slice(args);
        match crate::cli::Cli::try_parse_from(argv).expect("parses").command {
            Some(crate::cli::Command::Request(args)) => args,
            other => panic!("not a request: {other:?}"),
        }
    }

    #[test]
    fn the_command_is_what_reviewers_approve() {
        let args = parse(&[
            "--action",
            "deploy.service",
            "--resource",
            "k8s://prod/api",
            "--reason",
            "release",
            "--label",
            "env=prod",
            "--payload-json",
            r#"{"version":"1.5.0"}"#,
            "--",
            "./deploy.sh",
            "--to",
            "prod env",
        ]);
        let request = args.new_request().expect("valid");
        assert_eq!(
            request.payload,
            json!({"command": ["./deploy.sh", "--to", "prod env"], "payload": {"version": "1.5.0"}})
        );
        assert_eq!(request.title, "Run ./deploy.sh --to 'prod env'");
        assert_eq!(request.labels["env"], "prod");
    }

    #[test]
    fn bad_input_is_a_usage_error_before_anything_is_sent() {
        let args = parse(&["--action", "Deploy Now", "--resource", "r", "--reason", "x"]);
        assert_eq!(args.new_request().expect_err("bad action").exit_code(), exit::USAGE);
        let args = parse(&[
            "--action",
            "a.b",
            "--resource",
            "r",
            "--reason",
            "x",
            "--payload-json",
            "{",
        ]);
        assert_eq!(args.new_request().expect_err("bad json").exit_code(), exit::USAGE);
        let error = crate::cli::Cli::try_parse_from(["signoff", "request", "--action", "a", "--resource", "r"])
            .expect_err("reason required");
        assert_eq!(error.exit_code(), 2);
    }
}
