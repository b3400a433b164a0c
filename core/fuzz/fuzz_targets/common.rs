//! What the state-machine targets share: durations a validation can accept, and time that only
//! moves forward (with the occasional stale `now`, which the core must treat as the latest seen).

use arbitrary::Arbitrary;
use core::time::Duration;
use heartbeat_core::Instant;

/// A duration in whole milliseconds, mostly small so that deadlines are reached within a few
/// steps; sometimes anything up to past the 24 h validation limit.
#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum Ms {
    /// 1 to 256 ms.
    Tiny(u8),
    /// Up to about 65 s.
    Short(u16),
    /// Whole seconds, up to about 18 h.
    Secs(u16),
    /// Anything (mostly invalid: zero, over 24 h).
    Raw(u32),
}

impl Ms {
    pub fn get(self) -> Duration {
        match self {
            Ms::Tiny(n) => Duration::from_millis(u64::from(n) + 1),
            Ms::Short(n) => Duration::from_millis(u64::from(n)),
            Ms::Secs(n) => Duration::from_secs(u64::from(n)),
            Ms::Raw(n) => Duration::from_millis(u64::from(n)),
        }
    }
}

/// How far time moves before an input.
#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum Step {
    /// Not at all.
    Same,
    /// A few microseconds.
    Micros(u16),
    /// Milliseconds.
    Millis(u32),
    /// Exactly to the machine's next deadline (if it has one).
    ToDeadline,
    /// To the deadline plus this many milliseconds (late timers, stalls).
    PastDeadline(u32),
    /// Hours (a laptop asleep).
    Hours(u8),
    /// A `now` this many milliseconds older than the latest: the core must ignore the
    /// regression. The harness's clock does not move.
    Stale(u32),
}

/// Upper end of the harness's clock: far from `Instant::MAX`, so saturating arithmetic in the
/// core never clamps a deadline (a clock that reads 146,000 years is not a caller's clock).
pub const CLOCK_END: u64 = 1 << 62;

/// The harness's clock.
#[derive(Debug)]
pub struct Clock {
    pub now: Instant,
}

impl Clock {
    /// Moves the clock for `step` and returns the `now` to pass to the core.
    pub fn step(&mut self, step: Step, deadline: Option<Instant>) -> Instant {
        let add = |now: Instant, d: Duration| {
            let t = now.saturating_add(d);
            Instant::from_micros(t.as_micros().min(CLOCK_END))
        };
        let next = match step {
            Step::Same => self.now,
            Step::Micros(n) => add(self.now, Duration::from_micros(u64::from(n))),
            Step::Millis(n) => add(self.now, Duration::from_millis(u64::from(n))),
            Step::ToDeadline => deadline.map_or(self.now, |d| d.max(self.now)),
            Step::PastDeadline(n) => add(
                deadline.map_or(self.now, |d| d.max(self.now)),
                Duration::from_millis(u64::from(n)),
            ),
            Step::Hours(n) => add(self.now, Duration::from_secs(3600 * u64::from(n))),
            Step::Stale(n) => {
                return self.now.saturating_sub(Duration::from_millis(u64::from(n)));
            }
        };
        let next = Instant::from_micros(next.as_micros().min(CLOCK_END));
        self.now = next;
        next
    }
}
