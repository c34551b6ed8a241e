//! `signoff`: the terminal client. See `signoff --help`.

use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use clap::Parser;
use signoff_tui::cli::Cli;
use signoff_tui::error::exit;
use signoff_tui::{commands, logging};

fn main() -> ExitCode {
    let started = Instant::now();
    // clap prints usage errors and exits with 2 by itself.
    let cli = Cli::parse();
    logging::init();
    match run(cli, started) {
        Ok(code) => ExitCode::from(code),
        Err(error) => {
            let code = error
                .downcast_ref::<signoff_tui::ClientError>()
                .map(|error| error.exit_code())
                .unwrap_or(exit::LOCAL);
            tracing::error!("{error:#}");
            eprintln!("signoff: {error:#}");
            ExitCode::from(code)
        }
    }
}

fn run(cli: Cli, started: Instant) -> anyhow::Result<u8> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let code = runtime.block_on(commands::run(cli, started))?;
    Ok(code)
}
