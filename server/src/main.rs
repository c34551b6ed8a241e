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
use signoff_server::store::{Actor, AuditEvent, ChainReport, KeyIssue};
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
    /// Recompute the hash chain and report whether it is intact.
    Verify,
    /// Print every audit event as JSON lines.
    Export,
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
    let service = Service::new(store, bus, settings, shutdown);
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
    let store = startup::open_store(config).await?;
    match command {
        AuditCommand::Verify => match signoff_server::store::verify_chain(&store).await? {
            ChainReport::Intact { events, head } => {
                println!("audit trail intact: {events} events, head {head}");
                Ok(ExitCode::SUCCESS)
            }
            ChainReport::Broken { seq, reason } => {
                println!("audit trail BROKEN at event {seq}: {reason}");
                Ok(ExitCode::FAILURE)
            }
        },
        AuditCommand::Export => {
            let mut out = std::io::stdout().lock();
            let mut after = 0;
            loop {
                let events: Vec<AuditEvent> = store.audit_events(after, 1000).await?;
                let Some(last) = events.last() else { break };
                after = last.seq;
                for event in &events {
                    writeln!(out, "{}", serde_json::to_string(event)?)?;
                }
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
