//! The command line: `signoff` opens the interactive client; subcommands sign in and out
//! and script decisions.

use clap::{Parser, Subcommand};

pub const AFTER_HELP: &str = "\
Server:
  --server URL, else SIGNOFF_SERVER, else the server of the stored login.

Exit codes:
  0  done
  1  the server refused (not eligible, own request, already decided, expired, not found,
     digest mismatch)
  2  usage: bad or missing arguments (a deny without -m, an id that is not a UUID)
  3  not signed in (no stored login, or none for this server), sign-in no longer valid,
     or sign-in failed: run `signoff login`
  4  the server could not be reached or answered with a server error (for `logout`: the
     token could not be revoked; the stored credentials are deleted all the same)
  5  local problem: the credentials file or the terminal could not be used
  For agents, `signoff request` (the CLI gate) adds 10 denied, 11 expired, 12 cancelled,
  13 timed out, 14 answer for another request, 15 approval already started, and passes
  its command's code through: see `signoff request --help`.

Files:
  credentials  $XDG_CONFIG_HOME/signoff/credentials.json (mode 0600)
  log          $XDG_STATE_HOME/signoff/signoff.log (SIGNOFF_LOG=debug for more)

Environment:
  SIGNOFF_SERVER  the server      NO_COLOR  no colours (bold and reverse only)
  SIGNOFF_AGENT_KEY  the agent key `signoff mcp` and `mcp-gateway` use (never printed)
  SIGNOFF_ALLOW_INSECURE_HTTP=1  let `signoff mcp`, `mcp-gateway`, `request` and `hook`
                     use http:// to another machine (by default: https://, or http://
                     to this machine)

In the interactive client, press ? for every key.";

#[derive(Debug, Parser)]
#[command(
    name = "signoff",
    version,
    about = "Approve or deny Signoff requests from the terminal",
    long_about = "Approve or deny Signoff requests from the terminal.\n\n\
        With no subcommand, opens the interactive queue: pending requests live as they \
        arrive, their detail and diff, and approve / deny with a comment and a \
        confirmation of exactly what is signed off. Sign in first with `signoff login`.",
    after_help = AFTER_HELP
)]
pub struct Cli {
    /// The Signoff server, e.g. https://signoff.example.com
    #[arg(long, env = "SIGNOFF_SERVER", global = true, value_name = "URL")]
    pub server: Option<String>,

    /// Load the queue, render one frame off-screen, print timings and memory, exit.
    #[arg(long, hide = true)]
    pub bench_first_frame: bool,

    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Sign in through the server: prints an address and a code to confirm in a browser.
    Login,
    /// Revoke the stored token on the server and delete it here.
    Logout,
    /// List pending requests (the queue), oldest first; or decided ones with --history.
    List(crate::reviewer::commands::ListArgs),
    /// Show one request: context, payload, diff, decisions.
    Show {
        /// The request id (UUID).
        id: String,
        /// Print the request as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Approve a request.
    Approve {
        /// The request id (UUID).
        id: String,
        /// A comment recorded with the approval.
        #[arg(short = 'm', long = "message", value_name = "COMMENT")]
        message: Option<String>,
        /// Refuse unless the request's digest starts with this (what you reviewed).
        #[arg(long, value_name = "HEX")]
        digest: Option<String>,
    },
    /// For agents: ask for approval, wait, then run `-- CMD ARGS…` only if approved.
    #[command(after_help = crate::agent::gate::REQUEST_AFTER_HELP)]
    Request(crate::agent::gate::RequestArgs),
    /// For agents: hooks that put a coding agent's tool calls behind approval.
    #[command(subcommand)]
    Hook(crate::agent::hook::HookCommand),
    /// Deny a request; a comment saying why is required.
    Deny {
        /// The request id (UUID).
        id: String,
        /// Why the request is denied.
        #[arg(short = 'm', long = "message", value_name = "COMMENT", required = true)]
        message: String,
        /// Refuse unless the request's digest starts with this (what you reviewed).
        #[arg(long, value_name = "HEX")]
        digest: Option<String>,
    },
    /// Serve the agent tools (request_approval, check_approval, get_request) over MCP on
    /// standard input and output, through the server's /mcp with the key in SIGNOFF_AGENT_KEY.
    Mcp,
    /// For agents: serve another MCP server's tools on standard input and output, each
    /// call only once approved in Signoff (`-- UPSTREAM_CMD ARGS…` or --upstream-url URL).
    #[command(after_help = crate::agent::gateway::AFTER_HELP)]
    McpGateway(crate::agent::gateway::GatewayArgs),
    /// For executors: check an approval receipt offline against the exact action.
    #[command(after_help = crate::agent::receipt::AFTER_HELP)]
    VerifyReceipt(crate::agent::receipt::VerifyReceiptArgs),
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn command_line_is_consistent_and_documents_exit_codes() {
        Cli::command().debug_assert();
        let help = Cli::command().render_long_help().to_string();
        assert!(help.contains("Exit codes"));
        assert!(!help.contains("bench-first-frame"));
    }

    #[test]
    fn deny_without_a_message_is_a_usage_error() {
        let error = Cli::try_parse_from(["signoff", "deny", "x"]).expect_err("needs -m");
        assert_eq!(error.exit_code(), 2);
        let ok = Cli::try_parse_from(["signoff", "approve", "x", "--server", "http://s"])
            .expect("server after the subcommand");
        assert_eq!(ok.server.as_deref(), Some("http://s"));
    }
}
