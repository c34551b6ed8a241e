//! Fills a log with EVENTS audit events (default 1,000,000) through the engine, in a fresh
//! SQLite database in DIR (default `target/bench/audit`), so `signoff-server audit verify`
//! can be timed on it (`tests/bench/audit_verify.sh`).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use signoff_server::bus::EventBus;
use signoff_server::service::{Service, Settings};
use signoff_server::store::Actor;
use signoff_server::{Config, startup};

/// Writers submitting at once: the engine takes what they queue as one batch.
const WRITERS: usize = 256;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let events: usize = args.next().map(|arg| arg.parse()).transpose()?.unwrap_or(1_000_000);
    let dir = PathBuf::from(args.next().unwrap_or_else(|| "target/bench/audit".into()));
    if dir.exists() {
        std::fs::remove_dir_all(&dir)?;
    }
    std::fs::create_dir_all(&dir)?;
    let config = Config {
        data_dir: dir.clone(),
        database_url: Some(format!("sqlite://{}", dir.join("signoff.db").display())),
        ..Config::default()
    };
    let store = startup::open_store(&config).await?;
    let (_keep, shutdown) = tokio::sync::watch::channel(false);
    let service =
        Arc::new(Service::open(store, EventBus::in_process(), Settings::from_config(&config)?, shutdown).await?);
    let started = Instant::now();
    let writers: Vec<_> = (0..WRITERS)
        .map(|writer| {
            let service = Arc::clone(&service);
            let count = events / WRITERS + usize::from(writer < events % WRITERS);
            tokio::spawn(async move {
                for _ in 0..count {
                    service.record_audit_read(Actor::Operator, 1, 1, "bench").await?;
                }
                Ok::<_, signoff_server::Error>(())
            })
        })
        .collect();
    for writer in writers {
        writer.await??;
    }
    service.checkpoint().await?;
    eprintln!(
        "wrote {events} events in {:.1} s to {}",
        started.elapsed().as_secs_f64(),
        dir.display()
    );
    Ok(())
}
