//! Logs to stderr that never hold up the I/O thread, and warnings that cannot flood them.
//!
//! Owns the tracing subscriber. Must never block the thread that logs: lines go through
//! tracing-appender's lossy non-blocking writer (a bounded queue and a writer thread), so a
//! stderr nobody reads costs log lines, not pongs. Colours only when stderr is a terminal.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tracing::callsite::Identifier;
use tracing::{warn, Event, Level, Subscriber};
use tracing_appender::non_blocking::{ErrorCounter, NonBlockingBuilder, WorkerGuard};
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::prelude::*;

/// The target of this module's own summaries; they are never rate-limited themselves.
const SUMMARY_TARGET: &str = "log_limit";

/// How often suppressed warnings and dropped lines are summarised.
const SUMMARY_EVERY: Duration = Duration::from_secs(1);

/// Installs the subscriber. Keep the guard until exit: dropping it flushes queued lines.
/// `queue_lines` lines wait for the writer thread at most; more are dropped and counted.
pub(crate) fn init(warnings_per_second: u32, queue_lines: usize) -> WorkerGuard {
    let (writer, guard) = NonBlockingBuilder::default()
        .lossy(true)
        .buffered_lines_limit(queue_lines.max(1))
        .thread_name("log-writer")
        .finish(std::io::stderr());
    let dropped = writer.error_counter();
    let limit = WarnLimit::new(warnings_per_second);
    tracing_subscriber::registry()
        .with(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with(limit.clone())
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(writer)
                .with_ansi(std::io::stderr().is_terminal()),
        )
        .init();
    let spawned = std::thread::Builder::new()
        .name("log-summary".into())
        .spawn(move || summarise(&limit, &dropped));
    if let Err(e) = spawned {
        warn!("no log summaries (cannot start their thread): {e}");
    }
    guard
}

/// Once a second: how many warnings each log statement had suppressed, and lines dropped.
/// Suppressed counts may be lost with a dropped summary line; the dropped total is not.
fn summarise(limit: &WarnLimit, dropped: &ErrorCounter) {
    let mut reported = 0;
    loop {
        std::thread::sleep(SUMMARY_EVERY);
        for (name, suppressed) in limit.take_suppressed() {
            warn!(
                target: SUMMARY_TARGET,
                event = name,
                suppressed,
                "suppressed repeats of a warning (at most {} a second from each place)",
                limit.0.per_second
            );
        }
        // A total, reported until a report gets through: a report is itself a line that can
        // be dropped while stderr is stuck.
        let total = dropped.dropped_lines();
        if total > reported {
            warn!(
                target: SUMMARY_TARGET,
                dropped_total = total,
                "log lines dropped since start: stderr is not read fast enough"
            );
            if dropped.dropped_lines() == total {
                reported = total;
            }
        }
    }
}

/// At most `per_second` WARN and ERROR events a second from each log statement (callsite);
/// the rest are counted and summarised. INFO and below pass: they are not per bad input.
#[derive(Clone)]
struct WarnLimit(Arc<Limits>);

struct Limits {
    /// 0: no limit.
    per_second: u32,
    slots: Mutex<HashMap<Identifier, Slot>>,
}

struct Slot {
    name: &'static str,
    window_start: Instant,
    passed: u32,
    suppressed: u64,
}

impl WarnLimit {
    fn new(per_second: u32) -> WarnLimit {
        WarnLimit(Arc::new(Limits {
            per_second,
            slots: Mutex::new(HashMap::new()),
        }))
    }

    /// The callsites with suppressed events since the last call, and how many.
    fn take_suppressed(&self) -> Vec<(&'static str, u64)> {
        let mut slots = self.0.slots.lock().unwrap_or_else(PoisonError::into_inner);
        slots
            .values_mut()
            .filter(|s| s.suppressed > 0)
            .map(|s| (s.name, std::mem::take(&mut s.suppressed)))
            .collect()
    }
}

impl<S: Subscriber> Layer<S> for WarnLimit {
    fn event_enabled(&self, event: &Event<'_>, _: Context<'_, S>) -> bool {
        let meta = event.metadata();
        if self.0.per_second == 0 || *meta.level() > Level::WARN || meta.target() == SUMMARY_TARGET
        {
            return true;
        }
        let now = Instant::now();
        let mut slots = self.0.slots.lock().unwrap_or_else(PoisonError::into_inner);
        let slot = slots.entry(meta.callsite()).or_insert(Slot {
            name: meta.name(),
            window_start: now,
            passed: 0,
            suppressed: 0,
        });
        if now.duration_since(slot.window_start) >= Duration::from_secs(1) {
            slot.window_start = now;
            slot.passed = 0;
        }
        if slot.passed < self.0.per_second {
            slot.passed += 1;
            true
        } else {
            slot.suppressed += 1;
            false
        }
    }
}

impl std::fmt::Debug for WarnLimit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WarnLimit")
            .field("per_second", &self.0.per_second)
            .finish_non_exhaustive()
    }
}
