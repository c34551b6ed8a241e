//! The deliveries' own thread, at a lower scheduling priority than the server's and paced
//! while the writer is busy, and the store as it reaches it: under load creations and
//! decisions keep the CPU and deliveries fall behind, catching up as soon as the load
//! falls; at ordinary rates they go out at once (see ARCHITECTURE.md, "Notifications").

use std::future::Future;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tokio::runtime::Handle;
use tokio::sync::oneshot;

use crate::engine::Pressure;
use crate::store::Store;
use crate::{Error, Result};

/// How much lower the deliveries' thread runs than the server (a nice value): a thread at
/// 10 gets about a tenth of a core that the server's threads want too, never none.
const NICENESS: i32 = 10;
/// While callers queue behind the writer, the deliveries' thread uses at most `BUDGET` of
/// CPU in each `WINDOW`: a tenth of one core.
const WINDOW: Duration = Duration::from_millis(100);
const BUDGET: Duration = Duration::from_millis(10);

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

/// Keeps the deliveries' thread to a tenth of a core while the writer is busy, and holds
/// nothing back otherwise; why priority alone is not enough is in ARCHITECTURE.md
/// ("Notifications").
pub struct Pace {
    pressure: Pressure,
    window: Duration,
    budget: Duration,
    current: Mutex<Option<Window>>,
}

/// The current window: when it began, and the thread's CPU time then.
struct Window {
    began: Instant,
    cpu_at_start: Duration,
}

impl Pace {
    pub fn new(pressure: Pressure) -> Pace {
        Pace::with(pressure, WINDOW, BUDGET)
    }

    fn with(pressure: Pressure, window: Duration, budget: Duration) -> Pace {
        Pace {
            pressure,
            window,
            budget,
            current: Mutex::new(None),
        }
    }

    /// Returns when the calling thread may go on: at once, unless the writer is busy and
    /// this thread has used its budget of the current window, then when the window ends.
    /// Called on the deliveries' thread only: it counts that thread's CPU time.
    pub async fn turn(&self) {
        while self.pressure.busy() {
            let used = thread_cpu_time();
            let now = Instant::now();
            let wait_until = {
                let mut current = self.current.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
                match &*current {
                    Some(window) if now.duration_since(window.began) < self.window => {
                        (used.saturating_sub(window.cpu_at_start) >= self.budget).then_some(window.began + self.window)
                    }
                    _ => {
                        *current = Some(Window {
                            began: now,
                            cpu_at_start: used,
                        });
                        None
                    }
                }
            };
            match wait_until {
                Some(until) => tokio::time::sleep_until(until.into()).await,
                None => return,
            }
        }
    }
}

/// The CPU time the calling thread has used.
fn thread_cpu_time() -> Duration {
    let time = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    Duration::new(time.tv_sec.max(0) as u64, time.tv_nsec.clamp(0, 999_999_999) as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Keeps this thread busy for `cpu` of CPU time.
    fn spin(cpu: Duration) {
        let until = thread_cpu_time() + cpu;
        while thread_cpu_time() < until {
            std::hint::spin_loop();
        }
    }

    #[tokio::test]
    async fn deliveries_keep_to_their_budget_only_while_the_writer_is_busy() {
        let pressure = Pressure::default();
        let window = Duration::from_secs(2);
        let pace = Pace::with(pressure.clone(), window, Duration::from_millis(10));

        spin(Duration::from_millis(30));
        let asked = Instant::now();
        pace.turn().await;
        assert!(
            asked.elapsed() < Duration::from_millis(100),
            "not busy: never held back"
        );

        pressure.batch(64);
        pace.turn().await;
        let began = Instant::now();
        spin(Duration::from_millis(5));
        pace.turn().await;
        assert!(began.elapsed() < window / 2, "within its budget: goes on");

        spin(Duration::from_millis(10));
        pressure.batch(64);
        pace.turn().await;
        assert!(
            began.elapsed() >= window - Duration::from_millis(50),
            "over its budget: waits for the next window ({:?})",
            began.elapsed()
        );
    }
}
