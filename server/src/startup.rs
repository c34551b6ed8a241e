//! Building and running the server, in a form tests can drive: the caller binds the
//! listener (port 0 in tests) and says when to shut down.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::bus::EventBus;
use crate::http;
use crate::notify::Channels;
use crate::service::{Service, Settings};
use crate::sso::oidc::Oidc;
use crate::sso::sessions::SessionBackend;
use crate::sso::{AuthState, RoleMap};
use crate::state::AppState;
use crate::store::Store;
use crate::throttle::Throttle;
use crate::{Config, Error, Result, dev};

pub struct Application {
    listener: TcpListener,
    service: Arc<Service>,
    auth: Arc<AuthState>,
    sessions: SessionBackend,
    channels: Arc<Channels>,
    config: Config,
    shutdown: watch::Sender<bool>,
}

/// Opens the configured database and brings its schema up to date.
pub async fn open_store(config: &Config) -> Result<Store> {
    let store = Store::connect(&config.database_url()).await?;
    store.migrate().await?;
    Ok(store)
}

impl Application {
    pub async fn build(config: Config, listener: TcpListener) -> Result<Self> {
        config.validate()?;
        let store = open_store(&config).await?;
        let bus = match store.postgres_pool() {
            Some(pool) => EventBus::postgres(pool.clone()).await?,
            None => EventBus::in_process(),
        };
        let (shutdown, shutdown_rx) = watch::channel(false);
        let settings = Settings::from_config(&config)?;
        let sessions = SessionBackend::open(&store).await?;
        let service = Arc::new(Service::open(store, bus, settings, shutdown_rx).await?);
        service.load_policies().await?;
        // Builds the audit log's tree first if this store predates it, and signs the log
        // as this server finds it.
        service.checkpoint().await?;
        if config.dev {
            dev::seed(&service).await?;
        }
        let public_url = config.public_url_for(listener.local_addr().ok());
        let channels = Arc::new(Channels::from_config(&config, &public_url, service.store())?);
        channels.open_cursors(service.store()).await?;
        let duration = |d: std::time::Duration| time::Duration::try_from(d).unwrap_or(time::Duration::MAX);
        let auth = Arc::new(AuthState {
            oidc: Oidc::from_config(&config.oidc, &public_url)?,
            roles: RoleMap {
                reviewer_groups: config.reviewer_groups.clone(),
                admin_groups: config.admin_groups.clone(),
                auditor_groups: config.auditor_groups.clone(),
            },
            public_url,
            dev: config.dev,
            session_lifetime: duration(config.session_lifetime),
            terminal_token_lifetime: duration(config.terminal_token_lifetime),
            device_poll_interval: duration(config.device_poll_interval),
            content_security_policy: AuthState::content_security_policy_for(config.oidc.issuer.as_deref()),
        });
        Ok(Self {
            listener,
            service,
            auth,
            sessions,
            channels,
            config,
            shutdown,
        })
    }

    pub fn local_addr(&self) -> Result<SocketAddr> {
        self.listener
            .local_addr()
            .map_err(|err| Error::Internal(format!("listener has no address: {err}")))
    }

    /// The URL users reach (for tests: http://127.0.0.1:PORT).
    pub fn public_url(&self) -> &str {
        &self.auth.public_url
    }

    pub fn service(&self) -> Arc<Service> {
        Arc::clone(&self.service)
    }

    /// Serves until `shutdown` completes, then lets in-flight requests finish (waiting
    /// agents are answered at once with the request as it stands).
    pub async fn run_until(self, shutdown: impl Future<Output = ()> + Send + 'static) -> Result<()> {
        // Bound before anything starts, so an unusable metrics address stops the start cleanly.
        let metrics_listener = match self.config.metrics_listen {
            Some(address) => Some(
                TcpListener::bind(address)
                    .await
                    .map_err(|err| Error::Config(format!("cannot listen for metrics on {address}: {err}")))?,
            ),
            None => None,
        };
        let sweeper = tokio::spawn(sweep(
            Arc::clone(&self.service),
            self.config.sweep_interval,
            self.shutdown.subscribe(),
        ));
        let checkpointer = tokio::spawn(checkpoint_when_quiet(
            Arc::clone(&self.service),
            self.config.audit.checkpoint_interval,
            self.shutdown.subscribe(),
        ));
        let deliveries = self.channels.start(
            self.service.store(),
            &self.service.bus().log_head(),
            self.service.engine().pressure(),
            &self.shutdown.subscribe(),
        )?;
        self.sessions.spawn_cleanup();
        let throttle = Arc::new(Throttle::new(&self.config));
        Throttle::spawn_cleanup(Arc::clone(&throttle), self.shutdown.subscribe());
        let state = AppState {
            service: Arc::clone(&self.service),
            auth: Arc::clone(&self.auth),
            throttle,
            sessions: self.sessions,
            channels: Arc::clone(&self.channels),
        };
        let metrics_server = metrics_listener.map(|listener| {
            tokio::spawn(serve_metrics(
                listener,
                http::metrics_router(state.clone()),
                self.shutdown.subscribe(),
            ))
        });
        let router = http::router(state, self.config.session_idle_timeout, metrics_server.is_none());
        let stop = self.shutdown.clone();
        let served = axum::serve(
            self.listener,
            router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(async move {
            shutdown.await;
            tracing::info!("shutting down");
            let _ = stop.send(true);
        })
        .await;
        let _ = self.shutdown.send(true);
        let _ = sweeper.await;
        let _ = checkpointer.await;
        deliveries.stopped().await;
        if let Some(metrics_server) = metrics_server {
            let _ = metrics_server.await;
        }
        served.map_err(|err| Error::Internal(format!("server stopped: {err}")))
    }
}

/// Serves `/metrics` on its own listener until the server shuts down.
async fn serve_metrics(listener: TcpListener, router: axum::Router, mut shutdown: watch::Receiver<bool>) {
    if let Ok(address) = listener.local_addr() {
        tracing::info!(%address, "serving /metrics on its own address");
    }
    let served = axum::serve(listener, router)
        .with_graceful_shutdown(async move {
            let _ = shutdown.wait_for(|stopping| *stopping).await;
        })
        .await;
    if let Err(err) = served {
        tracing::error!(%err, "the metrics listener stopped");
    }
}

/// Expires pending requests past their time, every `interval`.
async fn sweep(service: Arc<Service>, interval: std::time::Duration, mut shutdown: watch::Receiver<bool>) {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = shutdown.changed() => return,
        }
        match service.expire_due().await {
            Ok(0) => {}
            Ok(expired) => tracing::info!(expired, "expired pending requests past their time"),
            Err(err) => tracing::error!(%err, "the sweeper could not expire requests"),
        }
    }
}

/// Signs a checkpoint every `interval` when the log grew (the engine also signs one at
/// every multiple of the configured count), and a last one at shutdown, so a monitor
/// always has the newest events covered.
async fn checkpoint_when_quiet(
    service: Arc<Service>,
    interval: std::time::Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticker.tick().await;
    loop {
        let stopping = tokio::select! {
            _ = ticker.tick() => false,
            _ = shutdown.changed() => true,
        };
        if let Err(err) = service.checkpoint().await {
            tracing::error!(%err, "could not sign a checkpoint of the audit log");
        }
        if stopping {
            return;
        }
    }
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = terminate => {}
    }
}
