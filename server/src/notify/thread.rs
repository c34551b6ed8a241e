//! The deliveries' own thread, at a lower scheduling priority than the server's, and the
//! store as it reaches it: when load fills every core, creations and decisions keep the
//! CPU and deliveries fall behind, catching up as soon as a core is free; at ordinary
//! rates a core is free and they go out at once (see ARCHITECTURE.md, "Notifications").

use std::future::Future;

use tokio::runtime::Handle;
use tokio::sync::oneshot;

use crate::store::Store;
use crate::{Error, Result};

/// How much lower the deliveries' thread runs than the server (a nice value): a thread at
/// 10 gets about a tenth of a core that the server's threads want too, never none.
const NICENESS: i32 = 10;

/// The store, reached from the deliveries' thread through the server's runtime: every
/// query and write runs as a task of the server, at its priority, so a delivery never
/// holds SQLite's one writer or a database connection while its own thread waits for a
/// core, and every connection stays with the runtime that made it.
#[derive(Clone)]
pub struct ServerStore {
    store: Store,
    runtime: Handle,
}

impl ServerStore {
    /// Made on the server's runtime: the one its tasks will run on.
    pub fn new(store: Store) -> Result<ServerStore> {
        let runtime = Handle::try_current()
            .map_err(|_| Error::Internal("the channels must be built on the server's runtime".into()))?;
        Ok(ServerStore { store, runtime })
    }

    /// Runs `work` on the server's runtime and answers what it answered.
    pub async fn run<T, Work, Done>(&self, work: Work) -> Result<T>
    where
        Work: FnOnce(Store) -> Done,
        Done: Future<Output = Result<T>> + Send + 'static,
        T: Send + 'static,
    {
        self.runtime
            .spawn(work(self.store.clone()))
            .await
            .map_err(|err| Error::Internal(format!("a store task of the deliveries stopped: {err}")))?
    }
}

/// The running deliveries' thread.
pub struct DeliveryThread {
    stopped: oneshot::Receiver<()>,
}

impl DeliveryThread {
    /// Starts a thread with a runtime of its own at a lower priority and runs `tasks` on
    /// it until every one has returned.
    pub fn start<Task>(tasks: Vec<Task>) -> Result<DeliveryThread>
    where
        Task: Future<Output = ()> + Send + 'static,
    {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|err| Error::Internal(format!("the deliveries' runtime: {err}")))?;
        let (done, stopped) = oneshot::channel();
        std::thread::Builder::new()
            .name("signoff-notify".into())
            .spawn(move || {
                lower_priority();
                runtime.block_on(async move {
                    let running: Vec<_> = tasks.into_iter().map(tokio::spawn).collect();
                    for task in running {
                        if let Err(err) = task.await {
                            tracing::error!(%err, "a channel's reader stopped");
                        }
                    }
                });
                let _ = done.send(());
            })
            .map_err(|err| Error::Internal(format!("the deliveries' thread: {err}")))?;
        Ok(DeliveryThread { stopped })
    }

    /// Waits until every task has returned (they return when the server shuts down).
    pub async fn stopped(self) {
        let _ = self.stopped.await;
    }
}

/// On Linux each thread has its own nice value: this lowers the calling thread's (and
/// that of the threads it starts) only.
fn lower_priority() {
    #[cfg(target_os = "linux")]
    if let Err(err) = rustix::process::setpriority_process(Some(rustix::thread::gettid()), NICENESS) {
        tracing::warn!(%err, "could not lower the deliveries' priority; they run at the server's");
    }
}
