//! What the client's and the server's writers share: the bound on heartbeat frames owed, and
//! the rule that a peer must take every frame whole within a time limit.
//!
//! This module never decides a close by itself: it says when a frame has stalled, and the
//! writer that asked ends the connection.

use std::time::Duration;

use tokio::time::Instant;

use heartbeat_core::server::STALL_GRACE;

/// Heartbeat frames waiting for a writer, at most; the oldest goes first when a new one comes.
/// Pongs collapse in the core (one per ping read, each answering the latest), so a peer that
/// floods pings and reads nothing cannot grow what waits beyond this.
pub(crate) const OUTBOX_CAP: usize = 16;

/// Queues `frame` behind the heartbeat frames already owed, dropping the oldest at
/// [`OUTBOX_CAP`].
pub(crate) fn push_capped<T>(outbox: &mut std::collections::VecDeque<T>, frame: T) {
    while outbox.len() >= OUTBOX_CAP {
        outbox.pop_front();
    }
    outbox.push_back(frame);
}

/// When a frame being written is given up: `limit` after its write started. A check that runs
/// more than [`STALL_GRACE`] late means this process was not running (the peer may have taken
/// what we could not push meanwhile), so the verdict is put off once by [`STALL_GRACE`], as the
/// core does with its idle verdict.
#[derive(Clone, Copy, Debug)]
pub(crate) struct WriteDeadline {
    at: Instant,
    deferred: bool,
}

impl WriteDeadline {
    /// A frame whose write starts now.
    pub(crate) fn start(limit: Duration) -> WriteDeadline {
        let now = Instant::now();
        WriteDeadline {
            // A limit too far to represent never comes: thirty years will do.
            at: now
                .checked_add(limit)
                .unwrap_or_else(|| now + Duration::from_secs(30 * 365 * 86_400)),
            deferred: false,
        }
    }

    /// When to check next.
    pub(crate) fn at(&self) -> Instant {
        self.at
    }

    /// True if the frame has stalled by `now`. A first check more than [`STALL_GRACE`] past
    /// the deadline puts it off to `now + STALL_GRACE` instead.
    pub(crate) fn stalled(&mut self, now: Instant) -> bool {
        if now < self.at {
            return false;
        }
        if !self.deferred && now.saturating_duration_since(self.at) > STALL_GRACE {
            self.deferred = true;
            self.at = now + STALL_GRACE;
            return false;
        }
        true
    }
}
