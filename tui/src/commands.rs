//! Runs what the command line asks, on the reviewer's side (`reviewer::commands`) or the
//! agent's (`agent`); the returned exit code is what scripts see.

use std::time::Instant;

use crate::agent;
use crate::cli::{Cli, Command};
use crate::config;
use crate::error::ClientError;
use crate::reviewer;

pub async fn run(cli: Cli, started: Instant) -> Result<u8, ClientError> {
    let server = cli.server.as_deref();
    if cli.bench_first_frame {
        return reviewer::bench::first_frame(config::current_target(server)?, started).await;
    }
    match cli.command {
        None => reviewer::commands::interactive(server).await,
        Some(Command::Login) => reviewer::commands::login(server).await,
        Some(Command::Logout) => reviewer::commands::logout().await,
        Some(Command::List(args)) => reviewer::commands::list(server, args).await,
        Some(Command::Show { id, json }) => reviewer::commands::show(server, &id, json).await,
        Some(Command::Approve { id, message, digest }) => {
            reviewer::commands::approve(server, &id, message, digest.as_deref()).await
        }
        Some(Command::Deny { id, message, digest }) => {
            reviewer::commands::deny(server, &id, &message, digest.as_deref()).await
        }
        Some(Command::VerifyReceipt(args)) => Ok(agent::receipt::run(&args)),
        Some(Command::Mcp) => agent::mcp::run(&config::current_target(server)?.server).await,
        Some(Command::McpGateway(args)) => agent::gateway::run(args, &config::current_target(server)?.server).await,
        Some(Command::Request(args)) => agent::gate::run(args, server).await,
        Some(Command::Hook(agent::hook::HookCommand::ClaudeCode { timeout })) => {
            Ok(agent::hook::claude_code(server, timeout.into()).await)
        }
    }
}
