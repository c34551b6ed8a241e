//! Whether callers are queueing behind the writer's commits right now: the writer says so
//! after each batch, and work that should yield to callers (the channels' deliveries)
//! asks before it takes a core (see ARCHITECTURE.md, "Notifications").

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

/// A batch of at least this many commands means commands arrived while the one before it
/// committed: callers wait in a queue. At ordinary rates a batch holds one or two.
const QUEUEING: usize = 8;
/// How long one such batch keeps the writer counted as busy: long enough to bridge the
/// small batches that come between the big ones under load.
const LINGER: Duration = Duration::from_millis(200);

/// The writer's pressure, shared: cheap to clone, to set and to read.
#[derive(Clone, Debug, Default)]
pub struct Pressure {
    /// Until when the writer counts as busy, in milliseconds since [`epoch`].
    busy_until: Arc<AtomicU64>,
}

impl Pressure {
    /// The writer has just committed a batch of `commands`.
    pub fn batch(&self, commands: usize) {
        if commands >= QUEUEING {
            self.busy_until
                .fetch_max(millis_since_epoch(Instant::now() + LINGER), Ordering::Relaxed);
        }
    }

    /// Whether callers have been queueing behind commits within the last moment.
    pub fn busy(&self) -> bool {
        millis_since_epoch(Instant::now()) < self.busy_until.load(Ordering::Relaxed)
    }
}

/// A fixed instant of this process, so instants fit in an atomic.
fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

fn millis_since_epoch(at: Instant) -> u64 {
    at.saturating_duration_since(epoch()).as_millis() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn big_batches_make_the_writer_busy_for_a_moment_and_small_ones_do_not() {
        let pressure = Pressure::default();
        assert!(!pressure.busy());
        pressure.batch(1);
        pressure.batch(QUEUEING - 1);
        assert!(!pressure.busy(), "batches of one or two are ordinary");
        pressure.batch(QUEUEING);
        assert!(pressure.busy());
        pressure.batch(1);
        assert!(pressure.busy(), "a small batch between big ones does not end it");
        std::thread::sleep(LINGER + Duration::from_millis(20));
        assert!(!pressure.busy(), "it ends once no big batch came for a while");
    }
}
