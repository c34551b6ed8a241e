//! `signoff-server`: serve the API and console, migrate, manage agents, verify the audit trail.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;

use signoff_app::marked_for_terminal;
use signoff_app::policy::PolicyFile;
use signoff_server::policy_file::{self, Format};
use signoff_server::service::{Service, draft_set};
use signoff_server::store::{Actor, KeyIssue};
use signoff_server::{Application, Config, startup};

#[derive(Parser)]
#[command(
    name = "signoff-server",
    version,
    about = "Signoff: a human checkpoint on the sensitive actions of agents"
)]
struct Cli {
    /// TOML configuration file; environment variables (SIGNOFF_*, DATABASE_URL) win over it.
    #[arg(long, global = true, env = "SIGNOFF_CONFIG")]
    config: Option<PathBuf>,
    /// Development mode: 127.0.0.1 only, demo data, development sign-in.
    #[arg(long, global = true)]
    dev: bool,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the API and the console (the default).
    Serve,
    /// Bring the database schema up to date and exit.
    Migrate,
    /// Manage agents and their API keys.
    #[command(subcommand)]
    Agents(AgentsCommand),
    /// Check or export the audit trail.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Keep policies as code: export them, check a file against history, import it.
    #[command(subcommand)]
    Policies(PoliciesCommand),
    /// Agents' callbacks.
    #[command(subcommand)]
    Callbacks(CallbacksCommand),
}

#[derive(Subcommand)]
enum CallbacksCommand {
    /// Print the secret callbacks are signed with (`whsec_…`), for agents to verify them;
    /// made in the data dir when not configured.
    Secret,
}

#[derive(Subcommand)]
enum PoliciesCommand {
    /// Write the stored policies, in order, to FILE (TOML, or YAML for .yaml/.yml), or
    /// to standard output as TOML without FILE.
    Export { file: Option<PathBuf> },
    /// Make the stored policies what FILE says, all or nothing: policies by name, in the
    /// file's order; stored ones the file does not name are disabled. Nothing is stored
    /// when any policy in it is invalid.
    Import { file: PathBuf },
    /// Validate FILE and replay it over recent requests: which would change outcome.
    /// Exits 1 when the file is invalid.
    Check {
        file: PathBuf,
        /// How many of the newest requests to replay.
        #[arg(long, default_value_t = 1000)]
        last: usize,
    },
}

#[derive(Subcommand)]
enum AgentsCommand {
    /// Create an agent (or give an existing one a new key) and print the key once.
    Create {
        #[arg(long)]
        name: String,
        /// The human responsible for the agent (email); they cannot approve its requests.
        #[arg(long)]
        owner: Option<String>,
        /// What the agent is for (shown to admins).
        #[arg(long)]
        description: Option<String>,
    },
    /// List agents and how many active keys each has.
    List,
    /// Revoke every key of an agent, at once.
    Revoke { name: String },
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Recompute the chain and the Merkle tree, check every checkpoint's signature and
    /// root, and name the first bad event. Exits 0 intact, 1 broken, 2 unable to check.
    Verify {
        /// Start at this event (the tree before it is taken as stored).
        #[arg(long, default_value_t = 1)]
        from: i64,
        /// Verify an export (`audit export`, JSON lines) offline instead of the database.
        #[arg(long, requires = "key")]
        file: Option<PathBuf>,
        /// A public key to trust (`name+keyid+base64`, from /.well-known/signoff/keys);
        /// repeat for keys of before a rotation. With the database, the server's own keys
        /// are trusted too.
        #[arg(long)]
        key: Vec<String>,
    },
    /// Write events, with the checkpoints and proofs that verify them offline, to
    /// standard output (JSON lines), or as CSV for reading. Recorded in the trail.
    Export {
        /// Events at or after this time (RFC 3339 or YYYY-MM-DD); from the first when absent.
        #[arg(long)]
        since: Option<String>,
        /// Events before this time; to the newest when absent.
        #[arg(long)]
        until: Option<String>,
        #[arg(long, value_enum, default_value = "jsonl")]
        format: ExportFormat,
    },
    /// Check, from anywhere, that the log at URL still extends what this monitor saw last
    /// (kept in FILE). Exits 0 agreeing, 2 rewritten or forked, 1 unable to check.
    Monitor {
        #[arg(long)]
        url: String,
        #[arg(long)]
        state: PathBuf,
        /// Trust only this key (repeatable); otherwise the keys the log listed at the first run.
        #[arg(long)]
        key: Vec<String>,
    },
    /// Print the log's public keys (verifier keys), the signing one first.
    Keys,
    /// Retire the signing key (it stays listed and trusted) and make a new one.
    RotateKey,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum ExportFormat {
    Jsonl,
    Csv,
}

#[tokio::main]
async fn main() -> anyhow::Result<ExitCode> {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn")))
        .with_writer(std::io::stderr)
        .init();
    // Every waiting agent holds a connection: allow as many as the system lets us.
    if let Err(err) = rlimit::increase_nofile_limit(u64::MAX) {
        tracing::warn!(%err, "could not raise the open-files limit");
    }
    let mut config = Config::load(cli.config.as_deref(), |name| std::env::var(name).ok())?;
    config.dev |= cli.dev;

    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => {
            let listener = tokio::net::TcpListener::bind(config.listen)
                .await
                .with_context(|| format!("cannot listen on {}", config.listen))?;
            let dev = config.dev;
            let app = Application::build(config, listener).await?;
            let address = app.local_addr()?;
            tracing::info!(%address, dev, "signoff-server listening");
            println!("signoff-server listening on http://{address}");
            app.run_until(startup::shutdown_signal()).await?;
        }
        Command::Migrate => {
            startup::open_store(&config).await?;
            println!("database schema is up to date");
        }
        Command::Agents(command) => return agents(command, &config).await,
        Command::Audit(command) => return audit(command, &config).await,
        Command::Policies(command) => return policies(command, &config).await,
        Command::Callbacks(CallbacksCommand::Secret) => {
            println!(
                "{}",
                signoff_server::notify::callback::secret(&config.callbacks, &config.data_dir)?
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The service over the configured database, for one command-line change.
async fn operator_service(config: &Config) -> anyhow::Result<Service> {
    let store = startup::open_store(config).await?;
    let bus = signoff_server::bus::EventBus::in_process();
    let (keep_running, shutdown) = tokio::sync::watch::channel(false);
    // The engine runs until the command ends with the process.
    std::mem::forget(keep_running);
    let settings = signoff_server::service::Settings::from_config(config)?;
    let service = Service::open(store, bus, settings, shutdown).await?;
    service.load_policies().await?;
    Ok(service)
}

async fn policies(command: PoliciesCommand, config: &Config) -> anyhow::Result<ExitCode> {
    let read = |path: &PathBuf| -> anyhow::Result<PolicyFile> {
        let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
        Ok(policy_file::parse(&text, Format::of(path))?)
    };
    match command {
        PoliciesCommand::Export { file } => {
            let store = startup::open_store(config).await?;
            let exported = PolicyFile {
                policies: store.policies().await?.into_iter().map(|p| p.doc).collect(),
            };
            match file {
                Some(path) => {
                    let text = policy_file::render(&exported, Format::of(&path))?;
                    std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
                    println!("exported {} policies to {}", exported.policies.len(), path.display());
                }
                None => print!("{}", policy_file::render(&exported, Format::Toml)?),
            }
        }
        PoliciesCommand::Import { file } => {
            let parsed = match read(&file) {
                Ok(parsed) => parsed,
                Err(err) => {
                    eprintln!("{err:#}");
                    return Ok(ExitCode::FAILURE);
                }
            };
            let service = operator_service(config).await?;
            match service.import_policies(parsed, Actor::Operator).await {
                Ok(report) => {
                    for (what, names) in [
                        ("created", &report.created),
                        ("updated", &report.updated),
                        ("disabled", &report.disabled),
                        ("unchanged", &report.unchanged),
                    ] {
                        if !names.is_empty() {
                            println!("{what}: {}", names.join(", "));
                        }
                    }
                }
                Err(err @ (signoff_server::Error::PolicyInvalid(_) | signoff_server::Error::Conflict { .. })) => {
                    print_problems(&err);
                    eprintln!("nothing was imported");
                    return Ok(ExitCode::FAILURE);
                }
                Err(err) => return Err(err.into()),
            }
        }
        PoliciesCommand::Check { file, last } => {
            let parsed = match read(&file) {
                Ok(parsed) => parsed,
                Err(err) => {
                    eprintln!("{err:#}");
                    return Ok(ExitCode::FAILURE);
                }
            };
            let service = operator_service(config).await?;
            let draft = match draft_set(&parsed, service.policy_set().default.clone()) {
                Ok(draft) => draft,
                Err(err) => {
                    print_problems(&err);
                    return Ok(ExitCode::FAILURE);
                }
            };
            println!("{}: {} policies, valid", file.display(), parsed.policies.len());
            let what_if = service.what_if(std::sync::Arc::new(draft), last).await?;
            println!(
                "replayed the last {} requests in {} ms: {} would change outcome",
                what_if.examined,
                what_if.elapsed.as_millis(),
                what_if.changes.len()
            );
            if what_if.stopped_early {
                println!(
                    "stopped after {} s: fewer requests replayed than asked",
                    signoff_server::service::WHAT_IF_TIME.as_secs()
                );
            }
            const SHOWN: usize = 50;
            for change in what_if.changes.iter().take(SHOWN) {
                println!(
                    "  {} {} ({}, {}): {} [{}] -> {} [{}]",
                    change.request,
                    // An agent's title, on an operator's terminal: nothing hidden, one line.
                    marked_for_terminal(&change.title),
                    marked_for_terminal(&change.action),
                    marked_for_terminal(&change.agent),
                    change.before,
                    marked_for_terminal(&change.before_policy),
                    change.after,
                    marked_for_terminal(&change.after_policy)
                );
            }
            if what_if.changes.len() > SHOWN {
                println!("  … and {} more", what_if.changes.len() - SHOWN);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn print_problems(err: &signoff_server::Error) {
    match err {
        signoff_server::Error::PolicyInvalid(problems) => {
            eprintln!("the policy file is invalid:");
            for problem in problems {
                eprintln!("  {problem}");
            }
        }
        other => eprintln!("{other}"),
    }
}

async fn agents(command: AgentsCommand, config: &Config) -> anyhow::Result<ExitCode> {
    let service = operator_service(config).await?;
    let mut out = std::io::stdout().lock();
    match command {
        AgentsCommand::Create {
            name,
            owner,
            description,
        } => {
            let (agent, key, issue) = service
                .issue_described_agent_key(&name, owner.as_deref(), description.as_deref(), None)
                .await?;
            match issue {
                KeyIssue::Created => writeln!(out, "created agent {}", agent.name)?,
                KeyIssue::NewKey => writeln!(out, "agent {} exists; issued it a new key", agent.name)?,
                KeyIssue::OwnerChanged { previous } => writeln!(
                    out,
                    "agent {} exists; its owner changed from {} to {}; issued it a new key",
                    agent.name,
                    marked_for_terminal(previous.as_deref().unwrap_or("nobody")),
                    marked_for_terminal(agent.owner.as_deref().unwrap_or("nobody"))
                )?,
            }
            writeln!(out, "this key is shown once; store it now:")?;
            writeln!(out, "{key}")?;
        }
        AgentsCommand::List => {
            let agents = service.store().list_agents().await?;
            if agents.is_empty() {
                writeln!(
                    out,
                    "no agents yet: create one with `signoff-server agents create --name NAME`"
                )?;
            }
            for summary in agents {
                // Marked, not printed raw: a value stored before owners and descriptions
                // were checked could hold escape sequences or a newline that forges a row.
                writeln!(
                    out,
                    "{}\towner={}\tdescription={}\tactive_keys={}\tcreated={}",
                    marked_for_terminal(&summary.agent.name),
                    marked_for_terminal(summary.agent.owner.as_deref().unwrap_or("-")),
                    marked_for_terminal(summary.description.as_deref().unwrap_or("-")),
                    summary.active_keys,
                    summary.agent.created_at
                )?;
            }
        }
        AgentsCommand::Revoke { name } => match service.revoke_agent_keys(&name, None).await? {
            Some(count) => writeln!(out, "revoked {count} key(s) of agent {name}")?,
            None => {
                eprintln!("no agent named {name}");
                return Ok(ExitCode::FAILURE);
            }
        },
    }
    Ok(ExitCode::SUCCESS)
}

async fn audit(command: AuditCommand, config: &Config) -> anyhow::Result<ExitCode> {
    use signoff_app::evidence::note::PublicKey;
    use signoff_server::evidence::{self, Evidence, monitor, verify::Report};
    let parse_keys = |keys: &[String]| -> anyhow::Result<Vec<PublicKey>> {
        keys.iter()
            .map(|key| PublicKey::parse(key).with_context(|| format!("--key {key}")))
            .collect()
    };
    let report = |report: Report| match report {
        Report::Intact {
            events,
            checkpoints,
            head,
        } => {
            println!("audit trail intact: {events} events, {checkpoints} checkpoints verified, head {head}");
            ExitCode::SUCCESS
        }
        Report::Broken { seq, reason } => {
            println!("audit trail BROKEN at event {seq}: {reason}");
            ExitCode::FAILURE
        }
    };
    match command {
        AuditCommand::Verify {
            file: Some(file), key, ..
        } => {
            let keys = parse_keys(&key)?;
            let input = std::fs::File::open(&file).with_context(|| format!("cannot read {}", file.display()))?;
            match evidence::export::verify_file(std::io::BufReader::new(input), &keys) {
                Ok(found) => Ok(report(found)),
                Err(err) => {
                    eprintln!("cannot verify {}: {err}", file.display());
                    Ok(ExitCode::from(2))
                }
            }
        }
        AuditCommand::Verify { from, key, .. } => {
            let store = startup::open_store(config).await?;
            let evidence = Evidence::load(config)?;
            let mut keys = evidence.keys().to_vec();
            keys.extend(parse_keys(&key)?);
            let started = std::time::Instant::now();
            // A line now and then on long logs, so a slow check is seen to move.
            let progress = |done: i64, total: i64| {
                if total >= 100_000 && (done % 100_000 < evidence::verify::PAGE || done == total) {
                    eprintln!("verified {done} of {total} events");
                }
            };
            let found = evidence::verify::verify_store(
                &store,
                &keys,
                &evidence.origin,
                evidence.checkpoint_every,
                from,
                progress,
            )
            .await?;
            eprintln!("checked in {:.2} s", started.elapsed().as_secs_f64());
            Ok(report(found))
        }
        AuditCommand::Export { since, until, format } => {
            let service = operator_service(config).await?;
            // A checkpoint covering the newest events first, so the export is anchored.
            service.checkpoint().await?;
            let bound = |text: &Option<String>, name: &str| -> anyhow::Result<Option<i64>> {
                text.as_deref()
                    .map(|text| parse_time(text).with_context(|| format!("--{name} `{text}`")))
                    .transpose()
            };
            let (from, to) = service
                .store()
                .audit_range(bound(&since, "since")?, bound(&until, "until")?)
                .await?;
            if to < from {
                eprintln!("no events in that range");
                return Ok(ExitCode::SUCCESS);
            }
            let format = match format {
                ExportFormat::Jsonl => evidence::export::Format::Jsonl,
                ExportFormat::Csv => evidence::export::Format::Csv,
            };
            let mut out = std::io::BufWriter::new(std::io::stdout().lock());
            let written =
                evidence::export::export(service.store(), service.evidence(), from, to, format, &mut out).await?;
            service
                .record_audit_read(Actor::Operator, from, to, format.as_str())
                .await?;
            eprintln!("exported events {from} to {to} ({written} events)");
            Ok(ExitCode::SUCCESS)
        }
        AuditCommand::Monitor { url, state, key } => match monitor::run(&url, &state, &key).await {
            monitor::Outcome::Agrees { size, first: true } => {
                println!("first look at {url}: {size} events; later runs check the log still extends them");
                Ok(ExitCode::SUCCESS)
            }
            monitor::Outcome::Agrees { size, first: false } => {
                println!("the log at {url} agrees: {size} events, consistent with what this monitor saw before");
                Ok(ExitCode::SUCCESS)
            }
            monitor::Outcome::Tampered(reason) => {
                println!("TAMPERED: {reason}");
                Ok(ExitCode::from(2))
            }
            monitor::Outcome::Unchecked(reason) => {
                eprintln!("could not check the log: {reason}");
                Ok(ExitCode::FAILURE)
            }
        },
        AuditCommand::Keys => {
            for key in Evidence::load(config)?.keys() {
                println!("{}", key.verifier());
            }
            Ok(ExitCode::SUCCESS)
        }
        AuditCommand::RotateKey => {
            let (old, new) = evidence::rotate_key(config)?;
            println!("retired {old}\nsigning with {new}");
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Unix milliseconds of an RFC 3339 time or a date (midnight UTC).
fn parse_time(text: &str) -> anyhow::Result<i64> {
    use time::format_description::well_known::Rfc3339;
    let at = match time::OffsetDateTime::parse(text, &Rfc3339) {
        Ok(at) => at,
        Err(_) => {
            let date = time::Date::parse(text, time::macros::format_description!("[year]-[month]-[day]"))
                .context("expected RFC 3339 (2026-12-01T00:00:00Z) or a date (2026-12-01)")?;
            date.midnight().assume_utc()
        }
    };
    Ok((at.unix_timestamp_nanos() / 1_000_000) as i64)
}
